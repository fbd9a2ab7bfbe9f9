//! Scenarios 3 to 5: one hot room where every client types as fast as the
//! protocol allows (one operation in flight each), measured as committed
//! operations per second; the same on a 1 MiB document; and one room driven
//! to a large history while the server's resident memory is sampled.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use collab_testkit::TestServer;
use serde_json::json;

use crate::bot::{Plan, Typing};
use crate::group::{join_all, Finished, Group};
use crate::{http, joins, Row};

fn flat_out(i: usize) -> Plan {
    Plan {
        typing: Typing::FlatOut,
        caret_every: None,
        record: false,
        seed: 0xD1B5_4A32_D192_ED03 ^ (i as u64 + 1).wrapping_mul(0x94D0_49BB_1331_11EB),
    }
}

/// A hot room's figures.
pub struct Hot {
    /// Committed operations per second while typing.
    pub ops_per_s: f64,
    /// Convergence check.
    pub finished: Finished,
}

/// `clients` bots, spread over `instances`, typing flat out in one room
/// holding `doc` for `duration`.
pub async fn hot(
    instances: &[String],
    clients: usize,
    doc: &str,
    duration: Duration,
    tag: &str,
) -> Result<Hot> {
    let room = http::create_room(&instances[0], doc).await?;
    let placement: Vec<(usize, String)> = (0..clients)
        .map(|i| (0, instances[i % instances.len()].clone()))
        .collect();
    let rooms = vec![room];
    let bots = join_all(tag, &rooms, &placement).await?;
    let bots = bots
        .into_iter()
        .enumerate()
        .map(|(i, b)| (0, b, flat_out(i)))
        .collect();
    let group = Group::start(rooms, bots);
    tokio::time::sleep(duration).await;
    let (elapsed, acked) = group.stop_typing();
    let finished = group.finish(instances, Duration::from_secs(60)).await;
    Ok(Hot {
        ops_per_s: (acked as f64 / elapsed.as_secs_f64()).round(),
        finished,
    })
}

/// The row of a hot-room run.
pub fn hot_row(scenario: &str, clients: usize, doc_bytes: usize, h: &Hot) -> Row {
    match &h.finished.converged {
        Err(e) => Row::failed(scenario, e.clone()),
        Ok(()) => Row::new(
            scenario,
            json!({
                "clients": clients,
                "doc_bytes": doc_bytes,
                "ops_per_s": h.ops_per_s,
                "converged": true,
            }),
        ),
    }
}

/// The history run's figures, and the room it leaves behind.
pub struct History {
    /// Its row.
    pub row: Row,
    /// The room, still loaded on the server, with `revision` operations.
    pub room: Option<(String, u64)>,
}

/// Drives one room on `server` to `total` committed operations with
/// `clients` flat-out bots; samples RSS when it passes `mark` and `total`.
pub async fn history(
    server: &TestServer,
    clients: usize,
    mark: u64,
    total: u64,
    limit: Duration,
) -> Result<History> {
    let instances = vec![server.addr.clone()];
    let room = http::create_room(&server.addr, "").await?;
    let placement: Vec<(usize, String)> = (0..clients).map(|_| (0, server.addr.clone())).collect();
    let rooms = vec![room.clone()];
    let bots = join_all("hist", &rooms, &placement).await?;
    let bots = bots
        .into_iter()
        .enumerate()
        .map(|(i, b)| (0, b, flat_out(i)))
        .collect();
    let started = Instant::now();
    let group = Group::start(rooms, bots);
    let mut rss_mark = None;
    let mut rss_total = None;
    while started.elapsed() < limit {
        let revision = group.max_revision();
        if rss_mark.is_none() && revision >= mark {
            rss_mark = Some(server.rss_kib()?);
        }
        if revision >= total {
            rss_total = Some(server.rss_kib()?);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (elapsed, acked) = group.stop_typing();
    let finished = group.finish(&instances, Duration::from_secs(60)).await;
    let (Some(small), Some(large)) = (rss_mark, rss_total) else {
        let msg = format!("reached only {} operations in {limit:?}", acked);
        return Ok(History {
            row: Row::failed("history", msg),
            room: None,
        });
    };
    if let Err(e) = finished.converged {
        return Ok(History {
            row: Row::failed("history", e),
            room: None,
        });
    }
    let revision = finished.outcomes.first().map_or(0, |(_, o)| o.revision);
    Ok(History {
        row: Row::new(
            "history",
            json!({
                "ops_small": mark,
                "ops_large": total,
                "rss_kib_10k": small,
                "rss_kib_500k": large,
                "ratio": ratio(large as f64, small as f64),
                "ops_per_s": (acked as f64 / elapsed.as_secs_f64()).round(),
                "converged": true,
            }),
        ),
        room: Some((room, revision)),
    })
}

/// `a / b` to three decimals.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        return 0.0;
    }
    (a / b * 1000.0).round() / 1000.0
}

/// Join time on the history room: connect to `init`, median of `tries`.
pub async fn history_join(addr: &str, room: &str, tries: usize) -> Result<f64> {
    let (_, warm) = joins::time_joins(addr, room, tries).await?;
    if warm.is_nan() {
        bail!("no join measured");
    }
    Ok(warm)
}
