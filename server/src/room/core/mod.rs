//! The room's logic, synchronous and without I/O: what a room does with a
//! join, an edit, a caret, a commit's answer or another instance's
//! operations, and what must happen as a result.
//!
//! It owns the document, the history window, de-duplication, identities,
//! presence and the edits waiting to be committed. It validates edits and
//! transforms them to the room's tip, rebases them after a lost race,
//! applies committed entries in revision order, places carets, and
//! writes what each connection must hear into that connection's
//! [`ConnSink`] (a queue; the connection's writer sends it). What needs the
//! store comes out as [`Action`]s for the room actor to carry out, and
//! their answers come back in: [`RoomCore::committed`],
//! [`RoomCore::caught_up`], [`RoomCore::store_event`],
//! [`RoomCore::presence_checked`]. Time comes in as arguments too, so
//! everything here runs in unit tests and in seeded simulations (see the
//! tests beside it).

mod clients;
mod edits;
pub(crate) mod history;
pub(crate) mod lineage;
mod members;
mod own_ops;

#[cfg(test)]
mod convergence_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use collab_protocol::{close_code, error_code, Operation, Role, ServerMessage, UserInfo};
use ropey::Rope;

use self::clients::{Dedup, Identities};
use self::history::{History, HistoryLimits};
use self::lineage::Mark;
use self::own_ops::OwnOps;
use crate::metrics::Metrics;
use crate::store::{CommitRequest, CommittedEntry, LoadedRoom, StoreError};

/// At most this many operations go into one commit.
const MAX_BATCH: usize = 512;
/// A snapshot is written to a shared store every this many revisions.
const SNAPSHOT_EVERY: u64 = 5000;

/// Identifies a connection within its room.
pub type ConnId = u64;

/// Where the room puts what one connection must hear. The queue is the
/// connection's (its writer sends it); the room only fills it. Queuing does
/// not wake the writer: the room wakes each writer once per burst of
/// commands ([`RoomCore::wake_writers`]), so one write carries the burst.
pub trait ConnSink {
    /// A message as queued: built once, shared by every connection.
    type Msg: Clone;
    /// The message for this JSON text.
    fn message(json: String) -> Self::Msg;
    /// Queues `msg` without waking the writer; false when the queue is full
    /// (the reader lags).
    fn enqueue(&self, msg: &Self::Msg) -> bool;
    /// Wakes the writer.
    fn wake(&self);
    /// Sets a user's newest caret (state, not an event: a slow reader gets
    /// the newest, not a backlog).
    fn set_caret(&self, user_id: &Arc<str>, msg: &Self::Msg);
    /// Forgets a user's caret (the user left).
    fn drop_caret(&self, user_id: &str);
    /// Sends `error` with `code`/`message`, then closes with `close`.
    fn fail(&self, code: &str, message: &str, close: u16);
    /// Sends what is queued, then closes with `code`.
    fn close(&self, code: u16, reason: &str);
}

/// Limits and settings the core follows.
#[derive(Clone, Debug)]
pub struct CoreConfig {
    /// How long an unused room lives.
    pub room_ttl: Duration,
    /// Connections one room holds at most.
    pub max_conns: usize,
    /// Largest document, in chars.
    pub max_document_chars: usize,
    /// The history window.
    pub history: HistoryLimits,
}

impl CoreConfig {
    /// The core's share of the server's settings.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            room_ttl: config.room_ttl,
            max_conns: config.max_conns_per_room,
            max_document_chars: config.max_document_chars,
            history: HistoryLimits {
                ops: config.history_ops,
                room_bytes: config.history_bytes,
                instance_bytes: config.history_bytes_total,
            },
        }
    }
}

/// A connection asking to join a room.
pub struct JoinRequest<S> {
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
    /// Where the room puts this connection's messages.
    pub sink: S,
}

/// What a joining connection needs for its `init`.
#[derive(Debug)]
pub struct Joined {
    /// Identifies the connection to the room.
    pub conn_id: ConnId,
    /// The `init` message, with the document at the revision the connection
    /// starts from; everything after it arrives through its sink.
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
#[derive(Clone, Debug)]
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

/// What the room needs the store for. The actor carries these out in order
/// and hands the answers back to the core.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Commit this batch; answer with [`RoomCore::committed`]. At most one
    /// is in flight.
    Commit(CommitRequest),
    /// Read the log after the room's revision now; answer with
    /// [`RoomCore::caught_up`].
    CatchUp,
    /// Tell the store (and through it the other instances), in order, off
    /// the room's path: nothing comes back but through
    /// [`RoomCore::store_event`] and [`RoomCore::presence_checked`].
    Publish(Publish),
}

