//! The `project` scenario: a room holding a whole project (2,000 files of
//! 10 KB, 20 MB). It measures what a project client waits for (connect to
//! `init` with the tree in it, and opening one file), what holding the
//! joined room costs an instance that has no file of it open beyond the
//! main one (documents are loaded lazily, so that should be the tree
//! alone), and whether an edit's fan-out in the big room costs more than
//! in a one-file room: both rooms type in the same run, under the same
//! load, so the ratio is not skewed by what the machine was doing.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use collab_protocol::ServerMessage;
use collab_testkit::{project_query, Client, ProjectBot, TestServer};
use serde_json::json;

use crate::fanout::{self, Seeds};
use crate::hot::ratio;
use crate::stats::{self, ms};
use crate::{big_doc, http, start_server, Row, Sizes};

const NAME: &str = "project";

/// How long one join or open may take before the scenario fails.
const WAIT: Duration = Duration::from_secs(30);

/// The project's files: `count` paths spread over 20 directories, each
/// `bytes` long and different from the others.
fn files(count: usize, bytes: usize) -> Vec<(String, String)> {
    let body = big_doc(bytes);
    (0..count)
        .map(|i| {
            let path = format!("src/m{:02}/file{i:04}.rs", i % 20);
            let mut code = format!("// file {i}\n{body}");
            code.truncate(bytes);
            (path, code)
        })
        .collect()
}

/// Joins `room` on `addr` as a project client; the time from connect to
/// `init`, and the client.
async fn join(addr: &str, room: &str, name: &str) -> Result<(Duration, ProjectBot)> {
    let query = project_query(&format!("name={name}&client_id={name}"));
    let started = Instant::now();
    let mut client = Client::open(addr, room, &query, None, true)
        .await
        .with_context(|| format!("project join of {room} on {addr}"))?;
    let init = match client.next(WAIT).await {
        Some(Ok(init @ ServerMessage::Init { .. })) => init,
        other => bail!("no init for a project join: {other:?}"),
    };
    let took = started.elapsed();
    Ok((took, ProjectBot::from_init(client, init)?))
}

/// Opens `doc` and waits for its text; how long that took.
async fn open(bot: &mut ProjectBot, doc: &str) -> Result<Duration> {
    let started = Instant::now();
    tokio::time::timeout(WAIT, bot.open(doc))
        .await
        .with_context(|| format!("no `opened` for {doc} within {WAIT:?}"))?;
    Ok(started.elapsed())
}

fn median(mut d: Vec<Duration>) -> f64 {
    d.sort_unstable();
    d.get(d.len() / 2).map_or(f64::NAN, |d| ms(*d))
}

/// Runs the scenario: rooms are created on `instances[0]`, the joins and
/// opens are timed on a fresh instance of `bin` (so the first join loads
/// the room from Redis), and the fan-out runs over `instances`.
pub async fn project(instances: &[String], bin: &Path, redis_url: &str, s: &Sizes) -> Result<Row> {
    let files = files(s.project_files, s.project_file_bytes);
    let project_bytes: usize = files.iter().map(|(_, c)| c.len()).sum();
    let rest = http::rest(&instances[0]);
    let pairs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let created = Instant::now();
    let big = rest.create_project(&pairs).await?.room_id;
    let create_ms = ms(created.elapsed());
    // The one-file room holds what the project's main document holds.
    let small = rest.create_project(&pairs[..1]).await?.room_id;

    let fresh: TestServer = start_server(bin, Some(redis_url))?;
    let p = fresh.addr.clone();
    // The baseline: the same instance with a project client in a one-file
    // room, so everything but the big room's cost is already in its RSS.
    let (_, mut small_bot) = join(&p, &small, "proj-base").await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_empty = fresh.rss_kib()?;
    let (cold_join, mut bot) = join(&p, &big, "proj-holder").await?;
    if bot.tree.len() != files.len() {
        bail!("init listed {} files of {}", bot.tree.len(), files.len());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_joined = fresh.rss_kib()?;

    let mut warm_joins = Vec::new();
    for i in 0..5 {
        let (took, mut other) = join(&p, &big, &format!("proj-join-{i}")).await?;
        warm_joins.push(took);
        other.client.close().await;
    }
    // Files no client of this instance has open: each open loads one
    // document from Redis.
    let mut opens = Vec::new();
    for (path, code) in files.iter().skip(1).step_by(files.len() / 7 + 1).take(5) {
        let doc = bot
            .doc_at(path)
            .context("a created file is not in the tree")?;
        opens.push(open(&mut bot, &doc).await?);
        if bot.text(&doc) != *code {
            bail!("{path} opened with other text than it was created with");
        }
    }
    let first_open = ms(opens[0]);
    bot.client.close().await;
    small_bot.client.close().await;
    drop(fresh);

    // Fan-out: the one-file room and the project room's main document
    // typed into at once.
    let rooms = vec![small, big];
    let run = fanout::load(instances, rooms, Seeds::SameInEveryRoom, s, "proj", async {
    })
    .await?;
    if let Err(e) = run.done.converged {
        return Ok(Row::failed(NAME, e));
    }
    let of_room = |room: usize| {
        let outcomes = run.done.outcomes.iter().filter(move |(r, _)| *r == room);
        stats::fanout(outcomes, None)
    };
    let (one, many) = (of_room(0), of_room(1));
    if one.len() == 0 || many.len() == 0 {
        return Ok(Row::failed(
            NAME,
            "no edit was delivered in one of the rooms",
        ));
    }
    let (one99, many99) = (one.pct_ms(99.0), many.pct_ms(99.0));
    Ok(Row::new(
        NAME,
        json!({
            "files": files.len(),
            "project_bytes": project_bytes,
            "create_ms": create_ms,
            "join_ms": ms(cold_join),
            "warm_join_ms": median(warm_joins),
            "open_ms": first_open,
            "median_open_ms": median(opens),
            "rss_kib_empty_room": rss_empty,
            "rss_kib_joined": rss_joined,
            "rss_kib_delta": rss_joined as i64 - rss_empty as i64,
            "one_file_p50_ms": one.pct_ms(50.0),
            "project_p50_ms": many.pct_ms(50.0),
            "p50_ratio": ratio(many.pct_ms(50.0), one.pct_ms(50.0)),
            "one_file_p99_ms": one99,
            "project_p99_ms": many99,
            "p99_ratio": ratio(many99, one99),
            "deliveries": one.len() + many.len(),
            "converged": true,
        }),
    ))
}
