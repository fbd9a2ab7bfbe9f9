//! One WebSocket connection: a reader half that parses client messages and
//! hands them to the room task, and a writer half that drains the
//! connection's bounded queue. When either half ends, the other is stopped;
//! leaving the room happens in a drop guard so it runs on every exit path.
//! Everything a hostile or broken client can do is bounded here: origin,
//! token, connections per address, message size and rate, idleness.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use collab_protocol::{close_code, error_code, is_valid_client_id, ClientMessage, ServerMessage};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};

use crate::auth::{AuthError, Claims};
use crate::ids;
use crate::metrics::{Metrics, Reject};
use crate::room::{
    queued, short, Access, ConnSignals, JoinError, JoinRequest, Outbox, Queued, RoomHandle,
};
use crate::AppState;

/// How often a join is tried again when the room's task ended meanwhile.
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
/// A writer keeps the buffer of its last burst for the next one unless it
/// grew past this many messages.
const SPARE_SLOTS: usize = 64;

/// True when `origin` may open WebSockets and call REST from a browser.
pub fn origin_allowed(allowed: &Option<Vec<String>>, origin: Option<&str>) -> bool {
    match (allowed, origin) {
        (None, _) | (_, None) => true, // no list, or not a browser
        (Some(list), Some(o)) => list.iter().any(|a| a == o),
    }
}

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
    // Only the address goes into the upgrade: the header map (slices of the
    // request's 8 KiB read buffer) would otherwise live as long as the socket.
    let ip = app.config.trusted_proxies.client_ip(peer.ip(), &headers);
    let max = app.config.max_message_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| async move {
            let _alive = app.connections.clone();
            let span =
                tracing::info_span!("conn", room = %short(&room_id), user = tracing::field::Empty);
            let conn = serve(socket, app, room_id, params, auth, ip);
            tracing::Instrument::instrument(conn, span).await;
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

/// Counts a connection against its address (and the gauge) while it lives.
struct AddrSlot {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
    metrics: Arc<Metrics>,
}

impl AddrSlot {
    fn take(app: &AppState, ip: IpAddr) -> Option<Self> {
        let mut counts = app.ip_conns.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= app.config.max_conns_per_ip {
            return None;
        }
        *n += 1;
        app.metrics.connections.fetch_add(1, Ordering::Relaxed);
        Some(Self {
            counts: app.ip_conns.clone(),
            ip,
            metrics: app.metrics.clone(),
        })
    }
}

impl Drop for AddrSlot {
    fn drop(&mut self) {
        self.metrics.connections.fetch_sub(1, Ordering::Relaxed);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

async fn serve(
    mut socket: WebSocket,
    app: AppState,
    id: String,
    params: HashMap<String, String>,
    auth: Option<Result<Claims, AuthError>>,
    ip: IpAddr,
) {
    let claims = match auth {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            app.metrics.reject(Reject::Unauthorized);
            let msg = e.to_string();
            return refuse(
                socket,
                error_code::UNAUTHORIZED,
                &msg,
                close_code::UNAUTHORIZED,
            )
            .await;
        }
    };
    let Some(_slot) = AddrSlot::take(&app, ip) else {
        app.metrics.reject(Reject::TooManyConnections);
        let msg = format!(
            "more than {} connections from your address",
            app.config.max_conns_per_ip
        );
        return refuse(
            socket,
            error_code::TOO_MANY_CONNECTIONS,
            &msg,
            close_code::TRY_AGAIN_LATER,
        )
        .await;
    };
    let client_id = match params.get("client_id") {
        Some(id) if is_valid_client_id(id) => id.clone(),
        Some(_) => {
            app.metrics.reject(Reject::Malformed);
            let msg = "client_id must be 1-64 chars of [A-Za-z0-9_-]";
            return refuse(socket, error_code::MALFORMED, msg, close_code::MALFORMED).await;
        }
        None => ids::new_client_id(),
    };
    let since = match params.get("since").map(|s| s.parse::<u64>()) {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(_)) => {
            app.metrics.reject(Reject::Malformed);
            let msg = "since must be a revision number";
            return refuse(socket, error_code::MALFORMED, msg, close_code::MALFORMED).await;
        }
    };
    let watcher = match params.get("role").map(String::as_str) {
        None | Some("editor") => false,
        Some("watcher") => true,
        Some(_) => {
            app.metrics.reject(Reject::Malformed);
            let msg = "role must be editor or watcher";
            return refuse(socket, error_code::MALFORMED, msg, close_code::MALFORMED).await;
        }
    };
    let (access, room) = match find_room(&app, &id).await {
        Ok(found) => found,
        Err((code, message, close)) => return refuse(socket, code, message, close).await,
    };

    let outbox = Outbox::new(app.config.outgoing_queue);
    // An authenticated user is who the token says.
    let name = claims
        .map(|c| c.sub)
        .or_else(|| params.get("name").cloned());
    let request = |viewer_id| JoinRequest {
        client_id: client_id.clone(),
        name: ids::clean_name(name.as_deref()),
        since,
        viewer_id,
        watcher,
        outbox: outbox.clone(),
    };
    let mut joined = room.join(request(access.viewer_id.clone())).await;
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
        match find_room(&app, &id).await {
            Ok((again, fresh)) => {
                joined = fresh.join(request(again.viewer_id)).await;
                room = fresh;
            }
            // Gone for good, or the store is unavailable: say which.
            Err((code, message, close)) => return refuse(socket, code, message, close).await,
        }
    }
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
        Err(e @ JoinError::Full(_)) => {
            app.metrics.reject(Reject::TooManyConnections);
            let msg = e.to_string();
            return refuse(
                socket,
                error_code::TOO_MANY_CONNECTIONS,
                &msg,
                close_code::TRY_AGAIN_LATER,
            )
            .await;
        }
        Err(JoinError::Store(e)) => {
            tracing::warn!(error = %e, "cannot join room");
            let (code, message, close) = UNAVAILABLE;
            return refuse(socket, code, message, close).await;
        }
        Err(JoinError::Gone) => {
            let (code, message, close) = NOT_FOUND;
            return refuse(socket, code, message, close).await;
        }
    };
    if let ServerMessage::Init { user_id, .. } = &joined.init {
        tracing::Span::current().record("user", user_id.as_str());
    }
    let guard = LeaveGuard {
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

    let (sink, mut stream) = socket.split();
    let mut writer = tokio::spawn(write_half(
        sink,
        outbox.signals.clone(),
        app.metrics.clone(),
    ));
    // The writer ends on a close request; should this handler end without
    // one (a panic), it must not wait for one forever.
    let _stop_writer = AbortOnDrop(writer.abort_handle());
    let mut shutdown = app.shutdown.clone();
    let reader = read_half(&mut stream, &room, joined.conn_id, &outbox, &app);
    let (reason, writer_ended) = tokio::select! {
        reason = reader => {
            outbox.close_unless_closing(close_code::NORMAL, reason);
            (reason, false)
        }
        _ = &mut writer => ("writer ended", true),
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
    linger((!writer_ended).then_some(&mut writer), &mut stream).await;
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

/// An `error` code, its message and the close code that follows.
type Refusal = (&'static str, &'static str, u16);

const NOT_FOUND: Refusal = (
    error_code::ROOM_NOT_FOUND,
    "no room with this id (it may have expired)",
    close_code::ROOM_NOT_FOUND,
);
const UNAVAILABLE: Refusal = (
    error_code::UNAVAILABLE,
    "the room's store is unavailable; try again shortly",
    close_code::TRY_AGAIN_LATER,
);

/// The room an id opens (editing or read-only) and its task.
async fn find_room(app: &AppState, id: &str) -> Result<(Access, RoomHandle), Refusal> {
    let unavailable = |e: crate::store::StoreError| {
        tracing::warn!(error = %e, "cannot open room");
        UNAVAILABLE
    };
    let access = app
        .rooms
        .resolve(id)
        .await
        .map_err(unavailable)?
        .ok_or(NOT_FOUND)?;
    let room = app
        .rooms
        .get(&access.room_id)
        .await
        .map_err(unavailable)?
        .ok_or(NOT_FOUND)?;
    Ok((access, room))
}

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
async fn read_half(
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
                outbox.push(queued(ServerMessage::Pong.to_json()));
                true
            }
        };
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

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Writes what the room queued (and the coalesced carets) each time it is
/// woken, one flush per wake, until a close is requested or the socket fails.
async fn write_half(
    mut sink: SplitSink<WebSocket, Message>,
    signals: Arc<ConnSignals>,
    metrics: Arc<Metrics>,
) {
    let mut batch = VecDeque::new();
    loop {
        signals.notify.notified().await;
        let cursors = signals.take(&mut batch);
        let Ok(sent) = feed_batch(&mut sink, &mut batch).await else {
            return;
        };
        if batch.capacity() > SPARE_SLOTS {
            // A burst is over: give its memory back.
            batch = VecDeque::new();
        }
        for m in cursors {
            if sink.feed(Message::Text(m)).await.is_err() {
                return;
            }
        }
        if signals.take_ping() && sink.feed(Message::Ping(Default::default())).await.is_err() {
            return;
        }
        if let Some((code, reason)) = signals.take_close() {
            // What was queued before the close was asked for (the error
            // that explains it) goes first.
            signals.take_queue(&mut batch);
            if feed_batch(&mut sink, &mut batch).await.is_err() {
                return;
            }
            if code == close_code::LAGGING {
                metrics.reject(Reject::Lagging);
            }
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            let _ = sink.send(Message::Close(Some(frame))).await;
            return;
        }
        if sink.flush().await.is_err() {
            return;
        }
        signals.written(sent);
        if let Some(wait) = signals.take_queue_wait() {
            metrics.fanout_latency.observe(wait);
        }
    }
}

/// Feeds a batch the room queued to the sink (without flushing it);
/// returns how many messages it held.
async fn feed_batch(
    sink: &mut SplitSink<WebSocket, Message>,
    batch: &mut VecDeque<Queued>,
) -> Result<usize, axum::Error> {
    let n = batch.len();
    for m in batch.drain(..) {
        sink.feed(Message::Text(Utf8Bytes::clone(&m))).await?;
    }
    Ok(n)
}
