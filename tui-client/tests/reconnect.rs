//! Reconnecting for real: `collab append --delay-ms` types through a TCP
//! proxy that swallows the server's answers (so acks are lost), then cuts
//! every connection and refuses new ones for a while (so typing goes on
//! offline). After the proxy lets it back in, the client resyncs with
//! `since` and its client id: every char must land exactly once.

mod common;

use std::time::{Duration, Instant};

use collab_testkit::{Proxy, TestServer};
use common::{collab, poll, scratch};

#[test]
fn edits_survive_a_cut_connection_exactly_once() {
    let server = TestServer::in_process(Default::default());
    let proxy = Proxy::in_front_of(&server);
    let dir = scratch("reconnect");
    let room = server.blocking().create_room("<");
    let text = "0123456789abcdefghijklmnopqrstuvwxyz";
    let mut child = collab(&proxy.http(), &dir)
        .args(["append", &room, text, "--delay-ms", "40"])
        .spawn()
        .unwrap();

    // Let some chars through normally.
    let revision = |server: &TestServer| server.blocking().room(&room).expect("the room").revision;
    poll(Duration::from_secs(10), || {
        (revision(&server) >= 3).then_some(())
    })
    .expect("typing started");
    // The server keeps committing, the client hears no acks.
    proxy.deafen(true);
    let before = revision(&server);
    poll(Duration::from_secs(10), || {
        (revision(&server) > before).then_some(())
    })
    .expect("an edit was committed whose ack is lost");
    proxy.refuse(true);
    proxy.cut();
    proxy.deafen(false);
    let cut_at = Instant::now();
    // Offline for a while: the first retry (after ~1 s) is refused.
    std::thread::sleep(Duration::from_millis(1500));
    let offline_code = server.blocking().code(&room);
    assert!(
        offline_code.len() < 1 + text.len(),
        "still typing when cut: {offline_code:?}"
    );
    proxy.refuse(false);

    let status = poll(Duration::from_secs(30), || child.try_wait().unwrap())
        .expect("append finishes after reconnecting");
    assert!(status.success());
    assert!(cut_at.elapsed() >= Duration::from_millis(1500));
    assert_eq!(
        server.blocking().code(&room),
        format!("<{text}"),
        "every char exactly once"
    );
}
