//! Seeded random multi-replica convergence on the real room logic: two
//! [`RoomCore`]s (two server instances) share a simulated store that
//! decides the order of commits as Redis's scripts do (a commit on a stale
//! revision loses the race and gets what it missed; a tree change on a
//! stale tree likewise), publish to each other with random delays and
//! losses (recovered by the periodic check), and serve clients whose
//! documents are real [`Replica`]s typing at random, with their messages
//! delayed and their connections dropped and resumed with `since` (what
//! was still on the old connection's wire may arrive late, and must not be
//! applied).
//!
//! Project clients also open documents and create, rename and delete them
//! while others type in them; single-document clients keep to the main
//! document. After every step a client's document must be the store's at
//! the client's revision plus its unacknowledged edits; in the end every
//! document, every instance's tree and every client's view of the tree
//! agree with the store, so every edit was applied exactly once and every
//! tree change was seen in one order.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use collab_protocol::{ClientMessage, CommittedOp, Operation, Reconnected, Replica, ServerMessage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::tests::{config, Recorder};
use super::*;
use crate::store::{
    CommitReply, CommittedEntry, LoadedRoom, NewDoc, StoreEvent, Tail, TreeChange, TreeReply,
    TreeTail, MAIN_DOC,
};

/// One document in the shared store: its committed order.
struct SimDoc {
    log: Vec<CommittedEntry>,
    /// The document at each revision (`texts[r]`).
    texts: Vec<ropey::Rope>,
}

impl SimDoc {
    fn new(text: &str) -> Self {
        Self {
            log: Vec::new(),
            texts: vec![ropey::Rope::from_str(text)],
        }
    }

    fn revision(&self) -> u64 {
        self.log.len() as u64
    }

    fn mark(&self, revision: u64) -> Option<Mark> {
        let e = self.log.get((revision as usize).checked_sub(1)?)?;
        (e.id != 0).then_some((revision, e.id))
    }

    fn tail(&self, after: u64) -> Tail {
        Tail {
            revision: self.revision(),
            entries: self.log[after.min(self.revision()) as usize..].to_vec(),
            base: self.mark(after),
            fork: None,
        }
    }

    fn loaded(&self) -> LoadedDoc {
        LoadedDoc {
            revision: self.revision(),
            snapshot: self.texts[0].to_string(),
            log: self.log.clone(),
            ..LoadedDoc::default()
        }
    }
}

/// The shared store: every document's committed order and the tree's, as
/// Redis's scripts keep them.
struct SimStore {
    docs: BTreeMap<String, SimDoc>,
    tree: Vec<TreeEntry>,
    /// Document id -> path, as the tree stands.
    paths: BTreeMap<String, String>,
    /// Commits and tree changes that lost a race (the test must make them
    /// happen).
    conflicts: usize,
    tree_conflicts: usize,
    /// The chat, numbered in the order the store took the messages.
    chat: Vec<collab_protocol::ChatMessage>,
}

impl SimStore {
    fn commit(&mut self, doc: &str, req: CommitRequest) -> CommitReply {
        let Some(d) = self.docs.get_mut(doc) else {
            return CommitReply::Deleted;
        };
        if req.expected != d.revision() {
            self.conflicts += 1;
            return CommitReply::Conflict {
                revision: d.revision(),
                missed: d.log[req.expected as usize..].to_vec(),
            };
        }
        if req.expected_tip.is_some() && req.expected_tip != d.mark(req.expected) {
            return CommitReply::Parted {
                revision: d.revision(),
            };
        }
        for e in req.entries {
            let mut text = d.texts.last().expect("revision 0").clone();
            e.operation
                .apply(&mut text)
                .expect("committed operations fit");
            d.texts.push(text);
            d.log.push(e);
        }
        CommitReply::Committed {
            revision: d.revision(),
            log_bytes: 0,
        }
    }

    fn commit_tree(&mut self, req: TreeRequest) -> TreeReply {
        let expected = req.entry.revision - 1;
        if expected != self.tree.len() as u64 {
            self.tree_conflicts += 1;
            return TreeReply::Conflict {
                revision: self.tree.len() as u64,
                // As the tree script: nothing when the caller is ahead.
                missed: self
                    .tree
                    .get(expected as usize..)
                    .unwrap_or_default()
                    .to_vec(),
            };
        }
        match &req.entry.change {
            TreeChange::Create { file } => {
                self.docs.insert(file.doc.clone(), SimDoc::new(&req.code));
                self.paths.insert(file.doc.clone(), file.path.clone());
            }
            TreeChange::Rename { doc, path, .. } => {
                self.paths.insert(doc.clone(), path.clone());
            }
            TreeChange::Delete { doc, .. } => {
                self.docs.remove(doc);
                self.paths.remove(doc);
            }
        }
        self.tree.push(req.entry);
        TreeReply::Committed
    }

