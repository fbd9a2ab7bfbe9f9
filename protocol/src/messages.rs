//! The wire messages, one enum per direction, exactly as docs/protocol.md
//! specifies them. Every message is one JSON object in one WebSocket text
//! frame, tagged by a snake_case `type`.

use serde::{Deserialize, Serialize};

use crate::operation::Operation;

/// A message a client sends to the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// An edit based on `revision`, the client's `seq`-th operation.
    CodeUpdate {
        /// The revision the operation applies to.
        revision: u64,
        /// Counts the client's operations from 1; a resend keeps its seq.
        seq: u64,
        /// The edit.
        operation: Operation,
        /// The document (project clients); absent: the main document.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        doc: Option<String>,
    },
    /// The caret (and the other end of a selection) at `revision`.
    CursorMove {
        /// The revision the offsets refer to.
        revision: u64,
        /// Caret offset in chars.
        cursor: u64,
        /// The selection's other end, if any.
        #[serde(default)]
        anchor: Option<u64>,
        /// The document (project clients); absent: the main document.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        doc: Option<String>,
    },
    /// Liveness check, answered by [`ServerMessage::Pong`].
    Ping,
    /// Start receiving a document (project clients).
    Open {
        /// The document.
        doc: String,
        /// The revision the client has of it, to get what it missed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
    },
    /// Stop receiving a document.
    Close {
        /// The document.
        doc: String,
    },
    /// Create a document at `path`.
    CreateFile {
        /// Where.
        path: String,
        /// Its text (empty when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        /// Its language (guessed from the path when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        language: Option<String>,
    },
    /// Move a document to `path`.
    RenameFile {
        /// Which.
        doc: String,
        /// Where to.
        path: String,
    },
    /// Delete a document.
    DeleteFile {
        /// Which.
        doc: String,
    },
    /// A chat message to everyone in the room, optionally about a line of
    /// a document.
    Chat {
        /// What it says (1 to [`CHAT_MAX_CHARS`] chars, not only blanks).
        text: String,
        /// The document it refers to (absent: none, or with `line` the
        /// main document).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        doc: Option<String>,
        /// The line it refers to, from 1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line: Option<u64>,
    },
    /// The sender is typing in the chat now. Sent at most every couple of
    /// seconds while the user types; the others show it for a few seconds.
    Typing,
    /// The owner's: makes the room read-only for everyone but the owner,
    /// or editable again.
    SetReadOnly {
        /// Read-only for everyone but the owner.
        read_only: bool,
    },
    /// The owner's: removes a participant (as `DELETE
    /// /rooms/{id}/users/{user_id}`).
    RemoveUser {
        /// Who.
        user_id: String,
    },
    /// The owner's: ends the room (as `DELETE /rooms/{id}`).
    EndRoom,
    /// The owner's: new share links (as `POST /rooms/{id}/links`).
    RotateLinks,
}

/// The longest chat message, in chars.
pub const CHAT_MAX_CHARS: usize = 2000;
/// How many chat messages a room keeps (and `init` carries).
pub const CHAT_KEPT: usize = 500;

/// A chat message as the server relays and keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Its place in the room's chat: 1, 2, 3, … in the order everyone
    /// receives the messages.
    pub seq: u64,
    /// Who wrote it.
    pub user_id: String,
    /// Their display name when they wrote it.
    pub name: String,
    /// What it says.
    pub text: String,
    /// When the server received it, in milliseconds since the Unix epoch.
    pub at: u64,
    /// The document it refers to (to project clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    /// That document's path when the message was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The line it refers to, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

/// A document of a project room, as the tree lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileInfo {
    /// Its stable id.
    pub doc: String,
    /// Its path in the room's tree.
    pub path: String,
    /// Its length in UTF-8 bytes.
    pub size: u64,
    /// Its language hint.
    pub language: String,
}

/// What the server tells about a user present in a room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserInfo {
    /// Stable for the same `client_id` in a room.
    pub user_id: String,
    /// Display name.
    pub name: String,
    /// `#rrggbb`, distinct from the others' while the palette lasts.
    pub color: String,
    /// Caret offset at the revision of the message carrying it; null until the
    /// user first moves it.
    pub cursor: Option<u64>,
    /// The selection's other end, if any.
    pub anchor: Option<u64>,
    /// Whether this user edits, only views, or is a script that watches.
    /// Sent only for viewers and watchers (absent means an editor, as with
    /// older servers, which only had editors).
    #[serde(default, skip_serializing_if = "Role::is_editor")]
    pub role: Role,
    /// The document the user was last in (to project clients; absent until
    /// known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
}

