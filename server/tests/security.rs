//! Security and operations against a real server: tokens (4001/401),
//! read-only links (4003), origin checks (403), limits (1008, 1013, idle
//! timeout, document size), `/metrics`, logs that hold no secret, and a flood
//! of hostile frames that breaks nothing.

mod common;

use std::process::Command;
use std::time::Duration;

use collab_protocol::rest::{CreateRoom, CreatedRoom, RoomState};
use collab_protocol::{ClientMessage, Operation, ServerMessage};
use collab_testkit::{Bot, Client, End, TestServer};
use common::{metric, SERVER};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "test-secret-do-not-log";

fn mint(sub: &str, ttl: &str) -> String {
    let out = Command::new(SERVER)
        .args(["token", "--sub", sub, "--ttl", ttl])
        .env("COLLAB_JWT_SECRET", SECRET)
        .output()
        .expect("collab-server token runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn op(json: &str) -> Operation {
    serde_json::from_str(json).unwrap()
}

async fn create(server: &TestServer, token: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{}/rooms", server.http()))
        .json(&CreateRoom {
            code: "hello".into(),
            language: Some("rust".into()),
            files: None,
            path: None,
        });
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn tokens_are_required_checked_and_never_logged() {
    let log = std::env::temp_dir().join(format!("collab-auth-{}.log", std::process::id()));
    let mut server = TestServer::command(SERVER)
        .args(["--log-format", "json"])
        .env("COLLAB_JWT_SECRET", SECRET)
        .log_to(&log)
        .start();
    let good = mint("ada", "1h");
    let expiring = mint("bob", "1s");
    let forged = {
        let other = Command::new(SERVER)
            .args(["token", "--sub", "ada", "--jwt-secret", "another-secret"])
            .output()
            .unwrap();
        String::from_utf8(other.stdout).unwrap().trim().to_owned()
    };

    assert_eq!(create(&server, None).await.status(), 401);
    assert_eq!(create(&server, Some("nonsense")).await.status(), 401);
    assert_eq!(create(&server, Some(&forged)).await.status(), 401);
    let resp = create(&server, Some(&good)).await;
    assert_eq!(resp.status(), 201);
    let room = resp.json::<CreatedRoom>().await.unwrap().room_id;
    let get = |token: Option<String>| {
        let url = format!("{}/rooms/{room}", server.http());
        async move {
            let mut req = reqwest::Client::new().get(url);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send().await.unwrap()
        }
    };
    assert_eq!(get(None).await.status(), 401);
    assert_eq!(
        reqwest::get(format!("{}/health", server.http()))
            .await
            .unwrap()
            .status(),
        200
    );

    tokio::time::sleep(Duration::from_millis(2100)).await; // `expiring` is now expired
    let bad_cases: Vec<(String, Vec<(&str, String)>)> = vec![
        (String::new(), vec![]),
        ("token=nonsense".into(), vec![]),
        (format!("token={forged}"), vec![]),
        (format!("token={expiring}"), vec![]),
        (
            String::new(),
            vec![("authorization", "Bearer nonsense".into())],
        ),
        (
            String::new(),
            vec![("authorization", format!("Bearer {expiring}"))],
        ),
    ];
    for (query, headers) in &bad_cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut c = Client::connect_with(&server.addr, &room, query, &headers)
            .await
            .unwrap();
        let what = format!("{query} {headers:?}");
        c.expect_refused_at_door("unauthorized", 4001, &what).await;
    }
    // Both ways in work with a good token; the token names the user.
    let auth_header = format!("Bearer {good}");
    let mut c = Client::connect_with(
        &server.addr,
        &room,
        "name=mallory",
        &[("authorization", &auth_header)],
    )
    .await
    .unwrap();
    match c.recv().await {
        ServerMessage::Init {
            name,
            code,
            revision,
            ..
        } => {
            assert_eq!(
                (name.as_str(), code.as_str(), revision),
                ("ada", "hello", 0),
                "document untouched"
            );
        }
        other => panic!("expected init, got {other:?}"),
    }
    let (_, init) = Client::join(&server.addr, &room, &format!("token={good}")).await;
    assert!(matches!(init, ServerMessage::Init { .. }));

    let body = get(Some(good.clone()))
        .await
        .json::<RoomState>()
        .await
        .unwrap();
    assert_eq!((body.code.as_str(), body.revision), ("hello", 0));

    // A graceful stop: the open connections end (1012) and log it inside
    // their spans before the process exits. (A kill raced the handlers of
    // the connections dropped just above, and lost now and then.)
    assert!(server.terminate().success(), "clean exit on SIGTERM");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("room created"),
        "debug logs were captured: {text}"
    );
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let record: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(
            record["level"].is_string() && record["fields"].is_object(),
            "{line}"
        );
    }
    // Connection events carry the connection's span: room prefix and user.
    let in_conn_span = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|r| {
            r["span"]["name"] == "conn"
                && r["span"]["room"]
                    .as_str()
                    .is_some_and(|p| room.starts_with(p) && p.len() < room.len())
                && r["span"]["user"].is_string()
        });
    assert!(
        in_conn_span,
        "no event inside a conn span with room and user: {text}"
    );
    for secret in [
        good.as_str(),
        expiring.as_str(),
        forged.as_str(),
        SECRET,
        room.as_str(),
    ] {
        assert!(
            !text.contains(secret),
            "the log holds a secret or a full room id: {secret}"
        );
    }
    let _ = std::fs::remove_file(&log);
}

