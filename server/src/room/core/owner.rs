//! What the room's owner can do to a live room: end it (everyone is closed
//! with 4007 and the room stops writing to the store) and remove a
//! participant (their connections are closed with 4006 and their client
//! ids refused from then on, on every instance: the store tells them all).

use collab_protocol::{close_code, error_code, ServerMessage};

use super::doc::DocId;
use super::tree::Refusal;
use super::{Action, ConnId, ConnSink, Publish, RoomCore, Stop};

/// A control the owner's connection asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnerAct {
    /// Read-only for everyone but the owner, or editable again.
    ReadOnly(bool),
    /// Remove this user.
    Remove(String),
    /// End the room.
    End,
    /// Replace the share links.
    Rotate,
}

impl<S: ConnSink> RoomCore<S> {
    /// A control from connection `conn_id`: refused (`not_owner`, the
    /// connection stays open) unless it holds the owner token; a removal
    /// of nobody present or known is refused with `user_not_found`.
    pub fn owner_act(&mut self, conn_id: ConnId, act: OwnerAct) {
        let Some(conn) = self.conns.get(&conn_id) else {
            return;
        };
        if !conn.owner {
            let message = "only the room's owner may do this (join with its owner token)";
            return self.refuse(
                conn_id,
                Refusal::plain(error_code::NOT_OWNER, message),
                None,
            );
        }
        if let OwnerAct::Remove(user_id) = &act {
            let known = self.users.contains_key(user_id.as_str())
                || self.remote.contains_key(user_id.as_str())
                || self
                    .identities
                    .values()
                    .any(|(u, _)| &**u == user_id.as_str());
            if !known || &*conn.user_id == user_id.as_str() {
                let message = "no one else by that user id is in this room";
                return self.refuse(
                    conn_id,
                    Refusal::plain(error_code::USER_NOT_FOUND, message),
                    None,
                );
            }
        }
        self.actions.push(Action::Owner(conn_id, act));
    }

    /// The store did not take an owner's control: nothing changed; the
    /// owner is told (the connection stays open).
    pub fn owner_failed(&mut self, conn_id: ConnId, e: &crate::store::StoreError) {
        let message =
            format!("the room's store did not take that ({e}); nothing changed, try again");
        let refusal = Refusal::plain(error_code::UNAVAILABLE, message);
        self.refuse(conn_id, refusal, None);
    }

    /// The client ids this room knows for `user_id`: its identities, and
    /// its connections here.
    pub fn client_ids_of(&self, user_id: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .identities
            .iter()
            .filter(|(_, (u, _))| &**u == user_id)
            .map(|(client, _)| client.to_string())
            .chain(
                self.conns
                    .values()
                    .filter(|c| &*c.user_id == user_id)
                    .map(|c| c.client_id.to_string()),
            )
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The owner ended the room.
    pub fn end(&mut self) {
        self.stop = Some(Stop::Ended);
    }

    /// The owner removed `user_id`: its connections here are closed and
    /// out of the room at once (nothing they sent after is applied), and
    /// its client ids (`client_ids`, those the room's identities know for
    /// it, and those of its connections here) are refused from now on.
    /// Returns every client id refused for it.
    pub fn remove_user(
        &mut self,
        user_id: &str,
        client_ids: Vec<String>,
        now: std::time::Instant,
    ) -> Vec<String> {
        let mut removed = client_ids;
        removed.extend(self.client_ids_of(user_id));
        let conns: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| &*c.user_id == user_id)
            .map(|(id, _)| *id)
            .collect();
        for conn_id in conns {
            if let Some(conn) = self.conns.get_mut(&conn_id) {
                conn.sink.fail(
                    error_code::REMOVED,
                    "the room's owner removed you from this room",
                    close_code::REMOVED,
                );
                conn.lagging = true;
            }
            self.leave(conn_id, now);
        }
        removed.sort();
        removed.dedup();
        self.banned.extend(removed.iter().cloned());
        removed
    }