/// What a connection may do in a room, as everyone in it is told.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    /// Joined with the editing id: may edit.
    #[default]
    Editor,
    /// Joined with the read-only id: sees everything live, cannot edit.
    Viewer,
    /// A script that asked to only watch (`role=watcher`): cannot edit.
    Watcher,
    /// A role this client does not know (from a newer server): parsed
    /// rather than refused, so the message carrying it still counts.
    #[serde(other)]
    Other,
}

impl Role {
    /// True for an editor (the default, left out of messages).
    pub fn is_editor(&self) -> bool {
        *self == Role::Editor
    }

    /// True for the roles whose edits the server refuses.
    pub fn is_read_only(self) -> bool {
        matches!(self, Role::Viewer | Role::Watcher)
    }
}

/// An operation committed by someone, as carried by `code_update`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOp {
    /// The revision this operation produced; it applies to `revision - 1`.
    pub revision: u64,
    /// The edit.
    pub operation: Operation,
    /// Who made it.
    pub user_id: String,
    /// Present only in `init.missed`, on operations committed for the
    /// connecting client's own `client_id`: the seq it sent them with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The document (in a `code_update` to a project client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
}

/// A message the server sends to a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Always the first message on a connection.
    Init {
        /// The room joined.
        room_id: String,
        /// This connection's user id.
        user_id: String,
        /// This user's display name.
        name: String,
        /// This user's color.
        color: String,
        /// The revision `code` is at.
        revision: u64,
        /// The whole document.
        code: String,
        /// Language hint for highlighting, e.g. "rust".
        language: String,
        /// Every other user present.
        users: Vec<UserInfo>,
        /// True when this connection may not edit (a viewer or a watcher):
        /// its `code_update` would be refused with `read_only`. Absent from
        /// older servers, whose viewers learned it only from that refusal;
        /// sent only when true.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        read_only: bool,
        /// The room's read-only id, for editors (so they can share a
        /// view-only link); absent for viewers, who must not learn more.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        read_only_id: Option<String>,
        /// Only when the client connected with `since=R` and the server
        /// still holds every operation after R: those operations, in order,
        /// so a reconnecting client can rebase its unacknowledged edits.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        missed: Option<Vec<CommittedOp>>,
        /// Project clients: the main document's id (absent when it was
        /// deleted).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        doc: Option<String>,
        /// Project clients: how many tree changes the room has had.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tree_revision: Option<u64>,
        /// Project clients: every document, sorted by path.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        files: Option<Vec<FileInfo>>,
        /// This connection holds the room's owner token: the room's
        /// read-only switch does not apply to it. Sent only when true.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        owner: bool,
        /// The room's chat so far (its last [`CHAT_KEPT`] messages),
        /// oldest first. Absent from older servers.
        #[serde(default)]
        chat: Vec<ChatMessage>,
    },
    /// Someone else's operation, turning `revision - 1` into `revision`.
    CodeUpdate(CommittedOp),
    /// Your operation `seq` was committed as `revision`.
    Ack {
        /// The revision it produced.
        revision: u64,
        /// The seq it was sent with.
        seq: u64,
        /// The document (project clients).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        doc: Option<String>,
    },
    /// Another user's caret, brought to `revision`.
    CursorMove {
        /// Whose caret.
        user_id: String,
        /// The revision the offsets refer to.
        revision: u64,
        /// Caret offset in chars.
        cursor: u64,
        /// The selection's other end, if any.
        anchor: Option<u64>,
        /// The document (project clients).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        doc: Option<String>,
    },
    /// The answer to `open`: the document at `revision`.
    Opened {
        /// The document.
        doc: String,
        /// The revision `code` is at.
        revision: u64,
        /// The whole text.
        code: String,
        /// Its language hint.
        language: String,
        /// As in `init`, for an `open` with `since`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        missed: Option<Vec<CommittedOp>>,
    },
    /// A document was created.
    FileCreated {
        /// It.
        file: FileInfo,
        /// Who created it.
        user_id: String,
        /// The tree change's number.
        tree_revision: u64,
    },
    /// A document was moved.
    FileRenamed {
        /// Which.
        doc: String,
        /// Its new path.
        path: String,
        /// Its old path.
        old_path: String,
        /// Who moved it.
        user_id: String,
        /// The tree change's number.
        tree_revision: u64,
    },
    /// A document was deleted.
    FileDeleted {
        /// Which.
        doc: String,
        /// The path it had.
        path: String,
        /// Who deleted it.
        user_id: String,
        /// The tree change's number.
        tree_revision: u64,
    },
    /// Someone joined.
    UserJoined {
        /// Who.
        user: UserInfo,
    },
    /// Someone left.
    UserLeft {
        /// Who.
        user_id: String,
    },
    /// Something the client sent was refused; see [`error_code`].
    Error {
        /// Machine-readable reason.
        code: String,
        /// Human-readable detail.
        message: String,
        /// The seq of the edit refused, when the refusal concerns one edit
        /// and the connection stays open (`document_too_large`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        /// The document it concerns, if one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        doc: Option<String>,
        /// The path it concerns, if one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
    },
    /// Answer to [`ClientMessage::Ping`].
    Pong,
    /// A chat message, to everyone in the room (its author included).
    Chat(ChatMessage),
    /// The room's share links were replaced (the owner rotated them, or
    /// removed someone): the old ones no longer open the room. Reconnect
    /// with `room_id` from now on.
    Links {
        /// The id this connection joins the room with now (a viewer's: the
        /// new read-only id).
        room_id: String,
        /// For editors, the new read-only id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        read_only_id: Option<String>,
    },
    /// The owner switched the room to read-only for everyone but the owner
    /// (`read_only` true), or back.
    Mode {
        /// The room is read-only for everyone but its owner.
        read_only: bool,
    },
    /// Who is typing in the chat, or editing which document, now: state,
    /// not an event (a slow reader gets the newest of each user).
    Typing {
        /// Who.
        user_id: String,
        /// Typing in the chat.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        chat: bool,
        /// Editing a document (single-document clients hear only of the
        /// main one).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        editing: bool,
        /// The document they are editing (to project clients).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        doc: Option<String>,
    },
}

