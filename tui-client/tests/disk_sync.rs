//! The disk mirror against a real server: `collab share DIR --no-editor`
//! run as the real binary on a real directory, with a guest that is the
//! testkit's `ProjectBot`; `join --dir` through the library (the editor
//! beside it needs a terminal); `cat`/`append` with paths as the binary.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use collab_protocol::{ClientMessage, Operation};
use collab_testkit::{ProjectBot, Proxy, TestRedis, TestServer};
use common::{collab, scratch};

/// How soon a change must show on the other side (the bound).
const WITHIN: Duration = Duration::from_secs(1);

/// Writes `files` under `dir`.
fn lay_out(dir: &Path, files: &[(&str, &[u8])]) {
    for (path, bytes) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

/// `collab share DIR --no-editor -q` running; its room id.
struct Sharing {
    child: Child,
    room: String,
}

impl Sharing {
    fn start(server: &TestServer, dir: &Path) -> Self {
        Self::start_at(&server.http(), dir)
    }

    fn start_at(url: &str, dir: &Path) -> Self {
        Self::start_with(url, dir, &[])
    }

    fn start_with(url: &str, dir: &Path, extra: &[&str]) -> Self {
        let state = scratch("share-state");
        let mut child = collab(url, &state)
            .args(["share", "--no-editor", "-q"])
            .args(extra)
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(if std::env::var("DEBUG_SHARE").is_ok() {
                Stdio::inherit()
            } else {
                Stdio::piped()
            })
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let room = line.trim_end().to_owned();
        assert_eq!(
            room.len(),
            22,
            "the room id alone on the first line: {line:?}"
        );
        Self { child, room }
    }

    /// SIGTERM; waits for the exit; its status and stderr.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        let mut stderr = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            std::io::Read::read_to_string(&mut err, &mut stderr).unwrap();
        }
        (self.child.wait().unwrap(), stderr)
    }
}

impl Drop for Sharing {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lets the bot take in what arrives for `wait`.
async fn pump(bot: &mut ProjectBot, wait: Duration) {
    let end = tokio::time::Instant::now() + wait;
    loop {
        let left = end.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return;
        }
        match bot.client.next(left).await {
            Some(Ok(msg)) => bot.handle(msg).await,
            Some(Err(end)) => panic!("the bot's connection ended: {end:?}"),
            None => return,
        }
    }
}

/// Pumps the bot until `check` holds, for at most `wait`; how long it took.
async fn until(
    bot: &mut ProjectBot,
    wait: Duration,
    mut check: impl FnMut(&ProjectBot) -> bool,
) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if check(bot) {
            return Some(start.elapsed());
        }
        if start.elapsed() > wait {
            return None;
        }
        pump(bot, Duration::from_millis(20)).await;
    }
}

/// A caret at `cursor` in `doc`, as an editor sends when the user is there.
async fn caret(bot: &mut ProjectBot, doc: &str, cursor: u64) {
    let revision = bot.docs[doc].replica.sync.revision();
    bot.client
        .send(&ClientMessage::CursorMove {
            revision,
            cursor,
            anchor: None,
            doc: Some(doc.to_owned()),
        })
        .await;
}

