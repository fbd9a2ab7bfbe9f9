//! The mirror core without sockets or files: merges of disk changes with
//! concurrent room edits, its own writes coming back, tree changes both
//! ways, opening on demand with a limit, and reconnects.

use std::collections::BTreeMap;

use collab_protocol::{ClientMessage, CommittedOp, FileInfo, Operation, ServerMessage};

use super::core::{Action, Core, Seen, RENAME_HOLD};

fn file(doc: &str, path: &str) -> FileInfo {
    FileInfo {
        doc: doc.into(),
        path: path.into(),
        size: 0,
        language: "plaintext".into(),
    }
}

fn init(
    revision: u64,
    code: &str,
    files: &[(&str, &str)],
    missed: Option<Vec<CommittedOp>>,
) -> ServerMessage {
    ServerMessage::Init {
        room_id: "r".into(),
        user_id: "me".into(),
        name: "n (disk)".into(),
        color: "#000000".into(),
        revision,
        code: code.into(),
        language: "plaintext".into(),
        users: vec![],
        read_only: false,
        read_only_id: None,
        missed,
        doc: Some("main".into()),
        tree_revision: Some(0),
        files: Some(files.iter().map(|(d, p)| file(d, p)).collect()),
        chat: Vec::new(),
        owner: false,
    }
}

fn update(doc: &str, revision: u64, op: Operation) -> ServerMessage {
    ServerMessage::CodeUpdate(CommittedOp {
        revision,
        operation: op,
        user_id: "them".into(),
        seq: None,
        doc: Some(doc.into()),
    })
}

fn opened(doc: &str, revision: u64, code: &str) -> ServerMessage {
    ServerMessage::Opened {
        doc: doc.into(),
        revision,
        code: code.into(),
        language: "plaintext".into(),
        missed: None,
    }
}

fn on_disk(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

fn sent(actions: &[Action]) -> Vec<ClientMessage> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn writes(actions: &[Action]) -> Vec<(String, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Write { path, text } => Some((path.clone(), text.clone())),
            _ => None,
        })
        .collect()
}

/// A mirror of one file `a.txt` (the main document) holding `text`, joined.
fn one_file(text: &str) -> Core {
    let mut core = Core::new(8, on_disk(&[("a.txt", text)]));
    let out = core.joined(init(1, text, &[("main", "a.txt")], None));
    assert_eq!(out, vec![Action::Read("a.txt".into())]);
    assert!(core
        .disk_changed(vec![("a.txt".into(), Seen::Text(text.into()))])
        .is_empty());
    assert!(core.dirty().is_empty());
    core
}

#[test]
fn a_change_on_disk_merges_with_an_edit_the_room_made_meanwhile() {
    let mut core = one_file("hello world\n");
    // A colleague typed "X" at the start; not written yet.
    core.received(update(
        "main",
        2,
        Operation::replace(12, 0, 0, "X").unwrap(),
    ));
    assert_eq!(core.dirty(), vec![("main".into(), "a.txt".into())]);
    // Meanwhile `sed -i` added "!" on disk, to the file without "X".
    let out = core.disk_changed(vec![("a.txt".into(), Seen::Text("hello world!\n".into()))]);
    // Only the "!" travels, placed after the colleague's "X".
    assert_eq!(
        sent(&out),
        vec![ClientMessage::CodeUpdate {
            revision: 2,
            seq: 1,
            operation: Operation::replace(13, 12, 12, "!").unwrap(),
            doc: Some("main".into()),
        }]
    );
    assert_eq!(core.text("main").unwrap(), "Xhello world!\n");
    // Writing gives the disk both.
    let out = core.flush("main", Seen::Text("hello world!\n".into()));
    assert_eq!(
        writes(&out),
        vec![("a.txt".into(), "Xhello world!\n".into())]
    );
    // The write comes back as an event: nothing to do.
    assert!(core
        .disk_changed(vec![("a.txt".into(), Seen::Text("Xhello world!\n".into()))])
        .is_empty());
    assert!(!core.is_idle(), "the edit awaits its ack");
    core.received(ServerMessage::Ack {
        revision: 3,
        seq: 1,
        doc: Some("main".into()),
    });
    assert!(core.is_idle());
}

