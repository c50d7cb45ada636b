//! A simulated call centre driving the real [`Pacer`] and [`AbandonWindow`]: virtual time,
//! a seeded random population of leads, agents, ringing, answering machines and AMD errors,
//! talk and wrap-up times, and the 2-second abandon rule. `switchboard simulate` prints its
//! reports side by side per dial mode.
//!
//! The model (times in seconds, all configurable in [`Population`]):
//!
//! - A dial is answered with probability `answer_rate`, after a ring time (3–25 s); otherwise
//!   it rings out at `no_answer_timeout` (30 s). An answer is a person with probability
//!   `live_share`, else a machine.
//! - AMD gives its verdict `amd_human_secs` after a person's answer (~0.8 s) and
//!   `amd_machine_secs` after a machine's (0.8–2.5 s). It judges a person a machine with
//!   probability `amd_human_as_machine` (that person is hung up on and lost) and a machine a
//!   person with probability `amd_machine_as_human` (it is routed like a person: it costs an
//!   agent `false_human_secs`, or it is abandoned).
//! - A call judged human goes to the longest-idle ready agent at once; if none is ready it
//!   waits, and one not connected within `abandon_after` (2 s) of the verdict is abandoned. The
//!   engine cannot tell a machine judged human from a person, so the abandon rate is abandons
//!   over calls judged human, as the pacer's window sees it.
//! - A connected person talks for `talk` then the agent wraps up for `wrap_up`.
//! - Preview: each agent dials its own next lead and waits through the ringing itself; the
//!   agent hears whether a person or a machine answered (no AMD, no abandons).
//! - Progressive, power and predictive: the pacer is asked once per virtual second how many
//!   calls to start, given ready and busy agents, calls in flight (dialed, no verdict yet) and
//!   the window's abandon rate; it learns from every verdict and every handled call.
//!
//! Every dial draws the same number of random values in the same order whatever happens to
//! it, so runs of different modes with one seed dial the same leads with the same outcomes
//! (common random numbers): differences between modes are the pacing, not luck.
//!
//! The run is event-driven (a heap of events in milliseconds plus a tick every second), so 200
//! agents over 8 hours take a fraction of a second in a release build.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::abandon::{AbandonWindow, Window};
use super::pacer::{DialMode, Load, Pacer, PacerConfig};
use crate::Error;

/// A distribution of durations, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Dist {
    /// Always `secs`.
    Fixed { secs: f64 },
    /// Uniform between `min` and `max`.
    Uniform { min: f64, max: f64 },
    /// `min` plus an exponential, so that the mean is `mean`.
    Exponential { mean: f64, min: f64 },
    /// `min` plus a log-normal of shape `sigma`, so that the mean is `mean`.
    LogNormal { mean: f64, sigma: f64, min: f64 },
}

impl Dist {
    /// The distribution's mean.
    pub fn mean(&self) -> f64 {
        match *self {
            Dist::Fixed { secs } => secs,
            Dist::Uniform { min, max } => (min + max) / 2.0,
            Dist::Exponential { mean, .. } | Dist::LogNormal { mean, .. } => mean,
        }
    }

    fn check(&self, field: &str) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::field(field, m));
        let ok = |x: f64| x.is_finite() && (0.0..=86_400.0).contains(&x);
        match *self {
            Dist::Fixed { secs } if !ok(secs) => bad("must be between 0 and 86400 seconds"),
            Dist::Uniform { min, max } if !ok(min) || !ok(max) || min > max => {
                bad("needs 0 <= min <= max <= 86400 seconds")
            }
            Dist::Exponential { mean, min } if !ok(mean) || !ok(min) || mean < min => {
                bad("needs 0 <= min <= mean <= 86400 seconds")
            }
            Dist::LogNormal { mean, sigma, min }
                if !ok(mean) || !ok(min) || mean < min || !(0.0..=3.0).contains(&sigma) =>
            {
                bad("needs 0 <= min <= mean <= 86400 seconds and 0 <= sigma <= 3")
            }
            _ => Ok(()),
        }
    }

    fn sample(&self, rng: &mut Rng) -> f64 {
        // Two uniforms per draw whatever the kind, so streams stay aligned.
        let (u, v) = (rng.unit(), rng.unit());
        match *self {
            Dist::Fixed { secs } => secs,
            Dist::Uniform { min, max } => min + (max - min) * u,
            Dist::Exponential { mean, min } => min - (mean - min) * (1.0 - u).ln(),
            Dist::LogNormal { mean, sigma, min } => {
                let m = mean - min;
                if m <= 0.0 {
                    return min;
                }
                // Box-Muller; 1 - u is in (0, 1].
                let z = (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos();
                min + (m.ln() - sigma * sigma / 2.0 + sigma * z).exp()
            }
        }
    }
}

