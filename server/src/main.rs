//! `collab-server`: parses the command line, sets up logging, and runs the
//! server library until SIGINT or SIGTERM. `collab-server token` mints a
//! token for the optional authentication.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use collab_server::auth::{parse_ttl, Auth};
use collab_server::client_addr::TrustedProxies;
use collab_server::tls::TlsFiles;
use collab_server::Config;
use tracing_subscriber::EnvFilter;

/// The collab room server: REST at /rooms, /health and /metrics, the collab
/// protocol over WebSocket at /ws/{room_id} (see docs/protocol.md).
#[derive(Parser, Debug)]
#[command(version = collab_server::VERSION, about)]
struct Args {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Print a token for `sub`, signed with COLLAB_JWT_SECRET; clients pass it
    /// with `--token` / COLLAB_TOKEN.
    Token {
        /// The user's name, shown to the others in the room.
        #[arg(long)]
        sub: String,
        /// How long the token is valid: 30d, 12h, 45m, 90s.
        #[arg(long, default_value = "30d", value_parser = parse_ttl)]
        ttl: Duration,
        /// The signing secret.
        #[arg(long, env = "COLLAB_JWT_SECRET", hide_env_values = true)]
        jwt_secret: String,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "COLLAB_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free one; the address is printed).
    #[arg(long, env = "COLLAB_PORT", default_value_t = 8000)]
    port: u16,
    /// TLS certificate chain (PEM): serve HTTPS and wss:// instead of plain
    /// HTTP (needs --tls-key). SIGHUP reloads it and the key without
    /// dropping connections.
    #[arg(long, env = "COLLAB_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "COLLAB_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The address users reach this server at, e.g. https://collab.example.com
    /// (behind a proxy, the proxy's): `POST /rooms` answers join and
    /// WebSocket URLs built from it. Unset: from the request's Host.
    #[arg(long, env = "COLLAB_PUBLIC_URL")]
    public_url: Option<String>,
    /// Redis URL (e.g. redis://127.0.0.1:6379/0, or rediss://… for TLS).
    /// When set, rooms live in Redis and any number of instances share them;
    /// otherwise in memory. With --redis-cluster: one or more seed nodes of
    /// the cluster, comma-separated.
    #[arg(long, env = "REDIS_URL")]
    redis_url: Option<String>,
    /// --redis-url names a Redis Cluster (7.0 or later): rooms spread over
    /// its shards by their hash tag, events travel by sharded pub/sub.
    #[arg(long, env = "REDIS_CLUSTER")]
    redis_cluster: bool,
    /// Replicas that must hold a commit (Redis WAIT, up to 0.2 s) before a
    /// client gets its ack; with 1, killing a primary whose replica takes
    /// over loses no acknowledged edit. 0 acks once the primary has it.
    #[arg(long, env = "REDIS_WAIT_REPLICAS", default_value_t = 0)]
    redis_wait_replicas: usize,
    /// Seconds a room is kept with nobody connected and no activity.
    #[arg(long, env = "ROOM_TTL_SECONDS", default_value_t = 7200)]
    room_ttl_seconds: u64,
    /// HS256 secret; when set, REST needs `Authorization: Bearer <token>` and
    /// WebSockets the same header or `?token=`.
    #[arg(long, env = "COLLAB_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Comma-separated origins allowed to open WebSockets and call REST from
    /// a browser (others get 403); any origin when unset.
    #[arg(long, env = "CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Option<Vec<String>>,
    /// Largest WebSocket message accepted, in bytes (larger ones close with 1009).
    #[arg(long, env = "COLLAB_MAX_MESSAGE_BYTES", default_value_t = 1 << 20)]
    max_message_bytes: usize,
    /// Largest document, in chars; larger edits are refused, not applied.
    #[arg(long, env = "COLLAB_MAX_DOCUMENT_CHARS", default_value_t = 10 << 20)]
    max_document_chars: usize,
    /// Documents one project room may hold (a create beyond gets
    /// `too_many_files`).
    #[arg(long, env = "COLLAB_MAX_DOCS", default_value_t = 10_000)]
    max_docs: usize,
    /// Bytes one document may hold (creating or growing one past it gets
    /// `document_too_large`).
    #[arg(long, env = "COLLAB_MAX_DOC_BYTES", default_value_t = 10 << 20)]
    max_doc_bytes: u64,
    /// Bytes all documents of one room may hold together.
    #[arg(long, env = "COLLAB_MAX_ROOM_BYTES", default_value_t = 100 << 20)]
    max_room_bytes: u64,
    /// Documents one connection may hold open (`open` beyond gets
    /// `too_many_open`).
    #[arg(long, env = "COLLAB_MAX_OPEN_DOCS", default_value_t = 64)]
    max_open_docs: usize,
    /// Messages per second one connection may send, sustained (1008 beyond).
    #[arg(long, env = "COLLAB_RATE_PER_SEC", default_value_t = 500.0)]
    rate_per_sec: f64,
    /// Messages one connection may send in a burst.
    #[arg(long, env = "COLLAB_RATE_BURST", default_value_t = 1000.0)]
    rate_burst: f64,
    /// Connections one room may hold (1013 beyond).
    #[arg(long, env = "COLLAB_MAX_CONNS_PER_ROOM", default_value_t = 200)]
    max_conns_per_room: usize,
    /// Connections one client address may hold (1013 beyond).
    #[arg(long, env = "COLLAB_MAX_CONNS_PER_IP", default_value_t = 1000)]
    max_conns_per_ip: usize,
    /// Proxies (addresses or networks like 10.0.0.0/8, comma-separated or
    /// repeated) whose `X-Forwarded-For` header names the client address:
    /// behind a load balancer, name it, or every user counts as the balancer
    /// for --max-conns-per-ip. The header is ignored from anyone else.
    #[arg(
        long = "trusted-proxy",
        env = "COLLAB_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<String>,
    /// Seconds after which a connection that sent nothing, not even a pong
    /// to the server's ping, is closed (1001).
    #[arg(long, env = "COLLAB_IDLE_TIMEOUT_SECONDS", default_value_t = 90)]
    idle_timeout_seconds: u64,
    /// Seconds a client has to send a request's headers before its
    /// connection is closed.
    #[arg(long, env = "COLLAB_HEADER_TIMEOUT_SECONDS", default_value_t = 10)]
    header_timeout_seconds: u64,
    /// Connections one client address may hold before they become
    /// WebSockets (unfinished requests, idle keep-alives); more are closed
    /// at once. Trusted proxies are exempt.
    #[arg(long, env = "COLLAB_MAX_PENDING_PER_IP", default_value_t = 64)]
    max_pending_per_ip: usize,
    /// Committed operations kept per room for late edits and reconnects.
    #[arg(long, env = "COLLAB_HISTORY_OPS", default_value_t = 10_000)]
    history_ops: usize,
    /// Bytes of committed operations one room keeps at most (the oldest go
    /// first, as with --history-ops).
    #[arg(long, env = "COLLAB_HISTORY_BYTES", default_value_t = 32 << 20)]
    history_bytes: usize,
    /// Bytes of committed operations all rooms of this instance keep at
    /// most, shared evenly by the rooms open on it.
    #[arg(long, env = "COLLAB_HISTORY_BYTES_TOTAL", default_value_t = 512 << 20)]
    history_bytes_total: usize,
    /// Messages queued per connection before a lagging client is closed (4008).
    #[arg(long, env = "COLLAB_OUTGOING_QUEUE", default_value_t = 4096)]
    outgoing_queue: usize,
    /// Seconds to drain rooms and close connections on SIGTERM/SIGINT.
    #[arg(long, env = "COLLAB_SHUTDOWN_GRACE_SECONDS", default_value_t = 10)]
    shutdown_grace_seconds: u64,
    /// Log format (logs go to stderr; filter with RUST_LOG).
    #[arg(long, env = "COLLAB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Cmd::Token {
        sub,
        ttl,
        jwt_secret,
    }) = args.command
    {
        println!("{}", Auth::new(&jwt_secret).mint(&sub, ttl));
        return Ok(());
    }
    let a = args.serve;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match a.log_format {
        LogFormat::Human => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    anyhow::ensure!(
        a.rate_per_sec > 0.0 && a.rate_burst >= 1.0,
        "--rate-per-sec must be > 0 and --rate-burst >= 1"
    );
    let trusted_proxies = TrustedProxies::parse(&a.trusted_proxies)
        .map_err(|e| anyhow::anyhow!("--trusted-proxy: {e}"))?;
    let public_url = match a.public_url.filter(|u| !u.is_empty()) {
        None => None,
        Some(u) => Some(
            collab_server::http::public_base(&u)
                .map_err(|e| anyhow::anyhow!("--public-url {u:?}: {e}"))?,
        ),
    };
    let config = Config {
        room_ttl: Duration::from_secs(a.room_ttl_seconds),
        max_message_bytes: a.max_message_bytes,
        max_document_chars: a.max_document_chars,
        max_docs: a.max_docs.max(1),
        max_doc_bytes: a.max_doc_bytes,
        max_room_bytes: a.max_room_bytes,
        max_open_docs: a.max_open_docs.max(1),
        history_ops: a.history_ops.max(1),
        history_bytes: a.history_bytes,
        history_bytes_total: a.history_bytes_total,
        outgoing_queue: a.outgoing_queue.max(16),
        shutdown_grace: Duration::from_secs(a.shutdown_grace_seconds),
        tls: a
            .tls_cert
            .zip(a.tls_key)
            .map(|(cert, key)| TlsFiles { cert, key }),
        public_url,
        redis_url: a.redis_url.filter(|u| !u.is_empty()),
        redis_cluster: a.redis_cluster,
        redis_wait_replicas: a.redis_wait_replicas,
        jwt_secret: a.jwt_secret.filter(|s| !s.is_empty()),
        cors_origins: a.cors_origins.filter(|o| !o.is_empty()),
        rate_per_sec: a.rate_per_sec,
        rate_burst: a.rate_burst,
        max_conns_per_room: a.max_conns_per_room.max(1),
        max_conns_per_ip: a.max_conns_per_ip.max(1),
        trusted_proxies,
        idle_timeout: Duration::from_secs(a.idle_timeout_seconds.max(1)),
        header_timeout: Duration::from_secs(a.header_timeout_seconds.max(1)),
        max_pending_per_ip: a.max_pending_per_ip.max(1),
    };
    let addr = format!("{}:{}", a.host, a.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().context("listener has no address")?;
    let auth = if config.jwt_secret.is_some() {
        "on"
    } else {
        "off"
    };
    tracing::info!(%local, auth, "collab-server listening");
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
