//! The `reconnect_storm` scenario: what users see when an instance drains.
//! Every client sits on instance A (two instances share a Redis); each
//! types one edit, and before the edits are acknowledged A gets SIGTERM. A
//! commits what it accepted and closes every connection with 1012; the
//! clients then reconnect to B (the load balancer's other instance) the
//! way the editor does (`collab_protocol::backoff`: within a second at a
//! random moment, then the schedule), with `since` and their unacknowledged
//! edit. Measured: the time from SIGTERM until every client is back in its
//! room and synchronized; checked: every room holds each of its clients'
//! edits exactly once and every client's text is the room's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use collab_protocol::backoff::Backoff;
use collab_protocol::{Operation, ServerMessage};
use collab_testkit::{Bot, BotOptions, Client, End, TestServer};
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::{mpsc, watch, Barrier};

use crate::group::join_all;
use crate::{http, Row};

const NAME: &str = "reconnect_storm";
/// How long a client keeps trying before it counts as not back.
const GIVE_UP: Duration = Duration::from_secs(60);

/// What one client went through.
struct Back {
    /// From SIGTERM to synchronized on B.
    after: Duration,
    /// Connection attempts to B.
    attempts: usize,
    /// Its edit was still unacknowledged when A closed the connection.
    unacked: bool,
}

/// What the scenario tells each client once all are back: the rooms'
/// texts, read from B.
type Texts = Arc<Vec<String>>;

/// The scenario: `clients` in `rooms` rooms on `a`, SIGTERM to `a`, back on `b`.
pub async fn reconnect_storm(
    a: &TestServer,
    b: &TestServer,
    clients: usize,
    rooms: usize,
) -> Result<Row> {
    match storm(a, b, clients, rooms).await {
        Ok(row) => Ok(row),
        Err(e) => Ok(Row::failed(NAME, format!("{e:#}"))),
    }
}

async fn storm(a: &TestServer, b: &TestServer, clients: usize, rooms: usize) -> Result<Row> {
    let mut ids = Vec::new();
    for _ in 0..rooms {
        ids.push(http::create_room(&a.addr, "").await?);
    }
    let placement: Vec<(usize, String)> =
        (0..clients).map(|i| (i % rooms, a.addr.clone())).collect();
    let bots = join_all("storm", &ids, &placement).await?;
    let pid = a.pid().context("instance A is a process")?;
    // Every client has typed (and not waited for its ack) when the signal
    // goes; the clock starts with it.
    let typed = Arc::new(Barrier::new(clients + 1));
    let (start_tx, start_rx) = watch::channel(None::<Instant>);
    let (back_tx, mut back_rx) = mpsc::unbounded_channel::<Result<Back, String>>();
    let (texts_tx, texts_rx) = watch::channel(None::<Texts>);
    let tasks: Vec<_> = bots
        .into_iter()
        .enumerate()
        .map(|(i, bot)| {
            let c = Storming {
                i,
                room: i % rooms,
                b: b.addr.clone(),
                room_id: ids[i % rooms].clone(),
                typed: typed.clone(),
                start: start_rx.clone(),
                back: back_tx.clone(),
                texts: texts_rx.clone(),
            };
            tokio::spawn(c.run(bot))
        })
        .collect();
    drop(back_tx);
    typed.wait().await;
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    if !killed.success() {
        bail!("kill -TERM {pid} failed");
    }
    start_tx.send_replace(Some(Instant::now()));

    let mut backs = Vec::new();
    let mut not_back = Vec::new();
    // (A client that failed outright never reports: the wait is bounded.)
    let _ = tokio::time::timeout(GIVE_UP + Duration::from_secs(10), async {
        while let Some(r) = back_rx.recv().await {
            match r {
                Ok(b) => backs.push(b),
                Err(e) => not_back.push(e),
            }
            if backs.len() + not_back.len() == clients {
                break;
            }
        }
    })
    .await;
    if !not_back.is_empty() || backs.len() < clients {
        let n = clients - backs.len();
        not_back.truncate(3);
        bail!("{n} clients not back: {}", not_back.join("; "));
    }
    // Every edit is acknowledged: the rooms' texts are final.
    let texts: Vec<String> = futures_util::stream::iter(
        ids.iter()
            .map(|id| async { Ok::<_, anyhow::Error>(http::room(&b.addr, id).await?.code) }),
    )
    .buffered(16)
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect::<Result<_>>()?;
    let (mut lost, mut duplicated) = (0, 0);
    for i in 0..clients {
        match texts[i % rooms].matches(&marker(i)).count() {
            0 => lost += 1,
            1 => {}
            _ => duplicated += 1,
        }
    }
    texts_tx.send_replace(Some(Arc::new(texts)));
    let mut diverged = 0;
    for t in tasks {
        if !matches!(t.await, Ok(true)) {
            diverged += 1;
        }
    }
    if lost + duplicated + diverged > 0 {
        return Ok(Row::failed(
            NAME,
            format!("lost {lost}, duplicated {duplicated}, diverged {diverged}"),
        ));
    }
    let mut afters: Vec<Duration> = backs.iter().map(|b| b.after).collect();
    afters.sort_unstable();
    let secs = |d: Duration| (d.as_secs_f64() * 1000.0).round() / 1000.0;
    Ok(Row::new(
        NAME,
        json!({
            "clients": clients,
            "rooms": rooms,
            "all_back_s": secs(afters[afters.len() - 1]),
            "p50_back_s": secs(afters[afters.len() / 2]),
            "max_attempts": backs.iter().map(|b| b.attempts).max().unwrap_or(0),
            "unacked_at_close": backs.iter().filter(|b| b.unacked).count(),
            "lost": lost,
            "duplicated": duplicated,
            "converged": true,
        }),
    ))
}

