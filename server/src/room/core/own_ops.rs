//! Which of a client's committed operations its connection hears as an
//! `ack` rather than as a `code_update`.
//!
//! The connection that sent an edit gets its ack. But a client's edit may
//! also be committed on behalf of another connection of the same
//! `client_id`: one it replaced whose copy was already queued, or one on
//! another instance. The client's live connection must then hear it as an
//! `ack` if the client still holds that edit (it resends it after a
//! reconnect with `since`), and as a `code_update` if it dropped it (a
//! reconnect without history takes the server's document and keeps the
//! unacknowledged text aside). A client never receives an operation it
//! still holds as someone else's: it would apply its own insert twice and
//! then wait forever for an ack that was already spent.

/// The seqs of its own client for which a connection takes acks: every seq
/// from `from` on; and the revision its stream of the document starts
/// after (its `init` or `opened`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OwnOps {
    from: u64,
    start: u64,
}

impl OwnOps {
    /// A connection that joined at `start` with `since` and got `missed`:
    /// the client keeps every edit the server has not acknowledged and
    /// resends it, so each of its edits committed from now on is an ack.
    pub(crate) fn rebasing(start: u64) -> Self {
        Self { from: 0, start }
    }

    /// A connection that joined at `start` without history (no `since`, or
    /// the history was gone): the client dropped whatever was
    /// unacknowledged, so only what it sends on this connection is
    /// acknowledged here.
    pub(crate) fn fresh(start: u64) -> Self {
        Self {
            from: u64::MAX,
            start,
        }
    }

    /// True when the connection was already sent a message for `revision`
    /// (an `ack` or a `code_update`): it came after the stream's start.
    /// A resend of the edit committed there is then not acknowledged
    /// again, or the connection would hear of one revision twice.
    pub(crate) fn heard(&self, revision: u64) -> bool {
        revision > self.start
    }

    /// The client sent edit `seq` on this connection (seqs only grow).
    pub(crate) fn sent(&mut self, seq: u64) {
        self.from = self.from.min(seq);
    }

    /// True when the client's committed edit `seq` is acknowledged to
    /// this connection rather than sent as someone else's operation.
    pub(crate) fn is_ack(&self, seq: u64) -> bool {
        seq >= self.from
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebasing_connection_takes_every_later_commit_as_an_ack() {
        let own = OwnOps::rebasing(3);
        assert!(own.is_ack(1) && own.is_ack(7));
        assert!(!own.heard(3) && own.heard(4));
    }

    #[test]
    fn a_fresh_connection_takes_acks_only_from_its_first_edit_on() {
        let mut own = OwnOps::fresh(0);
        assert!(!own.is_ack(3), "dropped before this connection: an update");
        own.sent(5);
        assert!(!own.is_ack(4));
        assert!(own.is_ack(5) && own.is_ack(6));
        own.sent(9);
        assert!(own.is_ack(5), "a later edit does not move the start");
    }
}
