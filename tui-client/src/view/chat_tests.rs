//! The chat pane on ratatui's `TestBackend`: the conversation with names,
//! mentions and references, the unread count in the status bar, sending
//! (with the reference a `path:line` makes), typing indicators, and a
//! reference's jump.

use std::time::{Duration, Instant};

use collab_protocol::{ChatMessage, ClientMessage, ServerMessage};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;

use super::draw;
use crate::core::editor::Editor;
use crate::core::editor_tests::{init_msg, user};
use crate::core::project_tests::{opened, project, sent};

const W: u16 = 80;
const H: u16 = 24;

fn render_at(ed: &mut Editor, now: Instant) -> Terminal<TestBackend> {
    let mut term = Terminal::new(TestBackend::new(W, H)).unwrap();
    term.draw(|f| draw(f, ed, now)).unwrap();
    term
}

fn render(ed: &mut Editor) -> Terminal<TestBackend> {
    render_at(ed, Instant::now())
}

fn row(buf: &Buffer, y: u16) -> String {
    (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect()
}

fn screen(buf: &Buffer) -> String {
    (0..buf.area.height).map(|y| row(buf, y) + "\n").collect()
}

/// Where `needle` starts on screen: (x, y) of its first cell.
fn find(buf: &Buffer, needle: &str) -> Option<(u16, u16)> {
    (0..buf.area.height).find_map(|y| {
        let cells: Vec<&str> = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
        let line: String = cells.concat();
        let byte = line.find(needle)?;
        // Cells here are one char each (the test text is ASCII or 1-wide).
        Some((line[..byte].chars().count() as u16, y))
    })
}

fn press(ed: &mut Editor, code: KeyCode) {
    ed.handle_event(&Event::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn type_str(ed: &mut Editor, s: &str) {
    for c in s.chars() {
        press(ed, KeyCode::Char(c));
    }
}

fn chat(seq: u64, user_id: &str, text: &str) -> ChatMessage {
    ChatMessage {
        seq,
        user_id: user_id.into(),
        name: user_id.into(),
        text: text.into(),
        at: 1_700_000_000_000,
        doc: None,
        path: None,
        line: None,
    }
}

fn editor(code: &str) -> Editor {
    let mut ed = Editor::new("AbCdEfGhIjKlMnOpQrStUv", "me", None);
    ed.on_server(init_msg(0, code, vec![user("ada", "#e6194b", None, None)]));
    ed.take_effects();
    ed
}

#[test]
fn unread_messages_are_counted_in_the_status_bar_until_the_pane_is_opened() {
    let mut ed = editor("one\ntwo\n");
    ed.on_server(ServerMessage::Chat(chat(1, "ada", "hello")));
    ed.on_server(ServerMessage::Chat(chat(2, "me", "hi ada")));
    ed.on_server(ServerMessage::Chat(chat(3, "ada", "look")));
    let term = render(&mut ed);
    let buf = term.backend().buffer();
    let status = row(buf, H - 2);
    assert!(status.contains("✉ 2 unread"), "{status:?}");
    assert!(
        row(buf, H - 1).contains("ada: look"),
        "the newest is on the message line: {:?}",
        row(buf, H - 1)
    );
    // A message heard again (a reconnect's init) is not unread again.
    let mut init = init_msg(0, "one\ntwo\n", vec![]);
    if let ServerMessage::Init { chat: c, .. } = &mut init {
        *c = vec![
            chat(1, "ada", "hello"),
            chat(2, "me", "hi ada"),
            chat(3, "ada", "look"),
        ];
    }
    ed.on_server(init);
    assert_eq!(ed.chat().unread(), 2);
    press(&mut ed, KeyCode::F(9));
    let term = render(&mut ed);
    let status = row(term.backend().buffer(), H - 2);
    assert!(!status.contains("unread"), "{status:?}");
}

#[test]
fn the_pane_shows_names_in_color_mentions_and_references() {
    let mut ed = editor("one\ntwo\nthree\n");
    let mut about = chat(1, "ada", "@me see this");
    about.line = Some(2);
    about.path = Some("main.rs".into());
    ed.on_server(ServerMessage::Chat(about));
    ed.on_server(ServerMessage::Chat(chat(2, "ada", "and @bo too")));
    press(&mut ed, KeyCode::F(9));
    let term = render(&mut ed);
    let buf = term.backend().buffer();
    let (x, y) =
        find(buf, "ada: @me see this → main.rs:2").unwrap_or_else(|| panic!("{}", screen(buf)));
    assert_eq!(
        buf[(x, y)].fg,
        Color::Rgb(0xe6, 0x19, 0x4b),
        "the author in their color"
    );
    assert!(buf[(x, y)].modifier.contains(Modifier::BOLD));
    let me = &buf[(x + 5, y)];
    assert_eq!(
        (me.symbol(), me.bg),
        ("@", Color::Yellow),
        "a mention of me stands out"
    );
    let link = &buf[(x + 20, y)];
    assert_eq!(link.symbol(), "m");
    assert!(
        link.modifier.contains(Modifier::UNDERLINED),
        "the reference is a link"
    );
    let (bx, by) = find(buf, "@bo").unwrap();
    assert_eq!(
        buf[(bx, by)].fg,
        Color::LightYellow,
        "other mentions are marked too"
    );
    assert!(find(buf, "Chat · Enter send").is_some(), "{}", screen(buf));
    // The terminal cursor is in the chat's input line.
    let (_, input_y) = find(buf, "> ").unwrap();
    let mut term = term;
    term.backend_mut().assert_cursor_position((2, input_y));
}

#[test]
fn typing_a_message_sends_it_with_its_reference_and_says_typing_once() {
    let mut ed = editor("one\ntwo\nthree\n");
    press(&mut ed, KeyCode::F(9));
    let t = Instant::now();
    ed.handle_event_at(
        &Event::Key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::NONE)),
        t,
    );
    type_str(&mut ed, "ee line 3");
    let typed = sent(&mut ed);
    assert_eq!(typed, [ClientMessage::Typing], "said once, not per key");
    assert_eq!(
        ed.text().to_string(),
        "one\ntwo\nthree\n",
        "nothing reached the text"
    );
    press(&mut ed, KeyCode::Enter);
    assert_eq!(
        sent(&mut ed),
        [ClientMessage::Chat {
            text: "see line 3".into(),
            doc: None,
            line: Some(3),
        }]
    );
    let term = render(&mut ed);
    let buf = term.backend().buffer();
    let (_, y) = find(buf, "> ").unwrap();
    let input = row(buf, y);
    assert!(
        !input.contains("see"),
        "the input is empty again: {input:?}"
    );
    assert!(
        find(buf, "me: see line 3").is_none(),
        "shown once the server relays it"
    );
    // Esc gives the keys back to the text; the pane stays.
    press(&mut ed, KeyCode::Esc);
    type_str(&mut ed, "x");
    assert_eq!(ed.text().to_string(), "xone\ntwo\nthree\n");
    assert!(ed.chat().shown());
}

#[test]
fn colleagues_typing_and_editing_show_for_a_while() {
    let mut ed = Editor::new("AbCdEfGhIjKlMnOpQrStUv", "me", None);
    ed.on_server(crate::core::project_tests::project_init(
        0,
        vec![
            user("ada", "#e6194b", None, None),
            user("bo", "#3cb44b", None, None),
        ],
    ));
    let t = Instant::now();
    let typing = |user: &str, editing: bool, doc: Option<&str>| ServerMessage::Typing {
        user_id: user.into(),
        chat: !editing,
        editing,
        doc: doc.map(str::to_owned),
    };
    ed.on_server_at(typing("ada", false, None), t);
    ed.on_server_at(typing("bo", true, Some("d2")), t);
    press(&mut ed, KeyCode::F(9));
    let term = render_at(&mut ed, t + Duration::from_secs(1));
    let buf = term.backend().buffer();
    assert!(
        find(buf, "ada is typing… · bo is editing src/lib.rs").is_some(),
        "{}",
        screen(buf)
    );
    let term = render_at(&mut ed, t + Duration::from_secs(5));
    assert!(
        find(term.backend().buffer(), "typing").is_none(),
        "gone after a while"
    );
}

#[test]
fn a_picked_reference_jumps_to_its_file_and_line() {
    let mut ed = project(vec![]);
    let mut m = chat(1, "ada", "the bug is here");
    m.doc = Some("d2".into());
    m.path = Some("src/lib.rs".into());
    m.line = Some(3);
    ed.on_server(ServerMessage::Chat(m));
    press(&mut ed, KeyCode::F(9));
    press(&mut ed, KeyCode::Up);
    let term = render(&mut ed);
    let buf = term.backend().buffer();
    let (x, y) = find(buf, "ada: the bug is here").unwrap();
    assert!(
        buf[(x + 6, y)].modifier.contains(Modifier::REVERSED),
        "picked"
    );
    press(&mut ed, KeyCode::Enter);
    assert!(
        sent(&mut ed).contains(&ClientMessage::Open {
            doc: "d2".into(),
            since: None
        }),
        "its file is opened"
    );
    ed.on_server(opened("d2", 0, "a\nb\nc\nd\n"));
    assert_eq!(ed.active_path(), Some("src/lib.rs"));
    assert_eq!(ed.line_col(), (3, 1), "the caret on the referenced line");
    assert!(!ed.chat().focused(), "the keys are back in the text");
}

fn owner_editor() -> Editor {
    let mut ed = Editor::new("AbCdEfGhIjKlMnOpQrStUv", "me", None);
    let mut init = init_msg(0, "x\n", vec![user("ada", "#e6194b", None, None)]);
    if let ServerMessage::Init { owner, .. } = &mut init {
        *owner = true;
    }
    ed.on_server(init);
    ed.take_effects();
    ed
}

fn alt(ed: &mut Editor, c: char) {
    ed.handle_event(&Event::Key(KeyEvent::new(
        KeyCode::Char(c),
        KeyModifiers::ALT,
    )));
}

#[test]
fn the_owners_menu_in_the_users_panel_sends_the_owners_controls() {
    let mut ed = owner_editor();
    alt(&mut ed, 'o');
    let term = render(&mut ed);
    let buf = term.backend().buffer();
    for line in [
        "Owner",
        "Make read-only for the others",
        "New share links",
        "Remove ada",
        "End the room…",
    ] {
        assert!(find(buf, line).is_some(), "{line}: {}", screen(buf));
    }
    let (x, y) = find(buf, "Make read-only").unwrap();
    assert!(
        buf[(x, y)].modifier.contains(Modifier::REVERSED),
        "the first is chosen"
    );
    press(&mut ed, KeyCode::Enter);
    assert_eq!(
        sent(&mut ed),
        [ClientMessage::SetReadOnly { read_only: true }]
    );
    assert!(ed.owner_menu().is_none());
    // The server says so; the menu offers the way back.
    ed.on_server(ServerMessage::Mode { read_only: true });
    assert!(!ed.is_read_only(), "the owner still edits");
    alt(&mut ed, 'o');
    assert!(find(
        render(&mut ed).backend().buffer(),
        "Let everyone edit again"
    )
    .is_some());
    // Remove ada (the third line).
    press(&mut ed, KeyCode::Down);
    press(&mut ed, KeyCode::Down);
    press(&mut ed, KeyCode::Enter);
    assert_eq!(
        sent(&mut ed),
        [ClientMessage::RemoveUser {
            user_id: "ada".into()
        }]
    );
    // Ending asks once more.
    alt(&mut ed, 'o');
    for _ in 0..3 {
        press(&mut ed, KeyCode::Down);
    }
    press(&mut ed, KeyCode::Enter);
    assert!(sent(&mut ed).is_empty());
    assert!(find(
        render(&mut ed).backend().buffer(),
        "End the room? Enter: yes"
    )
    .is_some());
    press(&mut ed, KeyCode::Enter);
    assert_eq!(sent(&mut ed), [ClientMessage::EndRoom]);
}

#[test]
fn only_the_owner_has_the_menu_and_others_follow_the_rooms_mode() {
    let mut ed = editor("x\n");
    alt(&mut ed, 'o');
    assert!(ed.owner_menu().is_none());
    assert!(ed.notice().unwrap().contains("Only the room's owner"));
    ed.on_server(ServerMessage::Mode { read_only: true });
    assert!(ed.is_read_only());
    let term = render(&mut ed);
    assert!(row(term.backend().buffer(), H - 2).contains("read-only"));
    ed.on_server(ServerMessage::Links {
        room_id: "NewLink1234567890abcde".into(),
        read_only_id: Some("NewView1234567890abcde".into()),
    });
    assert_eq!(ed.room(), "NewLink1234567890abcde");
}

#[test]
fn a_long_chat_input_scrolls_with_the_cursor_and_marks_the_cut() {
    let mut ed = editor("one\n");
    press(&mut ed, KeyCode::F(9));
    let long: String = (0..120)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    type_str(&mut ed, &long);
    let mut term = render(&mut ed);
    let buf = term.backend().buffer().clone();
    let (x, y) = find(&buf, "> …").expect("the cut is marked");
    let input = row(&buf, y);
    // (The users panel is beside the pane.)
    let after_cut = &input[input.find('…').unwrap() + '…'.len_utf8()..];
    let shown = after_cut.split(' ').next().unwrap();
    assert!(
        long.ends_with(shown),
        "the end of the text shows: {input:?}"
    );
    assert!(shown.len() > 40, "as much as fits: {input:?}");
    // The cursor sits just after the last char, inside the line.
    let cursor_x = x + 3 + shown.chars().count() as u16;
    assert!(cursor_x < W);
    term.backend_mut().assert_cursor_position((cursor_x, y));
}
