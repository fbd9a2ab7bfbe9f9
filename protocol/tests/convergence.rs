//! Seeded random simulations of one server and 3–5 clients, proving that the
//! protocol converges: whatever the interleaving, message delays and
//! reconnects, once every queue is drained every client's document equals the
//! server's, every client is synchronized at the server's revision, and every
//! local edit was committed exactly once.
//!
//! The clients are real [`Replica`]s. The server is a model of what the real
//! one must do with a `code_update`: transform the incoming operation as the
//! LEFT argument over every operation committed after its revision, apply it,
//! bump the revision, ack the sender and broadcast to the others; and, because
//! a reconnecting client resends its outstanding operation with its original
//! seq, de-duplicate by (client, seq), answering a repeat with an ack of the
//! revision it was committed as.
//!
//! Messages travel over per-client FIFO queues in each direction and are
//! delivered at random steps, so many are in flight at once. A reconnect
//! delivers a random prefix of the client's outgoing queue, then either drops
//! the rest or lets it reach the server late (as a racing old connection
//! would), drops everything the server had queued for the client, and catches
//! the client up with [`ClientSync::resync`] on the server's log after the
//! client's revision, as `init.missed` does.
//!
//! After every step that changes a client, it is checked against the server's
//! history: the server's document at the client's revision with the client's
//! unacknowledged edits applied must be the client's document. Each scenario
//! also counts the paths it took and fails if the interesting ones (late
//! messages committed, resends de-duplicated, acks found in `missed`) never
//! happened.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::panic;

use collab_protocol::{
    char_len, ClientMessage, ClientSync, CommittedOp, Component, Operation, Replica, ServerMessage,
};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use ropey::Rope;

/// Seeds per scenario.
const SEEDS: u64 = 200;
/// Random steps per run before the queues are drained.
const STEPS: usize = 300;

/// Building blocks of the initial document and of inserted text.
const PIECES: &[&str] = &[
    "a", "b", "x", " ", "\t", "\n", "😀", "漢", "字", "e\u{301}", "ö",
];

/// What a run exercises.
#[derive(Clone, Copy, Debug)]
struct Scenario {
    /// Chance per step that some client reconnects.
    reconnect: f64,
    /// Edits insert only globally unique chars (and may delete, unless
    /// `insert_only`), so a double or lost application can be seen.
    markers: bool,
    /// Edits never delete (with `markers`: every marker must survive).
    insert_only: bool,
}

/// One entry of the server's log.
#[derive(Clone, Debug)]
struct Entry {
    committed: CommittedOp,
    author: usize,
    seq: u64,
}

/// The model server: one room.
struct Server {
    doc: Rope,
    /// The revision before `log[0]`; history before it is not held.
    base: u64,
    log: Vec<Entry>,
    /// The document at every revision from `base`, for the invariant check.
    history: Vec<String>,
    /// (client, seq) -> the revision it was committed as.
    committed: HashMap<(usize, u64), u64>,
}

/// Counts of the interesting paths, summed over a scenario's seeds to show
/// that the runs exercise them.
#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    /// Operations committed.
    commits: usize,
    /// Resends answered with a repeated ack instead of a second commit.
    duplicates: usize,
    /// Messages of a dropped connection committed after the reconnect.
    late_commits: usize,
    /// Reconnects.
    reconnects: usize,
    /// Own operations found in `missed` and taken as acks by `resync`.
    missed_own: usize,
    /// The most messages in flight at once.
    max_in_flight: usize,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Self) {
        self.commits += o.commits;
        self.duplicates += o.duplicates;
        self.late_commits += o.late_commits;
        self.reconnects += o.reconnects;
        self.missed_own += o.missed_own;
        self.max_in_flight = self.max_in_flight.max(o.max_in_flight);
    }
}

impl Server {
    fn new(base: u64, code: &str) -> Self {
        Self {
            doc: Rope::from_str(code),
            base,
            log: Vec::new(),
            history: vec![code.to_owned()],
            committed: HashMap::new(),
        }
    }

    fn revision(&self) -> u64 {
        self.base + self.log.len() as u64
    }

    fn doc_at(&self, revision: u64) -> &str {
        &self.history[(revision - self.base) as usize]
    }

