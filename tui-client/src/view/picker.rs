//! The file picker and the buffer list drawn over the text: the query,
//! then the matching paths (matched chars bold), the chosen one
//! highlighted, open ones marked, colleagues' initials after each.

use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

use super::theme;
use crate::core::editor::{Editor, PickerKind};

/// Draws the picker in `area` (the text's area); returns where the
/// terminal's cursor goes (in the query).
pub fn render(editor: &Editor, area: Rect, buf: &mut Buffer) -> Option<Position> {
    let picker = editor.picker()?;
    let items = editor.picker_items();
    let width = area.width.min(70).max(area.width.min(20));
    let list_rows = usize::from(area.height.saturating_sub(4)).clamp(1, 15);
    let height = (list_rows as u16 + 3).min(area.height);
    let rect = Rect::new(area.x + (area.width - width) / 2, area.y, width, height);
    Clear.render(rect, buf);
    let title = match picker.kind {
        PickerKind::Files => format!(" Open file ({} of {}) ", items.len(), editor.files().len()),
        PickerKind::Buffers => " Open buffers ".to_owned(),
    };
    let selected = picker.selected.min(items.len().saturating_sub(1));
    let first = selected.saturating_sub(list_rows - 1);
    let mut lines = vec![Line::from(vec![
        Span::styled("> ", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(picker.input.text().to_owned()),
    ])];
    for (i, item) in items.iter().enumerate().skip(first).take(list_rows) {
        let chosen = i == selected;
        let base = if chosen {
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new()
        };
        let mut spans = vec![Span::styled(if item.open { "• " } else { "  " }, base)];
        for (j, c) in item.path.chars().enumerate() {
            let style = if item.positions.contains(&j) {
                base.add_modifier(Modifier::BOLD)
                    .fg(ratatui::style::Color::Yellow)
            } else {
                base
            };
            spans.push(Span::styled(c.to_string(), style));
        }
        for m in &item.marks {
            spans.push(Span::raw(" "));
            spans.push(Span::styled(
                m.initial.to_string(),
                Style::new()
                    .bg(theme::user_color(m.rgb))
                    .fg(theme::text_on(m.rgb)),
            ));
        }
        lines.push(Line::from(spans));
    }
    if items.is_empty() {
        lines.push(Line::styled("  no file matches", theme::GUTTER));
    }
    Paragraph::new(lines)
        .block(
            Block::new()
                .borders(Borders::ALL)
                .title(title)
                .title_bottom(" ↑↓ choose · Enter open · Esc back "),
        )
        .render(rect, buf);
    let before: String = picker
        .input
        .text()
        .chars()
        .take(picker.input.cursor())
        .collect();
    let x = rect.x + 3 + unicode_width::UnicodeWidthStr::width(before.as_str()) as u16;
    (x < rect.x + rect.width).then(|| Position::new(x, rect.y + 1))
}
