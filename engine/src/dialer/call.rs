//! One outbound dialer call as a sans-IO state machine.
//!
//! ```text
//! Dialing ─18x─▶ Ringing ─2xx─▶ Screening (AMD) ─human/unknown─▶ Connecting ─agent─▶ Talking ─BYE─▶ WrapUp ─disposition─▶ Done
//!    │              │                 │                              │ 2 s, no agent
//!    │              │                 │ machine                      ▼
//!    │              │                 ├─ voicemail set ─▶ Voicemail (play after the beep) ─▶ Done
//!    │              │                 └─ none ─────────────────────────────────────────────▶ Done
//!    │              └ dial timeout (never under 15 s of ringing) ─▶ Cancel ─▶ Done (no_answer)
//!    └ 4xx-6xx / transport error ──────────────────────────────────────────────────────────▶ Done
//!                                                            Abandoning (message) ─▶ Done
//! ```
//!
//! The driver feeds [`Input`]s with `now` (a monotonic [`Duration`] since any origin) and acts on
//! the [`Action`]s returned; [`CallFsm::deadline`] says when to call [`CallFsm::on_timeout`].
//! An abandon is a live person (or an unknown answer treated as one) not connected to an agent
//! within [`CallTimers::abandon_after`] of the verdict.

use core::time::Duration;

/// The dialer's dispositions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// A person talked to an agent.
    Answered,
    Voicemail,
    NoAnswer,
    Busy,
    Failed,
    Abandoned,
    InvalidNumber,
    Dnc,
}

impl Disposition {
    pub const ALL: [Disposition; 8] = [
        Disposition::Answered,
        Disposition::Voicemail,
        Disposition::NoAnswer,
        Disposition::Busy,
        Disposition::Failed,
        Disposition::Abandoned,
        Disposition::InvalidNumber,
        Disposition::Dnc,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Disposition::Answered => "answered",
            Disposition::Voicemail => "voicemail",
            Disposition::NoAnswer => "no_answer",
            Disposition::Busy => "busy",
            Disposition::Failed => "failed",
            Disposition::Abandoned => "abandoned",
            Disposition::InvalidNumber => "invalid_number",
            Disposition::Dnc => "dnc",
        }
    }

    /// The call row's `status` for a call that ended with this disposition.
    pub const fn call_status(self) -> &'static str {
        match self {
            Disposition::Busy => "busy",
            Disposition::NoAnswer => "no-answer",
            Disposition::Failed | Disposition::InvalidNumber => "failed",
            _ => "completed",
        }
    }

    /// What the retry rules make of it.
    pub const fn attempt_result(self) -> super::retry::AttemptResult {
        use super::retry::AttemptResult as R;
        match self {
            Disposition::Answered => R::Connected,
            Disposition::Voicemail => R::Voicemail,
            Disposition::NoAnswer => R::NoAnswer,
            Disposition::Busy => R::Busy,
            Disposition::Failed => R::Failed,
            Disposition::Abandoned => R::Abandoned,
            // A number that does not exist will not exist in an hour either.
            Disposition::InvalidNumber => R::DoNotCall,
            Disposition::Dnc => R::DoNotCall,
        }
    }
}

/// What answered, as far as the dialer cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answerer {
    Human,
    Machine,
    Unknown,
}

impl Answerer {
    pub const fn as_str(self) -> &'static str {
        match self {
            Answerer::Human => "human",
            Answerer::Machine => "machine",
            Answerer::Unknown => "unknown",
        }
    }
}

/// Timers and choices of one call (from the campaign and the engine settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallTimers {
    /// Cancel an unanswered call after this long (campaign setting, default 30 s)...
    pub dial_timeout: Duration,
    /// ...but never before it rang this long (15 s: a person needs time to reach the phone).
    pub min_ring: Duration,
    /// A live person must reach an agent within this long of the verdict (legal limit 2 s).
    pub abandon_after: Duration,
    /// AMD gives up after this long and the answer counts as unknown.
    pub amd_max: Duration,
    /// For a machine with a voicemail message: the longest wait for the beep / message end.
    pub message_end_max: Duration,
    /// The agent's wrap-up ends by itself after this long.
    pub wrap_up: Duration,
}

