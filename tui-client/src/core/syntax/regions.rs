//! The document's parse as a row of independent regions, each with a tree
//! of its own text, so that reparsing after an edit costs what the edited
//! region holds, not what the document holds.
//!
//! Why: tree-sitter's incremental reparse reuses the untouched subtrees, but
//! it still steps over every top-level node of the tree (measured: about
//! 12 ms per keystroke on a 50,000-line Rust file of 9,000 top-level items
//! and comments, the same wherever the edit is). A region holds a few
//! dozen top-level items, so its reparse takes tens of microseconds.
//!
//! Regions split the text only where the parser is back at the top level:
//! between two top-level nodes of a parse, the first of them free of errors.
//! There a parse of the text after the boundary starts in the same state as
//! the parse of the whole document would, so highlighting is the same.
//! When an edit leaves a region's last node with an error (an unclosed
//! comment or string that would run on into the next region, or just
//! unfinished typing), the region takes in the next one and reparses, until
//! its end is clean again; a region grown past [`Sizes::max`] splits at a
//! boundary near its middle.
//!
//! Regions are built lazily from the document's start, only as far as the
//! screen needs: opening a 1 MiB file at its top parses its first window.

use std::ops::Range;

use ropey::Rope;
use tree_sitter::{InputEdit, Node, Parser, Point, Tree};

/// How large regions are.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Bytes parsed at a time when building (a region is about this long).
    pub window: usize,
    /// A region longer than this is split.
    pub max: usize,
}

impl Default for Sizes {
    fn default() -> Self {
        // Measured on a 50,000-line Rust file: a keystroke inside an
        // identifier reparses a 4 KB region in about 25 µs, a 16 KB one in
        // about 80 µs; one that makes a syntax error costs the parser's
        // error recovery, about 0.5 ms, whatever the size.
        Self {
            window: 4 * 1024,
            max: 12 * 1024,
        }
    }
}

/// One stretch of the document with the tree of its text alone.
pub struct Region {
    /// First byte, in the document.
    pub start: usize,
    /// Bytes.
    pub len: usize,
    /// The tree of the region's text (region-local offsets and points).
    pub tree: Tree,
    /// Edited since the tree was parsed.
    stale: bool,
    /// An edit touched the region's first top-level node: the region
    /// before must be checked to still hand over here.
    head_changed: bool,
}

impl Region {
    fn new(start: usize, len: usize, tree: Tree) -> Self {
        Self {
            start,
            len,
            tree,
            stale: false,
            head_changed: false,
        }
    }

    /// The region's bytes in the document.
    pub fn range(&self) -> Range<usize> {
        self.start..self.start + self.len
    }
}

/// The regions, covering the document from its start up to where building
/// got (the rest is not parsed yet).
#[derive(Default)]
pub struct Regions {
    regions: Vec<Region>,
    sizes: Sizes,
}

impl Regions {
    /// No regions, built with `sizes`.
    pub fn new(sizes: Sizes) -> Self {
        Self {
            regions: Vec::new(),
            sizes,
        }
    }

    /// Forgets every tree (the document was replaced).
    pub fn clear(&mut self) {
        self.regions.clear();
    }

