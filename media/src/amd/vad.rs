//! Adaptive energy voice-activity detection.
//!
//! A frame is speech when its mean absolute amplitude exceeds both the fixed
//! `silence_threshold` and the tracked noise floor raised by `vad_margin_db`. The noise floor
//! is estimated by minimum statistics: the minimum frame level of each 100 ms sub-window is
//! kept for the last 1.6 s, and the floor is the smallest of them. A stationary line noise is
//! learned within one sub-window and a louder one within 1.6 s, while speech (which always
//! pauses) does not raise the floor. A short hangover (a lower threshold while already in
//! speech) keeps decaying syllable ends voiced.

/// Frames per minimum-statistics sub-window (100 ms).
const SUB_FRAMES: u8 = 5;
/// Sub-windows kept (1.6 s).
const SUBS: usize = 16;
/// While in speech, a frame stays voiced above this share of the threshold.
const HANGOVER_SHARE: f32 = 0.6;

/// Mean absolute amplitude of a frame (0..32768).
pub fn frame_level(frame: &[i16]) -> f32 {
    if frame.is_empty() {
        return 0.0;
    }
    let sum: u64 = frame.iter().map(|&s| u64::from(s.unsigned_abs())).sum();
    sum as f32 / frame.len() as f32
}

/// The adaptive VAD. Fixed-size state, no allocation.
#[derive(Debug, Clone)]
pub struct Vad {
    min_threshold: f32,
    margin: f32,
    subs: [f32; SUBS],
    subs_len: usize,
    subs_pos: usize,
    sub_min: f32,
    sub_count: u8,
    voiced: bool,
}

impl Vad {
    /// A VAD with the absolute threshold `silence_threshold` (mean absolute amplitude) and a
    /// margin over the noise floor in dB.
    pub fn new(silence_threshold: u16, margin_db: f32) -> Self {
        let margin = if margin_db.is_finite() {
            10f32.powf(margin_db.clamp(0.0, 40.0) / 20.0)
        } else {
            1.0
        };
        Vad {
            min_threshold: f32::from(silence_threshold),
            margin,
            subs: [0.0; SUBS],
            subs_len: 0,
            subs_pos: 0,
            sub_min: f32::INFINITY,
            sub_count: 0,
            voiced: false,
        }
    }

    /// The current noise-floor estimate (mean absolute amplitude); 0 before any frame.
    pub fn noise_floor(&self) -> f32 {
        let hist = self.subs[..self.subs_len]
            .iter()
            .copied()
            .fold(f32::INFINITY, f32::min);
        let floor = hist.min(self.sub_min);
        if floor.is_finite() {
            floor
        } else {
            0.0
        }
    }

    /// The level a frame must exceed to start speech.
    pub fn threshold(&self) -> f32 {
        (self.noise_floor() * self.margin).max(self.min_threshold)
    }

    /// Classifies one frame by its level ([`frame_level`]) and updates the noise floor.
    pub fn process(&mut self, level: f32) -> bool {
        let level = if level.is_finite() {
            level.max(0.0)
        } else {
            0.0
        };
        let threshold = self.threshold();
        self.voiced = if self.voiced {
            level > threshold * HANGOVER_SHARE && level > self.min_threshold
        } else {
            level > threshold
        };
        self.sub_min = self.sub_min.min(level);
        self.sub_count += 1;
        if self.sub_count == SUB_FRAMES {
            self.subs[self.subs_pos] = self.sub_min;
            self.subs_pos = (self.subs_pos + 1) % SUBS;
            self.subs_len = (self.subs_len + 1).min(SUBS);
            self.sub_min = f32::INFINITY;
            self.sub_count = 0;
        }
        self.voiced
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amd::testutil::{noise_frame, speech_frame, Rng};

    #[test]
    fn steady_noise_is_learned_as_floor_even_above_the_fixed_threshold() {
        let mut vad = Vad::new(256, 9.0);
        let mut rng = Rng::new(7);
        let mut voiced = 0;
        for i in 0..200 {
            // Noise with a mean absolute level of ~1000, four times the fixed threshold.
            if vad.process(frame_level(&noise_frame(&mut rng, 2000.0))) && i > 0 {
                voiced += 1;
            }
        }
        assert_eq!(voiced, 0, "stationary noise must not be speech");
        assert!(vad.noise_floor() > 800.0 && vad.noise_floor() < 1100.0);
    }

    #[test]
    fn speech_over_noise_is_voiced_and_pauses_are_not() {
        let mut vad = Vad::new(256, 9.0);
        let mut rng = Rng::new(9);
        for _ in 0..25 {
            vad.process(frame_level(&noise_frame(&mut rng, 600.0)));
        }
        let voiced = (0..25)
            .filter(|&n| vad.process(frame_level(&speech_frame(&mut rng, n, 6000.0, 600.0))))
            .count();
        assert!(voiced >= 23, "speech 15 dB over noise: {voiced}/25 voiced");
        let after = (0..25)
            .filter(|_| vad.process(frame_level(&noise_frame(&mut rng, 600.0))))
            .count();
        assert!(after <= 1, "noise after speech: {after} voiced");
    }

    #[test]
    fn quiet_line_uses_the_fixed_threshold() {
        let mut vad = Vad::new(256, 9.0);
        assert!(!vad.process(0.0));
        assert!(!vad.process(200.0));
        assert!(vad.process(300.0));
        assert!(!vad.process(f32::NAN));
    }
}
