//! A project room's files: opening and closing documents (a shared room
//! reads a document from the store when someone here opens it, and lets go
//! of it when nobody here has it open), and the tree's changes (create,
//! rename, delete), committed one at a time in the tree log's order, with
//! other instances' changes applied in that order too.

use std::time::Instant;

use collab_protocol::{close_code, error_code, language, FileInfo, ServerMessage};

use super::doc::{Doc, DocId, Waiter};
use super::own_ops::OwnOps;
use super::tree::{language_after_move, Refusal};
use super::{Action, ConnId, ConnSink, RoomCore, TreeEdit, TreeWish};
use crate::ids;
use crate::store::{
    LoadedDoc, StoreError, StoreEvent, TreeChange, TreeEntry, TreeReply, TreeRequest, TreeTail,
};

impl<S: ConnSink> RoomCore<S> {
    // ----- opening and closing -----

    /// Connection `conn_id` opens document `doc`, having revision `since`
    /// of it (a reconnect) or nothing. Answered with `opened` now, or once
    /// the document is read from (or caught up with) the store.
    pub fn open(&mut self, conn_id: ConnId, doc: &str, since: Option<u64>) {
        let Some(conn) = self.conns.get(&conn_id) else {
            return;
        };
        let Some(id) = self.tree.id(doc) else {
            let refusal = Refusal::no_doc(doc, self.deleted.contains(doc));
            self.refuse(conn_id, refusal, None);
            return;
        };
        if !conn.open.contains_key(&id) && conn.open.len() >= self.config.max_open_docs {
            let refusal = Refusal {
                code: error_code::TOO_MANY_OPEN,
                message: format!(
                    "this connection has {} documents open, its limit; close one first",
                    self.config.max_open_docs
                ),
                doc: Some(id.to_string()),
                path: None,
            };
            self.refuse(conn_id, refusal, None);
            return;
        }
        // Nothing of it reaches the connection until its `opened`.
        if let Some(conn) = self.conns.get_mut(&conn_id) {
            conn.open.remove(&id);
        }
        let waiter = Waiter { conn_id, since };
        if self.docs.contains_key(&id) {
            let shared = self.shared;
            self.with_doc(&id, |room, id, d| {
                d.waiters.push(waiter);
                // Shared: what other instances committed first, so the
                // answer (and the de-duplication of what a reconnecting
                // client resends) is current. A commit in flight brings it
                // up to date too: its answer comes before anything newer.
                if shared {
                    room.need_catch_up(d, id);
                }
                if !d.catching_up {
                    room.answer_waiters(d, id);
                }
            });
            return;
        }
        let loading = self.loading.entry(id.clone()).or_default();
        if loading.is_empty() {
            self.actions.push(Action::Load(id.clone()));
        }
        loading.push(waiter);
    }

    /// The answer to [`Action::Load`]: the document as the store holds it
    /// (`None`: deleted meanwhile).
    pub fn doc_loaded(&mut self, id: &DocId, loaded: Result<Option<LoadedDoc>, StoreError>) {
        let waiters = self.loading.remove(id).unwrap_or_default();
        let refuse_all = |room: &mut Self, refusal: Refusal| {
            for w in &waiters {
                room.refuse(w.conn_id, refusal.clone(), None);
            }
        };
        match loaded {
            Ok(Some(loaded)) if self.tree.get(id).is_some() && !self.docs.contains_key(id) => {
                if let Err(e) = self.insert_doc(id.clone(), loaded) {
                    tracing::warn!(room = %ids::short(&self.id), doc = %id, error = %e, "cannot read a document");
                    let refusal = unavailable(id, &e);
                    refuse_all(self, refusal);
                    return;
                }
                if let Some(mut d) = self.docs.remove(id) {
                    for w in waiters {
                        self.answer_open(&mut d, id, w);
                    }
                    self.docs.insert(id.clone(), d);
                }
                // (Read for a join, nobody has it open yet: kept. A read
                // whose connections left meanwhile goes at the next tick.)
            }
            Ok(Some(_)) => {
                // Held already (read twice) or deleted meanwhile.
                if let Some(mut d) = self.docs.remove(id) {
                    for w in waiters {
                        self.answer_open(&mut d, id, w);
                    }
                    self.docs.insert(id.clone(), d);
                } else {
                    refuse_all(self, Refusal::no_doc(id, true));
                }
            }
            Ok(None) => refuse_all(self, Refusal::no_doc(id, true)),
            Err(e) => refuse_all(self, unavailable(id, &e)),
        }
    }

