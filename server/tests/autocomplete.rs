//! `POST /rooms/autocomplete` against a real server over real sockets: the
//! seed's contract as exact JSON (Python's `def `, Rust prefixes, no
//! suggestion, chars rather than bytes), and every malformed or oversized
//! body answered with a 4xx and the REST error body.

mod common;

use std::process::Command;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use collab_testkit::TestServer;
use common::SERVER;
use serde_json::{json, Value};

/// POSTs `body` (sent as is) to `/rooms/autocomplete`; the status and the
/// JSON answer.
async fn post(server: &TestServer, body: impl Into<reqwest::Body>) -> (u16, Value) {
    post_with(server, body, None).await
}

async fn post_with(
    server: &TestServer,
    body: impl Into<reqwest::Body>,
    token: Option<&str>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/rooms/autocomplete", server.http()))
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("answer {status} is not JSON ({e}): {text:?}"));
    (status, value)
}

/// POSTs `body` in chunks (`Transfer-Encoding: chunked`, no length up
/// front) over a raw connection; the status and the JSON answer.
async fn post_chunked(server: &TestServer, body: &[u8]) -> (u16, Value) {
    let mut conn = TcpStream::connect(&server.addr).await.unwrap();
    let head = format!(
        "POST /rooms/autocomplete HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        server.addr
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(64 << 10) {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(chunk);
        frame.extend_from_slice(b"\r\n");
        // The server may answer and stop reading before the end.
        if conn.write_all(&frame).await.is_err() {
            break;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    let (_, json) = answer.split_once("\r\n\r\n").unwrap();
    (status, serde_json::from_str(json).unwrap())
}

/// The request for the cursor at `|` in `code`.
fn at(code: &str, language: &str) -> Value {
    let bytes = code.find('|').unwrap();
    json!({
        "code": code.replacen('|', "", 1),
        "cursor_position": code[..bytes].chars().count(),
        "language": language,
    })
}

#[tokio::test]
async fn answers_the_seeds_example_and_rust_prefixes() {
    let server = TestServer::process(SERVER, &[], &[]);
    // The seed's example, exactly as the contract has it.
    let (status, body) = post(
        &server,
        r#"{"code": "def ", "cursor_position": 4, "language": "python"}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"suggestion": "name(args):\n    pass", "insert_position": 4})
    );
    // Rust: a method after `::`, a macro, a keyword, a function skeleton
    // after `fn ` carrying the line's indentation.
    for (code, suggestion) in [
        ("fn main() {\n    let v = Vec::ne|", "w"),
        ("fn main() {\n    pri|", "ntln!(\"{value}\");"),
        ("imp|", "l"),
        (
            "struct S;\nimpl S {\n    pub fn |",
            "name() {\n        \n    }",
        ),
        // A word of the code, nearest first.
        (
            "let total_far = 1;\nlet total_near = 2;\nx = tot|",
            "al_near",
        ),
    ] {
        let req = at(code, "rust");
        let cursor = req["cursor_position"].clone();
        let (status, body) = post(&server, req.to_string()).await;
        assert_eq!(status, 200, "{code:?}: {body}");
        assert_eq!(
            body,
            json!({"suggestion": suggestion, "insert_position": cursor}),
            "{code:?}"
        );
    }
    // The cursor counts chars (Unicode scalar values), not bytes.
    let (status, body) = post(
        &server,
        at("naïve_value = 1\nnaïve_v|", "python").to_string(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"suggestion": "alue", "insert_position": 23}));
    // Not at the end: the word before the cursor is completed.
    let (_, body) = post(&server, at("print_all()\npri|()", "").to_string()).await;
    assert_eq!(body, json!({"suggestion": "nt_all", "insert_position": 15}));
}

#[tokio::test]
async fn no_suggestion_is_an_empty_one() {
    let server = TestServer::process(SERVER, &[], &[]);
    for req in [
        // Nothing in the code starts with the prefix, and the language has
        // no vocabulary (words only).
        json!({"code": "zzz", "cursor_position": 3, "language": "cobol"}),
        json!({"code": "", "cursor_position": 0, "language": "rust"}),
        // After a space that follows no snippet's trigger.
        json!({"code": "x = ", "cursor_position": 4, "language": "python"}),
        // A number is not completed.
        json!({"code": "12345 12", "cursor_position": 8, "language": ""}),
    ] {
        let (status, body) = post(&server, req.to_string()).await;
        assert_eq!(status, 200, "{req}");
        assert_eq!(
            body,
            json!({"suggestion": "", "insert_position": req["cursor_position"]}),
            "{req}"
        );
    }
}

#[tokio::test]
async fn malformed_and_oversized_bodies_get_a_4xx_with_a_message() {
    let server = TestServer::process(SERVER, &[], &[]);
    let shape = r#"bad request: body must be {"code": string, "cursor_position": number, "language": string}: "#;
    for (body, detail) in [
        ("{not json", "key must be a string at line 1 column 2"),
        ("", "EOF while parsing a value at line 1 column 0"),
        (
            r#"{"code": "x", "cursor_position": 1}"#,
            "missing field `language` at line 1 column 35",
        ),
        (
            r#"{"code": "x", "cursor_position": -1, "language": "rust"}"#,
            "invalid value: integer `-1`, expected u64 at line 1 column 35",
        ),
        (
            r#"{"code": "x", "cursor_position": 1, "language": "rust", "path": "a.rs"}"#,
            "unknown field `path`, expected one of `code`, `cursor_position`, `language` at line 1 column 62",
        ),
    ] {
        let (status, answer) = post(&server, body).await;
        assert_eq!(status, 400, "{body:?}");
        assert_eq!(
            answer,
            json!({"error": format!("{shape}{detail}")}),
            "{body:?}"
        );
    }
    // A cursor past the end of the code (chars: "é" is one).
    let (status, answer) = post(
        &server,
        r#"{"code": "déf", "cursor_position": 4, "language": "python"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        answer,
        json!({"error": "bad request: cursor_position 4 is beyond the code's 3 chars"})
    );
    // Over 1 MiB: 413, whether the body says its length up front or not.
    let big =
        json!({"code": "x".repeat(1 << 20), "cursor_position": 0, "language": "rust"}).to_string();
    let too_large = json!({"error": "too large: the body is over 1048576 bytes (1 MiB), the autocomplete limit"});
    let (status, answer) = post(&server, big.clone()).await;
    assert_eq!((status, answer), (413, too_large.clone()));
    let (status, answer) = post_chunked(&server, big.as_bytes()).await;
    assert_eq!((status, answer), (413, too_large));
    // Just under the limit is fine.
    let fits =
        json!({"code": "y".repeat((1 << 20) - 100), "cursor_position": 0, "language": "rust"})
            .to_string();
    assert!(fits.len() <= 1 << 20);
    let (status, answer) = post(&server, fits).await;
    assert_eq!(
        (status, answer),
        (200, json!({"suggestion": "", "insert_position": 0}))
    );
}

#[tokio::test]
async fn with_authentication_on_it_needs_a_token() {
    const SECRET: &str = "autocomplete-test-secret";
    let server = TestServer::process(SERVER, &[], &[("COLLAB_JWT_SECRET", SECRET)]);
    let req = r#"{"code": "imp", "cursor_position": 3, "language": "rust"}"#;
    let (status, answer) = post(&server, req).await;
    assert_eq!(status, 401);
    assert!(answer["error"].is_string(), "{answer}");
    let out = Command::new(SERVER)
        .args(["token", "--sub", "ada", "--ttl", "1h"])
        .env("COLLAB_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap();
    let (status, answer) = post_with(&server, req, Some(token.trim())).await;
    assert_eq!(
        (status, answer),
        (200, json!({"suggestion": "l", "insert_position": 3}))
    );
}
