//! The side panel listing who is in the room, each in their color: who
//! edits and where (their caret's line), who only views or watches, two
//! people of the same name told apart, and whether the list is current
//! (while offline it is what the server last said).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Padding, Paragraph, Widget};
use unicode_width::UnicodeWidthStr;

use super::theme;
use crate::core::editor::{ClickArea, ClickTarget, ConnState, Editor};
use crate::core::text_layout as tl;
use collab_protocol::Role;

/// The narrowest and widest the panel gets, border included.
const MIN_WIDTH: u16 = 14;
const MAX_WIDTH: u16 = 30;

/// How a role is marked after a name (editors are not marked).
fn role_mark(role: Role) -> &'static str {
    match role {
        Role::Editor | Role::Other => "",
        Role::Viewer => " (views)",
        Role::Watcher => " (script)",
    }
}

/// The panel's entries: (color, name, dim suffix), this user first.
fn entries(editor: &Editor) -> Vec<((u8, u8, u8), String, String)> {
    let mut out = Vec::new();
    if let Some(me) = editor.me() {
        let role = if editor.is_read_only() {
            " (you, views)"
        } else {
            " (you)"
        };
        out.push((me.rgb, me.name.clone(), role.to_owned()));
    }
    let presence = editor.presence();
    for u in presence.users() {
        let place = match (u.role, u.cursor, editor.place_of(&u.user_id)) {
            // A project: their file (its name) and line.
            (Role::Editor, _, Some((path, line))) => {
                let name = path.rsplit('/').next().unwrap_or(&path);
                match line {
                    Some(l) => format!(" {name}:{l}"),
                    None => format!(" {name}"),
                }
            }
            (Role::Editor, Some(c), None) => format!(" :{}", tl::line_of(editor.text(), c) + 1),
            (role, _, _) => role_mark(role).to_owned(),
        };
        out.push((u.rgb, presence.display_name(&u.user_id), place));
    }
    out
}

/// Under the names while offline: they are what the server last said.
const STALE_NOTE: &str = "offline: stale";

/// The width the panel wants for the editor's current users.
pub fn width(editor: &Editor) -> u16 {
    if editor.owner_menu().is_some() {
        let widest = editor
            .owner_items()
            .iter()
            .map(|(_, label)| label.width())
            .max()
            .unwrap_or(0);
        return (widest as u16 + 3).clamp(MIN_WIDTH, 40);
    }
    let widest = entries(editor)
        .iter()
        .map(|(_, name, extra)| name.width() + extra.width() + 2)
        .chain(is_stale(editor).then_some(STALE_NOTE.len()))
        .max()
        .unwrap_or(0);
    // Border and padding.
    (widest as u16 + 3).clamp(MIN_WIDTH, MAX_WIDTH)
}

fn is_stale(editor: &Editor) -> bool {
    *editor.conn() != ConnState::Connected
}

/// Draws the owner's menu in the panel's place.
fn render_owner_menu(editor: &Editor, area: Rect, buf: &mut Buffer) {
    let selected = editor.owner_menu().map_or(0, |m| m.selected);
    let lines: Vec<Line> = editor
        .owner_items()
        .into_iter()
        .enumerate()
        .map(|(i, (_, label))| {
            let style = if i == selected {
                Style::new().add_modifier(Modifier::REVERSED)
            } else {
                Style::new()
            };
            Line::styled(label, style)
        })
        .chain([Line::styled("↑↓ Enter · Esc", theme::GUTTER)])
        .collect();
    let block = Block::new()
        .borders(Borders::LEFT)
        .border_style(theme::GUTTER)
        .padding(Padding::left(1))
        .title(" Owner ");
    Paragraph::new(lines).block(block).render(area, buf);
}

/// Draws the panel; returns where each colleague's line is (a click
/// follows them).
pub fn render(editor: &Editor, area: Rect, buf: &mut Buffer) -> Vec<ClickArea> {
    if editor.owner_menu().is_some() {
        render_owner_menu(editor, area, buf);
        return Vec::new();
    }
    let stale = is_stale(editor);
    let name_style = if stale {
        Style::new().add_modifier(Modifier::DIM)
    } else {
        Style::new()
    };
    let mut lines: Vec<Line> = entries(editor)
        .into_iter()
        .enumerate()
        .map(|(i, (rgb, name, extra))| {
            let style = if i == 0 && editor.me().is_some() {
                name_style.add_modifier(Modifier::BOLD)
            } else {
                name_style
            };
            Line::from(vec![
                Span::styled("■ ", Style::new().fg(theme::user_color(rgb))),
                Span::styled(name, style),
                Span::styled(extra, theme::GUTTER),
            ])
        })
        .collect();
    let count = lines.len();
    if stale && count > 0 {
        lines.push(Line::styled(STALE_NOTE, theme::GUTTER));
    }
    let following = editor.following();
    for (line, u) in lines
        .iter_mut()
        .skip(usize::from(editor.me().is_some()))
        .zip(editor.presence().users())
    {
        if following == Some(u.user_id.as_str()) {
            line.spans.push(Span::styled(" ◀", theme::GUTTER));
        }
    }
    let title = format!(" Users ({count}) ");
    let block = Block::new()
        .borders(Borders::LEFT)
        .border_style(theme::GUTTER)
        .padding(Padding::left(1))
        .title(title);
    let inner = block.inner(area);
    Paragraph::new(lines).block(block).render(area, buf);
    let first = usize::from(editor.me().is_some());
    editor
        .presence()
        .users()
        .iter()
        .enumerate()
        .map(|(i, u)| (inner.y + (first + i) as u16, u))
        .filter(|(y, _)| *y < inner.bottom())
        .map(|(y, u)| ClickArea {
            x: inner.x,
            y,
            width: inner.width,
            target: ClickTarget::User(u.user_id.clone()),
        })
        .collect()
}
