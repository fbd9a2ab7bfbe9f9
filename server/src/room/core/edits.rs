//! A document's edits: accepting one (validate, de-duplicate, transform to
//! the tip), committing batches and handling the answer (committed, lost a
//! race, wait for the other instance's turn, the store's history parted,
//! the document deleted meanwhile), and applying operations committed by
//! other instances in revision order, with the edits still pending
//! recomputed along the order that won.
//!
//! Each document is its own stream; the functions here take it out of the
//! room's map for the length of a call (`with_doc`), so they can use the
//! room (connections, actions) and the document at once.

use std::sync::atomic::Ordering;
use std::time::Instant;

use collab_protocol::{close_code, error_code, CommittedOp, Operation, Role, ServerMessage};

use super::doc::{insert_bytes, Doc, DocId, PendingEdit};
use super::lineage::{self, Mark};
use super::tree::Refusal;
use super::{
    commit_request, Action, ConnId, ConnSink, Publish, RoomCore, MAX_BATCH, SNAPSHOT_EVERY,
};
use crate::metrics::Reject;
use crate::store::{CommitReply, CommittedEntry, StoreError, Tail, TURN};

impl<S: ConnSink> RoomCore<S> {
    /// Runs `f` on the held document `id` and the room; `None` when the
    /// document is not held here. The document is out of `self.docs`
    /// meanwhile.
    pub(super) fn with_doc<R>(
        &mut self,
        id: &DocId,
        f: impl FnOnce(&mut Self, &DocId, &mut Doc) -> R,
    ) -> Option<R> {
        let (key, mut d) = self.docs.remove_entry(id)?;
        let r = f(self, &key, &mut d);
        self.docs.insert(key, d);
        Some(r)
    }

    /// An edit from connection `conn_id` to document `doc` (`None`: the
    /// main one): `operation` on revision `base`, the client's `seq`-th
    /// in that document.
    pub fn edit(
        &mut self,
        conn_id: ConnId,
        doc: Option<&str>,
        base: u64,
        seq: u64,
        operation: Operation,
        now: Instant,
    ) {
        let Some(conn) = self.conns.get(&conn_id) else {
            return; // Left or replaced: nothing it sends is applied.
        };
        if conn.role.is_read_only() {
            self.metrics.reject(Reject::ReadOnly);
            let msg = match conn.role {
                Role::Watcher => "this connection joined as a watcher: it cannot edit",
                _ => "this is a read-only link: viewers cannot edit",
            };
            conn.sink
                .fail(error_code::READ_ONLY, msg, close_code::FORBIDDEN);
            return;
        }
        let Some(id) = self.open_doc(conn_id, doc, Some(seq)) else {
            return;
        };
        if let Some(own) = self
            .conns
            .get_mut(&conn_id)
            .and_then(|c| c.open.get_mut(&id))
        {
            own.sent(seq);
        }
        if self.draining {
            return; // Not acknowledged: the client resends it after reconnecting.
        }
        if !self.docs.contains_key(&id) {
            // Open but not held: its `opened` has not been sent yet, so the
            // client cannot have a revision of it to edit.
            let msg = format!("document {id} is still opening; edit it after its opened");
            self.fail(
                conn_id,
                error_code::INVALID_OPERATION,
                &msg,
                close_code::MALFORMED,
            );
            return;
        }
        self.with_doc(&id, |room, id, d| {
            room.accept(d, id, conn_id, base, seq, operation, now)
        });
    }

