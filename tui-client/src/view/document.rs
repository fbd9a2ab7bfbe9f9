//! The text area: line numbers, the visible part of each line (tabs, wide
//! and combining chars laid out by `core::text_layout`), this user's
//! selection, and each colleague's caret, selection shading and name label.

use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::Style;

use super::theme;
use crate::core::editor::Editor;
use crate::core::presence::RemoteUser;
use crate::core::text_layout::{self as tl, Glyph};

/// Longest name shown in a caret label.
const LABEL_CHARS: usize = 12;

/// Width of the line-number gutter for a document of `lines` lines.
pub fn gutter_width(lines: usize) -> u16 {
    let digits = lines.max(1).ilog10() as u16 + 1;
    digits.max(3) + 1
}

/// Draws the document into `area` (gutter included); returns the screen
/// position of the caret when it is visible.
pub fn render(editor: &Editor, area: Rect, buf: &mut Buffer) -> Option<Position> {
    let rope = editor.text();
    let gutter = gutter_width(tl::line_count(rope)).min(area.width);
    let text_x = area.x + gutter;
    let width = usize::from(area.width - gutter);
    let (top, left) = (editor.top, editor.left);
    let caret_line = tl::line_of(rope, editor.caret());
    let selection = editor.selection();
    let remote: Vec<&RemoteUser> = editor.presence().users().iter().collect();
    let mut caret_pos = None;

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
        let glyphs = tl::layout_line(tl::line_content(rope, line));
        let line_width = tl::glyphs_width(&glyphs);
        let line_end = start + glyphs.last().map_or(0, |g| g.end);
        // One cell past the content stands for the line break.
        let break_glyph = Glyph {
            start: line_end - start,
            end: line_end - start + 1,
            col: line_width,
            width: 1,
            symbol: " ".into(),
        };
        let has_break = line_end < rope.len_chars();
        for g in glyphs.iter().chain(std::iter::once(&break_glyph)) {
            let pos = start + g.start;
            let is_break = g.col == line_width && g.start == break_glyph.start;
            let mut style = Style::new();
            let selected = |(s, e): (usize, usize)| pos >= s && pos < e && (!is_break || has_break);
            if let Some(u) = remote.iter().find(|u| {
                u.anchor
                    .zip(u.cursor)
                    .is_some_and(|(a, c)| selected((a.min(c), a.max(c))))
            }) {
                style = style.bg(theme::selection_tint(u.rgb));
            }
            if selection.is_some_and(selected) {
                style = style.bg(theme::SELECTION_BG);
            }
            if let Some(u) = remote.iter().find(|u| u.cursor == Some(pos)) {
                style = style.bg(theme::user_color(u.rgb)).fg(theme::text_on(u.rgb));
            }
            if is_break && style == Style::new() {
                continue;
            }
            draw_glyph(buf, g, style, left, width, text_x, y);
        }
        if line == caret_line {
            let col = tl::column_of(rope, editor.caret());
            if col >= left && col < left + width {
                caret_pos = Some(Position::new(text_x + (col - left) as u16, y));
            }
        }
        draw_labels(
            buf, &remote, start, line_end, line_width, left, width, text_x, y,
        );
    }
    caret_pos
}

/// Draws the visible cells of one glyph.
fn draw_glyph(
    buf: &mut Buffer,
    g: &Glyph,
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
        let symbol = if whole && col == first {
            g.symbol.as_str()
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
        let name: String = u.name.chars().take(LABEL_CHARS).collect();
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
