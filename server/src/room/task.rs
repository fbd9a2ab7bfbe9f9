//! The room task: the single writer of one room on this instance.
//!
//! Edits are validated and transformed to the room's tip as they arrive,
//! then committed in batches: in memory a batch commits at once; with Redis
//! one batch is in flight at a time (one round trip commits everything that
//! arrived meanwhile), and on a conflict the task reads what it missed,
//! transforms the batch over it and retries. Committed operations, its own or
//! other instances', are applied and fanned out in revision order.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use collab_protocol::{
    close_code, error_code, CommittedOp, Operation, Role, ServerMessage, UserInfo,
};
use ropey::Rope;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::clients::{self, Dedup, Identities};
use super::history::{History, HistoryLimits, LogEntry};
use super::lineage::{self, Mark};
use super::own_ops::OwnOps;
use super::{
    queued, short, Command, JoinError, JoinRequest, Joined, Outbox, Queued, Registry, RoomHandle,
    Snapshot,
};
use crate::config::Config;
use crate::ids;
use crate::metrics::{Metrics, Reject};
use crate::store::redis::{CommitReply, Event, Feed, LoadedRoom, RedisStore, WireEntry, TURN};
use crate::store::{Backend, StoreError};

/// At most this many operations go into one Redis commit.
const MAX_BATCH: usize = 512;
/// Commands handled back to back before the writers are woken: bounds how
/// long the first connection of a burst waits for the rest of it.
const BURST: usize = 64;
/// A snapshot is written to Redis every this many revisions.
const SNAPSHOT_EVERY: u64 = 5000;
/// How often a Redis-backed task checks for missed operations and ghosts.
const SYNC_EVERY: Duration = Duration::from_secs(2);

type CommitFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<CommitReply, StoreError>> + Send>>;

impl LogEntry {
    fn from_wire(e: WireEntry) -> Self {
        Self {
            id: lineage::parse_id(e.h.as_deref()),
            revision: e.r,
            operation: e.o,
            user_id: e.u.into(),
            client_id: e.c.into(),
            seq: e.s,
        }
    }
}

/// An accepted edit not yet committed. `operation` is `original` (as the
/// client sent it, on `base`) transformed to follow everything committed, in
/// flight and pending before it. When the order changes (another instance
/// committed first) it is recomputed from `original` along the new order:
/// transforming along one path is what makes the server's result equal the
/// client's, which transforms along the order it receives operations in.
struct PendingEdit {
    /// The connection that sent it: it gets the ack, everyone else the
    /// `code_update`. A resend on a new connection takes the ack over.
    conn_id: u64,
    received: Instant,
    base: u64,
    original: Operation,
    operation: Operation,
    user_id: Arc<str>,
    client_id: Arc<str>,
    seq: u64,
    /// Its id in the room's history, drawn when it is sent to Redis (see
    /// `lineage`); 0 in memory.
    id: u64,
}

struct Conn {
    user_id: Arc<str>,
    client_id: Arc<str>,
    outbox: Outbox,
    lagging: bool,
    /// A viewer or a watcher: its edits are refused.
    role: Role,
    /// Messages or carets were queued without waking the writer.
    dirty: bool,
    /// Which of its client's commits this connection hears as acks.
    own: OwnOps,
}

struct Presence {
    info: UserInfo,
    conns: usize,
}

struct Remote {
    info: UserInfo,
    instance: String,
}

/// A Redis side effect, run in order by the task's effect runner so the
/// room task never waits on them.
enum Effect {
    Join(UserInfo),
    Leave(String),
    /// Publish the carets waiting in [`Coalesced::carets`].
    Carets,
    /// Write the snapshot waiting in [`Coalesced::snapshot`].
    Snapshot,
    Touch,
    /// Forget stale client records (see `clients`).
    ExpireClients,
    /// The periodic check for operations pub/sub lost: read the log after
    /// this revision and feed it to the task as if it had been published.
    Sync(u64),
    /// Remove the presence of users whose instance died, and tell the task.
    Reap,
}

/// A caret to publish: (revision, cursor, anchor).
type Caret = (u64, u64, Option<u64>);

/// What the room task hands its effect runner as state rather than as
/// queued effects, so a slow or unreachable Redis cannot make them pile up:
/// carets (the newest per user; one [`Effect::Carets`] is queued when the
/// first arrives), the newest snapshot not yet written (a newer one replaces
/// it: each holds a version of the document, up to its whole size), and
/// whether a periodic check is already queued.
#[derive(Default)]
struct Coalesced {
    carets: Mutex<HashMap<String, Caret>>,
    snapshot: Mutex<Option<(u64, Rope)>>,
    checking: AtomicBool,
}

/// Why the task ended.
enum Stop {
    Expired,
    /// Shut down: everything queued was committed, clients closed with 1012.
    Drained,
    /// Closing everyone with this code/reason; they reconnect and resync.
    Reset(u16, &'static str, String),
    /// Redis holds another history than the one this task applied (it was
    /// restored from an older state): record where the histories part,
    /// then close everyone with 1012; they reconnect to what Redis holds.
    Parted(String),
}

/// What a task that ended abnormally knew of the room's history, for the
/// next task of the room on this instance: should Redis turn out to hold
/// another history, the clients that reconnect from this one must not be
/// rebased onto it (see `lineage`).
pub(super) struct Prior {
    /// The revision the task had reached.
    pub(super) revision: u64,
    /// The ids of the revisions it kept.
    pub(super) marks: Vec<Mark>,
    /// When it ended (old records are dropped).
    pub(super) at: Instant,
}

pub(super) struct RoomTask {
    id: String,
    language: String,
    config: Config,
    backend: Backend,
    doc: Rope,
    revision: u64,
    log: History,
    limits: HistoryLimits,
    dedup: Dedup,
    identities: Identities,
    users: HashMap<Arc<str>, Presence>,
    remote: HashMap<Arc<str>, Remote>,
    conns: HashMap<u64, Conn>,
    next_conn: u64,
    last_activity: Instant,
    pending: Vec<PendingEdit>,
    in_flight: Vec<PendingEdit>,
    /// The Redis commit in flight, polled by this task itself (not spawned:
    /// a spawned task costs two more wake-ups per keystroke, to start it and
    /// to hear back from it).
    commit: Option<CommitFuture>,
    /// Other instances' operations ahead of the room's revision, waiting
    /// for the ones before them, each with the id of the operation it was
    /// committed after (0 when unknown).
    stash: BTreeMap<u64, (LogEntry, u64)>,
    /// The id of the operation that produced `revision`; 0 when unknown.
    tip: u64,
    /// The revision after which the room's history parted, if it did: a
    /// reconnect with a later `since` gets no `missed`.
    fork: Option<u64>,
    effects: Option<mpsc::UnboundedSender<Effect>>,
    coalesced: Arc<Coalesced>,
    stop: Option<Stop>,
    metrics: Arc<Metrics>,
    viewer_id: Option<String>,
    draining: Option<tokio::sync::oneshot::Sender<()>>,
    /// Set while another instance holds the commit turn.
    hold_until: Option<Instant>,
    /// Some connection was queued to without waking its writer.
    dirty: bool,
}

impl RoomTask {
    /// A new room's task, at revision 0.
    pub(super) fn new(
        id: String,
        code: &str,
        language: &str,
        config: Config,
        backend: Backend,
        metrics: Arc<Metrics>,
    ) -> Self {
        let limits = HistoryLimits {
            ops: config.history_ops,
            room_bytes: config.history_bytes,
            instance_bytes: config.history_bytes_total,
        };
        Self {
            id,
            language: language.to_owned(),
            config,
            backend,
            doc: Rope::from_str(code),
            revision: 0,
            log: History::new(metrics.history_bytes.clone()),
            limits,
            dedup: HashMap::new(),
            identities: HashMap::new(),
            users: HashMap::new(),
            remote: HashMap::new(),
            conns: HashMap::new(),
            next_conn: 1,
            last_activity: Instant::now(),
            pending: Vec::new(),
            in_flight: Vec::new(),
            commit: None,
            stash: BTreeMap::new(),
            tip: 0,
            fork: None,
            effects: None,
            coalesced: Arc::default(),
            stop: None,
            metrics,
            viewer_id: None,
            draining: None,
            hold_until: None,
            dirty: false,
        }
    }

