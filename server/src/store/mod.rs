//! Where rooms live, behind one port: the room actor, the registry and the
//! REST layer call [`Store`]'s methods and read the backend-neutral types
//! below, never knowing which backend answers.
//!
//! - [`memory`] (the default): the room itself is the authority; the store
//!   only remembers which rooms exist and their read-only ids, and every
//!   commit succeeds at once.
//! - [`redis`] (`REDIS_URL`): several server instances share rooms; commits
//!   go through one atomic script and other instances' commits, carets and
//!   joins arrive as [`StoreEvent`]s.

pub mod memory;
pub mod redis;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use collab_protocol::{ChatMessage, FileInfo, Operation, UserInfo};
use ropey::Rope;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;

/// How long the instance that lost a commit race keeps the next turn
/// (another instance's commit in that window is answered
/// [`CommitReply::Yield`]).
pub const TURN: Duration = Duration::from_millis(50);

/// A revision and the id of the operation that produced it (see
/// `room::core::lineage`).
pub type Mark = (u64, u64);

/// A store failure, as the rest of the server sees it.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or answered an error.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store held data this server cannot read.
    #[error("corrupt room data: {0}")]
    Corrupt(String),
}

/// One committed operation: what a room keeps in its history, what the
/// store logs and what other instances receive. The field names in the
/// stored form are short (`r`, `h`, `o`, `u`, `c`, `s`, in that order: the
/// Redis scripts read `r` and `h` with patterns anchored at the start).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedEntry {
    /// The revision it produced.
    #[serde(rename = "r")]
    pub revision: u64,
    /// Its id in the room's history (`lineage`), 16 hex digits when stored;
    /// 0 (absent when stored) for entries written before ids existed.
    #[serde(
        rename = "h",
        default,
        with = "hex_id",
        skip_serializing_if = "is_zero"
    )]
    pub id: u64,
    /// The operation, on the document at `revision - 1`.
    #[serde(rename = "o")]
    pub operation: Operation,
    /// The author's user id.
    #[serde(rename = "u")]
    pub user_id: Arc<str>,
    /// The author's client id (de-duplication).
    #[serde(rename = "c")]
    pub client_id: Arc<str>,
    /// The author's seq.
    #[serde(rename = "s")]
    pub seq: u64,
}

fn is_zero(id: &u64) -> bool {
    *id == 0
}

/// An entry id as stored: 16 hex digits, absent for 0.
mod hex_id {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{id:016x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = String::deserialize(d)?;
        Ok(u64::from_str_radix(&text, 16).unwrap_or(0))
    }
}

/// A user present in a room and the instance holding its connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceRecord {
    /// The user.
    pub user: UserInfo,
    /// The instance holding its connection.
    pub instance: String,
}

/// The id of a room's main document: the one a room made from one file
/// holds, and the one single-document clients see.
pub const MAIN_DOC: &str = "main";

/// One document's revision stream as the store holds it.
#[derive(Clone, Debug, Default)]
pub struct LoadedDoc {
    /// Current revision.
    pub revision: u64,
    /// Revision of `snapshot`.
    pub snapshot_revision: u64,
    /// The document at `snapshot_revision`.
    pub snapshot: String,
    /// Logged operations, oldest first, ending at `revision`.
    pub log: Vec<CommittedEntry>,
    /// client id -> (seq, revision) of its last commit to this document.
    pub dedup: Vec<(String, (u64, u64))>,
    /// The latest revision and its operation's id, when known.
    pub tip: Option<Mark>,
    /// Set once instances found that the document's history parted (the
    /// store was restored from an older state): clients reconnecting with a
    /// `since` after this revision cannot be rebased.
    pub fork: Option<u64>,
}

impl LoadedDoc {
    /// A new document holding `text` at revision 0.
    pub fn new(text: &str) -> Self {
        Self {
            snapshot: text.to_owned(),
            ..Self::default()
        }
    }
}

/// A document to create: its place in the tree and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDoc {
    /// Its id, path, size and language.
    pub file: FileInfo,
    /// Its text.
    pub code: String,
}