    /// Handles a message from client `from`; returns (recipient, message)
    /// pairs in sending order.
    fn receive(
        &mut self,
        from: usize,
        clients: usize,
        msg: ClientMessage,
    ) -> Vec<(usize, ServerMessage)> {
        let ClientMessage::CodeUpdate {
            revision,
            seq,
            operation,
        } = msg
        else {
            return Vec::new();
        };
        if let Some(&committed) = self.committed.get(&(from, seq)) {
            // A resend of something already committed: ack it again, never
            // apply it twice.
            return vec![(
                from,
                ServerMessage::Ack {
                    revision: committed,
                    seq,
                },
            )];
        }
        assert!(
            (self.base..=self.revision()).contains(&revision),
            "client {from} sent seq {seq} at revision {revision}, server holds {}..={}",
            self.base,
            self.revision()
        );
        let mut op = operation;
        for entry in &self.log[(revision - self.base) as usize..] {
            op = Operation::transform(&op, &entry.committed.operation)
                .unwrap_or_else(|e| panic!("transforming seq {seq} of client {from}: {e}"))
                .0;
        }
        op.apply(&mut self.doc)
            .unwrap_or_else(|e| panic!("applying seq {seq} of client {from}: {e}"));
        let new_revision = self.revision() + 1;
        let committed = CommittedOp {
            revision: new_revision,
            operation: op,
            user_id: format!("user{from}"),
            seq: None,
        };
        self.log.push(Entry {
            committed: committed.clone(),
            author: from,
            seq,
        });
        self.history.push(self.doc.to_string());
        self.committed.insert((from, seq), new_revision);
        (0..clients)
            .map(|to| {
                let msg = if to == from {
                    ServerMessage::Ack {
                        revision: new_revision,
                        seq,
                    }
                } else {
                    ServerMessage::CodeUpdate(committed.clone())
                };
                (to, msg)
            })
            .collect()
    }

    /// `init.missed` for client `who` reconnecting with `since`: the log after
    /// `since`, with the seq on the client's own operations.
    fn missed(&self, who: usize, since: u64) -> Vec<CommittedOp> {
        assert!(since >= self.base, "history before {since} is gone");
        self.log[(since - self.base) as usize..]
            .iter()
            .map(|e| CommittedOp {
                seq: (e.author == who).then_some(e.seq),
                ..e.committed.clone()
            })
            .collect()
    }
}

/// `op` applied to `doc` char by char, independently of ropey and of
/// [`Operation::apply`] (and much faster than a rope in a debug build).
fn apply_naively(op: &Operation, doc: &str) -> String {
    assert_eq!(op.base_len(), char_len(doc), "{op:?} does not fit {doc:?}");
    let mut chars = doc.chars();
    let mut out = String::with_capacity(doc.len());
    for c in op.components() {
        match c {
            Component::Retain(n) => out.extend(chars.by_ref().take(*n)),
            Component::Insert(s) => out.push_str(s),
            Component::Delete(n) => {
                chars.by_ref().take(*n).for_each(drop);
            }
        }
    }
    out
}

/// One client and its connection.
struct Client {
    replica: Replica,
    /// Client -> server, current connection.
    up: VecDeque<ClientMessage>,
    /// Server -> client, current connection.
    down: VecDeque<ServerMessage>,
    /// Client -> server messages of dropped connections that still reach the
    /// server, late.
    stale: VecDeque<ClientMessage>,
    /// Every seq this client has sent.
    seqs: BTreeSet<u64>,
}

impl Client {
    fn send(&mut self, msg: Option<ClientMessage>) {
        if let Some(msg) = msg {
            if let ClientMessage::CodeUpdate { seq, .. } = &msg {
                self.seqs.insert(*seq);
            }
            self.up.push_back(msg);
        }
    }
}

/// The whole simulated system.
struct World {
    rng: StdRng,
    scenario: Scenario,
    server: Server,
    clients: Vec<Client>,
    /// The next unique marker.
    next_marker: u32,
    /// Every marker inserted by some edit.
    markers: BTreeSet<char>,
    /// How often each path was taken.
    stats: Stats,
}

