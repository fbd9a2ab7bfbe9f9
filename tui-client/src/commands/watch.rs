//! `collab watch ROOM`: every protocol message, one JSON line each, for
//! debugging and scripts (of a project room, as a project client: tree
//! changes and carets in every file too). It joins as a watcher (others see a script, and it
//! cannot edit) and reconnects as the editor does when the link drops (1 s,
//! 2 s, 5 s, 10 s, then every 30 s; at once when the server restarts),
//! saying so on stderr; each new connection prints its `init` line again.
//! It exits 0 when interrupted or when stdout closes, and 1 on a refusal
//! that reconnecting cannot change (the room is gone, a bad token), saying
//! why: a script can tell a finished watch from a room that went away.
//!
//! A project client hears the edits of the documents it has open only; so
//! the watch of a project opens, on each `init`, the documents colleagues
//! are in and then the others, up to [`MAX_OPEN`] (the server allows 64
//! per connection), and later each new file and each document a caret
//! moves into while under that limit: edits in any file are printed.

use std::io::Write;

use anyhow::bail;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::net::{connect_failure, ended_by_server, End};
use crate::server_api::ServerApi;
use collab_protocol::backoff::Backoff;

/// Documents a project watch holds open at most.
pub const MAX_OPEN: usize = 48;

/// The `open`s a project watch sends for `msg` (a server message as JSON),
/// given the documents it has open (updated).
fn opens_for(
    msg: &serde_json::Value,
    open: &mut std::collections::BTreeSet<String>,
) -> Vec<String> {
    let mut want: Vec<String> = Vec::new();
    match msg["type"].as_str() {
        Some("init") => {
            open.clear();
            if let Some(main) = msg["doc"].as_str() {
                open.insert(main.to_owned());
            }
            let users = msg["users"].as_array().into_iter().flatten();
            want.extend(users.filter_map(|u| u["doc"].as_str().map(str::to_owned)));
            let files = msg["files"].as_array().into_iter().flatten();
            want.extend(files.filter_map(|f| f["doc"].as_str().map(str::to_owned)));
        }
        Some("file_created") => want.extend(msg["file"]["doc"].as_str().map(str::to_owned)),
        Some("cursor_move") => want.extend(msg["doc"].as_str().map(str::to_owned)),
        Some("file_deleted") => {
            if let Some(d) = msg["doc"].as_str() {
                open.remove(d);
            }
        }
        _ => {}
    }
    let mut out = Vec::new();
    for d in want {
        if open.len() >= MAX_OPEN {
            break;
        }
        if open.insert(d.clone()) {
            out.push(d);
        }
    }
    out
}

/// How one connection of the watch ended.
enum Ended {
    /// Ctrl-C, or nobody reads stdout any more.
    Done,
    /// Reconnect (after the backoff unless `now`), for this reason.
    Again { reason: String, now: bool },
}

/// Prints messages until Ctrl-C, stdout closing, or a final refusal.
pub async fn run(api: &ServerApi, room: &str, name: &str) -> anyhow::Result<()> {
    api.room(room).await?;
    // A project (more than one file) is watched as a project client: tree
    // changes, and carets in every document. A one-file room is watched as
    // before.
    let project = api.files(room).await.is_ok_and(|f| f.files.len() > 1);
    let mut backoff = Backoff::new();
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let ended = tokio::select! {
            _ = &mut interrupted => return Ok(()),
            ended = watch_once(api, room, name, project, &mut backoff) => ended?,
        };
        let (reason, now) = match ended {
            Ended::Done => return Ok(()),
            Ended::Again { reason, now } => (reason, now),
        };
        if now {
            backoff.retry_now();
        }
        let wait = backoff.next_delay(rand::random());
        eprintln!(
            "collab: {reason}; reconnecting in {:.0} s",
            wait.as_secs_f64().ceil()
        );
        tokio::select! {
            _ = &mut interrupted => return Ok(()),
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// One connection: prints until it ends.
async fn watch_once(
    api: &ServerApi,
    room: &str,
    name: &str,
    project: bool,
    backoff: &mut Backoff,
) -> anyhow::Result<Ended> {
    let mut query = vec![("name", name.to_owned()), ("role", "watcher".to_owned())];
    if project {
        query.push(("project", "1".to_owned()));
    }
    let request = api.ws_request(room, &query)?;
    let connect =
        tokio_tungstenite::connect_async_tls_with_config(request, None, false, api.ws_connector());
    let mut ws = match connect.await {
        Ok((ws, _)) => ws,
        Err(e) => {
            return Ok(Ended::Again {
                reason: connect_failure(&e),
                now: false,
            })
        }
    };
    let mut out = std::io::stdout();
    let mut last_error: Option<String> = None;
    let mut open = std::collections::BTreeSet::new();
    loop {
        let frame = ws.next().await;
        match frame {
            Some(Ok(Message::Text(text))) => {
                let value = serde_json::from_str::<serde_json::Value>(&text).ok();
                if value.as_ref().is_some_and(|v| v["type"] == "init") {
                    backoff.reset();
                }
                if let Some(v) = value.as_ref().filter(|v| v["type"] == "error") {
                    last_error = v["code"].as_str().map(str::to_owned);
                }
                if let Some(v) = value.as_ref().filter(|_| project) {
                    for doc in opens_for(v, &mut open) {
                        let msg = serde_json::json!({"type": "open", "doc": doc});
                        let _ = ws.send(Message::Text(msg.to_string().into())).await;
                    }
                }
                // One line per message, whatever the server's formatting.
                let line = match value {
                    Some(v) => v.to_string(),
                    None => text.replace('\n', " "),
                };
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    // stdout closed (e.g. `| head`): stop quietly.
                    let _ = ws.send(Message::Close(None)).await;
                    return Ok(Ended::Done);
                }
            }
            Some(Ok(Message::Close(close))) => {
                let code = close.as_ref().map(|c| u16::from(c.code));
                return match ended_by_server(code, last_error.as_deref()) {
                    End::Fatal(why) => bail!("{why} (room {room})"),
                    End::Restarting => Ok(Ended::Again {
                        reason: "the server is restarting (close 1012)".into(),
                        now: true,
                    }),
                    End::Fresh(why) | End::Dropped(why) => Ok(Ended::Again {
                        reason: why,
                        now: false,
                    }),
                    End::Shutdown => Ok(Ended::Done),
                };
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => {
                return Ok(Ended::Again {
                    reason: "connection lost".into(),
                    now: false,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_watch_opens_colleagues_documents_first_then_the_rest_and_new_files() {
        let mut open = std::collections::BTreeSet::new();
        let init = serde_json::json!({
            "type": "init", "doc": "m",
            "users": [{"doc": "c"}],
            "files": [{"doc": "m"}, {"doc": "b"}, {"doc": "c"}],
        });
        assert_eq!(opens_for(&init, &mut open), ["c", "b"]);
        let created = serde_json::json!({"type": "file_created", "file": {"doc": "n"}});
        assert_eq!(opens_for(&created, &mut open), ["n"]);
        let caret = serde_json::json!({"type": "cursor_move", "doc": "b"});
        assert!(opens_for(&caret, &mut open).is_empty(), "already open");
    }
}