/// Everything needed to start a room, read in one atomic step. Documents
/// are read lazily: `docs` holds those read with the room (the main one
/// from a shared store, every one in memory); the others are read when
/// opened ([`Store::load_doc`]).
#[derive(Clone, Debug, Default)]
pub struct LoadedRoom {
    /// The room's language hint (its main document's).
    pub language: String,
    /// client id -> (user id, color).
    pub identities: Vec<(String, (String, String))>,
    /// Users present on any instance.
    pub presence: Vec<PresenceRecord>,
    /// The room's read-only id.
    pub viewer: Option<String>,
    /// How many tree changes the room has had.
    pub tree_revision: u64,
    /// Every document.
    pub files: Vec<FileInfo>,
    /// The documents read with the room.
    pub docs: Vec<(String, LoadedDoc)>,
    /// The room's kept chat, oldest first.
    pub chat: Vec<ChatMessage>,
    /// Client ids the owner removed: refused when they come back.
    pub banned: Vec<String>,
    /// The owner made the room read-only for everyone else.
    pub read_only: bool,
    /// The room's current editing link when the owner replaced the links
    /// (the room's own id then no longer opens it).
    pub link: Option<String>,
}

impl LoadedRoom {
    /// A new room holding one document, `code`, as its main document: at
    /// `path` (`main.EXT` by the language when absent).
    pub fn single(code: &str, language: &str, path: Option<&str>) -> (Self, Vec<NewDoc>) {
        let path = path.map_or_else(
            || format!("main.{}", collab_protocol::language::extension(language)),
            str::to_owned,
        );
        let doc = NewDoc {
            file: FileInfo {
                doc: MAIN_DOC.to_owned(),
                path,
                size: code.len() as u64,
                language: language.to_owned(),
            },
            code: code.to_owned(),
        };
        (Self::new(std::slice::from_ref(&doc)), vec![doc])
    }

    /// A new room holding `docs` (the one with id [`MAIN_DOC`], if any, is
    /// its main document).
    pub fn new(docs: &[NewDoc]) -> Self {
        Self {
            language: docs
                .iter()
                .find(|d| d.file.doc == MAIN_DOC)
                .map_or_else(|| "plaintext".to_owned(), |d| d.file.language.clone()),
            files: docs.iter().map(|d| d.file.clone()).collect(),
            docs: docs
                .iter()
                .map(|d| (d.file.doc.clone(), LoadedDoc::new(&d.code)))
                .collect(),
            ..Self::default()
        }
    }

    /// The main document, when it was read with the room.
    pub fn main(&self) -> Option<&LoadedDoc> {
        self.docs
            .iter()
            .find(|(id, _)| id == MAIN_DOC)
            .map(|(_, d)| d)
    }
}

/// A change to a room's tree of documents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum TreeChange {
    /// A document was created (its text is stored with it).
    Create {
        /// The new document.
        file: FileInfo,
    },
    /// A document moved.
    Rename {
        /// Which.
        doc: String,
        /// Where to.
        path: String,
        /// Where from.
        old_path: String,
        /// Its language after the move.
        language: String,
    },
    /// A document was deleted.
    Delete {
        /// Which.
        doc: String,
        /// The path it had.
        path: String,
    },
}

impl TreeChange {
    /// The document it changes.
    pub fn doc(&self) -> &str {
        match self {
            TreeChange::Create { file } => &file.doc,
            TreeChange::Rename { doc, .. } | TreeChange::Delete { doc, .. } => doc,
        }
    }
}

/// A committed tree change: what the tree log keeps and what other
/// instances receive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeEntry {
    /// The tree revision it produced.
    #[serde(rename = "r")]
    pub revision: u64,
    /// Who made it.
    #[serde(rename = "u")]
    pub user_id: String,
    /// What changed.
    #[serde(rename = "c")]
    pub change: TreeChange,
}

/// A tree change to commit at tree revision `entry.revision`, on
/// `entry.revision - 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeRequest {
    /// The change.
    pub entry: TreeEntry,
    /// A created document's text.
    pub code: String,
}

