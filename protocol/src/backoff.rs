//! When a client should try reconnecting after the link to the server
//! drops: 1 s, 2 s, 5 s, 10 s, then every 30 s, each spread by random
//! jitter so a restarted server is not hit by every client at the same
//! instant; after a close 1012 (an instance draining, its users moving to
//! the others all at once) within [`RESTART_SPREAD`], at a random moment.
//! Pure: the caller supplies the randomness. Here rather than in the editor
//! so that every client of this repository (the editor, `collab watch`, the
//! benchmark's reconnect storm) waits the same way.

use std::time::Duration;

/// Base delays, in seconds; the last one repeats.
const SCHEDULE: [u64; 5] = [1, 2, 5, 10, 30];

/// Longest wait, jitter included.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// Jitter spreads a delay over ±20 %.
const JITTER: f64 = 0.2;

/// After a close 1012 the first attempt comes at a uniformly random moment
/// within this: soon enough that a user barely notices, spread enough that
/// an instance's thousands of users do not arrive at the others within the
/// same millisecond.
pub const RESTART_SPREAD: Duration = Duration::from_millis(1000);

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

    /// The server said it is restarting (close 1012): try again soon
    /// (within [`RESTART_SPREAD`]), then follow the schedule.
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
            return RESTART_SPREAD.mul_f64(random.clamp(0.0, 1.0));
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
    fn restart_is_soon_then_scheduled_and_success_resets() {
        let mut b = Backoff::new();
        b.next_delay(0.5);
        b.next_delay(0.5);
        b.retry_now();
        assert_eq!(b.next_delay(0.5), RESTART_SPREAD / 2);
        b.retry_now();
        assert_eq!(b.next_delay(0.0), Duration::ZERO);
        b.retry_now();
        assert!(b.next_delay(0.999) < RESTART_SPREAD);
        assert_eq!(b.next_delay(0.5), Duration::from_secs(5));
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert_eq!(b.next_delay(0.5), Duration::from_secs(1));
    }
}
