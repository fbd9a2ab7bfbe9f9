//! One document's revision stream: its text at the room's revision, the
//! history window, de-duplication, and the edits waiting to be committed
//! or in flight. Each document of a room has one, independent of the
//! others (its own revisions, seqs and commits); the room core drives it.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Instant;

use collab_protocol::{CommittedOp, Component, Operation};
use ropey::Rope;

use super::clients::Dedup;
use super::history::History;
use super::lineage::Mark;
use super::ConnId;
use crate::store::{CommittedEntry, LoadedDoc, StoreError};

/// A document's id within its room (`"main"` for the main document).
pub type DocId = Arc<str>;

/// An accepted edit not yet committed. `operation` is `original` (as the
/// client sent it, on `base`) transformed to follow everything committed, in
/// flight and pending before it. When the order changes (another instance
/// committed first) it is recomputed from `original` along the new order:
/// transforming along one path is what makes the server's result equal the
/// client's, which transforms along the order it receives operations in.
pub(super) struct PendingEdit {
    /// The connection that sent it: it gets the ack, everyone else the
    /// `code_update`. A resend on a new connection takes the ack over.
    pub(super) conn_id: ConnId,
    pub(super) received: Instant,
    pub(super) base: u64,
    pub(super) original: Operation,
    pub(super) operation: Operation,
    pub(super) user_id: Arc<str>,
    pub(super) client_id: Arc<str>,
    pub(super) seq: u64,
    /// Its id in the document's history, drawn each time it is sent to commit.
    pub(super) id: u64,
}

/// A connection waiting for the answer to its `open`: the document is
/// being read from the store or caught up with it first.
pub(super) struct Waiter {
    pub(super) conn_id: ConnId,
    pub(super) since: Option<u64>,
}

/// One document's state; see the module docs.
pub(super) struct Doc {
    pub(super) text: Rope,
    pub(super) revision: u64,
    /// The id of the operation that produced `revision`; 0 when unknown.
    pub(super) tip: u64,
    /// The revision after which the document's history parted, if it did:
    /// a reconnect with a later `since` gets no `missed`.
    pub(super) fork: Option<u64>,
    pub(super) log: History,
    pub(super) dedup: Dedup,
    pub(super) pending: Vec<PendingEdit>,
    pub(super) in_flight: Vec<PendingEdit>,
    /// Other instances' operations ahead of the revision, waiting for the
    /// ones before them, each with the id of the operation it was
    /// committed after (0 when unknown).
    pub(super) stash: BTreeMap<u64, (CommittedEntry, u64)>,
    /// A catch-up read was asked for and not answered yet.
    pub(super) catching_up: bool,
    /// Set while another instance holds the commit turn.
    pub(super) hold_until: Option<Instant>,
    /// Deleted while a commit was in flight: kept until its answer says
    /// whether the commit made it before the deletion.
    pub(super) deleted: bool,
    /// Connections waiting for their `opened`.
    pub(super) waiters: Vec<Waiter>,
}

impl Doc {
    /// The document as the store holds it; `instance` is the gauge of the
    /// history bytes every room of this instance keeps.
    pub(super) fn load(loaded: LoadedDoc, instance: Arc<AtomicI64>) -> Result<Self, StoreError> {
        let (text, revision) = replay(
            Rope::from_str(&loaded.snapshot),
            loaded.snapshot_revision,
            &loaded.log,
            loaded.revision,
        )?;
        let mut log = History::new(instance);
        for e in loaded.log {
            log.push(e);
        }
        let tip = match loaded.tip {
            Some((rev, id)) if rev == revision => id,
            _ => log.iter().last().map_or(0, |e| e.id),
        };
        Ok(Self {
            text,
            revision,
            tip,
            fork: loaded.fork,
            log,
            dedup: loaded
                .dedup
                .into_iter()
                .map(|(k, v)| (k.into(), v))
                .collect(),
            pending: Vec::new(),
            in_flight: Vec::new(),
            stash: BTreeMap::new(),
            catching_up: false,
            hold_until: None,
            deleted: false,
            waiters: Vec::new(),
        })
    }

    /// The oldest revision an edit or a caret may be based on.
    pub(super) fn oldest_base(&self) -> u64 {
        self.revision - self.log.len() as u64
    }

    /// Length of the document after everything in flight and pending.
    pub(super) fn tip_len(&self) -> usize {
        self.pending
            .last()
            .or(self.in_flight.last())
            .map_or(self.text.len_chars(), |p| p.operation.target_len())
    }

    /// Bytes the edits in flight and pending insert (an upper bound of
    /// what they add).
    pub(super) fn queued_insert_bytes(&self) -> usize {
        self.in_flight
            .iter()
            .chain(&self.pending)
            .map(|p| insert_bytes(&p.operation))
            .sum()
    }

    /// True when nothing waits to be committed.
    pub(super) fn is_settled(&self) -> bool {
        self.pending.is_empty() && self.in_flight.is_empty()
    }

    /// The id of the operation that produced revision `rev`, when known.
    pub(super) fn id_at(&self, rev: u64) -> Option<u64> {
        let id = if rev == self.revision {
            self.tip
        } else {
            let i = rev.checked_sub(self.oldest_base() + 1)?;
            self.log.get(i as usize)?.id
        };
        (id != 0).then_some(id)
    }

    /// The ids this document knows of the revisions it applied.
    pub(super) fn marks(&self) -> Vec<Mark> {
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

    /// What a client that had revision `since` missed, when the kept
    /// history reaches back that far and not past the fork (a client there
    /// may hold a revision of the other history, and no entry of this one
    /// fits its document). Its own commits carry their seq.
    pub(super) fn missed(
        &self,
        since: Option<u64>,
        client_id: &str,
        doc: Option<&str>,
    ) -> Option<Vec<CommittedOp>> {
        let since = since?;
        let rebasable = since >= self.oldest_base() && self.fork.is_none_or(|f| since <= f);
        rebasable.then(|| {
            self.log
                .iter()
                .filter(|e| e.revision > since)
                .map(|e| CommittedOp {
                    revision: e.revision,
                    operation: e.operation.clone(),
                    user_id: e.user_id.to_string(),
                    seq: (*e.client_id == *client_id).then_some(e.seq),
                    doc: doc.map(str::to_owned),
                })
                .collect()
        })
    }

    /// Brings a caret at revision `base` (inside the kept history) to the
    /// current revision.
    pub(super) fn place(&self, base: u64, cursor: u64, anchor: Option<u64>) -> (u64, Option<u64>) {
        let skip = (base - self.oldest_base()) as usize;
        let len_at_base = self
            .log
            .get(skip)
            .map_or(self.text.len_chars(), |e| e.operation.base_len());
        let place = |pos: u64| {
            let mut p = (pos as usize).min(len_at_base);
            for e in self.log.iter().skip(skip) {
                p = e.operation.transform_index(p);
            }
            p as u64
        };
        (place(cursor), anchor.map(place))
    }
}

/// Bytes an operation inserts.
pub(super) fn insert_bytes(op: &Operation) -> usize {
    op.components()
        .iter()
        .map(|c| match c {
            Component::Insert(s) => s.len(),
            Component::Retain(_) | Component::Delete(_) => 0,
        })
        .sum()
}

/// The document at `revision`: `doc` (at `from`) with the log's entries
/// after `from` applied, which must run without a gap up to `revision`.
pub(super) fn replay(
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
            "log ends at {at} but the document is at {revision}"
        )));
    }
    Ok((doc, at))
}