#[test]
fn a_tool_that_read_the_file_before_a_write_and_wrote_after_it_deletes_nothing() {
    // The race of `sed -i` (or a formatter) with the mirror: sed reads the
    // file, the mirror writes a colleague's keystroke, sed writes its result.
    let mut core = one_file("alpha\nbeta\n");
    core.received(update(
        "main",
        2,
        Operation::replace(11, 5, 5, "!").unwrap(),
    ));
    let out = core.flush("main", Seen::Text("alpha\nbeta\n".into()));
    assert_eq!(
        writes(&out),
        vec![("a.txt".into(), "alpha!\nbeta\n".into())]
    );
    // The colleague types on: in the room, not written yet.
    core.received(update(
        "main",
        3,
        Operation::replace(12, 6, 6, "?").unwrap(),
    ));
    // sed's output: the file as it was before the write, with its change.
    let out = core.disk_changed(vec![("a.txt".into(), Seen::Text("alpha\nBETA\n".into()))]);
    assert_eq!(sent(&out).len(), 1);
    assert_eq!(core.text("main").unwrap(), "alpha!?\nBETA\n");
    let out = core.flush("main", Seen::Text("alpha\nBETA\n".into()));
    assert_eq!(
        writes(&out),
        vec![("a.txt".into(), "alpha!?\nBETA\n".into())]
    );
    core.received(ServerMessage::Ack {
        revision: 4,
        seq: 1,
        doc: Some("main".into()),
    });
    // A deletion made on the latest copy is taken as it is.
    let out = core.disk_changed(vec![("a.txt".into(), Seen::Text("alpha!?\n".into()))]);
    assert_eq!(sent(&out).len(), 1);
    assert_eq!(core.text("main").unwrap(), "alpha!?\n");
}

#[test]
fn a_change_on_disk_while_writing_is_merged_before_the_write() {
    let mut core = one_file("ab\r\n");
    core.received(update("main", 2, Operation::replace(4, 1, 1, "1").unwrap()));
    // The file changed on disk after the last look, before the write.
    let out = core.flush("main", Seen::Text("abc\r\n".into()));
    assert_eq!(sent(&out).len(), 1, "the disk's change goes to the room");
    assert_eq!(writes(&out), vec![("a.txt".into(), "a1bc\r\n".into())]);
    assert_eq!(core.text("main").unwrap(), "a1bc\r\n");
}

/// A minimal OT server for one document: commits operations in order,
/// transforming each over what was committed after its base revision.
struct Server {
    text: String,
    history: Vec<Operation>,
}

impl Server {
    fn revision(&self) -> u64 {
        1 + self.history.len() as u64
    }

    fn commit(&mut self, base: u64, op: &Operation) -> u64 {
        let mut op = op.clone();
        for h in &self.history[(base - 1) as usize..] {
            op = Operation::transform(&op, h).unwrap().0;
        }
        self.text = op.apply_str(&self.text).unwrap();
        self.history.push(op);
        self.revision()
    }
}

#[test]
fn many_disk_changes_and_room_edits_interleaved_lose_nothing() {
    let mut core = one_file("|");
    let mut server = Server {
        text: "|".into(),
        history: Vec::new(),
    };
    let mut disk = String::from("|");
    let mut queue: Vec<ClientMessage> = Vec::new();
    let commit_ours = |core: &mut Core, server: &mut Server, queue: &mut Vec<ClientMessage>| {
        if queue.is_empty() {
            return;
        }
        let ClientMessage::CodeUpdate {
            revision,
            seq,
            operation,
            ..
        } = queue.remove(0)
        else {
            panic!("only edits are sent")
        };
        let revision = server.commit(revision, &operation);
        let out = core.received(ServerMessage::Ack {
            revision,
            seq,
            doc: Some("main".into()),
        });
        queue.extend(sent(&out));
    };
    for i in 0..30 {
        // A colleague types a letter at the start of the room's text.
        let len = server.text.chars().count();
        let op = Operation::replace(len, 0, 0, "c").unwrap();
        let revision = server.commit(server.revision(), &op);
        let out = core.received(update("main", revision, op));
        assert!(sent(&out).is_empty());
        // A tool appends a digit at the end of the file on disk.
        disk.push(char::from(b'0' + (i % 10) as u8));
        let out = core.disk_changed(vec![("a.txt".into(), Seen::Text(disk.clone()))]);
        queue.extend(sent(&out));
        if i % 3 == 0 {
            commit_ours(&mut core, &mut server, &mut queue);
        }
        if i % 4 == 0 {
            let out = core.flush("main", Seen::Text(disk.clone()));
            if let Some((_, text)) = writes(&out).pop() {
                disk = text;
            }
        }
    }
    while !queue.is_empty() {
        commit_ours(&mut core, &mut server, &mut queue);
    }
    let out = core.flush("main", Seen::Text(disk.clone()));
    if let Some((_, text)) = writes(&out).pop() {
        disk = text;
    }
    assert!(core.is_idle());
    assert_eq!(core.text("main").unwrap(), server.text);
    assert_eq!(disk, server.text);
    assert_eq!(disk.matches('c').count(), 30, "{disk}");
    assert_eq!(
        disk.chars().filter(char::is_ascii_digit).count(),
        30,
        "{disk}"
    );
    // The colleague's letters before the bar, the tool's digits after it.
    let (before, after) = disk.split_once('|').unwrap();
    assert_eq!(before, "c".repeat(30));
    assert_eq!(after.len(), 30);
}

