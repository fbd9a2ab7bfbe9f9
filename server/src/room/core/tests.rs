//! Unit tests of the room core: each drives a real [`RoomCore`] with
//! recording connections and answers the store's actions by hand.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use collab_protocol::{Operation, ServerMessage};

use super::tree::TreeLimits;
use super::*;
use crate::store::{CommitReply, CommittedEntry, LoadedRoom, StoreEvent, TreeReply};

/// What one connection was told.
#[derive(Debug, Default)]
pub(crate) struct Heard {
    pub(crate) queue: Vec<ServerMessage>,
    pub(crate) carets: HashMap<String, ServerMessage>,
    /// Typing states, by the key the room sets them under.
    pub(crate) typing: HashMap<String, ServerMessage>,
    pub(crate) closed: Option<(u16, String)>,
    /// Queue slots before the reader counts as lagging.
    pub(crate) limit: Option<usize>,
}

/// A connection sink that records what it hears.
#[derive(Clone, Debug, Default)]
pub(crate) struct Recorder(pub(crate) Rc<RefCell<Heard>>);

impl Recorder {
    /// Takes the ordered messages heard so far.
    pub(crate) fn take(&self) -> Vec<ServerMessage> {
        std::mem::take(&mut self.0.borrow_mut().queue)
    }

    pub(crate) fn closed(&self) -> Option<(u16, String)> {
        self.0.borrow().closed.clone()
    }
}

impl ConnSink for Recorder {
    type Msg = Arc<String>;

    fn message(json: String) -> Arc<String> {
        Arc::new(json)
    }

    fn enqueue(&self, msg: &Arc<String>) -> bool {
        let mut heard = self.0.borrow_mut();
        if heard.limit.is_some_and(|l| heard.queue.len() >= l) {
            return false;
        }
        heard
            .queue
            .push(ServerMessage::from_json(msg).expect("the core sends protocol messages"));
        true
    }

    fn wake(&self) {}

    fn set_caret(&self, user_id: &Arc<str>, msg: &Arc<String>) {
        let msg = ServerMessage::from_json(msg).expect("a caret");
        let mut heard = self.0.borrow_mut();
        match msg {
            ServerMessage::Typing { .. } => heard.typing.insert(user_id.to_string(), msg),
            _ => heard.carets.insert(user_id.to_string(), msg),
        };
    }

    fn drop_caret(&self, user_id: &str) {
        let mut heard = self.0.borrow_mut();
        heard.carets.remove(user_id);
        heard.typing.remove(user_id);
    }

    fn fail(&self, code: &str, message: &str, close: u16) {
        let mut heard = self.0.borrow_mut();
        heard.queue.push(ServerMessage::error(code, message));
        heard.closed = Some((close, code.to_owned()));
    }

    fn close(&self, code: u16, reason: &str) {
        self.0.borrow_mut().closed = Some((code, reason.to_owned()));
    }
}

pub(crate) fn config() -> CoreConfig {
    CoreConfig {
        room_ttl: Duration::from_secs(3600),
        max_conns: 10,
        max_document_chars: 1000,
        history: HistoryLimits {
            ops: 100,
            room_bytes: usize::MAX / 4,
            instance_bytes: usize::MAX / 2,
        },
        tree: TreeLimits {
            max_docs: 50,
            max_doc_bytes: 4000,
            max_room_bytes: 100_000,
        },
        max_open_docs: 8,
    }
}

/// A room holding `code` at revision 0, as its main document `main.rs`.
pub(crate) fn room(code: &str, shared: bool) -> RoomCore<Recorder> {
    let (loaded, _) = LoadedRoom::single(code, "rust", None);
    let loaded = LoadedRoom {
        viewer: Some("viewer".into()),
        ..loaded
    };
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let mut core = RoomCore::load(
        "room".into(),
        loaded,
        config(),
        shared,
        metrics,
        Instant::now(),
    )
    .unwrap();
    core.take_actions();
    core
}

