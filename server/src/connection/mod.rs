//! One WebSocket connection, in four parts: the door ([`admission`]:
//! origin, token, per-address slot, query, room), the [`reader`] that
//! parses client messages and hands them to the room, the [`writer`] that
//! drains the connection's [`outbox`], and this module, which joins the
//! room and runs the two halves until either ends. Leaving the room happens
//! in a drop guard, so it runs on every exit path. Everything a hostile or
//! broken client can do is bounded: origin, token, connections per address,
//! message size and rate, idleness, a slow reader's queue.

mod admission;
pub(crate) mod outbox;
mod reader;
mod writer;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use collab_protocol::{close_code, error_code, ServerMessage};
use futures_util::stream::SplitStream;
use futures_util::StreamExt;

use self::admission::{find_room, refuse, Admitted, NOT_FOUND, UNAVAILABLE};
use self::reader::read_half;
use self::writer::{write_half, AbortOnDrop};
use crate::auth::{AuthError, Claims};
use crate::ids::{self, short};
use crate::metrics::Reject;
use crate::room::{JoinError, JoinRequest};
use crate::state::AppState;

pub use self::admission::origin_allowed;

/// A room, as a connection reaches it.
pub(crate) type RoomHandle = crate::room::RoomHandle<Outbox>;
pub use self::outbox::{queued, ConnSignals, Outbox, Queued};

/// How often a join is tried again when the room's actor ended meanwhile.
const JOIN_RETRIES: usize = 3;
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
/// bursts into several writes). tungstenite grows its buffer as frames
/// arrive and keeps what it grew to: 8 KiB let a hot room's burst go out in
/// one write but cost idle connections ~2 KiB each (the join burst of a
/// 50-user room grew it), with no hot-room gain beyond run-to-run noise.
const WRITE_BUFFER: usize = 1024;

