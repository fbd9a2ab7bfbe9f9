//! What one keystroke costs the editor on documents that used to make it
//! crawl: the key is handled, acknowledged by the "server", and the whole
//! screen is drawn into a 120x40 `TestBackend` (what a terminal frame costs
//! before the bytes are written). Issue 11's targets: each under 2 ms, and a
//! 229 KB single line (a minified file) within 2x a file of normal lines.
//! Also: drawing a frame with nothing changed, which an idle editor no
//! longer does at all, but a colleague's caret move still does; and a
//! colleague's keystroke at the start of the document while this user looks
//! at its end.
//!
//! Those cases are plain text (no highlighting), as they were measured
//! before issue 16. The `highlighted/` cases are issue 16's: the same
//! keystroke and frame with tree-sitter highlighting on a 50,000-line Rust
//! file, on 1 MiB and on the 229 KB line (each under 2 ms), and a
//! colleague's edit followed by the incremental reparse alone (under 1 ms,
//! median). Setup prints the parse tree's memory (the process's resident
//! size before and after the first parse).

use std::time::Instant;

use collab::core::editor::Editor;
use collab::view;
use collab_protocol::{CommittedOp, Operation, ServerMessage};
use criterion::{criterion_group, criterion_main, Criterion};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// A line of ordinary code, 62 bytes.
const LINE: &str = "    let value = compute(index, &table[offset..]); // keep going\n";

fn normal_lines(bytes: usize) -> String {
    let mut d = LINE.repeat(bytes / LINE.len() + 1);
    d.truncate(bytes);
    d
}

/// Minified JavaScript: one line, mostly ASCII, a little Unicode.
fn one_long_line(bytes: usize) -> String {
    let chunk = "function f(a,b){return a.map(x=>x*b).filter(Boolean)}var s=\"é→\";";
    let mut d = chunk.repeat(bytes / chunk.len() + 1);
    while d.len() > bytes {
        d.pop();
    }
    d
}

/// A Rust file of `lines` lines: functions with doc comments, strings,
/// numbers, macros, control flow.
fn rust_file(lines: usize) -> String {
    let mut out = String::new();
    let mut i = 0;
    // Each function is 11 lines.
    while i * 11 < lines {
        out.push_str(&format!(
            "/// Doubles the entry {i} of the table when it is large.\n\
             pub fn handle_{i}(table: &mut Vec<u64>, index: usize) -> Option<u64> {{\n\
             \x20   let value = table.get(index).copied()?; // keep going\n\
             \x20   if value > 42 {{\n\
             \x20       table.push(value * 2);\n\
             \x20   }}\n\
             \x20   let name = \"item {i}\";\n\
             \x20   println!(\"{{name}}: {{value}}\");\n\
             \x20   Some(value)\n\
             }}\n\n"
        ));
        i += 1;
    }
    let keep: Vec<&str> = out.lines().take(lines).collect();
    keep.join("\n")
}

fn ready(code: &str) -> (Editor, Terminal<TestBackend>) {
    ready_in("plaintext", code)
}

/// The process's resident memory, in bytes (Linux; 0 elsewhere).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn ready_in(language: &str, code: &str) -> (Editor, Terminal<TestBackend>) {
    let mut ed = init_only(language, code);
    let mut term = Terminal::new(TestBackend::new(120, 40)).expect("test backend");
    term.draw(|f| view::draw(f, &mut ed, Instant::now()))
        .expect("draw");
    (ed, term)
}

/// An editor that received the room's `init`, nothing drawn or parsed yet.
fn init_only(language: &str, code: &str) -> Editor {
    let mut ed = Editor::new("BenchRoom0123456789abc", "me", None);
    ed.on_server(ServerMessage::Init {
        room_id: "BenchRoom0123456789abc".into(),
        user_id: "me".into(),
        name: "me".into(),
        color: "#4363d8".into(),
        revision: 0,
        code: code.into(),
        language: language.into(),
        users: vec![],
        missed: None,
        read_only: false,
        read_only_id: None,
        doc: None,
        files: None,
        tree_revision: None,
        chat: Vec::new(),
        owner: false,
    });
    ed
}