    fn tree_tail(&self, after: u64) -> TreeTail {
        TreeTail {
            links: None,
            chat_seq: 0,
            revision: self.tree.len() as u64,
            entries: self.tree[(after as usize).min(self.tree.len())..].to_vec(),
        }
    }
}

/// One server instance: its core, the commits it has in flight, the
/// answers of those the store already took that have not come back yet
/// (meanwhile a check or a catch-up may read the committed entries), and
/// the events published to it that have not arrived yet.
struct Instance {
    core: RoomCore<Recorder>,
    commits: BTreeMap<DocId, CommitRequest>,
    tree_commit: Option<TreeRequest>,
    replies: VecDeque<Reply>,
    inbox: VecDeque<StoreEvent>,
}

/// The store's answer to a commit, on its way back.
enum Reply {
    Doc(DocId, CommitReply),
    Tree(TreeReply),
}

/// One client: its documents, the instance it talks to and its connection.
struct Client {
    /// Its previous connection, which a racing old socket may still send on.
    old_conn: Option<ConnId>,
    /// What was on the old connection's wire, arriving late.
    late: VecDeque<ClientMessage>,
    id: String,
    /// A project client (else it only has the main document).
    project: bool,
    /// Its open documents.
    replicas: BTreeMap<String, Replica>,
    /// The tree as it heard it: doc -> path.
    tree: BTreeMap<String, String>,
    /// Documents it asked to open and has not heard `opened` of yet.
    opening: std::collections::BTreeSet<String>,
    /// Documents it closed: what the room sent of them before the close
    /// reached it is dropped.
    closed: std::collections::BTreeSet<String>,
    /// The next seq of each document it had open: a client's seqs in a
    /// document only grow, across closes and reconnects.
    seqs: BTreeMap<String, u64>,
    instance: usize,
    conn: ConnId,
    heard: Recorder,
    /// Sent and not yet received by the room.
    outbox: VecDeque<ClientMessage>,
    /// The chat messages heard on this connection (from its `init` on).
    chat: Vec<u64>,
    /// How many chat messages it wrote.
    said: usize,
}

struct World {
    rng: StdRng,
    store: SimStore,
    instances: Vec<Instance>,
    clients: Vec<Client>,
    /// Tree changes are made (and the main document may be deleted only
    /// when every client is a project client).
    tree_changes: bool,
}

const ALPHABET: [&str; 6] = ["a", "b", "é", "界", "😀", "\n"];
/// Paths the clients create and move documents to: few, so they collide.
const PATHS: [&str; 6] = ["a.rs", "b.rs", "src/c.rs", "src/d.rs", "e.md", "f/g.txt"];

/// The doc a client message names (`None`: the main one).
fn named(doc: &Option<String>) -> String {
    doc.clone().unwrap_or_else(|| MAIN_DOC.to_owned())
}

impl World {
    /// A room of `files` (the first is the main document), served by two
    /// instances to `project` project clients and `single`
    /// single-document ones.
    fn new(seed: u64, files: &[(&str, &str)], project: usize, single: usize) -> Self {
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let docs: Vec<NewDoc> = files
            .iter()
            .enumerate()
            .map(|(i, (path, code))| NewDoc {
                file: FileInfo {
                    doc: if i == 0 {
                        MAIN_DOC.into()
                    } else {
                        format!("doc{i}")
                    },
                    path: (*path).into(),
                    size: code.len() as u64,
                    language: "rust".into(),
                },
                code: (*code).into(),
            })
            .collect();
        let store = SimStore {
            docs: docs
                .iter()
                .map(|d| (d.file.doc.clone(), SimDoc::new(&d.code)))
                .collect(),
            tree: Vec::new(),
            paths: docs
                .iter()
                .map(|d| (d.file.doc.clone(), d.file.path.clone()))
                .collect(),
            conflicts: 0,
            tree_conflicts: 0,
            chat: Vec::new(),
        };
        // A shared store hands out the main document with the room; the
        // others are read when opened.
        let mut loaded = LoadedRoom::new(&docs);
        loaded.docs.retain(|(id, _)| id == MAIN_DOC);
        let instances = (0..2)
            .map(|n| {
                let mut core = RoomCore::load(
                    "room".into(),
                    loaded.clone(),
                    config(),
                    true,
                    metrics.clone(),
                    Instant::now(),
                )
                .unwrap();
                core.take_actions();
                core.seed_ids(seed * 2 + n);
                Instance {
                    core,
                    commits: BTreeMap::new(),
                    tree_commit: None,
                    replies: VecDeque::new(),
                    inbox: VecDeque::new(),
                }
            })
            .collect();
        let mut world = Self {
            rng: StdRng::seed_from_u64(seed),
            store,
            instances,
            clients: Vec::new(),
            tree_changes: project > 0,
        };
        for i in 0..project + single {
            let instance = i % 2;
            let is_project = i < project;
            let id = format!("client-{i}");
            let heard = Recorder::default();
            world.prepare_join(instance);
            let joined = join(
                &mut world.instances[instance].core,
                &id,
                None,
                is_project,
                heard.clone(),
            );
            let mut client = Client {
                old_conn: None,
                late: VecDeque::new(),
                id,
                project: is_project,
                replicas: BTreeMap::new(),
                tree: BTreeMap::new(),
                opening: Default::default(),
                closed: Default::default(),
                seqs: BTreeMap::new(),
                instance,
                conn: joined.conn_id,
                heard,
                outbox: VecDeque::new(),
                chat: Vec::new(),
                said: 0,
            };
            client.init(joined.init);
            world.clients.push(client);
            world.actions(instance);
        }
        world
    }