#[test]
fn renames_deletes_and_new_files_on_disk_become_tree_changes() {
    let files = [
        ("a.txt", "alpha\n"),
        ("b.txt", "beta\n"),
        ("c.txt", "gamma\n"),
    ];
    let mut core = Core::new(8, on_disk(&files));
    core.joined(init(
        1,
        "alpha\n",
        &[("main", "a.txt"), ("d2", "b.txt"), ("d3", "c.txt")],
        None,
    ));
    core.received(opened("d2", 1, "beta\n"));
    // b.txt moved to sub/b.txt, c.txt removed, new.txt created; in one batch.
    let out = core.disk_changed(vec![
        ("b.txt".into(), Seen::Missing),
        ("sub/b.txt".into(), Seen::Text("beta\n".into())),
        ("c.txt".into(), Seen::Missing),
        ("new.txt".into(), Seen::Text("new\n".into())),
        ("logo.png".into(), Seen::Unshareable("binary".into())),
    ]);
    let mut msgs = sent(&out);
    assert!(msgs.contains(&ClientMessage::RenameFile {
        doc: "d2".into(),
        path: "sub/b.txt".into()
    }));
    // The removal and the creation wait out their hold (each could still
    // be half of a rename).
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(core.held_due(), Some(RENAME_HOLD));
    assert!(core.expire_held(false).is_empty());
    core.set_clock(RENAME_HOLD);
    msgs.extend(sent(&core.expire_held(false)));
    assert!(msgs.contains(&ClientMessage::DeleteFile { doc: "d3".into() }));
    assert!(msgs.contains(&ClientMessage::CreateFile {
        path: "new.txt".into(),
        code: Some("new\n".into()),
        language: None
    }));
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    // Events for the same paths before the room answered change nothing.
    let again = core.disk_changed(vec![
        ("b.txt".into(), Seen::Missing),
        ("new.txt".into(), Seen::Text("new\n".into())),
    ]);
    assert!(sent(&again).is_empty(), "{again:?}");
    // The room confirms: no file is touched on disk for our own changes
    // (the new path is looked at again, for changes made meanwhile).
    let out = core.received(ServerMessage::FileRenamed {
        doc: "d2".into(),
        path: "sub/b.txt".into(),
        old_path: "b.txt".into(),
        user_id: "me".into(),
        tree_revision: 1,
    });
    assert_eq!(out, vec![Action::Read("sub/b.txt".into())]);
    let out = core.received(ServerMessage::FileDeleted {
        doc: "d3".into(),
        path: "c.txt".into(),
        user_id: "me".into(),
        tree_revision: 2,
    });
    assert!(out.is_empty(), "{out:?}");
    let out = core.received(ServerMessage::FileCreated {
        file: file("d4", "new.txt"),
        user_id: "me".into(),
        tree_revision: 3,
    });
    // Opened, to follow its edits; nothing is written.
    assert_eq!(
        sent(&out),
        vec![ClientMessage::Open {
            doc: "d4".into(),
            since: None
        }]
    );
    let out = core.received(opened("d4", 1, "new\n"));
    assert_eq!(out, vec![Action::Read("new.txt".into())]);
    assert!(core.dirty().is_empty());
}