fn key(code: KeyCode, modifiers: KeyModifiers) -> Event {
    Event::Key(KeyEvent::new(code, modifiers))
}

/// Puts the caret where a keystroke is dearest to lay out.
fn place(ed: &mut Editor, term: &mut Terminal<TestBackend>, at: Place) {
    match at {
        Place::End => ed.handle_event(&key(KeyCode::End, KeyModifiers::CONTROL)),
        Place::Middle => {
            for _ in 0..20 {
                ed.handle_event(&key(KeyCode::PageDown, KeyModifiers::NONE));
            }
            ed.handle_event(&key(KeyCode::End, KeyModifiers::NONE));
            let len = ed.text().len_chars();
            let line = ed.text().char_to_line(ed.caret());
            if ed.text().line(line).len_chars() > 10_000 {
                // One long line: its middle.
                ed.move_to(len / 2, false);
            }
        }
    }
    term.draw(|f| view::draw(f, ed, Instant::now()))
        .expect("draw");
}

#[derive(Clone, Copy)]
enum Place {
    End,
    Middle,
}

fn keystroke(c: &mut Criterion, label: &str, code: &str, at: Place) {
    keystroke_in(c, "plaintext", label, code, at);
}

/// With highlighting, the keys alternate between "x" and Backspace: a run
/// of thousands of x's would be one ever longer token that every reparse
/// lexes again, which no one types.
fn keystroke_in(c: &mut Criterion, language: &str, label: &str, code: &str, at: Place) {
    let (mut ed, mut term) = ready_in(language, code);
    place(&mut ed, &mut term, at);
    let alternate = language != "plaintext";
    let mut seq = 0;
    c.bench_function(&format!("keystroke+frame/{label}"), |b| {
        b.iter(|| {
            let code = if alternate && seq % 2 == 1 {
                KeyCode::Backspace
            } else {
                KeyCode::Char('x')
            };
            ed.handle_event(&key(code, KeyModifiers::NONE));
            // The server's ack, so the next key is sent at once as well.
            seq += 1;
            let revision = ed.revision().unwrap_or(0) + 1;
            ed.take_effects();
            ed.on_server(ServerMessage::Ack {
                revision,
                seq,
                doc: None,
            });
            term.draw(|f| view::draw(f, &mut ed, Instant::now()))
                .expect("draw");
        })
    });
    c.bench_function(&format!("frame/{label}"), |b| {
        b.iter(|| {
            term.draw(|f| view::draw(f, &mut ed, Instant::now()))
                .expect("draw");
        })
    });
}

/// A colleague's keystroke near the start of the document while this user
/// looks at its end: what the screen costs for someone else's typing.
fn remote_keystroke(c: &mut Criterion, label: &str, code: &str) {
    let (mut ed, mut term) = ready(code);
    place(&mut ed, &mut term, Place::End);
    c.bench_function(&format!("remote_keystroke+frame/{label}"), |b| {
        b.iter(|| {
            let revision = ed.revision().unwrap_or(0) + 1;
            let len = ed.text().len_chars();
            let operation = Operation::replace(len, 5, 5, "x").expect("in range");
            ed.on_server(ServerMessage::CodeUpdate(CommittedOp {
                revision,
                operation,
                user_id: "colleague".into(),
                seq: None,
                doc: None,
            }));
            term.draw(|f| view::draw(f, &mut ed, Instant::now()))
                .expect("draw");
        })
    });
}