pub(crate) fn op(json: &str) -> Operation {
    serde_json::from_str(json).unwrap()
}

/// Joins client `client` as a single-document client; returns its
/// connection, what it heard and its init.
pub(crate) fn join(
    core: &mut RoomCore<Recorder>,
    client: &str,
    since: Option<u64>,
) -> (ConnId, Recorder, ServerMessage) {
    join_as(core, client, since, false)
}

/// Joins client `client`, a project client when `project`.
pub(crate) fn join_as(
    core: &mut RoomCore<Recorder>,
    client: &str,
    since: Option<u64>,
    project: bool,
) -> (ConnId, Recorder, ServerMessage) {
    let sink = Recorder::default();
    let joined = core
        .join(
            JoinRequest {
                client_id: client.into(),
                name: client.into(),
                since,
                viewer_id: None,
                link: None,
                watcher: false,
                typing: true,
                owner: false,
                sink: sink.clone(),
                project,
            },
            Instant::now(),
        )
        .expect("joins");
    // What a join tells the store (presence) is not what these tests check.
    core.take_actions();
    (joined.conn_id, sink, joined.init)
}

/// Answers the commit the core asked for, as an authoritative store would.
pub(crate) fn commit_all(core: &mut RoomCore<Recorder>) {
    loop {
        let actions = core.take_actions();
        if actions.is_empty() {
            return;
        }
        for action in actions {
            match action {
                Action::Commit(doc, req) => {
                    let revision = req.expected + req.entries.len() as u64;
                    let reply = CommitReply::Committed {
                        revision,
                        log_bytes: 0,
                    };
                    core.committed(&doc, Ok(reply), Instant::now());
                }
                Action::CommitTree(_) => {
                    core.tree_committed(Ok(TreeReply::Committed), Instant::now())
                }
                _ => {}
            }
        }
    }
}

fn text(core: &RoomCore<Recorder>) -> String {
    core.snapshot()
        .expect("the main document is held")
        .doc
        .to_string()
}

