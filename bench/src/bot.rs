//! The benchmark's client: collab-testkit's [`Bot`] (a real WebSocket
//! connection driving a `collab_protocol::Replica`, so it stays a correct
//! replica under any load and its text can be checked against the server's
//! at the end), run by a plan. It types at a steady rate or as fast as the
//! protocol allows (one operation in flight), may move its caret, and
//! records when its edits went out and when others' arrived, for latency.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use collab_protocol::{ClientMessage, Operation, ServerMessage};
use collab_testkit::{Bot, BotOptions};
use tokio::sync::watch;

/// What the bots are doing; set by the scenario for all of them at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Typing (and moving carets) as planned.
    Run,
    /// No more edits: read until every edit is acknowledged.
    Settle,
    /// Return the outcome.
    Finish,
}

/// How a bot types.
#[derive(Clone, Copy, Debug)]
pub enum Typing {
    /// Never.
    Idle,
    /// One single-character edit every this long.
    Every(Duration),
    /// A new edit as soon as the previous one is acknowledged.
    FlatOut,
}

/// A bot's plan.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Edits.
    pub typing: Typing,
    /// Caret moves, one every this long.
    pub caret_every: Option<Duration>,
    /// Keep send and receive times for latency.
    pub record: bool,
    /// Seeds the edit positions.
    pub seed: u64,
}

/// What a bot tells the scenario while it runs.
#[derive(Default)]
pub struct Progress {
    /// Last revision seen.
    pub revision: AtomicU64,
    /// No unacknowledged edit.
    pub synced: AtomicBool,
    /// The connection ended before `Finish`.
    pub ended: AtomicBool,
    /// Own edits acknowledged during `Run`.
    pub acked: AtomicU64,
}

/// What a bot reports at the end.
pub struct Outcome {
    /// Its replica's text.
    pub text: String,
    /// Its last revision.
    pub revision: u64,
    /// Why the connection ended early, if it did.
    pub ended: Option<String>,
    /// (seq, when the edit went out).
    pub sent: Vec<(u64, Instant)>,
    /// (seq, revision it was committed as).
    pub acks: Vec<(u64, u64)>,
    /// (revision, when someone else's edit arrived).
    pub received: Vec<(u64, Instant)>,
}

/// Connects as `name` to `room` on `addr` (small buffers, no Nagle delay:
/// thousands of bots share this process) and waits for `init`.
pub async fn join(addr: &str, room: &str, name: &str) -> Result<Bot> {
    let query = format!("name={name}&client_id={name}");
    Bot::connect(addr, room, &query, BotOptions::lean()).await
}

/// Runs `bot` by `plan` until `Finish`.
pub async fn run(
    bot: Bot,
    plan: Plan,
    phase: watch::Receiver<Phase>,
    progress: Arc<Progress>,
) -> Outcome {
    let typist = Typist {
        base_len: bot.replica.doc.len_chars(),
        bot,
    };
    typist.run(plan, phase, progress).await
}

/// A joined bot and the length its document had then.
struct Typist {
    bot: Bot,
    base_len: usize,
}

