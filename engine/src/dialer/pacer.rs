//! The pacer: how many new calls to place on each tick (every second), per dial mode.
//!
//! - preview: none (the agent dials).
//! - progressive: one call per ready agent not already covered by a call in flight.
//! - power: `dial_ratio` calls per ready agent, minus calls in flight.
//! - predictive: the most new calls whose expected abandon share stays under an aim, from a
//!   small queueing model of the next ring period, never fewer than progressive would place.
//!   Until the outcomes of 100 of its dials are all known it behaves as progressive.
//!
//! The predictive model, recomputed on every tick from what the pacer has learned:
//!
//! ```text
//! p     = share of dials judged live (over ~2000 outcomes and ~2000 settled dials, prior 0.3)
//! Tr    = mean time from dial to a live verdict; S(a) = share of live verdicts later than a s
//! h     = calls finished per busy agent-second (decayed over ~30 min; prior 1/120 s)
//! L     = p x sum over this pacer's dials of the last minute of S(age)   (live answers still
//!         to come from calls in flight, at most in_flight)
//! Free  = ready + Binomial(busy, 1 - exp(-h x Tr))     agents free within a ring period
//! Live  ~ Poisson(L + p x new)                           live answers within it
//! risk(new) = E[(Live - Free)+] / E[Live]                the share of them left without an agent
//! new   = the largest n with risk(n) x c <= aim, capped so in_flight + n <= max_level x agents
//! ```
//!
//! Small teams get fewer extra lines than large ones because the model sees their variance
//! (Erlang's economy of scale). `c` calibrates the model against the abandons actually seen
//! (`on_abandon`): the ratio of abandons to the risk predicted for each live answer, over
//! the last ~1000 live answers. The aim is 80 % of the cap, lowered linearly to 0 as the
//! campaign's rolling abandon rate goes from the aim to the cap (at the cap predictive is
//! progressive, which cannot abandon), and kept low enough while few live answers are known
//! that chance alone is unlikely to carry the rate over the cap: four binomial standard
//! deviations, since abandons come in clusters (with a 3 % cap the aim is 1 % after 500 live
//! answers, 2 % after ~3200 and the full 2.4 % after ~10700: a working day for 50 agents).
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

    pub fn as_str(self) -> &'static str {
        match self {
            DialMode::Preview => "preview",
            DialMode::Progressive => "progressive",
            DialMode::Power => "power",
            DialMode::Predictive => "predictive",
        }
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

/// Seconds of dial history and of the dial-to-live histogram (the last bin takes the rest).
const HISTORY: usize = 64;
/// Dials whose outcome is fully known (older than the history) before predictive leaves
/// progressive.
const WARMUP_SETTLED: u64 = 100;
/// The aim as a share of the cap.
const AIM: f64 = 0.8;
/// Binomial standard deviations of luck the aim leaves room for under the cap.
const Z: f64 = 4.0;
/// Memory of the live share, in outcomes; of the histogram and calibration, in live answers.
const OUTCOME_MEMORY: f64 = 2000.0;
const LIVE_MEMORY: f64 = 1000.0;
/// Abandons the calibration assumes were predicted and seen before any evidence.
const CALIBRATION_PRIOR: f64 = 5.0;
/// Memory of the mean times, in samples.
const MEAN_MEMORY: f64 = 200.0;
/// Memory of the rate at which busy agents free up, in seconds.
const FREE_RATE_MEMORY: f64 = 1800.0;
/// The prior of that rate: this many calls finished in 120 s each.
const PRIOR_FINISHED: f64 = 3.0;

/// The pacer's state.
#[derive(Debug, Clone)]
pub struct Pacer {
    cfg: PacerConfig,
    /// Decayed counts: outcomes and live ones among them.
    outcomes_w: f64,
    lives_w: f64,
    lives: u64,
    ring_to_live_secs: f64,
    /// Decayed histogram of dial-to-live-verdict times, 1 s bins.
    live_after: [f64; HISTORY],
    handle_secs: f64,
    /// Decayed calls finished and busy agent-seconds: the rate at which busy agents free up.
    finished_w: f64,
    busy_secs_w: f64,
    last_tick: Option<DateTime<Utc>>,
    /// This pacer's dials per second and the live answers they brought so far, a ring
    /// indexed by second.
    dialed: [Cohort; HISTORY],
    /// Decayed dials older than the history and their live answers; how many such dials.
    settled_dials_w: f64,
    settled_lives_w: f64,
    settled: u64,
    /// Calibration: decayed abandons seen and abandons predicted per live answer.
    abandoned_w: f64,
    predicted_w: f64,
    /// The model's risk for the calls of the last predictive decision.
    last_risk: f64,
    /// The aim of the last predictive decision (after calibration), for reports.
    last_aim: f64,
}

