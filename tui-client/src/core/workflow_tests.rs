//! Key-sequence tests of what a newcomer hits in the first hour (issue 11):
//! a read-only link, saving (and failing to), quitting, tabs, the caret
//! under remote edits, reconnecting, and sharing the room.

use std::time::{Duration, Instant};

use collab_protocol::{Operation, Role, ServerMessage};
use crossterm::event::{KeyCode, KeyModifiers};

use super::editor::{
    ConnState, Editor, Effect, FileState, LineInput, Prompt, Viewport, READ_ONLY_HINT,
};
use super::editor_tests::{
    ctrl, init_msg, key, press, ready, remote, sent_ops, shift, stamp, text, type_str, user,
};

/// An `init` for a viewer (a read-only link).
fn viewer_init(code: &str) -> ServerMessage {
    let mut init = init_msg(0, code, vec![]);
    if let ServerMessage::Init {
        read_only,
        read_only_id,
        ..
    } = &mut init
    {
        *read_only = true;
        *read_only_id = None;
    }
    init
}

#[test]
fn a_viewer_cannot_edit_and_has_nothing_unsent() {
    let mut ed = Editor::new("ViewOnly", "me", None);
    ed.on_server(viewer_init("fn main() {}"));
    assert!(ed.is_read_only());
    type_str(&mut ed, "hello");
    press(&mut ed, KeyCode::Enter);
    press(&mut ed, KeyCode::Tab);
    press(&mut ed, KeyCode::Backspace);
    ctrl(&mut ed, 'v');
    ctrl(&mut ed, 'z');
    assert_eq!(text(&ed), "fn main() {}", "nothing typed reaches the text");
    assert_eq!(ed.notice(), Some(READ_ONLY_HINT));
    assert!(!ed.has_unsent());
    assert!(sent_ops(&mut ed).is_empty());
    // Moving and selecting still work; quitting asks nothing.
    shift(&mut ed, KeyCode::End);
    assert_eq!(ed.selection(), Some((0, 12)));
    ctrl(&mut ed, 'q');
    assert_eq!(ed.take_effects(), vec![Effect::Quit]);
    // A viewer can pass on the link it has, and only that one.
    assert_eq!(
        ed.share_commands(),
        vec![("watch", "collab join ViewOnly".to_owned())]
    );
}

#[test]
fn a_failed_save_asks_again_and_sets_no_path() {
    let mut ed = ready("x");
    ctrl(&mut ed, 's');
    ctrl(&mut ed, 'a'); // not an edit key in a prompt: ignored
                        // The offered name is replaced by what is typed: the issue's steps.
    type_str(&mut ed, "sub/out.rs");
    press(&mut ed, KeyCode::Enter);
    let Some(Effect::Save { path, expect, .. }) = ed.take_effects().pop() else {
        panic!("no save");
    };
    assert_eq!(path.to_str(), Some("sub/out.rs"));
    assert_eq!(
        expect,
        Some(FileState::Missing),
        "a new file must not exist"
    );
    ed.save_failed(&path, "No such file or directory (os error 2)");
    assert_eq!(ed.file(), None, "the bad path is not kept");
    assert_eq!(
        ed.prompt(),
        Some(&Prompt::SaveAs(LineInput::new("sub/out.rs"))),
        "the question comes back with the path to correct, cursor at its end"
    );
    assert!(ed.notice().unwrap().contains("Cannot save sub/out.rs"));
    // Typing the next name goes to the prompt, never the shared document.
    press(&mut ed, KeyCode::Home);
    for _ in 0.."sub/".len() {
        press(&mut ed, KeyCode::Delete);
    }
    type_str(&mut ed, "z");
    assert_eq!(
        ed.prompt(),
        Some(&Prompt::SaveAs({
            let mut i = LineInput::new("zout.rs");
            i.set_cursor_for_tests(1);
            i
        }))
    );
    assert_eq!(text(&ed), "x");
    press(&mut ed, KeyCode::Esc);
    assert_eq!(ed.prompt(), None);
    // Ctrl-S asks again instead of retrying the bad path.
    ctrl(&mut ed, 's');
    assert!(matches!(ed.prompt(), Some(Prompt::SaveAs(_))));
}

