//! Answering-machine detection (AMD): is the party that answered an outbound call a person, a
//! voicemail system, a fax machine, or nobody?
//!
//! The [`Detector`] is a sans-IO state machine: feed it 20 ms frames of 8 kHz PCM with their
//! stream times ([`Detector::push`]); it returns a [`Verdict`] once, with a Twilio-compatible
//! [`AnsweredBy`] and an Asterisk-style [`Cause`]. It never reads a clock and never allocates
//! after construction, so a call can be replayed in virtual time.
//!
//! Stages, one file each:
//!
//! - [`vad`]: an adaptive energy voice-activity detector that tracks the noise floor
//!   (minimum statistics) on top of the fixed `silence_threshold`.
//! - [`cadence`]: the word / silence cadence state machine with Asterisk `app_amd`'s parameter
//!   meanings (initial silence, greeting, after-greeting silence, words, word lengths, total
//!   analysis time).
//! - [`tone`]: a Goertzel bank over 400–2100 Hz and a tracker that confirms a steady single tone
//!   (a voicemail beep) after `beep_min_ms`, rejecting speech by its tone purity.
//! - [`fax`]: fax CNG (1100 Hz) and CED (2100 Hz) recognition on top of the tone tracker.
//! - [`detector`]: the combination and the two modes ([`Mode::Enable`],
//!   [`Mode::DetectMessageEnd`]).
//! - [`params`]: the per-campaign [`Params`] with documented defaults.
//! - [`resample`] and [`cli`]: offline helpers for `switchboard amd classify` / `amd eval`
//!   (WAV files of any rate, labelled corpora). These allocate; the live path does not use them.

pub mod cadence;
pub mod cli;
pub mod detector;
pub mod fax;
pub mod params;
pub mod resample;
pub mod tone;
pub mod vad;

use core::fmt;
use core::str::FromStr;
use core::time::Duration;

pub use detector::Detector;
pub use params::Params;

/// Sample rate the detector works at.
pub const SAMPLE_RATE: u32 = 8000;
/// Samples in one 20 ms analysis frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// Duration of one analysis frame in milliseconds.
pub const FRAME_MS: u32 = 20;

/// Who answered, with Twilio's `AnsweredBy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnsweredBy {
    /// A person.
    Human,
    /// A machine, reported as soon as known ([`Mode::Enable`]).
    MachineStart,
    /// A machine whose greeting ended with a beep ([`Mode::DetectMessageEnd`]).
    MachineEndBeep,
    /// A machine whose greeting ended with silence ([`Mode::DetectMessageEnd`]).
    MachineEndSilence,
    /// A machine whose greeting end was not found before the timeout or the end of the audio.
    MachineEndOther,
    /// A fax machine (CNG or CED tone).
    Fax,
    /// Undecided: silence, or no decision within the analysis time.
    Unknown,
}

impl AnsweredBy {
    /// The Twilio spelling (`machine_end_beep`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            AnsweredBy::Human => "human",
            AnsweredBy::MachineStart => "machine_start",
            AnsweredBy::MachineEndBeep => "machine_end_beep",
            AnsweredBy::MachineEndSilence => "machine_end_silence",
            AnsweredBy::MachineEndOther => "machine_end_other",
            AnsweredBy::Fax => "fax",
            AnsweredBy::Unknown => "unknown",
        }
    }

    /// The coarse class (human, machine, fax, unknown) used by evaluation.
    pub const fn class(self) -> Class {
        match self {
            AnsweredBy::Human => Class::Human,
            AnsweredBy::MachineStart
            | AnsweredBy::MachineEndBeep
            | AnsweredBy::MachineEndSilence
            | AnsweredBy::MachineEndOther => Class::Machine,
            AnsweredBy::Fax => Class::Fax,
            AnsweredBy::Unknown => Class::Unknown,
        }
    }
}

impl fmt::Display for AnsweredBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The four classes a verdict falls in, for labels and the confusion matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// A person.
    Human,
    /// Any `machine_*` verdict.
    Machine,
    /// A fax machine.
    Fax,
    /// Undecided / dead air.
    Unknown,
}

impl Class {
    /// All classes, in confusion-matrix order.
    pub const ALL: [Class; 4] = [Class::Human, Class::Machine, Class::Fax, Class::Unknown];

