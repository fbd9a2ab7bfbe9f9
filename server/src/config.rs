//! Server settings. Built by `main` from flags and environment variables; the
//! library itself never reads the environment.

use std::time::Duration;

use crate::client_addr::TrustedProxies;

/// Everything `run` needs to know besides the listener. (No `Debug`: it
/// holds the token secret, which must never reach a log.)
#[derive(Clone)]
pub struct Config {
    /// A room with nobody connected and no activity for this long is removed.
    pub room_ttl: Duration,
    /// Largest WebSocket message accepted (close 1009 beyond it).
    pub max_message_bytes: usize,
    /// Largest document, in chars; an edit that would grow it past this is
    /// refused with an `error` (the connection stays open).
    pub max_document_chars: usize,
    /// Documents one room may hold.
    pub max_docs: usize,
    /// Bytes one document may hold.
    pub max_doc_bytes: u64,
    /// Bytes all documents of one room may hold.
    pub max_room_bytes: u64,
    /// Documents one connection may hold open.
    pub max_open_docs: usize,
    /// Messages queued for one connection before it counts as lagging and is
    /// disconnected (edits are never dropped silently).
    pub outgoing_queue: usize,
    /// Committed operations kept per room for transforming late edits and for
    /// reconnecting clients (`since`); older ones are trimmed.
    pub history_ops: usize,
    /// Bytes of committed operations one room keeps at most (oldest dropped
    /// first, as for `history_ops`).
    pub history_bytes: usize,
    /// Bytes of committed operations all rooms of this instance keep at
    /// most, shared evenly by the rooms alive.
    pub history_bytes_total: usize,
    /// How long connections get to close after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Serve HTTPS and wss:// with this certificate; plain HTTP when `None`.
    pub tls: Option<crate::tls::TlsFiles>,
    /// The address users reach this server at (`https://collab.example.com`),
    /// for the URLs `POST /rooms` answers; when `None`, they are built from
    /// the request's `Host` (and `X-Forwarded-Proto/Host` from a trusted
    /// proxy).
    pub public_url: Option<String>,
    /// Redis URL; rooms live in memory when `None`. With `redis_cluster`,
    /// one or more seed nodes of a cluster, comma-separated.
    pub redis_url: Option<String>,
    /// `redis_url` names a Redis Cluster.
    pub redis_cluster: bool,
    /// Replicas that must hold a commit before it is acknowledged.
    pub redis_wait_replicas: usize,
    /// HS256 secret; authentication is off when `None`.
    pub jwt_secret: Option<String>,
    /// Allowed `Origin`s for WebSocket upgrades and CORS; any when `None`.
    pub cors_origins: Option<Vec<String>>,
    /// Sustained messages per second one connection may send.
    pub rate_per_sec: f64,
    /// Messages one connection may send in a burst.
    pub rate_burst: f64,
    /// Connections one room may hold.
    pub max_conns_per_room: usize,
    /// Connections one client address may hold.
    pub max_conns_per_ip: usize,
    /// Proxies whose `X-Forwarded-For` names the client address; none by
    /// default.
    pub trusted_proxies: TrustedProxies,
    /// A connection that sends nothing (not even a pong to our ping) for this
    /// long is closed.
    pub idle_timeout: Duration,
    /// A request whose headers take longer than this to arrive closes its
    /// connection.
    pub header_timeout: Duration,
    /// Connections one client address may hold before they become
    /// WebSockets (requests under way, idle keep-alives).
    pub max_pending_per_ip: usize,
}

impl Config {
    /// The limits a room's tree of documents keeps.
    pub fn tree_limits(&self) -> crate::room::core::tree::TreeLimits {
        crate::room::core::tree::TreeLimits {
            max_docs: self.max_docs,
            max_doc_bytes: self.max_doc_bytes,
            max_room_bytes: self.max_room_bytes,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            room_ttl: Duration::from_secs(7200),
            max_message_bytes: 1 << 20,
            max_document_chars: 10 << 20,
            max_docs: 10_000,
            max_doc_bytes: 10 << 20,
            max_room_bytes: 100 << 20,
            max_open_docs: 64,
            outgoing_queue: 4096,
            history_ops: 10_000,
            history_bytes: 32 << 20,
            history_bytes_total: 512 << 20,
            shutdown_grace: Duration::from_secs(10),
            tls: None,
            public_url: None,
            redis_url: None,
            redis_cluster: false,
            redis_wait_replicas: 0,
            jwt_secret: None,
            cors_origins: None,
            rate_per_sec: 500.0,
            rate_burst: 1000.0,
            max_conns_per_room: 200,
            max_conns_per_ip: 1000,
            trusted_proxies: TrustedProxies::default(),
            idle_timeout: Duration::from_secs(90),
            header_timeout: Duration::from_secs(10),
            max_pending_per_ip: 64,
        }
    }
}