#[test]
fn the_rooms_tree_changes_become_files_moved_written_and_removed() {
    let files = [("a.txt", "alpha\n"), ("b.txt", "beta\n")];
    let mut core = Core::new(8, on_disk(&files));
    core.joined(init(
        1,
        "alpha\n",
        &[("main", "a.txt"), ("d2", "b.txt")],
        None,
    ));
    let out = core.received(ServerMessage::FileRenamed {
        doc: "d2".into(),
        path: "x/b.txt".into(),
        old_path: "b.txt".into(),
        user_id: "them".into(),
        tree_revision: 1,
    });
    assert_eq!(
        out,
        vec![Action::Rename {
            from: "b.txt".into(),
            to: "x/b.txt".into()
        }]
    );
    let out = core.received(ServerMessage::FileCreated {
        file: file("d3", "c.txt"),
        user_id: "them".into(),
        tree_revision: 2,
    });
    assert_eq!(sent(&out).len(), 1);
    core.received(opened("d3", 4, "made in the room\n"));
    let out = core.flush("d3", Seen::Missing);
    assert_eq!(
        writes(&out),
        vec![("c.txt".into(), "made in the room\n".into())]
    );
    let out = core.received(ServerMessage::FileDeleted {
        doc: "main".into(),
        path: "a.txt".into(),
        user_id: "them".into(),
        tree_revision: 3,
    });
    assert_eq!(
        out,
        vec![Action::Remove {
            path: "a.txt".into(),
            expect: "alpha\n".into()
        }]
    );
    // A file the room creates where the disk holds another is not overwritten.
    core.received(ServerMessage::FileCreated {
        file: file("d5", "local.txt"),
        user_id: "them".into(),
        tree_revision: 4,
    });
    core.received(opened("d5", 1, "room\n"));
    let out = core.flush("d5", Seen::Text("mine\n".into()));
    assert!(writes(&out).is_empty());
    assert!(matches!(out.as_slice(), [Action::Warn(_)]), "{out:?}");
}

