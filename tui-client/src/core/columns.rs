//! Where display columns are on long lines, remembered between frames.
//!
//! A char's column depends on every char before it on its line (tabs, wide
//! chars), so finding the caret's column on a 200 KB minified line means
//! walking 200 KB, and the editor needs it on every frame and keystroke.
//! [`ColumnIndex`] keeps checkpoints, a glyph boundary and its column about
//! every [`SPACING`] chars, for the long lines it was asked about; a query
//! walks from the nearest checkpoint, so it costs at most [`SPACING`] chars
//! plus what it returns.
//!
//! An edit keeps every checkpoint before its first change, and moves those
//! after it by the change's length and by how far the first of them moved
//! (measured again, about two spacings' walk). That column shift holds up to
//! the first tab after the change, whose width absorbs it; the stretch with
//! that tab is measured again too, and the shift found there holds for the
//! rest of the line. So typing anywhere on a long line, yours or a
//! colleague's, re-measures a few stretches, never the line.
//!
//! Short lines are never indexed: walking them from their start is already
//! bounded.

use std::collections::HashMap;

use collab_protocol::{Component, Operation};
use ropey::{Rope, RopeSlice};

use super::text_layout as tl;

/// Chars between checkpoints, and the line length from which lines are
/// indexed.
pub const SPACING: usize = 1024;

/// Lines indexed at most; past that the index starts over (a screen shows
/// far fewer).
const MAX_LINES: usize = 256;

/// A glyph boundary on a line and its column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Checkpoint {
    /// Char offset within the line.
    offset: usize,
    /// Display column.
    col: usize,
    /// A tab lies between the previous checkpoint (or the line's start) and
    /// this one: a column shift before it may change its width.
    tab_before: bool,
}

/// The line's start, the checkpoint every line has.
const LINE_START: Checkpoint = Checkpoint {
    offset: 0,
    col: 0,
    tab_before: false,
};

/// Checkpoints of the long lines asked about; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct ColumnIndex {
    /// Line start (absolute char offset) → checkpoints after the line's
    /// start, ascending ([`LINE_START`] is implied).
    lines: HashMap<usize, Vec<Checkpoint>>,
    /// The document length the checkpoints describe: a document that
    /// changed without [`ColumnIndex::edit`] empties the index rather than
    /// answering from stale text.
    doc_len: usize,
}

impl ColumnIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets everything (the document was replaced).
    pub fn clear(&mut self) {
        self.lines.clear();
    }

    /// Number of lines indexed (for tests).
    pub fn indexed_lines(&self) -> usize {
        self.lines.len()
    }

    /// Carries the index over `op`, just applied to the document, which is
    /// now `doc` (see the module docs).
    pub fn edit(&mut self, op: &Operation, doc: &Rope) {
        let (first, last) = changed_span(op);
        let delta = op.target_len() as isize - op.base_len() as isize;
        self.doc_len = op.target_len();
        if self.lines.is_empty() {
            return;
        }
        let old = std::mem::take(&mut self.lines);
        for (start, points) in old {
            if last < start {
                // Wholly after the change, its line break before it intact.
                self.lines
                    .insert(start.saturating_add_signed(delta), points);
            } else if first >= start {
                // Text before the first change, and the line's start, are as
                // they were; a checkpoint at the change may no longer start
                // a glyph (an inserted mark attaches to the char before it).
                let (before, after): (Vec<_>, Vec<_>) =
                    points.into_iter().partition(|p| start + p.offset < first);
                let after: Vec<_> = after
                    .into_iter()
                    .filter(|p| start + p.offset >= last)
                    .collect();
                let moved = shift(doc, start, &before, &after, delta);
                self.lines.insert(start, [before, moved].concat());
            }
        }
    }

    /// Display column of the caret at char offset `pos`.
    pub fn column_of(&mut self, doc: &Rope, pos: usize) -> usize {
        let pos = pos.min(doc.len_chars());
        let line = tl::line_of(doc, pos);
        let target = pos - tl::line_start(doc, line);
        let near = self.near(doc, line, |p| p.offset <= target);
        tl::seek_offset(tl::line_content(doc, line), near.offset, near.col, target).1
    }

    /// The glyph of `line` covering display column `col`: its offset within
    /// the line and its column; past the line's end, the line's length and
    /// width.
    pub fn glyph_at_column(&mut self, doc: &Rope, line: usize, col: usize) -> (usize, usize) {
        let near = self.near(doc, line, |p| p.col <= col);
        tl::seek_column(tl::line_content(doc, line), near.offset, near.col, col)
    }

    /// The caret position on `line` for display column `col`: before the
    /// glyph covering `col`, or the line's end when `col` is past it.
    pub fn offset_at_column(&mut self, doc: &Rope, line: usize, col: usize) -> usize {
        tl::line_start(doc, line) + self.glyph_at_column(doc, line, col).0
    }

    /// The last checkpoint of `line` that is `before` what is wanted (the
    /// predicate holds for a prefix of the checkpoints), adding checkpoints
    /// up to there first; for a short line, its start.
    fn near(
        &mut self,
        doc: &Rope,
        line: usize,
        before: impl Fn(&Checkpoint) -> bool,
    ) -> Checkpoint {
        if doc.len_chars() != self.doc_len {
            self.lines.clear();
            self.doc_len = doc.len_chars();
        }
        if tl::line_len(doc, line) < SPACING {
            return LINE_START;
        }
        let start = tl::line_start(doc, line);
        if self.lines.len() >= MAX_LINES && !self.lines.contains_key(&start) {
            self.lines.clear();
        }
        let points = self.lines.entry(start).or_default();
        let content = tl::line_content(doc, line);
        // Grow until a checkpoint lies past what is wanted (or the line
        // ends): the one before it is then at most a spacing away.
        let mut last = points.last().copied().unwrap_or(LINE_START);
        while before(&last) {
            let next = step(content, &last, last.offset + SPACING);
            if next.offset <= last.offset {
                break; // the line's end
            }
            points.push(next);
            last = next;
        }
        let i = points.partition_point(|p| before(p));
        i.checked_sub(1).map_or(LINE_START, |i| points[i])
    }
}

