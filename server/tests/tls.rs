//! The server speaking TLS itself (`--tls-cert`/`--tls-key`), with a CA
//! made in the test: REST over https and two clients over wss:// converge;
//! a client that trusts another CA is refused by its own TLS layer; the
//! certificate is replaced on SIGHUP while a connection stays open; the
//! token, sent only in the `Authorization` header, never reaches the log.

mod common;

use std::time::Duration;

use collab_protocol::rest::{CreateRoom, CreatedRoom};
use collab_protocol::Operation;
use collab_testkit::tls::client_config_for;
use collab_testkit::{Bot, Client, TestCa, TestServer};
use common::SERVER;

const SECRET: &str = "tls-test-secret-0123456789abcdef";

fn token() -> String {
    collab_server::auth::Auth::new(SECRET).mint("ann", Duration::from_secs(600))
}

fn https(tls: std::sync::Arc<rustls::ClientConfig>) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn create(http: &reqwest::Client, port: &str, token: &str) -> reqwest::Result<CreatedRoom> {
    http.post(format!("https://localhost:{port}/rooms"))
        .bearer_auth(token)
        .json(&CreateRoom::default())
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
}

async fn join_wss(url: &str, token: &str, ca: &TestCa) -> Result<Bot, String> {
    let auth = format!("Bearer {token}");
    let mut client = Client::open_tls(url, &[("authorization", &auth)], ca.client_config())
        .await
        .map_err(|e| format!("{e}"))?;
    let init = client.recv().await;
    Bot::from_init(client, init).map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_clients_converge_a_wrong_ca_is_refused_and_sighup_swaps_the_certificate() {
    let mut ca = TestCa::new("server");
    let issued = ca.issue();
    let log = ca.dir().join("server.log");
    let server = TestServer::command(SERVER)
        .arg("--tls-cert")
        .arg(&issued.cert)
        .arg("--tls-key")
        .arg(&issued.key)
        .env("COLLAB_JWT_SECRET", SECRET)
        .log_to(&log)
        .rust_log("debug")
        .start();
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    let token = token();

    // REST over https; the URLs it answers are https and wss.
    let http = https(ca.client_config());
    let room = create(&http, &port, &token)
        .await
        .expect("POST /rooms over https");
    assert!(
        room.join_url.starts_with("https://localhost:"),
        "{}",
        room.join_url
    );
    assert!(
        room.ws_url.starts_with("wss://localhost:"),
        "{}",
        room.ws_url
    );

    // Two clients over wss:// edit and converge.
    let mut a = join_wss(&room.ws_url, &token, &ca).await.expect("a joins");
    let mut b = join_wss(&room.ws_url, &token, &ca).await.expect("b joins");
    a.edit(Operation::replace(0, 0, 0, "hello").unwrap()).await;
    b.edit(Operation::replace(0, 0, 0, "world ").unwrap()).await;
    a.settle(0).await;
    b.settle(0).await;
    let revision = a.replica.sync.revision().max(b.replica.sync.revision());
    a.settle(revision).await;
    b.settle(revision).await;
    assert_eq!(a.replica.text(), b.replica.text());
    assert_eq!(a.replica.text().len(), "hello".len() + "world ".len());

    // A client trusting another CA: its TLS layer refuses the server.
    let other = TestCa::new("other");
    let refused = create(&https(other.client_config()), &port, &token)
        .await
        .expect_err("a wrong CA must be refused");
    let chain = format!("{:?}", refused);
    assert!(chain.contains("UnknownIssuer"), "{chain}");
    let err = join_wss(&room.ws_url, &token, &other)
        .await
        .err()
        .expect("refused");
    assert!(err.contains("invalid peer certificate"), "{err}");

    // SIGHUP: the server now presents a certificate of another CA; `a`'s
    // connection, made before, stays open and working.
    let mut next_ca = TestCa::new("next");
    let next = next_ca.issue();
    std::fs::copy(&next.cert, &issued.cert).unwrap();
    std::fs::copy(&next.key, &issued.key).unwrap();
    let pid = server.pid().expect("a process");
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while create(&https(next_ca.client_config()), &port, &token)
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reload on SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A new connection trusting the old CA is refused; `http`'s pooled
    // connection, made before, still works (open connections keep theirs).
    assert!(
        create(&https(ca.client_config()), &port, &token)
            .await
            .is_err(),
        "the old certificate is gone"
    );
    assert!(create(&http, &port, &token).await.is_ok());
    let len = a.replica.doc.len_chars();
    a.edit(Operation::replace(len, len, len, "!").unwrap())
        .await;
    a.settle(0).await;
    b.settle(a.replica.sync.revision()).await;
    assert!(b.replica.text().ends_with('!'), "{}", b.replica.text());
    assert_eq!(a.replica.text(), b.replica.text());
    // The CA file as `--ca-cert` takes it works too.
    assert!(
        create(&https(client_config_for(&next_ca.cert)), &port, &token)
            .await
            .is_ok()
    );

    // The token travelled in headers only: the server's log (every
    // request's path at debug level) never holds it.
    drop((a, b));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("TLS certificate reloaded"), "{text}");
    let short = &room.room_id[..6];
    assert!(text.contains(&format!("/ws/{short}")), "{text}");
    assert!(!text.contains(&room.room_id), "a full room id in the log");
    assert!(!text.contains(&token), "the token is in the server log");
}