/// The people called and the team calling them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Population {
    /// Logged-in agents.
    pub agents: usize,
    /// Share of dials answered at all (by a person or a machine).
    pub answer_rate: f64,
    /// Share of answers that are a person (the rest are machines).
    pub live_share: f64,
    /// AMD error: share of people judged machines (hung up on: lost).
    pub amd_human_as_machine: f64,
    /// AMD error: share of machines judged people (routed to an agent or abandoned).
    pub amd_machine_as_human: f64,
    /// Time from dial to answer, for answered calls.
    pub ring: Dist,
    /// When an unanswered call is given up.
    pub no_answer_timeout: f64,
    /// Time from a person's answer to the AMD verdict.
    pub amd_human_secs: Dist,
    /// Time from a machine's answer to the AMD verdict.
    pub amd_machine_secs: Dist,
    /// A person's conversation with an agent.
    pub talk: Dist,
    /// The agent's wrap-up after a conversation.
    pub wrap_up: Dist,
    /// Agent time lost on a machine judged a person.
    pub false_human_secs: Dist,
}

impl Default for Population {
    /// 10 agents, 30 % of dials answered, 3 in 4 answers a person; AMD loses 2 % of people
    /// and passes 5 % of machines; talk log-normal with a 150 s mean (at least 10 s); wrap-up
    /// 3 s plus an exponential, 15 s mean.
    fn default() -> Self {
        Self {
            agents: 10,
            answer_rate: 0.3,
            live_share: 0.75,
            amd_human_as_machine: 0.02,
            amd_machine_as_human: 0.05,
            ring: Dist::Uniform {
                min: 3.0,
                max: 25.0,
            },
            no_answer_timeout: 30.0,
            amd_human_secs: Dist::Uniform { min: 0.7, max: 0.9 },
            amd_machine_secs: Dist::Uniform { min: 0.8, max: 2.5 },
            talk: Dist::LogNormal {
                mean: 150.0,
                sigma: 0.7,
                min: 10.0,
            },
            wrap_up: Dist::Exponential {
                mean: 15.0,
                min: 3.0,
            },
            false_human_secs: Dist::Uniform { min: 3.0, max: 8.0 },
        }
    }
}

impl Population {
    fn check(&self) -> Result<(), Error> {
        if self.agents == 0 || self.agents > 100_000 {
            return Err(Error::field("agents", "must be between 1 and 100000"));
        }
        for (name, p) in [
            ("answer_rate", self.answer_rate),
            ("live_share", self.live_share),
            ("amd_human_as_machine", self.amd_human_as_machine),
            ("amd_machine_as_human", self.amd_machine_as_human),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(Error::field(name, "must be a share between 0 and 1"));
            }
        }
        if !(self.no_answer_timeout.is_finite() && (1.0..=600.0).contains(&self.no_answer_timeout))
        {
            return Err(Error::field(
                "no_answer_timeout",
                "must be between 1 and 600 seconds",
            ));
        }
        self.ring.check("ring")?;
        self.amd_human_secs.check("amd_human_secs")?;
        self.amd_machine_secs.check("amd_machine_secs")?;
        self.talk.check("talk")?;
        self.wrap_up.check("wrap_up")?;
        self.false_human_secs.check("false_human_secs")
    }
}

/// One simulation run.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub population: Population,
    pub mode: DialMode,
    /// Lines per ready agent in power mode.
    pub dial_ratio: f64,
    /// The abandon-rate cap the predictive pacer holds (0..=0.03 in campaigns).
    pub max_abandon_rate: f64,
    /// The rolling window of the abandon rate.
    pub window: Window,
    /// Virtual hours to run.
    pub hours: f64,
    pub seed: u64,
    /// Seconds after the verdict within which an agent must be connected.
    pub abandon_after: f64,
}

