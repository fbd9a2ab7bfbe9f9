//! The help overlay: the room's full id and the commands that bring someone
//! in (inside the editor, where `create --join` hid the printed ones), then
//! the key table from `core::keymap::KEYS`, in a box. A table taller than
//! the screen is cut into pages (F1 turns them); the table lists the keys
//! everyone needs first.

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
    for command in editor.join_commands() {
        lines.push(Line::styled(command.clone(), bold));
    }
    let shared = if editor.join_commands().is_empty() {
        editor.share_commands()
    } else {
        Vec::new()
    };
    for (what, command) in shared {
        let label = match what {
            "edit" => "To edit together:  ",
            _ => "To watch only:     ",
        };
        lines.push(Line::from(vec![
            Span::raw(label),
            Span::styled(command, bold),
        ]));
    }
    lines.push(Line::raw("(F8 copies the first command)"));
    lines.push(Line::raw(""));
    // Borders, the header and the two closing lines; the rest is keys.
    let room = usize::from(area.height)
        .saturating_sub(lines.len() + 4)
        .max(1);
    let pages = KEYS.len().div_ceil(room);
    editor.set_help_pages(pages);
    let page = editor.help_page().min(pages - 1);
    lines.extend(KEYS.iter().skip(page * room).take(room).map(|(k, d)| {
        Line::from(vec![
            Span::styled(format!("{k:<key_width$}  "), bold),
            Span::raw(*d),
        ])
    }));
    lines.push(Line::raw(""));
    lines.push(Line::raw(if page + 1 < pages {
        format!(
            "F1: more keys ({}/{pages}) · any other key closes this help",
            page + 1
        )
    } else {
        "Any key closes this help.".to_owned()
    }));
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