    /// [`Self::edit`] on the document's state.
    #[allow(clippy::too_many_arguments)]
    fn accept(
        &mut self,
        d: &mut Doc,
        id: &DocId,
        conn_id: ConnId,
        base: u64,
        seq: u64,
        operation: Operation,
        now: Instant,
    ) {
        let Some(conn) = self.conns.get(&conn_id) else {
            return;
        };
        let (client_id, user_id, project) =
            (conn.client_id.clone(), conn.user_id.clone(), conn.project);
        let own = conn.open.get(id).copied();
        if let Some(&(last_seq, last_rev)) = d.dedup.get(&client_id) {
            if seq <= last_seq {
                // Already committed (a resend after a reconnect): ack again,
                // never reapply; but not when this connection heard that
                // revision already (its copy from an older connection was
                // committed after this one joined, and acknowledged here).
                let revision = d
                    .log
                    .iter()
                    .find(|e| e.client_id == client_id && e.seq == seq)
                    .map_or(last_rev, |e| e.revision);
                if !own.is_some_and(|o| o.heard(revision)) {
                    let doc = project.then(|| id.to_string());
                    self.send(conn_id, ServerMessage::Ack { revision, seq, doc });
                }
                return;
            }
        }
        let waiting = d.in_flight.iter_mut().chain(d.pending.iter_mut());
        if let Some(p) = waiting
            .into_iter()
            .find(|p| p.client_id == client_id && p.seq >= seq)
        {
            p.conn_id = conn_id; // Its ack goes here when the queued copy commits.
            return;
        }
        // After the resend checks: an edit taken before the owner made the
        // room read-only is acknowledged, not refused, when it comes again.
        if self.refuse_read_only(conn_id, Some(id), Some(seq)) {
            return;
        }
        if base > d.revision {
            let msg = format!(
                "revision {base} is ahead of the document's revision {}",
                d.revision
            );
            self.fail(
                conn_id,
                error_code::FUTURE_REVISION,
                &msg,
                close_code::MALFORMED,
            );
            return;
        }
        if base < d.oldest_base() {
            let msg = format!(
                "revision {base} is older than the {} operations this server keeps; reconnect to resynchronize",
                d.log.len()
            );
            self.fail(
                conn_id,
                error_code::REVISION_TOO_OLD,
                &msg,
                close_code::MALFORMED,
            );
            return;
        }
        let skip = (base - d.oldest_base()) as usize;
        let before = d
            .log
            .iter()
            .skip(skip)
            .map(|e| &e.operation)
            .chain(d.in_flight.iter().map(|p| &p.operation))
            .chain(d.pending.iter().map(|p| &p.operation));
        let original = operation.clone();
        let mut op = operation;
        for other in before {
            match Operation::transform(&op, other) {
                Ok((transformed, _)) => op = transformed,
                Err(e) => {
                    let msg = format!("operation does not fit revision {base}: {e}");
                    self.fail(
                        conn_id,
                        error_code::INVALID_OPERATION,
                        &msg,
                        close_code::MALFORMED,
                    );
                    return;
                }
            }
        }
        if op.base_len() != d.tip_len() {
            let msg = format!(
                "operation does not fit revision {base}: it expects a document of {} chars, but it has {}",
                op.base_len(),
                d.tip_len()
            );
            self.fail(
                conn_id,
                error_code::INVALID_OPERATION,
                &msg,
                close_code::MALFORMED,
            );
            return;
        }
        if op.target_len() > op.base_len() {
            if let Some(message) = self.too_large(d, &op) {
                self.metrics.reject(Reject::DocumentTooLarge);
                let refusal = Refusal {
                    code: error_code::DOCUMENT_TOO_LARGE,
                    message,
                    doc: project.then(|| id.to_string()),
                    path: None,
                };
                self.refuse(conn_id, refusal, Some(seq));
                return;
            }
        }
        self.last_activity = now;
        d.pending.push(PendingEdit {
            conn_id,
            received: now,
            base,
            original,
            operation: op,
            user_id,
            client_id,
            seq,
            id: 0,
        });
        self.flush_doc(d, id, now);
        // Only an edit taken says its author is editing.
        self.editing(conn_id, id, now);
    }

    /// Why a growing edit (transformed to the tip) would make the document
    /// or the room too large, if it would. Bytes are counted as the
    /// committed text's plus what the queued edits and this one insert: an
    /// upper bound, exact when nothing is queued.
    fn too_large(&self, d: &Doc, op: &Operation) -> Option<String> {
        let limits = &self.config.tree;
        if op.target_len() > self.config.max_document_chars {
            return Some(format!(
                "the edit would make the document {} chars long; the limit is {}. It was not applied",
                op.target_len(),
                self.config.max_document_chars
            ));
        }
        let added = (d.queued_insert_bytes() + insert_bytes(op)) as u64;
        let bytes = d.text.len_bytes() as u64 + added;
        if bytes > limits.max_doc_bytes {
            return Some(format!(
                "the edit would make the document {bytes} bytes long; the limit is {}. It was not applied",
                limits.max_doc_bytes
            ));
        }
        let room = self.tree.bytes() + added;
        if room > limits.max_room_bytes {
            return Some(format!(
                "the edit would make the room's documents {room} bytes; the limit is {}. It was not applied",
                limits.max_room_bytes
            ));
        }
        None
    }

    /// Sends what is pending on a document to be committed, unless a
    /// commit is in flight (its answer sends the rest) or another instance
    /// holds the turn.
    pub(super) fn flush(&mut self, id: &DocId, now: Instant) {
        self.with_doc(id, |room, id, d| room.flush_doc(d, id, now));
    }

