//! Recording one call's audio for `switchboard call --record`: a sink that places received
//! frames by their RTP timestamps, and a source wrapper that keeps what is sent. Both write
//! into buffers reserved up front (no allocation per packet; frames past the reservation are
//! not kept) and hand them over when the media loop drops them at the stream's close.

use std::time::{Duration, Instant};

use switchboard_media::g711::Law;
use switchboard_media::runtime::{FrameSink, FrameSource, ReceivedFrame, SourceFrame};
use tokio::sync::oneshot;

const RATE: usize = crate::audio::RATE as usize;

/// Keeps received audio, aligned to the time the stream was opened.
pub struct RecordSink {
    buf: Vec<i16>,
    /// First packet's RTP timestamp and its sample position.
    base: Option<(u32, usize)>,
    /// Runtime time at which the stream was opened.
    opened_at: Duration,
    done: Option<oneshot::Sender<Vec<i16>>>,
}

impl RecordSink {
    /// A sink keeping up to `max` of audio; the buffer arrives on the receiver when dropped.
    pub fn new(opened_at: Duration, max: Duration) -> (RecordSink, oneshot::Receiver<Vec<i16>>) {
        let (tx, rx) = oneshot::channel();
        let cap = (max.as_secs_f64() * RATE as f64) as usize;
        let sink = RecordSink {
            buf: Vec::with_capacity(cap),
            base: None,
            opened_at,
            done: Some(tx),
        };
        (sink, rx)
    }
}

impl FrameSink for RecordSink {
    fn on_frame(&mut self, frame: &ReceivedFrame<'_>) {
        let (ts0, at0) = *self.base.get_or_insert_with(|| {
            let since = frame.arrival.saturating_sub(self.opened_at);
            (
                frame.timestamp,
                (since.as_secs_f64() * RATE as f64) as usize,
            )
        });
        let delta = frame.timestamp.wrapping_sub(ts0);
        if delta > u32::MAX / 2 {
            return; // older than the first packet
        }
        let at = at0 + delta as usize;
        let end = at + frame.pcm.len();
        if end > self.buf.capacity() {
            return;
        }
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        self.buf[at..end].copy_from_slice(frame.pcm);
    }
}

impl Drop for RecordSink {
    fn drop(&mut self) {
        if let Some(tx) = self.done.take() {
            let _ = tx.send(std::mem::take(&mut self.buf));
        }
    }
}

/// Passes `inner`'s frames through and keeps them (decoded), aligned to `opened`.
pub struct RecordSource<S> {
    inner: S,
    buf: Vec<i16>,
    opened: Instant,
    pos: Option<usize>,
    done: Option<oneshot::Sender<Vec<i16>>>,
}

impl<S: FrameSource> RecordSource<S> {
    pub fn new(
        inner: S,
        opened: Instant,
        max: Duration,
    ) -> (RecordSource<S>, oneshot::Receiver<Vec<i16>>) {
        let (tx, rx) = oneshot::channel();
        let cap = (max.as_secs_f64() * RATE as f64) as usize;
        let src = RecordSource {
            inner,
            buf: Vec::with_capacity(cap),
            opened,
            pos: None,
            done: Some(tx),
        };
        (src, rx)
    }
}

impl<S: FrameSource> FrameSource for RecordSource<S> {
    fn next_frame(&mut self, law: Law, out: &mut [u8; 160]) -> SourceFrame {
        let f = self.inner.next_frame(law, out);
        let opened = self.opened;
        // The first frame goes out when the call is answered: place it by the clock once.
        let at = *self
            .pos
            .get_or_insert_with(|| (opened.elapsed().as_secs_f64() * RATE as f64) as usize);
        let end = at + out.len();
        self.pos = Some(end);
        if end <= self.buf.capacity() {
            if self.buf.len() < end {
                self.buf.resize(end, 0);
            }
            if f == SourceFrame::Audio {
                let _ = law.decode(out, &mut self.buf[at..end]);
            }
        }
        f
    }
}

impl<S> Drop for RecordSource<S> {
    fn drop(&mut self) {
        if let Some(tx) = self.done.take() {
            let _ = tx.send(std::mem::take(&mut self.buf));
        }
    }
}
