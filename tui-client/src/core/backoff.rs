//! When to try reconnecting after the link to the server drops: 1 s, 2 s,
//! 5 s, 10 s, then every 30 s, each spread by random jitter so a restarted
//! server is not hit by every client at the same instant. Pure: the caller
//! supplies the randomness.

use std::time::Duration;

/// Base delays, in seconds; the last one repeats.
const SCHEDULE: [u64; 5] = [1, 2, 5, 10, 30];

/// Longest wait, jitter included.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// Jitter spreads a delay over ±20 %.
const JITTER: f64 = 0.2;

/// The reconnect schedule's position.
#[derive(Clone, Debug, Default)]
pub struct Backoff {
    attempt: usize,
    immediate: bool,
}

impl Backoff {
    /// A schedule at its start.
    pub fn new() -> Self {
        Self::default()
    }

    /// A connection worked: the next failure starts the schedule over.
    pub fn reset(&mut self) {
        self.attempt = 0;
        self.immediate = false;
    }

    /// The server said it is restarting (close 1012): try again at once,
    /// then follow the schedule.
    pub fn retry_now(&mut self) {
        self.immediate = true;
    }

    /// Attempts made since the last success.
    pub fn attempts(&self) -> usize {
        self.attempt
    }

    /// The wait before the next attempt; `random` is uniform in [0, 1).
    pub fn next_delay(&mut self, random: f64) -> Duration {
        if std::mem::take(&mut self.immediate) {
            return Duration::ZERO;
        }
        let base = SCHEDULE[self.attempt.min(SCHEDULE.len() - 1)] as f64;
        self.attempt += 1;
        let factor = 1.0 - JITTER + 2.0 * JITTER * random.clamp(0.0, 1.0);
        Duration::from_secs_f64(base * factor).min(MAX_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_schedule_within_jitter_bounds() {
        for random in [0.0, 0.5, 0.999] {
            let mut b = Backoff::new();
            for base in [1.0, 2.0, 5.0, 10.0, 30.0, 30.0, 30.0] {
                let d = b.next_delay(random).as_secs_f64();
                assert!(
                    d >= base * 0.8 - 1e-9 && d <= (base * 1.2).min(30.0) + 1e-9,
                    "{d} for base {base}"
                );
            }
        }
        let mut b = Backoff::new();
        assert_eq!(b.next_delay(0.5), Duration::from_secs(1));
        assert_eq!(b.next_delay(0.5), Duration::from_secs(2));
        assert!(b.next_delay(1.0) <= MAX_DELAY);
    }

    #[test]
    fn restart_is_immediate_then_scheduled_and_success_resets() {
        let mut b = Backoff::new();
        b.next_delay(0.5);
        b.next_delay(0.5);
        b.retry_now();
        assert_eq!(b.next_delay(0.5), Duration::ZERO);
        assert_eq!(b.next_delay(0.5), Duration::from_secs(5));
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert_eq!(b.next_delay(0.5), Duration::from_secs(1));
    }
}