    fn flush_doc(&mut self, d: &mut Doc, id: &DocId, now: Instant) {
        // After a stop nothing may be committed: pending edits may not have
        // been rebased, and the clients resend them to a fresh room anyway.
        if !d.in_flight.is_empty() || d.pending.is_empty() || self.stop.is_some() {
            return;
        }
        if d.hold_until.is_some_and(|t| now < t) {
            return;
        }
        d.hold_until = None;
        let n = d.pending.len().min(MAX_BATCH);
        d.in_flight = d.pending.drain(..n).collect();
        // Fresh ids each attempt: a batch retried after a lost race holds
        // other operations at other revisions.
        for p in &mut d.in_flight {
            p.id = lineage::new_id();
        }
        let entries: Vec<CommittedEntry> = d
            .in_flight
            .iter()
            .enumerate()
            .map(|(i, p)| CommittedEntry {
                revision: d.revision + 1 + i as u64,
                id: p.id,
                operation: p.operation.clone(),
                user_id: p.user_id.clone(),
                client_id: p.client_id.clone(),
                seq: p.seq,
            })
            .collect();
        // The size the tree lists once the batch is in: exact, from the
        // text with the batch applied (a rope clone shares its nodes).
        let size = if self.shared {
            let mut after = d.text.clone();
            let fits = entries
                .iter()
                .all(|e| e.operation.apply(&mut after).is_ok());
            if fits {
                after.len_bytes()
            } else {
                d.text.len_bytes()
            }
        } else {
            0
        } as u64;
        self.actions.push(Action::Commit(
            id.clone(),
            commit_request(d.revision, d.tip, entries, size),
        ));
    }

    /// The answer to the commit in flight on document `id`.
    pub fn committed(&mut self, id: &DocId, reply: Result<CommitReply, StoreError>, now: Instant) {
        self.with_doc(id, |room, id, d| room.committed_doc(d, id, reply, now));
        if self
            .docs
            .get(id)
            .is_some_and(|d| d.deleted && d.is_settled())
        {
            self.docs.remove(id);
        }
        self.finish_drain();
    }

    fn committed_doc(
        &mut self,
        d: &mut Doc,
        id: &DocId,
        reply: Result<CommitReply, StoreError>,
        now: Instant,
    ) {
        match reply {
            Ok(CommitReply::Committed { revision, log_bytes }) => {
                let before = d.revision;
                for p in std::mem::take(&mut d.in_flight) {
                    self.commit_own(d, id, p, now);
                }
                debug_assert_eq!(revision, d.revision);
                // Every SNAPSHOT_EVERY revisions, and whenever the stored log
                // is over its byte budget: the store can only drop entries
                // the snapshot covers.
                let over_budget = log_bytes > self.config.history.room_bytes as u64;
                if self.shared
                    && !d.deleted
                    && (over_budget || before / SNAPSHOT_EVERY != d.revision / SNAPSHOT_EVERY)
                {
                    self.publish(Publish::Snapshot(id.clone(), d.revision, d.text.clone()));
                }
                self.drain_stash(d, id, now);
                self.flush_doc(d, id, now);
            }
            Ok(CommitReply::Conflict { revision, missed }) => {
                // Someone committed first: catch up with what the answer
                // carries (which transforms the batch over it) and retry at
                // once, in one round trip.
                let batch = std::mem::take(&mut d.in_flight);
                d.pending.splice(0..0, batch);
                // (The store checked that its history is ours.)
                self.catch_up(d, id, revision, missed, None, now);
            }
            Ok(CommitReply::Yield { revision }) => {
                // Another instance holds the next turn: retry once its commit
                // arrives (an event flushes) or the turn lapses. Its commit
                // may already have arrived while ours was in flight (the
                // stash waits for our answer): then retry now, or we would
                // wait out the whole turn for an event that came.
                let batch = std::mem::take(&mut d.in_flight);
                d.pending.splice(0..0, batch);
                self.drain_stash(d, id, now);
                if self.stop.is_some() {
                    return;
                }
                if d.revision <= revision {
                    d.hold_until = Some(now + TURN);
                } else {
                    self.flush_doc(d, id, now);
                }
            }
            Ok(CommitReply::Parted { revision }) => self.parted(
                id,
                format!(
                    "the store (at revision {revision} of document {id}) holds another history than this instance's (at {})",
                    d.revision
                ),
            ),
            Ok(CommitReply::Deleted) => {
                // Deleted before this batch got in: its edits are refused
                // (the tree change reaches this room on its own).
                let batch = std::mem::take(&mut d.in_flight);
                d.pending.splice(0..0, batch);
                d.deleted = true;
                self.refuse_pending(d, id);
                self.need_tree();
            }
            Ok(CommitReply::Gone) => self.reset(
                close_code::ROOM_NOT_FOUND,
                error_code::ROOM_NOT_FOUND,
                "the room expired".into(),
            ),
            Err(e) => {
                // (The store counted the failure.) The answer may be lost
                // while the commit happened: start over from the store;
                // clients resend with their seq, applied once.
                self.reset(
                    close_code::TRY_AGAIN_LATER,
                    error_code::UNAVAILABLE,
                    format!("the room's store is unavailable; edit not committed: {e}"),
                );
            }
        }
    }

