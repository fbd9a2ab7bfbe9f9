//! The reading half of a connection: parses what the client sends and hands
//! it to the room, within the limits (message size, rate, idleness).

use std::time::Instant;

use axum::extract::ws::{Message, WebSocket};
use collab_protocol::{close_code, error_code, ClientMessage, ServerMessage};
use futures_util::stream::SplitStream;
use futures_util::StreamExt;

use super::outbox::{queued, Outbox};
use super::RoomHandle;
use crate::metrics::Reject;
use crate::room::{Command, OwnerAct};
use crate::state::AppState;

/// Refills at `rate` tokens per second up to `burst`; one token per message.
struct TokenBucket {
    tokens: f64,
    last: Instant,
    rate: f64,
    burst: f64,
}

impl TokenBucket {
    fn new(rate: f64, burst: f64) -> Self {
        Self {
            tokens: burst,
            last: Instant::now(),
            rate,
            burst,
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Reads client messages until the connection ends; returns why it ended.
pub(super) async fn read_half(
    stream: &mut SplitStream<WebSocket>,
    room: &RoomHandle,
    conn_id: u64,
    outbox: &Outbox,
    app: &AppState,
) -> &'static str {
    let config = &app.config;
    let metrics = &app.metrics;
    let mut bucket = TokenBucket::new(config.rate_per_sec, config.rate_burst);
    let mut quiet_halves = 0;
    loop {
        let frame = match tokio::time::timeout(config.idle_timeout / 2, stream.next()).await {
            Err(_) => {
                // Silent for half the timeout: ping; silent for the whole: close.
                quiet_halves += 1;
                if quiet_halves >= 2 {
                    metrics.reject(Reject::Idle);
                    let msg = format!("nothing received for {} s", config.idle_timeout.as_secs());
                    outbox.fail(error_code::IDLE_TIMEOUT, &msg, close_code::GOING_AWAY);
                    return "idle";
                }
                outbox.signals.request_ping();
                continue;
            }
            Ok(None) => return "connection dropped",
            Ok(Some(frame)) => frame,
        };
        quiet_halves = 0;
        let text = match frame {
            Ok(Message::Text(text)) => text,
            Ok(Message::Binary(_)) => {
                metrics.reject(Reject::Malformed);
                let msg = "binary frames are not part of the protocol; send JSON text";
                outbox.fail(error_code::MALFORMED, msg, close_code::MALFORMED);
                return "binary frame";
            }
            Ok(Message::Pong(_)) => continue,
            Ok(Message::Ping(_)) => {
                // Answered by the WebSocket layer, but it costs like a message.
                if !bucket.take() {
                    metrics.reject(Reject::RateLimited);
                    let msg = format!("more than {} messages per second", config.rate_per_sec);
                    outbox.fail(error_code::RATE_LIMITED, &msg, close_code::POLICY);
                    return "rate limited";
                }
                continue;
            }
            Ok(Message::Close(_)) => return "client closed",
            Err(e) => {
                if is_too_large(&e) {
                    metrics.reject(Reject::TooLarge);
                    let msg = format!(
                        "message larger than the {}-byte limit",
                        config.max_message_bytes
                    );
                    outbox.fail(error_code::TOO_LARGE, &msg, close_code::TOO_LARGE);
                    return "message too large";
                }
                return "read error";
            }
        };
        if !bucket.take() {
            metrics.reject(Reject::RateLimited);
            let msg = format!("more than {} messages per second", config.rate_per_sec);
            outbox.fail(error_code::RATE_LIMITED, &msg, close_code::POLICY);
            return "rate limited";
        }
        let msg = match ClientMessage::from_json(&text) {
            Ok(m) => m,
            Err(e) => {
                metrics.reject(Reject::Malformed);
                outbox.fail(
                    error_code::MALFORMED,
                    &format!("malformed message: {e}"),
                    close_code::MALFORMED,
                );
                return "malformed message";
            }
        };
        let cmd = match msg {
            ClientMessage::Ping => {
                outbox.push(queued(ServerMessage::Pong.to_json()));
                continue;
            }
            ClientMessage::CodeUpdate {
                revision,
                seq,
                operation,
                doc,
            } => Command::Edit {
                conn_id,
                doc,
                revision,
                seq,
                operation,
            },
            ClientMessage::CursorMove {
                revision,
                cursor,
                anchor,
                doc,
            } => Command::Cursor {
                conn_id,
                doc,
                revision,
                cursor,
                anchor,
            },
            ClientMessage::Open { doc, since } => Command::Open {
                conn_id,
                doc,
                since,
            },
            ClientMessage::Close { doc } => Command::Close { conn_id, doc },
            ClientMessage::CreateFile {
                path,
                code,
                language,
            } => Command::CreateFile {
                conn_id,
                path,
                code: code.unwrap_or_default(),
                language,
            },
            ClientMessage::RenameFile { doc, path } => Command::RenameFile { conn_id, doc, path },
            ClientMessage::DeleteFile { doc } => Command::DeleteFile { conn_id, doc },
            ClientMessage::Chat { text, doc, line } => Command::Chat {
                conn_id,
                text,
                doc,
                line,
            },
            ClientMessage::Typing => Command::Typing { conn_id },
            ClientMessage::SetReadOnly { read_only } => Command::Owner {
                conn_id,
                act: OwnerAct::ReadOnly(read_only),
            },
            ClientMessage::RemoveUser { user_id } => Command::Owner {
                conn_id,
                act: OwnerAct::Remove(user_id),
            },
            ClientMessage::EndRoom => Command::Owner {
                conn_id,
                act: OwnerAct::End,
            },
            ClientMessage::RotateLinks => Command::Owner {
                conn_id,
                act: OwnerAct::Rotate,
            },
        };
        let alive = room.command(cmd).await;
        if !alive {
            // The room task ended (reset, drain): whatever close it asked
            // for stands; otherwise reconnecting finds the room or says 4004.
            outbox.close_unless_closing(close_code::RESTARTING, "room task ended");
            return "room gone";
        }
    }
}

fn is_too_large(e: &axum::Error) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    text.contains("too long") || text.contains("too big") || text.contains("capacity")
}
