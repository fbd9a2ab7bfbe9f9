//! The mirror's decisions, free of I/O. It holds the room's tree as heard,
//! a `Replica` per open document, and per document the text the file on
//! disk last matched (`base`) with the room's edits since then
//! (`since_base`, an operation from `base` to the replica's text).
//!
//! A file changed on disk becomes `edit = diff(base, disk)`; transformed
//! against `since_base` (OT), it applies to the replica as a local edit
//! and is sent; what is left of `since_base` is what the disk still lacks,
//! written on the next flush. So a change on disk and concurrent edits in
//! the room merge, whichever came first, and nothing is replaced whole.
//! Writing first reads the disk again (a change since the last look is
//! merged first) and then writes the replica's text, which becomes `base`.
//! The mirror's own writes come back as file system events whose content
//! equals `base`: they are recognised by that and change nothing.
//!
//! Tree changes travel both ways: a file appearing on disk is created in
//! the room, one disappearing is deleted, and one disappearing while
//! another appears with the same text (in one batch of events) is renamed;
//! the room's creates, renames and deletes become file writes, moves and
//! removals. Documents are opened on demand (a colleague's caret, a change
//! on disk, a new file) and the least recently used are closed beyond
//! `max_open`, since the server limits how many a connection holds open.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use collab_protocol::{
    ClientMessage, ClientSync, Operation, Pending, Reconnected, Replica, ServerMessage, SyncState,
};

use crate::disk::diff::{edit_between, split_edit};
pub use crate::disk::scan::LOST_SUFFIX;

/// What the shell saw at a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// No file there.
    Missing,
    /// A shareable text file.
    Text(String),
    /// A file that cannot be shared (binary, too large, unreadable), why.
    Unshareable(String),
}

/// What the shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this message on the current connection.
    Send(ClientMessage),
    /// Write `text` to the file at `path` (atomically).
    Write {
        /// The room path.
        path: String,
        /// The whole text.
        text: String,
    },
    /// Move the file at `from` to `to`.
    Rename {
        /// The old room path.
        from: String,
        /// The new one.
        to: String,
    },
    /// Remove the file at `path` if it still holds `expect` (else keep it:
    /// it changed on disk, and the change would be lost).
    Remove {
        /// The room path.
        path: String,
        /// The text the disk last matched.
        expect: String,
    },
    /// Look at `path` and report it with [`Core::disk_changed`].
    Read(String),
    /// Keep `text`, the host's version of `path` the room did not take,
    /// in a new file beside it (`PATH.collab-lost`, never shared).
    WriteAside {
        /// The room path.
        path: String,
        /// The host's text.
        text: String,
    },
    /// Tell the user.
    Warn(String),
}

/// A text the mirror wrote before the latest, with the room's edits since
/// (that text -> the replica's). A tool that read the file just before a
/// write and wrote it back just after (`sed -i`, a formatter) started from
/// this one: taking the diff against it keeps what the mirror wrote in
/// between instead of deleting it.
struct Earlier {
    text: String,
    since: Operation,
    /// When the write that replaced it happened ([`Core::set_clock`]).
    replaced_at: Duration,
}

/// How many earlier writes are kept as possible bases.
const EARLIER_KEPT: usize = 2;

/// How long after a write an earlier copy may still be what a tool read:
/// the time `sed -i` or a formatter takes between reading a file and
/// writing it back. Later, a deletion on disk is the host's own, and
/// taking the diff against an older copy would bring back what the host
/// deleted (the room's later keystrokes).
pub const EARLIER_WINDOW: Duration = Duration::from_secs(2);

/// How long a file that vanished, or a new one, waits before its removal
/// or creation goes to the room. The two halves of a rename can reach the
/// mirror in different batches (a move into a directory made a moment
/// before; a walk that saw the file at both paths): pairing them needs the
/// first half still on hand when the second comes.
pub const RENAME_HOLD: Duration = Duration::from_millis(250);

/// The server's default limit on one message (`--max-message-bytes`): a
/// bigger one closes the connection (1009).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Room for a message's envelope (type, revision, seq, document id).
const ENVELOPE_BYTES: usize = 1024;

/// How many bytes `msg` takes on the wire.
fn message_len(msg: &ClientMessage) -> usize {
    serde_json::to_vec(msg).map_or(usize::MAX, |v| v.len())
}