impl Pacer {
    pub fn new(cfg: PacerConfig) -> Self {
        Self {
            cfg,
            outcomes_w: 0.0,
            lives_w: 0.0,
            lives: 0,
            ring_to_live_secs: 12.0,
            live_after: [0.0; HISTORY],
            handle_secs: 120.0,
            finished_w: PRIOR_FINISHED,
            busy_secs_w: PRIOR_FINISHED * 120.0,
            last_tick: None,
            dialed: [Cohort::default(); HISTORY],
            settled_dials_w: 0.0,
            settled_lives_w: 0.0,
            settled: 0,
            abandoned_w: 0.0,
            predicted_w: 0.0,
            last_risk: 0.0,
            last_aim: 0.0,
        }
    }

    fn count_outcome(&mut self, live: bool) {
        let keep = 1.0 - 1.0 / OUTCOME_MEMORY;
        self.outcomes_w = self.outcomes_w * keep + 1.0;
        self.lives_w = self.lives_w * keep + if live { 1.0 } else { 0.0 };
    }

    /// A dial ended unanswered, answered by a machine, or failed.
    pub fn on_not_live(&mut self) {
        self.count_outcome(false);
    }

    /// A call was judged live (a person, or taken for one) `secs_since_dial` after it was
    /// dialed: the moment it needs an agent.
    pub fn on_live(&mut self, secs_since_dial: f64) {
        self.count_outcome(true);
        self.lives += 1;
        let secs = if secs_since_dial.is_finite() {
            secs_since_dial.max(0.0)
        } else {
            self.ring_to_live_secs
        };
        self.ring_to_live_secs += (secs - self.ring_to_live_secs) / MEAN_MEMORY;
        let keep = 1.0 - 1.0 / LIVE_MEMORY;
        for b in &mut self.live_after {
            *b *= keep;
        }
        self.live_after[(secs as usize).min(HISTORY - 1)] += 1.0;
        self.predicted_w = self.predicted_w * keep + self.last_risk;
        // Credit the live answer to the second it was dialed in.
        if let Some(t) = self.last_tick {
            let at = t.timestamp() - secs.round() as i64;
            let slot = &mut self.dialed[at.rem_euclid(HISTORY as i64) as usize];
            if slot.second == at {
                slot.lives += 1;
            } else if at < t.timestamp() - HISTORY as i64 {
                self.settled_lives_w += 1.0;
            }
        }
        self.abandoned_w *= keep;
    }

    /// A live call found no agent in time and was abandoned (call `on_live` for it too).
    pub fn on_abandon(&mut self) {
        self.abandoned_w += 1.0;
    }

    /// An agent finished a call (talk + wrap-up) after `secs`.
    pub fn on_handled(&mut self, secs: f64) {
        self.finished_w += 1.0;
        if secs.is_finite() {
            self.handle_secs += (secs.max(1.0) - self.handle_secs) / MEAN_MEMORY;
        }
    }

    /// The learned share of dials reaching a live person: the larger of live answers over
    /// outcomes (which runs high early, when the quick live answers have come in and the
    /// slow no-answers have not) and live answers over this pacer's dials whose outcomes are
    /// all known (exact if every call it asked for was placed, low if fewer were).
    pub fn live_rate(&self) -> f64 {
        let by_outcome = (self.lives_w + 0.3 * 20.0) / (self.outcomes_w + 20.0);
        let by_dial = (self.settled_lives_w + 0.3 * 20.0) / (self.settled_dials_w + 20.0);
        by_outcome.max(by_dial)
    }

    /// The learned mean handle time, in seconds.
    pub fn handle_secs(&self) -> f64 {
        self.handle_secs
    }

    /// Calls finished per busy agent-second: how fast busy agents free up.
    pub fn free_rate(&self) -> f64 {
        self.finished_w / self.busy_secs_w.max(1.0)
    }

    /// How far the model's abandon predictions are off: abandons seen over predicted
    /// (1 until there is evidence; kept within 0.5..4).
    pub fn calibration(&self) -> f64 {
        ((self.abandoned_w + CALIBRATION_PRIOR) / (self.predicted_w + CALIBRATION_PRIOR))
            .clamp(0.5, 4.0)
    }

    /// The abandon share the last predictive decision aimed at (after calibration).
    pub fn aim(&self) -> f64 {
        self.last_aim
    }