    /// The regions built so far, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Region> {
        self.regions.iter()
    }

    /// Where the built regions end.
    pub fn built_end(&self) -> usize {
        self.regions.last().map_or(0, |r| r.start + r.len)
    }

    /// Follows one edit of the document (in document coordinates, as
    /// tree-sitter applies a sequence of them: one after another); `new`
    /// is the text after the whole operation (everything before the edit
    /// is the same there).
    pub fn edit(&mut self, edit: &InputEdit, new: &Rope) {
        if edit.start_byte >= self.built_end() {
            return; // in the part not parsed yet
        }
        let k = self
            .regions
            .partition_point(|r| r.start <= edit.start_byte)
            .saturating_sub(1);
        let region = &mut self.regions[k];
        if edit.old_end_byte > region.start + region.len {
            // Over a boundary (a large deletion or replacement): the
            // regions from here on are built again when needed.
            self.regions.truncate(k);
            return;
        }
        let origin = point_at(new, region.start);
        let local = InputEdit {
            start_byte: edit.start_byte - region.start,
            old_end_byte: edit.old_end_byte - region.start,
            new_end_byte: edit.new_end_byte - region.start,
            start_position: local_point(edit.start_position, origin),
            old_end_position: local_point(edit.old_end_position, origin),
            new_end_position: local_point(edit.new_end_position, origin),
        };
        let first_end = region.tree.root_node().child(0).map_or(0, |c| c.end_byte());
        region.head_changed |= local.start_byte <= first_end;
        region.tree.edit(&local);
        region.len = region.len + edit.new_end_byte - edit.old_end_byte;
        region.stale = true;
        for r in &mut self.regions[k + 1..] {
            r.start = r.start + edit.new_end_byte - edit.old_end_byte;
        }
    }

    /// Reparses the edited regions; one whose end is no longer clean takes
    /// in what follows, one grown too long splits.
    pub fn refresh(&mut self, parser: &mut Parser, rope: &Rope) {
        let mut k = 0;
        while k < self.regions.len() {
            if self.regions[k].stale {
                self.reparse(k, parser, rope);
                self.settle(k, parser, rope);
            }
            k += 1;
        }
    }

    /// Builds regions until they cover byte `want` (or the document).
    pub fn build_to(&mut self, want: usize, parser: &mut Parser, rope: &Rope) {
        let len = rope.len_bytes();
        let want = want.min(len);
        while self.built_end() < want || (self.regions.is_empty() && len == 0) {
            let start = self.built_end();
            let Some(region) = self.build_one(start, parser, rope) else {
                return;
            };
            self.regions.push(region);
            let k = self.regions.len() - 1;
            if k > 0 && !self.hands_over(k - 1, parser, rope) {
                self.grow(k - 1, parser, rope);
                self.settle(k - 1, parser, rope);
            }
            if start == len {
                return;
            }
        }
    }

    /// Parses the region starting at `start`, about a window long. Its end
    /// is first looked for in the text, where top-level items usually
    /// start: a line at column 0 after a blank line, then any line at column
    /// 0. A candidate is taken when the parse of the text up to it ends
    /// cleanly (an unclosed string or comment would not). Without one (a
    /// single minified line), the cut comes from the parse of the window: a
    /// boundary between top-level nodes before the first one with an error
    /// (the window's end cuts the last one short). A window without any
    /// grows until it has one or reaches the document's end.
    fn build_one(&self, start: usize, parser: &mut Parser, rope: &Rope) -> Option<Region> {
        let len = rope.len_bytes();
        let mut window = self.sizes.window;
        loop {
            let end = snap_to_char(rope, (start + window).min(len));
            if end == len {
                let tree = parse(parser, rope, start..end, None)?;
                return Some(Region::new(start, end - start, tree));
            }
            let from = start + window / 4;
            for blank_before in [true, false] {
                if let Some(cut) = line_candidate(rope, from, end, blank_before) {
                    let tree = parse(parser, rope, start..cut, None)?;
                    if clean_end(&tree.root_node()) {
                        return Some(Region::new(start, cut - start, tree));
                    }
                }
            }
            let mut tree = parse(parser, rope, start..end, None)?;
            if let Some(cut) = node_cut(&tree.root_node()) {
                // Drop what follows the cut; the reparse reuses the rest.
                let origin = point_at(rope, start);
                let at_cut = local_point(point_at(rope, start + cut), origin);
                tree.edit(&InputEdit {
                    start_byte: cut,
                    old_end_byte: end - start,
                    new_end_byte: cut,
                    start_position: at_cut,
                    old_end_position: local_point(point_at(rope, end), origin),
                    new_end_position: at_cut,
                });
                let tree = parse(parser, rope, start..start + cut, Some(&tree))?;
                return Some(Region::new(start, cut, tree));
            }
            window *= 2;
        }
    }

    fn reparse(&mut self, k: usize, parser: &mut Parser, rope: &Rope) {
        let region = &mut self.regions[k];
        match parse(parser, rope, region.range(), Some(&region.tree)) {
            Some(tree) => {
                region.tree = tree;
                region.stale = false;
            }
            None => self.regions.truncate(k),
        }
    }

    /// After region `k` was reparsed: the region before must still hand
    /// over at its start (when its first node changed), and it must hand
    /// over to the next: its last node free of errors, and the next
    /// region's first node parsed the same after it as alone. A region
    /// that does not takes in the next one (or, the last one built, more
    /// of the text not parsed yet) and is checked again. One grown longer
    /// than allowed splits.
    fn settle(&mut self, k: usize, parser: &mut Parser, rope: &Rope) {
        let mut k = k;
        let head_changed =
            k < self.regions.len() && std::mem::take(&mut self.regions[k].head_changed);
        if k > 0 && head_changed && !self.hands_over(k - 1, parser, rope) {
            k -= 1;
            self.grow(k, parser, rope);
        }
        while k < self.regions.len() {
            let clean = clean_end(&self.regions[k].tree.root_node());
            let hands_over =
                clean && (k + 1 == self.regions.len() || self.hands_over(k, parser, rope));
            if hands_over || !self.grow(k, parser, rope) {
                break;
            }
        }
        if k < self.regions.len() && self.regions[k].len > self.sizes.max {
            self.split(k, parser, rope);
        }
    }

    /// True when the next region's first top-level node comes out the same
    /// when region `k`'s parse goes on into it: the parser is back at the
    /// top level at the boundary, as a parse of the whole text would be.
    fn hands_over(&self, k: usize, parser: &mut Parser, rope: &Rope) -> bool {
        let (region, next) = (&self.regions[k], &self.regions[k + 1]);
        let Some(first) = next.tree.root_node().child(0) else {
            return true;
        };
        let end = region.start + region.len;
        let extra = first.end_byte();
        let origin = point_at(rope, region.start);
        let at_end = local_point(point_at(rope, end), origin);
        let mut probe = region.tree.clone();
        probe.edit(&InputEdit {
            start_byte: region.len,
            old_end_byte: region.len,
            new_end_byte: region.len + extra,
            start_position: at_end,
            old_end_position: at_end,
            new_end_position: local_point(point_at(rope, end + extra), origin),
        });
        let Some(probe) = parse(parser, rope, region.start..end + extra, Some(&probe)) else {
            return false;
        };
        let root = probe.root_node();
        let n = root.child_count() as u32;
        n > 0
            && root.child(n - 1).is_some_and(|last| {
                last.kind_id() == first.kind_id()
                    && last.start_byte() == region.len + first.start_byte()
                    && last.end_byte() == region.len + extra
                    && last.has_error() == first.has_error()
            })
    }

    /// Region `k` takes in the next region (the last one built: another
    /// window of the text not parsed yet) and is reparsed; false when there
    /// is nothing to take in.
    fn grow(&mut self, k: usize, parser: &mut Parser, rope: &Rope) -> bool {
        let len = rope.len_bytes();
        let end = self.regions[k].start + self.regions[k].len;
        let grow_to = match self.regions.get(k + 1) {
            Some(next) => next.start + next.len,
            None if end < len => snap_to_char(rope, (end + self.sizes.window).min(len)),
            None => return false,
        };
        if k + 1 < self.regions.len() {
            self.regions.remove(k + 1);
        }
        let region = &mut self.regions[k];
        let origin = point_at(rope, region.start);
        let at_end = local_point(point_at(rope, end), origin);
        region.tree.edit(&InputEdit {
            start_byte: region.len,
            old_end_byte: region.len,
            new_end_byte: grow_to - region.start,
            start_position: at_end,
            old_end_position: at_end,
            new_end_position: local_point(point_at(rope, grow_to), origin),
        });
        region.len = grow_to - region.start;
        self.reparse(k, parser, rope);
        true
    }

    /// Cuts region `k` in two at a clean boundary near its middle.
    fn split(&mut self, k: usize, parser: &mut Parser, rope: &Rope) {
        let region = &self.regions[k];
        let Some(cut) = middle_cut(&region.tree.root_node(), region.len / 2)
            .filter(|&cut| cut > 0 && cut < region.len)
        else {
            return;
        };
        let (start, len) = (region.start, region.len);
        let origin = point_at(rope, start);
        let at = |byte: usize| local_point(point_at(rope, start + byte), origin);
        let mut left = region.tree.clone();
        left.edit(&InputEdit {
            start_byte: cut,
            old_end_byte: len,
            new_end_byte: cut,
            start_position: at(cut),
            old_end_position: at(len),
            new_end_position: at(cut),
        });
        let mut right = region.tree.clone();
        right.edit(&InputEdit {
            start_byte: 0,
            old_end_byte: cut,
            new_end_byte: 0,
            start_position: Point::new(0, 0),
            old_end_position: at(cut),
            new_end_position: Point::new(0, 0),
        });
        let left = parse(parser, rope, start..start + cut, Some(&left));
        let right = parse(parser, rope, start + cut..start + len, Some(&right));
        if let (Some(left), Some(right)) = (left, right) {
            self.regions[k] = Region::new(start, cut, left);
            self.regions
                .insert(k + 1, Region::new(start + cut, len - cut, right));
        }
    }
}

