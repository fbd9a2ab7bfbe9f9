//! The REST bodies, as docs/protocol.md specifies them: the server writes
//! and reads these types, and clients read and write the same ones, so the
//! two cannot disagree about a field's name or shape.

use serde::{Deserialize, Serialize};

use crate::messages::{FileInfo, UserInfo};

/// `POST /rooms`' optional body: one document (`code`, `language`, `path`)
/// or a project (`files`), not both.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateRoom {
    /// The document the room starts with.
    #[serde(default)]
    pub code: String,
    /// A language hint ("rust"); guessed from `path` when absent or blank,
    /// else `plaintext`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The document's path in the room's tree (`main.EXT` by the language
    /// when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A project's documents; the first is its main document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<NewFile>>,
}

/// One document of a project `POST /rooms` creates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewFile {
    /// Its path (docs/protocol.md, "The tree").
    pub path: String,
    /// Its text.
    #[serde(default)]
    pub code: String,
    /// Its language hint; guessed from the path when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// `GET /rooms/{id}/files`' answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Files {
    /// The id asked for.
    pub room_id: String,
    /// How many tree changes the room has had.
    pub tree_revision: u64,
    /// Every document, sorted by path.
    pub files: Vec<FileInfo>,
}

/// `POST /rooms`' answer (201).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedRoom {
    /// The new room's id: who has it can edit.
    pub room_id: String,
    /// The room's REST URL, built from the request's `Host`.
    pub join_url: String,
    /// The room's WebSocket URL.
    pub ws_url: String,
    /// The id that joins the same room read-only (servers before it existed
    /// did not send one).
    #[serde(default)]
    pub read_only_id: Option<String>,
    /// The read-only id's WebSocket URL.
    #[serde(default)]
    pub read_only_ws_url: Option<String>,
    /// The room owner's secret, shown once: with it (header
    /// `Collab-Owner-Token`) the owner removes participants and ends the
    /// room. Servers before it existed did not send one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_token: Option<String>,
}

/// `PUT /rooms/{id}/read_only`'s body and answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadOnly {
    /// Read-only for everyone but the room's owner.
    pub read_only: bool,
}

/// `DELETE /rooms/{id}/users/{user_id}`' answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// Who was removed.
    pub user_id: String,
    /// How many of their clients are refused from now on.
    pub clients: usize,
}

/// `GET /rooms/{id}`' answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomState {
    /// The id asked for (through a read-only id, that id).
    pub room_id: String,
    /// The document's current revision.
    pub revision: u64,
    /// Language hint.
    pub language: String,
    /// The document.
    pub code: String,
    /// Who is connected.
    pub users: Vec<UserInfo>,
}

/// `GET /rooms/{id}/exists`' answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomExists {
    /// Whether either id of a room is `room_id`.
    pub exists: bool,
    /// The id asked for.
    pub room_id: String,
}

/// `GET /health`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `ok`, or `unavailable` (with status 503).
    pub status: String,
    /// `memory`, `redis`, or what is wrong with the store.
    pub store: String,
}

/// Any REST error's body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
}

/// `POST /rooms/autocomplete`'s body: the code, the cursor in it and its
/// language (docs/protocol.md, "Completion").
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Autocomplete {
    /// The text being edited.
    pub code: String,
    /// The cursor, in chars (Unicode scalar values) from the start of
    /// `code`; at most its length.
    pub cursor_position: u64,
    /// A language hint (`rust`, `python`, …); one without keywords and
    /// snippets (or `""`) completes from the code's words only.
    pub language: String,
}

/// `POST /rooms/autocomplete`'s answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    /// The text to insert at `insert_position`; `""` when there is none.
    pub suggestion: String,
    /// Where to insert it, in chars: the request's cursor.
    pub insert_position: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_have_the_documented_shape() {
        let created = CreatedRoom {
            room_id: "r".into(),
            join_url: "http://h/rooms/r".into(),
            ws_url: "ws://h/ws/r".into(),
            read_only_id: Some("v".into()),
            read_only_ws_url: Some("ws://h/ws/v".into()),
            owner_token: Some("o".into()),
        };
        assert_eq!(
            serde_json::to_value(&created).unwrap(),
            json!({"room_id": "r", "join_url": "http://h/rooms/r", "ws_url": "ws://h/ws/r",
                   "read_only_id": "v", "read_only_ws_url": "ws://h/ws/v", "owner_token": "o"})
        );
        let body: CreateRoom = serde_json::from_str(r#"{"code":"x"}"#).unwrap();
        assert_eq!(body.language, None);
        assert!(serde_json::from_str::<CreateRoom>(r#"{"cod":"x"}"#).is_err());
        assert_eq!(
            serde_json::to_string(&CreateRoom::default()).unwrap(),
            r#"{"code":""}"#
        );
    }

    #[test]
    fn autocomplete_bodies_have_the_documented_shape() {
        let req: Autocomplete =
            serde_json::from_str(r#"{"code":"def ","cursor_position":4,"language":"python"}"#)
                .unwrap();
        assert_eq!(
            req,
            Autocomplete {
                code: "def ".into(),
                cursor_position: 4,
                language: "python".into(),
            }
        );
        // Every field is required, and no other is taken.
        assert!(
            serde_json::from_str::<Autocomplete>(r#"{"code":"x","cursor_position":1}"#).is_err()
        );
        assert!(serde_json::from_str::<Autocomplete>(
            r#"{"code":"x","cursor_position":1,"language":"","x":1}"#
        )
        .is_err());
        let answer = Suggestion {
            suggestion: "name(args):\n    pass".into(),
            insert_position: 4,
        };
        assert_eq!(
            serde_json::to_value(&answer).unwrap(),
            json!({"suggestion": "name(args):\n    pass", "insert_position": 4})
        );
    }
}