    /// Remembers the room's read-only id (to forget it when the room ends).
    pub(super) fn with_viewer_id(mut self, viewer_id: String) -> Self {
        self.viewer_id = Some(viewer_id);
        self
    }

    /// A task for a room read from Redis.
    pub(super) fn from_loaded(
        id: String,
        loaded: LoadedRoom,
        config: Config,
        backend: Backend,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StoreError> {
        let mut task = Self::new(
            id,
            &loaded.snapshot,
            &loaded.language,
            config,
            backend,
            metrics,
        );
        task.viewer_id = loaded.viewer.clone();
        task.fork = loaded.fork;
        let tip = loaded.tip.as_deref().and_then(lineage::parse_tip);
        task.revision = loaded.snapshot_revision;
        for e in loaded.log {
            let e = LogEntry::from_wire(e);
            if e.revision > task.revision {
                if e.revision != task.revision + 1 {
                    return Err(StoreError::Corrupt(format!(
                        "log jumps from {} to {}",
                        task.revision, e.revision
                    )));
                }
                e.operation.apply(&mut task.doc).map_err(|err| {
                    StoreError::Corrupt(format!("revision {}: {err}", e.revision))
                })?;
                task.revision = e.revision;
            }
            task.log.push(e);
        }
        if task.revision != loaded.revision {
            return Err(StoreError::Corrupt(format!(
                "log ends at {} but the room is at {}",
                task.revision, loaded.revision
            )));
        }
        task.tip = match tip {
            Some((rev, id)) if rev == task.revision => id,
            _ => task.log.iter().last().map_or(0, |e| e.id),
        };
        // The log may reach back before the snapshot and past this
        // instance's budget; keep the tail that fits.
        task.trim_history();
        task.dedup = loaded
            .dedup
            .into_iter()
            .map(|(k, v)| (k.into(), v))
            .collect();
        task.identities = loaded
            .identities
            .into_iter()
            .map(|(k, (u, c))| (k.into(), (u.into(), c)))
            .collect();
        task.remote = loaded
            .presence
            .into_iter()
            .map(|p| {
                (
                    Arc::from(p.user.user_id.as_str()),
                    Remote {
                        info: p.user,
                        instance: p.instance,
                    },
                )
            })
            .collect();
        Ok(task)
    }

    fn redis(&self) -> Option<Arc<RedisStore>> {
        self.backend.redis().cloned()
    }

    pub(super) async fn run(
        mut self,
        mut rx: mpsc::Receiver<Command>,
        me: RoomHandle,
        registry: Arc<Mutex<Registry>>,
    ) {
        self.metrics
            .rooms
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (feed_tx, mut feed_rx) = mpsc::channel::<Feed>(4096);
        if let Some(store) = self.redis() {
            // Records of this instance are left over from a previous task.
            let stale: Vec<Arc<str>> = self
                .remote
                .iter()
                .filter(|(_, r)| r.instance == store.instance)
                .map(|(u, _)| u.clone())
                .collect();
            for u in stale {
                self.remote.remove(&u);
                let _ = store.leave(&self.id, &u).await;
            }
            store.subscribe(&self.id, feed_tx.clone());
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run_effects(
                store,
                self.id.clone(),
                self.viewer_id.clone(),
                rx,
                feed_tx.clone(),
                self.coalesced.clone(),
            ));
            self.effects = Some(tx);
        }
        drop(feed_tx);
        let tick = (self.config.room_ttl / 4).clamp(Duration::from_millis(50), SYNC_EVERY);
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A timer of its own: checking "2 s since the last check?" on the
        // 2 s expiry tick missed by a hair every other time, so the check
        // ran every 4 s (docs/redis.md promises 2).
        let mut sync_ticker = tokio::time::interval_at(Instant::now() + SYNC_EVERY, SYNC_EVERY);
        sync_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_touch = Instant::now();
        // A room loaded near the end of its TTL must not expire under us.
        self.effect(Effect::Touch);
        let redis = self.redis().is_some();
        while self.stop.is_none() {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => {
                        self.handle(cmd).await;
                        // A burst: handle what else is queued before waking
                        // the writers, so each writes the burst at once.
                        for _ in 1..BURST {
                            if self.stop.is_some() {
                                break;
                            }
                            let Ok(cmd) = rx.try_recv() else { break };
                            self.handle(cmd).await;
                        }
                    }
                    None => break,
                },
                feed = feed_rx.recv(), if redis => match feed {
                    Some(Feed::Event(ev)) => self.on_event(ev).await,
                    Some(Feed::Resync) => self.sync_from_store().await,
                    None => {}
                },
                reply = async { self.commit.as_mut().expect("guarded by the condition").await }, if self.commit.is_some() => {
                    self.commit = None;
                    self.on_commit(reply).await;
                }
                _ = tokio::time::sleep_until(self.hold_until.unwrap_or_else(Instant::now)), if self.hold_until.is_some() => {
                    self.hold_until = None;
                    self.flush();
                }
                _ = ticker.tick() => {
                    self.on_tick(redis, &mut last_touch).await;
                }
                _ = sync_ticker.tick(), if redis => self.on_sync_tick(),
            }
            self.wake_writers();
            if self.draining.is_some()
                && self.commit.is_none()
                && self.pending.is_empty()
                && self.stop.is_none()
            {
                for conn in self.conns.values() {
                    conn.outbox
                        .close(close_code::RESTARTING, error_code::SHUTTING_DOWN);
                }
                self.stop = Some(Stop::Drained);
            }
        }
        self.metrics
            .rooms
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        // Leaving: stop taking commands first, so nobody joins a dying task
        // (a join sent now fails at once, and the registry below no longer
        // hands this task out; a closed channel is skipped there too).
        rx.close();
        {
            let mut reg = registry.lock().unwrap_or_else(|e| e.into_inner());
            if reg
                .rooms
                .get(&self.id)
                .is_some_and(|h| h.tx.same_channel(&me.tx))
            {
                reg.rooms.remove(&self.id);
                if let Some(v) = &self.viewer_id {
                    if self.backend.redis().is_none() {
                        reg.viewers.remove(v);
                    }
                }
            }
            if self.redis().is_some()
                && matches!(self.stop, Some(Stop::Reset(..) | Stop::Parted(_)))
            {
                // In the same step as the task leaves the registry: the next
                // task of the room here must not load without it.
                let ttl = self.config.room_ttl;
                reg.prior.retain(|_, p| p.at.elapsed() < ttl);
                reg.prior.insert(
                    self.id.clone(),
                    Prior {
                        revision: self.revision,
                        marks: self.marks(),
                        at: Instant::now(),
                    },
                );
            }
        }
        if let Some(store) = self.redis() {
            store.unsubscribe(&self.id);
        }
        match self.stop.take() {
            Some(Stop::Reset(code, reason, detail)) => {
                tracing::warn!(room = %short(&self.id), %detail, "room task reset; clients reconnect");
                for conn in self.conns.values() {
                    conn.outbox.fail(reason, &detail, code);
                }
                // Tell a reconnecting client's new instance (maybe this one) nothing:
                // its presence records are removed by the leaves below.
                let users: Vec<Arc<str>> = self.users.keys().cloned().collect();
                if let Some(store) = self.redis() {
                    for u in users {
                        let _ = store.leave(&self.id, &u).await;
                    }
                }
            }
            Some(Stop::Parted(detail)) => {
                let fork = match self.redis() {
                    Some(store) => record_parting(&store, &self.id, &self.marks()).await,
                    None => None,
                };
                tracing::warn!(
                    room = %short(&self.id),
                    %detail,
                    revision = self.revision,
                    ?fork,
                    "the room's history in Redis parted from this instance's (Redis restored \
                     from an older state?): resynchronizing to what Redis holds; clients \
                     reconnect, and those past the fork keep their unacknowledged edits aside"
                );
                let msg = match fork {
                    Some(f) => format!(
                        "the room's store went back to an older state; the room continues from \
                         what it holds, which shares revisions up to {f} with yours. Reconnect: \
                         edits after that cannot be merged automatically"
                    ),
                    None => "the room's store went back to an older state; reconnect".to_owned(),
                };
                for conn in self.conns.values() {
                    conn.outbox
                        .fail(error_code::HISTORY_RESET, &msg, close_code::RESTARTING);
                }
                let users: Vec<Arc<str>> = self.users.keys().cloned().collect();
                if let Some(store) = self.redis() {
                    for u in users {
                        let _ = store.leave(&self.id, &u).await;
                    }
                }
            }
            Some(Stop::Drained) => {
                // Connections close with 1012 and reconnect elsewhere: their
                // presence here ends now, not when a heartbeat expires.
                if let Some(store) = self.redis() {
                    for u in self.users.keys() {
                        let _ = store.leave(&self.id, u).await;
                    }
                }
                if let Some(tx) = self.draining.take() {
                    let _ = tx.send(());
                }
            }
            Some(Stop::Expired) | None => {
                tracing::info!(room = %short(&self.id), "room task ended");
            }
        }
        // A commit still in flight is dropped: it happened in Redis or not,
        // and its clients resend anything unacknowledged to a fresh task.
        self.commit = None;
    }

    fn reset(&mut self, code: u16, reason: &'static str, detail: String) {
        self.stop = Some(Stop::Reset(code, reason, detail));
    }

    /// Redis holds another history than this task applied: stop applying
    /// anything and resynchronize (see [`Stop::Parted`]).
    fn parted(&mut self, detail: String) {
        if !matches!(self.stop, Some(Stop::Parted(_))) {
            self.stop = Some(Stop::Parted(detail));
        }
    }

    /// Learns where the room's history parted, if Redis says so.
    fn note_fork(&mut self, fork: Option<u64>) {
        if let Some(f) = fork {
            self.fork = Some(self.fork.map_or(f, |mine| mine.min(f)));
        }
    }

    /// The id of the operation that produced revision `rev`, when known.
    fn id_at(&self, rev: u64) -> Option<u64> {
        let id = if rev == self.revision {
            self.tip
        } else {
            let i = rev.checked_sub(self.oldest_base() + 1)?;
            self.log.get(i as usize)?.id
        };
        (id != 0).then_some(id)
    }

    /// The ids this task knows of the revisions it applied.
    fn marks(&self) -> Vec<Mark> {
        let mut marks: Vec<Mark> = self
            .log
            .iter()
            .filter(|e| e.id != 0)
            .map(|e| (e.revision, e.id))
            .collect();
        if self.tip != 0 && marks.last().is_none_or(|m| m.0 != self.revision) {
            marks.push((self.revision, self.tip));
        }
        marks
    }

    async fn on_tick(&mut self, redis: bool, last_touch: &mut Instant) {
        // Rooms opened elsewhere on this instance shrink this one's share.
        self.trim_history();
        if self.conns.is_empty() {
            let idle = self.last_activity.elapsed();
            // With Redis the room outlives the task: a short grace suffices.
            let limit = if redis {
                (self.config.room_ttl / 2).min(Duration::from_secs(10))
            } else {
                self.config.room_ttl
            };
            if idle >= limit && self.pending.is_empty() && self.in_flight.is_empty() {
                self.stop = Some(Stop::Expired);
                return;
            }
        }
        if !self.conns.is_empty() && last_touch.elapsed() >= self.config.room_ttl / 3 {
            *last_touch = Instant::now();
            self.effect(Effect::Touch);
            self.effect(Effect::ExpireClients);
            self.expire_identities();
        }
    }

    /// The periodic check for operations pub/sub lost and for ghosts, every
    /// [`SYNC_EVERY`]. Off this task: awaiting three Redis round trips here
    /// held up every edit of the room meanwhile, every two seconds.
    fn on_sync_tick(&mut self) {
        // Not while the last one is still queued (Redis is slow).
        if !self.coalesced.checking.swap(true, Ordering::Relaxed) {
            self.effect(Effect::Sync(self.revision));
            self.effect(Effect::Reap);
        }
    }

    fn effect(&self, e: Effect) {
        if let Some(tx) = &self.effects {
            let _ = tx.send(e);
        }
    }

    async fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Join(req, reply) => {
                let result = self.join(req).await;
                if let Err(Ok(joined)) = reply.send(result) {
                    self.leave(joined.conn_id);
                }
            }
            Command::Leave { conn_id } => self.leave(conn_id),
            Command::Edit {
                conn_id,
                revision,
                seq,
                operation,
            } => self.edit(conn_id, revision, seq, operation),
            Command::Cursor {
                conn_id,
                revision,
                cursor,
                anchor,
            } => self.cursor(conn_id, revision, cursor, anchor),
            Command::Snapshot(reply) => {
                let _ = reply.send(self.snapshot());
            }
            Command::Drain(done) => {
                self.draining = Some(done);
                self.flush();
            }
        }
    }

    fn snapshot(&self) -> Snapshot {
        let mut users: Vec<UserInfo> = self.users.values().map(|p| p.info.clone()).collect();
        users.extend(
            self.remote
                .iter()
                .filter(|(u, _)| !self.users.contains_key(*u))
                .map(|(_, r)| r.info.clone()),
        );
        Snapshot {
            revision: self.revision,
            doc: self.doc.clone(),
            language: self.language.clone(),
            users,
        }
    }

    fn oldest_base(&self) -> u64 {
        self.revision - self.log.len() as u64
    }

    /// Length of the document after everything in flight and pending.
    fn tip_len(&self) -> usize {
        self.pending
            .last()
            .or(self.in_flight.last())
            .map_or(self.doc.len_chars(), |p| p.operation.target_len())
    }

    async fn join(&mut self, req: JoinRequest) -> Result<Joined, JoinError> {
        if self.redis().is_some() {
            // Catch up first, so a reconnecting client's resend meets an
            // up-to-date de-duplication record.
            self.sync_from_store().await;
            if self.stop.is_some() {
                return Err(JoinError::Gone);
            }
        }
        if let (Some(store), Some(_)) = (self.redis(), req.since) {
            // Whether the room's history parted, as of now: another instance
            // may have found out since this task loaded.
            self.note_fork(store.fork(&self.id).await?);
        }
        if let Some(since) = req.since {
            if since > self.revision {
                return Err(JoinError::FutureRevision {
                    since,
                    revision: self.revision,
                });
            }
        }
        // One live connection per client id: a client that reconnects
        // replaces its old connection (acks and de-duplication are per
        // client). It leaves the room once the new one is in (below).
        let replaced: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| *c.client_id == *req.client_id)
            .map(|(id, _)| *id)
            .collect();
        if self.conns.len() - replaced.len() >= self.config.max_conns_per_room {
            return Err(JoinError::Full(self.config.max_conns_per_room));
        }
        self.last_activity = Instant::now();
        let role = if req.watcher {
            Role::Watcher
        } else if req.viewer_id.is_some() {
            Role::Viewer
        } else {
            Role::Editor
        };
        let client_id: Arc<str> = req.client_id.into();
        let taken: Vec<String> = self
            .users
            .values()
            .map(|p| p.info.color.clone())
            .chain(self.remote.values().map(|r| r.info.color.clone()))
            .collect();
        let (user_id, color) = match self.identities.get(&client_id) {
            Some((u, c)) => (u.clone(), c.clone()),
            None => {
                let salt = self.identities.len();
                let fresh = (
                    ids::new_user_id(),
                    ids::pick_color(taken.iter().map(String::as_str), None, salt),
                );
                let (u, c) = match self.redis() {
                    Some(store) => store
                        .identity(&self.id, &client_id, &fresh.0, &fresh.1)
                        .await
                        .map_err(JoinError::Store)?,
                    None => fresh,
                };
                let u: Arc<str> = u.into();
                self.identities
                    .insert(client_id.clone(), (u.clone(), c.clone()));
                (u, c)
            }
        };
        let color = match self.users.get_mut(&user_id) {
            Some(p) => {
                p.conns += 1;
                p.info.name = req.name.clone();
                p.info.color.clone()
            }
            None => {
                // A returning client keeps its color while nobody else holds it.
                let color = ids::pick_color(
                    taken.iter().map(String::as_str),
                    Some(&color),
                    self.identities.len(),
                );
                if let Some(entry) = self.identities.get_mut(&client_id) {
                    entry.1 = color.clone();
                }
                let info = UserInfo {
                    user_id: user_id.to_string(),
                    name: req.name.clone(),
                    color: color.clone(),
                    cursor: None,
                    anchor: None,
                    role,
                };
                if !self.remote.contains_key(&user_id) {
                    let msg = ServerMessage::UserJoined { user: info.clone() }.to_json();
                    self.broadcast(&queued(msg));
                }
                self.effect(Effect::Join(info.clone()));
                self.users
                    .insert(user_id.clone(), Presence { info, conns: 1 });
                color
            }
        };
        // Not past the fork: a client there may hold a revision `since` of
        // the other history, and no entry of this one fits its document.
        let rebasable =
            |since: u64| since >= self.oldest_base() && self.fork.is_none_or(|fork| since <= fork);
        let missed = req.since.and_then(|since| {
            rebasable(since).then(|| {
                self.log
                    .iter()
                    .filter(|e| e.revision > since)
                    .map(|e| CommittedOp {
                        revision: e.revision,
                        operation: e.operation.clone(),
                        user_id: e.user_id.to_string(),
                        seq: (e.client_id == client_id).then_some(e.seq),
                    })
                    .collect()
            })
        });
        let own = if missed.is_some() {
            OwnOps::rebasing()
        } else {
            OwnOps::fresh()
        };
        let conn_id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            conn_id,
            Conn {
                user_id: user_id.clone(),
                client_id,
                outbox: req.outbox,
                lagging: false,
                dirty: false,
                role,
                own,
            },
        );
        for id in replaced {
            self.replace(id);
        }
        let users = self
            .snapshot()
            .users
            .into_iter()
            .filter(|u| *u.user_id != *user_id)
            .collect();
        Ok(Joined {
            conn_id,
            init: ServerMessage::Init {
                // A viewer never learns the editing id.
                room_id: req.viewer_id.unwrap_or_else(|| self.id.clone()),
                user_id: user_id.to_string(),
                name: req.name,
                color,
                revision: self.revision,
                code: self.doc.to_string(),
                language: self.language.clone(),
                users,
                missed,
                read_only: role.is_read_only(),
                read_only_id: (role == Role::Editor)
                    .then(|| self.viewer_id.clone())
                    .flatten(),
            },
        })
    }

    /// Closes a connection another one of the same client replaced (4005)
    /// and takes it out of the room at once. Its socket may live on for a
    /// while (a stalled client's writer waits on a full send buffer, and
    /// its reader keeps reading), but nothing it sends from now on is
    /// applied: edits and carets from a connection not in the room are
    /// dropped. Its user stays present through the new connection.
    fn replace(&mut self, conn_id: u64) {
        if let Some(c) = self.conns.get(&conn_id) {
            let msg = "another connection with the same client_id replaced this one";
            c.outbox
                .fail(error_code::REPLACED, msg, close_code::REPLACED);
        }
        self.leave(conn_id);
    }

    fn leave(&mut self, conn_id: u64) {
        let Some(conn) = self.conns.remove(&conn_id) else {
            return;
        };
        self.last_activity = Instant::now();
        let Some(p) = self.users.get_mut(&conn.user_id) else {
            return;
        };
        p.conns -= 1;
        if p.conns == 0 {
            self.users.remove(&conn.user_id);
            self.effect(Effect::Leave(conn.user_id.to_string()));
            if self.conns.is_empty() {
                // The room's keys (and its read-only id) expire together
                // from now; stale client records go (here and in Redis).
                self.effect(Effect::Touch);
                self.effect(Effect::ExpireClients);
                self.expire_identities();
            }
            for c in self.conns.values() {
                c.outbox.signals.drop_cursor(&conn.user_id);
            }
            if !self.remote.contains_key(&conn.user_id) {
                let msg = ServerMessage::UserLeft {
                    user_id: conn.user_id.to_string(),
                }
                .to_json();
                self.broadcast(&queued(msg));
            }
        }
    }

    /// Queues `msg` for every connection; one whose queue is full is closed
    /// as lagging rather than buffered without bound.
    fn broadcast(&mut self, msg: &Queued) {
        for conn in self.conns.values_mut() {
            enqueue(conn, msg);
        }
        self.dirty = true;
    }

    /// Wakes the writers of the connections that were queued to since the
    /// last call: once per burst of commands, so one write carries the burst.
    fn wake_writers(&mut self) {
        if std::mem::take(&mut self.dirty) {
            for conn in self.conns.values_mut().filter(|c| c.dirty) {
                conn.dirty = false;
                conn.outbox.wake();
            }
        }
    }

    fn edit(&mut self, conn_id: u64, base: u64, seq: u64, operation: Operation) {
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return; // Left or replaced: nothing it sends is applied.
        };
        conn.own.sent(seq);
        let outbox = conn.outbox.clone();
        let client_id = conn.client_id.clone();
        let user_id = conn.user_id.clone();
        if conn.role.is_read_only() {
            self.metrics.reject(Reject::ReadOnly);
            let msg = match conn.role {
                Role::Watcher => "this connection joined as a watcher: it cannot edit",
                _ => "this is a read-only link: viewers cannot edit",
            };
            outbox.fail(error_code::READ_ONLY, msg, close_code::FORBIDDEN);
            return;
        }
        if self.draining.is_some() {
            return; // Not acknowledged: the client resends it after reconnecting.
        }
        if let Some(&(last_seq, last_rev)) = self.dedup.get(&client_id) {
            if seq <= last_seq {
                // Already committed (a resend after a reconnect): ack again, never reapply.
                let revision = self
                    .log
                    .iter()
                    .find(|e| e.client_id == client_id && e.seq == seq)
                    .map_or(last_rev, |e| e.revision);
                outbox.push(queued(ServerMessage::Ack { revision, seq }.to_json()));
                return;
            }
        }
        let waiting = self.in_flight.iter_mut().chain(self.pending.iter_mut());
        if let Some(p) = waiting
            .into_iter()
            .find(|p| p.client_id == client_id && p.seq >= seq)
        {
            p.conn_id = conn_id; // Its ack goes here when the queued copy commits.
            return;
        }
        if base > self.revision {
            let msg = format!(
                "revision {base} is ahead of the room's revision {}",
                self.revision
            );
            outbox.fail(error_code::FUTURE_REVISION, &msg, close_code::MALFORMED);
            return;
        }
        if base < self.oldest_base() {
            let msg = format!(
                "revision {base} is older than the {} operations this server keeps; reconnect to resynchronize",
                self.log.len()
            );
            outbox.fail(error_code::REVISION_TOO_OLD, &msg, close_code::MALFORMED);
            return;
        }
        let skip = (base - self.oldest_base()) as usize;
        let before = self
            .log
            .iter()
            .skip(skip)
            .map(|e| &e.operation)
            .chain(self.in_flight.iter().map(|p| &p.operation))
            .chain(self.pending.iter().map(|p| &p.operation));
        let original = operation.clone();
        let mut op = operation;
        for other in before {
            match Operation::transform(&op, other) {
                Ok((transformed, _)) => op = transformed,
                Err(e) => {
                    let msg = format!("operation does not fit revision {base}: {e}");
                    outbox.fail(error_code::INVALID_OPERATION, &msg, close_code::MALFORMED);
                    return;
                }
            }
        }
        if op.base_len() != self.tip_len() {
            let msg = format!(
                "operation does not fit revision {base}: it expects a document of {} chars, but it has {}",
                op.base_len(),
                self.tip_len()
            );
            outbox.fail(error_code::INVALID_OPERATION, &msg, close_code::MALFORMED);
            return;
        }
        if op.target_len() > self.config.max_document_chars && op.target_len() > op.base_len() {
            self.metrics.reject(Reject::DocumentTooLarge);
            let refusal = ServerMessage::Error {
                code: error_code::DOCUMENT_TOO_LARGE.to_owned(),
                message: format!(
                    "the edit would make the document {} chars long; the limit is {}. It was not applied",
                    op.target_len(),
                    self.config.max_document_chars
                ),
                seq: Some(seq),
            };
            outbox.push(queued(refusal.to_json()));
            return;
        }
        self.last_activity = Instant::now();
        self.pending.push(PendingEdit {
            conn_id,
            received: Instant::now(),
            base,
            original,
            operation: op,
            user_id,
            client_id,
            seq,
            id: 0,
        });
        self.flush();
    }

    /// Commits what is pending: at once in memory, as one Redis round trip
    /// otherwise (unless one is already in flight).
    fn flush(&mut self) {
        // After a reset nothing may be committed: pending edits may not have
        // been rebased, and the clients resend them to a fresh task anyway.
        if self.commit.is_some() || self.pending.is_empty() || self.stop.is_some() {
            return;
        }
        if self.hold_until.is_some_and(|t| Instant::now() < t) {
            return;
        }
        self.hold_until = None;
        match self.redis() {
            None => {
                for p in std::mem::take(&mut self.pending) {
                    self.commit_own(p);
                }
            }
            Some(store) => {
                let n = self.pending.len().min(MAX_BATCH);
                self.in_flight = self.pending.drain(..n).collect();
                // Fresh ids each attempt: a batch retried after a lost race
                // holds other operations at other revisions.
                for p in &mut self.in_flight {
                    p.id = lineage::new_id();
                }
                let entries: Vec<WireEntry> = self
                    .in_flight
                    .iter()
                    .enumerate()
                    .map(|(i, p)| WireEntry {
                        r: self.revision + 1 + i as u64,
                        h: Some(lineage::id_text(p.id)),
                        o: p.operation.clone(),
                        u: p.user_id.to_string(),
                        c: p.client_id.to_string(),
                        s: p.seq,
                    })
                    .collect();
                let (id, expected) = (self.id.clone(), self.revision);
                let expected_tip =
                    (self.tip != 0).then(|| lineage::tip_text((self.revision, self.tip)));
                let last = self.in_flight.last().map_or(0, |p| p.id);
                let new_tip = lineage::tip_text((self.revision + n as u64, last));
                self.commit = Some(Box::pin(async move {
                    store
                        .commit(&id, expected, expected_tip.as_deref(), &new_tip, &entries)
                        .await
                }));
            }
        }
    }

    async fn on_commit(&mut self, reply: Result<CommitReply, StoreError>) {
        match reply {
            Ok(CommitReply::Committed { rev, log_bytes }) => {
                let before = self.revision;
                for p in std::mem::take(&mut self.in_flight) {
                    self.commit_own(p);
                }
                debug_assert_eq!(rev, self.revision);
                // Every SNAPSHOT_EVERY revisions, and whenever the log is
                // over its byte budget: Redis can only drop entries the
                // snapshot covers.
                let over_budget = log_bytes > self.limits.room_bytes as u64;
                if over_budget || before / SNAPSHOT_EVERY != self.revision / SNAPSHOT_EVERY {
                    let waiting = self
                        .coalesced
                        .snapshot
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .replace((self.revision, self.doc.clone()));
                    if waiting.is_none() {
                        self.effect(Effect::Snapshot);
                    }
                }
                self.drain_stash().await;
                self.flush();
            }
            Ok(CommitReply::Conflict(revision, missed)) => {
                // Someone committed first: catch up with what the reply
                // carries (which transforms the batch over it) and retry at
                // once, in one round trip.
                let batch = std::mem::take(&mut self.in_flight);
                self.pending.splice(0..0, batch);
                // (The script checked that Redis's history is ours.)
                self.catch_up(revision, missed, None);
            }
            Ok(CommitReply::Yield(revision)) => {
                // Another instance holds the next turn: retry once its commit
                // arrives (a pub/sub event flushes) or the turn lapses. Its
                // commit may already have arrived while ours was in flight
                // (pub/sub is another connection, and the stash waits for
                // our reply): then retry now, or we would wait out the whole
                // turn for an event that came.
                let batch = std::mem::take(&mut self.in_flight);
                self.pending.splice(0..0, batch);
                self.drain_stash().await;
                if self.stop.is_some() {
                    return;
                }
                if self.revision <= revision {
                    self.hold_until = Some(Instant::now() + TURN);
                } else {
                    self.flush();
                }
            }
            Ok(CommitReply::Parted(revision)) => self.parted(format!(
                "Redis (at revision {revision}) holds another history than this instance's (at {})",
                self.revision
            )),
            Ok(CommitReply::Gone) => {
                self.reset(
                    close_code::ROOM_NOT_FOUND,
                    error_code::ROOM_NOT_FOUND,
                    "the room expired".into(),
                );
            }
            Err(e) => {
                // (The store counted the failure.) The reply may be lost while the commit happened: start over
                // from Redis; clients resend with their seq, applied once.
                self.reset(
                    close_code::TRY_AGAIN_LATER,
                    error_code::UNAVAILABLE,
                    format!("the room's store is unavailable; edit not committed: {e}"),
                );
            }
        }
    }

    /// Applies one of this instance's edits as committed at the next revision.
    fn commit_own(&mut self, p: PendingEdit) {
        let author = p.conn_id;
        self.metrics.commit_latency.observe(p.received.elapsed());
        self.metrics
            .ops_committed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let entry = LogEntry {
            id: p.id,
            revision: self.revision + 1,
            operation: p.operation,
            user_id: p.user_id,
            client_id: p.client_id,
            seq: p.seq,
        };
        self.apply_committed(entry, Some(author));
    }

    /// Applies a committed operation (ours or another instance's) at the next
    /// revision and fans it out: the connection `author` (if it is here) gets
    /// the ack, every other connection the `code_update`.
    fn apply_committed(&mut self, entry: LogEntry, author: Option<u64>) {
        if let Err(e) = entry.operation.apply(&mut self.doc) {
            self.reset(
                close_code::INTERNAL,
                error_code::UNAVAILABLE,
                format!("revision {} does not apply: {e}", entry.revision),
            );
            return;
        }
        self.revision = entry.revision;
        self.tip = entry.id;
        self.last_activity = Instant::now();
        self.dedup
            .insert(entry.client_id.clone(), (entry.seq, entry.revision));
        let op = &entry.operation;
        let infos = self
            .users
            .values_mut()
            .map(|p| &mut p.info)
            .chain(self.remote.values_mut().map(|r| &mut r.info));
        for info in infos {
            if let Some(c) = info.cursor {
                info.cursor = Some(op.transform_index(c as usize) as u64);
            }
            if let Some(a) = info.anchor {
                info.anchor = Some(op.transform_index(a as usize) as u64);
            }
        }
        let update = queued(
            ServerMessage::CodeUpdate(CommittedOp {
                revision: entry.revision,
                operation: entry.operation.clone(),
                user_id: entry.user_id.to_string(),
                seq: None,
            })
            .to_json(),
        );
        let ack = queued(
            ServerMessage::Ack {
                revision: entry.revision,
                seq: entry.seq,
            }
            .to_json(),
        );
        for (id, conn) in self.conns.iter_mut() {
            let acked = Some(*id) == author
                || (conn.client_id == entry.client_id && conn.own.is_ack(entry.seq));
            enqueue(conn, if acked { &ack } else { &update });
        }
        self.dirty = true;
        self.log.push(entry);
        self.trim_history();
    }

    /// Keeps the history within its count and this room's share of the
    /// byte budgets (the share shrinks as rooms open on this instance).
    fn trim_history(&mut self) {
        let rooms = self.metrics.rooms.load(Ordering::Relaxed).max(1) as usize;
        let bytes = self.limits.room_share(rooms);
        let dedup = &mut self.dedup;
        self.log.trim(self.limits.ops, bytes, |e| {
            clients::commit_left_history(dedup, &e.client_id, e.revision);
        });
    }

    /// Forgets the identities of clients that are not here and have no
    /// commit in the history (see [`clients`]).
    fn expire_identities(&mut self) {
        let (users, remote) = (&self.users, &self.remote);
        clients::expire_identities(&mut self.identities, &self.dedup, |u| {
            users.contains_key(u) || remote.contains_key(u)
        });
    }

    /// Applies another instance's committed operation. Pending edits must be
    /// rebased afterwards ([`Self::rebase_pending`]).
    fn apply_remote(&mut self, entry: LogEntry) {
        if self
            .pending
            .iter()
            .any(|p| p.client_id == entry.client_id && p.seq <= entry.seq)
        {
            // The same client's edit committed elsewhere while queued here
            // (a client that moved instances): start over from Redis.
            self.reset(
                close_code::RESTARTING,
                error_code::UNAVAILABLE,
                "resynchronizing the room".into(),
            );
            return;
        }
        self.apply_committed(entry, None);
    }

    /// Recomputes every pending edit from its original along the current
    /// order: the committed log from its base, then the pending edits before it.
    fn rebase_pending(&mut self) {
        let oldest = self.oldest_base();
        // An edit whose base fell out of the kept history cannot be placed:
        // refuse it alone (its client resynchronizes); the others are
        // recomputed from their originals, so dropping it is consistent.
        let (kept, stale): (Vec<PendingEdit>, Vec<PendingEdit>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.base >= oldest);
        self.pending = kept;
        for p in stale {
            if let Some(conn) = self.conns.get(&p.conn_id) {
                let msg = format!(
                    "revision {} is older than the history this server keeps; reconnect",
                    p.base
                );
                conn.outbox
                    .fail(error_code::REVISION_TOO_OLD, &msg, close_code::MALFORMED);
            }
        }
        let mut rebased: Vec<Operation> = Vec::with_capacity(self.pending.len());
        for p in &self.pending {
            let skip = (p.base - oldest) as usize;
            let mut op = p.original.clone();
            for other in self
                .log
                .iter()
                .skip(skip)
                .map(|e| &e.operation)
                .chain(&rebased)
            {
                match Operation::transform(&op, other) {
                    Ok((mine, _)) => op = mine,
                    Err(e) => {
                        let detail = format!("pending edit does not fit: {e}");
                        self.reset(close_code::INTERNAL, error_code::UNAVAILABLE, detail);
                        return;
                    }
                }
            }
            rebased.push(op);
        }
        for (p, op) in self.pending.iter_mut().zip(rebased) {
            p.operation = op;
        }
    }

    /// Applies stashed operations that are next in line.
    async fn drain_stash(&mut self) {
        if self.commit.is_some() {
            return;
        }
        let mut applied = false;
        while let Some((entry, after)) = self.stash.remove(&(self.revision + 1)) {
            if after != 0 && self.tip != 0 && after != self.tip {
                self.parted(format!(
                    "revision {} was committed on another revision {} than this instance's",
                    entry.revision, self.revision
                ));
                return;
            }
            self.apply_remote(entry);
            if self.stop.is_some() {
                return;
            }
            applied = true;
        }
        if applied && !self.pending.is_empty() {
            self.rebase_pending();
        }
        self.stash = self.stash.split_off(&(self.revision + 1));
        if !self.stash.is_empty() {
            // A gap: pub/sub lost something. The log has it.
            self.sync_from_store().await;
        }
    }

    /// Reads and applies every operation committed after our revision.
    async fn sync_from_store(&mut self) {
        let Some(store) = self.redis() else { return };
        if self.commit.is_some() {
            return; // The commit's reply will tell.
        }
        match store.entries_since(&self.id, self.revision).await {
            Ok(Some(tail)) => {
                self.note_fork(tail.fork);
                let base = tail.base.as_deref().and_then(lineage::parse_tip);
                self.catch_up(tail.revision, tail.entries, base);
            }
            Ok(None) => self.reset(
                close_code::ROOM_NOT_FOUND,
                error_code::ROOM_NOT_FOUND,
                "the room expired".into(),
            ),
            Err(e) => {
                tracing::warn!(room = %short(&self.id), error = %e, "cannot read the room's log")
            }
        }
    }

    /// Applies what the store committed up to `revision` (`entries`: every
    /// entry after ours, as far as the log reaches), rebases what is pending
    /// and commits it. `base` is the store's mark of our revision, when it
    /// knows one.
    fn catch_up(&mut self, revision: u64, entries: Vec<WireEntry>, base: Option<Mark>) {
        if revision < self.revision {
            self.parted(format!(
                "Redis is at revision {revision}, behind this instance's {}",
                self.revision
            ));
            return;
        }
        if let Some((rev, id)) = base {
            if rev == self.revision && self.tip != 0 && id != self.tip {
                self.parted(format!(
                    "Redis holds another operation at revision {rev} than this instance applied"
                ));
                return;
            }
        }
        if revision > self.revision && entries.first().is_none_or(|e| e.r != self.revision + 1) {
            self.reset(
                close_code::RESTARTING,
                error_code::UNAVAILABLE,
                "fell behind the store's history".into(),
            );
            return;
        }
        let any = !entries.is_empty();
        for e in entries {
            self.apply_remote(LogEntry::from_wire(e));
            if self.stop.is_some() {
                return;
            }
        }
        if any && !self.pending.is_empty() {
            self.rebase_pending();
        }
        self.stash = self.stash.split_off(&(self.revision + 1));
        self.flush();
    }

    async fn on_event(&mut self, ev: Event) {
        let own = self.redis().map(|s| s.instance.clone()).unwrap_or_default();
        match ev {
            Event::Ops { ops, p, .. } => {
                let entries: Vec<LogEntry> = ops.into_iter().map(LogEntry::from_wire).collect();
                let base = p.as_deref().and_then(lineage::parse_tip);
                let marks: Vec<Mark> = entries.iter().map(|e| (e.revision, e.id)).collect();
                // What they were committed on, and what they hold, at
                // revisions this task has applied must be what it applied.
                let mine = |rev: u64| (rev <= self.revision).then(|| self.id_at(rev)).flatten();
                if let Some(rev) = lineage::contradiction(base.iter().chain(&marks), mine) {
                    self.parted(format!(
                        "another instance's operations follow another operation at revision {rev}"
                    ));
                    return;
                }
                let follows = lineage::predecessors(base, &marks);
                for (entry, after) in entries.into_iter().zip(follows) {
                    if entry.revision > self.revision {
                        self.stash.insert(entry.revision, (entry, after));
                    }
                }
                let before = self.revision;
                self.drain_stash().await;
                if self.revision > before {
                    // Whoever held the turn has committed: our turn now.
                    self.hold_until = None;
                }
                self.flush();
            }
            Event::Cursor { i, u, r, c, a } => {
                if i == own || r > self.revision || r < self.oldest_base() {
                    return;
                }
                let user: Arc<str> = u.into();
                let (cursor, anchor) = self.place(r, c, a);
                if let Some(remote) = self.remote.get_mut(&user) {
                    remote.info.cursor = Some(cursor);
                    remote.info.anchor = anchor;
                }
                self.fan_cursor(&user, cursor, anchor);
            }
            Event::Join { i, user } => {
                if i == own {
                    return;
                }
                let id: Arc<str> = user.user_id.as_str().into();
                let known = self.users.contains_key(&id) || self.remote.contains_key(&id);
                self.remote.insert(
                    id.clone(),
                    Remote {
                        info: user.clone(),
                        instance: i,
                    },
                );
                if !known {
                    self.broadcast(&queued(ServerMessage::UserJoined { user }.to_json()));
                }
                // One live connection per client across instances too: the
                // client (a user id is one client's) reconnected elsewhere,
                // so its connections here are replaced. Its user stays
                // present, now as a remote one.
                let stale: Vec<u64> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.user_id == id)
                    .map(|(id, _)| *id)
                    .collect();
                for conn_id in stale {
                    self.replace(conn_id);
                }
            }
            Event::Leave { i, u } => {
                if i != own {
                    // Our own leaves and reaps were announced locally already.
                    self.remote_left(u.into());
                }
            }
        }
    }

    /// A user of another instance is gone: tell the local connections,
    /// unless the same user is also connected here.
    fn remote_left(&mut self, id: Arc<str>) {
        if self.remote.remove(&id).is_some() && !self.users.contains_key(&id) {
            for c in self.conns.values() {
                c.outbox.signals.drop_cursor(&id);
            }
            let msg = ServerMessage::UserLeft {
                user_id: id.to_string(),
            }
            .to_json();
            self.broadcast(&queued(msg));
        }
    }

    /// Users whose instance stopped heart-beating are removed and announced
    /// as left (exactly once, by whichever instance removes the record).
    /// Brings a caret at revision `base` to the current revision.
    fn place(&self, base: u64, cursor: u64, anchor: Option<u64>) -> (u64, Option<u64>) {
        let skip = (base - self.oldest_base()) as usize;
        let len_at_base = self
            .log
            .get(skip)
            .map_or(self.doc.len_chars(), |e| e.operation.base_len());
        let place = |pos: u64| {
            let mut p = (pos as usize).min(len_at_base);
            for e in self.log.iter().skip(skip) {
                p = e.operation.transform_index(p);
            }
            p as u64
        };
        (place(cursor), anchor.map(place))
    }

    fn fan_cursor(&mut self, user_id: &Arc<str>, cursor: u64, anchor: Option<u64>) {
        let msg = Utf8Bytes::from(
            ServerMessage::CursorMove {
                user_id: user_id.to_string(),
                revision: self.revision,
                cursor,
                anchor,
            }
            .to_json(),
        );
        for c in self.conns.values_mut() {
            if c.user_id != *user_id && !c.lagging {
                c.outbox.signals.set_cursor(user_id.clone(), msg.clone());
                c.dirty = true;
            }
        }
        self.dirty = true;
    }

    fn cursor(&mut self, conn_id: u64, base: u64, cursor: u64, anchor: Option<u64>) {
        let Some(conn) = self.conns.get(&conn_id) else {
            return;
        };
        if base > self.revision {
            let msg = format!(
                "revision {base} is ahead of the room's revision {}",
                self.revision
            );
            conn.outbox
                .fail(error_code::FUTURE_REVISION, &msg, close_code::MALFORMED);
            return;
        }
        if base < self.oldest_base() {
            return; // Too old to place; the client's next move will do.
        }
        let user_id = conn.user_id.clone();
        let (cursor, anchor) = self.place(base, cursor, anchor);
        if let Some(p) = self.users.get_mut(&user_id) {
            p.info.cursor = Some(cursor);
            p.info.anchor = anchor;
        }
        self.fan_cursor(&user_id, cursor, anchor);
        if self.effects.is_some() {
            let first = {
                let mut carets = self
                    .coalesced
                    .carets
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let first = carets.is_empty();
                carets.insert(user_id.to_string(), (self.revision, cursor, anchor));
                first
            };
            if first {
                self.effect(Effect::Carets);
            }
        }
    }
}

