//! Reading the frequent messages in one pass.
//!
//! serde's derive for an internally tagged enum (`"type"` inside the object)
//! cannot know the variant before it has seen the tag, so it first copies the
//! whole object into a generic tree and then reads the variant from that
//! copy. For a one-character `code_update` that copy is most of the parse, and
//! a client parses one message per keystroke of every other user.
//!
//! Every sender of this protocol writes `type` first (serde's derive does),
//! so [`ServerMessage::from_json`] and [`ClientMessage::from_json`] read the
//! tag and then the fields of `code_update`, `ack` and `cursor_move` straight
//! from the text. Fields a variant does not have are parsed in full and
//! dropped, as the derive's copy parses them, so a value it refuses (a number
//! out of range, a lone surrogate, nesting past the depth limit) is refused
//! here too. Anything else (`type` later in the object, another variant, a
//! field twice, any error) is parsed again by the derived implementation, so
//! what is accepted, and every error message, stay exactly the derive's; a
//! proptest holds the two to that.

use std::marker::PhantomData;

use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::messages::{ClientMessage, CommittedOp, ServerMessage};
use crate::operation::Operation;

impl ServerMessage {
    /// Parses one message's JSON text; the same result as
    /// `serde_json::from_str`, faster for the frequent messages.
    pub fn from_json(text: &str) -> serde_json::Result<Self> {
        decode(text)
    }
}

impl ClientMessage {
    /// Parses one message's JSON text; the same result as
    /// `serde_json::from_str`, faster for the frequent messages.
    pub fn from_json(text: &str) -> serde_json::Result<Self> {
        decode(text)
    }
}

fn decode<T: OnePass + DeserializeOwned>(text: &str) -> serde_json::Result<T> {
    match serde_json::from_str::<Fast<T>>(text) {
        Ok(Fast(Some(msg))) => Ok(msg),
        _ => serde_json::from_str(text),
    }
}

/// A message type with variants that can be read in one pass.
trait OnePass: Sized {
    /// The fields of the variant `tag` names, when it is read in one pass.
    fn known(tag: Tag) -> Option<&'static [Field]>;

    /// The message from its fields; `None` (a required field absent or
    /// `null`) leaves it to the derive, which refuses it.
    fn build(tag: Tag, f: Fields) -> Option<Self>;
}

/// A message read in one pass, or `None` when it must take the derived path.
struct Fast<T>(Option<T>);

impl<'de, T: OnePass> Deserialize<'de> for Fast<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: OnePass> Visitor<'de> for V<T> {
            type Value = Fast<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a message object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let msg = match first_tag(&mut map)?.and_then(|tag| Some((tag, T::known(tag)?))) {
                    Some((tag, known)) => fields(&mut map, known)?.and_then(|f| T::build(tag, f)),
                    None => None,
                };
                if msg.is_none() {
                    // The caller parses it again; serde_json wants it read to the end.
                    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                }
                Ok(Fast(msg))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// The variants read in one pass.
#[derive(Clone, Copy, Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Tag {
    CodeUpdate,
    Ack,
    CursorMove,
    #[serde(other)]
    Other,
}

/// The field names of those variants, and any other.
#[derive(Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    Type,
    Revision,
    Seq,
    Operation,
    UserId,
    Cursor,
    Anchor,
    Doc,
    #[serde(other)]
    Other,
}

/// A field's value: absent (`None`), `null` (`Some(None)`), or a value.
type Slot<T> = Option<Option<T>>;

/// The fields of one message after its tag.
#[derive(Default)]
struct Fields {
    revision: Slot<u64>,
    seq: Slot<u64>,
    operation: Option<Operation>,
    user_id: Slot<String>,
    cursor: Slot<u64>,
    anchor: Slot<u64>,
    doc: Slot<String>,
}

/// A required field's value; `None` when it is absent or `null`.
fn required<T>(slot: Slot<T>) -> Option<T> {
    slot.flatten()
}

/// Reads the rest of the object for a variant whose fields are `known`;
/// others are checked as any JSON value and dropped, as the derive does.
/// `None` (the rest possibly unread) when the derive must decide: a field
/// twice, or a second `type`.
fn fields<'de, A: MapAccess<'de>>(
    map: &mut A,
    known: &[Field],
) -> Result<Option<Fields>, A::Error> {
    fn put<T>(slot: &mut Option<T>, value: T) -> bool {
        slot.replace(value).is_none()
    }
    let mut f = Fields::default();
    while let Some(key) = map.next_key::<Field>()? {
        let first = match key {
            Field::Type => return Ok(None),
            _ if !known.contains(&key) => {
                map.next_value::<Checked>()?;
                true
            }
            Field::Revision => put(&mut f.revision, map.next_value()?),
            Field::Seq => put(&mut f.seq, map.next_value()?),
            Field::Operation => put(&mut f.operation, map.next_value()?),
            Field::UserId => put(&mut f.user_id, map.next_value()?),
            Field::Cursor => put(&mut f.cursor, map.next_value()?),
            Field::Anchor => put(&mut f.anchor, map.next_value()?),
            Field::Doc => put(&mut f.doc, map.next_value()?),
            Field::Other => unreachable!("never known"),
        };
        if !first {
            return Ok(None);
        }
    }
    Ok(Some(f))
}