    /// What the actor does before a join: read the tree's news, and catch
    /// up with (or read) the main document.
    fn prepare_join(&mut self, i: usize) {
        let after = self.instances[i].core.tree_revision();
        let tail = self.store.tree_tail(after);
        self.instances[i]
            .core
            .tree_caught_up(Ok(Some(tail)), Instant::now());
        self.actions(i);
        match self.instances[i].core.main_id() {
            Some((main, true)) => {
                let after = self.instances[i].core.revision_of(&main).unwrap();
                let tail = self.store.docs.get(&*main).map(|d| d.tail(after));
                self.instances[i]
                    .core
                    .caught_up(&main, Ok(tail), Instant::now());
            }
            Some((main, false)) => {
                let loaded = self.store.docs.get(&*main).map(SimDoc::loaded);
                self.instances[i].core.doc_loaded(&main, Ok(loaded));
            }
            None => {}
        }
        self.actions(i);
    }

    /// Takes what instance `i`'s core asked of the store.
    fn actions(&mut self, i: usize) {
        loop {
            let actions = self.instances[i].core.take_actions();
            if actions.is_empty() {
                return;
            }
            for a in actions {
                let now = Instant::now();
                let core = &mut self.instances[i].core;
                match a {
                    Action::Commit(doc, req) => {
                        let before = self.instances[i].commits.insert(doc, req);
                        assert!(before.is_none(), "one commit per document at a time");
                    }
                    Action::CommitTree(req) => {
                        let before = self.instances[i].tree_commit.replace(req);
                        assert!(before.is_none(), "one tree change at a time");
                    }
                    // The actor reads the store at once.
                    Action::CatchUp(doc) => {
                        let after = core.revision_of(&doc).expect("held");
                        let tail = self.store.docs.get(&*doc).map(|d| d.tail(after));
                        core.caught_up(&doc, Ok(tail), now);
                    }
                    Action::Load(doc) => {
                        let loaded = self.store.docs.get(&*doc).map(SimDoc::loaded);
                        core.doc_loaded(&doc, Ok(loaded));
                    }
                    Action::CatchUpTree => {
                        let tail = self.store.tree_tail(core.tree_revision());
                        core.tree_caught_up(Ok(Some(tail)), now);
                    }
                    // The store numbers a message and publishes it to every
                    // instance, its author's too (maybe: events get lost).
                    Action::Publish(Publish::Chat(m)) => {
                        let seq = self.store.chat.len() as u64 + 1;
                        let m = collab_protocol::ChatMessage { seq, ..m };
                        self.store.chat.push(m.clone());
                        for inst in &mut self.instances {
                            if !self.rng.random_bool(0.1) {
                                inst.inbox.push_back(StoreEvent::Chat(m.clone()));
                            }
                        }
                    }
                    Action::CatchUpChat(after) => {
                        let read = self.store.chat[after as usize..].to_vec();
                        self.instances[i].core.chat_caught_up(Ok(read));
                    }
                    // The simulated clients have no owner's controls.
                    Action::Publish(_) | Action::Owner(..) => {}
                }
            }
        }
    }

    /// A commit of instance `i` reaches the store; its answer comes back,
    /// and the other instance is told (maybe: the event may be lost).
    fn deliver_commit(&mut self, i: usize) {
        let Some(doc) = self.instances[i].commits.keys().next().cloned() else {
            return;
        };
        let req = self.instances[i].commits.remove(&doc).unwrap();
        let base = req.expected_tip;
        let reply = self.store.commit(&doc, req.clone());
        if matches!(reply, CommitReply::Committed { .. }) && !self.rng.random_bool(0.1) {
            self.instances[1 - i].inbox.push_back(StoreEvent::Ops {
                doc: doc.to_string(),
                size: Some(req.size),
                base,
                entries: req.entries,
            });
        }
        self.answer(i, Reply::Doc(doc, reply));
    }

    /// The store's answer reaches instance `i` now, or later (its commit
    /// is in the store, and checks may read it first).
    fn answer(&mut self, i: usize, reply: Reply) {
        self.instances[i].replies.push_back(reply);
        if self.rng.random_bool(0.5) {
            self.deliver_reply(i);
        }
    }

