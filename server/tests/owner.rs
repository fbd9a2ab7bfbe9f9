//! The room owner's controls over real sockets: the owner token `POST
//! /rooms` answers once, removing a participant (closed with 4006, refused
//! when it comes back) and ending a room (everyone closed with 4007, the
//! data gone), in memory and on two instances sharing a real
//! `redis-server` (the keys are gone from Redis).

mod common;

use std::time::Duration;

use collab_protocol::ServerMessage;
use collab_testkit::{Client, End, TestRedis, TestServer};
use common::SERVER;
use serde_json::{json, Value};

const HEADER: &str = "Collab-Owner-Token";

/// `DELETE {path}` with the owner token (when given): status and body.
async fn delete(server: &TestServer, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().delete(format!("{}{path}", server.http()));
    if let Some(t) = token {
        req = req.header(HEADER, t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `PUT /rooms/{id}/read_only` with the owner token: status and body.
async fn set_read_only(
    server: &TestServer,
    room: &str,
    token: &str,
    read_only: bool,
) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .put(format!("{}/rooms/{room}/read_only", server.http()))
        .header(HEADER, token)
        .json(&json!({ "read_only": read_only }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The next `links` message: (room id, read-only id).
async fn next_links(client: &mut Client) -> (String, Option<String>) {
    loop {
        if let ServerMessage::Links {
            room_id,
            read_only_id,
        } = client.recv().await
        {
            return (room_id, read_only_id);
        }
    }
}

/// Nothing of room `room` is left in Redis, also a moment after its
/// connections closed (closing writes nothing back).
async fn assert_gone_from(redis: &TestRedis, room: &str) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        redis.keys(&format!("collab:{{{room}}}:*")),
        Vec::<String>::new()
    );
}

fn user_id(init: &ServerMessage) -> String {
    let ServerMessage::Init { user_id, .. } = init else {
        unreachable!()
    };
    user_id.clone()
}

/// Reads until the connection ends; returns the `error` code before the
/// end, and the close code.
async fn ending(client: &mut Client) -> (Option<String>, End) {
    let (seen, end) = client.until_end().await;
    let code = seen.iter().find_map(|m| match m {
        ServerMessage::Error { code, .. } => Some(code.clone()),
        _ => None,
    });
    (code, end)
}

#[tokio::test]
async fn the_owner_removes_a_participant_and_ends_the_room() {
    let server = TestServer::process(SERVER, &[], &[]);
    let created = server.create_room_answer("hello").await;
    let room = created.room_id.clone();
    let token = created.owner_token.clone().expect("an owner token");
    assert_eq!(token.len(), 44, "{token}");
    assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));
    let viewer = created.read_only_id.clone().unwrap();

    let (mut ada, _) = Client::join(&server.addr, &room, "name=ada&client_id=ada").await;
    let (mut bob, init) = Client::join(&server.addr, &room, "name=bob&client_id=bob").await;
    let bob_id = user_id(&init);

    // Without the token, with another, or through the read-only id: 403.
    let path = format!("/rooms/{room}/users/{bob_id}");
    let (status, body) = delete(&server, &path, None).await;
    assert_eq!(status, 403);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Collab-Owner-Token"),
        "{body}"
    );
    assert_eq!(delete(&server, &path, Some("nope")).await.0, 403);
    let via_viewer = format!("/rooms/{viewer}/users/{bob_id}");
    assert_eq!(delete(&server, &via_viewer, Some(&token)).await.0, 403);
    let other = server.create_room_answer("").await;
    let (status, _) = delete(&server, &path, other.owner_token.as_deref()).await;
    assert_eq!(status, 403, "another room's owner token");
    let (status, body) = delete(
        &server,
        &format!("/rooms/{room}/users/nobody"),
        Some(&token),
    )
    .await;
    assert_eq!((status, body["error"].as_str().is_some()), (404, true));

    let (status, body) = delete(&server, &path, Some(&token)).await;
    assert_eq!(
        (status, body),
        (200, json!({"user_id": bob_id, "clients": 1}))
    );
    let (seen, end) = bob.until_end().await;
    assert_eq!(end, End::Closed(4006));
    assert!(
        matches!(seen.last(), Some(ServerMessage::Error { code, .. }) if code == "removed"),
        "{seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|m| matches!(m, ServerMessage::Links { .. })),
        "the removed user does not learn the new links: {seen:?}"
    );
    // The links were replaced: ada, who stays, is told the new ones; the
    // old ones open nothing, and bob's client is refused even with the new.
    let (link, new_viewer) = next_links(&mut ada).await;
    assert_ne!(link, room);
    assert_ne!(new_viewer.as_deref(), Some(viewer.as_str()));
    for old in [&room, &viewer] {
        let mut again = Client::connect(&server.addr, old, "name=bob&client_id=other").await;
        again
            .expect_refused_at_door("room_not_found", 4004, "an old link")
            .await;
    }
    assert!(
        server.room(&room).await.is_none(),
        "REST: the old id is gone too"
    );
    assert!(server.room(&link).await.is_some());
    let mut again = Client::connect(&server.addr, &link, "name=bob&client_id=bob").await;
    again
        .expect_refused_at_door("removed", 4006, "a removed client")
        .await;
    ada.send_text(r#"{"type":"ping"}"#).await;
    assert_eq!(ada.recv_doc().await, ServerMessage::Pong, "the others stay");
    let (_, init) = Client::join(&server.addr, &link, "name=cy").await;
    assert!(matches!(&init, ServerMessage::Init { room_id, .. } if *room_id == link));

    // Ending the room closes everyone and deletes it.
    assert_eq!(
        delete(&server, &format!("/rooms/{room}"), Some(&token))
            .await
            .0,
        404,
        "by its new link only"
    );
    assert_eq!(
        delete(&server, &format!("/rooms/{link}"), Some(&token))
            .await
            .0,
        204
    );
    assert_eq!(
        ending(&mut ada).await,
        (Some("room_ended".into()), End::Closed(4007))
    );
    let mut late = Client::connect(&server.addr, &link, "name=cy").await;
    late.expect_refused_at_door("room_not_found", 4004, "an ended room")
        .await;
    assert!(server.room(&link).await.is_none());
    assert_eq!(
        delete(&server, &format!("/rooms/{link}"), Some(&token))
            .await
            .0,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_controls_reach_every_instance_and_an_ended_room_leaves_nothing_in_redis() {
    let redis = TestRedis::start();
    let a = TestServer::on_redis(SERVER, &redis, &[]);
    let b = TestServer::on_redis(SERVER, &redis, &[]);
    let created = a.create_room_answer("fn main() {}\n").await;
    let room = created.room_id.clone();
    let token = created.owner_token.clone().unwrap();
    let (mut ada, _) = Client::join(&a.addr, &room, "name=ada&client_id=ada").await;
    let (mut bob, init) = Client::join(&b.addr, &room, "name=bob&client_id=bob").await;
    let bob_id = user_id(&init);
    ada.send_text(r#"{"type":"chat","text":"hi"}"#).await;

    // Removed through A: bob, on B, is closed; ada is told the new links;
    // bob's client is refused on both, the old link opens nothing.
    let path = format!("/rooms/{room}/users/{bob_id}");
    assert_eq!(delete(&a, &path, Some(&token)).await.0, 200);
    assert_eq!(
        ending(&mut bob).await,
        (Some("removed".into()), End::Closed(4006))
    );
    let (link, _) = next_links(&mut ada).await;
    for server in [&a, &b] {
        let mut again = Client::connect(&server.addr, &link, "client_id=bob").await;
        again
            .expect_refused_at_door("removed", 4006, "a removed client")
            .await;
        let mut old = Client::connect(&server.addr, &room, "client_id=cy").await;
        old.expect_refused_at_door("room_not_found", 4004, "the old link")
            .await;
    }
    assert!(!redis.keys(&format!("collab:{{{room}}}:*")).is_empty());

    // Ended through B: ada, on A, is closed, and nothing of the room is left.
    assert_eq!(
        delete(&b, &format!("/rooms/{link}"), Some(&token)).await.0,
        204
    );
    assert_eq!(
        ending(&mut ada).await,
        (Some("room_ended".into()), End::Closed(4007))
    );
    assert_gone_from(&redis, &room).await;
    assert_eq!(redis.keys("collab:viewer:*"), Vec::<String>::new());
    assert_eq!(redis.keys("collab:link:*"), Vec::<String>::new());
    for server in [&a, &b] {
        assert!(server.room(&link).await.is_none());
        let mut late = Client::connect(&server.addr, &link, "name=cy").await;
        late.expect_refused_at_door("room_not_found", 4004, "an ended room")
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_room_takes_edits_from_its_owner_only_on_every_instance() {
    let redis = TestRedis::start();
    let a = TestServer::on_redis(SERVER, &redis, &[]);
    let b = TestServer::on_redis(SERVER, &redis, &[]);
    let created = a.create_room_answer("abc").await;
    let room = created.room_id.clone();
    let token = created.owner_token.clone().unwrap();
    // The owner's editor joins with its token (a header, or the query).
    let (mut host, init) = Client::join(
        &a.addr,
        &room,
        &format!("client_id=host&owner_token={token}"),
    )
    .await;
    assert!(
        matches!(init, ServerMessage::Init { owner: true, .. }),
        "{init:?}"
    );
    let (mut guest, _) = Client::join(&b.addr, &room, "client_id=guest").await;
    let mut wrong = Client::connect(&b.addr, &room, "client_id=x&owner_token=nope").await;
    wrong
        .expect_refused_at_door("unauthorized", 4001, "a wrong owner token")
        .await;
    // The right token, through the read-only id: refused too.
    let viewer_id = created.read_only_id.clone().unwrap();
    let query = format!("client_id=y&owner_token={token}");
    let mut viewing = Client::connect(&b.addr, &viewer_id, &query).await;
    viewing
        .expect_refused_at_door(
            "unauthorized",
            4001,
            "the owner token with the read-only id",
        )
        .await;

    assert_eq!(set_read_only(&b, &room, "nope", true).await.0, 403);
    let (status, body) = set_read_only(&b, &room, &token, true).await;
    assert_eq!((status, body), (200, json!({"read_only": true})));
    for c in [&mut host, &mut guest] {
        let mode = loop {
            let m = c.recv_json().await;
            if m["type"] == "mode" {
                break m;
            }
        };
        assert_eq!(mode, json!({"type": "mode", "read_only": true}));
    }
    guest
        .send_text(r#"{"type":"code_update","revision":0,"seq":1,"operation":[3,"!"]}"#)
        .await;
    match guest.recv_doc().await {
        ServerMessage::Error { code, seq, .. } => {
            assert_eq!((code.as_str(), seq), ("room_read_only", Some(1)))
        }
        other => panic!("a refusal, got {other:?}"),
    }
    host.send_text(r#"{"type":"code_update","revision":0,"seq":1,"operation":[3,"?"]}"#)
        .await;
    assert!(matches!(
        host.recv_doc().await,
        ServerMessage::Ack { revision: 1, .. }
    ));
    let (_, init) = Client::join(&b.addr, &room, "client_id=late").await;
    assert!(matches!(
        init,
        ServerMessage::Init {
            read_only: true,
            owner: false,
            ..
        }
    ));

    assert_eq!(set_read_only(&a, &room, &token, false).await.0, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    guest
        .send_text(r#"{"type":"code_update","revision":1,"seq":2,"operation":[4,"!"]}"#)
        .await;
    loop {
        match guest.recv_doc().await {
            ServerMessage::CodeUpdate(_) => continue,
            ServerMessage::Ack { revision, .. } => break assert_eq!(revision, 2),
            other => panic!("an ack, got {other:?}"),
        }
    }
    assert_eq!(a.code(&room).await, "abc?!");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owners_connection_has_the_same_controls() {
    let redis = TestRedis::start();
    let a = TestServer::on_redis(SERVER, &redis, &[]);
    let b = TestServer::on_redis(SERVER, &redis, &[]);
    let created = a.create_room_answer("abc").await;
    let room = created.room_id.clone();
    let token = created.owner_token.clone().unwrap();
    let query = format!("client_id=host&owner_token={token}");
    let (mut host, _) = Client::join(&a.addr, &room, &query).await;
    let (mut guest, init) = Client::join(&b.addr, &room, "client_id=guest").await;
    let guest_id = user_id(&init);

    guest.send_text(r#"{"type":"end_room"}"#).await;
    match guest.recv_doc().await {
        ServerMessage::Error { code, .. } => assert_eq!(code, "not_owner"),
        other => panic!("a refusal, got {other:?}"),
    }
    host.send_text(r#"{"type":"remove_user","user_id":"nobody"}"#)
        .await;
    match host.recv_doc().await {
        ServerMessage::Error { code, .. } => assert_eq!(code, "user_not_found"),
        other => panic!("a refusal, got {other:?}"),
    }
    host.send_text(r#"{"type":"set_read_only","read_only":true}"#)
        .await;
    let mode = loop {
        if let ServerMessage::Mode { read_only } = guest.recv().await {
            break read_only;
        }
    };
    assert!(mode, "the guest on the other instance is told");
    let remove = json!({"type": "remove_user", "user_id": guest_id});
    host.send_text(&remove.to_string()).await;
    assert_eq!(
        ending(&mut guest).await,
        (Some("removed".into()), End::Closed(4006))
    );
    host.send_text(r#"{"type":"end_room"}"#).await;
    assert_eq!(
        ending(&mut host).await,
        (Some("room_ended".into()), End::Closed(4007))
    );
    assert_gone_from(&redis, &room).await;
}

#[tokio::test]
async fn new_links_replace_the_old_ones_and_connected_users_stay() {
    let server = TestServer::process(SERVER, &[], &[]);
    let created = server.create_room_answer("x").await;
    let (room, viewer) = (
        created.room_id.clone(),
        created.read_only_id.clone().unwrap(),
    );
    let token = created.owner_token.clone().unwrap();
    let (mut ed, _) = Client::join(&server.addr, &room, "name=ed").await;
    let (mut watching, _) = Client::join(&server.addr, &viewer, "name=vi").await;

    let http = reqwest::Client::new();
    let url = format!("{}/rooms/{room}/links", server.http());
    assert_eq!(http.post(&url).send().await.unwrap().status(), 403);
    let resp = http.post(&url).header(HEADER, &token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let links: Value = resp.json().await.unwrap();
    let link = links["room_id"].as_str().unwrap().to_owned();
    let new_viewer = links["read_only_id"].as_str().unwrap().to_owned();
    assert_eq!(links["ws_url"], format!("ws://{}/ws/{link}", server.addr));
    assert!(
        links.get("owner_token").is_none(),
        "the token is never answered again"
    );

    assert_eq!(
        next_links(&mut ed).await,
        (link.clone(), Some(new_viewer.clone()))
    );
    assert_eq!(
        next_links(&mut watching).await,
        (new_viewer.clone(), None),
        "a viewer learns only the new read-only id"
    );
    for old in [&room, &viewer] {
        let mut c = Client::connect(&server.addr, old, "name=late").await;
        c.expect_refused_at_door("room_not_found", 4004, "an old link")
            .await;
    }
    let (_, init) = Client::join(&server.addr, &new_viewer, "name=v2").await;
    assert!(matches!(
        init,
        ServerMessage::Init {
            read_only: true,
            ..
        }
    ));
    ed.send_text(r#"{"type":"ping"}"#).await;
    assert_eq!(
        ed.recv_doc().await,
        ServerMessage::Pong,
        "connected users stay"
    );
}