async fn insert(bot: &mut ProjectBot, doc: &str, at: usize, text: &str) {
    let len = bot.docs[doc].replica.doc.len_chars();
    bot.edit(doc, Operation::replace(len, at, at, text).unwrap())
        .await;
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn share_skips_ignored_and_binary_files_and_a_guests_edits_reach_the_disk_byte_exact() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::in_process(Default::default());
    let dir = scratch("share-edit");
    lay_out(
        &dir,
        &[
            (".gitignore", b"target/\n*.log\n"),
            ("run.sh", b"#!/bin/sh\r\necho start\r\n"),
            ("src/main.rs", b"fn main() {}\n"),
            ("target/debug/out.rs", b"built\n"),
            ("debug.log", b"noise\n"),
            ("logo.png", b"\x89PNG\r\n\x1a\n\0\0\0"),
        ],
    );
    std::fs::set_permissions(dir.join("run.sh"), std::fs::Permissions::from_mode(0o750)).unwrap();
    let sharing = Sharing::start(&server, &dir);
    let room = sharing.room.clone();
    server.block_on(async {
        let listing = server.rest().files(&room).await.unwrap().unwrap();
        let paths: Vec<&str> = listing.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, [".gitignore", "run.sh", "src/main.rs"]);

        let mut bot = ProjectBot::join(&server.addr, &room, "client_id=guest").await;
        let doc = bot.doc_at("run.sh").unwrap();
        bot.open(&doc).await;
        caret(&mut bot, &doc, 0).await;
        // Multi-byte text, inside a CRLF file, and at its very end.
        insert(&mut bot, &doc, 11, "# héllo 日本 ✓\r\n").await;
        let end = bot.docs[&doc].replica.doc.len_chars();
        insert(&mut bot, &doc, end, "echo 🎉 done\r\n").await;
        bot.settle(&doc, 0).await;
        let expected = "#!/bin/sh\r\n# héllo 日本 ✓\r\necho start\r\necho 🎉 done\r\n";
        assert_eq!(bot.text(&doc), expected);
        let file = dir.join("run.sh");
        let took = until(&mut bot, WITHIN, |_| read(&file) == expected.as_bytes()).await;
        assert!(
            took.is_some(),
            "the host's file within {WITHIN:?}: {:?}",
            String::from_utf8_lossy(&read(&file))
        );
        eprintln!("a guest's edit reached the host's disk in {took:?}");
        assert_eq!(mode(&file), 0o750, "permissions kept");
        // No temporary file is left beside it.
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.contains("collab-tmp")), "{names:?}");

        // New files on disk: shared unless ignored or binary.
        std::fs::write(dir.join("src/new.rs"), "pub fn new() {}\n").unwrap();
        std::fs::write(dir.join("later.log"), "ignored\n").unwrap();
        std::fs::write(dir.join("data.bin"), b"\0\x01\x02").unwrap();
        std::fs::create_dir_all(dir.join("target/release")).unwrap();
        std::fs::write(dir.join("target/release/gen.rs"), "ignored\n").unwrap();
        let took = until(&mut bot, Duration::from_secs(5), |b| {
            b.doc_at("src/new.rs").is_some()
        })
        .await;
        assert!(took.is_some(), "a file created on disk becomes a document");
        pump(&mut bot, Duration::from_millis(300)).await;
        let listing = server.rest().files(&room).await.unwrap().unwrap();
        let paths: Vec<&str> = listing.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, [".gitignore", "run.sh", "src/main.rs", "src/new.rs"]);
        let text = server.rest().file_text(&room, "src/new.rs").await.unwrap();
        assert_eq!(text.as_deref(), Some(&b"pub fn new() {}\n"[..]));
    });
    let (status, stderr) = sharing.terminate();
    assert!(status.success(), "exit 0 on SIGTERM: {status:?} {stderr}");
    for skipped in ["logo.png", "binary"] {
        assert!(
            stderr.contains(skipped),
            "skipped files are listed: {stderr}"
        );
    }
}