    fn deliver_reply(&mut self, i: usize) {
        let Some(reply) = self.instances[i].replies.pop_front() else {
            return;
        };
        let now = Instant::now();
        match reply {
            Reply::Doc(doc, r) => self.instances[i].core.committed(&doc, Ok(r), now),
            Reply::Tree(r) => self.instances[i].core.tree_committed(Ok(r), now),
        }
        self.actions(i);
    }

    /// The tree change of instance `i` reaches the store, likewise.
    fn deliver_tree(&mut self, i: usize) {
        let Some(req) = self.instances[i].tree_commit.take() else {
            return;
        };
        let reply = self.store.commit_tree(req.clone());
        if reply == TreeReply::Committed && !self.rng.random_bool(0.1) {
            self.instances[1 - i]
                .inbox
                .push_back(StoreEvent::Tree(req.entry));
        }
        self.answer(i, Reply::Tree(reply));
    }

    fn deliver_event(&mut self, i: usize) {
        if let Some(ev) = self.instances[i].inbox.pop_front() {
            self.instances[i].core.store_event(ev, Instant::now());
            self.actions(i);
        }
    }

    /// The periodic check: the tree log and the held documents' logs after
    /// the instance's revisions.
    fn check(&mut self, i: usize) {
        let now = Instant::now();
        let core = &mut self.instances[i].core;
        for e in self.store.tree_tail(core.tree_revision()).entries {
            core.store_event(StoreEvent::Tree(e), now);
        }
        for m in &self.store.chat[core.chat.last() as usize..] {
            core.store_event(StoreEvent::Chat(m.clone()), now);
        }
        for (doc, (revision, _)) in core.marks() {
            if let Some(d) = self.store.docs.get(&*doc) {
                let tail = d.tail(revision);
                let ops = StoreEvent::Ops {
                    doc: doc.to_string(),
                    size: None,
                    base: tail.base,
                    entries: tail.entries,
                };
                core.store_event(ops, now);
            }
        }
        self.actions(i);
    }

    fn type_something(&mut self, c: usize) {
        let client = &mut self.clients[c];
        let Some(doc) = pick(&mut self.rng, client.replicas.keys().cloned()) else {
            return;
        };
        let replica = client.replicas.get_mut(&doc).unwrap();
        let len = replica.doc.len_chars();
        let start = self.rng.random_range(0..=len);
        let end = if len > start && self.rng.random_bool(0.3) {
            self.rng.random_range(start..=len.min(start + 3))
        } else {
            start
        };
        let text: String = (0..self.rng.random_range(0..3))
            .map(|_| ALPHABET[self.rng.random_range(0..ALPHABET.len())])
            .collect();
        let op = Operation::replace(len, start, end, &text).unwrap();
        if op.is_noop() {
            return;
        }
        if let Some(msg) = replica.edit(op).unwrap() {
            client.send(&doc, msg);
        }
    }

    /// A project client opens a document it does not have open, or closes
    /// one it has (only when nothing of it is unacknowledged).
    fn open_or_close(&mut self, c: usize) {
        let client = &mut self.clients[c];
        if !client.project {
            return;
        }
        let closed = client
            .tree
            .keys()
            .filter(|d| !client.replicas.contains_key(*d) && !client.opening.contains(*d))
            .cloned();
        if let Some(doc) = pick(&mut self.rng, closed) {
            client.opening.insert(doc.clone());
            client
                .outbox
                .push_back(ClientMessage::Open { doc, since: None });
            return;
        }
        let settled = client
            .replicas
            .iter()
            .filter(|(d, r)| r.sync.is_synchronized() && !client.opening.contains(*d))
            .map(|(d, _)| d.clone());
        if let Some(doc) = pick(&mut self.rng, settled) {
            client.drop_doc(&doc);
            client.closed.insert(doc.clone());
            client.outbox.push_back(ClientMessage::Close { doc });
        }
    }

    /// A project client changes the tree.
    fn change_tree(&mut self, c: usize) {
        if !self.tree_changes || !self.clients[c].project {
            return;
        }
        let path = PATHS[self.rng.random_range(0..PATHS.len())].to_owned();
        let all_project = self.clients.iter().all(|c| c.project);
        let client = &mut self.clients[c];
        let docs = client
            .tree
            .keys()
            .filter(|d| all_project || *d != MAIN_DOC)
            .cloned();
        let doc = pick(&mut self.rng, docs);
        let msg = match (self.rng.random_range(0..3), doc) {
            (0, Some(doc)) => ClientMessage::RenameFile { doc, path },
            (1, Some(doc)) if self.rng.random_bool(0.5) => ClientMessage::DeleteFile { doc },
            _ => ClientMessage::CreateFile {
                path,
                code: Some("new\n".into()),
                language: None,
            },
        };
        client.outbox.push_back(msg);
    }

