//! What flows in and out of a stream: [`FrameSource`] (the next 20 ms to send) and
//! [`FrameSink`] (each received frame, decoded, plus the session's events). Sinks are how
//! AMD, recording and the carrier simulator consume audio; sources are how playback feeds it.
//!
//! Both run on the media loop that owns the stream, once per packet or tick: they must not
//! block, and should not allocate.

use core::time::Duration;
use std::sync::Arc;

use crate::codec::Codec;
use crate::g711::Law;
use crate::session::{SessionEvent, FRAME_SAMPLES};
use crate::stats::{ReceiveStats, SeqStatus};

/// What a source produced for one 20 ms interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFrame {
    /// `out` holds the frame to send (160 G.711 bytes, or 160 PCM samples).
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

/// Produces the audio a stream sends, one 20 ms frame per pacing tick: G.711 streams call
/// [`FrameSource::next_frame`], Opus streams [`FrameSource::next_pcm`] (and encode).
pub trait FrameSource: Send + 'static {
    /// Writes the next 20 ms of audio, G.711-encoded with `law` (the stream's codec), into
    /// `out`.
    fn next_frame(&mut self, law: Law, out: &mut [u8; FRAME_SAMPLES]) -> SourceFrame;

    /// Writes the next 20 ms as 8 kHz PCM into `out` (for streams whose codec is not
    /// G.711). The default takes [`FrameSource::next_frame`] in μ-law and decodes it (μ-law's
    /// quantization noise lies below what Opus keeps at telephony bitrates); sources that
    /// hold PCM override it.
    fn next_pcm(&mut self, out: &mut [i16; FRAME_SAMPLES]) -> SourceFrame {
        let mut coded = [Law::Mu.silence(); FRAME_SAMPLES];
        let f = self.next_frame(Law::Mu, &mut coded);
        if matches!(f, SourceFrame::Audio | SourceFrame::Lost) {
            for (o, &c) in out.iter_mut().zip(&coded) {
                *o = Law::Mu.decode_sample(c);
            }
        }
        f
    }
}

/// Digital silence, forever (keeps NAT bindings open and the peer's jitter buffer fed).
#[derive(Debug, Clone, Copy, Default)]
pub struct Silence;

impl FrameSource for Silence {
    fn next_frame(&mut self, law: Law, out: &mut [u8; FRAME_SAMPLES]) -> SourceFrame {
        out.fill(law.silence());
        SourceFrame::Audio
    }

    fn next_pcm(&mut self, out: &mut [i16; FRAME_SAMPLES]) -> SourceFrame {
        out.fill(0);
        SourceFrame::Audio
    }
}

/// A clip of 8 kHz audio encoded once in both laws and kept as PCM (for Opus streams),
/// shared by every stream that plays it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clip {
    mu: Box<[u8]>,
    a: Box<[u8]>,
    pcm: Box<[i16]>,
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
        let mut pcm = vec![0i16; frames * FRAME_SAMPLES];
        pcm[..samples.len()].copy_from_slice(samples);
        Arc::new(Self {
            mu: encode(Law::Mu),
            a: encode(Law::A),
            pcm: pcm.into_boxed_slice(),
        })
    }

    /// The clip's 8 kHz samples (padded to whole frames).
    pub fn pcm(&self) -> &[i16] {
        &self.pcm
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

    fn pcm_frame(&self, index: usize) -> &[i16] {
        let at = (index % self.frames()) * FRAME_SAMPLES;
        &self.pcm[at..at + FRAME_SAMPLES]
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

impl LoopingClip {
    /// Takes the next frame's index, or `None` when finished.
    fn advance(&mut self) -> Option<usize> {
        if let Some(left) = self.left.as_mut() {
            if *left == 0 {
                return None;
            }
            *left -= 1;
        }
        let at = self.next;
        self.next = (self.next + 1) % self.clip.frames();
        Some(at)
    }
}

impl FrameSource for LoopingClip {
    fn next_frame(&mut self, law: Law, out: &mut [u8; FRAME_SAMPLES]) -> SourceFrame {
        match self.advance() {
            Some(at) => {
                out.copy_from_slice(self.clip.frame(law, at));
                SourceFrame::Audio
            }
            None => SourceFrame::End,
        }
    }

    fn next_pcm(&mut self, out: &mut [i16; FRAME_SAMPLES]) -> SourceFrame {
        match self.advance() {
            Some(at) => {
                out.copy_from_slice(self.clip.pcm_frame(at));
                SourceFrame::Audio
            }
            None => SourceFrame::End,
        }
    }
}

/// One received audio packet, as given to a [`FrameSink`].
#[derive(Debug, Clone, Copy)]
pub struct ReceivedFrame<'a> {
    /// Decoded 8 kHz samples (160 for a 20 ms packet), whatever the codec.
    pub pcm: &'a [i16],
    /// The payload as received (G.711 bytes or an Opus packet; empty when `concealed`).
    pub payload: &'a [u8],
    /// Codec of the payload.
    pub codec: Codec,
    /// The frame was lost and `pcm` is the Opus decoder's concealment (or in-band FEC) of
    /// it; `sequence` and `timestamp` are the lost packet's.
    pub concealed: bool,
    /// RTP sequence number.
    pub sequence: u16,
    /// RTP timestamp, in the codec's clock ([`Codec::clock_rate`]: 48 kHz for Opus); place
    /// frames by it, e.g. to keep recording channels aligned.
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

    #[test]
    fn pcm_frames_for_opus_streams() {
        let pcm: Vec<i16> = (0..400).map(|i| (i * 50) as i16).collect();
        let clip = Clip::from_pcm(&pcm);
        assert_eq!(clip.pcm().len(), 480);
        let mut src = LoopingClip::once(clip);
        let mut out = [0i16; FRAME_SAMPLES];
        let mut frames = Vec::new();
        while src.next_pcm(&mut out) == SourceFrame::Audio {
            frames.extend_from_slice(&out);
        }
        // Exact samples (no G.711 on the way), the partial frame padded with zeros.
        assert_eq!(&frames[..400], &pcm[..]);
        assert!(frames[400..].iter().all(|&s| s == 0));
        out.fill(7);
        assert_eq!(Silence.next_pcm(&mut out), SourceFrame::Audio);
        assert!(out.iter().all(|&s| s == 0));

        // A source with only next_frame: its μ-law frames decoded.
        struct Tone;
        impl FrameSource for Tone {
            fn next_frame(&mut self, law: Law, out: &mut [u8; FRAME_SAMPLES]) -> SourceFrame {
                out.fill(law.encode_sample(1000));
                SourceFrame::Audio
            }
        }
        assert_eq!(Tone.next_pcm(&mut out), SourceFrame::Audio);
        let want = Law::Mu.decode_sample(Law::Mu.encode_sample(1000));
        assert!(out.iter().all(|&s| s == want));
    }
}
