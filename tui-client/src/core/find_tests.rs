//! Key-sequence tests of search, replace, go-to-line, word motions and
//! deletions, and the hint for keys that do nothing.

use collab_protocol::Operation;
use crossterm::event::{KeyCode, KeyModifiers};

use super::editor::Prompt;
use super::editor_tests::{ctrl, key, press, ready, remote, sent_ops, shift, text, type_str};

fn f3(ed: &mut super::editor::Editor, shift: bool) {
    let m = if shift {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    ed.handle_event(&key(KeyCode::F(3), m));
}

#[test]
fn search_next_and_previous_across_a_colleagues_insert() {
    let mut ed = ready("foo bar foo baz foo");
    ctrl(&mut ed, 'f');
    type_str(&mut ed, "foo");
    assert_eq!(ed.selection(), Some((0, 3)), "as you type: the first match");
    press(&mut ed, KeyCode::Enter);
    assert_eq!(ed.selection(), Some((8, 11)), "Enter: the next");
    // Bob types "foo " at the very start: the current match moves along.
    ed.on_server(remote(1, Operation::replace(19, 0, 0, "foo ").unwrap()));
    assert_eq!(text(&ed), "foo foo bar foo baz foo");
    assert_eq!(ed.selection(), Some((12, 15)));
    f3(&mut ed, false);
    assert_eq!(ed.selection(), Some((20, 23)));
    f3(&mut ed, true);
    f3(&mut ed, true);
    assert_eq!(ed.selection(), Some((4, 7)), "Shift-F3 goes back");
    f3(&mut ed, true);
    assert_eq!(ed.selection(), Some((0, 3)), "finds Bob's one too");
    f3(&mut ed, true);
    assert_eq!(ed.selection(), Some((20, 23)), "wraps to the end");
    // Esc: back to where the search started.
    press(&mut ed, KeyCode::Esc);
    assert_eq!(ed.prompt(), None);
    assert_eq!((ed.caret(), ed.selection()), (0, None));
    // F3 outside the prompt repeats the search.
    f3(&mut ed, false);
    assert_eq!(ed.selection(), Some((0, 3)));
}

#[test]
fn search_is_case_smart_and_takes_regexes() {
    let mut ed = ready("Alpha alpha ALPHA a1 a22");
    ctrl(&mut ed, 'f');
    type_str(&mut ed, "ALPHA");
    assert_eq!(ed.selection(), Some((12, 17)), "a capital: exact case");
    for _ in 0..5 {
        press(&mut ed, KeyCode::Backspace);
    }
    type_str(&mut ed, "alpha");
    press(&mut ed, KeyCode::Enter);
    assert_eq!(ed.selection(), Some((6, 11)), "lowercase: any case");
    // Alt-R: a regex.
    for _ in 0..5 {
        press(&mut ed, KeyCode::Backspace);
    }
    ed.handle_event(&key(KeyCode::Char('r'), KeyModifiers::ALT));
    type_str(&mut ed, r"a\d{2}");
    assert_eq!(ed.selection(), Some((21, 24)));
    assert_eq!(ed.search_info(), (true, None));
    type_str(&mut ed, "(");
    assert!(ed
        .search_info()
        .1
        .is_some_and(|s| s.starts_with("bad regex")));
    // A key the prompt does not know ends the search where it is, then
    // does its job: Down moves on from there.
    ctrl(&mut ed, 'f');
    assert_eq!(ed.prompt(), None);
}

#[test]
fn replace_all_is_one_operation_and_one_undo_step() {
    let mut ed = ready("let a = a + a;\nprint(a)");
    sent_ops(&mut ed);
    ctrl(&mut ed, 'r');
    ed.handle_event(&key(KeyCode::Char('r'), KeyModifiers::ALT));
    type_str(&mut ed, r"\ba\b");
    press(&mut ed, KeyCode::Enter);
    assert!(matches!(ed.prompt(), Some(Prompt::ReplaceWith(_))));
    type_str(&mut ed, "count");
    ed.handle_event(&key(KeyCode::Char('a'), KeyModifiers::ALT));
    assert_eq!(text(&ed), "let count = count + count;\nprint(count)");
    assert_eq!(sent_ops(&mut ed).len(), 1, "one edit for the server");
    assert_eq!(ed.notice(), Some("Replaced 4 matches"));
    ctrl(&mut ed, 'z');
    assert_eq!(text(&ed), "let a = a + a;\nprint(a)", "one undo step");
}

#[test]
fn replace_one_at_a_time_with_groups() {
    let mut ed = ready("x=1 y=2");
    ctrl(&mut ed, 'r');
    ed.handle_event(&key(KeyCode::Char('r'), KeyModifiers::ALT));
    type_str(&mut ed, r"(\w)=(\d)");
    press(&mut ed, KeyCode::Enter);
    type_str(&mut ed, "$2=$1");
    press(&mut ed, KeyCode::Enter);
    assert_eq!(text(&ed), "1=x y=2");
    assert_eq!(ed.selection(), Some((4, 7)), "on to the next");
    press(&mut ed, KeyCode::Enter);
    assert_eq!(text(&ed), "1=x 2=y");
    press(&mut ed, KeyCode::Esc);
    ctrl(&mut ed, 'z');
    assert_eq!(text(&ed), "1=x y=2", "each replacement is its own step");
}

#[test]
fn go_to_line_and_column() {
    let code: String = (1..=50).map(|i| format!("line {i}\n")).collect();
    let mut ed = ready(&code);
    ctrl(&mut ed, 'l');
    type_str(&mut ed, "30:3");
    press(&mut ed, KeyCode::Enter);
    assert_eq!(ed.line_col(), (30, 3));
    assert!(ed.top > 0, "the view went there");
    ctrl(&mut ed, 'l');
    type_str(&mut ed, "999");
    press(&mut ed, KeyCode::Enter);
    assert_eq!(ed.line_col().0, 51, "clamped to the last line");
    ctrl(&mut ed, 'l');
    type_str(&mut ed, "x4");
    assert!(matches!(ed.prompt(), Some(Prompt::GoToLine(i)) if i.text() == "4"));
}

#[test]
fn word_motion_over_cjk_and_emoji() {
    // 漢 字 are a word each; the ZWJ emoji is passed over whole.
    let mut ed = ready("漢字 👩\u{200D}💻 fn_x(y)");
    let right = |ed: &mut super::editor::Editor| {
        ed.handle_event(&key(KeyCode::Right, KeyModifiers::CONTROL));
        ed.caret()
    };
    let stops: Vec<usize> = (0..5).map(|_| right(&mut ed)).collect();
    assert_eq!(stops, vec![1, 2, 11, 13, 14]);
    let left = |ed: &mut super::editor::Editor| {
        ed.handle_event(&key(KeyCode::Left, KeyModifiers::CONTROL));
        ed.caret()
    };
    let stops: Vec<usize> = (0..4).map(|_| left(&mut ed)).collect();
    assert_eq!(stops, vec![12, 7, 1, 0]);
    // Plain arrows step over the emoji as one glyph.
    for _ in 0..3 {
        press(&mut ed, KeyCode::Right);
    }
    assert_eq!(ed.caret(), 3);
    press(&mut ed, KeyCode::Right);
    assert_eq!(ed.caret(), 6);
    press(&mut ed, KeyCode::Backspace);
    assert_eq!(
        text(&ed),
        "漢字  fn_x(y)",
        "Backspace takes the whole emoji"
    );
    // Shift selects by words.
    ed.handle_event(&key(
        KeyCode::Right,
        KeyModifiers::CONTROL | KeyModifiers::SHIFT,
    ));
    assert_eq!(ed.selection(), Some((3, 8)));
}

#[test]
fn word_deletions() {
    let mut ed = ready("let value = other.field;");
    press(&mut ed, KeyCode::End);
    ed.handle_event(&key(KeyCode::Backspace, KeyModifiers::CONTROL));
    assert_eq!(
        text(&ed),
        "let value = other.",
        "the word and what follows it"
    );
    // Ctrl-H is what most terminals send for Ctrl-Backspace.
    ctrl(&mut ed, 'h');
    assert_eq!(text(&ed), "let value = ");
    press(&mut ed, KeyCode::Home);
    ed.handle_event(&key(KeyCode::Delete, KeyModifiers::CONTROL));
    assert_eq!(text(&ed), " value = ");
    ctrl(&mut ed, 'z');
    assert_eq!(text(&ed), "let value = ");
    press(&mut ed, KeyCode::Home);
    shift(&mut ed, KeyCode::End);
    ed.handle_event(&key(KeyCode::Char('d'), KeyModifiers::ALT));
    assert_eq!(text(&ed), "", "with a selection: the selection");
}

#[test]
fn a_key_without_an_action_points_at_help() {
    let mut ed = ready("abc");
    ctrl(&mut ed, 'k');
    assert_eq!(
        ed.notice(),
        Some("Ctrl-K does nothing here · F1 lists the keys")
    );
    ed.handle_event(&key(KeyCode::F(10), KeyModifiers::NONE));
    assert_eq!(
        ed.notice(),
        Some("F10 does nothing here · F1 lists the keys")
    );
    // Typing never hints, nor does a modifier pressed alone.
    press(&mut ed, KeyCode::Char('x'));
    assert_eq!(ed.notice(), None);
    ed.handle_event(&key(
        KeyCode::Modifier(crossterm::event::ModifierKeyCode::LeftShift),
        KeyModifiers::SHIFT,
    ));
    assert_eq!(ed.notice(), None);
    assert_eq!(text(&ed), "xabc");
}
