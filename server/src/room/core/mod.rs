//! The room's logic, synchronous and without I/O: what a room does with a
//! join, an edit, a caret, a tree change, a commit's answer or another
//! instance's operations, and what must happen as a result.
//!
//! A room is a project: a tree of documents ([`tree`]), each with its own
//! revision stream ([`doc`]: text, history window, de-duplication, the
//! edits waiting to be committed). The core owns those and the room's
//! identities and presence; a shared room holds only the documents some
//! connection of this instance has open ([`files`]). It validates edits and
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

mod chat;
mod clients;
pub(crate) mod doc;
mod edits;
mod files;
pub(crate) mod history;
pub(crate) mod lineage;
mod members;
mod own_ops;
mod owner;
pub(crate) mod tree;

#[cfg(test)]
mod convergence_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use collab_protocol::{close_code, error_code, FileInfo, Role, ServerMessage, UserInfo};
use rand::rngs::StdRng;
use rand::SeedableRng;
use ropey::Rope;

use self::clients::Identities;
use self::doc::{Doc, DocId};
use self::history::HistoryLimits;
use self::lineage::Mark;
use self::own_ops::OwnOps;
pub use self::owner::OwnerAct;
use self::tree::{Refusal, Tree, TreeLimits};
use crate::metrics::Metrics;
use crate::store::{
    CommitRequest, CommittedEntry, LoadedDoc, LoadedRoom, StoreError, TreeEntry, TreeRequest,
};

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
    /// Documents, their sizes and the room's.
    pub tree: TreeLimits,
    /// Documents one connection holds open at most.
    pub max_open_docs: usize,
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
            tree: config.tree_limits(),
            max_open_docs: config.max_open_docs,
        }
    }
}

/// A connection asking to join a room.
pub struct JoinRequest<S> {
    /// The client's id (kept across its reconnects).
    pub client_id: String,
    /// Cleaned display name.
    pub name: String,
    /// The revision of the main document a reconnecting client last saw.
    pub since: Option<u64>,
    /// Set when joining through the room's read-only id: that id, which the
    /// viewer sees as the room id (the editing id is never revealed to it).
    pub viewer_id: Option<String>,
    /// Set when joining through an editing link that replaced the room's
    /// own id (`POST /rooms/{id}/links`).
    pub link: Option<String>,
    /// The client asked to only watch (`role=watcher`, e.g. `collab watch`):
    /// announced as a watcher, and its edits are refused like a viewer's.
    pub watcher: bool,
    /// The client understands project rooms (`project=1`).
    pub project: bool,
    /// The client shows typing indicators (`typing=1`): it hears `typing`.
    pub typing: bool,
    /// The connection holds the room's owner token.
    pub owner: bool,
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
#[derive(Clone, Debug, thiserror::Error)]
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
    /// A single-document client, and the main document was deleted.
    #[error(
        "this project room's main document was deleted; join it with a client that opens \
         projects (project=1)"
    )]
    NoMainDocument,
    /// The room holds as many connections as allowed.
    #[error("the room is full ({0} connections); try again later")]
    Full(usize),
    /// The owner removed this client from the room.
    #[error("the room's owner removed you from this room")]
    Removed,
    /// Joined by a link the owner replaced meanwhile.
    #[error("no room with this id (its links were replaced)")]
    StaleLink,
    /// The store could not be reached.
    #[error("the room's store is unavailable: {0}")]
    Store(#[from] StoreError),
}

/// A point-in-time view of a room's main document, for REST.
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

/// A document's text for REST, as far as this instance has it.
#[derive(Clone, Debug)]
pub enum FileText {
    /// No document has that path.
    NotFound,
    /// Its text.
    Text(Rope),
    /// Not held here (nobody of this instance has it open): the store has it.
    Stored(DocId),
}

