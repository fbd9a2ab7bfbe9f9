//! Server settings. Built by `main` from flags and environment variables; the
//! library itself never reads the environment.

use std::time::Duration;

/// Everything `run` needs to know besides the listener.
#[derive(Clone, Debug)]
pub struct Config {
    /// A room with nobody connected and no activity for this long is removed.
    pub room_ttl: Duration,
    /// Largest WebSocket message accepted (close 1009 beyond it).
    pub max_message_bytes: usize,
    /// Messages queued for one connection before it counts as lagging and is
    /// disconnected (edits are never dropped silently).
    pub outgoing_queue: usize,
    /// Committed operations kept per room for transforming late edits and for
    /// reconnecting clients (`since`); older ones are trimmed.
    pub history_ops: usize,
    /// How long connections get to close after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Redis URL; rooms live in memory when `None`.
    pub redis_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            room_ttl: Duration::from_secs(7200),
            max_message_bytes: 1 << 20,
            outgoing_queue: 4096,
            history_ops: 10_000,
            shutdown_grace: Duration::from_secs(10),
            redis_url: None,
        }
    }
}
