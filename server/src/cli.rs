//! `collab-server`'s command line, in the library so that one definition
//! serves the binary, its `--config FILE`, the shell completions and man
//! pages, README's settings table (rendered by [`settings_table`] and
//! checked by a test) and the tests that put the container recipe's flags
//! through it. `main` only parses, dispatches and runs.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::auth::parse_ttl;
use crate::client_addr::TrustedProxies;
use crate::tls::TlsFiles;
use crate::Config;

/// The collab room server: REST at /rooms, /health and /metrics, the collab
/// protocol over WebSocket at /ws/{room_id} (see docs/protocol.md).
#[derive(Parser, Debug)]
#[command(name = "collab-server", version = crate::VERSION, about)]
pub struct Args {
    /// Something other than serving.
    #[command(subcommand)]
    pub command: Option<Cmd>,
    /// Serving.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The subcommands; without one, the server serves.
#[derive(Subcommand, Debug)]
pub enum Cmd {
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
    /// Print the shell completion script for SHELL on stdout.
    ///
    /// bash: `collab-server completions bash >
    /// ~/.local/share/bash-completion/completions/collab-server`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout, or with --dir write
    /// collab-server.1 and one page per subcommand into DIR.
    Man {
        /// The directory to write the pages into (made if missing), e.g.
        /// ~/.local/share/man/man1.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Print the OpenAPI 3.1 description of the REST API (JSON), as
    /// `GET /openapi.json` serves it.
    Openapi,
    /// Print README.md's table of server settings (Markdown), rendered
    /// from these flags.
    #[command(hide = true)]
    SettingsTable,
}

/// How logs are written.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Everything serving takes. Each flag has an environment variable, and a
/// `--config` file may set any of them by its long name.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// A TOML file of settings whose keys are these flags' long names
    /// (`port = 8001`, `redis-url = "redis://..."`, `trusted-proxy =
    /// ["10.0.0.0/8"]`). A flag or an environment variable wins over the
    /// file, the file over the default; an unknown key is an error.
    #[arg(long, env = "COLLAB_SERVER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "COLLAB_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one; the address is printed).
    #[arg(long, env = "COLLAB_PORT", default_value_t = 8000)]
    pub port: u16,
    /// TLS certificate chain (PEM): serve HTTPS and wss:// instead of plain
    /// HTTP (needs --tls-key).
    ///
    /// SIGHUP (`kill -HUP`) reloads it and the key; open connections keep
    /// going.
    #[arg(long, env = "COLLAB_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "COLLAB_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The address users reach this server at, e.g. https://collab.example.com
    /// (behind a proxy, the proxy's).
    ///
    /// `POST /rooms` answers its `join_url` and `ws_url` from it, so `collab
    /// create` prints a command that works from another machine. Unset: from
    /// the request's `Host` (and `X-Forwarded-Proto`/`-Host` from a
    /// `--trusted-proxy` only).
    #[arg(long, env = "COLLAB_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Redis URL (e.g. redis://127.0.0.1:6379/0, or rediss://… for TLS).
    /// When set, rooms live in Redis and any number of instances share them;
    /// otherwise in memory.
    ///
    /// See docs/redis.md. With --redis-cluster: one or more seed nodes of the
    /// cluster, comma-separated.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// --redis-url names a Redis Cluster (7.0 or later): rooms spread over
    /// its shards by their hash tag, events travel by sharded pub/sub
    /// (`SSUBSCRIBE`/`SPUBLISH`).
    #[arg(long, env = "REDIS_CLUSTER")]
    pub redis_cluster: bool,
    /// Replicas that must hold a commit (Redis WAIT, up to 0.2 s) before a
    /// client gets its ack; with 1, killing a primary whose replica takes
    /// over loses no acknowledged edit. 0 acks once the primary has it.
    ///
    /// A primary found without them is not waited for during 5 s.
    #[arg(long, env = "REDIS_WAIT_REPLICAS", default_value_t = 0)]
    pub redis_wait_replicas: usize,
    /// Seconds a room is kept with nobody connected and no activity (with
    /// Redis: every key of it expires).
    #[arg(long, env = "ROOM_TTL_SECONDS", default_value_t = 7200)]
    pub room_ttl_seconds: u64,
    /// HS256 secret; when set, REST needs `Authorization: Bearer <token>` and
    /// WebSockets the same header or `?token=`.
    ///
    /// Others get 401, or close 4001. `collab-server token` mints tokens.
    #[arg(long, env = "COLLAB_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Comma-separated origins allowed to open WebSockets and call REST from
    /// a browser (others get 403); any origin when unset.
    #[arg(long, env = "CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Option<Vec<String>>,
    /// Largest WebSocket message accepted, in bytes (larger ones close with 1009).
    #[arg(long, env = "COLLAB_MAX_MESSAGE_BYTES", default_value_t = 1 << 20)]
    pub max_message_bytes: usize,
    /// Largest document, in chars; larger edits are refused, not applied.
    ///
    /// The edit gets an `error` `document_too_large`.
    #[arg(long, env = "COLLAB_MAX_DOCUMENT_CHARS", default_value_t = 10 << 20)]
    pub max_document_chars: usize,
    /// Documents one project room may hold (a create beyond gets
    /// `too_many_files`).
    ///
    /// `POST /rooms` answers 413 beyond it.
    #[arg(long, env = "COLLAB_MAX_DOCS", default_value_t = 10_000)]
    pub max_docs: usize,
    /// Bytes one document may hold (creating or growing one past it gets
    /// `document_too_large`).
    ///
    /// `POST /rooms` answers 413 beyond it.
    #[arg(long, env = "COLLAB_MAX_DOC_BYTES", default_value_t = 10 << 20)]
    pub max_doc_bytes: u64,
    /// Bytes all documents of one room may hold together.
    ///
    /// 413 or `document_too_large` beyond it.
    #[arg(long, env = "COLLAB_MAX_ROOM_BYTES", default_value_t = 100 << 20)]
    pub max_room_bytes: u64,
    /// Documents one connection may hold open (`open` beyond gets
    /// `too_many_open`).
    #[arg(long, env = "COLLAB_MAX_OPEN_DOCS", default_value_t = 64)]
    pub max_open_docs: usize,
    /// Messages per second one connection may send, sustained (1008 beyond).
    #[arg(long, env = "COLLAB_RATE_PER_SEC", default_value_t = 500.0)]
    pub rate_per_sec: f64,
    /// Messages one connection may send in a burst.
    #[arg(long, env = "COLLAB_RATE_BURST", default_value_t = 1000.0)]
    pub rate_burst: f64,
    /// Connections one room may hold (1013 beyond).
    #[arg(long, env = "COLLAB_MAX_CONNS_PER_ROOM", default_value_t = 200)]
    pub max_conns_per_room: usize,
    /// Connections one client address may hold (1013 beyond).
    ///
    /// Behind a proxy, name it with --trusted-proxy, or all its clients
    /// share its address.
    #[arg(long, env = "COLLAB_MAX_CONNS_PER_IP", default_value_t = 1000)]
    pub max_conns_per_ip: usize,
    /// Proxies (addresses or networks like 10.0.0.0/8, comma-separated or
    /// repeated) whose `X-Forwarded-For` header names the client address:
    /// behind a load balancer, name it, or every user counts as the balancer
    /// for --max-conns-per-ip. The header is ignored from anyone else.
    ///
    /// It is read right to left up to the first untrusted hop (if every hop
    /// is trusted, the leftmost); an entry that is not an address ends the
    /// walk at the hop before it. A named proxy must append to the header or
    /// replace it, never pass a client's through unchanged.
    #[arg(
        long = "trusted-proxy",
        env = "COLLAB_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
    /// Seconds after which a connection that sent nothing, not even a pong
    /// to the server's ping, is closed (1001).
    #[arg(long, env = "COLLAB_IDLE_TIMEOUT_SECONDS", default_value_t = 90)]
    pub idle_timeout_seconds: u64,
    /// Seconds a client has to send a request's headers before its
    /// connection is closed.
    ///
    /// A keep-alive connection idle that long between requests is closed
    /// too, so slow or half-sent requests cannot hold sockets.
    #[arg(long, env = "COLLAB_HEADER_TIMEOUT_SECONDS", default_value_t = 10)]
    pub header_timeout_seconds: u64,
    /// Connections one client address may hold before they become
    /// WebSockets (unfinished requests, idle keep-alives); more are closed
    /// at once. Trusted proxies are exempt.
    #[arg(long, env = "COLLAB_MAX_PENDING_PER_IP", default_value_t = 64)]
    pub max_pending_per_ip: usize,
    /// Committed operations kept per room: late edits and reconnects
    /// (`since`) reach back this far.
    #[arg(long, env = "COLLAB_HISTORY_OPS", default_value_t = 10_000)]
    pub history_ops: usize,
    /// Bytes of committed operations one room keeps at most (the oldest go
    /// first, as with --history-ops).
    ///
    /// In memory and in Redis alike: bounds memory whatever the edits' sizes.
    #[arg(long, env = "COLLAB_HISTORY_BYTES", default_value_t = 32 << 20)]
    pub history_bytes: usize,
    /// Bytes of committed operations all rooms of this instance keep at
    /// most, shared evenly by the rooms open on it.
    #[arg(long, env = "COLLAB_HISTORY_BYTES_TOTAL", default_value_t = 512 << 20)]
    pub history_bytes_total: usize,
    /// Messages queued per connection before a lagging client is closed (4008).
    #[arg(long, env = "COLLAB_OUTGOING_QUEUE", default_value_t = 4096)]
    pub outgoing_queue: usize,
    /// Seconds to drain rooms and close connections on SIGTERM/SIGINT.
    ///
    /// The server stops accepting, commits what rooms accepted, closes every
    /// socket with 1012 and exits within this.
    #[arg(long, env = "COLLAB_SHUTDOWN_GRACE_SECONDS", default_value_t = 10)]
    pub shutdown_grace_seconds: u64,
    /// Log format (logs go to stderr; filter with RUST_LOG).
    ///
    /// Tokens, secrets and full room ids are never logged (rooms appear as a
    /// 6-char prefix).
    #[arg(long, env = "COLLAB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Colours in human-readable logs: `auto` when stderr is a terminal
    /// and NO_COLOR is unset or empty, `always`, or `never`.
    #[arg(long, env = "COLLAB_COLOR", value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// When logs are coloured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always, even into a file or with NO_COLOR.
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Whether to colour, given whether stderr is a terminal and NO_COLOR's
    /// value.
    pub fn colours(self, terminal: bool, no_color: Option<&str>) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => terminal && no_color.is_none_or(str::is_empty),
        }
    }
}

