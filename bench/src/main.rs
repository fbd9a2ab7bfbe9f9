//! `collab-bench`: the load generator behind `scripts/bench.sh`. It starts a
//! private `redis-server` and `collab-server` instances on 127.0.0.1
//! (collab-testkit's `TestRedis` and `TestServer`), runs
//! every scenario of the benchmark against them with real protocol clients,
//! verifies that every client converged, prints a table and writes one JSON
//! object per scenario to a file. Everything it starts is killed when it
//! ends, and every phase is bounded in time and count.

mod bot;
mod cpu;
mod cursor;
mod fanout;
mod group;
mod hot;
mod http;
mod joins;
mod project;
mod stats;
mod storm;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use collab_testkit::{TestRedis, TestServer};
use serde_json::{json, Map, Value};

/// Load generator for collab-server: fan-out latency against the Redis
/// floor, hot-room throughput, big documents, history, idle connections,
/// joins, cursor storms, a 2,000-file project room, CPU per edit, connect
/// rate and an instance's users reconnecting at once. Talks only to processes it starts on 127.0.0.1.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Small sizes: every scenario in well under a minute.
    #[arg(long)]
    quick: bool,
    /// Where to write the JSON lines.
    #[arg(long, default_value = "bench-results.jsonl")]
    out: PathBuf,
    /// The collab-server binary (default: next to this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Run only these scenarios (comma-separated names; `floor` and
    /// `fanout_vs_floor` come with `fanout`, `join` with `history`;
    /// `loaded_floor` is the fan-out load again with the floor measured
    /// beside it).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Fan-out (and floor, and loaded_floor) rooms, instead of the size's default (100, quick 10).
    #[arg(long)]
    rooms: Option<usize>,
    /// Fan-out clients per room, instead of the default (10, quick 5).
    #[arg(long)]
    clients: Option<usize>,
    /// Fan-out edits per client per second, instead of the default (5).
    #[arg(long)]
    rate: Option<f64>,
    /// Run the fan-out and hot-room scenarios (only those) on a private
    /// 3-primary Redis Cluster, the two instances with --redis-cluster; the
    /// rows are named `fanout_cluster` and `hot_room_cluster`.
    #[arg(long)]
    cluster: bool,
}

/// The size of every scenario.
#[derive(Debug)]
pub struct Sizes {
    rooms: usize,
    clients: usize,
    rate: f64,
    duration: Duration,
    hot_clients: usize,
    hot_duration: Duration,
    doc_bytes: usize,
    history_mark: u64,
    history_total: u64,
    history_limit: Duration,
    connections: usize,
    cursor_clients: usize,
    cursor_hz: f64,
    cursor_duration: Duration,
    project_files: usize,
    project_file_bytes: usize,
    storm_clients: usize,
    storm_rooms: usize,
}

impl Sizes {
    fn full() -> Self {
        Self {
            rooms: 100,
            clients: 10,
            rate: 5.0,
            duration: Duration::from_secs(20),
            hot_clients: 20,
            hot_duration: Duration::from_secs(10),
            doc_bytes: 1 << 20,
            history_mark: 10_000,
            history_total: 500_000,
            history_limit: Duration::from_secs(600),
            connections: 5_000,
            cursor_clients: 50,
            cursor_hz: 30.0,
            cursor_duration: Duration::from_secs(10),
            project_files: 2_000,
            project_file_bytes: 10_000,
            storm_clients: 5_000,
            storm_rooms: 500,
        }
    }

    fn quick() -> Self {
        Self {
            rooms: 10,
            clients: 5,
            rate: 5.0,
            duration: Duration::from_secs(3),
            hot_clients: 20,
            hot_duration: Duration::from_secs(2),
            doc_bytes: 1 << 20,
            history_mark: 2_000,
            history_total: 12_000,
            history_limit: Duration::from_secs(30),
            connections: 500,
            cursor_clients: 20,
            cursor_hz: 30.0,
            cursor_duration: Duration::from_secs(3),
            project_files: 2_000,
            project_file_bytes: 10_000,
            storm_clients: 500,
            storm_rooms: 50,
        }
    }
}

