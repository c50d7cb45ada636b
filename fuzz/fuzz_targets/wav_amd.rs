//! WAV reading and answering-machine detection over what it decodes, as
//! `switchboard amd classify` does with a file: first channel, resampled to 8 kHz, detector
//! in 20 ms frames, `finish` at the end of the audio.
//!
//! At most 6 s of audio at the file's own rate is resampled and classified (the analysis
//! window is 5 s by default), so a run stays fast. Properties: nothing panics; a parsed WAV's
//! frame count matches its samples.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_media::amd::cli::classify_samples;
use switchboard_media::amd::resample::{resample, to_i16};
use switchboard_media::amd::{Mode, Params, SAMPLE_RATE};
use switchboard_media::wav;

const MAX_SECONDS: usize = 6;

fuzz_target!(|data: &[u8]| {
    let Ok(w) = wav::parse(data) else { return };
    assert_eq!(w.info.frames, w.samples.len());
    assert!(w.info.sample_rate > 0 && w.info.channels > 0);
    let keep = (w.info.sample_rate as usize)
        .saturating_mul(MAX_SECONDS)
        .min(w.samples.len());
    let pcm = to_i16(&resample(&w.samples[..keep], w.info.sample_rate, SAMPLE_RATE));
    let pcm = &pcm[..pcm.len().min(SAMPLE_RATE as usize * MAX_SECONDS)];
    let params = Params::default();
    for mode in [Mode::Enable, Mode::DetectMessageEnd] {
        let _ = classify_samples(pcm, mode, &params);
    }
});