    /// The document was deleted: every pending edit is refused with
    /// `document_deleted` (never acknowledged; its author keeps its text).
    pub(super) fn refuse_pending(&mut self, d: &mut Doc, id: &DocId) {
        for p in std::mem::take(&mut d.pending) {
            let project = self.conns.get(&p.conn_id).is_some_and(|c| c.project);
            let refusal = Refusal {
                code: error_code::DOCUMENT_DELETED,
                message: format!(
                    "document {id} was deleted before this edit (seq {}) was applied",
                    p.seq
                ),
                doc: project.then(|| id.to_string()),
                path: None,
            };
            self.refuse(p.conn_id, refusal, Some(p.seq));
        }
    }

    /// Applies one of this instance's edits as committed at the next revision.
    fn commit_own(&mut self, d: &mut Doc, id: &DocId, p: PendingEdit, now: Instant) {
        let author = p.conn_id;
        self.metrics
            .commit_latency
            .observe(now.saturating_duration_since(p.received));
        self.metrics.ops_committed.fetch_add(1, Ordering::Relaxed);
        let entry = CommittedEntry {
            id: p.id,
            revision: d.revision + 1,
            operation: p.operation,
            user_id: p.user_id,
            client_id: p.client_id,
            seq: p.seq,
        };
        self.apply_committed(d, id, entry, Some(author), now);
    }

    /// Applies a committed operation (ours or another instance's) at the next
    /// revision and fans it out to the connections that have the document
    /// open: the connection `author` (if it is here) gets the ack, every
    /// other one the `code_update`.
    fn apply_committed(
        &mut self,
        d: &mut Doc,
        id: &DocId,
        entry: CommittedEntry,
        author: Option<ConnId>,
        now: Instant,
    ) {
        if let Err(e) = entry.operation.apply(&mut d.text) {
            self.reset(
                close_code::INTERNAL,
                error_code::UNAVAILABLE,
                format!(
                    "revision {} of document {id} does not apply: {e}",
                    entry.revision
                ),
            );
            return;
        }
        d.revision = entry.revision;
        d.tip = entry.id;
        self.last_activity = now;
        d.dedup
            .insert(entry.client_id.clone(), (entry.seq, entry.revision));
        self.tree.set_size(id, d.text.len_bytes() as u64);
        let op = &entry.operation;
        let infos = self
            .users
            .values_mut()
            .map(|p| &mut p.info)
            .chain(self.remote.values_mut().map(|r| &mut r.info));
        let main = self.tree.main();
        for info in infos.filter(|i| i.doc.as_deref().or(main.as_deref()) == Some(&**id)) {
            if let Some(c) = info.cursor {
                info.cursor = Some(op.transform_index(c as usize) as u64);
            }
            if let Some(a) = info.anchor {
                info.anchor = Some(op.transform_index(a as usize) as u64);
            }
        }
        let mut built: [[Option<S::Msg>; 2]; 2] = Default::default();
        for (conn_id, conn) in self.conns.iter_mut() {
            let Some(own) = conn.open.get(id) else {
                continue;
            };
            let acked = Some(*conn_id) == author
                || (conn.client_id == entry.client_id && own.is_ack(entry.seq));
            let project = conn.project;
            let msg = built[acked as usize][project as usize].get_or_insert_with(|| {
                let doc = project.then(|| id.to_string());
                let msg = if acked {
                    ServerMessage::Ack {
                        revision: entry.revision,
                        seq: entry.seq,
                        doc,
                    }
                } else {
                    ServerMessage::CodeUpdate(CommittedOp {
                        revision: entry.revision,
                        operation: entry.operation.clone(),
                        user_id: entry.user_id.to_string(),
                        seq: None,
                        doc,
                    })
                };
                S::message(msg.to_json())
            });
            super::enqueue(conn, msg);
        }
        self.dirty = true;
        d.log.push(entry);
        self.trim_doc_history(d);
    }

