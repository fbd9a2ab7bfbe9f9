//! The status bar (room, connection, who you are, position, revision,
//! unsaved marker) and the message line under it (prompt, notice or hints).

use std::time::Instant;

use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;
use unicode_width::UnicodeWidthStr;

use super::theme;
use crate::core::editor::{ConnState, Editor, Prompt};

/// Room ids are long capabilities; the bar shows their start.
const ROOM_CHARS: usize = 8;

/// The connection state as text and color. While waiting to reconnect it
/// says why the link is down and counts down (the only part of the screen
/// that changes with time alone).
pub fn connection_label(conn: &ConnState, now: Instant) -> (String, Color) {
    match conn {
        ConnState::Connecting => ("○ connecting…".into(), Color::Yellow),
        ConnState::Connected => ("● connected".into(), Color::Green),
        ConnState::Reconnecting { retry_at, reason } => {
            let left = retry_at.saturating_duration_since(now);
            let secs = left.as_millis().div_ceil(1000);
            let text = if secs == 0 {
                format!("◌ {reason}: reconnecting…")
            } else {
                format!("◌ {reason}: retry in {secs}s (any key: now)")
            };
            (text, Color::Yellow)
        }
        ConnState::Offline(why) => (format!("✖ offline: {why}"), Color::LightRed),
    }
}

/// Draws the status bar.
pub fn render_status(editor: &Editor, now: Instant, area: Rect, buf: &mut Buffer) {
    buf.set_style(area, theme::STATUS);
    let room: String = editor.room().chars().take(ROOM_CHARS).collect();
    let ellipsis = if editor.room().chars().count() > ROOM_CHARS {
        "…"
    } else {
        ""
    };
    let (conn, conn_color) = connection_label(editor.conn(), now);
    let (name, rgb) = match editor.me() {
        Some(me) => (me.name.clone(), Some(me.rgb)),
        None => (editor.requested_name().to_owned(), None),
    };
    let (line, col) = editor.line_col();
    let sep = || Span::raw(" │ ");
    let mut spans = vec![
        Span::raw(format!(" room {room}{ellipsis}")),
        sep(),
        Span::styled(conn, theme::STATUS.fg(conn_color)),
        sep(),
    ];
    if let Some(rgb) = rgb {
        spans.push(Span::styled("■ ", theme::STATUS.fg(theme::user_color(rgb))));
    }
    spans.extend([
        Span::raw(name),
        sep(),
        Span::raw(format!("Ln {line}, Col {col}")),
        sep(),
        Span::raw(match editor.revision() {
            Some(r) => format!("rev {r}"),
            None => "rev -".into(),
        }),
    ]);
    if editor.is_read_only() {
        spans.extend([
            sep(),
            Span::styled("read-only", theme::STATUS.fg(Color::LightCyan)),
        ]);
    }
    if editor.has_unsent() {
        spans.extend([
            sep(),
            Span::styled("↑ unsent", theme::STATUS.fg(Color::Yellow)),
        ]);
    }
    if editor.is_dirty() {
        spans.extend([
            sep(),
            Span::styled("[+] modified", theme::STATUS.fg(Color::LightRed)),
        ]);
    }
    Line::from(spans).style(theme::STATUS).render(area, buf);
}

/// Draws the message line; returns where the terminal's cursor belongs
/// when a prompt is taking text.
pub fn render_message(editor: &Editor, area: Rect, buf: &mut Buffer) -> Option<Position> {
    let (text, style, cursor) = match (editor.prompt(), editor.notice()) {
        (Some(Prompt::SaveAs(input)), _) => {
            let label = "Save as (Enter: write, Esc: cancel): ";
            let before: String = input.text().chars().take(input.cursor()).collect();
            let at = UnicodeWidthStr::width(label) + UnicodeWidthStr::width(before.as_str());
            (format!("{label}{}", input.text()), theme::PROMPT, Some(at))
        }
        (Some(Prompt::ConfirmQuit), _) => {
            let what = if editor.has_unsent() {
                "Some edits are not on the server yet: they are kept, and sent when you join this room again."
            } else {
                "The document has changes not saved to your file."
            };
            (format!("{what} Quit anyway? (y/n)"), theme::PROMPT, None)
        }
        (Some(Prompt::ConfirmOverwrite { path, exists }), _) => {
            let what = if *exists {
                "exists"
            } else {
                "changed on disk since it was loaded or saved"
            };
            let text = format!("{} {what}. Overwrite it? (y/n)", path.display());
            (text, theme::PROMPT, None)
        }
        (None, Some(notice)) => (notice.to_owned(), Style::new().fg(Color::White), None),
        (None, None) => {
            let hint = if editor.is_read_only() {
                "Read-only · F1 help · Ctrl-Q quit · F2 next colleague"
            } else {
                "F1 help · Ctrl-S save · Ctrl-Q quit · F2 next colleague"
            };
            (hint.to_owned(), theme::MESSAGE, None)
        }
    };
    buf.set_style(area, style);
    buf.set_stringn(area.x, area.y, text, usize::from(area.width), style);
    cursor
        .filter(|&at| at < usize::from(area.width))
        .map(|at| Position::new(area.x + at as u16, area.y))
}
