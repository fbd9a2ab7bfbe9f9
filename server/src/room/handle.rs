//! How connections and the REST layer reach a room's actor: a bounded
//! queue of [`Command`]s. A handle is cheap to clone; when the actor ends,
//! sends fail and the caller looks the room up again.

use collab_protocol::Operation;
use futures_util::future::{ready, BoxFuture, Either, Ready};
use tokio::sync::{mpsc, oneshot};

use collab_protocol::{FileInfo, UserInfo};

use super::core::{ConnId, FileText, JoinError, Joined, Snapshot};

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
        /// The document (`None`: the main one).
        doc: Option<String>,
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
        /// The document (`None`: the main one).
        doc: Option<String>,
        /// The revision of the offsets.
        revision: u64,
        /// Caret.
        cursor: u64,
        /// Selection anchor.
        anchor: Option<u64>,
    },
    /// A chat message.
    Chat {
        /// From which connection.
        conn_id: ConnId,
        /// What it says.
        text: String,
        /// The document it refers to.
        doc: Option<String>,
        /// The line it refers to.
        line: Option<u64>,
    },
    /// The connection's user is typing in the chat.
    Typing {
        /// Which connection.
        conn_id: ConnId,
    },
    /// An owner's control, sent on the owner's connection.
    Owner {
        /// Which connection.
        conn_id: ConnId,
        /// What.
        act: super::core::OwnerAct,
    },
    /// A project client opens a document.
    Open {
        /// Which connection.
        conn_id: ConnId,
        /// The document.
        doc: String,
        /// The revision it has of it.
        since: Option<u64>,
    },
    /// A project client closes a document.
    Close {
        /// Which connection.
        conn_id: ConnId,
        /// The document.
        doc: String,
    },
    /// Create a document.
    CreateFile {
        /// Asked by which connection.
        conn_id: ConnId,
        /// Its path.
        path: String,
        /// Its text.
        code: String,
        /// Its language hint.
        language: Option<String>,
    },
    /// Move a document.
    RenameFile {
        /// Asked by which connection.
        conn_id: ConnId,
        /// Which.
        doc: String,
        /// Where to.
        path: String,
    },
    /// Delete a document.
    DeleteFile {
        /// Asked by which connection.
        conn_id: ConnId,
        /// Which.
        doc: String,
    },
    /// The main document's state, for REST (the users present, when it is
    /// not held here).
    Snapshot(oneshot::Sender<Result<Snapshot, Vec<UserInfo>>>),
    /// The tree, for REST.
    Files(oneshot::Sender<(u64, Vec<FileInfo>)>),
    /// A document's text by path, for REST.
    FileText(String, oneshot::Sender<FileText>),
    /// Commit what is queued, then close every connection with 1012.
    Drain(oneshot::Sender<()>),
    /// An owner's control through REST (the owner checked by the
    /// endpoint): carried out as the owner's connection's are, answered
    /// with what it did.
    Act {
        /// What.
        act: super::core::OwnerAct,
        /// The answer.
        reply: oneshot::Sender<Result<super::Acted, crate::store::StoreError>>,
    },
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

    /// Hands a connection's command to the room; false when the room is
    /// gone. At once when the room's queue has space (nearly always); when
    /// it is full, the wait is boxed: its state (the command, a place in
    /// the queue) would otherwise size the reading task every idle
    /// connection keeps.
    pub fn command(&self, cmd: Command<S>) -> Either<Ready<bool>, BoxFuture<'_, bool>> {
        match self.tx.try_send(cmd) {
            Ok(()) => Either::Left(ready(true)),
            Err(mpsc::error::TrySendError::Closed(_)) => Either::Left(ready(false)),
            Err(mpsc::error::TrySendError::Full(cmd)) => Either::Right(Box::pin(self.send(cmd))),
        }
    }

    /// Asks the room something; `None` when it is gone.
    pub async fn ask<T>(&self, cmd: impl FnOnce(oneshot::Sender<T>) -> Command<S>) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        if !self.send(cmd(tx)).await {
            return None;
        }
        rx.await.ok()
    }
}
