//! Fuzzing the message decoder and operation validation inside `cargo test`:
//! arbitrary bytes, arbitrary JSON and arbitrary component lists never panic,
//! and whatever decodes is a well-formed operation that either fits a
//! document exactly or is refused without touching it; and the one-pass
//! decoders (`from_json`) agree with serde's derive on every input, accepted
//! or refused.

use collab_protocol::{ClientMessage, Component, Operation, ServerMessage};
use proptest::prelude::*;
use ropey::Rope;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| serde_json::json!(f)),
        ".{0,12}".prop_map(serde_json::Value::String),
        prop_oneof![
            Just("code_update"),
            Just("cursor_move"),
            Just("ping"),
            Just("type"),
            Just("operation")
        ]
        .prop_map(|s| serde_json::Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("type".to_owned()),
                        Just("revision".to_owned()),
                        Just("seq".to_owned()),
                        Just("operation".to_owned()),
                        Just("cursor".to_owned()),
                        ".{0,6}".prop_map(|s| s)
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A JSON object's text with keys in the given order (duplicates kept,
/// which `serde_json::Value` cannot hold). Mostly near-valid messages: a
/// tag first, as real senders write it, then the fields some variant of
/// that name needs, most with a fitting value, in any order, with some
/// extra keys (a second `type` among them) and some tags later or missing.
fn object_text() -> impl Strategy<Value = String> {
    let tag = prop_oneof![
        Just("code_update"),
        Just("ack"),
        Just("cursor_move"),
        Just("ping"),
        Just("pong"),
        Just("user_left"),
        Just("dance"),
    ];
    let fitting = |key: &str| match key {
        "operation" => r#"[1,"x"]"#,
        "user_id" => r#""u1""#,
        "revision" => "3",
        "seq" => "7",
        "cursor" => "2",
        _ => "1",
    };
    // Raw JSON text: some of these (a number out of f64's range, lone
    // surrogates, nesting past serde_json's limit of 128) no
    // `serde_json::Value` can hold, and the derive refuses them even in a
    // field it ignores.
    let odd_value = prop_oneof![
        Just("null".to_owned()),
        Just("-1".to_owned()),
        Just("1.0".to_owned()),
        Just("-0".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("1e400".to_owned()),
        Just("-1e400".to_owned()),
        Just(r#""\ud800""#.to_owned()),
        Just(r#""\udc00\ud800""#.to_owned()),
        Just(r#""\u0074ype""#.to_owned()),
        Just(format!("{}1{}", "[".repeat(130), "]".repeat(130))),
        Just(format!("{}1{}", "[".repeat(100), "]".repeat(100))),
        Just(r#"{"a":{"b":1e400}}"#.to_owned()),
        Just(r#"["x"]"#.to_owned()),
        Just(r#"[0,-1,"é"]"#.to_owned()),
        json_value().prop_map(|v| v.to_string()),
    ];
    let field = (0.0..1.0f64, odd_value.clone());
    // Keys as JSON text; `"\u0074ype"` is `type` escaped.
    let extra_key = prop_oneof![
        Just(r#""type""#.to_owned()),
        Just(r#""\u0074ype""#.to_owned()),
        Just(r#""other""#.to_owned()),
        Just(r#""revision""#.to_owned()),
        ".{0,4}".prop_map(|k| serde_json::json!(k).to_string()),
    ];
    (
        tag,
        prop::collection::vec(field, 7),
        prop::collection::vec((extra_key, odd_value), 0..3),
        0.0..1.0f64,
        any::<u64>(),
    )
        .prop_map(move |(tag, fields, extra, tag_at, shuffle)| {
            let keys = [
                "revision",
                "seq",
                "operation",
                "user_id",
                "cursor",
                "anchor",
                "other",
            ];
            let mut kv: Vec<(String, String)> = Vec::new();
            for (key, (p, odd)) in keys.iter().zip(fields) {
                // Most fields present with a fitting value, a few odd, a few missing.
                if p < 0.8 {
                    kv.push((format!("{key:?}"), fitting(key).to_owned()));
                } else if p < 0.9 {
                    kv.push((format!("{key:?}"), odd));
                }
            }
            kv.extend(extra);
            // A cheap deterministic shuffle of the fields.
            let mut x = shuffle | 1;
            for i in (1..kv.len()).rev() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                kv.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let tag = (r#""type""#.to_owned(), format!("{tag:?}"));
            if tag_at < 0.85 {
                kv.insert(0, tag);
            } else if tag_at < 0.95 {
                let at = kv.len();
                kv.insert(at, tag);
            }
            let fields: Vec<String> = kv.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            format!("{{{}}}", fields.join(","))
        })
}

/// Both decoders gave the same message, or the same error.
fn same<T: PartialEq + std::fmt::Debug>(
    fast: serde_json::Result<T>,
    derived: serde_json::Result<T>,
) -> Result<(), TestCaseError> {
    match (fast, derived) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
        (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
        (a, b) => prop_assert!(false, "one-pass {a:?} but derived {b:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn one_pass_decoders_agree_with_the_derive(text in object_text()) {
        same(ClientMessage::from_json(&text), serde_json::from_str(&text))?;
        same(ServerMessage::from_json(&text), serde_json::from_str(&text))?;
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = serde_json::from_slice::<ClientMessage>(&bytes);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = serde_json::from_str::<ClientMessage>(text);
        }
    }

    #[test]
    fn arbitrary_json_decodes_only_to_valid_messages(value in json_value()) {
        let text = value.to_string();
        if let Ok(ClientMessage::CodeUpdate { operation, .. }) = serde_json::from_str::<ClientMessage>(&text) {
            // Whatever decodes is canonical and re-encodes to itself.
            let again: Operation = serde_json::from_str(&serde_json::to_string(&operation).unwrap()).unwrap();
            prop_assert_eq!(again, operation);
        }
    }

    #[test]
    fn arbitrary_components_validate_or_refuse(
        parts in prop::collection::vec((0u8..3, 0usize..40, ".{0,5}"), 0..12),
        doc in ".{0,40}",
    ) {
        let components = parts.into_iter().map(|(kind, n, s)| match kind {
            0 => Component::Retain(n),
            1 => Component::Delete(n),
            _ => Component::Insert(s),
        });
        let Ok(op) = Operation::from_components(components) else { return Ok(()) };
        let mut rope = Rope::from_str(&doc);
        let before = rope.clone();
        match op.apply(&mut rope) {
            Ok(()) => prop_assert_eq!(rope.len_chars(), op.target_len()),
            Err(_) => prop_assert_eq!(rope, before, "a refused operation leaves the document alone"),
        }
        let _ = op.transform_index(doc.chars().count() + 5);
    }
}
