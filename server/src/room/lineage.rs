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
//! histories parted. This module holds the pure part: ids and tips in their
//! stored form, and where two histories part.

use std::collections::HashMap;

/// A revision and the id of the operation that produced it.
pub type Mark = (u64, u64);

/// A fresh operation id (never 0, which stands for "unknown": entries
/// written before ids existed, or a room's start).
pub fn new_id() -> u64 {
    rand::random::<u64>() | 1
}

/// An id as stored: 16 hex digits.
pub fn id_text(id: u64) -> String {
    format!("{id:016x}")
}

/// An id from its stored form; 0 when absent or unreadable.
pub fn parse_id(text: Option<&str>) -> u64 {
    text.and_then(|t| u64::from_str_radix(t, 16).ok())
        .unwrap_or(0)
}

/// A tip as stored: `"REV:ID"`.
pub fn tip_text((revision, id): Mark) -> String {
    format!("{revision}:{}", id_text(id))
}

/// A tip from its stored form.
pub fn parse_tip(text: &str) -> Option<Mark> {
    let (rev, id) = text.split_once(':')?;
    let id = parse_id(Some(id));
    (id != 0).then_some((rev.parse().ok()?, id))
}

/// The marks a stored history holds: its entries' (revision, stored id),
/// and its tip when that is the tip of `revision`. Unknown ids are left out.
pub fn marks<'a>(
    entries: impl Iterator<Item = (u64, Option<&'a str>)>,
    tip: Option<&str>,
    revision: u64,
) -> Vec<Mark> {
    let mut marks: Vec<Mark> = entries
        .map(|(rev, id)| (rev, parse_id(id)))
        .filter(|(_, id)| *id != 0)
        .collect();
    if let Some(tip) = tip.and_then(parse_tip).filter(|t| t.0 == revision) {
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
    fn ids_and_tips_round_trip() {
        let id = new_id();
        assert_ne!(id, 0);
        assert_eq!(parse_id(Some(&id_text(id))), id);
        assert_eq!(parse_id(None), 0);
        assert_eq!(parse_id(Some("zz")), 0);
        assert_eq!(parse_tip(&tip_text((42, id))), Some((42, id)));
        assert_eq!(parse_tip("42"), None);
        assert_eq!(parse_tip("x:00000000000000ab"), None);
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
        let entries = [(1, Some("0b")), (2, None), (3, Some("0d"))];
        assert_eq!(
            marks(entries.into_iter(), Some("3:0d"), 3),
            [(1, 11), (3, 13)]
        );
        assert_eq!(
            marks(entries.into_iter(), Some("4:0e"), 4),
            [(1, 11), (3, 13), (4, 14)]
        );
        assert_eq!(
            marks(entries.into_iter(), Some("2:0c"), 4),
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
