//! The room's edits: accepting one (validate, de-duplicate, transform to the
//! tip), committing batches and handling the answer (committed, lost a
//! race, wait for the other instance's turn, the store's history parted),
//! and applying operations committed by other instances in revision order,
//! with the edits still pending recomputed along the order that won.

use std::sync::atomic::Ordering;
use std::time::Instant;

use collab_protocol::{close_code, error_code, CommittedOp, Operation, Role, ServerMessage};

use super::lineage::{self, Mark};
use super::{
    commit_request, enqueue, Action, ConnId, ConnSink, PendingEdit, Publish, RoomCore, MAX_BATCH,
    SNAPSHOT_EVERY,
};
use crate::metrics::Reject;
use crate::store::{CommitReply, CommittedEntry, StoreError, StoreEvent, Tail, TURN};

impl<S: ConnSink> RoomCore<S> {
    /// An edit from connection `conn_id`: `operation` on revision `base`,
    /// the client's `seq`-th.
    pub fn edit(
        &mut self,
        conn_id: ConnId,
        base: u64,
        seq: u64,
        operation: Operation,
        now: Instant,
    ) {
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return; // Left or replaced: nothing it sends is applied.
        };
        conn.own.sent(seq);
        let client_id = conn.client_id.clone();
        let user_id = conn.user_id.clone();
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
        if self.draining {
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
                self.send(conn_id, ServerMessage::Ack { revision, seq });
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
            self.fail(
                conn_id,
                error_code::FUTURE_REVISION,
                &msg,
                close_code::MALFORMED,
            );
            return;
        }
        if base < self.oldest_base() {
            let msg = format!(
                "revision {base} is older than the {} operations this server keeps; reconnect to resynchronize",
                self.log.len()
            );
            self.fail(
                conn_id,
                error_code::REVISION_TOO_OLD,
                &msg,
                close_code::MALFORMED,
            );
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
        if op.base_len() != self.tip_len() {
            let msg = format!(
                "operation does not fit revision {base}: it expects a document of {} chars, but it has {}",
                op.base_len(),
                self.tip_len()
            );
            self.fail(
                conn_id,
                error_code::INVALID_OPERATION,
                &msg,
                close_code::MALFORMED,
            );
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
            self.send(conn_id, refusal);
            return;
        }
        self.last_activity = now;
        self.pending.push(PendingEdit {
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
        self.flush(now);
    }

    /// Queues one message for one connection and wakes its writer.
    fn send(&mut self, conn_id: ConnId, msg: ServerMessage) {
        if let Some(conn) = self.conns.get_mut(&conn_id) {
            enqueue(conn, &S::message(msg.to_json()));
            conn.sink.wake();
            conn.dirty = false;
        }
    }

    fn fail(&self, conn_id: ConnId, code: &str, message: &str, close: u16) {
        if let Some(conn) = self.conns.get(&conn_id) {
            conn.sink.fail(code, message, close);
        }
    }

    /// Sends what is pending to be committed, unless a commit is in flight
    /// (its answer sends the rest) or another instance holds the turn.
    pub(super) fn flush(&mut self, now: Instant) {
        // After a stop nothing may be committed: pending edits may not have
        // been rebased, and the clients resend them to a fresh room anyway.
        if !self.in_flight.is_empty() || self.pending.is_empty() || self.stop.is_some() {
            return;
        }
        if self.hold_until.is_some_and(|t| now < t) {
            return;
        }
        self.hold_until = None;
        let n = self.pending.len().min(MAX_BATCH);
        self.in_flight = self.pending.drain(..n).collect();
        // Fresh ids each attempt: a batch retried after a lost race holds
        // other operations at other revisions.
        for p in &mut self.in_flight {
            p.id = lineage::new_id();
        }
        let entries: Vec<CommittedEntry> = self
            .in_flight
            .iter()
            .enumerate()
            .map(|(i, p)| CommittedEntry {
                revision: self.revision + 1 + i as u64,
                id: p.id,
                operation: p.operation.clone(),
                user_id: p.user_id.clone(),
                client_id: p.client_id.clone(),
                seq: p.seq,
            })
            .collect();
        self.actions.push(Action::Commit(commit_request(
            self.revision,
            self.tip,
            entries,
        )));
    }

    /// The answer to the commit in flight.
    pub fn committed(&mut self, reply: Result<CommitReply, StoreError>, now: Instant) {
        match reply {
            Ok(CommitReply::Committed { revision, log_bytes }) => {
                let before = self.revision;
                for p in std::mem::take(&mut self.in_flight) {
                    self.commit_own(p, now);
                }
                debug_assert_eq!(revision, self.revision);
                // Every SNAPSHOT_EVERY revisions, and whenever the stored log
                // is over its byte budget: the store can only drop entries
                // the snapshot covers.
                let over_budget = log_bytes > self.config.history.room_bytes as u64;
                if self.shared
                    && (over_budget || before / SNAPSHOT_EVERY != self.revision / SNAPSHOT_EVERY)
                {
                    self.publish(Publish::Snapshot(self.revision, self.doc.clone()));
                }
                self.drain_stash(now);
                self.flush(now);
            }
            Ok(CommitReply::Conflict { revision, missed }) => {
                // Someone committed first: catch up with what the answer
                // carries (which transforms the batch over it) and retry at
                // once, in one round trip.
                let batch = std::mem::take(&mut self.in_flight);
                self.pending.splice(0..0, batch);
                // (The store checked that its history is ours.)
                self.catch_up(revision, missed, None, now);
            }
            Ok(CommitReply::Yield { revision }) => {
                // Another instance holds the next turn: retry once its commit
                // arrives (an event flushes) or the turn lapses. Its commit
                // may already have arrived while ours was in flight (the
                // stash waits for our answer): then retry now, or we would
                // wait out the whole turn for an event that came.
                let batch = std::mem::take(&mut self.in_flight);
                self.pending.splice(0..0, batch);
                self.drain_stash(now);
                if self.stop.is_some() {
                    return;
                }
                if self.revision <= revision {
                    self.hold_until = Some(now + TURN);
                } else {
                    self.flush(now);
                }
            }
            Ok(CommitReply::Parted { revision }) => self.parted(format!(
                "the store (at revision {revision}) holds another history than this instance's (at {})",
                self.revision
            )),
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
        self.finish_drain();
    }

    /// Applies one of this instance's edits as committed at the next revision.
    fn commit_own(&mut self, p: PendingEdit, now: Instant) {
        let author = p.conn_id;
        self.metrics
            .commit_latency
            .observe(now.saturating_duration_since(p.received));
        self.metrics.ops_committed.fetch_add(1, Ordering::Relaxed);
        let entry = CommittedEntry {
            id: p.id,
            revision: self.revision + 1,
            operation: p.operation,
            user_id: p.user_id,
            client_id: p.client_id,
            seq: p.seq,
        };
        self.apply_committed(entry, Some(author), now);
    }

    /// Applies a committed operation (ours or another instance's) at the next
    /// revision and fans it out: the connection `author` (if it is here) gets
    /// the ack, every other connection the `code_update`.
    fn apply_committed(&mut self, entry: CommittedEntry, author: Option<ConnId>, now: Instant) {
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
        self.last_activity = now;
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
        let update = S::message(
            ServerMessage::CodeUpdate(CommittedOp {
                revision: entry.revision,
                operation: entry.operation.clone(),
                user_id: entry.user_id.to_string(),
                seq: None,
            })
            .to_json(),
        );
        let ack = S::message(
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

    /// Applies another instance's committed operation. Pending edits must be
    /// rebased afterwards ([`Self::rebase_pending`]).
    fn apply_remote(&mut self, entry: CommittedEntry, now: Instant) {
        if self
            .pending
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
        self.apply_committed(entry, None, now);
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

    /// Applies stashed operations that are next in line; a gap asks for the
    /// log.
    fn drain_stash(&mut self, now: Instant) {
        if !self.in_flight.is_empty() {
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
            self.apply_remote(entry, now);
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
            // A gap: the store's events lost something. The log has it.
            self.need_catch_up();
        }
    }

    /// Asks the actor to read the log after our revision, unless a commit
    /// is in flight (its answer will tell) or a read is already asked for.
    fn need_catch_up(&mut self) {
        if self.in_flight.is_empty() && !self.catching_up && self.stop.is_none() {
            self.catching_up = true;
            self.actions.push(Action::CatchUp);
        }
    }

    /// The answer to [`Action::CatchUp`] (or the catch-up before a join):
    /// the log after the revision the room had, `None` when the room is gone.
    pub fn caught_up(&mut self, tail: Result<Option<Tail>, StoreError>, now: Instant) {
        self.catching_up = false;
        match tail {
            Ok(Some(tail)) => {
                self.note_fork(tail.fork);
                if self.in_flight.is_empty() {
                    self.catch_up(tail.revision, tail.entries, tail.base, now);
                } else {
                    // Our commit's answer decides where they go: wait with
                    // them in the stash, as with published operations.
                    self.remote_ops(tail.base, tail.entries, now);
                }
            }
            Ok(None) => self.reset(
                close_code::ROOM_NOT_FOUND,
                error_code::ROOM_NOT_FOUND,
                "the room expired".into(),
            ),
            Err(e) => {
                tracing::warn!(room = %crate::ids::short(&self.id), error = %e, "cannot read the room's log")
            }
        }
    }

    /// Applies what the store committed up to `revision` (`entries`: every
    /// entry after ours, as far as the log reaches), rebases what is pending
    /// and commits it. `base` is the store's mark of our revision, when it
    /// knows one.
    fn catch_up(
        &mut self,
        revision: u64,
        entries: Vec<CommittedEntry>,
        base: Option<Mark>,
        now: Instant,
    ) {
        if revision < self.revision {
            self.parted(format!(
                "the store is at revision {revision}, behind this instance's {}",
                self.revision
            ));
            return;
        }
        if let Some((rev, id)) = base {
            if rev == self.revision && self.tip != 0 && id != self.tip {
                self.parted(format!(
                    "the store holds another operation at revision {rev} than this instance applied"
                ));
                return;
            }
        }
        let entries: Vec<CommittedEntry> = entries
            .into_iter()
            .skip_while(|e| e.revision <= self.revision)
            .collect();
        if revision > self.revision
            && entries
                .first()
                .is_none_or(|e| e.revision != self.revision + 1)
        {
            self.reset(
                close_code::RESTARTING,
                error_code::UNAVAILABLE,
                "fell behind the store's history".into(),
            );
            return;
        }
        let any = !entries.is_empty();
        for e in entries {
            self.apply_remote(e, now);
            if self.stop.is_some() {
                return;
            }
        }
        if any && !self.pending.is_empty() {
            self.rebase_pending();
        }
        self.stash = self.stash.split_off(&(self.revision + 1));
        self.flush(now);
    }

    /// Operations committed elsewhere, on `base` when known.
    fn remote_ops(&mut self, base: Option<Mark>, entries: Vec<CommittedEntry>, now: Instant) {
        let marks: Vec<Mark> = entries.iter().map(|e| (e.revision, e.id)).collect();
        // What they were committed on, and what they hold, at revisions this
        // room has applied must be what it applied.
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
        self.drain_stash(now);
        if self.revision > before {
            // Whoever held the turn has committed: our turn now.
            self.hold_until = None;
        }
        self.flush(now);
    }

    /// What the store says happened elsewhere.
    pub fn store_event(&mut self, event: StoreEvent, now: Instant) {
        if self.stop.is_some() {
            return;
        }
        match event {
            StoreEvent::Ops { base, entries } => self.remote_ops(base, entries, now),
            StoreEvent::Cursor {
                user_id,
                revision,
                cursor,
                anchor,
            } => self.remote_cursor(user_id, revision, cursor, anchor),
            StoreEvent::Join { user, .. } => self.remote_joined(user, now),
            StoreEvent::Leave { user_id } => {
                self.presence_news(&user_id);
                self.remote_left(&user_id);
            }
            StoreEvent::Resync => self.need_catch_up(),
        }
    }
}
