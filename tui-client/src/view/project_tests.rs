//! The project editor on ratatui's `TestBackend`: the picker, switching
//! buffers, the file list's marks, the users panel's file:line, and the
//! status bar while following.

use std::time::Instant;

use collab_protocol::ServerMessage;
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::draw;
use crate::core::editor::Editor;
use crate::core::editor_tests::user;
use crate::core::project_tests::{in_doc, opened, project};

fn screen(ed: &mut Editor, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| draw(f, ed, Instant::now())).unwrap();
    let buf = term.backend().buffer().clone();
    (0..h)
        .map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect::<String>() + "\n")
        .collect()
}

fn key(ed: &mut Editor, code: KeyCode, modifiers: KeyModifiers) {
    ed.handle_event(&Event::Key(KeyEvent::new(code, modifiers)));
}

fn typed(ed: &mut Editor, text: &str) {
    for c in text.chars() {
        key(ed, KeyCode::Char(c), KeyModifiers::NONE);
    }
}

fn bob_at(doc: &str, at: u64) -> ServerMessage {
    ServerMessage::CursorMove {
        user_id: "bob".into(),
        revision: 0,
        cursor: at,
        anchor: None,
        doc: Some(doc.into()),
    }
}

#[test]
fn the_picker_lists_filters_and_opens_files() {
    let mut ed = project(vec![in_doc(user("bob", "#e6194b", Some(0), None), "d2")]);
    key(&mut ed, KeyCode::Char('p'), KeyModifiers::CONTROL);
    let s = screen(&mut ed, 80, 16);
    assert!(s.contains("Open file (3 of 3)"), "{s}");
    for path in ["README.md", "src/lib.rs", "src/main.rs"] {
        assert!(s.contains(path), "{path}:\n{s}");
    }
    // Bob's initial marks the file he is in.
    assert!(s.contains("src/lib.rs b"), "{s}");
    typed(&mut ed, "rdm");
    let s = screen(&mut ed, 80, 16);
    assert!(
        s.contains("Open file (1 of 3)") && s.contains("README.md"),
        "{s}"
    );
    assert!(!s.contains("src/lib.rs b"), "{s}");
    key(&mut ed, KeyCode::Enter, KeyModifiers::NONE);
    ed.on_server(opened("d3", 0, "# Read me\n"));
    let s = screen(&mut ed, 80, 16);
    assert!(s.contains("# Read me"), "{s}");
    assert!(
        s.contains("│ README.md │"),
        "status bar names the file:\n{s}"
    );
}

#[test]
fn buffers_switch_with_ctrl_page_down_and_the_buffer_list() {
    let mut ed = project(vec![]);
    ed.open_doc("d2");
    ed.on_server(opened("d2", 0, "pub fn lib() {}\n"));
    let s = screen(&mut ed, 80, 12);
    assert!(
        s.contains("pub fn lib()") && s.contains("src/lib.rs"),
        "{s}"
    );
    key(&mut ed, KeyCode::PageDown, KeyModifiers::CONTROL);
    let s = screen(&mut ed, 80, 12);
    assert!(
        s.contains("fn main() {}") && s.contains("src/main.rs"),
        "{s}"
    );
    key(&mut ed, KeyCode::F(5), KeyModifiers::NONE);
    let s = screen(&mut ed, 80, 12);
    assert!(s.contains("Open buffers"), "{s}");
    key(&mut ed, KeyCode::Enter, KeyModifiers::NONE);
    let s = screen(&mut ed, 80, 12);
    assert!(s.contains("pub fn lib()"), "{s}");
}

#[test]
fn the_file_list_marks_colleagues_and_the_users_panel_says_file_and_line() {
    let mut ed = project(vec![in_doc(user("bob", "#e6194b", None, None), "main")]);
    ed.on_server(ServerMessage::CodeUpdate(collab_protocol::CommittedOp {
        revision: 1,
        operation: collab_protocol::Operation::replace(13, 13, 13, "\nfn two() {}\n").unwrap(),
        user_id: "bob".into(),
        seq: None,
        doc: Some("main".into()),
    }));
    ed.on_server(ServerMessage::CursorMove {
        user_id: "bob".into(),
        revision: 1,
        cursor: 15,
        anchor: None,
        doc: Some("main".into()),
    });
    key(&mut ed, KeyCode::F(7), KeyModifiers::NONE);
    let s = screen(&mut ed, 90, 14);
    assert!(s.contains("Files (3)"), "{s}");
    assert!(s.contains("src/main.rs b"), "{s}");
    assert!(s.contains("bob main.rs:3"), "{s}");
    // Bob goes to a file not open here: the panel still says where.
    ed.on_server(bob_at("d2", 0));
    let s = screen(&mut ed, 90, 14);
    assert!(s.contains("bob lib.rs"), "{s}");
    assert!(s.contains("src/lib.rs b"), "{s}");
}

