//! Transaction timers: the closed set of RFC 3261 §17 / RFC 6026 timers, their configuration,
//! and the deadline table every transaction keeps.
//!
//! Timer C (the proxy INVITE timer) is left out: Switchboard is a user agent, not a proxy.

use std::time::{Duration, Instant};

/// A transaction timer (RFC 3261 Table 4, plus L and M from RFC 6026).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Client INVITE: request retransmission (unreliable transport), doubling from T1.
    A,
    /// Client INVITE: transaction timeout, 64*T1.
    B,
    /// Client INVITE: wait for response retransmissions in Completed, 32 s on UDP, 0 on TCP.
    D,
    /// Client non-INVITE: request retransmission, doubling from T1 up to T2.
    E,
    /// Client non-INVITE: transaction timeout, 64*T1.
    F,
    /// Server INVITE: final response retransmission, doubling from T1 up to T2.
    G,
    /// Server INVITE: wait for ACK, 64*T1.
    H,
    /// Server INVITE: wait for ACK retransmissions in Confirmed, T4 on UDP, 0 on TCP.
    I,
    /// Server non-INVITE: wait for request retransmissions, 64*T1 on UDP, 0 on TCP.
    J,
    /// Client non-INVITE: wait for response retransmissions, T4 on UDP, 0 on TCP.
    K,
    /// Server INVITE (RFC 6026): stay in Accepted for 2xx retransmissions, 64*T1.
    L,
    /// Client INVITE (RFC 6026): stay in Accepted to pass up further 2xx, 64*T1.
    M,
}

impl Timer {
    /// Every timer, in table order.
    pub const ALL: [Timer; 12] = [
        Timer::A,
        Timer::B,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::L,
        Timer::M,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// The base intervals of RFC 3261 §17.1.1.1 (defaults 500 ms, 4 s, 5 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses.
    pub t2: Duration,
    /// Maximum time a message remains in the network.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> TimerConfig {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64*T1, the transaction timeout of Timers B, F, H, J, L and M.
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer D: at least 32 s on unreliable transports (RFC 3261 §17.1.1.2), never below 64*T1.
    pub fn timer_d(&self) -> Duration {
        Duration::from_secs(32).max(self.timeout())
    }
}

/// One optional deadline per [`Timer`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimerTable {
    deadlines: [Option<Instant>; Timer::ALL.len()],
}

impl TimerTable {
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer.index()]
    }

    pub fn clear(&mut self) {
        self.deadlines = Default::default();
    }

    /// The earliest armed deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// The armed timer with the earliest deadline at or before `now` (ties in table order).
    pub fn next_expired(&self, now: Instant) -> Option<Timer> {
        Timer::ALL
            .iter()
            .filter_map(|&t| self.get(t).filter(|at| *at <= now).map(|at| (at, t)))
            .min_by_key(|(at, _)| *at)
            .map(|(_, t)| t)
    }

    /// Removes and returns the next expired timer.
    pub fn pop_expired(&mut self, now: Instant) -> Option<Timer> {
        let t = self.next_expired(now)?;
        self.stop(t);
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_orders_deadlines() {
        let base = Instant::now();
        let mut t = TimerTable::default();
        assert_eq!(t.next_deadline(), None);
        t.set(Timer::B, base + Duration::from_secs(32));
        t.set(Timer::A, base + Duration::from_millis(500));
        assert_eq!(t.next_deadline(), Some(base + Duration::from_millis(500)));
        assert_eq!(t.next_expired(base), None);
        let late = base + Duration::from_secs(40);
        assert_eq!(t.pop_expired(late), Some(Timer::A));
        assert_eq!(t.pop_expired(late), Some(Timer::B));
        assert_eq!(t.pop_expired(late), None);
        t.set(Timer::K, base);
        t.clear();
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn defaults_match_rfc() {
        let c = TimerConfig::default();
        assert_eq!(c.timeout(), Duration::from_secs(32));
        assert_eq!(c.timer_d(), Duration::from_secs(32));
    }
}