#[test]
fn an_edit_on_a_stale_base_is_transformed_past_what_came_after() {
    let mut core = room("abc", false);
    let (a, a_heard, _) = join(&mut core, "a", None);
    let (b, b_heard, _) = join(&mut core, "b", None);
    core.edit(a, None, 0, 1, op(r#"["X", 3]"#), Instant::now());
    commit_all(&mut core);
    // B still at revision 0 inserts at its end: it lands after A's "X".
    core.edit(b, None, 0, 1, op(r#"[3, "!"]"#), Instant::now());
    commit_all(&mut core);
    assert_eq!(text(&core), "Xabc!");
    assert_eq!(core.revision(), 2);
    assert!(b_heard.take().contains(&ServerMessage::Ack {
        revision: 2,
        seq: 1,
        doc: None
    }));
    let a_got = a_heard.take();
    assert!(
        matches!(&a_got[..], [_, _, ServerMessage::CodeUpdate(c)] if c.operation == op(r#"[4, "!"]"#)),
        "{a_got:?}"
    );
}

#[test]
fn a_resent_edit_is_acknowledged_again_not_applied_again() {
    let mut core = room("abc", false);
    let (a, _, _) = join(&mut core, "a", None);
    core.edit(a, None, 0, 1, op(r#"[3, "!"]"#), Instant::now());
    commit_all(&mut core);
    // The client reconnects (its ack was lost) and resends seq 1.
    let (a2, heard, init) = join(&mut core, "a", Some(0));
    let ServerMessage::Init { missed, .. } = init else {
        unreachable!()
    };
    assert_eq!(missed.unwrap()[0].seq, Some(1), "missed names its own seq");
    core.edit(a2, None, 0, 1, op(r#"[3, "!"]"#), Instant::now());
    commit_all(&mut core);
    assert_eq!(text(&core), "abc!");
    assert_eq!(
        heard.take(),
        vec![ServerMessage::Ack {
            revision: 1,
            seq: 1,
            doc: None
        }]
    );
}

#[test]
fn a_lost_race_rebases_pending_edits_from_their_originals() {
    let mut core = room("abc", true);
    let (a, heard, _) = join(&mut core, "a", None);
    core.take_actions();
    core.edit(a, None, 0, 1, op(r#"[3, "1"]"#), Instant::now());
    let Some(Action::Commit(main, first)) = core.take_actions().into_iter().next() else {
        panic!("a commit");
    };
    assert_eq!(first.expected, 0);
    // Another instance committed "X" at the start first.
    let theirs = CommittedEntry {
        revision: 1,
        id: 77,
        operation: op(r#"["X", 3]"#),
        user_id: "u-b".into(),
        client_id: "b".into(),
        seq: 1,
    };
    core.committed(
        &main,
        Ok(CommitReply::Conflict {
            revision: 1,
            missed: vec![theirs],
        }),
        Instant::now(),
    );
    // The retry builds on revision 1, the edit moved past "X".
    let retry = core
        .take_actions()
        .into_iter()
        .find_map(|a| match a {
            Action::Commit(_, req) => Some(req),
            _ => None,
        })
        .expect("retried at once");
    assert_eq!((retry.expected, retry.expected_tip), (1, Some((1, 77))));
    assert_eq!(retry.entries[0].operation, op(r#"[4, "1"]"#));
    core.committed(
        &main,
        Ok(CommitReply::Committed {
            revision: 2,
            log_bytes: 0,
        }),
        Instant::now(),
    );
    assert_eq!(text(&core), "Xabc1");
    let heard = heard.take();
    assert!(
        matches!(heard[0], ServerMessage::CodeUpdate(_)),
        "{heard:?}"
    );
    assert_eq!(
        heard[1],
        ServerMessage::Ack {
            revision: 2,
            seq: 1,
            doc: None
        }
    );
}

#[test]
fn carets_are_brought_to_the_rooms_revision_and_kept_as_state() {
    let mut core = room("hello", false);
    let (a, _, _) = join(&mut core, "a", None);
    let (b, b_heard, _) = join(&mut core, "b", None);
    core.edit(a, None, 0, 1, op(r#"[">> ", 5]"#), Instant::now());
    commit_all(&mut core);
    // B's caret on "l" (offset 2) at revision 0: now at offset 5.
    core.cursor(b, None, 0, 2, Some(4));
    core.cursor(a, None, 1, 0, None);
    core.cursor(a, None, 1, 8, None);
    {
        let carets = &b_heard.0.borrow().carets;
        assert_eq!(carets.len(), 1, "only the newest caret of A");
        assert!(matches!(
            carets.values().next(),
            Some(ServerMessage::CursorMove { cursor: 8, .. })
        ));
    }
    let users = core.snapshot().unwrap().users;
    let b_info = users.iter().find(|u| u.name == "b").unwrap();
    assert_eq!((b_info.cursor, b_info.anchor), (Some(5), Some(7)));
    // A caret too old to place is dropped silently; one from the future
    // is refused.
    core.cursor(b, None, 9, 0, None);
    assert_eq!(b_heard.closed().map(|c| c.0), Some(4002));
}

#[test]
fn a_refused_edit_leaves_the_room_unchanged() {
    let mut core = room("abc", false);
    let (a, heard, _) = join(&mut core, "a", None);
    let before = (core.revision(), text(&core));
    // Too long for the document: refused, connection closed.
    core.edit(a, None, 0, 1, op(r#"[5, "x"]"#), Instant::now());
    assert_eq!(core.take_actions(), vec![]);
    assert_eq!((core.revision(), text(&core)), before);
    assert_eq!(heard.closed().map(|c| c.0), Some(4002));
    // Too large a document: refused with its seq, the connection stays.
    let (b, b_heard, _) = join(&mut core, "b", None);
    b_heard.take();
    core.edit(
        b,
        None,
        0,
        1,
        op(&format!(r#"[3, "{}"]"#, "x".repeat(2000))),
        Instant::now(),
    );
    assert_eq!(core.take_actions(), vec![]);
    assert_eq!((core.revision(), text(&core)), before);
    assert!(matches!(
        &b_heard.take()[..],
        [ServerMessage::Error { seq: Some(1), .. }]
    ));
    assert_eq!(b_heard.closed(), None);
    // A viewer's edit: refused.
    let sink = Recorder::default();
    let viewer = core
        .join(
            JoinRequest {
                client_id: "v".into(),
                name: "v".into(),
                since: None,
                viewer_id: Some("viewer".into()),
                link: None,
                watcher: false,
                typing: true,
                owner: false,
                sink: sink.clone(),
                project: false,
            },
            Instant::now(),
        )
        .unwrap();
    core.edit(
        viewer.conn_id,
        None,
        0,
        1,
        op(r#"[3, "x"]"#),
        Instant::now(),
    );
    assert_eq!((core.revision(), text(&core)), before);
    assert_eq!(sink.closed().map(|c| c.0), Some(4003));
}

#[test]
fn a_replaced_connection_is_out_of_the_room_at_once() {
    let mut core = room("", false);
    let (old, old_heard, _) = join(&mut core, "x", None);
    let (new, _, _) = join(&mut core, "x", Some(0));
    assert_eq!(old_heard.closed().map(|c| c.0), Some(4005));
    core.edit(old, None, 0, 1, op(r#"["late"]"#), Instant::now());
    assert!(
        !core
            .take_actions()
            .iter()
            .any(|a| matches!(a, Action::Commit(..))),
        "nothing it sends is applied"
    );
    core.edit(new, None, 0, 1, op(r#"["new"]"#), Instant::now());
    commit_all(&mut core);
    assert_eq!(text(&core), "new");
}

#[test]
fn a_slow_reader_is_closed_as_lagging_not_buffered() {
    let mut core = room("", false);
    let (a, _, _) = join(&mut core, "a", None);
    let (_, slow, _) = join(&mut core, "slow", None);
    slow.0.borrow_mut().limit = Some(3);
    for seq in 1..=5 {
        core.edit(
            a,
            None,
            seq - 1,
            seq,
            append(seq as usize - 1, "x"),
            Instant::now(),
        );
        commit_all(&mut core);
    }
    assert_eq!(slow.closed(), Some((4008, "lagging".into())));
    assert_eq!(slow.take().len(), 3);
}

#[test]
fn an_idle_room_expires_and_a_used_one_is_kept_alive() {
    let mut core = room("", false);
    let start = Instant::now();
    core.tick(start + Duration::from_secs(60));
    assert_eq!(core.stop(), None);
    let (a, _, _) = join(&mut core, "a", None);
    core.tick(start + Duration::from_secs(1300));
    assert!(
        core.take_actions()
            .contains(&Action::Publish(Publish::Touch)),
        "a room in use is kept alive"
    );
    core.leave(a, start + Duration::from_secs(1300));
    core.tick(start + Duration::from_secs(1300 + 3600));
    assert_eq!(core.stop(), Some(&Stop::Expired));
}

#[test]
fn operations_from_another_instance_apply_in_order_and_a_gap_reads_the_log() {
    let mut core = room("", true);
    let (_, heard, _) = join(&mut core, "a", None);
    core.take_actions();
    let entry = |revision: u64, text: &str| CommittedEntry {
        revision,
        id: 100 + revision,
        operation: append(revision as usize - 1, text),
        user_id: "u-b".into(),
        client_id: "b".into(),
        seq: revision,
    };
    // Revision 2 arrives before 1: it waits, and the gap asks for the log.
    core.store_event(
        StoreEvent::Ops {
            base: Some((1, 101)),
            entries: vec![entry(2, "2")],
            doc: "main".into(),
            size: None,
        },
        Instant::now(),
    );
    assert_eq!(core.take_actions(), vec![Action::CatchUp("main".into())]);
    assert_eq!(core.revision(), 0);
    core.store_event(
        StoreEvent::Ops {
            base: None,
            entries: vec![entry(1, "1")],
            doc: "main".into(),
            size: None,
        },
        Instant::now(),
    );
    assert_eq!(text(&core), "12");
    assert_eq!(heard.take().len(), 2);
    // The same revision with another id: the store's history parted.
    core.store_event(
        StoreEvent::Ops {
            base: Some((1, 999)),
            entries: vec![entry(3, "3")],
            doc: "main".into(),
            size: None,
        },
        Instant::now(),
    );
    assert!(matches!(core.stop(), Some(Stop::Parted(..))));
}

#[test]
fn a_presence_check_joins_users_whose_join_was_missed_but_not_stale_ones() {
    let mut core = room("", true);
    let (_, heard, _) = join(&mut core, "a", None);
    core.check_due();
    let record = |id: &str| crate::store::PresenceRecord {
        user: collab_protocol::UserInfo {
            user_id: id.into(),
            name: id.into(),
            color: "#000000".into(),
            cursor: None,
            anchor: None,
            role: collab_protocol::Role::Editor,
            doc: None,
        },
        instance: "other".into(),
    };
    // "gone" left after the check read the presence hash.
    core.store_event(
        StoreEvent::Leave {
            user_id: "gone".into(),
        },
        Instant::now(),
    );
    heard.take();
    core.presence_checked(crate::store::PresenceCheck {
        present: vec![record("missed"), record("gone")],
        left: vec![],
    });
    let names: Vec<String> = core
        .snapshot()
        .unwrap()
        .users
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert!(names.contains(&"missed".to_owned()), "{names:?}");
    assert!(
        !names.contains(&"gone".to_owned()),
        "older news lost: {names:?}"
    );
    assert!(
        matches!(&heard.take()[..], [ServerMessage::UserJoined { user }] if user.name == "missed")
    );
}

/// Appends `text` to a document of `len` chars.
fn append(len: usize, text: &str) -> Operation {
    Operation::replace(len, len, len, text).expect("in range")
}

#[test]
fn a_resend_of_an_edit_committed_after_the_reconnect_is_not_acknowledged_twice() {
    // The client's copy on its old connection is still in flight when it
    // reconnects with `since`; it is committed after the new connection's
    // init, which hears it as its ack. The resend that follows must not
    // bring a second message for that revision.
    let mut core = room("ab", true);
    let (old, _, _) = join(&mut core, "x", None);
    core.take_actions();
    core.edit(old, None, 0, 1, op(r#"[2, "c"]"#), Instant::now());
    let actions = core.take_actions();
    let (new, heard, init) = join(&mut core, "x", Some(0));
    let ServerMessage::Init {
        revision: 0,
        missed: Some(missed),
        ..
    } = init
    else {
        panic!("a rebasing init at 0: {init:?}")
    };
    assert!(missed.is_empty());
    for action in actions {
        if let Action::Commit(doc, req) = action {
            let reply = CommitReply::Committed {
                revision: req.expected + req.entries.len() as u64,
                log_bytes: 0,
            };
            core.committed(&doc, Ok(reply), Instant::now());
        }
    }
    core.edit(new, None, 0, 1, op(r#"[2, "c"]"#), Instant::now());
    commit_all(&mut core);
    let acks: Vec<ServerMessage> = heard
        .take()
        .into_iter()
        .filter(|m| matches!(m, ServerMessage::Ack { .. } | ServerMessage::CodeUpdate(_)))
        .collect();
    assert_eq!(
        acks,
        [ServerMessage::Ack {
            revision: 1,
            seq: 1,
            doc: None
        }],
        "one message for revision 1"
    );
    assert_eq!(text(&core), "abc");
}
