//! `collab-server`: parses the command line, sets up logging, and runs the
//! server library until SIGINT or SIGTERM.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use collab_server::Config;
use tracing_subscriber::EnvFilter;

/// The collab room server: REST at /rooms and /health, the collab protocol
/// over WebSocket at /ws/{room_id} (see docs/protocol.md).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "COLLAB_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free one and prints it).
    #[arg(long, env = "COLLAB_PORT", default_value_t = 8000)]
    port: u16,
    /// Seconds a room is kept with nobody connected and no activity.
    #[arg(long, env = "ROOM_TTL_SECONDS", default_value_t = 7200)]
    room_ttl_seconds: u64,
    /// Largest WebSocket message accepted, in bytes (larger ones close with 1009).
    #[arg(long, env = "COLLAB_MAX_MESSAGE_BYTES", default_value_t = 1 << 20)]
    max_message_bytes: usize,
    /// Committed operations kept per room for late edits and reconnects.
    #[arg(long, env = "COLLAB_HISTORY_OPS", default_value_t = 10_000)]
    history_ops: usize,
    /// Redis URL (e.g. redis://127.0.0.1:6379/0). When set, rooms live in
    /// Redis and any number of instances share them; otherwise in memory.
    #[arg(long, env = "REDIS_URL")]
    redis_url: Option<String>,
    /// Messages queued per connection before a lagging client is disconnected.
    #[arg(long, env = "COLLAB_OUTGOING_QUEUE", default_value_t = 4096)]
    outgoing_queue: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = Config {
        room_ttl: Duration::from_secs(args.room_ttl_seconds),
        max_message_bytes: args.max_message_bytes,
        history_ops: args.history_ops.max(1),
        outgoing_queue: args.outgoing_queue.max(16),
        redis_url: args.redis_url.filter(|u| !u.is_empty()),
        ..Config::default()
    };
    let addr = format!("{}:{}", args.host, args.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().context("listener has no address")?;
    tracing::info!("collab-server listening on http://{local}");
    println!("listening on {local}");
    collab_server::run(listener, config, shutdown_signal())
        .await
        .context("server failed")
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
