//! Prometheus metrics, rendered as text at `GET /metrics`. Hand-rolled
//! atomics: a handful of counters and two histograms do not need a crate.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Upper bounds of the latency histograms' buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A cumulative latency histogram.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (b, c) in BUCKETS.iter().zip(&self.counts) {
            cumulative += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// Why a message or connection was refused, for `collab_rejected_total`.
#[derive(Clone, Copy, Debug)]
pub enum Reject {
    /// Unparseable or invalid message.
    Malformed,
    /// Over the size limit.
    TooLarge,
    /// Over the rate limit.
    RateLimited,
    /// Missing or bad token.
    Unauthorized,
    /// A viewer tried to edit.
    ReadOnly,
    /// The document would exceed its limit.
    DocumentTooLarge,
    /// Too many connections (room or address).
    TooManyConnections,
    /// Origin not allowed.
    Origin,
    /// Idle connection closed.
    Idle,
    /// Reader too slow.
    Lagging,
}

const REJECTS: [(Reject, &str); 10] = [
    (Reject::Malformed, "malformed"),
    (Reject::TooLarge, "too_large"),
    (Reject::RateLimited, "rate_limited"),
    (Reject::Unauthorized, "unauthorized"),
    (Reject::ReadOnly, "read_only"),
    (Reject::DocumentTooLarge, "document_too_large"),
    (Reject::TooManyConnections, "too_many_connections"),
    (Reject::Origin, "origin"),
    (Reject::Idle, "idle"),
    (Reject::Lagging, "lagging"),
];

/// Every metric of one server.
#[derive(Default)]
pub struct Metrics {
    /// Open WebSocket connections.
    pub connections: AtomicI64,
    /// Rooms with a task on this instance.
    pub rooms: AtomicI64,
    /// Operations committed by this instance.
    pub ops_committed: AtomicU64,
    /// Bytes of history (committed operations kept for late edits and
    /// reconnects) held by every room of this instance.
    pub history_bytes: Arc<AtomicI64>,
    /// Requests to Redis that failed, whatever made them (shared with the
    /// Redis store, which counts them).
    pub redis_errors: Arc<AtomicU64>,
    /// From an edit reaching its room task to its commit.
    pub commit_latency: Histogram,
    /// From a message being queued for a connection to its being written.
    pub fanout_latency: Histogram,
    rejected: [AtomicU64; REJECTS.len()],
}

impl Metrics {
    /// Counts a refusal.
    pub fn reject(&self, why: Reject) {
        self.rejected[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let gauge = |out: &mut String, name: &str, help: &str, v: i64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        gauge(
            &mut out,
            "collab_connections",
            "Open WebSocket connections.",
            self.connections.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "collab_rooms",
            "Rooms with a task on this instance.",
            self.rooms.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "collab_history_bytes",
            "Bytes of history (operations kept for late edits and reconnects) in all rooms of this instance.",
            self.history_bytes.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "collab_ops_committed_total",
            "Operations committed by this instance.",
            self.ops_committed.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "collab_redis_errors_total",
            "Requests to Redis that failed (commits, joins, lookups, heartbeats, the subscriber).",
            self.redis_errors.load(Ordering::Relaxed),
        );
        let _ = writeln!(out, "# HELP collab_rejected_total Messages and connections refused, by reason.\n# TYPE collab_rejected_total counter");
        for ((_, name), c) in REJECTS.iter().zip(&self.rejected) {
            let _ = writeln!(
                out,
                "collab_rejected_total{{reason=\"{name}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        self.commit_latency.render(
            &mut out,
            "collab_commit_latency_seconds",
            "From an edit reaching its room to its commit.",
        );
        self.fanout_latency.render(
            &mut out,
            "collab_fanout_latency_seconds",
            "Per written batch: how long its oldest message waited to be written.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.reject(Reject::RateLimited);
        m.commit_latency.observe(Duration::from_micros(300));
        let text = m.render();
        assert!(text.contains("collab_rejected_total{reason=\"rate_limited\"} 1"));
        assert!(text.contains("collab_commit_latency_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("collab_commit_latency_seconds_bucket{le=\"0.00025\"} 0"));
        assert!(text.contains("collab_commit_latency_seconds_count 1"));
    }
}