/// Parses the document's bytes `range` alone (reusing `old`, edited to
/// match), reading the rope's chunks in place.
fn parse(
    parser: &mut Parser,
    rope: &Rope,
    range: Range<usize>,
    old: Option<&Tree>,
) -> Option<Tree> {
    let mut read = |byte: usize, _| -> &[u8] {
        let at = range.start + byte;
        if at >= range.end {
            return &[];
        }
        let (chunk, chunk_start, _, _) = rope.chunk_at_byte(at);
        let bytes = &chunk.as_bytes()[at - chunk_start..];
        &bytes[..bytes.len().min(range.end - at)]
    };
    parser.parse_with_options(&mut read, old, None)
}

/// True when the last top-level node is free of errors: nothing in the
/// region runs on past its end.
fn clean_end(root: &Node) -> bool {
    if root.is_error() {
        return false;
    }
    match root.child_count() {
        0 => !root.has_error(),
        n => root
            .child(n as u32 - 1)
            .is_some_and(|last| !last.has_error() && !last.is_missing()),
    }
}

/// The start of the last line in `from..to` (document bytes) at column 0
/// with something other than a closing bracket on it, and, with
/// `blank_before`, a blank line before it.
fn line_candidate(rope: &Rope, from: usize, to: usize, blank_before: bool) -> Option<usize> {
    let first = rope.byte_to_line(from) + 1;
    let last = rope.byte_to_line(to);
    let blank = |line: usize| rope.line(line).chars().all(char::is_whitespace);
    (first..=last).rev().find_map(|line| {
        let at = rope.line_to_byte(line);
        let c = rope.line(line).chars().next()?;
        let starts_item = !c.is_whitespace() && !matches!(c, '}' | ')' | ']');
        (at > from && at < to && starts_item && (!blank_before || blank(line - 1))).then_some(at)
    })
}

