//! Key-sequence tests: the pure editor driven by crossterm events and
//! server messages, no terminal and no network.

use std::time::{Duration, Instant};

use collab_protocol::{ClientMessage, CommittedOp, Operation, Role, ServerMessage, UserInfo};
use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

use super::editor::{ConnState, Editor, Effect, FileState, LineInput, Prompt, Recovery, Viewport};

/// A file of `len` bytes as the shell would report it.
pub(crate) fn stamp(len: u64) -> FileState {
    FileState::Present {
        len,
        modified: None,
    }
}

pub(crate) fn init_msg(revision: u64, code: &str, users: Vec<UserInfo>) -> ServerMessage {
    ServerMessage::Init {
        room_id: "room1234567890".into(),
        user_id: "me".into(),
        name: "me".into(),
        color: "#4363d8".into(),
        revision,
        code: code.into(),
        language: "rust".into(),
        users,
        missed: None,
        read_only: false,
        read_only_id: Some("ViewOnly1234567890abcd".into()),
        doc: None,
        files: None,
        tree_revision: None,
        chat: Vec::new(),
        owner: false,
    }
}

pub(crate) fn user(id: &str, color: &str, cursor: Option<u64>, anchor: Option<u64>) -> UserInfo {
    UserInfo {
        user_id: id.into(),
        name: id.into(),
        color: color.into(),
        cursor,
        anchor,
        role: Role::Editor,
        doc: None,
    }
}

/// An editor that received `init` with `code` at revision 0.
pub(crate) fn ready(code: &str) -> Editor {
    let mut ed = Editor::new("room1234567890", "me", None);
    ed.on_server(init_msg(0, code, vec![]));
    ed.set_viewport(Viewport {
        x: 4,
        y: 0,
        width: 40,
        height: 10,
    });
    ed
}

pub(crate) fn key(code: KeyCode, modifiers: KeyModifiers) -> Event {
    Event::Key(KeyEvent::new(code, modifiers))
}

pub(crate) fn press(ed: &mut Editor, code: KeyCode) {
    ed.handle_event(&key(code, KeyModifiers::NONE));
}

pub(crate) fn shift(ed: &mut Editor, code: KeyCode) {
    ed.handle_event(&key(code, KeyModifiers::SHIFT));
}

pub(crate) fn ctrl(ed: &mut Editor, c: char) {
    ed.handle_event(&key(KeyCode::Char(c), KeyModifiers::CONTROL));
}

pub(crate) fn type_str(ed: &mut Editor, s: &str) {
    for c in s.chars() {
        press(ed, KeyCode::Char(c));
    }
}

pub(crate) fn text(ed: &Editor) -> String {
    ed.text().to_string()
}

/// The operations of the code_update messages among the effects.
pub(crate) fn sent_ops(ed: &mut Editor) -> Vec<(u64, u64, Operation)> {
    ed.take_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Send(ClientMessage::CodeUpdate {
                revision,
                seq,
                operation,
                ..
            }) => Some((revision, seq, operation)),
            _ => None,
        })
        .collect()
}

pub(crate) fn remote(revision: u64, op: Operation) -> ServerMessage {
    ServerMessage::CodeUpdate(CommittedOp {
        revision,
        operation: op,
        user_id: "bob".into(),
        seq: None,
        doc: None,
    })
}

#[test]
fn typing_sends_the_first_edit_and_buffers_the_rest() {
    let mut ed = ready("");
    type_str(&mut ed, "héllo");
    assert_eq!(text(&ed), "héllo");
    assert_eq!(ed.caret(), 5);
    let sent = sent_ops(&mut ed);
    assert_eq!(sent.len(), 1, "one op in flight, the others buffered");
    assert_eq!(sent[0].2, Operation::replace(0, 0, 0, "h").unwrap());
    // The ack releases the buffer as one composed op.
    ed.on_server(ServerMessage::Ack {
        revision: 1,
        seq: 1,
        doc: None,
    });
    let sent = sent_ops(&mut ed);
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].0, sent[0].1), (1, 2));
    assert_eq!(sent[0].2, Operation::replace(1, 1, 1, "éllo").unwrap());
}

