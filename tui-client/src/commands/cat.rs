//! `collab cat ROOM [PATH]`: the document (or a project's file at PATH),
//! byte for byte, on stdout.

use std::io::Write;

use anyhow::{bail, Context};

use crate::server_api::ServerApi;

/// Prints the room's document, or its file at `path`, exactly (no newline
/// added).
pub async fn run(api: &ServerApi, room: &str, path: Option<&str>) -> anyhow::Result<()> {
    let code = match path {
        None => api.room(room).await?.code,
        Some(path) => match api.file(room, path).await? {
            Some(code) => code,
            None => bail!("room {room} has no file {path:?}"),
        },
    };
    let mut out = std::io::stdout().lock();
    out.write_all(code.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}
