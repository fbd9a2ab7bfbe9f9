//! A complete client replica: a document plus its [`ClientSync`], and what
//! to do with each message that changes it: local edits, remote operations,
//! acks, and the `init` of a reconnect (rebase what is unacknowledged over
//! `missed`, or, when that cannot be done, take the server's document and
//! hand back what was lost). The terminal editor, the script commands, the
//! test bots and the benchmark all drive this one replica, so the reconnect
//! logic is written, and tested, once.

use ropey::Rope;

use crate::client::{ClientSync, Pending, SyncError, SyncState};
use crate::messages::{ClientMessage, CommittedOp, ServerMessage};
use crate::operation::{Component, Operation};

/// What the `init` of a reconnect did to the replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reconnected {
    /// `missed` was replayed: `applied` were applied to the document, in
    /// order; `send` must go out now (the resent unacknowledged edit).
    Rebased {
        /// Transformed remote operations, already applied to the document.
        applied: Vec<Operation>,
        /// Messages to send on the new connection.
        send: Vec<ClientMessage>,
    },
    /// The replica could not rebase (no `missed`, or one that does not fit):
    /// the document is now the room's code. `lost` is the local text as it
    /// was, when it held edits the server never acknowledged (the caller
    /// keeps it for the user).
    Replaced {
        /// The local document before it was replaced, if it had unsent edits.
        lost: Option<String>,
    },
}

/// Everything needed to pick up unacknowledged edits in another process
/// (what a client's journal keeps).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unacknowledged {
    /// The server revision the edits are based on (`since` when resuming).
    pub revision: u64,
    /// The seq the next edit would be sent with.
    pub next_seq: u64,
    /// The edit in flight, with its seq.
    pub in_flight: Pending,
    /// Edits made after it, composed, not yet sent.
    pub buffer: Option<Operation>,
    /// The local document: the server's at `revision` plus the edits (a
    /// rope: taking it costs nothing).
    pub text: Rope,
}

/// A document kept in step with the server.
#[derive(Clone, Debug)]
pub struct Replica {
    /// The local document: the server's plus the unacknowledged edits.
    pub doc: Rope,
    /// Its synchronization state.
    pub sync: ClientSync,
}

impl Replica {
    /// A replica from an `init` message's revision and code.
    pub fn new(revision: u64, code: &str) -> Self {
        Self {
            doc: Rope::from_str(code),
            sync: ClientSync::new(revision),
        }
    }

    /// A replica of a document this client edited before (it closed and
    /// opens it again, or rejoined without history): its seqs in a
    /// document only grow, so it numbers its next edit `next_seq`.
    pub fn continuing(revision: u64, code: &str, next_seq: u64) -> Self {
        Self {
            doc: Rope::from_str(code),
            sync: ClientSync::resume(revision, SyncState::Synchronized, next_seq),
        }
    }

    /// A replica picking up edits an earlier process left unacknowledged:
    /// reconnecting with `since = saved.revision` and the same `client_id`
    /// rebases and resends them.
    pub fn resume(saved: &Unacknowledged) -> Self {
        let state = match &saved.buffer {
            Some(b) => SyncState::AwaitingWithBuffer(saved.in_flight.clone(), b.clone()),
            None => SyncState::AwaitingAck(saved.in_flight.clone()),
        };
        Self {
            doc: saved.text.clone(),
            sync: ClientSync::resume(saved.revision, state, saved.next_seq),
        }
    }

    /// What a journal must keep, when edits are unacknowledged.
    pub fn unacknowledged(&self) -> Option<Unacknowledged> {
        let (in_flight, buffer) = match self.sync.state() {
            SyncState::Synchronized => return None,
            SyncState::AwaitingAck(p) => (p.clone(), None),
            SyncState::AwaitingWithBuffer(p, b) => (p.clone(), Some(b.clone())),
        };
        Some(Unacknowledged {
            revision: self.sync.revision(),
            next_seq: self.sync.next_seq(),
            in_flight,
            buffer,
            text: self.doc.clone(),
        })
    }

