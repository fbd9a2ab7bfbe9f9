//! The local replica of a room's document: the rope plus the protocol's
//! [`ClientSync`], and what to do with each `init` (first connection,
//! reconnection that can rebase, reconnection that cannot). Both the editor
//! and the script commands (`append`) drive this, so the reconnect logic is
//! written, and tested, once.

use collab_protocol::{
    ClientMessage, ClientSync, CommittedOp, Operation, Pending, SyncError, SyncState,
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

/// Everything needed to pick up unacknowledged edits in another process:
/// what the journal keeps.
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
    /// rope: taking it costs nothing, writing it out happens elsewhere).
    pub text: Rope,
}

/// A document kept in step with the server.
#[derive(Clone, Debug, Default)]
pub struct SyncedDoc {
    rope: Rope,
    sync: Option<ClientSync>,
}

impl SyncedDoc {
    /// An empty document that has not received `init` yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The local text.
    pub fn rope(&self) -> &Rope {
        &self.rope
    }

    /// A replica resumed from a journal: ready to edit before any `init`,
    /// and the first `init` (asked for with `since`) rebases the edits.
    pub fn resume(saved: &Unacknowledged) -> Self {
        let state = match &saved.buffer {
            Some(b) => SyncState::AwaitingWithBuffer(saved.in_flight.clone(), b.clone()),
            None => SyncState::AwaitingAck(saved.in_flight.clone()),
        };
        Self {
            rope: saved.text.clone(),
            sync: Some(ClientSync::resume(saved.revision, state, saved.next_seq)),
        }
    }

    /// What a journal must keep, when edits are unacknowledged.
    pub fn unacknowledged(&self) -> Option<Unacknowledged> {
        let sync = self.sync.as_ref()?;
        let (in_flight, buffer) = match sync.state() {
            SyncState::Synchronized => return None,
            SyncState::AwaitingAck(p) => (p.clone(), None),
            SyncState::AwaitingWithBuffer(p, b) => (p.clone(), Some(b.clone())),
        };
        Some(Unacknowledged {
            revision: sync.revision(),
            next_seq: sync.next_seq(),
            in_flight,
            buffer,
            text: self.rope.clone(),
        })
    }

    /// True once the first `init` arrived.
    pub fn is_ready(&self) -> bool {
        self.sync.is_some()
    }

    /// The sync state machine, once ready.
    pub fn sync(&self) -> Option<&ClientSync> {
        self.sync.as_ref()
    }

    /// The last server revision seen.
    pub fn revision(&self) -> Option<u64> {
        self.sync.as_ref().map(ClientSync::revision)
    }

    /// True when every local edit was acknowledged.
    pub fn is_synchronized(&self) -> bool {
        self.sync.as_ref().is_none_or(ClientSync::is_synchronized)
    }

    /// Handles an `init`.
    pub fn on_init(
        &mut self,
        revision: u64,
        code: &str,
        missed: Option<&[CommittedOp]>,
    ) -> InitOutcome {
        let Some(sync) = &mut self.sync else {
            self.rope = Rope::from_str(code);
            self.sync = Some(ClientSync::new(revision));
            return InitOutcome::Fresh;
        };
        if let Some(missed) = missed {
            // Work on copies so a failed rebase leaves nothing half-applied.
            let mut trial_sync = sync.clone();
            let mut trial_rope = self.rope.clone();
            if let Ok(resync) = trial_sync.resync(missed) {
                let applied_ok = resync
                    .apply
                    .iter()
                    .all(|op| op.apply(&mut trial_rope).is_ok());
                if applied_ok && trial_sync.revision() == revision {
                    *sync = trial_sync;
                    self.rope = trial_rope;
                    return InitOutcome::Rebased {
                        applied: resync.apply,
                        send: resync.send,
                    };
                }
            }
        }
        let lost = (!sync.is_synchronized()).then(|| self.rope.to_string());
        sync.reset(revision);
        self.rope = Rope::from_str(code);
        InitOutcome::Replaced { lost }
    }

    /// Applies a local edit; returns the message to send now, if any.
    pub fn local(&mut self, op: &Operation) -> Result<Option<ClientMessage>, SyncError> {
        let Some(sync) = &mut self.sync else {
            return Ok(None);
        };
        op.apply(&mut self.rope)?;
        sync.apply_local(op.clone())
    }

    /// Applies someone else's operation that produced `revision`; returns it
    /// as applied to the local document.
    pub fn remote(&mut self, revision: u64, op: &Operation) -> Result<Operation, SyncError> {
        let Some(sync) = &mut self.sync else {
            return Err(SyncError::RevisionGap {
                expected: 0,
                got: revision,
            });
        };
        // Transform on a copy: if the result does not fit, nothing changes.
        let mut next = sync.clone();
        let local = next.apply_remote(revision, op)?;
        local.apply(&mut self.rope)?;
        *sync = next;
        Ok(local)
    }

    /// Takes an ack; returns the buffered edit's message when now due.
    pub fn ack(&mut self, revision: u64, seq: u64) -> Result<Option<ClientMessage>, SyncError> {
        match &mut self.sync {
            Some(sync) => sync.ack(revision, seq),
            None => Ok(None),
        }
    }

    /// Where the server's offset `pos` at revision `revision` is in the local
    /// document, or `None` when `revision` is not the one the client is at.
    /// The local document is the server's plus the unacknowledged edits, so
    /// the offset is carried through them.
    pub fn from_server_offset(&self, revision: u64, pos: u64) -> Option<usize> {
        let sync = self.sync.as_ref()?;
        if revision != sync.revision() {
            return None;
        }
        let pos = usize::try_from(pos).unwrap_or(usize::MAX);
        let local = match sync.unacknowledged() {
            Some(op) => op.transform_index(pos.min(op.base_len())),
            None => pos,
        };
        Some(local.min(self.rope.len_chars()))
    }