    /// How many calls to start now, given the load and the rolling abandon rate.
    pub fn tick(&mut self, now: DateTime<Utc>, load: Load, abandon_rate: f64) -> u32 {
        self.observe_busy(now, load.busy_agents);
        let ready = load.ready_agents as i64;
        let inflight = load.in_flight as i64;
        let n = match self.cfg.mode {
            DialMode::Preview => 0,
            DialMode::Progressive => ready - inflight,
            DialMode::Power => {
                (load.ready_agents as f64 * self.cfg.dial_ratio.max(0.0)).floor() as i64 - inflight
            }
            DialMode::Predictive if self.settled < WARMUP_SETTLED => ready - inflight,
            DialMode::Predictive => {
                (ready - inflight).max(self.predict(now, load, abandon_rate) as i64)
            }
        };
        let n = n.clamp(0, u32::MAX as i64) as u32;
        self.record_dials(now, n);
        n
    }

    /// Busy agent-seconds since the last tick, for the rate at which agents free up.
    fn observe_busy(&mut self, now: DateTime<Utc>, busy: u32) {
        let dt = match self.last_tick {
            Some(t) => ((now - t).num_milliseconds() as f64 / 1000.0).clamp(0.0, 5.0),
            None => 0.0,
        };
        self.last_tick = Some(now);
        let keep = (-dt / FREE_RATE_MEMORY).exp();
        self.finished_w *= keep;
        self.busy_secs_w = self.busy_secs_w * keep + busy as f64 * dt;
    }

    fn record_dials(&mut self, now: DateTime<Utc>, n: u32) {
        let sec = now.timestamp();
        let slot = &mut self.dialed[sec.rem_euclid(HISTORY as i64) as usize];
        if slot.second == sec {
            slot.dials = slot.dials.saturating_add(n);
            return;
        }
        // The slot's old second is now out of the history: its outcomes are all known.
        let old = std::mem::replace(
            slot,
            Cohort {
                second: sec,
                dials: n,
                lives: 0,
            },
        );
        if old.dials > 0 {
            let keep = (1.0 - 1.0 / OUTCOME_MEMORY).powi(old.dials.min(1 << 20) as i32);
            self.settled_dials_w = self.settled_dials_w * keep + old.dials as f64;
            self.settled_lives_w = self.settled_lives_w * keep + old.lives as f64;
            self.settled += old.dials as u64;
        }
    }

    /// Live answers still to come from this pacer's recent dials.
    fn pending_lives(&self, now: DateTime<Utc>, p: f64) -> f64 {
        let total: f64 = self.live_after.iter().sum();
        if total <= 0.0 {
            return 0.0;
        }
        // later[a] = share of live verdicts at a or more seconds after the dial.
        let mut later = [0.0; HISTORY];
        let mut acc = 0.0;
        for a in (0..HISTORY).rev() {
            acc += self.live_after[a];
            later[a] = acc / total;
        }
        let sec = now.timestamp();
        let mut expected = 0.0;
        for c in &self.dialed {
            let age = sec - c.second;
            if c.dials > 0 && (0..HISTORY as i64).contains(&age) {
                expected += c.dials as f64 * later[age as usize];
            }
        }
        p * expected
    }

    /// The aim before calibration: 80 % of the cap, and low enough that a binomial count of
    /// abandons among the live answers seen so far stays under the cap at `Z` standard
    /// deviations (a young campaign has little room for luck); lowered to 0 as the window's
    /// rate goes from the aim to the cap.
    fn aim_for(&self, abandon_rate: f64) -> f64 {
        let cap = self.cfg.max_abandon_rate.clamp(0.0, 1.0);
        let aim = AIM * cap;
        let brake = if abandon_rate > aim && cap > aim {
            ((cap - abandon_rate) / (cap - aim)).clamp(0.0, 1.0)
        } else {
            1.0
        };
        // The largest a with a + Z sqrt(a / n) <= cap, n = live answers seen (at least 1).
        let k = Z / (self.lives.max(1) as f64).sqrt();
        let root = (-k + (k * k + 4.0 * cap).sqrt()) / 2.0;
        aim.min(root * root) * brake
    }