/// `GET /ws/{room_id}`: upgrades to the collab protocol.
pub async fn ws_handler(
    ws: WebSocketUpgrade,
    Path(room_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    State(app): State<AppState>,
) -> Response {
    let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    if !origin_allowed(&app.config.cors_origins, origin) {
        // Cross-site WebSocket hijacking: refuse before upgrading.
        app.metrics.reject(Reject::Origin);
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    let auth = app
        .auth
        .as_ref()
        .map(|a| a.check(&headers, params.get("token").map(String::as_str)));
    // The owner's token: a header, or (for browsers) the query.
    let owner_token =
        crate::owner::token_of(&headers, params.get("owner_token").map(String::as_str))
            .map(str::to_owned);
    // Only the address goes into the upgrade: the header map (slices of the
    // request's 8 KiB read buffer) would otherwise live as long as the socket.
    let ip = app.config.trusted_proxies.client_ip(peer.ip(), &headers);
    let max = app.config.max_message_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| {
            let alive = app.connections.clone();
            let span =
                tracing::info_span!("conn", room = %short(&room_id), user = tracing::field::Empty);
            let arrival = Arrival {
                app,
                id: room_id,
                params,
                auth,
                owner_token,
                ip,
            };
            let conn = serve(socket, arrival);
            async move {
                let _alive = alive;
                tracing::Instrument::instrument(conn, span).await;
            }
        })
}

/// What a connection brings to its room: everything admission and joining
/// need, and nothing the connection keeps once it is in.
struct Arrival {
    app: AppState,
    id: String,
    params: HashMap<String, String>,
    auth: Option<Result<Claims, AuthError>>,
    owner_token: Option<String>,
    ip: IpAddr,
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

/// A connection that has joined its room: what it holds while it lives.
struct Session {
    app: AppState,
    stream: SplitStream<WebSocket>,
    writer: tokio::task::JoinHandle<()>,
    room: RoomHandle,
    conn_id: u64,
    outbox: Outbox,
    /// Leaves the room when dropped.
    guard: LeaveGuard,
    /// Counts the connection against its address while it lives.
    _slot: admission::AddrSlot,
}

/// The connection's task. Admission and joining wait on the store, may
/// retry and may refuse: their state is ~10 KiB, against ~1 KiB for
/// reading. They run boxed and are freed once the connection is in, and
/// the task's own state is made before the socket and the arrival move in,
/// so neither is kept beside it: the task every idle connection keeps is
/// sized by reading alone (collab-bench `connect_rate`, KiB per idle
/// connection).
fn serve(socket: WebSocket, arrival: Arrival) -> impl std::future::Future<Output = ()> {
    let entering = Box::pin(enter(socket, arrival));
    async move {
        if let Some(session) = entering.await {
            run(session).await;
        }
    }
}

/// Admits the connection, joins its room (retrying when the room's task
/// ended meanwhile) and sends `init`; a refusal is sent on the socket.
async fn enter(mut socket: WebSocket, arrival: Arrival) -> Option<Session> {
    let Arrival {
        app,
        id,
        params,
        auth,
        owner_token,
        ip,
    } = arrival;
    let app = &app;
    let admitted = admission::admit(&mut socket, app, &id, &params, auth, owner_token, ip).await?;
    drop(params);
    let Admitted {
        slot,
        client_id,
        since,
        watcher,
        project,
        typing,
        owner,
        name,
        access,
        room,
    } = admitted;
    let outbox = Outbox::new(app.config.outgoing_queue);
    let request = |viewer_id, link| JoinRequest {
        client_id: client_id.clone(),
        name: ids::clean_name(name.as_deref()),
        since,
        viewer_id,
        link,
        watcher,
        project,
        typing,
        owner,
        sink: outbox.clone(),
    };
    let mut joined = room
        .join(request(access.viewer_id.clone(), access.link.clone()))
        .await;
    let mut room = room;
    for retry in 0..JOIN_RETRIES {
        if !matches!(joined, Err(JoinError::Gone)) {
            break;
        }
        // The task ended while we joined (expired, reset after a store
        // hiccup, or it found Redis's history parted from its own): a fresh
        // one answers, or the room is really gone (4004 below). A task on
        // its way out may still be found once; its successor follows.
        if retry > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        match find_room(app, &id).await {
            Ok((again, fresh)) => {
                joined = fresh.join(request(again.viewer_id, again.link)).await;
                room = fresh;
            }
            // Gone for good, or the store is unavailable: say which.
            Err((code, message, close)) => {
                refuse(&mut socket, code, message, close).await;
                return None;
            }
        }
    }
    let joined = match joined {
        Ok(j) => j,
        Err(e) => {
            let msg = e.to_string();
            let (code, message, close) = match &e {
                JoinError::FutureRevision { .. } => (
                    error_code::FUTURE_REVISION,
                    msg.as_str(),
                    close_code::MALFORMED,
                ),
                JoinError::Full(_) => {
                    app.metrics.reject(Reject::TooManyConnections);
                    let close = close_code::TRY_AGAIN_LATER;
                    (error_code::TOO_MANY_CONNECTIONS, msg.as_str(), close)
                }
                JoinError::Store(e) => {
                    tracing::warn!(error = %e, "cannot join room");
                    UNAVAILABLE
                }
                JoinError::Gone | JoinError::StaleLink => NOT_FOUND,
                JoinError::Removed => (error_code::REMOVED, msg.as_str(), close_code::REMOVED),
                JoinError::NoMainDocument => (
                    error_code::DOCUMENT_DELETED,
                    msg.as_str(),
                    close_code::ROOM_NOT_FOUND,
                ),
            };
            refuse(&mut socket, code, message, close).await;
            return None;
        }
    };
    if let ServerMessage::Init { user_id, .. } = &joined.init {
        tracing::Span::current().record("user", user_id.as_str());
    }
    let guard = LeaveGuard {
        room: room.clone(),
        conn_id: joined.conn_id,
    };
    let init = joined.init.to_json();
    drop(joined.init);
    socket.send(Message::Text(init.into())).await.ok()?;
    let (sink, stream) = socket.split();
    let writer = tokio::spawn(write_half(
        sink,
        outbox.signals.clone(),
        app.metrics.clone(),
    ));
    Some(Session {
        app: app.clone(),
        stream,
        writer,
        room,
        conn_id: joined.conn_id,
        outbox,
        guard,
        _slot: slot,
    })
}

/// Runs a joined connection: reads until the client, the writer or a
/// shutdown ends it, then leaves the room and closes the socket cleanly.
async fn run(mut session: Session) {
    // (Borrowed in place, not moved out: a moved copy would sit in the
    // task's state beside the original.)
    let Session {
        ref app,
        ref mut stream,
        ref mut writer,
        ref room,
        conn_id,
        ref outbox,
        guard,
        _slot: _,
    } = session;
    // The writer ends on a close request; should this handler end without
    // one (a panic), it must not wait for one forever.
    let _stop_writer = AbortOnDrop(writer.abort_handle());
    let mut shutdown = app.shutdown.clone();
    let reader = read_half(stream, room, conn_id, outbox, app);
    let (reason, writer_ended) = tokio::select! {
        reason = reader => {
            outbox.close_unless_closing(close_code::NORMAL, reason);
            (reason, false)
        }
        _ = &mut *writer => ("writer ended", true),
        _ = async { shutdown.wait_for(|stop| *stop).await.map(|_| ()) } => {
            // The room drains first; this is the fallback for stragglers.
            outbox.close_unless_closing(close_code::RESTARTING, error_code::SHUTTING_DOWN);
            ("server shutting down", false)
        }
    };
    // Out of the room now (its slot is free for others); the socket still
    // has to close cleanly.
    drop(guard);
    // Let the writer deliver what the room queued (an error, a close).
    linger((!writer_ended).then_some(writer), stream).await;
    tracing::debug!(%reason, "connection closed");
}

/// Waits (at most [`FLUSH_TIMEOUT`]) for the writer to send what is queued
/// and the close frame, and for the client to answer the close, reading and
/// dropping whatever it still sends meanwhile. A socket closed with unread
/// data in it is reset rather than closed, and a reset destroys what the
/// client had not read yet: a flooding client would never see its
/// `rate_limited` error and 1008 close (nor the pongs before them).
async fn linger(
    mut writer: Option<&mut tokio::task::JoinHandle<()>>,
    stream: &mut SplitStream<WebSocket>,
) {
    let drain = async {
        // The client's close frame (answering ours) ends it, as does the
        // end of the stream; after the close the client sends nothing more.
        while let Some(Ok(frame)) = stream.next().await {
            if matches!(frame, Message::Close(_)) {
                break;
            }
        }
    };
    let written = async {
        if let Some(w) = writer.as_deref_mut() {
            let _ = w.await;
        }
    };
    if tokio::time::timeout(FLUSH_TIMEOUT, async { tokio::join!(written, drain) })
        .await
        .is_err()
    {
        if let Some(w) = writer {
            w.abort();
        }
    }
}