    /// The local offset `pos` as an offset of the server's document at
    /// [`revision`](Self::revision): the unacknowledged edits are walked
    /// backwards (text they inserted maps to where it was inserted).
    pub fn to_server_offset(&self, pos: usize) -> usize {
        match self.sync.as_ref().and_then(ClientSync::unacknowledged) {
            Some(op) => map_back(&op, pos),
            None => pos,
        }
    }
}

/// The base-document offset of target offset `pos` of `op`: the inverse of
/// [`Operation::transform_index`] as far as one exists (an offset inside
/// inserted text maps to the insertion point).
pub fn map_back(op: &Operation, pos: usize) -> usize {
    use collab_protocol::Component;
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
        }
    }

    #[test]
    fn reconnect_with_missed_rebases_offline_edits() {
        let mut d = SyncedDoc::new();
        assert_eq!(d.on_init(3, "abc", None), InitOutcome::Fresh);
        // Typed while the connection was dying: in flight, then buffered.
        assert!(d.local(&op(r#"[3, "1"]"#)).unwrap().is_some());
        assert!(d.local(&op(r#"[4, "2"]"#)).unwrap().is_none());
        // The first edit was committed (its ack lost), someone else edited too.
        let missed = [
            committed(4, r#"["X", 3]"#, None),
            committed(5, r#"[4, "1"]"#, Some(1)),
        ];
        let out = d.on_init(5, "Xabc1", Some(&missed));
        let InitOutcome::Rebased { applied, send } = out else {
            panic!("expected a rebase, got {out:?}");
        };
        assert_eq!(applied.len(), 1);
        assert_eq!(d.rope().to_string(), "Xabc12");
        assert_eq!(
            send,
            vec![ClientMessage::CodeUpdate {
                revision: 5,
                seq: 2,
                operation: op(r#"[5, "2"]"#)
            }]
        );
    }

    #[test]
    fn reconnect_without_history_reports_unsent_text() {
        let mut d = SyncedDoc::new();
        d.on_init(0, "abc", None);
        d.local(&op(r#"[3, "!"]"#)).unwrap();
        let out = d.on_init(9, "zzz", None);
        assert_eq!(
            out,
            InitOutcome::Replaced {
                lost: Some("abc!".into())
            }
        );
        assert_eq!(d.rope().to_string(), "zzz");
        assert!(d.is_synchronized());
        // Nothing unsent: nothing to save.
        assert_eq!(
            d.on_init(10, "zz", None),
            InitOutcome::Replaced { lost: None }
        );
    }

    #[test]
    fn a_bad_missed_list_falls_back_to_replacing() {
        let mut d = SyncedDoc::new();
        d.on_init(0, "abc", None);
        d.local(&op(r#"[3, "!"]"#)).unwrap();
        // An operation that does not fit the document.
        let missed = [committed(1, r#"[10, "x"]"#, None)];
        let out = d.on_init(1, "abcx", Some(&missed));
        assert!(matches!(out, InitOutcome::Replaced { lost: Some(_) }));
        assert_eq!(d.rope().to_string(), "abcx");
    }

    #[test]
    fn offsets_cross_the_unacknowledged_edits_both_ways() {
        let mut d = SyncedDoc::new();
        d.on_init(2, "hello world", None);
        d.local(&op(r#"["> ", 11]"#)).unwrap();
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
    fn a_resumed_replica_rebases_and_resends_with_the_original_seqs() {
        // Typed "1" (in flight, seq 1) and "2" (buffered), then the process died.
        let mut d = SyncedDoc::new();
        d.on_init(3, "abc", None);
        d.local(&op(r#"[3, "1"]"#)).unwrap();
        d.local(&op(r#"[4, "2"]"#)).unwrap();
        let saved = d.unacknowledged().expect("unacknowledged edits");
        assert_eq!((saved.revision, saved.in_flight.seq), (3, 1));
        assert_eq!(saved.text.to_string(), "abc12");

        // A new process: "1" was committed meanwhile, and someone added "X".
        let mut resumed = SyncedDoc::resume(&saved);
        assert!(resumed.is_ready() && !resumed.is_synchronized());
        let missed = [
            committed(4, r#"["X", 3]"#, None),
            committed(5, r#"[4, "1"]"#, Some(1)),
        ];
        let out = resumed.on_init(5, "Xabc1", Some(&missed));
        assert!(matches!(out, InitOutcome::Rebased { .. }), "{out:?}");
        assert_eq!(resumed.rope().to_string(), "Xabc12");
        let InitOutcome::Rebased { send, .. } = out else {
            unreachable!()
        };
        // "2" goes out as seq 2, the seq it would have had.
        assert_eq!(
            send,
            vec![ClientMessage::CodeUpdate {
                revision: 5,
                seq: 2,
                operation: op(r#"[5, "2"]"#)
            }]
        );
        assert_eq!(SyncedDoc::new().unacknowledged(), None);
    }

    #[test]
    fn a_remote_op_that_does_not_fit_changes_nothing() {
        let mut d = SyncedDoc::new();
        d.on_init(0, "abc", None);
        assert!(d.remote(1, &op(r#"[9, "x"]"#)).is_err());
        assert_eq!(d.revision(), Some(0));
        assert_eq!(d.rope().to_string(), "abc");
        assert!(d.remote(5, &op(r#"[3, "x"]"#)).is_err());
        assert_eq!(d.remote(1, &op(r#"[3, "x"]"#)).unwrap(), op(r#"[3, "x"]"#));
    }
}