#[tokio::test]
async fn read_only_links_see_everything_and_change_nothing() {
    let server = TestServer::process(SERVER, &[], &[]);
    let body = server.create_room_answer("fn main() {}").await;
    let room = body.room_id.as_str();
    let viewer_id = body.read_only_id.as_deref().unwrap();
    assert_ne!(room, viewer_id);
    assert!(
        viewer_id.len() >= 16,
        "read-only ids carry as many bits as room ids"
    );
    assert_eq!(
        body.read_only_ws_url,
        Some(format!("ws://{}/ws/{viewer_id}", server.addr))
    );

    let (mut viewer, init) = Client::join(&server.addr, viewer_id, "name=viewer").await;
    let init = serde_json::to_value(&init).unwrap();
    assert_eq!(
        init["room_id"], viewer_id,
        "a viewer never learns the editing id"
    );
    assert_eq!(
        init["read_only"], true,
        "init tells a viewer it cannot edit"
    );
    assert!(init.get("read_only_id").is_none(), "{init}");
    let seen = server.room(viewer_id).await.unwrap();
    assert_eq!(
        (seen.room_id.as_str(), seen.code.as_str()),
        (viewer_id, "fn main() {}")
    );

    let (mut editor, init) = Client::join(&server.addr, room, "name=editor").await;
    let init = serde_json::to_value(&init).unwrap();
    assert!(init.get("read_only").is_none(), "editors may edit: {init}");
    assert_eq!(
        init["read_only_id"], viewer_id,
        "editors can share the view"
    );
    assert_eq!(
        init["users"][0]["role"], "viewer",
        "everyone sees who only watches"
    );
    editor
        .send(&ClientMessage::CodeUpdate {
            revision: 0,
            seq: 1,
            operation: op(r#"[12, "\n"]"#),
            doc: None,
        })
        .await;
    assert_eq!(
        editor.recv_doc().await,
        ServerMessage::Ack {
            revision: 1,
            seq: 1,
            doc: None
        }
    );
    assert!(
        matches!(viewer.recv_doc().await, ServerMessage::CodeUpdate(c) if c.revision == 1),
        "viewers see edits live"
    );

    viewer
        .send(&ClientMessage::CodeUpdate {
            revision: 1,
            seq: 1,
            operation: op(r#"["x", 13]"#),
            doc: None,
        })
        .await;
    viewer
        .expect_refusal("read_only", 4003, "a viewer's edit")
        .await;
    assert_eq!(server.code(room).await, "fn main() {}\n");

    // A script that asks to only watch is announced as a watcher and may
    // not edit either, whichever id it used.
    let (mut watcher, init) = Client::join(&server.addr, room, "name=bot&role=watcher").await;
    let init = serde_json::to_value(&init).unwrap();
    assert_eq!(init["read_only"], true);
    let mut joined = editor.recv_json().await;
    while joined["type"] == "user_left" {
        joined = editor.recv_json().await; // the refused viewer
    }
    assert_eq!(
        (joined["type"].as_str(), joined["user"]["role"].as_str()),
        (Some("user_joined"), Some("watcher")),
        "{joined}"
    );
    watcher
        .send(&ClientMessage::CodeUpdate {
            revision: 1,
            seq: 1,
            operation: op(r#"["x", 13]"#),
            doc: None,
        })
        .await;
    watcher
        .expect_refusal("read_only", 4003, "a watcher's edit")
        .await;
    assert_eq!(server.code(room).await, "fn main() {}\n");
}

#[tokio::test]
async fn foreign_origins_are_refused() {
    let server = TestServer::process(
        SERVER,
        &[],
        &[("CORS_ORIGINS", "http://good.example,http://also.example")],
    );
    let room = server.create_room("").await;
    let refused = Client::connect_with(
        &server.addr,
        &room,
        "",
        &[("origin", "http://evil.example")],
    )
    .await;
    assert_eq!(refused.err(), Some(403));
    assert!(Client::connect_with(
        &server.addr,
        &room,
        "",
        &[("origin", "http://good.example")]
    )
    .await
    .is_ok());
    assert!(
        Client::connect_with(&server.addr, &room, "", &[])
            .await
            .is_ok(),
        "non-browser clients send no Origin"
    );

    let cors = |origin: &'static str| {
        let url = format!("{}/rooms/{room}/exists", server.http());
        async move {
            let resp = reqwest::Client::new()
                .get(url)
                .header("origin", origin)
                .send()
                .await
                .unwrap();
            resp.headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap().to_owned())
        }
    };
    assert_eq!(
        cors("http://also.example").await.as_deref(),
        Some("http://also.example")
    );
    assert_eq!(cors("http://evil.example").await, None);
}

#[tokio::test]
async fn limits_close_with_their_codes() {
    let server = TestServer::process(
        SERVER,
        &[
            "--rate-per-sec",
            "5",
            "--rate-burst",
            "10",
            "--max-conns-per-room",
            "3",
            "--max-conns-per-ip",
            "5",
            "--idle-timeout-seconds",
            "2",
            "--max-document-chars",
            "12",
        ],
        &[],
    );
    let room = server.create_room("hello").await;

    // Rate: a burst beyond the bucket is closed with 1008 after an error.
    let (mut flooder, _) = Client::join(&server.addr, &room, "").await;
    for _ in 0..30 {
        // The server may close before the flood is out: stop sending then.
        if !flooder.try_send(&ClientMessage::Ping).await {
            break;
        }
    }
    let seen = flooder
        .expect_refusal("rate_limited", 1008, "a flood")
        .await;
    assert_eq!(
        seen.iter().filter(|m| **m == ServerMessage::Pong).count(),
        10,
        "the burst is served"
    );

    // The flooder's place is given up once its socket has closed, a moment
    // after the client read the close: wait for that, or the room and the
    // address below still count it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while server.metric("collab_connections").await != Some(0.0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the flooder's connection lingers"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Document size: refused with the edit's seq; the connection stays open.
    let (mut writer, _) = Client::join(&server.addr, &room, "").await;
    writer
        .send(&ClientMessage::CodeUpdate {
            revision: 0,
            seq: 1,
            operation: op(r#"[5, " world!!"]"#),
            doc: None,
        })
        .await;
    match writer.recv_doc().await {
        ServerMessage::Error { code, seq, .. } => {
            assert_eq!((code.as_str(), seq), ("document_too_large", Some(1)))
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    writer.send(&ClientMessage::Ping).await;
    assert_eq!(
        writer.recv_doc().await,
        ServerMessage::Pong,
        "still connected"
    );
    assert_eq!(server.code(&room).await, "hello");

    // Connections per room: the fourth is refused with 1013.
    let (_b, _) = Client::join(&server.addr, &room, "").await;
    let (_c, _) = Client::join(&server.addr, &room, "").await;
    let mut fourth = Client::connect(&server.addr, &room, "").await;
    fourth
        .expect_refused_at_door("too_many_connections", 1013, "a full room")
        .await;

    // Connections per address: 5 open at once at most.
    let other = server.create_room("").await;
    let (_d, _) = Client::join(&server.addr, &other, "").await;
    let (_e, _) = Client::join(&server.addr, &other, "").await; // writer, _b, _c, _d, _e
    let mut sixth = Client::connect(&server.addr, &other, "").await;
    sixth
        .expect_refused_at_door("too_many_connections", 1013, "a busy address")
        .await;
}

#[tokio::test]
async fn a_flood_gets_the_rate_limited_error_and_close_not_a_reset() {
    // Default limits: a burst of 1,000, then 500 per second. The flood is
    // sent without reading, as a misbehaving client does, so unread
    // messages sit in the server's socket when it closes: unless the server
    // reads them away, the kernel answers with a reset, which destroys
    // what the client had not read yet (the pongs, the error, the close).
    let server = TestServer::process(SERVER, &[], &[]);
    let room = server.create_room("").await;
    for burst in [1_100, 20_000] {
        let (mut flooder, _) = Client::join(&server.addr, &room, "").await;
        let mut sent = 0;
        while sent < burst && flooder.try_send(&ClientMessage::Ping).await {
            sent += 1;
        }
        let what = format!("a burst of {burst}");
        // A reset shows first as a failed send.
        assert_eq!(
            sent, burst,
            "{what}: the connection was reset while sending"
        );
        let (seen, end) = flooder.until_end().await;
        assert!(
            seen.iter()
                .any(|m| matches!(m, ServerMessage::Error { code, .. } if code == "rate_limited")),
            "{what}: no rate_limited error among {} messages",
            seen.len()
        );
        assert_eq!(end, End::Closed(1008), "{what}: close code");
        let pongs = seen.iter().filter(|m| **m == ServerMessage::Pong).count();
        assert!(pongs >= 1000, "{what}: the burst is served: {pongs} pongs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_time_out_and_cannot_starve_the_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // 256 open files for the server: without limits, a few hundred
    // unfinished requests would use them all and it could accept nothing.
    let server = TestServer::command(SERVER)
        .file_limit(256)
        .args(["--header-timeout-seconds", "2"])
        .start();
    let target: std::net::SocketAddr = server.addr.parse().unwrap();
    // An attacker on another address (127.0.0.2 is loopback too) opens
    // 1,100 connections and sends each a request without its last line.
    // (All at once: a server that stops accepting leaves later connects
    // hanging in a full accept queue.)
    let connects = (0..1100).map(|_| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut tcp = tokio::time::timeout(Duration::from_secs(3), socket.connect(target))
            .await
            .ok()?
            .ok()?;
        tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            .await
            .ok()?;
        Some(tcp)
    });
    let mut attack: Vec<_> = futures_util::future::join_all(connects)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(
        attack.len() > 300,
        "only {} attack connections",
        attack.len()
    );
    // Meanwhile everyone else is served.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for _ in 0..6 {
        let health = http.get(format!("{}/health", server.http())).send().await;
        assert!(
            matches!(&health, Ok(r) if r.status() == 200),
            "/health during the attack: {health:?}"
        );
        let room = http
            .post(format!("{}/rooms", server.http()))
            .send()
            .await
            .map(|r| r.status().as_u16());
        assert_eq!(room.ok(), Some(201), "POST /rooms during the attack");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // And every unfinished request is closed (after the 2 s header timeout,
    // or at once beyond the per-address limit).
    for (i, tcp) in attack.iter_mut().enumerate() {
        let mut buf = [0u8; 512];
        let read = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(_)) | Ok(Err(_))),
            "unfinished request {i} still open"
        );
    }
}

/// Joins through a "proxy" that forwarded `forwarded_for`; the first
/// message (`init`, or the refusal's `error`) is left to the caller.
async fn via_proxy(server: &TestServer, room: &str, forwarded_for: &str) -> Client {
    Client::connect_with(
        &server.addr,
        room,
        "",
        &[("x-forwarded-for", forwarded_for)],
    )
    .await
    .expect("upgraded")
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_limit_counts_forwarded_addresses() {
    // The tests connect from 127.0.0.1, playing the load balancer.
    let server = TestServer::process(
        SERVER,
        &[
            "--max-conns-per-ip",
            "2",
            "--trusted-proxy",
            "10.0.0.0/8,127.0.0.1",
        ],
        &[],
    );
    let room = server.create_room("").await;
    let mut a1 = via_proxy(&server, &room, "203.0.113.1").await;
    let mut a2 = via_proxy(&server, &room, "198.51.100.7, 203.0.113.1").await;
    for c in [&mut a1, &mut a2] {
        assert!(matches!(c.recv().await, ServerMessage::Init { .. }));
    }
    via_proxy(&server, &room, "203.0.113.1")
        .await
        .expect_refused_at_door("too_many_connections", 1013, "a third from one address")
        .await;
    // Two other users behind the same balancer are not counted with the first.
    let mut b = via_proxy(&server, &room, "203.0.113.2").await;
    assert!(matches!(b.recv().await, ServerMessage::Init { .. }));
    let (mut direct, _) = Client::join(&server.addr, &room, "").await;
    direct.send(&ClientMessage::Ping).await;
    assert_eq!(direct.recv().await, ServerMessage::Pong);

    // Without --trusted-proxy anyone could claim any address: the header is
    // ignored and all four count as 127.0.0.1.
    let plain = TestServer::process(SERVER, &["--max-conns-per-ip", "2"], &[]);
    let room = plain.create_room("").await;
    let mut c1 = via_proxy(&plain, &room, "203.0.113.1").await;
    let mut c2 = via_proxy(&plain, &room, "203.0.113.2").await;
    for c in [&mut c1, &mut c2] {
        assert!(matches!(c.recv().await, ServerMessage::Init { .. }));
    }
    via_proxy(&plain, &room, "203.0.113.3")
        .await
        .expect_refused_at_door("too_many_connections", 1013, "a forged header")
        .await;
}

#[tokio::test]
async fn a_bad_trusted_proxy_stops_the_server_with_the_culprit() {
    let out = std::process::Command::new(SERVER)
        .args(["--port", "0", "--trusted-proxy", "10.0.0.0/8,proxy.local"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--trusted-proxy") && err.contains("proxy.local"),
        "{err}"
    );
}

#[tokio::test]
async fn silent_connections_time_out_but_live_ones_stay() {
    let server = TestServer::process(SERVER, &["--idle-timeout-seconds", "2"], &[]);
    let room = server.create_room("").await;
    let (mut silent, _) = Client::join(&server.addr, &room, "").await;
    let (mut live, _) = Client::join(&server.addr, &room, "").await;
    // `live` keeps reading, so its client answers the server's pings.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(3500);
    while tokio::time::Instant::now() < deadline {
        if let Some(Err(end)) = live.next(Duration::from_millis(100)).await {
            panic!("the live connection ended: {end:?}");
        }
    }
    live.send(&ClientMessage::Ping).await;
    assert_eq!(live.recv_doc().await, ServerMessage::Pong);
    // `silent` read nothing, so it answered no ping.
    silent
        .expect_refusal("idle_timeout", 1001, "a silent connection")
        .await;
}

#[tokio::test]
async fn metrics_are_prometheus_text_and_move() {
    let server = TestServer::process(SERVER, &[], &[]);
    let scrape = || server.metrics();
    let before = scrape().await;
    let room = server.create_room("").await;
    let (mut c, _) = Client::join(&server.addr, &room, "").await;
    for seq in 1..=3u64 {
        let operation =
            Operation::replace(seq as usize - 1, seq as usize - 1, seq as usize - 1, "x").unwrap();
        c.send(&ClientMessage::CodeUpdate {
            revision: seq - 1,
            seq,
            operation,
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
    let during = scrape().await;
    let (mut bad, _) = Client::join(&server.addr, &room, "").await;
    bad.send_text("{").await;
    let _ = bad.until_end().await;
    let after = scrape().await;
    for line in after.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = line.rsplit_once(' ').expect("name value");
        assert!(value.parse::<f64>().is_ok(), "not a sample line: {line}");
    }
    assert_eq!(metric(&before, "collab_ops_committed_total"), 0.0);
    assert_eq!(metric(&after, "collab_ops_committed_total"), 3.0);
    assert_eq!(metric(&during, "collab_connections"), 1.0);
    assert_eq!(metric(&during, "collab_rooms"), 1.0);
    assert_eq!(metric(&after, "collab_commit_latency_seconds_count"), 3.0);
    assert!(metric(&after, "collab_fanout_latency_seconds_count") >= 3.0);
    assert_eq!(
        metric(&after, "collab_rejected_total{reason=\"malformed\"}"),
        1.0
    );
    assert_eq!(
        metric(&before, "collab_rejected_total{reason=\"malformed\"}"),
        0.0
    );
}

/// Frames a hostile client might send; every one must be refused.
fn hostile_frame(rng: &mut StdRng, limit: usize) -> Message {
    let valid = [
        r#"{"type":"code_update","revision":0,"seq":1,"operation":[2,"x"]}"#,
        r#"{"type":"cursor_move","revision":0,"cursor":1,"anchor":null}"#,
        r#"{"type":"ping"}"#,
    ];
    match rng.random_range(0..7) {
        0 => Message::binary(
            (0..rng.random_range(0..64))
                .map(|_| rng.random::<u8>())
                .collect::<Vec<u8>>(),
        ),
        1 => {
            // Random text (never valid JSON for an object: no leading '{').
            let s: String = (0..rng.random_range(0..64))
                .map(|_| rng.random_range(' '..='~'))
                .collect();
            Message::text(format!("x{s}"))
        }
        2 => {
            let v = valid[rng.random_range(0..valid.len())];
            Message::text(&v[..rng.random_range(0..v.len())]) // truncated
        }
        3 => Message::text("x".repeat(limit + 1 + rng.random_range(0..1000))), // oversized
        4 => Message::text(format!(
            r#"{{"type":"code_update","revision":0,"seq":1,"operation":[{}]}}"#,
            rng.random_range(10_000..100_000)
        )),
        5 => Message::text(format!(
            r#"{{"type":"code_update","revision":{},"seq":1,"operation":[2]}}"#,
            rng.random_range(100..u32::MAX)
        )),
        _ => Message::text(format!(
            r#"{{"type":"{}"}}"#,
            ["dance", "", "init", "ack", "CODE_UPDATE"][rng.random_range(0..5)]
        )),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_hostile_frames_break_nothing() {
    let log = std::env::temp_dir().join(format!("collab-hostile-{}.log", std::process::id()));
    let limit = 4096;
    let mut server = TestServer::command(SERVER)
        .args(["--max-message-bytes", "4096"])
        .log_to(&log)
        .start();
    let room = server.create_room("ok").await;
    // Two well-behaved clients keep typing and reading throughout.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut good = Vec::new();
    for i in 0..2usize {
        let (addr, room, stop) = (server.addr.clone(), room.clone(), stop_rx.clone());
        good.push(tokio::spawn(async move {
            let mut bot = Bot::join(&addr, &room, &format!("client_id=good{i}")).await;
            let mut n = 0;
            while !*stop.borrow() {
                if n < 200 {
                    let len = bot.replica.doc.len_chars();
                    bot.edit(Operation::replace(len, len, len, "ab").unwrap())
                        .await;
                    n += 1;
                }
                if let Some(msg) = bot.client.next(Duration::from_millis(5)).await {
                    bot.handle(msg.expect("good clients are never closed"))
                        .await;
                }
            }
            bot.settle(0).await;
            bot
        }));
    }
    let total = 10_000;
    let workers = 8;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (addr, room) = (server.addr.clone(), room.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(w as u64);
            let mut unanswered = Vec::new();
            for _ in 0..total / workers {
                let frame = hostile_frame(&mut rng, limit);
                let shown = format!("{frame:?}").chars().take(80).collect::<String>();
                let mut c = Client::connect(&addr, &room, "").await;
                assert!(matches!(c.recv().await, ServerMessage::Init { .. }));
                c.send_frame(frame).await;
                let (seen, end) = c.until_end().await;
                let refused = seen
                    .iter()
                    .any(|m| matches!(m, ServerMessage::Error { .. }));
                if !(refused && matches!(end, End::Closed(4002 | 1009))) {
                    unanswered.push(format!("{shown}: {seen:?} {end:?}"));
                }
            }
            unanswered
        }));
    }
    let mut unanswered = Vec::new();
    for t in tasks {
        unanswered.extend(t.await.unwrap());
    }
    assert!(
        unanswered.is_empty(),
        "{} frames not refused, e.g. {:?}",
        unanswered.len(),
        &unanswered[..unanswered.len().min(3)]
    );
    stop_tx.send(true).unwrap();
    let expected = server.code(&room).await;
    for g in good {
        let bot = g.await.expect("good client finished");
        let revision = server.room(&room).await.unwrap().revision;
        let mut bot = bot;
        bot.settle(revision).await;
        assert_eq!(bot.replica.text(), expected);
        bot.assert_revisions_contiguous();
    }
    assert_eq!(
        expected.len(),
        2 + 2 * 200 * 2,
        "every good edit landed, no hostile one did"
    );
    assert!(server.alive(), "the server survived");
    drop(server);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("panicked"), "the server panicked");
    let _ = std::fs::remove_file(&log);
}
