//! The rolling abandon rate of a campaign: abandoned calls over calls answered by a live
//! person, over 30 days (US FCC / FTC) or 24 hours (UK Ofcom), in fixed buckets (720 of
//! them) so memory and work per event are constant. Sans-IO: callers pass `now`.
//!
//! An abandon is a live person not connected to an agent within 2 s of answer. At start-up
//! the window is seeded from the stored calls of the period (`seed`).

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};

/// The window length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// 30 days (US).
    Days30,
    /// 24 hours (UK).
    Hours24,
}

impl Window {
    pub fn parse(s: &str) -> Window {
        if s == "24h" {
            Window::Hours24
        } else {
            Window::Days30
        }
    }

    pub fn length(self) -> Duration {
        match self {
            Window::Days30 => Duration::days(30),
            Window::Hours24 => Duration::hours(24),
        }
    }
}

const BUCKETS: i64 = 720;

/// Live answers and abandons per time bucket.
#[derive(Debug, Clone)]
pub struct AbandonWindow {
    window: Window,
    bucket_secs: i64,
    /// (bucket index, live answers, abandons), oldest first.
    buckets: VecDeque<(i64, u64, u64)>,
    seeded: (u64, u64, i64),
}

impl AbandonWindow {
    pub fn new(window: Window) -> Self {
        Self {
            window,
            bucket_secs: window.length().num_seconds() / BUCKETS,
            buckets: VecDeque::new(),
            seeded: (0, 0, i64::MIN),
        }
    }

    fn index(&self, now: DateTime<Utc>) -> i64 {
        now.timestamp().div_euclid(self.bucket_secs)
    }

    fn expire(&mut self, now: DateTime<Utc>) {
        let oldest = self.index(now) - BUCKETS + 1;
        while self.buckets.front().is_some_and(|b| b.0 < oldest) {
            self.buckets.pop_front();
        }
        if self.seeded.2 < oldest {
            self.seeded = (0, 0, i64::MIN);
        }
    }

    fn bump(&mut self, now: DateTime<Utc>, live: u64, abandoned: u64) {
        self.expire(now);
        let i = self.index(now);
        match self.buckets.back_mut() {
            Some(b) if b.0 == i => {
                b.1 += live;
                b.2 += abandoned;
            }
            _ => self.buckets.push_back((i, live, abandoned)),
        }
    }

    /// Counts from storage for the current window, as of `now` (they expire with the
    /// window's oldest bucket, a conservative choice).
    pub fn seed(&mut self, live: u64, abandoned: u64, now: DateTime<Utc>) {
        self.seeded = (live, abandoned, self.index(now));
    }

    /// A call answered by a live person (connected or not).
    pub fn record_live(&mut self, now: DateTime<Utc>) {
        self.bump(now, 1, 0);
    }

    /// A live person not connected within 2 s (record it as live too).
    pub fn record_abandon(&mut self, now: DateTime<Utc>) {
        self.bump(now, 0, 1);
    }

    /// (live answers, abandons) in the window ending at `now`.
    pub fn counts(&mut self, now: DateTime<Utc>) -> (u64, u64) {
        self.expire(now);
        let (mut live, mut ab) = (self.seeded.0, self.seeded.1);
        for b in &self.buckets {
            live += b.1;
            ab += b.2;
        }
        (live, ab)
    }

    /// Abandons / live answers in the window (0 when nobody answered).
    pub fn rate(&mut self, now: DateTime<Utc>) -> f64 {
        let (live, ab) = self.counts(now);
        if live == 0 {
            0.0
        } else {
            ab as f64 / live as f64
        }
    }

    pub fn window(&self) -> Window {
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_expires() {
        let t0: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
        let mut w = AbandonWindow::new(Window::Hours24);
        for _ in 0..97 {
            w.record_live(t0);
        }
        for _ in 0..3 {
            w.record_live(t0);
            w.record_abandon(t0);
        }
        assert_eq!(w.counts(t0), (100, 3));
        assert!((w.rate(t0) - 0.03).abs() < 1e-12);
        assert_eq!(w.counts(t0 + Duration::hours(23)), (100, 3));
        assert_eq!(
            w.counts(t0 + Duration::hours(24) + Duration::minutes(2)),
            (0, 0),
            "gone after the window"
        );
        assert_eq!(w.rate(t0 + Duration::hours(25)), 0.0);
    }

    #[test]
    fn thirty_days_and_seed() {
        let t0: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
        let mut w = AbandonWindow::new(Window::parse("30d"));
        w.seed(1000, 20, t0);
        w.record_live(t0 + Duration::days(1));
        assert_eq!(w.counts(t0 + Duration::days(29)), (1001, 20));
        assert_eq!(w.counts(t0 + Duration::days(31)), (0, 0));
    }
}