    /// The `init` of a new connection made with `since = sync.revision()`.
    pub fn reconnected(
        &mut self,
        revision: u64,
        code: &str,
        missed: Option<&[CommittedOp]>,
    ) -> Reconnected {
        if let Some(missed) = missed {
            // Work on copies so a failed rebase leaves nothing half-applied.
            let mut sync = self.sync.clone();
            let mut doc = self.doc.clone();
            if let Ok(resync) = sync.resync(missed) {
                let applied_ok = resync.apply.iter().all(|op| op.apply(&mut doc).is_ok());
                if applied_ok && sync.revision() == revision {
                    self.sync = sync;
                    self.doc = doc;
                    return Reconnected::Rebased {
                        applied: resync.apply,
                        send: resync.send,
                    };
                }
            }
        }
        let lost = (!self.sync.is_synchronized()).then(|| self.doc.to_string());
        self.sync.reset(revision);
        self.doc = Rope::from_str(code);
        Reconnected::Replaced { lost }
    }

    /// Applies a local edit; returns the message to send, if any.
    pub fn edit(&mut self, op: Operation) -> Result<Option<ClientMessage>, SyncError> {
        op.apply(&mut self.doc)?;
        self.sync.apply_local(op)
    }

    /// Applies someone else's operation that produced `revision`; returns it
    /// as applied to the local document. When it does not fit, nothing
    /// changes.
    pub fn remote(&mut self, revision: u64, op: &Operation) -> Result<Operation, SyncError> {
        let mut sync = self.sync.clone();
        let local = sync.apply_remote(revision, op)?;
        local.apply(&mut self.doc)?;
        self.sync = sync;
        Ok(local)
    }

    /// Takes an ack; returns the buffered edit's message when now due.
    pub fn ack(&mut self, revision: u64, seq: u64) -> Result<Option<ClientMessage>, SyncError> {
        self.sync.ack(revision, seq)
    }

    /// Handles a server message; returns a message to send, if any.
    /// Messages that do not concern the document are ignored.
    pub fn handle(&mut self, msg: &ServerMessage) -> Result<Option<ClientMessage>, SyncError> {
        match msg {
            ServerMessage::CodeUpdate(c) => self.remote(c.revision, &c.operation).map(|_| None),
            ServerMessage::Ack { revision, seq, .. } => self.ack(*revision, *seq),
            _ => Ok(None),
        }
    }

    /// The document as a string.
    pub fn text(&self) -> String {
        self.doc.to_string()
    }

    /// Where the server's offset `pos` at `revision` is in the local
    /// document, or `None` when `revision` is not the one the replica is
    /// at. The local document is the server's plus the unacknowledged
    /// edits, so the offset is carried through them.
    pub fn from_server_offset(&self, revision: u64, pos: u64) -> Option<usize> {
        if revision != self.sync.revision() {
            return None;
        }
        let pos = usize::try_from(pos).unwrap_or(usize::MAX);
        let local = match self.sync.unacknowledged() {
            Some(op) => op.transform_index(pos.min(op.base_len())),
            None => pos,
        };
        Some(local.min(self.doc.len_chars()))
    }

    /// The local offset `pos` as an offset of the server's document at
    /// the replica's revision: the unacknowledged edits are walked backwards
    /// (text they inserted maps to where it was inserted).
    pub fn to_server_offset(&self, pos: usize) -> usize {
        match self.sync.unacknowledged() {
            Some(op) => map_back(&op, pos),
            None => pos,
        }
    }
}

