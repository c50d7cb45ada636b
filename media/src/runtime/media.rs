//! What flows in and out of a stream: [`FrameSource`] (the next 20 ms to send) and
//! [`FrameSink`] (each received frame, decoded, plus the session's events). Sinks are how
//! AMD, recording and the carrier simulator consume audio; sources are how playback feeds it.
//!
//! Both run on the media loop that owns the stream, once per packet or tick: they must not
//! block, and should not allocate.

use core::time::Duration;
use std::sync::Arc;

use crate::g711::Law;
use crate::session::{SessionEvent, FRAME_SAMPLES};
use crate::stats::{ReceiveStats, SeqStatus};

/// What a source produced for one 20 ms interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFrame {
    /// `out` holds 160 encoded bytes to send.
    Audio,
    /// Nothing to send this interval (silence suppression / paused); the next audio frame
    /// starts a talkspurt.
    Silence,
    /// The source is finished and is removed from the stream.
    End,
    /// `out` holds a frame that is lost on the way (simulated network loss): the sequence
    /// number and timestamp advance as if it were sent, but nothing is sent, so the receiver
    /// sees a sequence gap.
    Lost,
}

/// Produces the audio a stream sends, one 20 ms frame per pacing tick.
pub trait FrameSource: Send + 'static {
    /// Writes the next 20 ms of audio, G.711-encoded with `law` (the stream's codec), into
    /// `out`.
    fn next_frame(&mut self, law: Law, out: &mut [u8; FRAME_SAMPLES]) -> SourceFrame;
}

/// Digital silence, forever (keeps NAT bindings open and the peer's jitter buffer fed).
#[derive(Debug, Clone, Copy, Default)]
pub struct Silence;

impl FrameSource for Silence {
    fn next_frame(&mut self, law: Law, out: &mut [u8; FRAME_SAMPLES]) -> SourceFrame {
        out.fill(law.silence());
        SourceFrame::Audio
    }
}

/// A clip of 8 kHz audio encoded once in both laws, shared by every stream that plays it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clip {
    mu: Box<[u8]>,
    a: Box<[u8]>,
}

impl Clip {
    /// Encodes 8 kHz 16-bit samples; a partial last frame is padded with silence.
    pub fn from_pcm(samples: &[i16]) -> Arc<Self> {
        let frames = samples.len().div_ceil(FRAME_SAMPLES).max(1);
        let encode = |law: Law| {
            let mut v = vec![law.silence(); frames * FRAME_SAMPLES];
            for (o, &s) in v.iter_mut().zip(samples) {
                *o = law.encode_sample(s);
            }
            v.into_boxed_slice()
        };
        Arc::new(Self {
            mu: encode(Law::Mu),
            a: encode(Law::A),
        })
    }

    /// Number of 20 ms frames.
    pub fn frames(&self) -> usize {
        self.mu.len() / FRAME_SAMPLES
    }

    fn frame(&self, law: Law, index: usize) -> &[u8] {
        let data = match law {
            Law::Mu => &self.mu,
            Law::A => &self.a,
        };
        let at = (index % self.frames()) * FRAME_SAMPLES;
        &data[at..at + FRAME_SAMPLES]
    }
}

/// Plays a [`Clip`] in a loop, or a given number of times.
#[derive(Debug, Clone)]
pub struct LoopingClip {
    clip: Arc<Clip>,
    next: usize,
    /// Frames left to play, `None` for forever.
    left: Option<usize>,
}

impl LoopingClip {
    /// Loops `clip` forever.
    pub fn new(clip: Arc<Clip>) -> Self {
        Self {
            clip,
            next: 0,
            left: None,
        }
    }

    /// Plays `clip` once, then ends (a prompt: the stream's 20 ms tick paces it).
    pub fn once(clip: Arc<Clip>) -> Self {
        Self::times(clip, 1)
    }

    /// Plays `clip` `times` times, then ends.
    pub fn times(clip: Arc<Clip>, times: usize) -> Self {
        let left = Some(clip.frames() * times);
        Self {
            clip,
            next: 0,
            left,
        }
    }
}

impl FrameSource for LoopingClip {
    fn next_frame(&mut self, law: Law, out: &mut [u8; FRAME_SAMPLES]) -> SourceFrame {
        if let Some(left) = self.left.as_mut() {
            if *left == 0 {
                return SourceFrame::End;
            }
            *left -= 1;
        }
        out.copy_from_slice(self.clip.frame(law, self.next));
        self.next = (self.next + 1) % self.clip.frames();
        SourceFrame::Audio
    }
}

