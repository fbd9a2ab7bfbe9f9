//! Display geometry of a document line in a terminal: which cells each char
//! occupies. Tabs stop every [`TAB_WIDTH`] columns, wide chars (CJK, most
//! emoji) take two cells, and a glyph is a grapheme cluster as terminals
//! draw it: zero-width chars (combining marks, joiners, variation
//! selectors) and emoji skin tones attach to the char before them, an emoji
//! after a zero-width joiner joins the one before it (👩‍💻 is one glyph of
//! two cells), and two regional indicators make one flag. Everything that converts between char
//! offsets and screen columns walks lines with [`Glyphs`], so the caret, the
//! renderer and mouse clicks always agree.
//!
//! Nothing here lays out a whole line unless asked to: a glyph walk starts at
//! any glyph boundary whose column is known (the line's start, or a
//! checkpoint of [`super::columns::ColumnIndex`]) and stops when the caller
//! has what it needs, so a 200 KB minified line costs what its visible part
//! costs.

use ropey::{Rope, RopeSlice};
use unicode_width::UnicodeWidthChar;

/// Columns between tab stops.
pub const TAB_WIDTH: usize = 4;

/// What a glyph draws in its first cell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Symbol {
    /// Blanks (a tab).
    Blank,
    /// A control char, which would move the terminal's cursor: a stand-in.
    StandIn,
    /// One char.
    Char(char),
    /// A char with the zero-width chars attached to it.
    Cluster(String),
}

impl Symbol {
    /// The text of the first cell (`buf` holds a single char's encoding).
    pub fn as_str<'a>(&'a self, buf: &'a mut [u8; 4]) -> &'a str {
        match self {
            Symbol::Blank => " ",
            Symbol::StandIn => "\u{FFFD}",
            Symbol::Char(c) => c.encode_utf8(buf),
            Symbol::Cluster(s) => s,
        }
    }
}

/// One drawn unit of a line: a char plus any zero-width chars attached to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glyph {
    /// Char offset of its first char within the line.
    pub start: usize,
    /// Char offset just past its last char within the line.
    pub end: usize,
    /// Display column of its first cell.
    pub col: usize,
    /// Cells it occupies (0 never happens: a lone mark gets one cell).
    pub width: usize,
    /// What to draw in its first cell.
    pub symbol: Symbol,
}

/// True for chars that take no cell of their own.
pub fn is_zero_width(c: char) -> bool {
    c != '\t' && !c.is_control() && c.width() == Some(0)
}

/// Zero-width joiner.
const ZWJ: char = '\u{200D}';

/// True for emoji skin-tone modifiers, which attach to the emoji before.
fn is_emoji_modifier(c: char) -> bool {
    ('\u{1F3FB}'..='\u{1F3FF}').contains(&c)
}

/// True for regional indicators (two make a flag).
fn is_regional_indicator(c: char) -> bool {
    ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)
}

/// Emoji and pictographs that a zero-width joiner joins (Unicode's
/// Extended_Pictographic, by its blocks).
fn is_pictographic(c: char) -> bool {
    matches!(c as u32,
        0x00A9 | 0x00AE | 0x203C | 0x2049 | 0x2122 | 0x2139 | 0x2194..=0x21AA
        | 0x231A..=0x23FF | 0x24C2 | 0x25AA..=0x27BF | 0x2934 | 0x2935
        | 0x2B05..=0x2B55 | 0x3030 | 0x303D | 0x3297 | 0x3299
        | 0x1F000..=0x1F0FF | 0x1F10D..=0x1F1AD | 0x1F201..=0x1F64F
        | 0x1F680..=0x1FAFF | 0x1FC00..=0x1FFFD)
        && !is_regional_indicator(c)
        && !is_emoji_modifier(c)
}

/// A char that may belong to the glyph of the char before it, depending on
/// what precedes (a boundary search walks back over these).
fn may_continue(c: char) -> bool {
    is_zero_width(c) || is_emoji_modifier(c) || is_regional_indicator(c) || is_pictographic(c)
}

/// What decides whether the next char joins the glyph being read.
#[derive(Clone, Copy, Debug)]
struct Cluster {
    pictographic: bool,
    after_zwj: bool,
    /// A lone regional indicator, waiting for its pair.
    open_flag: bool,
    /// Emoji presentation asked for (VS16) or a flag: two cells.
    wide: bool,
}

