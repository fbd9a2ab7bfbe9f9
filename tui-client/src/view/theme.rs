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

fn distance(a: (u8, u8, u8), b: (u8, u8, u8)) -> u32 {
    let d = |x: u8, y: u8| (i32::from(x) - i32::from(y)).pow(2) as u32;
    d(a.0, b.0) + d(a.1, b.1) + d(a.2, b.2)
}

/// The palette color for an RGB one (others pass through): the nearest of
/// the 256 palette, or for 16 colors the ANSI color of the same hue, so a
/// violet keyword stays violet rather than becoming the nearest gray.
pub fn to_palette(color: Color, depth: ColorDepth, background: bool) -> Color {
    let Color::Rgb(r, g, b) = color else {
        return color;
    };
    match depth {
        ColorDepth::TrueColor | ColorDepth::NoColor => color,
        ColorDepth::Palette256 => Color::Indexed(nearest_256((r, g, b))),
        ColorDepth::Ansi16 => to_ansi16((r, g, b), background),
    }
}

/// The ANSI color of `rgb`'s hue (grays by brightness). A background that
/// is not near-black never becomes black: what it marks (a colleague's
/// selection) would vanish.
fn to_ansi16((r, g, b): (u8, u8, u8), background: bool) -> Color {
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    let chroma = f32::from(max - min);
    if max < 64 && !background {
        return Color::Black;
    }
    if max < 64 || chroma < f32::from(max) * 0.25 {
        return match max {
            0..=63 => Color::Black,
            64..=159 => Color::DarkGray,
            160..=223 => Color::Gray,
            _ => Color::White,
        };
    }
    let (rf, gf, bf) = (f32::from(r), f32::from(g), f32::from(b));
    let hue = if max == r {
        60.0 * ((gf - bf) / chroma)
    } else if max == g {
        60.0 * ((bf - rf) / chroma) + 120.0
    } else {
        60.0 * ((rf - gf) / chroma) + 240.0
    };
    let hue = hue.rem_euclid(360.0);
    let light = max > 200 && min > 80;
    let pick = |normal, bright| if light { bright } else { normal };
    match hue {
        h if !(30.0..330.0).contains(&h) => pick(Color::Red, Color::LightRed),
        h if h < 90.0 => pick(Color::Yellow, Color::LightYellow),
        h if h < 150.0 => pick(Color::Green, Color::LightGreen),
        h if h < 210.0 => pick(Color::Cyan, Color::LightCyan),
        h if h < 270.0 => pick(Color::Blue, Color::LightBlue),
        _ => pick(Color::Magenta, Color::LightMagenta),
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
