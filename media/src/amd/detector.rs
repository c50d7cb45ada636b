//! The detector: VAD, cadence, beep and fax stages combined, in the two modes.
//!
//! Frame flow (every 20 ms block of 160 samples):
//!
//! 1. level (mean absolute amplitude) → [`Vad`] → voiced?
//! 2. voiced frames → [`GoertzelBank`] → [`ToneTracker`] (steady tone confirmed after
//!    `beep_min_ms`).
//! 3. While analysing:
//!    - a confirmed tone before any word at a fax frequency is held as a fax candidate:
//!      `fax_min_ms` of it → `fax` / `FAX`; if it stops earlier it was a beep;
//!    - any other confirmed tone is a beep → machine, cause `BEEP`;
//!    - otherwise the frame goes to the [`Cadence`]: human / machine / dead air / too long.
//! 4. In [`Mode::Enable`] a machine is reported at once (`machine_start`). In
//!    [`Mode::DetectMessageEnd`] the detector keeps listening: a beep gives
//!    `machine_end_beep`, `end_silence_ms` of silence `machine_end_silence`, and
//!    `machine_detection_timeout_ms` from the start `machine_end_other`.
//!
//! Dead air (`INITIALSILENCE`) is `unknown`, as Twilio reports silence, where Asterisk says
//! MACHINE.
//!
//! The detector owns fixed-size state only: [`Detector::push`] never allocates.

use crate::amd::cadence::{Cadence, CadenceEvent};
use crate::amd::fax;
use crate::amd::tone::{GoertzelBank, ToneEvent, ToneTracker};
use crate::amd::vad::{frame_level, Vad};
use crate::amd::{AnsweredBy, Beep, Cause, Mode, Params, Verdict, FRAME_MS, FRAME_SAMPLES};
use core::time::Duration;

const SAMPLE: Duration = Duration::from_micros(125);
const FRAME: Duration = Duration::from_millis(FRAME_MS as u64);

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Analyzing,
    /// A fax-frequency tone before any speech, not yet long enough.
    FaxCandidate,
    /// Machine known; waiting for the end of its message.
    AwaitingEnd {
        cause: Cause,
    },
    Done,
}

/// The answering-machine detector of one call. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Detector {
    mode: Mode,
    fax_min: Duration,
    end_silence: Duration,
    machine_timeout: Duration,
    total_analysis: Duration,
    vad: Vad,
    cadence: Cadence,
    bank: GoertzelBank,
    tone: ToneTracker,
    buf: [i16; FRAME_SAMPLES],
    buf_len: usize,
    origin: Option<Duration>,
    state: State,
    /// End of the last voiced frame that was not part of a tone run.
    last_voice_end: Option<Duration>,
    /// `last_voice_end` when the current tone run began.
    voice_end_before_tone: Option<Duration>,
    silence_since: Option<Duration>,
    prev_voiced: bool,
    /// Frequency of the fax-candidate tone.
    tone_hz: f32,
    verdict: Option<Verdict>,
}