/// Queues `msg` for `conn` without waking its writer ([`RoomTask::wake_writers`]
/// does, at the end of the burst).
fn enqueue(conn: &mut Conn, msg: &Queued) {
    if conn.lagging {
        return;
    }
    if conn.outbox.enqueue(msg.clone()) {
        conn.dirty = true;
    } else {
        lag(conn);
    }
}

fn lag(conn: &mut Conn) {
    conn.lagging = true;
    tracing::warn!(user = %conn.user_id, "connection lagging; closing it");
    conn.outbox.close(close_code::LAGGING, error_code::LAGGING);
}

/// Runs a room's Redis side effects in order, off the room task; what the
/// task must learn from them comes back through its feed, like pub/sub.
async fn run_effects(
    store: Arc<RedisStore>,
    id: String,
    viewer: Option<String>,
    mut rx: mpsc::UnboundedReceiver<Effect>,
    feed: mpsc::Sender<Feed>,
    coalesced: Arc<Coalesced>,
) {
    while let Some(effect) = rx.recv().await {
        let result = match effect {
            Effect::Join(user) => store.join(&id, &user).await,
            Effect::Leave(user_id) => store.leave(&id, &user_id).await.map(|_| ()),
            Effect::Carets => {
                let carets: Vec<_> = coalesced
                    .carets
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .drain()
                    .collect();
                let mut result = Ok(());
                for (user_id, (r, c, a)) in carets {
                    if let Err(e) = store.cursor(&id, &user_id, r, c, a).await {
                        result = Err(e);
                    }
                }
                result
            }
            Effect::Snapshot => {
                let newest = coalesced
                    .snapshot
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                match newest {
                    Some((revision, doc)) => {
                        store.write_snapshot(&id, revision, doc.to_string()).await
                    }
                    None => Ok(()),
                }
            }
            Effect::Touch => store.touch(&id, viewer.as_deref()).await,
            Effect::ExpireClients => store.expire_clients(&id).await,
            Effect::Sync(after) => store.entries_since(&id, after).await.map(|tail| {
                let news = match tail {
                    // Redis went back: the task reads it again and finds out.
                    Some(tail) if tail.revision < after => Feed::Resync,
                    // Nothing new, and nothing to check our history against.
                    Some(tail) if tail.entries.is_empty() && tail.base.is_none() => return,
                    // Entries the task already has are ignored; a gap makes
                    // it read the log itself. `base` lets it check that they
                    // follow its own revision `after`.
                    Some(tail) => Feed::Event(Event::Ops {
                        i: String::new(),
                        p: tail.base,
                        ops: tail.entries,
                    }),
                    None => Feed::Resync, // Gone: the task finds out and ends.
                };
                if let Err(mpsc::error::TrySendError::Full(_)) = feed.try_send(news) {
                    let _ = feed.try_send(Feed::Resync);
                }
            }),
            Effect::Reap => {
                reap_ghosts(&store, &id, &feed).await;
                coalesced.checking.store(false, Ordering::Relaxed);
                Ok(())
            }
        };
        if let Err(e) = result {
            // (The store counted the failure.)
            tracing::warn!(room = %short(&id), error = %e, "redis side effect failed");
        }
    }
}