impl ServerMessage {
    /// An `error` message.
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        Self::Error {
            code: code.to_owned(),
            message: message.into(),
            seq: None,
            doc: None,
            path: None,
        }
    }

    /// The JSON text of this message.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }
}

impl ClientMessage {
    /// The JSON text of this message.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("client messages always serialize")
    }

    /// This edit or caret addressed to `doc` (a project client's; `None`:
    /// the main document). A [`crate::Replica`] keeps one document and
    /// names none; a project client names the one it keeps. Other messages
    /// are returned as they are.
    pub fn for_doc(mut self, doc: Option<&str>) -> Self {
        if let ClientMessage::CodeUpdate { doc: d, .. } | ClientMessage::CursorMove { doc: d, .. } =
            &mut self
        {
            *d = doc.map(str::to_owned);
        }
        self
    }
}

/// Values of `error.code`.
pub mod error_code {
    /// Not JSON, unknown type, missing field, bad value.
    pub const MALFORMED: &str = "malformed";
    /// An operation whose base length does not fit its revision.
    pub const INVALID_OPERATION: &str = "invalid_operation";
    /// A revision newer than the room's.
    pub const FUTURE_REVISION: &str = "future_revision";
    /// A revision older than the history the server keeps.
    pub const REVISION_TOO_OLD: &str = "revision_too_old";
    /// The room does not exist.
    pub const ROOM_NOT_FOUND: &str = "room_not_found";
    /// The message exceeds the size limit.
    pub const TOO_LARGE: &str = "too_large";
    /// The client fell too far behind and is disconnected.
    pub const LAGGING: &str = "lagging";
    /// The room's store cannot be reached; the edit was not committed.
    pub const UNAVAILABLE: &str = "unavailable";
    /// The server is shutting down.
    pub const SHUTTING_DOWN: &str = "shutting_down";
    /// Missing, invalid or expired token.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// A viewer (read-only link) tried to edit.
    pub const READ_ONLY: &str = "read_only";
    /// More messages per second than allowed.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// The edit would make the document larger than allowed; not applied.
    pub const DOCUMENT_TOO_LARGE: &str = "document_too_large";
    /// The room or the client address has too many connections.
    pub const TOO_MANY_CONNECTIONS: &str = "too_many_connections";
    /// Nothing received (not even a pong) for too long.
    pub const IDLE_TIMEOUT: &str = "idle_timeout";
    /// A newer connection with the same `client_id` took over.
    pub const REPLACED: &str = "replaced";
    /// A path that breaks the tree's rules.
    pub const BAD_PATH: &str = "bad_path";
    /// Another document has that path.
    pub const PATH_TAKEN: &str = "path_taken";
    /// No document has that id.
    pub const DOCUMENT_NOT_FOUND: &str = "document_not_found";
    /// An edit to a document deleted meanwhile.
    pub const DOCUMENT_DELETED: &str = "document_deleted";
    /// The room holds as many documents as allowed.
    pub const TOO_MANY_FILES: &str = "too_many_files";
    /// The connection holds as many documents open as allowed.
    pub const TOO_MANY_OPEN: &str = "too_many_open";
    /// An edit or caret for a document this connection has not opened.
    pub const NOT_OPEN: &str = "not_open";
    /// The room's store went back to an older state (Redis restored from an
    /// older snapshot): the server resynchronizes to it and closes with 1012.
    pub const HISTORY_RESET: &str = "history_reset";
    /// A chat message that is empty, too long, or refers to a line that
    /// cannot be (0).
    pub const BAD_CHAT: &str = "bad_chat";
    /// More chat messages than the chat's rate allows; the connection
    /// stays open.
    pub const CHAT_RATE_LIMITED: &str = "chat_rate_limited";
    /// The room's owner removed this user (close 4006; a rejoin of the same
    /// client is refused the same way).
    pub const REMOVED: &str = "removed";
    /// The room's owner ended the room (close 4007); its data is deleted.
    pub const ROOM_ENDED: &str = "room_ended";
    /// An edit or a tree change while the owner has the room read-only:
    /// not applied (an edit's `seq` is named), the connection stays open.
    pub const ROOM_READ_ONLY: &str = "room_read_only";
    /// An owner's message (`set_read_only`, `remove_user`, `end_room`) from
    /// a connection without the owner token; the connection stays open.
    pub const NOT_OWNER: &str = "not_owner";
    /// `remove_user` named nobody in the room.
    pub const USER_NOT_FOUND: &str = "user_not_found";
}