/// Side effects in the store that the room does not wait for.
#[derive(Clone, Debug, PartialEq)]
pub enum Publish {
    /// A user is present on this instance.
    Join(UserInfo),
    /// A user left this instance.
    Leave(String),
    /// A user's caret (revision, cursor, anchor); only the newest matters.
    Caret(String, (u64, u64, Option<u64>)),
    /// The document at a revision, to store as the snapshot; only the
    /// newest matters.
    Snapshot(u64, Rope),
    /// Keep the room alive another TTL.
    Touch,
    /// Forget stale client records in the store.
    ExpireClients,
    /// The periodic check: read the log after this revision (answer as a
    /// [`crate::store::StoreEvent`]) and check presence (answer with
    /// [`RoomCore::presence_checked`]).
    Check(u64),
}

/// Why the room stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Nobody used it for its TTL.
    Expired,
    /// Shut down: everything queued was committed, clients closed with 1012.
    Drained,
    /// Its clients are closed with this code and reason; they reconnect and
    /// resynchronize.
    Reset {
        /// Close code.
        code: u16,
        /// The `error` code.
        reason: &'static str,
        /// Why, for the log and the clients.
        detail: String,
    },
    /// The store holds another history than the one this room applied (it
    /// was restored from an older state): record where the histories part,
    /// then close everyone with 1012; they reconnect to what it holds.
    Parted(String),
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
    conn_id: ConnId,
    received: Instant,
    base: u64,
    original: Operation,
    operation: Operation,
    user_id: Arc<str>,
    client_id: Arc<str>,
    seq: u64,
    /// Its id in the room's history, drawn each time it is sent to commit.
    id: u64,
}

struct Conn<S> {
    sink: S,
    user_id: Arc<str>,
    client_id: Arc<str>,
    lagging: bool,
    /// A viewer or a watcher: its edits are refused.
    role: Role,
    /// Messages or carets were queued without waking the writer.
    dirty: bool,
    /// Which of its client's commits this connection hears as acks.
    own: OwnOps,
}

/// A user with connections on this instance.
struct Present {
    info: UserInfo,
    conns: usize,
}

/// A user with connections on another instance.
struct Remote {
    info: UserInfo,
}

/// One room; see the module docs.
pub struct RoomCore<S: ConnSink> {
    id: String,
    language: String,
    viewer_id: Option<String>,
    config: CoreConfig,
    /// Other instances write this room through the store: catch up before
    /// joins, check presence, expire the task soon after the last leave.
    shared: bool,
    metrics: Arc<Metrics>,
    doc: Rope,
    revision: u64,
    /// The id of the operation that produced `revision`; 0 when unknown.
    tip: u64,
    /// The revision after which the room's history parted, if it did: a
    /// reconnect with a later `since` gets no `missed`.
    fork: Option<u64>,
    log: History,
    dedup: Dedup,
    identities: Identities,
    users: HashMap<Arc<str>, Present>,
    remote: HashMap<Arc<str>, Remote>,
    conns: HashMap<ConnId, Conn<S>>,
    next_conn: ConnId,
    last_activity: Instant,
    last_touch: Instant,
    pending: Vec<PendingEdit>,
    in_flight: Vec<PendingEdit>,
    /// Other instances' operations ahead of the room's revision, waiting
    /// for the ones before them, each with the id of the operation it was
    /// committed after (0 when unknown).
    stash: BTreeMap<u64, (CommittedEntry, u64)>,
    /// A catch-up read was asked for and not answered yet.
    catching_up: bool,
    /// Set while another instance holds the commit turn.
    hold_until: Option<Instant>,
    draining: bool,
    stop: Option<Stop>,
    actions: Vec<Action>,
    /// Some connection was queued to without waking its writer.
    dirty: bool,
    /// Counts presence events from the store; `touched` is the count at
    /// each user's latest, so a presence check answered with older news
    /// does not undo a newer join or leave.
    presence_seq: u64,
    touched: HashMap<Arc<str>, u64>,
    /// The presence count when the outstanding check was asked for.
    check_from: Option<u64>,
}

