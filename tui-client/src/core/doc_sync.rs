//! The editor's document before and after the first `init`: nothing until
//! the room's code arrives, then the protocol's [`Replica`] (which owns the
//! rebasing after a reconnect, the offsets between the local and the
//! server's document, and the journal's view of unacknowledged edits). Both
//! the editor and `collab append` drive this.

use collab_protocol::{
    ClientMessage, ClientSync, CommittedOp, Operation, Reconnected, Replica, SyncError,
    Unacknowledged,
};
use ropey::Rope;

/// What an `init` did to the local document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InitOutcome {
    /// The first `init`: the document is the room's code.
    Fresh,
    /// A reconnect whose `missed` operations were replayed: `applied` were
    /// applied to the document, in order; `send` must go out now (the resent
    /// unacknowledged edit).
    Rebased {
        /// Transformed remote operations, already applied to the document.
        applied: Vec<Operation>,
        /// Messages to send on the new connection.
        send: Vec<ClientMessage>,
    },
    /// A reconnect that could not rebase: the document was replaced by the
    /// room's code. `lost` is the local text as it was, when it held edits
    /// the server never acknowledged (the caller saves it somewhere).
    Replaced {
        /// The local document before it was replaced, if it had unsent edits.
        lost: Option<String>,
    },
}

/// A document kept in step with the server, once it has arrived.
#[derive(Clone, Debug, Default)]
pub struct SyncedDoc {
    replica: Option<Replica>,
    /// What [`SyncedDoc::rope`] shows before the first `init`.
    nothing: Rope,
    /// The seq the first edit after the first `init` gets: a document
    /// opened again continues the seqs this client used in it (0 or 1: from
    /// the start).
    first_seq: u64,
}

impl SyncedDoc {
    /// An empty document that has not received `init` yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty document whose first `init` (an `opened`) continues this
    /// client's seqs in it at `next_seq`.
    pub fn continuing(next_seq: u64) -> Self {
        Self {
            first_seq: next_seq,
            ..Self::default()
        }
    }

    /// Before the first `init`: continue at `next_seq` at least (the seqs
    /// this client used in the document before); nothing once ready (the
    /// sync state machine counts on by itself).
    pub fn continue_seqs(&mut self, next_seq: u64) {
        if self.replica.is_none() {
            self.first_seq = self.first_seq.max(next_seq);
        }
    }

    /// The seq the next edit gets (to continue after closing).
    pub fn next_seq(&self) -> u64 {
        self.sync()
            .map_or(self.first_seq.max(1), ClientSync::next_seq)
    }

    /// A document resumed from a journal: ready to edit before any `init`,
    /// and the first `init` (asked for with `since`) rebases the edits.
    pub fn resume(saved: &Unacknowledged) -> Self {
        Self {
            replica: Some(Replica::resume(saved)),
            nothing: Rope::new(),
            first_seq: 0,
        }
    }

    /// The local text.
    pub fn rope(&self) -> &Rope {
        self.replica.as_ref().map_or(&self.nothing, |r| &r.doc)
    }

    /// What a journal must keep, when edits are unacknowledged.
    pub fn unacknowledged(&self) -> Option<Unacknowledged> {
        self.replica.as_ref()?.unacknowledged()
    }

    /// True once the first `init` arrived.
    pub fn is_ready(&self) -> bool {
        self.replica.is_some()
    }

    /// The sync state machine, once ready.
    pub fn sync(&self) -> Option<&ClientSync> {
        self.replica.as_ref().map(|r| &r.sync)
    }

    /// The last server revision seen.
    pub fn revision(&self) -> Option<u64> {
        self.sync().map(ClientSync::revision)
    }

    /// True when every local edit was acknowledged.
    pub fn is_synchronized(&self) -> bool {
        self.sync().is_none_or(ClientSync::is_synchronized)
    }

    /// Handles an `init`.
    pub fn on_init(
        &mut self,
        revision: u64,
        code: &str,
        missed: Option<&[CommittedOp]>,
    ) -> InitOutcome {
        let Some(replica) = &mut self.replica else {
            self.replica = Some(if self.first_seq > 1 {
                Replica::continuing(revision, code, self.first_seq)
            } else {
                Replica::new(revision, code)
            });
            return InitOutcome::Fresh;
        };
        match replica.reconnected(revision, code, missed) {
            Reconnected::Rebased { applied, send } => InitOutcome::Rebased { applied, send },
            Reconnected::Replaced { lost } => InitOutcome::Replaced { lost },
        }
    }

    /// Applies a local edit; returns the message to send now, if any.
    pub fn local(&mut self, op: &Operation) -> Result<Option<ClientMessage>, SyncError> {
        match &mut self.replica {
            Some(r) => r.edit(op.clone()),
            None => Ok(None),
        }
    }

    /// Applies someone else's operation that produced `revision`; returns it
    /// as applied to the local document.
    pub fn remote(&mut self, revision: u64, op: &Operation) -> Result<Operation, SyncError> {
        match &mut self.replica {
            Some(r) => r.remote(revision, op),
            None => Err(SyncError::RevisionGap {
                expected: 0,
                got: revision,
            }),
        }
    }

    /// Takes an ack; returns the buffered edit's message when now due.
    pub fn ack(&mut self, revision: u64, seq: u64) -> Result<Option<ClientMessage>, SyncError> {
        match &mut self.replica {
            Some(r) => r.ack(revision, seq),
            None => Ok(None),
        }
    }

    /// Where the server's offset `pos` at `revision` is in the local
    /// document (see [`Replica::from_server_offset`]).
    pub fn from_server_offset(&self, revision: u64, pos: u64) -> Option<usize> {
        self.replica.as_ref()?.from_server_offset(revision, pos)
    }

    /// The local offset `pos` in the server's document at
    /// [`revision`](Self::revision) (see [`Replica::to_server_offset`]).
    pub fn to_server_offset(&self, pos: usize) -> usize {
        self.replica
            .as_ref()
            .map_or(pos, |r| r.to_server_offset(pos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_happens_before_the_first_init() {
        let mut d = SyncedDoc::new();
        assert!(!d.is_ready() && d.is_synchronized());
        let op = Operation::replace(0, 0, 0, "x").unwrap();
        assert_eq!(d.local(&op), Ok(None));
        assert!(d.remote(1, &op).is_err());
        assert_eq!(d.rope().len_chars(), 0);
        assert_eq!(d.on_init(4, "abc", None), InitOutcome::Fresh);
        assert_eq!(d.revision(), Some(4));
        assert_eq!(d.rope().to_string(), "abc");
        // A second init is a reconnect.
        assert!(matches!(
            d.on_init(5, "abcd", None),
            InitOutcome::Replaced { lost: None }
        ));
    }
}
