//! Speech-like audio made in code, so the simulator needs no files.
//!
//! Voiced speech is built additively: the harmonics of a gliding pitch (100–220 Hz), each
//! weighted by a formant envelope (three resonances per vowel, interpolated from the previous
//! vowel for coarticulation) and a spectral tilt, plus a little aspiration noise. Syllables get
//! a raised-cosine attack and a decay, some start with a burst of noise (a consonant), words are
//! separated by short pauses and sentences by longer ones; the pitch falls over a phrase and
//! rises at the end of a question. The result is normalised to a telephone speech level.
//!
//! What is made here is checked against the answering-machine detector (tests below): the
//! human greeting ("Hello?") is classified `human`, the machine greeting (a five-second
//! message) plus beep `machine_end_beep` in detect-message-end mode, with default parameters.

use std::f32::consts::TAU;
use std::path::Path;
use std::sync::Arc;

use switchboard_media::runtime::Clip;

use crate::rng::Rng;
use crate::{Error, Result};

/// Sample rate of everything here.
pub const RATE: u32 = 8000;
const RATE_F: f32 = RATE as f32;
/// Speech is normalised to this RMS over its voiced samples (about -21 dBFS).
const SPEECH_RMS: f32 = 2900.0;
/// Background noise amplitude (peak) everywhere, so silence is not digital zero.
const NOISE_FLOOR: f32 = 12.0;

/// Formants F1, F2, F3 (Hz) of a few vowels.
const VOWELS: [[f32; 3]; 8] = [
    [730.0, 1090.0, 2440.0], // "a" as in father
    [270.0, 2290.0, 3010.0], // "i" as in beet
    [300.0, 870.0, 2240.0],  // "u" as in boot
    [530.0, 1840.0, 2480.0], // "e" as in bet
    [570.0, 840.0, 2410.0],  // "o" as in bought
    [660.0, 1720.0, 2410.0], // "ae" as in bat
    [490.0, 1350.0, 1690.0], // "er" as in bird
    [440.0, 1020.0, 2240.0], // "oo" as in book
];
/// Formant bandwidths (Hz) and relative levels.
const BANDWIDTHS: [f32; 3] = [130.0, 160.0, 220.0];
const LEVELS: [f32; 3] = [1.0, 0.7, 0.4];
const E: usize = 3;
const O: usize = 4;

/// One step of a phrase.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// A voiced syllable: vowel, length, pitch multipliers at its start and end, loudness,
    /// and a noise onset (consonant) of this many ms (0: none).
    Syllable {
        vowel: usize,
        ms: u32,
        pitch: (f32, f32),
        loud: f32,
        onset_ms: u32,
    },
    /// Quiet for this many ms.
    Pause(u32),
}

/// The speaker: mean pitch.
#[derive(Debug, Clone, Copy)]
struct Voice {
    pitch: f32,
}

impl Voice {
    fn random(rng: &mut Rng) -> Voice {
        // A lower and a higher register, as voices are.
        let pitch = if rng.chance(0.5) {
            rng.range(100.0, 140.0)
        } else {
            rng.range(170.0, 220.0)
        } as f32;
        Voice { pitch }
    }
}

/// The spectral weight of a harmonic at `hz` for formants `f`.
fn envelope(hz: f32, f: &[f32; 3]) -> f32 {
    let mut w = 0.0;
    for k in 0..3 {
        let d = (hz - f[k]) / (BANDWIDTHS[k] * 0.5);
        w += LEVELS[k] / (1.0 + d * d);
    }
    // Glottal tilt: higher harmonics are weaker; a floor keeps some energy between formants.
    w + 0.15 / (1.0 + hz / 500.0)
}

