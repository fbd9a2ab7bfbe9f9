//! The help overlay: the key table from `core::keymap::KEYS` in a box.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

use crate::core::keymap::KEYS;

/// Draws the overlay centered in `area`.
pub fn render(area: Rect, buf: &mut Buffer) {
    let key_width = KEYS.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let text_width = KEYS
        .iter()
        .map(|(k, d)| key_width.max(k.len()) + 2 + d.len())
        .max()
        .unwrap_or(0);
    let width = (text_width as u16 + 4).min(area.width);
    let height = (KEYS.len() as u16 + 4).min(area.height);
    let rect = Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    );
    let mut lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, d)| {
            Line::from(vec![
                Span::styled(
                    format!("{k:<key_width$}  "),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::raw(*d),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::raw("Any key closes this help."));
    Clear.render(rect, buf);
    Paragraph::new(lines)
        .block(Block::new().borders(Borders::ALL).title(" collab keys "))
        .render(rect, buf);
}