impl Detector {
    /// A detector for one call.
    pub fn new(params: &Params, mode: Mode) -> Self {
        let ms = |v: u32| Duration::from_millis(u64::from(v));
        Detector {
            mode,
            fax_min: ms(params.fax_min_ms),
            end_silence: ms(params.end_silence_ms.max(FRAME_MS)),
            machine_timeout: ms(params.machine_detection_timeout_ms),
            total_analysis: ms(params.total_analysis_time_ms.max(FRAME_MS)),
            vad: Vad::new(params.silence_threshold, params.vad_margin_db),
            cadence: Cadence::new(params),
            bank: GoertzelBank::new(),
            tone: ToneTracker::new(params.beep_min_ms, params.tone_purity),
            buf: [0; FRAME_SAMPLES],
            buf_len: 0,
            origin: None,
            state: State::Analyzing,
            last_voice_end: None,
            voice_end_before_tone: None,
            silence_since: None,
            tone_hz: 0.0,
            prev_voiced: false,
            verdict: None,
        }
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The verdict, once reached.
    pub fn verdict(&self) -> Option<Verdict> {
        self.verdict
    }

    /// In detect-message-end mode: a machine was recognised and the detector now waits for
    /// the beep or the end of the greeting (the verdict comes then).
    pub fn awaiting_message_end(&self) -> bool {
        matches!(self.state, State::AwaitingEnd { .. })
    }

    /// Whether a verdict was reached (further input is ignored).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Feeds PCM samples at 8 kHz, normally one 20 ms frame (160 samples); `at` is the stream
    /// time of the first sample. Any slice length works: samples are gathered into 20 ms
    /// blocks. Returns the verdict when it is reached (once); afterwards returns `None`.
    pub fn push(&mut self, samples: &[i16], at: Duration) -> Option<Verdict> {
        if self.state == State::Done {
            return None;
        }
        if self.origin.is_none() {
            self.origin = Some(at);
        }
        let mut offset = 0;
        while offset < samples.len() {
            let take = (FRAME_SAMPLES - self.buf_len).min(samples.len() - offset);
            self.buf[self.buf_len..self.buf_len + take]
                .copy_from_slice(&samples[offset..offset + take]);
            self.buf_len += take;
            offset += take;
            if self.buf_len == FRAME_SAMPLES {
                self.buf_len = 0;
                let end = at + SAMPLE * offset as u32;
                let start = end.saturating_sub(FRAME);
                if let Some(v) = self.process_frame(start, end) {
                    return Some(v);
                }
            }
        }
        None
    }

    /// The next time at which [`Detector::handle_timeout`] would decide even without audio
    /// (the analysis or message-end timeout), or `None` when done or not started.
    pub fn deadline(&self) -> Option<Duration> {
        let origin = self.origin?;
        match self.state {
            State::Analyzing | State::FaxCandidate => Some(origin + self.total_analysis),
            State::AwaitingEnd { .. } => Some(origin + self.machine_timeout),
            State::Done => None,
        }
    }

    /// Lets time pass without audio (for example RTP stopped): decides `unknown` / `TOOLONG`
    /// or `machine_end_other` once [`Detector::deadline`] is reached.
    pub fn handle_timeout(&mut self, now: Duration) -> Option<Verdict> {
        let deadline = self.deadline()?;
        if now < deadline {
            return None;
        }
        Some(match self.state {
            State::AwaitingEnd { cause } => {
                self.finish_machine(AnsweredBy::MachineEndOther, cause, now, None)
            }
            _ => self.decide(AnsweredBy::Unknown, Cause::TooLong, now, None, None),
        })
    }

    /// The audio ended (call hung up, end of file) at `at`: decides from what is known.
    /// Analysing → `unknown` / `HANGUP`; a fax candidate long enough → `fax`, else a beep;
    /// awaiting the message end → `machine_end_silence` if the audio was silent at the end,
    /// else `machine_end_other`.
    pub fn finish(&mut self, at: Duration) -> Option<Verdict> {
        match self.state {
            State::Done => None,
            State::Analyzing => {
                Some(self.decide(AnsweredBy::Unknown, Cause::Hangup, at, None, None))
            }
            State::FaxCandidate => {
                let len = at.saturating_sub(self.tone.run_start());
                Some(self.tone_ended(len, at))
            }
            State::AwaitingEnd { cause } => {
                let by = if self.silence_since.is_some() {
                    AnsweredBy::MachineEndSilence
                } else {
                    AnsweredBy::MachineEndOther
                };
                let ge = self.last_voice_end;
                Some(self.decide(by, cause, at, ge, None))
            }
        }
    }

    fn decide(
        &mut self,
        answered_by: AnsweredBy,
        cause: Cause,
        at: Duration,
        greeting_end_at: Option<Duration>,
        beep: Option<Beep>,
    ) -> Verdict {
        let v = Verdict {
            answered_by,
            cause,
            decision_at: at,
            greeting_end_at,
            beep,
        };
        self.state = State::Done;
        self.verdict = Some(v);
        v
    }

    fn finish_machine(
        &mut self,
        by: AnsweredBy,
        cause: Cause,
        at: Duration,
        beep: Option<Beep>,
    ) -> Verdict {
        let ge = if beep.is_some() {
            self.voice_end_before_tone
        } else {
            self.last_voice_end
        };
        self.decide(by, cause, at, ge, beep)
    }

    /// A confirmed beep: what it means in the current state.
    fn on_beep(&mut self, hz: f32, start: Duration, at: Duration) -> Option<Verdict> {
        let beep = Some(Beep {
            hz: hz.round().max(0.0) as u32,
            start,
        });
        match self.state {
            State::Analyzing | State::FaxCandidate => {
                let by = match self.mode {
                    Mode::Enable => AnsweredBy::MachineStart,
                    Mode::DetectMessageEnd => AnsweredBy::MachineEndBeep,
                };
                Some(self.finish_machine(by, Cause::Beep, at, beep))
            }
            State::AwaitingEnd { cause } => {
                Some(self.finish_machine(AnsweredBy::MachineEndBeep, cause, at, beep))
            }
            State::Done => None,
        }
    }

    /// A fax candidate tone stopped after `len`.
    fn tone_ended(&mut self, len: Duration, at: Duration) -> Verdict {
        if len >= self.fax_min {
            return self.decide(AnsweredBy::Fax, Cause::Fax, at, None, None);
        }
        // Too short for a fax: it was a beep without a greeting.
        let hz = self.tone_hz;
        let start = self.tone.run_start();
        self.state = State::Analyzing;
        match self.on_beep(hz, start, at) {
            Some(v) => v,
            None => self.decide(AnsweredBy::Unknown, Cause::Beep, at, None, None),
        }
    }

    fn process_frame(&mut self, start: Duration, end: Duration) -> Option<Verdict> {
        let frame = self.buf;
        let level = frame_level(&frame);
        let voiced = self.vad.process(level);
        let analysis = if voiced {
            self.bank.analyze(&frame)
        } else {
            None
        };
        let was_in_run = self.tone.in_run();
        let event = self.tone.update(analysis, level, start);
        if self.tone.in_run() && !was_in_run {
            self.voice_end_before_tone = self.last_voice_end;
        }
        // Speech ends at the last run of two or more voiced frames outside a tone: a single
        // voiced frame just before a beep is its partial first frame.
        if voiced && !self.tone.in_run() && self.prev_voiced {
            self.last_voice_end = Some(end);
        }
        self.prev_voiced = voiced && !self.tone.in_run();
        if voiced {
            self.silence_since = None;
        } else if self.silence_since.is_none() {
            self.silence_since = Some(start);
        }

        match self.state {
            State::Done => None,
            State::FaxCandidate => match event {
                Some(ToneEvent::Continues { len, .. }) if len >= self.fax_min => {
                    Some(self.decide(AnsweredBy::Fax, Cause::Fax, end, None, None))
                }
                Some(ToneEvent::Ended { len, .. }) => Some(self.tone_ended(len, end)),
                _ => None,
            },
            State::Analyzing => {
                if let Some(ToneEvent::Confirmed { hz, start: ts }) = event {
                    if !self.cadence.heard_speech() && fax::classify(hz).is_some() {
                        self.state = State::FaxCandidate;
                        self.tone_hz = hz;
                        return None;
                    }
                    return self.on_beep(hz, ts, end);
                }
                match self.cadence.step(voiced)? {
                    CadenceEvent::Human { greeting_end_ms } => {
                        let origin = self.origin.unwrap_or_default();
                        let ge = origin + Duration::from_millis(u64::from(greeting_end_ms));
                        Some(self.decide(AnsweredBy::Human, Cause::Human, end, Some(ge), None))
                    }
                    CadenceEvent::Machine(cause) => match self.mode {
                        Mode::Enable => {
                            Some(self.decide(AnsweredBy::MachineStart, cause, end, None, None))
                        }
                        Mode::DetectMessageEnd => {
                            self.state = State::AwaitingEnd { cause };
                            None
                        }
                    },
                    CadenceEvent::InitialSilence => Some(self.decide(
                        AnsweredBy::Unknown,
                        Cause::InitialSilence,
                        end,
                        None,
                        None,
                    )),
                    CadenceEvent::TooLong => {
                        Some(self.decide(AnsweredBy::Unknown, Cause::TooLong, end, None, None))
                    }
                }
            }
            State::AwaitingEnd { cause } => {
                if let Some(ToneEvent::Confirmed { hz, start: ts }) = event {
                    return self.on_beep(hz, ts, end);
                }
                let origin = self.origin.unwrap_or_default();
                if let Some(since) = self.silence_since {
                    if end.saturating_sub(since) >= self.end_silence {
                        return Some(self.finish_machine(
                            AnsweredBy::MachineEndSilence,
                            cause,
                            end,
                            None,
                        ));
                    }
                }
                if end.saturating_sub(origin) >= self.machine_timeout {
                    return Some(self.finish_machine(
                        AnsweredBy::MachineEndOther,
                        cause,
                        end,
                        None,
                    ));
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amd::testutil::{mix, noise_frame, speech_frame, tone_frame, Rng};

    #[derive(Clone, Copy)]
    enum Seg {
        Silence(u32),
        Speech(u32),
        Tone(f32, u32),
    }

    /// Frames of a scripted call over a light noise floor (each segment in ms).
    fn call(script: &[Seg]) -> Vec<[i16; FRAME_SAMPLES]> {
        let mut rng = Rng::new(42);
        let mut frames = Vec::new();
        for &seg in script {
            let (ms, kind) = match seg {
                Seg::Silence(ms) => (ms, 0),
                Seg::Speech(ms) => (ms, 1),
                Seg::Tone(_, ms) => (ms, 2),
            };
            for i in 0..(ms / FRAME_MS) as usize {
                let noise = noise_frame(&mut rng, 100.0);
                let n = frames.len();
                frames.push(match (kind, seg) {
                    (1, _) => mix(&speech_frame(&mut rng, i, 8000.0, 0.0), &noise),
                    (2, Seg::Tone(hz, _)) => mix(&tone_frame(n, hz, 6000.0), &noise),
                    _ => noise,
                });
            }
        }
        frames
    }

    fn run(mode: Mode, frames: &[[i16; FRAME_SAMPLES]]) -> Option<Verdict> {
        let mut d = Detector::new(&Params::default(), mode);
        for (n, f) in frames.iter().enumerate() {
            if let Some(v) = d.push(f, Duration::from_millis(20 * n as u64)) {
                assert!(d.is_done());
                assert_eq!(d.push(f, Duration::from_millis(20 * n as u64 + 20)), None);
                return Some(v);
            }
        }
        None
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn short_greeting_then_silence_is_human_in_both_modes() {
        let frames = call(&[Seg::Silence(600), Seg::Speech(500), Seg::Silence(3000)]);
        for mode in [Mode::Enable, Mode::DetectMessageEnd] {
            let v = run(mode, &frames).unwrap();
            assert_eq!((v.answered_by, v.cause), (AnsweredBy::Human, Cause::Human));
            let ge = v.greeting_end_at.unwrap();
            assert!(ge >= ms(1060) && ge <= ms(1160), "{v:?}");
            assert_eq!(v.decision_at, ge + ms(800));
        }
    }

    #[test]
    fn long_greeting_is_machine_start_in_enable_mode() {
        let frames = call(&[Seg::Silence(300), Seg::Speech(4000), Seg::Silence(2000)]);
        let v = run(Mode::Enable, &frames).unwrap();
        assert_eq!(v.answered_by, AnsweredBy::MachineStart);
        assert_eq!(v.cause, Cause::LongGreeting);
        assert!(v.decision_at < ms(2000), "{v:?}");
    }

    #[test]
    fn message_end_waits_for_the_beep() {
        for hz in [400.0, 600.0, 800.0, 1000.0, 1400.0, 2000.0] {
            let frames = call(&[
                Seg::Silence(300),
                Seg::Speech(4000),
                Seg::Silence(500),
                Seg::Tone(hz, 400),
                Seg::Silence(2000),
            ]);
            let v = run(Mode::DetectMessageEnd, &frames).unwrap();
            assert_eq!(v.answered_by, AnsweredBy::MachineEndBeep, "{hz}: {v:?}");
            assert_eq!(v.cause, Cause::LongGreeting);
            let beep = v.beep.unwrap();
            assert!((beep.hz as f32 - hz).abs() <= 5.0, "{hz}: {v:?}");
            assert_eq!(beep.start, ms(4800));
            assert!(v.decision_at - beep.start <= ms(150), "{v:?}");
            let ge = v.greeting_end_at.unwrap();
            assert!(ge >= ms(4200) && ge <= ms(4340), "{v:?}");
        }
    }

    #[test]
    fn message_end_by_silence_without_beep() {
        let frames = call(&[Seg::Silence(300), Seg::Speech(4000), Seg::Silence(3000)]);
        let v = run(Mode::DetectMessageEnd, &frames).unwrap();
        assert_eq!(v.answered_by, AnsweredBy::MachineEndSilence);
        let ge = v.greeting_end_at.unwrap();
        assert!(
            v.decision_at >= ge + ms(1500) && v.decision_at <= ge + ms(1560),
            "{v:?}"
        );
    }

    #[test]
    fn fax_tones_before_speech_are_fax() {
        for hz in [1100.0, 2100.0] {
            let frames = call(&[Seg::Silence(500), Seg::Tone(hz, 3000), Seg::Silence(1000)]);
            for mode in [Mode::Enable, Mode::DetectMessageEnd] {
                let v = run(mode, &frames).unwrap();
                assert_eq!(
                    (v.answered_by, v.cause),
                    (AnsweredBy::Fax, Cause::Fax),
                    "{hz}"
                );
                assert!(v.decision_at <= ms(500 + 420), "{v:?}");
            }
        }
        // A CNG burst of 500 ms is enough.
        let frames = call(&[
            Seg::Silence(800),
            Seg::Tone(1100.0, 500),
            Seg::Silence(3000),
        ]);
        assert_eq!(
            run(Mode::Enable, &frames).unwrap().answered_by,
            AnsweredBy::Fax
        );
    }

    #[test]
    fn dead_air_is_unknown_and_timeouts_work_without_audio() {
        let frames = call(&[Seg::Silence(6000)]);
        let v = run(Mode::Enable, &frames).unwrap();
        assert_eq!(
            (v.answered_by, v.cause),
            (AnsweredBy::Unknown, Cause::InitialSilence)
        );
        assert_eq!(v.decision_at, ms(2500));

        let mut d = Detector::new(&Params::default(), Mode::Enable);
        assert_eq!(d.deadline(), None);
        d.push(&[0; FRAME_SAMPLES], ms(1000));
        assert_eq!(d.deadline(), Some(ms(6000)));
        assert_eq!(d.handle_timeout(ms(5999)), None);
        let v = d.handle_timeout(ms(6000)).unwrap();
        assert_eq!(
            (v.answered_by, v.cause),
            (AnsweredBy::Unknown, Cause::TooLong)
        );
        assert_eq!(d.deadline(), None);
    }

    #[test]
    fn any_chunking_gives_the_same_verdict() {
        let frames = call(&[Seg::Silence(400), Seg::Speech(600), Seg::Silence(2000)]);
        let pcm: Vec<i16> = frames.iter().flatten().copied().collect();
        let whole = run(Mode::Enable, &frames).unwrap();
        for chunk in [1usize, 7, 80, 159, 161, 480] {
            let mut d = Detector::new(&Params::default(), Mode::Enable);
            let mut got = None;
            for (i, c) in pcm.chunks(chunk).enumerate() {
                let at = Duration::from_micros(125 * (i * chunk) as u64);
                if let Some(v) = d.push(c, at) {
                    got = Some(v);
                    break;
                }
            }
            assert_eq!(got, Some(whole), "chunk {chunk}");
        }
    }

    #[test]
    fn finish_decides_from_what_is_known() {
        let mut d = Detector::new(&Params::default(), Mode::DetectMessageEnd);
        let frames = call(&[Seg::Speech(3000)]);
        for (n, f) in frames.iter().enumerate() {
            assert_eq!(d.push(f, ms(20 * n as u64)), None);
        }
        let v = d.finish(ms(3000)).unwrap();
        assert!(matches!(
            v.answered_by,
            AnsweredBy::MachineEndOther | AnsweredBy::MachineEndSilence
        ));
        assert!(
            matches!(v.cause, Cause::LongGreeting | Cause::MaxWords),
            "{v:?}"
        );
        assert_eq!(d.finish(ms(3000)), None);
        let mut d = Detector::new(&Params::default(), Mode::Enable);
        assert_eq!(d.finish(ms(0)).unwrap().cause, Cause::Hangup);
    }
}
