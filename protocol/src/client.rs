//! The client's synchronization state machine (after ot.js and ShareDB).
//!
//! A client has at most one operation in flight (`outstanding`); edits made
//! while it waits for the ack are composed into one `buffer`. Remote
//! operations are transformed against both so the local document stays a
//! valid replica. The machine holds no document and does no I/O: the editor,
//! the test bots and the benchmark all drive the same code.

use crate::messages::{ClientMessage, CommittedOp};
use crate::operation::{OpError, Operation};

/// An operation sent and not yet acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The seq it was sent with; a resend keeps it.
    pub seq: u64,
    /// The operation, based on the client's current revision.
    pub operation: Operation,
}

/// Where the client is in the ack cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncState {
    /// Nothing unacknowledged.
    Synchronized,
    /// One operation in flight.
    AwaitingAck(Pending),
    /// One operation in flight and more local edits composed behind it.
    AwaitingWithBuffer(Pending, Operation),
}

/// A message the server sent that does not fit the client's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// A revision other than the next one arrived.
    #[error("expected revision {expected}, got {got}")]
    RevisionGap {
        /// The next revision.
        expected: u64,
        /// What arrived.
        got: u64,
    },
    /// An ack for a seq that is not in flight.
    #[error("ack for seq {got}, but seq {expected:?} is in flight")]
    UnexpectedAck {
        /// The seq in flight, if any.
        expected: Option<u64>,
        /// The acked seq.
        got: u64,
    },
    /// An operation that does not fit the document.
    #[error(transparent)]
    Operation(#[from] OpError),
}

/// The client side of the protocol's revision/ack bookkeeping.
#[derive(Clone, Debug)]
pub struct ClientSync {
    revision: u64,
    state: SyncState,
    next_seq: u64,
}

/// What a reconnect with `since` produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resync {
    /// Transformed remote operations to apply to the local document, in order.
    pub apply: Vec<Operation>,
    /// Messages to send now, in order (the resend of the outstanding
    /// operation with its original seq, or the buffer once that was acked).
    pub send: Vec<ClientMessage>,
}

impl ClientSync {
    /// A client that has just received `init` at `revision`.
    pub fn new(revision: u64) -> Self {
        Self {
            revision,
            state: SyncState::Synchronized,
            next_seq: 1,
        }
    }

    /// A client picking up where an earlier process left off (its journal):
    /// at `revision`, with that state, numbering its next edit `next_seq`.
    /// Reconnecting with `since = revision` and the same `client_id` then
    /// resends what was unacknowledged, and the server applies each edit at
    /// most once.
    pub fn resume(revision: u64, state: SyncState, next_seq: u64) -> Self {
        let in_flight = match &state {
            SyncState::Synchronized => 0,
            SyncState::AwaitingAck(p) | SyncState::AwaitingWithBuffer(p, _) => p.seq,
        };
        Self {
            revision,
            state,
            next_seq: next_seq.max(in_flight + 1),
        }
    }

    /// The seq the next edit sent will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The last revision the client has seen.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The ack cycle's state.
    pub fn state(&self) -> &SyncState {
        &self.state
    }

    /// True when every local edit has been acknowledged.
    pub fn is_synchronized(&self) -> bool {
        self.state == SyncState::Synchronized
    }

    /// All unacknowledged local edits as one operation on the server's
    /// document at [`revision`](Self::revision), if any.
    pub fn unacknowledged(&self) -> Option<Operation> {
        match &self.state {
            SyncState::Synchronized => None,
            SyncState::AwaitingAck(p) => Some(p.operation.clone()),
            SyncState::AwaitingWithBuffer(p, buffer) => p.operation.compose(buffer).ok(),
        }
    }

    fn send(&mut self, operation: Operation) -> ClientMessage {
        let seq = self.next_seq;
        self.next_seq += 1;
        let msg = ClientMessage::CodeUpdate {
            revision: self.revision,
            seq,
            operation: operation.clone(),
            doc: None,
        };
        self.state = SyncState::AwaitingAck(Pending { seq, operation });
        msg
    }

    /// Records a local edit (already applied to the local document). Returns
    /// the message to send now, or `None` when it was buffered behind the
    /// operation in flight.
    pub fn apply_local(&mut self, op: Operation) -> Result<Option<ClientMessage>, SyncError> {
        if op.is_noop() {
            return Ok(None);
        }
        match &mut self.state {
            SyncState::Synchronized => return Ok(Some(self.send(op))),
            SyncState::AwaitingAck(p) => {
                let p = p.clone();
                self.state = SyncState::AwaitingWithBuffer(p, op);
            }
            SyncState::AwaitingWithBuffer(_, buffer) => *buffer = buffer.compose(&op)?,
        }
        Ok(None)
    }

    /// Takes someone else's operation that produced `revision`; returns the
    /// operation to apply to the local document.
    pub fn apply_remote(&mut self, revision: u64, op: &Operation) -> Result<Operation, SyncError> {
        if revision != self.revision + 1 {
            return Err(SyncError::RevisionGap {
                expected: self.revision + 1,
                got: revision,
            });
        }
        let local = match &mut self.state {
            SyncState::Synchronized => op.clone(),
            SyncState::AwaitingAck(p) => {
                // The pending op is the left argument: it is committed later.
                let (pending, remote) = Operation::transform(&p.operation, op)?;
                p.operation = pending;
                remote
            }
            SyncState::AwaitingWithBuffer(p, buffer) => {
                let (pending, remote) = Operation::transform(&p.operation, op)?;
                let (buffered, remote) = Operation::transform(buffer, &remote)?;
                p.operation = pending;
                *buffer = buffered;
                remote
            }
        };
        self.revision = revision;
        Ok(local)
    }