/// One scenario's JSON object.
pub struct Row(Map<String, Value>);

impl Row {
    /// A scenario's figures.
    pub fn new(scenario: &str, figures: Value) -> Self {
        let mut map = Map::new();
        map.insert("scenario".into(), scenario.into());
        if let Value::Object(f) = figures {
            map.extend(f);
        }
        Self(map)
    }

    /// A scenario that failed: no figures, only why.
    pub fn failed(scenario: &str, error: impl Into<String>) -> Self {
        Self::new(
            scenario,
            json!({ "failed": true, "converged": false, "error": error.into() }),
        )
    }

    fn is_failed(&self) -> bool {
        self.0.get("failed") == Some(&Value::Bool(true))
    }

    fn f64(&self, key: &str) -> Option<f64> {
        self.0.get(key).and_then(Value::as_f64)
    }
}

/// A 1 MiB-ish document of code-like lines, exactly `bytes` long.
fn big_doc(bytes: usize) -> String {
    let line = "    let value = compute(index, &table[offset..]); // keep going\n";
    let mut doc = line.repeat(bytes / line.len() + 1);
    doc.truncate(bytes);
    doc
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut sizes = if args.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    sizes.rooms = args.rooms.unwrap_or(sizes.rooms).max(1);
    sizes.clients = args.clients.unwrap_or(sizes.clients).max(2);
    sizes.rate = args.rate.unwrap_or(sizes.rate);
    if !(sizes.rate > 0.0 && sizes.rate <= 1000.0) {
        anyhow::bail!("--rate must be between 0 and 1000 edits per second");
    }
    let bin = match &args.server_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("collab-server"),
    };
    let mut out = std::fs::File::create(&args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let rows = tokio::select! {
        rows = async {
            if args.cluster {
                run_cluster(&args, &sizes, &bin).await
            } else {
                run(&args, &sizes, &bin).await
            }
        } => rows?,
        _ = stop_signal() => anyhow::bail!("interrupted"),
    };
    println!();
    print_table(&rows, args.quick);
    for row in &rows {
        writeln!(out, "{}", Value::Object(row.0.clone()))?;
    }
    println!("\nwrote {} scenarios to {}", rows.len(), args.out.display());
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| r.is_failed())
        .filter_map(|r| r.0.get("scenario").and_then(Value::as_str))
        .collect();
    if !failed.is_empty() {
        eprintln!("FAILED: {}", failed.join(", "));
        std::process::exit(1);
    }
    Ok(())
}

/// SIGINT or SIGTERM: dropping the running scenario kills what it started.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn wanted(args: &Args, name: &str) -> bool {
    args.only.is_empty() || args.only.iter().any(|o| o == name)
}

fn progress(name: &str) {
    eprintln!("[collab-bench] {name}...");
}

/// A `collab-server` process of `bin` on `redis_url` or in memory. Each is
/// killed when dropped, so a failed or interrupted run leaves nothing
/// behind.
fn start_server(bin: &Path, redis_url: Option<&str>) -> Result<TestServer> {
    start_server_with(bin, redis_url, &[])
}

/// [`start_server`] with extra flags.
fn start_server_with(bin: &Path, redis_url: Option<&str>, extra: &[&str]) -> Result<TestServer> {
    let mut cmd = TestServer::command(bin)
        // The load comes from one address and types as fast as it can:
        // lift the per-client abuse limits, which are not what is measured.
        .args(["--rate-per-sec", "1000000", "--rate-burst", "1000000"])
        .args([
            "--max-conns-per-ip",
            "1000000",
            "--max-pending-per-ip",
            "1000000",
            "--max-conns-per-room",
            "1000000",
        ])
        // COLLAB_BENCH_SERVER_LOG (a RUST_LOG filter) shows the servers' logs.
        .rust_log(std::env::var("COLLAB_BENCH_SERVER_LOG").unwrap_or_else(|_| "error".into()));
    if let Some(url) = redis_url {
        cmd = cmd.redis(url);
    }
    cmd.args(extra).spawn()
}