#[test]
fn documents_open_on_demand_within_the_limit() {
    let files = [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")];
    let mut core = Core::new(3, on_disk(&files));
    let out = core.joined(init(
        1,
        "1",
        &[("main", "a"), ("db", "b"), ("dc", "c"), ("dd", "d")],
        None,
    ));
    assert_eq!(sent(&out).len(), 2, "main and two more: {out:?}");
    assert_eq!(core.open_count(), 3);
    core.received(opened("db", 1, "2"));
    core.received(opened("dc", 1, "3"));
    // A colleague's caret in `dd`: the least recently used other is closed.
    let out = core.received(ServerMessage::CursorMove {
        user_id: "them".into(),
        revision: 1,
        cursor: 0,
        anchor: None,
        doc: Some("dd".into()),
    });
    assert_eq!(
        sent(&out),
        vec![
            ClientMessage::Close { doc: "db".into() },
            ClientMessage::Open {
                doc: "dd".into(),
                since: None
            }
        ]
    );
    assert_eq!(core.open_count(), 3);
    // Looking at the closed `b` as it was (a full look at the directory)
    // opens nothing.
    assert!(core
        .disk_changed(vec![("b".into(), Seen::Text("2".into()))])
        .is_empty());
    // A change on disk in the closed `b` opens it again, and is merged then.
    let out = core.disk_changed(vec![("b".into(), Seen::Text("2!".into()))]);
    assert!(sent(&out).contains(&ClientMessage::Open {
        doc: "db".into(),
        since: None
    }));
    let out = core.received(opened("db", 1, "2"));
    assert!(out.contains(&Action::Read("b".into())));
    let out = core.disk_changed(vec![("b".into(), Seen::Text("2!".into()))]);
    assert_eq!(
        sent(&out),
        vec![ClientMessage::CodeUpdate {
            revision: 1,
            seq: 1,
            operation: Operation::replace(1, 1, 1, "!").unwrap(),
            doc: Some("db".into())
        }]
    );
}

#[test]
fn a_reconnect_rebases_and_reopens_with_since() {
    let files = [("a.txt", "ab"), ("b.txt", "x")];
    let mut core = Core::new(8, on_disk(&files));
    core.joined(init(1, "ab", &[("main", "a.txt"), ("d2", "b.txt")], None));
    core.received(opened("d2", 5, "x"));
    // A change on disk sent, then the link dropped before its ack.
    let out = core.disk_changed(vec![("a.txt".into(), Seen::Text("abc".into()))]);
    assert_eq!(sent(&out).len(), 1);
    // Back: someone inserted "Z" at 0 meanwhile; our edit was not committed.
    let missed = vec![CommittedOp {
        revision: 2,
        operation: Operation::replace(2, 0, 0, "Z").unwrap(),
        user_id: "them".into(),
        seq: None,
        doc: None,
    }];
    let out = core.joined(init(
        2,
        "Zab",
        &[("main", "a.txt"), ("d2", "b.txt")],
        Some(missed),
    ));
    let msgs = sent(&out);
    assert!(msgs.contains(&ClientMessage::CodeUpdate {
        revision: 2,
        seq: 1,
        operation: Operation::replace(3, 3, 3, "c").unwrap(),
        doc: Some("main".into())
    }));
    assert!(msgs.contains(&ClientMessage::Open {
        doc: "d2".into(),
        since: Some(5)
    }));
    assert_eq!(core.text("main").unwrap(), "Zabc");
    let out = core.flush("main", Seen::Text("abc".into()));
    assert_eq!(writes(&out), vec![("a.txt".into(), "Zabc".into())]);
}

/// Random interleavings of a colleague typing in the room, a tool editing
/// the file on disk (sometimes from a copy read just before a mirror write,
/// as `sed -i` races it), acknowledgements and writes: every inserted char
/// survives exactly once, and the room, the mirror and the disk converge.
#[test]
fn random_interleavings_converge_and_keep_every_insert() {
    use rand::{Rng, SeedableRng};
    for seed in 0..200u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let start = ".".repeat(20);
        let mut core = one_file(&start);
        let mut server = Server {
            text: start.clone(),
            history: Vec::new(),
        };
        let mut disk = start.clone();
        let mut queue: Vec<ClientMessage> = Vec::new();
        let mut next_mark = 0u32;
        let mut marks = Vec::new();
        let mut mark = |marks: &mut Vec<char>| {
            let c = char::from_u32(0x4E00 + next_mark).unwrap();
            next_mark += 1;
            marks.push(c);
            c.to_string()
        };
        // An edit to `text`: insert a new mark, or delete a '.'.
        let mut edit = |rng: &mut rand::rngs::StdRng, text: &str, marks: &mut Vec<char>| {
            let chars: Vec<char> = text.chars().collect();
            let dots: Vec<usize> = (0..chars.len()).filter(|i| chars[*i] == '.').collect();
            if dots.is_empty() || rng.random_bool(0.6) {
                let at = rng.random_range(0..=chars.len());
                Operation::replace(chars.len(), at, at, &mark(marks)).unwrap()
            } else {
                let at = dots[rng.random_range(0..dots.len())];
                Operation::replace(chars.len(), at, at + 1, "").unwrap()
            }
        };
        for _ in 0..80 {
            match rng.random_range(0..6) {
                0 | 1 => {
                    let op = edit(&mut rng, &server.text.clone(), &mut marks);
                    let revision = server.commit(server.revision(), &op);
                    let out = core.received(update("main", revision, op));
                    assert!(sent(&out).is_empty());
                }
                2 => {
                    let op = edit(&mut rng, &disk, &mut marks);
                    disk = op.apply_str(&disk).unwrap();
                    let out = core.disk_changed(vec![("a.txt".into(), Seen::Text(disk.clone()))]);
                    queue.extend(sent(&out));
                }
                3 => {
                    if !queue.is_empty() {
                        let ClientMessage::CodeUpdate {
                            revision,
                            seq,
                            operation,
                            ..
                        } = queue.remove(0)
                        else {
                            panic!("only edits are sent")
                        };
                        let revision = server.commit(revision, &operation);
                        let out = core.received(ServerMessage::Ack {
                            revision,
                            seq,
                            doc: Some("main".into()),
                        });
                        queue.extend(sent(&out));
                    }
                }
                4 => {
                    let out = core.flush("main", Seen::Text(disk.clone()));
                    queue.extend(sent(&out));
                    if let Some((_, text)) = writes(&out).pop() {
                        disk = text;
                    }
                }
                _ => {
                    // A tool reads the file, the mirror writes, the tool
                    // writes back its edit of what it read.
                    let read = disk.clone();
                    let out = core.flush("main", Seen::Text(disk.clone()));
                    queue.extend(sent(&out));
                    // What the mirror wrote is replaced by the tool's file.
                    let op = edit(&mut rng, &read, &mut marks);
                    disk = op.apply_str(&read).unwrap();
                    let out = core.disk_changed(vec![("a.txt".into(), Seen::Text(disk.clone()))]);
                    queue.extend(sent(&out));
                }
            }
        }
        while !queue.is_empty() {
            let ClientMessage::CodeUpdate {
                revision,
                seq,
                operation,
                ..
            } = queue.remove(0)
            else {
                panic!("only edits are sent")
            };
            let revision = server.commit(revision, &operation);
            let out = core.received(ServerMessage::Ack {
                revision,
                seq,
                doc: Some("main".into()),
            });
            queue.extend(sent(&out));
        }
        let out = core.flush("main", Seen::Text(disk.clone()));
        if let Some((_, text)) = writes(&out).pop() {
            disk = text;
        }
        assert!(core.is_idle(), "seed {seed}");
        assert_eq!(core.text("main").unwrap(), server.text, "seed {seed}");
        assert_eq!(disk, server.text, "seed {seed}");
        for m in &marks {
            assert_eq!(
                server.text.matches(*m).count(),
                1,
                "seed {seed}: {m} in {}",
                server.text
            );
        }
    }
}

