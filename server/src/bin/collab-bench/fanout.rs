//! Scenario 1 and 2: fan-out latency of R rooms x C clients typing at a
//! steady rate across both instances, and the floor: the same message rate
//! through raw Redis PUBLISH/SUBSCRIBE (one publishing connection, one
//! subscribed) on the same Redis, through the same redis crate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::StreamExt;
use serde_json::json;

use crate::bot::{Plan, Typing};
use crate::group::{join_all, Group};
use crate::stats::{self, Latencies};
use crate::{http, Row, Sizes};

/// Runs the fan-out scenario; returns its row.
pub async fn fanout(instances: &[String], s: &Sizes) -> Result<Row> {
    let mut rooms = Vec::new();
    for _ in 0..s.rooms {
        rooms.push(http::create_room(&instances[0], "").await?);
    }
    let placement: Vec<(usize, String)> = (0..s.rooms * s.clients)
        .map(|i| (i / s.clients, instances[i % instances.len()].clone()))
        .collect();
    let bots = join_all("fan", &rooms, &placement).await?;
    let every = Duration::from_secs_f64(1.0 / s.rate);
    let bots = bots
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            let plan = Plan {
                typing: Typing::Every(every),
                caret_every: None,
                record: true,
                seed: 0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
            };
            (placement[i].0, b, plan)
        })
        .collect();
    let group = Group::start(rooms, bots);
    tokio::time::sleep(s.duration).await;
    let (elapsed, acked) = group.stop_typing();
    let done = group.finish(instances, Duration::from_secs(60)).await;
    if let Err(e) = done.converged {
        return Ok(Row::failed("fanout", e));
    }
    let lat = stats::fanout(&done.outcomes);
    Ok(Row::new(
        "fanout",
        json!({
            "rooms": s.rooms,
            "clients": s.rooms * s.clients,
            "p50_ms": lat.pct_ms(50.0),
            "p99_ms": lat.pct_ms(99.0),
            "max_ms": lat.max_ms(),
            "ops_per_s": (acked as f64 / elapsed.as_secs_f64()).round(),
            "deliveries": lat.len(),
            "converged": true,
        }),
    ))
}

/// Publishes `rooms * clients * rate` messages a second for `duration`,
/// spread over `rooms` channels, to one subscriber; returns its row.
pub async fn floor(redis_url: &str, s: &Sizes) -> Result<Row> {
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
    let rate = s.rooms as f64 * s.clients as f64 * s.rate;
    let total = (rate * s.duration.as_secs_f64()).round() as u64;
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
    let samples = collector.await.context("floor subscriber failed")?;
    if (samples.len() as u64) < total {
        return Ok(Row::failed(
            "floor",
            format!("only {} of {total} messages arrived", samples.len()),
        ));
    }
    let lat = Latencies::new(samples);
    Ok(Row::new(
        "floor",
        json!({
            "p50_ms": lat.pct_ms(50.0),
            "p99_ms": lat.pct_ms(99.0),
            "max_ms": lat.max_ms(),
            "msgs_per_s": rate.round(),
        }),
    ))
}