    /// A client says something in the chat (maybe about a line).
    fn chat(&mut self, c: usize) {
        let client = &mut self.clients[c];
        client.said += 1;
        let text = format!("{} says {}", client.id, client.said);
        let line = self.rng.random_bool(0.3).then_some(1);
        client.outbox.push_back(ClientMessage::Chat {
            text,
            doc: None,
            line,
        });
    }

    fn send_from(&mut self, c: usize) {
        let Some(msg) = self.clients[c].outbox.pop_front() else {
            return;
        };
        let (i, conn) = (self.clients[c].instance, self.clients[c].conn);
        deliver(&mut self.instances[i].core, conn, msg);
        self.actions(i);
    }

    /// A late message of the client's old connection reaches the room,
    /// which must not apply it (the client resends what is unacknowledged).
    fn deliver_late(&mut self, c: usize) {
        let (Some(old), Some(msg)) = (self.clients[c].old_conn, self.clients[c].late.pop_front())
        else {
            return;
        };
        let i = self.clients[c].instance;
        deliver(&mut self.instances[i].core, old, msg);
        self.actions(i);
    }

    /// Each of the client's documents is the store's at the client's
    /// revision plus its unacknowledged edits (unless it was deleted: the
    /// client is told and drops it).
    fn check_client(&self, c: usize) {
        let client = &self.clients[c];
        for (doc, replica) in &client.replicas {
            let Some(d) = self.store.docs.get(doc) else {
                continue;
            };
            let mut text = d.texts[replica.sync.revision() as usize].clone();
            if let Some(op) = replica.sync.unacknowledged() {
                op.apply(&mut text).expect("unacknowledged edits fit");
            }
            assert_eq!(text.to_string(), replica.text(), "{} in {doc}", client.id);
        }
    }

    fn receive(&mut self, c: usize) {
        let client = &mut self.clients[c];
        for msg in client.heard.take() {
            client.hear(msg);
        }
        let closed = client.heard.closed();
        assert_eq!(
            closed,
            None,
            "{} was closed: {:?}",
            client.id,
            client.heard.take()
        );
    }

    /// The client's connection drops (what was on the wire is lost) and it
    /// reconnects with `since`, as the editor does, and opens its documents
    /// again with theirs.
    fn reconnect(&mut self, c: usize) {
        let i = self.clients[c].instance;
        let old = self.clients[c].conn;
        // Some of what was on the wire may still reach the room, late, on
        // the old connection (a racing socket); the rest is lost.
        let keep = self.rng.random_range(0..=self.clients[c].outbox.len());
        let client = &mut self.clients[c];
        client.late = client.outbox.drain(..).take(keep).collect();
        client.old_conn = Some(old);
        for msg in client.heard.take() {
            // What was queued for the old connection is lost, but not the
            // tree's news for the test's bookkeeping: the new init has it.
            let _ = msg;
        }
        self.instances[i].core.leave(old, Instant::now());
        self.actions(i);
        self.prepare_join(i);
        let heard = Recorder::default();
        let client = &self.clients[c];
        let since = client.replicas.get(MAIN_DOC).map(|r| r.sync.revision());
        let (id, project) = (client.id.clone(), client.project);
        let joined = join(
            &mut self.instances[i].core,
            &id,
            since,
            project,
            heard.clone(),
        );
        self.actions(i);
        let client = &mut self.clients[c];
        client.conn = joined.conn_id;
        client.heard = heard;
        client.reinit(joined.init);
    }

    fn step(&mut self) {
        let c = self.rng.random_range(0..self.clients.len());
        let i = self.rng.random_range(0..2);
        match self.rng.random_range(0..100) {
            0..2 => self.chat(c),
            2..28 => self.type_something(c),
            28..31 => self.open_or_close(c),
            31..33 => self.change_tree(c),
            33..48 => self.send_from(c),
            48..50 => self.deliver_late(c),
            50..63 => {
                self.receive(c);
                self.check_client(c);
            }
            63..73 => self.deliver_commit(i),
            73..76 => self.deliver_reply(i),
            76..79 => self.deliver_tree(i),
            79..93 => self.deliver_event(i),
            93..97 => self.check(i),
            _ => {
                self.reconnect(c);
                self.check_client(c);
            }
        }
    }

    /// Delivers everything until nothing moves.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            let busy = self.instances.iter().any(|i| {
                !i.commits.is_empty()
                    || i.tree_commit.is_some()
                    || !i.replies.is_empty()
                    || !i.inbox.is_empty()
            }) || self.clients.iter().any(|c| {
                !c.outbox.is_empty()
                    || !c.heard.0.borrow().queue.is_empty()
                    || c.replicas.values().any(|r| !r.sync.is_synchronized())
            });
            if !busy {
                break;
            }
            for i in 0..2 {
                while !self.instances[i].commits.is_empty() {
                    self.deliver_commit(i);
                }
                self.deliver_tree(i);
                while !self.instances[i].replies.is_empty() {
                    self.deliver_reply(i);
                }
                while !self.instances[i].inbox.is_empty() {
                    self.deliver_event(i);
                }
                self.check(i);
            }
            for c in 0..self.clients.len() {
                while !self.clients[c].late.is_empty() {
                    self.deliver_late(c);
                }
                while !self.clients[c].outbox.is_empty() {
                    self.send_from(c);
                }
                self.receive(c);
            }
        }
        for i in 0..2 {
            self.check(i);
        }
        for c in 0..self.clients.len() {
            self.receive(c);
        }
    }
}