#[test]
fn the_documents_colleagues_are_in_when_it_joins_are_opened_first() {
    let files = [("a", "1"), ("b", "2"), ("c", "3")];
    let mut core = Core::new(2, on_disk(&files));
    let mut init = init(1, "1", &[("main", "a"), ("db", "b"), ("dc", "c")], None);
    if let ServerMessage::Init { users, .. } = &mut init {
        users.push(collab_protocol::UserInfo {
            user_id: "them".into(),
            name: "them".into(),
            color: "#ffffff".into(),
            cursor: Some(0),
            anchor: None,
            role: Default::default(),
            doc: Some("dc".into()),
        });
    }
    let out = core.joined(init);
    assert_eq!(
        sent(&out),
        vec![ClientMessage::Open {
            doc: "dc".into(),
            since: None
        }]
    );
}

fn warned(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Warn(_)))
        .count()
}

/// A mirror of a.txt (main) and b.txt (`d2`, open), both as on disk.
fn two_files() -> Core {
    let files = [("a.txt", "alpha\n"), ("b.txt", "b\n")];
    let mut core = Core::new(8, on_disk(&files));
    core.joined(init(
        1,
        "alpha\n",
        &[("main", "a.txt"), ("d2", "b.txt")],
        None,
    ));
    core.received(opened("d2", 1, "b\n"));
    assert!(core
        .disk_changed(vec![
            ("a.txt".into(), Seen::Text("alpha\n".into())),
            ("b.txt".into(), Seen::Text("b\n".into())),
        ])
        .is_empty());
    core
}

#[test]
fn a_file_deleted_in_the_room_before_its_change_on_disk_was_acknowledged_is_kept() {
    let mut core = two_files();
    let out = core.disk_changed(vec![("b.txt".into(), Seen::Text("b important\n".into()))]);
    assert_eq!(sent(&out).len(), 1);
    // A colleague's delete lands before the ack.
    let out = core.received(ServerMessage::FileDeleted {
        doc: "d2".into(),
        path: "b.txt".into(),
        user_id: "them".into(),
        tree_revision: 1,
    });
    assert!(
        !out.iter().any(|a| matches!(a, Action::Remove { .. })),
        "{out:?}"
    );
    assert_eq!(warned(&out), 1, "{out:?}");
    assert!(out.contains(&Action::Read("b.txt".into())));
    // Read again, it is shared as a new file (once its hold is over).
    let out = core.disk_changed(vec![("b.txt".into(), Seen::Text("b important\n".into()))]);
    assert!(sent(&out).is_empty(), "{out:?}");
    let out = core.expire_held(true);
    assert_eq!(
        sent(&out),
        vec![ClientMessage::CreateFile {
            path: "b.txt".into(),
            code: Some("b important\n".into()),
            language: None
        }]
    );

    // The same through a reconnect whose tree lacks the file.
    let mut core = two_files();
    core.disk_changed(vec![("b.txt".into(), Seen::Text("b important\n".into()))]);
    let out = core.joined(init(1, "alpha\n", &[("main", "a.txt")], Some(vec![])));
    assert!(
        !out.iter().any(|a| matches!(a, Action::Remove { .. })),
        "{out:?}"
    );
    assert!(out.contains(&Action::Read("b.txt".into())));
}

#[test]
fn a_reconnect_that_cannot_rebase_keeps_the_hosts_change_beside_the_file() {
    let mut core = one_file("ab");
    let out = core.disk_changed(vec![("a.txt".into(), Seen::Text("abc".into()))]);
    assert_eq!(sent(&out).len(), 1);
    // Back without `missed` (history trimmed): the room has "Zab".
    let out = core.joined(init(5, "Zab", &[("main", "a.txt")], None));
    assert!(
        out.contains(&Action::WriteAside {
            path: "a.txt".into(),
            text: "abc".into()
        }),
        "{out:?}"
    );
    assert_eq!(warned(&out), 1);
    let out = core.flush("main", Seen::Text("abc".into()));
    assert_eq!(writes(&out), vec![("a.txt".into(), "Zab".into())]);
}

#[test]
fn a_deletion_on_disk_long_after_the_writes_is_taken_as_it_is() {
    let mut core = one_file("hi\n");
    // A colleague types "abc", written in three flushes.
    for (i, c) in ["a", "b", "c"].iter().enumerate() {
        core.set_clock(std::time::Duration::from_millis(100 * i as u64));
        let len = 3 + i;
        core.received(update(
            "main",
            2 + i as u64,
            Operation::replace(len, 2 + i, 2 + i, c).unwrap(),
        ));
        let disk = core.text("main").unwrap();
        let before = disk.replacen(c, "", 1);
        let out = core.flush("main", Seen::Text(before));
        assert_eq!(writes(&out), vec![("a.txt".into(), disk)]);
    }
    // Much later the host deletes "abc": no earlier copy is a tool's read.
    core.set_clock(std::time::Duration::from_secs(30));
    let out = core.disk_changed(vec![("a.txt".into(), Seen::Text("hi\n".into()))]);
    assert_eq!(sent(&out).len(), 1);
    assert_eq!(core.text("main").unwrap(), "hi\n");
}

