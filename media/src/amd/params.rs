//! Per-campaign AMD parameters with documented defaults.

use serde::{Deserialize, Serialize};

/// Detector parameters. Every field has a default (see [`Params::default`]), so a campaign's
/// configuration may name only what it changes. Field names are snake_case; Asterisk's
/// `amd.conf` camelCase names are accepted as aliases (`initialSilence`, ...).
///
/// Times are in milliseconds; they are rounded to the 20 ms frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Silence before any speech after which the call is dead air (`unknown`,
    /// `INITIALSILENCE`). Asterisk `initialSilence`, default 2500.
    #[serde(alias = "initialSilence")]
    pub initial_silence_ms: u32,
    /// Speech time in the greeting beyond which the party is a machine (`LONGGREETING`).
    /// Asterisk `greeting`, default 1500.
    #[serde(alias = "greeting")]
    pub greeting_ms: u32,
    /// Silence after a short greeting that makes the party a person (`HUMAN`). Asterisk
    /// `afterGreetingSilence`, default 800.
    #[serde(alias = "afterGreetingSilence")]
    pub after_greeting_silence_ms: u32,
    /// Analysis time after which an undecided call is `unknown` (`TOOLONG`). Asterisk
    /// `totalAnalysisTime`, default 5000.
    #[serde(alias = "totalAnalysisTime")]
    pub total_analysis_time_ms: u32,
    /// Speech needed to count a word. Asterisk `minimumWordLength`, default 100.
    #[serde(alias = "minimumWordLength")]
    pub minimum_word_length_ms: u32,
    /// Silence that separates two words. Asterisk `betweenWordsSilence`, default 50.
    #[serde(alias = "betweenWordsSilence")]
    pub between_words_silence_ms: u32,
    /// Words that make the party a machine (`MAXWORDS`). Asterisk `maximumNumberOfWords` is
    /// 3; the default here is 5, because with 3 every person answering "Hello, who is
    /// this?" or "Hi, this is Dana." is a machine (10 % of the corpus's humans), while
    /// machines are caught by `greeting_ms` anyway. [`Params::asterisk`] restores 3.
    #[serde(alias = "maximumNumberOfWords")]
    pub maximum_number_of_words: u32,
    /// Absolute floor of the voice threshold: mean absolute amplitude of a frame (of 32767)
    /// below which it is always silence. Asterisk `silenceThreshold`, default 256.
    #[serde(alias = "silenceThreshold")]
    pub silence_threshold: u16,
    /// Length of a single word that makes the party a machine (`MAXWORDLENGTH`). Asterisk
    /// `maximumWordLength`, default 5000.
    #[serde(alias = "maximumWordLength")]
    pub maximum_word_length_ms: u32,
    /// How far above the tracked noise floor (dB, amplitude) a frame must be to be speech.
    /// Default 9.
    pub vad_margin_db: f32,
    /// Steady tone needed to report a beep. Default 80.
    pub beep_min_ms: u32,
    /// Tone purity (share of the frame's energy in the single peak, 0..1) a beep frame needs.
    /// Speech spreads its energy over harmonics and stays below it. Default 0.8.
    pub tone_purity: f32,
    /// A 1100 Hz (CNG) or 2100 Hz (CED) tone heard before any speech and lasting this long
    /// is a fax. Default 400.
    pub fax_min_ms: u32,
    /// In `detect-message-end`: silence after the machine's greeting that ends the message
    /// (`machine_end_silence`). Twilio's `MachineDetectionSpeechEndThreshold` is 1200; the
    /// default here is 1500 because beeps come up to ~1 s after the last word and the VAD may
    /// end a fading last word ~0.4 s early (with 1200, one beep of 36 in the seed-1 corpus was
    /// pre-empted by `machine_end_silence` 63 ms before it sounded).
    pub end_silence_ms: u32,
    /// In `detect-message-end`: time from the start after which a machine whose message end
    /// was not found is `machine_end_other`. Twilio `MachineDetectionTimeout`, default 30000.
    pub machine_detection_timeout_ms: u32,
}

impl Default for Params {
    /// Asterisk `app_amd` defaults for the cadence (except `maximum_number_of_words`, see
    /// there), Twilio's for the message end.
    fn default() -> Self {
        Params {
            initial_silence_ms: 2500,
            greeting_ms: 1500,
            after_greeting_silence_ms: 800,
            total_analysis_time_ms: 5000,
            minimum_word_length_ms: 100,
            between_words_silence_ms: 50,
            maximum_number_of_words: 5,
            silence_threshold: 256,
            maximum_word_length_ms: 5000,
            vad_margin_db: 9.0,
            beep_min_ms: 80,
            tone_purity: 0.8,
            fax_min_ms: 400,
            end_silence_ms: 1500,
            machine_detection_timeout_ms: 30_000,
        }
    }
}

impl Params {
    /// Exactly Asterisk `app_amd`'s defaults for the cadence (`maximum_number_of_words` 3).
    pub fn asterisk() -> Self {
        Params {
            maximum_number_of_words: 3,
            ..Params::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_config_keeps_defaults_and_accepts_asterisk_names() {
        let p: Params =
            serde_json::from_str(r#"{"greeting_ms": 2000, "maximumNumberOfWords": 4}"#).unwrap();
        assert_eq!(p.greeting_ms, 2000);
        assert_eq!(p.maximum_number_of_words, 4);
        assert_eq!(p.after_greeting_silence_ms, 800);
        assert!(serde_json::from_str::<Params>(r#"{"nonsense": 1}"#).is_err());
    }
}
