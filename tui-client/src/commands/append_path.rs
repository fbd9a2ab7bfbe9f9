//! `collab append ROOM --path PATH TEXT`: appends TEXT to one file of a
//! project room. It joins as a project client, opens the document at PATH,
//! appends (one char at a time with `--delay-ms`, after its own text as
//! `append` types), shows its caret there (so a colleague's mirror opens
//! the file and writes the change to disk), and exits once the server
//! acknowledged everything. A dropped connection is re-established and the
//! document reopened with `since`, so the text lands exactly once.

use std::time::Duration;

use anyhow::{anyhow, bail};
use collab_protocol::{ClientMessage, Operation, Reconnected, Replica, ServerMessage};
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout, Instant};

use crate::commands::append::after_own_text;
use crate::net::{self, NetCommand, NetConfig, NetEvent};
use crate::server_api::ServerApi;

/// Offline longer than this, `append` gives up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// Appends `text` to the file at `path`; returns once it is acknowledged.
pub async fn run(
    api: &ServerApi,
    room: &str,
    path: &str,
    name: &str,
    text: &str,
    delay: Duration,
) -> anyhow::Result<()> {
    // Clear errors (unreachable, not found, no such file) before any
    // WebSocket work.
    let files = api.files(room).await?;
    if !files.files.iter().any(|f| f.path == path) {
        bail!("room {room} has no file {path:?}");
    }
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
        project: true,
        owner_token: None,
    };
    let (_since_tx, since_rx) = watch::channel(None);
    let mut net = net::spawn(cfg, since_rx);
    let mut epoch = 0;
    let mut doc_id: Option<String> = None;
    let mut replica: Option<Replica> = None;
    let mut opening = false;
    let mut next = 0;
    let mut next_at = Instant::now();
    let mut caret: Option<usize> = None;
    let mut offline_since: Option<Instant> = None;
    let send = |epoch: u64, msg: ClientMessage| {
        let _ = net.commands.send(NetCommand::Send { epoch, msg });
    };
    loop {
        let ready = !opening && replica.is_some();
        if ready
            && next == chunks.len()
            && replica.as_ref().is_some_and(|r| r.sync.is_synchronized())
        {
            break;
        }
        if let (true, Some(r), Some(doc)) = (ready, replica.as_mut(), doc_id.as_deref()) {
            if next < chunks.len() && Instant::now() >= next_at {
                let len = r.doc.len_chars();
                let at = caret.unwrap_or(len).min(len);
                let op = Operation::replace(len, at, at, &chunks[next])?;
                if let Some(msg) = r.edit(op)? {
                    send(epoch, msg.for_doc(Some(doc)));
                }
                let after = at + chunks[next].chars().count();
                caret = Some(after);
                send(
                    epoch,
                    ClientMessage::CursorMove {
                        revision: r.sync.revision(),
                        cursor: r.to_server_offset(after) as u64,
                        anchor: None,
                        doc: Some(doc.to_owned()),
                    },
                );
                next += 1;
                next_at = Instant::now() + delay;
                continue;
            }
        }
        let typing = ready && next < chunks.len();
        tokio::select! {
            () = sleep_until(next_at), if typing => {}
            event = net.events.recv() => {
                let event = event.ok_or_else(|| anyhow!("the network task stopped"))?;
                match event {
                    NetEvent::Connected { epoch: e, init } => {
                        epoch = e;
                        offline_since = None;
                        let ServerMessage::Init { files, .. } = init else { continue };
                        let found = files
                            .unwrap_or_default()
                            .into_iter()
                            .find(|f| f.path == path)
                            .map(|f| f.doc);
                        let Some(found) = found else {
                            bail!("room {room} has no file {path:?} any more");
                        };
                        if doc_id.as_ref().is_some_and(|d| *d != found) {
                            bail!("{path} was replaced by another file meanwhile");
                        }
                        let since = replica.as_ref().map(|r| r.sync.revision());
                        send(epoch, ClientMessage::Open { doc: found.clone(), since });
                        doc_id = Some(found);
                        opening = true;
                    }
                    NetEvent::Message { epoch: e, msg } if e == epoch => match msg {
                        ServerMessage::Opened { doc, revision, code, missed, .. }
                            if Some(&doc) == doc_id.as_ref() =>
                        {
                            opening = false;
                            match replica.as_mut() {
                                None => replica = Some(Replica::new(revision, &code)),
                                Some(r) => match r.reconnected(revision, &code, missed.as_deref()) {
                                    Reconnected::Rebased { applied, send: msgs } => {
                                        for op in &applied {
                                            caret = caret.map(|c| after_own_text(op, c));
                                        }
                                        msgs.into_iter().for_each(|m| send(epoch, m.for_doc(Some(&doc))));
                                    }
                                    Reconnected::Replaced { lost: None } => {}
                                    Reconnected::Replaced { lost: Some(_) } => bail!(
                                        "reconnected, but the server no longer has the history to \
                                         merge the unacknowledged part of the text; it was not appended"
                                    ),
                                },
                            }
                        }
                        ServerMessage::CodeUpdate(c) if c.doc == doc_id => {
                            if let Some(r) = replica.as_mut() {
                                let op = r.remote(c.revision, &c.operation)?;
                                caret = caret.map(|at| after_own_text(&op, at));
                            }
                        }
                        ServerMessage::Ack { revision, seq, doc } if doc == doc_id => {
                            if let (Some(r), Some(d)) = (replica.as_mut(), doc_id.as_deref()) {
                                if let Some(msg) = r.ack(revision, seq)? {
                                    send(epoch, msg.for_doc(Some(d)));
                                }
                            }
                        }
                        ServerMessage::FileDeleted { doc, .. } if Some(&doc) == doc_id.as_ref() => {
                            bail!("{path} was deleted meanwhile");
                        }
                        ServerMessage::Error { code, message, .. } => {
                            eprintln!("collab: server: {message} ({code})");
                            if code == "document_deleted" {
                                bail!("{path} was deleted meanwhile");
                            }
                        }
                        _ => {}
                    },
                    NetEvent::Message { .. } => {}
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
    }
    let net::NetHandle { commands, task, .. } = net;
    drop(commands);
    let _ = timeout(Duration::from_secs(2), task).await;
    Ok(())
}
