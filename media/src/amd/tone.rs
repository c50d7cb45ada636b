//! Beep detection: a Goertzel filter bank over 400–2100 Hz and a steady-tone tracker.
//!
//! Each 20 ms frame is Hann-windowed and run through 37 Goertzel filters 50 Hz apart
//! (350–2150 Hz: the 400–2100 Hz range plus a guard bin each side). The peak
//! bin's frequency is refined by parabolic interpolation of the log powers of it and its
//! neighbours, and its power is corrected for the window's scalloping loss. The frame's *tone
//! purity* is that power over the frame's total windowed energy, normalised so that a pure
//! sine gives 1.0. Speech spreads its energy over many harmonics (and its pitch moves), so a
//! single harmonic rarely holds most of a frame; a beep does.
//!
//! [`ToneTracker`] confirms a tone when consecutive frames, each pure enough, keep the same
//! frequency (within 0.6 % or 5 Hz of the run's mean) and a steady level (within 3 dB from the
//! second frame on; the first may be partial) for
//! `beep_min_ms`.
//!
//! Speech is rejected twice: by purity, and by the power at 1.5×, 2× and 3× the tone's
//! frequency (a voiced sound always has harmonic neighbours; a beep has none).

use crate::amd::FRAME_SAMPLES;
use core::f32::consts::{PI, TAU};
use core::time::Duration;

/// Lowest beep frequency (Hz).
pub const BANK_MIN_HZ: f32 = 400.0;
/// Highest beep frequency (Hz).
pub const BANK_MAX_HZ: f32 = 2100.0;
/// Bank spacing (Hz): the frame's resolution, 8000 / 160.
pub const BANK_STEP_HZ: f32 = 50.0;
/// Filters computed together in [`GoertzelBank::bank_powers`].
const LANES: usize = 8;
/// How far outside 400–2100 Hz an estimated beep frequency may fall.
const EDGE_SLACK_HZ: f32 = 10.0;
/// First filter: one guard bin below the range, so that an edge tone is interpolated.
const FIRST_HZ: f32 = BANK_MIN_HZ - BANK_STEP_HZ;
/// Number of filters: 350, 400, ..., 2100, 2150 Hz (35 in the range plus two guards).
pub const BANK_LEN: usize = 37;
/// Harmonic-to-tone power ratio above which a frame is speech, not a beep (−20 dB).
const MAX_HARMONIC_RATIO: f32 = 0.01;
/// Largest max/min level ratio within a beep (≈3 dB), from its second frame on.
const MAX_LEVEL_SPREAD: f32 = 1.41;

/// One frame's dominant tone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToneFrame {
    /// Refined frequency of the strongest bin (Hz).
    pub hz: f32,
    /// Share of the frame's energy in that tone (≈1.0 for a pure sine).
    pub purity: f32,
    /// Power at 1.5×, 2× and 3× the frequency relative to the tone's (0 for a sine). Voiced
    /// speech whose strongest harmonic is n·f0 has neighbours at (n+1)·f0, which fall on
    /// 1.5× or 2× for n = 1, 2 and near them for higher n.
    pub harmonic_ratio: f32,
}

impl ToneFrame {
    /// Whether this frame can be part of a beep at the given purity threshold.
    pub fn is_tone(&self, purity: f32) -> bool {
        self.purity >= purity
            && self.harmonic_ratio <= MAX_HARMONIC_RATIO
            && self.hz >= BANK_MIN_HZ - EDGE_SLACK_HZ
            && self.hz <= BANK_MAX_HZ + EDGE_SLACK_HZ
    }
}

/// The Goertzel bank with its precomputed window and coefficients.
#[derive(Debug, Clone)]
pub struct GoertzelBank {
    window: [f32; FRAME_SAMPLES],
    coeffs: [f32; BANK_LEN],
    /// 2·Σw² / (Σw)²: turns |X|²/E into purity.
    norm: f32,
}

impl Default for GoertzelBank {
    fn default() -> Self {
        Self::new()
    }
}