fn marker(i: usize) -> String {
    format!("<{i}>")
}

/// One client of the storm.
struct Storming {
    i: usize,
    room: usize,
    b: String,
    room_id: String,
    typed: Arc<Barrier>,
    start: watch::Receiver<Option<Instant>>,
    back: mpsc::UnboundedSender<Result<Back, String>>,
    texts: watch::Receiver<Option<Texts>>,
}

impl Storming {
    /// Types, rides out A's drain, comes back on B and reports when it is
    /// synchronized there; true when its text ends up as its room's.
    async fn run(mut self, mut bot: Bot) -> bool {
        let len = bot.replica.doc.len_chars();
        let typed = Operation::replace(len, 0, 0, &marker(self.i)).expect("an insert at 0");
        bot.edit(typed).await;
        self.typed.wait().await;
        let back = match self.come_back(&mut bot).await {
            Ok(b) => b,
            Err(e) => {
                let _ = self.back.send(Err(format!("client {}: {e:#}", self.i)));
                return false;
            }
        };
        let _ = self.back.send(Ok(back));
        // Read what the others typed until the text is the room's.
        let want = match self.texts.wait_for(Option::is_some).await {
            Ok(texts) => texts.as_ref().map(|t| t[self.room].clone()),
            Err(_) => None,
        };
        let Some(want) = want else {
            return false;
        };
        let read = async {
            while bot.replica.text() != want {
                match bot.client.read().await {
                    Ok(msg) => {
                        if bot.take(&msg).is_err() {
                            return false;
                        }
                    }
                    Err(_) => return false,
                }
            }
            true
        };
        tokio::time::timeout(GIVE_UP, read).await.unwrap_or(false)
    }

    /// Reads A's messages until it closes, then reconnects to B by the
    /// backoff until an `init` comes, and reads until synchronized.
    async fn come_back(&mut self, bot: &mut Bot) -> Result<Back> {
        let end = loop {
            match bot.client.read().await {
                // The drain's notice before its close.
                Ok(ServerMessage::Error { .. }) => {}
                Ok(msg) => {
                    if let Some(next) = bot.take(&msg)? {
                        bot.client.try_send(&next).await;
                    }
                }
                Err(end) => break end,
            }
        };
        let unacked = !bot.replica.sync.is_synchronized();
        let start = self
            .start
            .wait_for(Option::is_some)
            .await
            .map(|s| *s)
            .ok()
            .flatten()
            .context("the scenario ended")?;
        let mut backoff = Backoff::new();
        if end == End::Closed(1012) {
            backoff.retry_now();
        }
        let mut attempts = 0;
        loop {
            if start.elapsed() > GIVE_UP {
                bail!("not back after {GIVE_UP:?} ({attempts} attempts; A ended with {end:?})");
            }
            tokio::time::sleep(backoff.next_delay(rand::random())).await;
            attempts += 1;
            let query = format!(
                "client_id=storm-{}&since={}",
                self.i,
                bot.replica.sync.revision()
            );
            let options = BotOptions::lean();
            let Ok(mut client) =
                Client::open(&self.b, &self.room_id, &query, Some(options.ws), true).await
            else {
                continue;
            };
            let init = match tokio::time::timeout(options.init_timeout, client.read()).await {
                Ok(Ok(init @ ServerMessage::Init { .. })) => init,
                _ => continue,
            };
            bot.rejoin(client, init).await;
            break;
        }
        while !bot.replica.sync.is_synchronized() {
            let msg = bot
                .client
                .read()
                .await
                .map_err(|e| anyhow::anyhow!("B ended the connection: {e:?}"))?;
            if let Some(next) = bot.take(&msg)? {
                bot.client.try_send(&next).await;
            }
        }
        Ok(Back {
            after: start.elapsed(),
            attempts,
            unacked,
        })
    }
}