impl World {
    fn new(seed: u64, scenario: Scenario) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let code: String = (0..rng.random_range(0..20))
            .map(|_| *PIECES.choose(&mut rng).unwrap())
            .collect();
        let base = rng.random_range(0..5);
        let n = rng.random_range(3..=5);
        let clients = (0..n)
            .map(|_| Client {
                replica: Replica::new(base, &code),
                up: VecDeque::new(),
                down: VecDeque::new(),
                stale: VecDeque::new(),
                seqs: BTreeSet::new(),
            })
            .collect();
        Self {
            rng,
            scenario,
            server: Server::new(base, &code),
            clients,
            next_marker: 0,
            markers: BTreeSet::new(),
            stats: Stats::default(),
        }
    }

    /// A unique char: alternately 3-byte CJK and 4-byte CJK extension B,
    /// neither of which occurs in [`PIECES`].
    fn marker(&mut self) -> char {
        let k = self.next_marker;
        self.next_marker += 1;
        let c = if k.is_multiple_of(2) {
            char::from_u32(0x4E00 + 1000 + k / 2)
        } else {
            char::from_u32(0x2_0000 + k / 2)
        }
        .expect("valid scalar value");
        self.markers.insert(c);
        c
    }

    fn insert_text(&mut self) -> String {
        let pieces = self.rng.random_range(0..4);
        if self.scenario.markers {
            (0..pieces.clamp(1, 2)).map(|_| self.marker()).collect()
        } else {
            (0..pieces)
                .map(|_| *PIECES.choose(&mut self.rng).unwrap())
                .collect()
        }
    }

    /// A random local edit by client `c`.
    fn edit(&mut self, c: usize) {
        let len = self.clients[c].replica.doc.len_chars();
        let start = self.rng.random_range(0..=len);
        let end = if self.scenario.insert_only {
            start
        } else {
            start + self.rng.random_range(0..=(len - start).min(6))
        };
        let text = self.insert_text();
        let op = Operation::replace(len, start, end, &text).unwrap();
        let msg = self.clients[c]
            .replica
            .edit(op)
            .unwrap_or_else(|e| panic!("client {c} local edit: {e}"));
        self.clients[c].send(msg);
    }

    /// Delivers `msg` from client `from` to the server and queues its
    /// replies; returns whether the server committed it.
    fn send_to_server(&mut self, from: usize, msg: ClientMessage) -> bool {
        let before = self.server.revision();
        if let ClientMessage::CodeUpdate { seq, .. } = &msg {
            if self.server.committed.contains_key(&(from, *seq)) {
                self.stats.duplicates += 1;
            }
        }
        let n = self.clients.len();
        for (to, reply) in self.server.receive(from, n, msg) {
            self.clients[to].down.push_back(reply);
        }
        self.server.revision() > before
    }

    fn deliver_up(&mut self, c: usize) {
        if let Some(msg) = self.clients[c].up.pop_front() {
            self.send_to_server(c, msg);
        }
    }

    fn deliver_stale(&mut self, c: usize) {
        if let Some(msg) = self.clients[c].stale.pop_front() {
            if self.send_to_server(c, msg) {
                self.stats.late_commits += 1;
            }
        }
    }

    fn deliver_down(&mut self, c: usize) {
        if let Some(msg) = self.clients[c].down.pop_front() {
            let reply = self.clients[c]
                .replica
                .handle(&msg)
                .unwrap_or_else(|e| panic!("client {c} handling {msg:?}: {e}"));
            self.clients[c].send(reply);
        }
    }

    /// Client `c` loses its connection and opens a new one with
    /// `since = sync.revision()`.
    fn reconnect(&mut self, c: usize) {
        // The server got some of what was in flight, maybe the operation
        // itself (its ack is then lost below).
        let delivered = self.rng.random_range(0..=self.clients[c].up.len());
        for _ in 0..delivered {
            self.deliver_up(c);
        }
        let rest: Vec<_> = self.clients[c].up.drain(..).collect();
        if self.rng.random_bool(0.5) {
            // The old connection's last messages reach the server after the
            // new connection's init.
            self.clients[c].stale.extend(rest);
        }
        self.clients[c].down.clear();
        let missed = self
            .server
            .missed(c, self.clients[c].replica.sync.revision());
        self.stats.reconnects += 1;
        self.stats.missed_own += missed.iter().filter(|m| m.seq.is_some()).count();
        let client = &mut self.clients[c];
        let resync = client
            .replica
            .sync
            .resync(&missed)
            .unwrap_or_else(|e| panic!("client {c} resync: {e}"));
        for op in &resync.apply {
            op.apply(&mut client.replica.doc)
                .unwrap_or_else(|e| panic!("client {c} applying a missed op: {e}"));
        }
        assert_eq!(
            client.replica.sync.revision(),
            self.server.revision(),
            "client {c} not caught up by resync"
        );
        for msg in resync.send {
            client.send(Some(msg));
        }
    }

    /// The client's document is the server's document at the client's
    /// revision with the client's unacknowledged edits applied.
    fn check_invariant(&self, c: usize) {
        let replica = &self.clients[c].replica;
        let sync: &ClientSync = &replica.sync;
        let base = self.server.doc_at(sync.revision());
        let expected = match sync.unacknowledged() {
            Some(pending) => apply_naively(&pending, base),
            None => base.to_owned(),
        };
        assert_eq!(
            replica.text(),
            expected,
            "client {c} at revision {} diverged from the server's history",
            sync.revision()
        );
    }

    /// One random step. The invariant is checked on the client the step
    /// changed (delivering to the server changes no client).
    fn step(&mut self) {
        let in_flight: usize = self
            .clients
            .iter()
            .map(|c| c.up.len() + c.down.len() + c.stale.len())
            .sum();
        self.stats.max_in_flight = self.stats.max_in_flight.max(in_flight);
        let c = self.rng.random_range(0..self.clients.len());
        let roll: f64 = self.rng.random();
        if roll < 0.3 {
            self.deliver_up(c);
            return;
        } else if roll < 0.35 {
            self.deliver_stale(c);
            return;
        } else if roll < 0.35 + self.scenario.reconnect {
            self.reconnect(c);
        } else if roll < 0.65 {
            self.edit(c);
        } else {
            self.deliver_down(c);
        }
        self.check_invariant(c);
    }

    /// Delivers everything still in flight, in random order.
    fn drain(&mut self) {
        loop {
            let mut ready = Vec::new();
            for (c, client) in self.clients.iter().enumerate() {
                if !client.up.is_empty() {
                    ready.push((c, 0));
                }
                if !client.stale.is_empty() {
                    ready.push((c, 1));
                }
                if !client.down.is_empty() {
                    ready.push((c, 2));
                }
            }
            let Some(&(c, queue)) = ready.choose(&mut self.rng) else {
                break;
            };
            match queue {
                0 => self.deliver_up(c),
                1 => self.deliver_stale(c),
                _ => {
                    self.deliver_down(c);
                    self.check_invariant(c);
                }
            }
        }
    }

    /// Everything has converged and every edit was committed exactly once.
    fn check_converged(&self) {
        let text = self.server.doc.to_string();
        for (c, client) in self.clients.iter().enumerate() {
            assert_eq!(client.replica.text(), text, "client {c} diverged");
            assert!(
                client.replica.sync.is_synchronized(),
                "client {c} still waits: {:?}",
                client.replica.sync.state()
            );
            assert_eq!(client.replica.sync.revision(), self.server.revision());
        }
        let sent: BTreeSet<(usize, u64)> = self
            .clients
            .iter()
            .enumerate()
            .flat_map(|(c, client)| client.seqs.iter().map(move |&s| (c, s)))
            .collect();
        let committed: BTreeSet<(usize, u64)> =
            self.server.log.iter().map(|e| (e.author, e.seq)).collect();
        assert_eq!(
            committed.len(),
            self.server.log.len(),
            "a seq committed twice"
        );
        assert_eq!(committed, sent, "not every sent edit was committed once");
        if self.scenario.markers {
            let mut seen = BTreeSet::new();
            for ch in text.chars().filter(|ch| self.markers.contains(ch)) {
                assert!(seen.insert(ch), "marker {ch:?} applied twice");
            }
            if self.scenario.insert_only {
                assert_eq!(seen, self.markers, "markers lost");
                assert_eq!(
                    char_len(&text),
                    char_len(self.server.doc_at(self.server.base)) + self.markers.len()
                );
            }
        }
    }
}

