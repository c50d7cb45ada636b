//! Fax tones: CNG (the calling fax's 1100 Hz, 0.5 s on / 3 s off) and CED (the answering
//! fax's 2100 Hz answer tone, 2.6–4 s), both recognised from the steady-tone tracker.
//!
//! A tone at a fax frequency is only taken for a fax when it comes before any speech (a
//! voicemail beep follows a greeting) and lasts `fax_min_ms`; see
//! [`crate::amd::Detector`].

/// Which fax tone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaxTone {
    /// Calling tone, 1100 Hz.
    Cng,
    /// Answer tone, 2100 Hz.
    Ced,
}

/// CNG frequency (Hz).
pub const CNG_HZ: f32 = 1100.0;
/// CED frequency (Hz).
pub const CED_HZ: f32 = 2100.0;
/// Accepted deviation: ITU-T T.30 allows ±38 Hz for CNG and ±15 Hz for CED; a little is
/// added for the estimate's error.
const TOLERANCE_HZ: f32 = 45.0;

/// The fax tone a steady tone of `hz` could be.
pub fn classify(hz: f32) -> Option<FaxTone> {
    if (hz - CNG_HZ).abs() <= TOLERANCE_HZ {
        Some(FaxTone::Cng)
    } else if (hz - CED_HZ).abs() <= TOLERANCE_HZ {
        Some(FaxTone::Ced)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amd::testutil::tone_frame;
    use crate::amd::tone::{GoertzelBank, ToneEvent, ToneTracker};
    use crate::amd::vad::frame_level;
    use core::time::Duration;

    fn confirmed_hz(hz: f32) -> Option<f32> {
        let bank = GoertzelBank::new();
        let mut t = ToneTracker::new(80, 0.8);
        (0..30).find_map(|n| {
            let f = tone_frame(n, hz, 6000.0);
            match t.update(bank.analyze(&f), frame_level(&f), Duration::ZERO) {
                Some(ToneEvent::Confirmed { hz, .. }) => Some(hz),
                _ => None,
            }
        })
    }

    #[test]
    fn cng_and_ced_are_recognised_from_the_tone_bank() {
        assert_eq!(classify(confirmed_hz(1100.0).unwrap()), Some(FaxTone::Cng));
        assert_eq!(classify(confirmed_hz(1090.0).unwrap()), Some(FaxTone::Cng));
        assert_eq!(classify(confirmed_hz(2100.0).unwrap()), Some(FaxTone::Ced));
        assert_eq!(classify(confirmed_hz(1000.0).unwrap()), None);
        assert_eq!(classify(confirmed_hz(2000.0).unwrap()), None);
    }
}