    /// The owner switched the room to read-only for everyone else (or
    /// back): everyone is told.
    pub fn set_read_only(&mut self, read_only: bool) {
        if self.read_only == read_only {
            return;
        }
        self.read_only = read_only;
        self.fan_out(|_, _| true, |_| ServerMessage::Mode { read_only });
    }

    /// The owner replaced the room's links: every connection is told the id
    /// it joins by from now on (a viewer only its new read-only id).
    pub fn set_links(&mut self, link: String, viewer: String) {
        if self.link.as_deref() == Some(link.as_str()) {
            return;
        }
        self.link = Some(link.clone());
        self.viewer_id = Some(viewer.clone());
        self.publish(Publish::Aliases(Some(viewer.clone()), Some(link.clone())));
        // Who joined by the read-only id learns only its new one.
        let viewer_of = |c: &super::Conn<S>| c.role == collab_protocol::Role::Viewer;
        self.fan_out(
            |_, c| !viewer_of(c),
            |_| ServerMessage::Links {
                room_id: link.clone(),
                read_only_id: Some(viewer.clone()),
            },
        );
        self.fan_out(
            |_, c| viewer_of(c),
            |_| ServerMessage::Links {
                room_id: viewer.clone(),
                read_only_id: None,
            },
        );
    }

    /// While the room is read-only, refuses a change from a connection
    /// without the owner token (an edit's `seq` and document named; the
    /// connection stays open); true when it did.
    pub(super) fn refuse_read_only(
        &mut self,
        conn_id: ConnId,
        doc: Option<&DocId>,
        seq: Option<u64>,
    ) -> bool {
        let Some(conn) = self.conns.get(&conn_id) else {
            return true;
        };
        if !self.read_only || conn.owner {
            return false;
        }
        let refusal = Refusal {
            code: error_code::ROOM_READ_ONLY,
            message: "the room's owner made the room read-only; this change was not applied".into(),
            doc: doc.filter(|_| conn.project).map(|d| d.to_string()),
            path: None,
        };
        self.refuse(conn_id, refusal, seq);
        true
    }

