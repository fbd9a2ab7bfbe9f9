//! The status bar (room, connection, who you are, position, revision,
//! unsaved marker) and the message line under it (prompt, notice or hints).

use std::time::Instant;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::theme;
use crate::core::editor::{ConnState, Editor, Prompt};

/// Room ids are long capabilities; the bar shows their start.
const ROOM_CHARS: usize = 8;

/// The connection state as text and color.
pub fn connection_label(conn: &ConnState, now: Instant) -> (String, Color) {
    match conn {
        ConnState::Connecting => ("○ connecting…".into(), Color::Yellow),
        ConnState::Connected => ("● connected".into(), Color::Green),
        ConnState::Reconnecting { retry_at } => {
            let left = retry_at.saturating_duration_since(now);
            let secs = left.as_millis().div_ceil(1000);
            let text = if secs == 0 {
                "◌ reconnecting…".to_owned()
            } else {
                format!("◌ reconnecting in {secs}s")
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

/// Draws the message line.
pub fn render_message(editor: &Editor, area: Rect, buf: &mut Buffer) {
    let (text, style) = match (editor.prompt(), editor.notice()) {
        (Some(Prompt::SaveAs(path)), _) => (
            format!("Save as (Enter to write, Esc to cancel): {path}"),
            theme::PROMPT,
        ),
        (Some(Prompt::ConfirmQuit), _) => {
            let what = if editor.has_unsent() {
                "Edits not yet sent to the server will be lost."
            } else {
                "The document has unsaved changes."
            };
            (format!("{what} Quit anyway? (y/n)"), theme::PROMPT)
        }
        (None, Some(notice)) => (notice.to_owned(), Style::new().fg(Color::White)),
        (None, None) => (
            "F1 help · Ctrl-S save · Ctrl-Q quit · F2 next colleague".to_owned(),
            theme::MESSAGE,
        ),
    };
    buf.set_stringn(area.x, area.y, text, usize::from(area.width), style);
}