/// `msg`, the edit `replica` just put in flight, made to fit in a message
/// of `max` bytes: when it is bigger, only its first piece goes now and
/// the rest waits behind it as the buffered edit, which is cut again when
/// the ack sends it. Each piece is a `code_update` of its own, based on
/// the previous one.
fn fit(replica: &mut Replica, msg: ClientMessage, max: usize) -> ClientMessage {
    if message_len(&msg) <= max {
        return msg;
    }
    let ClientMessage::CodeUpdate {
        revision,
        seq,
        operation,
        doc,
    } = msg
    else {
        return msg;
    };
    let mut chunks = split_edit(&operation, max.saturating_sub(ENVELOPE_BYTES)).into_iter();
    let first = chunks.next().unwrap_or_else(|| operation.clone());
    let mut rest: Option<Operation> = None;
    for c in chunks {
        rest = Some(match rest {
            None => c,
            Some(r) => r.compose(&c).unwrap_or(r),
        });
    }
    let (Some(mut rest), SyncState::AwaitingAck(_) | SyncState::AwaitingWithBuffer(..)) =
        (rest, replica.sync.state().clone())
    else {
        return ClientMessage::CodeUpdate {
            revision,
            seq,
            operation,
            doc,
        };
    };
    if let SyncState::AwaitingWithBuffer(_, buffer) = replica.sync.state() {
        rest = rest.compose(buffer).unwrap_or(rest);
    }
    let next = replica.sync.next_seq();
    replica.sync = ClientSync::resume(
        replica.sync.revision(),
        SyncState::AwaitingWithBuffer(
            Pending {
                seq,
                operation: first.clone(),
            },
            rest,
        ),
        next,
    );
    ClientMessage::CodeUpdate {
        revision,
        seq,
        operation: first,
        doc,
    }
}

/// How many chars an operation inserts and deletes.
fn cost(op: &Operation) -> usize {
    op.components()
        .iter()
        .map(|c| match c {
            collab_protocol::Component::Retain(_) => 0,
            collab_protocol::Component::Insert(s) => s.chars().count(),
            collab_protocol::Component::Delete(n) => *n,
        })
        .sum()
}

/// One open document.
struct Doc {
    replica: Replica,
    /// The text the file on disk last matched.
    base: String,
    /// The room's edits since `base`: `base` -> the replica's text.
    since_base: Operation,
    /// Whether the file exists on disk with `base` as its text (false for a
    /// document created in the room and not written yet).
    on_disk: bool,
    /// When it was last used (for closing the least recently used).
    used: u64,
    /// Texts written before `base` since the disk last changed, newest last.
    earlier: Vec<Earlier>,
}

impl Doc {
    /// The room applied `op` to the replica: every base's edits grow.
    fn room_applied(&mut self, op: &Operation) {
        self.since_base = match self.since_base.compose(op) {
            Ok(c) => c,
            Err(_) => edit_between(&self.base, &self.replica.text()),
        };
        self.earlier.retain_mut(|e| match e.since.compose(op) {
            Ok(c) => {
                e.since = c;
                true
            }
            Err(_) => false,
        });
    }
}

/// The mirror's state; see the module docs.
pub struct Core {
    user_id: String,
    main: Option<String>,
    max_open: usize,
    /// Document id -> path, as heard.
    tree: BTreeMap<String, String>,
    /// The room's tree revision, as heard.
    tree_revision: u64,
    docs: BTreeMap<String, Doc>,
    /// `open` sent, `opened` not heard yet.
    opening: BTreeSet<String>,
    /// Documents not open here whose file is on disk: the text it matched.
    closed: BTreeMap<String, String>,
    /// Files on disk before the first `init`, by path.
    initial: BTreeMap<String, String>,
    /// Each closed document's next seq (seqs in a document only grow).
    seqs: BTreeMap<String, u64>,
    /// Files found on disk and sent as `create_file`: path -> text.
    pending_create: BTreeMap<String, String>,
    /// Renames sent: doc -> new path.
    pending_rename: BTreeMap<String, String>,
    /// Deletes sent.
    pending_delete: BTreeSet<String>,
    /// Documents whose file vanished from disk, and when (the shell's
    /// clock): held for [`RENAME_HOLD`] in case they turn up elsewhere.
    vanished: BTreeMap<String, Duration>,
    /// New files found on disk (path -> text, when), held the same way in
    /// case they are the other half of a rename.
    appeared: BTreeMap<String, (String, Duration)>,
    /// Documents whose file lacks room edits: written on the next flush.
    dirty: BTreeSet<String>,
    /// Documents whose path holds a different file on disk that the mirror
    /// will not overwrite (warned once).
    blocked: BTreeSet<String>,
    /// The server's limit on one message.
    max_message_bytes: usize,
    /// Paths reported as not shared (each is reported once).
    not_shared: BTreeSet<String>,
    clock: u64,
    /// The shell's time (for [`EARLIER_WINDOW`]).
    now: Duration,
    joined: bool,
}