impl SimConfig {
    /// Defaults: dial ratio 2, cap 3 %, a 30-day window, 8 hours, seed 1, 2 s.
    pub fn new(population: Population, mode: DialMode) -> Self {
        Self {
            population,
            mode,
            dial_ratio: 2.0,
            max_abandon_rate: 0.03,
            window: Window::Days30,
            hours: 8.0,
            seed: 1,
            abandon_after: 2.0,
        }
    }

    /// Every field in range, or the first one that is not.
    pub fn check(&self) -> Result<(), Error> {
        self.population.check()?;
        if !(self.dial_ratio.is_finite() && (0.0..=20.0).contains(&self.dial_ratio)) {
            return Err(Error::field("dial_ratio", "must be between 0 and 20"));
        }
        if !(0.0..=1.0).contains(&self.max_abandon_rate) {
            return Err(Error::field("max_abandon_rate", "must be between 0 and 1"));
        }
        if !(self.hours.is_finite() && self.hours > 0.0 && self.hours <= 24.0 * 31.0) {
            return Err(Error::field(
                "hours",
                "must be more than 0 and at most 744 (31 days)",
            ));
        }
        if !(self.abandon_after.is_finite() && (0.0..=60.0).contains(&self.abandon_after)) {
            return Err(Error::field(
                "abandon_after",
                "must be between 0 and 60 seconds",
            ));
        }
        Ok(())
    }
}

/// What a run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimReport {
    pub mode: &'static str,
    pub agents: usize,
    pub hours: f64,
    /// Calls started.
    pub dials: u64,
    /// Calls answered (people and machines).
    pub answers: u64,
    /// Answered by a person.
    pub humans: u64,
    /// Answered by a machine.
    pub machines: u64,
    /// Judged human by AMD (people and machines taken for people): the abandon rate's base.
    pub live: u64,
    /// People judged machines and hung up on.
    pub humans_lost_to_amd: u64,
    /// Calls judged human connected to an agent.
    pub connected: u64,
    /// Of those, machines taken for people.
    pub machines_to_agents: u64,
    /// Calls judged human not connected within `abandon_after`.
    pub abandoned: u64,
    /// `abandoned / live` over the run.
    pub abandon_rate: f64,
    /// The highest rolling-window rate seen once the window held 100 live answers.
    pub peak_window_abandon_rate: f64,
    /// Minutes agents spent talking with people, per agent-hour.
    pub talk_minutes_per_agent_hour: f64,
    /// Conversations with people per agent-hour.
    pub calls_per_agent_hour: f64,
    /// Dials per agent-hour.
    pub dials_per_agent_hour: f64,
    /// Share of agent time in calls: talking, wrapping up, on machines taken for people.
    pub utilization: f64,
    /// Minutes per agent-hour spent waiting for a call (ready and idle).
    pub idle_minutes_per_agent_hour: f64,
    /// Minutes per agent-hour spent ringing leads themselves (preview only).
    pub dialing_minutes_per_agent_hour: f64,
    /// From a person's answer to the agent, over connected calls, in seconds (preview: 0).
    pub time_to_connect_p50: f64,
    pub time_to_connect_p95: f64,
}

/// Runs one simulation; an out-of-range setting is a validation error naming the field.
pub fn simulate(cfg: &SimConfig) -> Result<SimReport, Error> {
    cfg.check()?;
    Ok(Sim::new(cfg).run())
}

/// SplitMix64: small, fast, and good enough for a simulation.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn ms(secs: f64) -> u64 {
    (secs.max(0.0) * 1000.0).round() as u64
}

/// One dialed lead, everything about it drawn at dial time.
#[derive(Debug, Clone)]
struct Call {
    dialed: u64,
    answered: bool,
    human: bool,
    judged_human: bool,
    /// Answer time (answered) or give-up time (not answered).
    answer_at: u64,
    verdict_at: u64,
    talk: u64,
    wrap: u64,
    waste: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// The call rang out.
    NoAnswer(usize),
    /// AMD's verdict on an answered call.
    Verdict(usize),
    /// The agent finished wrap-up (or, in preview, a dial that led nowhere).
    AgentFree(usize),
    /// The oldest waiting calls' time is up.
    Deadline,
}

