//! One task per live room: the room's single writer.
//!
//! Every edit, caret move, join and leave of a room goes through its task's
//! queue, so commits are totally ordered without locks, and fan-out happens in
//! commit order. Connections talk to the task through a [`RoomHandle`]; the
//! task talks back through each connection's [`Outbox`].

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::ws::Utf8Bytes;
use collab_protocol::{Operation, ServerMessage, UserInfo};
use ropey::Rope;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::config::Config;
use crate::ids;
use crate::metrics::Metrics;
use crate::store::{Backend, StoreError};

mod clients;
mod history;
mod lineage;
mod own_ops;
pub use history::HistoryLimits;
mod task;
use task::RoomTask;

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
    pub fn take(&self, into: &mut VecDeque<Queued>) -> Vec<Utf8Bytes> {
        let mut cursors = self.cursors.lock().unwrap_or_else(|e| e.into_inner());
        self.take_queue(into);
        cursors.drain().map(|(_, m)| m).collect()
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

/// A connection asking to join a room.
pub struct JoinRequest {
    /// The client's id (kept across its reconnects).
    pub client_id: String,
    /// Cleaned display name.
    pub name: String,
    /// The revision a reconnecting client last saw.
    pub since: Option<u64>,
    /// Set when joining through the room's read-only id: that id, which the
    /// viewer sees as the room id (the editing id is never revealed to it).
    pub viewer_id: Option<String>,
    /// The client asked to only watch (`role=watcher`, e.g. `collab watch`):
    /// announced as a watcher, and its edits are refused like a viewer's.
    pub watcher: bool,
    /// Where the room sends this connection's messages.
    pub outbox: Outbox,
}

/// What a joining connection needs for its `init`.
pub struct Joined {
    /// Identifies the connection to the room task.
    pub conn_id: u64,
    /// The `init` message, with the document at the revision the connection
    /// starts from; everything after it arrives through the outbox queue.
    pub init: ServerMessage,
}

/// Why a join was refused.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// `since` names a revision the room has not reached.
    #[error("since={since} is ahead of the room's revision {revision}")]
    FutureRevision {
        /// Asked for.
        since: u64,
        /// The room's.
        revision: u64,
    },
    /// The room was removed while joining.
    #[error("room not found")]
    Gone,
    /// The room holds as many connections as allowed.
    #[error("the room is full ({0} connections); try again later")]
    Full(usize),
    /// The store could not be reached.
    #[error("the room's store is unavailable: {0}")]
    Store(#[from] StoreError),
}

/// A point-in-time view of a room, for REST.
pub struct Snapshot {
    /// Current revision.
    pub revision: u64,
    /// Document at that revision (cheap clone of the rope).
    pub doc: Rope,
    /// Language hint.
    pub language: String,
    /// Users present.
    pub users: Vec<UserInfo>,
}

pub(crate) enum Command {
    Join(JoinRequest, oneshot::Sender<Result<Joined, JoinError>>),
    Leave {
        conn_id: u64,
    },
    Edit {
        conn_id: u64,
        revision: u64,
        seq: u64,
        operation: Operation,
    },
    Cursor {
        conn_id: u64,
        revision: u64,
        cursor: u64,
        anchor: Option<u64>,
    },
    Snapshot(oneshot::Sender<Snapshot>),
    /// Commit what is queued, then close every connection with 1012.
    Drain(oneshot::Sender<()>),
}

/// How connections and the REST layer reach a room's task.
#[derive(Clone)]
pub struct RoomHandle {
    pub(crate) tx: mpsc::Sender<Command>,
}

impl RoomHandle {
    /// Joins the room. Errors when the room refused or went away.
    pub async fn join(&self, req: JoinRequest) -> Result<Joined, JoinError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Join(req, tx))
            .await
            .map_err(|_| JoinError::Gone)?;
        rx.await.map_err(|_| JoinError::Gone)?
    }

    /// Leaves the room; safe to call from `Drop`.
    pub fn leave(&self, conn_id: u64) {
        if let Err(mpsc::error::TrySendError::Full(cmd)) =
            self.tx.try_send(Command::Leave { conn_id })
        {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(cmd).await;
            });
        }
    }

    /// Submits an edit; false when the room is gone.
    pub async fn edit(&self, conn_id: u64, revision: u64, seq: u64, operation: Operation) -> bool {
        self.tx
            .send(Command::Edit {
                conn_id,
                revision,
                seq,
                operation,
            })
            .await
            .is_ok()
    }

    /// Submits a caret move; false when the room is gone.
    pub async fn cursor(
        &self,
        conn_id: u64,
        revision: u64,
        cursor: u64,
        anchor: Option<u64>,
    ) -> bool {
        self.tx
            .send(Command::Cursor {
                conn_id,
                revision,
                cursor,
                anchor,
            })
            .await
            .is_ok()
    }

    /// The room's current state, or `None` when it is gone.
    pub async fn snapshot(&self) -> Option<Snapshot> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Command::Snapshot(tx)).await.ok()?;
        rx.await.ok()
    }
}

