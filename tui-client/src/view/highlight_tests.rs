//! Syntax colors on ratatui's `TestBackend`: exact styles at exact cells for
//! Rust and Python, highlighting that stays right after colleagues' edits
//! (the incremental reparse), carets and selections on top of it, search
//! matches, and what 256-color, 16-color and `NO_COLOR` terminals get.

use std::time::Instant;

use collab_protocol::{Operation, ServerMessage};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier, Style};
use ratatui::Terminal;

use super::{draw_with, theme, ColorDepth};
use crate::core::editor::Editor;
use crate::core::editor_tests::{init_msg, remote, user};

const TEXT_X: u16 = 4;

const KEYWORD: Color = Color::Rgb(198, 120, 221);
const FUNCTION: Color = Color::Rgb(97, 175, 239);
const STRING: Color = Color::Rgb(152, 195, 121);
const COMMENT: Color = Color::Rgb(127, 132, 142);
const TYPE: Color = Color::Rgb(229, 192, 123);
const CONSTANT: Color = Color::Rgb(209, 154, 102);

fn editor(language: &str, code: &str, users: Vec<collab_protocol::UserInfo>) -> Editor {
    let mut ed = Editor::new("AbCdEfGhIjKlMnOpQrStUv", "me", None);
    let mut init = init_msg(3, code, users);
    if let ServerMessage::Init { language: l, .. } = &mut init {
        *l = language.into();
    }
    ed.on_server(init);
    ed
}

fn render_at(ed: &mut Editor, depth: ColorDepth) -> Buffer {
    let mut term = Terminal::new(TestBackend::new(80, 12)).unwrap();
    term.draw(|f| draw_with(f, ed, Instant::now(), depth))
        .unwrap();
    term.backend().buffer().clone()
}

fn render(ed: &mut Editor) -> Buffer {
    render_at(ed, ColorDepth::TrueColor)
}

/// The style of the text cell at (`col`, `row`).
fn style(buf: &Buffer, col: u16, row: u16) -> Style {
    buf[(TEXT_X + col, row)].style()
}

fn fg(buf: &Buffer, col: u16, row: u16) -> Color {
    buf[(TEXT_X + col, row)].fg
}

#[test]
fn rust_is_highlighted_cell_by_cell() {
    let code = "fn main() {\n    let n = Some(42); // note\n    println!(\"hi\");\n}";
    let mut ed = editor("rust", code, vec![]);
    let buf = render(&mut ed);
    // `fn` keyword, `main` function.
    for col in 0..2 {
        assert_eq!(fg(&buf, col, 0), KEYWORD, "col {col}");
    }
    assert_eq!(fg(&buf, 2, 0), Color::Reset, "the space is plain");
    for col in 3..7 {
        assert_eq!(fg(&buf, col, 0), FUNCTION);
    }
    // `let`, a plain variable, `Some` a type, `42` a constant.
    assert_eq!(fg(&buf, 4, 1), KEYWORD);
    assert_eq!(fg(&buf, 8, 1), Color::Reset);
    assert_eq!(fg(&buf, 12, 1), TYPE);
    assert_eq!(fg(&buf, 17, 1), CONSTANT);
    assert_eq!(fg(&buf, 18, 1), CONSTANT);
    // The comment: grey italic, every cell of it.
    for col in 22..29 {
        assert_eq!(
            style(&buf, col, 1),
            Style::new()
                .fg(COMMENT)
                .bg(Color::Reset)
                .underline_color(Color::Reset)
                .add_modifier(Modifier::ITALIC),
            "col {col}"
        );
    }
    // A macro call and its string.
    assert_eq!(fg(&buf, 4, 2), FUNCTION);
    for col in 13..17 {
        assert_eq!(fg(&buf, col, 2), STRING, "col {col}");
    }
    assert_eq!(fg(&buf, 17, 2), Color::Reset, "`)` is plain");
}

#[test]
fn python_is_highlighted_cell_by_cell() {
    let code = "def area(r):\n    return 3.14 * r * r  # circle\nprint(\"ok\")\n";
    let mut ed = editor("python", code, vec![]);
    let buf = render(&mut ed);
    for col in 0..3 {
        assert_eq!(fg(&buf, col, 0), KEYWORD);
    }
    for col in 4..8 {
        assert_eq!(fg(&buf, col, 0), FUNCTION);
    }
    for col in 4..10 {
        assert_eq!(fg(&buf, col, 1), KEYWORD, "return, col {col}");
    }
    for col in 11..15 {
        assert_eq!(fg(&buf, col, 1), CONSTANT, "3.14, col {col}");
    }
    assert_eq!(fg(&buf, 16, 1), Color::Reset, "`*` is plain");
    assert_eq!(
        style(&buf, 26, 1),
        Style::new()
            .fg(COMMENT)
            .bg(Color::Reset)
            .underline_color(Color::Reset)
            .add_modifier(Modifier::ITALIC)
    );
    for col in 0..5 {
        assert_eq!(fg(&buf, col, 2), FUNCTION, "print, col {col}");
    }
    for col in 6..10 {
        assert_eq!(fg(&buf, col, 2), STRING);
    }
}