impl Client {
    /// Sends an edit of `doc` (single-document clients name none). Not
    /// while the document is being opened again: its `opened` rebases what
    /// is unacknowledged and sends it then.
    fn send(&mut self, doc: &str, msg: ClientMessage) {
        if self.opening.contains(doc) {
            return;
        }
        let msg = match (msg, self.project) {
            (
                ClientMessage::CodeUpdate {
                    revision,
                    seq,
                    operation,
                    ..
                },
                true,
            ) => ClientMessage::CodeUpdate {
                revision,
                seq,
                operation,
                doc: Some(doc.to_owned()),
            },
            (msg, _) => msg,
        };
        self.outbox.push_back(msg);
    }

    /// Starts a replica of `doc` at `revision`, numbering on from the seqs
    /// it used in it before.
    fn start(&mut self, doc: &str, revision: u64, code: &str) {
        let next = self.seqs.get(doc).copied().unwrap_or(1);
        self.replicas
            .insert(doc.to_owned(), Replica::continuing(revision, code, next));
    }

    /// Lets go of a document's replica, keeping where its seqs are.
    fn drop_doc(&mut self, doc: &str) {
        if let Some(r) = self.replicas.remove(doc) {
            self.seqs.insert(doc.to_owned(), r.sync.next_seq());
        }
    }

    /// The first `init`: the main document, and the tree.
    fn init(&mut self, init: ServerMessage) {
        self.take_chat(&init);
        let ServerMessage::Init {
            revision,
            code,
            doc,
            files,
            ..
        } = init
        else {
            unreachable!()
        };
        self.tree = match files {
            Some(files) => files.into_iter().map(|f| (f.doc, f.path)).collect(),
            None => BTreeMap::new(),
        };
        if !self.project || doc.is_some() {
            self.start(MAIN_DOC, revision, &code);
        }
    }

    /// The `init` of a reconnect: the main document rebased, the tree
    /// taken, the other documents opened again with `since`.
    fn reinit(&mut self, init: ServerMessage) {
        self.take_chat(&init);
        let ServerMessage::Init {
            revision,
            code,
            missed,
            doc,
            files,
            ..
        } = init
        else {
            unreachable!()
        };
        if let Some(files) = files {
            self.tree = files.into_iter().map(|f| (f.doc, f.path)).collect();
        }
        // Opens in flight may be lost with the old connection; ask again
        // when it pleases.
        self.opening.clear();
        match (
            self.replicas.get_mut(MAIN_DOC),
            doc.is_some() || !self.project,
        ) {
            (Some(_), true) => self.rebase(MAIN_DOC, revision, &code, missed),
            (None, true) => self.start(MAIN_DOC, revision, &code),
            (_, false) => self.drop_doc(MAIN_DOC),
        }
        let others: Vec<(String, u64)> = self
            .replicas
            .iter()
            .filter(|(d, _)| *d != MAIN_DOC)
            .map(|(d, r)| (d.clone(), r.sync.revision()))
            .collect();
        for (doc, since) in others {
            if self.tree.contains_key(&doc) {
                self.opening.insert(doc.clone());
                let open = ClientMessage::Open {
                    doc,
                    since: Some(since),
                };
                self.outbox.push_back(open);
            } else {
                self.drop_doc(&doc); // Deleted while away.
            }
        }
    }

    fn rebase(&mut self, doc: &str, revision: u64, code: &str, missed: Option<Vec<CommittedOp>>) {
        let replica = self.replicas.get_mut(doc).expect("held");
        match replica.reconnected(revision, code, missed.as_deref()) {
            Reconnected::Rebased { send, .. } => {
                for msg in send {
                    self.send(doc, msg);
                }
            }
            // Nothing was unacknowledged: taking the room's text loses nothing.
            Reconnected::Replaced { lost: None } => {}
            Reconnected::Replaced { lost } => {
                panic!("{} in {doc}: could not rebase (lost {lost:?})", self.id)
            }
        }
    }

    /// The chat an `init` carries: numbered without gaps, oldest first.
    fn take_chat(&mut self, init: &ServerMessage) {
        let ServerMessage::Init { chat, .. } = init else {
            unreachable!()
        };
        self.chat = chat.iter().map(|m| m.seq).collect();
        let first = self.chat.first().copied().unwrap_or(1);
        let expected: Vec<u64> = (first..first + self.chat.len() as u64).collect();
        assert_eq!(self.chat, expected, "{}: the chat of its init", self.id);
    }

