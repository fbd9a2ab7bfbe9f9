//! A group of bots running together in one or more rooms: joins them with
//! bounded concurrency, flips their phase at once, and at the end verifies
//! convergence: every bot's replica must equal `GET /rooms/{id}` on every
//! instance (not assumed from the absence of errors).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use collab_testkit::Bot;

use crate::bot::{self, Outcome, Phase, Plan, Progress};
use crate::http;

/// How many connections are opened at once.
const JOIN_CONCURRENCY: usize = 32;

/// Joins one bot per `(room index, instance address)`, `JOIN_CONCURRENCY`
/// at a time; names are `{tag}-{i}`.
pub async fn join_all(
    tag: &str,
    rooms: &[String],
    placement: &[(usize, String)],
) -> Result<Vec<Bot>> {
    let joins = placement.iter().enumerate().map(|(i, (room, addr))| {
        let name = format!("{tag}-{i}");
        let room = rooms[*room].clone();
        let addr = addr.clone();
        async move { bot::join(&addr, &room, &name).await }
    });
    let bots: Vec<Result<Bot>> = futures_util::stream::iter(joins)
        .buffered(JOIN_CONCURRENCY)
        .collect()
        .await;
    bots.into_iter().collect()
}

struct Member {
    room: usize,
    progress: Arc<Progress>,
    task: JoinHandle<Outcome>,
}

/// Bots running their plans.
pub struct Group {
    phase: watch::Sender<Phase>,
    members: Vec<Member>,
    rooms: Vec<String>,
    started: Instant,
}

/// The end of a group's run.
pub struct Finished {
    /// (room index, outcome) of every bot.
    pub outcomes: Vec<(usize, Outcome)>,
    /// `Ok` when every bot converged to the servers' text.
    pub converged: Result<(), String>,
    /// Bots whose connection ended early.
    pub disconnects: usize,
}

impl Group {
    /// Starts `bots` (room index, bot, plan) in phase `Run`.
    pub fn start(rooms: Vec<String>, bots: Vec<(usize, Bot, Plan)>) -> Self {
        let (phase, rx) = watch::channel(Phase::Run);
        let members = bots
            .into_iter()
            .map(|(room, bot, plan)| {
                let progress = Arc::new(Progress::default());
                let task = tokio::spawn(bot::run(bot, plan, rx.clone(), progress.clone()));
                Member {
                    room,
                    progress,
                    task,
                }
            })
            .collect();
        Self {
            phase,
            members,
            rooms,
            started: Instant::now(),
        }
    }

    /// Edits acknowledged so far during `Run`, all bots together.
    pub fn acked(&self) -> u64 {
        self.members
            .iter()
            .map(|m| m.progress.acked.load(Ordering::Relaxed))
            .sum()
    }

    /// The highest revision any bot has seen.
    pub fn max_revision(&self) -> u64 {
        self.members
            .iter()
            .map(|m| m.progress.revision.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }

    /// Stops typing; returns the time typed and the edits acknowledged in it.
    pub fn stop_typing(&self) -> (Duration, u64) {
        let acked = self.acked();
        if std::env::var_os("BENCH_DEBUG").is_some() {
            let per: Vec<u64> = self
                .members
                .iter()
                .map(|m| m.progress.acked.load(Ordering::Relaxed))
                .collect();
            eprintln!("acked per bot: {per:?}");
        }
        let elapsed = self.started.elapsed();
        let _ = self.phase.send(Phase::Settle);
        (elapsed, acked)
    }

    /// Waits (up to `timeout`) until every bot has every edit acknowledged
    /// and has seen the rooms' revision on every instance, then collects the
    /// outcomes and compares every replica with every instance's document.
    pub async fn finish(self, instances: &[String], timeout: Duration) -> Finished {
        let _ = self.phase.send(Phase::Settle);
        let deadline = Instant::now() + timeout;
        let mut settled = Err("not checked".to_owned());
        while Instant::now() < deadline {
            settled = self.settled(instances).await;
            if settled.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.phase.send(Phase::Finish);
        let mut outcomes = Vec::new();
        for m in self.members {
            match m.task.await {
                Ok(o) => outcomes.push((m.room, o)),
                Err(e) => settled = Err(format!("a bot panicked: {e}")),
            }
        }
        let disconnects = outcomes.iter().filter(|(_, o)| o.ended.is_some()).count();
        let first_end = outcomes
            .iter()
            .find_map(|(r, o)| o.ended.as_ref().map(|e| (r, e)));
        if let Some((room, why)) = first_end {
            settled = Err(format!(
                "{disconnects} bots disconnected; the first, of room {room}: {why}"
            ));
        }
        let converged = match settled {
            Err(e) => Err(format!("did not settle within {timeout:?}: {e}")),
            Ok(()) => compare(&self.rooms, instances, &outcomes).await,
        };
        Finished {
            outcomes,
            converged,
            disconnects,
        }
    }

    async fn settled(&self, instances: &[String]) -> Result<(), String> {
        if let Some(m) = self
            .members
            .iter()
            .find(|m| m.progress.ended.load(Ordering::Relaxed))
        {
            return Err(format!("a bot of room {} disconnected", m.room));
        }
        if self
            .members
            .iter()
            .any(|m| !m.progress.synced.load(Ordering::Relaxed))
        {
            return Err("edits still unacknowledged".into());
        }
        for (i, room) in self.rooms.iter().enumerate() {
            let mut revision = None;
            for addr in instances {
                let r = http::room_revision(addr, room)
                    .await
                    .map_err(|e| e.to_string())?;
                if revision.is_some_and(|x| x != r) {
                    return Err("instances disagree on the revision".into());
                }
                revision = Some(r);
            }
            let behind = self
                .members
                .iter()
                .filter(|m| m.room == i)
                .any(|m| Some(m.progress.revision.load(Ordering::Relaxed)) != revision);
            if behind {
                return Err(format!("a bot of room {i} is behind revision {revision:?}"));
            }
        }
        Ok(())
    }
}

async fn compare(
    rooms: &[String],
    instances: &[String],
    outcomes: &[(usize, Outcome)],
) -> Result<(), String> {
    for (i, room) in rooms.iter().enumerate() {
        for addr in instances {
            let state = http::room(addr, room)
                .await
                .context("reading the room")
                .map_err(|e| format!("{e:#}"))?;
            for (_, o) in outcomes.iter().filter(|(r, _)| *r == i) {
                if let Some(why) = &o.ended {
                    return Err(format!("a bot of room {i} disconnected: {why}"));
                }
                if o.revision != state.revision || o.text != state.code {
                    return Err(format!(
                        "room {i}: a replica at revision {} ({} bytes) differs from {addr} at revision {} ({} bytes)",
                        o.revision,
                        o.text.len(),
                        state.revision,
                        state.code.len()
                    ));
                }
            }
        }
    }
    Ok(())
}