/// Any JSON value, parsed in full and dropped: what the derive's copy does
/// with a field the variant does not have.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Checked;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_unit<E>(self) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
                while seq.next_element::<Checked>()?.is_some() {}
                Ok(Checked)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
                while map.next_entry::<Checked, Checked>()?.is_some() {}
                Ok(Checked)
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads the first key; the tag when that key is `type`, else `None`.
fn first_tag<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<Tag>, A::Error> {
    match map.next_key::<Field>()? {
        Some(Field::Type) => map.next_value::<Tag>().map(Some),
        Some(_) => {
            map.next_value::<IgnoredAny>()?;
            Ok(None)
        }
        None => Ok(None),
    }
}

impl OnePass for ServerMessage {
    fn known(tag: Tag) -> Option<&'static [Field]> {
        use Field::*;
        match tag {
            Tag::CodeUpdate => Some(&[Revision, Operation, UserId, Seq, Doc]),
            Tag::Ack => Some(&[Revision, Seq, Doc]),
            Tag::CursorMove => Some(&[UserId, Revision, Cursor, Anchor, Doc]),
            Tag::Other => None,
        }
    }

    fn build(tag: Tag, f: Fields) -> Option<Self> {
        Some(match tag {
            Tag::CodeUpdate => ServerMessage::CodeUpdate(CommittedOp {
                revision: required(f.revision)?,
                operation: f.operation?,
                user_id: required(f.user_id)?,
                seq: f.seq.flatten(),
                doc: f.doc.flatten(),
            }),
            Tag::Ack => ServerMessage::Ack {
                revision: required(f.revision)?,
                seq: required(f.seq)?,
                doc: f.doc.flatten(),
            },
            Tag::CursorMove => ServerMessage::CursorMove {
                user_id: required(f.user_id)?,
                revision: required(f.revision)?,
                cursor: required(f.cursor)?,
                anchor: f.anchor.flatten(),
                doc: f.doc.flatten(),
            },
            Tag::Other => return None,
        })
    }
}

impl OnePass for ClientMessage {
    fn known(tag: Tag) -> Option<&'static [Field]> {
        use Field::*;
        match tag {
            Tag::CodeUpdate => Some(&[Revision, Seq, Operation, Doc]),
            Tag::CursorMove => Some(&[Revision, Cursor, Anchor, Doc]),
            Tag::Ack | Tag::Other => None,
        }
    }

    fn build(tag: Tag, f: Fields) -> Option<Self> {
        Some(match tag {
            Tag::CodeUpdate => ClientMessage::CodeUpdate {
                revision: required(f.revision)?,
                seq: required(f.seq)?,
                operation: f.operation?,
                doc: f.doc.flatten(),
            },
            Tag::CursorMove => ClientMessage::CursorMove {
                revision: required(f.revision)?,
                cursor: required(f.cursor)?,
                anchor: f.anchor.flatten(),
                doc: f.doc.flatten(),
            },
            Tag::Ack | Tag::Other => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both_server(text: &str) -> (String, String) {
        let fast = ServerMessage::from_json(text);
        let derived = serde_json::from_str::<ServerMessage>(text);
        (format!("{fast:?}"), format!("{derived:?}"))
    }

    #[test]
    fn frequent_messages_are_read_in_one_pass() {
        let text = r#"{"type":"code_update","revision":2,"operation":[1,"x"],"user_id":"u1"}"#;
        assert!(matches!(
            serde_json::from_str::<Fast<ServerMessage>>(text),
            Ok(Fast(Some(ServerMessage::CodeUpdate(_))))
        ));
        let text = r#"{"type":"cursor_move","revision":0,"cursor":4}"#;
        assert!(matches!(
            serde_json::from_str::<Fast<ClientMessage>>(text),
            Ok(Fast(Some(ClientMessage::CursorMove { anchor: None, .. })))
        ));
    }

    #[test]
    fn other_shapes_take_the_derived_path_with_its_result() {
        for text in [
            // The tag after the fields.
            r#"{"revision":2,"seq":7,"type":"ack"}"#,
            // A second tag, even a null one, is the derive's duplicate.
            r#"{"type":"ack","revision":2,"type":null,"seq":7}"#,
            // Rare variants, unknown tags, missing fields, not an object.
            r#"{"type":"user_left","user_id":"u1"}"#,
            r#"{"type":"dance"}"#,
            r#"{"type":"ack","revision":2}"#,
            r#"[1,2]"#,
        ] {
            assert!(matches!(
                serde_json::from_str::<Fast<ServerMessage>>(text),
                Ok(Fast(None)) | Err(_)
            ));
            let (fast, derived) = both_server(text);
            assert_eq!(fast, derived, "{text}");
        }
    }

    #[test]
    fn values_the_derive_refuses_are_refused_in_fields_it_ignores() {
        let deep = format!(
            r#"{{"type":"ack","revision":1,"seq":2,"x":{}1{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        for text in [
            r#"{"type":"ack","revision":1,"seq":2,"x":1e400}"#,
            r#"{"type":"ack","revision":1,"seq":2,"x":"\ud800"}"#,
            r#"{"type":"cursor_move","user_id":"u","revision":1,"cursor":2,"x":{"y":-1e400}}"#,
            &deep,
        ] {
            let (fast, derived) = both_server(text);
            assert!(fast.starts_with("Err"), "{text}: {fast}");
            assert_eq!(fast, derived, "{text}");
        }
        let text =
            r#"{"type":"code_update","revision":1,"seq":2,"operation":[1,"x"],"x":"\udc00\ud800"}"#;
        assert!(ClientMessage::from_json(text).is_err());
    }
}
