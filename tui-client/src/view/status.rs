//! The status bar (room, connection, who you are, position, revision,
//! unsaved marker) and the message line under it (prompt, notice or hints).

use std::time::Instant;

use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::theme;
use crate::core::editor::{ConnState, Editor, LineInput, Prompt};

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
                format!("◌ {reason}: retry in {secs}s")
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
    const SEP: &str = " │ ";
    let sep = || Span::raw(SEP);
    let room = format!(" room {room}{ellipsis}");
    let following = editor.following_name().map(|n| format!("following {n}"));
    // What needs attention comes before what is long, so a narrow terminal
    // (or a long reconnect reason) never cuts it off.
    let unread = editor.chat().unread();
    let markers: Vec<(String, Color)> = [
        (editor.is_read_only(), "read-only".into(), Color::LightCyan),
        (editor.has_unsent(), "↑ unsent".into(), Color::Yellow),
        (editor.is_dirty(), "[+] modified".into(), Color::LightRed),
        (unread > 0, format!("✉ {unread} unread"), Color::LightYellow),
    ]
    .into_iter()
    .filter(|m| m.0)
    .map(|(_, text, color)| (text, color))
    .collect();
    let mut spans = vec![Span::raw(room.clone())];
    if let Some(path) = editor.active_path() {
        // A path can be long (up to 1 KB): it gets what the room, the
        // following mark and the markers leave, and keeps its end (the
        // file's name) when cut.
        let taken = room.width()
            + SEP.width()
            + following.as_ref().map_or(0, |f| SEP.width() + f.width())
            + markers
                .iter()
                .map(|(m, _)| SEP.width() + m.width())
                .sum::<usize>();
        // At most half the bar, so the connection and the position
        // usually show too.
        let width = usize::from(area.width);
        let budget = width.saturating_sub(taken).min(width / 2);
        spans.extend([
            sep(),
            Span::styled(
                keep_end(path, budget),
                theme::STATUS.add_modifier(Modifier::BOLD),
            ),
        ]);
    }
    if let Some(following) = following {
        spans.extend([
            sep(),
            Span::styled(following, theme::STATUS.fg(Color::LightMagenta)),
        ]);
    }
    for (text, color) in markers {
        spans.extend([sep(), Span::styled(text, theme::STATUS.fg(color))]);
    }
    spans.extend([
        sep(),
        Span::styled(conn, theme::STATUS.fg(conn_color)),
        sep(),
    ]);
    if let Some(rgb) = rgb {
        spans.push(Span::styled("■ ", theme::STATUS.fg(theme::user_color(rgb))));
    }
    spans.extend([
        Span::raw(name),
        sep(),
        Span::raw(format!("Ln {line}, Col {col}{}", selection_size(editor))),
        sep(),
        Span::raw(match editor.revision() {
            Some(r) => format!("rev {r}"),
            None => "rev -".into(),
        }),
    ]);
    Line::from(spans).style(theme::STATUS).render(area, buf);
}

/// `text` in at most `width` columns: whole when it fits, else its end
/// after a leading "…".
fn keep_end(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_owned();
    }
    let mut used = "…".width();
    let mut tail: Vec<char> = Vec::new();
    for c in text.chars().rev() {
        let w = c.width().unwrap_or(0);
        if used + w > width {
            break;
        }
        used += w;
        tail.push(c);
    }
    if used > width {
        return String::new();
    }
    std::iter::once('…').chain(tail.into_iter().rev()).collect()
}

/// The selection's size after the caret's position: " (12 selected)", or
/// with the lines it touches when more than one.
fn selection_size(editor: &Editor) -> String {
    let Some((start, end)) = editor.selection() else {
        return String::new();
    };
    let rope = editor.text();
    let lines = rope.char_to_line(end) - rope.char_to_line(start) + 1;
    if lines > 1 {
        format!(" ({} selected, {lines} lines)", end - start)
    } else {
        format!(" ({} selected)", end - start)
    }
}