/// Runs `scenario` for every seed, naming the failing seed.
fn run_seeds(scenario: Scenario) {
    let mut total = Stats::default();
    for seed in 0..SEEDS {
        let result = panic::catch_unwind(|| {
            let mut world = World::new(seed, scenario);
            for _ in 0..STEPS {
                world.step();
            }
            world.drain();
            world.check_converged();
            Stats {
                commits: world.server.log.len(),
                ..world.stats
            }
        });
        match result {
            Ok(stats) => total += stats,
            Err(_) => panic!("{scenario:?} failed with seed {seed} (see the panic above)"),
        }
    }
    // The runs did real work, with many messages in flight at once.
    assert!(total.commits > SEEDS as usize * 20, "{total:?}");
    assert!(total.max_in_flight >= 10, "{total:?}");
    if scenario.reconnect > 0.0 {
        // Every reconnect path was taken.
        assert!(total.reconnects > SEEDS as usize, "{total:?}");
        assert!(
            total.duplicates > 0,
            "no resend was de-duplicated: {total:?}"
        );
        assert!(
            total.late_commits > 0,
            "no late message was committed: {total:?}"
        );
        assert!(
            total.missed_own > 0,
            "no ack came through missed: {total:?}"
        );
    }
}

#[test]
fn clients_converge_under_random_delays() {
    run_seeds(Scenario {
        reconnect: 0.0,
        markers: false,
        insert_only: false,
    });
}

#[test]
fn clients_converge_across_reconnects() {
    run_seeds(Scenario {
        reconnect: 0.03,
        markers: false,
        insert_only: false,
    });
}

#[test]
fn reconnects_never_apply_an_edit_twice() {
    run_seeds(Scenario {
        reconnect: 0.05,
        markers: true,
        insert_only: false,
    });
}

#[test]
fn reconnects_never_lose_an_edit() {
    run_seeds(Scenario {
        reconnect: 0.05,
        markers: true,
        insert_only: true,
    });
}