/// The text area's cells (symbol and style) of the document's six lines,
/// for comparing screens (the status bar's revision differs).
fn cells(buf: &Buffer) -> Vec<(String, Style)> {
    let mut out = Vec::new();
    for y in 0..6 {
        for x in TEXT_X..50 {
            let c = &buf[(x, y)];
            out.push((c.symbol().to_owned(), c.style()));
        }
    }
    out
}

/// The incremental-parse regression test: colleagues' edits in the middle
/// of a multi-line comment and of a multi-line string repaint what they
/// change, and the screen is exactly what a fresh parse of the same text
/// gives.
#[test]
fn remote_edits_inside_multiline_comments_and_strings_repaint_right() {
    let code = "/* start\n   fn hidden() {}\n   end */\nlet s = \"one\ntwo\";\nfn after() {}\n";
    let mut ed = editor("rust", code, vec![]);
    let buf = render(&mut ed);
    assert_eq!(fg(&buf, 3, 1), COMMENT, "inside the comment");
    assert_eq!(fg(&buf, 0, 4), STRING, "second line of the string");
    assert_eq!(fg(&buf, 0, 5), KEYWORD);

    // Bob closes the comment in its middle, after "start".
    let len = ed.text().len_chars();
    ed.on_server(remote(4, Operation::replace(len, 8, 8, " */").unwrap()));
    let buf = render(&mut ed);
    assert_eq!(fg(&buf, 3, 1), KEYWORD, "`fn` on line 2 is code now");
    assert_eq!(fg(&buf, 6, 1), FUNCTION);
    let fresh = render(&mut editor("rust", &ed.text().to_string(), vec![]));
    assert_eq!(cells(&buf), cells(&fresh));

    // And closes the string on its first line: `two` becomes code.
    let text = ed.text().to_string();
    let at = text[..text.find("one").unwrap() + 3].chars().count();
    let len = ed.text().len_chars();
    ed.on_server(remote(5, Operation::replace(len, at, at, "\";").unwrap()));
    let buf = render(&mut ed);
    assert_ne!(fg(&buf, 0, 4), STRING, "{:?}", ed.text().line(4));
    let fresh = render(&mut editor("rust", &ed.text().to_string(), vec![]));
    assert_eq!(cells(&buf), cells(&fresh));

    // Undoing it through a colleague's delete brings the string back.
    let len = ed.text().len_chars();
    ed.on_server(remote(6, Operation::replace(len, at, at + 2, "").unwrap()));
    let buf = render(&mut ed);
    assert_eq!(fg(&buf, 0, 4), STRING);
}

#[test]
fn carets_and_selections_stay_on_top_of_the_colors() {
    // Bob's caret on `main`'s "a", his selection over `fn`.
    let users = vec![user("bob", "#e6194b", Some(4), Some(0))];
    let mut ed = editor("rust", "fn main() {}\nlet x = 1;", users);
    ed.handle_event(&Event::Key(KeyEvent::new(
        KeyCode::Down,
        KeyModifiers::SHIFT,
    )));
    let buf = render(&mut ed);
    let caret = &buf[(TEXT_X + 4, 0)];
    assert_eq!(caret.bg, Color::Rgb(0xe6, 0x19, 0x4b));
    assert_eq!(caret.fg, theme::text_on((0xe6, 0x19, 0x4b)), "readable");
    // Our own selection (line 1 to line 2) over the keyword keeps its color.
    assert_eq!(buf[(TEXT_X, 0)].bg, theme::SELECTION_BG);
    assert_eq!(buf[(TEXT_X, 0)].fg, KEYWORD);
}

#[test]
fn search_matches_are_marked_and_the_current_one_is_selected() {
    let mut ed = editor("plaintext", "ab ab\nab", vec![]);
    ed.handle_event(&Event::Key(KeyEvent::new(
        KeyCode::Char('f'),
        KeyModifiers::CONTROL,
    )));
    for c in "ab".chars() {
        ed.handle_event(&Event::Key(KeyEvent::new(
            KeyCode::Char(c),
            KeyModifiers::NONE,
        )));
    }
    let buf = render(&mut ed);
    assert_eq!(buf[(TEXT_X, 0)].bg, theme::SELECTION_BG, "the current one");
    assert_eq!(buf[(TEXT_X + 3, 0)].bg, theme::MATCH_BG);
    assert_eq!(buf[(TEXT_X + 2, 0)].bg, Color::Reset);
    assert_eq!(buf[(TEXT_X, 1)].bg, theme::MATCH_BG);
    let prompt: String = (0..80).map(|x| buf[(x, 11)].symbol()).collect();
    assert!(prompt.starts_with("Find: ab  (Enter/F3 next"), "{prompt:?}");
    // Esc: back to where we were, no marks.
    ed.handle_event(&Event::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)));
    let buf = render(&mut ed);
    assert_eq!(buf[(TEXT_X + 3, 0)].bg, Color::Reset);
    assert_eq!(ed.caret(), 0);
}