    /// Answers the `open`s waiting on a document that is now current.
    pub(super) fn answer_waiters(&mut self, d: &mut Doc, id: &DocId) {
        for w in std::mem::take(&mut d.waiters) {
            self.answer_open(d, id, w);
        }
    }

    /// Sends `opened` for `d`: from now on the connection hears every
    /// revision after the one it carries.
    fn answer_open(&mut self, d: &mut Doc, id: &DocId, w: Waiter) {
        let Some(conn) = self.conns.get(&w.conn_id) else {
            return;
        };
        if d.deleted {
            self.refuse(w.conn_id, Refusal::no_doc(id, true), None);
            return;
        }
        if let Some(since) = w.since.filter(|s| *s > d.revision) {
            let refusal = Refusal {
                code: error_code::FUTURE_REVISION,
                message: format!(
                    "since={since} is ahead of document {id}'s revision {}",
                    d.revision
                ),
                doc: Some(id.to_string()),
                path: None,
            };
            self.refuse(w.conn_id, refusal, None);
            return;
        }
        let missed = d.missed(w.since, &conn.client_id, Some(id));
        let own = match missed.is_some() {
            true => OwnOps::rebasing(d.revision),
            false => OwnOps::fresh(d.revision),
        };
        let msg = ServerMessage::Opened {
            doc: id.to_string(),
            revision: d.revision,
            code: d.text.to_string(),
            language: self
                .tree
                .get(id)
                .map_or_else(|| "plaintext".to_owned(), |f| f.language.clone()),
            missed,
        };
        self.send(w.conn_id, msg);
        if let Some(conn) = self.conns.get_mut(&w.conn_id) {
            conn.open.insert(id.clone(), own);
        }
    }

