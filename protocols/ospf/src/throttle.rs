//! RFC 8405 back-off as a pure state machine, used for SPF runs and LSA generation.
//!
//! ```text
//!            event                     event (restart HOLDDOWN; delay=SHORT if idle)
//!   QUIET ----------> SHORT_WAIT <----+
//!     ^   delay=INITIAL   |   |        |
//!     |                   |   +--------+
//!     |   HOLDDOWN expiry |   | LEARN expiry
//!     +-------------------+   v
//!     +------------------ LONG_WAIT <--+ event (restart HOLDDOWN; delay=LONG if idle)
//!         HOLDDOWN expiry      +-------+
//! ```
//!
//! Times are milliseconds on any monotonic clock the caller chooses; the machine owns no
//! timers, it tells the caller the next deadline ([`Throttle::next_deadline`]) and is
//! advanced with [`Throttle::poll`].

use serde::{Deserialize, Serialize};

/// Back-off parameters (milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ThrottleParams {
    /// Delay after the first event in QUIET.
    pub initial_delay: u64,
    /// Delay while in SHORT_WAIT.
    pub short_delay: u64,
    /// Delay while in LONG_WAIT.
    pub long_delay: u64,
    /// Quiet time (no events) that returns the machine to QUIET.
    pub hold_down: u64,
    /// Time after the first event during which SHORT_WAIT lasts.
    pub time_to_learn: u64,
}

impl ThrottleParams {
    /// Defaults for SPF: the first run at once, then 50 ms apart for 2 s (an adjacency
    /// coming up or a link flapping is a burst of a second or two: it should not be taxed
    /// with the long delay), then 1 s apart until 5 s of calm. RFC 8405's shape with the
    /// learning window sized to one OSPF convergence burst.
    pub const SPF_DEFAULT: ThrottleParams = ThrottleParams {
        initial_delay: 0,
        short_delay: 50,
        long_delay: 1000,
        hold_down: 5000,
        time_to_learn: 2000,
    };
    /// Defaults for LSA generation (per LSA): the first origination at once, then 50 ms
    /// apart for 3 s (interface up, then the neighbor Full about a Hello interval later),
    /// then 1 s apart (other implementations' MinLSArrival) until 5 s of calm. This
    /// replaces RFC 2328's fixed 5 s MinLSInterval.
    pub const LSA_DEFAULT: ThrottleParams = ThrottleParams {
        initial_delay: 0,
        short_delay: 50,
        long_delay: 1000,
        hold_down: 5000,
        time_to_learn: 3000,
    };
}

impl Default for ThrottleParams {
    fn default() -> Self {
        Self::SPF_DEFAULT
    }
}

/// RFC 8405 states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ThrottleState {
    /// No recent events.
    Quiet,
    /// Events seen recently, short delays.
    ShortWait,
    /// Events keep coming, long delays.
    LongWait,
}

/// The back-off state machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Throttle {
    params: ThrottleParams,
    state: ThrottleState,
    /// When the computation (SPF or origination) must run, if pending.
    run_at: Option<u64>,
    holddown_at: Option<u64>,
    learn_at: Option<u64>,
}

impl Throttle {
    /// A machine in QUIET.
    pub fn new(params: ThrottleParams) -> Self {
        Throttle {
            params,
            state: ThrottleState::Quiet,
            run_at: None,
            holddown_at: None,
            learn_at: None,
        }
    }

    /// Current state.
    pub fn state(&self) -> ThrottleState {
        self.state
    }

    /// When the computation is scheduled, if it is.
    pub fn scheduled(&self) -> Option<u64> {
        self.run_at
    }

    /// An IGP event (topology change, or a request to originate) at `now`.
    pub fn event(&mut self, now: u64) {
        let p = self.params;
        match self.state {
            ThrottleState::Quiet => {
                self.state = ThrottleState::ShortWait;
                self.learn_at = Some(now + p.time_to_learn);
                self.run_at = Some(now + p.initial_delay);
            }
            ThrottleState::ShortWait => {
                self.run_at.get_or_insert(now + p.short_delay);
            }
            ThrottleState::LongWait => {
                self.run_at.get_or_insert(now + p.long_delay);
            }
        }
        self.holddown_at = Some(now + p.hold_down);
    }

    /// The earliest pending deadline, for the caller's timer.
    pub fn next_deadline(&self) -> Option<u64> {
        [self.run_at, self.holddown_at, self.learn_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Processes every deadline reached at `now`; returns true if the computation is due now
    /// (the caller runs it once).
    pub fn poll(&mut self, now: u64) -> bool {
        let mut run = false;
        if self.run_at.is_some_and(|t| t <= now) {
            self.run_at = None;
            run = true;
        }
        if self.learn_at.is_some_and(|t| t <= now) {
            self.learn_at = None;
            if self.state == ThrottleState::ShortWait {
                self.state = ThrottleState::LongWait;
            }
        }
        if self.holddown_at.is_some_and(|t| t <= now) {
            self.holddown_at = None;
            self.learn_at = None;
            self.state = ThrottleState::Quiet;
        }
        run
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: ThrottleParams = ThrottleParams {
        initial_delay: 0,
        short_delay: 50,
        long_delay: 2000,
        hold_down: 5000,
        time_to_learn: 500,
    };

    #[test]
    fn first_event_runs_after_initial_delay() {
        let mut t = Throttle::new(P);
        t.event(1000);
        assert_eq!(t.state(), ThrottleState::ShortWait);
        assert_eq!(t.scheduled(), Some(1000));
        assert!(t.poll(1000));
        assert!(!t.poll(1000));
    }

    #[test]
    fn events_in_short_wait_use_short_delay_and_coalesce() {
        let mut t = Throttle::new(P);
        t.event(0);
        assert!(t.poll(0));
        t.event(100);
        t.event(120);
        assert_eq!(t.scheduled(), Some(150));
        assert!(!t.poll(149));
        assert!(t.poll(150));
    }

    #[test]
    fn learn_timer_moves_to_long_wait_and_holddown_to_quiet() {
        let mut t = Throttle::new(P);
        t.event(0);
        t.poll(0);
        t.event(400);
        t.poll(450);
        t.poll(500);
        assert_eq!(t.state(), ThrottleState::LongWait);
        t.event(600);
        assert_eq!(t.scheduled(), Some(2600));
        assert!(t.poll(2600));
        // Hold-down restarted by the event at 600: quiet at 5600.
        assert!(!t.poll(5599));
        assert_eq!(t.state(), ThrottleState::LongWait);
        t.poll(5600);
        assert_eq!(t.state(), ThrottleState::Quiet);
        assert_eq!(t.next_deadline(), None);
        t.event(6000);
        assert_eq!(t.scheduled(), Some(6000));
    }

    #[test]
    fn holddown_expiry_in_short_wait_returns_to_quiet() {
        let p = ThrottleParams {
            time_to_learn: 10_000,
            ..P
        };
        let mut t = Throttle::new(p);
        t.event(0);
        t.poll(0);
        t.poll(5000);
        assert_eq!(t.state(), ThrottleState::Quiet);
    }
}
