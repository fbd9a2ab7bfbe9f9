//! The project editor's core without a terminal or a network: messages
//! routed by document, buffers opened, closed (least recently used first)
//! and reopened with `since`, seqs that only grow, a file deleted under
//! the user, the picker, F2 across files and follow mode.

use collab_protocol::{ClientMessage, CommittedOp, FileInfo, Operation, ServerMessage, UserInfo};
use crossterm::event::{KeyCode, KeyModifiers};

use super::editor::{Editor, Effect, Recovery, Viewport};
use super::editor_tests::{ctrl, key, press, user};

pub(crate) fn file(doc: &str, path: &str) -> FileInfo {
    FileInfo {
        doc: doc.into(),
        path: path.into(),
        size: 0,
        language: collab_protocol::language::guess(path).into(),
    }
}

/// The `init` of a project with three files: src/main.rs (main), src/lib.rs
/// (d2), README.md (d3).
pub(crate) fn project_init(revision: u64, users: Vec<UserInfo>) -> ServerMessage {
    ServerMessage::Init {
        room_id: "room1234567890".into(),
        user_id: "me".into(),
        name: "me".into(),
        color: "#4363d8".into(),
        revision,
        code: "fn main() {}\n".into(),
        language: "rust".into(),
        users,
        missed: Some(vec![]),
        read_only: false,
        read_only_id: None,
        doc: Some("main".into()),
        tree_revision: Some(3),
        files: Some(vec![
            file("d3", "README.md"),
            file("d2", "src/lib.rs"),
            file("main", "src/main.rs"),
        ]),
        chat: Vec::new(),
        owner: false,
    }
}

pub(crate) fn in_doc(mut u: UserInfo, doc: &str) -> UserInfo {
    u.doc = Some(doc.into());
    u
}

/// An editor joined to the project, with a text area of 40x10.
pub(crate) fn project(users: Vec<UserInfo>) -> Editor {
    let mut ed = Editor::new("room1234567890", "me", None);
    ed.on_server(project_init(0, users));
    ed.set_viewport(Viewport {
        x: 4,
        y: 0,
        width: 40,
        height: 10,
    });
    ed.take_effects();
    ed
}

pub(crate) fn opened(doc: &str, revision: u64, code: &str) -> ServerMessage {
    ServerMessage::Opened {
        doc: doc.into(),
        revision,
        code: code.into(),
        language: "rust".into(),
        missed: Some(vec![]),
    }
}

