//! `collab cat ROOM`: the document, byte for byte, on stdout.

use std::io::Write;

use anyhow::Context;

use crate::server_api::ServerApi;

/// Prints the room's document exactly (no newline added).
pub async fn run(api: &ServerApi, room: &str) -> anyhow::Result<()> {
    let state = api.room(room).await?;
    let mut out = std::io::stdout().lock();
    out.write_all(state.code.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}