/// Removes the presence records of users whose instance stopped beating
/// (killed, not drained) and tells the room task they left. Errors are left
/// for the next round.
async fn reap_ghosts(store: &RedisStore, id: &str, feed: &mpsc::Sender<Feed>) {
    let Ok(records) = store.presence(id).await else {
        return;
    };
    let mut instances: Vec<String> = records
        .iter()
        .map(|r| r.instance.clone())
        .filter(|i| *i != store.instance)
        .collect();
    instances.sort();
    instances.dedup();
    let Ok(alive) = store.alive(&instances).await else {
        return;
    };
    let dead: Vec<&String> = instances
        .iter()
        .zip(alive)
        .filter(|(_, a)| !a)
        .map(|(i, _)| i)
        .collect();
    for r in records.iter().filter(|r| dead.contains(&&r.instance)) {
        tracing::info!(room = %short(id), user = %r.user.user_id, "reaping a user of a dead instance");
        // Only if the record still names the dead instance: the user may
        // have reconnected elsewhere meanwhile.
        let _ = store.leave_if(id, &r.user.user_id, &r.instance).await;
        // As the dead instance's own leave would have said it.
        let _ = feed
            .send(Feed::Event(Event::Leave {
                i: r.instance.clone(),
                u: r.user.user_id.clone(),
            }))
            .await;
    }
}