impl Typist {
    async fn run(
        mut self,
        plan: Plan,
        mut phase: watch::Receiver<Phase>,
        progress: Arc<Progress>,
    ) -> Outcome {
        let mut out = Outcome {
            text: String::new(),
            revision: 0,
            ended: None,
            sent: Vec::new(),
            acks: Vec::new(),
            received: Vec::new(),
        };
        let mut rng = plan.seed | 1;
        let mut typing = *phase.borrow() == Phase::Run;
        let far = Duration::from_secs(86_400);
        let type_every = match plan.typing {
            Typing::Every(d) => d,
            _ => far,
        };
        // Spread the bots' ticks over the period instead of all at once.
        let offset = |every: Duration, r: u64| every.mul_f64((r % 1000) as f64 / 1000.0);
        let mut type_tick = tokio::time::interval_at(
            tokio::time::Instant::now() + offset(type_every, rng),
            type_every,
        );
        let caret_every = plan.caret_every.unwrap_or(far);
        let mut caret_tick = tokio::time::interval_at(
            tokio::time::Instant::now() + offset(caret_every, rng >> 10),
            caret_every,
        );
        let flat_out = matches!(plan.typing, Typing::FlatOut);
        if typing && flat_out {
            if let Err(e) = self.type_one(&mut rng, &plan, &mut out).await {
                out.ended = Some(e.to_string());
            }
        }
        // One wait for the next phase, kept across loop turns: a fresh
        // `changed()` per turn registered and unregistered a waiter on the
        // channel every bot shares, ~50,000 times a second under one lock.
        let mut next_phase = std::pin::pin!(next_phase_of(phase.clone()));
        while out.ended.is_none() {
            tokio::select! {
                biased;
                (now, rx) = &mut next_phase => {
                    match now {
                        Phase::Finish => break,
                        Phase::Settle => typing = false,
                        Phase::Run => {}
                    }
                    next_phase.set(next_phase_of(rx));
                }
                read = self.bot.client.read() => {
                    let result = match read {
                        Ok(msg) => self.on_message(msg, typing, &plan, &mut out, &progress).await,
                        Err(end) => Err(anyhow!("the connection ended: {end:?}")),
                    };
                    if let Err(e) = result {
                        out.ended = Some(e.to_string());
                        break;
                    }
                    if typing && flat_out && self.bot.replica.sync.is_synchronized() {
                        if let Err(e) = self.type_one(&mut rng, &plan, &mut out).await {
                            out.ended = Some(e.to_string());
                        }
                    }
                }
                _ = type_tick.tick(), if typing && !flat_out => {
                    if let Err(e) = self.type_one(&mut rng, &plan, &mut out).await {
                        out.ended = Some(e.to_string());
                    }
                }
                _ = caret_tick.tick(), if typing => {
                    if let Err(e) = self.move_caret(&mut rng).await {
                        out.ended = Some(e.to_string());
                    }
                }
            }
            let sync = &self.bot.replica.sync;
            progress.revision.store(sync.revision(), Ordering::Relaxed);
            progress
                .synced
                .store(sync.is_synchronized(), Ordering::Relaxed);
        }
        if out.ended.is_some() {
            progress.ended.store(true, Ordering::Relaxed);
            // Wait for the end of the run so the outcome arrives with the others'.
            while phase.changed().await.is_ok() && *phase.borrow() != Phase::Finish {}
        }
        out.revision = self.bot.replica.sync.revision();
        out.text = self.bot.replica.text();
        self.bot.close().await;
        out
    }

    async fn on_message(
        &mut self,
        msg: ServerMessage,
        typing: bool,
        plan: &Plan,
        out: &mut Outcome,
        progress: &Progress,
    ) -> Result<()> {
        match &msg {
            ServerMessage::CodeUpdate(c) if plan.record => {
                out.received.push((c.revision, Instant::now()));
            }
            ServerMessage::Ack { revision, seq, .. }
                if *revision > self.bot.replica.sync.revision() =>
            {
                if typing {
                    progress.acked.fetch_add(1, Ordering::Relaxed);
                }
                if plan.record {
                    out.acks.push((*seq, *revision));
                }
            }
            _ => {}
        }
        if let Some(reply) = self.bot.take(&msg)? {
            self.send(&reply, plan, out).await?;
        }
        Ok(())
    }

    async fn send(&mut self, msg: &ClientMessage, plan: &Plan, out: &mut Outcome) -> Result<()> {
        if let (true, ClientMessage::CodeUpdate { seq, .. }) = (plan.record, msg) {
            out.sent.push((*seq, Instant::now()));
        }
        self.bot.client.send_message(msg).await?;
        Ok(())
    }

    /// One single-character edit: an insert, or a delete once the document
    /// has grown 1,000 chars past its start (so long runs stay small).
    async fn type_one(&mut self, rng: &mut u64, plan: &Plan, out: &mut Outcome) -> Result<()> {
        let len = self.bot.replica.doc.len_chars();
        let pos = (next(rng) % (len as u64 + 1)) as usize;
        let op = if len > self.base_len + 1000 && pos < len {
            Operation::replace(len, pos, pos + 1, "")?
        } else {
            let c = (b'a' + (next(rng) % 26) as u8) as char;
            Operation::replace(len, pos, pos, c.encode_utf8(&mut [0; 4]))?
        };
        if let Some(msg) = self.bot.replica.edit(op).context("local edit")? {
            self.send(&msg, plan, out).await?;
        }
        Ok(())
    }

    async fn move_caret(&mut self, rng: &mut u64) -> Result<()> {
        // The caret refers to the server's revision we know; the server
        // clamps it if our unacknowledged edits made the text longer.
        let len = self.bot.replica.doc.len_chars() as u64;
        let msg = ClientMessage::CursorMove {
            revision: self.bot.replica.sync.revision(),
            cursor: next(rng) % (len + 1),
            anchor: None,
            doc: None,
        };
        self.bot.client.send_message(&msg).await?;
        Ok(())
    }
}

/// The phase after the next change (`Finish` if the scenario is gone), and
/// the receiver to wait for the one after.
async fn next_phase_of(mut rx: watch::Receiver<Phase>) -> (Phase, watch::Receiver<Phase>) {
    let now = match rx.changed().await {
        Ok(()) => *rx.borrow_and_update(),
        Err(_) => Phase::Finish,
    };
    (now, rx)
}

/// xorshift64: cheap, deterministic edit positions.
fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}