/// The answer to a tree commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TreeReply {
    /// Committed.
    Committed,
    /// Someone changed the tree first: the room's tree is at `revision`, and
    /// `missed` are the changes after the expected one.
    Conflict {
        /// The tree's revision.
        revision: u64,
        /// What the committer missed.
        missed: Vec<TreeEntry>,
    },
    /// The room no longer exists.
    Gone,
}

/// The tree log after a revision.
#[derive(Clone, Debug)]
pub struct TreeTail {
    /// The tree's revision.
    pub revision: u64,
    /// The logged changes after the revision asked for (as far as the log
    /// reaches back; the reader checks the first one).
    pub entries: Vec<TreeEntry>,
    /// The room's (editing link, read-only id), once the owner replaced its
    /// links: read with the tree, so that joins and the periodic check
    /// learn of new links even when their event was lost.
    pub links: Option<(String, String)>,
    /// The number of the room's last chat message, read with the tree so
    /// that the periodic check reads the chat only when it grew.
    pub chat_seq: u64,
}

/// The log after a revision, as [`Store::entries_since`] reads it.
#[derive(Clone, Debug)]
pub struct Tail {
    /// The room's revision.
    pub revision: u64,
    /// The logged entries after the revision asked for (as far as the log
    /// reaches back; the reader checks the first one).
    pub entries: Vec<CommittedEntry>,
    /// The revision asked for and its operation's id, when the store knows.
    pub base: Option<Mark>,
    /// The revision after which the room's history parted, if it did.
    pub fork: Option<u64>,
}

/// A batch of edits to commit at revisions `expected + 1 ..`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitRequest {
    /// The revision the batch builds on.
    pub expected: u64,
    /// That revision's mark, when known: a store holding another operation
    /// there answers [`CommitReply::Parted`].
    pub expected_tip: Option<Mark>,
    /// The entries, in order.
    pub entries: Vec<CommittedEntry>,
    /// The document's size in bytes after them (for the tree's listing).
    pub size: u64,
}

/// The answer to a commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitReply {
    /// Appended; the room is now at `revision`, and its stored log holds
    /// `log_bytes` bytes (over the budget: a snapshot is due).
    Committed {
        /// The room's revision.
        revision: u64,
        /// Bytes of the stored log.
        log_bytes: u64,
    },
    /// Someone committed first; the room is at `revision`, and `missed` are
    /// the logged entries after the expected one (all the log holds).
    Conflict {
        /// The room's revision.
        revision: u64,
        /// What the committer missed.
        missed: Vec<CommittedEntry>,
    },
    /// Another instance lost a race and holds the next turn: retry once its
    /// commit arrived (or the turn lapsed). The room was at `revision`.
    Yield {
        /// The room's revision.
        revision: u64,
    },
    /// The store holds another history than the one the commit builds on
    /// (it was restored from an older state). It is at `revision`.
    Parted {
        /// The store's revision.
        revision: u64,
    },
    /// The document was deleted (the room still exists).
    Deleted,
    /// The room no longer exists (expired).
    Gone,
}

/// What other instances did, as the store tells a room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreEvent {
    /// Operations committed (by another instance, or read back by a
    /// periodic check), in revision order, on `base` when known.
    Ops {
        /// The document.
        doc: String,
        /// Its size in bytes after them, when the event says.
        size: Option<u64>,
        /// The mark they were committed on.
        base: Option<Mark>,
        /// The entries.
        entries: Vec<CommittedEntry>,
    },
    /// A user's caret at `revision`.
    Cursor {
        /// The user.
        user_id: String,
        /// The document.
        doc: String,
        /// Revision of the offsets.
        revision: u64,
        /// Caret.
        cursor: u64,
        /// Selection anchor.
        anchor: Option<u64>,
    },
    /// A tree change committed by another instance.
    Tree(TreeEntry),
    /// A user joined on `instance`.
    Join {
        /// The instance holding the user's connection.
        instance: String,
        /// Who.
        user: UserInfo,
    },
    /// A user left (or its instance died).
    Leave {
        /// Who.
        user_id: String,
    },
    /// A chat message (this instance's own too: the store numbers them,
    /// and every instance delivers them in that order).
    Chat(ChatMessage),
    /// A user of another instance is typing in the chat (`doc` `None`) or
    /// editing a document.
    Typing {
        /// Who.
        user_id: String,
        /// The document, when editing one.
        doc: Option<String>,
    },
    /// The owner ended the room: its data is gone.
    Ended,
    /// The owner switched the room's read-only mode.
    Mode(bool),
    /// The owner replaced the room's share links.
    Links {
        /// The new editing link.
        link: String,
        /// The new read-only id.
        viewer: String,
    },
    /// The owner removed a user; these are its client ids, now refused,
    /// and the room's new links (the one the user had stops working).
    Removed {
        /// Who.
        user_id: String,
        /// Its client ids.
        client_ids: Vec<String>,
        /// The new (editing link, read-only id).
        links: Option<(String, String)>,
    },
    /// Events may have been lost (the store's link reconnected, or the room
    /// fell far behind): read the log again.
    Resync,
}