/// Renders `steps` (appending to `out`, float samples at about unit RMS before scaling).
fn render(out: &mut Vec<f32>, voice: Voice, steps: &[Step], rng: &mut Rng) {
    let voiced_ms: u32 = steps
        .iter()
        .map(|s| match s {
            Step::Syllable { ms, .. } => *ms,
            Step::Pause(_) => 0,
        })
        .sum();
    let mut phase = 0.0f32; // cycles of the fundamental
    let mut formants = VOWELS[0];
    let mut spoken = 0u32; // voiced samples so far (for the declination)
    let total_voiced = (voiced_ms as f32 / 1000.0 * RATE_F).max(1.0);
    let mut weights = [0.0f32; 40];
    for step in steps {
        match *step {
            Step::Pause(ms) => {
                let n = (ms as f32 / 1000.0 * RATE_F) as usize;
                out.extend(std::iter::repeat_n(0.0, n));
            }
            Step::Syllable {
                vowel,
                ms,
                pitch,
                loud,
                onset_ms,
            } => {
                let n = (ms as f32 / 1000.0 * RATE_F) as usize;
                let onset = (onset_ms as f32 / 1000.0 * RATE_F) as usize;
                let from = formants;
                let to = VOWELS[vowel % VOWELS.len()];
                let attack = (0.025 * RATE_F) as usize;
                let decay = (0.06 * RATE_F) as usize;
                for i in 0..n {
                    let x = i as f32 / n.max(1) as f32;
                    // Formant transition over the first 35 % of the syllable.
                    let t = (x / 0.35).min(1.0);
                    for k in 0..3 {
                        formants[k] = from[k] + (to[k] - from[k]) * t;
                    }
                    // Declination over the phrase, the syllable's own glide, a slow wobble.
                    let decl = 1.08 - 0.16 * (spoken as f32 / total_voiced);
                    let glide = pitch.0 + (pitch.1 - pitch.0) * x;
                    let wobble = 1.0 + 0.01 * (TAU * 5.0 * spoken as f32 / RATE_F).sin();
                    let f0 = voice.pitch * decl * glide * wobble;
                    phase = (phase + f0 / RATE_F).fract();
                    // Harmonic weights every 5 ms (they move slowly).
                    let harmonics = ((3600.0 / f0) as usize).clamp(1, weights.len());
                    if i % 40 == 0 {
                        for (h, w) in weights.iter_mut().enumerate().take(harmonics) {
                            *w = envelope(f0 * (h + 1) as f32, &formants);
                        }
                    }
                    let mut v = 0.0;
                    for (h, w) in weights.iter().enumerate().take(harmonics) {
                        v += w * (TAU * phase * (h + 1) as f32).sin();
                    }
                    let env = if i < attack {
                        0.5 - 0.5 * (std::f32::consts::PI * i as f32 / attack as f32).cos()
                    } else if i + decay > n {
                        ((n - i) as f32 / decay as f32).powf(1.5)
                    } else {
                        1.0
                    };
                    // A consonant: noise that fades as the vowel comes in.
                    let noise = if i < onset {
                        0.9 * (1.0 - i as f32 / onset as f32)
                    } else {
                        0.08
                    };
                    let voicing = if i < onset {
                        i as f32 / onset as f32
                    } else {
                        1.0
                    };
                    let s = v * voicing * 0.45 + noise * rng.range(-1.0, 1.0) as f32;
                    out.push(s * env * loud);
                    spoken += 1;
                }
            }
        }
    }
}

/// Scales `samples` so the voiced part has the telephone speech level, adds the noise floor
/// and converts to 16-bit.
fn finish(samples: &[f32], rng: &mut Rng) -> Vec<i16> {
    let voiced: Vec<f32> = samples.iter().copied().filter(|s| s.abs() > 1e-3).collect();
    let rms = if voiced.is_empty() {
        1.0
    } else {
        (voiced.iter().map(|s| s * s).sum::<f32>() / voiced.len() as f32).sqrt()
    };
    let gain = SPEECH_RMS / rms.max(1e-6);
    samples
        .iter()
        .map(|s| {
            let v = s * gain + NOISE_FLOOR * rng.range(-1.0, 1.0) as f32;
            v.clamp(-32000.0, 32000.0) as i16
        })
        .collect()
}

fn silence(ms: u32, rng: &mut Rng) -> Vec<i16> {
    finish(&vec![0.0; (ms * RATE / 1000) as usize], rng)
}

fn syllable(rng: &mut Rng, ms: (u64, u64), accent: f32) -> Step {
    let onset_ms = if rng.chance(0.6) {
        rng.between(25, 60) as u32
    } else {
        0
    };
    let start = 1.0 + accent * rng.range(0.0, 0.12) as f32;
    Step::Syllable {
        vowel: rng.between(0, VOWELS.len() as u64 - 1) as usize,
        ms: rng.between(ms.0, ms.1) as u32,
        pitch: (start, start * rng.range(0.88, 1.08) as f32),
        loud: rng.range(0.75, 1.0) as f32,
        onset_ms,
    }
}