/// The messages among the effects.
pub(crate) fn sent(ed: &mut Editor) -> Vec<ClientMessage> {
    ed.take_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Send(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn update(doc: &str, revision: u64, op: Operation) -> ServerMessage {
    ServerMessage::CodeUpdate(CommittedOp {
        revision,
        operation: op,
        user_id: "bob".into(),
        seq: None,
        doc: Some(doc.into()),
    })
}

fn cursor(user: &str, doc: &str, revision: u64, at: u64) -> ServerMessage {
    ServerMessage::CursorMove {
        user_id: user.into(),
        revision,
        cursor: at,
        anchor: None,
        doc: Some(doc.into()),
    }
}

/// Opens `doc` from the editor and answers its `open`.
fn open(ed: &mut Editor, doc: &str, code: &str) {
    ed.open_doc(doc);
    let msgs = sent(ed);
    assert!(
        msgs.contains(&ClientMessage::Open {
            doc: doc.into(),
            since: None
        }),
        "{msgs:?}"
    );
    ed.on_server(opened(doc, 5, code));
}

#[test]
fn the_main_document_opens_from_init_and_edits_name_it() {
    let mut ed = project(vec![]);
    assert_eq!(ed.active_doc(), Some("main"));
    assert_eq!(ed.active_path(), Some("src/main.rs"));
    assert_eq!(ed.text().to_string(), "fn main() {}\n");
    press(&mut ed, KeyCode::Char('x'));
    assert!(matches!(
        &sent(&mut ed)[..],
        [ClientMessage::CodeUpdate { seq: 1, doc: Some(d), .. }] if d == "main"
    ));
    assert_eq!(
        ed.cursor_message(std::time::Instant::now()),
        Some(ClientMessage::CursorMove {
            revision: 0,
            // After the unacknowledged "x": where it is being inserted.
            cursor: 0,
            anchor: None,
            doc: Some("main".into())
        })
    );
}

#[test]
fn messages_are_routed_to_the_buffer_of_their_document() {
    let mut ed = project(vec![]);
    open(&mut ed, "d2", "pub fn lib() {}\n");
    assert_eq!(ed.active_doc(), Some("d2"));
    // An edit to the main document, parked: its text changes, not this one.
    ed.on_server(update(
        "main",
        1,
        Operation::replace(13, 0, 0, "// ").unwrap(),
    ));
    assert_eq!(ed.text().to_string(), "pub fn lib() {}\n");
    ed.switch_buffer(true);
    assert_eq!(ed.active_doc(), Some("main"));
    assert_eq!(ed.text().to_string(), "// fn main() {}\n");
    assert_eq!(ed.revision(), Some(1));
    ed.switch_buffer(true);
    // Typing in d2 sends its edit for d2, acked for d2.
    press(&mut ed, KeyCode::Char('y'));
    assert!(matches!(
        &sent(&mut ed)[..],
        [ClientMessage::CodeUpdate { seq: 1, revision: 5, doc: Some(d), .. }] if d == "d2"
    ));
    assert!(ed.has_unsent());
    ed.on_server(ServerMessage::Ack {
        revision: 6,
        seq: 1,
        doc: Some("d2".into()),
    });
    assert!(!ed.has_unsent());
    assert_eq!(ed.revision(), Some(6));
    // Messages for a document not open here change nothing.
    ed.on_server(update("d3", 9, Operation::replace(0, 0, 0, "x").unwrap()));
    assert_eq!(ed.text().to_string(), "ypub fn lib() {}\n");
}

#[test]
fn least_recently_used_synchronized_buffers_close_and_seqs_continue() {
    let mut ed = project(vec![]).with_max_open(2);
    open(&mut ed, "d2", "a\n");
    press(&mut ed, KeyCode::Char('1'));
    ed.on_server(ServerMessage::Ack {
        revision: 6,
        seq: 1,
        doc: Some("d2".into()),
    });
    sent(&mut ed);
    // A third buffer: d2 is the least recently used besides the main one.
    ed.open_doc("d3");
    let msgs = sent(&mut ed);
    assert!(
        msgs.contains(&ClientMessage::Close { doc: "d2".into() }),
        "{msgs:?}"
    );
    ed.on_server(opened("d3", 0, "readme\n"));
    assert!(!ed.is_open("d2"));
    // Opened again, d2 goes on with seq 2 (seqs in a document only grow).
    open(&mut ed, "d2", "1a\n");
    press(&mut ed, KeyCode::Char('2'));
    assert!(matches!(
        &sent(&mut ed)[..],
        [.., ClientMessage::CodeUpdate { seq: 2, doc: Some(d), .. }] if d == "d2"
    ));
}

#[test]
fn buffers_with_unsent_edits_are_never_closed_for_the_limit() {
    let mut ed = project(vec![]).with_max_open(2);
    open(&mut ed, "d2", "a\n");
    press(&mut ed, KeyCode::Char('1'));
    sent(&mut ed);
    ed.open_doc("d3");
    assert!(!sent(&mut ed).contains(&ClientMessage::Close { doc: "d2".into() }));
    assert!(ed.is_open("d2"));
}

#[test]
fn a_reconnect_reopens_every_buffer_with_since_and_resends_its_edit() {
    let mut ed = project(vec![]);
    open(&mut ed, "d2", "a\n");
    press(&mut ed, KeyCode::Char('1'));
    sent(&mut ed);
    // The link drops; the next init reopens d2 with the revision it has.
    ed.on_server(project_init(0, vec![]));
    let msgs = sent(&mut ed);
    assert!(
        msgs.contains(&ClientMessage::Open {
            doc: "d2".into(),
            since: Some(5)
        }),
        "{msgs:?}"
    );
    // Typing meanwhile waits for the answer.
    press(&mut ed, KeyCode::Char('2'));
    assert!(sent(&mut ed).is_empty());
    ed.on_server(opened("d2", 5, "a\n"));
    assert!(matches!(
        &sent(&mut ed)[..],
        [ClientMessage::CodeUpdate { seq: 1, revision: 5, doc: Some(d), .. }] if d == "d2"
    ));
    assert_eq!(ed.text().to_string(), "12a\n");
}

#[test]
fn a_file_deleted_under_the_user_keeps_its_text_in_a_recovery_file() {
    let mut ed = project(vec![]);
    open(&mut ed, "d2", "mine\n");
    press(&mut ed, KeyCode::Char('!'));
    sent(&mut ed);
    ed.on_server(ServerMessage::FileDeleted {
        doc: "d2".into(),
        path: "src/lib.rs".into(),
        user_id: "bob".into(),
        tree_revision: 4,
    });
    let effects = ed.take_effects();
    assert!(effects.contains(&Effect::SaveRecovery {
        text: "!mine\n".into(),
        why: Recovery::Deleted("src/lib.rs".into()),
    }));
    assert!(!ed.is_open("d2"));
    assert_eq!(ed.active_doc(), Some("main"));
    assert!(ed.files().iter().all(|f| f.doc != "d2"));
}

#[test]
fn create_rename_and_delete_go_through_prompts() {
    let mut ed = project(vec![]);
    ed.handle_event(&key(KeyCode::Char('n'), KeyModifiers::ALT));
    for c in "new.rs".chars() {
        press(&mut ed, KeyCode::Char(c));
    }
    press(&mut ed, KeyCode::Enter);
    assert_eq!(
        sent(&mut ed),
        [ClientMessage::CreateFile {
            path: "src/new.rs".into(),
            code: None,
            language: None
        }]
    );
    // Created: it opens.
    ed.on_server(ServerMessage::FileCreated {
        file: file("d4", "src/new.rs"),
        user_id: "me".into(),
        tree_revision: 4,
    });
    assert_eq!(ed.active_doc(), Some("d4"));
    // A path taken is refused before asking the server.
    ed.handle_event(&key(KeyCode::Char('m'), KeyModifiers::ALT));
    ed.handle_event(&key(KeyCode::Char('u'), KeyModifiers::CONTROL));
    for _ in 0.."src/new.rs".len() {
        press(&mut ed, KeyCode::Backspace);
    }
    for c in "README.md".chars() {
        press(&mut ed, KeyCode::Char(c));
    }
    press(&mut ed, KeyCode::Enter);
    assert_eq!(ed.notice(), Some("README.md exists already"));
    press(&mut ed, KeyCode::Esc);
    // The server's refusals show too.
    ed.on_server(ServerMessage::Error {
        code: "path_taken".into(),
        message: "a document has that path".into(),
        seq: None,
        doc: None,
        path: Some("x".into()),
    });
    assert_eq!(
        ed.notice(),
        Some("Server: a document has that path (path_taken)")
    );
    // Delete asks.
    sent(&mut ed);
    ed.handle_event(&key(KeyCode::Char('k'), KeyModifiers::ALT));
    assert!(sent(&mut ed).is_empty());
    press(&mut ed, KeyCode::Char('y'));
    assert_eq!(
        sent(&mut ed),
        [ClientMessage::DeleteFile { doc: "d4".into() }]
    );
}

#[test]
fn the_picker_filters_and_opens() {
    let mut ed = project(vec![]);
    ctrl(&mut ed, 'p');
    assert_eq!(ed.picker_items().len(), 3);
    for c in "lib".chars() {
        press(&mut ed, KeyCode::Char(c));
    }
    let items = ed.picker_items();
    assert_eq!(items[0].path, "src/lib.rs");
    press(&mut ed, KeyCode::Enter);
    assert!(ed.picker().is_none());
    assert_eq!(ed.active_doc(), Some("d2"));
    // Keys typed in the picker never reached the document.
    ed.on_server(opened("d2", 0, "x\n"));
    assert_eq!(ed.text().to_string(), "x\n");
    // F5 lists the open buffers, the previous one chosen.
    press(&mut ed, KeyCode::F(5));
    press(&mut ed, KeyCode::Enter);
    assert_eq!(ed.active_doc(), Some("main"));
}

#[test]
fn f2_jumps_to_a_colleague_in_another_file() {
    let mut ed = project(vec![in_doc(user("bob", "#e6194b", None, None), "d2")]);
    ed.on_server(cursor("bob", "d2", 3, 4));
    press(&mut ed, KeyCode::F(2));
    assert_eq!(ed.active_doc(), Some("d2"));
    ed.on_server(opened("d2", 3, "pub fn x() {}\n"));
    assert_eq!(ed.caret(), 4);
}

#[test]
fn following_goes_where_the_colleague_goes_until_typing_or_esc() {
    let mut ed = project(vec![in_doc(user("bob", "#e6194b", Some(3), None), "main")]);
    press(&mut ed, KeyCode::F(4));
    assert_eq!(ed.following(), Some("bob"));
    // Bob moves into README.md: it opens here, his caret in view.
    let long: String = (0..50).map(|i| format!("line {i}\n")).collect();
    ed.on_server(cursor("bob", "d3", 2, 7 * 40));
    assert_eq!(ed.active_doc(), Some("d3"));
    ed.on_server(opened("d3", 2, &long));
    assert!(ed.top > 30 && ed.top <= 40, "top {}", ed.top);
    // Scrolling and selecting keep following.
    ed.scroll(-20);
    ed.handle_event(&key(KeyCode::Right, KeyModifiers::SHIFT));
    assert_eq!(ed.following(), Some("bob"));
    ed.on_server(cursor("bob", "d3", 2, 7 * 45));
    assert!(ed.top > 30, "top {}", ed.top);
    // Typing ends it.
    press(&mut ed, KeyCode::Char('z'));
    assert_eq!(ed.following(), None);
    // So does Esc.
    press(&mut ed, KeyCode::F(4));
    assert_eq!(ed.following(), Some("bob"));
    press(&mut ed, KeyCode::Esc);
    assert_eq!(ed.following(), None);
    assert_eq!(ed.notice(), Some("Stopped following bob"));
}

fn mouse(kind: crossterm::event::MouseEventKind, column: u16, row: u16) -> crossterm::event::Event {
    crossterm::event::Event::Mouse(crossterm::event::MouseEvent {
        kind,
        column,
        row,
        modifiers: KeyModifiers::NONE,
    })
}

#[test]
fn selecting_with_the_mouse_keeps_following_and_a_plain_click_ends_it() {
    use crossterm::event::{MouseButton::Left, MouseEventKind as M};
    let mut ed = project(vec![in_doc(user("bob", "#e6194b", Some(3), None), "main")]);
    press(&mut ed, KeyCode::F(4));
    assert_eq!(ed.following(), Some("bob"));
    // Press, drag, release: a selection, still following.
    ed.handle_event(&mouse(M::Down(Left), 5, 0));
    assert_eq!(ed.following(), Some("bob"), "not yet known to be a click");
    ed.handle_event(&mouse(M::Drag(Left), 9, 0));
    ed.handle_event(&mouse(M::Up(Left), 9, 0));
    assert_eq!(ed.selection(), Some((1, 5)));
    assert_eq!(ed.following(), Some("bob"));
    // Press and release without a drag: a click into the text ends it.
    ed.handle_event(&mouse(M::Down(Left), 6, 0));
    ed.handle_event(&mouse(M::Up(Left), 6, 0));
    assert_eq!(ed.following(), None);
    assert_eq!(ed.caret(), 2);
}

#[test]
fn disk_mirrors_are_listed_but_not_followed() {
    let mut disk = in_doc(user("host-disk", "#3cb44b", Some(1), None), "main");
    disk.name = "alice (disk)".into();
    let mut ed = project(vec![disk]);
    press(&mut ed, KeyCode::F(4));
    assert_eq!(ed.following(), None);
    assert_eq!(ed.notice(), Some("No colleague to follow"));
    assert_eq!(ed.presence().users().len(), 1);
}

#[test]
fn a_resumed_journal_of_another_document_is_reopened_with_since_and_resent() {
    // A previous process typed "!" in d2 at revision 5, unacknowledged.
    let mut earlier = project(vec![]);
    open(&mut earlier, "d2", "a\n");
    press(&mut earlier, KeyCode::Char('!'));
    let docs = earlier.unacknowledged_docs();
    assert_eq!(docs.len(), 1);
    let (name, saved) = &docs[0];
    assert_eq!(name.as_deref(), Some("d2"));
    // This process takes it over: d2 is open before anything is heard.
    let mut ed = Editor::new("room1234567890", "me", None).resume_doc("d2", saved);
    assert!(ed.is_open("d2"));
    ed.on_server(project_init(0, vec![]));
    assert_eq!(ed.active_doc(), Some("main"));
    let msgs = sent(&mut ed);
    assert!(
        msgs.contains(&ClientMessage::Open {
            doc: "d2".into(),
            since: Some(5)
        }),
        "{msgs:?}"
    );
    ed.on_server(opened("d2", 5, "a\n"));
    assert!(matches!(
        &sent(&mut ed)[..],
        [ClientMessage::CodeUpdate { seq: 1, revision: 5, doc: Some(d), .. }] if d == "d2"
    ));
    // Main first (named None, as a one-document client names it), then d2.
    press(&mut ed, KeyCode::Char('m'));
    let names: Vec<_> = ed
        .unacknowledged_docs()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, [None, Some("d2".to_owned())]);
    let before = ed.journal_mark();
    ed.on_server(ServerMessage::Ack {
        revision: 6,
        seq: 1,
        doc: Some("d2".into()),
    });
    assert!(ed.journal_mark() > before);
    assert_eq!(ed.unacknowledged_docs().len(), 1);
}

#[test]
fn a_document_out_of_step_is_opened_afresh_alone() {
    let mut ed = project(vec![]);
    open(&mut ed, "d2", "abc\n");
    press(&mut ed, KeyCode::Char('x'));
    sent(&mut ed);
    // A revision gap in d2: d2 alone is opened again, without since.
    ed.on_server(update("d2", 9, Operation::replace(4, 0, 0, "?").unwrap()));
    let effects = ed.take_effects();
    assert!(!effects.contains(&Effect::ResyncFresh), "{effects:?}");
    assert!(effects.contains(&Effect::Send(ClientMessage::Open {
        doc: "d2".into(),
        since: None
    })));
    // The server's text replaces it; the unsent "x" is kept aside.
    ed.on_server(opened("d2", 9, "server\n"));
    assert_eq!(ed.text().to_string(), "server\n");
    assert!(ed.take_effects().contains(&Effect::SaveRecovery {
        text: "xabc\n".into(),
        why: Recovery::Unmerged
    }));
}

/// A previous process typed "!" at the start of the main document at
/// revision 0, unacknowledged, after using seqs 1 and 2 in d2: its journal.
fn journal_of_main_edit() -> (collab_protocol::Unacknowledged, Vec<(String, u64)>) {
    let mut earlier = project(vec![]);
    open(&mut earlier, "d2", "a\n");
    press(&mut earlier, KeyCode::Char('x'));
    earlier.on_server(ServerMessage::Ack {
        revision: 6,
        seq: 1,
        doc: Some("d2".into()),
    });
    press(&mut earlier, KeyCode::Char('y'));
    earlier.on_server(ServerMessage::Ack {
        revision: 7,
        seq: 2,
        doc: Some("d2".into()),
    });
    earlier.switch_buffer(true);
    assert_eq!(earlier.active_doc(), Some("main"));
    press(&mut earlier, KeyCode::Char('!'));
    let mut docs = earlier.unacknowledged_docs();
    assert_eq!(docs.len(), 1);
    let (name, saved) = docs.remove(0);
    assert_eq!(name, None, "the main document's");
    (saved, earlier.next_seqs())
}

#[test]
fn a_resumed_journal_of_the_main_document_is_rebased_and_sent_once() {
    let (saved, _) = journal_of_main_edit();
    let mut ed = Editor::new("room1234567890", "me", None).resume(&saved);
    assert_eq!(ed.text().to_string(), "!fn main() {}\n");
    // The server committed someone's edit meanwhile: the resumed edit is
    // rebased over it and sent once, into the main document.
    let mut init = project_init(1, vec![]);
    if let ServerMessage::Init { code, missed, .. } = &mut init {
        *code = "fn main() {}\n// bob\n".into();
        *missed = Some(vec![CommittedOp {
            revision: 1,
            operation: Operation::replace(13, 13, 13, "// bob\n").unwrap(),
            user_id: "bob".into(),
            seq: None,
            doc: None,
        }]);
    }
    ed.on_server(init);
    assert_eq!(ed.active_doc(), Some("main"));
    assert_eq!(ed.open_docs(), ["main"], "no second main buffer");
    assert_eq!(ed.text().to_string(), "!fn main() {}\n// bob\n");
    assert!(matches!(
        &sent(&mut ed)[..],
        [ClientMessage::CodeUpdate { seq: 1, revision: 1, doc: Some(d), .. }] if d == "main"
    ));
    ed.on_server(ServerMessage::Ack {
        revision: 2,
        seq: 1,
        doc: Some("main".into()),
    });
    assert!(!ed.has_unsent());
}

#[test]
fn a_resumed_editor_continues_the_seqs_of_every_document() {
    let (saved, seqs) = journal_of_main_edit();
    assert!(seqs.contains(&("d2".to_owned(), 3)), "{seqs:?}");
    let mut ed = Editor::new("room1234567890", "me", None)
        .resume(&saved)
        .with_seqs(seqs);
    ed.on_server(project_init(0, vec![]));
    sent(&mut ed);
    // d2 had no unacknowledged edits, but seqs 1 and 2 are used in it
    // under this client id: the next edit there is seq 3.
    open(&mut ed, "d2", "xya\n");
    press(&mut ed, KeyCode::Char('z'));
    assert!(matches!(
        &sent(&mut ed)[..],
        [ClientMessage::CodeUpdate { seq: 3, doc: Some(d), .. }] if d == "d2"
    ));
    // And the journal of this process keeps them all again.
    assert!(ed.next_seqs().contains(&("d2".to_owned(), 4)));
    assert!(ed.next_seqs().contains(&("main".to_owned(), 2)));
}

#[test]
fn a_main_document_continues_its_seqs_after_a_restart() {
    let mut ed = Editor::new("room1234567890", "me", None).with_seqs(vec![("main".into(), 7)]);
    ed.on_server(project_init(0, vec![]));
    sent(&mut ed);
    press(&mut ed, KeyCode::Char('q'));
    assert!(matches!(
        &sent(&mut ed)[..],
        [ClientMessage::CodeUpdate { seq: 7, doc: Some(d), .. }] if d == "main"
    ));
}

#[test]
fn a_reconnect_after_the_main_document_was_deleted_keeps_the_buffers() {
    let mut ed = project(vec![]);
    open(&mut ed, "d2", "lib text\n");
    assert_eq!(ed.active_doc(), Some("d2"));
    // Meanwhile, offline, the main document was deleted: the next init has
    // no main document.
    let mut init = project_init(3, vec![]);
    if let ServerMessage::Init {
        code,
        revision,
        doc,
        files,
        ..
    } = &mut init
    {
        *code = String::new();
        *revision = 0;
        *doc = None;
        files.as_mut().unwrap().retain(|f| f.doc != "main");
    }
    ed.on_server(init);
    assert_eq!(ed.active_doc(), Some("d2"));
    assert_eq!(ed.text().to_string(), "lib text\n", "not blanked");
    let msgs = sent(&mut ed);
    assert!(
        msgs.contains(&ClientMessage::Open {
            doc: "d2".into(),
            since: Some(5)
        }),
        "{msgs:?}"
    );
    ed.on_server(opened("d2", 5, "lib text\n"));
    assert_eq!(ed.text().to_string(), "lib text\n");
}

#[test]
fn a_resumed_main_document_deleted_meanwhile_is_kept_aside() {
    let (saved, _) = journal_of_main_edit();
    let mut ed = Editor::new("room1234567890", "me", None).resume(&saved);
    let mut init = project_init(0, vec![]);
    if let ServerMessage::Init {
        code, doc, files, ..
    } = &mut init
    {
        *code = String::new();
        *doc = None;
        files.as_mut().unwrap().retain(|f| f.doc != "main");
    }
    ed.on_server(init);
    let effects = ed.take_effects();
    assert!(
        effects.contains(&Effect::SaveRecovery {
            text: "!fn main() {}\n".into(),
            why: Recovery::Deleted("the main document".into()),
        }),
        "{effects:?}"
    );
    // The first file is opened instead.
    assert!(effects.contains(&Effect::Send(ClientMessage::Open {
        doc: "d3".into(),
        since: None
    })));
    assert!(!ed.has_unsent());
}

#[test]
fn ctrl_s_with_a_disk_mirror_says_the_files_are_on_disk_and_saves_nothing() {
    let mut ed = Editor::new("room1234567890", "me", None).with_disk_mirror(true);
    ed.on_server(project_init(0, vec![]));
    ed.take_effects();
    press(&mut ed, KeyCode::Char('x'));
    ed.take_effects();
    ctrl(&mut ed, 's');
    assert_eq!(ed.prompt(), None, "no untitled.rs offered");
    assert!(ed.take_effects().is_empty());
    assert!(
        ed.notice().is_some_and(|n| n.contains("disk mirror")),
        "{:?}",
        ed.notice()
    );
    ed.save_as();
    assert_eq!(ed.prompt(), None);
    assert!(ed.take_effects().is_empty());
    // Without a mirror, Ctrl-S asks where to save as before.
    let mut plain = project(vec![]);
    ctrl(&mut plain, 's');
    assert!(plain.prompt().is_some());
}