    /// Connection `conn_id` closes document `doc`: nothing more of it is
    /// sent to it.
    pub fn close(&mut self, conn_id: ConnId, doc: &str) {
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return;
        };
        let Some(id) = conn.open.keys().find(|k| ***k == *doc).cloned() else {
            return; // Not open (or not any more): nothing to do.
        };
        conn.open.remove(&id);
        self.release_if_unused(&id);
    }

    /// Lets go of a document of a shared room that no connection here has
    /// open and nothing is pending on: the store holds it.
    pub(super) fn release_if_unused(&mut self, id: &DocId) {
        if !self.shared || self.conns.values().any(|c| c.open.contains_key(id)) {
            return;
        }
        if self
            .docs
            .get(id)
            .is_some_and(|d| d.is_settled() && d.waiters.is_empty() && !d.catching_up)
        {
            self.docs.remove(id);
        }
    }

    // ----- tree changes -----

    /// Connection `conn_id` asks to create a document at `path`.
    pub fn create_file(
        &mut self,
        conn_id: ConnId,
        path: String,
        code: String,
        language: Option<String>,
        now: Instant,
    ) {
        let wish = TreeWish::Create {
            path,
            code,
            language,
        };
        self.wish(conn_id, wish, now);
    }

    /// Connection `conn_id` asks to move document `doc` to `path`.
    pub fn rename_file(&mut self, conn_id: ConnId, doc: String, path: String, now: Instant) {
        self.wish(conn_id, TreeWish::Rename { doc, path }, now);
    }

    /// Connection `conn_id` asks to delete document `doc`.
    pub fn delete_file(&mut self, conn_id: ConnId, doc: String, now: Instant) {
        self.wish(conn_id, TreeWish::Delete { doc }, now);
    }

    fn wish(&mut self, conn_id: ConnId, wish: TreeWish, now: Instant) {
        let Some(conn) = self.conns.get(&conn_id) else {
            return;
        };
        if conn.role.is_read_only() {
            self.metrics.reject(crate::metrics::Reject::ReadOnly);
            conn.sink.fail(
                error_code::READ_ONLY,
                "this connection cannot change the room's files",
                close_code::FORBIDDEN,
            );
            return;
        }
        if self.draining || self.refuse_read_only(conn_id, None, None) {
            return;
        }
        let Some(conn) = self.conns.get(&conn_id) else {
            return;
        };
        self.last_activity = now;
        let user_id = conn.user_id.clone();
        self.tree_pending.push_back(TreeEdit {
            conn_id,
            user_id,
            wish,
            request: None,
        });
        self.flush_tree();
    }

    /// True when no tree change waits or is in flight.
    pub(super) fn tree_idle(&self) -> bool {
        self.tree_pending.is_empty() && self.tree_in_flight.is_none()
    }

    /// Sends the next tree change to be committed, after checking it
    /// against the tree as it is now (refused ones are answered at once).
    fn flush_tree(&mut self) {
        while self.tree_in_flight.is_none() && self.stop.is_none() {
            let Some(mut edit) = self.tree_pending.pop_front() else {
                return;
            };
            let (change, code) = match self.change_for(&edit.wish) {
                Ok(c) => c,
                Err(refusal) => {
                    self.refuse(edit.conn_id, refusal, None);
                    continue;
                }
            };
            if let Err(refusal) = self.tree.check(&change, &self.config.tree) {
                self.refuse(edit.conn_id, refusal, None);
                continue;
            }
            let request = TreeRequest {
                entry: TreeEntry {
                    revision: self.tree.revision() + 1,
                    user_id: edit.user_id.to_string(),
                    change,
                },
                code,
            };
            edit.request = Some(request.clone());
            self.tree_in_flight = Some(edit);
            self.actions.push(Action::CommitTree(request));
        }
    }

    /// The change a wish makes to the tree as it is now.
    fn change_for(&mut self, wish: &TreeWish) -> Result<(TreeChange, String), Refusal> {
        let new_id = ids::new_doc_id(&mut self.doc_ids);
        let file = |doc: &str| {
            self.tree
                .get(doc)
                .ok_or_else(|| Refusal::no_doc(doc, self.deleted.contains(doc)))
        };
        Ok(match wish {
            TreeWish::Create {
                path,
                code,
                language: lang,
            } => {
                let language = lang
                    .clone()
                    .filter(|l| !l.trim().is_empty())
                    .unwrap_or_else(|| language::guess(path).to_owned());
                let file = FileInfo {
                    doc: new_id,
                    path: path.clone(),
                    size: code.len() as u64,
                    language,
                };
                (TreeChange::Create { file }, code.clone())
            }
            TreeWish::Rename { doc, path } => {
                let f = file(doc)?;
                let change = TreeChange::Rename {
                    doc: f.doc.clone(),
                    path: path.clone(),
                    old_path: f.path.clone(),
                    language: language_after_move(&f.path, &f.language, path),
                };
                (change, String::new())
            }
            TreeWish::Delete { doc } => {
                let f = file(doc)?;
                let change = TreeChange::Delete {
                    doc: f.doc.clone(),
                    path: f.path.clone(),
                };
                (change, String::new())
            }
        })
    }

    /// The answer to the tree change in flight.
    pub fn tree_committed(&mut self, reply: Result<TreeReply, StoreError>, now: Instant) {
        let Some(mut edit) = self.tree_in_flight.take() else {
            return;
        };
        let request = edit.request.take().expect("in flight with its request");
        match reply {
            Ok(TreeReply::Committed) if self.tree.revision() >= request.entry.revision => {
                // A read of the tree log (a check, a catch-up) got here
                // first and applied this change as the entry at its
                // revision, which the store just said is ours: applying it
                // again would put the tree a revision ahead of the store.
            }
            Ok(TreeReply::Committed) => {
                let code = request.code;
                self.apply_tree(request.entry, Some(code), now);
            }
            Ok(TreeReply::Conflict { revision, missed }) => {
                // Another instance changed the tree first: apply what it did,
                // then check this change again against the result.
                self.tree_pending.push_front(edit);
                self.tree_entries(missed, now);
                if self.tree.revision() < revision {
                    self.need_tree();
                }
            }
            Ok(TreeReply::Gone) => self.reset(
                close_code::ROOM_NOT_FOUND,
                error_code::ROOM_NOT_FOUND,
                "the room expired".into(),
            ),
            Err(e) => {
                // The answer may be lost while the change happened: the
                // clients reconnect to what the store holds.
                self.reset(
                    close_code::TRY_AGAIN_LATER,
                    error_code::UNAVAILABLE,
                    format!("the room's store is unavailable; file change not committed: {e}"),
                );
            }
        }
        self.flush_tree();
        self.finish_drain();
    }

    /// Tree changes another instance committed (or a check read back), in
    /// order; ones this room has are skipped, and a gap reads the log.
    fn tree_entries(&mut self, entries: Vec<TreeEntry>, now: Instant) {
        for e in entries {
            if e.revision > self.tree.revision() {
                self.tree_stash.insert(e.revision, e);
            }
        }
        // (A change of ours in flight was checked against the tree before
        // these: the store refuses it, and it is checked again after them.)
        while let Some(e) = self.tree_stash.remove(&(self.tree.revision() + 1)) {
            self.apply_tree(e, None, now);
        }
        self.tree_stash = self.tree_stash.split_off(&(self.tree.revision() + 1));
        if !self.tree_stash.is_empty() {
            self.need_tree();
        }
        self.flush_tree();
    }

    /// Asks the actor to read the tree log after the tree's revision.
    pub(super) fn need_tree(&mut self) {
        if !self.tree_catching_up && self.stop.is_none() {
            self.tree_catching_up = true;
            self.actions.push(Action::CatchUpTree);
        }
    }

    /// The answer to [`Action::CatchUpTree`].
    pub fn tree_caught_up(&mut self, tail: Result<Option<TreeTail>, StoreError>, now: Instant) {
        self.tree_catching_up = false;
        match tail {
            Ok(Some(tail)) => {
                let after = self.tree.revision();
                if tail.revision > after
                    && tail.entries.first().is_none_or(|e| e.revision > after + 1)
                {
                    // The log no longer reaches back to this tree.
                    self.reset(
                        close_code::RESTARTING,
                        error_code::UNAVAILABLE,
                        "fell behind the room's tree".into(),
                    );
                    return;
                }
                self.tree_entries(tail.entries, now);
                if let Some((link, viewer)) = tail.links {
                    self.set_links(link, viewer);
                }
            }
            Ok(None) => self.reset(
                close_code::ROOM_NOT_FOUND,
                error_code::ROOM_NOT_FOUND,
                "the room expired".into(),
            ),
            Err(e) => {
                tracing::warn!(room = %ids::short(&self.id), error = %e, "cannot read the room's tree log")
            }
        }
    }

    /// Applies a committed tree change as the tree's next revision and
    /// tells every project client; `code` is a created document's text when
    /// this instance committed it (held at once in memory, and by whoever
    /// opens it in a shared room).
    fn apply_tree(&mut self, entry: TreeEntry, code: Option<String>, now: Instant) {
        self.last_activity = now;
        self.tree.apply(&entry.change);
        let revision = self.tree.revision();
        let user_id = entry.user_id;
        match entry.change {
            TreeChange::Create { file } => {
                if !self.shared {
                    let id: DocId = file.doc.as_str().into();
                    let loaded = LoadedDoc::new(code.as_deref().unwrap_or(""));
                    if let Err(e) = self.insert_doc(id, loaded) {
                        tracing::error!(error = %e, "a new document does not load");
                    }
                }
                self.fan_out(
                    |_, c| c.project,
                    |_| ServerMessage::FileCreated {
                        file: file.clone(),
                        user_id: user_id.clone(),
                        tree_revision: revision,
                    },
                );
            }
            TreeChange::Rename {
                doc,
                path,
                old_path,
                ..
            } => {
                self.fan_out(
                    |_, c| c.project,
                    |_| ServerMessage::FileRenamed {
                        doc: doc.clone(),
                        path: path.clone(),
                        old_path: old_path.clone(),
                        user_id: user_id.clone(),
                        tree_revision: revision,
                    },
                );
            }
            TreeChange::Delete { doc, path } => {
                let id: DocId = doc.as_str().into();
                self.deleted.insert(id.clone());
                self.fan_out(
                    |_, c| c.project,
                    |_| ServerMessage::FileDeleted {
                        doc: doc.clone(),
                        path: path.clone(),
                        user_id: user_id.clone(),
                        tree_revision: revision,
                    },
                );
                self.forget_doc(&id);
            }
        }
    }

    /// A deleted document: its pending edits are refused, nobody has it
    /// open any more (single-document clients, which only had it, are
    /// closed), and it is dropped once no commit of it is in flight.
    fn forget_doc(&mut self, id: &DocId) {
        let single: Vec<ConnId> = self
            .conns
            .iter_mut()
            .filter_map(|(conn_id, c)| {
                let had = c.open.remove(id).is_some();
                (had && !c.project).then_some(*conn_id)
            })
            .collect();
        for conn_id in single {
            self.fail(
                conn_id,
                error_code::DOCUMENT_DELETED,
                "this room's main document was deleted",
                close_code::ROOM_NOT_FOUND,
            );
        }
        if let Some(waiters) = self.loading.remove(id) {
            for w in waiters {
                self.refuse(w.conn_id, Refusal::no_doc(id, true), None);
            }
        }
        let Some(mut d) = self.docs.remove(id) else {
            return;
        };
        d.deleted = true;
        self.refuse_pending(&mut d, id);
        for w in std::mem::take(&mut d.waiters) {
            self.refuse(w.conn_id, Refusal::no_doc(id, true), None);
        }
        if !d.in_flight.is_empty() {
            self.docs.insert(id.clone(), d);
        }
    }

    // ----- what the store says -----

    /// What the store says happened elsewhere.
    pub fn store_event(&mut self, event: StoreEvent, now: Instant) {
        if self.stop.is_some() {
            return;
        }
        match event {
            StoreEvent::Ops {
                doc,
                size,
                base,
                entries,
            } => self.store_ops(&doc, size, base, entries, now),
            StoreEvent::Tree(entry) => self.tree_entries(vec![entry], now),
            StoreEvent::Cursor {
                user_id,
                doc,
                revision,
                cursor,
                anchor,
            } => self.remote_cursor(user_id, &doc, revision, cursor, anchor),
            StoreEvent::Join { user, .. } => self.remote_joined(user, now),
            StoreEvent::Leave { user_id } => {
                self.presence_news(&user_id);
                self.remote_left(&user_id);
            }
            StoreEvent::Chat(msg) => self.chat_event(msg),
            StoreEvent::Ended => self.end(),
            StoreEvent::Mode(read_only) => self.set_read_only(read_only),
            StoreEvent::Links { link, viewer } => self.set_links(link, viewer),
            StoreEvent::Removed {
                user_id,
                client_ids,
                links,
            } => {
                // Closed (and out of the room) before the others hear the
                // new links.
                self.remove_user(&user_id, client_ids, now);
                if let Some((link, viewer)) = links {
                    self.set_links(link, viewer);
                }
            }
            StoreEvent::Typing { user_id, doc } => self.remote_typing(user_id, doc.as_deref()),
            StoreEvent::Resync => {
                let held: Vec<DocId> = self.docs.keys().cloned().collect();
                for id in held {
                    self.with_doc(&id, |room, id, d| room.need_catch_up(d, id));
                }
                self.need_tree();
                self.need_chat();
            }
        }
    }
}

/// The refusal of an `open` the store could not answer.
fn unavailable(id: &DocId, e: &StoreError) -> Refusal {
    Refusal {
        code: error_code::UNAVAILABLE,
        message: format!("document {id} cannot be read now ({e}); try again"),
        doc: Some(id.to_string()),
        path: None,
    }
}