#[test]
fn save_as_and_overwriting_a_changed_file_ask_first() {
    let mut ed = Editor::new("r", "me", Some("main.rs".into())).with_disk_state(Some(stamp(1)));
    ed.on_server(init_msg(0, "x", vec![]));
    ed.take_effects();
    ctrl(&mut ed, 's');
    let Some(Effect::Save { path, expect, .. }) = ed.take_effects().pop() else {
        panic!("no save");
    };
    assert_eq!(expect, Some(stamp(1)), "only if nobody changed it");
    // Another program did: the editor asks.
    ed.save_conflict(path, expect.as_ref());
    assert!(matches!(
        ed.prompt(),
        Some(Prompt::ConfirmOverwrite { exists: false, .. })
    ));
    press(&mut ed, KeyCode::Char('n'));
    assert!(ed.take_effects().is_empty());
    ctrl(&mut ed, 's');
    let Some(Effect::Save { path, expect, .. }) = ed.take_effects().pop() else {
        panic!("no save");
    };
    ed.save_conflict(path, expect.as_ref());
    press(&mut ed, KeyCode::Char('y'));
    assert!(matches!(
        ed.take_effects()[..],
        [Effect::Save { expect: None, .. }]
    ));
    // F12 (and Alt-S) save elsewhere, offering the current name.
    ed.handle_event(&key(KeyCode::F(12), KeyModifiers::NONE));
    assert_eq!(
        ed.prompt(),
        Some(&Prompt::SaveAs(LineInput::offered("main.rs")))
    );
    // An arrow keeps the offer to edit it: ".bak" goes at its end.
    press(&mut ed, KeyCode::End);
    type_str(&mut ed, ".bak");
    let Some(Prompt::SaveAs(input)) = ed.prompt() else {
        panic!("prompt");
    };
    assert_eq!(input.text(), "main.rs.bak");
    press(&mut ed, KeyCode::Esc);
    ed.handle_event(&key(KeyCode::Char('s'), KeyModifiers::ALT));
    assert!(matches!(ed.prompt(), Some(Prompt::SaveAs(_))));
}

#[test]
fn quit_asks_only_when_something_would_be_lost() {
    // A participant without a local file: the room keeps the text.
    let mut ed = ready("x");
    type_str(&mut ed, "y");
    ed.on_server(ServerMessage::Ack {
        revision: 1,
        seq: 1,
        doc: None,
    });
    ctrl(&mut ed, 'q');
    assert_eq!(ed.take_effects().last(), Some(&Effect::Quit));
    // With a file that would lose the change, it asks.
    let mut ed = Editor::new("r", "me", Some("a.rs".into()));
    ed.on_server(init_msg(0, "x", vec![]));
    type_str(&mut ed, "y");
    ed.on_server(ServerMessage::Ack {
        revision: 1,
        seq: 1,
        doc: None,
    });
    ed.take_effects();
    ctrl(&mut ed, 'q');
    assert_eq!(ed.prompt(), Some(&Prompt::ConfirmQuit));
}

#[test]
fn tab_follows_the_files_indentation_and_shift_tab_dedents() {
    // A Makefile needs real tabs.
    let mut ed = Editor::new("r", "me", Some("Makefile".into()));
    ed.on_server(init_msg(0, "all:\n", vec![]));
    press(&mut ed, KeyCode::Down);
    press(&mut ed, KeyCode::Tab);
    type_str(&mut ed, "cc x.c");
    assert_eq!(text(&ed), "all:\n\tcc x.c");
    // So do Go files, and documents already indented with tabs.
    for (language, code) in [("go", "x"), ("plaintext", "a\n\tb\n\tc\n  d")] {
        let mut ed = Editor::new("r", "me", None);
        let mut init = init_msg(0, code, vec![]);
        if let ServerMessage::Init { language: l, .. } = &mut init {
            *l = language.into();
        }
        ed.on_server(init);
        press(&mut ed, KeyCode::Tab);
        assert!(text(&ed).starts_with('\t'), "{language}");
    }
    // Shift-Tab removes one level: a tab, or up to four spaces.
    let mut ed = ready("\tx\n      y\nz");
    shift(&mut ed, KeyCode::End);
    ed.handle_event(&key(KeyCode::BackTab, KeyModifiers::SHIFT));
    assert_eq!(text(&ed), "x\n      y\nz");
    press(&mut ed, KeyCode::Down);
    ed.handle_event(&key(KeyCode::BackTab, KeyModifiers::SHIFT));
    assert_eq!(text(&ed), "x\n  y\nz");
    // Tab on a selection over lines indents them all, as one undo step.
    let mut ed = ready("a\nb\n\nc");
    ctrl(&mut ed, 'a');
    press(&mut ed, KeyCode::Tab);
    assert_eq!(text(&ed), "    a\n    b\n\n    c");
    assert_eq!(ed.selection(), Some((0, text(&ed).chars().count())));
    ctrl(&mut ed, 'z');
    assert_eq!(text(&ed), "a\nb\n\nc");
}

