//! `collab append ROOM TEXT`: appends TEXT as edits through the same
//! reconnecting network task and sync logic as the editor, then waits until
//! the server acknowledged all of it. With `--delay-ms`, TEXT is typed one
//! char at a time; a connection that drops meanwhile is re-established and
//! the unacknowledged part resent, so the text lands exactly once.

use std::time::Duration;

use anyhow::{anyhow, bail};
use collab_protocol::{ClientMessage, Operation, ServerMessage};
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout, Instant};

use crate::core::doc_sync::{InitOutcome, SyncedDoc};
use crate::net::{self, NetCommand, NetConfig, NetEvent};
use crate::server_api::ServerApi;

/// Offline longer than this, `append` gives up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// Appends `text`; returns once every edit is acknowledged.
pub async fn run(
    api: &ServerApi,
    room: &str,
    name: &str,
    text: &str,
    delay: Duration,
) -> anyhow::Result<()> {
    // Clear errors (unreachable, not found) before any WebSocket work.
    api.room(room).await?;
    let chunks: Vec<String> = if delay.is_zero() {
        vec![text.to_owned()]
    } else {
        text.chars().map(String::from).collect()
    };
    let cfg = NetConfig {
        api: api.clone(),
        room: room.to_owned(),
        name: name.to_owned(),
        client_id: net::new_client_id(),
    };
    let (since_tx, since_rx) = watch::channel(None);
    let mut net = net::spawn(cfg, since_rx);
    let mut doc = SyncedDoc::new();
    let mut epoch = 0;
    let mut next = 0;
    let mut next_at = Instant::now();
    let mut offline_since: Option<Instant> = None;
    let send = |epoch: u64, msg: ClientMessage| {
        let _ = net.commands.send(NetCommand::Send { epoch, msg });
    };

    while !(doc.is_ready() && next == chunks.len() && doc.is_synchronized()) {
        // Keep typing while offline too: edits wait in the sync buffer.
        if doc.is_ready() && next < chunks.len() && Instant::now() >= next_at {
            let len = doc.rope().len_chars();
            let op = Operation::replace(len, len, len, &chunks[next])?;
            if let Some(msg) = doc.local(&op)? {
                send(epoch, msg);
            }
            next += 1;
            next_at = Instant::now() + delay;
            continue;
        }
        let typing = doc.is_ready() && next < chunks.len();
        tokio::select! {
            () = sleep_until(next_at), if typing => {}
            event = net.events.recv() => {
                let event = event.ok_or_else(|| anyhow!("the network task stopped"))?;
                match event {
                    NetEvent::Connected { epoch: e, init } => {
                        epoch = e;
                        offline_since = None;
                        let ServerMessage::Init { revision, code, missed, .. } = init else {
                            continue;
                        };
                        match doc.on_init(revision, &code, missed.as_deref()) {
                            InitOutcome::Fresh => {}
                            InitOutcome::Rebased { send: msgs, .. } => {
                                msgs.into_iter().for_each(|m| send(epoch, m));
                            }
                            InitOutcome::Replaced { lost: None } => {}
                            InitOutcome::Replaced { lost: Some(_) } => bail!(
                                "reconnected, but the server no longer has the history to \
                                 merge the unacknowledged part of the text; it was not appended"
                            ),
                        }
                    }
                    NetEvent::Message { msg, .. } => match msg {
                        ServerMessage::CodeUpdate(c) => {
                            doc.remote(c.revision, &c.operation)?;
                        }
                        ServerMessage::Ack { revision, seq } => {
                            if let Some(msg) = doc.ack(revision, seq)? {
                                send(epoch, msg);
                            }
                        }
                        ServerMessage::Error { code, message, .. } => {
                            eprintln!("collab: server: {message} ({code})");
                        }
                        _ => {}
                    },
                    NetEvent::Disconnected { reason, .. } => {
                        let since = *offline_since.get_or_insert_with(Instant::now);
                        if since.elapsed() > GIVE_UP_AFTER {
                            bail!("lost the connection to the server: {reason}");
                        }
                    }
                    NetEvent::Fatal(why) => bail!("{why}"),
                }
            }
        }
        since_tx.send_replace(doc.revision());
    }
    // Hang up politely so the server sees a normal close.
    let net::NetHandle { commands, task, .. } = net;
    drop(commands);
    let _ = timeout(Duration::from_secs(2), task).await;
    Ok(())
}
