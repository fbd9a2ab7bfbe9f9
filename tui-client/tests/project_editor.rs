//! The project editor's core against a real `collab-server` (in memory),
//! through the app's own network task: it opens a second file, types in
//! it, and converges with a `ProjectBot` editing the same file; then the
//! bot moves into a third file and the editor, following it, opens that.

use std::time::Duration;

use collab::core::editor::{Editor, Effect};
use collab::journal::{DocEdits, Entry};
use collab::net::{self, NetCommand, NetConfig, NetEvent, NetHandle};
use collab::server_api::ServerApi;
use collab_protocol::{ClientMessage, Operation};
use collab_testkit::{ProjectBot, TestServer};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use tokio::sync::watch;
use tokio::time::{timeout, Instant};

/// The editor and its network task, driven as `app.rs` drives them.
struct Driven {
    ed: Editor,
    net: NetHandle,
    epoch: u64,
    since: watch::Sender<Option<u64>>,
}

impl Driven {
    /// Carries out the editor's effects and handles the network's events
    /// until `done` holds (or 10 s pass: then panics with `what`).
    async fn until(&mut self, what: &str, done: impl Fn(&Editor) -> bool) {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            self.flush();
            if done(&self.ed) {
                return;
            }
            let left = end.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out waiting until {what}");
            if let Ok(Some(event)) =
                timeout(left.min(Duration::from_millis(100)), self.net.events.recv()).await
            {
                match event {
                    NetEvent::Connected { epoch, init } => {
                        self.epoch = epoch;
                        self.ed.on_server(init);
                    }
                    NetEvent::Message { msg, .. } => self.ed.on_server(msg),
                    NetEvent::Disconnected { reason, .. } => panic!("disconnected: {reason}"),
                    NetEvent::Fatal(why) => panic!("fatal: {why}"),
                }
            }
        }
    }

    fn flush(&mut self) {
        for effect in self.ed.take_effects() {
            if let Effect::Send(msg) = effect {
                self.send(msg);
            }
        }
        if let Some(msg) = self.ed.cursor_message(std::time::Instant::now()) {
            self.send(msg);
        }
        let rev = self.ed.main_revision();
        self.since
            .send_if_modified(|s| std::mem::replace(s, rev) != rev);
    }

    fn send(&self, msg: ClientMessage) {
        let _ = self.net.commands.send(NetCommand::Send {
            epoch: self.epoch,
            msg,
        });
    }

    fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            let key = KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
            self.ed.handle_event(&Event::Key(key));
        }
    }

    fn doc_at(&self, path: &str) -> String {
        let files = self.ed.files();
        let file = files.iter().find(|f| f.path == path).expect("the file");
        file.doc.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_in_a_second_file_converges_with_a_project_bot() {
    let server = TestServer::in_process(Default::default());
    let created = server
        .rest()
        .create_project(&[
            ("src/main.rs", "fn main() {}\n"),
            ("src/lib.rs", "pub fn lib() {}\n"),
            ("README.md", "# hi\n"),
        ])
        .await
        .unwrap();
    let room = created.room_id;
    let api = ServerApi::new(&server.http(), None).unwrap();
    let (since, since_rx) = watch::channel(None);
    let cfg = NetConfig {
        api,
        room: room.clone(),
        name: "ed".into(),
        client_id: net::new_client_id(),
        project: true,
        owner_token: None,
    };
    let mut d = Driven {
        ed: Editor::new(&room, "ed", None),
        net: net::spawn(cfg, since_rx),
        epoch: 0,
        since,
    };
    d.until("joined", |ed| ed.is_project() && ed.revision().is_some())
        .await;
    assert_eq!(d.ed.active_path(), Some("src/main.rs"));
    assert_eq!(d.ed.text().to_string(), "fn main() {}\n");

    // The second file: opened, typed in, acknowledged.
    let lib = d.doc_at("src/lib.rs");
    d.ed.open_doc(&lib);
    d.until("src/lib.rs opened", |ed| *ed.text() == "pub fn lib() {}\n")
        .await;
    d.type_text("// hi\n");
    d.until("the edits acknowledged", |ed| !ed.has_unsent())
        .await;

    // A project bot in the same file sees the editor's text and types too.
    let mut bot = ProjectBot::join(&server.addr, &room, "client_id=bot&name=bot").await;
    bot.open(&lib).await;
    assert_eq!(bot.text(&lib), "// hi\npub fn lib() {}\n");
    let len = bot.text(&lib).chars().count();
    bot.edit(&lib, Operation::replace(len, len, len, "// bot\n").unwrap())
        .await;
    d.type_text("more ");
    bot.settle(&lib, 0).await;
    d.until("both edits in the editor", |ed| {
        !ed.has_unsent() && ed.text().to_string().contains("// bot")
    })
    .await;
    // Read until the bot has the editor's last edit too.
    let want = d.ed.text().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while bot.text(&lib) != want {
        assert!(Instant::now() < deadline, "the bot never converged");
        let _ = timeout(Duration::from_millis(200), bot.step()).await;
    }
    assert_eq!(want, "// hi\nmore pub fn lib() {}\n// bot\n");
    // The main document was not touched.
    assert_eq!(
        server
            .rest()
            .file_text(&room, "src/main.rs")
            .await
            .unwrap()
            .unwrap(),
        b"fn main() {}\n"
    );

    // The editor follows the bot into the third file.
    d.until("the bot is known", |ed| !ed.presence().users().is_empty())
        .await;
    d.ed.follow_next();
    assert_eq!(d.ed.following(), Some(bot.user_id.as_str()));
    let readme = d.doc_at("README.md");
    bot.open(&readme).await;
    bot.client
        .send(&ClientMessage::CursorMove {
            revision: bot.docs[&readme].replica.sync.revision(),
            cursor: 2,
            anchor: None,
            doc: Some(readme.clone()),
        })
        .await;
    d.until("following into README.md", |ed| {
        ed.active_path() == Some("README.md") && *ed.text() == "# hi\n"
    })
    .await;
    assert_eq!(d.ed.following(), Some(bot.user_id.as_str()));
}

/// Connects `ed` to `room` as `client_id`, as `app.rs` does (with `since`
/// from its main document, for a resumed editor).
fn drive(server: &TestServer, room: &str, client_id: &str, ed: Editor) -> Driven {
    let api = ServerApi::new(&server.http(), None).unwrap();
    let (since, since_rx) = watch::channel(ed.main_revision());
    let cfg = NetConfig {
        api,
        room: room.to_owned(),
        name: "ed".into(),
        client_id: client_id.to_owned(),
        project: true,
        owner_token: None,
    };
    Driven {
        ed,
        net: net::spawn(cfg, since_rx),
        epoch: 0,
        since,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_is_resumed_by_the_next_process_sent_once_and_its_seqs_continue() {
    let server = TestServer::in_process(Default::default());
    let created = server
        .rest()
        .create_project(&[("src/main.rs", "fn main() {}\n"), ("src/lib.rs", "lib\n")])
        .await
        .unwrap();
    let room = created.room_id;
    let client_id = net::new_client_id();

    // The first process types in src/lib.rs (acknowledged: seqs 1 and 2
    // used there), then in the main document, and dies before sending it.
    let mut first = drive(&server, &room, &client_id, Editor::new(&room, "ed", None));
    first
        .until("joined", |ed| ed.is_project() && ed.revision().is_some())
        .await;
    let lib = first.doc_at("src/lib.rs");
    first.ed.open_doc(&lib);
    first.until("lib opened", |ed| *ed.text() == "lib\n").await;
    first.type_text("a");
    first.until("a acknowledged", |ed| !ed.has_unsent()).await;
    first.type_text("b");
    first.until("b acknowledged", |ed| !ed.has_unsent()).await;
    first.ed.switch_buffer(true);
    assert_eq!(first.ed.active_path(), Some("src/main.rs"));
    first.type_text("// typed\n");
    let docs: Vec<DocEdits> = first
        .ed
        .unacknowledged_docs()
        .into_iter()
        .map(|(doc, unacked)| DocEdits::new(doc, unacked))
        .collect();
    let entry = Entry::for_docs(&room, &client_id, docs, first.ed.next_seqs()).unwrap();
    drop(first);
    // Through the journal's own format.
    let entry: Entry = serde_json::from_slice(&serde_json::to_vec(&entry).unwrap()).unwrap();

    // The next process continues it under the same client id.
    let ed = entry.resume(Editor::new(&room, "ed", None));
    let mut next = drive(&server, &room, &client_id, ed);
    next.until("the resumed edit acknowledged", |ed| {
        ed.is_project() && !ed.has_unsent()
    })
    .await;
    assert_eq!(next.ed.active_path(), Some("src/main.rs"));
    let main_text = |server: &TestServer, room: &str| {
        let (server, room) = (server.rest(), room.to_owned());
        async move {
            server
                .file_text(&room, "src/main.rs")
                .await
                .unwrap()
                .unwrap()
        }
    };
    assert_eq!(main_text(&server, &room).await, b"// typed\nfn main() {}\n");
    // An edit in src/lib.rs, which had nothing unacknowledged, is not
    // taken for a resend of seq 1: it is committed and acknowledged.
    next.ed.open_doc(&lib);
    next.until("lib opened again", |ed| *ed.text() == "ablib\n")
        .await;
    next.type_text("c");
    next.until("c acknowledged", |ed| !ed.has_unsent()).await;
    assert_eq!(
        server
            .rest()
            .file_text(&room, "src/lib.rs")
            .await
            .unwrap()
            .unwrap(),
        b"cablib\n"
    );
    assert_eq!(main_text(&server, &room).await, b"// typed\nfn main() {}\n");
}
