//! Deterministic test signals shared by the stage tests.

use crate::amd::FRAME_SAMPLES;
use core::f32::consts::TAU;

/// A small deterministic generator (xorshift64).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// Uniform in [-1, 1).
    pub(crate) fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

/// White noise of the given peak amplitude.
pub(crate) fn noise_frame(rng: &mut Rng, amp: f32) -> [i16; FRAME_SAMPLES] {
    let mut f = [0i16; FRAME_SAMPLES];
    for s in &mut f {
        *s = (rng.next_f32() * amp) as i16;
    }
    f
}

/// Frame `n` of a voiced-speech-like signal: 11 harmonics of a gliding ~140 Hz pitch with a
/// 4 Hz syllable envelope, plus noise.
pub(crate) fn speech_frame(rng: &mut Rng, n: usize, amp: f32, noise: f32) -> [i16; FRAME_SAMPLES] {
    speech_frame_pitch(rng, n, 140.0, amp, noise)
}

/// As [`speech_frame`] with a chosen mean pitch.
pub(crate) fn speech_frame_pitch(
    rng: &mut Rng,
    n: usize,
    pitch: f32,
    amp: f32,
    noise: f32,
) -> [i16; FRAME_SAMPLES] {
    let mut f = [0i16; FRAME_SAMPLES];
    for (i, s) in f.iter_mut().enumerate() {
        let t = (n * FRAME_SAMPLES + i) as f32 / 8000.0;
        let env = 0.6 + 0.4 * (TAU * 4.0 * t).sin();
        // Phase of a pitch gliding by ±5 % at 3 Hz (integrated frequency).
        let phase = TAU * pitch * (t - 0.05 / (TAU * 3.0) * ((TAU * 3.0 * t).cos() - 1.0));
        let mut v = 0.0;
        for h in 1..12 {
            // A formant-like emphasis around 700 Hz.
            let hz = pitch * h as f32;
            let formant = 1.0 / (1.0 + ((hz - 700.0) / 300.0).powi(2));
            v += (phase * h as f32).sin() * (0.3 + formant);
        }
        *s = (v * amp * env / 4.0 + rng.next_f32() * noise).clamp(-32768.0, 32767.0) as i16;
    }
    f
}

/// Frame `n` of a sine tone.
pub(crate) fn tone_frame(n: usize, hz: f32, amp: f32) -> [i16; FRAME_SAMPLES] {
    let mut f = [0i16; FRAME_SAMPLES];
    for (i, s) in f.iter_mut().enumerate() {
        let t = (n * FRAME_SAMPLES + i) as f32 / 8000.0;
        *s = ((TAU * hz * t).sin() * amp) as i16;
    }
    f
}

/// Adds two frames with saturation.
pub(crate) fn mix(a: &[i16; FRAME_SAMPLES], b: &[i16; FRAME_SAMPLES]) -> [i16; FRAME_SAMPLES] {
    let mut f = [0i16; FRAME_SAMPLES];
    for i in 0..FRAME_SAMPLES {
        f[i] = a[i].saturating_add(b[i]);
    }
    f
}