impl GoertzelBank {
    /// Builds the bank (no allocation).
    pub fn new() -> Self {
        let mut window = [0f32; FRAME_SAMPLES];
        let (mut s1, mut s2) = (0f32, 0f32);
        for (i, w) in window.iter_mut().enumerate() {
            *w = 0.5 - 0.5 * (TAU * i as f32 / FRAME_SAMPLES as f32).cos();
            s1 += *w;
            s2 += *w * *w;
        }
        let mut coeffs = [0f32; BANK_LEN];
        for (k, c) in coeffs.iter_mut().enumerate() {
            let hz = FIRST_HZ + BANK_STEP_HZ * k as f32;
            *c = 2.0 * (TAU * hz / 8000.0).cos();
        }
        GoertzelBank {
            window,
            coeffs,
            norm: 2.0 * s2 / (s1 * s1),
        }
    }

    /// Powers of all filters. The filters run [`LANES`] at a time so that their independent
    /// recurrences overlap in the pipeline (one Goertzel alone is latency-bound).
    fn bank_powers(&self, x: &[f32; FRAME_SAMPLES]) -> [f32; BANK_LEN] {
        let mut powers = [0f32; BANK_LEN];
        for (cs, ps) in self.coeffs.chunks(LANES).zip(powers.chunks_mut(LANES)) {
            let mut c = [0f32; LANES];
            c[..cs.len()].copy_from_slice(cs);
            let (mut s1, mut s2) = ([0f32; LANES], [0f32; LANES]);
            for &xi in x {
                for l in 0..LANES {
                    let s0 = xi + c[l] * s1[l] - s2[l];
                    s2[l] = s1[l];
                    s1[l] = s0;
                }
            }
            for (l, p) in ps.iter_mut().enumerate() {
                *p = (s1[l] * s1[l] + s2[l] * s2[l] - c[l] * s1[l] * s2[l]).max(0.0);
            }
        }
        powers
    }

    /// Analyses one 160-sample frame. `None` for silence (no energy).
    pub fn analyze(&self, frame: &[i16; FRAME_SAMPLES]) -> Option<ToneFrame> {
        let mut x = [0f32; FRAME_SAMPLES];
        let mut energy = 0f32;
        for ((xi, &s), &w) in x.iter_mut().zip(frame.iter()).zip(self.window.iter()) {
            *xi = f32::from(s) * w;
            energy += *xi * *xi;
        }
        if energy <= 1.0 {
            return None;
        }
        let powers = self.bank_powers(&x);
        let mut k = 0;
        for i in 1..BANK_LEN {
            if powers[i] > powers[k] {
                k = i;
            }
        }
        // Parabolic interpolation on log power; edges are not refined.
        let delta = if k > 0 && k + 1 < BANK_LEN {
            let (a, b, c) = (
                (powers[k - 1] + 1e-9).ln(),
                (powers[k] + 1e-9).ln(),
                (powers[k + 1] + 1e-9).ln(),
            );
            let den = a - 2.0 * b + c;
            if den < 0.0 {
                (0.5 * (a - c) / den).clamp(-0.5, 0.5)
            } else {
                0.0
            }
        } else {
            0.0
        };
        let scallop = hann_gain(delta);
        let peak = powers[k] / (scallop * scallop);
        let hz = FIRST_HZ + BANK_STEP_HZ * (k as f32 + delta);
        let purity = peak * self.norm / energy;
        // The harmonic check costs three more filters, so only candidates get it.
        let harmonic_ratio = if purity >= 0.3 {
            [1.5f32, 2.0, 3.0]
                .iter()
                .map(|m| hz * m)
                .filter(|&h| h < 3900.0)
                .map(|h| goertzel(&x, 2.0 * (TAU * h / 8000.0).cos()))
                .sum::<f32>()
                / peak.max(1e-9)
        } else {
            f32::INFINITY
        };
        Some(ToneFrame {
            hz,
            purity,
            harmonic_ratio,
        })
    }
}

/// Power of one Goertzel filter with coefficient `c` = 2·cos(ω).
fn goertzel(x: &[f32], c: f32) -> f32 {
    let (mut s1, mut s2) = (0f32, 0f32);
    for &xi in x {
        let s0 = xi + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - c * s1 * s2).max(0.0)
}

