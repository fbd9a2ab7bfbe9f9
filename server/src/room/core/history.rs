//! The window of committed operations a room keeps: what late edits are
//! transformed over, what reconnecting clients catch up from (`since`), and
//! what carets at an older revision are brought forward through.
//!
//! It is bounded by a count (`--history-ops`) and by bytes: a count alone let
//! one client that alternately inserted and deleted half a million chars
//! grow the server by ~95 MB/s, since each kept entry held its whole insert.
//! The bytes are budgeted per room (`--history-bytes`) and per instance
//! (`--history-bytes-total`, shared evenly by the rooms alive), with the same
//! rule as the count: the oldest entries go first.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use collab_protocol::Component;

use crate::store::CommittedEntry;

/// What keeping an entry costs, in bytes (its inserted text and its
/// components; the ids are shared with the room's other records).
pub(crate) fn entry_bytes(entry: &CommittedEntry) -> usize {
    std::mem::size_of::<CommittedEntry>()
        + entry
            .operation
            .components()
            .iter()
            .map(|c| {
                std::mem::size_of::<Component>()
                    + match c {
                        Component::Insert(s) => s.len(),
                        Component::Retain(_) | Component::Delete(_) => 0,
                    }
            })
            .sum::<usize>()
}

/// The history limits of one instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Entries one room keeps at most.
    pub ops: usize,
    /// Bytes one room keeps at most.
    pub room_bytes: usize,
    /// Bytes all rooms of the instance keep at most, shared evenly.
    pub instance_bytes: usize,
}

impl HistoryLimits {
    /// The bytes one room may keep while `rooms` rooms are alive.
    pub fn room_share(&self, rooms: usize) -> usize {
        self.room_bytes.min(self.instance_bytes / rooms.max(1))
    }
}

/// The kept entries, oldest first, ending at the room's revision.
pub(crate) struct History {
    entries: VecDeque<CommittedEntry>,
    bytes: usize,
    /// Bytes held by every room's history on this instance (a gauge).
    instance: Arc<AtomicI64>,
}

impl History {
    /// An empty history that adds what it holds to `instance`.
    pub(crate) fn new(instance: Arc<AtomicI64>) -> Self {
        Self {
            entries: VecDeque::new(),
            bytes: 0,
            instance,
        }
    }

    /// Appends the entry of the next revision.
    pub(crate) fn push(&mut self, entry: CommittedEntry) {
        let n = entry_bytes(&entry);
        self.bytes += n;
        self.instance.fetch_add(n as i64, Ordering::Relaxed);
        self.entries.push_back(entry);
    }

    /// Drops the oldest entries while more than `max_ops` or `max_bytes`
    /// are kept, handing each to `dropped`.
    pub(crate) fn trim(
        &mut self,
        max_ops: usize,
        max_bytes: usize,
        mut dropped: impl FnMut(CommittedEntry),
    ) {
        while self.entries.len() > max_ops || (self.bytes > max_bytes && !self.entries.is_empty()) {
            let Some(e) = self.entries.pop_front() else {
                break;
            };
            let n = entry_bytes(&e);
            self.bytes -= n;
            self.instance.fetch_sub(n as i64, Ordering::Relaxed);
            dropped(e);
        }
    }

    /// How many entries are kept.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// What the kept entries cost, in bytes.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The entries, oldest first.
    pub(crate) fn iter(&self) -> std::collections::vec_deque::Iter<'_, CommittedEntry> {
        self.entries.iter()
    }

    /// The `i`-th oldest entry.
    pub(crate) fn get(&self, i: usize) -> Option<&CommittedEntry> {
        self.entries.get(i)
    }
}

impl Drop for History {
    fn drop(&mut self) {
        self.instance
            .fetch_sub(self.bytes as i64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use collab_protocol::Operation;

    fn entry(revision: u64, insert: &str) -> CommittedEntry {
        let mut operation = Operation::new();
        operation.retain(1).insert(insert);
        CommittedEntry {
            id: revision,
            revision,
            operation,
            user_id: "u".into(),
            client_id: "c".into(),
            seq: revision,
        }
    }

    #[test]
    fn trims_by_count_and_by_bytes_oldest_first() {
        let gauge = Arc::new(AtomicI64::new(0));
        let mut h = History::new(gauge.clone());
        for r in 1..=5 {
            h.push(entry(r, "ab"));
        }
        let mut gone = Vec::new();
        h.trim(3, usize::MAX, |e| gone.push(e.revision));
        assert_eq!((gone, h.len()), (vec![1, 2], 3));
        h.push(entry(6, &"x".repeat(10_000)));
        let mut gone = Vec::new();
        h.trim(100, 5_000, |e| gone.push(e.revision));
        assert_eq!(
            gone,
            vec![3, 4, 5, 6],
            "one big entry over the budget goes too"
        );
        assert_eq!((h.len(), h.bytes()), (0, 0));
        assert_eq!(gauge.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_instance_gauge_follows_every_history() {
        let gauge = Arc::new(AtomicI64::new(0));
        let mut a = History::new(gauge.clone());
        let mut b = History::new(gauge.clone());
        a.push(entry(1, "hello"));
        b.push(entry(1, "world!"));
        assert_eq!(
            gauge.load(Ordering::Relaxed) as usize,
            a.bytes() + b.bytes()
        );
        drop(a);
        assert_eq!(gauge.load(Ordering::Relaxed) as usize, b.bytes());
    }

    #[test]
    fn rooms_share_the_instance_budget() {
        let limits = HistoryLimits {
            ops: 10,
            room_bytes: 1_000,
            instance_bytes: 3_000,
        };
        assert_eq!(limits.room_share(1), 1_000);
        assert_eq!(limits.room_share(6), 500);
        assert_eq!(limits.room_share(0), 1_000);
    }
}