#[test]
fn a_room_edit_during_a_rename_on_disk_is_written_to_the_new_path() {
    let mut core = two_files();
    let out = core.disk_changed(vec![
        ("b.txt".into(), Seen::Missing),
        ("c.txt".into(), Seen::Text("b\n".into())),
    ]);
    assert_eq!(
        sent(&out),
        vec![ClientMessage::RenameFile {
            doc: "d2".into(),
            path: "c.txt".into()
        }]
    );
    // A colleague types; a flush runs before `file_renamed` comes back.
    core.received(update("d2", 2, Operation::replace(2, 0, 0, "X").unwrap()));
    let out = core.flush("d2", Seen::Missing);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(core.dirty().len(), 1, "still to be written");
    // The host edits the file at its new path meanwhile.
    assert!(core
        .disk_changed(vec![("c.txt".into(), Seen::Text("b!\n".into()))])
        .is_empty());
    let out = core.received(ServerMessage::FileRenamed {
        doc: "d2".into(),
        path: "c.txt".into(),
        old_path: "b.txt".into(),
        user_id: "me".into(),
        tree_revision: 1,
    });
    assert_eq!(out, vec![Action::Read("c.txt".into())]);
    let out = core.disk_changed(vec![("c.txt".into(), Seen::Text("b!\n".into()))]);
    assert_eq!(sent(&out).len(), 1, "the host's change goes to the room");
    let out = core.flush("d2", Seen::Text("b!\n".into()));
    assert_eq!(writes(&out), vec![("c.txt".into(), "Xb!\n".into())]);
}

#[test]
fn an_unshareable_file_is_reported_once() {
    let mut core = one_file("a");
    let seen = || vec![("x.bin".into(), Seen::Unshareable("binary".into()))];
    assert_eq!(warned(&core.disk_changed(seen())), 1);
    assert_eq!(warned(&core.disk_changed(seen())), 0);
}

#[test]
fn a_change_too_big_for_one_message_goes_in_pieces_each_under_the_limit() {
    let mut core = one_file("ab");
    core.set_max_message_bytes(2_000);
    let mut server = Server {
        text: "ab".into(),
        history: Vec::new(),
    };
    let big = format!("a{}b", "line \"quoted\"\n".repeat(1_000));
    let out = core.disk_changed(vec![("a.txt".into(), Seen::Text(big.clone()))]);
    let mut queue = sent(&out);
    let mut pieces = 0;
    while let Some(msg) = queue.pop() {
        assert!(serde_json::to_vec(&msg).unwrap().len() <= 2_000);
        let ClientMessage::CodeUpdate {
            revision,
            seq,
            operation,
            ..
        } = msg
        else {
            panic!("only edits are sent")
        };
        pieces += 1;
        let revision = server.commit(revision, &operation);
        let out = core.received(ServerMessage::Ack {
            revision,
            seq,
            doc: Some("main".into()),
        });
        queue.extend(sent(&out));
    }
    assert!(pieces > 5, "{pieces}");
    assert_eq!(server.text, big);
    assert!(core.is_idle());

    // A new file too big for one `create_file` is created empty, then filled.
    core.disk_changed(vec![("new.txt".into(), Seen::Text(big.clone()))]);
    let out = core.expire_held(true);
    assert_eq!(
        sent(&out),
        vec![ClientMessage::CreateFile {
            path: "new.txt".into(),
            code: Some(String::new()),
            language: None
        }]
    );
    core.received(ServerMessage::FileCreated {
        file: file("d2", "new.txt"),
        user_id: "me".into(),
        tree_revision: 1,
    });
    let out = core.received(opened("d2", 1, ""));
    assert!(out.contains(&Action::Read("new.txt".into())), "{out:?}");
    let out = core.disk_changed(vec![("new.txt".into(), Seen::Text(big.clone()))]);
    let msgs = sent(&out);
    assert_eq!(msgs.len(), 1);
    assert!(serde_json::to_vec(&msgs[0]).unwrap().len() <= 2_000);
    assert_eq!(core.text("d2").unwrap(), big);
    assert!(
        core.dirty().is_empty(),
        "nothing to write back over the file"
    );
}