/// One received audio packet, as given to a [`FrameSink`].
#[derive(Debug, Clone, Copy)]
pub struct ReceivedFrame<'a> {
    /// Decoded 8 kHz samples (160 for a 20 ms packet).
    pub pcm: &'a [i16],
    /// The G.711 payload as received (for relaying or recording without decoding).
    pub payload: &'a [u8],
    /// Codec of the payload.
    pub law: Law,
    /// RTP sequence number.
    pub sequence: u16,
    /// RTP timestamp (place frames by it, e.g. to keep recording channels aligned).
    pub timestamp: u32,
    /// RTP marker (talkspurt start).
    pub marker: bool,
    /// SSRC of the sender.
    pub ssrc: u32,
    /// How the statistics classified the sequence number.
    pub status: SeqStatus,
    /// Arrival time since the runtime started.
    pub arrival: Duration,
    /// The stream's receive statistics after this packet.
    pub stats: &'a ReceiveStats,
}

/// Consumes what a stream receives.
pub trait FrameSink: Send + 'static {
    /// One audio packet (duplicates are not delivered; reordered packets are, in arrival
    /// order, with `status` saying so).
    fn on_frame(&mut self, frame: &ReceivedFrame<'_>);

    /// A session event: latching, 5 s quality reports, DTMF digits.
    fn on_event(&mut self, event: &SessionEvent) {
        let _ = event;
    }

    /// The sink receives nothing more: its stream closed (or the runtime shut down), or
    /// [`StreamHandle::set_sink`](super::StreamHandle::set_sink) replaced it. Called once, on
    /// the media loop, just before the sink is dropped there.
    fn on_close(&mut self) {}
}

/// Gives everything a stream receives to two sinks, in order (e.g. answering-machine
/// detection and a recording channel); nest it for more. Built once: forwarding costs two
/// virtual calls per packet, no allocation.
pub struct TeeSink {
    first: Box<dyn FrameSink>,
    second: Box<dyn FrameSink>,
}

impl TeeSink {
    /// Feeds `first`, then `second`.
    pub fn new(first: Box<dyn FrameSink>, second: Box<dyn FrameSink>) -> Self {
        Self { first, second }
    }

    /// The two sinks back.
    pub fn into_inner(self) -> (Box<dyn FrameSink>, Box<dyn FrameSink>) {
        (self.first, self.second)
    }
}

impl core::fmt::Debug for TeeSink {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TeeSink").finish_non_exhaustive()
    }
}

impl FrameSink for TeeSink {
    fn on_frame(&mut self, frame: &ReceivedFrame<'_>) {
        self.first.on_frame(frame);
        self.second.on_frame(frame);
    }

    fn on_event(&mut self, event: &SessionEvent) {
        self.first.on_event(event);
        self.second.on_event(event);
    }

    fn on_close(&mut self) {
        self.first.on_close();
        self.second.on_close();
    }
}

/// Discards everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullSink;

impl FrameSink for NullSink {
    fn on_frame(&mut self, _frame: &ReceivedFrame<'_>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_loops_and_counts() {
        let pcm: Vec<i16> = (0..400).map(|i| (i * 50) as i16).collect();
        let clip = Clip::from_pcm(&pcm);
        assert_eq!(clip.frames(), 3);
        let mut src = LoopingClip::times(clip.clone(), 2);
        let mut out = [0u8; FRAME_SAMPLES];
        let mut frames = Vec::new();
        while src.next_frame(Law::Mu, &mut out) == SourceFrame::Audio {
            frames.push(out);
        }
        assert_eq!(frames.len(), 6);
        assert_eq!(frames[0], frames[3]);
        assert_eq!(frames[0][1], Law::Mu.encode_sample(50));
        // Padding of the partial last frame.
        assert_eq!(frames[2][100], Law::Mu.silence());
        let mut a = LoopingClip::new(clip);
        assert_eq!(a.next_frame(Law::A, &mut out), SourceFrame::Audio);
        assert_eq!(out[1], Law::A.encode_sample(50));
        assert_eq!(Silence.next_frame(Law::A, &mut out), SourceFrame::Audio);
        assert!(out.iter().all(|&b| b == Law::A.silence()));
    }
}
