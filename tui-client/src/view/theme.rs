//! The editor's colors in one place, so tests and renderers agree on them.

use ratatui::style::{Color, Modifier, Style};

/// Background of this user's own selection.
pub const SELECTION_BG: Color = Color::Rgb(38, 79, 120);

/// Line numbers.
pub const GUTTER: Style = Style::new().fg(Color::DarkGray);

/// The caret line's number.
pub const GUTTER_CURRENT: Style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);

/// The status bar.
pub const STATUS: Style = Style::new().fg(Color::White).bg(Color::Rgb(48, 48, 48));

/// Hints and notices on the message line.
pub const MESSAGE: Style = Style::new().fg(Color::Gray);

/// A question on the message line.
pub const PROMPT: Style = Style::new().fg(Color::Black).bg(Color::Yellow);

/// A user's color as a terminal color.
pub fn user_color(rgb: (u8, u8, u8)) -> Color {
    Color::Rgb(rgb.0, rgb.1, rgb.2)
}

/// A user's color darkened to shade their selection behind readable text.
pub fn selection_tint(rgb: (u8, u8, u8)) -> Color {
    let dim = |c: u8| (u16::from(c) * 2 / 5) as u8;
    Color::Rgb(dim(rgb.0), dim(rgb.1), dim(rgb.2))
}

/// Black or white, whichever reads better on `rgb`.
pub fn text_on(rgb: (u8, u8, u8)) -> Color {
    let luma = 299 * u32::from(rgb.0) + 587 * u32::from(rgb.1) + 114 * u32::from(rgb.2);
    if luma > 128_000 {
        Color::Black
    } else {
        Color::White
    }
}
