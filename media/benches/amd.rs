//! Throughput of the answering-machine detector: 20 ms frames per second on one core.
//!
//! `cargo bench -p switchboard-media --bench amd`. Each scenario runs fresh detectors over
//! 30 s of synthetic audio (a detector that has decided is replaced by a new one, so every
//! frame is analysed) and prints frames/s and the calls one core could serve at 50 frames/s.

use core::f32::consts::TAU;
use std::hint::black_box;
use std::time::{Duration, Instant};
use switchboard_media::amd::{Detector, Mode, Params, FRAME_SAMPLES};

struct Rng(u64);
impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

fn signal(kind: &str, frames: usize) -> Vec<[i16; FRAME_SAMPLES]> {
    let mut rng = Rng(0x5eed);
    (0..frames)
        .map(|n| {
            let mut f = [0i16; FRAME_SAMPLES];
            for (i, s) in f.iter_mut().enumerate() {
                let t = (n * FRAME_SAMPLES + i) as f32 / 8000.0;
                let noise = rng.next_f32() * 200.0;
                let v = match kind {
                    "silence" => noise * 0.2,
                    "noise" => noise * 10.0,
                    // 300 ms beeps every second, so the noise floor stays low.
                    "tone" if n % 50 < 15 => (TAU * 1000.0 * t).sin() * 6000.0 + noise,
                    "tone" => noise,
                    _ => {
                        // Speech-like: harmonics of a gliding pitch, 4 Hz syllables.
                        let env = (TAU * 2.0 * t).sin().max(0.0);
                        let p = TAU * 150.0 * (t + 0.02 * (TAU * 3.0 * t).sin());
                        (1..10)
                            .map(|h| (p * h as f32).sin() / h as f32)
                            .sum::<f32>()
                            * 6000.0
                            * env
                            + noise
                    }
                };
                *s = v as i16;
            }
            f
        })
        .collect()
}

fn run(kind: &str, mode: Mode) {
    let frames = signal(kind, 1500);
    let params = Params::default();
    // Never decide before the signal ends, so every frame goes through every stage.
    let params = Params {
        initial_silence_ms: 1_000_000,
        total_analysis_time_ms: 1_000_000,
        greeting_ms: 1_000_000,
        maximum_number_of_words: 1_000_000,
        maximum_word_length_ms: 1_000_000,
        machine_detection_timeout_ms: 1_000_000,
        end_silence_ms: 1_000_000,
        beep_min_ms: if kind == "tone" {
            1_000_000
        } else {
            params.beep_min_ms
        },
        ..params
    };
    let mut processed = 0u64;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        let mut det = Detector::new(&params, mode);
        for (n, f) in frames.iter().enumerate() {
            let at = Duration::from_millis(20 * n as u64);
            if black_box(det.push(black_box(f), at)).is_some() {
                det = Detector::new(&params, mode);
            }
            processed += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let fps = processed as f64 / secs;
    println!(
        "amd/{kind:<8} {:<19} {:>12.0} frames/s  {:>7.0} ns/frame  = {:>7.0} concurrent calls per core",
        mode.as_str(),
        fps,
        1e9 / fps,
        fps / 50.0
    );
}

fn main() {
    for kind in ["silence", "noise", "speech", "tone"] {
        run(kind, Mode::DetectMessageEnd);
    }
    run("speech", Mode::Enable);
}
