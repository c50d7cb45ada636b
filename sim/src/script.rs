//! Media sources and sinks of the simulated parties: [`Script`] plays clips, silences and an
//! endless talk cadence; [`Lossy`] drops frames; [`Meter`] counts what arrives.
//!
//! They run on the media loop once per 20 ms frame or received packet: no allocation, no lock
//! (clips are shared `Arc`s, counters are atomics).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use switchboard_media::g711::Law;
use switchboard_media::runtime::{
    Clip, FrameSink, FrameSource, LoopingClip, ReceivedFrame, SourceFrame,
};

use crate::rng::Rng;

/// Frames per second at 20 ms.
const FPS: u64 = 50;

/// One part of a [`Script`].
#[derive(Debug, Clone)]
pub enum Part {
    /// Play the clip once.
    Play(Arc<Clip>),
    /// Quiet for this many 20 ms frames.
    Quiet(u32),
    /// Talk forever: a random clip of the bank, then a pause of `pause_ms` (min, max), again.
    Talk {
        bank: Arc<[Arc<Clip>]>,
        pause_ms: (u32, u32),
    },
}

/// Plays its parts in order, then silence forever. Silence is sent as G.711 silence frames
/// (a continuous stream, as most phones send).
#[derive(Debug)]
pub struct Script {
    parts: Vec<Part>,
    next: usize,
    playing: Option<LoopingClip>,
    quiet_left: u32,
    rng: Rng,
}

impl Script {
    pub fn new(parts: Vec<Part>, rng: Rng) -> Script {
        Script {
            parts,
            next: 0,
            playing: None,
            quiet_left: 0,
            rng,
        }
    }
}

impl FrameSource for Script {
    fn next_frame(&mut self, law: Law, out: &mut [u8; 160]) -> SourceFrame {
        loop {
            if let Some(clip) = self.playing.as_mut() {
                match clip.next_frame(law, out) {
                    SourceFrame::End => self.playing = None,
                    f => return f,
                }
            }
            if self.quiet_left > 0 {
                self.quiet_left -= 1;
                out.fill(law.silence());
                return SourceFrame::Audio;
            }
            let Some(part) = self.parts.get(self.next) else {
                out.fill(law.silence());
                return SourceFrame::Audio;
            };
            match part {
                Part::Play(clip) => {
                    self.playing = Some(LoopingClip::times(Arc::clone(clip), 1));
                    self.next += 1;
                }
                Part::Quiet(frames) => {
                    self.quiet_left = *frames;
                    self.next += 1;
                    if *frames == 0 {
                        continue;
                    }
                }
                Part::Talk { bank, pause_ms } => {
                    // Stays on this part: a burst now, a pause after it.
                    if bank.is_empty() {
                        self.next += 1;
                        continue;
                    }
                    let i = self.rng.between(0, bank.len() as u64 - 1) as usize;
                    self.playing = Some(LoopingClip::times(Arc::clone(&bank[i]), 1));
                    let ms = self
                        .rng
                        .between(u64::from(pause_ms.0), u64::from(pause_ms.1));
                    // Counted down once the clip has played (the loop plays clips first).
                    self.quiet_left = (ms * FPS / 1000) as u32;
                }
            }
        }
    }
}

/// Wraps a source and loses each audio frame with probability `loss` (the frame's sequence
/// number is used up: the receiver sees a gap).
#[derive(Debug)]
pub struct Lossy<S> {
    inner: S,
    loss: f64,
    rng: Rng,
}

impl<S: FrameSource> Lossy<S> {
    pub fn new(inner: S, loss: f64, rng: Rng) -> Lossy<S> {
        Lossy { inner, loss, rng }
    }
}

impl<S: FrameSource> FrameSource for Lossy<S> {
    fn next_frame(&mut self, law: Law, out: &mut [u8; 160]) -> SourceFrame {
        match self.inner.next_frame(law, out) {
            SourceFrame::Audio if self.rng.chance(self.loss) => SourceFrame::Lost,
            f => f,
        }
    }
}

/// A frame whose mean absolute amplitude reaches this is "loud" (speech, not silence).
pub const LOUD_MEAN_ABS: u64 = 200;

