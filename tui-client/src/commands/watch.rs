//! `collab watch ROOM`: every protocol message, one JSON line each, for
//! debugging and scripts. One plain connection: no reconnecting, nothing
//! sent. It exits 0 only when interrupted or when stdout closes; a script
//! must be able to tell a finished watch from a server that went away.

use std::io::Write;

use anyhow::{bail, Context};
use collab_protocol::close_code;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::server_api::ServerApi;

/// Prints messages until Ctrl-C or the connection closes.
pub async fn run(api: &ServerApi, room: &str, name: &str) -> anyhow::Result<()> {
    api.room(room).await?;
    // A watcher: everyone sees it as a script, and it cannot edit.
    let query = [("name", name.to_owned()), ("role", "watcher".to_owned())];
    let request = api.ws_request(room, &query)?;
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .with_context(|| format!("cannot open the room's WebSocket at {}", api.base()))?;
    let mut out = std::io::stdout();
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            _ = &mut interrupted => {
                let _ = ws.send(Message::Close(None)).await;
                return Ok(());
            }
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    // One line per message, whatever the server's formatting.
                    let line = match serde_json::from_str::<serde_json::Value>(&text) {
                        Ok(v) => v.to_string(),
                        Err(_) => text.replace('\n', " "),
                    };
                    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                        // stdout closed (e.g. `| head`): stop quietly.
                        return Ok(());
                    }
                }
                Some(Ok(Message::Close(close))) => {
                    let (code, reason) = close
                        .map(|c| (u16::from(c.code), c.reason.to_string()))
                        .unwrap_or((close_code::NORMAL, String::new()));
                    match code {
                        close_code::ROOM_NOT_FOUND => {
                            bail!("room {room} not found (it may have expired)")
                        }
                        close_code::RESTARTING => bail!(
                            "the server is restarting (close {code}); run watch again to follow the room"
                        ),
                        _ if reason.is_empty() => bail!("the server closed the connection (close {code})"),
                        _ => bail!("the server closed the connection (close {code}: {reason})"),
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => bail!("connection lost: {e}"),
                None => bail!("connection lost"),
            }
        }
    }
}
