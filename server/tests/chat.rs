//! Chat and typing over real sockets: the documented JSON (golden), the
//! limits, and on two instances sharing a real `redis-server`: every chat
//! message reaches everyone once and in one order, a late joiner reads the
//! conversation, and the chat is kept in Redis with the room's TTL.

mod common;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use collab_protocol::ServerMessage;
use collab_testkit::{Client, TestRedis, TestServer};
use common::SERVER;
use redis::Commands;
use serde_json::{json, Value};

/// The next message of type `kind`, skipping presence, carets and typing.
async fn next_of(client: &mut Client, kind: &str) -> Value {
    loop {
        let msg = client.recv_json().await;
        if msg["type"] == kind {
            return msg;
        }
        let skippable = ["user_joined", "user_left", "cursor_move", "typing"];
        assert!(
            skippable.contains(&msg["type"].as_str().unwrap_or("")),
            "waiting for {kind}, got {msg}"
        );
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn user_id(init: &ServerMessage) -> String {
    let ServerMessage::Init { user_id, .. } = init else {
        unreachable!()
    };
    user_id.clone()
}

#[tokio::test]
async fn chat_has_the_documented_shape_and_limits() {
    let server = TestServer::process(SERVER, &[], &[]);
    let created = server.create_room_answer("one\ntwo\nthree\n").await;
    let room = created.room_id.clone();
    let (mut ada, init) = Client::join(&server.addr, &room, "name=ada&client_id=ada").await;
    let ada_id = user_id(&init);
    let (mut bob, _) = Client::join(
        &server.addr,
        &room,
        "name=bob&client_id=bob&project=1&typing=1",
    )
    .await;
    // A viewer (the read-only link) may chat too.
    let viewer_id = created.read_only_id.clone().expect("a read-only id");
    let (mut viewer, _) = Client::join(&server.addr, &viewer_id, "name=vic").await;

    let before = now_ms();
    ada.send_text(r#"{"type":"chat","text":"look at line 2","line":2}"#)
        .await;
    let to_ada = next_of(&mut ada, "chat").await;
    let to_bob = next_of(&mut bob, "chat").await;
    let at = to_ada["at"].as_u64().expect("at in ms");
    assert!(
        at >= before && at <= now_ms(),
        "at {at} is the server's clock"
    );
    assert_eq!(
        to_ada,
        json!({"type": "chat", "seq": 1, "user_id": ada_id, "name": "ada",
               "text": "look at line 2", "at": at, "path": "main.rs", "line": 2})
    );
    assert_eq!(
        to_bob,
        json!({"type": "chat", "seq": 1, "user_id": ada_id, "name": "ada",
               "text": "look at line 2", "at": at, "path": "main.rs", "line": 2, "doc": "main"}),
        "a project client also gets the document's id"
    );
    assert_eq!(next_of(&mut viewer, "chat").await["seq"], 1);

    viewer.send_text(r#"{"type":"chat","text":"nice"}"#).await;
    let from_viewer = next_of(&mut ada, "chat").await;
    assert_eq!(
        (from_viewer["seq"].as_u64(), from_viewer["name"].as_str()),
        (Some(2), Some("vic"))
    );
    assert!(from_viewer.get("line").is_none() && from_viewer.get("path").is_none());
    assert_eq!(next_of(&mut bob, "chat").await, from_viewer);

    // Refusals keep the connection open and reach nobody else.
    for (bad, code) in [
        (json!({"type": "chat", "text": " \n "}), "bad_chat"),
        (
            json!({"type": "chat", "text": "x".repeat(2001)}),
            "bad_chat",
        ),
        (json!({"type": "chat", "text": "hm", "line": 0}), "bad_chat"),
        (
            json!({"type": "chat", "text": "hm", "doc": "nope", "line": 1}),
            "document_not_found",
        ),
    ] {
        bob.send_text(&bad.to_string()).await;
        let error = next_of(&mut bob, "error").await;
        assert_eq!(error["code"], code, "{bad}: {error}");
        assert!(!error["message"].as_str().unwrap().is_empty());
    }
    // Five at once, then one a second.
    for i in 0..6 {
        bob.send_text(&json!({"type": "chat", "text": format!("m{i}")}).to_string())
            .await;
    }
    let mut seqs = Vec::new();
    for _ in 0..5 {
        seqs.push(next_of(&mut bob, "chat").await["seq"].as_u64().unwrap());
    }
    assert_eq!(seqs, [3, 4, 5, 6, 7]);
    assert_eq!(
        next_of(&mut bob, "error").await["code"],
        "chat_rate_limited"
    );
    bob.send_text(r#"{"type":"ping"}"#).await;
    assert_eq!(bob.recv_json().await, json!({"type": "pong"}), "still open");

    // A late joiner reads the conversation, oldest first.
    let (_, init) = Client::join(&server.addr, &room, "name=cy").await;
    let init = serde_json::to_value(&init).unwrap();
    let texts: Vec<&str> = init["chat"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["look at line 2", "nice", "m0", "m1", "m2", "m3", "m4"]
    );
    assert_eq!(
        init["chat"][0],
        to_ada
            .as_object()
            .map(|m| {
                let mut m = m.clone();
                m.remove("type");
                Value::Object(m)
            })
            .unwrap()
    );
}

#[tokio::test]
async fn typing_reaches_only_the_clients_that_asked() {
    let server = TestServer::process(SERVER, &[], &[]);
    let room = server.create_room("abc").await;
    let (mut ada, init) = Client::join(&server.addr, &room, "name=ada&client_id=ada").await;
    let ada_id = user_id(&init);
    let (mut bob, _) = Client::join(&server.addr, &room, "name=bob&typing=1").await;
    // A client written before typing existed: asks nothing, hears nothing.
    let (mut old, _) = Client::join(&server.addr, &room, "name=old").await;
    let _ = next_of(&mut ada, "user_joined").await;

    ada.send_text(r#"{"type":"typing"}"#).await;
    assert_eq!(
        next_of(&mut bob, "typing").await,
        json!({"type": "typing", "user_id": ada_id, "chat": true})
    );
    ada.send_text(r#"{"type":"code_update","revision":0,"seq":1,"operation":[3,"!"]}"#)
        .await;
    assert_eq!(next_of(&mut bob, "code_update").await["revision"], 1);
    assert_eq!(
        next_of(&mut bob, "typing").await,
        json!({"type": "typing", "user_id": ada_id, "editing": true})
    );
    // The old client hears the edit, then its pong: nothing in between.
    assert_eq!(old.recv_json().await["type"], "code_update");
    old.send_text(r#"{"type":"ping"}"#).await;
    assert_eq!(old.recv_json().await, json!({"type": "pong"}));

    let mut bad = Client::connect(&server.addr, &room, "typing=yes").await;
    bad.expect_refused_at_door("malformed", 4002, "typing=yes")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_through_two_instances_is_once_and_in_one_order_and_kept_in_redis() {
    let redis = TestRedis::start();
    let a = TestServer::on_redis(SERVER, &redis, &[]);
    let b = TestServer::on_redis(SERVER, &redis, &[]);
    let room = a.create_room("fn main() {}\n").await;
    let mut clients = Vec::new();
    for (i, server) in [&a, &b, &a, &b].into_iter().enumerate() {
        let query = format!("name=u{i}&client_id=c{i}");
        clients.push(Client::join(&server.addr, &room, &query).await.0);
    }
    // Everyone says five things at once, on both instances.
    for round in 0..5 {
        for (i, c) in clients.iter_mut().enumerate() {
            let text = json!({"type": "chat", "text": format!("u{i} #{round}")});
            c.send_text(&text.to_string()).await;
        }
    }
    let mut heard: Vec<Vec<(u64, String)>> = Vec::new();
    for c in &mut clients {
        let mut got = Vec::new();
        while got.len() < 20 {
            let m = next_of(c, "chat").await;
            got.push((
                m["seq"].as_u64().unwrap(),
                m["text"].as_str().unwrap().to_owned(),
            ));
        }
        // Nothing more: each message came once.
        while let Some(Ok(msg)) = c.next(Duration::from_millis(300)).await {
            assert!(
                !matches!(msg, ServerMessage::Chat(_)),
                "a message twice: {msg:?}"
            );
        }
        heard.push(got);
    }
    let seqs: Vec<u64> = heard[0].iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>(), "numbered in order");
    for (i, h) in heard.iter().enumerate() {
        assert_eq!(h, &heard[0], "client {i} heard the one order");
    }
    let mut per_author: HashMap<&str, Vec<&str>> = HashMap::new();
    for (_, text) in &heard[0] {
        let (author, _) = text.split_once(' ').unwrap();
        per_author.entry(author).or_default().push(text);
    }
    for (author, said) in per_author {
        let expected: Vec<String> = (0..5).map(|r| format!("{author} #{r}")).collect();
        assert_eq!(said, expected, "{author}'s messages in the order written");
    }

    // A late joiner on either instance reads the same conversation.
    for server in [&a, &b] {
        let (_, init) = Client::join(&server.addr, &room, "name=late").await;
        let ServerMessage::Init { chat, .. } = init else {
            unreachable!()
        };
        let got: Vec<(u64, String)> = chat.into_iter().map(|m| (m.seq, m.text)).collect();
        assert_eq!(got, heard[0]);
    }

    // Kept in Redis with the room, expiring with it.
    let mut conn = redis.conn();
    let key = format!("collab:{{{room}}}:chat");
    let kept: Vec<String> = conn.lrange(&key, 0, -1).unwrap();
    assert_eq!(kept.len(), 20);
    let ttl: i64 = conn.pttl(&key).unwrap();
    assert!(ttl > 0, "the chat has the room's TTL ({ttl})");
}

/// Pub/sub is at most once: a chat message whose event every instance
/// missed (kept in Redis, never published) still reaches everyone, through
/// the rooms' periodic check, which learns of it from the chat number read
/// with the tree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_message_whose_event_was_lost_arrives_through_the_periodic_check() {
    let redis = TestRedis::start();
    let a = TestServer::on_redis(SERVER, &redis, &[]);
    let b = TestServer::on_redis(SERVER, &redis, &[]);
    let room = a.create_room("").await;
    let (mut on_a, _) = Client::join(&a.addr, &room, "name=ann&client_id=ca").await;
    let (mut on_b, _) = Client::join(&b.addr, &room, "name=bob&client_id=cb").await;
    on_a.send_text(&json!({"type": "chat", "text": "published"}).to_string())
        .await;
    for c in [&mut on_a, &mut on_b] {
        assert_eq!(next_of(c, "chat").await["seq"], 1);
    }

    // The second message as CHAT_LUA keeps it, without its PUBLISH.
    let mut conn = redis.conn();
    let (meta, chat) = (
        format!("collab:{{{room}}}:meta"),
        format!("collab:{{{room}}}:chat"),
    );
    let first: String = conn.lindex(&chat, 0).unwrap();
    let second = first
        .replacen(r#"{"seq":1,"#, r#"{"seq":2,"#, 1)
        .replace("published", "never published");
    assert_ne!(first, second);
    let seq: u64 = conn.hincr(&meta, "chat_seq", 1).unwrap();
    assert_eq!(seq, 2);
    let _: () = conn.rpush(&chat, &second).unwrap();

    // Both instances check every 2 s.
    for c in [&mut on_a, &mut on_b] {
        let m = next_of(c, "chat").await;
        assert_eq!(
            (m["seq"].as_u64(), m["text"].as_str()),
            (Some(2), Some("never published"))
        );
    }
}
