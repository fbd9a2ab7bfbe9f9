//! Per-client records a room keeps: the de-duplication record (the seq and
//! revision of a client's last commit to a document, so a resend is
//! acknowledged instead of applied again; one per document) and the
//! identity (a stable user id and color; one per room).
//!
//! Both used to grow by one entry per `client_id` for the room's whole life,
//! and every run of the terminal editor is a new `client_id`. A
//! de-duplication record is only consulted for a resend, and a client only
//! resends an edit committed after the revision it reconnected at, which
//! must be inside the kept history; so the record goes when its commit
//! leaves the history. An identity goes when its client is neither present
//! nor has a commit in the history (a client that returns after that is
//! greeted as new: another user id, maybe another color).

use std::collections::HashMap;
use std::sync::Arc;

/// client id -> (seq, revision) of its last commit.
pub(crate) type Dedup = HashMap<Arc<str>, (u64, u64)>;
/// client id -> (user id, color).
pub(crate) type Identities = HashMap<Arc<str>, (Arc<str>, String)>;

/// The commit of `client` at `revision` left the kept history: forget the
/// client's record if that was its last commit.
pub(crate) fn commit_left_history(dedup: &mut Dedup, client: &str, revision: u64) {
    if dedup.get(client).is_some_and(|&(_, last)| last <= revision) {
        dedup.remove(client);
    }
}

/// Forgets the identities of clients without a de-duplication record (in
/// any document: `committed`) whose user is not `present`.
pub(crate) fn expire_identities(
    identities: &mut Identities,
    committed: impl Fn(&str) -> bool,
    present: impl Fn(&str) -> bool,
) {
    identities.retain(|client, (user, _)| committed(client) || present(user));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_goes_with_its_clients_last_commit() {
        let mut dedup = Dedup::new();
        dedup.insert("a".into(), (3, 7));
        commit_left_history(&mut dedup, "a", 5);
        assert!(dedup.contains_key("a"), "a later commit is still kept");
        commit_left_history(&mut dedup, "a", 7);
        assert!(!dedup.contains_key("a"));
        commit_left_history(&mut dedup, "nobody", 9);
    }

    #[test]
    fn identities_stay_while_present_or_committed() {
        let mut dedup = Dedup::new();
        dedup.insert("typist".into(), (1, 9));
        let mut ids = Identities::new();
        for (client, user) in [("typist", "u1"), ("viewer", "u2"), ("gone", "u3")] {
            ids.insert(client.into(), (user.into(), "#ffffff".into()));
        }
        expire_identities(&mut ids, |c| dedup.contains_key(c), |user| user == "u2");
        let mut left: Vec<&str> = ids.keys().map(|k| &**k).collect();
        left.sort();
        assert_eq!(left, ["typist", "viewer"]);
    }
}