    /// Takes an ack. Returns the buffered operation's message when it is now
    /// due. A repeated ack for a revision already seen is ignored.
    pub fn ack(&mut self, revision: u64, seq: u64) -> Result<Option<ClientMessage>, SyncError> {
        if revision <= self.revision {
            return Ok(None);
        }
        let in_flight = match &self.state {
            SyncState::Synchronized => None,
            SyncState::AwaitingAck(p) | SyncState::AwaitingWithBuffer(p, _) => Some(p.seq),
        };
        if in_flight != Some(seq) {
            return Err(SyncError::UnexpectedAck {
                expected: in_flight,
                got: seq,
            });
        }
        if revision != self.revision + 1 {
            return Err(SyncError::RevisionGap {
                expected: self.revision + 1,
                got: revision,
            });
        }
        self.revision = revision;
        match std::mem::replace(&mut self.state, SyncState::Synchronized) {
            SyncState::AwaitingWithBuffer(_, buffer) => Ok(Some(self.send(buffer))),
            _ => Ok(None),
        }
    }

    /// The outstanding operation again, with its original seq, for a new
    /// connection: the server applies it at most once.
    pub fn resend(&self) -> Option<ClientMessage> {
        match &self.state {
            SyncState::Synchronized => None,
            SyncState::AwaitingAck(p) | SyncState::AwaitingWithBuffer(p, _) => {
                Some(ClientMessage::CodeUpdate {
                    revision: self.revision,
                    seq: p.seq,
                    operation: p.operation.clone(),
                    doc: None,
                })
            }
        }
    }

    /// Catches up after a reconnect made with `since = self.revision()`:
    /// `missed` is `init.missed`. Operations the server committed for this
    /// client (they carry its seq) count as acks; the others are transformed
    /// like any remote operation. Whatever is still unacknowledged is resent.
    pub fn resync(&mut self, missed: &[CommittedOp]) -> Result<Resync, SyncError> {
        let mut out = Resync::default();
        for entry in missed {
            let in_flight = match &self.state {
                SyncState::AwaitingAck(p) | SyncState::AwaitingWithBuffer(p, _) => Some(p.seq),
                SyncState::Synchronized => None,
            };
            if entry.seq.is_some() && entry.seq == in_flight {
                // The buffer becomes due only now; its message goes out after
                // the replay, based on the revision reached at that point.
                if let Some(msg) = self.ack(entry.revision, entry.seq.unwrap_or_default())? {
                    out.send.push(msg);
                }
            } else if entry.revision > self.revision {
                out.apply
                    .push(self.apply_remote(entry.revision, &entry.operation)?);
            }
        }
        // A message queued above was built at an older revision; rebuild it.
        out.send.clear();
        out.send.extend(self.resend());
        Ok(out)
    }

    /// Forgets everything unacknowledged and restarts at `revision`; for a
    /// reconnect where the server no longer holds the history needed to
    /// rebase. Returns what was dropped so the caller can save it.
    pub fn reset(&mut self, revision: u64) -> Option<Operation> {
        let dropped = self.unacknowledged();
        self.revision = revision;
        self.state = SyncState::Synchronized;
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::ServerMessage;
    use crate::replica::Replica;

    fn op(json: &str) -> Operation {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn buffers_behind_the_operation_in_flight() {
        let mut c = Replica::new(0, "ab");
        let first = c.edit(op(r#"["x", 2]"#)).unwrap();
        assert!(matches!(
            first,
            Some(ClientMessage::CodeUpdate {
                revision: 0,
                seq: 1,
                ..
            })
        ));
        assert_eq!(c.edit(op(r#"[3, "y"]"#)).unwrap(), None);
        // A remote edit arrives before our ack.
        let remote = ServerMessage::CodeUpdate(CommittedOp {
            revision: 1,
            operation: op(r#"[1, "Z", 1]"#),
            user_id: "other".into(),
            seq: None,
            doc: None,
        });
        assert_eq!(c.handle(&remote).unwrap(), None);
        assert_eq!(c.text(), "xaZby");
        let next = c
            .handle(&ServerMessage::Ack {
                revision: 2,
                seq: 1,
                doc: None,
            })
            .unwrap();
        match next {
            Some(ClientMessage::CodeUpdate {
                revision,
                seq,
                operation,
                ..
            }) => {
                assert_eq!((revision, seq), (2, 2));
                assert_eq!(operation, op(r#"[4, "y"]"#));
            }
            other => panic!("expected the buffer to be sent, got {other:?}"),
        }
        assert!(c.sync.ack(1, 1).unwrap().is_none(), "old acks are ignored");
    }

    #[test]
    fn resync_treats_own_missed_ops_as_acks() {
        let mut c = Replica::new(5, "abc");
        c.edit(op(r#"[3, "!"]"#)).unwrap();
        c.edit(op(r#"["<", 4]"#)).unwrap();
        let missed = vec![
            CommittedOp {
                revision: 6,
                operation: op(r#"[1, -1, 1]"#),
                user_id: "other".into(),
                seq: None,
                doc: None,
            },
            CommittedOp {
                revision: 7,
                operation: op(r#"[2, "!"]"#),
                user_id: "me".into(),
                seq: Some(1),
                doc: None,
            },
        ];
        let r = c.sync.resync(&missed).unwrap();
        assert_eq!(r.apply.len(), 1);
        for o in &r.apply {
            o.apply(&mut c.doc).unwrap();
        }
        assert_eq!(c.text(), "<ac!");
        assert_eq!(
            r.send,
            vec![ClientMessage::CodeUpdate {
                revision: 7,
                seq: 2,
                operation: op(r#"["<", 3]"#),
                doc: None
            }]
        );
    }
}
