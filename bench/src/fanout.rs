//! Scenario 1 and 2: fan-out latency of R rooms x C clients typing at a
//! steady rate across both instances, and the floor: the same message rate
//! through raw Redis PUBLISH/SUBSCRIBE (one publishing connection, one
//! subscribed) on the same Redis, through the same redis crate.
//!
//! Also `loaded_floor`: the floor measured while the fan-out load runs, so
//! both figures come from the same contended machine. On two cores the load
//! generator, two servers and Redis share the CPU, and the idle-machine
//! floor alone cannot tell collab's overhead from the machine's queueing.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use serde_json::json;

use crate::bot::{Plan, Typing};
use crate::group::{join_all, Finished, Group};
use crate::hot::ratio;
use crate::stats::{self, Latencies};
use crate::{http, Row, Sizes};

/// A fan-out load that ran.
pub struct Load<T> {
    /// The group's end.
    pub done: Finished,
    /// Acknowledged edits a second while typing.
    pub ops_per_s: f64,
    /// What the future run beside the load returned.
    pub beside: T,
}

/// `count` empty rooms, created on `addr`.
async fn empty_rooms(addr: &str, count: usize) -> Result<Vec<String>> {
    let mut rooms = Vec::new();
    for _ in 0..count {
        rooms.push(http::create_room(addr, "").await?);
    }
    Ok(rooms)
}

/// How the bots' seeds (the phase of their typing and where they type)
/// are drawn.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Seeds {
    /// Every bot its own.
    Each,
    /// The n-th bot of every room the same: the rooms type alike, at the
    /// same moments, so their latencies can be compared. (With seeds of
    /// their own, which room got the luckier seeds moved its p50 by 15%.)
    SameInEveryRoom,
}

/// Joins `s.clients` bots to each of `rooms` (spread over `instances`),
/// lets them type at `s.rate` for `s.duration` while `beside` runs, and
/// waits for them to settle.
pub async fn load<T>(
    instances: &[String],
    rooms: Vec<String>,
    seeds: Seeds,
    s: &Sizes,
    tag: &str,
    beside: impl Future<Output = T>,
) -> Result<Load<T>> {
    let placement: Vec<(usize, String)> = (0..rooms.len() * s.clients)
        .map(|i| (i / s.clients, instances[i % instances.len()].clone()))
        .collect();
    let bots = join_all(tag, &rooms, &placement).await?;
    let every = Duration::from_secs_f64(1.0 / s.rate);
    let bots = bots
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            let n = match seeds {
                Seeds::Each => i,
                Seeds::SameInEveryRoom => i % s.clients,
            };
            let plan = Plan {
                typing: Typing::Every(every),
                caret_every: None,
                record: true,
                seed: 0x9E37_79B9_7F4A_7C15 ^ (n as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
            };
            (placement[i].0, b, plan)
        })
        .collect();
    let group = Group::start(rooms, bots);
    let ((), beside) = tokio::join!(tokio::time::sleep(s.duration), beside);
    let (elapsed, acked) = group.stop_typing();
    let done = group.finish(instances, Duration::from_secs(60)).await;
    Ok(Load {
        done,
        ops_per_s: (acked as f64 / elapsed.as_secs_f64()).round(),
        beside,
    })
}

/// Runs the fan-out scenario; returns its row.
pub async fn fanout(instances: &[String], s: &Sizes) -> Result<Row> {
    let rooms = empty_rooms(&instances[0], s.rooms).await?;
    let run = load(instances, rooms, Seeds::Each, s, "fan", async {}).await?;
    if let Err(e) = run.done.converged {
        return Ok(Row::failed("fanout", e));
    }
    let lat = stats::fanout(&run.done.outcomes, None);
    if lat.len() == 0 {
        return Ok(Row::failed("fanout", "no edit was delivered"));
    }
    Ok(Row::new(
        "fanout",
        json!({
            "rooms": s.rooms,
            "clients": s.rooms * s.clients,
            "p50_ms": lat.pct_ms(50.0),
            "p99_ms": lat.pct_ms(99.0),
            "p99_9_ms": lat.pct_ms(99.9),
            "max_ms": lat.max_ms(),
            "ops_per_s": run.ops_per_s,
            "deliveries": lat.len(),
            "converged": true,
        }),
    ))
}