    /// Handles one message the room sent.
    fn hear(&mut self, msg: ServerMessage) {
        let doc_of = |doc: &Option<String>| named(doc);
        match &msg {
            ServerMessage::CodeUpdate(c) => self.hand_to_replica(&doc_of(&c.doc), &msg),
            ServerMessage::Ack { doc, .. } => self.hand_to_replica(&doc_of(doc), &msg),
            ServerMessage::Opened {
                doc,
                revision,
                code,
                missed,
                ..
            } => {
                if !self.opening.remove(doc) {
                    return; // Asked on a connection since replaced.
                }
                if self.replicas.contains_key(doc) {
                    self.rebase(doc, *revision, code, missed.clone());
                } else {
                    self.start(doc, *revision, code);
                }
            }
            ServerMessage::FileCreated { file, .. } => {
                self.tree.insert(file.doc.clone(), file.path.clone());
            }
            ServerMessage::Chat(m) => {
                // Once each, in order, no gaps.
                let next = self.chat.last().map_or(m.seq, |last| last + 1);
                assert_eq!(m.seq, next, "{}: chat after {:?}", self.id, self.chat);
                self.chat.push(m.seq);
            }
            ServerMessage::FileRenamed { doc, path, .. } => {
                self.tree.insert(doc.clone(), path.clone());
            }
            ServerMessage::FileDeleted { doc, .. } => {
                self.tree.remove(doc);
                // Its unacknowledged edits are refused; the client keeps
                // them (here: drops the document).
                self.drop_doc(doc);
            }
            ServerMessage::Error { code, .. } => {
                // Refusals of tree changes that lost a race, of edits to a
                // deleted document, of opening one deleted meanwhile, of a
                // message for a document closed: expected, the connection
                // stays open.
                assert!(
                    [
                        "path_taken",
                        "document_not_found",
                        "document_deleted",
                        "not_open",
                        // Chat messages written faster than the chat's rate.
                        "chat_rate_limited",
                    ]
                    .contains(&code.as_str()),
                    "{}: {msg:?}",
                    self.id
                );
            }
            _ => {}
        }
    }

    fn hand_to_replica(&mut self, doc: &str, msg: &ServerMessage) {
        if self.closed.contains(doc) && !self.replicas.contains_key(doc) {
            return;
        }
        let Some(replica) = self.replicas.get_mut(doc) else {
            panic!("{}: {msg:?} for a document it does not have open", self.id);
        };
        let reply = replica
            .handle(msg)
            .unwrap_or_else(|e| panic!("{} in {doc}: {e} on {msg:?}", self.id));
        if let Some(reply) = reply {
            self.send(doc, reply);
        }
    }
}

/// One of `items`, at random.
fn pick<T>(rng: &mut StdRng, items: impl Iterator<Item = T>) -> Option<T> {
    let items: Vec<T> = items.collect();
    if items.is_empty() {
        return None;
    }
    let i = rng.random_range(0..items.len());
    items.into_iter().nth(i)
}

/// Hands a client message to the room as the connection's reader does.
fn deliver(core: &mut RoomCore<Recorder>, conn: ConnId, msg: ClientMessage) {
    let now = Instant::now();
    match msg {
        ClientMessage::CodeUpdate {
            revision,
            seq,
            operation,
            doc,
        } => core.edit(conn, doc.as_deref(), revision, seq, operation, now),
        ClientMessage::Open { doc, since } => core.open(conn, &doc, since),
        ClientMessage::Close { doc } => core.close(conn, &doc),
        ClientMessage::CreateFile {
            path,
            code,
            language,
        } => core.create_file(conn, path, code.unwrap_or_default(), language, now),
        ClientMessage::RenameFile { doc, path } => core.rename_file(conn, doc, path, now),
        ClientMessage::DeleteFile { doc } => core.delete_file(conn, doc, now),
        ClientMessage::Chat { text, doc, line } => {
            core.chat(conn, text, doc.as_deref(), line, now, 0)
        }
        ClientMessage::CursorMove { .. }
        | ClientMessage::Ping
        | ClientMessage::Typing
        | ClientMessage::SetReadOnly { .. }
        | ClientMessage::RemoveUser { .. }
        | ClientMessage::EndRoom
        | ClientMessage::RotateLinks => {}
    }
}

fn join(
    core: &mut RoomCore<Recorder>,
    client: &str,
    since: Option<u64>,
    project: bool,
    sink: Recorder,
) -> Joined {
    core.join(
        JoinRequest {
            client_id: client.into(),
            name: client.into(),
            since,
            viewer_id: None,
            link: None,
            watcher: false,
            typing: true,
            owner: false,
            project,
            sink,
        },
        Instant::now(),
    )
    .expect("joins")
}