/// `--cluster`: fan-out and hot room with two instances on a private
/// 3-primary Redis Cluster (rooms spread over its shards, events by sharded
/// pub/sub), to set beside the single-Redis rows of another run.
async fn run_cluster(args: &Args, s: &Sizes, bin: &Path) -> Result<Vec<Row>> {
    let cluster = collab_testkit::TestCluster::try_start(3, 0)?;
    let url = cluster.url();
    let a = start_server_with(bin, Some(&url), &["--redis-cluster"])?;
    let b = start_server_with(bin, Some(&url), &["--redis-cluster"])?;
    let both = vec![a.addr.clone(), b.addr.clone()];
    let rename = |mut row: Row, name: &str| {
        row.0.insert("scenario".into(), name.into());
        row
    };
    let mut rows = Vec::new();
    if wanted(args, "fanout") {
        progress("fanout (cluster)");
        rows.push(rename(fanout::fanout(&both, s).await?, "fanout_cluster"));
    }
    if wanted(args, "hot_room") {
        progress("hot_room (cluster)");
        let hot = hot::hot(&both, s.hot_clients, "", s.hot_duration, "hot").await?;
        rows.push(rename(
            hot::hot_row("hot_room", s.hot_clients, 0, &hot),
            "hot_room_cluster",
        ));
    }
    Ok(rows)
}