/// Steps of `words` words, with pauses between words from `gap` (ms).
fn phrase(rng: &mut Rng, words: usize, gap: (u64, u64), syllable_ms: (u64, u64)) -> Vec<Step> {
    let mut steps = Vec::new();
    for w in 0..words {
        let syllables = rng.between(1, 3);
        for s in 0..syllables {
            let accent = if s == 0 { 1.0 } else { 0.3 };
            steps.push(syllable(rng, syllable_ms, accent));
            if s + 1 < syllables {
                // Within a word: a short dip, shorter than a word gap.
                steps.push(Step::Pause(rng.between(10, 30) as u32));
            }
        }
        if w + 1 < words {
            steps.push(Step::Pause(rng.between(gap.0, gap.1) as u32));
        }
    }
    steps
}

/// A person picking up: a short pause, "Hello?" (about 0.6–0.9 s, rising at the end), then
/// two seconds of silence.
pub fn hello(seed: u64) -> Vec<i16> {
    let mut rng = Rng::new(seed);
    let voice = Voice::random(&mut rng);
    let steps = [
        Step::Syllable {
            vowel: E,
            ms: rng.between(170, 230) as u32,
            pitch: (1.0, 1.04),
            loud: 0.85,
            onset_ms: rng.between(30, 50) as u32,
        },
        Step::Pause(rng.between(10, 25) as u32),
        Step::Syllable {
            vowel: O,
            ms: rng.between(330, 480) as u32,
            pitch: (1.0, 1.35),
            loud: 1.0,
            onset_ms: 0,
        },
    ];
    let mut f = Vec::new();
    render(&mut f, voice, &steps, &mut rng);
    let mut out = silence(rng.between(250, 450) as u32, &mut rng);
    out.extend(finish(&f, &mut rng));
    out.extend(silence(2000, &mut rng));
    out
}

/// A voicemail greeting: about 4.5–6 s of continuous speech in two or three sentences
/// ("Hi, you've reached ... Please leave a message after the tone."), no trailing silence.
pub fn machine_greeting(seed: u64) -> Vec<i16> {
    let mut rng = Rng::new(seed);
    let voice = Voice::random(&mut rng);
    let mut steps = Vec::new();
    let target_ms = rng.between(4600, 5600) as u32;
    let mut spoken = 0u32;
    let mut sentence_left = rng.between(5, 8);
    while spoken < target_ms {
        if !steps.is_empty() {
            let pause = if sentence_left == 0 {
                sentence_left = rng.between(5, 8);
                rng.between(220, 380)
            } else {
                rng.between(50, 140)
            };
            steps.push(Step::Pause(pause as u32));
        }
        sentence_left = sentence_left.saturating_sub(1);
        steps.extend(phrase(&mut rng, 1, (0, 0), (120, 230)));
        spoken = steps
            .iter()
            .map(|s| match s {
                Step::Syllable { ms, .. } | Step::Pause(ms) => *ms,
            })
            .sum();
    }
    let mut f = Vec::new();
    render(&mut f, voice, &steps, &mut rng);
    let mut out = silence(rng.between(150, 300) as u32, &mut rng);
    out.extend(finish(&f, &mut rng));
    out
}

/// A talk burst of one to five words (someone talking on a call), no surrounding silence.
pub fn burst(seed: u64) -> Vec<i16> {
    let mut rng = Rng::new(seed);
    let voice = Voice::random(&mut rng);
    let words = rng.between(1, 5) as usize;
    let steps = phrase(&mut rng, words, (70, 200), (110, 260));
    let mut f = Vec::new();
    render(&mut f, voice, &steps, &mut rng);
    finish(&f, &mut rng)
}

/// A sine beep of `hz` for `ms`, with 5 ms ramps, at about -12 dBFS.
pub fn beep(hz: f32, ms: u32) -> Vec<i16> {
    let n = (ms * RATE / 1000) as usize;
    let ramp = (0.005 * RATE_F) as usize;
    (0..n)
        .map(|i| {
            let env = (i.min(n - 1 - i) as f32 / ramp as f32).min(1.0);
            (8000.0 * env * (TAU * hz * i as f32 / RATE_F).sin()) as i16
        })
        .collect()
}