/// The room tasks of this instance and, for the in-memory backend, the
/// read-only ids of its rooms.
#[derive(Default)]
pub(crate) struct Registry {
    pub(crate) rooms: HashMap<String, RoomHandle>,
    /// Read-only id -> room id (in memory; Redis keeps its own mapping).
    pub(crate) viewers: HashMap<String, String>,
    /// What rooms whose task ended abnormally knew of their history, until
    /// the next task of the room here loads it (with Redis).
    prior: HashMap<String, task::Prior>,
}

/// How a client reaches a room: through its id (editor) or its read-only id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The room's (editing) id.
    pub room_id: String,
    /// The read-only id used, when joining as a viewer.
    pub viewer_id: Option<String>,
}

/// Every room this server holds a task for, by id, and the backend that
/// stores them.
pub struct Rooms {
    registry: Arc<Mutex<Registry>>,
    config: Config,
    backend: Backend,
    metrics: Arc<Metrics>,
}

impl Rooms {
    /// An empty registry over `backend`.
    pub fn new(config: Config, backend: Backend, metrics: Arc<Metrics>) -> Self {
        Self {
            registry: Arc::default(),
            config,
            backend,
            metrics,
        }
    }

    /// The backend.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Creates a room holding `code`; returns its id and its read-only id.
    pub async fn create(&self, code: &str, language: &str) -> Result<(String, String), StoreError> {
        let id = ids::new_room_id();
        let viewer = ids::new_room_id();
        match &self.backend {
            Backend::Memory => {
                let task = RoomTask::new(
                    id.clone(),
                    code,
                    language,
                    self.config.clone(),
                    Backend::Memory,
                    self.metrics.clone(),
                )
                .with_viewer_id(viewer.clone());
                self.lock().viewers.insert(viewer.clone(), id.clone());
                self.start(id.clone(), task);
            }
            // The task starts when someone joins, on whichever instance.
            Backend::Redis(store) => store.create_room(&id, &viewer, code, language).await?,
        }
        Ok((id, viewer))
    }

    /// Starts `task` unless a live task for the room exists (another
    /// connection may have loaded it meanwhile): check and insert under one
    /// lock, so a room never has two tasks on one instance.
    fn start(&self, id: String, task: RoomTask) -> RoomHandle {
        let mut reg = self.lock();
        if let Some(h) = reg.rooms.get(&id).filter(|h| !h.tx.is_closed()) {
            return h.clone();
        }
        let (tx, rx) = mpsc::channel(1024);
        let handle = RoomHandle { tx };
        reg.rooms.insert(id, handle.clone());
        tokio::spawn(task.run(rx, handle.clone(), self.registry.clone()));
        handle
    }

