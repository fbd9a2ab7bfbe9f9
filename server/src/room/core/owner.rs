//! What the room's owner can do to a live room: end it (everyone is closed
//! with 4007 and the room stops writing to the store) and remove a
//! participant (their connections are closed with 4006 and their client
//! ids refused from then on, on every instance: the store tells them all).

use collab_protocol::{close_code, error_code};

use super::{ConnSink, RoomCore, Stop};

impl<S: ConnSink> RoomCore<S> {
    /// The owner ended the room.
    pub fn end(&mut self) {
        if !matches!(self.stop, Some(Stop::Ended)) {
            self.stop = Some(Stop::Ended);
        }
    }

    /// The owner removed `user_id`: its connections here are closed and its
    /// client ids (`client_ids`, and those of its connections here) are
    /// refused from now on. Returns every client id refused for it.
    pub fn remove_user(&mut self, user_id: &str, client_ids: Vec<String>) -> Vec<String> {
        let mut removed = client_ids;
        for conn in self.conns.values() {
            if &*conn.user_id == user_id {
                removed.push(conn.client_id.to_string());
                conn.sink.fail(
                    error_code::REMOVED,
                    "the room's owner removed you from this room",
                    close_code::REMOVED,
                );
            }
        }
        removed.sort();
        removed.dedup();
        self.banned.extend(removed.iter().cloned());
        removed
    }

    /// True when the owner removed this client.
    pub(super) fn is_banned(&self, client_id: &str) -> bool {
        self.banned.contains(client_id)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use collab_protocol::{close_code, error_code};

    use super::super::tests::{join, room};
    use super::super::{JoinError, JoinRequest, Stop};

    #[test]
    fn a_removed_user_is_closed_and_refused_when_it_comes_back() {
        let mut core = room("x", false);
        let (_, heard_a, init) = join(&mut core, "a", None);
        let (_, heard_b, _) = join(&mut core, "b", None);
        let collab_protocol::ServerMessage::Init { user_id, .. } = init else {
            unreachable!()
        };
        let removed = core.remove_user(&user_id, vec!["a-elsewhere".into()]);
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
                watcher: false,
                project: false,
                typing: false,
                sink: Default::default(),
            },
            Instant::now(),
        );
        assert!(matches!(again, Err(JoinError::Removed)));
    }

    #[test]
    fn an_ended_room_stops() {
        let mut core = room("x", true);
        join(&mut core, "a", None);
        core.end();
        assert_eq!(core.stop(), Some(&Stop::Ended));
    }
}