#[test]
fn enter_keeps_the_indentation() {
    let mut ed = ready("fn f() {\n    let x = 1;");
    ctrl_end(&mut ed);
    press(&mut ed, KeyCode::Enter);
    type_str(&mut ed, "y");
    assert_eq!(text(&ed), "fn f() {\n    let x = 1;\n    y");
    // Inside the indentation only what is left of the caret is kept.
    press(&mut ed, KeyCode::Home);
    press(&mut ed, KeyCode::Left);
    press(&mut ed, KeyCode::Left);
    press(&mut ed, KeyCode::Enter);
    assert_eq!(text(&ed), "fn f() {\n    let x = 1;\n  \n    y");
}

#[test]
fn enter_and_paste_keep_a_crlf_files_line_ending() {
    let mut ed = ready("fn f() {\r\n    let x = 1;");
    ctrl_end(&mut ed);
    press(&mut ed, KeyCode::Enter);
    type_str(&mut ed, "y");
    assert_eq!(text(&ed), "fn f() {\r\n    let x = 1;\r\n    y");
    // A paste's line breaks (LF, CR or CRLF) all become CRLF.
    ed.handle_event(&Event::Paste("a\nb\r\nc\rd".into()));
    assert_eq!(
        text(&ed),
        "fn f() {\r\n    let x = 1;\r\n    ya\r\nb\r\nc\r\nd"
    );
    // Copying CRLF lines and pasting them does not double the CR.
    ctrl(&mut ed, 'a');
    ctrl(&mut ed, 'c');
    ctrl_end(&mut ed);
    ctrl(&mut ed, 'v');
    assert!(!text(&ed).contains("\r\r"), "{:?}", text(&ed));
    // An LF file stays LF.
    let mut lf = ready("a\nb");
    ctrl_end(&mut lf);
    press(&mut lf, KeyCode::Enter);
    lf.handle_event(&Event::Paste("c\r\nd".into()));
    assert_eq!(text(&lf), "a\nb\nc\nd");
}

fn ctrl_end(ed: &mut Editor) {
    ed.handle_event(&key(KeyCode::End, KeyModifiers::CONTROL));
}

#[test]
fn tab_inserts_spaces_to_the_next_stop() {
    let mut ed = ready("ab");
    press(&mut ed, KeyCode::End);
    press(&mut ed, KeyCode::Tab);
    type_str(&mut ed, "c");
    assert_eq!(text(&ed), "ab  c");
}

#[test]
fn select_cut_and_paste() {
    let mut ed = ready("hello world");
    for _ in 0..5 {
        shift(&mut ed, KeyCode::Right);
    }
    assert_eq!(ed.selection(), Some((0, 5)));
    ctrl(&mut ed, 'x');
    assert_eq!(text(&ed), " world");
    press(&mut ed, KeyCode::End);
    ctrl(&mut ed, 'v');
    assert_eq!(text(&ed), " worldhello");
    // Shift+Home selects back to the first non-blank; copy leaves the text.
    shift(&mut ed, KeyCode::Home);
    ctrl(&mut ed, 'c');
    ctrl(&mut ed, 'v');
    assert_eq!(text(&ed), " worldhello");
    // Typing over a selection replaces it.
    ctrl(&mut ed, 'a');
    type_str(&mut ed, "Z");
    assert_eq!(text(&ed), "Z");
}

#[test]
fn bracketed_paste_is_one_operation_and_one_undo_step() {
    let mut ed = ready("ab");
    press(&mut ed, KeyCode::Right);
    ed.handle_event(&Event::Paste("x\r\ny\rz".into()));
    assert_eq!(text(&ed), "ax\ny\nzb");
    let sent = sent_ops(&mut ed);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].2, Operation::replace(2, 1, 1, "x\ny\nz").unwrap());
    ctrl(&mut ed, 'z');
    assert_eq!(text(&ed), "ab");
}

