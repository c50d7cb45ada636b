//! Word / silence cadence: the Asterisk `app_amd` idea in a frame-driven state machine.
//!
//! Input: one voiced/silent flag per 20 ms frame. A run of voiced frames becomes a *word* once
//! it reaches `minimum_word_length_ms`; a word ends after `between_words_silence_ms` of
//! silence (shorter gaps belong to the word). The *greeting* starts with the first word.
//!
//! Decisions, checked on every frame:
//!
//! - no word yet and `initial_silence_ms` of unbroken silence → [`CadenceEvent::InitialSilence`];
//! - the `maximum_number_of_words`-th word starts → machine, [`Cause::MaxWords`];
//! - one word lasts `maximum_word_length_ms` → machine, [`Cause::MaxWordLength`];
//! - the greeting's speech time exceeds `greeting_ms` → machine, [`Cause::LongGreeting`];
//! - a greeting followed by `after_greeting_silence_ms` of silence → [`CadenceEvent::Human`];
//! - `total_analysis_time_ms` without a decision → [`CadenceEvent::TooLong`].
//!
//! Time is virtual: the machine counts frames; it knows nothing of clocks.

use crate::amd::{Cause, Params, FRAME_MS};

/// What the cadence decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CadenceEvent {
    /// A short greeting then silence. `greeting_end_ms` is when its last word ended, in
    /// milliseconds since the first frame.
    Human {
        /// End of the greeting's last word (ms since the first frame).
        greeting_end_ms: u32,
    },
    /// A machine, with the reason.
    Machine(Cause),
    /// Dead air.
    InitialSilence,
    /// No decision within the analysis time.
    TooLong,
}

/// The cadence state machine.
#[derive(Debug, Clone)]
pub struct Cadence {
    initial_silence: u32,
    greeting: u32,
    after_greeting_silence: u32,
    total_analysis_time: u32,
    minimum_word_length: u32,
    between_words_silence: u32,
    maximum_number_of_words: u32,
    maximum_word_length: u32,

    elapsed: u32,
    voice_run: u32,
    silence_run: u32,
    in_word: bool,
    word_len: u32,
    words: u32,
    greeting_voice: u32,
    last_word_end: u32,
    decided: bool,
}

impl Cadence {
    /// A cadence machine with the cadence fields of `params` (each at least one frame).
    pub fn new(params: &Params) -> Self {
        let ms = |v: u32| v.max(FRAME_MS);
        Cadence {
            initial_silence: ms(params.initial_silence_ms),
            greeting: ms(params.greeting_ms),
            after_greeting_silence: ms(params.after_greeting_silence_ms),
            total_analysis_time: ms(params.total_analysis_time_ms),
            minimum_word_length: ms(params.minimum_word_length_ms),
            between_words_silence: ms(params.between_words_silence_ms),
            maximum_number_of_words: params.maximum_number_of_words.max(1),
            maximum_word_length: ms(params.maximum_word_length_ms),
            elapsed: 0,
            voice_run: 0,
            silence_run: 0,
            in_word: false,
            word_len: 0,
            words: 0,
            greeting_voice: 0,
            last_word_end: 0,
            decided: false,
        }
    }

    /// Words counted so far.
    pub fn words(&self) -> u32 {
        self.words
    }

    /// Whether any word has been heard.
    pub fn heard_speech(&self) -> bool {
        self.words > 0
    }

    /// Milliseconds of audio seen.
    pub fn elapsed_ms(&self) -> u32 {
        self.elapsed
    }

    /// Advances one frame. Returns a decision at most once; later frames return `None`.
    pub fn step(&mut self, voiced: bool) -> Option<CadenceEvent> {
        if self.decided {
            return None;
        }
        let event = self.advance(voiced);
        if event.is_some() {
            self.decided = true;
        }
        event
    }

