//! Telling two histories of a room apart.
//!
//! Revision numbers alone cannot: restore Redis from an older snapshot (at
//! revision 1 while the instances are at 2), let an instance that had not
//! seen revision 2 yet commit its own revision 2, and the other instances,
//! finding Redis at "their" revision, apply revision 3 on top of a different
//! revision 2. Instances then served different documents at the same
//! revision for good, and reconnecting clients got `missed` operations that
//! did not fit their documents.
//!
//! So every committed operation carries a random id (`h` in the log), and
//! the room's metadata names the id of its latest revision (`tip`,
//! `"REV:ID"`). An instance checks the id of the revision it builds on when
//! it commits, when it catches up and when operations arrive on pub/sub; a
//! mismatch, or Redis behind a revision the instance applied, means the
//! histories parted. This module holds that logic over marks (revision,
//! id); their stored form is the Redis store's business.

use std::collections::HashMap;

pub use crate::store::Mark;

/// A fresh operation id (never 0, which stands for "unknown": entries
/// written before ids existed, or a room's start).
pub fn new_id() -> u64 {
    rand::random::<u64>() | 1
}

/// The marks a stored history holds: its entries' (revision, id), and its
/// tip when that is the tip of `revision`. Unknown ids (0) are left out.
pub fn marks(
    entries: impl Iterator<Item = (u64, u64)>,
    tip: Option<Mark>,
    revision: u64,
) -> Vec<Mark> {
    let mut marks: Vec<Mark> = entries.filter(|(_, id)| *id != 0).collect();
    if let Some(tip) = tip.filter(|t| t.0 == revision) {
        if marks.last() != Some(&tip) {
            marks.push(tip);
        }
    }
    marks
}

/// For consecutive entries `marks` committed after `base`: the id of the
/// operation each one was committed after, 0 when unknown.
pub fn predecessors(base: Option<Mark>, marks: &[Mark]) -> Vec<u64> {
    let before = std::iter::once(base).chain(marks.iter().map(|m| Some(*m)));
    before
        .zip(marks)
        .map(|(prev, (rev, _))| match prev {
            Some((p, id)) if p + 1 == *rev && id != 0 => id,
            _ => 0,
        })
        .collect()
}

/// The first revision among `marks` where `mine` (this instance's id of a
/// revision, when it knows one) holds another operation.
pub fn contradiction<'a>(
    marks: impl IntoIterator<Item = &'a Mark>,
    mine: impl Fn(u64) -> Option<u64>,
) -> Option<u64> {
    marks
        .into_iter()
        .find(|(rev, id)| *id != 0 && mine(*rev).is_some_and(|m| m != *id))
        .map(|(rev, _)| *rev)
}

/// True when `theirs` (a store's history, up to `their_revision`) cannot be
/// the history `mine` (marks of what this instance applied, up to
/// `my_revision`) continued: the store is behind a revision this instance
/// applied, or holds another operation at a revision both know the id of.
pub fn parted(my_revision: u64, mine: &[Mark], theirs: &[Mark], their_revision: u64) -> bool {
    if their_revision < my_revision {
        return true;
    }
    let theirs: HashMap<u64, u64> = theirs.iter().copied().collect();
    mine.iter()
        .any(|(rev, id)| theirs.get(rev).is_some_and(|t| *t != *id))
}

/// The last revision both histories are known to share: the newest mark of
/// `mine` that `theirs` holds too. 0 when none is known (the room's start
/// is all they are sure to share).
pub fn fork_point(mine: &[Mark], theirs: &[Mark]) -> u64 {
    let theirs: HashMap<u64, u64> = theirs.iter().copied().collect();
    mine.iter()
        .filter(|(rev, id)| theirs.get(rev) == Some(id))
        .map(|(rev, _)| *rev)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_unknown() {
        assert!((0..100).all(|_| new_id() != 0));
    }

    #[test]
    fn a_store_behind_or_with_other_ids_has_parted() {
        let mine = [(1, 11), (2, 12), (3, 13)];
        assert!(!parted(3, &mine, &[(1, 11), (2, 12), (3, 13), (4, 14)], 4));
        assert!(
            !parted(3, &mine, &[(3, 13)], 3),
            "unknown older ids prove nothing"
        );
        assert!(parted(3, &mine, &[(1, 11)], 1), "Redis went back");
        assert!(
            parted(3, &mine, &[(1, 11), (2, 99), (3, 98)], 3),
            "same revision, other op"
        );
        assert!(parted(3, &[], &[], 2), "behind, even without ids");
    }

    #[test]
    fn stored_marks_skip_unknown_ids_and_stale_tips() {
        let entries = [(1, 11), (2, 0), (3, 13)];
        assert_eq!(
            marks(entries.into_iter(), Some((3, 13)), 3),
            [(1, 11), (3, 13)]
        );
        assert_eq!(
            marks(entries.into_iter(), Some((4, 14)), 4),
            [(1, 11), (3, 13), (4, 14)]
        );
        assert_eq!(
            marks(entries.into_iter(), Some((2, 12)), 4),
            [(1, 11), (3, 13)],
            "stale tip"
        );
    }

    #[test]
    fn each_entry_follows_the_one_before() {
        let batch = [(5, 15), (6, 16), (7, 0), (8, 18)];
        assert_eq!(predecessors(Some((4, 14)), &batch), [14, 15, 16, 0]);
        assert_eq!(predecessors(None, &batch)[0], 0);
        assert_eq!(predecessors(Some((3, 13)), &batch)[0], 0, "not adjacent");
    }

    #[test]
    fn a_contradiction_is_another_id_at_a_known_revision() {
        let mine = |rev: u64| (rev <= 5).then_some(rev + 10);
        assert_eq!(contradiction(&[(4, 14), (5, 15), (6, 99)], mine), None);
        assert_eq!(contradiction(&[(4, 14), (5, 0), (5, 99)], mine), Some(5));
    }

    #[test]
    fn the_fork_is_the_last_shared_mark() {
        let mine = [(1, 11), (2, 12), (3, 13)];
        assert_eq!(fork_point(&mine, &[(1, 11), (2, 12), (3, 98), (4, 97)]), 2);
        assert_eq!(fork_point(&mine, &[(1, 11)]), 1);
        assert_eq!(fork_point(&mine, &[(1, 90)]), 0);
        assert_eq!(fork_point(&[], &[(1, 11)]), 0);
    }
}
