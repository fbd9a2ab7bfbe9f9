//! Many idle connections on one instance (memory per connection, time to
//! connect them all: `connections`, and `connect_rate` in memory beside
//! through Redis) and the time from connect to `init` for a large document
//! or a long history (`join`).

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use collab_testkit::TestServer;

use crate::bot::{self, Plan, Typing};
use crate::group::{join_all, Group};
use crate::stats::ms;
use crate::{http, Row};

/// Joins `room` on `addr` `tries + 1` times: the first join (which may
/// load the room) stays connected; the others join and leave one after the
/// other. Returns (first join ms, median of the others ms).
pub async fn time_joins(addr: &str, room: &str, tries: usize) -> Result<(f64, f64)> {
    let first = bot::join(addr, room, "join-holder").await?;
    let cold = ms(first.init_time);
    let mut times = Vec::new();
    for i in 0..tries {
        let bot = bot::join(addr, room, &format!("join-{i}")).await?;
        times.push(bot.init_time);
        bot.close().await;
    }
    first.close().await;
    times.sort_unstable();
    let warm = times.get(times.len() / 2).map_or(f64::NAN, |d| ms(*d));
    Ok((cold, warm))
}

/// The join scenario on a room holding `doc` (created on `instances[0]`,
/// joined on the last instance, so the first join loads it from Redis).
pub async fn join_doc(instances: &[String], doc: &str, tries: usize) -> Result<(f64, f64)> {
    let room = http::create_room(&instances[0], doc).await?;
    let addr = instances.last().unwrap_or(&instances[0]);
    time_joins(addr, &room, tries).await
}

/// What holding idle connections cost an instance.
struct Idle {
    before: u64,
    after: u64,
    connect: Duration,
}

/// `count` idle connections on `server`, `per_room` to a room: its RSS
/// before and after, and how long connecting them all took (or why they
/// did not all stay).
async fn idle(server: &TestServer, count: usize, per_room: usize) -> Result<Result<Idle, String>> {
    let addr = server.addr.clone();
    let room_count = count.div_ceil(per_room);
    let mut rooms = Vec::new();
    for _ in 0..room_count {
        rooms.push(http::create_room(&addr, "fn main() {}\n").await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.rss_kib()?;
    let placement: Vec<(usize, String)> =
        (0..count).map(|i| (i / per_room, addr.clone())).collect();
    let started = Instant::now();
    let bots = join_all("idle", &rooms, &placement).await?;
    let connect = started.elapsed();
    let plan = Plan {
        typing: Typing::Idle,
        caret_every: None,
        record: false,
        seed: 1,
    };
    let bots = bots
        .into_iter()
        .enumerate()
        .map(|(i, b)| (placement[i].0, b, plan))
        .collect();
    let group = Group::start(rooms, bots);
    // Let presence messages drain and the allocator settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = server.rss_kib()?;
    let done = group.finish(&[addr], Duration::from_secs(60)).await;
    if done.disconnects > 0 {
        return Ok(Err(format!(
            "{} of {count} idle connections dropped",
            done.disconnects
        )));
    }
    if let Err(e) = done.converged {
        return Ok(Err(e));
    }
    Ok(Ok(Idle {
        before,
        after,
        connect,
    }))
}

impl Idle {
    fn kib_per_conn(&self, count: usize) -> f64 {
        let per_conn = self.after.saturating_sub(self.before) as f64 / count as f64;
        (per_conn * 100.0).round() / 100.0
    }

    fn per_second(&self, count: usize) -> f64 {
        (count as f64 / self.connect.as_secs_f64()).round()
    }
}

/// The `connections` scenario: `count` idle connections on `server`.
pub async fn connections(server: &TestServer, count: usize, per_room: usize) -> Result<Row> {
    let idle = match idle(server, count, per_room).await? {
        Ok(i) => i,
        Err(e) => return Ok(Row::failed("connections", e)),
    };
    Ok(Row::new(
        "connections",
        json!({
            "count": count,
            "per_room": per_room,
            "rss_kib_before": idle.before,
            "rss_kib_after": idle.after,
            "rss_kib_per_conn": idle.kib_per_conn(count),
            "connect_s": (idle.connect.as_secs_f64() * 1000.0).round() / 1000.0,
        }),
    ))
}

/// The `connect_rate` scenario: `count` connections to a fresh in-memory
/// instance and to a fresh one on Redis, 32 connecting at a time.
pub async fn connect_rate(memory: &TestServer, redis: &TestServer, count: usize) -> Result<Row> {
    const NAME: &str = "connect_rate";
    let mem = match idle(memory, count, 50).await? {
        Ok(i) => i,
        Err(e) => return Ok(Row::failed(NAME, e)),
    };
    let red = match idle(redis, count, 50).await? {
        Ok(i) => i,
        Err(e) => return Ok(Row::failed(NAME, e)),
    };
    Ok(Row::new(
        NAME,
        json!({
            "count": count,
            "memory_conns_per_s": mem.per_second(count),
            "redis_conns_per_s": red.per_second(count),
            "memory_kib_per_conn": mem.kib_per_conn(count),
            "redis_kib_per_conn": red.kib_per_conn(count),
        }),
    ))
}