/// What the room needs the store for. The actor carries these out in order
/// and hands the answers back to the core.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Commit this batch to a document; answer with [`RoomCore::committed`].
    /// At most one per document is in flight.
    Commit(DocId, CommitRequest),
    /// Read a document's log after its revision now; answer with
    /// [`RoomCore::caught_up`].
    CatchUp(DocId),
    /// Read a document from the store; answer with [`RoomCore::doc_loaded`].
    Load(DocId),
    /// Commit a tree change; answer with [`RoomCore::tree_committed`]. At
    /// most one is in flight.
    CommitTree(TreeRequest),
    /// Read the tree log after the tree's revision; answer with
    /// [`RoomCore::tree_caught_up`].
    CatchUpTree,
    /// Carry out an owner's control (asked on this connection) in the
    /// store (and through it on the other instances), then here; answer a
    /// failure with [`RoomCore::owner_failed`].
    Owner(ConnId, OwnerAct),
    /// Read the store's chat after this number; answer with
    /// [`RoomCore::chat_caught_up`].
    CatchUpChat(u64),
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
    /// A user's caret in a document (revision, cursor, anchor); only the
    /// newest matters.
    Caret(String, DocId, (u64, u64, Option<u64>)),
    /// A document at a revision, to store as its snapshot; only the newest
    /// matters.
    Snapshot(DocId, u64, Rope),
    /// A chat message for the store to number, keep and publish.
    Chat(collab_protocol::ChatMessage),
    /// A user is typing in the chat (`None`) or editing a document.
    Typing(String, Option<DocId>),
    /// The room's read-only id and replaced editing link now (state for
    /// the TTL refreshes, not a store write).
    Aliases(Option<String>, Option<String>),
    /// Keep the room alive another TTL.
    Touch,
    /// Forget stale client records in the store.
    ExpireClients,
    /// The periodic check: read the logs after these revisions of the
    /// documents held here and the tree log after this tree revision
    /// (answer as [`crate::store::StoreEvent`]s), and check presence
    /// (answer with [`RoomCore::presence_checked`]).
    Check {
        /// The documents held here and their revisions.
        docs: Vec<(DocId, u64)>,
        /// The tree's revision.
        tree: u64,
        /// The number of the last chat message delivered.
        chat: u64,
    },
}

/// Why the room stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Nobody used it for its TTL.
    Expired,
    /// Shut down: everything queued was committed, clients closed with 1012.
    Drained,
    /// Its owner ended it: clients are closed with 4007, nothing is written
    /// to the store (it deleted the room).
    Ended,
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
    /// The store holds another history of a document than the one this
    /// room applied (it was restored from an older state): record where
    /// the histories part, then close everyone with 1012; they reconnect to
    /// what it holds.
    Parted(DocId, String),
}

/// A tree change a connection asked for, checked and turned into a
/// [`crate::store::TreeChange`] when its turn to be committed comes.
#[derive(Clone, Debug)]
enum TreeWish {
    Create {
        path: String,
        code: String,
        language: Option<String>,
    },
    Rename {
        doc: String,
        path: String,
    },
    Delete {
        doc: String,
    },
}

