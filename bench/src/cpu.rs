//! The `cpu_per_edit` scenario: what one delivered message costs in CPU,
//! in memory and through Redis, in one run. One room, one writer typing
//! 2,000 edits a second and nine readers; the CPU time the server
//! processes (and `redis-server`) used over the run, per 1,000 messages
//! delivered to the readers. The bots run in this process, so their own
//! CPU is not counted.

use std::time::Duration;

use anyhow::Result;
use collab_testkit::{TestRedis, TestServer};
use serde_json::json;

use crate::bot::{Plan, Typing};
use crate::group::{join_all, Group};
use crate::hot::ratio;
use crate::{http, stats, Row};

const NAME: &str = "cpu_per_edit";
/// Clients in the room: one writer, the rest read.
const CLIENTS: usize = 10;
/// The writer's pace.
const EVERY: Duration = Duration::from_micros(500);

/// One measured run.
struct Cost {
    cpu_s: f64,
    /// Of which `redis-server`'s.
    store_cpu_s: f64,
    /// Of which each server's, in the order given (the writer's first).
    server_cpu_s: Vec<f64>,
    deliveries: usize,
}

impl Cost {
    fn per_1000(&self) -> f64 {
        self.per_1000_of(self.cpu_s)
    }

    fn per_1000_of(&self, cpu_s: f64) -> f64 {
        let per = cpu_s / self.deliveries.max(1) as f64 * 1000.0;
        (per * 1e5).round() / 1e5
    }
}

/// Types into one room on `servers` (the writer on the first, the readers
/// spread over all) for `duration`; the CPU `servers` and `redis` used.
async fn run_once(
    servers: &[&TestServer],
    redis: Option<&TestRedis>,
    duration: Duration,
    tag: &str,
) -> Result<std::result::Result<Cost, String>> {
    let addrs: Vec<String> = servers.iter().map(|s| s.addr.clone()).collect();
    let room = http::create_room(&addrs[0], "").await?;
    let placement: Vec<(usize, String)> = (0..CLIENTS)
        .map(|i| (0, addrs[i % addrs.len()].clone()))
        .collect();
    let bots = join_all(tag, std::slice::from_ref(&room), &placement).await?;
    // Let the joins' presence traffic pass before the clock starts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // (each server's, `redis-server`'s)
    let cpu = || -> Result<(Vec<f64>, f64)> {
        let each = servers
            .iter()
            .map(|s| s.cpu_seconds())
            .collect::<Result<Vec<_>>>()?;
        let store = match redis {
            Some(r) => r.cpu_seconds()?,
            None => 0.0,
        };
        Ok((each, store))
    };
    let before = cpu()?;
    let bots = bots
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            let typing = if i == 0 {
                Typing::Every(EVERY)
            } else {
                Typing::Idle
            };
            let plan = Plan {
                typing,
                caret_every: None,
                record: true,
                seed: i as u64 + 1,
            };
            (0, b, plan)
        })
        .collect();
    let group = Group::start(vec![room], bots);
    tokio::time::sleep(duration).await;
    group.stop_typing();
    let done = group.finish(&addrs, Duration::from_secs(60)).await;
    let after = cpu()?;
    let server_cpu_s: Vec<f64> = after.0.iter().zip(&before.0).map(|(a, b)| a - b).collect();
    let store_cpu_s = after.1 - before.1;
    let cpu_s = server_cpu_s.iter().sum::<f64>() + store_cpu_s;
    if let Err(e) = done.converged {
        return Ok(Err(e));
    }
    let deliveries = stats::fanout(&done.outcomes, None).len();
    Ok(Ok(Cost {
        cpu_s,
        store_cpu_s,
        server_cpu_s,
        deliveries,
    }))
}

/// The scenario: in memory on `mem`, then through `a` and `b` on `redis`.
pub async fn cpu_per_edit(
    mem: &TestServer,
    a: &TestServer,
    b: &TestServer,
    redis: &TestRedis,
    duration: Duration,
) -> Result<Row> {
    let memory = match run_once(&[mem], None, duration, "cpu-mem").await? {
        Ok(c) => c,
        Err(e) => return Ok(Row::failed(NAME, e)),
    };
    let through = match run_once(&[a, b], Some(redis), duration, "cpu-redis").await? {
        Ok(c) => c,
        Err(e) => return Ok(Row::failed(NAME, e)),
    };
    Ok(Row::new(
        NAME,
        json!({
            "memory_cpu_s_per_1000": memory.per_1000(),
            "memory_deliveries": memory.deliveries,
            "redis_cpu_s_per_1000": through.per_1000(),
            "redis_deliveries": through.deliveries,
            "redis_server_cpu_s_per_1000": through.per_1000_of(through.store_cpu_s),
            // A holds the writer and 4 readers, B 5 readers fed by its
            // subscriber: where the extra per commit goes.
            "instance_a_cpu_s_per_1000": through.per_1000_of(through.server_cpu_s[0]),
            "instance_b_cpu_s_per_1000": through.per_1000_of(through.server_cpu_s[1]),
            "ratio": ratio(through.per_1000(), memory.per_1000()),
            "converged": true,
        }),
    ))
}