/// Walks `line` from checkpoint `from` to the boundary at or before char
/// `target`: the next checkpoint.
fn step(line: RopeSlice<'_>, from: &Checkpoint, target: usize) -> Checkpoint {
    let stop = tl::walk_to_offset(line, from.offset, from.col, target);
    Checkpoint {
        offset: stop.offset,
        col: stop.col,
        tab_before: stop.crossed_tab,
    }
}

/// The checkpoints `after` a change (old offsets within the line starting
/// at `start`), moved into the changed text `doc`; none when the change
/// split the line before them. See the module docs for why measuring the
/// first of them, and the first stretch with a tab, is enough.
fn shift(
    doc: &Rope,
    start: usize,
    before: &[Checkpoint],
    after: &[Checkpoint],
    delta: isize,
) -> Vec<Checkpoint> {
    let line = tl::line_of(doc, start);
    if tl::line_start(doc, line) != start {
        return Vec::new();
    }
    let content = tl::line_content(doc, line);
    let mut prev = before.last().copied().unwrap_or(LINE_START);
    let mut moved = Vec::with_capacity(after.len());
    // The column shift, once measured; `None` until then.
    let mut shift: Option<isize> = None;
    for p in after {
        let Some(offset) = p.offset.checked_add_signed(delta) else {
            return moved;
        };
        let next = match shift {
            // Columns before this checkpoint moved by whole tab stops, or
            // no tab lies between: it moved by the same.
            Some(s) if s % tl::TAB_WIDTH as isize == 0 || !p.tab_before => Checkpoint {
                offset,
                col: p.col.saturating_add_signed(s),
                tab_before: p.tab_before,
            },
            _ => {
                let walked = step(content, &prev, offset);
                if walked.offset != offset {
                    return moved; // past the line's end now
                }
                shift = Some(walked.col as isize - p.col as isize);
                walked
            }
        };
        moved.push(next);
        prev = next;
    }
    moved
}