/// Reads a WAV file (any rate, first channel) as 8 kHz 16-bit samples.
pub fn read_wav(path: &Path) -> Result<Vec<i16>> {
    let wav = switchboard_media::wav::read_file(path).map_err(|source| Error::Wav {
        path: path.to_path_buf(),
        source,
    })?;
    let pcm = switchboard_media::amd::resample::resample(&wav.samples, wav.info.sample_rate, RATE);
    Ok(switchboard_media::amd::resample::to_i16(&pcm))
}

/// The audio a simulator plays, encoded once and shared by every call.
#[derive(Debug, Clone)]
pub struct Voices {
    /// "Hello?" variants (with their trailing silence).
    pub hello: Vec<Arc<Clip>>,
    /// Voicemail greeting variants.
    pub machine: Vec<Arc<Clip>>,
    /// The beep after a greeting.
    pub beep: Arc<Clip>,
    /// Talk bursts for conversation.
    pub bursts: Arc<[Arc<Clip>]>,
}

/// Where WAV files replace the synthetic audio.
#[derive(Debug, Clone, Default)]
pub struct AudioFiles {
    /// Replaces the human greeting ("Hello?" and the silence after it).
    pub human_greeting: Option<std::path::PathBuf>,
    /// Replaces the machine greeting (the beep still follows it when asked for).
    pub machine_greeting: Option<std::path::PathBuf>,
    /// Replaces the talk bursts (one clip) of humans and agents.
    pub talk: Option<std::path::PathBuf>,
}

impl Voices {
    /// Synthetic audio: a few variants of each, from `seed`.
    pub fn synthetic(seed: u64) -> Voices {
        let mut rng = Rng::new(seed);
        let hello: Vec<Arc<Clip>> = (0..4)
            .map(|_| Clip::from_pcm(&hello(rng.next_u64())))
            .collect();
        let machine: Vec<Arc<Clip>> = (0..3)
            .map(|_| Clip::from_pcm(&machine_greeting(rng.next_u64())))
            .collect();
        let bursts: Vec<Arc<Clip>> = (0..8)
            .map(|_| Clip::from_pcm(&burst(rng.next_u64())))
            .collect();
        Voices {
            hello,
            machine,
            beep: Clip::from_pcm(&beep(1000.0, 500)),
            bursts: bursts.into(),
        }
    }