struct Sim<'a> {
    cfg: &'a SimConfig,
    rng: Rng,
    t0: DateTime<Utc>,
    end: u64,
    pacer: Pacer,
    window: AbandonWindow,
    events: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    seq: u64,
    calls: Vec<Call>,
    /// Ready agents, longest idle first, with the time they became ready.
    ready: VecDeque<(usize, u64)>,
    /// Calls judged human waiting for an agent, oldest first, with their deadline.
    waiting: VecDeque<(usize, u64)>,
    in_flight: u32,
    /// When each agent's current call began.
    busy_since: Vec<u64>,
    connect_ms: Vec<u64>,
    r: Counts,
}

#[derive(Default)]
struct Counts {
    dials: u64,
    answers: u64,
    humans: u64,
    machines: u64,
    live: u64,
    humans_lost_to_amd: u64,
    connected: u64,
    machines_to_agents: u64,
    abandoned: u64,
    conversations: u64,
    talk_ms: u64,
    handling_ms: u64,
    idle_ms: u64,
    dialing_ms: u64,
    peak_window: f64,
}

impl<'a> Sim<'a> {
    fn new(cfg: &'a SimConfig) -> Self {
        let pc = PacerConfig::new(cfg.mode, cfg.dial_ratio, cfg.max_abandon_rate);
        Self {
            cfg,
            rng: Rng(cfg.seed),
            t0: DateTime::from_timestamp(1_704_722_400, 0).unwrap_or_default(),
            end: ms(cfg.hours * 3600.0),
            pacer: Pacer::new(pc),
            window: AbandonWindow::new(cfg.window),
            events: BinaryHeap::new(),
            seq: 0,
            calls: Vec::new(),
            ready: VecDeque::new(),
            waiting: VecDeque::new(),
            in_flight: 0,
            busy_since: vec![0; cfg.population.agents],
            connect_ms: Vec::new(),
            r: Counts::default(),
        }
    }

    fn at(&mut self, time: u64, ev: Ev) {
        self.seq += 1;
        self.events.push(Reverse((time, self.seq, ev)));
    }

    fn clock(&self, now: u64) -> DateTime<Utc> {
        self.t0 + Duration::milliseconds(now as i64)
    }

    /// Draws the next lead's fate: always the same number of draws.
    fn draw_call(&mut self, now: u64) -> Call {
        let pop = &self.cfg.population;
        let rng = &mut self.rng;
        let (u_answer, u_human, amd_error) = (rng.unit(), rng.unit(), rng.unit());
        let answered = u_answer < pop.answer_rate;
        let human = answered && u_human < pop.live_share;
        let judged_human = answered
            && if human {
                amd_error >= pop.amd_human_as_machine
            } else {
                amd_error < pop.amd_machine_as_human
            };
        let ring = ms(pop.ring.sample(rng));
        let amd_h = ms(pop.amd_human_secs.sample(rng));
        let amd_m = ms(pop.amd_machine_secs.sample(rng));
        let talk = ms(pop.talk.sample(rng));
        let wrap = ms(pop.wrap_up.sample(rng));
        let waste = ms(pop.false_human_secs.sample(rng));
        let answer_at = if answered {
            now + ring
        } else {
            now + ms(pop.no_answer_timeout)
        };
        Call {
            dialed: now,
            answered,
            human,
            judged_human,
            answer_at,
            verdict_at: answer_at + if human { amd_h } else { amd_m },
            talk,
            wrap,
            waste,
        }
    }

    fn count_answer(&mut self, c: usize) {
        let call = &self.calls[c];
        if call.answered {
            self.r.answers += 1;
            if call.human {
                self.r.humans += 1;
            } else {
                self.r.machines += 1;
            }
        }
    }

    /// The agent's busy time up to the end of the run.
    fn occupy(&mut self, agent: usize, now: u64, talk: u64, rest: u64) {
        let end = self.end;
        let clip = |from: u64, len: u64| (from + len).min(end).saturating_sub(from.min(end));
        self.r.talk_ms += clip(now, talk);
        self.r.handling_ms += clip(now, talk + rest);
        self.busy_since[agent] = now;
        self.at(now + talk + rest, Ev::AgentFree(agent));
    }