/// A setting that cannot be used as given.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadSetting(pub String);

impl ServeArgs {
    /// The address to listen on, `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The library's [`Config`] from these settings (limits below their
    /// minimum are raised to it).
    pub fn to_config(&self) -> Result<Config, BadSetting> {
        if !(self.rate_per_sec > 0.0 && self.rate_burst >= 1.0) {
            return Err(BadSetting(
                "--rate-per-sec must be > 0 and --rate-burst >= 1".into(),
            ));
        }
        let trusted_proxies = TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| BadSetting(format!("--trusted-proxy: {e}")))?;
        let public_url = match self.public_url.as_deref().filter(|u| !u.is_empty()) {
            None => None,
            Some(u) => Some(
                crate::http::public_base(u)
                    .map_err(|e| BadSetting(format!("--public-url {u:?}: {e}")))?,
            ),
        };
        Ok(Config {
            room_ttl: Duration::from_secs(self.room_ttl_seconds),
            max_message_bytes: self.max_message_bytes,
            max_document_chars: self.max_document_chars,
            max_docs: self.max_docs.max(1),
            max_doc_bytes: self.max_doc_bytes,
            max_room_bytes: self.max_room_bytes,
            max_open_docs: self.max_open_docs.max(1),
            history_ops: self.history_ops.max(1),
            history_bytes: self.history_bytes,
            history_bytes_total: self.history_bytes_total,
            outgoing_queue: self.outgoing_queue.max(16),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_seconds),
            tls: self
                .tls_cert
                .clone()
                .zip(self.tls_key.clone())
                .map(|(cert, key)| TlsFiles { cert, key }),
            public_url,
            redis_url: self.redis_url.clone().filter(|u| !u.is_empty()),
            redis_cluster: self.redis_cluster,
            redis_wait_replicas: self.redis_wait_replicas,
            jwt_secret: self.jwt_secret.clone().filter(|s| !s.is_empty()),
            cors_origins: self.cors_origins.clone().filter(|o| !o.is_empty()),
            rate_per_sec: self.rate_per_sec,
            rate_burst: self.rate_burst,
            max_conns_per_room: self.max_conns_per_room.max(1),
            max_conns_per_ip: self.max_conns_per_ip.max(1),
            trusted_proxies,
            idle_timeout: Duration::from_secs(self.idle_timeout_seconds.max(1)),
            header_timeout: Duration::from_secs(self.header_timeout_seconds.max(1)),
            max_pending_per_ip: self.max_pending_per_ip.max(1),
        })
    }
}

