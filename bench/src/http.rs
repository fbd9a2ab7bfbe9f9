//! The two REST calls the benchmark makes (`POST /rooms`, `GET
//! /rooms/{id}`), through a real HTTP client and the protocol's REST types.

use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use collab_protocol::rest::{CreateRoom, CreatedRoom};

pub use collab_protocol::rest::RoomState;

/// One client (one connection pool) for the whole run.
fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new)
}

/// Creates a room holding `code` on the instance at `addr`; returns its id.
pub async fn create_room(addr: &str, code: &str) -> Result<String> {
    let body = CreateRoom {
        code: code.to_owned(),
        language: Some("rust".into()),
    };
    let resp = client()
        .post(format!("http://{addr}/rooms"))
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST /rooms on {addr}"))?;
    if resp.status() != reqwest::StatusCode::CREATED {
        bail!("POST /rooms answered {}", resp.status());
    }
    let created: CreatedRoom = resp.json().await.context("POST /rooms' answer")?;
    Ok(created.room_id)
}

/// `GET /rooms/{id}` on the instance at `addr`.
pub async fn room(addr: &str, id: &str) -> Result<RoomState> {
    let resp = client()
        .get(format!("http://{addr}/rooms/{id}"))
        .send()
        .await
        .with_context(|| format!("GET /rooms/{{id}} on {addr}"))?;
    if resp.status() != reqwest::StatusCode::OK {
        bail!("GET /rooms/{{id}} on {addr} answered {}", resp.status());
    }
    resp.json().await.context("GET /rooms/{id}'s answer")
}

/// The revision of a room, from `GET /rooms/{id}` (the document is parsed
/// and dropped; the REST API has no lighter call).
pub async fn room_revision(addr: &str, id: &str) -> Result<u64> {
    Ok(room(addr, id).await?.revision)
}