    /// Which room an id opens, and whether read-only; `None` when none.
    pub async fn resolve(&self, id: &str) -> Result<Option<Access>, StoreError> {
        if !ids::is_valid_room_id(id) {
            return Ok(None);
        }
        let editor = Access {
            room_id: id.to_owned(),
            viewer_id: None,
        };
        {
            let reg = self.lock();
            if reg.rooms.get(id).is_some_and(|h| !h.tx.is_closed()) {
                return Ok(Some(editor));
            }
            if let Some(room_id) = reg.viewers.get(id) {
                return Ok(Some(Access {
                    room_id: room_id.clone(),
                    viewer_id: Some(id.to_owned()),
                }));
            }
        }
        match &self.backend {
            Backend::Memory => Ok(None),
            Backend::Redis(store) => {
                if store.exists(id).await? {
                    return Ok(Some(editor));
                }
                Ok(store.viewer_room(id).await?.map(|room_id| Access {
                    room_id,
                    viewer_id: Some(id.to_owned()),
                }))
            }
        }
    }

    /// The task of the room with this id, started from the store when this
    /// instance has none yet; `None` when the room does not exist.
    pub async fn get(&self, id: &str) -> Result<Option<RoomHandle>, StoreError> {
        if !ids::is_valid_room_id(id) {
            return Ok(None);
        }
        if let Some(h) = self.local(id) {
            return Ok(Some(h));
        }
        let Backend::Redis(store) = &self.backend else {
            return Ok(None);
        };
        let Some(mut loaded) = store.load(id).await? else {
            return Ok(None);
        };
        // The room's last task here ended abnormally: make sure Redis still
        // holds the history it applied, before any client reconnecting from
        // it is rebased onto what Redis holds.
        let prior = self.lock().prior.remove(id);
        if let Some(prior) = prior {
            let theirs = task::loaded_marks(&loaded);
            if lineage::parted(prior.revision, &prior.marks, &theirs, loaded.revision) {
                let fork = lineage::fork_point(&prior.marks, &theirs);
                match store.record_fork(id, fork).await {
                    Ok(recorded) => {
                        tracing::warn!(
                            room = %short(id),
                            revision = prior.revision,
                            redis_revision = loaded.revision,
                            fork = ?recorded,
                            "the room's history in Redis parted from the one this instance \
                             applied (Redis restored from an older state?): continuing from \
                             what Redis holds"
                        );
                        loaded.fork = recorded.or(loaded.fork);
                    }
                    Err(e) => {
                        self.lock().prior.insert(id.to_owned(), prior);
                        return Err(e);
                    }
                }
            }
        }
        let task = RoomTask::from_loaded(
            id.to_owned(),
            loaded,
            self.config.clone(),
            self.backend.clone(),
            self.metrics.clone(),
        )?;
        Ok(Some(self.start(id.to_owned(), task)))
    }

    fn local(&self, id: &str) -> Option<RoomHandle> {
        self.lock()
            .rooms
            .get(id)
            .filter(|h| !h.tx.is_closed())
            .cloned()
    }

    /// The room's current state, from its task or straight from the store.
    pub async fn snapshot(&self, id: &str) -> Result<Option<Snapshot>, StoreError> {
        if !ids::is_valid_room_id(id) {
            return Ok(None);
        }
        if let Some(h) = self.local(id) {
            if let Some(s) = h.snapshot().await {
                return Ok(Some(s));
            }
        }
        match &self.backend {
            Backend::Memory => Ok(None),
            Backend::Redis(store) => store.load(id).await?.map(task::snapshot_of).transpose(),
        }
    }

    /// How many rooms have a task on this instance.
    pub fn active(&self) -> usize {
        self.lock().rooms.len()
    }

    /// Asks every room to commit what it has queued and close its
    /// connections with 1012; returns when all did.
    pub async fn drain_all(&self) {
        let handles: Vec<RoomHandle> = self.lock().rooms.values().cloned().collect();
        let mut waits = Vec::new();
        for h in handles {
            let (tx, rx) = oneshot::channel();
            if h.tx.send(Command::Drain(tx)).await.is_ok() {
                waits.push(rx);
            }
        }
        for w in waits {
            let _ = w.await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A room id shortened for logs: ids are capabilities, never logged whole.
pub fn short(id: &str) -> &str {
    &id[..id.len().min(6)]
}