/// The base-document offset of target offset `pos` of `op`: the inverse of
/// [`Operation::transform_index`] as far as one exists (an offset inside
/// inserted text maps to the insertion point).
pub fn map_back(op: &Operation, pos: usize) -> usize {
    let mut base = 0;
    let mut target = 0;
    for c in op.components() {
        match c {
            Component::Retain(n) => {
                if pos < target + n {
                    return base + (pos - target);
                }
                base += n;
                target += n;
            }
            Component::Insert(s) => {
                let n = s.chars().count();
                if pos < target + n {
                    return base;
                }
                target += n;
            }
            Component::Delete(n) => base += n,
        }
    }
    base.min(op.base_len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(json: &str) -> Operation {
        serde_json::from_str(json).unwrap()
    }

    fn committed(revision: u64, json: &str, seq: Option<u64>) -> CommittedOp {
        CommittedOp {
            revision,
            operation: op(json),
            user_id: if seq.is_some() { "me" } else { "other" }.into(),
            seq,
            doc: None,
        }
    }

    #[test]
    fn reconnect_with_missed_rebases_offline_edits() {
        let mut d = Replica::new(3, "abc");
        // Typed while the connection was dying: in flight, then buffered.
        assert!(d.edit(op(r#"[3, "1"]"#)).unwrap().is_some());
        assert!(d.edit(op(r#"[4, "2"]"#)).unwrap().is_none());
        // The first edit was committed (its ack lost), someone else edited too.
        let missed = [
            committed(4, r#"["X", 3]"#, None),
            committed(5, r#"[4, "1"]"#, Some(1)),
        ];
        let out = d.reconnected(5, "Xabc1", Some(&missed));
        let Reconnected::Rebased { applied, send } = out else {
            panic!("expected a rebase, got {out:?}");
        };
        assert_eq!(applied.len(), 1);
        assert_eq!(d.text(), "Xabc12");
        assert_eq!(
            send,
            vec![ClientMessage::CodeUpdate {
                revision: 5,
                seq: 2,
                operation: op(r#"[5, "2"]"#),
                doc: None
            }]
        );
    }

    #[test]
    fn reconnect_without_history_reports_unsent_text() {
        let mut d = Replica::new(0, "abc");
        d.edit(op(r#"[3, "!"]"#)).unwrap();
        let out = d.reconnected(9, "zzz", None);
        assert_eq!(
            out,
            Reconnected::Replaced {
                lost: Some("abc!".into())
            }
        );
        assert_eq!(d.text(), "zzz");
        assert!(d.sync.is_synchronized());
        // Nothing unsent: nothing to save.
        assert_eq!(
            d.reconnected(10, "zz", None),
            Reconnected::Replaced { lost: None }
        );
    }

    #[test]
    fn a_bad_missed_list_falls_back_to_replacing() {
        let mut d = Replica::new(0, "abc");
        d.edit(op(r#"[3, "!"]"#)).unwrap();
        // An operation that does not fit the document.
        let missed = [committed(1, r#"[10, "x"]"#, None)];
        let out = d.reconnected(1, "abcx", Some(&missed));
        assert!(matches!(out, Reconnected::Replaced { lost: Some(_) }));
        assert_eq!(d.text(), "abcx");
    }

    #[test]
    fn a_resumed_replica_rebases_and_resends_with_the_original_seqs() {
        // Typed "1" (in flight, seq 1) and "2" (buffered), then the process died.
        let mut d = Replica::new(3, "abc");
        d.edit(op(r#"[3, "1"]"#)).unwrap();
        d.edit(op(r#"[4, "2"]"#)).unwrap();
        let saved = d.unacknowledged().expect("unacknowledged edits");
        assert_eq!((saved.revision, saved.in_flight.seq), (3, 1));
        assert_eq!(saved.text.to_string(), "abc12");

        // A new process: "1" was committed meanwhile, and someone added "X".
        let mut resumed = Replica::resume(&saved);
        assert!(!resumed.sync.is_synchronized());
        let missed = [
            committed(4, r#"["X", 3]"#, None),
            committed(5, r#"[4, "1"]"#, Some(1)),
        ];
        let out = resumed.reconnected(5, "Xabc1", Some(&missed));
        assert_eq!(resumed.text(), "Xabc12");
        let Reconnected::Rebased { send, .. } = out else {
            panic!("expected a rebase, got {out:?}");
        };
        // "2" goes out as seq 2, the seq it would have had.
        assert_eq!(
            send,
            vec![ClientMessage::CodeUpdate {
                revision: 5,
                seq: 2,
                operation: op(r#"[5, "2"]"#),
                doc: None
            }]
        );
        assert_eq!(Replica::new(0, "").unacknowledged(), None);
    }

    #[test]
    fn offsets_cross_the_unacknowledged_edits_both_ways() {
        let mut d = Replica::new(2, "hello world");
        d.edit(op(r#"["> ", 11]"#)).unwrap();
        // Server offset 6 ("w") is local offset 8.
        assert_eq!(d.from_server_offset(2, 6), Some(8));
        assert_eq!(d.from_server_offset(1, 6), None, "stale revision");
        assert_eq!(d.to_server_offset(8), 6);
        // Inside our own unsent text: where it was inserted.
        assert_eq!(d.to_server_offset(1), 0);
        assert_eq!(map_back(&op(r#"[2, -3, 4]"#), 2), 5);
        assert_eq!(map_back(&op(r#"[2, -3, 4]"#), 3), 6);
    }

    #[test]
    fn a_remote_op_that_does_not_fit_changes_nothing() {
        let mut d = Replica::new(0, "abc");
        assert!(d.remote(1, &op(r#"[9, "x"]"#)).is_err());
        assert_eq!(d.sync.revision(), 0);
        assert_eq!(d.text(), "abc");
        assert!(d.remote(5, &op(r#"[3, "x"]"#)).is_err());
        assert_eq!(d.remote(1, &op(r#"[3, "x"]"#)).unwrap(), op(r#"[3, "x"]"#));
    }
}