async fn run(args: &Args, s: &Sizes, bin: &Path) -> Result<Vec<Row>> {
    let redis = TestRedis::try_start()?;
    let url = redis.url();
    let a = start_server(bin, Some(&url))?;
    let b = start_server(bin, Some(&url))?;
    let both = vec![a.addr.clone(), b.addr.clone()];
    let mut rows = Vec::new();

    if wanted(args, "fanout") {
        progress("fanout");
        let fan = fanout::fanout(&both, s).await?;
        progress("floor");
        let floor = fanout::floor(&url, s).await;
        let vs = match (
            fan.is_failed() || floor.is_failed(),
            fan.f64("p50_ms"),
            fan.f64("p99_ms"),
            floor.f64("p50_ms"),
            floor.f64("p99_ms"),
        ) {
            (false, Some(f50), Some(f99), Some(r50), Some(r99)) => Row::new(
                "fanout_vs_floor",
                json!({ "p50_ratio": hot::ratio(f50, r50), "p99_ratio": hot::ratio(f99, r99) }),
            ),
            _ => Row::failed("fanout_vs_floor", "fanout or floor failed"),
        };
        rows.extend([fan, floor, vs]);
    }
    if wanted(args, "fanout_memory") {
        // The same load on one in-memory instance: what the two instances
        // through Redis are held against.
        progress("fanout_memory");
        let mem = start_server(bin, None)?;
        let mut row = fanout::fanout(std::slice::from_ref(&mem.addr), s).await?;
        row.0.insert("scenario".into(), "fanout_memory".into());
        let through = rows
            .iter()
            .find(|r| r.0.get("scenario").and_then(Value::as_str) == Some("fanout"));
        let vs = match through {
            Some(f) if !f.is_failed() && !row.is_failed() => {
                let ratio = |k: &str| match (f.f64(k), row.f64(k)) {
                    (Some(a), Some(b)) => json!(hot::ratio(a, b)),
                    _ => Value::Null,
                };
                Some(Row::new(
                    "fanout_vs_memory",
                    json!({
                        "p50_ratio": ratio("p50_ms"),
                        "p99_ratio": ratio("p99_ms"),
                        "p99_9_ratio": ratio("p99_9_ms"),
                    }),
                ))
            }
            _ => None,
        };
        rows.push(row);
        rows.extend(vs);
    }
    if wanted(args, "loaded_floor") {
        progress("loaded_floor");
        rows.push(fanout::loaded_floor(&both, &url, s).await?);
    }

    let doc = big_doc(s.doc_bytes);
    if wanted(args, "hot_room") || wanted(args, "big_doc") {
        progress("hot_room");
        let empty = hot::hot(&both, s.hot_clients, "", s.hot_duration, "hot").await?;
        rows.push(hot::hot_row("hot_room", s.hot_clients, 0, &empty));
        progress("big_doc");
        let big = hot::hot(&both, s.hot_clients, &doc, s.hot_duration, "big").await?;
        rows.push(match (&empty.finished.converged, &big.finished.converged) {
            (Ok(()), Ok(())) => Row::new(
                "big_doc",
                json!({
                    "clients": s.hot_clients,
                    "doc_bytes": doc.len(),
                    "ops_per_s": big.ops_per_s,
                    "ratio_to_empty": hot::ratio(big.ops_per_s, empty.ops_per_s),
                    "converged": true,
                }),
            ),
            (_, Err(e)) => Row::failed("big_doc", e.clone()),
            (Err(_), _) => Row::failed("big_doc", "the empty-document run failed"),
        });
    }
    if wanted(args, "hot_room_memory") {
        progress("hot_room_memory");
        let mem = start_server(bin, None)?;
        let h = hot::hot(
            std::slice::from_ref(&mem.addr),
            s.hot_clients,
            "",
            s.hot_duration,
            "mem",
        )
        .await?;
        rows.push(hot::hot_row("hot_room_memory", s.hot_clients, 0, &h));
    }

    let mut history_join = None;
    if wanted(args, "history") || wanted(args, "join") {
        progress("history");
        let server = start_server(bin, Some(&url))?;
        let h = hot::history(
            &server,
            s.hot_clients,
            s.history_mark,
            s.history_total,
            s.history_limit,
        )
        .await?;
        if let Some((room, revision)) = &h.room {
            history_join = Some((*revision, hot::history_join(&server.addr, room, 5).await?));
        }
        rows.push(h.row);
    }
    if wanted(args, "join") || wanted(args, "history") {
        progress("join");
        let (cold, warm) = joins::join_doc(&both, &doc, 5).await?;
        rows.push(match history_join {
            Some((ops, ms)) => Row::new(
                "join",
                json!({
                    "doc_bytes": doc.len(),
                    "init_ms": warm,
                    "cold_init_ms": cold,
                    "history_ops": ops,
                    "history_init_ms": ms,
                }),
            ),
            None => Row::failed("join", "the history room was not built"),
        });
    }
    if wanted(args, "connections") {
        progress("connections");
        let server = start_server(bin, Some(&url))?;
        rows.push(joins::connections(&server, s.connections, 50).await?);
    }
    if wanted(args, "cursor_storm") {
        progress("cursor_storm");
        rows.push(cursor::cursor_storm(&both, s).await?);
    }
    if wanted(args, "cpu_per_edit") {
        progress("cpu_per_edit");
        let mem = start_server(bin, None)?;
        rows.push(cpu::cpu_per_edit(&mem, &a, &b, &redis, s.hot_duration).await?);
    }
    if wanted(args, "connect_rate") {
        progress("connect_rate");
        let mem = start_server(bin, None)?;
        let red = start_server(bin, Some(&url))?;
        rows.push(joins::connect_rate(&mem, &red, s.connections).await?);
    }
    if wanted(args, "reconnect_storm") {
        progress("reconnect_storm");
        // Instances of its own: A is stopped.
        let a = start_server(bin, Some(&url))?;
        let b = start_server(bin, Some(&url))?;
        rows.push(storm::reconnect_storm(&a, &b, s.storm_clients, s.storm_rooms).await?);
    }
    if wanted(args, "project") {
        progress("project");
        rows.push(project::project(&both, bin, &url, s).await?);
    }
    Ok(rows)
}

fn print_table(rows: &[Row], quick: bool) {
    let size = if quick { "quick" } else { "full" };
    println!("collab benchmark ({size}), release build, 127.0.0.1");
    println!("{:<17} figures", "scenario");
    println!("{}", "-".repeat(78));
    for row in rows {
        let name = row.0.get("scenario").and_then(Value::as_str).unwrap_or("?");
        let figures: Vec<String> = row
            .0
            .iter()
            .filter(|(k, _)| *k != "scenario")
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect();
        println!("{name:<17} {}", figures.join("  "));
    }
}
