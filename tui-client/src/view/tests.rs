//! Rendering tests on ratatui's `TestBackend`: cell symbols and styles, as a
//! terminal would show them.

use std::time::{Duration, Instant};

use collab_protocol::{Role, ServerMessage};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use ratatui::Terminal;

use super::{draw, theme};
use crate::core::editor::{ConnState, Editor};
use crate::core::editor_tests::{init_msg, user};

const W: u16 = 80;
const H: u16 = 12;

fn editor_with(code: &str, users: Vec<collab_protocol::UserInfo>) -> Editor {
    let mut ed = Editor::new("AbCdEfGhIjKlMnOpQrStUv", "me", None);
    ed.on_server(init_msg(3, code, users));
    ed
}

fn render(ed: &mut Editor, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    let now = Instant::now();
    term.draw(|f| draw(f, ed, now)).unwrap();
    term
}

fn buffer(term: &Terminal<TestBackend>) -> &Buffer {
    term.backend().buffer()
}

fn row(buf: &Buffer, y: u16) -> String {
    (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect()
}

fn key(ed: &mut Editor, code: KeyCode, modifiers: KeyModifiers) {
    ed.handle_event(&Event::Key(KeyEvent::new(code, modifiers)));
}

/// Gutter of a short document: 3 digits and a space.
const TEXT_X: u16 = 4;

#[test]
fn line_numbers_and_text() {
    let mut ed = editor_with("fn main() {\n\tx\n}", vec![]);
    let term = render(&mut ed, W, H);
    let buf = buffer(&term);
    assert!(
        row(buf, 0).starts_with("  1 fn main() {"),
        "{:?}",
        row(buf, 0)
    );
    // The tab is 4 blank cells.
    assert!(row(buf, 1).starts_with("  2     x"), "{:?}", row(buf, 1));
    assert!(row(buf, 2).starts_with("  3 }"));
    assert_eq!(buf[(2, 0)].fg, theme::GUTTER_CURRENT.fg.unwrap());
    assert_eq!(buf[(2, 1)].fg, Color::DarkGray);
    // The caret is the terminal cursor, at the first text cell.
    let mut term = term;
    term.backend_mut().assert_cursor_position((TEXT_X, 0));
}

#[test]
fn remote_caret_selection_and_label_in_their_color() {
    // Bob's caret on "w" (offset 6), selecting "hello " backwards.
    let users = vec![user("bob", "#e6194b", Some(6), Some(0))];
    let mut ed = editor_with("hello world", users);
    let term = render(&mut ed, W, H);
    let buf = buffer(&term);
    let caret = &buf[(TEXT_X + 6, 0)];
    assert_eq!(caret.symbol(), "w");
    assert_eq!(caret.bg, Color::Rgb(0xe6, 0x19, 0x4b));
    // The selection is shaded with a dimmed version of the same color.
    let tint = theme::selection_tint((0xe6, 0x19, 0x4b));
    assert_eq!(buf[(TEXT_X, 0)].bg, tint);
    assert_eq!(buf[(TEXT_X + 5, 0)].bg, tint);
    assert_eq!(buf[(TEXT_X + 7, 0)].bg, Color::Reset);
    // A name tag after the line's text, in their color.
    let line = row(buf, 0);
    let tag = line.find(" bob ").expect("label shown");
    assert!(tag > usize::from(TEXT_X) + 11, "after the text: {line:?}");
    assert_eq!(buf[(tag as u16 + 1, 0)].bg, Color::Rgb(0xe6, 0x19, 0x4b));
    // The side panel lists both users.
    let all: String = (0..H).map(|y| row(buf, y)).collect();
    assert!(all.contains("me (you)") && all.contains("■ bob"), "{all}");
}

#[test]
fn remote_caret_at_a_line_end_is_a_block() {
    let users = vec![user("bob", "#3cb44b", Some(2), None)];
    let mut ed = editor_with("ab\ncd", users);
    let term = render(&mut ed, W, H);
    let cell = &buffer(&term)[(TEXT_X + 2, 0)];
    assert_eq!(
        (cell.symbol(), cell.bg),
        (" ", Color::Rgb(0x3c, 0xb4, 0x4b))
    );
}

#[test]
fn own_selection_is_shaded() {
    let mut ed = editor_with("abc\ndef", vec![]);
    key(&mut ed, KeyCode::Right, KeyModifiers::NONE);
    key(&mut ed, KeyCode::Down, KeyModifiers::SHIFT);
    let term = render(&mut ed, W, H);
    let buf = buffer(&term);
    assert_eq!(buf[(TEXT_X, 0)].bg, Color::Reset);
    for x in 1..3 {
        assert_eq!(buf[(TEXT_X + x, 0)].bg, theme::SELECTION_BG);
    }
    // The selected line break shows as one shaded cell.
    assert_eq!(buf[(TEXT_X + 3, 0)].bg, theme::SELECTION_BG);
    assert_eq!(buf[(TEXT_X, 1)].bg, theme::SELECTION_BG);
    assert_eq!(buf[(TEXT_X + 1, 1)].bg, Color::Reset);
}

#[test]
fn wide_chars_take_two_cells_and_marks_none() {
    let users = vec![user("bob", "#4363d8", Some(1), None)];
    let mut ed = editor_with("a界b e\u{301}!", users);
    let term = render(&mut ed, W, H);
    let buf = buffer(&term);
    assert_eq!(buf[(TEXT_X, 0)].symbol(), "a");
    assert_eq!(buf[(TEXT_X + 1, 0)].symbol(), "界");
    // The remote caret on the wide char colors its cell.
    assert_eq!(buf[(TEXT_X + 1, 0)].bg, Color::Rgb(0x43, 0x63, 0xd8));
    assert_eq!(buf[(TEXT_X + 3, 0)].symbol(), "b");
    assert_eq!(buf[(TEXT_X + 5, 0)].symbol(), "e\u{301}");
    assert_eq!(buf[(TEXT_X + 6, 0)].symbol(), "!");
    let mut term = term;
    key(&mut ed, KeyCode::End, KeyModifiers::NONE);
    term.draw(|f| draw(f, &mut ed, Instant::now())).unwrap();
    term.backend_mut().assert_cursor_position((TEXT_X + 7, 0));
}

#[test]
fn horizontal_scrolling_follows_the_caret() {
    let long: String = ('a'..='z').cycle().take(100).collect();
    let mut ed = editor_with(&format!("{long}\nshort"), vec![]);
    key(&mut ed, KeyCode::End, KeyModifiers::NONE);
    // 40 wide, no side panel: 36 text cells.
    let mut term = render(&mut ed, 40, 6);
    let buf = buffer(&term).clone();
    // The caret (column 100) is in the last text cell, so columns 65..=99
    // are visible: 'a' + 65 % 26 = 'n'.
    assert_eq!(buf[(TEXT_X, 0)].symbol(), "n");
    assert_eq!(buf[(39, 0)].symbol(), " ");
    assert_eq!(buf[(38, 0)].symbol(), "v");
    term.backend_mut().assert_cursor_position((39, 0));
    // The second line is scrolled the same way: empty there.
    assert_eq!(row(&buf, 1).trim(), "2");
    key(&mut ed, KeyCode::Home, KeyModifiers::NONE);
    term.draw(|f| draw(f, &mut ed, Instant::now())).unwrap();
    assert_eq!(term.backend().buffer()[(TEXT_X, 0)].symbol(), "a");
}

#[test]
fn a_wide_char_cut_by_the_left_edge_shows_blank() {
    let mut ed = editor_with(&format!("a{}xy", "界".repeat(20)), vec![]);
    key(&mut ed, KeyCode::End, KeyModifiers::NONE);
    let term = render(&mut ed, 20, 5);
    let buf = buffer(&term);
    // 16 text cells; the caret (column 43) is in the last one: columns
    // 28..=43. Wide chars start at odd columns, so column 28 is the second
    // half of one.
    assert_eq!(buf[(TEXT_X, 0)].symbol(), " ");
    assert_eq!(buf[(TEXT_X + 1, 0)].symbol(), "界");
    assert_eq!(buf[(TEXT_X + 13, 0)].symbol(), "x");
    assert_eq!(buf[(TEXT_X + 14, 0)].symbol(), "y");
}

#[test]
fn vertical_scrolling_follows_the_caret() {
    let code: String = (1..=100).map(|i| format!("line {i}\n")).collect();
    let mut ed = editor_with(&code, vec![]);
    key(&mut ed, KeyCode::End, KeyModifiers::CONTROL);
    let term = render(&mut ed, W, 12);
    let buf = buffer(&term);
    // 10 text rows; the caret line (101, empty) is the last one. The gutter
    // widened to 3 digits + 1 for 101 lines.
    assert!(row(buf, 0).starts_with(" 92 line 92"), "{:?}", row(buf, 0));
    assert!(row(buf, 9).starts_with("101 "), "{:?}", row(buf, 9));
    let mut term = term;
    term.backend_mut().assert_cursor_position((4, 9));
}

#[test]
fn status_bar_tells_room_connection_user_position_and_changes() {
    let mut ed = Editor::new("AbCdEfGhIjKlMnOpQrStUv", "me", Some("main.rs".into()));
    ed.on_server(init_msg(3, "abc", vec![]));
    key(&mut ed, KeyCode::Char('x'), KeyModifiers::NONE);
    let term = render(&mut ed, 100, H);
    let status = row(buffer(&term), H - 2);
    for part in [
        "room AbCdEfGh…",
        "● connected",
        "■ me",
        "Ln 1, Col 2",
        "rev 3",
        "↑ unsent",
        "[+] modified",
    ] {
        assert!(status.contains(part), "{part:?} missing in {status:?}");
    }
    // The user's color on the ■.
    let x = status.chars().position(|c| c == '■').unwrap() as u16;
    assert_eq!(buffer(&term)[(x, H - 2)].fg, Color::Rgb(0x43, 0x63, 0xd8));

    let now = Instant::now();
    ed.set_conn(ConnState::Reconnecting {
        retry_at: now + Duration::from_millis(4200),
        reason: "connection refused".into(),
    });
    let mut term = Terminal::new(TestBackend::new(100, H)).unwrap();
    term.draw(|f| draw(f, &mut ed, now)).unwrap();
    let status = row(term.backend().buffer(), H - 2);
    assert!(
        status.contains("connection refused: retry in 5s"),
        "{status:?}"
    );
    // On 80 columns the markers still show, before the long reason.
    let mut term = Terminal::new(TestBackend::new(80, H)).unwrap();
    term.draw(|f| draw(f, &mut ed, now)).unwrap();
    let status = row(term.backend().buffer(), H - 2);
    assert!(
        status.contains("↑ unsent") && status.contains("[+] modified"),
        "{status:?}"
    );
    let hint = row(term.backend().buffer(), H - 1);
    assert!(
        hint.starts_with("Offline: any key reconnects now"),
        "{hint:?}"
    );
}

#[test]
fn help_overlay_lists_the_keys() {
    let mut ed = editor_with("abc", vec![]);
    key(&mut ed, KeyCode::F(1), KeyModifiers::NONE);
    let term = render(&mut ed, W, 24);
    let all: String = (0..24).map(|y| row(buffer(&term), y)).collect();
    for k in ["Ctrl-Z, Ctrl-Y", "Ctrl-S", "F2, Ctrl-N", "Ctrl-Q"] {
        assert!(all.contains(k), "{k} missing");
    }
}

#[test]
fn prompts_replace_the_hint_line() {
    let mut ed = editor_with("abc", vec![]);
    key(&mut ed, KeyCode::Char('s'), KeyModifiers::CONTROL);
    let term = render(&mut ed, W, H);
    assert!(row(buffer(&term), H - 1).starts_with("Save as"));
    let _ = ServerMessage::Pong;
}

#[test]
fn resizing_redraws_at_the_new_size() {
    let mut ed = editor_with("abc", vec![]);
    let mut term = render(&mut ed, W, H);
    term.backend_mut().resize(30, 6);
    term.draw(|f| draw(f, &mut ed, Instant::now())).unwrap();
    let buf = term.backend().buffer();
    assert_eq!(buf.area.width, 30);
    assert!(
        row(buf, 4).contains("room"),
        "status on the new second-last row"
    );
}

#[test]
fn a_viewer_sees_read_only_and_everyone_sees_who_only_watches() {
    let mut viewer = user("vera", "#e6194b", None, None);
    viewer.role = Role::Viewer;
    let mut bot = user("ci", "#3cb44b", None, None);
    bot.role = Role::Watcher;
    let mut ed = editor_with("abc", vec![viewer, bot]);
    let term = render(&mut ed, W, H);
    let all: String = (0..H).map(|y| row(buffer(&term), y)).collect();
    assert!(all.contains("vera (views)"), "{all}");
    assert!(all.contains("ci (script)"), "{all}");
    assert!(!row(buffer(&term), H - 2).contains("read-only"));

    // The viewer's own screen.
    let mut ed = Editor::new("ViewOnlyId", "me", None);
    let mut init = init_msg(3, "abc", vec![]);
    if let ServerMessage::Init { read_only, .. } = &mut init {
        *read_only = true;
    }
    ed.on_server(init);
    key(&mut ed, KeyCode::Char('x'), KeyModifiers::NONE);
    let term = render(&mut ed, W, H);
    let buf = buffer(&term);
    assert!(
        row(buf, H - 2).contains("read-only"),
        "{:?}",
        row(buf, H - 2)
    );
    assert!(!row(buf, H - 2).contains("unsent"));
    assert!(row(buf, H - 1).starts_with("Read-only: this link lets you watch"));
    assert!(row(buf, 0).starts_with("  1 abc "), "{:?}", row(buf, 0));
    let all: String = (0..H).map(|y| row(buf, y)).collect();
    assert!(all.contains("me (you, views)"), "{all}");
}

#[test]
fn help_shows_the_full_room_id_and_the_share_commands() {
    let mut ed = editor_with("abc", vec![]);
    key(&mut ed, KeyCode::F(1), KeyModifiers::NONE);
    let term = render(&mut ed, 100, 30);
    let all: String = (0..30).map(|y| row(buffer(&term), y)).collect();
    for part in [
        "Room AbCdEfGhIjKlMnOpQrStUv",
        "collab join AbCdEfGhIjKlMnOpQrStUv",
        "collab join ViewOnly1234567890abcd",
        "F12, Alt-S",
        "F8",
        "Tab, Shift-Tab",
    ] {
        assert!(all.contains(part), "{part} missing:\n{all}");
    }
}

#[test]
fn the_users_panel_is_narrow_hides_and_says_when_stale() {
    let mut ed = editor_with("abc", vec![user("bob", "#e6194b", Some(1), None)]);
    let term = render(&mut ed, W, H);
    let first = row(buffer(&term), 0);
    let border = first.find('│').expect("panel border");
    assert!(
        W as usize - border <= 20,
        "panel at {border} of {W}: {first:?}"
    );
    // Ctrl-U (or F6) gives its columns to the text.
    key(&mut ed, KeyCode::Char('u'), KeyModifiers::CONTROL);
    let term = render(&mut ed, W, H);
    assert!(!row(buffer(&term), 0).contains('│'));
    key(&mut ed, KeyCode::F(6), KeyModifiers::NONE);
    // Offline, the list is what the server last said.
    ed.set_conn(ConnState::Reconnecting {
        retry_at: Instant::now() + Duration::from_secs(9),
        reason: "connection refused".into(),
    });
    let term = render(&mut ed, W, H);
    let all: String = (0..H).map(|y| row(buffer(&term), y)).collect();
    assert!(all.contains("offline: stale"), "{all}");
}

#[test]
fn the_save_prompt_shows_its_cursor() {
    let mut ed = editor_with("abc", vec![]);
    key(&mut ed, KeyCode::Char('s'), KeyModifiers::CONTROL);
    key(&mut ed, KeyCode::Left, KeyModifiers::NONE);
    let mut term = render(&mut ed, W, H);
    let line = row(buffer(&term), H - 1);
    let label = "Save as (Enter: write, Esc: cancel): ";
    assert!(line.starts_with(&format!("{label}untitled.rs")), "{line:?}");
    // On the "s" of ".rs": one left of the end.
    let x = (label.len() + "untitled.r".len()) as u16;
    term.backend_mut().assert_cursor_position((x, H - 1));
}

#[test]
fn a_long_path_scrolls_to_keep_the_cursor_and_an_offer_shows_selected() {
    let mut ed = editor_with("abc", vec![]);
    key(&mut ed, KeyCode::F(12), KeyModifiers::NONE);
    let term = render(&mut ed, W, H);
    let label = "Save as (Enter: write, Esc: cancel): ";
    let x = label.len() as u16;
    assert!(buffer(&term)[(x, H - 1)]
        .modifier
        .contains(ratatui::style::Modifier::REVERSED));
    let long = "some/deeply/nested/folder/with/a/long/name/file.rs";
    for c in long.chars() {
        key(&mut ed, KeyCode::Char(c), KeyModifiers::NONE);
    }
    let mut term = render(&mut ed, W, H);
    let line = row(buffer(&term), H - 1);
    assert!(
        line.contains("…") && line.trim_end().ends_with("name/file.rs"),
        "{line:?}"
    );
    term.backend_mut()
        .assert_cursor_position((line.trim_end().chars().count() as u16, H - 1));
    assert!(!buffer(&term)[(x + 2, H - 1)]
        .modifier
        .contains(ratatui::style::Modifier::REVERSED));
}

#[test]
fn the_status_bar_shows_the_selections_size() {
    let mut ed = editor_with("héllo\nworld", vec![]);
    key(&mut ed, KeyCode::Right, KeyModifiers::SHIFT);
    key(&mut ed, KeyCode::Right, KeyModifiers::SHIFT);
    let status = row(buffer(&render(&mut ed, 100, H)), H - 2);
    assert!(status.contains("Ln 1, Col 3 (2 selected) │"), "{status:?}");
    key(&mut ed, KeyCode::Down, KeyModifiers::SHIFT);
    let status = row(buffer(&render(&mut ed, 100, H)), H - 2);
    assert!(status.contains("(8 selected, 2 lines)"), "{status:?}");
}