/// Amplitude gain of the Hann window for a tone `delta` bins off a bin centre.
fn hann_gain(delta: f32) -> f32 {
    if delta.abs() < 1e-4 {
        return 1.0;
    }
    let sinc = (PI * delta).sin() / (PI * delta);
    sinc / (1.0 - delta * delta)
}

/// A change of the steady-tone tracker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ToneEvent {
    /// The tone has now lasted `beep_min_ms`: a beep.
    Confirmed {
        /// Mean frequency so far (Hz).
        hz: f32,
        /// Start of the first tone frame.
        start: Duration,
    },
    /// A confirmed tone goes on.
    Continues {
        /// Mean frequency (Hz).
        hz: f32,
        /// Start of the first tone frame.
        start: Duration,
        /// Tone length so far.
        len: Duration,
    },
    /// A confirmed tone stopped.
    Ended {
        /// Mean frequency (Hz).
        hz: f32,
        /// Start of the first tone frame.
        start: Duration,
        /// Tone length.
        len: Duration,
    },
}

/// Tracks runs of tone frames and confirms steady tones.
#[derive(Debug, Clone)]
pub struct ToneTracker {
    min_frames: u32,
    purity: f32,
    run: u32,
    hz_sum: f32,
    /// Level range of the run from its second frame on.
    level_min: f32,
    level_max: f32,
    start: Duration,
}

impl ToneTracker {
    /// A tracker needing `min_ms` of steady tone with per-frame `purity`.
    pub fn new(min_ms: u32, purity: f32) -> Self {
        let purity = if purity.is_finite() {
            purity.clamp(0.05, 1.0)
        } else {
            0.7
        };
        ToneTracker {
            min_frames: min_ms.div_ceil(crate::amd::FRAME_MS).max(2),
            purity,
            run: 0,
            hz_sum: 0.0,
            level_min: 0.0,
            level_max: 0.0,
            start: Duration::ZERO,
        }
    }

    /// Whether a run of tone frames is in progress (confirmed or not).
    pub fn in_run(&self) -> bool {
        self.run > 0
    }

    /// Whether the current run is a confirmed tone.
    pub fn confirmed(&self) -> bool {
        self.run >= self.min_frames
    }

    /// Start of the current run.
    pub fn run_start(&self) -> Duration {
        self.start
    }

    fn mean_hz(&self) -> f32 {
        self.hz_sum / self.run.max(1) as f32
    }