    /// [`RoomCore::trim_history`] for a document taken out of the map.
    fn trim_doc_history(&mut self, d: &mut Doc) {
        let rooms = self.metrics.rooms.load(Ordering::Relaxed).max(1) as usize;
        let bytes = self.config.history.room_share(rooms) / (self.docs.len() + 1);
        let dedup = &mut d.dedup;
        d.log.trim(self.config.history.ops, bytes, |e| {
            super::clients::commit_left_history(dedup, &e.client_id, e.revision);
        });
    }

    /// Applies another instance's committed operation. Pending edits must be
    /// rebased afterwards ([`Self::rebase_pending`]).
    fn apply_remote(&mut self, d: &mut Doc, id: &DocId, entry: CommittedEntry, now: Instant) {
        if d.pending
            .iter()
            .any(|p| p.client_id == entry.client_id && p.seq <= entry.seq)
        {
            // The same client's edit committed elsewhere while queued here
            // (a client that moved instances): start over from the store.
            self.reset(
                close_code::RESTARTING,
                error_code::UNAVAILABLE,
                "resynchronizing the room".into(),
            );
            return;
        }
        self.apply_committed(d, id, entry, None, now);
    }

    /// Recomputes every pending edit from its original along the current
    /// order: the committed log from its base, then the pending edits before it.
    fn rebase_pending(&mut self, d: &mut Doc) {
        let oldest = d.oldest_base();
        // An edit whose base fell out of the kept history cannot be placed:
        // refuse it alone (its client resynchronizes); the others are
        // recomputed from their originals, so dropping it is consistent.
        let (kept, stale): (Vec<PendingEdit>, Vec<PendingEdit>) = std::mem::take(&mut d.pending)
            .into_iter()
            .partition(|p| p.base >= oldest);
        d.pending = kept;
        for p in stale {
            let msg = format!(
                "revision {} is older than the history this server keeps; reconnect",
                p.base
            );
            self.fail(
                p.conn_id,
                error_code::REVISION_TOO_OLD,
                &msg,
                close_code::MALFORMED,
            );
        }
        let mut rebased: Vec<Operation> = Vec::with_capacity(d.pending.len());
        for p in &d.pending {
            let skip = (p.base - oldest) as usize;
            let mut op = p.original.clone();
            for other in d
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
        for (p, op) in d.pending.iter_mut().zip(rebased) {
            p.operation = op;
        }
    }

    /// Applies stashed operations that are next in line; a gap asks for the
    /// log.
    fn drain_stash(&mut self, d: &mut Doc, id: &DocId, now: Instant) {
        if !d.in_flight.is_empty() {
            return;
        }
        let mut applied = false;
        while let Some((entry, after)) = d.stash.remove(&(d.revision + 1)) {
            if after != 0 && d.tip != 0 && after != d.tip {
                self.parted(
                    id,
                    format!(
                        "revision {} of document {id} was committed on another revision {} than this instance's",
                        entry.revision, d.revision
                    ),
                );
                return;
            }
            self.apply_remote(d, id, entry, now);
            if self.stop.is_some() {
                return;
            }
            applied = true;
        }
        if applied && !d.pending.is_empty() {
            self.rebase_pending(d);
        }
        d.stash = d.stash.split_off(&(d.revision + 1));
        if !d.stash.is_empty() {
            // A gap: the store's events lost something. The log has it.
            self.need_catch_up(d, id);
        }
    }

    /// Asks the actor to read a document's log after its revision, unless
    /// a commit is in flight (its answer will tell) or a read is already
    /// asked for.
    pub(super) fn need_catch_up(&mut self, d: &mut Doc, id: &DocId) {
        if d.in_flight.is_empty() && !d.catching_up && self.stop.is_none() && !d.deleted {
            d.catching_up = true;
            self.actions.push(Action::CatchUp(id.clone()));
        }
    }

    /// The answer to [`Action::CatchUp`] (or the catch-up before a join):
    /// the log after the revision the document had, `None` when the
    /// document is gone.
    pub fn caught_up(&mut self, id: &DocId, tail: Result<Option<Tail>, StoreError>, now: Instant) {
        self.with_doc(id, |room, id, d| {
            d.catching_up = false;
            match tail {
                Ok(Some(tail)) => {
                    if let Some(f) = tail.fork {
                        d.fork = Some(d.fork.map_or(f, |mine| mine.min(f)));
                    }
                    if d.in_flight.is_empty() {
                        room.catch_up(d, id, tail.revision, tail.entries, tail.base, now);
                    } else {
                        // Our commit's answer decides where they go: wait with
                        // them in the stash, as with published operations.
                        room.remote_ops(d, id, tail.base, tail.entries, now);
                    }
                }
                // Deleted (the tree change is on its way) or the room expired
                // (its next commit or the tree says so).
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(room = %crate::ids::short(&room.id), error = %e, "cannot read a document's log")
                }
            }
            room.answer_waiters(d, id);
        });
    }