#[test]
fn one_undo_removes_a_typed_word_run() {
    let mut ed = ready("fn x() {}");
    press(&mut ed, KeyCode::End);
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    for (i, c) in " // hello world".chars().enumerate() {
        ed.handle_event_at(
            &key(KeyCode::Char(c), KeyModifiers::NONE),
            at(i as u64 * 150),
        );
    }
    // After a pause of two seconds: another step.
    ed.handle_event_at(&key(KeyCode::Char('!'), KeyModifiers::NONE), at(5000));
    ctrl(&mut ed, 'z');
    assert_eq!(text(&ed), "fn x() {} // hello world");
    ctrl(&mut ed, 'z');
    assert_eq!(
        text(&ed),
        "fn x() {}",
        "the whole run, spaces too, in one step"
    );
    // A run of backspaces is one step too; a motion ends it.
    type_str(&mut ed, "abc");
    press(&mut ed, KeyCode::Backspace);
    press(&mut ed, KeyCode::Backspace);
    press(&mut ed, KeyCode::Left);
    press(&mut ed, KeyCode::Backspace);
    ctrl(&mut ed, 'z');
    assert_eq!(text(&ed), "fn x() {}a");
    ctrl(&mut ed, 'z');
    assert_eq!(text(&ed), "fn x() {}abc");
}

#[test]
fn undo_and_redo_leave_a_colleagues_text_alone() {
    let mut ed = ready("");
    type_str(&mut ed, "mine");
    // A colleague's edit, concurrent with ours (still unacknowledged):
    // they typed at offset 0 of revision 0. Ours is committed later, so it
    // comes first (docs/protocol.md).
    ed.on_server(remote(1, Operation::replace(0, 0, 0, "THEIRS ").unwrap()));
    assert_eq!(text(&ed), "mineTHEIRS ");
    ctrl(&mut ed, 'z');
    assert_eq!(text(&ed), "THEIRS ", "only our typing is undone");
    // More remote typing between undo and redo.
    ed.on_server(remote(2, Operation::replace(7, 7, 7, "!").unwrap()));
    ctrl(&mut ed, 'y');
    assert_eq!(text(&ed), "mineTHEIRS !");
    ctrl(&mut ed, 'z');
    assert_eq!(text(&ed), "THEIRS !");
    ctrl(&mut ed, 'z');
    assert_eq!(text(&ed), "THEIRS !", "nothing of ours left to undo");
}

#[test]
fn remote_edits_move_the_caret_and_selection() {
    let mut ed = ready("abcdef");
    press(&mut ed, KeyCode::Right);
    press(&mut ed, KeyCode::Right);
    shift(&mut ed, KeyCode::Right);
    ed.on_server(remote(1, Operation::replace(6, 0, 0, "XYZ").unwrap()));
    assert_eq!(ed.selection(), Some((5, 6)));
    ed.on_server(remote(2, Operation::replace(9, 0, 5, "").unwrap()));
    assert_eq!(ed.caret(), 1);
}

#[test]
fn colleague_carets_follow_every_edit() {
    let mut ed = Editor::new("r", "me", None);
    ed.on_server(init_msg(
        0,
        "hello",
        vec![user("bob", "#e6194b", Some(3), None)],
    ));
    assert_eq!(ed.presence().users()[0].cursor, Some(3));
    type_str(&mut ed, "12");
    assert_eq!(ed.presence().users()[0].cursor, Some(5));
    // A caret at the server's revision 0 is carried over our unsent "12".
    ed.on_server(ServerMessage::CursorMove {
        user_id: "bob".into(),
        revision: 0,
        cursor: 1,
        anchor: Some(4),
        doc: None,
    });
    let bob = &ed.presence().users()[0];
    assert_eq!((bob.cursor, bob.anchor), (Some(3), Some(6)));
    ed.on_server(remote(1, Operation::replace(5, 0, 0, "__").unwrap()));
    assert_eq!(ed.presence().users()[0].cursor, Some(5));
    ed.on_server(ServerMessage::UserLeft {
        user_id: "bob".into(),
    });
    assert!(ed.presence().users().is_empty());
}

