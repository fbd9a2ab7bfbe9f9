//! Property tests of the operation algebra in `collab_protocol::operation`.
//!
//! Documents and inserted text are drawn from a deliberately awkward alphabet
//! (ASCII, tabs, `\n` and `\r\n`, emoji, CJK, a combining accent, a zero-width
//! joiner) so that any confusion between bytes and chars shows up. Operations
//! are random valid mixes of retain/insert/delete covering exactly the base
//! document. The tests prove, for all such inputs:
//!
//! * TP1: `apply(apply(d, a), b') == apply(apply(d, b), a')` for
//!   `(a', b') = transform(a, b)`, with the lengths of `a'` and `b'` fitting,
//!   and the left argument's insert coming first on a tie;
//! * `apply(d, a.compose(b)) == apply(apply(d, a), b)`;
//! * `apply(apply(d, a), a.invert(d)) == d`;
//! * the JSON wire form round-trips to an equal operation (alone and inside a
//!   `code_update` message);
//! * `base_len`/`target_len` agree with what `apply` does;
//! * `transform_index` stays within `0..=target_len`, never moves backwards,
//!   leaves an index in the retained prefix alone and keeps an index in front
//!   of the same retained char;
//! * every length mismatch (apply, invert, compose, transform) is an error, and
//!   a failed apply leaves the rope untouched.

use collab_protocol::{char_len, ClientMessage, Component, OpError, Operation};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use ropey::Rope;

/// Building blocks of documents and inserts; some are more than one char
/// (`"e\u{301}"`, `"\r\n"`) and many are more than one byte.
const PIECES: &[&str] = &[
    "a", "b", "x", "Z", " ", "\t", "\n", "\r\n", "😀", "🎉", "漢", "字", "e\u{301}", "ö",
    "\u{200d}",
];

/// Text of `min..max` pieces of [`PIECES`].
fn text(min: usize, max: usize) -> impl Strategy<Value = String> {
    vec(select(PIECES), min..max).prop_map(|pieces| pieces.concat())
}

/// A random document, possibly empty.
fn document() -> impl Strategy<Value = String> {
    text(0, 40)
}

/// One step of an operation under construction; counts are clamped to what
/// is left of the base document when the operation is built.
#[derive(Clone, Debug)]
enum Step {
    Retain(usize),
    Insert(String),
    Delete(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (1..12usize).prop_map(Step::Retain),
        2 => text(1, 5).prop_map(Step::Insert),
        2 => (1..8usize).prop_map(Step::Delete),
    ]
}

/// A random valid operation on a document of `base_len` chars. Whatever the
/// steps leave of the document is retained or deleted as a whole.
fn operation(base_len: usize) -> impl Strategy<Value = Operation> {
    (vec(step(), 0..10), any::<bool>()).prop_map(move |(steps, delete_rest)| {
        let mut op = Operation::new();
        let mut left = base_len;
        for s in steps {
            match s {
                Step::Retain(n) => {
                    let n = n.min(left);
                    op.retain(n);
                    left -= n;
                }
                Step::Insert(t) => {
                    op.insert(&t);
                }
                Step::Delete(n) => {
                    let n = n.min(left);
                    op.delete(n);
                    left -= n;
                }
            }
        }
        if delete_rest {
            op.delete(left);
        } else {
            op.retain(left);
        }
        op
    })
}

/// A document and one operation on it.
fn doc_and_op() -> impl Strategy<Value = (String, Operation)> {
    document().prop_flat_map(|d| {
        let n = char_len(&d);
        (Just(d), operation(n))
    })
}

/// A document and two concurrent operations on it.
fn doc_and_concurrent_ops() -> impl Strategy<Value = (String, Operation, Operation)> {
    document().prop_flat_map(|d| {
        let n = char_len(&d);
        (Just(d), operation(n), operation(n))
    })
}

/// A document, an operation on it and an operation on the result.
fn doc_and_sequential_ops() -> impl Strategy<Value = (String, Operation, Operation)> {
    doc_and_op().prop_flat_map(|(d, a)| {
        let m = a.target_len();
        (Just(d), Just(a), operation(m))
    })
}

/// `op` applied to `doc`, panicking (and so failing the case) on error.
fn apply(op: &Operation, doc: &str) -> String {
    op.apply_str(doc)
        .unwrap_or_else(|e| panic!("{op:?} does not apply to {doc:?}: {e}"))
}

/// For each char of the base document, whether `op` retains it.
fn retained_chars(op: &Operation) -> Vec<bool> {
    let mut kept = Vec::with_capacity(op.base_len());
    for c in op.components() {
        match c {
            Component::Retain(n) => kept.extend(std::iter::repeat_n(true, *n)),
            Component::Delete(n) => kept.extend(std::iter::repeat_n(false, *n)),
            Component::Insert(_) => {}
        }
    }
    kept
}