    fn predict(&mut self, now: DateTime<Utc>, load: Load, abandon_rate: f64) -> u32 {
        let p = self.live_rate().clamp(0.005, 1.0);
        let tr = self.ring_to_live_secs.max(1.0);
        let q = 1.0 - (-tr * self.free_rate()).exp();
        let pending = self.pending_lives(now, p).min(load.in_flight as f64);
        let supply = Supply::new(load.ready_agents, load.busy_agents, q);
        let aim = self.aim_for(abandon_rate) / self.calibration();
        self.last_aim = aim;
        let agents = (load.ready_agents + load.busy_agents) as f64;
        let room = (self.cfg.max_level * agents).floor() - load.in_flight as f64;
        if room < 1.0 {
            self.last_risk = supply.risk(pending);
            return 0;
        }
        let room = room.min(u32::MAX as f64) as u32;
        let risk = |n: u32| supply.risk(pending + p * n as f64);
        // The largest n in 0..=room with risk(n) <= aim (risk grows with n).
        if risk(0) > aim {
            self.last_risk = risk(0);
            return 0;
        }
        let (mut lo, mut hi) = (0u32, room);
        if risk(hi) <= aim {
            lo = hi;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if risk(mid) <= aim {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        self.last_risk = risk(lo);
        lo
    }
}

/// One second of dials.
#[derive(Debug, Clone, Copy)]
struct Cohort {
    second: i64,
    dials: u32,
    lives: u32,
}

impl Default for Cohort {
    fn default() -> Self {
        Self {
            second: i64::MIN,
            dials: 0,
            lives: 0,
        }
    }
}

/// Agents free within a ring period: `ready + Binomial(busy, q)`, as (agents, probability)
/// for the outcomes that matter.
struct Supply {
    pmf: Vec<(u32, f64)>,
}

impl Supply {
    fn new(ready: u32, busy: u32, q: f64) -> Self {
        let q = if q.is_finite() {
            q.clamp(0.0, 1.0)
        } else {
            0.0
        };
        if busy == 0 || q <= 0.0 {
            return Self {
                pmf: vec![(ready, 1.0)],
            };
        }
        if q >= 1.0 {
            return Self {
                pmf: vec![(ready.saturating_add(busy), 1.0)],
            };
        }
        // In logs, so thousands of agents neither underflow nor overflow.
        let (lq, lr) = (q.ln(), (1.0 - q).ln());
        let mut ln = Vec::with_capacity(busy as usize + 1);
        let mut l = busy as f64 * lr;
        ln.push(l);
        for k in 1..=busy {
            l += ((busy - k + 1) as f64 / k as f64).ln() + lq - lr;
            ln.push(l);
        }
        let top = ln.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let mut pmf: Vec<(u32, f64)> = ln
            .iter()
            .enumerate()
            .filter(|(_, &l)| l > top - 35.0)
            .map(|(k, &l)| (ready.saturating_add(k as u32), (l - top).exp()))
            .collect();
        let sum: f64 = pmf.iter().map(|x| x.1).sum();
        for x in &mut pmf {
            x.1 /= sum;
        }
        Self { pmf }
    }

    /// The expected share of `Poisson(mu)` live answers left without a free agent.
    fn risk(&self, mu: f64) -> f64 {
        if mu <= 1e-9 {
            return 0.0;
        }
        self.overflow(mu) / mu
    }

    /// `E[(D - S)+]` for `D ~ Poisson(mu)` and this supply `S`.
    fn overflow(&self, mu: f64) -> f64 {
        // E[(D - s)+] = mu - s + G(s), with G(s) = sum over d < s of P(D <= d).
        let ln_mu = mu.ln();
        let (mut ln_p, mut cdf, mut g) = (-mu, 0.0, 0.0);
        let mut total = 0.0;
        let mut s = 0u32;
        for &(agents, prob) in &self.pmf {
            while s < agents {
                cdf += ln_p.exp();
                g += cdf;
                s += 1;
                ln_p += ln_mu - (s as f64).ln();
            }
            total += prob * (mu - s as f64 + g).max(0.0);
        }
        total
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
        for m in ["preview", "progressive", "power", "predictive"] {
            assert_eq!(DialMode::parse(m).unwrap().as_str(), m);
        }
        assert_eq!(DialMode::parse("auto"), None);
    }

    /// A pacer that has dialed about one call a second for 400 s (one in four live, 10 s
    /// after its dial) while 10 busy agents finished a call every 12 s (120 s each), then
    /// seen `lives` more live answers among four times as many outcomes.
    fn learned(lives: u32) -> Pacer {
        let mut p = Pacer::new(PacerConfig::new(DialMode::Predictive, 1.0, 0.03));
        for s in 0..400 {
            let load = Load {
                ready_agents: 1,
                busy_agents: 10,
                in_flight: 0,
            };
            p.tick(t(s - 3000), load, 0.0);
            if s >= 10 && s % 4 == 0 {
                p.on_live(10.0);
            } else if s >= 10 {
                p.on_not_live();
            }
            if s % 12 == 0 {
                p.on_handled(120.0);
            }
        }
        let busy = Load {
            ready_agents: 0,
            busy_agents: 10,
            in_flight: 0,
        };
        for s in 400..1200 {
            p.tick(t(s - 3000), busy, 0.0);
            if s % 12 == 0 {
                p.on_handled(120.0);
            }
        }
        for i in 0..lives * 4 {
            if i % 4 == 0 {
                p.on_live(10.0);
            } else {
                p.on_not_live();
            }
        }
        p
    }

    #[test]
    fn predictive_dials_more_than_one_per_agent_when_few_answer_and_brakes_on_abandons() {
        let mut p = learned(400);
        assert!((p.live_rate() - 0.25).abs() < 0.02, "{}", p.live_rate());
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
        let braked = p.clone().tick(t(0), load, 0.027);
        assert!(
            braked < eager,
            "an abandon rate near the cap brakes the pace: {braked} vs {eager}"
        );
        assert_eq!(
            p.clone().tick(t(0), load, 0.05),
            4,
            "over the cap it is progressive"
        );
        assert_eq!(
            p.tick(
                t(1),
                Load {
                    ready_agents: 4,
                    busy_agents: 6,
                    in_flight: 40
                },
                0.0
            ),
            0,
            "never beyond max_level lines per agent"
        );
    }

    #[test]
    fn recent_dials_count_as_answers_to_come() {
        let mut p = learned(400);
        let load = Load {
            ready_agents: 4,
            busy_agents: 6,
            in_flight: 0,
        };
        let first = p.tick(t(0), load, 0.0);
        assert!(first > 4);
        // The same agents a second later, the first dials still ringing: few or no more.
        let again = p.tick(
            t(1),
            Load {
                in_flight: first,
                ..load
            },
            0.0,
        );
        assert!(again <= 1, "{first} then {again}");
        // A minute later they are history and the same load gets the same answer.
        let later = p.tick(t(120), load, 0.0);
        assert_eq!(later, first);
    }

    #[test]
    fn big_teams_get_more_lines_per_free_agent_than_small_ones() {
        let mut small = learned(400);
        let mut big = small.clone();
        let per_free = |n: u32, ready: u32| n as f64 / ready as f64;
        let s = small.tick(
            t(0),
            Load {
                ready_agents: 2,
                busy_agents: 8,
                in_flight: 0,
            },
            0.0,
        );
        let b = big.tick(
            t(0),
            Load {
                ready_agents: 40,
                busy_agents: 160,
                in_flight: 0,
            },
            0.0,
        );
        assert!(
            per_free(b, 40) > per_free(s, 2),
            "200 agents: {b} calls for 40 free; 10 agents: {s} for 2"
        );
    }

    #[test]
    fn abandons_beyond_the_prediction_lower_the_pace() {
        let mut calm = learned(400);
        let mut burnt = calm.clone();
        let load = Load {
            ready_agents: 10,
            busy_agents: 90,
            in_flight: 0,
        };
        calm.tick(t(0), load, 0.0);
        burnt.tick(t(0), load, 0.0);
        for _ in 0..300 {
            calm.on_live(10.0);
            burnt.on_live(10.0);
        }
        for _ in 0..30 {
            burnt.on_abandon();
        }
        assert!(burnt.calibration() > calm.calibration());
        let (c, b) = (calm.tick(t(200), load, 0.0), burnt.tick(t(200), load, 0.0));
        assert!(b < c, "calibrated down: {b} vs {c}");
    }

    #[test]
    fn the_supply_model_matches_hand_computed_cases() {
        // No busy agents: S = ready exactly; E[(Poisson(1) - 1)+] = 1/e.
        let s = Supply::new(1, 0, 0.5);
        assert!((s.overflow(1.0) - (-1.0f64).exp()).abs() < 1e-12);
        // Nobody free: every live answer is lost.
        let s = Supply::new(0, 3, 0.0);
        assert!((s.risk(2.5) - 1.0).abs() < 1e-12);
        // S = Binomial(1, 0.5), D ~ Poisson(1): E = 0.5 x 1 + 0.5 x 1/e.
        let s = Supply::new(0, 1, 0.5);
        let want = 0.5 + 0.5 * (-1.0f64).exp();
        assert!((s.overflow(1.0) - want).abs() < 1e-12);
        // Thousands of agents neither overflow nor underflow.
        let s = Supply::new(0, 5000, 0.1);
        let r = s.risk(400.0);
        assert!(r.is_finite() && r < 0.01, "{r}");
        assert!(s.risk(600.0) > 0.1);
    }
}