#[test]
fn own_caret_is_sent_throttled_in_server_offsets() {
    let mut ed = ready("abc");
    let t0 = Instant::now();
    let first = ed.cursor_message(t0);
    assert_eq!(
        first,
        Some(ClientMessage::CursorMove {
            revision: 0,
            cursor: 0,
            anchor: None,
            doc: None
        })
    );
    assert_eq!(ed.cursor_message(t0), None, "unchanged");
    press(&mut ed, KeyCode::End);
    type_str(&mut ed, "xy");
    assert_eq!(ed.cursor_message(t0 + Duration::from_millis(10)), None);
    // Our "xy" is not acknowledged: the server's document has 3 chars.
    assert_eq!(
        ed.cursor_message(t0 + Duration::from_millis(60)),
        Some(ClientMessage::CursorMove {
            revision: 0,
            cursor: 3,
            anchor: None,
            doc: None
        })
    );
    ed.set_conn(ConnState::Reconnecting {
        retry_at: t0 + Duration::from_secs(1),
        reason: "connection lost".into(),
    });
    press(&mut ed, KeyCode::Home);
    assert_eq!(ed.cursor_message(t0 + Duration::from_secs(1)), None);
}

#[test]
fn reconnect_rebases_offline_typing() {
    let mut ed = ready("abc");
    press(&mut ed, KeyCode::End);
    type_str(&mut ed, "12");
    sent_ops(&mut ed);
    ed.set_conn(ConnState::Reconnecting {
        retry_at: Instant::now(),
        reason: "connection lost".into(),
    });
    type_str(&mut ed, "3");
    let ServerMessage::Init { .. } = init_msg(0, "", vec![]) else {
        unreachable!()
    };
    // Reconnected: "1" was committed (seq 1), a colleague added "X" first.
    let init = ServerMessage::Init {
        room_id: "r".into(),
        user_id: "me".into(),
        name: "me".into(),
        color: "#4363d8".into(),
        revision: 2,
        code: "Xabc1".into(),
        language: "rust".into(),
        users: vec![],
        read_only: false,
        read_only_id: None,
        missed: Some(vec![
            CommittedOp {
                revision: 1,
                operation: Operation::replace(3, 0, 0, "X").unwrap(),
                user_id: "bob".into(),
                seq: None,
                doc: None,
            },
            CommittedOp {
                revision: 2,
                operation: Operation::replace(4, 4, 4, "1").unwrap(),
                user_id: "me".into(),
                seq: Some(1),
                doc: None,
            },
        ]),
        doc: None,
        files: None,
        tree_revision: None,
        chat: Vec::new(),
        owner: false,
    };
    ed.on_server(init);
    assert_eq!(text(&ed), "Xabc123");
    assert_eq!(ed.conn(), &ConnState::Connected);
    let sent = sent_ops(&mut ed);
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].0, sent[0].1), (2, 2));
    assert_eq!(sent[0].2, Operation::replace(5, 5, 5, "23").unwrap());
}

#[test]
fn reconnect_without_history_saves_unsent_text() {
    let mut ed = ready("abc");
    type_str(&mut ed, "!");
    sent_ops(&mut ed);
    ed.on_server(init_msg(9, "server version", vec![]));
    assert_eq!(text(&ed), "server version");
    assert_eq!(
        ed.take_effects(),
        vec![Effect::SaveRecovery {
            text: "!abc".into(),
            why: Recovery::Unmerged,
        }]
    );
}

#[test]
fn a_gap_in_revisions_asks_for_a_fresh_resync() {
    let mut ed = ready("abc");
    ed.on_server(remote(5, Operation::replace(3, 0, 0, "x").unwrap()));
    assert_eq!(text(&ed), "abc");
    assert!(ed.take_effects().contains(&Effect::ResyncFresh));
}