/// WebSocket close codes used by the protocol.
pub mod close_code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// Going away (idle timeout).
    pub const GOING_AWAY: u16 = 1001;
    /// Policy violation (rate limit).
    pub const POLICY: u16 = 1008;
    /// Message too large.
    pub const TOO_LARGE: u16 = 1009;
    /// Server error.
    pub const INTERNAL: u16 = 1011;
    /// Server restarting: reconnect, maybe elsewhere.
    pub const RESTARTING: u16 = 1012;
    /// Try again later.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// Authentication failed.
    pub const UNAUTHORIZED: u16 = 4001;
    /// Malformed message.
    pub const MALFORMED: u16 = 4002;
    /// Forbidden (a viewer's edit).
    pub const FORBIDDEN: u16 = 4003;
    /// Room does not exist.
    pub const ROOM_NOT_FOUND: u16 = 4004;
    /// Replaced by a newer connection with the same `client_id`.
    pub const REPLACED: u16 = 4005;
    /// The room's owner removed this user; the same client is refused if
    /// it comes back.
    pub const REMOVED: u16 = 4006;
    /// The room's owner ended the room; its data is deleted.
    pub const ROOM_ENDED: u16 = 4007;
    /// The client fell too far behind.
    pub const LAGGING: u16 = 4008;
}

