//! The chat pane under the text: the conversation (newest at the bottom,
//! each author in their color, `@name` mentions and `path:line`
//! references marked, the picked message highlighted), who is typing or
//! editing, and the input line.

use std::time::Instant;

use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};
use unicode_width::UnicodeWidthStr;

use super::theme;
use crate::core::chat::mentions;
use crate::core::editor::Editor;
use collab_protocol::ChatMessage;

/// Rows the pane takes: a third of the text area, between these.
const MIN_ROWS: u16 = 6;
const MAX_ROWS: u16 = 14;

/// How many rows the pane takes out of a text area `height` rows tall.
pub fn height(height: u16) -> u16 {
    (height / 3)
        .clamp(MIN_ROWS, MAX_ROWS)
        .min(height.saturating_sub(3))
}

/// The color a user's name is drawn in.
fn color_of(editor: &Editor, user_id: &str) -> Color {
    if let Some(me) = editor.me().filter(|me| me.user_id == user_id) {
        return theme::user_color(me.rgb);
    }
    editor
        .presence()
        .users()
        .iter()
        .find(|u| u.user_id == user_id)
        .map_or(Color::Gray, |u| theme::user_color(u.rgb))
}

/// A message as lines: "name: text" (a line per line of text), mentions
/// bold (reversed when they name this user), the reference at the end.
fn message_lines(editor: &Editor, m: &ChatMessage, picked: bool) -> Vec<Line<'static>> {
    let me = editor.me().map(|me| me.name.to_lowercase());
    let base = if picked {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new()
    };
    let mut lines = Vec::new();
    for (i, text) in m.text.split('\n').enumerate() {
        let mut spans = Vec::new();
        if i == 0 {
            let name = base
                .fg(color_of(editor, &m.user_id))
                .add_modifier(Modifier::BOLD);
            spans.push(Span::styled(m.name.clone(), name));
            spans.push(Span::styled(": ", base));
        } else {
            spans.push(Span::styled("  ", base));
        }
        let mut at = 0;
        for (start, end) in mentions(text) {
            spans.push(Span::styled(text[at..start].to_owned(), base));
            let mention = &text[start..end];
            let to_me = me.as_deref() == Some(&mention[1..].to_lowercase());
            let style = if to_me {
                base.fg(Color::Black)
                    .bg(Color::Yellow)
                    .add_modifier(Modifier::BOLD)
            } else {
                base.fg(Color::LightYellow).add_modifier(Modifier::BOLD)
            };
            spans.push(Span::styled(mention.to_owned(), style));
            at = end;
        }
        spans.push(Span::styled(text[at..].to_owned(), base));
        lines.push(Line::from(spans));
    }
    if let (Some(line), Some(last)) = (m.line, lines.last_mut()) {
        let place = match &m.path {
            Some(p) => format!("{p}:{line}"),
            None => format!("line {line}"),
        };
        let link = base.fg(Color::LightCyan).add_modifier(Modifier::UNDERLINED);
        last.spans.push(Span::styled(" → ", base));
        last.spans.push(Span::styled(place, link));
    }
    lines
}

/// Rows `line` takes when wrapped at `width` columns.
fn rows(line: &Line, width: u16) -> usize {
    let w: usize = line.spans.iter().map(|s| s.content.width()).sum();
    w.div_ceil(usize::from(width.max(1))).max(1)
}

/// Who is typing in the chat and who is editing where, in words.
fn activity(editor: &Editor, now: Instant) -> String {
    let chat = editor.chat();
    let presence = editor.presence();
    let typing: Vec<String> = chat
        .typing_now(now)
        .into_iter()
        .map(|u| presence.display_name(u))
        .collect();
    let mut parts = Vec::new();
    match typing.as_slice() {
        [] => {}
        [one] => parts.push(format!("{one} is typing…")),
        many => parts.push(format!("{} are typing…", many.join(", "))),
    }
    for u in presence.users() {
        if let Some(doc) = chat.editing_now(&u.user_id, now) {
            let name = presence.display_name(&u.user_id);
            match doc.and_then(|d| editor.path_of(d)) {
                Some(path) => parts.push(format!("{name} is editing {path}")),
                None => parts.push(format!("{name} is editing")),
            }
        }
    }
    parts.join(" · ")
}

/// Draws the pane; returns where the terminal's cursor belongs when the
/// pane has the keys.
pub fn render(editor: &Editor, area: Rect, buf: &mut Buffer, now: Instant) -> Option<Position> {
    let chat = editor.chat();
    let title = if chat.focused() {
        " Chat · Enter send · ↑↓ pick, Enter jump · Esc text · F9 close "
    } else {
        " Chat · F9 to type "
    };
    let block = Block::new()
        .borders(Borders::TOP)
        .border_style(theme::GUTTER)
        .title(title);
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height < 2 || inner.width < 4 {
        return None;
    }
    let list = Rect {
        height: inner.height - 2,
        ..inner
    };
    let activity_row = Rect {
        y: list.bottom(),
        height: 1,
        ..inner
    };
    let input_row = Rect {
        y: list.bottom() + 1,
        height: 1,
        ..inner
    };
    // The newest messages that fit (gathered newest first), oldest of
    // them at the top.
    let mut newest_first: Vec<Vec<Line>> = Vec::new();
    let mut used = 0;
    for (i, m) in chat.messages().iter().enumerate().rev() {
        let ls = message_lines(editor, m, chat.picked() == Some(i));
        used += ls.iter().map(|l| rows(l, list.width)).sum::<usize>();
        newest_first.push(ls);
        // Past the picked one (it must show) and the pane full: stop.
        if used >= usize::from(list.height) && chat.picked().is_none_or(|p| p >= i) {
            break;
        }
    }
    let mut lines: Vec<Line> = newest_first.into_iter().rev().flatten().collect();
    if lines.is_empty() {
        lines.push(Line::styled(
            "No messages yet. Mention a file as path:line to link it.",
            theme::GUTTER,
        ));
    }
    let skip = used.saturating_sub(usize::from(list.height));
    // With a message picked, scroll so that it shows.
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .scroll((u16::try_from(skip).unwrap_or(u16::MAX), 0))
        .render(list, buf);
    Line::styled(
        activity(editor, now),
        theme::GUTTER.add_modifier(Modifier::ITALIC),
    )
    .render(activity_row, buf);
    render_input(editor, input_row, buf)
}

/// The input line ("> " and what is typed, its end kept in view); the
/// terminal cursor is there while the chat has the keys.
fn render_input(editor: &Editor, area: Rect, buf: &mut Buffer) -> Option<Position> {
    let chat = editor.chat();
    let focused = chat.focused();
    let style = if focused {
        theme::PROMPT
    } else {
        theme::GUTTER
    };
    let placeholder = if !focused && chat.input.text().is_empty() {
        "(F9 to write)"
    } else {
        ""
    };
    let at = super::input_line::render("> ", &chat.input, (placeholder, style), style, area, buf);
    at.filter(|_| focused)
}