#[test]
fn remote_lines_above_keep_the_caret_on_screen_and_the_view_still() {
    let code: String = (1..=100).map(|i| format!("line {i}\n")).collect();
    let mut ed = ready(&code);
    // 10 rows; caret on line 30, the last visible row.
    for _ in 0..29 {
        press(&mut ed, KeyCode::Down);
    }
    let viewport = Viewport {
        x: 4,
        y: 0,
        width: 40,
        height: 10,
    };
    ed.set_viewport(viewport);
    assert_eq!((ed.top, ed.line_col().0), (20, 30));
    // A colleague inserts 5 lines above the view: the same text stays in
    // front of the user.
    let len = ed.text().len_chars();
    ed.on_server(remote(
        1,
        Operation::replace(len, 0, 0, "a\nb\nc\nd\ne\n").unwrap(),
    ));
    ed.set_viewport(viewport);
    assert_eq!((ed.top, ed.line_col().0), (25, 35));
    // ... and 3 lines inside the view, above the caret: the caret would
    // leave the screen, so the view follows it.
    let len = ed.text().len_chars();
    let at = ed.text().line_to_char(28);
    ed.on_server(remote(
        2,
        Operation::replace(len, at, at, "x\ny\nz\n").unwrap(),
    ));
    ed.set_viewport(viewport);
    let line = ed.line_col().0 - 1;
    assert_eq!(line, 37);
    assert!(line >= ed.top && line < ed.top + 10, "caret on screen");
}

#[test]
fn any_key_retries_a_waiting_reconnect() {
    let mut ed = ready("abc");
    ed.set_conn(ConnState::Reconnecting {
        retry_at: Instant::now() + Duration::from_secs(25),
        reason: "connection refused".into(),
    });
    press(&mut ed, KeyCode::Right);
    assert_eq!(ed.take_effects(), vec![Effect::RetryNow]);
    assert_eq!(ed.conn(), &ConnState::Connecting);
    // Only while waiting: connecting or connected, keys just edit.
    press(&mut ed, KeyCode::Right);
    assert!(ed.take_effects().is_empty());
    // Gone for good (the room expired): nothing to retry.
    ed.set_conn(ConnState::Offline("room not found".into()));
    press(&mut ed, KeyCode::Left);
    assert!(ed.take_effects().is_empty());
}

#[test]
fn the_share_commands_name_the_server_and_f8_copies_them() {
    let mut ed = Editor::new("Room1234", "me", None).with_server(Some("http://h:9"));
    ed.on_server(init_msg(0, "", vec![]));
    assert_eq!(
        ed.share_commands(),
        vec![
            (
                "edit",
                "collab join Room1234 --server http://h:9".to_owned()
            ),
            (
                "watch",
                "collab join ViewOnly1234567890abcd --server http://h:9".to_owned()
            ),
        ]
    );
    ed.handle_event(&key(KeyCode::F(8), KeyModifiers::NONE));
    assert_eq!(
        ed.take_effects(),
        vec![Effect::Copy(
            "collab join Room1234 --server http://h:9".into()
        )]
    );
    // The editor's own paste has it too.
    ctrl(&mut ed, 'v');
    assert_eq!(text(&ed), "collab join Room1234 --server http://h:9");
}

#[test]
fn viewers_and_watchers_and_namesakes_are_told_apart() {
    let mut viewer = user("v1", "#e6194b", None, None);
    viewer.role = Role::Viewer;
    let mut bot = user("w1", "#3cb44b", None, None);
    bot.role = Role::Watcher;
    let mut namesake = user("m2", "#ffe119", Some(0), None);
    namesake.name = "me".into();
    let mut ed = Editor::new("r", "me", None);
    ed.on_server(init_msg(0, "x", vec![viewer, bot, namesake]));
    let p = ed.presence();
    assert_eq!(p.users()[0].role, Role::Viewer);
    assert_eq!(p.users()[1].role, Role::Watcher);
    assert_eq!(p.display_name("m2"), "me (2)");
}

#[test]
fn a_remote_insert_before_the_caret_on_its_line_keeps_it_in_view_sideways() {
    let mut ed = ready(&"x".repeat(34));
    press(&mut ed, KeyCode::End);
    let viewport = Viewport {
        x: 4,
        y: 0,
        width: 40,
        height: 10,
    };
    ed.set_viewport(viewport);
    assert_eq!(ed.left, 0);
    ed.on_server(remote(
        1,
        Operation::replace(34, 0, 0, &"y".repeat(30)).unwrap(),
    ));
    ed.set_viewport(viewport);
    let col = ed.column_of(ed.caret());
    assert_eq!(col, 64);
    assert!(col >= ed.left && col < ed.left + 40, "left {}", ed.left);
}
