//! `collab-protocol`: everything the collab server and its clients must agree
//! on, with no I/O: the wire messages ([`messages`]), the operation algebra
//! that keeps replicas identical ([`operation`]) and the client's
//! synchronization state machine ([`client`]) with the replica built on it
//! ([`replica`]), when to reconnect ([`backoff`]), and the REST bodies ([`rest`]), and the rules of a project's paths ([`paths`])
//! and language hints ([`language`]). The normative description is
//! docs/protocol.md. Also what a word is ([`words`]), the fuzzy matcher
//! ([`fuzzy`]) and code completion ([`complete`]), which the server and
//! the editor share.

pub mod backoff;
pub mod client;
pub mod complete;
mod decode;
pub mod fuzzy;
pub mod language;
pub mod messages;
pub mod operation;
pub mod paths;
pub mod replica;
pub mod rest;
pub mod words;

pub use client::{ClientSync, Pending, Resync, SyncError, SyncState};
pub use messages::{
    close_code, error_code, is_valid_client_id, ChatMessage, ClientMessage, CommittedOp, FileInfo,
    Role, ServerMessage, UserInfo, CHAT_KEPT, CHAT_MAX_CHARS,
};
pub use operation::{char_len, Component, OpError, Operation};
pub use replica::{map_back, Reconnected, Replica, Unacknowledged};
