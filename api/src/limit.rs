//! Rate limiting with GCRA (the generic cell rate algorithm): per key, one timestamp, the
//! "theoretical arrival time". A request is allowed when TAT - now ≤ burst window; each
//! allowed request pushes TAT by one emission interval. Sans-IO: callers pass `now`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A limit of `count` events per `period`, bursts up to `count`.
#[derive(Debug)]
pub struct Gcra {
    interval: Duration,
    burst: Duration,
    shards: Vec<Mutex<HashMap<String, Instant>>>,
}

impl Gcra {
    /// `count == 0` disables the limit.
    pub fn new(count: u32, period: Duration) -> Self {
        let interval = if count == 0 {
            Duration::ZERO
        } else {
            period / count
        };
        Self {
            interval,
            burst: period.saturating_sub(interval),
            shards: (0..16).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, key: &str) -> &Mutex<HashMap<String, Instant>> {
        let h = key
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        &self.shards[h % self.shards.len()]
    }

    /// Counts one event for `key`; `Err(wait)` when over the limit.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        if self.interval.is_zero() {
            return Ok(());
        }
        let mut map = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        let tat = map.get(key).copied().unwrap_or(now).max(now);
        let ahead = tat - now;
        if ahead > self.burst {
            return Err(ahead - self.burst);
        }
        map.insert(key.to_string(), tat + self.interval);
        if map.len() > 100_000 {
            map.retain(|_, t| *t > now);
        }
        Ok(())
    }

    /// Whether `key` would be refused now, without counting anything.
    pub fn peek(&self, key: &str, now: Instant) -> Result<(), Duration> {
        if self.interval.is_zero() {
            return Ok(());
        }
        let map = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        let tat = map.get(key).copied().unwrap_or(now).max(now);
        let ahead = tat - now;
        if ahead > self.burst {
            Err(ahead - self.burst)
        } else {
            Ok(())
        }
    }

    /// Forgets a key (a successful login clears its failures).
    pub fn reset(&self, key: &str) {
        self.shard(key)
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_burst_then_one_per_interval() {
        let g = Gcra::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..3 {
            g.check("k", t0).unwrap();
        }
        let wait = g.check("k", t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(20));
        assert!(g.check("other", t0).is_ok(), "keys are independent");
        assert!(g.check("k", t0 + Duration::from_secs(19)).is_err());
        assert!(g.check("k", t0 + Duration::from_secs(20)).is_ok());
        assert!(g.check("k", t0 + Duration::from_secs(20)).is_err());
    }

    #[test]
    fn zero_disables_and_reset_forgets() {
        let off = Gcra::new(0, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..1000 {
            off.check("k", t0).unwrap();
        }
        let g = Gcra::new(1, Duration::from_secs(60));
        g.check("k", t0).unwrap();
        assert!(g.peek("k", t0).is_err());
        g.reset("k");
        assert!(g.peek("k", t0).is_ok());
    }
}