proptest! {
    #[test]
    fn transform_satisfies_tp1((d, a, b) in doc_and_concurrent_ops()) {
        let (a2, b2) = Operation::transform(&a, &b).unwrap();
        prop_assert_eq!(a2.base_len(), b.target_len());
        prop_assert_eq!(b2.base_len(), a.target_len());
        prop_assert_eq!(a2.target_len(), b2.target_len());
        let via_a = apply(&b2, &apply(&a, &d));
        let via_b = apply(&a2, &apply(&b, &d));
        prop_assert_eq!(&via_a, &via_b);
        prop_assert_eq!(char_len(&via_a), a2.target_len());
    }

    #[test]
    fn transform_puts_left_insert_first_on_a_tie(
        (d, pos) in document().prop_flat_map(|d| {
            let n = char_len(&d);
            (Just(d), 0..=n)
        }),
        x in text(1, 4),
        y in text(1, 4),
    ) {
        let n = char_len(&d);
        let a = Operation::replace(n, pos, pos, &x).unwrap();
        let b = Operation::replace(n, pos, pos, &y).unwrap();
        let (a2, b2) = Operation::transform(&a, &b).unwrap();
        let mut expected = Rope::from_str(&d);
        expected.insert(pos, &format!("{x}{y}"));
        let expected = expected.to_string();
        prop_assert_eq!(apply(&b2, &apply(&a, &d)), expected.clone());
        prop_assert_eq!(apply(&a2, &apply(&b, &d)), expected);
    }

    #[test]
    fn compose_agrees_with_sequential_apply((d, a, b) in doc_and_sequential_ops()) {
        let ab = a.compose(&b).unwrap();
        prop_assert_eq!(ab.base_len(), a.base_len());
        prop_assert_eq!(ab.target_len(), b.target_len());
        prop_assert_eq!(apply(&ab, &d), apply(&b, &apply(&a, &d)));
    }

    #[test]
    fn invert_undoes((d, a) in doc_and_op()) {
        let before = Rope::from_str(&d);
        let inverse = a.invert(&before).unwrap();
        prop_assert_eq!(inverse.base_len(), a.target_len());
        prop_assert_eq!(inverse.target_len(), a.base_len());
        let mut doc = before.clone();
        a.apply(&mut doc).unwrap();
        inverse.apply(&mut doc).unwrap();
        prop_assert_eq!(doc.to_string(), d);
    }

    #[test]
    fn json_round_trips((_d, a) in doc_and_op(), revision in 0..1000u64, seq in 1..1000u64) {
        let json = serde_json::to_string(&a).unwrap();
        let back: Operation = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &a);
        let msg = ClientMessage::CodeUpdate { revision, seq, operation: a, doc: None };
        let back: ClientMessage = serde_json::from_str(&msg.to_json()).unwrap();
        prop_assert_eq!(back, msg);
    }

    #[test]
    fn lengths_agree_with_apply((d, a) in doc_and_op()) {
        prop_assert_eq!(a.base_len(), char_len(&d));
        let mut doc = Rope::from_str(&d);
        a.apply(&mut doc).unwrap();
        prop_assert_eq!(doc.len_chars(), a.target_len());
        if a.is_noop() {
            prop_assert_eq!(doc.to_string(), d);
        }
    }

    #[test]
    fn transform_index_stays_in_range_and_tracks_chars((d, a) in doc_and_op()) {
        let after: Vec<char> = apply(&a, &d).chars().collect();
        let before: Vec<char> = d.chars().collect();
        let kept = retained_chars(&a);
        let prefix = match a.components().first() {
            Some(Component::Retain(n)) => *n,
            _ => 0,
        };
        let mut previous = 0;
        for index in 0..=before.len() {
            let moved = a.transform_index(index);
            prop_assert!(moved <= a.target_len(), "{index} -> {moved} past the end");
            prop_assert!(moved >= previous, "{index} -> {moved} moved before {previous}");
            previous = moved;
            if index < prefix {
                prop_assert_eq!(moved, index, "index in the retained prefix moved");
            }
            if index < before.len() && kept[index] {
                prop_assert_eq!(after[moved], before[index], "index {} lost its char", index);
            }
        }
        // Past the end clamps to the end.
        prop_assert_eq!(a.transform_index(before.len() + 5), a.target_len());
    }

    #[test]
    fn length_mismatches_are_errors_and_leave_the_rope_alone(
        (d, a) in document().prop_flat_map(|d| {
            let n = char_len(&d);
            // Any base length but the document's.
            let wrong = (0..n + 6).prop_filter("a different length", move |m| *m != n);
            (Just(d), wrong.prop_flat_map(operation))
        }),
    ) {
        let n = char_len(&d);
        let mismatch = OpError::LengthMismatch { expected: a.base_len(), actual: n };
        let mut doc = Rope::from_str(&d);
        prop_assert_eq!(a.apply(&mut doc), Err(mismatch.clone()));
        prop_assert_eq!(doc.to_string(), d.clone());
        prop_assert_eq!(a.invert(&doc), Err(mismatch));
        let other = Operation::identity(n);
        prop_assert!(Operation::transform(&a, &other).is_err());
        prop_assert!(Operation::transform(&other, &a).is_err());
        prop_assert!(other.compose(&a).is_err());
    }
}