#[test]
fn sed_on_the_hosts_file_reaches_a_typing_guest_and_no_keystroke_is_lost() {
    let server = TestServer::in_process(Default::default());
    let dir = scratch("share-sed");
    lay_out(&dir, &[("notes.txt", b"alpha\nbeta\ngamma\n")]);
    let sharing = Sharing::start(&server, &dir);
    let room = sharing.room.clone();
    let file = dir.join("notes.txt");
    server.block_on(async {
        let mut bot = ProjectBot::join(&server.addr, &room, "client_id=typist").await;
        let doc = bot.doc_at("notes.txt").unwrap();
        caret(&mut bot, &doc, 0).await;
        let typed = "the quick brown fox jumps over the lazy dog";
        let mut sed_at: Option<Instant> = None;
        let mut seen_after: Option<Duration> = None;
        for (i, c) in typed.chars().enumerate() {
            // Typed at the end of the first line, right after "alpha" and
            // what was typed before.
            insert(&mut bot, &doc, 5 + i, &c.to_string()).await;
            pump(&mut bot, Duration::from_millis(15)).await;
            if let (Some(at), None) = (sed_at, seen_after) {
                if bot.text(&doc).contains("BETA") {
                    seen_after = Some(at.elapsed());
                }
            }
            if i == 12 {
                let status = std::process::Command::new("sed")
                    .args(["-i", "s/beta/BETA/"])
                    .arg(&file)
                    .status()
                    .unwrap();
                assert!(status.success());
                sed_at = Some(Instant::now());
            }
        }
        let sed_at = sed_at.unwrap();
        let took = until(&mut bot, WITHIN, |b| b.text(&doc).contains("BETA")).await;
        let sed_took = seen_after.unwrap_or_else(|| sed_at.elapsed());
        assert!(
            took.is_some(),
            "sed's change reaches the guest: {:?}",
            bot.text(&doc)
        );
        eprintln!("sed's change reached the typing guest {sed_took:?} after sed ran");
        assert!(sed_took < WITHIN, "{sed_took:?}");
        bot.settle(&doc, 0).await;
        let expected = format!("alpha{typed}\nBETA\ngamma\n");
        let converged = until(&mut bot, Duration::from_secs(5), |b| {
            b.is_synchronized() && b.text(&doc) == expected && read(&file) == expected.as_bytes()
        })
        .await;
        assert!(
            converged.is_some(),
            "guest {:?}, disk {:?}",
            bot.text(&doc),
            String::from_utf8_lossy(&read(&file))
        );
        bot.assert_revisions_contiguous();
        let room_text = server
            .rest()
            .file_text(&room, "notes.txt")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(room_text, expected.as_bytes());
    });
    drop(sharing);
}

#[test]
fn renames_and_deletes_on_disk_become_tree_changes_and_sigterm_flushes() {
    let server = TestServer::in_process(Default::default());
    let dir = scratch("share-tree");
    lay_out(
        &dir,
        &[
            ("a.txt", b"alpha\n"),
            ("b.txt", b"beta\n"),
            ("c.txt", b"gamma\n"),
        ],
    );
    let sharing = Sharing::start(&server, &dir);
    let room = sharing.room.clone();
    server.block_on(async {
        let mut bot = ProjectBot::join(&server.addr, &room, "client_id=watcher").await;
        let b = bot.doc_at("b.txt").unwrap();
        let c = bot.doc_at("c.txt").unwrap();
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::rename(dir.join("b.txt"), dir.join("sub/b2.txt")).unwrap();
        std::fs::remove_file(dir.join("c.txt")).unwrap();
        let took = until(&mut bot, Duration::from_secs(5), |bot| {
            bot.tree.get(&b).is_some_and(|f| f.path == "sub/b2.txt") && !bot.tree.contains_key(&c)
        })
        .await;
        assert!(took.is_some(), "tree heard: {:?}", bot.tree);
        assert_eq!(
            bot.tree_revision, 2,
            "one rename and one delete, nothing else"
        );

        // The room's renames and deletes reach the disk.
        let a = bot.doc_at("a.txt").unwrap();
        bot.rename(&a, "docs/a.md").await;
        bot.settle_tree(3).await;
        let moved = until(&mut bot, Duration::from_secs(5), |_| {
            dir.join("docs/a.md").exists() && !dir.join("a.txt").exists()
        })
        .await;
        assert!(moved.is_some(), "renamed on disk");
        bot.delete(&b).await;
        bot.settle_tree(4).await;
        let gone = until(&mut bot, Duration::from_secs(5), |_| {
            !dir.join("sub").exists()
        })
        .await;
        assert!(
            gone.is_some(),
            "deleted on disk, and its empty directory too"
        );

        // An edit right before SIGTERM is written before the mirror exits.
        bot.open(&a).await;
        caret(&mut bot, &a, 0).await;
        insert(&mut bot, &a, 0, "last words\n").await;
        bot.settle(&a, 0).await;
        pump(&mut bot, Duration::from_millis(30)).await;
    });
    let (status, stderr) = sharing.terminate();
    assert!(status.success(), "{status:?} {stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.join("docs/a.md")).unwrap(),
        "last words\nalpha\n"
    );
}