    fn connect(&mut self, agent: usize, c: usize, now: u64) {
        let call = self.calls[c].clone();
        self.r.connected += 1;
        self.connect_ms.push(now - call.answer_at);
        if call.human {
            self.r.conversations += 1;
            self.occupy(agent, now, call.talk, call.wrap);
        } else {
            self.r.machines_to_agents += 1;
            self.occupy(agent, now, 0, call.waste);
        }
    }

    /// Preview: the agent dials its next lead and waits through the ringing.
    fn preview_dial(&mut self, agent: usize, now: u64) {
        if now >= self.end {
            return;
        }
        let call = self.draw_call(now);
        self.r.dials += 1;
        self.calls.push(call.clone());
        if call.answer_at < self.end {
            self.count_answer(self.calls.len() - 1);
        }
        let end = self.end;
        if call.human && call.answer_at < end {
            self.r.dialing_ms += call.answer_at - now;
            self.r.connected += 1;
            self.r.live += 1;
            self.r.conversations += 1;
            self.connect_ms.push(0);
            self.occupy(agent, call.answer_at, call.talk, call.wrap);
        } else {
            // Rang out, or a machine the agent recognized (in AMD's time) and hung up on.
            let done = if call.answered {
                call.verdict_at
            } else {
                call.answer_at
            };
            self.r.dialing_ms += done.min(end) - now;
            self.at(done, Ev::AgentFree(agent));
        }
    }

    fn handle(&mut self, now: u64, ev: Ev) {
        match ev {
            Ev::NoAnswer(_) => {
                self.in_flight -= 1;
                self.pacer.on_not_live();
            }
            Ev::Verdict(c) => {
                self.in_flight -= 1;
                self.count_answer(c);
                let call = self.calls[c].clone();
                if !call.judged_human {
                    if call.human {
                        self.r.humans_lost_to_amd += 1;
                    }
                    self.pacer.on_not_live();
                    return;
                }
                self.r.live += 1;
                self.window.record_live(self.clock(now));
                self.pacer
                    .on_live((call.verdict_at - call.dialed) as f64 / 1000.0);
                if let Some((agent, since)) = self.ready.pop_front() {
                    self.r.idle_ms += now - since;
                    self.connect(agent, c, now);
                } else {
                    let deadline = now + ms(self.cfg.abandon_after);
                    self.waiting.push_back((c, deadline));
                    self.at(deadline, Ev::Deadline);
                }
            }
            Ev::AgentFree(agent) => {
                if self.cfg.mode == DialMode::Preview {
                    self.preview_dial(agent, now);
                    return;
                }
                self.pacer
                    .on_handled((now - self.busy_since[agent]) as f64 / 1000.0);
                if let Some((c, _)) = self.waiting.pop_front() {
                    self.connect(agent, c, now);
                } else {
                    self.ready.push_back((agent, now));
                }
            }
            Ev::Deadline => {
                while self.waiting.front().is_some_and(|w| w.1 <= now) {
                    self.waiting.pop_front();
                    self.r.abandoned += 1;
                    self.window.record_abandon(self.clock(now));
                    self.pacer.on_abandon();
                }
            }
        }
    }

    /// The pacer's turn: once per virtual second.
    fn tick(&mut self, now: u64) {
        let clock = self.clock(now);
        let (live, abandoned) = self.window.counts(clock);
        let rate = if live == 0 {
            0.0
        } else {
            abandoned as f64 / live as f64
        };
        if live >= 100 {
            self.r.peak_window = self.r.peak_window.max(rate);
        }
        let ready = self.ready.len() as u32;
        let load = Load {
            ready_agents: ready,
            busy_agents: self.cfg.population.agents as u32 - ready,
            in_flight: self.in_flight,
        };
        let n = self.pacer.tick(clock, load, rate);
        for _ in 0..n {
            let call = self.draw_call(now);
            self.r.dials += 1;
            self.in_flight += 1;
            let c = self.calls.len();
            let (time, ev) = if call.answered {
                (call.verdict_at, Ev::Verdict(c))
            } else {
                (call.answer_at, Ev::NoAnswer(c))
            };
            self.calls.push(call);
            self.at(time, ev);
        }
    }

