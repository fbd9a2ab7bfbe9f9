//! Seeded random multi-replica convergence on the real room logic: two
//! [`RoomCore`]s (two server instances) share a simulated store that
//! decides the order of commits as Redis's script does (a commit on a stale
//! revision loses the race and gets what it missed), publish to each other
//! with random delays and losses (recovered by the periodic check), and
//! serve clients that are real [`Replica`]s typing at random, with their
//! messages delayed and their connections dropped and resumed with `since`
//! (what was still on the old connection's wire may arrive late, and must
//! not be applied). After every step a client's document must be the
//! store's at the client's revision plus its unacknowledged edits; in the
//! end everyone has the same text, so every edit was applied exactly once.

use std::collections::VecDeque;
use std::time::Instant;

use collab_protocol::{ClientMessage, Operation, Reconnected, Replica, ServerMessage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::tests::{config, Recorder};
use super::*;
use crate::store::{CommitReply, CommittedEntry, LoadedRoom, StoreEvent, Tail};

/// The shared store: the committed order, as Redis's commit script keeps it.
struct SimStore {
    log: Vec<CommittedEntry>,
    /// The document at each revision (`docs[r]`).
    docs: Vec<ropey::Rope>,
    /// Commits that lost a race (the test must make them happen).
    conflicts: usize,
}

impl SimStore {
    fn revision(&self) -> u64 {
        self.log.len() as u64
    }

    fn mark(&self, revision: u64) -> Option<Mark> {
        let e = self.log.get((revision as usize).checked_sub(1)?)?;
        (e.id != 0).then_some((revision, e.id))
    }

    fn commit(&mut self, req: CommitRequest) -> CommitReply {
        if req.expected != self.revision() {
            self.conflicts += 1;
            return CommitReply::Conflict {
                revision: self.revision(),
                missed: self.log[req.expected as usize..].to_vec(),
            };
        }
        if req.expected_tip.is_some() && req.expected_tip != self.mark(req.expected) {
            return CommitReply::Parted {
                revision: self.revision(),
            };
        }
        for e in req.entries {
            let mut doc = self.docs.last().expect("revision 0").clone();
            e.operation
                .apply(&mut doc)
                .expect("committed operations fit");
            self.docs.push(doc);
            self.log.push(e);
        }
        CommitReply::Committed {
            revision: self.revision(),
            log_bytes: 0,
        }
    }

    fn tail(&self, after: u64) -> Tail {
        Tail {
            revision: self.revision(),
            entries: self.log[after.min(self.revision()) as usize..].to_vec(),
            base: self.mark(after),
            fork: None,
        }
    }
}

/// One server instance: its core, the commit it has in flight, and the
/// events published to it that have not arrived yet.
struct Instance {
    core: RoomCore<Recorder>,
    commit: Option<CommitRequest>,
    inbox: VecDeque<StoreEvent>,
}

/// One client: its replica, the instance it talks to and its connection.
struct Client {
    /// Its previous connection, which a racing old socket may still send on.
    old_conn: Option<ConnId>,
    /// What was on the old connection's wire, arriving late.
    late: VecDeque<ClientMessage>,
    id: String,
    replica: Replica,
    instance: usize,
    conn: ConnId,
    heard: Recorder,
    /// Sent and not yet received by the room.
    outbox: VecDeque<ClientMessage>,
}

struct World {
    rng: StdRng,
    store: SimStore,
    instances: Vec<Instance>,
    clients: Vec<Client>,
}

const ALPHABET: [&str; 6] = ["a", "b", "é", "界", "😀", "\n"];

impl World {
    fn new(seed: u64, clients: usize, text: &str) -> Self {
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let loaded = LoadedRoom {
            language: "rust".into(),
            snapshot: text.into(),
            ..LoadedRoom::default()
        };
        let mut instances: Vec<Instance> = (0..2)
            .map(|_| {
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
                Instance {
                    core,
                    commit: None,
                    inbox: VecDeque::new(),
                }
            })
            .collect();
        let mut world_clients = Vec::new();
        for i in 0..clients {
            let instance = i % 2;
            let id = format!("client-{i}");
            let heard = Recorder::default();
            let joined = join(&mut instances[instance].core, &id, None, heard.clone());
            let ServerMessage::Init { revision, code, .. } = joined.init else {
                unreachable!()
            };
            world_clients.push(Client {
                old_conn: None,
                late: VecDeque::new(),
                id,
                replica: Replica::new(revision, &code),
                instance,
                conn: joined.conn_id,
                heard,
                outbox: VecDeque::new(),
            });
        }
        let mut world = Self {
            rng: StdRng::seed_from_u64(seed),
            store: SimStore {
                log: Vec::new(),
                docs: vec![ropey::Rope::from_str(text)],
                conflicts: 0,
            },
            instances,
            clients: world_clients,
        };
        for i in 0..2 {
            world.actions(i);
        }
        world
    }

    /// Takes what instance `i`'s core asked of the store.
    fn actions(&mut self, i: usize) {
        loop {
            let actions = self.instances[i].core.take_actions();
            if actions.is_empty() {
                return;
            }
            for a in actions {
                match a {
                    Action::Commit(req) => {
                        assert!(self.instances[i].commit.is_none(), "one commit at a time");
                        self.instances[i].commit = Some(req);
                    }
                    // The actor reads the log at once.
                    Action::CatchUp => {
                        let after = self.instances[i].core.revision();
                        let tail = self.store.tail(after);
                        self.instances[i]
                            .core
                            .caught_up(Ok(Some(tail)), Instant::now());
                    }
                    Action::Publish(_) => {}
                }
            }
        }
    }

    /// The commit of instance `i` reaches the store; its answer comes back,
    /// and the other instance is told (maybe: the event may be lost).
    fn deliver_commit(&mut self, i: usize) {
        let Some(req) = self.instances[i].commit.take() else {
            return;
        };
        let base = req.expected_tip;
        let reply = self.store.commit(req.clone());
        if matches!(reply, CommitReply::Committed { .. }) && !self.rng.random_bool(0.1) {
            self.instances[1 - i].inbox.push_back(StoreEvent::Ops {
                base,
                entries: req.entries,
            });
        }
        self.instances[i].core.committed(Ok(reply), Instant::now());
        self.actions(i);
    }

    fn deliver_event(&mut self, i: usize) {
        if let Some(ev) = self.instances[i].inbox.pop_front() {
            self.instances[i].core.store_event(ev, Instant::now());
            self.actions(i);
        }
    }

    /// The periodic check: what the store holds after the instance's revision.
    fn check(&mut self, i: usize) {
        let tail = self.store.tail(self.instances[i].core.revision());
        self.instances[i].core.store_event(
            StoreEvent::Ops {
                base: tail.base,
                entries: tail.entries,
            },
            Instant::now(),
        );
        self.actions(i);
    }

    fn type_something(&mut self, c: usize) {
        let len = self.clients[c].replica.doc.len_chars();
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
        if let Some(msg) = self.clients[c].replica.edit(op).unwrap() {
            self.clients[c].outbox.push_back(msg);
        }
    }

    fn send_from(&mut self, c: usize) {
        let Some(msg) = self.clients[c].outbox.pop_front() else {
            return;
        };
        let (i, conn) = (self.clients[c].instance, self.clients[c].conn);
        match msg {
            ClientMessage::CodeUpdate {
                revision,
                seq,
                operation,
            } => self.instances[i]
                .core
                .edit(conn, revision, seq, operation, Instant::now()),
            _ => unreachable!(),
        }
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
        if let ClientMessage::CodeUpdate {
            revision,
            seq,
            operation,
        } = msg
        {
            self.instances[i]
                .core
                .edit(old, revision, seq, operation, Instant::now());
        }
        self.actions(i);
    }

    /// The client's document is the store's at the client's revision plus
    /// its unacknowledged edits.
    fn check_client(&self, c: usize) {
        let client = &self.clients[c];
        let revision = client.replica.sync.revision() as usize;
        let mut doc = self.store.docs[revision].clone();
        if let Some(op) = client.replica.sync.unacknowledged() {
            op.apply(&mut doc).expect("unacknowledged edits fit");
        }
        assert_eq!(doc.to_string(), client.replica.text(), "{}", client.id);
    }

    fn receive(&mut self, c: usize) {
        let client = &mut self.clients[c];
        for msg in client.heard.take() {
            let reply = client
                .replica
                .handle(&msg)
                .unwrap_or_else(|e| panic!("{}: {e} on {msg:?}", client.id));
            client.outbox.extend(reply);
        }
    }

    /// The client's connection drops (what was on the wire is lost) and it
    /// reconnects with `since`, as the editor does.
    fn reconnect(&mut self, c: usize) {
        let i = self.clients[c].instance;
        let old = self.clients[c].conn;
        // Some of what was on the wire may still reach the room, late, on
        // the old connection (a racing socket); the rest is lost.
        let keep = self.rng.random_range(0..=self.clients[c].outbox.len());
        let client = &mut self.clients[c];
        client.late = client.outbox.drain(..).take(keep).collect();
        client.old_conn = Some(old);
        client.heard.take();
        self.instances[i].core.leave(old, Instant::now());
        // The actor catches up before a join.
        let tail = self.store.tail(self.instances[i].core.revision());
        self.instances[i]
            .core
            .caught_up(Ok(Some(tail)), Instant::now());
        self.actions(i);
        let heard = Recorder::default();
        let since = self.clients[c].replica.sync.revision();
        let id = self.clients[c].id.clone();
        let joined = join_since(&mut self.instances[i].core, &id, since, heard.clone());
        self.actions(i);
        let ServerMessage::Init {
            revision,
            code,
            missed,
            ..
        } = joined.init
        else {
            unreachable!()
        };
        let client = &mut self.clients[c];
        client.conn = joined.conn_id;
        client.heard = heard;
        match client
            .replica
            .reconnected(revision, &code, missed.as_deref())
        {
            Reconnected::Rebased { send, .. } => client.outbox.extend(send),
            Reconnected::Replaced { lost } => {
                panic!("{}: could not rebase (lost {lost:?})", client.id)
            }
        }
    }

    fn step(&mut self) {
        let c = self.rng.random_range(0..self.clients.len());
        let i = self.rng.random_range(0..2);
        match self.rng.random_range(0..100) {
            0..30 => self.type_something(c),
            30..48 => self.send_from(c),
            48..50 => self.deliver_late(c),
            50..65 => {
                self.receive(c);
                self.check_client(c);
            }
            65..80 => self.deliver_commit(i),
            80..93 => self.deliver_event(i),
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
            let busy = self
                .instances
                .iter()
                .any(|i| i.commit.is_some() || !i.inbox.is_empty())
                || self.clients.iter().any(|c| {
                    !c.outbox.is_empty()
                        || !c.heard.0.borrow().queue.is_empty()
                        || !c.replica.sync.is_synchronized()
                });
            if !busy {
                break;
            }
            for i in 0..2 {
                self.deliver_commit(i);
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

fn join(core: &mut RoomCore<Recorder>, client: &str, since: Option<u64>, sink: Recorder) -> Joined {
    core.join(
        JoinRequest {
            client_id: client.into(),
            name: client.into(),
            since,
            viewer_id: None,
            watcher: false,
            sink,
        },
        Instant::now(),
    )
    .expect("joins")
}

fn join_since(core: &mut RoomCore<Recorder>, client: &str, since: u64, sink: Recorder) -> Joined {
    join(core, client, Some(since), sink)
}

/// Runs one seeded world to the end; returns how many commits lost a race.
fn run(seed: u64, clients: usize, steps: usize) -> usize {
    let mut world = World::new(seed, clients, "fn main() {}\n");
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
    let expected = {
        let mut doc = ropey::Rope::from_str("fn main() {}\n");
        for e in &world.store.log {
            e.operation.apply(&mut doc).unwrap();
        }
        doc.to_string()
    };
    for (i, instance) in world.instances.iter().enumerate() {
        let snap = instance.core.snapshot();
        assert_eq!(
            snap.revision,
            world.store.revision(),
            "seed {seed}: instance {i}"
        );
        assert_eq!(snap.doc.to_string(), expected, "seed {seed}: instance {i}");
    }
    for c in &world.clients {
        assert!(
            c.replica.sync.is_synchronized(),
            "seed {seed}: {} has unsent edits",
            c.id
        );
        assert_eq!(c.replica.text(), expected, "seed {seed}: {}", c.id);
    }
    world.store.conflicts
}

#[test]
fn two_instances_and_their_clients_converge_whatever_the_interleaving() {
    let conflicts: usize = (0..150).map(|seed| run(seed, 4, 300)).sum();
    assert!(
        conflicts > 150,
        "races were lost {conflicts} times: too few to test rebasing"
    );
}

#[test]
fn a_crowded_room_converges_too() {
    let conflicts: usize = (1000..1010).map(|seed| run(seed, 10, 1500)).sum();
    assert!(conflicts > 50, "races were lost {conflicts} times");
}
