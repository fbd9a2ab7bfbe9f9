//! What only the server's tests share: the binary they run, and two
//! scenarios that run both in memory and through Redis. The harness itself
//! (servers, Redis, clients, bots) is `collab-testkit`.
#![allow(dead_code)]

pub mod session;

use std::time::Duration;

use collab_protocol::{ClientMessage, Operation, Reconnected, Replica, ServerMessage};
use collab_testkit::{Bot, Client, TestServer};
use serde_json::json;

/// The `collab-server` binary under test.
pub const SERVER: &str = env!("CARGO_BIN_EXE_collab-server");

/// The value of `name` in `/metrics` text; panics when it is missing.
pub fn metric(text: &str, name: &str) -> f64 {
    collab_testkit::parse_metric(text, name)
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
}

/// Issue 12, item 1: client `x`'s first connection stalls (it stops reading
/// while a typist's large inserts fill the server's send buffer towards
/// it), `x` reconnects with the same `client_id` and `since` on
/// `new_addr` (replacing the stalled connection, which lives on at the
/// TCP level), and then an edit `x` had sent on the old connection
/// arrives there. Nothing may come of the late copy: `x`'s resend of that
/// seq gets a fresh ack, `x` never receives its own operation as someone
/// else's, and everyone ends with the same text holding `x`'s edit once.
/// `server` answers the REST calls.
pub async fn late_edit_on_a_replaced_connection(
    server: &TestServer,
    old_addr: &str,
    new_addr: &str,
) {
    let room = server.create_room("").await;
    let (mut stalled, _) = Client::join_small_window(old_addr, &room, "client_id=x").await;
    let mut typist = Bot::join(old_addr, &room, "client_id=t").await;
    // About 6 MB towards the stalled connection: more than the server's
    // send buffer (4 MB at most) and its 4 KB receive window hold.
    let chunk = "y".repeat(60_000);
    for _ in 0..100 {
        let len = typist.replica.doc.len_chars();
        typist
            .edit(Operation::replace(len, len, len, &chunk).unwrap())
            .await;
        typist.settle(0).await;
    }
    // `x` typed "X1" on the old connection at revision 0 (seq 1); the
    // message left late. Meanwhile `x` reconnects, replacing it.
    let mut x = Replica::new(0, "");
    let sent = x
        .edit(serde_json::from_str(r#"["X1"]"#).unwrap())
        .unwrap()
        .unwrap();
    let (mut fresh, init) = Client::join(new_addr, &room, "client_id=x&since=0").await;
    let ServerMessage::Init {
        revision,
        code,
        missed,
        user_id: my_id,
        ..
    } = init
    else {
        unreachable!()
    };
    assert!(missed.is_some(), "history since 0");
    let Reconnected::Rebased { send, .. } = x.reconnected(revision, &code, missed.as_deref())
    else {
        panic!("x's replica rebases on the missed operations")
    };
    // Now the late copy arrives on the replaced connection.
    stalled.try_send(&sent).await;
    // Give it time to be (wrongly) committed: the room's revision moves.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        if server.room(&room).await.expect("the room").revision > revision {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for msg in send {
        fresh.send(&msg).await;
    }
    while !x.sync.is_synchronized() {
        let msg = fresh.recv().await;
        if let ServerMessage::CodeUpdate(c) = &msg {
            assert_ne!(
                c.user_id, my_id,
                "x received its own operation as someone else's: {c:?}"
            );
        }
        if let ServerMessage::Ack { revision: r, .. } = &msg {
            assert!(
                *r > x.sync.revision(),
                "the resend was acked at revision {r}, which x already has"
            );
        }
        x.handle(&msg).expect("server messages fit x's replica");
    }
    typist.settle(x.sync.revision()).await;
    let text = server.code(&room).await;
    assert_eq!(text.matches("X1").count(), 1, "x's edit once");
    assert_eq!(x.text(), text, "x's replica");
    assert_eq!(typist.replica.text(), text, "the typist's replica");
    drop(stalled);
}

/// Issue 12, item 4: one client alternately inserts and deletes a block of
/// `block` chars (each frame under the 1 MiB message cap, the document
/// staying one char long), `rounds` times, while the server's resident
/// memory is sampled. Returns the largest sample, in KiB.
pub async fn insert_delete_run(server: &TestServer, block: usize, rounds: usize) -> u64 {
    let rss = || server.rss_kib().expect("the server runs");
    let room = server.create_room("x").await;
    let (mut c, _) = Client::join(&server.addr, &room, "client_id=big").await;
    let text = "y".repeat(block);
    let insert: Operation = serde_json::from_value(json!([1, text])).unwrap();
    let delete: Operation = serde_json::from_value(json!([1, -(block as i64)])).unwrap();
    let mut peak = rss();
    let mut seq = 0;
    for round in 0..rounds {
        for op in [&insert, &delete] {
            seq += 1;
            c.send(&ClientMessage::CodeUpdate {
                revision: seq - 1,
                seq,
                operation: op.clone(),
                doc: None,
            })
            .await;
            assert_eq!(
                c.recv_doc().await,
                ServerMessage::Ack {
                    revision: seq,
                    seq,
                    doc: None
                }
            );
        }
        if round % 10 == 0 {
            peak = peak.max(rss());
        }
    }
    assert_eq!(server.code(&room).await, "x");
    peak.max(rss())
}