/// Runs one seeded world to the end; returns how many commits and tree
/// changes lost a race, and how many chat messages were said.
fn run(
    seed: u64,
    files: &[(&str, &str)],
    project: usize,
    single: usize,
    steps: usize,
) -> (usize, usize, usize) {
    let mut world = World::new(seed, files, project, single);
    for _ in 0..steps {
        world.step();
        for i in 0..2 {
            assert!(
                world.instances[i].core.stop().is_none(),
                "seed {seed}: instance {i} stopped: {:?}",
                world.instances[i].core.stop()
            );
        }
    }
    world.settle();
    let expected: BTreeMap<String, String> = world
        .store
        .docs
        .iter()
        .map(|(id, d)| (id.clone(), d.texts.last().unwrap().to_string()))
        .collect();
    let paths: Vec<(String, String)> = {
        let mut p: Vec<(String, String)> = world
            .store
            .paths
            .iter()
            .map(|(d, p)| (p.clone(), d.clone()))
            .collect();
        p.sort();
        p
    };
    for (i, instance) in world.instances.iter().enumerate() {
        let (revision, files) = instance.core.files();
        assert_eq!(
            revision,
            world.store.tree.len() as u64,
            "seed {seed}: instance {i}"
        );
        let theirs: Vec<(String, String)> = files.into_iter().map(|f| (f.path, f.doc)).collect();
        assert_eq!(theirs, paths, "seed {seed}: instance {i}'s tree");
        for (doc, (revision, _)) in instance.core.marks() {
            if let Some(d) = world.store.docs.get(&*doc) {
                assert_eq!(revision, d.revision(), "seed {seed}: instance {i} in {doc}");
            }
        }
    }
    let chat: Vec<u64> = world.store.chat.iter().map(|m| m.seq).collect();
    for c in &world.clients {
        assert!(
            chat.ends_with(&c.chat),
            "seed {seed}: {} heard the chat {:?}",
            c.id,
            c.chat
        );
        assert_eq!(
            c.chat.last(),
            chat.last(),
            "seed {seed}: {} heard all",
            c.id
        );
        if c.project {
            let tree: BTreeMap<String, String> =
                paths.iter().map(|(p, d)| (d.clone(), p.clone())).collect();
            assert_eq!(c.tree, tree, "seed {seed}: {}'s tree", c.id);
        }
        for (doc, replica) in &c.replicas {
            assert!(
                replica.sync.is_synchronized(),
                "seed {seed}: {} has unsent edits in {doc}",
                c.id
            );
            assert_eq!(
                Some(&replica.text()),
                expected.get(doc),
                "seed {seed}: {} in {doc}",
                c.id
            );
        }
    }
    (
        world.store.conflicts,
        world.store.tree_conflicts,
        world.store.chat.len(),
    )
}

const ONE_FILE: &[(&str, &str)] = &[("main.rs", "fn main() {}\n")];
const PROJECT: &[(&str, &str)] = &[
    ("main.rs", "fn main() {}\n"),
    ("lib.rs", "pub mod x;\n"),
    ("x.rs", "// x\n"),
];

#[test]
fn two_instances_and_their_clients_converge_whatever_the_interleaving() {
    let (mut conflicts, mut said) = (0, 0);
    for seed in 0..150 {
        let (c, _, s) = run(seed, ONE_FILE, 0, 4, 300);
        conflicts += c;
        said += s;
    }
    assert!(
        conflicts > 150,
        "races were lost {conflicts} times: too few to test rebasing"
    );
    // Every client heard each chat message once, in order (checked as they
    // arrived and at the end): there must have been enough of them.
    assert!(said > 500, "only {said} chat messages were said");
}

#[test]
fn a_crowded_room_converges_too() {
    let conflicts: usize = (1000..1010)
        .map(|seed| run(seed, ONE_FILE, 0, 10, 1500).0)
        .sum();
    assert!(conflicts > 50, "races were lost {conflicts} times");
}

#[test]
fn documents_and_the_tree_converge_under_creates_renames_and_deletes() {
    let (mut conflicts, mut tree_conflicts) = (0, 0);
    for seed in 2000..2120 {
        let (c, t, _) = run(seed, PROJECT, 4, 0, 600);
        conflicts += c;
        tree_conflicts += t;
    }
    assert!(conflicts > 100, "edit races were lost {conflicts} times");
    assert!(
        tree_conflicts > 20,
        "tree races were lost {tree_conflicts} times"
    );
}

#[test]
fn single_document_clients_keep_to_the_main_document_of_a_project() {
    let (mut conflicts, mut tree_conflicts) = (0, 0);
    for seed in 3000..3060 {
        let (c, t, _) = run(seed, PROJECT, 3, 2, 600);
        conflicts += c;
        tree_conflicts += t;
    }
    assert!(conflicts > 50, "edit races were lost {conflicts} times");
    assert!(
        tree_conflicts > 5,
        "tree races were lost {tree_conflicts} times"
    );
}
