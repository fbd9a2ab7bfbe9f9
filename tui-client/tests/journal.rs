//! Unacknowledged edits survive the process that typed them: `collab
//! append --delay-ms` is killed with SIGKILL while the server's acks are not
//! reaching it, and the next `collab append` of the room delivers what the
//! journal kept, each character exactly once.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use collab_testkit::{Proxy, TestServer};
use common::{collab, poll, scratch};

/// The local text of the single journal left in `state` for `room`.
fn journaled_text(state: &Path, room: &str) -> Option<String> {
    let dir = state.join("collab/journal").join(room);
    let mut texts: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .collect();
    (texts.len() == 1).then(|| texts.remove(0))
}

#[test]
fn a_killed_append_is_finished_by_the_next_one_exactly_once() {
    let server = TestServer::in_process(Default::default());
    let proxy = Proxy::in_front_of(&server);
    let state = scratch("journal");
    let start = "start:";
    let room = server.blocking().create_room(start);
    let text: String = ('a'..='z').cycle().take(120).collect();

    let mut typist = collab(&proxy.http(), &state)
        .args(["append", "--delay-ms", "25", &room, &text])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("collab append");
    // Some chars reach the server and are acknowledged...
    poll(Duration::from_secs(10), || {
        (server.blocking().code(&room).chars().count() > start.len() + 5).then_some(())
    })
    .expect("the first chars land");
    // ... then the acks stop reaching the typist: what it types piles up
    // unacknowledged (one edit committed, its ack lost; the rest buffered).
    proxy.deafen(true);
    let committed_before = server.blocking().code(&room);
    poll(Duration::from_secs(10), || {
        journaled_text(&state, &room)
            .filter(|t| t.chars().count() > committed_before.chars().count() + 20)
    })
    .expect("the journal grows while acks are missing");
    typist.kill().expect("SIGKILL");
    let _ = typist.wait();
    let journaled = journaled_text(&state, &room).expect("a journal is left");
    assert!(
        journaled.starts_with(&committed_before),
        "{journaled:?} vs {committed_before:?}"
    );
    assert!(text.starts_with(&journaled[start.len()..]));

    // The next append of the room (nothing more to type) sends the rest.
    let out = collab(&server.http(), &state)
        .args(["append", &room, ""])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        server.blocking().code(&room),
        journaled,
        "every char the killed typist typed, each exactly once"
    );
    assert_eq!(journaled_text(&state, &room), None, "the journal is gone");
}
