//! The side panel listing who is in the room, each in their color.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Padding, Paragraph, Widget};

use super::theme;
use crate::core::editor::Editor;
use crate::core::text_layout as tl;

/// Width of the panel, border included.
pub const PANEL_WIDTH: u16 = 24;

/// Draws the panel.
pub fn render(editor: &Editor, area: Rect, buf: &mut Buffer) {
    let mut lines = Vec::new();
    if let Some(me) = editor.me() {
        lines.push(Line::from(vec![
            Span::styled("■ ", Style::new().fg(theme::user_color(me.rgb))),
            Span::styled(
                format!("{} (you)", me.name),
                Style::new().add_modifier(Modifier::BOLD),
            ),
        ]));
    }
    for u in editor.presence().users() {
        let place = u
            .cursor
            .map(|c| format!(" :{}", tl::line_of(editor.text(), c) + 1))
            .unwrap_or_default();
        lines.push(Line::from(vec![
            Span::styled("■ ", Style::new().fg(theme::user_color(u.rgb))),
            Span::raw(u.name.clone()),
            Span::styled(place, theme::GUTTER),
        ]));
    }
    let count = editor.presence().users().len() + usize::from(editor.me().is_some());
    Paragraph::new(lines)
        .block(
            Block::new()
                .borders(Borders::LEFT)
                .border_style(theme::GUTTER)
                .padding(Padding::left(1))
                .title(format!(" Users ({count}) ")),
        )
        .render(area, buf);
}