    /// Lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Class::Human => "human",
            Class::Machine => "machine",
            Class::Fax => "fax",
            Class::Unknown => "unknown",
        }
    }

    /// Index into [`Class::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Parses a label: a class name or any Twilio `AnsweredBy` value (`machine_end_beep` is
    /// [`Class::Machine`]). Case-insensitive.
    pub fn from_label(label: &str) -> Option<Class> {
        let l = label.trim().to_ascii_lowercase();
        match l.as_str() {
            "human" => Some(Class::Human),
            "machine"
            | "machine_start"
            | "machine_end_beep"
            | "machine_end_silence"
            | "machine_end_other" => Some(Class::Machine),
            "fax" => Some(Class::Fax),
            "unknown" | "silence" => Some(Class::Unknown),
            _ => None,
        }
    }
}

/// Why the verdict was reached, in the manner of Asterisk's `AMDCAUSE`.
///
/// For `machine_end_*` verdicts the cause says why the party is a machine (for example
/// `LONGGREETING`, or `BEEP` when a beep came before the cadence decided); `answered_by` says
/// how its message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// No speech within `initial_silence_ms` (dead air).
    InitialSilence,
    /// A short greeting followed by `after_greeting_silence_ms` of silence.
    Human,
    /// The greeting's speech lasted longer than `greeting_ms`.
    LongGreeting,
    /// `maximum_number_of_words` words were heard.
    MaxWords,
    /// One word lasted longer than `maximum_word_length_ms`.
    MaxWordLength,
    /// No decision within `total_analysis_time_ms`.
    TooLong,
    /// A steady tone (beep) was heard.
    Beep,
    /// A fax CNG or CED tone was heard.
    Fax,
    /// The audio ended before a decision.
    Hangup,
}

impl Cause {
    /// The upper-case Asterisk-style spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Cause::InitialSilence => "INITIALSILENCE",
            Cause::Human => "HUMAN",
            Cause::LongGreeting => "LONGGREETING",
            Cause::MaxWords => "MAXWORDS",
            Cause::MaxWordLength => "MAXWORDLENGTH",
            Cause::TooLong => "TOOLONG",
            Cause::Beep => "BEEP",
            Cause::Fax => "FAX",
            Cause::Hangup => "HANGUP",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A detected beep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beep {
    /// Estimated frequency, rounded to the hertz.
    pub hz: u32,
    /// Stream time of the first frame holding the tone.
    pub start: Duration,
}

/// The detector's single answer for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Twilio-compatible answer.
    pub answered_by: AnsweredBy,
    /// Asterisk-style cause.
    pub cause: Cause,
    /// Stream time at which the decision was made (end of the deciding frame).
    pub decision_at: Duration,
    /// For humans and machines: when the greeting's last speech ended, if known.
    pub greeting_end_at: Option<Duration>,
    /// The beep, if one was detected.
    pub beep: Option<Beep>,
}

/// The two detection modes, as Twilio's `MachineDetection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Answer as soon as human vs machine is known; machines are `machine_start`.
    #[default]
    Enable,
    /// For machines, wait for the beep or the end of the greeting.
    DetectMessageEnd,
}

impl Mode {
    /// The CLI spelling (`enable`, `detect-message-end`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Enable => "enable",
            Mode::DetectMessageEnd => "detect-message-end",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = crate::Error;

    /// Accepts `enable` / `detect-message-end` and Twilio's `Enable` / `DetectMessageEnd`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "enable" => Ok(Mode::Enable),
            "detect-message-end" | "detectmessageend" | "detect_message_end" => {
                Ok(Mode::DetectMessageEnd)
            }
            _ => Err(crate::Error::UnknownAmdMode),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_parses_cli_and_twilio_spellings() {
        assert_eq!("enable".parse::<Mode>(), Ok(Mode::Enable));
        assert_eq!(
            "DetectMessageEnd".parse::<Mode>(),
            Ok(Mode::DetectMessageEnd)
        );
        assert_eq!(
            "detect-message-end".parse::<Mode>(),
            Ok(Mode::DetectMessageEnd)
        );
        assert_eq!("x".parse::<Mode>(), Err(crate::Error::UnknownAmdMode));
    }

    #[test]
    fn labels_map_to_classes() {
        assert_eq!(Class::from_label("machine_end_beep"), Some(Class::Machine));
        assert_eq!(Class::from_label(" Human "), Some(Class::Human));
        assert_eq!(Class::from_label("robot"), None);
    }
}
#[cfg(test)]
pub(crate) mod testutil;
