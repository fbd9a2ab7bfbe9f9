//! A benchmark client: a real WebSocket connection driving a
//! `collab_protocol::Replica`, so it stays a correct replica under any load
//! and its text can be checked against the server's at the end. It types at
//! a steady rate or as fast as the protocol allows (one operation in flight),
//! may move its caret, and records when its edits went out and when others'
//! arrived, for latency.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use collab_protocol::{ClientMessage, Operation, Replica, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a bot waits for `init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(30);

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

/// A joined client.
pub struct Bot {
    ws: Ws,
    replica: Replica,
    base_len: usize,
    /// Connect-to-`init` time.
    pub init_time: Duration,
}

fn ws_config() -> WebSocketConfig {
    // Small buffers: thousands of bots share this process, and tungstenite
    // zeroes the free part of the read buffer before every read (16 KiB made
    // that memset a visible share of the bench's CPU). Larger frames still
    // grow it as they arrive.
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
}

impl Bot {
    /// Connects to `ws://addr/ws/{room}` and waits for `init`.
    pub async fn join(addr: &str, room: &str, name: &str) -> Result<Self> {
        let start = Instant::now();
        let url = format!("ws://{addr}/ws/{room}?name={name}&client_id={name}");
        let (mut ws, _) =
            tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true)
                .await
                .with_context(|| format!("cannot connect to {addr}"))?;
        let init = tokio::time::timeout(INIT_TIMEOUT, async {
            while let Some(frame) = ws.next().await {
                match frame? {
                    Message::Text(t) => return Ok(ServerMessage::from_json(&t)?),
                    Message::Close(c) => bail!("closed before init: {c:?}"),
                    _ => continue,
                }
            }
            bail!("connection ended before init")
        })
        .await
        .context("no init in time")??;
        let init_time = start.elapsed();
        let ServerMessage::Init { revision, code, .. } = init else {
            bail!("first message was not init: {init:?}");
        };
        let replica = Replica::new(revision, &code);
        Ok(Self {
            ws,
            base_len: replica.doc.len_chars(),
            replica,
            init_time,
        })
    }

    /// Closes the connection politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// Runs the plan until `Finish`.
    pub async fn run(
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
                frame = self.ws.next() => {
                    let result = match frame {
                        Some(Ok(Message::Text(t))) => self.on_text(&t, typing, &plan, &mut out, &progress).await,
                        Some(Ok(Message::Close(c))) => Err(anyhow::anyhow!("closed: {c:?}")),
                        Some(Ok(_)) => Ok(()),
                        Some(Err(e)) => Err(e.into()),
                        None => Err(anyhow::anyhow!("connection dropped")),
                    };
                    if let Err(e) = result {
                        out.ended = Some(e.to_string());
                        break;
                    }
                    if typing && flat_out && self.replica.sync.is_synchronized() {
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
            progress
                .revision
                .store(self.replica.sync.revision(), Ordering::Relaxed);
            progress
                .synced
                .store(self.replica.sync.is_synchronized(), Ordering::Relaxed);
        }
        if out.ended.is_some() {
            progress.ended.store(true, Ordering::Relaxed);
            // Wait for the end of the run so the outcome arrives with the others'.
            while phase.changed().await.is_ok() && *phase.borrow() != Phase::Finish {}
        }
        out.revision = self.replica.sync.revision();
        out.text = self.replica.text();
        let _ = self.ws.close(None).await;
        out
    }

    async fn on_text(
        &mut self,
        text: &str,
        typing: bool,
        plan: &Plan,
        out: &mut Outcome,
        progress: &Progress,
    ) -> Result<()> {
        let msg = ServerMessage::from_json(text).context("unreadable message")?;
        match &msg {
            ServerMessage::CodeUpdate(c) if plan.record => {
                out.received.push((c.revision, Instant::now()));
            }
            ServerMessage::Ack { revision, seq } if *revision > self.replica.sync.revision() => {
                if typing {
                    progress.acked.fetch_add(1, Ordering::Relaxed);
                }
                if plan.record {
                    out.acks.push((*seq, *revision));
                }
            }
            ServerMessage::Error { code, message, .. } => bail!("server error {code}: {message}"),
            _ => {}
        }
        let reply = self.replica.handle(&msg).context("replica rejected")?;
        if let Some(reply) = reply {
            self.send(&reply, plan, out).await?;
        }
        Ok(())
    }

    async fn send(&mut self, msg: &ClientMessage, plan: &Plan, out: &mut Outcome) -> Result<()> {
        if let (true, ClientMessage::CodeUpdate { seq, .. }) = (plan.record, msg) {
            out.sent.push((*seq, Instant::now()));
        }
        self.ws.send(Message::text(msg.to_json())).await?;
        Ok(())
    }

    /// One single-character edit: an insert, or a delete once the document
    /// has grown 1,000 chars past its start (so long runs stay small).
    async fn type_one(&mut self, rng: &mut u64, plan: &Plan, out: &mut Outcome) -> Result<()> {
        let len = self.replica.doc.len_chars();
        let pos = (next(rng) % (len as u64 + 1)) as usize;
        let op = if len > self.base_len + 1000 && pos < len {
            Operation::replace(len, pos, pos + 1, "")?
        } else {
            let c = (b'a' + (next(rng) % 26) as u8) as char;
            Operation::replace(len, pos, pos, c.encode_utf8(&mut [0; 4]))?
        };
        if let Some(msg) = self.replica.edit(op).context("local edit")? {
            self.send(&msg, plan, out).await?;
        }
        Ok(())
    }

    async fn move_caret(&mut self, rng: &mut u64) -> Result<()> {
        // The caret refers to the server's revision we know; the server
        // clamps it if our unacknowledged edits made the text longer.
        let len = self.replica.doc.len_chars() as u64;
        let msg = ClientMessage::CursorMove {
            revision: self.replica.sync.revision(),
            cursor: next(rng) % (len + 1),
            anchor: None,
        };
        self.ws.send(Message::text(msg.to_json())).await?;
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