/// Runs the fan-out load again and, through its middle half, the floor;
/// returns a row comparing the two over the same window: only edits sent
/// while the floor was publishing count. (The floor's own traffic adds to
/// the load both are measured under.)
pub async fn loaded_floor(instances: &[String], redis_url: &str, s: &Sizes) -> Result<Row> {
    const NAME: &str = "loaded_floor";
    let beside = async {
        tokio::time::sleep(s.duration / 4).await;
        floor_run(redis_url, s, s.duration / 2).await
    };
    let rooms = empty_rooms(&instances[0], s.rooms).await?;
    let run = load(instances, rooms, Seeds::Each, s, "lfan", beside).await?;
    let floor = match run.beside {
        Ok(floor) => floor,
        Err(e) => return Ok(Row::failed(NAME, format!("{e:#}"))),
    };
    if let Err(e) = run.done.converged {
        return Ok(Row::failed(NAME, e));
    }
    let fan = stats::fanout(&run.done.outcomes, Some(floor.published));
    if fan.len() == 0 {
        return Ok(Row::failed(NAME, "no edit was sent while the floor ran"));
    }
    let (f50, f99) = (fan.pct_ms(50.0), fan.pct_ms(99.0));
    let (r50, r99) = (floor.latencies.pct_ms(50.0), floor.latencies.pct_ms(99.0));
    Ok(Row::new(
        NAME,
        json!({
            "fanout_p50_ms": f50,
            "fanout_p99_ms": f99,
            "floor_p50_ms": r50,
            "floor_p99_ms": r99,
            "p50_ratio": ratio(f50, r50),
            "p99_ratio": ratio(f99, r99),
            "ops_per_s": run.ops_per_s,
            "converged": true,
        }),
    ))
}

/// Publishes `rooms * clients * rate` messages a second for `s.duration`,
/// spread over `rooms` channels, to one subscriber; returns its row.
pub async fn floor(redis_url: &str, s: &Sizes) -> Row {
    let rate = s.rooms as f64 * s.clients as f64 * s.rate;
    match floor_run(redis_url, s, s.duration).await {
        Ok(run) => Row::new(
            "floor",
            json!({
                "p50_ms": run.latencies.pct_ms(50.0),
                "p99_ms": run.latencies.pct_ms(99.0),
                "max_ms": run.latencies.max_ms(),
                "msgs_per_s": rate.round(),
            }),
        ),
        Err(e) => Row::failed("floor", format!("{e:#}")),
    }
}

/// A floor measurement.
struct FloorRun {
    /// Publish-to-receive latency of every message.
    latencies: Latencies,
    /// From the first publish to the last.
    published: Range<Instant>,
}

/// The floor over `duration`, or why it has no figures (Redis failed, not
/// every message arrived, nothing to publish at this size); the callers
/// report that as their row's failure.
async fn floor_run(redis_url: &str, s: &Sizes, duration: Duration) -> Result<FloorRun> {
    let rate = s.rooms as f64 * s.clients as f64 * s.rate;
    let total = (rate * duration.as_secs_f64()).round() as u64;
    if total == 0 {
        bail!("no message to publish at {rate} a second for {duration:?}");
    }
    let client = redis::Client::open(redis_url)?;
    let mut sub = client.get_async_pubsub().await?;
    let channels: Vec<String> = (0..s.rooms)
        .map(|r| format!("bench:{{floor{r}}}:events"))
        .collect();
    for c in &channels {
        sub.subscribe(c).await?;
    }
    let publisher = client.get_multiplexed_async_connection().await?;
    let start = Instant::now();
    // The subscriber: collects each message's latency until all arrived or
    // a grace period after the last was sent.
    let collector = tokio::spawn(async move {
        let mut samples = Vec::with_capacity(total as usize);
        let mut stream = sub.on_message();
        while (samples.len() as u64) < total {
            let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(5), stream.next()).await
            else {
                break;
            };
            let payload: String = msg.get_payload().unwrap_or_default();
            let sent = payload
                .split("\"t\":")
                .nth(1)
                .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|t| t.parse::<u64>().ok());
            if let Some(t) = sent {
                let sent_at = start + Duration::from_nanos(t);
                samples.push(Instant::now().saturating_duration_since(sent_at));
            }
        }
        samples
    });
    let channels = Arc::new(channels);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut sent = 0u64;
    while sent < total {
        tick.tick().await;
        let due = ((start.elapsed().as_secs_f64() * rate) as u64).min(total);
        while sent < due {
            let channel = channels[(sent % channels.len() as u64) as usize].clone();
            // The size and shape of a one-character commit on the room channel.
            let t = start.elapsed().as_nanos() as u64;
            let payload = format!(
                r#"{{"k":"ops","ops":[{{"r":{sent},"o":[{},"x",17],"u":"u-floorbenchuser01","c":"floor-{sent}","s":{sent},"t":{t}}}]}}"#,
                sent % 100
            );
            let mut conn = publisher.clone();
            tokio::spawn(async move {
                let _: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(payload)
                    .query_async(&mut conn)
                    .await;
            });
            sent += 1;
        }
    }
    let published = start..Instant::now();
    let samples = collector.await.context("floor subscriber failed")?;
    if (samples.len() as u64) < total {
        bail!("only {} of {total} messages arrived", samples.len());
    }
    Ok(FloorRun {
        latencies: Latencies::new(samples),
        published,
    })
}
