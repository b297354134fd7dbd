//! Timers of an event loop: named deadlines on the loop's own millisecond clock.
//!
//! A protocol instance says "set timer K at T" (or cancel it) as an output; the loop keeps
//! them here and awaits [`Timers::next`] in its `select!`, turning the expired key into an
//! input. Time is milliseconds since the `Timers` was made, the same numbers the instance
//! sees, so its tests can use a fake clock with the same values.

use std::collections::BTreeMap;

use tokio::time::{Duration, Instant};

/// Deadlines by key.
#[derive(Debug)]
pub struct Timers<K> {
    start: Instant,
    at: BTreeMap<K, u64>,
}

impl<K: Ord + Clone> Default for Timers<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Ord + Clone> Timers<K> {
    /// No timer set; the clock starts now.
    pub fn new() -> Self {
        Timers {
            start: Instant::now(),
            at: BTreeMap::new(),
        }
    }

    /// Milliseconds since [`Timers::new`].
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Sets `key` to fire at `at` (ms on this clock), or cancels it (None).
    pub fn set(&mut self, key: K, at: Option<u64>) {
        match at {
            Some(t) => {
                self.at.insert(key, t);
            }
            None => {
                self.at.remove(&key);
            }
        }
    }

    /// When `key` fires, if set.
    pub fn get(&self, key: &K) -> Option<u64> {
        self.at.get(key).copied()
    }

    /// Waits for the earliest deadline and returns its key (removed). Pending while no
    /// timer is set. Cancel-safe: nothing is removed unless the wait completed.
    pub async fn next(&mut self) -> K {
        loop {
            let Some((key, at)) = self.at.iter().min_by_key(|(_, at)| **at) else {
                std::future::pending::<()>().await;
                continue;
            };
            let (key, at) = (key.clone(), *at);
            tokio::time::sleep_until(self.start + Duration::from_millis(at)).await;
            if self.at.get(&key) == Some(&at) {
                self.at.remove(&key);
                return key;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fires_in_deadline_order_and_honours_cancel() {
        let mut t = Timers::new();
        t.set("b", Some(40));
        t.set("a", Some(20));
        t.set("c", Some(10));
        t.set("c", None);
        assert_eq!(t.next().await, "a");
        assert!(t.now() >= 20);
        assert_eq!(t.get(&"b"), Some(40));
        // A wait given up (cancelled by select!) loses nothing.
        let early = tokio::time::timeout(Duration::from_millis(1), t.next()).await;
        assert!(early.is_err() && t.get(&"b").is_some());
        assert_eq!(t.next().await, "b");
        let none = tokio::time::timeout(Duration::from_millis(50), t.next()).await;
        assert!(none.is_err(), "nothing set: pending");
    }
}