impl Cluster {
    fn new(base: char) -> Self {
        let ascii = base.is_ascii();
        Self {
            pictographic: !ascii && is_pictographic(base),
            after_zwj: false,
            open_flag: !ascii && is_regional_indicator(base),
            wide: false,
        }
    }

    /// Takes `c` into the glyph if it belongs there.
    fn extend(&mut self, c: char) -> bool {
        if c.is_ascii() {
            return false; // the common case, and never part of a cluster
        }
        let joins = is_zero_width(c)
            || is_emoji_modifier(c)
            || (self.after_zwj && self.pictographic && is_pictographic(c))
            || (self.open_flag && is_regional_indicator(c));
        if joins {
            self.wide |= (c == '\u{FE0F}' && self.pictographic) || self.open_flag;
            self.open_flag = false;
            self.after_zwj = c == ZWJ;
        }
        joins
    }

    /// The glyph's width, its base char being `base_width` wide.
    fn width(&self, base_width: usize) -> usize {
        if self.wide {
            2
        } else {
            base_width
        }
    }
}

/// True for the chars ropey treats as ending a line.
fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// The glyphs of a line's content from a glyph boundary on, lazily.
pub struct Glyphs<'a> {
    chars: std::iter::Peekable<ropey::iter::Chars<'a>>,
    offset: usize,
    col: usize,
}

impl<'a> Glyphs<'a> {
    /// The glyphs of `line` (content only, no line break) starting at char
    /// `offset`, which must be a glyph boundary whose column is `col`.
    pub fn new(line: RopeSlice<'a>, offset: usize, col: usize) -> Self {
        let offset = offset.min(line.len_chars());
        Self {
            chars: line.chars_at(offset).peekable(),
            offset,
            col,
        }
    }

    /// The offset and column the next glyph starts at (past the end: the
    /// line's length and width).
    pub fn position(&self) -> (usize, usize) {
        (self.offset, self.col)
    }
}

impl Iterator for Glyphs<'_> {
    type Item = Glyph;

    fn next(&mut self) -> Option<Glyph> {
        let c = self.chars.next()?;
        let start = self.offset;
        let mut end = start + 1;
        // A mark with nothing before it on the line starts a glyph of its
        // own (a cell, below); marks after any char attach to it.
        let (width, mut symbol) = match c {
            '\t' => (TAB_WIDTH - self.col % TAB_WIDTH, Symbol::Blank),
            c if c.is_control() => (1, Symbol::StandIn),
            c => (c.width().unwrap_or(1).max(1), Symbol::Char(c)),
        };
        // Marks on a tab or a stand-in would be drawn on nothing: only counted.
        let drawn = matches!(symbol, Symbol::Char(_));
        let mut cluster = Cluster::new(c);
        while let Some(&m) = self.chars.peek() {
            if !cluster.extend(m) {
                break;
            }
            self.chars.next();
            end += 1;
            if drawn {
                symbol = match symbol {
                    Symbol::Char(c) => Symbol::Cluster(format!("{c}{m}")),
                    Symbol::Cluster(mut s) => {
                        s.push(m);
                        Symbol::Cluster(s)
                    }
                    other => other,
                };
            }
        }
        let width = if drawn { cluster.width(width) } else { width };
        let glyph = Glyph {
            start,
            end,
            col: self.col,
            width,
            symbol,
        };
        self.offset = end;
        self.col += width;
        Some(glyph)
    }
}

/// Walks `line` from the boundary (`offset`, `col`) to the glyph holding char
/// `target` (or the end); returns that glyph's start and column. Allocates
/// nothing.
pub fn seek_offset(
    line: RopeSlice<'_>,
    offset: usize,
    col: usize,
    target: usize,
) -> (usize, usize) {
    let stop = walk_to_offset(line, offset, col, target);
    (stop.offset, stop.col)
}

/// Where a walk stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stop {
    /// The glyph boundary reached.
    pub offset: usize,
    /// Its column.
    pub col: usize,
    /// Whether the walk passed a tab (whose width depends on its column).
    pub crossed_tab: bool,
}

