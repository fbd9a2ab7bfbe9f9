//! The two REST calls the benchmark makes (`POST /rooms`, `GET
//! /rooms/{id}`), through collab-testkit's typed client (the protocol's
//! REST bodies) and one connection pool for the whole run.

use std::sync::OnceLock;

use anyhow::{Context, Result};
use collab_testkit::Rest;

pub use collab_protocol::rest::RoomState;

/// The instance at `addr`, through the run's one HTTP client (the bench
/// has one runtime, so the pool may be shared).
pub fn rest(addr: &str) -> Rest {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    Rest::with_client(CLIENT.get_or_init(reqwest::Client::new).clone(), addr)
}

/// Creates a room holding `code` on the instance at `addr`; returns its id.
pub async fn create_room(addr: &str, code: &str) -> Result<String> {
    Ok(rest(addr).create_room(code).await?.room_id)
}

/// `GET /rooms/{id}` on the instance at `addr`.
pub async fn room(addr: &str, id: &str) -> Result<RoomState> {
    rest(addr)
        .room(id)
        .await?
        .with_context(|| format!("GET /rooms/{{id}} on {addr} answered 404"))
}

/// The revision of a room, from `GET /rooms/{id}` (the document is parsed
/// and dropped; the REST API has no lighter call).
pub async fn room_revision(addr: &str, id: &str) -> Result<u64> {
    Ok(room(addr, id).await?.revision)
}
