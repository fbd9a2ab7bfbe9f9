//! Rendering: turns the editor's state into a frame. Pure apart from
//! writing into ratatui's buffer, so `TestBackend` tests see exactly what a
//! terminal would.

pub mod chat_pane;
pub mod completion;
pub mod document;
pub mod files_panel;
pub mod help;
pub mod input_line;
pub mod picker;
pub mod status;
pub mod theme;
pub mod users_panel;

#[cfg(test)]
mod chat_tests;
#[cfg(test)]
mod completion_tests;
#[cfg(test)]
mod highlight_tests;
#[cfg(test)]
mod project_tests;
#[cfg(test)]
mod tests;

use std::time::Instant;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::Frame;

use crate::core::editor::{Editor, Viewport};
use crate::core::text_layout as tl;
pub use theme::ColorDepth;

/// Panels below this terminal width leave the whole width to the text.
const PANEL_MIN_WIDTH: u16 = 60;

/// Draws the whole screen in 24-bit color; see [`draw_with`].
pub fn draw(frame: &mut Frame, editor: &mut Editor, now: Instant) {
    draw_with(frame, editor, now, ColorDepth::TrueColor);
}

/// Draws the whole screen for a terminal of `depth`. Takes the editor
/// mutably because the view owns scrolling: it tells the editor where the
/// text area is so the caret stays on screen.
pub fn draw_with(frame: &mut Frame, editor: &mut Editor, now: Instant, depth: ColorDepth) {
    let area = frame.area();
    if area.height < 3 || area.width < 10 {
        return;
    }
    let [main, status, message] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    // The side bar: the file list above the users panel, either alone.
    let users = editor.users_panel_visible();
    let files = editor.files_panel_visible();
    let (text_area, panel, files_area) = if (users || files) && area.width >= PANEL_MIN_WIDTH {
        let mut width = 0;
        if users {
            width = users_panel::width(editor);
        }
        if files {
            width = width.max(files_panel::width(editor));
        }
        let [t, side] =
            Layout::horizontal([Constraint::Min(1), Constraint::Length(width)]).areas(main);
        match (files, users) {
            (true, true) => {
                let users_rows = (editor.presence().users().len() as u16 + 3).min(side.height / 2);
                let [f, u] = Layout::vertical([Constraint::Min(1), Constraint::Length(users_rows)])
                    .areas(side);
                (t, Some(u), Some(f))
            }
            (true, false) => (t, None, Some(side)),
            _ => (t, Some(side), None),
        }
    } else {
        (main, None, None)
    };
    // The chat pane under the text, when open.
    let (text_area, chat_area) = if editor.chat().shown() && text_area.height >= 9 {
        let rows = chat_pane::height(text_area.height);
        let [t, c] =
            Layout::vertical([Constraint::Min(1), Constraint::Length(rows)]).areas(text_area);
        (t, Some(c))
    } else {
        (text_area, None)
    };
    let gutter = document::gutter_width(tl::line_count(editor.text())).min(text_area.width);
    editor.set_viewport(Viewport {
        x: text_area.x + gutter,
        y: text_area.y,
        width: text_area.width - gutter,
        height: text_area.height,
    });
    let buf = frame.buffer_mut();
    let caret = document::render(editor, text_area, buf, depth);
    let mut clickable = Vec::new();
    if let Some(panel) = panel {
        clickable.extend(users_panel::render(editor, panel, buf));
    }
    if let Some(files) = files_area {
        clickable.extend(files_panel::render(editor, files, buf));
    }
    let chat_cursor = chat_area.and_then(|c| chat_pane::render(editor, c, buf, now));
    completion::render(editor, text_area, caret, buf);
    let picker_cursor = picker::render(editor, text_area, buf);
    status::render_status(editor, now, status, buf);
    let prompt_cursor = status::render_message(editor, message, buf);
    if editor.help_visible() {
        let over = Rect {
            height: main.height,
            ..area
        };
        help::render(editor, over, frame.buffer_mut());
    }
    theme::downgrade(frame.buffer_mut(), area, depth);
    editor.set_click_areas(clickable);
    // The help covers the caret; typing goes to an open prompt, and the
    // cursor shows where.
    let cursor = if editor.help_visible() {
        None
    } else if editor.picker().is_some() {
        picker_cursor
    } else if editor.prompt().is_some() {
        prompt_cursor
    } else if editor.chat().focused() {
        chat_cursor
    } else {
        caret
    };
    if let Some(pos) = cursor {
        frame.set_cursor_position(pos);
    }
}