/// [`seek_offset`], also telling whether it passed a tab.
pub fn walk_to_offset(line: RopeSlice<'_>, offset: usize, col: usize, target: usize) -> Stop {
    let mut walk = Walk::new(line, offset, col);
    while let Some((end, width)) = walk.peek_glyph() {
        if end > target {
            break;
        }
        walk.advance(end, width);
    }
    Stop {
        offset: walk.offset,
        col: walk.col,
        crossed_tab: walk.crossed_tab,
    }
}

/// Walks `line` from the boundary (`offset`, `col`) to the glyph covering
/// display column `target`; returns its start and column, or the line's end
/// and width when `target` is past it. Allocates nothing.
pub fn seek_column(
    line: RopeSlice<'_>,
    offset: usize,
    col: usize,
    target: usize,
) -> (usize, usize) {
    let mut walk = Walk::new(line, offset, col);
    while let Some((end, width)) = walk.peek_glyph() {
        if walk.col + width > target {
            break;
        }
        walk.advance(end, width);
    }
    (walk.offset, walk.col)
}

/// The allocation-free core of [`seek_offset`] and [`seek_column`]: glyph
/// extents without their symbols.
struct Walk<'a> {
    line: RopeSlice<'a>,
    chars: std::iter::Peekable<ropey::iter::Chars<'a>>,
    offset: usize,
    col: usize,
    /// The glyph peeked but not yet passed: (end offset, width).
    peeked: Option<(usize, usize)>,
    /// The peeked glyph is a tab.
    peeked_tab: bool,
    /// A tab was passed.
    crossed_tab: bool,
}

impl<'a> Walk<'a> {
    fn new(line: RopeSlice<'a>, offset: usize, col: usize) -> Self {
        let offset = offset.min(line.len_chars());
        Self {
            line,
            chars: line.chars_at(offset).peekable(),
            offset,
            col,
            peeked: None,
            peeked_tab: false,
            crossed_tab: false,
        }
    }

    fn peek_glyph(&mut self) -> Option<(usize, usize)> {
        if self.peeked.is_none() {
            let c = self.chars.next()?;
            self.peeked_tab = c == '\t';
            let width = match c {
                '\t' => TAB_WIDTH - self.col % TAB_WIDTH,
                c if c.is_control() => 1,
                c => c.width().unwrap_or(1).max(1),
            };
            let mut end = self.offset + 1;
            let mut cluster = Cluster::new(c);
            while self.chars.peek().is_some_and(|&m| cluster.extend(m)) {
                self.chars.next();
                end += 1;
            }
            let drawn = c != '\t' && !c.is_control();
            let width = if drawn { cluster.width(width) } else { width };
            self.peeked = Some((end, width));
        }
        self.peeked
    }

    fn advance(&mut self, end: usize, width: usize) {
        debug_assert!(end <= self.line.len_chars());
        self.peeked = None;
        self.crossed_tab |= self.peeked_tab;
        self.offset = end;
        self.col += width;
    }
}

/// Number of lines (a trailing line break starts an empty last line).
pub fn line_count(doc: &Rope) -> usize {
    doc.len_lines()
}

/// Char offset where `line` starts.
pub fn line_start(doc: &Rope, line: usize) -> usize {
    doc.line_to_char(line.min(doc.len_lines().saturating_sub(1)))
}

/// The content of `line` without its line break.
pub fn line_content(doc: &Rope, line: usize) -> RopeSlice<'_> {
    let slice = doc.line(line.min(doc.len_lines().saturating_sub(1)));
    let mut len = slice.len_chars();
    if len > 0 && slice.char(len - 1) == '\n' {
        len -= 1;
        if len > 0 && slice.char(len - 1) == '\r' {
            len -= 1;
        }
    } else if len > 0 && is_line_break(slice.char(len - 1)) {
        len -= 1;
    }
    slice.slice(..len)
}

/// Chars in `line`, line break excluded.
pub fn line_len(doc: &Rope, line: usize) -> usize {
    line_content(doc, line).len_chars()
}

/// Char offset where `line`'s content ends (before its line break).
pub fn line_end(doc: &Rope, line: usize) -> usize {
    line_start(doc, line) + line_len(doc, line)
}

/// The line holding char offset `pos`.
pub fn line_of(doc: &Rope, pos: usize) -> usize {
    doc.char_to_line(pos.min(doc.len_chars()))
}

