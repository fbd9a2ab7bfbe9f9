//! The help overlay: the room's full id and the commands that bring someone
//! in (inside the editor, where `create --join` hid the printed ones), then
//! the key table from `core::keymap::KEYS`, in a box.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};

use crate::core::editor::Editor;
use crate::core::keymap::KEYS;

/// Draws the overlay centered in `area`.
pub fn render(editor: &Editor, area: Rect, buf: &mut Buffer) {
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let key_width = KEYS.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut lines = vec![Line::from(vec![
        Span::styled("Room ", bold),
        Span::raw(editor.room().to_owned()),
    ])];
    for (what, command) in editor.share_commands() {
        let label = match what {
            "edit" => "To edit together:  ",
            _ => "To watch only:     ",
        };
        lines.push(Line::from(vec![
            Span::raw(label),
            Span::styled(command, bold),
        ]));
    }
    lines.push(Line::raw("(F4 copies the first command)"));
    lines.push(Line::raw(""));
    lines.extend(KEYS.iter().map(|(k, d)| {
        Line::from(vec![
            Span::styled(format!("{k:<key_width$}  "), bold),
            Span::raw(*d),
        ])
    }));
    lines.push(Line::raw(""));
    lines.push(Line::raw("Any key closes this help."));
    let text_width = lines.iter().map(Line::width).max().unwrap_or(0);
    let width = (text_width as u16 + 4).min(area.width);
    let height = (lines.len() as u16 + 2).min(area.height);
    let rect = Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    );
    Clear.render(rect, buf);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::new().borders(Borders::ALL).title(" collab: help "))
        .render(rect, buf);
}
