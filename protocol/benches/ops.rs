//! Criterion micro-benchmarks of the operation algebra (apply, transform,
//! compose) on a small document and on a 1 MiB one: the per-keystroke costs
//! every server commit and client replica pays; and reading the messages a
//! client receives once per keystroke of anyone in its room.

use collab_protocol::{ClientMessage, Operation, ServerMessage};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ropey::Rope;

fn doc(bytes: usize) -> String {
    let line = "    let value = compute(index, &table[offset..]); // keep going\n";
    let mut d = line.repeat(bytes / line.len() + 1);
    d.truncate(bytes);
    d
}

fn bench_size(c: &mut Criterion, label: &str, bytes: usize) {
    let text = doc(bytes);
    let rope = Rope::from_str(&text);
    let len = rope.len_chars();
    let mid = len / 2;
    let insert = Operation::replace(len, mid, mid, "x").expect("in range");
    let other = Operation::replace(len, mid / 2, mid / 2 + 1, "").expect("in range");
    let after = Operation::replace(len + 1, mid + 1, mid + 1, "y").expect("in range");

    c.bench_function(&format!("apply/{label}"), |b| {
        b.iter_batched(
            || rope.clone(),
            |mut r| {
                insert.apply(&mut r).expect("fits");
                r
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function(&format!("transform/{label}"), |b| {
        b.iter(|| Operation::transform(&insert, &other).expect("same base"))
    });
    c.bench_function(&format!("compose/{label}"), |b| {
        b.iter(|| insert.compose(&after).expect("consecutive"))
    });
    c.bench_function(&format!("serialize/{label}"), |b| {
        b.iter(|| serde_json::to_string(&insert).expect("serializes"))
    });
}

fn ops(c: &mut Criterion) {
    bench_size(c, "small", 1024);
    bench_size(c, "1MiB", 1 << 20);
}

/// serde's derive against the one-pass `from_json`, on the messages of one
/// keystroke.
fn messages(c: &mut Criterion) {
    let update = r#"{"type":"code_update","revision":4711,"operation":[512,"x",90],"user_id":"u-3f9a1c2b7d"}"#;
    let ack = r#"{"type":"ack","revision":4711,"seq":88}"#;
    let edit = r#"{"type":"code_update","revision":4710,"seq":88,"operation":[512,"x",90]}"#;
    c.bench_function("parse/code_update/derive", |b| {
        b.iter(|| serde_json::from_str::<ServerMessage>(update).expect("valid"))
    });
    c.bench_function("parse/code_update/one_pass", |b| {
        b.iter(|| ServerMessage::from_json(update).expect("valid"))
    });
    c.bench_function("parse/ack/derive", |b| {
        b.iter(|| serde_json::from_str::<ServerMessage>(ack).expect("valid"))
    });
    c.bench_function("parse/ack/one_pass", |b| {
        b.iter(|| ServerMessage::from_json(ack).expect("valid"))
    });
    c.bench_function("parse/client_edit/derive", |b| {
        b.iter(|| serde_json::from_str::<ClientMessage>(edit).expect("valid"))
    });
    c.bench_function("parse/client_edit/one_pass", |b| {
        b.iter(|| ClientMessage::from_json(edit).expect("valid"))
    });
}

criterion_group!(benches, ops, messages);
criterion_main!(benches);