#[test]
fn a_share_on_one_instance_and_a_guest_on_another_through_redis() {
    let redis = TestRedis::start();
    let on_redis = || {
        TestServer::in_process(collab_server::Config {
            redis_url: Some(redis.url()),
            ..Default::default()
        })
    };
    let (a, b) = (on_redis(), on_redis());
    let dir = scratch("share-redis");
    lay_out(
        &dir,
        &[("src/lib.rs", b"pub fn f() {}\n"), ("README.md", b"# r\n")],
    );
    let sharing = Sharing::start(&a, &dir);
    let room = sharing.room.clone();
    let file = dir.join("src/lib.rs");
    b.block_on(async {
        let mut bot = ProjectBot::join(&b.addr, &room, "client_id=remote").await;
        let lib = bot.doc_at("src/lib.rs").unwrap();
        bot.open(&lib).await;
        caret(&mut bot, &lib, 0).await;
        insert(&mut bot, &lib, 0, "// via B\n").await;
        bot.settle(&lib, 0).await;
        let seen = until(&mut bot, WITHIN, |_| {
            read(&file) == b"// via B\npub fn f() {}\n"
        })
        .await;
        assert!(
            seen.is_some(),
            "{:?}",
            String::from_utf8_lossy(&read(&file))
        );
        std::fs::write(&file, "// via B\npub fn f() -> u8 { 1 }\n").unwrap();
        let heard = until(&mut bot, Duration::from_secs(5), |b| {
            b.text(&lib) == "// via B\npub fn f() -> u8 { 1 }\n"
        })
        .await;
        assert!(heard.is_some(), "{:?}", bot.text(&lib));
    });
    let (status, stderr) = sharing.terminate();
    assert!(status.success(), "{stderr}");
}