impl Default for CallTimers {
    fn default() -> Self {
        Self {
            dial_timeout: Duration::from_secs(30),
            min_ring: Duration::from_secs(15),
            abandon_after: Duration::from_secs(2),
            amd_max: Duration::from_secs(5),
            message_end_max: Duration::from_secs(30),
            wrap_up: Duration::from_secs(60),
        }
    }
}

/// Per-call choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallPlan {
    pub timers: CallTimers,
    pub amd: bool,
    /// A voicemail message is configured (play it after the beep).
    pub voicemail: bool,
    /// Unknown AMD answers go to an agent (default) or are hung up on.
    pub unknown_as_human: bool,
}

/// Where the call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Dialing,
    Ringing,
    /// Answered; AMD is listening.
    Screening,
    /// A live person waits for an agent.
    Connecting,
    Talking,
    /// No agent in time: the abandon message plays, then the call ends.
    Abandoning,
    /// A machine: waiting for the beep, then playing the message.
    Voicemail,
    /// The lead hung up (or was hung up); the agent writes the disposition.
    WrapUp,
    Done,
}

impl Phase {
    /// The call row's `status` while in this phase.
    pub const fn call_status(self) -> &'static str {
        match self {
            Phase::Dialing => "initiated",
            Phase::Ringing => "ringing",
            Phase::Screening | Phase::Connecting | Phase::Abandoning | Phase::Voicemail => {
                "answered"
            }
            Phase::Talking => "in-progress",
            Phase::WrapUp | Phase::Done => "completed",
        }
    }
}

/// What the driver tells the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// 180/183.
    Ringing,
    /// 2xx.
    Answered,
    /// The INVITE failed or the call ended before an answer, with the SIP outcome's disposition.
    Failed(Disposition),
    /// AMD's class (only while screening or waiting for the message end).
    Verdict(Answerer),
    /// For a machine: the beep or the end of the greeting was found.
    MessageEnd,
    /// An agent was reserved and the audio is bridged.
    AgentBridged,
    /// The prompt being played finished.
    PromptDone,
    /// The lead's side hung up (BYE) or the leg failed after the answer.
    RemoteHangup,
    /// The agent's leg dropped while talking.
    AgentLost,
    /// The agent (or the supervisor) ended the call from the API with a disposition.
    AgentEnded,
    /// The agent posted the wrap-up disposition.
    WrapUpDone,
}

/// What the driver must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Feed received audio to AMD (from now on).
    StartAmd,
    /// Reserve the longest-idle ready agent and bridge; answer with `AgentBridged`. Keep trying
    /// until the machine says otherwise.
    SeekAgent,
    /// Stop looking for an agent (abandoned or ended).
    StopSeeking,
    /// Play the abandon message to the lead; answer with `PromptDone`.
    PlayAbandon,
    /// Play the voicemail message; answer with `PromptDone`.
    PlayVoicemail,
    /// Start recording both legs.
    StartRecording,
    /// Send CANCEL (before the answer).
    Cancel,
    /// Send BYE to the lead.
    HangupLead,
    /// Release the agent into wrap-up (the lead is gone).
    AgentToWrapUp,
    /// The agent is free again.
    ReleaseAgent,
    /// The phase changed: persist (write-behind) and emit an event.
    Phase(Phase),
    /// The call has a final disposition (emitted once).
    Finished(Disposition),
}

/// Actions of one step (never more than a handful).
pub type Actions = arrayvec_lite::Actions;

/// A tiny fixed-capacity list, so a step never allocates.
pub mod arrayvec_lite {
    use super::Action;

    const CAP: usize = 8;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Actions {
        items: [Option<Action>; CAP],
        len: usize,
    }

    impl Actions {
        pub(super) fn new() -> Self {
            Self {
                items: [None; CAP],
                len: 0,
            }
        }

        pub(super) fn push(&mut self, a: Action) {
            debug_assert!(self.len < CAP, "too many actions in one step");
            if self.len < CAP {
                self.items[self.len] = Some(a);
                self.len += 1;
            }
        }