/// Chars a boundary search walks back at most (over marks, joined emoji
/// and flags); a longer run of them is cut there.
const MAX_LOOKBACK: usize = 128;

/// `pos` moved to a glyph boundary: to the start of the glyph it is inside
/// of, or (with `forward`) past its end. Looks only at the chars around
/// `pos`: back to the nearest char that surely starts a glyph, then forward
/// through the glyphs from there.
pub fn snap(doc: &Rope, pos: usize, forward: bool) -> usize {
    let pos = pos.min(doc.len_chars());
    let line = line_of(doc, pos);
    let (start, end) = (line_start(doc, line), line_end(doc, line));
    if pos <= start || pos >= end || !may_continue(doc.char(pos)) {
        return pos;
    }
    let mut from = pos;
    while from > start && pos - from < MAX_LOOKBACK && may_continue(doc.char(from)) {
        from -= 1;
    }
    // Glyphs from `from` on, until the one holding `pos`.
    let mut chars = doc.chars_at(from).peekable();
    let mut at = from;
    while let Some(c) = chars.next() {
        let mut cluster = Cluster::new(c);
        let mut next = at + 1;
        while next < end && chars.peek().is_some_and(|&m| cluster.extend(m)) {
            chars.next();
            next += 1;
        }
        if next > pos {
            return if at == pos || !forward { at } else { next };
        }
        at = next;
    }
    pos
}

/// The caret position one glyph (or line break) after `pos`.
pub fn next_boundary(doc: &Rope, pos: usize) -> usize {
    let line = line_of(doc, pos);
    if pos >= line_end(doc, line) {
        // Step over the whole line break, so "\r\n" is one step.
        return if line + 1 < line_count(doc) {
            line_start(doc, line + 1)
        } else {
            doc.len_chars()
        };
    }
    snap(doc, pos + 1, true)
}

/// The caret position one glyph (or line break) before `pos`.
pub fn prev_boundary(doc: &Rope, pos: usize) -> usize {
    let line = line_of(doc, pos);
    if pos <= line_start(doc, line) {
        return if line == 0 {
            0
        } else {
            line_end(doc, line - 1)
        };
    }
    snap(doc, pos - 1, false)
}