#[test]
fn fewer_colors_are_downgraded_and_no_color_keeps_reverse_video() {
    let users = vec![user("bob", "#e6194b", Some(4), None)];
    let code = "fn main() {} // c";
    let mut ed = editor("rust", code, users.clone());
    let buf = render_at(&mut ed, ColorDepth::Palette256);
    assert!(matches!(fg(&buf, 0, 0), Color::Indexed(_)));
    assert!(
        buf.content()
            .iter()
            .all(|c| !matches!(c.fg, Color::Rgb(..)) && !matches!(c.bg, Color::Rgb(..))),
        "no RGB left"
    );
    let buf = render_at(&mut ed, ColorDepth::Ansi16);
    assert_eq!(fg(&buf, 0, 0), Color::LightMagenta, "keyword, by hue");
    assert_eq!(fg(&buf, 14, 0), Color::DarkGray, "comment");
    assert_eq!(buf[(TEXT_X + 4, 0)].bg, Color::Red, "Bob's caret");
    assert!(buf
        .content()
        .iter()
        .all(|c| !matches!(c.fg, Color::Rgb(..) | Color::Indexed(_))));

    // NO_COLOR: not one color; the caret and our selection are reversed,
    // the comment still italic.
    let mut ed = editor("rust", code, users);
    ed.handle_event(&Event::Key(KeyEvent::new(
        KeyCode::Right,
        KeyModifiers::SHIFT,
    )));
    let buf = render_at(&mut ed, ColorDepth::NoColor);
    assert!(buf
        .content()
        .iter()
        .all(|c| c.fg == Color::Reset && c.bg == Color::Reset));
    assert!(buf[(TEXT_X, 0)].modifier.contains(Modifier::REVERSED));
    assert!(buf[(TEXT_X + 4, 0)].modifier.contains(Modifier::REVERSED));
    assert!(!buf[(TEXT_X + 2, 0)].modifier.contains(Modifier::REVERSED));
    assert!(buf[(TEXT_X + 14, 0)].modifier.contains(Modifier::ITALIC));
}

#[test]
fn no_color_in_the_environment_leaves_no_colour_in_the_frame() {
    let env = |k: &str| match k {
        "NO_COLOR" => Some("1".to_owned()),
        "COLORTERM" => Some("truecolor".to_owned()),
        "TERM" => Some("xterm-256color".to_owned()),
        _ => None,
    };
    let depth = crate::terminal::color_depth_for(crate::cli::ColorChoice::Auto, env);
    assert_eq!(depth, ColorDepth::NoColor);
    // Bob's caret at 4, Carol's selection over "main", ours over "f".
    let users = vec![
        user("bob", "#e6194b", Some(14), None),
        user("carol", "#3cb44b", Some(7), Some(3)),
    ];
    let mut ed = editor("rust", "fn main() {} // c", users.clone());
    ed.handle_event(&Event::Key(KeyEvent::new(
        KeyCode::Right,
        KeyModifiers::SHIFT,
    )));
    let buf = render_at(&mut ed, depth);
    let coloured: Vec<_> = buf
        .content()
        .iter()
        .filter(|c| c.fg != Color::Reset || c.bg != Color::Reset)
        .map(|c| c.symbol().to_owned())
        .collect();
    assert!(coloured.is_empty(), "cells with colour: {coloured:?}");
    // Still visible: our selection and Bob's caret reversed, Carol's
    // selection underlined, the comment italic.
    assert!(buf[(TEXT_X, 0)].modifier.contains(Modifier::REVERSED));
    assert!(buf[(TEXT_X + 14, 0)].modifier.contains(Modifier::REVERSED));
    for col in 3..7 {
        assert!(
            buf[(TEXT_X + col, 0)]
                .modifier
                .contains(Modifier::UNDERLINED),
            "Carol's selection at {col}"
        );
    }
    assert!(!buf[(TEXT_X + 1, 0)].modifier.contains(Modifier::UNDERLINED));

    // --color always: NO_COLOR no longer matters.
    let depth = crate::terminal::color_depth_for(crate::cli::ColorChoice::Always, env);
    let buf = render_at(&mut editor("rust", "fn main() {}", users), depth);
    assert_eq!(fg(&buf, 0, 0), KEYWORD);
}

#[test]
fn the_plain_theme_drops_syntax_colours_but_keeps_carets() {
    let users = vec![user("bob", "#e6194b", Some(4), None)];
    let mut ed = editor("rust", "fn main() {}", users).with_plain_text(true);
    let buf = render(&mut ed);
    assert_eq!(fg(&buf, 0, 0), Color::Reset, "no keyword colour");
    assert_eq!(
        buf[(TEXT_X + 4, 0)].bg,
        Color::Rgb(0xe6, 0x19, 0x4b),
        "Bob's caret"
    );
}