/// What a [`Meter`] has counted, readable from any thread.
#[derive(Debug, Default)]
pub struct MeterCounts {
    packets: AtomicU64,
    loud: AtomicU64,
    abs_sum: AtomicU64,
}

/// A snapshot of [`MeterCounts`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Heard {
    /// RTP audio packets received.
    pub packets: u64,
    /// Of them, frames with speech-like energy (mean |sample| >= [`LOUD_MEAN_ABS`]).
    pub loud_frames: u64,
    /// Mean absolute sample value over all received frames.
    pub mean_abs: f64,
}

impl MeterCounts {
    pub fn heard(&self) -> Heard {
        let packets = self.packets.load(Ordering::Relaxed);
        let sum = self.abs_sum.load(Ordering::Relaxed);
        Heard {
            packets,
            loud_frames: self.loud.load(Ordering::Relaxed),
            mean_abs: if packets == 0 {
                0.0
            } else {
                sum as f64 / packets as f64
            },
        }
    }
}

/// Counts received audio frames and their energy.
#[derive(Debug, Clone, Default)]
pub struct Meter(pub Arc<MeterCounts>);

impl FrameSink for Meter {
    fn on_frame(&mut self, frame: &ReceivedFrame<'_>) {
        let n = frame.pcm.len().max(1) as u64;
        let mean = frame
            .pcm
            .iter()
            .map(|&s| u64::from(s.unsigned_abs()))
            .sum::<u64>()
            / n;
        let c = &self.0;
        c.packets.fetch_add(1, Ordering::Relaxed);
        c.abs_sum.fetch_add(mean, Ordering::Relaxed);
        if mean >= LOUD_MEAN_ABS {
            c.loud.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(src: &mut impl FrameSource, n: usize) -> Vec<(SourceFrame, [u8; 160])> {
        let mut out = [0u8; 160];
        (0..n)
            .map(|_| {
                let f = src.next_frame(Law::Mu, &mut out);
                (f, out)
            })
            .collect()
    }

    fn loud(frame: &[u8; 160]) -> bool {
        frame.iter().any(|&b| b != Law::Mu.silence())
    }

    #[test]
    fn script_plays_parts_in_order_then_silence() {
        let tone = Clip::from_pcm(&vec![3000i16; 160 * 3]);
        let mut s = Script::new(
            vec![
                Part::Quiet(2),
                Part::Play(tone.clone()),
                Part::Quiet(0),
                Part::Play(tone),
            ],
            Rng::new(1),
        );
        let got = frames(&mut s, 12);
        assert!(got.iter().all(|(f, _)| *f == SourceFrame::Audio));
        let pattern: Vec<bool> = got.iter().map(|(_, b)| loud(b)).collect();
        let mut expected = vec![false, false];
        expected.extend([true; 6]);
        expected.extend([false; 4]);
        assert_eq!(pattern, expected);
    }

    #[test]
    fn talk_alternates_bursts_and_pauses_forever() {
        let burst = Clip::from_pcm(&vec![3000i16; 160 * 5]);
        let mut s = Script::new(
            vec![Part::Talk {
                bank: vec![burst].into(),
                pause_ms: (100, 100),
            }],
            Rng::new(2),
        );
        let pattern: Vec<bool> = frames(&mut s, 30).iter().map(|(_, b)| loud(b)).collect();
        // 5 loud frames, 5 quiet (100 ms), again.
        for (i, l) in pattern.iter().enumerate() {
            assert_eq!(*l, i % 10 < 5, "frame {i}: {pattern:?}");
        }
    }

    #[test]
    fn lossy_loses_about_its_share() {
        let mut l = Lossy::new(Script::new(Vec::new(), Rng::new(1)), 0.2, Rng::new(3));
        let lost = frames(&mut l, 5000)
            .iter()
            .filter(|(f, _)| *f == SourceFrame::Lost)
            .count();
        assert!((800..1200).contains(&lost), "{lost}");
        let mut none = Lossy::new(Script::new(Vec::new(), Rng::new(1)), 0.0, Rng::new(3));
        assert!(frames(&mut none, 500)
            .iter()
            .all(|(f, _)| *f == SourceFrame::Audio));
    }
}