#[test]
fn what_changed_on_both_sides_while_the_mirror_was_offline_is_merged_after() {
    let server = TestServer::in_process(Default::default());
    let proxy = Proxy::in_front_of(&server);
    let dir = scratch("share-offline");
    lay_out(&dir, &[("a.txt", b"one\n"), ("b.txt", b"two\n")]);
    let sharing = Sharing::start_at(&proxy.http(), &dir);
    let room = sharing.room.clone();
    server.block_on(async {
        let mut bot = ProjectBot::join(&server.addr, &room, "client_id=online").await;
        let (a, b) = (bot.doc_at("a.txt").unwrap(), bot.doc_at("b.txt").unwrap());
        bot.open(&b).await;
        // The mirror is in the room (and has b.txt open) before the cut.
        let rest = server.rest();
        let mut joined = false;
        for _ in 0..100 {
            let users = rest.room(&room).await.unwrap().unwrap().users;
            if users.iter().any(|u| u.name.ends_with("(disk)")) {
                joined = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(joined, "the mirror joined");
        pump(&mut bot, Duration::from_millis(300)).await;
        proxy.refuse(true);
        proxy.cut();
        // Offline: the room and the disk both change.
        caret(&mut bot, &b, 0).await;
        insert(&mut bot, &b, 0, "room edit\n").await;
        bot.rename(&a, "moved/a.txt").await;
        bot.settle(&b, 0).await;
        bot.settle_tree(1).await;
        std::fs::write(dir.join("b.txt"), "two\ndisk edit\n").unwrap();
        std::fs::write(dir.join("c.txt"), "new offline\n").unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        proxy.refuse(false);
        let expected = "room edit\ntwo\ndisk edit\n";
        let merged = until(&mut bot, Duration::from_secs(15), |bot| {
            bot.text(&b) == expected
                && read(&dir.join("b.txt")) == expected.as_bytes()
                && bot.doc_at("c.txt").is_some()
                && read(&dir.join("moved/a.txt")) == b"one\n"
                && !dir.join("a.txt").exists()
        })
        .await;
        assert!(
            merged.is_some(),
            "room {:?}, disk {:?}, tree {:?}",
            bot.text(&b),
            String::from_utf8_lossy(&read(&dir.join("b.txt"))),
            bot.tree
        );
    });
    let (status, stderr) = sharing.terminate();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("reconnecting"), "{stderr}");
}

#[test]
fn more_files_than_a_connection_may_hold_open_are_opened_on_demand() {
    let server = TestServer::in_process(Default::default());
    let dir = scratch("share-many");
    let files: Vec<(String, Vec<u8>)> = (0..70)
        .map(|i| (format!("f{i:02}.txt"), format!("file {i}\n").into_bytes()))
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_slice()))
        .collect();
    lay_out(&dir, &refs);
    let sharing = Sharing::start(&server, &dir);
    let room = sharing.room.clone();
    server.block_on(async {
        let mut bot = ProjectBot::join(&server.addr, &room, "client_id=many").await;
        // Files far down the list, which the mirror did not open at first.
        for i in [60, 69, 65] {
            let path = format!("f{i:02}.txt");
            let doc = bot.doc_at(&path).unwrap();
            bot.open(&doc).await;
            caret(&mut bot, &doc, 0).await;
            insert(&mut bot, &doc, 0, "edited ").await;
            bot.settle(&doc, 0).await;
            let file = dir.join(&path);
            let want = format!("edited file {i}\n");
            let seen = until(&mut bot, Duration::from_secs(5), |_| {
                read(&file) == want.as_bytes()
            })
            .await;
            assert!(
                seen.is_some(),
                "{path}: {:?}",
                String::from_utf8_lossy(&read(&file))
            );
        }
        // A change on disk to another file it does not hold open.
        let doc = bot.doc_at("f67.txt").unwrap();
        bot.open(&doc).await;
        std::fs::write(dir.join("f67.txt"), "file 67, changed on disk\n").unwrap();
        let heard = until(&mut bot, Duration::from_secs(5), |b| {
            b.text(&doc) == "file 67, changed on disk\n"
        })
        .await;
        assert!(heard.is_some(), "{:?}", bot.text(&doc));
    });
    let (status, stderr) = sharing.terminate();
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("too_many_open"), "{stderr}");
}

#[test]
fn a_directory_moved_or_made_on_disk_moves_or_adds_its_files() {
    let server = TestServer::in_process(Default::default());
    let dir = scratch("share-dirs");
    lay_out(
        &dir,
        &[
            ("top.txt", b"top\n"),
            ("lib/x.rs", b"x\n"),
            ("lib/y.rs", b"y\n"),
        ],
    );
    let sharing = Sharing::start(&server, &dir);
    let room = sharing.room.clone();
    server.block_on(async {
        let mut bot = ProjectBot::join(&server.addr, &room, "client_id=dirs").await;
        let (x, y) = (
            bot.doc_at("lib/x.rs").unwrap(),
            bot.doc_at("lib/y.rs").unwrap(),
        );
        pump(&mut bot, Duration::from_millis(300)).await;
        std::fs::rename(dir.join("lib"), dir.join("src")).unwrap();
        let moved = until(&mut bot, Duration::from_secs(5), |b| {
            b.tree.get(&x).is_some_and(|f| f.path == "src/x.rs")
                && b.tree.get(&y).is_some_and(|f| f.path == "src/y.rs")
        })
        .await;
        assert!(moved.is_some(), "{:?}", bot.tree);
        assert_eq!(bot.tree_revision, 2, "two renames, the documents kept");
        // A new directory tree with files in it, made at once.
        lay_out(&dir, &[("new/deep/z.rs", b"z\n")]);
        let added = until(&mut bot, Duration::from_secs(5), |b| {
            b.doc_at("new/deep/z.rs").is_some()
        })
        .await;
        assert!(added.is_some(), "{:?}", bot.tree);
        // And a file written later in the moved directory still counts.
        std::fs::write(dir.join("src/x.rs"), "x changed\n").unwrap();
        bot.open(&x).await;
        let heard = until(&mut bot, Duration::from_secs(5), |b| {
            b.text(&x) == "x changed\n"
        })
        .await;
        assert!(heard.is_some(), "{:?}", bot.text(&x));
    });
    drop(sharing);
}

