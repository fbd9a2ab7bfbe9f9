//! Where display columns are on long lines, remembered between frames.
//!
//! A char's column depends on every char before it on its line (tabs, wide
//! chars), so finding the caret's column on a 200 KB minified line means
//! walking 200 KB, and the editor needs it on every frame and keystroke.
//! [`ColumnIndex`] keeps checkpoints, a glyph boundary and its column about
//! every [`SPACING`] chars, for the long lines it was asked about; a query
//! walks from the nearest checkpoint, so it costs at most [`SPACING`] chars
//! plus what it returns. An edit keeps every checkpoint before its first
//! change and moves those of lines wholly after it, so typing on a long line
//! re-measures one stretch, not the line.
//!
//! Short lines are never indexed: walking them from their start is already
//! bounded.

use std::collections::HashMap;

use collab_protocol::{Component, Operation};
use ropey::Rope;

use super::text_layout::{self as tl};

/// Chars between checkpoints, and the line length from which lines are
/// indexed.
pub const SPACING: usize = 1024;

/// Lines indexed at most; past that the index starts over (a screen shows
/// far fewer).
const MAX_LINES: usize = 256;

/// Checkpoints of the long lines asked about; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct ColumnIndex {
    /// Line start (absolute char offset) → checkpoints after the line's
    /// start, `(offset within the line, column)`, ascending. The line's
    /// start itself, `(0, 0)`, is implied.
    lines: HashMap<usize, Vec<(usize, usize)>>,
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

    /// Carries the index over `op`, just applied to the document.
    pub fn edit(&mut self, op: &Operation) {
        let (first, last) = changed_span(op);
        let delta = op.target_len() as isize - op.base_len() as isize;
        self.doc_len = op.target_len();
        if self.lines.is_empty() {
            return;
        }
        let old = std::mem::take(&mut self.lines);
        for (start, mut points) in old {
            if last < start {
                // Wholly after the change, its line break before it intact.
                self.lines
                    .insert(start.saturating_add_signed(delta), points);
            } else if first >= start {
                // Text before the first change, and the line's start, are as
                // they were; a checkpoint at the change may no longer start
                // a glyph (an inserted mark attaches to the char before it).
                points.retain(|&(offset, _)| start + offset < first);
                self.lines.insert(start, points);
            }
        }
    }

    /// Display column of the caret at char offset `pos`.
    pub fn column_of(&mut self, doc: &Rope, pos: usize) -> usize {
        let pos = pos.min(doc.len_chars());
        let line = tl::line_of(doc, pos);
        let target = pos - tl::line_start(doc, line);
        let (offset, col) = self.near_offset(doc, line, target);
        tl::seek_offset(tl::line_content(doc, line), offset, col, target).1
    }

    /// The glyph of `line` covering display column `col`: its offset within
    /// the line and its column; past the line's end, the line's length and
    /// width.
    pub fn glyph_at_column(&mut self, doc: &Rope, line: usize, col: usize) -> (usize, usize) {
        let (offset, at) = self.near_column(doc, line, col);
        tl::seek_column(tl::line_content(doc, line), offset, at, col)
    }

    /// The caret position on `line` for display column `col`: before the
    /// glyph covering `col`, or the line's end when `col` is past it.
    pub fn offset_at_column(&mut self, doc: &Rope, line: usize, col: usize) -> usize {
        tl::line_start(doc, line) + self.glyph_at_column(doc, line, col).0
    }

    /// The checkpoints of a long line, or `None` for a short one.
    fn points(&mut self, doc: &Rope, line: usize) -> Option<(usize, &mut Vec<(usize, usize)>)> {
        if doc.len_chars() != self.doc_len {
            self.lines.clear();
            self.doc_len = doc.len_chars();
        }
        if tl::line_len(doc, line) < SPACING {
            return None;
        }
        let start = tl::line_start(doc, line);
        if self.lines.len() >= MAX_LINES && !self.lines.contains_key(&start) {
            self.lines.clear();
        }
        Some((start, self.lines.entry(start).or_default()))
    }

    /// A boundary at or before char `target` of `line`, at most about
    /// [`SPACING`] chars before it, with its column.
    fn near_offset(&mut self, doc: &Rope, line: usize, target: usize) -> (usize, usize) {
        let content = tl::line_content(doc, line);
        let Some((_, points)) = self.points(doc, line) else {
            return (0, 0);
        };
        extend(points, content, |&(offset, _)| offset + SPACING <= target);
        let i = points.partition_point(|&(offset, _)| offset <= target);
        i.checked_sub(1).map_or((0, 0), |i| points[i])
    }

    /// A boundary whose column is at most `col`, at most about [`SPACING`]
    /// chars before the glyph covering it.
    fn near_column(&mut self, doc: &Rope, line: usize, col: usize) -> (usize, usize) {
        let content = tl::line_content(doc, line);
        let Some((_, points)) = self.points(doc, line) else {
            return (0, 0);
        };
        extend(points, content, |&(_, at)| at <= col);
        let i = points.partition_point(|&(_, at)| at <= col);
        i.checked_sub(1).map_or((0, 0), |i| points[i])
    }
}

/// Adds checkpoints to `points` while the last one satisfies `short` (is
/// still before what is wanted) and the line goes on.
fn extend(
    points: &mut Vec<(usize, usize)>,
    line: ropey::RopeSlice<'_>,
    short: impl Fn(&(usize, usize)) -> bool,
) {
    let mut last = points.last().copied().unwrap_or((0, 0));
    while short(&last) {
        let next = tl::seek_offset(line, last.0, last.1, last.0 + SPACING);
        if next.0 <= last.0 {
            break; // the line's end
        }
        points.push(next);
        last = next;
    }
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
            index.edit(&op);
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
        index.edit(&op);
        assert_eq!(index.lines[&0].len(), kept);
    }
}
