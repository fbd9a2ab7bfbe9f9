//! A connection's outbox: what its room (and the connection itself, for
//! errors and pongs) queues for the writer, the newest caret of each other
//! user, and a request to close. The room fills it through [`ConnSink`];
//! the writer drains it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::ws::Utf8Bytes;
use collab_protocol::ServerMessage;
use tokio::sync::Notify;

use crate::room::ConnSink;

/// What a room tells one connection's writer: the ordered messages, the
/// newest caret of each other user (state, not events, so a slow reader
/// gets the latest position instead of a backlog) and a request to close.
///
/// The queue is a plain locked deque rather than a channel so the room task
/// can queue without waking the writer: it queues a whole burst of commits,
/// then wakes each writer once ([`Outbox::enqueue`], [`Outbox::wake`]), and
/// one write carries the burst. An idle connection's queue allocates nothing.
pub struct ConnSignals {
    queue: Mutex<VecDeque<Queued>>,
    limit: usize,
    /// Queued and not yet written: the queue plus the writer's batch, so a
    /// lagging reader is caught at `limit`, not at twice that.
    unsent: AtomicUsize,
    cursors: Mutex<HashMap<Arc<str>, Utf8Bytes>>,
    close: Mutex<Option<(u16, String)>>,
    ping: AtomicBool,
    oldest_queued: AtomicU64,
    /// Woken whenever the queue, `cursors`, `close` or `ping` changes.
    pub notify: Notify,
}

impl ConnSignals {
    /// Signals for a connection whose queue holds at most `limit` messages.
    pub fn new(limit: usize) -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            limit,
            unsent: AtomicUsize::new(0),
            cursors: Mutex::default(),
            close: Mutex::default(),
            ping: AtomicBool::new(false),
            oldest_queued: AtomicU64::new(0),
            notify: Notify::new(),
        }
    }

    /// Moves the queued messages into `into` (empty), swapping buffers so
    /// neither side allocates again for the next burst.
    pub fn take_queue(&self, into: &mut VecDeque<Queued>) {
        debug_assert!(into.is_empty());
        std::mem::swap(
            &mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()),
            into,
        );
    }

    /// Takes the queued messages (into `into`, as [`Self::take_queue`]) and
    /// the pending carets in one snapshot, to be sent in that order. Taken
    /// together, under both locks, because each order of two separate takes
    /// breaks one rule: a caret must follow the operation it refers to
    /// (queued before the caret was set), and must not follow its user's
    /// `user_left` (the caret is dropped before that is queued).
    ///
    /// The carets' map is moved out whole rather than drained: a drained
    /// map keeps its table, and a connection in a 50-user room would keep
    /// room for 49 carets (~2.4 KiB) while idle.
    pub fn take(
        &self,
        into: &mut VecDeque<Queued>,
    ) -> std::collections::hash_map::IntoValues<Arc<str>, Utf8Bytes> {
        let mut cursors = self.cursors.lock().unwrap_or_else(|e| e.into_inner());
        self.take_queue(into);
        std::mem::take(&mut *cursors).into_values()
    }

    /// The writer wrote `n` messages it took.
    pub fn written(&self, n: usize) {
        self.unsent.fetch_sub(n, Ordering::Relaxed);
    }

    /// Asks the writer to send a WebSocket ping.
    pub fn request_ping(&self) {
        self.ping.store(true, Ordering::Relaxed);
        self.notify.notify_one();
    }

    /// How long the oldest message written since the last call waited in
    /// the queue.
    pub fn take_queue_wait(&self) -> Option<std::time::Duration> {
        let since = self.oldest_queued.swap(0, Ordering::Relaxed);
        (since != 0).then(|| std::time::Duration::from_nanos(now_nanos().saturating_sub(since)))
    }

    /// Takes the ping request.
    pub fn take_ping(&self) -> bool {
        self.ping.swap(false, Ordering::Relaxed)
    }

    /// Takes the close request, if any.
    pub fn take_close(&self) -> Option<(u16, String)> {
        self.close.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Sets a user's newest caret; the writer learns of it at the next wake.
    fn set_cursor(&self, user_id: Arc<str>, msg: Utf8Bytes) {
        self.cursors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(user_id, msg);
    }

    fn drop_cursor(&self, user_id: &str) {
        self.cursors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(user_id);
    }
}

