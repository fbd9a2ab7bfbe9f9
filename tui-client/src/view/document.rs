//! The text area: line numbers, the visible part of each line (tabs, wide
//! and combining chars laid out by `core::text_layout`) in its syntax
//! colors, search matches, this user's selection, and each colleague's
//! caret, selection shading and name label, in that order of precedence.
//! Highlighting is asked for the visible columns of the visible lines only.

use std::cell::Cell;
use std::ops::Range;

use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Modifier, Style};

use super::theme::{self, ColorDepth};
use crate::core::editor::Editor;
use crate::core::presence::{Presence, RemoteUser};
use crate::core::syntax::HighlightSpan;
use crate::core::text_layout as tl;

/// Chars past the right edge asked to be highlighted too, so a glyph cut by
/// the edge (or its accents) is covered.
const EDGE_SLACK: usize = 8;

/// Lines with at most this many chars per visible cell are highlighted to
/// their end without measuring where the screen's edge falls on them.
const CHARS_PER_CELL: usize = 2;

/// Longest name shown in a caret label.
const LABEL_CHARS: usize = 12;

/// Width of the line-number gutter for a document of `lines` lines.
pub fn gutter_width(lines: usize) -> u16 {
    let digits = lines.max(1).ilog10() as u16 + 1;
    digits.max(3) + 1
}

/// Draws the document into `area` (gutter included); returns the screen
/// position of the caret when it is visible. Only the visible columns of the
/// visible lines are laid out, so a line's length costs nothing off screen.
pub fn render(
    editor: &Editor,
    area: Rect,
    buf: &mut Buffer,
    depth: ColorDepth,
) -> Option<Position> {
    let rope = editor.text();
    let gutter = gutter_width(tl::line_count(rope)).min(area.width);
    let text_x = area.x + gutter;
    let width = usize::from(area.width - gutter);
    let (top, left) = (editor.top, editor.left);
    let caret_line = tl::line_of(rope, editor.caret());
    let selection = editor.selection();
    let presence = editor.presence();
    // Colleagues in this buffer's document (in a one-document room, all).
    let here = editor.active_doc();
    let remote: Vec<&RemoteUser> = presence
        .users()
        .iter()
        .filter(|u| u.doc.is_none() || u.doc.as_deref() == here)
        .collect();
    let mut caret_pos = None;
    // Plain text with no search shown needs no ranges (nor their cost).
    let visible = if editor.marks_text() {
        visible_ranges(editor, area.height, width)
    } else {
        Vec::new()
    };
    let spans = editor.highlights(&visible);
    let matches = editor.search_matches(&visible);
    let syntax = SpanCursor::new(&spans);
    let found = MatchCursor::new(&matches);

    for row in 0..area.height {
        let y = area.y + row;
        let line = top + usize::from(row);
        if line >= tl::line_count(rope) {
            continue;
        }
        let number_style = if line == caret_line {
            theme::GUTTER_CURRENT
        } else {
            theme::GUTTER
        };
        let number = format!("{:>w$} ", line + 1, w = usize::from(gutter - 1));
        buf.set_stringn(area.x, y, number, usize::from(gutter), number_style);

        let start = tl::line_start(rope, line);
        let content = tl::line_content(rope, line);
        let (offset, col) = editor.glyph_at_column(line, left);
        let mut glyphs = tl::Glyphs::new(content, offset, col);
        let style_at = |pos: usize, is_break: bool| {
            let mut style = if is_break {
                Style::new()
            } else {
                syntax.at(pos).map_or(Style::new(), theme::syntax)
            };
            let has_break = pos < rope.len_chars();
            let selected = |(s, e): (usize, usize)| pos >= s && pos < e && (!is_break || has_break);
            if !is_break && found.at(pos) {
                style = style.bg(theme::MATCH_BG);
            }
            if let Some(u) = remote.iter().find(|u| {
                u.anchor
                    .zip(u.cursor)
                    .is_some_and(|(a, c)| selected((a.min(c), a.max(c))))
            }) {
                // Without colors a colleague's selection is underlined, so
                // it differs from this user's (reversed).
                style = if depth == ColorDepth::NoColor {
                    style.add_modifier(Modifier::UNDERLINED)
                } else {
                    style.bg(theme::selection_tint(u.rgb))
                };
            }
            if selection.is_some_and(selected) {
                style = style.bg(theme::SELECTION_BG);
            }
            if let Some(u) = remote.iter().find(|u| u.cursor == Some(pos)) {
                style = style.bg(theme::user_color(u.rgb)).fg(theme::text_on(u.rgb));
            }
            style
        };
        for g in glyphs.by_ref() {
            draw_glyph(
                buf,
                &g,
                style_at(start + g.start, false),
                left,
                width,
                text_x,
                y,
            );
            if g.col + g.width >= left + width {
                break;
            }
        }
        // Where the line's content ends, when that is on screen: one cell
        // there stands for the line break (a caret or selection on it).
        let (end_offset, end_col) = glyphs.position();
        let line_width = (end_offset == content.len_chars()).then_some(end_col);
        if let Some(line_width) = line_width {
            let style = style_at(start + end_offset, true);
            if style != Style::new() {
                let cell = tl::Glyph {
                    start: end_offset,
                    end: end_offset + 1,
                    col: line_width,
                    width: 1,
                    symbol: tl::Symbol::Blank,
                };
                draw_glyph(buf, &cell, style, left, width, text_x, y);
            }
        }
        if line == caret_line {
            let col = editor.column_of(editor.caret());
            if col >= left && col < left + width {
                caret_pos = Some(Position::new(text_x + (col - left) as u16, y));
            }
        }
        let line_end = start + content.len_chars();
        // Past the screen's edge, a label sits at the edge.
        let label_col = line_width.unwrap_or(left + width);
        draw_labels(
            buf, presence, &remote, start, line_end, label_col, left, width, text_x, y,
        );
    }
    caret_pos
}

