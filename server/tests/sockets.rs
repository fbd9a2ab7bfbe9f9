//! The wire protocol against a real server: exact JSON of each message,
//! presence, de-duplication of resent operations, and every bad input with its
//! error and close code, leaving the document unchanged.

mod common;

use collab_protocol::rest::CreatedRoom;
use collab_protocol::{ClientMessage, Operation, ServerMessage};
use collab_testkit::{Client, End, TestServer, STEP};
use common::SERVER;
use serde_json::{json, Value};

fn op(json: &str) -> Operation {
    serde_json::from_str(json).unwrap()
}

/// `GET url`'s JSON, as sent.
async fn get_json(url: String) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn rest_creates_and_describes_rooms() {
    let server = TestServer::process(SERVER, &[], &[]);
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/rooms", server.http()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: CreatedRoom = resp.json().await.unwrap();
    let id = body.room_id.as_str();
    assert!(
        id.len() >= 16 && id.chars().all(|c| c.is_ascii_alphanumeric()),
        "{id}"
    );
    assert_eq!(body.ws_url, format!("ws://{}/ws/{id}", server.addr));
    assert_eq!(body.join_url, format!("http://{}/rooms/{id}", server.addr));

    // The exact JSON of each answer (the wire format, so read raw).
    let room = get_json(format!("{}/rooms/{id}", server.http())).await;
    assert_eq!(
        room,
        json!({"room_id": id, "revision": 0, "language": "plaintext", "code": "", "users": []})
    );
    let exists = get_json(format!("{}/rooms/{id}/exists", server.http())).await;
    assert_eq!(exists, json!({"exists": true, "room_id": id}));
    let missing = get_json(format!("{}/rooms/nope/exists", server.http())).await;
    assert_eq!(missing, json!({"exists": false, "room_id": "nope"}));
    assert!(server.room("nope").await.is_none());

    let health = get_json(format!("{}/health", server.http())).await;
    assert_eq!(health, json!({"status": "ok", "store": "memory"}));

    let bad = http
        .post(format!("{}/rooms", server.http()))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn init_edits_acks_and_presence_have_the_documented_shape() {
    let server = TestServer::process(SERVER, &[], &[]);
    let created = server.create_room_answer("héllo").await;
    let room = created.room_id.clone();

    let (mut ada, init) = Client::join(&server.addr, &room, "name=ada&client_id=ada-1").await;
    let ServerMessage::Init {
        user_id: ada_id,
        color: ada_color,
        ..
    } = &init
    else {
        unreachable!()
    };
    let init_json = serde_json::to_value(&init).unwrap();
    assert_eq!(
        init_json,
        json!({"type": "init", "room_id": room, "user_id": ada_id, "name": "ada", "color": ada_color,
               "revision": 0, "code": "héllo", "language": "rust", "users": [],
               "read_only_id": created.read_only_id, "chat": []})
    );
    assert!(ada_color.starts_with('#') && ada_color.len() == 7);

    let (mut bob, init) = Client::join(&server.addr, &room, "name=bob&client_id=bob-1").await;
    let ServerMessage::Init {
        user_id: bob_id,
        color: bob_color,
        users,
        ..
    } = init
    else {
        unreachable!()
    };
    assert_ne!(&bob_color, ada_color, "colors are distinct");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].user_id, *ada_id);
    assert_eq!(
        ada.recv_json().await,
        json!({"type": "user_joined", "user": {"user_id": bob_id, "name": "bob", "color": bob_color, "cursor": null, "anchor": null}})
    );

    ada.send_text(r#"{"type":"code_update","revision":0,"seq":1,"operation":[5,"!"]}"#)
        .await;
    assert_eq!(
        ada.recv_json().await,
        json!({"type": "ack", "revision": 1, "seq": 1})
    );
    assert_eq!(
        bob.recv_json().await,
        json!({"type": "code_update", "revision": 1, "operation": [5, "!"], "user_id": ada_id})
    );

    // A caret at revision 0 is brought to revision 1 before it is fanned out.
    bob.send_text(r#"{"type":"cursor_move","revision":0,"cursor":5,"anchor":1}"#)
        .await;
    assert_eq!(
        ada.recv_json().await,
        json!({"type": "cursor_move", "user_id": bob_id, "revision": 1, "cursor": 6, "anchor": 1})
    );

    bob.send_text(r#"{"type":"ping"}"#).await;
    assert_eq!(bob.recv_json().await, json!({"type": "pong"}));

    drop(bob);
    assert_eq!(
        ada.recv_json().await,
        json!({"type": "user_left", "user_id": bob_id})
    );
    assert_eq!(server.code(&room).await, "héllo!");
}

#[tokio::test]
async fn a_resent_operation_is_applied_once() {
    let server = TestServer::process(SERVER, &[], &[]);
    let room = server.create_room("ab").await;
    let edit = ClientMessage::CodeUpdate {
        revision: 0,
        seq: 1,
        operation: op(r#"[2, "c"]"#),
        doc: None,
    };

    let (mut first, init) = Client::join(&server.addr, &room, "client_id=resender").await;
    let ServerMessage::Init { user_id, .. } = init else {
        unreachable!()
    };
    first.send(&edit).await;
    assert_eq!(
        first.recv_doc().await,
        ServerMessage::Ack {
            revision: 1,
            seq: 1,
            doc: None
        }
    );
    drop(first);

    // The same client comes back, unsure whether its edit landed, and resends it.
    let (mut again, init) = Client::join(&server.addr, &room, "client_id=resender&since=0").await;
    let ServerMessage::Init {
        user_id: again_id,
        revision,
        code,
        missed,
        ..
    } = init
    else {
        unreachable!()
    };
    assert_eq!(again_id, user_id, "user_id is stable for a client_id");
    assert_eq!((revision, code.as_str()), (1, "abc"));
    let missed = missed.expect("history since 0 is kept");
    assert_eq!(missed.len(), 1);
    assert_eq!(missed[0].seq, Some(1), "own operations carry their seq");
    again.send(&edit).await;
    assert_eq!(
        again.recv_doc().await,
        ServerMessage::Ack {
            revision: 1,
            seq: 1,
            doc: None
        }
    );
    again.send(&ClientMessage::Ping).await;
    assert_eq!(again.recv_doc().await, ServerMessage::Pong);
    assert_eq!(server.code(&room).await, "abc");
    assert_eq!(server.room(&room).await.unwrap().revision, 1);
}

#[tokio::test]
async fn late_edits_are_transformed_and_ties_put_the_later_commit_first() {
    let server = TestServer::process(SERVER, &[], &[]);
    let room = server.create_room("xy").await;
    let (mut a, _) = Client::join(&server.addr, &room, "client_id=a").await;
    let (mut b, init) = Client::join(&server.addr, &room, "client_id=b").await;
    let ServerMessage::Init { user_id: b_id, .. } = init else {
        unreachable!()
    };
    a.send(&ClientMessage::CodeUpdate {
        revision: 0,
        seq: 1,
        operation: op(r#"[1, "A", 1]"#),
        doc: None,
    })
    .await;
    assert_eq!(
        a.recv_doc().await,
        ServerMessage::Ack {
            revision: 1,
            seq: 1,
            doc: None
        }
    );
    // b has not seen revision 1 and inserts at the same offset.
    b.send(&ClientMessage::CodeUpdate {
        revision: 0,
        seq: 1,
        operation: op(r#"[1, "B", 1]"#),
        doc: None,
    })
    .await;
    assert!(matches!(b.recv_doc().await, ServerMessage::CodeUpdate(c) if c.revision == 1));
    assert_eq!(
        b.recv_doc().await,
        ServerMessage::Ack {
            revision: 2,
            seq: 1,
            doc: None
        }
    );
    assert_eq!(server.code(&room).await, "xBAy");
    assert_eq!(
        a.recv_doc().await,
        ServerMessage::CodeUpdate(collab_protocol::CommittedOp {
            revision: 2,
            operation: op(r#"[1, "B", 2]"#),
            user_id: b_id,
            seq: None,
            doc: None
        })
    );
}

/// Sends `bad` on a fresh connection; expects an `error` with `code`, then a
/// close with `close`; the room must be as before once the refused user has
/// left (the client sees the close a moment before the server drops its
/// presence, so the comparison waits for that).
async fn rejects(server: &TestServer, room: &str, bad: &str, code: &str, close: u16) {
    let before = server.room(room).await.unwrap();
    let (mut c, init) = Client::join(&server.addr, room, "").await;
    let ServerMessage::Init { user_id, .. } = init else {
        unreachable!("join returns init")
    };
    c.send_text(bad).await;
    let (seen, end) = c.until_end().await;
    let errors: Vec<_> = seen
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Error { code, message, .. } => Some((code.clone(), message.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 1, "one error for {bad}: {seen:?}");
    assert_eq!(errors[0].0, code, "error code for {bad}: {}", errors[0].1);
    assert!(!errors[0].1.is_empty());
    assert_eq!(end, End::Closed(close), "close code for {bad}");
    let deadline = tokio::time::Instant::now() + STEP;
    let after = loop {
        let now = server.room(room).await.unwrap();
        let present = now.users.iter().any(|u| u.user_id == user_id);
        if !present || tokio::time::Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(after, before, "{bad} changed the room");
}

#[tokio::test]
async fn every_bad_input_gets_its_error_and_close_code_and_changes_nothing() {
    let server = TestServer::process(SERVER, &["--max-message-bytes", "4096"], &[]);
    let room = server.create_room("hello").await;
    let (mut writer, _) = Client::join(&server.addr, &room, "client_id=w").await;
    writer
        .send(&ClientMessage::CodeUpdate {
            revision: 0,
            seq: 1,
            operation: op(r#"[5, "!"]"#),
            doc: None,
        })
        .await;
    assert_eq!(
        writer.recv_doc().await,
        ServerMessage::Ack {
            revision: 1,
            seq: 1,
            doc: None
        }
    );

    // Each on its own connection: an error, then the close code.
    let cases = [
        ("not json", "malformed", 4002),
        (r#"{"type":"dance"}"#, "malformed", 4002),
        (r#"{"revision":1}"#, "malformed", 4002),
        (
            r#"{"type":"code_update","revision":1,"operation":[6,"x"]}"#,
            "malformed",
            4002,
        ),
        (
            r#"{"type":"code_update","revision":1,"seq":1,"operation":[0]}"#,
            "malformed",
            4002,
        ),
        (
            r#"{"type":"code_update","revision":1,"seq":1,"operation":[6,""]}"#,
            "malformed",
            4002,
        ),
        (
            r#"{"type":"code_update","revision":1,"seq":1,"operation":"x"}"#,
            "malformed",
            4002,
        ),
        (
            r#"{"type":"code_update","revision":"1","seq":1,"operation":[6]}"#,
            "malformed",
            4002,
        ),
        // Operations that do not fit their revision's document.
        (
            r#"{"type":"code_update","revision":1,"seq":1,"operation":[5,"x"]}"#,
            "invalid_operation",
            4002,
        ),
        (
            r#"{"type":"code_update","revision":0,"seq":1,"operation":[6,"x"]}"#,
            "invalid_operation",
            4002,
        ),
        (
            r#"{"type":"code_update","revision":1,"seq":1,"operation":[-7]}"#,
            "invalid_operation",
            4002,
        ),
        // Revisions in the future.
        (
            r#"{"type":"code_update","revision":9,"seq":1,"operation":[6,"x"]}"#,
            "future_revision",
            4002,
        ),
        (
            r#"{"type":"cursor_move","revision":9,"cursor":0}"#,
            "future_revision",
            4002,
        ),
    ];
    for (bad, code, close) in cases {
        rejects(&server, &room, bad, code, close).await;
    }
    // Too large for the configured limit.
    let huge = format!(
        r#"{{"type":"code_update","revision":1,"seq":1,"operation":[6,"{}"]}}"#,
        "x".repeat(8192)
    );
    let before = server.room(&room).await.unwrap();
    let (mut c, _) = Client::join(&server.addr, &room, "").await;
    c.send_text(&huge).await;
    let (_, end) = c.until_end().await;
    assert_eq!(end, End::Closed(1009));
    assert_eq!(server.room(&room).await.unwrap(), before);

    // The well-behaved client was never disturbed.
    writer
        .send(&ClientMessage::CodeUpdate {
            revision: 1,
            seq: 2,
            operation: op(r#"[6, "?"]"#),
            doc: None,
        })
        .await;
    assert_eq!(
        writer.recv_doc().await,
        ServerMessage::Ack {
            revision: 2,
            seq: 2,
            doc: None
        }
    );
    assert_eq!(server.code(&room).await, "hello!?");
}

#[tokio::test]
async fn unknown_rooms_and_bad_query_parameters_are_refused() {
    let server = TestServer::process(SERVER, &[], &[]);
    let room = server.create_room("").await;
    for (r, query, code, close) in [
        ("doesNotExist", "", "room_not_found", 4004),
        ("bad%20id", "", "room_not_found", 4004),
        (room.as_str(), "client_id=no%20spaces", "malformed", 4002),
        (room.as_str(), "since=abc", "malformed", 4002),
        (room.as_str(), "role=boss", "malformed", 4002),
        (room.as_str(), "since=5", "future_revision", 4002),
    ] {
        let mut c = Client::connect(&server.addr, r, query).await;
        c.expect_refused_at_door(code, close, &format!("{r}?{query}"))
            .await;
    }
}

#[tokio::test]
async fn idle_rooms_expire_after_their_ttl() {
    let server = TestServer::process(SERVER, &["--room-ttl-seconds", "1"], &[]);
    let idle = server.create_room("bye").await;
    let busy = server.create_room("stay").await;
    let (_present, _) = Client::join(&server.addr, &busy, "").await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert!(server.room(&idle).await.is_none(), "idle room expired");
    assert_eq!(server.code(&busy).await, "stay", "a room with a user stays");
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_not_buffered() {
    let server = TestServer::process(
        SERVER,
        &[
            "--outgoing-queue",
            "16",
            "--max-document-chars",
            "100000000",
            "--max-doc-bytes",
            "100000000",
            "--max-room-bytes",
            "100000000",
        ],
        &[],
    );
    let room = server.create_room("").await;
    let (mut sleeper, _) = Client::join(&server.addr, &room, "client_id=sleeper").await;
    let (mut typist, _) = Client::join(&server.addr, &room, "client_id=typist").await;
    // Large inserts fill the socket buffers quickly; then the queue overflows.
    let chunk = "x".repeat(60_000);
    let mut len = 0;
    for seq in 1..=200u64 {
        let operation = Operation::replace(len, len, len, &chunk).unwrap();
        typist
            .send(&ClientMessage::CodeUpdate {
                revision: seq - 1,
                seq,
                operation,
                doc: None,
            })
            .await;
        assert_eq!(
            typist.recv_doc().await,
            ServerMessage::Ack {
                revision: seq,
                seq,
                doc: None
            }
        );
        len += chunk.len();
    }
    let (_, end) = sleeper.until_end().await;
    assert_eq!(
        end,
        End::Closed(4008),
        "the lagging client is closed with 4008"
    );
}

#[tokio::test]
async fn a_new_connection_with_the_same_client_id_replaces_the_old_one() {
    let server = TestServer::process(SERVER, &[], &[]);
    let room = server.create_room("").await;
    let (mut old, _) = Client::join(&server.addr, &room, "client_id=same").await;
    let (mut new, _) = Client::join(&server.addr, &room, "client_id=same").await;
    old.expect_refusal("replaced", 4005, "the replaced connection")
        .await;
    new.send(&ClientMessage::CodeUpdate {
        revision: 0,
        seq: 1,
        operation: op(r#"["x"]"#),
        doc: None,
    })
    .await;
    assert_eq!(
        new.recv_doc().await,
        ServerMessage::Ack {
            revision: 1,
            seq: 1,
            doc: None
        }
    );
}

#[tokio::test]
async fn a_late_edit_on_a_replaced_connection_is_not_applied() {
    let server = TestServer::process(SERVER, &["--max-document-chars", "100000000"], &[]);
    common::late_edit_on_a_replaced_connection(&server, &server.addr, &server.addr).await;
}

#[tokio::test]
async fn history_has_a_byte_budget() {
    // 300 inserts of 500,000 chars (150 MB in all) through a room whose
    // history may hold 4 MB: memory stays bounded whatever the edits' sizes.
    let server = TestServer::process(SERVER, &["--history-bytes", "4000000"], &[]);
    let peak = common::insert_delete_run(&server, 500_000, 300).await;
    assert!(
        peak < 80 * 1024,
        "resident memory reached {} MiB",
        peak / 1024
    );
}
