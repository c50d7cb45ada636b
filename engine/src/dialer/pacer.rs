//! The pacer: how many new calls to place on each tick (every second), per dial mode.
//!
//! - preview: none (the agent dials).
//! - progressive: one call per ready agent not already covered by a call in flight.
//! - power: `dial_ratio` calls per ready agent, minus calls in flight.
//! - predictive: aims the expected live answers of the next ring period at the agents
//!   expected to be free by then, scaled by a safety factor `s` that the rolling abandon rate
//!   steers toward ~70 % of the cap (a multiplicative brake above 80 % of it, a slow release
//!   below 60 %), with
//!   estimates learned from outcomes. Until 30 outcomes are known it behaves as progressive.
//!
//! ```text
//! p   = share of dials answered by a live person (EWMA, prior 0.3)
//! Tr  = mean time from dial to a live answer;  H = mean handle time (talk + wrap-up)
//! A   = ready + busy x (1 - exp(-Tr/H))         agents free within a ring period
//! new = floor((s*A - p*in_flight) / p), capped so in_flight + new <= max_level x agents
//! ```
//!
//! Sans-IO: `tick` takes the counts and `now`; outcomes arrive through `on_*`.

use chrono::{DateTime, Utc};

/// How a campaign dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialMode {
    Preview,
    Progressive,
    Power,
    Predictive,
}

impl DialMode {
    pub fn parse(s: &str) -> Option<DialMode> {
        Some(match s {
            "preview" => DialMode::Preview,
            "progressive" => DialMode::Progressive,
            "power" => DialMode::Power,
            "predictive" => DialMode::Predictive,
            _ => return None,
        })
    }
}

/// Pacer settings (from the campaign).
#[derive(Debug, Clone, Copy)]
pub struct PacerConfig {
    pub mode: DialMode,
    /// Lines per ready agent in power mode.
    pub dial_ratio: f64,
    /// The abandon-rate cap (e.g. 0.03).
    pub max_abandon_rate: f64,
    /// Most lines per logged-in agent in predictive mode (VICIdial's default is 3.0).
    pub max_level: f64,
}

impl PacerConfig {
    pub fn new(mode: DialMode, dial_ratio: f64, max_abandon_rate: f64) -> Self {
        Self {
            mode,
            dial_ratio,
            max_abandon_rate,
            max_level: 3.0,
        }
    }
}

/// What the pacer sees each tick.
#[derive(Debug, Clone, Copy, Default)]
pub struct Load {
    /// Agents waiting for a call.
    pub ready_agents: u32,
    /// Agents talking or in wrap-up.
    pub busy_agents: u32,
    /// Calls dialing or ringing, not yet answered.
    pub in_flight: u32,
}

/// The pacer's state.
#[derive(Debug, Clone)]
pub struct Pacer {
    cfg: PacerConfig,
    p_live: f64,
    ring_to_live_secs: f64,
    handle_secs: f64,
    outcomes: u32,
    safety: f64,
    last_adjust: Option<DateTime<Utc>>,
}

const EWMA: f64 = 0.02;
/// How far above "one expected answer per free agent" the pacer may aim.
const MAX_SAFETY: f64 = 2.0;
const WARMUP_OUTCOMES: u32 = 30;

impl Pacer {
    pub fn new(cfg: PacerConfig) -> Self {
        Self {
            cfg,
            p_live: 0.3,
            ring_to_live_secs: 12.0,
            handle_secs: 120.0,
            outcomes: 0,
            safety: 0.8,
            last_adjust: None,
        }
    }

    /// A dial ended unanswered or answered by a machine.
    pub fn on_not_live(&mut self) {
        self.outcomes += 1;
        self.p_live += EWMA * (0.0 - self.p_live);
    }

    /// A live person answered after `ring_secs`.
    pub fn on_live(&mut self, ring_secs: f64) {
        self.outcomes += 1;
        self.p_live += EWMA * (1.0 - self.p_live);
        self.ring_to_live_secs += EWMA * (ring_secs.max(0.0) - self.ring_to_live_secs);
    }

    /// An agent finished a call (talk + wrap-up) after `secs`.
    pub fn on_handled(&mut self, secs: f64) {
        self.handle_secs += 0.05 * (secs.max(1.0) - self.handle_secs);
    }

