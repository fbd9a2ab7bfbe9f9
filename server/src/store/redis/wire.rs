//! What travels on a room's Redis channel, in its compact published form,
//! and the stored form of marks (`"REV:ID"`), turned into and out of the
//! store's backend-neutral types. The commit script writes `ops` events
//! itself, byte for byte as [`WireEvent::Ops`] reads them.

use collab_protocol::{ChatMessage, UserInfo};
use serde::{Deserialize, Serialize};

use crate::store::{CommittedEntry, Mark, StoreError, StoreEvent, TreeEntry, MAIN_DOC};

/// An event on a room's channel.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub(super) enum WireEvent {
    /// Committed operations, in revision order.
    Ops {
        /// Publishing instance (its own subscriber skips the event unread:
        /// the instance applied these entries when its commit returned).
        #[serde(default)]
        i: String,
        /// The document; absent: the main one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        d: Option<String>,
        /// The document's size in bytes after them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        n: Option<u64>,
        /// The mark (`"REV:ID"`) the entries were committed on, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        p: Option<String>,
        /// The entries.
        ops: Vec<CommittedEntry>,
    },
    /// A user's caret at revision `r`.
    Cursor {
        /// Publishing instance.
        i: String,
        /// The user.
        u: String,
        /// The document.
        #[serde(default = "main_doc")]
        d: String,
        /// Revision of the offsets.
        r: u64,
        /// Caret.
        c: u64,
        /// Selection anchor.
        a: Option<u64>,
    },
    /// A tree change (the tree script writes it).
    Tree {
        /// Publishing instance (its own subscriber skips the event unread).
        i: String,
        /// The change.
        e: TreeEntry,
    },
    /// A user joined on instance `i`.
    Join {
        /// Publishing instance.
        i: String,
        /// Who.
        user: UserInfo,
    },
    /// A user left (or was reaped).
    Leave {
        /// Publishing instance.
        i: String,
        /// Who.
        u: String,
    },
    /// A chat message, numbered (the chat script writes it). Its own
    /// instance reads it too: every instance delivers the chat in the
    /// order of the numbers.
    Chat {
        /// Publishing instance.
        i: String,
        /// The message.
        m: ChatMessage,
    },
    /// The owner ended the room (the end script writes it; every instance,
    /// the publishing one too, closes the room's connections).
    End {
        /// Publishing instance.
        i: String,
    },
    /// The owner switched the room's read-only mode to `r` (the mode
    /// script writes it; every instance acts on it).
    Mode {
        /// Publishing instance.
        i: String,
        /// Read-only for everyone but the owner.
        r: bool,
    },
    /// The owner replaced the room's links: editing link `e`, read-only id
    /// `v` (the links script writes it; every instance acts on it).
    Links {
        /// Publishing instance.
        i: String,
        /// The new editing link.
        e: String,
        /// The new read-only id.
        v: String,
    },
    /// The owner removed user `u`, whose client ids `c` are refused (the
    /// remove script writes it; every instance acts on it).
    Remove {
        /// Publishing instance.
        i: String,
        /// Who.
        u: String,
        /// Its client ids.
        c: Vec<String>,
        /// The room's new editing link (the one the user had stops working).
        #[serde(default)]
        e: Option<String>,
        /// The room's new read-only id.
        #[serde(default)]
        v: Option<String>,
    },
    /// A user is typing in the chat (`d` absent) or editing document `d`.
    Typing {
        /// Publishing instance.
        i: String,
        /// Who.
        u: String,
        /// The document.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        d: Option<String>,
    },
}

