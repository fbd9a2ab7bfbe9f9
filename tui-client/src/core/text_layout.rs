//! Display geometry of a document line in a terminal: which cells each char
//! occupies. Tabs stop every [`TAB_WIDTH`] columns, wide chars (CJK, most
//! emoji) take two cells and zero-width chars (combining marks, joiners)
//! attach to the char before them. Everything that converts between char
//! offsets and screen columns goes through [`layout_line`], so the caret,
//! the renderer and mouse clicks always agree.

use ropey::{Rope, RopeSlice};
use unicode_width::UnicodeWidthChar;

/// Columns between tab stops.
pub const TAB_WIDTH: usize = 4;

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
    /// What to draw in its first cell (a tab draws as blanks).
    pub symbol: String,
}

/// True for chars that take no cell of their own.
fn is_zero_width(c: char) -> bool {
    c != '\t' && !c.is_control() && c.width() == Some(0)
}

/// True for the chars ropey treats as ending a line.
fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// Splits a line's content (no line break) into glyphs.
pub fn layout_line(line: RopeSlice<'_>) -> Vec<Glyph> {
    let mut glyphs: Vec<Glyph> = Vec::new();
    let mut col = 0;
    // Whether the last glyph draws its own char (marks on a tab or a
    // stand-in would be drawn on nothing, so they are only counted).
    let mut last_drawn = false;
    for (i, c) in line.chars().enumerate() {
        if is_zero_width(c) {
            if let Some(last) = glyphs.last_mut() {
                if last_drawn {
                    last.symbol.push(c);
                }
                last.end = i + 1;
                continue;
            }
        }
        last_drawn = c != '\t' && !c.is_control();
        let (width, symbol) = match c {
            '\t' => (TAB_WIDTH - col % TAB_WIDTH, " ".to_owned()),
            // Control chars would move the terminal's cursor: show a stand-in.
            c if c.is_control() => (1, "\u{FFFD}".to_owned()),
            c => (c.width().unwrap_or(1).max(1), c.to_string()),
        };
        glyphs.push(Glyph {
            start: i,
            end: i + 1,
            col,
            width,
            symbol,
        });
        col += width;
    }
    glyphs
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

/// Display width of `glyphs` (the column just past the last one).
pub fn glyphs_width(glyphs: &[Glyph]) -> usize {
    glyphs.last().map_or(0, |g| g.col + g.width)
}

/// Display column of the caret at char offset `pos` (a line-relative column).
pub fn column_of(doc: &Rope, pos: usize) -> usize {
    let line = line_of(doc, pos);
    let offset = pos - line_start(doc, line);
    let glyphs = layout_line(line_content(doc, line));
    glyphs
        .iter()
        .find(|g| g.end > offset)
        .map_or(glyphs_width(&glyphs), |g| g.col)
}

/// The caret position on `line` for display column `col`: before the glyph
/// covering `col`, or the line's end when `col` is past it. Never inside a
/// glyph.
pub fn offset_at_column(doc: &Rope, line: usize, col: usize) -> usize {
    let glyphs = layout_line(line_content(doc, line));
    let within = glyphs
        .iter()
        .find(|g| col < g.col + g.width)
        .map_or_else(|| glyphs.last().map_or(0, |g| g.end), |g| g.start);
    line_start(doc, line) + within
}

/// `pos` moved to a glyph boundary: to the start of the glyph it is inside
/// of, or (with `forward`) past its end.
pub fn snap(doc: &Rope, pos: usize, forward: bool) -> usize {
    let pos = pos.min(doc.len_chars());
    let line = line_of(doc, pos);
    let start = line_start(doc, line);
    let offset = pos - start;
    let glyphs = layout_line(line_content(doc, line));
    match glyphs.iter().find(|g| g.start < offset && offset < g.end) {
        Some(g) if forward => start + g.end,
        Some(g) => start + g.start,
        None => pos,
    }
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

    fn glyph_cols(s: &str) -> Vec<(usize, usize)> {
        layout_line(Rope::from_str(s).slice(..))
            .iter()
            .map(|g| (g.col, g.width))
            .collect()
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
        let glyphs = layout_line(doc.slice(..));
        assert_eq!(glyphs.len(), 3);
        assert_eq!((glyphs[0].col, glyphs[0].width), (0, 2));
        assert_eq!(glyphs[1].symbol, "e\u{301}");
        assert_eq!((glyphs[1].start, glyphs[1].end), (1, 3));
        assert_eq!((glyphs[2].col, glyphs[2].start), (3, 3));
        assert_eq!(column_of(&doc, 3), 3);
        // Column 1 is the second half of "界": the caret goes before it.
        assert_eq!(offset_at_column(&doc, 0, 1), 0);
        // The caret never rests between "e" and its accent.
        assert_eq!(next_boundary(&doc, 1), 3);
        assert_eq!(prev_boundary(&doc, 3), 1);
        assert_eq!(snap(&doc, 2, false), 1);
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
    fn control_chars_get_a_visible_stand_in() {
        let glyphs = layout_line(Rope::from_str("a\u{1b}b").slice(..));
        assert_eq!(glyphs[1].symbol, "\u{FFFD}");
        assert_eq!(glyphs[2].col, 2);
    }
}
