//! Latency samples and their percentiles, and the fan-out latency of a
//! group's run: from the moment a bot sent an edit to the moment each other
//! bot of its room received it (matched through the revision the edit's ack
//! carried; every bot lives in this process, so one clock serves all).

use std::collections::HashMap;
use std::ops::Range;
use std::time::{Duration, Instant};

use crate::bot::Outcome;

/// Sorted latency samples.
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// From unsorted samples.
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self(samples)
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `p`-th percentile in milliseconds (0 when empty).
    pub fn pct_ms(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let i = ((p / 100.0) * (self.0.len() - 1) as f64).round() as usize;
        ms(self.0[i.min(self.0.len() - 1)])
    }

    /// The largest, in milliseconds.
    pub fn max_ms(&self) -> f64 {
        self.0.last().copied().map_or(0.0, ms)
    }
}

/// Milliseconds, rounded to microseconds.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Every (edit, other bot of its room) delivery latency of a run; with a
/// window, only of the edits sent within it.
pub fn fanout<'a>(
    outcomes: impl IntoIterator<Item = &'a (usize, Outcome)> + Clone,
    sent_within: Option<Range<Instant>>,
) -> Latencies {
    let mut sent_at: HashMap<(usize, u64), Instant> = HashMap::new();
    for (room, o) in outcomes.clone() {
        let by_seq: HashMap<u64, Instant> = o.sent.iter().copied().collect();
        for (seq, revision) in &o.acks {
            let t = by_seq.get(seq);
            if let Some(t) = t.filter(|t| sent_within.as_ref().is_none_or(|w| w.contains(*t))) {
                sent_at.insert((*room, *revision), *t);
            }
        }
    }
    let mut samples = Vec::new();
    for (room, o) in outcomes {
        for (revision, at) in &o.received {
            if let Some(t) = sent_at.get(&(*room, *revision)) {
                samples.push(at.saturating_duration_since(*t));
            }
        }
    }
    Latencies::new(samples)
}
