//! What one keystroke costs the editor on documents that used to make it
//! crawl: the key is handled, acknowledged by the "server", and the whole
//! screen is drawn into a 120x40 `TestBackend` (what a terminal frame costs
//! before the bytes are written). Issue 11's targets: each under 2 ms, and a
//! 229 KB single line (a minified file) within 2x a file of normal lines.
//! Also: drawing a frame with nothing changed, which an idle editor no
//! longer does at all, but a colleague's caret move still does; and a
//! colleague's keystroke at the start of the document while this user looks
//! at its end.

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

fn ready(code: &str) -> (Editor, Terminal<TestBackend>) {
    let mut ed = Editor::new("BenchRoom0123456789abc", "me", None);
    ed.on_server(ServerMessage::Init {
        room_id: "BenchRoom0123456789abc".into(),
        user_id: "me".into(),
        name: "me".into(),
        color: "#4363d8".into(),
        revision: 0,
        code: code.into(),
        language: "javascript".into(),
        users: vec![],
        missed: None,
        read_only: false,
        read_only_id: None,
        doc: None,
        files: None,
        tree_revision: None,
    });
    let mut term = Terminal::new(TestBackend::new(120, 40)).expect("test backend");
    term.draw(|f| view::draw(f, &mut ed, Instant::now()))
        .expect("draw");
    (ed, term)
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
    let (mut ed, mut term) = ready(code);
    place(&mut ed, &mut term, at);
    let mut seq = 0;
    c.bench_function(&format!("keystroke+frame/{label}"), |b| {
        b.iter(|| {
            ed.handle_event(&key(KeyCode::Char('x'), KeyModifiers::NONE));
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

fn benches(c: &mut Criterion) {
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
}

criterion_group! {
    name = frame;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(frame);
