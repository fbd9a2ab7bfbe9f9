//! Taking over the terminal and, whatever happens, giving it back: raw mode
//! off, alternate screen left, mouse capture and bracketed paste disabled,
//! cursor shown. Restoring runs on drop (normal exit and `?` errors) and from
//! a panic hook (before the panic message prints, so it is readable).

use std::io::{self, Stdout, Write};
use std::sync::Once;

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use crate::view::ColorDepth;

/// The terminal while the editor owns it.
pub struct Tui {
    /// The ratatui terminal to draw on.
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

/// Puts the terminal back to normal; harmless when it already is.
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

impl Tui {
    /// Switches the terminal to the editor's mode.
    pub fn enter() -> io::Result<Self> {
        install_panic_hook();
        enable_raw_mode()?;
        let setup = execute!(
            io::stdout(),
            EnterAlternateScreen,
            EnableMouseCapture,
            EnableBracketedPaste
        )
        .and_then(|()| Terminal::new(CrosstermBackend::new(io::stdout())));
        match setup {
            Ok(terminal) => Ok(Self { terminal }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }
}

/// Texts longer than this (in bytes) are not offered to the system
/// clipboard: terminals cap OSC 52 (xterm and tmux near 100 KB of base64)
/// and some stall on longer sequences.
pub const OSC52_MAX_BYTES: usize = 74_000;

/// Asks the terminal behind `out` (the backend the editor draws on) to put
/// `text` on the system clipboard with OSC 52, which also works over SSH and
/// in tmux with `set-clipboard on`; terminals that do not support it ignore
/// it. Returns false, writing nothing, for a text over [`OSC52_MAX_BYTES`].
pub fn copy_to_clipboard(out: &mut impl Write, text: &str) -> io::Result<bool> {
    if text.len() > OSC52_MAX_BYTES {
        return Ok(false);
    }
    write!(out, "\x1b]52;c;{}\x07", base64(text.as_bytes()))?;
    out.flush()?;
    Ok(true)
}

/// Whether copies go to the system clipboard: not with `--no-osc52`, nor
/// with `COLLAB_OSC52` set to 0, false, off or no.
pub fn osc52_enabled(no_osc52_flag: bool, env: Option<&str>) -> bool {
    let off = env.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "0" | "false" | "off" | "no"
        )
    });
    !no_osc52_flag && !off
}

/// The colors the terminal shows, from the environment (`get` reads a
/// variable): none when `NO_COLOR` is set and not empty (no-color.org),
/// 24-bit when `COLORTERM` says truecolor or 24bit, or inside tmux (`TMUX`
/// set: tmux itself brings 24-bit colors down to what the terminal outside
/// shows, and knows that better than `TERM` inside it), 256 when `TERM`
/// names a 256-color terminal, else the 16 ANSI colors.
pub fn color_depth(get: impl Fn(&str) -> Option<String>) -> ColorDepth {
    if get("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        return ColorDepth::NoColor;
    }
    let colorterm = get("COLORTERM").unwrap_or_default().to_ascii_lowercase();
    if colorterm == "truecolor" || colorterm == "24bit" {
        return ColorDepth::TrueColor;
    }
    if get("TMUX").is_some_and(|v| !v.is_empty()) {
        return ColorDepth::TrueColor;
    }
    if get("TERM").is_some_and(|t| t.contains("256color")) {
        return ColorDepth::Palette256;
    }
    ColorDepth::Ansi16
}

/// The colours for `--color` `choice`: `never` none, `always` what the
/// terminal shows even with `NO_COLOR` set, `auto` as [`color_depth`].
pub fn color_depth_for(
    choice: crate::cli::ColorChoice,
    get: impl Fn(&str) -> Option<String>,
) -> ColorDepth {
    use crate::cli::ColorChoice;
    match choice {
        ColorChoice::Never => ColorDepth::NoColor,
        ColorChoice::Auto => color_depth(get),
        ColorChoice::Always => color_depth(|k| if k == "NO_COLOR" { None } else { get(k) }),
    }
}

/// Standard base64 with padding (RFC 4648), as OSC 52 wants it.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Drop for Tui {
    fn drop(&mut self) {
        restore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_decides_the_colors() {
        fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        }
        let truecolor = [("COLORTERM", "truecolor"), ("TERM", "xterm-256color")];
        assert_eq!(color_depth(env(&truecolor)), ColorDepth::TrueColor);
        assert_eq!(
            color_depth(env(&[("TERM", "tmux-256color")])),
            ColorDepth::Palette256
        );
        assert_eq!(color_depth(env(&[("TERM", "xterm")])), ColorDepth::Ansi16);
        let tmux = [("TERM", "screen"), ("TMUX", "/tmp/tmux-0/default,1,0")];
        assert_eq!(color_depth(env(&tmux)), ColorDepth::TrueColor);
        let no_color = [("NO_COLOR", "1"), ("COLORTERM", "truecolor")];
        assert_eq!(color_depth(env(&no_color)), ColorDepth::NoColor);
        let empty = [("NO_COLOR", ""), ("COLORTERM", "24bit")];
        assert_eq!(color_depth(env(&empty)), ColorDepth::TrueColor);
        // --color: never beats the terminal, always beats NO_COLOR.
        use crate::cli::ColorChoice;
        assert_eq!(
            color_depth_for(ColorChoice::Never, env(&truecolor)),
            ColorDepth::NoColor
        );
        assert_eq!(
            color_depth_for(ColorChoice::Always, env(&no_color)),
            ColorDepth::TrueColor
        );
        assert_eq!(
            color_depth_for(ColorChoice::Auto, env(&no_color)),
            ColorDepth::NoColor
        );
    }

    #[test]
    fn osc52_can_be_turned_off() {
        assert!(osc52_enabled(false, None));
        assert!(osc52_enabled(false, Some("1")));
        assert!(!osc52_enabled(false, Some("0")));
        assert!(!osc52_enabled(false, Some("off")));
        assert!(!osc52_enabled(true, None));
    }

    #[test]
    fn a_long_text_is_not_offered_to_the_terminal() {
        let mut out = Vec::new();
        let long = "x".repeat(OSC52_MAX_BYTES + 1);
        assert!(!copy_to_clipboard(&mut out, &long).unwrap());
        assert!(out.is_empty());
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
            ("collab join x", "Y29sbGFiIGpvaW4geA=="),
        ] {
            assert_eq!(super::base64(plain.as_bytes()), encoded);
        }
    }
}