/// A colleague's keystroke in the middle of the document, and the
/// incremental reparse it causes (what the next frame would do first):
/// inside an identifier of a function's body, and (`_error`) at the start
/// of an item, where it makes a syntax error the parser must recover from.
/// Keystrokes alternate between typing "x" and deleting it.
fn remote_reparse(c: &mut Criterion, label: &str, code: &str) {
    let mut ed = init_only("rust", code);
    let before = resident_bytes();
    let started = Instant::now();
    let tree_nodes = ed.parse_all_syntax();
    let parse_time = started.elapsed();
    let after = resident_bytes();
    let mut term = Terminal::new(TestBackend::new(120, 40)).expect("test backend");
    eprintln!(
        "{label}: {} bytes of text; first full parse {parse_time:?}; parse tree ~{:.1} MiB resident ({tree_nodes} nodes)",
        code.len(),
        after.saturating_sub(before) as f64 / (1024.0 * 1024.0),
    );
    place(&mut ed, &mut term, Place::Middle);
    let text = ed.text().to_string();
    let half = text.len() / 2;
    let in_identifier = half + text[half..].find("table.push").expect("a body") + 3;
    let item_start = half + text[half..].find("\npub fn").expect("an item") + 1;
    for (case, at) in [("", in_identifier), ("_error", item_start)] {
        let at = ed.text().byte_to_char(at);
        let mut typed = false;
        c.bench_function(
            &format!("highlighted/remote_edit+reparse/{label}{case}"),
            |b| {
                b.iter(|| {
                    let revision = ed.revision().unwrap_or(0) + 1;
                    let len = ed.text().len_chars();
                    let operation = if typed {
                        Operation::replace(len, at, at + 1, "")
                    } else {
                        Operation::replace(len, at, at, "x")
                    }
                    .expect("in range");
                    typed = !typed;
                    ed.on_server(ServerMessage::CodeUpdate(CommittedOp {
                        revision,
                        operation,
                        user_id: "colleague".into(),
                        seq: None,
                        doc: None,
                    }));
                    ed.refresh_syntax();
                })
            },
        );
    }
}

/// The file picker's work per keystroke: ranking every path of a
/// 10,000-file project (the server's default `--max-docs`) against a query.
fn picker_rank(c: &mut Criterion) {
    let paths: Vec<String> = (0..10_000)
        .map(|i| format!("crates/part_{}/src/module_{}/file_{i}.rs", i % 37, i % 101))
        .collect();
    for query in ["f", "mod7file", "crates/part_3/src/module_42/file_4242.rs"] {
        c.bench_function(&format!("picker_rank_10000_paths/{}", query.len()), |b| {
            b.iter(|| collab_protocol::fuzzy::rank(query, paths.iter().map(String::as_str)).len())
        });
    }
}

fn benches(c: &mut Criterion) {
    picker_rank(c);
    keystroke(
        c,
        "one_line_229KB_end",
        &one_long_line(229 * 1024),
        Place::End,
    );
    keystroke(
        c,
        "one_line_229KB_middle",
        &one_long_line(229 * 1024),
        Place::Middle,
    );
    keystroke(c, "normal_1MiB_end", &normal_lines(1024 * 1024), Place::End);
    keystroke(
        c,
        "normal_1MiB_middle",
        &normal_lines(1024 * 1024),
        Place::Middle,
    );
    let fifty_k = LINE.repeat(50_000);
    keystroke(c, "lines_50000_end", &fifty_k, Place::End);
    remote_keystroke(
        c,
        "one_line_229KB_at_start_view_end",
        &one_long_line(229 * 1024),
    );
    remote_keystroke(
        c,
        "normal_1MiB_at_start_view_end",
        &normal_lines(1024 * 1024),
    );
    // Issue 16's cases after the others: their setup (a 50 MiB parse
    // tree among others) would otherwise weigh on the plain cases' caches.
    let rust_50k = rust_file(50_000);
    remote_reparse(c, "rust_lines_50000", &rust_50k);
    keystroke_in(
        c,
        "rust",
        "highlighted/rust_lines_50000_end",
        &rust_50k,
        Place::End,
    );
    keystroke_in(
        c,
        "rust",
        "highlighted/rust_lines_50000_middle",
        &rust_50k,
        Place::Middle,
    );
    let mut rust_1mib = rust_file(40_000);
    rust_1mib.truncate(rust_1mib[..1024 * 1024].rfind('\n').unwrap_or(0) + 1);
    keystroke_in(
        c,
        "rust",
        "highlighted/rust_1MiB_middle",
        &rust_1mib,
        Place::Middle,
    );
    keystroke_in(
        c,
        "javascript",
        "highlighted/one_line_229KB_middle",
        &one_long_line(229 * 1024),
        Place::Middle,
    );
}

criterion_group! {
    name = frame;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(frame);