/// A tree change waiting for its commit, and whose it is.
struct TreeEdit {
    conn_id: ConnId,
    user_id: Arc<str>,
    wish: TreeWish,
    /// Set once it is in flight.
    request: Option<TreeRequest>,
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
    /// A project client: messages name documents, it hears the tree.
    project: bool,
    /// Hears `typing` (asked with `typing=1`).
    typing: bool,
    /// Holds the owner token: the room's read-only switch does not apply.
    owner: bool,
    /// The documents it has open, each with which of its client's commits
    /// this connection hears as acks.
    open: HashMap<DocId, OwnOps>,
    /// Its chat allowance and typing.
    chat: chat::ChatLimits,
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
    /// joins, check presence, expire the task soon after the last leave,
    /// hold only the documents open here.
    shared: bool,
    metrics: Arc<Metrics>,
    tree: Tree,
    /// The documents held here (ordered, so that the room does the same
    /// thing in the same order every time: the seeded simulations replay).
    docs: BTreeMap<DocId, Doc>,
    /// Draws new documents' ids.
    doc_ids: StdRng,
    /// Documents being read from the store, with the `open`s waiting.
    loading: HashMap<DocId, Vec<doc::Waiter>>,
    /// Documents deleted while this room ran (their ids are never reused):
    /// a late edit to one is told so rather than "not found".
    deleted: HashSet<DocId>,
    identities: Identities,
    users: HashMap<Arc<str>, Present>,
    remote: HashMap<Arc<str>, Remote>,
    conns: HashMap<ConnId, Conn<S>>,
    next_conn: ConnId,
    last_activity: Instant,
    last_touch: Instant,
    tree_pending: VecDeque<TreeEdit>,
    tree_in_flight: Option<TreeEdit>,
    /// Other instances' tree changes ahead of the tree's revision.
    tree_stash: BTreeMap<u64, TreeEntry>,
    tree_catching_up: bool,
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
    chat: chat::Chat,
    /// Client ids the owner removed.
    banned: HashSet<String>,
    /// The owner made the room read-only for everyone else.
    read_only: bool,
    /// The editing link, once the owner replaced the links.
    link: Option<String>,
}