#[test]
fn an_edit_the_server_refuses_as_too_large_reopens_the_document_and_keeps_the_hosts_text() {
    let mut core = one_file("ab");
    let out = core.disk_changed(vec![(
        "a.txt".into(),
        Seen::Text("ab and much more".into()),
    )]);
    assert_eq!(sent(&out).len(), 1);
    let out = core.received(ServerMessage::Error {
        code: "document_too_large".into(),
        message: "too large".into(),
        seq: Some(1),
        doc: Some("main".into()),
        path: None,
    });
    assert!(
        sent(&out).contains(&ClientMessage::Open {
            doc: "main".into(),
            since: None
        }),
        "{out:?}"
    );
    let out = core.received(opened("main", 1, "ab"));
    assert!(
        out.contains(&Action::WriteAside {
            path: "a.txt".into(),
            text: "ab and much more".into()
        }),
        "{out:?}"
    );
    let out = core.flush("main", Seen::Text("ab and much more".into()));
    assert_eq!(writes(&out), vec![("a.txt".into(), "ab".into())]);
    // It syncs again: a colleague's edit is taken, the next change on disk sent.
    core.received(update("main", 2, Operation::replace(2, 2, 2, "!").unwrap()));
    assert_eq!(core.text("main").unwrap(), "ab!");
    let out = core.flush("main", Seen::Text("ab".into()));
    assert_eq!(writes(&out), vec![("a.txt".into(), "ab!".into())]);
    let out = core.disk_changed(vec![("a.txt".into(), Seen::Text("ab!?".into()))]);
    assert_eq!(sent(&out).len(), 1);
}

#[test]
fn a_rename_seen_as_two_batches_is_still_a_rename() {
    let mut core = two_files();
    // The old path's removal comes first, alone (the new directory's
    // contents are found a batch later).
    let out = core.disk_changed(vec![("b.txt".into(), Seen::Missing)]);
    assert!(sent(&out).is_empty(), "{out:?}");
    assert!(!core.is_idle(), "a vanished file is not settled");
    core.set_clock(RENAME_HOLD / 2);
    let out = core.disk_changed(vec![("new/dir/b.txt".into(), Seen::Text("b\n".into()))]);
    assert_eq!(
        sent(&out),
        vec![ClientMessage::RenameFile {
            doc: "d2".into(),
            path: "new/dir/b.txt".into()
        }]
    );
    core.set_clock(RENAME_HOLD * 4);
    assert!(core.expire_held(false).is_empty(), "no removal after all");
}

#[test]
fn a_file_replaced_at_its_path_within_the_hold_is_not_removed() {
    let mut core = two_files();
    core.disk_changed(vec![("b.txt".into(), Seen::Missing)]);
    core.set_clock(RENAME_HOLD / 2);
    core.disk_changed(vec![("b.txt".into(), Seen::Text("b\n".into()))]);
    core.set_clock(RENAME_HOLD * 4);
    assert!(core.expire_held(false).is_empty());
    assert!(core.held_due().is_none());
}

#[test]
fn stopping_sends_every_held_removal() {
    let mut core = two_files();
    core.disk_changed(vec![("b.txt".into(), Seen::Missing)]);
    assert_eq!(
        sent(&core.expire_held(true)),
        vec![ClientMessage::DeleteFile { doc: "d2".into() }]
    );
}

#[test]
fn a_file_seen_at_both_paths_then_gone_from_the_old_is_a_rename() {
    // A walk that read the old path just before the move and the new path
    // just after it: the new file is held, and the old path's removal,
    // heard a batch later, pairs with it.
    let mut core = two_files();
    let out = core.disk_changed(vec![
        ("b.txt".into(), Seen::Text("b\n".into())),
        ("sub/b.txt".into(), Seen::Text("b\n".into())),
    ]);
    assert!(sent(&out).is_empty(), "{out:?}");
    core.set_clock(RENAME_HOLD / 2);
    let out = core.disk_changed(vec![("b.txt".into(), Seen::Missing)]);
    assert_eq!(
        sent(&out),
        vec![ClientMessage::RenameFile {
            doc: "d2".into(),
            path: "sub/b.txt".into()
        }]
    );
    assert!(core.expire_held(true).is_empty());
}

#[test]
fn a_new_file_gone_again_within_the_hold_is_never_sent() {
    let mut core = two_files();
    core.disk_changed(vec![("tmp.swp".into(), Seen::Text("x".into()))]);
    core.disk_changed(vec![("tmp.swp".into(), Seen::Missing)]);
    assert!(core.expire_held(true).is_empty());
    assert!(core.held_due().is_none());
}