    fn advance(&mut self, voiced: bool) -> Option<CadenceEvent> {
        self.elapsed += FRAME_MS;
        if voiced {
            if self.in_word {
                // Short gaps inside a word belong to it.
                self.word_len += self.silence_run + FRAME_MS;
                self.greeting_voice += FRAME_MS;
            } else {
                self.voice_run += FRAME_MS;
                if self.voice_run >= self.minimum_word_length {
                    self.in_word = true;
                    self.word_len = self.voice_run;
                    self.words += 1;
                    self.greeting_voice += self.voice_run;
                    if self.words >= self.maximum_number_of_words {
                        return Some(CadenceEvent::Machine(Cause::MaxWords));
                    }
                }
            }
            self.silence_run = 0;
            if self.in_word && self.word_len >= self.maximum_word_length {
                return Some(CadenceEvent::Machine(Cause::MaxWordLength));
            }
            if self.words > 0 && self.greeting_voice > self.greeting {
                return Some(CadenceEvent::Machine(Cause::LongGreeting));
            }
        } else {
            self.silence_run += FRAME_MS;
            if self.silence_run >= self.between_words_silence {
                if self.in_word {
                    self.in_word = false;
                    self.last_word_end = self.elapsed - self.silence_run;
                }
                self.voice_run = 0;
            }
            if self.words == 0 && self.silence_run >= self.initial_silence {
                return Some(CadenceEvent::InitialSilence);
            }
            if self.words > 0 && !self.in_word && self.silence_run >= self.after_greeting_silence {
                return Some(CadenceEvent::Human {
                    greeting_end_ms: self.last_word_end,
                });
            }
        }
        if self.elapsed >= self.total_analysis_time {
            return Some(CadenceEvent::TooLong);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a script of (voiced, milliseconds) segments; returns the event and its time.
    fn run(params: &Params, script: &[(bool, u32)]) -> Option<(CadenceEvent, u32)> {
        let mut c = Cadence::new(params);
        for &(voiced, ms) in script {
            for _ in 0..ms / FRAME_MS {
                if let Some(e) = c.step(voiced) {
                    return Some((e, c.elapsed_ms()));
                }
            }
        }
        None
    }

    const V: bool = true;
    const S: bool = false;

    #[test]
    fn short_hello_then_silence_is_human_after_the_greeting_silence() {
        let p = Params::default();
        let got = run(&p, &[(S, 600), (V, 500), (S, 3000)]);
        assert_eq!(
            got,
            Some((
                CadenceEvent::Human {
                    greeting_end_ms: 1100
                },
                1100 + 800
            ))
        );
    }

    #[test]
    fn hello_pause_hello_with_long_pause_is_human_at_the_first() {
        let p = Params::default();
        let got = run(&p, &[(S, 400), (V, 400), (S, 1200), (V, 400), (S, 2000)]);
        assert_eq!(
            got,
            Some((
                CadenceEvent::Human {
                    greeting_end_ms: 800
                },
                1600
            ))
        );
    }

    #[test]
    fn long_continuous_greeting_is_a_machine() {
        let p = Params {
            maximum_number_of_words: 100,
            ..Params::default()
        };
        let got = run(&p, &[(S, 300), (V, 4000)]);
        assert_eq!(
            got,
            Some((CadenceEvent::Machine(Cause::LongGreeting), 300 + 1520))
        );
    }

    #[test]
    fn third_word_is_maxwords() {
        let p = Params::asterisk();
        // Words of 200 ms separated by 100 ms gaps (> between_words_silence 50).
        let got = run(&p, &[(V, 200), (S, 100), (V, 200), (S, 100), (V, 200)]);
        assert_eq!(got, Some((CadenceEvent::Machine(Cause::MaxWords), 700)));
    }

    #[test]
    fn gaps_shorter_than_between_words_silence_do_not_split_words() {
        let p = Params {
            between_words_silence_ms: 100,
            greeting_ms: 10_000,
            total_analysis_time_ms: 10_000,
            ..Params::default()
        };
        // 20 ms gaps never end the word, so this is one word.
        let mut script = Vec::new();
        for _ in 0..20 {
            script.push((V, 200));
            script.push((S, 20));
        }
        script.push((S, 2000));
        let got = run(&p, &script);
        assert!(
            matches!(got, Some((CadenceEvent::Human { .. }, _))),
            "{got:?}"
        );
    }

    #[test]
    fn very_long_word_is_maxwordlength() {
        let p = Params {
            maximum_word_length_ms: 1000,
            greeting_ms: 10_000,
            ..Params::default()
        };
        let got = run(&p, &[(S, 100), (V, 3000)]);
        assert_eq!(
            got,
            Some((CadenceEvent::Machine(Cause::MaxWordLength), 1100))
        );
    }

    #[test]
    fn dead_air_is_initial_silence_and_blips_are_not_words() {
        let p = Params::default();
        assert_eq!(
            run(&p, &[(S, 5000)]),
            Some((CadenceEvent::InitialSilence, 2500))
        );
        // A 60 ms click resets the silence run but is no word.
        assert_eq!(
            run(&p, &[(S, 1000), (V, 60), (S, 5000)]),
            Some((CadenceEvent::InitialSilence, 1060 + 2500))
        );
    }

    #[test]
    fn undecided_until_total_analysis_time_is_too_long() {
        let p = Params {
            initial_silence_ms: 100_000,
            ..Params::default()
        };
        // Repeated clicks: never a word, never long silence.
        let mut script = Vec::new();
        for _ in 0..100 {
            script.push((V, 40));
            script.push((S, 200));
        }
        assert_eq!(run(&p, &script), Some((CadenceEvent::TooLong, 5000)));
    }

    #[test]
    fn decides_once() {
        let mut c = Cadence::new(&Params::default());
        let events = (0..500).filter_map(|_| c.step(false)).count();
        assert_eq!(events, 1);
    }
}