#[test]
fn join_dir_writes_the_files_and_keeps_them_in_sync() {
    let server = TestServer::in_process(Default::default());
    let created = server.block_on(
        server
            .rest()
            .create_project(&[("README.md", "# hi\r\n"), ("src/lib.rs", "pub fn f() {}\n")]),
    );
    let room = created.unwrap().room_id;
    let api = collab::server_api::ServerApi::new(&server.http(), None).unwrap();
    // A directory holding a different file at a room path is refused.
    let taken = scratch("join-taken");
    lay_out(&taken, &[("src/lib.rs", b"mine\n")]);
    let refused = server.block_on(collab::commands::share::join_dir(&api, &room, &taken, "g"));
    let err = format!("{:#}", refused.err().expect("refused"));
    assert!(
        err.contains("src/lib.rs") && err.contains("different"),
        "{err}"
    );
    assert_eq!(std::fs::read(taken.join("src/lib.rs")).unwrap(), b"mine\n");
    let other = scratch("join-other");
    lay_out(&other, &[("notes.txt", b"private\n")]);
    let refused = server.block_on(collab::commands::share::join_dir(&api, &room, &other, "g"));
    let err = format!("{:#}", refused.err().expect("refused"));
    assert!(
        err.contains("notes.txt") && err.contains("does not have"),
        "{err}"
    );

    let dir = scratch("join-dir").join("new");
    server.block_on(async {
        let mirror = collab::commands::share::join_dir(&api, &room, &dir, "guest")
            .await
            .unwrap();
        assert_eq!(read(&dir.join("README.md")), b"# hi\r\n");
        assert_eq!(read(&dir.join("src/lib.rs")), b"pub fn f() {}\n");
        let mut bot = ProjectBot::join(&server.addr, &room, "client_id=host").await;
        let lib = bot.doc_at("src/lib.rs").unwrap();
        bot.open(&lib).await;
        caret(&mut bot, &lib, 0).await;
        insert(&mut bot, &lib, 0, "// from the host\n").await;
        bot.settle(&lib, 0).await;
        let file = dir.join("src/lib.rs");
        let seen = until(&mut bot, WITHIN, |_| {
            read(&file) == b"// from the host\npub fn f() {}\n"
        })
        .await;
        assert!(
            seen.is_some(),
            "{:?}",
            String::from_utf8_lossy(&read(&file))
        );
        // The guest's own tools change the file: the host hears it.
        std::fs::write(&file, "// from the host\npub fn f() { g() }\n").unwrap();
        let heard = until(&mut bot, Duration::from_secs(5), |b| {
            b.text(&lib) == "// from the host\npub fn f() { g() }\n"
        })
        .await;
        assert!(heard.is_some(), "{:?}", bot.text(&lib));
        mirror.finish().await;
    });
}