    /// Applies what the store committed up to `revision` (`entries`: every
    /// entry after ours, as far as the log reaches), rebases what is pending
    /// and commits it. `base` is the store's mark of our revision, when it
    /// knows one.
    fn catch_up(
        &mut self,
        d: &mut Doc,
        id: &DocId,
        revision: u64,
        entries: Vec<CommittedEntry>,
        base: Option<Mark>,
        now: Instant,
    ) {
        if revision < d.revision {
            self.parted(
                id,
                format!(
                    "the store is at revision {revision} of document {id}, behind this instance's {}",
                    d.revision
                ),
            );
            return;
        }
        if let Some((rev, mark)) = base {
            if rev == d.revision && d.tip != 0 && mark != d.tip {
                self.parted(
                    id,
                    format!(
                        "the store holds another operation at revision {rev} of document {id} than this instance applied"
                    ),
                );
                return;
            }
        }
        let entries: Vec<CommittedEntry> = entries
            .into_iter()
            .skip_while(|e| e.revision <= d.revision)
            .collect();
        if revision > d.revision && entries.first().is_none_or(|e| e.revision != d.revision + 1) {
            self.reset(
                close_code::RESTARTING,
                error_code::UNAVAILABLE,
                "fell behind the store's history".into(),
            );
            return;
        }
        let any = !entries.is_empty();
        for e in entries {
            self.apply_remote(d, id, e, now);
            if self.stop.is_some() {
                return;
            }
        }
        if any && !d.pending.is_empty() {
            self.rebase_pending(d);
        }
        d.stash = d.stash.split_off(&(d.revision + 1));
        self.flush_doc(d, id, now);
    }

    /// Operations committed elsewhere, on `base` when known.
    fn remote_ops(
        &mut self,
        d: &mut Doc,
        id: &DocId,
        base: Option<Mark>,
        entries: Vec<CommittedEntry>,
        now: Instant,
    ) {
        let marks: Vec<Mark> = entries.iter().map(|e| (e.revision, e.id)).collect();
        // What they were committed on, and what they hold, at revisions this
        // room has applied must be what it applied.
        let mine = |rev: u64| (rev <= d.revision).then(|| d.id_at(rev)).flatten();
        if let Some(rev) = lineage::contradiction(base.iter().chain(&marks), mine) {
            self.parted(
                id,
                format!(
                    "another instance's operations follow another operation at revision {rev} of document {id}"
                ),
            );
            return;
        }
        let follows = lineage::predecessors(base, &marks);
        for (entry, after) in entries.into_iter().zip(follows) {
            if entry.revision > d.revision {
                d.stash.insert(entry.revision, (entry, after));
            }
        }
        let before = d.revision;
        self.drain_stash(d, id, now);
        if d.revision > before {
            // Whoever held the turn has committed: our turn now.
            d.hold_until = None;
        }
        self.flush_doc(d, id, now);
    }

    /// Operations of document `doc` committed by another instance (or read
    /// back by a periodic check): applied when the document is held here;
    /// otherwise only its size in the tree changes.
    pub(super) fn store_ops(
        &mut self,
        doc: &str,
        size: Option<u64>,
        base: Option<Mark>,
        entries: Vec<CommittedEntry>,
        now: Instant,
    ) {
        let Some(id) = self.tree.id(doc) else {
            return; // Deleted (or not known yet: the tree catches up first).
        };
        let held = self.with_doc(&id, |room, id, d| {
            if !d.deleted {
                room.remote_ops(d, id, base, entries, now);
            }
        });
        if held.is_none() {
            if let Some(size) = size {
                self.tree.set_size(&id, size);
            }
        }
    }
}