        pub fn len(&self) -> usize {
            self.len
        }

        pub fn is_empty(&self) -> bool {
            self.len == 0
        }

        pub fn contains(&self, a: &Action) -> bool {
            self.iter().any(|x| x == *a)
        }

        pub fn iter(&self) -> impl Iterator<Item = Action> + '_ {
            self.items[..self.len].iter().flatten().copied()
        }
    }
}

/// The call.
#[derive(Debug, Clone)]
pub struct CallFsm {
    plan: CallPlan,
    phase: Phase,
    started: Duration,
    ringing_since: Option<Duration>,
    answered_at: Option<Duration>,
    verdict_at: Option<Duration>,
    answerer: Option<Answerer>,
    bridged_at: Option<Duration>,
    disposition: Option<Disposition>,
    wrap_up_since: Option<Duration>,
    /// A CANCEL / BYE was sent; waiting for the SIP side to confirm the end.
    hanging_up: bool,
}

impl CallFsm {
    /// A call whose INVITE leaves at `now`.
    pub fn new(plan: CallPlan, now: Duration) -> Self {
        Self {
            plan,
            phase: Phase::Dialing,
            started: now,
            ringing_since: None,
            answered_at: None,
            verdict_at: None,
            answerer: None,
            bridged_at: None,
            disposition: None,
            wrap_up_since: None,
            hanging_up: false,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn disposition(&self) -> Option<Disposition> {
        self.disposition
    }

    pub fn answerer(&self) -> Option<Answerer> {
        self.answerer
    }

    pub fn answered_at(&self) -> Option<Duration> {
        self.answered_at
    }

    pub fn verdict_at(&self) -> Option<Duration> {
        self.verdict_at
    }

    pub fn bridged_at(&self) -> Option<Duration> {
        self.bridged_at
    }

    /// True once the lead's side is over (the agent may still be in wrap-up).
    pub fn lead_gone(&self) -> bool {
        matches!(self.phase, Phase::WrapUp | Phase::Done)
    }

    /// When `on_timeout` must run next.
    pub fn deadline(&self) -> Option<Duration> {
        let t = &self.plan.timers;
        match self.phase {
            Phase::Dialing | Phase::Ringing if !self.hanging_up => {
                let by_timeout = self.started + t.dial_timeout;
                let by_ring = self.ringing_since.map(|r| r + t.min_ring);
                Some(match by_ring {
                    Some(r) => by_timeout.max(r),
                    // No 18x yet: the dial timeout alone (a silent network).
                    None => by_timeout,
                })
            }
            Phase::Screening => self.answered_at.map(|a| a + t.amd_max),
            Phase::Connecting => self.verdict_at.map(|v| v + t.abandon_after),
            Phase::Voicemail => self.answered_at.map(|a| a + t.message_end_max),
            Phase::WrapUp => self.wrap_up_since.map(|w| w + t.wrap_up),
            _ => None,
        }
    }

    fn enter(&mut self, phase: Phase, out: &mut Actions) {
        if self.phase != phase {
            self.phase = phase;
            out.push(Action::Phase(phase));
        }
    }

    fn finish(&mut self, d: Disposition, out: &mut Actions) {
        if self.disposition.is_none() {
            self.disposition = Some(d);
            out.push(Action::Finished(d));
        }
    }

    fn verdict(&mut self, who: Answerer, now: Duration, out: &mut Actions) {
        self.answerer = Some(who);
        self.verdict_at = Some(now);
        let live = match who {
            Answerer::Human => true,
            Answerer::Unknown => self.plan.unknown_as_human,
            Answerer::Machine => false,
        };
        if live {
            self.enter(Phase::Connecting, out);
            out.push(Action::SeekAgent);
        } else if who == Answerer::Machine && self.plan.voicemail {
            self.enter(Phase::Voicemail, out);
        } else {
            self.finish(
                if who == Answerer::Machine {
                    Disposition::Voicemail
                } else {
                    Disposition::Failed
                },
                out,
            );
            self.hanging_up = true;
            out.push(Action::HangupLead);
        }
    }

    /// One input.
    pub fn handle(&mut self, input: Input, now: Duration) -> Actions {
        let mut out = Actions::new();
        match (self.phase, input) {
            (Phase::Dialing, Input::Ringing) => {
                self.ringing_since = Some(now);
                self.enter(Phase::Ringing, &mut out);
            }
            (Phase::Ringing, Input::Ringing) => {}
            (Phase::Dialing | Phase::Ringing, Input::Answered) => {
                self.answered_at = Some(now);
                if self.hanging_up {
                    // CANCEL lost the race with the 200: the SIP layer sends ACK + BYE.
                    return out;
                }
                if self.plan.amd {
                    self.enter(Phase::Screening, &mut out);
                    out.push(Action::StartAmd);
                } else {
                    // Without AMD every answer is a person.
                    self.answerer = Some(Answerer::Human);
                    self.verdict_at = Some(now);
                    self.enter(Phase::Connecting, &mut out);
                    out.push(Action::SeekAgent);
                }
            }
            (Phase::Dialing | Phase::Ringing, Input::Failed(d)) => {
                let d = if self.hanging_up && d == Disposition::Failed {
                    Disposition::NoAnswer
                } else {
                    d
                };
                self.finish(d, &mut out);
                self.enter(Phase::Done, &mut out);
            }
            (Phase::Screening, Input::Verdict(who)) => self.verdict(who, now, &mut out),
            (Phase::Voicemail, Input::MessageEnd) if !self.hanging_up => {
                out.push(Action::PlayVoicemail);
            }
            (Phase::Voicemail, Input::PromptDone) => {
                self.finish(Disposition::Voicemail, &mut out);
                self.hanging_up = true;
                out.push(Action::HangupLead);
            }
            (Phase::Connecting, Input::AgentBridged) => {
                self.bridged_at = Some(now);
                self.enter(Phase::Talking, &mut out);
                out.push(Action::StartRecording);
            }
            (Phase::Abandoning, Input::PromptDone) => {
                self.hanging_up = true;
                out.push(Action::HangupLead);
            }
            (Phase::Talking, Input::AgentLost) => {
                // The person was connected: the call counts as answered.
                self.finish(Disposition::Answered, &mut out);
                self.hanging_up = true;
                out.push(Action::HangupLead);
                self.enter(Phase::Done, &mut out);
            }
            (Phase::Talking, Input::AgentEnded) => {
                self.finish(Disposition::Answered, &mut out);
                self.hanging_up = true;
                out.push(Action::HangupLead);
                out.push(Action::ReleaseAgent);
                self.enter(Phase::Done, &mut out);
            }
            (Phase::Talking, Input::RemoteHangup) => {
                self.finish(Disposition::Answered, &mut out);
                self.wrap_up_since = Some(now);
                out.push(Action::AgentToWrapUp);
                self.enter(Phase::WrapUp, &mut out);
            }
            (Phase::WrapUp, Input::WrapUpDone | Input::AgentEnded | Input::AgentLost) => {
                out.push(Action::ReleaseAgent);
                self.enter(Phase::Done, &mut out);
            }
            (
                Phase::Screening | Phase::Connecting | Phase::Abandoning | Phase::Voicemail,
                Input::RemoteHangup,
            ) => {
                let d = match self.phase {
                    // Hung up while AMD listened: a person who hung up, or a machine cut short.
                    Phase::Screening => match self.answerer {
                        Some(Answerer::Machine) => Disposition::Voicemail,
                        _ => Disposition::Abandoned,
                    },
                    Phase::Connecting | Phase::Abandoning => Disposition::Abandoned,
                    _ => Disposition::Voicemail,
                };
                if self.phase == Phase::Connecting {
                    out.push(Action::StopSeeking);
                }
                // A person who hangs up during screening before any verdict was never kept
                // waiting for an agent: count it abandoned only if a verdict was live.
                let d = if self.phase == Phase::Screening && self.verdict_at.is_none() {
                    Disposition::NoAnswer
                } else {
                    d
                };
                self.finish(d, &mut out);
                self.enter(Phase::Done, &mut out);
            }
            (_, Input::RemoteHangup) if self.hanging_up => {
                self.enter(Phase::Done, &mut out);
            }
            _ => {}
        }
        out
    }

    /// The deadline passed.
    pub fn on_timeout(&mut self, now: Duration) -> Actions {
        let mut out = Actions::new();
        if self.deadline().is_none_or(|d| now < d) {
            return out;
        }
        match self.phase {
            Phase::Dialing | Phase::Ringing => {
                self.hanging_up = true;
                out.push(Action::Cancel);
            }
            Phase::Screening => self.verdict(Answerer::Unknown, now, &mut out),
            Phase::Connecting => {
                out.push(Action::StopSeeking);
                self.finish(Disposition::Abandoned, &mut out);
                self.enter(Phase::Abandoning, &mut out);
                out.push(Action::PlayAbandon);
            }
            Phase::Voicemail => {
                // No beep found: leave the message anyway (the greeting must be over by now).
                self.hanging_up = true;
                out.push(Action::PlayVoicemail);
                // Only once: from now on the prompt's end hangs up.
                self.answered_at = Some(now + Duration::from_secs(3600));
            }
            Phase::WrapUp => {
                out.push(Action::ReleaseAgent);
                self.enter(Phase::Done, &mut out);
            }
            _ => {}
        }
        out
    }

    /// The SIP side confirmed the end after our CANCEL / BYE (or the leg died): close it.
    pub fn on_ended(&mut self, d: Disposition) -> Actions {
        let mut out = Actions::new();
        match self.phase {
            Phase::WrapUp | Phase::Done => {}
            Phase::Talking => {
                self.finish(Disposition::Answered, &mut out);
                out.push(Action::ReleaseAgent);
                self.enter(Phase::Done, &mut out);
            }
            _ => {
                if self.phase == Phase::Connecting {
                    out.push(Action::StopSeeking);
                }
                self.finish(d, &mut out);
                self.enter(Phase::Done, &mut out);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    fn plan(amd: bool, voicemail: bool) -> CallPlan {
        CallPlan {
            timers: CallTimers::default(),
            amd,
            voicemail,
            unknown_as_human: true,
        }
    }

    fn has(a: &Actions, x: Action) -> bool {
        a.contains(&x)
    }

    #[test]
    fn human_bridged_then_wrap_up() {
        let mut c = CallFsm::new(plan(true, false), s(0.0));
        assert!(has(
            &c.handle(Input::Ringing, s(1.0)),
            Action::Phase(Phase::Ringing)
        ));
        let a = c.handle(Input::Answered, s(5.0));
        assert!(has(&a, Action::StartAmd));
        assert_eq!(c.deadline(), Some(s(10.0)), "AMD gives up after 5 s");
        let a = c.handle(Input::Verdict(Answerer::Human), s(5.8));
        assert!(has(&a, Action::SeekAgent));
        assert_eq!(c.deadline(), Some(s(7.8)), "2 s to find an agent");
        let a = c.handle(Input::AgentBridged, s(6.0));
        assert!(has(&a, Action::StartRecording));
        assert_eq!(c.phase(), Phase::Talking);
        assert_eq!(c.deadline(), None);
        let a = c.handle(Input::RemoteHangup, s(60.0));
        assert!(has(&a, Action::AgentToWrapUp));
        assert!(has(&a, Action::Finished(Disposition::Answered)));
        assert_eq!(c.deadline(), Some(s(120.0)), "wrap-up timeout");
        let a = c.handle(Input::WrapUpDone, s(70.0));
        assert!(has(&a, Action::ReleaseAgent));
        assert_eq!(c.phase(), Phase::Done);
    }

    #[test]
    fn no_agent_within_two_seconds_is_an_abandon() {
        let mut c = CallFsm::new(plan(true, false), s(0.0));
        c.handle(Input::Answered, s(3.0));
        c.handle(Input::Verdict(Answerer::Human), s(4.0));
        assert!(c.on_timeout(s(5.99)).is_empty(), "not yet");
        let a = c.on_timeout(s(6.0));
        assert!(has(&a, Action::PlayAbandon));
        assert!(has(&a, Action::StopSeeking));
        assert!(has(&a, Action::Finished(Disposition::Abandoned)));
        // A late agent does not rescue it.
        assert!(c.handle(Input::AgentBridged, s(6.1)).is_empty());
        assert!(has(
            &c.handle(Input::PromptDone, s(12.0)),
            Action::HangupLead
        ));
        c.handle(Input::RemoteHangup, s(12.1));
        assert_eq!(c.phase(), Phase::Done);
        assert_eq!(c.disposition(), Some(Disposition::Abandoned));
    }

    #[test]
    fn machine_with_voicemail_waits_for_the_beep() {
        let mut c = CallFsm::new(plan(true, true), s(0.0));
        c.handle(Input::Answered, s(2.0));
        let a = c.handle(Input::Verdict(Answerer::Machine), s(4.0));
        assert!(!has(&a, Action::HangupLead));
        assert_eq!(c.phase(), Phase::Voicemail);
        assert!(has(
            &c.handle(Input::MessageEnd, s(8.0)),
            Action::PlayVoicemail
        ));
        let a = c.handle(Input::PromptDone, s(20.0));
        assert!(has(&a, Action::HangupLead));
        assert!(has(&a, Action::Finished(Disposition::Voicemail)));
        c.on_ended(Disposition::Voicemail);
        assert_eq!(c.phase(), Phase::Done);
    }

    #[test]
    fn machine_without_a_message_is_hung_up_at_once() {
        let mut c = CallFsm::new(plan(true, false), s(0.0));
        c.handle(Input::Answered, s(2.0));
        let a = c.handle(Input::Verdict(Answerer::Machine), s(3.5));
        assert!(has(&a, Action::HangupLead));
        assert!(has(&a, Action::Finished(Disposition::Voicemail)));
    }

    #[test]
    fn voicemail_without_beep_plays_at_the_limit_once() {
        let mut c = CallFsm::new(plan(true, true), s(0.0));
        c.handle(Input::Answered, s(2.0));
        c.handle(Input::Verdict(Answerer::Machine), s(4.0));
        assert_eq!(c.deadline(), Some(s(32.0)));
        assert!(has(&c.on_timeout(s(32.0)), Action::PlayVoicemail));
        assert!(c.on_timeout(s(33.0)).is_empty());
        assert!(has(
            &c.handle(Input::PromptDone, s(40.0)),
            Action::HangupLead
        ));
    }

    #[test]
    fn amd_timeout_is_unknown_and_goes_to_an_agent() {
        let mut c = CallFsm::new(plan(true, false), s(0.0));
        c.handle(Input::Answered, s(1.0));
        let a = c.on_timeout(s(6.0));
        assert!(has(&a, Action::SeekAgent));
        assert_eq!(c.answerer(), Some(Answerer::Unknown));
        let mut strict = CallFsm::new(
            CallPlan {
                unknown_as_human: false,
                ..plan(true, false)
            },
            s(0.0),
        );
        strict.handle(Input::Answered, s(1.0));
        assert!(has(&strict.on_timeout(s(6.0)), Action::HangupLead));
    }

    #[test]
    fn without_amd_every_answer_seeks_an_agent() {
        for unknown_as_human in [true, false] {
            let mut c = CallFsm::new(
                CallPlan {
                    unknown_as_human,
                    ..plan(false, false)
                },
                s(0.0),
            );
            let a = c.handle(Input::Answered, s(1.0));
            assert!(has(&a, Action::SeekAgent), "{unknown_as_human}");
            assert_eq!(c.phase(), Phase::Connecting);
            assert_eq!(c.verdict_at(), Some(s(1.0)));
        }
    }

    #[test]
    fn ringing_lasts_at_least_fifteen_seconds() {
        let timers = CallTimers {
            dial_timeout: s(20.0),
            ..CallTimers::default()
        };
        let mut c = CallFsm::new(
            CallPlan {
                timers,
                ..plan(true, false)
            },
            s(0.0),
        );
        assert_eq!(c.deadline(), Some(s(20.0)));
        c.handle(Input::Ringing, s(10.0));
        assert_eq!(
            c.deadline(),
            Some(s(25.0)),
            "15 s of ringing beats the 20 s timeout"
        );
        assert!(c.on_timeout(s(20.0)).is_empty());
        assert!(has(&c.on_timeout(s(25.0)), Action::Cancel));
        assert_eq!(c.deadline(), None);
        let a = c.handle(Input::Failed(Disposition::Failed), s(25.1));
        assert!(has(&a, Action::Finished(Disposition::NoAnswer)));
        assert_eq!(c.phase(), Phase::Done);
    }

    #[test]
    fn rejections_map_to_their_disposition() {
        for d in [
            Disposition::Busy,
            Disposition::InvalidNumber,
            Disposition::Failed,
        ] {
            let mut c = CallFsm::new(plan(true, false), s(0.0));
            let a = c.handle(Input::Failed(d), s(0.5));
            assert!(has(&a, Action::Finished(d)));
            assert_eq!(c.phase(), Phase::Done);
        }
    }

    #[test]
    fn hang_up_while_waiting_for_an_agent_is_an_abandon() {
        let mut c = CallFsm::new(plan(true, false), s(0.0));
        c.handle(Input::Answered, s(1.0));
        c.handle(Input::Verdict(Answerer::Human), s(2.0));
        let a = c.handle(Input::RemoteHangup, s(3.0));
        assert!(has(&a, Action::StopSeeking));
        assert!(has(&a, Action::Finished(Disposition::Abandoned)));
        // A hang-up before any verdict is not.
        let mut c = CallFsm::new(plan(true, false), s(0.0));
        c.handle(Input::Answered, s(1.0));
        let a = c.handle(Input::RemoteHangup, s(1.5));
        assert!(has(&a, Action::Finished(Disposition::NoAnswer)));
    }

    #[test]
    fn agent_lost_or_ended_while_talking() {
        let mut c = CallFsm::new(plan(false, false), s(0.0));
        c.handle(Input::Answered, s(1.0));
        c.handle(Input::AgentBridged, s(1.2));
        let a = c.handle(Input::AgentLost, s(30.0));
        assert!(has(&a, Action::HangupLead));
        assert!(has(&a, Action::Finished(Disposition::Answered)));
        assert_eq!(c.phase(), Phase::Done);
        let mut c = CallFsm::new(plan(false, false), s(0.0));
        c.handle(Input::Answered, s(1.0));
        c.handle(Input::AgentBridged, s(1.2));
        let a = c.handle(Input::AgentEnded, s(30.0));
        assert!(has(&a, Action::HangupLead));
        assert!(has(&a, Action::ReleaseAgent));
    }

    #[test]
    fn wrap_up_times_out() {
        let mut c = CallFsm::new(plan(false, false), s(0.0));
        c.handle(Input::Answered, s(1.0));
        c.handle(Input::AgentBridged, s(1.2));
        c.handle(Input::RemoteHangup, s(10.0));
        assert!(has(&c.on_timeout(s(70.0)), Action::ReleaseAgent));
        assert_eq!(c.phase(), Phase::Done);
    }

    #[test]
    fn cancel_racing_the_answer() {
        let mut c = CallFsm::new(plan(true, false), s(0.0));
        c.handle(Input::Ringing, s(1.0));
        assert!(has(&c.on_timeout(s(30.0)), Action::Cancel));
        // The 200 crossed our CANCEL: the SIP layer ACKs and BYEs; nothing to do here.
        assert!(c.handle(Input::Answered, s(30.05)).is_empty());
        let a = c.on_ended(Disposition::NoAnswer);
        assert!(has(&a, Action::Finished(Disposition::NoAnswer)));
        assert_eq!(c.phase(), Phase::Done);
    }

    #[test]
    fn every_disposition_has_a_status_and_retry_reading() {
        for d in Disposition::ALL {
            assert!(!d.as_str().is_empty());
            assert!(crate::calls::FINAL_STATUSES.contains(&d.call_status()));
            let _ = d.attempt_result();
        }
    }
}
