//! Fuzzing the message decoder and operation validation inside `cargo test`:
//! arbitrary bytes, arbitrary JSON and arbitrary component lists never panic,
//! and whatever decodes is a well-formed operation that either fits a
//! document exactly or is refused without touching it.

use collab_protocol::{ClientMessage, Component, Operation};
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

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