/// A cut from the parse of a window: the start of a top-level node that
/// is not the last one, after which every node before it is free of errors
/// (the window's end cuts the last node short, and what error recovery
/// makes of it may be several nodes). Region-local bytes.
fn node_cut(root: &Node) -> Option<usize> {
    if root.is_error() {
        return None;
    }
    let n = root.child_count() as u32;
    let first_error = (0..n)
        .find(|&i| {
            root.child(i)
                .is_some_and(|c| c.has_error() || c.is_missing())
        })
        .unwrap_or(n);
    let last = first_error.min(n.saturating_sub(2));
    (1..=last)
        .rev()
        .find_map(|i| root.child(i).map(|c| c.start_byte()).filter(|&b| b > 0))
}

/// The clean cut nearest to byte `near` (between two top-level nodes, the
/// first free of errors), if any.
fn middle_cut(root: &Node, near: usize) -> Option<usize> {
    let n = root.child_count() as u32;
    (1..n)
        .filter_map(|i| {
            let before = root.child(i - 1)?;
            let at = root.child(i)?;
            (!before.has_error() && !before.is_missing() && at.start_byte() > 0)
                .then(|| at.start_byte())
        })
        .min_by_key(|b| b.abs_diff(near))
}

/// The (row, byte column) of a document byte.
fn point_at(rope: &Rope, byte: usize) -> Point {
    let byte = byte.min(rope.len_bytes());
    let row = rope.byte_to_line(byte);
    Point::new(row, byte - rope.line_to_byte(row))
}

/// A document point relative to a region starting at `origin`.
fn local_point(p: Point, origin: Point) -> Point {
    if p.row == origin.row {
        Point::new(0, p.column.saturating_sub(origin.column))
    } else {
        Point::new(p.row - origin.row, p.column)
    }
}

/// `byte` moved back to a char boundary of the rope.
fn snap_to_char(rope: &Rope, byte: usize) -> usize {
    rope.char_to_byte(rope.byte_to_char(byte))
}