impl<S: ConnSink> RoomCore<S> {
    /// The room as the store holds it (a new room is a [`LoadedRoom`] at
    /// revision 0 too). `shared`: other instances write it through the store.
    pub fn load(
        id: String,
        loaded: LoadedRoom,
        config: CoreConfig,
        shared: bool,
        metrics: Arc<Metrics>,
        now: Instant,
    ) -> Result<Self, StoreError> {
        let mut core = Self {
            id,
            language: loaded.language,
            viewer_id: loaded.viewer,
            log: History::new(metrics.history_bytes.clone()),
            config,
            shared,
            metrics,
            doc: Rope::from_str(&loaded.snapshot),
            revision: loaded.snapshot_revision,
            tip: 0,
            fork: loaded.fork,
            dedup: Dedup::new(),
            identities: Identities::new(),
            users: HashMap::new(),
            remote: HashMap::new(),
            conns: HashMap::new(),
            next_conn: 1,
            last_activity: now,
            last_touch: now,
            pending: Vec::new(),
            in_flight: Vec::new(),
            stash: BTreeMap::new(),
            catching_up: false,
            hold_until: None,
            draining: false,
            stop: None,
            actions: Vec::new(),
            dirty: false,
            presence_seq: 0,
            touched: HashMap::new(),
            check_from: None,
        };
        let (doc, revision) = replay(
            std::mem::take(&mut core.doc),
            core.revision,
            &loaded.log,
            loaded.revision,
        )?;
        (core.doc, core.revision) = (doc, revision);
        for e in loaded.log {
            core.log.push(e);
        }
        core.tip = match loaded.tip {
            Some((rev, id)) if rev == core.revision => id,
            _ => core.log.iter().last().map_or(0, |e| e.id),
        };
        // The log may reach back before the snapshot and past this
        // instance's budget; keep the tail that fits.
        core.trim_history();
        core.dedup = loaded
            .dedup
            .into_iter()
            .map(|(k, v)| (k.into(), v))
            .collect();
        core.identities = loaded
            .identities
            .into_iter()
            .map(|(k, (u, c))| (k.into(), (u.into(), c)))
            .collect();
        core.remote = loaded
            .presence
            .into_iter()
            .map(|p| (Arc::from(p.user.user_id.as_str()), Remote { info: p.user }))
            .collect();
        // A room loaded near the end of its TTL must not expire under us.
        core.publish(Publish::Touch);
        Ok(core)
    }

    // ----- what the actor reads -----

    /// The room's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The room's read-only id.
    pub fn viewer_id(&self) -> Option<&str> {
        self.viewer_id.as_deref()
    }

    /// The room's revision.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// True when other instances write this room through the store.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Takes what the store must do, in order.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Why the room stopped, once it did.
    pub fn stop(&self) -> Option<&Stop> {
        self.stop.as_ref()
    }

    /// When another instance's commit turn lapses, while one is held.
    pub fn hold_until(&self) -> Option<Instant> {
        self.hold_until
    }

    /// The users with connections on this instance.
    pub fn local_users(&self) -> Vec<String> {
        self.users.keys().map(|u| u.to_string()).collect()
    }

