//! Project rooms against a real server: the exact JSON of every message
//! they add, single-document clients beside project clients in one room,
//! the REST endpoints for files (limits named by path, text byte for
//! byte), and, through a real Redis with two instances, many documents
//! edited at once while files are renamed and deleted, and an instance
//! killed mid-run.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use collab_protocol::{ClientMessage, ServerMessage};
use collab_testkit::{project_query, Client, ProjectBot, TestRedis, TestServer};
use common::session::marker_edit;
use common::SERVER;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::time::Instant;

/// `POST /rooms` with `body`: the status and the JSON answer.
async fn post(server: &TestServer, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/rooms", server.http()))
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// A project room of `files` (path, text); its id.
async fn project(server: &TestServer, files: &[(&str, &str)]) -> String {
    server
        .rest()
        .create_project(files)
        .await
        .expect("created")
        .room_id
}

/// The id the tree gives `path`.
fn id_of(files: &Value, path: &str) -> String {
    files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} in {files}"))["doc"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn project_messages_have_the_documented_shape() {
    let server = TestServer::process(SERVER, &["--max-open-docs", "2"], &[]);
    let room = project(
        &server,
        &[("src/main.rs", "fn main() {}\n"), ("README.md", "# hi\n")],
    )
    .await;

    // A project client's init: the main document, the tree, the tree's revision.
    let (mut ada, init) =
        Client::join(&server.addr, &room, "name=ada&client_id=ada&project=1").await;
    let init = serde_json::to_value(&init).unwrap();
    let readme = id_of(&init["files"], "README.md");
    assert_eq!(init["doc"], "main");
    assert_eq!(init["tree_revision"], 0);
    assert_eq!(
        (init["code"].as_str(), init["revision"].as_u64()),
        (Some("fn main() {}\n"), Some(0))
    );
    assert_eq!(
        init["files"],
        json!([
            {"doc": readme, "path": "README.md", "size": 5, "language": "markdown"},
            {"doc": "main", "path": "src/main.rs", "size": 13, "language": "rust"},
        ])
    );
    let ada_id = init["user_id"].as_str().unwrap().to_owned();

    // A single-document client of the same room sees none of it.
    let (mut old, init) = Client::join(&server.addr, &room, "name=old&client_id=old").await;
    let init = serde_json::to_value(&init).unwrap();
    for field in ["doc", "tree_revision", "files"] {
        assert!(init.get(field).is_none(), "{field} in {init}");
    }
    assert_eq!(init["code"], "fn main() {}\n");
    assert_eq!(init["users"][0]["user_id"], ada_id);
    let old_id = init["user_id"].as_str().unwrap().to_owned();
    // The project client hears the join: the user is in the main document.
    let joined = ada.recv_json().await;
    assert_eq!(joined["type"], "user_joined");
    assert_eq!(joined["user"]["doc"], "main");

    // open -> opened.
    ada.send_text(&format!(r#"{{"type":"open","doc":"{readme}"}}"#))
        .await;
    assert_eq!(
        ada.recv_json().await,
        json!({"type": "opened", "doc": readme, "revision": 0, "code": "# hi\n", "language": "markdown"})
    );
    // An edit names its document in the ack; the single-document client
    // hears nothing of the README.
    ada.send_text(&format!(
        r#"{{"type":"code_update","doc":"{readme}","revision":0,"seq":1,"operation":[5,"!"]}}"#
    ))
    .await;
    assert_eq!(
        ada.recv_json().await,
        json!({"type": "ack", "revision": 1, "seq": 1, "doc": readme})
    );
    // The main document's edits reach both, named for the project client only.
    old.send_text(r#"{"type":"code_update","revision":0,"seq":1,"operation":[13,"//"]}"#)
        .await;
    assert_eq!(
        old.recv_json().await,
        json!({"type": "ack", "revision": 1, "seq": 1})
    );
    assert_eq!(
        ada.recv_json().await,
        json!({"type": "code_update", "revision": 1, "operation": [13, "//"], "user_id": old_id, "doc": "main"})
    );
    // Carets: a project client hears everyone's, with the document; the
    // single-document client only those in the main document.
    ada.send_text(&format!(
        r#"{{"type":"cursor_move","doc":"{readme}","revision":1,"cursor":2}}"#
    ))
    .await;
    old.send_text(r#"{"type":"cursor_move","revision":1,"cursor":3}"#)
        .await;
    assert_eq!(
        ada.recv_json().await,
        json!({"type": "cursor_move", "user_id": old_id, "revision": 1, "cursor": 3, "anchor": null, "doc": "main"})
    );

    // The tree: create, rename, delete, in tree_revision order, to project
    // clients only.
    ada.send_text(r#"{"type":"create_file","path":"src/lib.rs","code":"pub fn f() {}\n"}"#)
        .await;
    let created = ada.recv_json().await;
    let lib = created["file"]["doc"].as_str().unwrap().to_owned();
    assert_eq!(
        created,
        json!({"type": "file_created", "file": {"doc": lib, "path": "src/lib.rs", "size": 14, "language": "rust"},
               "user_id": ada_id, "tree_revision": 1})
    );
    ada.send_text(&format!(
        r#"{{"type":"rename_file","doc":"{lib}","path":"src/util.rs"}}"#
    ))
    .await;
    assert_eq!(
        ada.recv_json().await,
        json!({"type": "file_renamed", "doc": lib, "path": "src/util.rs", "old_path": "src/lib.rs",
               "user_id": ada_id, "tree_revision": 2})
    );
    ada.send_text(&format!(r#"{{"type":"delete_file","doc":"{lib}"}}"#))
        .await;
    assert_eq!(
        ada.recv_json().await,
        json!({"type": "file_deleted", "doc": lib, "path": "src/util.rs", "user_id": ada_id, "tree_revision": 3})
    );

    // Refusals name the path or the document, and the connection stays open.
    let refusals: [(String, Value); 6] = [
        (
            r#"{"type":"create_file","path":"README.md"}"#.into(),
            json!({"type": "error", "code": "path_taken", "message": "another document is at README.md", "path": "README.md"}),
        ),
        (
            r#"{"type":"create_file","path":"../etc/passwd"}"#.into(),
            json!({"type": "error", "code": "bad_path", "message": "\"../etc/passwd\": the path has a `..` component", "path": "../etc/passwd"}),
        ),
        (
            r#"{"type":"open","doc":"nope"}"#.into(),
            json!({"type": "error", "code": "document_not_found", "message": "no document has the id nope", "doc": "nope"}),
        ),
        (
            format!(r#"{{"type":"open","doc":"{lib}"}}"#),
            json!({"type": "error", "code": "document_deleted", "message": format!("document {lib} was deleted"), "doc": lib}),
        ),
        (
            format!(
                r#"{{"type":"code_update","doc":"{lib}","revision":0,"seq":1,"operation":["x"]}}"#
            ),
            json!({"type": "error", "code": "document_deleted", "message": format!("document {lib} was deleted"), "seq": 1, "doc": lib}),
        ),
        (
            r#"{"type":"rename_file","doc":"main","path":"README.md"}"#.into(),
            json!({"type": "error", "code": "path_taken", "message": "another document is at README.md", "path": "README.md"}),
        ),
    ];
    for (sent, answer) in refusals {
        ada.send_text(&sent).await;
        assert_eq!(ada.recv_json().await, answer, "{sent}");
    }
    // Two documents open is this server's limit (--max-open-docs 2).
    ada.send_text(r#"{"type":"create_file","path":"third.txt"}"#)
        .await;
    let third = ada.recv_json().await["file"]["doc"]
        .as_str()
        .unwrap()
        .to_owned();
    ada.send_text(&format!(r#"{{"type":"open","doc":"{third}"}}"#))
        .await;
    assert_eq!(
        ada.recv_json().await,
        json!({"type": "error", "code": "too_many_open",
               "message": "this connection has 2 documents open, its limit; close one first", "doc": third})
    );
    // Closed, a document is not edited any more; another opens in its place.
    ada.send_text(&format!(r#"{{"type":"close","doc":"{readme}"}}"#))
        .await;
    ada.send_text(&format!(
        r#"{{"type":"code_update","doc":"{readme}","revision":1,"seq":2,"operation":[6,"?"]}}"#
    ))
    .await;
    assert_eq!(
        ada.recv_json().await,
        json!({"type": "error", "code": "not_open",
               "message": format!("document {readme} is not open on this connection; send open first"),
               "seq": 2, "doc": readme})
    );
    ada.send_text(&format!(r#"{{"type":"open","doc":"{third}"}}"#))
        .await;
    assert_eq!(ada.recv_json().await["type"], "opened");

    // The single-document client heard only its own edit's ack, the
    // project client's caret in the main document (none) and nothing of
    // the tree: its next message is the pong.
    old.send_text(r#"{"type":"ping"}"#).await;
    assert_eq!(old.recv_json().await, json!({"type": "pong"}));

    // Deleting the main document closes single-document clients, and
    // such clients can no longer join.
    ada.send_text(r#"{"type":"delete_file","doc":"main"}"#)
        .await;
    old.expect_refusal("document_deleted", 4004, "the main document deleted")
        .await;
    let mut late = Client::connect(&server.addr, &room, "").await;
    late.expect_refused_at_door("document_deleted", 4004, "a single-document join")
        .await;
    // A project client still joins: no main document, the tree.
    let (_, init) = Client::join(&server.addr, &room, "project=1").await;
    let init = serde_json::to_value(&init).unwrap();
    assert!(init.get("doc").is_none(), "{init}");
    assert_eq!(init["files"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn files_over_rest_byte_for_byte_with_limits_named_by_path() {
    let redis = TestRedis::start();
    let limits = [
        "--max-doc-bytes",
        "1000",
        "--max-room-bytes",
        "1500",
        "--max-docs",
        "3",
    ];
    let in_memory = TestServer::process(SERVER, &limits, &[]);
    let shared = TestServer::on_redis(SERVER, &redis, &limits);
    for server in [&in_memory, &shared] {
        let texts = [
            ("main.py", "print('hi')\r\n"),
            ("docs/ünï cödé.md", "# 日本語 😀\n\tno newline at the end"),
            ("empty", ""),
        ];
        let room = project(server, &texts).await;
        let listing = server.rest().files(&room).await.unwrap().expect("listed");
        assert_eq!(listing.tree_revision, 0);
        let paths: Vec<(&str, u64, &str)> = listing
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.size, f.language.as_str()))
            .collect();
        assert_eq!(
            paths,
            [
                ("docs/ünï cödé.md", texts[1].1.len() as u64, "markdown"),
                ("empty", 0, "plaintext"),
                ("main.py", 13, "python"),
            ]
        );
        for (path, text) in texts {
            let encoded = path.replace(' ', "%20");
            let got = server.rest().file_text(&room, &encoded).await.unwrap();
            assert_eq!(got.as_deref(), Some(text.as_bytes()), "{path}");
        }
        let resp = reqwest::get(format!("{}/rooms/{room}/files/main.py", server.http()))
            .await
            .unwrap();
        assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
        assert_eq!(
            server.rest().file_text(&room, "nope.rs").await.unwrap(),
            None
        );
        assert_eq!(
            server.rest().file_text("nope", "main.py").await.unwrap(),
            None
        );
        // The main document is the room's document for single-document REST.
        assert_eq!(server.code(&room).await, "print('hi')\r\n");

        // Refusals name the offending path.
        let big = "x".repeat(1001);
        for (body, status, needle) in [
            (
                json!({"files": [{"path": "a/../b", "code": ""}]}),
                400,
                "a/../b",
            ),
            (
                json!({"files": [{"path": "/abs", "code": ""}]}),
                400,
                "/abs",
            ),
            (
                json!({"files": [{"path": "a", "code": ""}, {"path": "a", "code": ""}]}),
                400,
                "\"a\" is listed twice",
            ),
            (
                json!({"files": [{"path": "big.txt", "code": big}]}),
                413,
                "big.txt is 1001 bytes",
            ),
            (
                json!({"files": [{"path": "one", "code": "x".repeat(900)}, {"path": "two", "code": "x".repeat(900)}]}),
                413,
                "two (900 bytes) would take the room past its 1500 bytes",
            ),
            (
                json!({"files": [{"path": "1"}, {"path": "2"}, {"path": "3"}, {"path": "4"}]}),
                413,
                "4 files",
            ),
            (json!({"code": "x", "files": []}), 400, "not both"),
            (
                json!({"files": [{"path": "a", "cod": ""}]}),
                400,
                "unknown field",
            ),
        ] {
            let (got, answer) = post(server, body.clone()).await;
            let error = answer["error"].as_str().unwrap_or_default();
            assert_eq!(got, status, "{body}: {answer}");
            assert!(error.contains(needle), "{body}: {error}");
        }
    }
}

/// A project client that survives its connection dying: it rejoins (the
/// next instance) with `since` and opens its documents again with theirs.
struct ProjectTypist {
    bot: ProjectBot,
    client_id: String,
    addrs: Vec<String>,
    room: String,
    next: usize,
    reconnects: usize,
}

impl ProjectTypist {
    async fn join(addrs: &[String], room: &str, index: usize) -> Self {
        let client_id = format!("typist{index}");
        let addr = &addrs[index % addrs.len()];
        let bot = ProjectBot::join(addr, room, &format!("client_id={client_id}")).await;
        Self {
            bot,
            client_id,
            addrs: addrs.to_vec(),
            room: room.to_owned(),
            next: index + 1,
            reconnects: 0,
        }
    }

    async fn reconnect(&mut self) {
        self.bot.assert_revisions_contiguous();
        self.reconnects += 1;
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let addr = self.addrs[self.next % self.addrs.len()].clone();
            self.next += 1;
            let query = format!("client_id={}&{}", self.client_id, self.bot.since_query());
            if let Ok((client, init)) =
                Client::try_join(&addr, &self.room, &project_query(&query)).await
            {
                self.bot
                    .rejoin(client, init)
                    .await
                    .unwrap_or_else(|e| panic!("{e:#}"));
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} could not reconnect",
                self.client_id
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Reads for up to `wait`; reconnects when the connection ended.
    async fn pump(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .bot
                .client
                .next(left.max(Duration::from_millis(1)))
                .await
            {
                None => return,
                Some(Ok(ServerMessage::Error {
                    code, doc: None, ..
                })) if code == "unavailable" => {}
                Some(Ok(msg)) => self.bot.handle(msg).await,
                Some(Err(_)) => self.reconnect().await,
            }
            if Instant::now() >= deadline {
                return;
            }
        }
    }

    /// Reads until nothing of its own is unacknowledged and `doc` (unless
    /// deleted) holds what the instances agree on (`texts`, by path).
    async fn settle(&mut self, doc: &str, texts: &BTreeMap<String, String>) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let done = match self.bot.docs.get(doc) {
                None => true,
                Some(open) => {
                    let path = &self.bot.tree[doc].path;
                    texts.get(path).is_none_or(|t| open.replica.text() == *t)
                }
            };
            if self.bot.is_synchronized() && done {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not settle",
                self.client_id
            );
            self.pump(Duration::from_millis(100)).await;
        }
    }
}

/// A 200-file project (`f000.rs` .. `f199.rs`, the first the main one).
fn two_hundred_files() -> Vec<(String, String)> {
    (0..200)
        .map(|i| (format!("src/f{i:03}.rs"), format!("// file {i}\n")))
        .collect()
}

/// What every instance answers for each document once nobody types: the
/// text, read until two reads a moment apart agree.
async fn settled_texts(addrs: &[String], room: &str, paths: &[String]) -> BTreeMap<String, String> {
    let rest: Vec<_> = addrs.iter().map(|a| collab_testkit::Rest::new(a)).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut texts = BTreeMap::new();
        let mut agree = true;
        for path in paths {
            let mut seen = Vec::new();
            for r in &rest {
                seen.push(r.file_text(room, path).await.unwrap());
            }
            agree &= seen.windows(2).all(|w| w[0] == w[1]);
            if let Some(Some(text)) = seen.first() {
                texts.insert(path.clone(), String::from_utf8(text.clone()).unwrap());
            }
        }
        if agree {
            return texts;
        }
        assert!(Instant::now() < deadline, "the instances never agreed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Six typists on two instances (three each) in a 200-file project; each
/// pair (one per instance) inserts unique markers into one of three files.
/// Meanwhile `during` runs (a rename, a delete, a kill). Once all are done,
/// the `live` instances must agree on every file's text, and each typist
/// reads until its file holds that text. Returns the typists, their
/// document and the markers each inserted, and the texts by path.
async fn six_typists<F: std::future::Future<Output = ()>>(
    addrs: &[String],
    live: &[String],
    room: &str,
    targets: [&str; 3],
    edits: usize,
    during: F,
) -> (
    Vec<(ProjectTypist, String, Vec<String>)>,
    BTreeMap<String, String>,
) {
    let mut handles = Vec::new();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel(6);
    let (final_tx, final_rx) = tokio::sync::watch::channel(None::<BTreeMap<String, String>>);
    for i in 0..6 {
        let (addrs, room, done, mut final_rx) = (
            addrs.to_vec(),
            room.to_owned(),
            done_tx.clone(),
            final_rx.clone(),
        );
        let path = targets[i / 2].to_owned();
        handles.push(tokio::spawn(async move {
            let mut t = ProjectTypist::join(&addrs, &room, i).await;
            let doc = t.bot.doc_at(&path).expect("the file is in the tree");
            if doc != "main" {
                t.bot.open(&doc).await;
            }
            let mut rng = StdRng::seed_from_u64(i as u64);
            let mut markers = Vec::new();
            for k in 0..edits {
                let Some(open) = t.bot.docs.get(&doc) else {
                    break; // Deleted under us: the bot keeps its text.
                };
                let marker = format!("<{i}.{k}>");
                let op = marker_edit(&mut rng, &open.replica.doc, &marker);
                markers.push(marker);
                t.bot.edit(&doc, op).await;
                t.pump(Duration::from_millis(rng.random_range(1..15))).await;
            }
            t.settle(&doc, &BTreeMap::new()).await;
            done.send(()).await.unwrap();
            let texts = loop {
                if let Some(r) = final_rx.borrow().clone() {
                    break r;
                }
                tokio::select! {
                    _ = final_rx.changed() => {}
                    _ = t.pump(Duration::from_millis(100)) => {}
                }
            };
            t.settle(&doc, &texts).await;
            (t, doc, markers)
        }));
    }
    drop(done_tx);
    during.await;
    for _ in 0..6 {
        // A typist that panicked drops its sender: then this fails rather
        // than waiting for the others forever.
        let done = tokio::time::timeout(Duration::from_secs(90), done_rx.recv()).await;
        if !matches!(done, Ok(Some(()))) {
            for h in handles {
                if h.is_finished() {
                    if let Err(e) = h.await {
                        std::panic::resume_unwind(e.into_panic());
                    }
                } else {
                    h.abort();
                }
            }
            panic!("the typists did not finish in 90 s");
        }
    }
    // What the live instances agree on, for every file still there.
    let rest = collab_testkit::Rest::new(&live[0]);
    let listing = rest.files(room).await.unwrap().unwrap();
    let paths: Vec<String> = listing.files.into_iter().map(|f| f.path).collect();
    let texts = settled_texts(live, room, &paths).await;
    final_tx.send(Some(texts.clone())).unwrap();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("typist finished"));
    }
    (out, texts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_clients_on_two_instances_edit_a_200_file_project_while_files_move_and_go() {
    let redis = TestRedis::start();
    let a = TestServer::on_redis(SERVER, &redis, &[]);
    let b = TestServer::on_redis(SERVER, &redis, &[]);
    let addrs = vec![a.addr.clone(), b.addr.clone()];
    let files = two_hundred_files();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let room = project(&a, &refs).await;
    let targets = ["src/f000.rs", "src/f100.rs", "src/f199.rs"];
    // A third party renames the first file and deletes the last while the
    // typists type in them.
    let mut admin = ProjectBot::join(&b.addr, &room, "client_id=admin").await;
    let renamed = admin.doc_at("src/f000.rs").unwrap();
    let doomed = admin.doc_at("src/f199.rs").unwrap();
    let during = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        admin.rename(&renamed, "src/renamed.rs").await;
        admin.settle_tree(1).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        admin.delete(&doomed).await;
        admin.settle_tree(2).await;
    };
    let (typists, texts) = six_typists(&addrs, &addrs, &room, targets, 60, during).await;

    // The tree moved on for everyone.
    for r in [&a, &b] {
        let listing = r.rest().files(&room).await.unwrap().unwrap();
        assert_eq!((listing.tree_revision, listing.files.len()), (2, 199));
        assert_eq!(
            r.rest().file_text(&room, "src/f000.rs").await.unwrap(),
            None
        );
        assert_eq!(
            r.rest().file_text(&room, "src/f199.rs").await.unwrap(),
            None
        );
    }
    for (t, doc, markers) in &typists {
        t.bot.assert_revisions_contiguous();
        assert_eq!(
            t.bot.tree_revision, 2,
            "{} heard both tree changes",
            t.client_id
        );
        if *doc == doomed {
            // Deleted while typing: whatever was unacknowledged was refused
            // (never applied anywhere), and the typist kept its text.
            assert!(
                t.bot.deleted.contains_key(doc),
                "{} kept its text",
                t.client_id
            );
            let refused = t.bot.refusals.iter().all(
                |r| matches!(r, ServerMessage::Error { code, .. } if code == "document_deleted"),
            );
            assert!(refused, "{}: {:?}", t.client_id, t.bot.refusals);
            continue;
        }
        assert!(
            t.bot.refusals.is_empty(),
            "{}: {:?}",
            t.client_id,
            t.bot.refusals
        );
        let path = &t.bot.tree[doc].path;
        let text = &texts[path];
        assert_eq!(&t.bot.text(doc), text, "{} in {path}", t.client_id);
        for m in markers {
            assert_eq!(text.matches(m.as_str()).count(), 1, "{m} once in {path}");
        }
    }
    // The untouched files are as they were.
    for i in [1, 50, 198] {
        let path = format!("src/f{i:03}.rs");
        let text = a.rest().file_text(&room, &path).await.unwrap().unwrap();
        assert_eq!(text, format!("// file {i}\n").into_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_loses_no_acknowledged_edit_in_any_file() {
    let redis = TestRedis::start();
    let mut a = TestServer::on_redis(SERVER, &redis, &[]);
    let b = TestServer::on_redis(SERVER, &redis, &[]);
    let addrs = vec![a.addr.clone(), b.addr.clone()];
    let files = two_hundred_files();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let room = project(&b, &refs).await;
    let targets = ["src/f000.rs", "src/f010.rs", "src/f020.rs"];
    let kill = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        a.kill();
    };
    let live = [b.addr.clone()];
    let (typists, texts) = six_typists(&addrs, &live, &room, targets, 50, kill).await;
    assert!(
        typists.iter().any(|(t, ..)| t.reconnects > 0),
        "someone was on the killed instance"
    );
    for (t, doc, markers) in &typists {
        t.bot.assert_revisions_contiguous();
        let path = &t.bot.tree[doc].path;
        let text = &texts[path];
        assert_eq!(&t.bot.text(doc), text, "{} in {path}", t.client_id);
        for m in markers {
            assert_eq!(text.matches(m.as_str()).count(), 1, "{m} once in {path}");
        }
    }
}

#[tokio::test]
async fn an_edit_through_the_single_document_protocol_reaches_project_clients() {
    // Old clients keep working against a project room made from one file.
    let server = TestServer::process(SERVER, &[], &[]);
    let room = server.create_room("abc").await;
    let mut project = ProjectBot::join(&server.addr, &room, "client_id=p").await;
    assert_eq!(project.tree["main"].path, "main.rs");
    let (mut old, _) = Client::join(&server.addr, &room, "client_id=o").await;
    old.send(&ClientMessage::CodeUpdate {
        revision: 0,
        seq: 1,
        operation: serde_json::from_str(r#"[3, "d"]"#).unwrap(),
        doc: None,
    })
    .await;
    project.settle("main", 1).await;
    assert_eq!(project.text("main"), "abcd");
}