impl WireEvent {
    /// The event for a room on instance `me`: `None` for what this instance
    /// published itself (it already knows).
    pub(super) fn into_event(self, me: &str) -> Option<StoreEvent> {
        Some(match self {
            WireEvent::Ops { d, n, p, ops, .. } => StoreEvent::Ops {
                doc: d.unwrap_or_else(main_doc),
                size: n,
                base: p.as_deref().and_then(parse_mark),
                entries: ops,
            },
            WireEvent::Tree { i, e } if i != me => StoreEvent::Tree(e),
            WireEvent::Cursor { i, u, d, r, c, a } if i != me => StoreEvent::Cursor {
                user_id: u,
                doc: d,
                revision: r,
                cursor: c,
                anchor: a,
            },
            WireEvent::Join { i, user } if i != me => StoreEvent::Join { instance: i, user },
            WireEvent::Leave { i, u } if i != me => StoreEvent::Leave { user_id: u },
            WireEvent::Chat { m, .. } => StoreEvent::Chat(m),
            WireEvent::End { .. } => StoreEvent::Ended,
            WireEvent::Mode { r, .. } => StoreEvent::Mode(r),
            WireEvent::Links { e, v, .. } => StoreEvent::Links { link: e, viewer: v },
            WireEvent::Remove { u, c, e, v, .. } => StoreEvent::Removed {
                user_id: u,
                client_ids: c,
                links: e.zip(v),
            },
            WireEvent::Typing { i, u, d } if i != me => StoreEvent::Typing { user_id: u, doc: d },
            _ => return None,
        })
    }
}

/// How the `ops` and `tree` events this instance published begin (the
/// scripts write them exactly so): the subscriber skips those unread.
pub(super) fn own_prefixes(instance: &str) -> [String; 2] {
    [
        format!(r#"{{"k":"ops","i":"{instance}","#),
        format!(r#"{{"k":"tree","i":"{instance}","#),
    ]
}

fn main_doc() -> String {
    MAIN_DOC.to_owned()
}

/// A document's record in the room's tree hash (its size is in its meta,
/// which every commit writes anyway).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct TreeRecord {
    /// Its path.
    pub(super) path: String,
    /// Its language hint.
    pub(super) language: String,
}

/// A stored tree change.
pub(super) fn parse_tree_entry(s: &str) -> Result<TreeEntry, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("tree log entry: {e}")))
}

/// A mark as stored: `"REV:ID"` with the id in 16 hex digits.
pub(super) fn mark_text((revision, id): Mark) -> String {
    format!("{revision}:{id:016x}")
}

/// A mark from its stored form (`None` when absent, unreadable or id 0).
pub(super) fn parse_mark(text: &str) -> Option<Mark> {
    let (rev, id) = text.split_once(':')?;
    let id = u64::from_str_radix(id, 16).ok().filter(|&id| id != 0)?;
    Some((rev.parse().ok()?, id))
}

/// A stored log entry.
pub(super) fn parse_entry(s: &str) -> Result<CommittedEntry, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("log entry: {e}")))
}

/// A flat `HGETALL` answer as (field, value) pairs.
pub(super) fn pairs_of(flat: &[String]) -> impl Iterator<Item = (&str, &str)> {
    flat.chunks_exact(2).map(|p| (p[0].as_str(), p[1].as_str()))
}

/// A stored record as JSON.
pub(super) fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("store records serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use collab_protocol::Operation;

    #[test]
    fn entries_keep_their_compact_stored_form() {
        let entry = CommittedEntry {
            revision: 7,
            id: 0xab,
            operation: Operation::replace(1, 1, 1, "x").unwrap(),
            user_id: "u1".into(),
            client_id: "c1".into(),
            seq: 3,
        };
        let text = to_json(&entry);
        assert_eq!(
            text,
            r#"{"r":7,"h":"00000000000000ab","o":[1,"x"],"u":"u1","c":"c1","s":3}"#
        );
        assert_eq!(parse_entry(&text).unwrap(), entry);
        // Entries written before ids existed have no "h".
        let old = parse_entry(r#"{"r":1,"o":["x"],"u":"u","c":"c","s":1}"#).unwrap();
        assert_eq!(old.id, 0);
        assert!(!to_json(&old).contains("\"h\""));
    }

    #[test]
    fn marks_round_trip_and_bad_ones_are_unknown() {
        assert_eq!(mark_text((12, 0xff)), "12:00000000000000ff");
        assert_eq!(parse_mark("12:00000000000000ff"), Some((12, 0xff)));
        for bad in ["", "12", "x:ff", "12:zz", "12:0000000000000000"] {
            assert_eq!(parse_mark(bad), None, "{bad}");
        }
    }

    #[test]
    fn own_events_are_not_news() {
        let leave = WireEvent::Leave {
            i: "me".into(),
            u: "u".into(),
        };
        assert_eq!(leave.clone().into_event("me"), None);
        assert_eq!(
            leave.into_event("other"),
            Some(StoreEvent::Leave {
                user_id: "u".into()
            })
        );
    }
}