    fn run(mut self) -> SimReport {
        let agents = self.cfg.population.agents;
        for a in 0..agents {
            if self.cfg.mode == DialMode::Preview {
                self.preview_dial(a, 0);
            } else {
                self.ready.push_back((a, 0));
            }
        }
        let mut tick = 0u64;
        loop {
            while let Some(&Reverse((t, _, ev))) = self.events.peek() {
                if t > tick || t >= self.end {
                    break;
                }
                self.events.pop();
                self.handle(t, ev);
            }
            if tick >= self.end {
                break;
            }
            self.tick(tick);
            tick += 1000;
        }
        for &(_, since) in &self.ready {
            self.r.idle_ms += self.end.saturating_sub(since);
        }
        self.report()
    }

    fn report(mut self) -> SimReport {
        let r = &self.r;
        let agent_hours = self.cfg.population.agents as f64 * self.end as f64 / 3_600_000.0;
        let per_agent_hour = |x: f64| {
            if agent_hours > 0.0 {
                x / agent_hours
            } else {
                0.0
            }
        };
        let minutes = |ms: u64| ms as f64 / 60_000.0;
        self.connect_ms.sort_unstable();
        let pct = |q: f64| {
            if self.connect_ms.is_empty() {
                0.0
            } else {
                let i = ((self.connect_ms.len() - 1) as f64 * q).round() as usize;
                self.connect_ms[i] as f64 / 1000.0
            }
        };
        SimReport {
            mode: self.cfg.mode.as_str(),
            agents: self.cfg.population.agents,
            hours: self.cfg.hours,
            dials: r.dials,
            answers: r.answers,
            humans: r.humans,
            machines: r.machines,
            live: r.live,
            humans_lost_to_amd: r.humans_lost_to_amd,
            connected: r.connected,
            machines_to_agents: r.machines_to_agents,
            abandoned: r.abandoned,
            abandon_rate: if r.live == 0 {
                0.0
            } else {
                r.abandoned as f64 / r.live as f64
            },
            peak_window_abandon_rate: r.peak_window,
            talk_minutes_per_agent_hour: per_agent_hour(minutes(r.talk_ms)),
            calls_per_agent_hour: per_agent_hour(r.conversations as f64),
            dials_per_agent_hour: per_agent_hour(r.dials as f64),
            utilization: per_agent_hour(minutes(r.handling_ms)) / 60.0,
            idle_minutes_per_agent_hour: per_agent_hour(minutes(r.idle_ms)),
            dialing_minutes_per_agent_hour: per_agent_hour(minutes(r.dialing_ms)),
            time_to_connect_p50: pct(0.5),
            time_to_connect_p95: pct(0.95),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_have_their_means_and_floors() {
        let mut rng = Rng(3);
        for d in [
            Dist::Fixed { secs: 5.0 },
            Dist::Uniform {
                min: 3.0,
                max: 25.0,
            },
            Dist::Exponential {
                mean: 15.0,
                min: 3.0,
            },
            Dist::LogNormal {
                mean: 150.0,
                sigma: 0.7,
                min: 10.0,
            },
        ] {
            let n = 200_000;
            let (mut sum, mut lo, mut hi) = (0.0, f64::INFINITY, 0.0f64);
            for _ in 0..n {
                let x = d.sample(&mut rng);
                sum += x;
                lo = lo.min(x);
                hi = hi.max(x);
            }
            let mean = sum / n as f64;
            assert!((mean - d.mean()).abs() < 0.01 * d.mean(), "{d:?}: {mean}");
            match d {
                Dist::Fixed { secs } => assert_eq!((lo, hi), (secs, secs)),
                Dist::Uniform { min, max } => assert!(lo >= min && hi < max),
                Dist::Exponential { min, .. } | Dist::LogNormal { min, .. } => {
                    assert!(lo >= min && hi > 3.0 * d.mean(), "{d:?}: a long tail")
                }
            }
        }
    }

    #[test]
    fn every_dial_draws_the_same_number_of_values() {
        // Two lead streams from one seed, one under a population where nothing answers:
        // after the same number of dials both streams are at the same place.
        let cfg = SimConfig::new(Population::default(), DialMode::Progressive);
        let mut silent = cfg.clone();
        silent.population.answer_rate = 0.0;
        let (mut a, mut b) = (Sim::new(&cfg), Sim::new(&silent));
        for i in 0..100 {
            a.draw_call(i);
            b.draw_call(i);
        }
        assert_eq!(a.rng.next_u64(), b.rng.next_u64());
    }
}