/// Used by the registry to answer REST calls for rooms without a local task.
pub(super) fn snapshot_of(loaded: LoadedRoom) -> Result<Snapshot, StoreError> {
    let mut doc = Rope::from_str(&loaded.snapshot);
    let mut revision = loaded.snapshot_revision;
    for e in loaded.log {
        if e.r > revision {
            e.o.apply(&mut doc)
                .map_err(|err| StoreError::Corrupt(format!("revision {}: {err}", e.r)))?;
            revision = e.r;
        }
    }
    Ok(Snapshot {
        revision,
        doc,
        language: loaded.language,
        users: loaded.presence.into_iter().map(|p| p.user).collect(),
    })
}

/// The marks (revision, id) a room loaded from Redis knows.
pub(super) fn loaded_marks(loaded: &LoadedRoom) -> Vec<Mark> {
    lineage::marks(
        loaded.log.iter().map(|e| (e.r, e.h.as_deref())),
        loaded.tip.as_deref(),
        loaded.revision,
    )
}

/// Records in Redis where the room's history parted from `mine` (the marks
/// of a history this instance applied): the last revision both share.
/// Retries a little while Redis is unreachable; `None` when it could not.
pub(super) async fn record_parting(store: &RedisStore, id: &str, mine: &[Mark]) -> Option<u64> {
    for attempt in 0..5u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200) * attempt).await;
        }
        let loaded = match store.load(id).await {
            Ok(Some(loaded)) => loaded,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(room = %short(id), error = %e, "cannot read the room to record where its history parted");
                continue;
            }
        };
        let fork = lineage::fork_point(mine, &loaded_marks(&loaded));
        match store.record_fork(id, fork).await {
            Ok(recorded) => return recorded,
            Err(e) => {
                tracing::warn!(room = %short(id), error = %e, "cannot record where the room's history parted")
            }
        }
    }
    None
}
