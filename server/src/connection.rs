//! One WebSocket connection: a reader half that parses client messages and
//! hands them to the room task, and a writer half that drains the
//! connection's bounded queue. When either half ends, the other is stopped;
//! leaving the room happens in a drop guard so it runs on every exit path.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use collab_protocol::{close_code, error_code, is_valid_client_id, ClientMessage, ServerMessage};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use crate::ids;
use crate::room::{short, ConnSignals, JoinError, JoinRequest, Outbox, RoomHandle};
use crate::AppState;

/// How long a closing connection gets to flush its last messages.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);
/// Bytes read from the socket at a time. tungstenite's default (128 KiB,
/// allocated and touched up front) made an idle connection cost ~150 KiB of
/// resident memory (collab-bench `connections`; 4 KiB here still cost
/// ~19 KiB, 1 KiB ~15 KiB). Client messages are ~100 bytes, and a large one
/// still grows the buffer as it arrives.
const READ_BUFFER: usize = 1024;
/// Outgoing frames are gathered up to this size before a write (the writer
/// also flushes whenever its queue is drained, so this only splits long
/// bursts into several writes).
const WRITE_BUFFER: usize = 1024;

/// `GET /ws/{room_id}`: upgrades to the collab protocol.
pub async fn ws_handler(
    ws: WebSocketUpgrade,
    Path(room_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    State(app): State<AppState>,
) -> Response {
    let max = app.config.max_message_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| async move {
            let _alive = app.connections.clone();
            let span = tracing::info_span!("conn", room = %short(&room_id));
            let _ =
                tracing::Instrument::instrument(serve(socket, app, room_id, params), span).await;
        })
}

/// Sends one message and a close frame straight on the socket (before the
/// writer half exists).
async fn refuse(mut socket: WebSocket, code: &str, message: &str, close: u16) {
    let _ = socket
        .send(Message::Text(
            ServerMessage::error(code, message).to_json().into(),
        ))
        .await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: close,
            reason: Utf8Bytes::from(code),
        })))
        .await;
}

struct LeaveGuard {
    room: RoomHandle,
    conn_id: u64,
}

impl Drop for LeaveGuard {
    fn drop(&mut self) {
        self.room.leave(self.conn_id);
    }
}

async fn serve(
    mut socket: WebSocket,
    app: AppState,
    room_id: String,
    params: HashMap<String, String>,
) {
    let client_id = match params.get("client_id") {
        Some(id) if is_valid_client_id(id) => id.clone(),
        Some(_) => {
            let msg = "client_id must be 1-64 chars of [A-Za-z0-9_-]";
            return refuse(socket, error_code::MALFORMED, msg, close_code::MALFORMED).await;
        }
        None => ids::new_client_id(),
    };
    let since = match params.get("since").map(|s| s.parse::<u64>()) {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(_)) => {
            let msg = "since must be a revision number";
            return refuse(socket, error_code::MALFORMED, msg, close_code::MALFORMED).await;
        }
    };
    let room = match app.rooms.get(&room_id).await {
        Ok(Some(room)) => room,
        Ok(None) => {
            let msg = "no room with this id (it may have expired)";
            return refuse(
                socket,
                error_code::ROOM_NOT_FOUND,
                msg,
                close_code::ROOM_NOT_FOUND,
            )
            .await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot load room");
            let msg = "the room's store is unavailable; try again shortly";
            return refuse(
                socket,
                error_code::UNAVAILABLE,
                msg,
                close_code::TRY_AGAIN_LATER,
            )
            .await;
        }
    };

    let (queue_tx, queue_rx) = mpsc::channel(app.config.outgoing_queue);
    let signals = Arc::new(ConnSignals::default());
    let outbox = Outbox {
        queue: queue_tx,
        signals: signals.clone(),
    };
    let joined = room
        .join(JoinRequest {
            client_id,
            name: ids::clean_name(params.get("name").map(String::as_str)),
            since,
            outbox: outbox.clone(),
        })
        .await;
    let joined = match joined {
        Ok(j) => j,
        Err(e @ JoinError::FutureRevision { .. }) => {
            let msg = e.to_string();
            return refuse(
                socket,
                error_code::FUTURE_REVISION,
                &msg,
                close_code::MALFORMED,
            )
            .await;
        }
        Err(JoinError::Store(e)) => {
            tracing::warn!(error = %e, "cannot join room");
            let msg = "the room's store is unavailable; try again shortly";
            return refuse(
                socket,
                error_code::UNAVAILABLE,
                msg,
                close_code::TRY_AGAIN_LATER,
            )
            .await;
        }
        Err(JoinError::Gone) => {
            let msg = "no room with this id (it may have expired)";
            return refuse(
                socket,
                error_code::ROOM_NOT_FOUND,
                msg,
                close_code::ROOM_NOT_FOUND,
            )
            .await;
        }
    };
    let _guard = LeaveGuard {
        room: room.clone(),
        conn_id: joined.conn_id,
    };
    if socket
        .send(Message::Text(joined.init.to_json().into()))
        .await
        .is_err()
    {
        return;
    }
    drop(joined.init);

    let (sink, stream) = socket.split();
    let mut writer = tokio::spawn(write_half(sink, queue_rx, signals));
    let mut shutdown = app.shutdown.clone();
    let reader = read_half(
        stream,
        &room,
        joined.conn_id,
        &outbox,
        app.config.max_message_bytes,
    );
    tokio::select! {
        reason = reader => {
            tracing::debug!(%reason, "reader finished");
            outbox.close_unless_closing(close_code::NORMAL, reason);
            // Let the writer deliver what the room queued (an error, a close).
            if tokio::time::timeout(FLUSH_TIMEOUT, &mut writer).await.is_err() {
                writer.abort();
            }
        }
        _ = &mut writer => {}
        _ = async { shutdown.wait_for(|stop| *stop).await.map(|_| ()) } => {
            outbox.close(close_code::RESTARTING, error_code::SHUTTING_DOWN);
            if tokio::time::timeout(FLUSH_TIMEOUT, &mut writer).await.is_err() {
                writer.abort();
            }
        }
    }
}

