//! Scenario 8: a cursor storm. Many clients in one room, across both
//! instances, move their caret many times a second while a few of them type;
//! counts disconnects (carets are state, so a lagging reader must get the
//! newest caret per user, never a backlog that closes it) and the fan-out
//! p99 of the edits typed meanwhile.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use crate::bot::{Plan, Typing};
use crate::group::{join_all, Group};
use crate::{http, stats, Row, Sizes};

/// Clients that also type, at 5 edits a second.
const TYPISTS: usize = 5;

/// Runs the cursor storm; returns its row.
pub async fn cursor_storm(instances: &[String], s: &Sizes) -> Result<Row> {
    let room = http::create_room(&instances[0], &"let x = 1;\n".repeat(200)).await?;
    let rooms = vec![room];
    let placement: Vec<(usize, String)> = (0..s.cursor_clients)
        .map(|i| (0, instances[i % instances.len()].clone()))
        .collect();
    let bots = join_all("caret", &rooms, &placement).await?;
    let caret_every = Duration::from_secs_f64(1.0 / s.cursor_hz);
    let bots = bots
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            let plan = Plan {
                typing: if i < TYPISTS {
                    Typing::Every(Duration::from_millis(200))
                } else {
                    Typing::Idle
                },
                caret_every: Some(caret_every),
                record: true,
                seed: 0xA076_1D64_78BD_642F ^ (i as u64 + 1).wrapping_mul(0xE703_7ED1_A0B4_28DB),
            };
            (0, b, plan)
        })
        .collect();
    let group = Group::start(rooms, bots);
    tokio::time::sleep(s.cursor_duration).await;
    group.stop_typing();
    let done = group.finish(instances, Duration::from_secs(60)).await;
    let disconnects = done.disconnects;
    if let Err(e) = done.converged {
        return Ok(Row::failed(
            "cursor_storm",
            format!("{e} ({disconnects} disconnects)"),
        ));
    }
    let lat = stats::fanout(&done.outcomes, None);
    Ok(Row::new(
        "cursor_storm",
        json!({
            "clients": s.cursor_clients,
            "carets_per_s": (s.cursor_clients as f64 * s.cursor_hz).round(),
            "disconnects": disconnects,
            "edit_p50_ms": lat.pct_ms(50.0),
            "edit_p99_ms": lat.pct_ms(99.0),
            "converged": true,
        }),
    ))
}