/// The char range each visible row shows (its visible columns, or a little
/// more), ascending. Only long lines are measured exactly: a line with no
/// more than [`CHARS_PER_CELL`] chars per visible cell after its first
/// visible glyph is taken whole.
fn visible_ranges(editor: &Editor, height: u16, width: usize) -> Vec<Range<usize>> {
    let rope = editor.text();
    let lines = tl::line_count(rope);
    let (top, left) = (editor.top, editor.left);
    (top..(top + usize::from(height)).min(lines))
        .map(|line| {
            let start = tl::line_start(rope, line);
            let len = tl::line_len(rope, line);
            let from = if left == 0 {
                0
            } else {
                editor.glyph_at_column(line, left).0
            };
            let to = if len - from.min(len) <= CHARS_PER_CELL * width {
                len
            } else {
                let (to, _) = editor.glyph_at_column(line, left + width);
                (to + EDGE_SLACK).min(len)
            };
            start + from..start + to
        })
        .collect()
}

/// Walks sorted, disjoint spans along increasing positions.
struct SpanCursor<'a> {
    spans: &'a [HighlightSpan],
    next: Cell<usize>,
}

impl<'a> SpanCursor<'a> {
    fn new(spans: &'a [HighlightSpan]) -> Self {
        Self {
            spans,
            next: Cell::new(0),
        }
    }

    /// The class at `pos`; positions must not decrease between calls.
    fn at(&self, pos: usize) -> Option<crate::core::syntax::Highlight> {
        let mut i = self.next.get();
        while i < self.spans.len() && self.spans[i].end <= pos {
            i += 1;
        }
        self.next.set(i);
        self.spans
            .get(i)
            .filter(|s| s.start <= pos)
            .map(|s| s.class)
    }
}

/// Walks sorted, disjoint char ranges along increasing positions.
struct MatchCursor<'a> {
    ranges: &'a [Range<usize>],
    next: Cell<usize>,
}

impl<'a> MatchCursor<'a> {
    fn new(ranges: &'a [Range<usize>]) -> Self {
        Self {
            ranges,
            next: Cell::new(0),
        }
    }

    fn at(&self, pos: usize) -> bool {
        let mut i = self.next.get();
        while i < self.ranges.len() && self.ranges[i].end <= pos {
            i += 1;
        }
        self.next.set(i);
        self.ranges.get(i).is_some_and(|r| r.start <= pos)
    }
}

/// Draws the visible cells of one glyph.
fn draw_glyph(
    buf: &mut Buffer,
    g: &tl::Glyph,
    style: Style,
    left: usize,
    width: usize,
    x0: u16,
    y: u16,
) {
    let (first, last) = (g.col, g.col + g.width);
    if last <= left || first >= left + width {
        return;
    }
    // A glyph cut by either edge shows as blanks: half a wide char cannot
    // be drawn.
    let whole = first >= left && last <= left + width;
    for col in first.max(left)..last.min(left + width) {
        let cell = &mut buf[(x0 + (col - left) as u16, y)];
        let mut utf8 = [0; 4];
        let symbol = if whole && col == first {
            g.symbol.as_str(&mut utf8)
        } else {
            " "
        };
        cell.set_symbol(symbol).set_style(style);
    }
}

/// Each colleague whose caret is on this line gets a name tag after the
/// line's text (so it hides no text), in their color.
#[allow(clippy::too_many_arguments)]
fn draw_labels(
    buf: &mut Buffer,
    presence: &Presence,
    users: &[&RemoteUser],
    start: usize,
    end: usize,
    line_width: usize,
    left: usize,
    width: usize,
    x0: u16,
    y: u16,
) {
    let mut col = line_width + 2;
    for u in users {
        if !u.cursor.is_some_and(|c| c >= start && c <= end) {
            continue;
        }
        let name: String = presence
            .display_name(&u.user_id)
            .chars()
            .take(LABEL_CHARS)
            .collect();
        let label = format!(" {name} ");
        let label_width = unicode_width::UnicodeWidthStr::width(label.as_str());
        // Keep the label on screen even when the line's end is not.
        let shown = col.clamp(left, (left + width).saturating_sub(label_width).max(left));
        let x = x0 + (shown - left) as u16;
        let style = Style::new()
            .bg(theme::user_color(u.rgb))
            .fg(theme::text_on(u.rgb));
        buf.set_stringn(x, y, &label, width - (shown - left), style);
        col += label_width + 1;
    }
}
