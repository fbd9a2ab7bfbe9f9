//! `GET /openapi.json` against the running server it describes: the
//! document parses as OpenAPI 3.1, and every documented path and method,
//! called with a room that exists and with one that does not (and, on a
//! server with authentication, without a token), answers one of the
//! statuses documented for it, with the documented content type and, for a
//! JSON body, the documented schema's required fields. That every route is
//! documented holds by construction (each is registered through
//! `utoipa_axum`'s `routes!`); the last test checks that no route sneaks in
//! around it.

mod common;

use collab_testkit::TestServer;
use common::SERVER;
use serde_json::Value;

const MISSING_ROOM: &str = "NoSuchRoomNoSuchRoom00";

/// One call: the status, the content type and the body.
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

async fn call(http: &reqwest::Client, method: &str, url: &str, body: Option<&str>) -> Answer {
    let mut req = match method {
        "get" => http.get(url),
        "post" => http.post(url),
        // The owner's calls, without the owner token: refused, harmless.
        "put" => http.put(url),
        "delete" => http.delete(url),
        other => panic!("undocumented method {other} in the walk"),
    };
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    Answer {
        status: resp.status().as_u16(),
        content_type: resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        body: resp.bytes().await.unwrap().to_vec(),
    }
}

/// The schema a `$ref` names.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap();
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// Checks `answer` against `op`'s documented responses.
fn check(doc: &Value, what: &str, op: &Value, answer: &Answer) {
    let responses = op["responses"].as_object().expect("responses");
    let documented = responses
        .get(&answer.status.to_string())
        .unwrap_or_else(|| {
            panic!(
                "{what} answered {} ({}), documented: {:?}",
                answer.status,
                String::from_utf8_lossy(&answer.body),
                responses.keys().collect::<Vec<_>>()
            )
        });
    let Some(content) = documented.get("content").and_then(Value::as_object) else {
        return;
    };
    let (media, spec) = content
        .iter()
        .find(|(media, _)| {
            answer
                .content_type
                .starts_with(media.split(';').next().unwrap())
        })
        .unwrap_or_else(|| {
            panic!(
                "{what}: {} came as {:?}, documented as {:?}",
                answer.status,
                answer.content_type,
                content.keys().collect::<Vec<_>>()
            )
        });
    if media == "application/json" {
        let body: Value = serde_json::from_slice(&answer.body)
            .unwrap_or_else(|e| panic!("{what}: {} is not JSON: {e}", answer.status));
        let schema = resolve(doc, &spec["schema"]);
        for field in schema["required"].as_array().into_iter().flatten() {
            let field = field.as_str().unwrap();
            assert!(
                body.get(field).is_some(),
                "{what}: {} lacks the required {field}: {body}",
                answer.status
            );
        }
    }
}

/// Walks every documented operation of the server at `base`, with the
/// path parameters of a room that exists (`room`, holding `file`) and of one
/// that does not; returns how many calls were checked.
async fn walk(base: &str, doc: &Value, room: &str, file: &str) -> usize {
    let http = reqwest::Client::new();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().unwrap() {
            if op.get("responses").is_none() {
                continue;
            }
            for (id, file, body) in [
                (room, file, Some(r#"{"code":"x","language":"rust"}"#)),
                (MISSING_ROOM, "no/such/file.rs", Some(r#"{"cod":"x"}"#)),
            ] {
                let url = format!(
                    "{base}{}",
                    path.replace("{id}", id)
                        .replace("{room_id}", id)
                        .replace("{user_id}", "nobody")
                        .replace("{path}", file)
                );
                assert!(
                    !url.contains('{'),
                    "a parameter the walk does not know: {url}"
                );
                let what = format!("{} {url}", method.to_uppercase());
                let body = (method == "post" || method == "put")
                    .then_some(body)
                    .flatten();
                let answer = call(&http, method, &url, body).await;
                // A 404 from a route of ours says why in JSON; the router's
                // own 404 (no such route) has no body.
                if answer.status == 404 {
                    assert!(!answer.body.is_empty(), "{what}: no route");
                }
                check(doc, &what, op, &answer);
                checked += 1;
                if op["responses"].get("101").is_some() {
                    // The WebSocket itself: the upgrade answers 101.
                    let ws = url.replacen("http://", "ws://", 1);
                    let (_, resp) = tokio_tungstenite::connect_async(&ws)
                        .await
                        .unwrap_or_else(|e| panic!("{ws}: {e}"));
                    let answer = Answer {
                        status: resp.status().as_u16(),
                        content_type: String::new(),
                        body: Vec::new(),
                    };
                    check(doc, &format!("upgrade {ws}"), op, &answer);
                    checked += 1;
                }
            }
        }
    }
    checked
}

async fn description(base: &str) -> Value {
    let resp = reqwest::get(format!("{base}/openapi.json")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    serde_json::from_str(&text).expect("/openapi.json is JSON")
}

#[tokio::test]
async fn every_documented_route_answers_as_documented() {
    let server = TestServer::process(SERVER, &[], &[]);
    let base = server.http();
    let doc = description(&base).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "collab-server");
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for expected in [
        "/rooms",
        "/rooms/{id}",
        "/rooms/{id}/exists",
        "/rooms/autocomplete",
        "/rooms/{id}/users/{user_id}",
        "/rooms/{id}/read_only",
        "/rooms/{id}/links",
        "/rooms/{id}/files",
        "/rooms/{id}/files/{path}",
        "/health",
        "/metrics",
        "/openapi.json",
        "/ws/{room_id}",
    ] {
        assert!(
            paths.contains(&expected),
            "{expected} is not documented: {paths:?}"
        );
    }
    let room = server
        .rest()
        .create_project(&[("src/main.rs", "fn main() {}\n"), ("README.md", "# hi\n")])
        .await
        .unwrap()
        .room_id;
    let checked = walk(&base, &doc, &room, "src/main.rs").await;
    assert!(checked >= 2 * paths.len(), "{checked} calls");
    // The same document as `collab-server openapi` prints.
    let out = std::process::Command::new(SERVER)
        .arg("openapi")
        .output()
        .unwrap();
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, doc);
}

#[tokio::test]
async fn with_authentication_every_route_still_answers_as_documented() {
    let server = TestServer::process(
        SERVER,
        &[],
        &[("COLLAB_JWT_SECRET", "openapi-test-secret-0123456789abcdef")],
    );
    let base = server.http();
    let doc = description(&base).await;
    // No token: the rooms' routes answer 401, which they document.
    walk(&base, &doc, MISSING_ROOM, "a.rs").await;
    let ops = doc["paths"]["/rooms/{id}"]["get"]["security"].clone();
    assert!(ops.to_string().contains("bearer"), "{ops}");
}

#[test]
fn every_route_goes_through_the_description() {
    // A route added with axum's own `.route(...)` would be served without
    // being described; the router is built with `.routes(routes!(...))`
    // only.
    let lib = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs")).unwrap();
    assert!(lib.contains(".routes(routes!("), "the router moved?");
    assert!(
        !lib.contains(".route(") && !lib.contains(".nest(") && !lib.contains(".fallback("),
        "a route outside utoipa_axum's routes! in server/src/lib.rs"
    );
}
