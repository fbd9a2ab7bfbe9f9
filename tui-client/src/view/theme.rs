//! The editor's colors in one place, so tests and renderers agree on them,
//! and how they come down to what the terminal can show: the view draws in
//! RGB, then [`downgrade`] maps each cell to the 256- or 16-color palette,
//! or strips colors for `NO_COLOR` (keeping reverse video where a
//! background marked something: selections, carets, bars).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};

use crate::core::syntax::Highlight;

/// What the terminal can show; the shell finds out, the view obeys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ColorDepth {
    /// 24-bit color.
    #[default]
    TrueColor,
    /// The xterm 256-color palette.
    Palette256,
    /// The 16 ANSI colors.
    Ansi16,
    /// No colors at all (`NO_COLOR`): reverse, bold, italic and underline
    /// only.
    NoColor,
}

/// The syntax classes' styles: a handful of colors (a muted "one dark"),
/// all readable on the selection's and colleagues' backgrounds, none of
/// them a background itself, so carets and selections stay on top.
pub fn syntax(class: Highlight) -> Style {
    let fg = |r, g, b| Style::new().fg(Color::Rgb(r, g, b));
    match class {
        Highlight::Keyword => fg(198, 120, 221),
        Highlight::String => fg(152, 195, 121),
        Highlight::Escape | Highlight::Constant => fg(209, 154, 102),
        Highlight::Comment => fg(127, 132, 142).add_modifier(Modifier::ITALIC),
        Highlight::Function => fg(97, 175, 239),
        Highlight::Type => fg(229, 192, 123),
        Highlight::Property => fg(86, 182, 194),
        Highlight::Builtin => fg(224, 108, 117),
        Highlight::Heading => fg(224, 108, 117).add_modifier(Modifier::BOLD),
        Highlight::Link => fg(86, 182, 194).add_modifier(Modifier::UNDERLINED),
    }
}

/// Background of search matches other than the current one (the current
/// one is the selection).
pub const MATCH_BG: Color = Color::Rgb(92, 82, 34);

/// Brings every cell of `area` down to `depth`.
pub fn downgrade(buf: &mut Buffer, area: Rect, depth: ColorDepth) {
    if depth == ColorDepth::TrueColor {
        return;
    }
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            let cell = &mut buf[(x, y)];
            if depth == ColorDepth::NoColor {
                if cell.bg != Color::Reset {
                    cell.modifier.insert(Modifier::REVERSED);
                }
                cell.fg = Color::Reset;
                cell.bg = Color::Reset;
            } else {
                cell.fg = to_palette(cell.fg, depth, false);
                cell.bg = to_palette(cell.bg, depth, true);
            }
        }
    }
}

/// The xterm palette's first 16 colors, as most terminals default them.
const ANSI: [(Color, (u8, u8, u8)); 16] = [
    (Color::Black, (0, 0, 0)),
    (Color::Red, (205, 0, 0)),
    (Color::Green, (0, 205, 0)),
    (Color::Yellow, (205, 205, 0)),
    (Color::Blue, (0, 0, 238)),
    (Color::Magenta, (205, 0, 205)),
    (Color::Cyan, (0, 205, 205)),
    (Color::Gray, (229, 229, 229)),
    (Color::DarkGray, (127, 127, 127)),
    (Color::LightRed, (255, 0, 0)),
    (Color::LightGreen, (0, 255, 0)),
    (Color::LightYellow, (255, 255, 0)),
    (Color::LightBlue, (92, 92, 255)),
    (Color::LightMagenta, (255, 0, 255)),
    (Color::LightCyan, (0, 255, 255)),
    (Color::White, (255, 255, 255)),
];

fn distance(a: (u8, u8, u8), b: (u8, u8, u8)) -> u32 {
    let d = |x: u8, y: u8| (i32::from(x) - i32::from(y)).pow(2) as u32;
    d(a.0, b.0) + d(a.1, b.1) + d(a.2, b.2)
}

/// The nearest palette color to an RGB one (others pass through). A
/// background that is not near-black never becomes black in 16 colors:
/// what it marks (a colleague's selection) would vanish.
pub fn to_palette(color: Color, depth: ColorDepth, background: bool) -> Color {
    let Color::Rgb(r, g, b) = color else {
        return color;
    };
    let rgb = (r, g, b);
    match depth {
        ColorDepth::TrueColor | ColorDepth::NoColor => color,
        ColorDepth::Palette256 => Color::Indexed(nearest_256(rgb)),
        ColorDepth::Ansi16 => {
            let keep_black = !background || r.max(g).max(b) < 64;
            ANSI.iter()
                .filter(|(c, _)| keep_black || *c != Color::Black)
                .min_by_key(|(_, v)| distance(rgb, *v))
                .map_or(color, |(c, _)| *c)
        }
    }
}

/// The nearest of the 6x6x6 cube and the 24 grays of the 256 palette.
fn nearest_256(rgb: (u8, u8, u8)) -> u8 {
    const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
    let level = |c: u8| {
        (0..6)
            .min_by_key(|&i| (i32::from(LEVELS[i]) - i32::from(c)).abs())
            .unwrap_or(0)
    };
    let (ri, gi, bi) = (level(rgb.0), level(rgb.1), level(rgb.2));
    let cube = 16 + 36 * ri + 6 * gi + bi;
    let cube_rgb = (LEVELS[ri], LEVELS[gi], LEVELS[bi]);
    let avg = (u32::from(rgb.0) + u32::from(rgb.1) + u32::from(rgb.2)) / 3;
    let gray_i = (avg.saturating_sub(8) / 10).min(23) as u8;
    let g = 8 + 10 * gray_i;
    if distance(rgb, (g, g, g)) < distance(rgb, cube_rgb) {
        232 + gray_i
    } else {
        cube as u8
    }
}

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