    /// Feeds one frame: its analysis (`None` when not analysed, e.g. silence), its mean
    /// absolute level and its start time.
    pub fn update(
        &mut self,
        tone: Option<ToneFrame>,
        level: f32,
        frame_start: Duration,
    ) -> Option<ToneEvent> {
        let frame = crate::amd::FRAME_MS;
        let candidate = tone.filter(|t| t.is_tone(self.purity));
        let was_confirmed = self.confirmed();
        let (hz, start, run) = (self.mean_hz(), self.start, self.run);
        let ended = ToneEvent::Ended {
            hz,
            start,
            len: Duration::from_millis(u64::from(run * frame)),
        };
        match candidate {
            Some(t) => {
                // A beep's frequency and level hold still; a vowel's drift. The first frame
                // may be partial, so levels are compared from the second frame on.
                let tol = (self.mean_hz() * 0.006).max(5.0);
                let (lo, hi) = if self.run >= 2 {
                    (self.level_min.min(level), self.level_max.max(level))
                } else {
                    (level, level)
                };
                let steady = hi <= lo.max(1.0) * MAX_LEVEL_SPREAD;
                if self.run > 0 && (t.hz - self.mean_hz()).abs() <= tol && steady {
                    self.run += 1;
                    self.hz_sum += t.hz;
                    self.level_min = lo;
                    self.level_max = hi;
                } else {
                    self.run = 1;
                    self.hz_sum = t.hz;
                    self.start = frame_start;
                }
                if self.run == 1 && was_confirmed {
                    return Some(ended);
                }
                if self.run == self.min_frames {
                    return Some(ToneEvent::Confirmed {
                        hz: self.mean_hz(),
                        start: self.start,
                    });
                }
                if self.run > self.min_frames {
                    return Some(ToneEvent::Continues {
                        hz: self.mean_hz(),
                        start: self.start,
                        len: Duration::from_millis(u64::from(self.run * frame)),
                    });
                }
                None
            }
            None => {
                self.run = 0;
                self.hz_sum = 0.0;
                if was_confirmed {
                    Some(ended)
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amd::testutil::{mix, noise_frame, speech_frame_pitch, tone_frame, Rng};
    use crate::amd::vad::frame_level;

    fn track(frames: &[[i16; FRAME_SAMPLES]]) -> Vec<ToneEvent> {
        let bank = GoertzelBank::new();
        let mut t = ToneTracker::new(80, 0.8);
        frames
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                t.update(
                    bank.analyze(f),
                    frame_level(f),
                    Duration::from_millis(20 * i as u64),
                )
            })
            .collect()
    }

    #[test]
    fn pure_tones_have_purity_near_one_and_the_right_frequency() {
        let bank = GoertzelBank::new();
        for hz in [
            400.0, 425.0, 440.0, 600.0, 800.0, 1000.0, 1004.0, 1400.0, 2000.0, 2100.0,
        ] {
            let t = bank.analyze(&tone_frame(3, hz, 8000.0)).unwrap();
            assert!((t.hz - hz).abs() < 6.0, "{hz}: {t:?}");
            assert!(t.purity > 0.9 && t.purity < 1.1, "{hz}: {t:?}");
        }
    }

    #[test]
    fn beeps_are_confirmed_after_80_ms_at_each_frequency() {
        let mut rng = Rng::new(3);
        for hz in [400.0, 600.0, 800.0, 1000.0, 1400.0, 2000.0] {
            // 200 ms of noise, a 300 ms beep 20 dB over the noise, 200 ms of noise.
            let mut frames = Vec::new();
            for n in 0..35 {
                let noise = noise_frame(&mut rng, 300.0);
                frames.push(if (10..25).contains(&n) {
                    mix(&tone_frame(n, hz, 4000.0), &noise)
                } else {
                    noise
                });
            }
            let events = track(&frames);
            let confirmed: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    ToneEvent::Confirmed { hz, start } => Some((*hz, *start)),
                    _ => None,
                })
                .collect();
            assert_eq!(confirmed.len(), 1, "{hz}: {events:?}");
            assert!((confirmed[0].0 - hz).abs() < 10.0, "{hz}: {confirmed:?}");
            assert_eq!(confirmed[0].1, Duration::from_millis(200));
            assert!(events.iter().any(|e| matches!(e,
                ToneEvent::Ended { len, .. } if *len == Duration::from_millis(300))));
        }
    }

    #[test]
    fn a_tone_shorter_than_the_minimum_is_not_a_beep() {
        let frames: Vec<_> = (0..10)
            .map(|n| {
                if n < 3 {
                    tone_frame(n, 1000.0, 5000.0)
                } else {
                    [0; FRAME_SAMPLES]
                }
            })
            .collect();
        assert!(track(&frames).is_empty());
    }

    #[test]
    fn speech_like_signals_and_noise_are_rejected() {
        let mut rng = Rng::new(11);
        for pitch in [90.0, 120.0, 160.0, 210.0, 260.0, 320.0] {
            let frames: Vec<_> = (0..150)
                .map(|n| speech_frame_pitch(&mut rng, n, pitch, 8000.0, 100.0))
                .collect();
            let events = track(&frames);
            assert!(events.is_empty(), "pitch {pitch}: {events:?}");
        }
        let frames: Vec<_> = (0..150).map(|_| noise_frame(&mut rng, 8000.0)).collect();
        assert!(track(&frames).is_empty());
    }

    #[test]
    fn gliding_tone_is_not_steady() {
        // A whistle sweeping 600 → 1600 Hz over 300 ms moves ~67 Hz per frame.
        let mut frames = Vec::new();
        let mut phase = 0f32;
        for n in 0..15 {
            let mut f = [0i16; FRAME_SAMPLES];
            for (i, s) in f.iter_mut().enumerate() {
                let t = (n * FRAME_SAMPLES + i) as f32 / 8000.0;
                let hz = 600.0 + 1000.0 * t / 0.3;
                phase += TAU * hz / 8000.0;
                *s = (phase.sin() * 6000.0) as i16;
            }
            frames.push(f);
        }
        assert!(track(&frames).is_empty());
    }
}