impl<S: ConnSink> RoomCore<S> {
    /// The room as the store holds it. `shared`: other instances write it
    /// through the store.
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
            config,
            shared,
            tree: Tree::new(loaded.tree_revision, loaded.files),
            docs: BTreeMap::new(),
            loading: HashMap::new(),
            doc_ids: StdRng::from_os_rng(),
            deleted: HashSet::new(),
            identities: loaded
                .identities
                .into_iter()
                .map(|(k, (u, c))| (k.into(), (u.into(), c)))
                .collect(),
            users: HashMap::new(),
            remote: loaded
                .presence
                .into_iter()
                .map(|p| (Arc::from(p.user.user_id.as_str()), Remote { info: p.user }))
                .collect(),
            conns: HashMap::new(),
            next_conn: 1,
            last_activity: now,
            last_touch: now,
            tree_pending: VecDeque::new(),
            tree_in_flight: None,
            tree_stash: BTreeMap::new(),
            tree_catching_up: false,
            draining: false,
            stop: None,
            actions: Vec::new(),
            dirty: false,
            presence_seq: 0,
            touched: HashMap::new(),
            check_from: None,
            chat: chat::Chat::loaded(loaded.chat),
            banned: loaded.banned.into_iter().collect(),
            read_only: loaded.read_only,
            link: loaded.link,
            metrics,
        };
        for (doc, loaded) in loaded.docs {
            if let Some(id) = core.tree.id(&doc) {
                core.insert_doc(id, loaded)?;
            }
        }
        // A room loaded near the end of its TTL must not expire under us.
        core.publish(Publish::Touch);
        Ok(core)
    }

    /// Starts holding a document read from the store.
    fn insert_doc(&mut self, id: DocId, loaded: LoadedDoc) -> Result<(), StoreError> {
        let doc = Doc::load(loaded, self.metrics.history_bytes.clone())?;
        self.tree.set_size(&id, doc.text.len_bytes() as u64);
        self.docs.insert(id.clone(), doc);
        // The log may reach back before the snapshot and past this
        // instance's budget; keep the tail that fits.
        self.trim_history(&id);
        Ok(())
    }

    /// Draws new documents' ids from `seed` (the seeded simulations).
    #[cfg(test)]
    pub(crate) fn seed_ids(&mut self, seed: u64) {
        self.doc_ids = StdRng::seed_from_u64(seed);
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

    /// The room's editing link, once the owner replaced the links.
    pub fn link(&self) -> Option<&str> {
        self.link.as_deref()
    }

    /// The main document's revision (0 when it is not held here).
    pub fn revision(&self) -> u64 {
        self.main_doc().map_or(0, |(_, d)| d.revision)
    }

    /// A held document's revision.
    pub fn revision_of(&self, doc: &str) -> Option<u64> {
        self.docs.get(doc).map(|d| d.revision)
    }

    /// The tree's revision.
    pub fn tree_revision(&self) -> u64 {
        self.tree.revision()
    }

    /// The main document's id, if it exists, and whether it is held here.
    pub fn main_id(&self) -> Option<(DocId, bool)> {
        self.tree.main().map(|id| {
            let held = self.docs.contains_key(&id);
            (id, held)
        })
    }

    fn main_doc(&self) -> Option<(DocId, &Doc)> {
        let id = self.tree.main()?;
        let doc = self.docs.get(&id)?;
        Some((id, doc))
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

    /// The earliest time another instance's commit turn lapses, while one
    /// is held on some document.
    pub fn hold_until(&self) -> Option<Instant> {
        self.docs.values().filter_map(|d| d.hold_until).min()
    }

    /// The users with connections on this instance.
    pub fn local_users(&self) -> Vec<String> {
        self.users.keys().map(|u| u.to_string()).collect()
    }

    /// For each document held here: its revision and the ids this room
    /// knows of the revisions it applied.
    pub fn marks(&self) -> BTreeMap<DocId, (u64, Vec<Mark>)> {
        self.docs
            .iter()
            .map(|(id, d)| (id.clone(), (d.revision, d.marks())))
            .collect()
    }

    /// Every user present, here or elsewhere.
    fn all_users(&self) -> Vec<UserInfo> {
        let mut users: Vec<UserInfo> = self.users.values().map(|p| p.info.clone()).collect();
        users.extend(
            self.remote
                .iter()
                .filter(|(u, _)| !self.users.contains_key(*u))
                .map(|(_, r)| r.info.clone()),
        );
        users
    }

    /// The main document's state, for REST; when it exists but is not held
    /// here (the store has it), the users present.
    pub fn snapshot(&self) -> Result<Snapshot, Vec<UserInfo>> {
        let main = self.tree.main();
        let users = self
            .all_users()
            .into_iter()
            .map(|u| single_doc_view(u, main.as_deref()))
            .collect();
        let (doc, revision) = match main.map(|id| self.docs.get(&id)) {
            Some(Some(d)) => (d.text.clone(), d.revision),
            Some(None) => return Err(users),
            None => (Rope::new(), 0),
        };
        Ok(Snapshot {
            revision,
            doc,
            language: self.language.clone(),
            users,
        })
    }

    /// The tree's revision and every document, sorted by path.
    pub fn files(&self) -> (u64, Vec<FileInfo>) {
        (self.tree.revision(), self.tree.list())
    }

    /// The text of the document at `path`.
    pub fn file_text(&self, path: &str) -> FileText {
        match self.tree.at(path) {
            None => FileText::NotFound,
            Some(id) => match self.docs.get(id) {
                Some(d) => FileText::Text(d.text.clone()),
                None => FileText::Stored(id.clone()),
            },
        }
    }

    // ----- time -----

    /// Time passes: the history's share of the instance budget may have
    /// shrunk, an unused room expires, a used one is kept alive.
    pub fn tick(&mut self, now: Instant) {
        // Rooms opened elsewhere on this instance shrink this one's share.
        let held: Vec<DocId> = self.docs.keys().cloned().collect();
        for id in held {
            self.trim_history(&id);
            self.release_if_unused(&id);
        }
        if self.conns.is_empty() {
            let idle = now.saturating_duration_since(self.last_activity);
            // A shared room outlives its task: a short grace suffices.
            let limit = if self.shared {
                (self.config.room_ttl / 2).min(Duration::from_secs(10))
            } else {
                self.config.room_ttl
            };
            if idle >= limit && self.docs.values().all(Doc::is_settled) && self.tree_idle() {
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
    /// operations and tree changes the store's events lost, and for
    /// presence it missed.
    pub fn check_due(&mut self) {
        if self.shared && self.stop.is_none() {
            self.check_from.get_or_insert(self.presence_seq);
            let docs = self
                .docs
                .iter()
                .filter(|(_, d)| !d.deleted)
                .map(|(id, d)| (id.clone(), d.revision))
                .collect();
            let tree = self.tree.revision();
            let chat = self.chat.last();
            self.publish(Publish::Check { docs, tree, chat });
        }
    }

    /// The commit turns other instances held that have lapsed by `now`.
    pub fn turn_over(&mut self, now: Instant) {
        let lapsed: Vec<DocId> = self
            .docs
            .iter()
            .filter(|(_, d)| d.hold_until.is_some_and(|t| t <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in lapsed {
            if let Some(d) = self.docs.get_mut(&id) {
                d.hold_until = None;
            }
            self.flush(&id, now);
        }
    }

    // ----- shutting down -----

    /// Commit what is queued, then close every connection with 1012.
    pub fn drain(&mut self, now: Instant) {
        self.draining = true;
        let held: Vec<DocId> = self.docs.keys().cloned().collect();
        for id in held {
            self.flush(&id, now);
        }
        self.finish_drain();
    }

    /// Once draining and nothing is left to commit: close everyone.
    fn finish_drain(&mut self) {
        if self.draining
            && self.docs.values().all(Doc::is_settled)
            && self.tree_in_flight.is_none()
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

    /// The store holds another history of `doc` than this room applied:
    /// stop applying anything and resynchronize (see [`Stop::Parted`]).
    fn parted(&mut self, doc: &DocId, detail: String) {
        if !matches!(self.stop, Some(Stop::Parted(..))) {
            self.stop = Some(Stop::Parted(doc.clone(), detail));
        }
    }

    /// Learns where a document's history parted, if the store says so.
    pub fn note_fork(&mut self, doc: &str, fork: Option<u64>) {
        if let (Some(f), Some(d)) = (fork, self.docs.get_mut(doc)) {
            d.fork = Some(d.fork.map_or(f, |mine| mine.min(f)));
        }
    }

    /// Keeps a document's history within its count and its share of the
    /// byte budgets: the room's share of the instance's (which shrinks as
    /// rooms open on this instance), split among the documents held here.
    fn trim_history(&mut self, id: &DocId) {
        let rooms = self.metrics.rooms.load(Ordering::Relaxed).max(1) as usize;
        let bytes = self.config.history.room_share(rooms) / self.docs.len().max(1);
        let Some(d) = self.docs.get_mut(id) else {
            return;
        };
        let dedup = &mut d.dedup;
        d.log.trim(self.config.history.ops, bytes, |e| {
            clients::commit_left_history(dedup, &e.client_id, e.revision);
        });
    }

    /// Forgets the identities of clients that are not here and have no
    /// commit in the history of any document held here (see [`clients`]).
    fn expire_identities(&mut self) {
        let (users, remote, docs) = (&self.users, &self.remote, &self.docs);
        clients::expire_identities(
            &mut self.identities,
            |client| docs.values().any(|d| d.dedup.contains_key(client)),
            |u| users.contains_key(u) || remote.contains_key(u),
        );
    }

    /// Queues, for every connection that `hears` picks, the message `make`
    /// builds (given whether the connection is a project client, which
    /// decides whether messages name documents): built at most once per
    /// kind of connection. A connection whose queue is full is closed as
    /// lagging rather than buffered without bound.
    fn fan_out(
        &mut self,
        hears: impl Fn(ConnId, &Conn<S>) -> bool,
        make: impl Fn(bool) -> ServerMessage,
    ) {
        let mut built: [Option<S::Msg>; 2] = [None, None];
        for (id, conn) in self.conns.iter_mut() {
            if !hears(*id, conn) {
                continue;
            }
            let msg = built[conn.project as usize]
                .get_or_insert_with(|| S::message(make(conn.project).to_json()));
            enqueue(conn, msg);
        }
        self.dirty = true;
    }

    /// Queues one message for one connection and wakes its writer.
    fn send(&mut self, conn_id: ConnId, msg: ServerMessage) {
        if let Some(conn) = self.conns.get_mut(&conn_id) {
            enqueue(conn, &S::message(msg.to_json()));
            conn.sink.wake();
            conn.dirty = false;
        }
    }

    /// Tells a connection that what it asked was refused; it stays open.
    fn refuse(&mut self, conn_id: ConnId, refusal: Refusal, seq: Option<u64>) {
        let msg = ServerMessage::Error {
            code: refusal.code.to_owned(),
            message: refusal.message,
            seq,
            doc: refusal.doc,
            path: refusal.path,
        };
        self.send(conn_id, msg);
    }

    /// Sends `error` and closes a connection.
    fn fail(&self, conn_id: ConnId, code: &str, message: &str, close: u16) {
        if let Some(conn) = self.conns.get(&conn_id) {
            conn.sink.fail(code, message, close);
        }
    }

    /// Resolves the document a client message names (`None`: the main one)
    /// to one this connection has open; otherwise tells the connection why
    /// not (it stays open) and returns `None`.
    fn open_doc(&mut self, conn_id: ConnId, doc: Option<&str>, seq: Option<u64>) -> Option<DocId> {
        let conn = self.conns.get(&conn_id)?;
        let id = match doc {
            Some(d) => self.tree.id(d),
            None => self.tree.main(),
        };
        let named = doc.unwrap_or(crate::store::MAIN_DOC);
        let refusal = match id {
            Some(id) if conn.open.contains_key(&id) => return Some(id),
            Some(id) => Refusal {
                code: error_code::NOT_OPEN,
                message: format!("document {id} is not open on this connection; send open first"),
                doc: Some(id.to_string()),
                path: None,
            },
            None => Refusal::no_doc(named, self.deleted.contains(named)),
        };
        self.refuse(conn_id, refusal, seq);
        None
    }
}

/// A user as a single-document client sees it: no document named, and a
/// caret only while it is in the main document.
fn single_doc_view(mut user: UserInfo, main: Option<&str>) -> UserInfo {
    if user.doc.is_some() && user.doc.as_deref() != main {
        user.cursor = None;
        user.anchor = None;
    }
    user.doc = None;
    user
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

/// The main document's state as the store holds it, for REST when no room
/// actor here holds it.
pub fn snapshot_of(loaded: LoadedRoom) -> Result<Snapshot, StoreError> {
    let (doc, revision) = match loaded.main() {
        Some(main) => doc::replay(
            Rope::from_str(&main.snapshot),
            main.snapshot_revision,
            &main.log,
            main.revision,
        )?,
        None => (Rope::new(), 0),
    };
    Ok(Snapshot {
        revision,
        doc,
        language: loaded.language,
        users: loaded
            .presence
            .into_iter()
            .map(|p| single_doc_view(p.user, Some(crate::store::MAIN_DOC)))
            .collect(),
    })
}

/// The text of a document as the store holds it.
pub fn text_of(loaded: &LoadedDoc) -> Result<Rope, StoreError> {
    doc::replay(
        Rope::from_str(&loaded.snapshot),
        loaded.snapshot_revision,
        &loaded.log,
        loaded.revision,
    )
    .map(|(text, _)| text)
}

/// The marks (revision, id) a document loaded from the store knows.
pub fn loaded_marks(loaded: &LoadedDoc) -> Vec<Mark> {
    lineage::marks(
        loaded.log.iter().map(|e| (e.revision, e.id)),
        loaded.tip,
        loaded.revision,
    )
}

/// A commit request for a batch (kept here so the tests build the same).
fn commit_request(
    expected: u64,
    tip: u64,
    entries: Vec<CommittedEntry>,
    size: u64,
) -> CommitRequest {
    CommitRequest {
        expected,
        expected_tip: (tip != 0).then_some((expected, tip)),
        entries,
        size,
    }
}