    /// True when the owner removed this client.
    pub(super) fn is_banned(&self, client_id: &str) -> bool {
        self.banned.contains(client_id)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use collab_protocol::{close_code, error_code, ServerMessage};

    use super::super::tests::{commit_all, join, op, room};
    use super::super::{JoinError, JoinRequest, Stop};

    #[test]
    fn a_removed_user_is_closed_and_refused_when_it_comes_back() {
        let mut core = room("x", false);
        let (_, heard_a, init) = join(&mut core, "a", None);
        let (_, heard_b, _) = join(&mut core, "b", None);
        let collab_protocol::ServerMessage::Init { user_id, .. } = init else {
            unreachable!()
        };
        let removed = core.remove_user(&user_id, vec!["a-elsewhere".into()], Instant::now());
        assert_eq!(removed, ["a", "a-elsewhere"]);
        assert_eq!(
            heard_a.closed(),
            Some((close_code::REMOVED, error_code::REMOVED.into()))
        );
        assert_eq!(heard_b.closed(), None, "the others stay");
        let again = core.join(
            JoinRequest {
                client_id: "a".into(),
                name: "a".into(),
                since: None,
                viewer_id: None,
                link: None,
                watcher: false,
                project: false,
                typing: false,
                owner: false,
                sink: Default::default(),
            },
            Instant::now(),
        );
        assert!(matches!(again, Err(JoinError::Removed)));
    }

    #[test]
    fn a_read_only_room_refuses_everyone_but_the_owner_and_says_so() {
        let mut core = room("x", false);
        let join_as = |core: &mut super::super::RoomCore<_>, client: &str, owner: bool| {
            let sink = super::super::tests::Recorder::default();
            let request = JoinRequest {
                client_id: client.into(),
                name: client.into(),
                since: None,
                viewer_id: None,
                link: None,
                watcher: false,
                project: false,
                typing: false,
                owner,
                sink: sink.clone(),
            };
            let joined = core.join(request, Instant::now()).expect("joins");
            (joined.conn_id, sink, joined.init)
        };
        let (host, heard_host, init) = join_as(&mut core, "host", true);
        assert!(matches!(
            init,
            ServerMessage::Init {
                owner: true,
                read_only: false,
                ..
            }
        ));
        let (guest, heard_guest, _) = join_as(&mut core, "guest", false);
        core.set_read_only(true);
        for heard in [&heard_host, &heard_guest] {
            assert!(heard
                .take()
                .contains(&ServerMessage::Mode { read_only: true }));
        }
        core.edit(guest, None, 0, 1, op(r#"[1, "!"]"#), Instant::now());
        let refused = heard_guest.take();
        assert!(
            matches!(&refused[..], [ServerMessage::Error { code, seq: Some(1), .. }] if code == error_code::ROOM_READ_ONLY),
            "{refused:?}"
        );
        assert_eq!(heard_guest.closed(), None, "the connection stays");
        core.create_file(guest, "new.rs".into(), String::new(), None, Instant::now());
        assert!(
            matches!(&heard_guest.take()[..], [ServerMessage::Error { code, .. }] if code == error_code::ROOM_READ_ONLY)
        );
        core.edit(host, None, 0, 1, op(r#"[1, "!"]"#), Instant::now());
        commit_all(&mut core);
        assert!(heard_host
            .take()
            .iter()
            .any(|m| matches!(m, ServerMessage::Ack { revision: 1, .. })));
        let (_, _, late) = join_as(&mut core, "late", false);
        assert!(matches!(
            late,
            ServerMessage::Init {
                read_only: true,
                owner: false,
                ..
            }
        ));
        core.set_read_only(false);
        core.edit(guest, None, 1, 2, op(r#"[2, "?"]"#), Instant::now());
        commit_all(&mut core);
        assert!(heard_guest
            .take()
            .iter()
            .any(|m| matches!(m, ServerMessage::Ack { revision: 2, .. })));
    }

    #[test]
    fn a_join_by_a_replaced_link_is_refused() {
        let mut core = room("x", false);
        let request = |viewer_id: Option<&str>, link: Option<&str>| JoinRequest {
            client_id: "c".into(),
            name: "c".into(),
            since: None,
            viewer_id: viewer_id.map(str::to_owned),
            link: link.map(str::to_owned),
            watcher: false,
            project: false,
            typing: false,
            owner: false,
            sink: Default::default(),
        };
        assert!(core.join(request(None, None), Instant::now()).is_ok());
        core.set_links("L2".into(), "V2".into());
        for (viewer, link) in [(None, None), (Some("viewer"), None), (None, Some("L1"))] {
            let refused = core.join(request(viewer, link), Instant::now());
            assert!(
                matches!(refused, Err(JoinError::StaleLink)),
                "{viewer:?} {link:?}"
            );
        }
        assert!(core.join(request(None, Some("L2")), Instant::now()).is_ok());
        assert!(core.join(request(Some("V2"), None), Instant::now()).is_ok());
    }

    #[test]
    fn an_offline_user_is_removed_by_the_clients_the_room_knows() {
        // Known while it has an edit in the kept history.
        let mut core = room("x", false);
        let (conn, _, init) = join(&mut core, "gone", None);
        let collab_protocol::ServerMessage::Init { user_id, .. } = init else {
            unreachable!()
        };
        core.edit(conn, None, 0, 1, op(r#"[1, "!"]"#), Instant::now());
        commit_all(&mut core);
        core.leave(conn, Instant::now());
        assert_eq!(core.client_ids_of(&user_id), ["gone"]);
        assert_eq!(core.remove_user(&user_id, vec![], Instant::now()), ["gone"]);
        assert!(core.is_banned("gone"));
    }

    #[test]
    fn an_ended_room_stops() {
        let mut core = room("x", true);
        join(&mut core, "a", None);
        core.end();
        assert_eq!(core.stop(), Some(&Stop::Ended));
    }
}
