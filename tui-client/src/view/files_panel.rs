//! The file list (F7): every file of the project, sorted by path, the
//! active one highlighted, open ones marked, and after each the initials
//! of the colleagues in it, in their colors.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Padding, Paragraph, Widget};

use super::theme;
use crate::core::editor::{ClickArea, ClickTarget, Editor};

/// One line of the list: whether open, the path, the marks.
pub fn lines(editor: &Editor) -> Vec<Line<'static>> {
    let active = editor.active_doc();
    editor
        .files()
        .into_iter()
        .map(|f| {
            let open = editor.is_open(&f.doc);
            let style = if active == Some(f.doc.as_str()) {
                Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)
            } else if open {
                Style::new().add_modifier(Modifier::BOLD)
            } else {
                Style::new()
            };
            let mut spans = vec![
                Span::styled(if open { "• " } else { "  " }, theme::GUTTER),
                Span::styled(f.path.clone(), style),
            ];
            for m in editor.marks_for(&f.doc) {
                spans.push(Span::raw(" "));
                spans.push(Span::styled(
                    m.initial.to_string(),
                    Style::new()
                        .bg(theme::user_color(m.rgb))
                        .fg(theme::text_on(m.rgb)),
                ));
            }
            Line::from(spans)
        })
        .collect()
}

/// The width the list wants (border and padding included).
pub fn width(editor: &Editor) -> u16 {
    let widest = lines(editor).iter().map(Line::width).max().unwrap_or(0);
    (widest as u16 + 3).clamp(14, 34)
}

/// Draws the list, scrolled so the active file shows; returns where each
/// file's line is (a click opens it).
pub fn render(editor: &Editor, area: Rect, buf: &mut Buffer) -> Vec<ClickArea> {
    let lines = lines(editor);
    let count = lines.len();
    let active = editor
        .files()
        .iter()
        .position(|f| Some(f.doc.as_str()) == editor.active_doc())
        .unwrap_or(0);
    let height = usize::from(area.height.saturating_sub(1)).max(1);
    let skip = active.saturating_sub(height.saturating_sub(1));
    let block = Block::new()
        .borders(Borders::LEFT)
        .border_style(theme::GUTTER)
        .padding(Padding::left(1))
        .title(format!(" Files ({count}) "));
    let inner = block.inner(area);
    Paragraph::new(lines.into_iter().skip(skip).collect::<Vec<_>>())
        .block(block)
        .render(area, buf);
    editor
        .files()
        .iter()
        .skip(skip)
        .enumerate()
        .map(|(i, f)| (inner.y + i as u16, f))
        .filter(|(y, _)| *y < inner.bottom())
        .map(|(y, f)| ClickArea {
            x: inner.x,
            y,
            width: inner.width,
            target: ClickTarget::File(f.doc.clone()),
        })
        .collect()
}
