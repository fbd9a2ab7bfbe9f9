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
//! from the text. Anything else (`type` later in the object, another variant,
//! any error) is parsed again by the derived implementation, so what is
//! accepted, and every error message, stay exactly the derive's.

use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, Visitor};
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
    /// The variant `tag` names, from the rest of the object; `None` when the
    /// message must take the derived path.
    fn read<'de, A: MapAccess<'de>>(tag: Tag, map: &mut A) -> Result<Option<Self>, A::Error>;
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
                let msg = match first_tag(&mut map)? {
                    Some(tag) => T::read(tag, &mut map)?,
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

/// The first key of the object.
#[derive(Deserialize)]
#[serde(field_identifier)]
enum Key {
    #[serde(rename = "type")]
    Type,
    #[serde(other)]
    Other,
}

/// The variants read in one pass.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Tag {
    CodeUpdate,
    Ack,
    CursorMove,
    #[serde(other)]
    Other,
}

/// Whether a second `type` key was present, whatever its value (even
/// `null`): the derive refuses it as a duplicate, so such a message takes
/// the derived path.
#[derive(Default)]
struct SecondTag(bool);

impl<'de> Deserialize<'de> for SecondTag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d).map(|_| SecondTag(true))
    }
}

#[derive(Deserialize)]
struct ServerCodeUpdate {
    revision: u64,
    operation: Operation,
    user_id: String,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(rename = "type", default)]
    second_tag: SecondTag,
}

#[derive(Deserialize)]
struct ServerAck {
    revision: u64,
    seq: u64,
    #[serde(rename = "type", default)]
    second_tag: SecondTag,
}

#[derive(Deserialize)]
struct ServerCursorMove {
    user_id: String,
    revision: u64,
    cursor: u64,
    anchor: Option<u64>,
    #[serde(rename = "type", default)]
    second_tag: SecondTag,
}

#[derive(Deserialize)]
struct ClientCodeUpdate {
    revision: u64,
    seq: u64,
    operation: Operation,
    #[serde(rename = "type", default)]
    second_tag: SecondTag,
}

#[derive(Deserialize)]
struct ClientCursorMove {
    revision: u64,
    cursor: u64,
    #[serde(default)]
    anchor: Option<u64>,
    #[serde(rename = "type", default)]
    second_tag: SecondTag,
}

/// Reads the first key; the tag when that key is `type`, else `None` (with
/// the key's value skipped).
fn first_tag<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<Tag>, A::Error> {
    match map.next_key::<Key>()? {
        Some(Key::Type) => map.next_value::<Tag>().map(Some),
        Some(Key::Other) => {
            map.next_value::<IgnoredAny>()?;
            Ok(None)
        }
        None => Ok(None),
    }
}

/// Reads the rest of the object as `T`.
fn rest<'de, T: Deserialize<'de>, A: MapAccess<'de>>(map: &mut A) -> Result<T, A::Error> {
    T::deserialize(MapAccessDeserializer::new(map))
}

impl OnePass for ServerMessage {
    fn read<'de, A: MapAccess<'de>>(tag: Tag, map: &mut A) -> Result<Option<Self>, A::Error> {
        Ok(match tag {
            Tag::CodeUpdate => {
                let m: ServerCodeUpdate = rest(map)?;
                (!m.second_tag.0).then_some(ServerMessage::CodeUpdate(CommittedOp {
                    revision: m.revision,
                    operation: m.operation,
                    user_id: m.user_id,
                    seq: m.seq,
                }))
            }
            Tag::Ack => {
                let m: ServerAck = rest(map)?;
                (!m.second_tag.0).then_some(ServerMessage::Ack {
                    revision: m.revision,
                    seq: m.seq,
                })
            }
            Tag::CursorMove => {
                let m: ServerCursorMove = rest(map)?;
                (!m.second_tag.0).then_some(ServerMessage::CursorMove {
                    user_id: m.user_id,
                    revision: m.revision,
                    cursor: m.cursor,
                    anchor: m.anchor,
                })
            }
            Tag::Other => None,
        })
    }
}

impl OnePass for ClientMessage {
    fn read<'de, A: MapAccess<'de>>(tag: Tag, map: &mut A) -> Result<Option<Self>, A::Error> {
        Ok(match tag {
            Tag::CodeUpdate => {
                let m: ClientCodeUpdate = rest(map)?;
                (!m.second_tag.0).then_some(ClientMessage::CodeUpdate {
                    revision: m.revision,
                    seq: m.seq,
                    operation: m.operation,
                })
            }
            Tag::CursorMove => {
                let m: ClientCursorMove = rest(map)?;
                (!m.second_tag.0).then_some(ClientMessage::CursorMove {
                    revision: m.revision,
                    cursor: m.cursor,
                    anchor: m.anchor,
                })
            }
            Tag::Ack | Tag::Other => None,
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
}
