//! The whisper: what the agent alone hears in the moment before a lead is bridged in.
//!
//! A campaign's `whisper` is `off`, `tone` (a zip tone: two short 440 Hz beeps, the call-centre
//! signal that a call is being put through) or `name` (the lead's name spoken). The name is
//! synthesized from the moment the call is placed (while it rings and is screened), by `espeak-ng` when it is installed on
//! the engine's host (`--stdout` WAV, decoded and resampled to 8 kHz like any prompt); when it
//! is not installed, fails, or is not ready within [`SYNTH_GRACE`] of the verdict, the zip tone
//! is played instead.
//!
//! The whisper never makes a live person wait beyond the legal 2 s: it is played only while
//! the verdict is less than [`BUDGET`] old, and cut at the end of that budget by the bridge
//! (a bridged leg carries the lead's audio, not its source).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use switchboard_media::runtime::Clip;
use tokio::task::JoinHandle;

/// How long after the verdict the bridge may wait for a whisper (the legal limit is 2 s).
pub(crate) const BUDGET: Duration = Duration::from_millis(1800);
/// A whisper shorter than this is not worth starting.
const MIN_PLAY: Duration = Duration::from_millis(300);
/// The synthesizer's time limit.
const SYNTH_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the bridge waits for a name still being synthesized at the verdict.
pub(crate) const SYNTH_GRACE: Duration = Duration::from_millis(400);

/// A campaign's whisper setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Off,
    Tone,
    Name,
}

impl Kind {
    pub(crate) fn of(setting: &str) -> Kind {
        match setting {
            "tone" => Kind::Tone,
            "name" => Kind::Name,
            _ => Kind::Off,
        }
    }
}

/// The zip tone: two 200 ms beeps at 440 Hz, 100 ms apart (500 ms), built once.
pub(crate) fn zip_tone() -> Arc<Clip> {
    static TONE: OnceLock<Arc<Clip>> = OnceLock::new();
    TONE.get_or_init(|| Clip::from_pcm(&zip_tone_pcm())).clone()
}

fn zip_tone_pcm() -> Vec<i16> {
    const RATE: f64 = 8000.0;
    let beep = |n: usize| -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f64 / RATE;
                // 5 ms ramps so the beep does not click.
                let ramp = (i.min(n - 1 - i) as f64 / 40.0).min(1.0);
                ((2.0 * std::f64::consts::PI * 440.0 * t).sin() * 8000.0 * ramp) as i16
            })
            .collect()
    };
    let mut pcm = beep(1600);
    pcm.extend(std::iter::repeat_n(0i16, 800));
    pcm.extend(beep(1600));
    pcm
}

/// The text spoken for a lead: first and last name, letters, spaces, `'` and `-` only (the
/// rest become spaces), at most 60 characters; `None` when nothing is left.
pub(crate) fn name_text(first: Option<&str>, last: Option<&str>) -> Option<String> {
    let raw = [first.unwrap_or(""), last.unwrap_or("")].join(" ");
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_alphabetic() || c == '\'' || c == '-' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let words: Vec<&str> = cleaned
        .split_whitespace()
        .map(|w| w.trim_start_matches('-'))
        .filter(|w| !w.is_empty())
        .collect();
    let mut text = words.join(" ");
    if text.chars().count() > 60 {
        text = text.chars().take(60).collect();
    }
    (!text.trim().is_empty()).then(|| text.trim().to_owned())
}

/// Starts synthesizing `text` in the background; the task yields `None` when `espeak-ng` is
/// missing, fails or takes longer than [`SYNTH_TIMEOUT`].
pub(crate) fn synthesize(text: String) -> JoinHandle<Option<Arc<Clip>>> {
    tokio::spawn(async move {
        let out = tokio::process::Command::new("espeak-ng")
            .args(["--stdout", "-s", "190", "-v", "en-us", "--"])
            .arg(&text)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(SYNTH_TIMEOUT, out).await.ok()?.ok()?;
        if !out.status.success() {
            return None;
        }
        switchboard_media::playback::decode_clip(&out.stdout, None).ok()
    })
}

/// How long to let the agent hear a whisper of `clip_len` when the verdict is `since_verdict`
/// old: all of it, or what is left of [`BUDGET`]; `None` when too little is left.
pub(crate) fn play_for(since_verdict: Duration, clip_len: Duration) -> Option<Duration> {
    let left = BUDGET.checked_sub(since_verdict)?;
    let play = clip_len.min(left);
    (play >= MIN_PLAY).then_some(play)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_map_to_kinds() {
        assert_eq!(Kind::of("off"), Kind::Off);
        assert_eq!(Kind::of("tone"), Kind::Tone);
        assert_eq!(Kind::of("name"), Kind::Name);
        assert_eq!(Kind::of("bogus"), Kind::Off);
    }

    #[test]
    fn the_zip_tone_is_two_beeps() {
        let pcm = zip_tone_pcm();
        assert_eq!(pcm.len(), 4000, "500 ms at 8 kHz");
        let loud = |r: std::ops::Range<usize>| {
            pcm[r].iter().map(|s| f64::from(*s).abs()).sum::<f64>() / 800.0
        };
        assert!(loud(400..1200) > 3000.0, "first beep");
        assert_eq!(loud(1600..2400), 0.0, "the gap is silent");
        assert!(loud(2800..3600) > 3000.0, "second beep");
        assert_eq!(zip_tone().frames(), 25);
    }

    #[test]
    fn names_are_cleaned_for_the_synthesizer() {
        assert_eq!(
            name_text(Some("Ada"), Some("Lovelace")).as_deref(),
            Some("Ada Lovelace")
        );
        assert_eq!(
            name_text(Some("--rate=999"), None).as_deref(),
            Some("rate"),
            "no option reaches the synthesizer"
        );
        assert_eq!(
            name_text(Some("Zoë"), Some("O'Brien-Smith")).as_deref(),
            Some("Zoë O'Brien-Smith")
        );
        assert_eq!(
            name_text(Some("<b>Bob</b>; rm -rf /"), None).as_deref(),
            Some("b Bob b rm rf")
        );
        assert_eq!(name_text(None, Some("  ")), None);
        assert_eq!(name_text(Some("123"), None), None);
        let long = "A".repeat(100);
        assert_eq!(name_text(Some(&long), None).unwrap().chars().count(), 60);
    }

    #[test]
    fn the_whisper_never_pushes_the_bridge_past_the_budget() {
        let ms = Duration::from_millis;
        assert_eq!(play_for(ms(0), ms(500)), Some(ms(500)));
        assert_eq!(play_for(ms(100), ms(2500)), Some(ms(1700)));
        assert_eq!(play_for(ms(1600), ms(500)), None, "only 200 ms left");
        assert_eq!(play_for(ms(1400), ms(500)), Some(ms(400)));
        assert_eq!(play_for(ms(2500), ms(500)), None);
        for since in (0..2000).step_by(50) {
            if let Some(p) = play_for(ms(since), ms(1000)) {
                assert!(ms(since) + p <= BUDGET);
            }
        }
    }
}
