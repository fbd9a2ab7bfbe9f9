//! `collab-protocol`: everything the collab server and its clients must agree
//! on, with no I/O: the wire messages ([`messages`]), the operation algebra
//! that keeps replicas identical ([`operation`]) and the client's
//! synchronization state machine ([`client`]) with the replica built on it
//! ([`replica`]), and the REST bodies ([`rest`]). The normative description is
//! docs/protocol.md.

pub mod client;
mod decode;
pub mod messages;
pub mod operation;
pub mod replica;
pub mod rest;

pub use client::{ClientSync, Pending, Resync, SyncError, SyncState};
pub use messages::{
    close_code, error_code, is_valid_client_id, ClientMessage, CommittedOp, Role, ServerMessage,
    UserInfo,
};
pub use operation::{char_len, Component, OpError, Operation};
pub use replica::{map_back, Reconnected, Replica, Unacknowledged};