impl Core {
    /// A mirror of a directory whose files (by room path) are `on_disk`,
    /// holding at most `max_open` documents open.
    pub fn new(max_open: usize, on_disk: BTreeMap<String, String>) -> Self {
        Self {
            user_id: String::new(),
            main: None,
            max_open: max_open.max(1),
            tree: BTreeMap::new(),
            tree_revision: 0,
            docs: BTreeMap::new(),
            opening: BTreeSet::new(),
            closed: BTreeMap::new(),
            initial: on_disk,
            seqs: BTreeMap::new(),
            pending_create: BTreeMap::new(),
            pending_rename: BTreeMap::new(),
            pending_delete: BTreeSet::new(),
            vanished: BTreeMap::new(),
            appeared: BTreeMap::new(),
            dirty: BTreeSet::new(),
            blocked: BTreeSet::new(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            not_shared: BTreeSet::new(),
            clock: 0,
            now: Duration::ZERO,
            joined: false,
        }
    }

    /// Tells the core the time (since any fixed start): the core does no
    /// I/O, the clock included.
    pub fn set_clock(&mut self, now: Duration) {
        self.now = now;
    }

    /// Sets the server's limit on one message (default 1 MiB): no message
    /// sent is bigger.
    pub fn set_max_message_bytes(&mut self, max: usize) {
        self.max_message_bytes = max;
    }

    /// The main document's revision here (`since` of a reconnect).
    pub fn main_revision(&self) -> Option<u64> {
        let main = self.main.as_ref()?;
        self.docs.get(main).map(|d| d.replica.sync.revision())
    }

    /// The document at `path`, as the tree was heard.
    pub fn doc_at(&self, path: &str) -> Option<&str> {
        self.tree
            .iter()
            .find(|(_, p)| *p == path)
            .map(|(d, _)| d.as_str())
    }

    /// The path of `doc`.
    pub fn path_of(&self, doc: &str) -> Option<&str> {
        self.tree.get(doc).map(String::as_str)
    }

    /// Every document's path.
    pub fn paths(&self) -> Vec<String> {
        self.tree.values().cloned().collect()
    }

    /// The paths of the documents under directory `dir`.
    pub fn paths_under(&self, dir: &str) -> Vec<String> {
        let prefix = format!("{dir}/");
        self.tree
            .values()
            .filter(|p| p.starts_with(&prefix))
            .cloned()
            .collect()
    }

    /// True when `path` is a document's, or a tree change of this mirror
    /// concerning it is under way (no need to ask the ignore rules).
    pub fn knows_path(&self, path: &str) -> bool {
        self.doc_at(path).is_some()
            || self.pending_create.contains_key(path)
            || self.pending_rename.values().any(|p| p == path)
    }

    /// The documents whose file lacks room edits, with their paths.
    pub fn dirty(&self) -> Vec<(String, String)> {
        self.dirty
            .iter()
            .filter_map(|d| Some((d.clone(), self.tree.get(d)?.clone())))
            .collect()
    }

    /// True when nothing is left to write or to have acknowledged.
    pub fn is_idle(&self) -> bool {
        self.dirty.is_empty()
            && self.opening.is_empty()
            && self.pending_create.is_empty()
            && self.pending_rename.is_empty()
            && self.pending_delete.is_empty()
            && self.vanished.is_empty()
            && self.appeared.is_empty()
            && self.docs.values().all(|d| d.replica.sync.is_synchronized())
    }

    /// The text of an open document (tests and diagnostics).
    pub fn text(&self, doc: &str) -> Option<String> {
        self.docs.get(doc).map(|d| d.replica.text())
    }

    /// How many documents are open or being opened.
    pub fn open_count(&self) -> usize {
        self.docs.len()
            + self
                .opening
                .iter()
                .filter(|d| !self.docs.contains_key(*d))
                .count()
    }

    fn touch(&mut self, doc: &str) {
        self.clock += 1;
        if let Some(d) = self.docs.get_mut(doc) {
            d.used = self.clock;
        }
    }

    /// The text the file of `doc` last matched on disk, if it is there.
    fn disk_text(&self, doc: &str) -> Option<&str> {
        match self.docs.get(doc) {
            Some(d) => d.on_disk.then_some(d.base.as_str()),
            None => self.closed.get(doc).map(String::as_str),
        }
    }

    /// A new connection's `init` (the first, or after a reconnect).
    pub fn joined(&mut self, init: ServerMessage) -> Vec<Action> {
        let ServerMessage::Init {
            user_id,
            revision,
            code,
            missed,
            doc,
            tree_revision,
            files,
            users,
            ..
        } = init
        else {
            return vec![Action::Warn(
                "the server's first message was not init".into(),
            )];
        };
        let mut out = Vec::new();
        self.user_id = user_id;
        // The documents colleagues are in (their last caret, which may have
        // come before this connection): opened first.
        let occupied: Vec<String> = users.iter().filter_map(|u| u.doc.clone()).collect();
        let files = files.unwrap_or_default();
        let new_tree: BTreeMap<String, String> =
            files.into_iter().map(|f| (f.doc, f.path)).collect();
        if !self.joined {
            self.joined = true;
            self.tree = new_tree;
            self.tree_revision = tree_revision.unwrap_or(0);
            for (d, path) in &self.tree {
                if let Some(text) = self.initial.remove(path) {
                    self.closed.insert(d.clone(), text);
                }
            }
            self.initial.clear();
            self.main = doc.clone();
            if let Some(main) = doc {
                self.start(&main, revision, &code, &mut out);
            }
            for d in &occupied {
                if self.tree.contains_key(d) {
                    self.open(d, &mut out);
                }
            }
            let others: Vec<String> = self.tree.keys().cloned().collect();
            for d in others {
                if self.open_count() >= self.max_open {
                    break;
                }
                self.open(&d, &mut out);
            }
            return out;
        }
        // A reconnect: the main document first, as an `opened` with since.
        self.main = doc.clone();
        if let Some(main) = doc {
            if self.docs.contains_key(&main) {
                self.reopened(&main, revision, &code, missed.as_deref(), &mut out);
            } else {
                self.start(&main, revision, &code, &mut out);
            }
        }
        // Everything else open (or being opened) is opened again, with
        // `since` when it was open, unless it was deleted meanwhile; then
        // the tree changes made offline, and what colleagues are in.
        let main = self.main.clone();
        let open: BTreeSet<String> = self
            .docs
            .keys()
            .chain(self.opening.iter())
            .filter(|d| Some(*d) != main.as_ref() && new_tree.contains_key(*d))
            .cloned()
            .collect();
        self.opening.clear();
        for d in open {
            let since = self.docs.get(&d).map(|o| o.replica.sync.revision());
            self.opening.insert(d.clone());
            out.push(Action::Send(ClientMessage::Open { doc: d, since }));
        }
        self.tree_changed_offline(new_tree, &mut out);
        self.tree_revision = tree_revision.unwrap_or(self.tree_revision);
        for d in &occupied {
            if self.tree.contains_key(d) {
                self.open(d, &mut out);
            }
        }
        out
    }

    /// Applies the tree changes made while this mirror was offline, as if
    /// heard from someone else; tree changes of its own that were lost in
    /// the drop are looked for again on disk.
    fn tree_changed_offline(&mut self, new: BTreeMap<String, String>, out: &mut Vec<Action>) {
        let old = std::mem::take(&mut self.tree);
        self.tree = old.clone();
        for (d, path) in &old {
            match new.get(d) {
                None => self.heard_delete(d, path, false, out),
                Some(p) if p != path => self.heard_rename(d, path, p, false, out),
                Some(_) => {}
            }
        }
        for (d, path) in &new {
            if !old.contains_key(d) {
                let ours = self.pending_create.remove(path);
                self.heard_create(d, path, ours, out);
            }
        }
        self.tree = new;
        let retry: BTreeSet<String> = self
            .pending_create
            .keys()
            .cloned()
            .chain(self.pending_rename.values().cloned())
            .chain(
                self.pending_delete
                    .iter()
                    .filter_map(|d| self.tree.get(d).cloned()),
            )
            .collect();
        self.pending_create.clear();
        self.pending_rename.clear();
        self.pending_delete.clear();
        out.extend(retry.into_iter().map(Action::Read));
    }

    /// Starts a replica of `doc` from the room's `code` at `revision`.
    fn start(&mut self, doc: &str, revision: u64, code: &str, out: &mut Vec<Action>) {
        let next = self.seqs.remove(doc).unwrap_or(1);
        let replica = Replica::continuing(revision, code, next);
        let (base, on_disk) = match self.closed.remove(doc) {
            Some(text) => (text, true),
            None => (code.to_owned(), false),
        };
        let since_base = edit_between(&base, code);
        if !since_base.is_noop() || !on_disk {
            self.dirty.insert(doc.to_owned());
        }
        self.clock += 1;
        self.docs.insert(
            doc.to_owned(),
            Doc {
                replica,
                base,
                since_base,
                on_disk,
                used: self.clock,
                earlier: Vec::new(),
            },
        );
        // What happened on disk while it was not open is merged now.
        if let Some(path) = self.tree.get(doc) {
            out.push(Action::Read(path.clone()));
        }
    }

    /// The answer to an `open` with `since` (or a reconnect's `init`).
    fn reopened(
        &mut self,
        doc: &str,
        revision: u64,
        code: &str,
        missed: Option<&[collab_protocol::CommittedOp]>,
        out: &mut Vec<Action>,
    ) {
        let Some(d) = self.docs.get_mut(doc) else {
            return;
        };
        match d.replica.reconnected(revision, code, missed) {
            Reconnected::Rebased { applied, send } => {
                for op in &applied {
                    d.room_applied(op);
                }
                out.extend(send.into_iter().map(|m| Action::Send(m.for_doc(Some(doc)))));
            }
            Reconnected::Replaced { lost } => {
                d.since_base = edit_between(&d.base, code);
                d.earlier.clear();
                if let Some(lost) = lost {
                    // The room never got the host's last changes, and the
                    // next flush writes the room's text over the file, the
                    // only copy of them. Re-sending diff(room, disk) would
                    // undo what colleagues typed meanwhile; so the host's
                    // version is kept whole beside the file instead.
                    let path = self.tree.get(doc).cloned().unwrap_or_default();
                    let text = if d.on_disk { d.base.clone() } else { lost };
                    out.push(Action::WriteAside {
                        path: path.clone(),
                        text,
                    });
                    out.push(Action::Warn(format!(
                        "{path}: the server could not merge this file's last changes \
                         on disk after a reconnect; the room's text replaces them, and \
                         your version is kept in {path}{LOST_SUFFIX}"
                    )));
                }
            }
        }
        if !d.since_base.is_noop() {
            self.dirty.insert(doc.to_owned());
        }
    }

    /// Opens `doc` unless open (closing the least recently used beyond
    /// the limit).
    fn open(&mut self, doc: &str, out: &mut Vec<Action>) {
        if self.docs.contains_key(doc) || self.opening.contains(doc) {
            self.touch(doc);
            return;
        }
        while self.open_count() >= self.max_open {
            let victim = self
                .docs
                .iter()
                .filter(|(d, o)| {
                    Some(*d) != self.main.as_ref()
                        && !self.dirty.contains(*d)
                        && !self.opening.contains(*d)
                        && o.replica.sync.is_synchronized()
                        && o.since_base.is_noop()
                })
                .min_by_key(|(_, o)| o.used)
                .map(|(d, _)| d.clone());
            match victim {
                Some(v) => self.close(&v, out),
                None => break,
            }
        }
        self.opening.insert(doc.to_owned());
        out.push(Action::Send(ClientMessage::Open {
            doc: doc.to_owned(),
            since: None,
        }));
    }

    fn close(&mut self, doc: &str, out: &mut Vec<Action>) {
        if let Some(d) = self.docs.remove(doc) {
            self.seqs.insert(doc.to_owned(), d.replica.sync.next_seq());
            if d.on_disk {
                self.closed.insert(doc.to_owned(), d.base);
            }
            out.push(Action::Send(ClientMessage::Close {
                doc: doc.to_owned(),
            }));
        }
    }

    /// Forgets everything about a document that is gone.
    fn forget(&mut self, doc: &str) {
        self.docs.remove(doc);
        self.closed.remove(doc);
        self.opening.remove(doc);
        self.dirty.remove(doc);
        self.blocked.remove(doc);
        self.pending_delete.remove(doc);
        self.pending_rename.remove(doc);
    }

    fn heard_create(&mut self, doc: &str, path: &str, ours: Option<String>, out: &mut Vec<Action>) {
        self.tree.insert(doc.to_owned(), path.to_owned());
        if let Some(text) = ours {
            // The file is on disk with the text it was created with.
            self.closed.insert(doc.to_owned(), text);
        }
        self.open(doc, out);
    }

    fn heard_rename(&mut self, doc: &str, from: &str, to: &str, ours: bool, out: &mut Vec<Action>) {
        self.tree.insert(doc.to_owned(), to.to_owned());
        if ours {
            // While the rename was on its way, changes at the new path were
            // set aside (the room did not know the path yet) and room edits
            // waited: look at it now, and write what waited.
            out.push(Action::Read(to.to_owned()));
            return;
        }
        if self.disk_text(doc).is_some() {
            out.push(Action::Rename {
                from: from.to_owned(),
                to: to.to_owned(),
            });
        }
        self.blocked.remove(doc);
    }

    fn heard_delete(&mut self, doc: &str, path: &str, ours: bool, out: &mut Vec<Action>) {
        // A change on disk merged but not acknowledged is the host's only
        // copy: `base` already holds it, so the `Remove` guard (file still
        // equals `base`) would pass and delete it. The file is kept and
        // shared again as a new file instead (read once the document is
        // forgotten, it is a file the room does not know).
        let unacknowledged = self
            .docs
            .get(doc)
            .is_some_and(|d| d.on_disk && !d.replica.sync.is_synchronized());
        if !ours {
            if unacknowledged {
                out.push(Action::Warn(format!(
                    "{path} was deleted in the room, but it holds changes made on disk \
                     the room had not received; kept on disk and shared again as a new file"
                )));
                out.push(Action::Read(path.to_owned()));
            } else if let Some(text) = self.disk_text(doc) {
                out.push(Action::Remove {
                    path: path.to_owned(),
                    expect: text.to_owned(),
                });
            }
        }
        self.tree.remove(doc);
        self.forget(doc);
    }

    /// A server message after `init`.
    pub fn received(&mut self, msg: ServerMessage) -> Vec<Action> {
        let mut out = Vec::new();
        match msg {
            ServerMessage::CodeUpdate(c) => {
                let Some(doc) = c.doc.or_else(|| self.main.clone()) else {
                    return out;
                };
                let Some(d) = self.docs.get_mut(&doc) else {
                    return out;
                };
                match d.replica.remote(c.revision, &c.operation) {
                    Ok(applied) => {
                        d.room_applied(&applied);
                        self.dirty.insert(doc.clone());
                        self.touch(&doc);
                    }
                    Err(e) => out.push(Action::Warn(format!(
                        "an edit from the room did not fit {}: {e}",
                        self.tree.get(&doc).map_or(doc.as_str(), String::as_str)
                    ))),
                }
            }
            ServerMessage::Ack { revision, seq, doc } => {
                let Some(doc) = doc.or_else(|| self.main.clone()) else {
                    return out;
                };
                let max = self.max_message_bytes;
                if let Some(d) = self.docs.get_mut(&doc) {
                    match d.replica.ack(revision, seq) {
                        Ok(Some(msg)) if !self.opening.contains(&doc) => {
                            let msg = fit(&mut d.replica, msg.for_doc(Some(&doc)), max);
                            out.push(Action::Send(msg));
                        }
                        Ok(_) => {}
                        Err(e) => out.push(Action::Warn(format!("an ack did not fit: {e}"))),
                    }
                }
            }
            ServerMessage::CursorMove {
                user_id,
                doc: Some(doc),
                ..
            } if user_id != self.user_id
                && self.tree.contains_key(&doc)
                && !self.pending_delete.contains(&doc) =>
            {
                // A colleague is in `doc`: their edits must reach the disk.
                self.open(&doc, &mut out);
            }
            ServerMessage::UserJoined { user } => {
                if let Some(doc) = user.doc.filter(|d| self.tree.contains_key(d)) {
                    self.open(&doc, &mut out);
                }
            }
            ServerMessage::Opened {
                doc,
                revision,
                code,
                missed,
                ..
            } => {
                if !self.opening.remove(&doc) {
                    return out;
                }
                if !self.tree.contains_key(&doc) {
                    // Deleted meanwhile.
                    out.push(Action::Send(ClientMessage::Close { doc }));
                    return out;
                }
                if self.docs.contains_key(&doc) {
                    self.reopened(&doc, revision, &code, missed.as_deref(), &mut out);
                    if let Some(path) = self.tree.get(&doc) {
                        out.push(Action::Read(path.clone()));
                    }
                } else {
                    self.start(&doc, revision, &code, &mut out);
                }
            }
            ServerMessage::FileCreated {
                file,
                user_id,
                tree_revision,
            } => {
                self.tree_revision = tree_revision;
                let ours = if user_id == self.user_id {
                    self.pending_create.remove(&file.path)
                } else {
                    None
                };
                self.heard_create(&file.doc, &file.path, ours, &mut out);
            }
            ServerMessage::FileRenamed {
                doc,
                path,
                old_path,
                user_id,
                tree_revision,
            } => {
                self.tree_revision = tree_revision;
                let ours = user_id == self.user_id
                    && self.pending_rename.get(&doc).is_some_and(|p| *p == path);
                self.pending_rename.remove(&doc);
                self.heard_rename(&doc, &old_path, &path, ours, &mut out);
            }
            ServerMessage::FileDeleted {
                doc,
                path,
                user_id,
                tree_revision,
            } => {
                self.tree_revision = tree_revision;
                let ours = user_id == self.user_id && self.pending_delete.contains(&doc);
                self.heard_delete(&doc, &path, ours, &mut out);
            }
            ServerMessage::Error {
                code,
                message,
                doc,
                path,
                ..
            } => {
                let about = path
                    .clone()
                    .or_else(|| doc.as_ref().and_then(|d| self.tree.get(d).cloned()))
                    .map(|p| format!("{p}: "))
                    .unwrap_or_default();
                out.push(Action::Warn(format!(
                    "{about}the server refused a change: {message} ({code})"
                )));
                if let Some(p) = &path {
                    self.pending_create.remove(p);
                    self.pending_rename.retain(|_, to| to != p);
                }
                if let Some(d) = &doc {
                    self.pending_rename.remove(d);
                    self.pending_delete.remove(d);
                    match code.as_str() {
                        "document_deleted" | "document_not_found" => {
                            self.tree.remove(d);
                            self.forget(d);
                        }
                        "too_many_open" => {
                            self.opening.remove(d);
                        }
                        // The refused edit will never be acknowledged and
                        // everything after it waits behind it: the document
                        // is opened afresh, which replaces the replica with
                        // the room's text; the host's version is kept beside
                        // the file (see `reopened`).
                        "document_too_large"
                            if self.docs.contains_key(d) && self.opening.insert(d.clone()) =>
                        {
                            out.push(Action::Send(ClientMessage::Open {
                                doc: d.clone(),
                                since: None,
                            }));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        out
    }

    /// What the shell saw at these paths (one batch of file system events,
    /// or answers to [`Action::Read`]).
    pub fn disk_changed(&mut self, seen: Vec<(String, Seen)>) -> Vec<Action> {
        let mut out = Vec::new();
        let now = self.now;
        for (path, seen) in seen {
            match self.doc_at(&path).map(str::to_owned) {
                Some(doc) => {
                    if self.pending_delete.contains(&doc) || self.pending_rename.contains_key(&doc)
                    {
                        continue;
                    }
                    if matches!(seen, Seen::Missing) {
                        // Held (from when it was first missed) in case it
                        // is half of a rename.
                        if self.disk_text(&doc).is_some() {
                            self.vanished.entry(doc).or_insert(now);
                        }
                        continue;
                    }
                    // Back where it was (an editor's save by replace): no
                    // longer vanishing.
                    self.vanished.remove(&doc);
                    match seen {
                        Seen::Missing => {}
                        seen if self.docs.contains_key(&doc) && !self.opening.contains(&doc) => {
                            self.merge_disk(&doc, seen, &mut out);
                        }
                        // Not open here, and as it was: nothing to do.
                        Seen::Text(text) if self.closed.get(&doc) == Some(&text) => {}
                        // Opened first; its `opened` reads the file again.
                        Seen::Text(_) => self.open(&doc, &mut out),
                        Seen::Unshareable(why) => {
                            if self.blocked.insert(doc.clone()) {
                                out.push(Action::Warn(format!("{path}: not synchronized: {why}")));
                            }
                        }
                    }
                }
                None => {
                    if self.knows_path(&path) {
                        continue;
                    }
                    match seen {
                        // Held the same way (from when it was first seen,
                        // with its newest text).
                        Seen::Text(text) => match self.appeared.get_mut(&path) {
                            Some(held) => held.0 = text,
                            None => {
                                self.appeared.insert(path, (text, now));
                            }
                        },
                        // Once per path: a file rewritten every few seconds
                        // would pile the same line up in the report.
                        Seen::Unshareable(why) => {
                            if self.not_shared.insert(path.clone()) {
                                out.push(Action::Warn(format!("{path}: not shared: {why}")));
                            }
                        }
                        // A new file gone again before it was sent.
                        Seen::Missing => {
                            self.appeared.remove(&path);
                        }
                    }
                }
            }
        }
        // Both halves of a rename are held a moment: the other half may come
        // in a later batch (a walk that saw the file at both paths, a move
        // into a directory made a moment before).
        self.pair_renames(&mut out);
        out.extend(self.expire_held(false));
        out
    }

    /// Sends a rename for each held new file whose text is that of a held
    /// vanished one.
    fn pair_renames(&mut self, out: &mut Vec<Action>) {
        let appeared: Vec<String> = self.appeared.keys().cloned().collect();
        for path in appeared {
            let text = &self.appeared[&path].0;
            let Some(doc) = self
                .vanished
                .keys()
                .find(|d| self.disk_text(d) == Some(text.as_str()))
                .cloned()
            else {
                continue;
            };
            self.vanished.remove(&doc);
            self.appeared.remove(&path);
            self.pending_rename.insert(doc.clone(), path.clone());
            out.push(Action::Send(ClientMessage::RenameFile { doc, path }));
        }
    }

    /// Sends `create_file` for a file found on disk.
    fn send_create(&mut self, path: String, text: String, out: &mut Vec<Action>) {
        let create = ClientMessage::CreateFile {
            path: path.clone(),
            code: Some(text.clone()),
            language: None,
        };
        if message_len(&create) <= self.max_message_bytes {
            self.pending_create.insert(path, text);
            out.push(Action::Send(create));
        } else {
            // Too big for one message: created empty (the disk "held" ""
            // for it), then its `opened` reads the file, whose text goes in
            // as edits cut to fit.
            self.pending_create.insert(path.clone(), String::new());
            out.push(Action::Send(ClientMessage::CreateFile {
                path,
                code: Some(String::new()),
                language: None,
            }));
        }
    }

    /// When the oldest held file's hold ends (the shell's clock).
    pub fn held_due(&self) -> Option<Duration> {
        let vanished = self.vanished.values();
        let appeared = self.appeared.values().map(|(_, at)| at);
        vanished.chain(appeared).min().map(|&at| at + RENAME_HOLD)
    }

    /// Sends the removal or creation of every held file whose hold is over
    /// (of all of them when `all`, as when the mirror stops). A document the
    /// room removed meanwhile, or a file gone again, is simply let go.
    pub fn expire_held(&mut self, all: bool) -> Vec<Action> {
        let now = self.now;
        let over = |at: Duration| all || now >= at + RENAME_HOLD;
        let mut out = Vec::new();
        let vanished: Vec<String> = self
            .vanished
            .iter()
            .filter(|&(_, &at)| over(at))
            .map(|(doc, _)| doc.clone())
            .collect();
        for doc in vanished {
            self.vanished.remove(&doc);
            if !self.tree.contains_key(&doc)
                || self.disk_text(&doc).is_none()
                || self.pending_delete.contains(&doc)
                || self.pending_rename.contains_key(&doc)
            {
                continue;
            }
            self.pending_delete.insert(doc.clone());
            out.push(Action::Send(ClientMessage::DeleteFile { doc }));
        }
        let appeared: Vec<String> = self
            .appeared
            .iter()
            .filter(|&(_, &(_, at))| over(at))
            .map(|(path, _)| path.clone())
            .collect();
        for path in appeared {
            let (text, _) = self.appeared.remove(&path).unwrap_or_default();
            if !self.knows_path(&path) {
                self.send_create(path, text, &mut out);
            }
        }
        out
    }

    /// Merges what the disk holds for open `doc` into the room.
    fn merge_disk(&mut self, doc: &str, seen: Seen, out: &mut Vec<Action>) {
        let path = self.tree.get(doc).cloned().unwrap_or_default();
        let sending = !self.opening.contains(doc);
        let max = self.max_message_bytes;
        let Some(d) = self.docs.get_mut(doc) else {
            return;
        };
        let disk = match seen {
            Seen::Text(t) => t,
            Seen::Unshareable(why) => {
                if self.blocked.insert(doc.to_owned()) {
                    out.push(Action::Warn(format!("{path}: not synchronized: {why}")));
                }
                return;
            }
            Seen::Missing => return,
        };
        if !d.on_disk {
            if disk == d.replica.text() {
                d.on_disk = true;
                d.since_base = Operation::identity(d.replica.doc.len_chars());
                d.base = disk;
                self.dirty.remove(doc);
            } else if self.blocked.insert(doc.to_owned()) {
                out.push(Action::Warn(format!(
                    "{path}: a different file is on disk there; it is left as it is \
                     and the room's file is not written"
                )));
            }
            return;
        }
        self.blocked.remove(doc);
        if disk == d.base {
            return;
        }
        let mut edit = edit_between(&d.base, &disk);
        let mut since = &d.since_base;
        // Deleting text looks like a tool that wrote back an older copy of
        // the file: the diff against that copy, when no larger, is the edit
        // the tool made (what the mirror wrote meanwhile stays). A tie goes
        // to the older copy: the diff against the newer one would delete
        // what a colleague typed.
        if cost(&edit) > 0
            && edit
                .components()
                .iter()
                .any(|c| matches!(c, collab_protocol::Component::Delete(_)))
        {
            let now = self.now;
            for e in d
                .earlier
                .iter()
                .filter(|e| now.saturating_sub(e.replaced_at) <= EARLIER_WINDOW)
            {
                let candidate = edit_between(&e.text, &disk);
                if cost(&candidate) <= cost(&edit) {
                    edit = candidate;
                    since = &e.since;
                }
            }
        }
        let (mine, rest) = match Operation::transform(&edit, since) {
            Ok(pair) => pair,
            Err(e) => {
                out.push(Action::Warn(format!(
                    "{path}: cannot merge the change on disk: {e}"
                )));
                return;
            }
        };
        match d.replica.edit(mine) {
            Ok(Some(msg)) if sending => {
                let msg = fit(&mut d.replica, msg.for_doc(Some(doc)), max);
                out.push(Action::Send(msg));
            }
            Ok(_) => {}
            Err(e) => {
                out.push(Action::Warn(format!(
                    "{path}: cannot apply the change on disk: {e}"
                )));
                return;
            }
        }
        d.base = disk;
        d.since_base = rest;
        d.earlier.clear();
        if d.since_base.is_noop() {
            self.dirty.remove(doc);
        } else {
            self.dirty.insert(doc.to_owned());
        }
        self.touch(doc);
    }

    /// The shell did not write `path` as asked: the file changed on disk
    /// meanwhile. It is read again (and merged, its base being the text
    /// the other program read) and written on the next flush.
    pub fn not_written(&mut self, path: &str) -> Vec<Action> {
        if let Some(doc) = self.doc_at(path).map(str::to_owned) {
            self.dirty.insert(doc);
        }
        vec![Action::Read(path.to_owned())]
    }

    /// Writes `doc`'s room edits to disk; `seen` is what its file holds now
    /// (merged first, so nothing written on disk meanwhile is lost).
    pub fn flush(&mut self, doc: &str, seen: Seen) -> Vec<Action> {
        let mut out = Vec::new();
        // A rename of ours on its way: the file is at a path the tree does
        // not know yet; the write waits for `file_renamed` (kept dirty).
        if !self.dirty.contains(doc)
            || self.opening.contains(doc)
            || self.pending_rename.contains_key(doc)
        {
            return out;
        }
        let Some(path) = self.tree.get(doc).cloned() else {
            self.dirty.remove(doc);
            return out;
        };
        let on_disk = self.docs.get(doc).is_some_and(|d| d.on_disk);
        match &seen {
            // Removed on disk: its deletion is on its way; do not bring it back.
            Seen::Missing if on_disk => {
                self.dirty.remove(doc);
                return out;
            }
            Seen::Missing => {}
            _ => self.merge_disk(doc, seen, &mut out),
        }
        if self.blocked.contains(doc) {
            self.dirty.remove(doc);
            return out;
        }
        let Some(d) = self.docs.get_mut(doc) else {
            return out;
        };
        let text = d.replica.text();
        if !d.on_disk || text != d.base {
            out.push(Action::Write {
                path,
                text: text.clone(),
            });
        }
        if d.on_disk && text != d.base {
            let since = std::mem::replace(
                &mut d.since_base,
                Operation::identity(d.replica.doc.len_chars()),
            );
            let before = std::mem::replace(&mut d.base, text);
            d.earlier.push(Earlier {
                text: before,
                since,
                replaced_at: self.now,
            });
            if d.earlier.len() > EARLIER_KEPT {
                d.earlier.remove(0);
            }
        } else {
            d.since_base = Operation::identity(d.replica.doc.len_chars());
            d.base = text;
        }
        d.on_disk = true;
        self.dirty.remove(doc);
        out
    }
}
