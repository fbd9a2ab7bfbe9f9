//! The network task: the only owner of the WebSocket. The UI loop (or a
//! script command) talks to it through channels and never waits on the
//! network. It connects, forwards every server message tagged with the
//! connection's *epoch*, sends what it is given for the current epoch, pings
//! every 30 s, treats 60 s of silence as a dead link, and reconnects with
//! backoff, passing `since` (the last revision the owner of the document
//! has processed) and the same `client_id` so `init.missed` can rebase.
//!
//! Messages tagged with an older epoch are dropped instead of being sent on
//! a newer connection: the sync state machine resends whatever edit is
//! still unacknowledged once it has seen the new `init`, with its original
//! seq, so nothing is lost and the server applies nothing twice.

use std::time::Duration;

use collab_protocol::{close_code, error_code, ClientMessage, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use rand::distr::{Alphanumeric, SampleString};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, timeout, Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use crate::server_api::ServerApi;
use collab_protocol::backoff::Backoff;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often to ping.
const PING_EVERY: Duration = Duration::from_secs(30);
/// Silence after which the link counts as dead.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A fresh client id for one editor session: 16 random alphanumerics.
pub fn new_client_id() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 16)
}

/// Who connects where.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// The server.
    pub api: ServerApi,
    /// The room id.
    pub room: String,
    /// Display name.
    pub name: String,
    /// Kept across reconnects.
    pub client_id: String,
    /// Join as a project client (`project=1`): every document of the room,
    /// messages naming their document. `since` is the main document's.
    pub project: bool,
    /// The room's owner token, when this machine created the room: sent
    /// as `Collab-Owner-Token`, it gives the connection the owner's
    /// controls.
    pub owner_token: Option<String>,
}

/// What the network task reports.
#[derive(Debug)]
pub enum NetEvent {
    /// A connection is up; `init` is its first message.
    Connected {
        /// The connection's number.
        epoch: u64,
        /// The `init` message.
        init: ServerMessage,
    },
    /// Any later message of connection `epoch`.
    Message {
        /// The connection's number.
        epoch: u64,
        /// The message.
        msg: ServerMessage,
    },
    /// The connection is gone; the next attempt starts after `retry_in`.
    Disconnected {
        /// Wait before the next attempt.
        retry_in: Duration,
        /// Failed attempts since the last connection that worked.
        attempt: usize,
        /// What happened.
        reason: String,
    },
    /// Nothing more will happen (e.g. the room does not exist).
    Fatal(String),
}

/// What the network task is told.
#[derive(Debug)]
pub enum NetCommand {
    /// Send `msg` if connection `epoch` is still the current one.
    Send {
        /// The connection it is meant for.
        epoch: u64,
        /// The message.
        msg: ClientMessage,
    },
    /// Drop the connection and reconnect now; with `fresh`, without
    /// `since` (take the server's document as it is).
    Reconnect {
        /// Reconnect without `since`.
        fresh: bool,
    },
    /// While waiting to reconnect, stop waiting (the user pressed a key);
    /// ignored while connected or connecting.
    RetryNow,
}

/// The UI's end of the network task. Dropping `commands` stops the task
/// (closing the connection properly).
pub struct NetHandle {
    /// Commands to the task.
    pub commands: mpsc::UnboundedSender<NetCommand>,
    /// Events from the task.
    pub events: mpsc::UnboundedReceiver<NetEvent>,
    /// The task itself.
    pub task: JoinHandle<()>,
}

/// Starts the network task. `since` holds the last revision the caller has
/// processed (`None` before the first `init`).
pub fn spawn(cfg: NetConfig, since: watch::Receiver<Option<u64>>) -> NetHandle {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(cfg, since, cmd_rx, ev_tx));
    NetHandle {
        commands: cmd_tx,
        events: ev_rx,
        task,
    }
}

/// How one connection ended.
pub(crate) enum End {
    /// The owner hung up.
    Shutdown,
    /// Give up with this message.
    Fatal(String),
    /// Close 1012: reconnect at once.
    Restarting,
    /// Reconnect at once, without `since`.
    Fresh(String),
    /// Anything else: reconnect after the backoff.
    Dropped(String),
}