/// The first and last changed base offsets of `op`: everything before the
/// first, and from the last on, is retained.
fn changed_span(op: &Operation) -> (usize, usize) {
    let parts = op.components();
    let first = match parts.first() {
        Some(Component::Retain(n)) => *n,
        _ => 0,
    };
    let last = match parts.last() {
        Some(Component::Retain(n)) if parts.len() > 1 => op.base_len() - n,
        Some(Component::Retain(_)) => op.base_len(),
        _ => op.base_len(),
    };
    (first, last.max(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Columns by walking the whole line: the reference the index must match.
    fn reference_column(doc: &Rope, pos: usize) -> usize {
        let line = tl::line_of(doc, pos);
        let target = pos - tl::line_start(doc, line);
        tl::seek_offset(tl::line_content(doc, line), 0, 0, target).1
    }

    fn long_line() -> String {
        // Tabs, wide chars and marks spread over several checkpoints.
        let piece = "ab\tc界d e\u{301}f;";
        piece.repeat(SPACING * 3 / piece.chars().count() + 7)
    }

    #[test]
    fn columns_match_a_full_walk_anywhere_on_a_long_line() {
        let doc = Rope::from_str(&format!("short\n{}\nend", long_line()));
        let mut index = ColumnIndex::new();
        let len = doc.len_chars();
        for pos in (0..len).step_by(97).chain([len - 4, len]) {
            assert_eq!(
                index.column_of(&doc, pos),
                reference_column(&doc, pos),
                "{pos}"
            );
        }
        assert_eq!(index.indexed_lines(), 1, "only the long line is indexed");
        // Back and forth by column, too.
        let line = 1;
        for col in (0..5000).step_by(61) {
            let (offset, at) = index.glyph_at_column(&doc, line, col);
            let expected = tl::seek_column(tl::line_content(&doc, line), 0, 0, col);
            assert_eq!((offset, at), expected, "col {col}");
        }
    }

    #[test]
    fn edits_keep_the_index_true() {
        let mut doc = Rope::from_str(&format!("x\n{}\n{}", long_line(), long_line()));
        let mut index = ColumnIndex::new();
        let mut rng = 7u64;
        let mut next = |n: usize| {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (rng >> 33) as usize % n.max(1)
        };
        for step in 0..300 {
            let len = doc.len_chars();
            let at = next(len + 1);
            let del = next(3).min(len - at);
            let text = ["", "\t", "界", "\u{301}", "\n", "abc", "e"][next(7)];
            let op = Operation::replace(len, at, at + del, text).unwrap();
            op.apply(&mut doc).unwrap();
            index.edit(&op, &doc);
            for _ in 0..3 {
                let pos = next(doc.len_chars() + 1);
                assert_eq!(
                    index.column_of(&doc, pos),
                    reference_column(&doc, pos),
                    "step {step}, pos {pos}"
                );
            }
        }
    }

    #[test]
    fn a_document_changed_behind_its_back_is_not_trusted() {
        let mut doc = Rope::from_str(&long_line());
        let mut index = ColumnIndex::new();
        let end = doc.len_chars();
        let before = index.column_of(&doc, end);
        doc.insert(0, "\t\t");
        assert_eq!(index.column_of(&doc, end + 2), before + 8);
    }

    #[test]
    fn typing_at_the_end_keeps_the_checkpoints_before_it() {
        let mut doc = Rope::from_str(&long_line());
        let mut index = ColumnIndex::new();
        let end = doc.len_chars();
        index.column_of(&doc, end);
        let kept = index.lines[&0].len();
        assert!(kept >= 2);
        let op = Operation::replace(end, end, end, "x").unwrap();
        op.apply(&mut doc).unwrap();
        index.edit(&op, &doc);
        assert_eq!(index.lines[&0].len(), kept);
    }

    #[test]
    fn typing_early_in_a_long_line_keeps_the_checkpoints_after_it() {
        for line in [long_line(), "x".repeat(SPACING * 5)] {
            let mut doc = Rope::from_str(&line);
            let mut index = ColumnIndex::new();
            let end = doc.len_chars();
            let col = index.column_of(&doc, end);
            let kept = index.lines[&0].len();
            assert!(kept >= 3);
            // A colleague types near the start: the checkpoints after it move.
            for (i, text) in ["x", "界", "\t", "ab"].into_iter().enumerate() {
                let len = doc.len_chars();
                let op = Operation::replace(len, 5 + i, 5 + i, text).unwrap();
                op.apply(&mut doc).unwrap();
                index.edit(&op, &doc);
                assert_eq!(index.lines[&0].len(), kept, "{text:?}");
                let end = doc.len_chars();
                assert_eq!(index.column_of(&doc, end), reference_column(&doc, end));
            }
            assert!(index.column_of(&doc, doc.len_chars()) > col);
        }
    }
}