/// The whole command line, as clap sees it.
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// README.md's "Server settings" table: one row per serving flag, from the
/// flag's definition (name, variable, default, help), so the two cannot
/// drift apart. `collab-server settings-table` prints it.
pub fn settings_table() -> String {
    let cmd = command();
    let mut out = String::from(
        "| flag (config key) | env | default | meaning |\n| --- | --- | --- | --- |\n",
    );
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") {
            continue;
        }
        let env = arg
            .get_env()
            .map(|e| format!("`{}`", e.to_string_lossy()))
            .unwrap_or_default();
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let default = if !arg.get_action().takes_values() {
            "`false`".to_owned()
        } else if defaults.is_empty() {
            "unset".to_owned()
        } else {
            format!("`{}`", defaults.join(","))
        };
        let help = arg
            .get_long_help()
            .or_else(|| arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        let help = help
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace('|', "\\|");
        out.push_str(&format!("| `--{long}` | {env} | {default} | {help} |\n"));
    }
    out
}

/// The shell completion script of `cmd` (named `bin`) for `shell`.
pub fn completions(mut cmd: clap::Command, shell: clap_complete::Shell) -> Vec<u8> {
    let bin = cmd.get_name().to_owned();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, bin, &mut out);
    out
}

/// Writes the man pages of `cmd` (one for it, one per visible subcommand)
/// into `dir`, or `cmd`'s own page to `out` when `dir` is `None`.
pub fn man(
    cmd: clap::Command,
    dir: Option<&std::path::Path>,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    match dir {
        None => clap_mangen::Man::new(cmd).render(out),
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            clap_mangen::generate_to(cmd, dir)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn logs_are_coloured_on_a_terminal_without_no_color() {
        assert!(ColorChoice::Auto.colours(true, None));
        assert!(ColorChoice::Auto.colours(true, Some("")));
        assert!(!ColorChoice::Auto.colours(true, Some("1")));
        assert!(!ColorChoice::Auto.colours(false, None), "not into a file");
        assert!(ColorChoice::Always.colours(false, Some("1")));
        assert!(!ColorChoice::Never.colours(true, None));
    }

    #[test]
    fn every_serving_flag_has_a_variable_and_a_row() {
        let table = settings_table();
        for arg in command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version") {
                continue;
            }
            assert!(arg.get_env().is_some(), "--{long} has no env variable");
            assert!(table.contains(&format!("| `--{long}` |")), "--{long}");
        }
    }
}