async fn run(
    mut cfg: NetConfig,
    since: watch::Receiver<Option<u64>>,
    mut commands: mpsc::UnboundedReceiver<NetCommand>,
    events: mpsc::UnboundedSender<NetEvent>,
) {
    let mut backoff = Backoff::new();
    let mut epoch = 0;
    let mut fresh = false;
    // The previous session also ended in a fresh start: a refusal that
    // comes back after every init must not be retried without a pause.
    let mut fresh_again = false;
    loop {
        epoch += 1;
        let since = if std::mem::take(&mut fresh) {
            None
        } else {
            *since.borrow()
        };
        let mut got_init = false;
        let end = session(
            &mut cfg,
            since,
            epoch,
            &mut commands,
            &events,
            &mut got_init,
        )
        .await;
        let ended_fresh = matches!(end, End::Fresh(_));
        if got_init && !(ended_fresh && fresh_again) {
            backoff.reset();
        }
        let reason = match end {
            End::Shutdown => return,
            End::Fatal(why) => {
                let _ = events.send(NetEvent::Fatal(why));
                return;
            }
            End::Restarting => {
                backoff.retry_now();
                "the server is restarting".to_owned()
            }
            End::Fresh(why) => {
                fresh = true;
                if !fresh_again {
                    backoff.retry_now();
                }
                why
            }
            End::Dropped(why) => why,
        };
        fresh_again = ended_fresh;
        let retry_in = backoff.next_delay(rand::random());
        let report = NetEvent::Disconnected {
            retry_in,
            attempt: backoff.attempts(),
            reason,
        };
        if events.send(report).is_err() {
            return;
        }
        let wake = sleep(retry_in);
        tokio::pin!(wake);
        loop {
            tokio::select! {
                () = &mut wake => break,
                cmd = commands.recv() => match cmd {
                    None => return,
                    Some(NetCommand::Reconnect { fresh: f }) => {
                        fresh |= f;
                        break;
                    }
                    Some(NetCommand::RetryNow) => break,
                    // Meant for the dead connection: see the module docs.
                    Some(NetCommand::Send { .. }) => {}
                },
            }
        }
    }
}

async fn session(
    cfg: &mut NetConfig,
    since: Option<u64>,
    epoch: u64,
    commands: &mut mpsc::UnboundedReceiver<NetCommand>,
    events: &mpsc::UnboundedSender<NetEvent>,
    got_init: &mut bool,
) -> End {
    let mut query = vec![
        ("name", cfg.name.clone()),
        ("client_id", cfg.client_id.clone()),
        // The editor shows who is typing and editing where.
        ("typing", "1".to_owned()),
    ];
    if let Some(r) = since {
        query.push(("since", r.to_string()));
    }
    if cfg.project {
        query.push(("project", "1".to_owned()));
    }
    let mut request = match cfg.api.ws_request(&cfg.room, &query) {
        Ok(r) => r,
        Err(e) => return End::Fatal(e.to_string()),
    };
    if let Some(token) = &cfg.owner_token {
        match tokio_tungstenite::tungstenite::http::HeaderValue::from_str(token) {
            Ok(v) => {
                request.headers_mut().insert("collab-owner-token", v);
            }
            Err(_) => return End::Fatal("the kept owner token is not valid".into()),
        }
    }
    let connect = tokio_tungstenite::connect_async_tls_with_config(
        request,
        None,
        false,
        cfg.api.ws_connector(),
    );
    let ws = match timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => return End::Dropped(connect_failure(&e)),
        Err(_) => return End::Dropped("connecting timed out".into()),
    };
    let (mut tx, mut rx) = ws.split();
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    let mut last_error: Option<String> = None;
    loop {
        tokio::select! {
            frame = rx.next() => {
                last_heard = Instant::now();
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(close))) => {
                        let code = close.map(|c| u16::from(c.code));
                        return ended_by_server(code, last_error.as_deref());
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(_)) => return End::Dropped("connection lost".into()),
                    None => return End::Dropped("connection lost".into()),
                };
                let Ok(msg) = ServerMessage::from_json(&text) else {
                    // A newer server may send things this client does not know.
                    continue;
                };
                if let ServerMessage::Error { code, .. } = &msg {
                    last_error = Some(code.clone());
                }
                if let ServerMessage::Links { room_id, .. } = &msg {
                    // The owner replaced the room's links: the old one no
                    // longer opens it, so reconnects use the new one.
                    cfg.room.clone_from(room_id);
                }
                let event = if *got_init {
                    NetEvent::Message { epoch, msg }
                } else if matches!(msg, ServerMessage::Init { .. }) {
                    *got_init = true;
                    NetEvent::Connected { epoch, init: msg }
                } else {
                    // Refusals come before any init (then the close frame).
                    NetEvent::Message { epoch, msg }
                };
                if events.send(event).is_err() {
                    return close(&mut tx, &mut rx).await;
                }
            }
            cmd = commands.recv() => match cmd {
                None => return close(&mut tx, &mut rx).await,
                Some(NetCommand::Send { epoch: e, msg }) if e == epoch && *got_init => {
                    if tx.send(Message::text(msg.to_json())).await.is_err() {
                        return End::Dropped("connection lost".into());
                    }
                }
                Some(NetCommand::Send { .. } | NetCommand::RetryNow) => {}
                Some(NetCommand::Reconnect { fresh }) => {
                    let _ = close(&mut tx, &mut rx).await;
                    let why = "resynchronizing".to_owned();
                    return if fresh { End::Fresh(why) } else { End::Dropped(why) };
                }
            },
            _ = ping.tick() => {
                let ping = ClientMessage::Ping.to_json();
                if tx.send(Message::text(ping)).await.is_err() {
                    return End::Dropped("connection lost".into());
                }
            }
            () = sleep_until(last_heard + IDLE_TIMEOUT) => {
                return End::Dropped("no word from the server for 60 s".into());
            }
        }
    }
}