/// True for a valid `client_id`: 1 to 64 chars of `[A-Za-z0-9_-]`.
pub fn is_valid_client_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every message of chat, typing and the owner's controls, as
    /// docs/protocol.md writes it, both ways.
    #[test]
    fn chat_typing_and_owner_messages_have_the_documented_json() {
        let client = [
            (
                json!({"type": "chat", "text": "see", "doc": "d1", "line": 4}),
                ClientMessage::Chat {
                    text: "see".into(),
                    doc: Some("d1".into()),
                    line: Some(4),
                },
            ),
            (
                json!({"type": "chat", "text": "hi"}),
                ClientMessage::Chat {
                    text: "hi".into(),
                    doc: None,
                    line: None,
                },
            ),
            (json!({"type": "typing"}), ClientMessage::Typing),
            (
                json!({"type": "set_read_only", "read_only": true}),
                ClientMessage::SetReadOnly { read_only: true },
            ),
            (
                json!({"type": "remove_user", "user_id": "u1"}),
                ClientMessage::RemoveUser {
                    user_id: "u1".into(),
                },
            ),
            (json!({"type": "end_room"}), ClientMessage::EndRoom),
            (json!({"type": "rotate_links"}), ClientMessage::RotateLinks),
        ];
        for (json, msg) in client {
            assert_eq!(serde_json::to_value(&msg).unwrap(), json);
            assert_eq!(ClientMessage::from_json(&json.to_string()).unwrap(), msg);
        }
        let chat = ChatMessage {
            seq: 3,
            user_id: "u1".into(),
            name: "ada".into(),
            text: "see".into(),
            at: 1_700_000_000_000,
            doc: Some("d1".into()),
            path: Some("src/a.rs".into()),
            line: Some(4),
        };
        let server = [
            (
                json!({"type": "chat", "seq": 3, "user_id": "u1", "name": "ada", "text": "see",
                       "at": 1_700_000_000_000u64, "doc": "d1", "path": "src/a.rs", "line": 4}),
                ServerMessage::Chat(chat.clone()),
            ),
            (
                json!({"type": "typing", "user_id": "u1", "chat": true}),
                ServerMessage::Typing {
                    user_id: "u1".into(),
                    chat: true,
                    editing: false,
                    doc: None,
                },
            ),
            (
                json!({"type": "typing", "user_id": "u1", "editing": true, "doc": "d1"}),
                ServerMessage::Typing {
                    user_id: "u1".into(),
                    chat: false,
                    editing: true,
                    doc: Some("d1".into()),
                },
            ),
            (
                json!({"type": "mode", "read_only": true}),
                ServerMessage::Mode { read_only: true },
            ),
            (
                json!({"type": "links", "room_id": "r2", "read_only_id": "v2"}),
                ServerMessage::Links {
                    room_id: "r2".into(),
                    read_only_id: Some("v2".into()),
                },
            ),
        ];
        for (json, msg) in server {
            assert_eq!(serde_json::to_value(&msg).unwrap(), json);
            assert_eq!(ServerMessage::from_json(&json.to_string()).unwrap(), msg);
        }
        // An init from a server before chat existed has none.
        let old = json!({"type": "init", "room_id": "r", "user_id": "u", "name": "n",
                         "color": "#000000", "revision": 0, "code": "", "language": "rust",
                         "users": []});
        let ServerMessage::Init { chat, owner, .. } =
            ServerMessage::from_json(&old.to_string()).unwrap()
        else {
            unreachable!()
        };
        assert!(chat.is_empty() && !owner);
        assert_eq!((close_code::REMOVED, close_code::ROOM_ENDED), (4006, 4007));
    }

    #[test]
    fn client_messages_parse_from_the_documented_json() {
        let m: ClientMessage = serde_json::from_value(json!(
            {"type": "code_update", "revision": 3, "seq": 1, "operation": [1, "x"]}
        ))
        .unwrap();
        assert!(matches!(
            m,
            ClientMessage::CodeUpdate {
                revision: 3,
                seq: 1,
                ..
            }
        ));
        let m: ClientMessage =
            serde_json::from_value(json!({"type": "cursor_move", "revision": 0, "cursor": 4}))
                .unwrap();
        assert_eq!(
            m,
            ClientMessage::CursorMove {
                revision: 0,
                cursor: 4,
                anchor: None,
                doc: None
            }
        );
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"dance"}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"code_update"}"#).is_err());
    }

    #[test]
    fn server_messages_serialize_exactly() {
        let op: Operation = serde_json::from_str(r#"[1,"x"]"#).unwrap();
        let update = ServerMessage::CodeUpdate(CommittedOp {
            revision: 2,
            operation: op,
            user_id: "u1".into(),
            seq: None,
            doc: None,
        });
        assert_eq!(
            update.to_json(),
            r#"{"type":"code_update","revision":2,"operation":[1,"x"],"user_id":"u1"}"#
        );
        assert_eq!(
            ServerMessage::Ack {
                revision: 2,
                seq: 7,
                doc: None
            }
            .to_json(),
            r#"{"type":"ack","revision":2,"seq":7}"#
        );
        assert_eq!(ServerMessage::Pong.to_json(), r#"{"type":"pong"}"#);
        let left = ServerMessage::UserLeft {
            user_id: "u1".into(),
        };
        assert_eq!(left.to_json(), r#"{"type":"user_left","user_id":"u1"}"#);
    }

    #[test]
    fn roles_are_optional_and_unknown_ones_parse() {
        let user = |extra: &str| {
            let json = format!(
                r##"{{"user_id":"u","name":"n","color":"#000000","cursor":null,"anchor":null{extra}}}"##
            );
            serde_json::from_str::<UserInfo>(&json).unwrap().role
        };
        assert_eq!(user(""), Role::Editor);
        assert_eq!(user(r#","role":"viewer""#), Role::Viewer);
        assert_eq!(user(r#","role":"admin""#), Role::Other);
        let editor = UserInfo {
            user_id: "u".into(),
            name: "n".into(),
            color: "#000000".into(),
            cursor: None,
            anchor: None,
            role: Role::Editor,
            doc: None,
        };
        assert!(!serde_json::to_string(&editor).unwrap().contains("role"));
    }

    #[test]
    fn client_ids_are_checked() {
        assert!(is_valid_client_id("abc_DEF-123"));
        assert!(!is_valid_client_id(""));
        assert!(!is_valid_client_id("a b"));
        assert!(!is_valid_client_id(&"a".repeat(65)));
    }
}
