//! How connections and the REST layer reach a room's actor: a bounded
//! queue of [`Command`]s. A handle is cheap to clone; when the actor ends,
//! sends fail and the caller looks the room up again.

use collab_protocol::Operation;
use tokio::sync::{mpsc, oneshot};

use super::core::{ConnId, JoinError, Joined, Snapshot};

pub use super::core::JoinRequest;

/// What the actor is asked to do; `S` is where a connection's messages go.
pub enum Command<S> {
    /// Join a connection.
    Join(JoinRequest<S>, oneshot::Sender<Result<Joined, JoinError>>),
    /// A connection left.
    Leave {
        /// Which.
        conn_id: ConnId,
    },
    /// An edit.
    Edit {
        /// From which connection.
        conn_id: ConnId,
        /// Its base revision.
        revision: u64,
        /// The client's seq.
        seq: u64,
        /// The operation.
        operation: Operation,
    },
    /// A caret move.
    Cursor {
        /// From which connection.
        conn_id: ConnId,
        /// The revision of the offsets.
        revision: u64,
        /// Caret.
        cursor: u64,
        /// Selection anchor.
        anchor: Option<u64>,
    },
    /// The room's state, for REST.
    Snapshot(oneshot::Sender<Snapshot>),
    /// Commit what is queued, then close every connection with 1012.
    Drain(oneshot::Sender<()>),
}

/// A room's actor, as connections and REST reach it.
pub struct RoomHandle<S> {
    tx: mpsc::Sender<Command<S>>,
}

impl<S> Clone for RoomHandle<S> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<S: Send + 'static> RoomHandle<S> {
    pub(super) fn new(tx: mpsc::Sender<Command<S>>) -> Self {
        Self { tx }
    }

    /// True when both reach the same actor.
    pub(super) fn same_room_as(&self, other: &Self) -> bool {
        self.tx.same_channel(&other.tx)
    }

    /// True once the actor stopped taking commands.
    pub(super) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Sends a command; false when the actor is gone.
    pub(super) async fn send(&self, cmd: Command<S>) -> bool {
        self.tx.send(cmd).await.is_ok()
    }

    /// Joins the room. Errors when the room refused or went away.
    pub async fn join(&self, req: JoinRequest<S>) -> Result<Joined, JoinError> {
        let (tx, rx) = oneshot::channel();
        if !self.send(Command::Join(req, tx)).await {
            return Err(JoinError::Gone);
        }
        rx.await.map_err(|_| JoinError::Gone)?
    }

    /// Leaves the room; safe to call from `Drop`.
    pub fn leave(&self, conn_id: ConnId) {
        if let Err(mpsc::error::TrySendError::Full(cmd)) =
            self.tx.try_send(Command::Leave { conn_id })
        {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(cmd).await;
            });
        }
    }

    /// Submits an edit; false when the room is gone.
    pub async fn edit(
        &self,
        conn_id: ConnId,
        revision: u64,
        seq: u64,
        operation: Operation,
    ) -> bool {
        self.send(Command::Edit {
            conn_id,
            revision,
            seq,
            operation,
        })
        .await
    }

    /// Submits a caret move; false when the room is gone.
    pub async fn cursor(
        &self,
        conn_id: ConnId,
        revision: u64,
        cursor: u64,
        anchor: Option<u64>,
    ) -> bool {
        self.send(Command::Cursor {
            conn_id,
            revision,
            cursor,
            anchor,
        })
        .await
    }

    /// The room's current state, or `None` when it is gone.
    pub async fn snapshot(&self) -> Option<Snapshot> {
        let (tx, rx) = oneshot::channel();
        if !self.send(Command::Snapshot(tx)).await {
            return None;
        }
        rx.await.ok()
    }
}