/// Why a connection attempt failed, in the words the status bar shows.
pub(crate) fn connect_failure(e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    if let Some(problem) = crate::tls::certificate_problem(e) {
        return problem;
    }
    match e {
        Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
            std::io::ErrorKind::ConnectionReset => "connection reset".into(),
            std::io::ErrorKind::TimedOut => "connecting timed out".into(),
            _ => format!("cannot connect ({io})"),
        },
        Error::Http(response) => format!("the server answered {}", response.status()),
        other => format!("cannot connect ({other})"),
    }
}

/// What a close frame from the server means for reconnecting. A refusal
/// that reconnecting cannot change (a read-only link's edit, a bad token, a
/// message this client got wrong) is never answered by reconnecting into
/// the same refusal.
pub(crate) fn ended_by_server(code: Option<u16>, last_error: Option<&str>) -> End {
    let Some(code) = code else {
        return End::Dropped("closed by the server".into());
    };
    match code {
        close_code::ROOM_NOT_FOUND => End::Fatal("room not found (it may have expired)".into()),
        close_code::FORBIDDEN => {
            End::Fatal("the server refused an edit: this link is read-only".into())
        }
        close_code::UNAUTHORIZED => {
            End::Fatal("the server refused the token (pass a valid --token)".into())
        }
        close_code::REPLACED => {
            End::Fatal("another connection with this editor's id took over".into())
        }
        close_code::REMOVED => End::Fatal("the room's owner removed you from this room".into()),
        close_code::ROOM_ENDED => {
            End::Fatal("the room's owner ended this room; its text and chat are deleted".into())
        }
        close_code::RESTARTING => End::Restarting,
        // `since` did not fit this server's history, or the server refused
        // something this client sent: start over from its document (the
        // editor saves unsent edits to a recovery file), so the same edit
        // is not refused again and again.
        close_code::MALFORMED | close_code::TOO_LARGE => match last_error {
            Some(error_code::FUTURE_REVISION | error_code::REVISION_TOO_OLD) => {
                End::Fresh("the server cannot rebase this client".into())
            }
            Some(other) => End::Fresh(format!(
                "the server refused what this client sent ({other})"
            )),
            None => End::Fresh(format!("the server refused what this client sent ({code})")),
        },
        close_code::TRY_AGAIN_LATER => End::Dropped(match last_error {
            Some(error_code::UNAVAILABLE) => "the server's store is unreachable".into(),
            Some(error_code::TOO_MANY_CONNECTIONS) => "the server is full".into(),
            _ => "the server asked to try again later".into(),
        }),
        close_code::POLICY => End::Dropped("rate limited by the server".into()),
        close_code::LAGGING => End::Dropped("fell behind the server".into()),
        close_code::GOING_AWAY => End::Dropped("idle timeout".into()),
        code => End::Dropped(format!("closed by the server ({code})")),
    }
}

/// Closes the connection politely, waiting briefly for the server's answer.
async fn close<S, R>(tx: &mut S, rx: &mut R) -> End
where
    S: futures_util::Sink<Message> + Unpin,
    R: futures_util::Stream + Unpin,
{
    let _ = tx.send(Message::Close(None)).await;
    let _ = timeout(Duration::from_secs(1), async {
        while rx.next().await.is_some() {}
    })
    .await;
    End::Shutdown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_decide_how_to_reconnect() {
        assert!(matches!(ended_by_server(Some(4004), None), End::Fatal(_)));
        assert!(matches!(ended_by_server(Some(1012), None), End::Restarting));
        assert!(matches!(
            ended_by_server(Some(4002), Some("future_revision")),
            End::Fresh(_)
        ));
        assert!(matches!(
            ended_by_server(Some(4002), Some("revision_too_old")),
            End::Fresh(_)
        ));
        assert!(matches!(ended_by_server(Some(4008), None), End::Dropped(_)));
        assert!(matches!(ended_by_server(None, None), End::Dropped(_)));
        assert!(
            matches!(ended_by_server(Some(1013), Some("unavailable")), End::Dropped(r) if r.contains("unreachable"))
        );
    }

    #[test]
    fn refusals_that_reconnecting_cannot_change_never_loop() {
        // A viewer's edit, a bad token, a newer connection of the same
        // client: give up and say why.
        for code in [4003, 4001, 4005] {
            assert!(
                matches!(ended_by_server(Some(code), None), End::Fatal(_)),
                "{code}"
            );
        }
        // Something this client sent was refused: start over without the
        // refused edit rather than resend it forever.
        assert!(matches!(
            ended_by_server(Some(4002), Some("malformed")),
            End::Fresh(_)
        ));
        assert!(matches!(
            ended_by_server(Some(1009), Some("too_large")),
            End::Fresh(_)
        ));
    }

    #[test]
    fn client_ids_are_valid_and_fresh() {
        let a = new_client_id();
        assert!(collab_protocol::is_valid_client_id(&a));
        assert_eq!(a.len(), 16);
        assert_ne!(a, new_client_id());
    }
}
