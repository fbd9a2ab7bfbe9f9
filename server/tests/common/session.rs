//! Typists that survive their connection dying (they reconnect to the next
//! instance with `since` and resend), sessions of them inserting unique
//! markers while something disrupts the servers, and the checks that every
//! replica and instance converged with every marker exactly once: shared by
//! the Redis tests and the Redis Cluster tests.

use std::time::Duration;

use collab_protocol::rest::RoomState;
use collab_protocol::{Operation, Reconnected, ServerMessage};
use collab_testkit::{Bot, Client, Rest, NO_INIT_IN_TIME};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Joins through the first address that lets us in, retrying while
/// instances or Redis are down.
pub async fn join_any(
    addrs: &[String],
    room: &str,
    query: &str,
    start: usize,
) -> (Client, ServerMessage) {
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut i = start;
    loop {
        if let Ok(joined) = Client::try_join(&addrs[i % addrs.len()], room, query).await {
            return joined;
        }
        assert!(
            Instant::now() < deadline,
            "could not rejoin {room} on {addrs:?}"
        );
        i += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A bot that survives its connection dying: it reconnects (to the next
/// instance) with `since`, catches up and resends with the original seq.
pub struct Typist {
    pub bot: Bot,
    pub client_id: String,
    pub addrs: Vec<String>,
    pub room: String,
    pub next_addr: usize,
    pub reconnects: usize,
    /// When the room's history may be reset (Redis restored from an older
    /// state), a reconnect may get no `missed`, or be refused
    /// `future_revision`: then the typist does what the editor does, takes
    /// the server's document and keeps its unacknowledged edits aside.
    /// Otherwise either is a failure.
    pub history_may_reset: bool,
    /// Reconnects that could not rebase unacknowledged edits.
    pub set_aside: usize,
    /// Only reads (in [`type_round`]).
    pub idle: bool,
    /// Joins this typist gave up waiting for (`init` took longer than
    /// [`collab_testkit::STEP`]). The server may still complete
    /// such a join later, and it then replaces the typist's newer
    /// connection (one live connection per `client_id`): a `replaced` is
    /// expected after one, and is a reconnect, not a failure.
    pub abandoned_joins: usize,
}

impl Typist {
    pub async fn join(addrs: Vec<String>, room: String, index: usize) -> Self {
        let client_id = format!("typist{index}");
        let (client, init) =
            join_any(&addrs, &room, &format!("client_id={client_id}"), index).await;
        Self {
            bot: Bot::from_init(client, init).expect("joined"),
            client_id,
            addrs,
            room,
            next_addr: index + 1,
            reconnects: 0,
            history_may_reset: false,
            set_aside: 0,
            idle: false,
            abandoned_joins: 0,
        }
    }

    pub async fn reconnect(&mut self) {
        self.bot.assert_revisions_contiguous();
        self.reconnects += 1;
        let deadline = Instant::now() + Duration::from_secs(40);
        let mut fresh = false;
        loop {
            let addr = self.addrs[self.next_addr % self.addrs.len()].clone();
            self.next_addr += 1;
            let mut query = format!("client_id={}", self.client_id);
            if !fresh {
                query += &format!("&since={}", self.bot.replica.sync.revision());
            }
            match Client::try_join(&addr, &self.room, &query).await {
                Ok((client, init)) => {
                    if !self.history_may_reset {
                        self.bot.rejoined(client, init).await;
                    } else if let Reconnected::Replaced { lost: Some(_) } =
                        self.bot.rejoin(client, init).await
                    {
                        // Without `missed`, the typist does what the editor
                        // does: it takes the server's document and keeps
                        // its unacknowledged edits aside.
                        self.set_aside += 1;
                    }
                    return;
                }
                // Our revision is past the room's: its history went back.
                Err(e) if self.history_may_reset && e.contains("future_revision") => fresh = true,
                Err(e) if e == NO_INIT_IN_TIME => self.abandoned_joins += 1,
                Err(_) => {}
            }
            assert!(Instant::now() < deadline, "could not reconnect");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn edit(&mut self, op: Operation) {
        if let Some(msg) = self.bot.replica.edit(op).expect("local edit applies") {
            // A dead connection is noticed when reading; the edit is resent then.
            self.bot.client.try_send(&msg).await;
        }
    }

    /// Reads for up to `wait`; reconnects when the connection ended.
    pub async fn pump(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .bot
                .client
                .next(left.max(Duration::from_millis(1)))
                .await
            {
                None => return,
                Some(Ok(ServerMessage::Error { code, .. }))
                    if code == "unavailable" || code == "history_reset" => {}
                Some(Ok(ServerMessage::Error { code, .. }))
                    if code == "replaced" && self.abandoned_joins > 0 =>
                {
                    self.reconnect().await
                }
                Some(Ok(msg)) => self.bot.handle(msg).await,
                Some(Err(_)) => self.reconnect().await,
            }
            if Instant::now() >= deadline {
                return;
            }
        }
    }

    pub async fn settle(&mut self, revision: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !(self.bot.replica.sync.is_synchronized()
            && self.bot.replica.sync.revision() >= revision)
        {
            assert!(
                Instant::now() < deadline,
                "{} did not settle in {} (at revision {}, synchronized: {}, wanted {revision}, reconnected {} times)",
                self.client_id,
                self.room,
                self.bot.replica.sync.revision(),
                self.bot.replica.sync.is_synchronized(),
                self.reconnects
            );
            self.pump(Duration::from_millis(200)).await;
        }
    }
}

/// Inserts `marker` at the start or right after another marker, so markers
/// never split each other and each can be counted in the final text.
pub fn marker_edit(rng: &mut StdRng, doc: &ropey::Rope, marker: &str) -> Operation {
    let ends: Vec<usize> = doc
        .chars()
        .enumerate()
        .filter(|(_, c)| *c == '>')
        .map(|(i, _)| i + 1)
        .collect();
    let at = if ends.is_empty() || rng.random_bool(0.2) {
        0
    } else {
        ends[rng.random_range(0..ends.len())]
    };
    Operation::replace(doc.len_chars(), at, at, marker).unwrap()
}

pub struct Session {
    pub typists: Vec<Typist>,
    pub markers: Vec<String>,
}

/// How a [`marker_session`] runs.
#[derive(Clone, Copy, Default)]
pub struct Plan {
    /// Typists that each insert `edits` unique markers.
    pub clients: usize,
    pub edits: usize,
    /// Clients that only read.
    pub idle: usize,
    pub seed: u64,
    /// See [`Typist::history_may_reset`].
    pub history_may_reset: bool,
    /// The longest pause between a typist's edits, in ms (15 when 0).
    pub pace_ms: u64,
}

/// `clients` typists spread over `addrs` each insert `edits` unique markers;
/// `disrupt` runs meanwhile. Returns once all settled at the final revision.
pub async fn marker_session<F>(
    addrs: Vec<String>,
    room: &str,
    clients: usize,
    edits: usize,
    seed: u64,
    disrupt: F,
    live: &[String],
) -> Session
where
    F: std::future::Future<Output = ()>,
{
    let plan = Plan {
        clients,
        edits,
        seed,
        ..Plan::default()
    };
    planned_session(addrs, room, plan, disrupt, live).await
}

/// A [`marker_session`] as `plan` says.
pub async fn planned_session<F>(
    addrs: Vec<String>,
    room: &str,
    plan: Plan,
    disrupt: F,
    live: &[String],
) -> Session
where
    F: std::future::Future<Output = ()>,
{
    let clients = plan.clients + plan.idle;
    let seed = plan.seed;
    let (done_tx, mut done_rx) = mpsc::channel(clients);
    let (final_tx, final_rx) = watch::channel(None::<u64>);
    let mut handles = Vec::new();
    for i in 0..clients {
        let (addrs, room, mut done, mut final_rx) = (
            addrs.clone(),
            room.to_owned(),
            Done(Some(done_tx.clone())),
            final_rx.clone(),
        );
        let edits = if i < plan.clients { plan.edits } else { 0 };
        handles.push(tokio::spawn(async move {
            let mut t = Typist::join(addrs, room, i).await;
            t.history_may_reset = plan.history_may_reset;
            let mut rng = StdRng::seed_from_u64(seed * 1000 + i as u64);
            let mut markers = Vec::new();
            if edits == 0 {
                // An idle client: reads while the others type.
                t.pump(Duration::from_millis(plan.edits as u64 * 8)).await;
            }
            for k in 0..edits {
                let marker = format!("<{i}.{k}>");
                let op = marker_edit(&mut rng, &t.bot.replica.doc, &marker);
                markers.push(marker);
                t.edit(op).await;
                let pace = if plan.pace_ms == 0 { 15 } else { plan.pace_ms };
                t.pump(Duration::from_millis(rng.random_range(1..pace)))
                    .await;
            }
            t.settle(0).await;
            done.finished().await;
            let target = loop {
                if let Some(r) = *final_rx.borrow() {
                    break r;
                }
                tokio::select! {
                    _ = final_rx.changed() => {}
                    _ = t.pump(Duration::from_millis(100)) => {}
                }
            };
            t.settle(target).await;
            (t, markers)
        }));
    }
    drop(done_tx);
    disrupt.await;
    for _ in 0..clients {
        let finished = done_rx.recv().await.expect("every typist reports");
        assert!(finished, "a typist failed (its panic is printed above)");
    }
    let revision = settled_revision(live, room).await;
    final_tx.send(Some(revision)).unwrap();
    let mut session = Session {
        typists: Vec::new(),
        markers: Vec::new(),
    };
    for h in handles {
        let (t, m) = h.await.expect("typist finished");
        session.typists.push(t);
        session.markers.extend(m);
    }
    session
}

/// A typist's report to its session: finished, or (dropped unsent, when the
/// typist panicked) failed. Without the failure report the session would
/// wait forever for the typist, and the test would hang instead of failing.
struct Done(Option<mpsc::Sender<bool>>);

impl Done {
    async fn finished(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(true).await;
        }
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            // The channel holds one report per typist: there is room.
            let _ = tx.try_send(false);
        }
    }
}

/// The revision every live instance agrees on once nobody types any more
/// (an instance may lag behind another by a pub/sub hop).
pub async fn settled_revision(addrs: &[String], room: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut revs = Vec::new();
        for a in addrs {
            revs.push(room_state(a, room).await.revision);
        }
        if revs.windows(2).all(|w| w[0] == w[1]) {
            return revs[0];
        }
        assert!(Instant::now() < deadline, "instances disagree: {revs:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn room_state(addr: &str, room: &str) -> RoomState {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(state)) = Rest::new(addr).room(room).await {
            return state;
        }
        assert!(
            Instant::now() < deadline,
            "GET /rooms/{room} on {addr} kept failing"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every replica equals the server's text, and every marker appears once.
pub async fn assert_converged(session: &Session, addrs: &[String], room: &str) {
    let text = room_state(&addrs[0], room).await.code;
    for addr in addrs {
        assert_eq!(
            room_state(addr, room).await.code,
            text,
            "instance {addr} differs"
        );
    }
    for t in &session.typists {
        assert_eq!(t.bot.replica.text(), text, "{} diverged", t.client_id);
        t.bot.assert_revisions_contiguous();
    }
    for m in &session.markers {
        assert_eq!(text.matches(m.as_str()).count(), 1, "marker {m} in {text}");
    }
}