#[test]
fn cat_and_append_take_a_path_in_a_project() {
    let server = TestServer::in_process(Default::default());
    let text = "fn é() {}\r\nno newline";
    let created = server.block_on(
        server
            .rest()
            .create_project(&[("main.rs", "fn main() {}\n"), ("src/é.rs", text)]),
    );
    let room = created.unwrap().room_id;
    let state = scratch("cat-path");
    let out = collab(&server.http(), &state)
        .args(["cat", &room, "src/é.rs"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, text.as_bytes());
    let out = collab(&server.http(), &state)
        .args(["cat", &room])
        .output()
        .unwrap();
    assert_eq!(
        out.stdout, b"fn main() {}\n",
        "without a path: the main document"
    );
    let out = collab(&server.http(), &state)
        .args(["cat", &room, "nope.rs"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no file \"nope.rs\""));

    let status = collab(&server.http(), &state)
        .args(["append", &room, "--path", "src/é.rs", "\n// ✓"])
        .status()
        .unwrap();
    assert!(status.success());
    let now = server
        .block_on(server.rest().file_text(&room, "src/é.rs"))
        .unwrap();
    assert_eq!(now.unwrap(), format!("{text}\n// ✓").as_bytes());
    let out = collab(&server.http(), &state)
        .args(["append", &room, "--path", "missing.rs", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn watch_shows_a_projects_tree_changes_and_edits_in_any_file() {
    let server = TestServer::in_process(Default::default());
    let created = server.block_on(
        server
            .rest()
            .create_project(&[("a.rs", "a\n"), ("b.rs", "b\n")]),
    );
    let room = created.unwrap().room_id;
    let state = scratch("watch-project");
    let mut child = collab(&server.http(), &state)
        .args(["watch", &room])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let init = lines.next().unwrap().unwrap();
    assert!(
        init.contains("\"tree_revision\"") && init.contains("b.rs"),
        "{init}"
    );
    let mut lines = lines.map(Result::unwrap);
    // Its `opened` for b.rs (not the main document) comes before any edit.
    let opened = lines
        .find(|l| l.contains("\"opened\""))
        .expect("the other file is opened");
    assert!(opened.contains("\"b\\n\""), "{opened}");
    server.block_on(async {
        let mut bot = ProjectBot::join(&server.addr, &room, "client_id=maker").await;
        bot.create("c.rs", "c\n").await;
        bot.settle_tree(1).await;
        // An edit in a file other than the main one is printed too.
        let b = bot.doc_at("b.rs").unwrap();
        bot.open(&b).await;
        insert(&mut bot, &b, 0, "zz").await;
        bot.settle(&b, 0).await;
    });
    let created = lines
        .find(|l| l.contains("file_created"))
        .expect("the tree change is shown");
    assert!(created.contains("c.rs"), "{created}");
    let edit = lines
        .find(|l| l.contains("code_update"))
        .expect("the edit in b.rs is shown");
    assert!(edit.contains("zz"), "{edit}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_new_file_and_a_change_bigger_than_one_message_reach_the_room_in_pieces() {
    let server = TestServer::in_process(collab_server::Config {
        max_message_bytes: 16 * 1024,
        ..Default::default()
    });
    let dir = scratch("share-big");
    lay_out(&dir, &[("a.txt", b"small\n")]);
    let sharing = Sharing::start_with(&server.http(), &dir, &["--max-message-bytes", "16384"]);
    let room = sharing.room.clone();
    server.block_on(async {
        let mut bot = ProjectBot::join(&server.addr, &room, "client_id=big").await;
        let a = bot.doc_at("a.txt").unwrap();
        bot.open(&a).await;
        // A new file six times the limit, and a rewrite of a.txt four times it.
        let big: String = (0..2_000).map(|i| format!("line {i} \"x\"\n")).collect();
        std::fs::write(dir.join("big.txt"), &big).unwrap();
        let rewrite: String = (0..4_000).map(|i| format!("{i}\n")).collect::<String>() + "small\n";
        std::fs::write(dir.join("a.txt"), &rewrite).unwrap();
        let mut big_doc = None;
        let took = until(&mut bot, Duration::from_secs(15), |bot| {
            big_doc = bot.doc_at("big.txt");
            bot.text(&a) == rewrite && big_doc.is_some()
        })
        .await;
        assert!(took.is_some(), "a.txt: {} chars", bot.text(&a).len());
        let big_doc = big_doc.unwrap();
        bot.open(&big_doc).await;
        let filled = until(&mut bot, Duration::from_secs(15), |bot| {
            bot.text(&big_doc) == big
        })
        .await;
        assert!(
            filled.is_some(),
            "big.txt: {} chars",
            bot.text(&big_doc).len()
        );
    });
    let (status, stderr) = sharing.terminate();
    assert!(status.success(), "{stderr}");
    assert!(
        !stderr.contains("reconnecting"),
        "never over the limit: {stderr}"
    );
}

#[test]
fn a_file_deleted_in_the_room_while_its_change_on_disk_was_offline_is_kept_and_shared_again() {
    let server = TestServer::in_process(Default::default());
    let proxy = Proxy::in_front_of(&server);
    let dir = scratch("share-keep");
    lay_out(&dir, &[("a.txt", b"one\n"), ("b.txt", b"b\n")]);
    let sharing = Sharing::start_at(&proxy.http(), &dir);
    let room = sharing.room.clone();
    server.block_on(async {
        let mut bot = ProjectBot::join(&server.addr, &room, "client_id=deleter").await;
        let b = bot.doc_at("b.txt").unwrap();
        let rest = server.rest();
        let mut joined = false;
        for _ in 0..100 {
            let users = rest.room(&room).await.unwrap().unwrap().users;
            if users.iter().any(|u| u.name.ends_with("(disk)")) {
                joined = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(joined, "the mirror joined");
        pump(&mut bot, Duration::from_millis(300)).await;
        proxy.refuse(true);
        proxy.cut();
        // Offline: the host edits b.txt, a colleague deletes it.
        std::fs::write(dir.join("b.txt"), "b important\n").unwrap();
        bot.delete(&b).await;
        bot.settle_tree(1).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        proxy.refuse(false);
        let back = until(&mut bot, Duration::from_secs(15), |bot| {
            bot.doc_at("b.txt").is_some()
        })
        .await;
        assert!(back.is_some(), "shared again: {:?}", bot.tree);
        assert_eq!(read(&dir.join("b.txt")), b"b important\n");
        let nb = bot.doc_at("b.txt").unwrap();
        bot.open(&nb).await;
        assert_eq!(bot.text(&nb), "b important\n");
    });
    let (status, stderr) = sharing.terminate();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("kept on disk"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn a_file_a_colleague_creates_under_a_symbolic_link_or_in_git_is_not_written() {
    let server = TestServer::in_process(Default::default());
    let dir = scratch("share-link");
    let outside = scratch("share-link-outside");
    lay_out(&dir, &[("a.txt", b"a\n")]);
    std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();
    let sharing = Sharing::start(&server, &dir);
    let room = sharing.room.clone();
    server.block_on(async {
        let mut bot = ProjectBot::join(&server.addr, &room, "client_id=linker").await;
        bot.create("link/evil.txt", "evil\n").await;
        bot.create(".git/hooks/post-checkout", "evil\n").await;
        bot.create("fine.txt", "fine\n").await;
        bot.settle_tree(3).await;
        let written = until(&mut bot, Duration::from_secs(5), |_| {
            dir.join("fine.txt").exists()
        })
        .await;
        assert!(written.is_some(), "an ordinary file is written");
        pump(&mut bot, Duration::from_millis(300)).await;
    });
    let (status, stderr) = sharing.terminate();
    assert!(status.success(), "{stderr}");
    assert!(
        !outside.join("evil.txt").exists(),
        "nothing written through the link"
    );
    assert!(!dir.join(".git").exists(), "nothing written in .git");
    assert!(stderr.contains("symbolic link"), "{stderr}");
}
