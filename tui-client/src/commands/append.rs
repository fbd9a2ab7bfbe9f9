//! `collab append ROOM TEXT`: appends TEXT as edits through the same
//! reconnecting network task and sync logic as the editor, then waits until
//! the server acknowledged all of it. With `--delay-ms`, TEXT is typed one
//! char at a time, as a person types: each char goes after the previous one
//! (wherever others' edits moved it) and the caret is shown to the room, so
//! two typists at the end of a document each type a run of their own. A
//! connection that drops meanwhile is re-established and the unacknowledged
//! part resent, so the text lands exactly once.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use collab_protocol::{ClientMessage, Operation, ServerMessage};
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout, Instant};

use crate::core::doc_sync::{InitOutcome, SyncedDoc};
use crate::journal::{self, Entry, Journal};
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
    // Edits an earlier collab left unacknowledged in this room go first.
    let (resumed, journal) = match journal::take_main_only(room) {
        Some((entry, journal)) => (Some(entry), Some(journal)),
        None => (None, None),
    };
    let client_id = resumed
        .as_ref()
        .map_or_else(net::new_client_id, |e| e.client_id.clone());
    let journal = journal.or_else(|| Journal::for_session(room, &client_id));
    let mut doc = resumed
        .as_ref()
        .map_or_else(SyncedDoc::new, |e| SyncedDoc::resume(&e.unacknowledged()));
    let cfg = NetConfig {
        api: api.clone(),
        room: room.to_owned(),
        name: name.to_owned(),
        client_id: client_id.clone(),
        project: false,
        owner_token: None,
    };
    let (since_tx, since_rx) = watch::channel(doc.revision());
    let mut net = net::spawn(cfg, since_rx);
    let mut kept_revision = doc.revision();
    // Written before anything is sent (and after every change), so an edit
    // the server may have is always on disk: `kill -9` loses nothing typed.
    let keep = |doc: &SyncedDoc| -> anyhow::Result<()> {
        let Some(journal) = &journal else {
            return Ok(());
        };
        let written = match doc.unacknowledged() {
            Some(unacked) => journal.write(&Entry::new(room, &client_id, unacked)),
            None => journal.remove(),
        };
        written.with_context(|| format!("cannot write the journal {}", journal.path().display()))
    };
    let mut epoch = 0;
    let mut next = 0;
    let mut next_at = Instant::now();
    let mut offline_since: Option<Instant> = None;
    // Where the next chunk goes: the end of the document when typing
    // starts, then after what this command typed.
    let mut caret: Option<usize> = None;
    let send = |epoch: u64, msg: ClientMessage| {
        let _ = net.commands.send(NetCommand::Send { epoch, msg });
    };

    while !(doc.is_ready() && next == chunks.len() && doc.is_synchronized()) {
        // Keep typing while offline too: edits wait in the sync buffer.
        if doc.is_ready() && next < chunks.len() && Instant::now() >= next_at {
            let len = doc.rope().len_chars();
            let at = caret.unwrap_or(len).min(len);
            let op = Operation::replace(len, at, at, &chunks[next])?;
            let msg = doc.local(&op)?;
            keep(&doc)?;
            kept_revision = doc.revision();
            if let Some(msg) = msg {
                send(epoch, msg);
            }
            let after = at + chunks[next].chars().count();
            caret = Some(after);
            if let Some(revision) = doc.revision() {
                let cursor = doc.to_server_offset(after) as u64;
                send(
                    epoch,
                    ClientMessage::CursorMove {
                        revision,
                        cursor,
                        anchor: None,
                        doc: None,
                    },
                );
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
                            InitOutcome::Rebased { send: msgs, applied } => {
                                for op in &applied {
                                    caret = caret.map(|c| after_own_text(op, c));
                                }
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
                            let op = doc.remote(c.revision, &c.operation)?;
                            caret = caret.map(|at| after_own_text(&op, at));
                        }
                        ServerMessage::Ack { revision, seq, .. } => {
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
        // Remote edits and acks move the revision the journal records.
        if doc.revision() != kept_revision {
            keep(&doc)?;
            kept_revision = doc.revision();
        }
        since_tx.send_replace(doc.revision());
    }
    // Hang up politely so the server sees a normal close.
    let net::NetHandle { commands, task, .. } = net;
    drop(commands);
    let _ = timeout(Duration::from_secs(2), task).await;
    Ok(())
}

/// Where a typist's caret `at` goes when someone else's `op` lands: right
/// after the text it followed. (An editor's caret is pushed past text
/// inserted exactly at it; a typist's must not be, or two typists at one
/// spot would interleave their chars.)
pub(crate) fn after_own_text(op: &Operation, at: usize) -> usize {
    use collab_protocol::Component;
    let (mut old, mut new) = (at, at);
    for c in op.components() {
        match c {
            // An insert right after this retain lands at the caret: after it.
            Component::Retain(n) if old <= *n => break,
            Component::Retain(n) => old -= n,
            Component::Insert(s) => new += s.chars().count(),
            Component::Delete(n) if old <= *n => {
                new -= old; // the caret was in (or at the end of) the deleted text
                break;
            }
            Component::Delete(n) => {
                new -= n;
                old -= n;
            }
        }
    }
    new
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typists_caret_stays_before_text_inserted_at_it() {
        // "ab|" and someone inserts "X" at the caret: the caret stays after "b".
        let op = Operation::replace(2, 2, 2, "X").unwrap();
        assert_eq!(after_own_text(&op, 2), 2);
        // Text inserted before the caret moves it.
        let op = Operation::replace(2, 0, 0, "XY").unwrap();
        assert_eq!(after_own_text(&op, 2), 4);
        // "abc", caret after "b", and someone deletes "b": after "a".
        let op = Operation::replace(3, 1, 2, "").unwrap();
        assert_eq!(after_own_text(&op, 2), 1);
        // The text around the caret deleted: where it was.
        let op = Operation::replace(3, 0, 3, "Z").unwrap();
        assert_eq!(after_own_text(&op, 2), 1);
        assert_eq!(
            after_own_text(&Operation::replace(3, 3, 3, "!").unwrap(), 0),
            0
        );
    }
}