/// The leading blanks (spaces and tabs) of `line`.
pub fn indentation(doc: &Rope, line: usize) -> String {
    line_content(doc, line)
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glyphs(s: &str) -> Vec<Glyph> {
        let doc = Rope::from_str(s);
        Glyphs::new(doc.slice(..), 0, 0).collect()
    }

    fn glyph_cols(s: &str) -> Vec<(usize, usize)> {
        glyphs(s).iter().map(|g| (g.col, g.width)).collect()
    }

    #[test]
    fn tabs_stop_every_four_columns() {
        assert_eq!(glyph_cols("\tx"), vec![(0, 4), (4, 1)]);
        assert_eq!(glyph_cols("ab\tx"), vec![(0, 1), (1, 1), (2, 2), (4, 1)]);
    }

    #[test]
    fn wide_and_combining_chars() {
        // "界" is two cells; "e" + U+0301 is one glyph of one cell.
        let doc = Rope::from_str("界e\u{301}x");
        let g = glyphs("界e\u{301}x");
        assert_eq!(g.len(), 3);
        assert_eq!((g[0].col, g[0].width), (0, 2));
        assert_eq!(g[1].symbol, Symbol::Cluster("e\u{301}".into()));
        assert_eq!((g[1].start, g[1].end), (1, 3));
        assert_eq!((g[2].col, g[2].start), (3, 3));
        let line = doc.slice(..);
        assert_eq!(seek_offset(line, 0, 0, 3), (3, 3));
        assert_eq!(seek_offset(line, 0, 0, 2), (1, 2), "inside the cluster");
        // Column 1 is the second half of "界": the glyph starts at column 0.
        assert_eq!(seek_column(line, 0, 0, 1), (0, 0));
        assert_eq!(seek_column(line, 0, 0, 9), (4, 4), "past the end");
        // The caret never rests between "e" and its accent.
        assert_eq!(next_boundary(&doc, 1), 3);
        assert_eq!(prev_boundary(&doc, 3), 1);
        assert_eq!(snap(&doc, 2, false), 1);
        assert_eq!(snap(&doc, 2, true), 3);
    }

    #[test]
    fn a_walk_may_start_at_any_boundary() {
        let doc = Rope::from_str("a\tb界c");
        let line = doc.slice(..);
        let from_start: Vec<Glyph> = Glyphs::new(line, 0, 0).collect();
        let from_b: Vec<Glyph> = Glyphs::new(line, 2, 4).collect();
        assert_eq!(&from_start[2..], &from_b[..]);
        assert_eq!(seek_offset(line, 2, 4, 4), (4, 7));
        assert_eq!(seek_column(line, 2, 4, 6), (3, 5));
    }

    #[test]
    fn a_lone_mark_gets_a_cell() {
        let doc = Rope::from_str("\u{301}a");
        let g = glyphs("\u{301}a");
        assert_eq!((g[0].width, g[1].col), (1, 1));
        assert_eq!(snap(&doc, 0, true), 0);
        assert_eq!(next_boundary(&doc, 0), 1);
    }

    #[test]
    fn lines_exclude_their_breaks() {
        let doc = Rope::from_str("ab\r\ncd\n");
        assert_eq!(line_count(&doc), 3);
        assert_eq!(line_len(&doc, 0), 2);
        assert_eq!(line_end(&doc, 0), 2);
        assert_eq!(next_boundary(&doc, 2), 4, "CRLF is one step");
        assert_eq!(prev_boundary(&doc, 4), 2);
        assert_eq!(line_len(&doc, 2), 0);
        assert_eq!(next_boundary(&doc, 7), 7);
    }

    #[test]
    fn emoji_sequences_and_flags_are_one_glyph() {
        // Woman technologist (ZWJ), thumbs up with a skin tone, a flag, a
        // heart with emoji presentation, then "x".
        let s = "👩\u{200D}💻👍\u{1F3FD}🇫🇷❤\u{FE0F}x";
        let g = glyphs(s);
        let cols: Vec<(usize, usize, usize)> =
            g.iter().map(|g| (g.start, g.col, g.width)).collect();
        assert_eq!(
            cols,
            vec![(0, 0, 2), (3, 2, 2), (5, 4, 2), (7, 6, 2), (9, 8, 1)]
        );
        assert_eq!(g[0].symbol, Symbol::Cluster("👩\u{200D}💻".into()));
        let doc = Rope::from_str(s);
        let line = doc.slice(..);
        assert_eq!(
            seek_offset(line, 0, 0, 2),
            (0, 0),
            "inside the ZWJ sequence"
        );
        assert_eq!(seek_column(line, 0, 0, 7), (7, 6));
        // The caret steps over each whole.
        let mut pos = 0;
        let mut stops = vec![];
        while pos < doc.len_chars() {
            pos = next_boundary(&doc, pos);
            stops.push(pos);
        }
        assert_eq!(stops, vec![3, 5, 7, 9, 10]);
        assert_eq!(prev_boundary(&doc, 3), 0);
        assert_eq!(prev_boundary(&doc, 7), 5);
        for (inside, back, fwd) in [(1, 0, 3), (2, 0, 3), (4, 3, 5), (6, 5, 7), (8, 7, 9)] {
            assert_eq!(snap(&doc, inside, false), back, "{inside}");
            assert_eq!(snap(&doc, inside, true), fwd, "{inside}");
        }
    }

    #[test]
    fn glyphs_agree_with_unicode_grapheme_clusters() {
        use unicode_segmentation::UnicodeSegmentation;
        for s in [
            "e\u{301}a👩\u{200D}👩\u{200D}👧\u{200D}👦b",
            "🇩🇪🇫🇷🇮",
            "👋🏿 ok 🏳\u{FE0F}\u{200D}🌈",
            "漢字かな카\u{1161}",
        ] {
            let ours: Vec<usize> = glyphs(s).iter().map(|g| g.start).collect();
            let mut theirs = Vec::new();
            let mut chars = 0;
            for g in s.graphemes(true) {
                theirs.push(chars);
                chars += g.chars().count();
            }
            assert_eq!(ours, theirs, "{s}");
        }
    }

    #[test]
    fn control_chars_get_a_visible_stand_in() {
        let g = glyphs("a\u{1b}b");
        assert_eq!(g[1].symbol, Symbol::StandIn);
        assert_eq!(g[2].col, 2);
    }
}
