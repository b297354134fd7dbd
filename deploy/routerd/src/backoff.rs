//! Restart backoff: how long to wait before starting a process that exited. Pure, so the
//! schedule is tested without processes or clocks.

use std::time::Duration;

/// The schedule: `initial`, doubling per consecutive quick failure up to `max`; a process
/// that stayed up at least `reset_after` starts again from `initial`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub reset_after: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(60),
        }
    }
}

/// Backoff state of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    policy: BackoffPolicy,
    /// Consecutive exits that came before `reset_after`.
    failures: u32,
}

impl Backoff {
    /// A fresh schedule.
    pub fn new(policy: BackoffPolicy) -> Self {
        Backoff {
            policy,
            failures: 0,
        }
    }

    /// The delay before the next start, given how long the process ran (zero if it could
    /// not be started at all).
    pub fn on_exit(&mut self, uptime: Duration) -> Duration {
        if uptime >= self.policy.reset_after {
            self.failures = 0;
        }
        let delay = delay_for(&self.policy, self.failures);
        self.failures = self.failures.saturating_add(1);
        delay
    }

    /// Forgets past failures (after a manual restart).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive quick failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// `initial * 2^failures`, capped at `max`.
pub fn delay_for(policy: &BackoffPolicy, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.min(31));
    policy.initial.saturating_mul(factor).min(policy.max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn doubles_to_the_cap_then_stays() {
        let mut b = Backoff::new(BackoffPolicy::default());
        let delays: Vec<u64> = (0..12)
            .map(|_| b.on_exit(MS(10)).as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000]
        );
        assert_eq!(
            b.on_exit(Duration::ZERO),
            Duration::from_secs(30),
            "spawn failures count too"
        );
    }

    #[test]
    fn a_long_run_resets_the_schedule() {
        let mut b = Backoff::new(BackoffPolicy::default());
        for _ in 0..5 {
            b.on_exit(MS(1));
        }
        assert_eq!(b.on_exit(Duration::from_secs(59)), MS(3200));
        assert_eq!(b.on_exit(Duration::from_secs(60)), MS(100));
        assert_eq!(b.on_exit(MS(1)), MS(200));
        b.reset();
        assert_eq!(b.on_exit(MS(1)), MS(100));
    }

    #[test]
    fn huge_failure_counts_do_not_overflow() {
        let p = BackoffPolicy::default();
        assert_eq!(delay_for(&p, u32::MAX), p.max);
        let mut b = Backoff::new(p);
        b.failures = u32::MAX;
        assert_eq!(b.on_exit(MS(1)), p.max);
        assert_eq!(b.failures(), u32::MAX);
    }
}