/// Draws the message line; returns where the terminal's cursor belongs
/// when a prompt is taking text.
pub fn render_message(editor: &Editor, area: Rect, buf: &mut Buffer) -> Option<Position> {
    let (text, style) = match (editor.prompt(), editor.notice()) {
        (Some(Prompt::SaveAs(input)), _) => {
            return render_input(
                "Save as (Enter: write, Esc: cancel): ",
                input,
                "",
                area,
                buf,
            )
        }
        (Some(Prompt::Find { input, replace }), _) => {
            let (regex, status) = editor.search_info();
            let label = match (replace, regex) {
                (false, false) => "Find: ",
                (false, true) => "Find regex: ",
                (true, false) => "Replace: ",
                (true, true) => "Replace regex: ",
            };
            let keys = if *replace {
                "Enter: replace with… · Alt-R regex · Esc back"
            } else {
                "Enter/F3 next · Shift-F3 prev · Alt-R regex · Esc back"
            };
            let status = status.map_or(String::new(), |s| format!("[{s}] "));
            let suffix = format!("  {status}({keys})");
            return render_input(label, input, &suffix, area, buf);
        }
        (Some(Prompt::ReplaceWith(input)), _) => {
            let status = editor.search_info().1;
            let status = status.map_or(String::new(), |s| format!("[{s}] "));
            let suffix = format!("  {status}(Enter: this one · Alt-A: all · F3 skip · Esc done)");
            return render_input("Replace with: ", input, &suffix, area, buf);
        }
        (Some(Prompt::GoToLine(input)), _) => {
            let suffix = "  (line or line:column, Enter: go, Esc: cancel)";
            return render_input("Go to line: ", input, suffix, area, buf);
        }
        (Some(Prompt::NewFile(input)), _) => {
            let suffix = "  (a path in the project, Enter: create, Esc: cancel)";
            return render_input("New file: ", input, suffix, area, buf);
        }
        (Some(Prompt::RenameFile { input, .. }), _) => {
            let suffix = "  (Enter: rename, Esc: cancel)";
            return render_input("Rename to: ", input, suffix, area, buf);
        }
        (Some(Prompt::ConfirmDelete { path, .. }), _) => {
            let text =
                format!("Delete {path} for everyone? (y/n): your copy is kept in a recovery file");
            (text, theme::PROMPT)
        }
        // Questions first, reasons after: a narrow terminal cuts the end.
        (Some(Prompt::ConfirmQuit), _) => {
            let why = if editor.has_unsent() {
                "edits not on the server yet are kept, and sent when you join this room again"
            } else {
                "the document has changes not saved to your file"
            };
            (format!("Quit anyway? (y/n): {why}"), theme::PROMPT)
        }
        (Some(Prompt::ConfirmOverwrite { path, exists }), _) => {
            let what = if *exists {
                "exists"
            } else {
                "changed on disk since it was loaded or saved"
            };
            let text = format!("Overwrite? (y/n): {} {what}", path.display());
            (text, theme::PROMPT)
        }
        (None, Some(notice)) => (notice.to_owned(), Style::new().fg(Color::White)),
        (None, None) => {
            let hint = if matches!(editor.conn(), ConnState::Reconnecting { .. }) {
                "Offline: any key reconnects now · F1 help · Ctrl-Q quit"
            } else if editor.is_read_only() {
                "Read-only · F1 help · Ctrl-Q quit · F2 next colleague"
            } else {
                "F1 help · Ctrl-S save · Ctrl-Q quit · F2 next colleague"
            };
            (hint.to_owned(), theme::MESSAGE)
        }
    };
    buf.set_style(area, style);
    buf.set_stringn(area.x, area.y, text, usize::from(area.width), style);
    None
}

/// A question with the text being typed (a path, a query) and `suffix`
/// after it (keys, "no match"), dimmed.
fn render_input(
    label: &str,
    input: &LineInput,
    suffix: &str,
    area: Rect,
    buf: &mut Buffer,
) -> Option<Position> {
    let suffix = (suffix, theme::PROMPT.add_modifier(Modifier::DIM));
    super::input_line::render(label, input, suffix, theme::PROMPT, area, buf)
}