    /// Synthetic audio with the given files in place of their parts.
    pub fn with_files(seed: u64, files: &AudioFiles) -> Result<Voices> {
        let mut v = Voices::synthetic(seed);
        if let Some(p) = &files.human_greeting {
            v.hello = vec![Clip::from_pcm(&read_wav(p)?)];
        }
        if let Some(p) = &files.machine_greeting {
            v.machine = vec![Clip::from_pcm(&read_wav(p)?)];
        }
        if let Some(p) = &files.talk {
            v.bursts = vec![Clip::from_pcm(&read_wav(p)?)].into();
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;
    use switchboard_media::amd::{AnsweredBy, Detector, Mode, Params, Verdict};
    use switchboard_media::g711::Law;

    /// Through μ-law and back, as the detector hears it over RTP.
    fn over_the_wire(pcm: &[i16]) -> Vec<i16> {
        pcm.iter()
            .map(|&s| Law::Mu.decode_sample(Law::Mu.encode_sample(s)))
            .collect()
    }

    fn classify(pcm: &[i16], mode: Mode) -> Option<Verdict> {
        let mut d = Detector::new(&Params::default(), mode);
        let pcm = over_the_wire(pcm);
        for (i, frame) in pcm.chunks(160).enumerate() {
            let at = Duration::from_millis(20 * i as u64);
            if let Some(v) = d.push(frame, at) {
                return Some(v);
            }
        }
        d.finish(Duration::from_millis(20 * pcm.len().div_ceil(160) as u64))
    }

    /// The seeds `Voices::synthetic` uses for carrier seeds 1 and 2 and agent seed 7 (its
    /// first seven draws), and a spread of others.
    fn test_seeds() -> Vec<u64> {
        let mut seeds: Vec<u64> = (0..16u64)
            .map(|s| s.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        for s in [1, 2, 7] {
            let mut rng = Rng::new(s);
            seeds.extend((0..7).map(|_| rng.next_u64()));
        }
        seeds
    }

    fn mean_abs(pcm: &[i16]) -> f64 {
        pcm.iter().map(|&s| f64::from(s).abs()).sum::<f64>() / pcm.len().max(1) as f64
    }

    #[test]
    fn hello_is_human_in_both_modes() {
        for seed in test_seeds() {
            let pcm = hello(seed);
            let secs = pcm.len() as f64 / 8000.0;
            assert!((2.6..3.8).contains(&secs), "seed {seed}: {secs} s");
            for mode in [Mode::Enable, Mode::DetectMessageEnd] {
                let v = classify(&pcm, mode).expect("a verdict");
                assert_eq!(
                    v.answered_by,
                    AnsweredBy::Human,
                    "seed {seed} {mode}: {v:?}"
                );
            }
        }
    }

    #[test]
    fn machine_greeting_and_beep_is_machine_end_beep() {
        for seed in test_seeds() {
            let greeting = machine_greeting(seed);
            let secs = greeting.len() as f64 / 8000.0;
            assert!((4.0..7.0).contains(&secs), "seed {seed}: {secs} s");
            let mut pcm = greeting.clone();
            pcm.extend(std::iter::repeat_n(0, 8000 * 6 / 10));
            let beep_at = pcm.len();
            pcm.extend(beep(1000.0, 500));
            pcm.extend(std::iter::repeat_n(0, 8000 * 2));
            let v = classify(&pcm, Mode::DetectMessageEnd).expect("a verdict");
            assert_eq!(
                v.answered_by,
                AnsweredBy::MachineEndBeep,
                "seed {seed}: {v:?}"
            );
            let b = v.beep.expect("beep found");
            assert!((950..=1050).contains(&b.hz), "seed {seed}: {b:?}");
            let at = Duration::from_millis(beep_at as u64 / 8);
            assert!(
                b.start + Duration::from_millis(40) >= at,
                "seed {seed}: {b:?}"
            );
            // Without the beep the message ends in silence.
            let mut quiet = greeting;
            quiet.extend(std::iter::repeat_n(0, 8000 * 3));
            let v = classify(&quiet, Mode::DetectMessageEnd).expect("a verdict");
            assert_eq!(v.answered_by, AnsweredBy::MachineEndSilence, "seed {seed}");
            let v = classify(&quiet, Mode::Enable).expect("a verdict");
            assert_eq!(v.answered_by, AnsweredBy::MachineStart, "seed {seed}");
        }
    }

    #[test]
    fn speech_has_telephone_level_and_silence_is_quiet() {
        let pcm = hello(3);
        let lead = &pcm[..8000 / 5];
        assert!(mean_abs(lead) < 20.0);
        let loud = mean_abs(&pcm[8000 / 2..8000]);
        assert!(loud > 800.0, "{loud}");
        let b = burst(9);
        assert!(b.len() >= 8000 / 10 && b.len() < 8000 * 4, "{}", b.len());
        assert!(mean_abs(&b) > 500.0);
    }

    #[test]
    fn beep_is_a_tone() {
        let b = beep(1000.0, 500);
        assert_eq!(b.len(), 4000);
        // Zero crossings of a 1 kHz tone over 0.5 s: about 1000.
        let crossings = b.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        assert!((990..=1010).contains(&crossings), "{crossings}");
    }

    #[test]
    fn wav_files_replace_parts_and_bad_files_are_errors() {
        let dir = std::env::temp_dir().join(format!("sb-sim-audio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("greeting.wav");
        let pcm = beep(440.0, 300);
        crate::wavout::write_mono(&path, &pcm).unwrap();
        let v = Voices::with_files(
            1,
            &AudioFiles {
                human_greeting: Some(path.clone()),
                ..AudioFiles::default()
            },
        )
        .unwrap();
        assert_eq!(v.hello.len(), 1);
        assert_eq!(v.hello[0].frames(), 15);
        let bad = dir.join("bad.wav");
        std::fs::write(&bad, b"not a wav").unwrap();
        let err = Voices::with_files(
            1,
            &AudioFiles {
                machine_greeting: Some(bad),
                ..AudioFiles::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("bad.wav"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