#[test]
fn carets_step_over_wide_and_combining_chars() {
    let mut ed = ready("界e\u{301}x\nab");
    press(&mut ed, KeyCode::Right);
    assert_eq!(ed.line_col(), (1, 3));
    press(&mut ed, KeyCode::Right);
    assert_eq!(ed.caret(), 3, "past the accent too");
    press(&mut ed, KeyCode::Down);
    assert_eq!(ed.line_col(), (2, 3));
    press(&mut ed, KeyCode::Up);
    assert_eq!(ed.caret(), 3);
    press(&mut ed, KeyCode::Backspace);
    assert_eq!(text(&ed), "界x\nab", "backspace removes the whole glyph");
}

#[test]
fn mouse_clicks_move_the_caret() {
    let mut ed = ready("one\ntwo\tx");
    let click = |column, row| {
        Event::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    // Viewport starts at x = 4: column 6 is display column 2.
    ed.handle_event(&click(6, 1));
    assert_eq!(ed.caret(), 6);
    // On the tab (column 3): before it; column 4 is the "x".
    ed.handle_event(&click(7, 1));
    assert_eq!(ed.caret(), 7);
    ed.handle_event(&click(8, 1));
    assert_eq!(ed.caret(), 8);
    ed.handle_event(&click(30, 9));
    assert_eq!(ed.caret(), 9, "below the text: the end");
}

#[test]
fn quit_asks_when_there_are_unsaved_changes() {
    let mut ed = ready("x");
    ctrl(&mut ed, 'q');
    assert_eq!(ed.take_effects(), vec![Effect::Quit]);
    type_str(&mut ed, "y");
    ed.take_effects();
    ctrl(&mut ed, 'q');
    assert_eq!(ed.prompt(), Some(&Prompt::ConfirmQuit));
    press(&mut ed, KeyCode::Char('n'));
    assert_eq!(ed.prompt(), None);
    assert!(ed.take_effects().is_empty());
    ctrl(&mut ed, 'q');
    ctrl(&mut ed, 'q');
    assert_eq!(ed.take_effects(), vec![Effect::Quit]);
}

#[test]
fn save_asks_for_a_path_then_clears_the_marker() {
    let mut ed = ready("x");
    type_str(&mut ed, "y");
    ed.take_effects();
    assert!(!ed.is_dirty(), "no local file: nothing to lose");
    ctrl(&mut ed, 's');
    // A name to start from, with the room's language's extension.
    assert_eq!(
        ed.prompt(),
        Some(&Prompt::SaveAs(LineInput::offered("untitled.rs")))
    );
    type_str(&mut ed, "out.rs");
    press(&mut ed, KeyCode::Enter);
    assert_eq!(
        text(&ed),
        "yx",
        "the prompt's keys never reach the document"
    );
    let effects = ed.take_effects();
    assert_eq!(
        effects,
        vec![Effect::Save {
            path: "out.rs".into(),
            text: "yx".into(),
            expect: Some(FileState::Missing),
        }]
    );
    ed.saved("out.rs".into(), "yx", stamp(2));
    assert!(!ed.is_dirty());
    type_str(&mut ed, "z");
    assert!(ed.is_dirty());
    ctrl(&mut ed, 's');
    assert!(matches!(
        ed.take_effects().last(),
        Some(Effect::Save { expect: Some(s), .. }) if *s == stamp(2)
    ));
}

#[test]
fn next_user_jumps_to_their_caret() {
    let mut ed = Editor::new("r", "me", None);
    ed.on_server(init_msg(
        0,
        "0123456789",
        vec![
            user("bob", "#e6194b", Some(7), None),
            user("cy", "#3cb44b", Some(2), None),
        ],
    ));
    ed.handle_event(&key(KeyCode::F(2), KeyModifiers::NONE));
    assert_eq!(ed.caret(), 7);
    ctrl(&mut ed, 'n');
    assert_eq!(ed.caret(), 2);
    ctrl(&mut ed, 'n');
    assert_eq!(ed.caret(), 7);
}

#[test]
fn page_keys_and_document_edges() {
    let code: String = (1..=50).map(|i| format!("line {i}\n")).collect();
    let mut ed = ready(&code);
    press(&mut ed, KeyCode::PageDown);
    assert_eq!(ed.line_col().0, 10);
    ctrl_end(&mut ed);
    assert_eq!(ed.line_col(), (51, 1));
    ed.handle_event(&key(KeyCode::Home, KeyModifiers::CONTROL));
    assert_eq!(ed.caret(), 0);
}

#[test]
fn help_toggles_and_any_key_closes_it() {
    let mut ed = ready("x");
    ed.handle_event(&key(KeyCode::F(1), KeyModifiers::NONE));
    assert!(ed.help_visible());
    press(&mut ed, KeyCode::Esc);
    assert!(!ed.help_visible());
    ctrl(&mut ed, 'g');
    assert!(ed.help_visible());
    ctrl(&mut ed, 'g');
    assert!(!ed.help_visible());
}

#[test]
fn a_refused_edit_resyncs_and_keeps_the_text_for_the_user() {
    let mut ed = ready("abc");
    type_str(&mut ed, "x");
    let _ = ed.take_effects();
    ed.on_server(ServerMessage::Error {
        code: "document_too_large".into(),
        message: "too big".into(),
        seq: Some(1),
        doc: None,
        path: None,
    });
    assert!(ed.take_effects().contains(&Effect::ResyncFresh));
    // Other errors that refuse nothing in particular do not resync.
    ed.on_server(ServerMessage::error("unavailable", "later"));
    assert!(!ed.take_effects().contains(&Effect::ResyncFresh));
}

#[test]
fn a_history_reset_keeps_a_copy_of_the_document() {
    let mut ed = ready("acknowledged text");
    ed.on_server(ServerMessage::Error {
        code: collab_protocol::error_code::HISTORY_RESET.into(),
        message: "the room's store went back".into(),
        seq: None,
        doc: None,
        path: None,
    });
    assert_eq!(
        ed.take_effects(),
        vec![Effect::SaveRecovery {
            text: "acknowledged text".into(),
            why: Recovery::HistoryReset,
        }]
    );
}

#[test]
fn keys_from_the_config_file_come_before_the_defaults() {
    use crate::core::keymap::{Action, KeyChord};
    let overrides = vec![
        (KeyChord::parse("ctrl-shift-z").unwrap(), Action::Redo),
        (KeyChord::parse("Ctrl-W").unwrap(), Action::Quit),
    ];
    let mut ed = ready("").with_key_overrides(overrides);
    type_str(&mut ed, "ab");
    ctrl(&mut ed, 'z');
    assert_eq!(text(&ed), "");
    // A terminal sends Ctrl-Shift-Z as a capital or with SHIFT.
    ed.handle_event(&key(KeyCode::Char('Z'), KeyModifiers::CONTROL));
    assert_eq!(text(&ed), "ab", "redone");
    ctrl(&mut ed, 'z');
    ed.handle_event(&key(
        KeyCode::Char('z'),
        KeyModifiers::CONTROL | KeyModifiers::SHIFT,
    ));
    assert_eq!(text(&ed), "ab", "redone again");
    // Ctrl-W no longer deletes a word: it quits.
    ctrl(&mut ed, 'w');
    assert_eq!(text(&ed), "ab");
    let quits = ed.take_effects().iter().any(|e| matches!(e, Effect::Quit));
    assert!(quits || ed.prompt().is_some(), "Ctrl-W quits (or asks to)");
    assert!(KeyChord::parse("q").is_err(), "a key that types is refused");
    assert!(KeyChord::parse("ctrl-f13").is_err());
    assert_eq!(
        KeyChord::parse("alt-f9").unwrap(),
        KeyChord::parse("ALT-F9").unwrap()
    );
}