#[test]
fn following_shows_in_the_status_bar_and_moves_into_the_next_file() {
    let mut ed = project(vec![in_doc(user("bob", "#e6194b", Some(0), None), "main")]);
    key(&mut ed, KeyCode::F(4), KeyModifiers::NONE);
    let s = screen(&mut ed, 90, 12);
    assert!(s.contains("│ following bob"), "{s}");
    ed.on_server(bob_at("d3", 2));
    ed.on_server(opened("d3", 0, "# Read me\n"));
    let s = screen(&mut ed, 90, 12);
    assert!(
        s.contains("# Read me") && s.contains("│ following bob"),
        "{s}"
    );
    key(&mut ed, KeyCode::Esc, KeyModifiers::NONE);
    let s = screen(&mut ed, 90, 12);
    assert!(!s.contains("│ following bob"), "{s}");
    assert!(s.contains("Stopped following bob"), "{s}");
}

/// Where `text` is on screen (column, row), from the drawn frame.
fn find(screen: &str, text: &str) -> (u16, u16) {
    screen
        .lines()
        .enumerate()
        .find_map(|(y, line)| {
            let at = line.find(text)?;
            Some((line[..at].chars().count() as u16, y as u16))
        })
        .unwrap_or_else(|| panic!("{text} not on screen:\n{screen}"))
}

/// A click: the button down and up again at one cell.
fn click(ed: &mut Editor, (column, row): (u16, u16)) {
    use crossterm::event::{MouseButton::Left, MouseEventKind as M};
    for kind in [M::Down(Left), M::Up(Left)] {
        ed.handle_event(&Event::Mouse(crossterm::event::MouseEvent {
            kind,
            column,
            row,
            modifiers: KeyModifiers::NONE,
        }));
    }
}

#[test]
fn clicking_a_colleague_follows_them_and_clicking_a_file_opens_it() {
    let mut ed = project(vec![in_doc(user("bob", "#e6194b", Some(0), None), "main")]);
    key(&mut ed, KeyCode::F(7), KeyModifiers::NONE);
    let s = screen(&mut ed, 90, 16);
    click(&mut ed, find(&s, "bob main.rs"));
    assert_eq!(ed.following(), Some("bob"));
    let s = screen(&mut ed, 90, 16);
    assert!(s.contains("│ following bob"), "{s}");
    click(&mut ed, find(&s, "README.md"));
    assert_eq!(ed.following(), None);
    assert_eq!(ed.active_doc(), Some("d3"));
    ed.on_server(opened("d3", 0, "# Read me\n"));
    let s = screen(&mut ed, 90, 16);
    assert!(
        s.contains("# Read me") && s.contains("│ README.md │"),
        "{s}"
    );
    // Clicking into the text while following ends following.
    key(&mut ed, KeyCode::F(4), KeyModifiers::NONE);
    assert_eq!(ed.following(), Some("bob"));
    click(&mut ed, (6, 0));
    assert_eq!(ed.following(), None);
}

#[test]
fn a_long_path_is_cut_at_its_start_and_the_markers_stay_visible() {
    let mut ed = project(vec![]);
    let long = format!("{}main.rs", "deep/".repeat(150));
    ed.on_server(ServerMessage::FileRenamed {
        doc: "main".into(),
        path: long.clone(),
        old_path: "src/main.rs".into(),
        user_id: "me".into(),
        tree_revision: 4,
    });
    assert_eq!(ed.active_path(), Some(long.as_str()));
    typed(&mut ed, "x");
    let s = screen(&mut ed, 80, 12);
    let status = s
        .lines()
        .find(|l| l.starts_with(" room "))
        .unwrap_or_else(|| panic!("no status bar:\n{s}"));
    assert!(status.contains("↑ unsent"), "{status}");
    assert!(
        status.contains(" │ …") && status.contains("/deep/main.rs │ ↑ unsent"),
        "{status}"
    );
    // Half the bar at most: the connection shows too on a wide terminal.
    let s = screen(&mut ed, 140, 12);
    let status = s.lines().find(|l| l.starts_with(" room ")).unwrap();
    assert!(
        status.contains("↑ unsent") && status.contains("connected"),
        "{status}"
    );
}