    /// The learned share of dials reaching a live person.
    pub fn live_rate(&self) -> f64 {
        self.p_live
    }

    /// The current safety factor of predictive mode.
    pub fn safety(&self) -> f64 {
        self.safety
    }

    /// How many calls to start now, given the load and the rolling abandon rate.
    pub fn tick(&mut self, now: DateTime<Utc>, load: Load, abandon_rate: f64) -> u32 {
        let ready = load.ready_agents as f64;
        let inflight = load.in_flight as f64;
        let n = match self.cfg.mode {
            DialMode::Preview => 0.0,
            DialMode::Progressive => ready - inflight,
            DialMode::Power => (ready * self.cfg.dial_ratio).floor() - inflight,
            DialMode::Predictive if self.outcomes < WARMUP_OUTCOMES => ready - inflight,
            DialMode::Predictive => {
                self.steer(now, abandon_rate);
                let p = self.p_live.clamp(0.02, 1.0);
                let free_soon = ready
                    + load.busy_agents as f64
                        * (1.0 - (-self.ring_to_live_secs / self.handle_secs).exp());
                let want = ((self.safety * free_soon - p * inflight) / p).floor();
                let agents = (load.ready_agents + load.busy_agents) as f64;
                let cap = (self.cfg.max_level * agents).floor() - inflight;
                want.min(cap)
            }
        };
        if n <= 0.0 {
            0
        } else {
            n as u32
        }
    }

    /// Once per second at most: brake hard near the cap, release slowly well under it.
    fn steer(&mut self, now: DateTime<Utc>, abandon_rate: f64) {
        if self
            .last_adjust
            .is_some_and(|t| (now - t).num_milliseconds() < 1000)
        {
            return;
        }
        self.last_adjust = Some(now);
        let cap = self.cfg.max_abandon_rate;
        if abandon_rate > 0.8 * cap {
            self.safety = (self.safety * 0.9).max(0.3);
        } else if abandon_rate < 0.6 * cap {
            self.safety = (self.safety + 0.005).min(MAX_SAFETY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    #[test]
    fn simple_modes() {
        let load = Load {
            ready_agents: 4,
            busy_agents: 2,
            in_flight: 1,
        };
        assert_eq!(
            Pacer::new(PacerConfig::new(DialMode::Preview, 1.0, 0.03)).tick(t(0), load, 0.0),
            0
        );
        assert_eq!(
            Pacer::new(PacerConfig::new(DialMode::Progressive, 1.0, 0.03)).tick(t(0), load, 0.0),
            3
        );
        assert_eq!(
            Pacer::new(PacerConfig::new(DialMode::Power, 2.5, 0.03)).tick(t(0), load, 0.0),
            9
        );
        assert_eq!(
            Pacer::new(PacerConfig::new(DialMode::Power, 2.0, 0.03)).tick(
                t(0),
                Load {
                    ready_agents: 0,
                    busy_agents: 5,
                    in_flight: 0
                },
                0.0
            ),
            0
        );
        let mut warm = Pacer::new(PacerConfig::new(DialMode::Predictive, 1.0, 0.03));
        assert_eq!(
            warm.tick(t(0), load, 0.0),
            3,
            "predictive starts out progressive"
        );
    }

    #[test]
    fn predictive_dials_more_than_one_per_agent_when_few_answer_and_brakes_on_abandons() {
        let mut p = Pacer::new(PacerConfig::new(DialMode::Predictive, 1.0, 0.03));
        for i in 0..200 {
            if i % 4 == 0 {
                p.on_live(10.0);
            } else {
                p.on_not_live();
            }
        }
        let load = Load {
            ready_agents: 4,
            busy_agents: 6,
            in_flight: 0,
        };
        let eager = p.tick(t(0), load, 0.0);
        assert!(
            eager > 4,
            "with ~25 % live answers it dials several lines per ready agent: {eager}"
        );
        for s in 1..30 {
            p.tick(t(s), load, 0.05);
        }
        let braked = p.tick(t(31), load, 0.05);
        assert!(
            braked < eager,
            "abandons above the cap brake the pace: {braked} vs {eager}"
        );
        assert!(
            p.tick(
                t(32),
                Load {
                    ready_agents: 4,
                    busy_agents: 6,
                    in_flight: 40
                },
                0.0
            ) == 0,
            "never beyond max_level lines per agent"
        );
    }
}