/// Reads client messages until the connection ends; returns why it ended.
async fn read_half(
    mut stream: SplitStream<WebSocket>,
    room: &RoomHandle,
    conn_id: u64,
    outbox: &Outbox,
    max_message_bytes: usize,
) -> &'static str {
    while let Some(frame) = stream.next().await {
        let text = match frame {
            Ok(Message::Text(text)) => text,
            Ok(Message::Binary(_)) => {
                let msg = "binary frames are not part of the protocol; send JSON text";
                outbox.fail(error_code::MALFORMED, msg, close_code::MALFORMED);
                return "binary frame";
            }
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Close(_)) => return "client closed",
            Err(e) => {
                if is_too_large(&e) {
                    let msg = format!("message larger than the {max_message_bytes}-byte limit");
                    outbox.fail(error_code::TOO_LARGE, &msg, close_code::TOO_LARGE);
                    return "message too large";
                }
                return "read error";
            }
        };
        let msg = match serde_json::from_str::<ClientMessage>(&text) {
            Ok(m) => m,
            Err(e) => {
                outbox.fail(
                    error_code::MALFORMED,
                    &format!("malformed message: {e}"),
                    close_code::MALFORMED,
                );
                return "malformed message";
            }
        };
        let alive = match msg {
            ClientMessage::CodeUpdate {
                revision,
                seq,
                operation,
            } => room.edit(conn_id, revision, seq, operation).await,
            ClientMessage::CursorMove {
                revision,
                cursor,
                anchor,
            } => room.cursor(conn_id, revision, cursor, anchor).await,
            ClientMessage::Ping => {
                outbox.push(ServerMessage::Pong.to_json().into());
                true
            }
        };
        if !alive {
            outbox.close(close_code::ROOM_NOT_FOUND, error_code::ROOM_NOT_FOUND);
            return "room gone";
        }
    }
    "connection dropped"
}

fn is_too_large(e: &axum::Error) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    text.contains("too long") || text.contains("too big") || text.contains("capacity")
}

/// Drains the queue (and the coalesced carets) to the socket until the
/// queue closes or a close is requested.
async fn write_half(
    mut sink: SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<Utf8Bytes>,
    signals: Arc<ConnSignals>,
) {
    loop {
        tokio::select! {
            biased;
            _ = signals.notify.notified() => {
                // Queued messages first: a caret refers to a revision whose
                // operation was queued before it.
                while let Ok(m) = queue.try_recv() {
                    if sink.feed(Message::Text(m)).await.is_err() {
                        return;
                    }
                }
                for m in signals.take_cursors() {
                    if sink.feed(Message::Text(m)).await.is_err() {
                        return;
                    }
                }
                if let Some((code, reason)) = signals.take_close() {
                    let frame = CloseFrame { code, reason: reason.into() };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    return;
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
            m = queue.recv() => {
                let Some(m) = m else { return };
                if sink.feed(Message::Text(m)).await.is_err() {
                    return;
                }
                while let Ok(m) = queue.try_recv() {
                    if sink.feed(Message::Text(m)).await.is_err() {
                        return;
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
        }
    }
}