/// The rooms' store: one of the backends, behind one set of methods.
#[derive(Clone)]
pub enum Store {
    /// Rooms live in this process only.
    Memory(Arc<MemoryStore>),
    /// Rooms live in Redis, shared with other instances.
    Redis(Arc<RedisStore>),
}

/// A commit on its way: the room polls it itself (a spawned task would cost
/// two more wake-ups per keystroke).
pub type CommitFuture = Pin<Box<dyn Future<Output = Result<CommitReply, StoreError>> + Send>>;
/// A tree commit on its way.
pub type TreeFuture = Pin<Box<dyn Future<Output = Result<TreeReply, StoreError>> + Send>>;

/// Calls the same method on whichever backend this is.
macro_rules! each {
    ($self:expr, $s:ident => $call:expr) => {
        match $self {
            Store::Memory($s) => $call,
            Store::Redis($s) => $call,
        }
    };
}

impl Store {
    /// What `/health` calls the store.
    pub fn name(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
        }
    }

    /// True when other server instances write the same rooms: rooms then
    /// catch up, check presence and publish carets through the store.
    pub fn is_shared(&self) -> bool {
        matches!(self, Store::Redis(_))
    }

    /// This instance's id in the store.
    pub fn instance(&self) -> &str {
        each!(self, s => s.instance())
    }

    /// True when the store can be reached.
    pub async fn healthy(&self) -> bool {
        each!(self, s => s.healthy().await)
    }

    /// Stores a new room holding `docs` (each at revision 0).
    pub async fn create_room(
        &self,
        id: &str,
        viewer: &str,
        owner: &str,
        docs: &[NewDoc],
    ) -> Result<(), StoreError> {
        each!(self, s => s.create_room(id, viewer, owner, docs).await)
    }

    /// The room a replaced editing link opens, if any.
    pub async fn link_room(&self, link: &str) -> Result<Option<String>, StoreError> {
        each!(self, s => s.link_room(link).await)
    }

    /// Replaces the room's share links with `link` and `viewer` (the old
    /// ones, and the room's own id, stop opening it) and tells every
    /// instance ([`StoreEvent::Links`]). False when the room is gone.
    pub async fn rotate_links(
        &self,
        id: &str,
        link: &str,
        viewer: &str,
    ) -> Result<bool, StoreError> {
        each!(self, s => s.rotate_links(id, link, viewer).await)
    }

    /// True when the room exists and its own id still opens it (its links
    /// were never replaced).
    pub async fn exists(&self, id: &str) -> Result<bool, StoreError> {
        each!(self, s => s.exists(id).await)
    }

    /// The room a read-only id opens, if any.
    pub async fn viewer_room(&self, viewer: &str) -> Result<Option<String>, StoreError> {
        each!(self, s => s.viewer_room(viewer).await)
    }

    /// Reads a room (its tree, and the documents it reads with it), or
    /// `None` when it does not exist.
    pub async fn load(&self, id: &str) -> Result<Option<LoadedRoom>, StoreError> {
        each!(self, s => s.load(id).await)
    }

    /// Reads one document of a room, or `None` when it does not exist.
    pub async fn load_doc(&self, id: &str, doc: &str) -> Result<Option<LoadedDoc>, StoreError> {
        each!(self, s => s.load_doc(id, doc).await)
    }

    /// The room's actor ended. An in-memory room is gone with it; a stored
    /// one lives on until its TTL.
    pub fn room_ended(&self, id: &str, viewer: Option<&str>) {
        if let Store::Memory(s) = self {
            s.forget(id, viewer);
        }
    }

    /// Commits a batch to a document (see [`CommitRequest`]). In memory the
    /// answer is ready at once.
    pub fn commit(&self, id: &str, doc: &str, req: CommitRequest) -> CommitFuture {
        match self {
            Store::Memory(_) => Box::pin(std::future::ready(Ok(CommitReply::Committed {
                revision: req.expected + req.entries.len() as u64,
                log_bytes: 0,
            }))),
            Store::Redis(s) => {
                let (s, id, doc) = (s.clone(), id.to_owned(), doc.to_owned());
                Box::pin(async move { s.commit(&id, &doc, req).await })
            }
        }
    }

    /// Commits a tree change (see [`TreeRequest`]). In memory the answer is
    /// ready at once.
    pub fn commit_tree(&self, id: &str, req: TreeRequest) -> TreeFuture {
        match self {
            Store::Memory(_) => Box::pin(std::future::ready(Ok(TreeReply::Committed))),
            Store::Redis(s) => {
                let (s, id) = (s.clone(), id.to_owned());
                Box::pin(async move { s.commit_tree(&id, req).await })
            }
        }
    }

    /// The logged operations of a document after revision `after`; `None`
    /// when the room or the document is gone.
    pub async fn entries_since(
        &self,
        id: &str,
        doc: &str,
        after: u64,
    ) -> Result<Option<Tail>, StoreError> {
        each!(self, s => s.entries_since(id, doc, after).await)
    }

    /// The logged tree changes after tree revision `after`; `None` when the
    /// room is gone.
    pub async fn tree_since(&self, id: &str, after: u64) -> Result<Option<TreeTail>, StoreError> {
        each!(self, s => s.tree_since(id, after).await)
    }

    /// Records that a document's history parted after revision `at`
    /// (keeping the earliest such revision); returns the recorded one.
    pub async fn record_fork(
        &self,
        id: &str,
        doc: &str,
        at: u64,
    ) -> Result<Option<u64>, StoreError> {
        each!(self, s => s.record_fork(id, doc, at).await)
    }

    /// The revision after which a document's history parted, if it ever did.
    pub async fn fork(&self, id: &str, doc: &str) -> Result<Option<u64>, StoreError> {
        each!(self, s => s.fork(id, doc).await)
    }

    /// Stores a document at `revision` as its snapshot and trims its log.
    pub async fn write_snapshot(
        &self,
        id: &str,
        doc: &str,
        revision: u64,
        text: Rope,
    ) -> Result<(), StoreError> {
        each!(self, s => s.write_snapshot(id, doc, revision, text).await)
    }

    /// Keeps the room (every document, and its read-only id) alive for
    /// another TTL.
    pub async fn touch(
        &self,
        id: &str,
        viewer: Option<&str>,
        link: Option<&str>,
    ) -> Result<(), StoreError> {
        each!(self, s => s.touch(id, viewer, link).await)
    }

    /// Forgets stale client records of a room.
    pub async fn expire_clients(&self, id: &str) -> Result<(), StoreError> {
        each!(self, s => s.expire_clients(id).await)
    }

    /// The identity of `client_id` in a room: the stored one, or the given
    /// new one if none was stored (first writer wins across instances).
    pub async fn identity(
        &self,
        id: &str,
        client_id: &str,
        fresh: (String, String),
    ) -> Result<(String, String), StoreError> {
        each!(self, s => s.identity(id, client_id, fresh).await)
    }

    /// Records a user as present on this instance and tells the others.
    pub async fn join(&self, id: &str, user: &UserInfo) -> Result<(), StoreError> {
        each!(self, s => s.join(id, user).await)
    }

    /// Removes this instance's presence record of a user and tells the
    /// others; a record another instance wrote meanwhile stays.
    pub async fn leave(&self, id: &str, user_id: &str) -> Result<(), StoreError> {
        each!(self, s => s.leave(id, user_id).await)
    }

    /// Tells the other instances where a user's caret is.
    pub async fn cursor(
        &self,
        id: &str,
        user_id: &str,
        doc: &str,
        caret: (u64, u64, Option<u64>),
    ) -> Result<(), StoreError> {
        each!(self, s => s.cursor(id, user_id, doc, caret).await)
    }

    /// The hash of the room owner's token, if it has one.
    pub async fn owner(&self, id: &str) -> Result<Option<String>, StoreError> {
        each!(self, s => s.owner(id).await)
    }

    /// Switches the room to read-only for everyone but its owner (or back)
    /// and tells every instance ([`StoreEvent::Mode`]). False when the room
    /// does not exist.
    pub async fn set_read_only(&self, id: &str, read_only: bool) -> Result<bool, StoreError> {
        each!(self, s => s.set_read_only(id, read_only).await)
    }

    /// Ends a room: tells every instance ([`StoreEvent::Ended`]) and
    /// deletes everything of it. False when it did not exist.
    pub async fn end_room(&self, id: &str) -> Result<bool, StoreError> {
        each!(self, s => s.end_room(id).await)
    }

    /// Removes a user: its client ids (as the room's identities know them,
    /// plus `known`) are refused from now on, the room's links are replaced
    /// by `links` (editing link, read-only id), and every instance is told
    /// in one event ([`StoreEvent::Removed`]). Returns the client ids (none:
    /// no such user, nothing changed).
    pub async fn remove_user(
        &self,
        id: &str,
        user_id: &str,
        known: &[String],
        links: (&str, &str),
    ) -> Result<Vec<String>, StoreError> {
        each!(self, s => s.remove_user(id, user_id, known, links).await)
    }

    /// Numbers a chat message, keeps it with the room (the last
    /// [`collab_protocol::CHAT_KEPT`]) and tells every instance, this one
    /// included ([`StoreEvent::Chat`]). Only a shared store is asked: a
    /// room in memory keeps and numbers its chat itself.
    pub async fn chat(&self, id: &str, msg: &ChatMessage) -> Result<(), StoreError> {
        match self {
            Store::Memory(_) => Ok(()),
            Store::Redis(s) => s.chat(id, msg).await,
        }
    }

    /// The kept chat messages numbered after `after`, oldest first.
    pub async fn chat_since(&self, id: &str, after: u64) -> Result<Vec<ChatMessage>, StoreError> {
        match self {
            Store::Memory(_) => Ok(Vec::new()),
            Store::Redis(s) => s.chat_since(id, after).await,
        }
    }

    /// Tells the other instances that a user is typing in the chat (`doc`
    /// `None`) or editing a document.
    pub async fn typing(
        &self,
        id: &str,
        user_id: &str,
        doc: Option<&str>,
    ) -> Result<(), StoreError> {
        match self {
            Store::Memory(_) => Ok(()),
            Store::Redis(s) => s.typing(id, user_id, doc).await,
        }
    }

    /// Users present in the room on any instance (to join ones that were
    /// missed), after removing those of instances that died; `left` are
    /// the users this call removed.
    pub async fn presence_check(&self, id: &str) -> Result<PresenceCheck, StoreError> {
        each!(self, s => s.presence_check(id).await)
    }

    /// Starts delivering the room's events to `feed`.
    pub fn subscribe(&self, id: &str, feed: mpsc::Sender<StoreEvent>) {
        each!(self, s => s.subscribe(id, feed))
    }

    /// Stops delivering the room's events.
    pub fn unsubscribe(&self, id: &str) {
        each!(self, s => s.unsubscribe(id))
    }
}

/// What a presence check found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PresenceCheck {
    /// Users present on other, live instances.
    pub present: Vec<PresenceRecord>,
    /// Users of dead instances this check removed (each announced once,
    /// by whichever instance removed it).
    pub left: Vec<String>,
}