/// A queued message: shared by every connection it goes to, and one pointer
/// wide, so each connection's queue block stays small (an idle connection
/// holds one block of slots).
pub type Queued = Arc<Utf8Bytes>;

/// A message to queue, from its JSON.
pub fn queued(json: String) -> Queued {
    Arc::new(Utf8Bytes::from(json))
}

/// Nanoseconds since the process started, never 0 (0 means "unset").
fn now_nanos() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64 + 1
}

/// The sending side of one connection, held by the room task (and by the
/// connection itself, for its own errors and pongs).
#[derive(Clone)]
pub struct Outbox {
    /// The queue, carets and close request the writer drains.
    pub signals: Arc<ConnSignals>,
}

impl Outbox {
    /// An outbox whose queue holds at most `limit` messages.
    pub fn new(limit: usize) -> Self {
        Self {
            signals: Arc::new(ConnSignals::new(limit)),
        }
    }

    /// Queues a message and wakes the writer; false only when the queue is
    /// full (the reader lags).
    pub fn push(&self, msg: Queued) -> bool {
        let queued = self.enqueue(msg);
        self.wake();
        queued
    }

    /// Queues a message without waking the writer: the caller wakes it
    /// ([`Self::wake`]) once it has queued everything it is about to.
    pub fn enqueue(&self, msg: Queued) -> bool {
        // The oldest unwritten message's time, for the fan-out latency
        // metric: one word per connection rather than a timestamp per
        // message keeps idle connections small.
        // (Read first: the clock is only read for a message that finds the
        // queue drained.)
        if self.signals.oldest_queued.load(Ordering::Relaxed) == 0 {
            let _ = self.signals.oldest_queued.compare_exchange(
                0,
                now_nanos(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        let mut queue = self.signals.queue.lock().unwrap_or_else(|e| e.into_inner());
        if self.signals.unsent.load(Ordering::Relaxed) >= self.signals.limit {
            return false;
        }
        queue.push_back(msg);
        self.signals.unsent.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Wakes the writer to send what is queued.
    pub fn wake(&self) {
        self.signals.notify.notify_one();
    }

    /// Asks the writer to send what is queued, then close with `code`.
    pub fn close(&self, code: u16, reason: &str) {
        *self.signals.close.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((code, reason.to_owned()));
        self.signals.notify.notify_one();
    }

    /// Asks for a normal close unless another close is already requested.
    pub fn close_unless_closing(&self, code: u16, reason: &str) {
        let mut close = self.signals.close.lock().unwrap_or_else(|e| e.into_inner());
        if close.is_none() {
            *close = Some((code, reason.to_owned()));
        }
        drop(close);
        self.signals.notify.notify_one();
    }

    /// Sends an `error` message, then closes with `close`.
    pub fn fail(&self, code: &str, message: &str, close: u16) {
        self.push(queued(ServerMessage::error(code, message).to_json()));
        self.close(close, code);
    }
}

impl ConnSink for Outbox {
    type Msg = Queued;

    fn message(json: String) -> Queued {
        queued(json)
    }

    fn enqueue(&self, msg: &Queued) -> bool {
        Outbox::enqueue(self, msg.clone())
    }

    fn wake(&self) {
        Outbox::wake(self);
    }

    fn set_caret(&self, user_id: &Arc<str>, msg: &Queued) {
        self.signals
            .set_cursor(user_id.clone(), Utf8Bytes::clone(msg));
    }

    fn drop_caret(&self, user_id: &str) {
        self.signals.drop_cursor(user_id);
    }

    fn fail(&self, code: &str, message: &str, close: u16) {
        Outbox::fail(self, code, message, close);
    }

    fn close(&self, code: u16, reason: &str) {
        Outbox::close(self, code, reason);
    }
}
