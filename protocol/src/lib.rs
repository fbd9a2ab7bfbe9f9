//! `collab-protocol`: everything the collab server and its clients must agree
//! on, with no I/O: the wire messages ([`messages`]), the operation algebra
//! that keeps replicas identical ([`operation`]) and the client's
//! synchronization state machine ([`client`]). The normative description is
//! docs/protocol.md.

pub mod client;
mod decode;
pub mod messages;
pub mod operation;

pub use client::{ClientSync, Pending, Replica, Resync, SyncError, SyncState};
pub use messages::{
    close_code, error_code, is_valid_client_id, ClientMessage, CommittedOp, Role, ServerMessage,
    UserInfo,
};
pub use operation::{char_len, Component, OpError, Operation};
