//! The completion popup on ratatui's `TestBackend`: what it lists for a
//! word and where, choosing, accepting as one undo step, narrowing as one
//! types, and the keys that close it (Esc, a motion, a non-word char).

use std::time::Instant;

use collab_protocol::complete::Kind;
use collab_protocol::{Operation, ServerMessage};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;

use super::draw;
use crate::core::editor::Editor;
use crate::core::editor_tests::{init_msg, sent_ops};

const W: u16 = 80;
const H: u16 = 14;
/// Gutter of a short document: 3 digits and a space.
const TEXT_X: u16 = 4;

/// A Rust document's editor with the caret at its end.
fn editor_at_end(code: &str) -> Editor {
    let mut ed = Editor::new("AbCdEfGhIjKlMnOpQrStUv", "me", None);
    ed.on_server(init_msg(3, code, vec![]));
    key(&mut ed, KeyCode::End, KeyModifiers::CONTROL);
    ed
}

fn render(ed: &mut Editor) -> Terminal<TestBackend> {
    let mut term = Terminal::new(TestBackend::new(W, H)).unwrap();
    term.draw(|f| draw(f, ed, Instant::now())).unwrap();
    term
}

fn row(buf: &Buffer, y: u16) -> String {
    (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect()
}

/// `n` cells of row `y` from column `x`.
fn from(buf: &Buffer, y: u16, x: u16, n: u16) -> String {
    (x..x + n).map(|x| buf[(x, y)].symbol()).collect()
}

fn screen(term: &Terminal<TestBackend>) -> String {
    let buf = term.backend().buffer();
    (0..H).map(|y| row(buf, y) + "\n").collect()
}

fn key(ed: &mut Editor, code: KeyCode, modifiers: KeyModifiers) {
    ed.handle_event(&Event::Key(KeyEvent::new(code, modifiers)));
}

fn press(ed: &mut Editor, code: KeyCode) {
    key(ed, code, KeyModifiers::NONE);
}

fn type_str(ed: &mut Editor, s: &str) {
    for c in s.chars() {
        press(ed, KeyCode::Char(c));
    }
}

fn ctrl_space(ed: &mut Editor) {
    key(ed, KeyCode::Char(' '), KeyModifiers::CONTROL);
}

fn labels(ed: &Editor) -> Vec<String> {
    ed.completion()
        .map(|p| p.candidates.iter().map(|c| c.label.clone()).collect())
        .unwrap_or_default()
}

const CODE: &str = "let value_one = 1;\nlet value_two = 2;\n";

#[test]
fn the_popup_lists_the_words_candidates_under_the_word() {
    let mut ed = editor_at_end(CODE);
    type_str(&mut ed, "val");
    ctrl_space(&mut ed);
    let term = render(&mut ed);
    let buf = term.backend().buffer();
    // The caret is on line 3 (row 2) after "val"; the popup's box starts on
    // the next row, its labels in the word's column.
    assert_eq!(from(buf, 3, 0, TEXT_X - 1), "   ", "{}", screen(&term));
    assert_eq!(buf[(TEXT_X - 1, 3)].symbol(), "┌", "{}", screen(&term));
    // The nearer word first, each with its kind.
    assert_eq!(
        from(buf, 4, TEXT_X, 15),
        "value_two  word",
        "{}",
        screen(&term)
    );
    assert_eq!(
        from(buf, 5, TEXT_X, 15),
        "value_one  word",
        "{}",
        screen(&term)
    );
    assert_eq!(buf[(TEXT_X - 1, 6)].symbol(), "└", "two candidates");
    // The chosen one is highlighted; the chars the word matched are bold.
    let chosen = &buf[(TEXT_X + 5, 4)];
    assert!(chosen.modifier.contains(Modifier::REVERSED));
    assert!(!buf[(TEXT_X + 5, 5)].modifier.contains(Modifier::REVERSED));
    let matched = &buf[(TEXT_X + 1, 5)];
    assert!(matched.modifier.contains(Modifier::BOLD));
    assert_eq!(matched.fg, Color::Yellow);
    assert!(!buf[(TEXT_X + 4, 5)].modifier.contains(Modifier::BOLD));
    // The terminal's cursor stays at the caret.
    let mut term = term;
    term.backend_mut().assert_cursor_position((TEXT_X + 3, 2));
}

#[test]
fn keywords_and_snippets_are_marked_and_a_snippet_shows_its_first_line() {
    let mut ed = editor_at_end("fn main() {\n    ");
    type_str(&mut ed, "im");
    ctrl_space(&mut ed);
    let kinds: Vec<Kind> = ed
        .completion()
        .unwrap()
        .candidates
        .iter()
        .map(|c| c.kind)
        .collect();
    assert_eq!(kinds[..2], [Kind::Keyword, Kind::Snippet]);
    let term = render(&mut ed);
    let screen = screen(&term);
    let rows: Vec<Vec<&str>> = screen
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let shown = |words: &[&str]| {
        rows.iter()
            .any(|r| r.windows(words.len()).any(|w| w == words))
    };
    assert!(shown(&["│impl", "keyword", "│"]), "{screen}");
    assert!(
        shown(&["│impl", "snippet", "impl", "Type", "{"]),
        "{screen}"
    );
}

#[test]
fn choosing_and_accepting_is_one_edit_and_one_undo_step() {
    let mut ed = editor_at_end(CODE);
    type_str(&mut ed, "x = val");
    ctrl_space(&mut ed);
    assert_eq!(labels(&ed), ["value_two", "value_one"]);
    press(&mut ed, KeyCode::Down);
    assert_eq!(ed.completion().unwrap().selected, 1);
    let term = render(&mut ed);
    let buf = term.backend().buffer();
    let x = TEXT_X + 4;
    assert!(!buf[(x + 1, 4)].modifier.contains(Modifier::REVERSED));
    assert!(buf[(x + 1, 5)].modifier.contains(Modifier::REVERSED));
    // Ctrl-P and Ctrl-N move too, and stop at the ends.
    key(&mut ed, KeyCode::Char('n'), KeyModifiers::CONTROL);
    assert_eq!(ed.completion().unwrap().selected, 1);
    key(&mut ed, KeyCode::Char('p'), KeyModifiers::CONTROL);
    key(&mut ed, KeyCode::Char('p'), KeyModifiers::CONTROL);
    assert_eq!(ed.completion().unwrap().selected, 0);
    press(&mut ed, KeyCode::Down);
    // The typing acknowledged, accepting sends one operation: the word
    // typed replaced by the candidate.
    let mut revision = 3;
    for _ in 0..2 {
        for (_, seq, _) in sent_ops(&mut ed) {
            revision += 1;
            ed.on_server(ServerMessage::Ack {
                revision,
                seq,
                doc: None,
            });
        }
    }
    assert!(!ed.has_unsent());
    press(&mut ed, KeyCode::Enter);
    assert_eq!(ed.text().to_string(), format!("{CODE}x = value_one"));
    let len = CODE.chars().count() + 7;
    assert_eq!(
        sent_ops(&mut ed),
        [(
            revision,
            3,
            Operation::replace(len, len - 3, len, "value_one").unwrap()
        )]
    );
    assert_eq!(ed.caret(), ed.text().len_chars());
    assert!(ed.completion().is_none());
    let screen = screen(&render(&mut ed));
    assert!(!screen.contains("word"), "closed: {screen}");
    // One undo brings back the word as typed, the next the typing.
    key(&mut ed, KeyCode::Char('z'), KeyModifiers::CONTROL);
    assert_eq!(ed.text().to_string(), format!("{CODE}x = val"));
    key(&mut ed, KeyCode::Char('z'), KeyModifiers::CONTROL);
    assert_eq!(ed.text().to_string(), CODE);
}

#[test]
fn tab_accepts_and_a_snippets_placeholder_is_selected() {
    let mut ed = editor_at_end("fn main() {\n    ");
    type_str(&mut ed, "pri");
    // Tab right after a word opens the popup; Tab again accepts.
    press(&mut ed, KeyCode::Tab);
    assert_eq!(labels(&ed)[0], "println");
    press(&mut ed, KeyCode::Tab);
    let line = "fn main() {\n    println!(\"{value}\");";
    assert_eq!(ed.text().to_string(), line);
    let start = line.find("value").unwrap();
    assert_eq!(ed.selection(), Some((start, start + 5)));
    // Typing replaces the placeholder.
    type_str(&mut ed, "n");
    assert_eq!(ed.text().to_string(), "fn main() {\n    println!(\"{n}\");");
    key(&mut ed, KeyCode::Char('z'), KeyModifiers::CONTROL);
    key(&mut ed, KeyCode::Char('z'), KeyModifiers::CONTROL);
    assert_eq!(ed.text().to_string(), "fn main() {\n    pri");
}

#[test]
fn typing_narrows_the_list_and_it_closes_when_nothing_matches() {
    let mut ed = editor_at_end(CODE);
    type_str(&mut ed, "val");
    ctrl_space(&mut ed);
    assert_eq!(labels(&ed), ["value_two", "value_one"]);
    type_str(&mut ed, "ue_on");
    assert_eq!(labels(&ed), ["value_one"]);
    // Backspace widens it again: value_two holds "value_o" too, though not
    // at its start.
    press(&mut ed, KeyCode::Backspace);
    assert_eq!(labels(&ed), ["value_one", "value_two"]);
    type_str(&mut ed, "x");
    assert!(ed.completion().is_none(), "no candidate for value_ox");
    // Typing on does not open it again.
    type_str(&mut ed, "y");
    assert!(ed.completion().is_none());
    assert_eq!(ed.text().to_string(), format!("{CODE}value_oxy"));
}

#[test]
fn leaving_the_word_or_esc_closes_it_and_tab_then_indents() {
    let mut ed = editor_at_end(CODE);
    type_str(&mut ed, "val");
    ctrl_space(&mut ed);
    // A char that is not part of a word ends the word.
    type_str(&mut ed, " ");
    assert!(ed.completion().is_none());
    // A motion closes it and moves.
    type_str(&mut ed, "val");
    press(&mut ed, KeyCode::Tab);
    assert!(ed.completion().is_some());
    let caret = ed.caret();
    press(&mut ed, KeyCode::Left);
    assert!(ed.completion().is_none());
    assert_eq!(ed.caret(), caret - 1);
    press(&mut ed, KeyCode::Right);
    // Esc closes it, and leaves the text alone.
    ctrl_space(&mut ed);
    assert!(ed.completion().is_some());
    press(&mut ed, KeyCode::Esc);
    assert!(ed.completion().is_none());
    assert!(!screen(&render(&mut ed)).contains("word"));
    assert_eq!(ed.text().to_string(), format!("{CODE}val val"));
    // Tab right there now indents (Esc said no), as it does where there
    // is no word before the caret.
    press(&mut ed, KeyCode::Tab);
    assert!(ed.completion().is_none());
    assert_eq!(ed.text().to_string(), format!("{CODE}val val "));
    press(&mut ed, KeyCode::Tab);
    assert_eq!(ed.text().to_string(), format!("{CODE}val val     "));
}

#[test]
fn after_a_trigger_ctrl_space_offers_the_snippets_rest() {
    let mut ed = editor_at_end("");
    type_str(&mut ed, "fn ");
    ctrl_space(&mut ed);
    assert_eq!(labels(&ed), ["fn"]);
    press(&mut ed, KeyCode::Enter);
    assert_eq!(ed.text().to_string(), "fn name() {\n    \n}");
    assert_eq!(ed.selection(), Some((3, 7)));
    // Nothing to complete: it says so.
    let mut ed = editor_at_end("");
    type_str(&mut ed, "x = ");
    ctrl_space(&mut ed);
    assert!(ed.completion().is_none());
    assert_eq!(ed.notice(), Some("No completions here"));
}

#[test]
fn words_come_from_every_open_document() {
    use crate::core::project_tests::{opened, project};
    let mut ed = project(vec![]);
    ed.open_doc("d2");
    ed.on_server(opened("d2", 5, "pub fn helper_from_lib() {}\n"));
    ed.open_doc("main");
    key(&mut ed, KeyCode::End, KeyModifiers::CONTROL);
    type_str(&mut ed, "hel");
    ctrl_space(&mut ed);
    assert_eq!(labels(&ed), ["helper_from_lib"]);
    press(&mut ed, KeyCode::Enter);
    assert_eq!(ed.text().to_string(), "fn main() {}\nhelper_from_lib");
}

#[test]
fn the_help_lists_the_completion_keys() {
    let mut ed = editor_at_end("abc");
    press(&mut ed, KeyCode::F(1));
    let mut term = Terminal::new(TestBackend::new(100, 60)).unwrap();
    term.draw(|f| draw(f, &mut ed, Instant::now())).unwrap();
    let buf = term.backend().buffer();
    let all: String = (0..60).map(|y| row(buf, y)).collect();
    assert!(all.contains("Ctrl-Space, Tab"), "{all}");
    assert!(all.contains("complete the word"), "{all}");
}

#[test]
fn a_snippet_in_a_crlf_file_gets_its_line_endings() {
    let mut ed = editor_at_end("// x\r\n");
    type_str(&mut ed, "fn ");
    ctrl_space(&mut ed);
    press(&mut ed, KeyCode::Enter);
    assert_eq!(ed.text().to_string(), "// x\r\nfn name() {\r\n    \r\n}");
    assert_eq!(ed.selection(), Some((9, 13)), "the placeholder is selected");
}