    /// The ids this room knows of the revisions it applied.
    pub fn marks(&self) -> Vec<Mark> {
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

    /// The room's current state, for REST.
    pub fn snapshot(&self) -> Snapshot {
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

    // ----- time -----

    /// Time passes: the history's share of the instance budget may have
    /// shrunk, an unused room expires, a used one is kept alive.
    pub fn tick(&mut self, now: Instant) {
        // Rooms opened elsewhere on this instance shrink this one's share.
        self.trim_history();
        if self.conns.is_empty() {
            let idle = now.saturating_duration_since(self.last_activity);
            // A shared room outlives its task: a short grace suffices.
            let limit = if self.shared {
                (self.config.room_ttl / 2).min(Duration::from_secs(10))
            } else {
                self.config.room_ttl
            };
            if idle >= limit && self.pending.is_empty() && self.in_flight.is_empty() {
                self.stop.get_or_insert(Stop::Expired);
                return;
            }
        }
        if !self.conns.is_empty()
            && now.saturating_duration_since(self.last_touch) >= self.config.room_ttl / 3
        {
            self.last_touch = now;
            self.publish(Publish::Touch);
            self.publish(Publish::ExpireClients);
            self.expire_identities();
        }
    }

    /// The periodic check of a shared room (every couple of seconds): for
    /// operations the store's events lost, and for presence it missed.
    pub fn check_due(&mut self) {
        if self.shared && self.stop.is_none() {
            self.check_from.get_or_insert(self.presence_seq);
            self.publish(Publish::Check(self.revision));
        }
    }

    /// The commit turn another instance held lapsed.
    pub fn turn_over(&mut self, now: Instant) {
        self.hold_until = None;
        self.flush(now);
    }

    // ----- shutting down -----

    /// Commit what is queued, then close every connection with 1012.
    pub fn drain(&mut self, now: Instant) {
        self.draining = true;
        self.flush(now);
        self.finish_drain();
    }

    /// Once draining and nothing is left to commit: close everyone.
    fn finish_drain(&mut self) {
        if self.draining
            && self.in_flight.is_empty()
            && self.pending.is_empty()
            && self.stop.is_none()
        {
            for conn in self.conns.values() {
                conn.sink
                    .close(close_code::RESTARTING, error_code::SHUTTING_DOWN);
            }
            self.stop = Some(Stop::Drained);
        }
    }

    /// Closes every connection as `stop` says (after the room stopped).
    pub fn close_all(&self, code: &str, message: &str, close: u16) {
        for conn in self.conns.values() {
            conn.sink.fail(code, message, close);
        }
    }

    /// Wakes the writers of the connections that were queued to since the
    /// last call: once per burst of commands, so one write carries the burst.
    pub fn wake_writers(&mut self) {
        if std::mem::take(&mut self.dirty) {
            for conn in self.conns.values_mut().filter(|c| c.dirty) {
                conn.dirty = false;
                conn.sink.wake();
            }
        }
    }

    // ----- helpers of the submodules -----

    fn publish(&mut self, p: Publish) {
        self.actions.push(Action::Publish(p));
    }

    fn reset(&mut self, code: u16, reason: &'static str, detail: String) {
        self.stop.get_or_insert(Stop::Reset {
            code,
            reason,
            detail,
        });
    }

    /// The store holds another history than this room applied: stop
    /// applying anything and resynchronize (see [`Stop::Parted`]).
    fn parted(&mut self, detail: String) {
        if !matches!(self.stop, Some(Stop::Parted(_))) {
            self.stop = Some(Stop::Parted(detail));
        }
    }

    /// Learns where the room's history parted, if the store says so.
    pub fn note_fork(&mut self, fork: Option<u64>) {
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

    /// Keeps the history within its count and this room's share of the
    /// byte budgets (the share shrinks as rooms open on this instance).
    fn trim_history(&mut self) {
        let rooms = self.metrics.rooms.load(Ordering::Relaxed).max(1) as usize;
        let bytes = self.config.history.room_share(rooms);
        let dedup = &mut self.dedup;
        self.log.trim(self.config.history.ops, bytes, |e| {
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

    /// Queues `msg` for every connection; one whose queue is full is closed
    /// as lagging rather than buffered without bound.
    fn broadcast(&mut self, msg: &S::Msg) {
        for conn in self.conns.values_mut() {
            enqueue(conn, msg);
        }
        self.dirty = true;
    }
}

/// Queues `msg` for `conn` without waking its writer.
fn enqueue<S: ConnSink>(conn: &mut Conn<S>, msg: &S::Msg) {
    if conn.lagging {
        return;
    }
    if conn.sink.enqueue(msg) {
        conn.dirty = true;
    } else {
        conn.lagging = true;
        tracing::warn!(user = %conn.user_id, "connection lagging; closing it");
        conn.sink.close(close_code::LAGGING, error_code::LAGGING);
    }
}

/// The document at `revision`: `doc` (at `from`) with the log's entries
/// after `from` applied, which must run without a gap up to `revision`.
fn replay(
    mut doc: Rope,
    from: u64,
    log: &[CommittedEntry],
    revision: u64,
) -> Result<(Rope, u64), StoreError> {
    let mut at = from;
    for e in log.iter().filter(|e| e.revision > from) {
        if e.revision != at + 1 {
            return Err(StoreError::Corrupt(format!(
                "log jumps from {at} to {}",
                e.revision
            )));
        }
        e.operation
            .apply(&mut doc)
            .map_err(|err| StoreError::Corrupt(format!("revision {}: {err}", e.revision)))?;
        at = e.revision;
    }
    if at != revision {
        return Err(StoreError::Corrupt(format!(
            "log ends at {at} but the room is at {revision}"
        )));
    }
    Ok((doc, at))
}

/// The room's state as the store holds it, for REST when no room actor is
/// running here.
pub fn snapshot_of(loaded: LoadedRoom) -> Result<Snapshot, StoreError> {
    let (doc, revision) = replay(
        Rope::from_str(&loaded.snapshot),
        loaded.snapshot_revision,
        &loaded.log,
        loaded.revision,
    )?;
    Ok(Snapshot {
        revision,
        doc,
        language: loaded.language,
        users: loaded.presence.into_iter().map(|p| p.user).collect(),
    })
}

/// The marks (revision, id) a room loaded from the store knows.
pub fn loaded_marks(loaded: &LoadedRoom) -> Vec<Mark> {
    lineage::marks(
        loaded.log.iter().map(|e| (e.revision, e.id)),
        loaded.tip,
        loaded.revision,
    )
}

/// A commit request for a batch (kept here so the tests build the same).
fn commit_request(expected: u64, tip: u64, entries: Vec<CommittedEntry>) -> CommitRequest {
    CommitRequest {
        expected,
        expected_tip: (tip != 0).then_some((expected, tip)),
        entries,
    }
}
