//! The recording's side on the media loop: a [`FrameSink`] per channel that places each
//! received frame on the recording's timeline and queues it for the writer.
//!
//! # Placement
//!
//! A channel's first packet is placed at its arrival time (relative to the recording's start);
//! every later packet of the same SSRC at that anchor plus its RTP timestamp difference
//! (converted from the codec's clock, 48 kHz for Opus, to the file's 8 kHz), so a
//! gap in the timestamps (loss, silence suppression) is a gap in the file (silence) and a
//! reordered packet goes back to its place. Following the sender's clock rather than arrival
//! keeps the jitter out of the recording. Three things move the anchor:
//!
//! - a new SSRC (the sender restarted): re-anchored at the packet's arrival;
//! - a packet whose timestamp places it more than 1 s away from its arrival (a timestamp
//!   jump, or a sender that froze its clock during silence): re-anchored likewise;
//! - drift: over every 2 s of packets the smallest `arrival - placement` is taken (the least
//!   delayed packet); if it is beyond ±60 ms the anchor moves by it, so a sender whose clock
//!   runs fast or slow, or a first packet that arrived late, never pulls one channel away from
//!   the other by more than that.
//!
//! The placement state outlives the sink: a later sink for the same channel (the engine swaps
//! sinks) carries on from it.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use switchboard_media::runtime::{FrameSink, ReceivedFrame};

use super::ring::Ring;
use super::Channel;

/// Samples per second.
const RATE: i64 = 8000;
/// Re-anchor when a packet's placement is this far from its arrival (1 s).
const MAX_SKEW: i64 = RATE;
/// Move the anchor when the least-delayed packet of a window is this far off (60 ms).
const DRIFT_LIMIT: i64 = RATE * 60 / 1000;
/// Length of a drift window (2 s of arrival time).
const DRIFT_WINDOW: i64 = 2 * RATE;

/// Where the newest packet of the current source went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Anchor {
    ssrc: u32,
    timestamp: u32,
    pos: i64,
}

/// The sans-IO placement rule (see the module docs). Positions are samples since the
/// recording started.
#[derive(Debug, Clone, Default)]
pub(crate) struct Placer {
    anchor: Option<Anchor>,
    /// Smallest `arrival - placement` of the current drift window.
    window_min: i64,
    /// Arrival position at which the current drift window closes.
    window_end: i64,
    /// Times the anchor moved (new SSRC, jump, drift).
    pub(crate) reanchors: u64,
}

impl Placer {
    /// The position of a packet with `ssrc` and RTP `timestamp` (8 kHz clock) that arrived
    /// at `arrival`.
    #[cfg(test)]
    pub(crate) fn place(&mut self, ssrc: u32, timestamp: u32, arrival: i64) -> i64 {
        self.place_clocked(ssrc, timestamp, 1, arrival)
    }

    /// [`Placer::place`] for a stream whose RTP clock runs `ticks_per_sample` times the
    /// file's 8 kHz (6 for Opus).
    pub(crate) fn place_clocked(
        &mut self,
        ssrc: u32,
        timestamp: u32,
        ticks_per_sample: i64,
        arrival: i64,
    ) -> i64 {
        if let Some(a) = self.anchor.filter(|a| a.ssrc == ssrc) {
            let delta =
                i64::from(timestamp.wrapping_sub(a.timestamp) as i32) / ticks_per_sample.max(1);
            let mut pos = a.pos + delta;
            let skew = arrival - pos;
            if skew.abs() <= MAX_SKEW {
                self.window_min = self.window_min.min(skew);
                if arrival >= self.window_end {
                    let shift = self.window_min;
                    if shift.abs() > DRIFT_LIMIT {
                        pos += shift;
                        self.reanchors += 1;
                        self.anchor = Some(Anchor {
                            ssrc,
                            timestamp,
                            pos,
                        });
                    }
                    self.open_window(arrival);
                }
                if delta > 0 {
                    self.anchor = Some(Anchor {
                        ssrc,
                        timestamp,
                        pos,
                    });
                }
                return pos;
            }
        }
        if self.anchor.is_some() {
            self.reanchors += 1;
        }
        self.anchor = Some(Anchor {
            ssrc,
            timestamp,
            pos: arrival,
        });
        self.open_window(arrival);
        arrival
    }

    fn open_window(&mut self, arrival: i64) {
        self.window_min = i64::MAX;
        self.window_end = arrival + DRIFT_WINDOW;
    }
}

/// What a channel keeps between sinks.
#[derive(Debug, Default)]
pub(crate) struct Saved {
    placer: Placer,
    /// The recording's start on the frames' arrival clock (ns), once known.
    origin_ns: Option<i128>,
}

/// The state of one channel shared by its sinks (producers) and the writer (consumer).
#[derive(Debug)]
pub(crate) struct ChannelShared {
    pub(crate) ring: Ring,
    /// Id of the sink that owns the ring now (0: none).
    owner: AtomicU64,
    /// Taken when a sink claims or releases the channel, never per packet.
    saved: Mutex<Saved>,
    /// Frames refused because another sink owned the channel.
    pub(crate) refused: AtomicU64,
    /// Times the placement anchor moved.
    pub(crate) reanchors: AtomicU64,
}

/// State shared by a recording's sinks, its handle and the writer.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) channels: [ChannelShared; 2],
    pub(crate) stopped: AtomicBool,
    pub(crate) started: Instant,
    next_sink: AtomicU64,
}

impl Shared {
    pub(crate) fn new(started: Instant) -> Self {
        let channel = || ChannelShared {
            ring: Ring::new(),
            owner: AtomicU64::new(0),
            saved: Mutex::new(Saved::default()),
            refused: AtomicU64::new(0),
            reanchors: AtomicU64::new(0),
        };
        Self {
            channels: [channel(), channel()],
            stopped: AtomicBool::new(false),
            started,
            next_sink: AtomicU64::new(1),
        }
    }
}

/// Records what a stream receives into one channel of a recording. Made by
/// [`Recorder::channel_sink`](super::Recorder::channel_sink); give it to
/// `StreamConfig::sink` or `StreamHandle::set_sink` (alone or in a `TeeSink`).
///
/// On the media loop it costs, per packet, the placement arithmetic and a copy of the samples
/// into a lock-free ring (see `ring.rs`): no lock, no allocation, no channel hop. One sink
/// per channel receives at a time: a sink made while another one of the same channel is
/// still attached takes over when the first one closes (is replaced, or its stream ends);
/// until then its frames are refused and counted.
pub struct ChannelSink {
    shared: Arc<Shared>,
    channel: usize,
    id: u64,
    /// The channel's saved state while this sink owns it.
    state: Option<Saved>,
}

impl core::fmt::Debug for ChannelSink {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChannelSink")
            .field("channel", &self.channel)
            .field("owns", &self.state.is_some())
            .finish()
    }
}

impl ChannelSink {
    pub(crate) fn new(shared: Arc<Shared>, channel: Channel) -> Self {
        let id = shared.next_sink.fetch_add(1, Ordering::Relaxed);
        Self {
            shared,
            channel: channel.index(),
            id,
            state: None,
        }
    }

    /// The recording channel this sink feeds.
    pub fn channel(&self) -> Channel {
        if self.channel == 0 {
            Channel::Left
        } else {
            Channel::Right
        }
    }

    fn chan(&self) -> &ChannelShared {
        &self.shared.channels[self.channel]
    }

    /// Takes ownership of the channel's ring (once per sink, not per packet).
    fn claim(&mut self) -> bool {
        if self.state.is_some() {
            return true;
        }
        let ch = &self.shared.channels[self.channel];
        if ch
            .owner
            .compare_exchange(0, self.id, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            ch.refused.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let mut saved = ch.saved.lock().unwrap_or_else(PoisonError::into_inner);
        self.state = Some(core::mem::take(&mut *saved));
        true
    }

    /// Gives the channel back (with its placement state) for a later sink.
    fn release(&mut self) {
        let Some(state) = self.state.take() else {
            return;
        };
        let ch = &self.shared.channels[self.channel];
        *ch.saved.lock().unwrap_or_else(PoisonError::into_inner) = state;
        ch.owner.store(0, Ordering::Release);
    }

    /// Places and queues one packet's samples that arrived at `arrival_ns` on the stream's
    /// clock (ns); `now_since_start_ns` is the recording's elapsed time at that moment, used
    /// once to relate the two clocks.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        ssrc: u32,
        timestamp: u32,
        ticks_per_sample: i64,
        arrival_ns: i128,
        now_since_start_ns: impl FnOnce() -> i128,
        pcm: &[i16],
    ) {
        if self.shared.stopped.load(Ordering::Relaxed) {
            self.release();
            return;
        }
        if !self.claim() {
            return;
        }
        let Some(state) = self.state.as_mut() else {
            return;
        };
        let origin = *state
            .origin_ns
            .get_or_insert_with(|| arrival_ns - now_since_start_ns());
        let arrival = ((arrival_ns - origin) * i128::from(RATE) / 1_000_000_000) as i64;
        let before = state.placer.reanchors;
        let pos = state
            .placer
            .place_clocked(ssrc, timestamp, ticks_per_sample, arrival);
        let moved = state.placer.reanchors - before;
        let ch = self.chan();
        if moved > 0 {
            ch.reanchors.fetch_add(moved, Ordering::Relaxed);
        }
        ch.ring.push(pos, pcm);
    }
}

impl FrameSink for ChannelSink {
    fn on_frame(&mut self, frame: &ReceivedFrame<'_>) {
        let started = self.shared.started;
        self.record(
            frame.ssrc,
            frame.timestamp,
            i64::from(frame.codec.clock_rate() / 8000),
            frame.arrival.as_nanos() as i128,
            || started.elapsed().as_nanos() as i128,
            frame.pcm,
        );
    }

    fn on_close(&mut self) {
        self.release();
    }
}

impl Drop for ChannelSink {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: i64 = 160;

    #[test]
    fn follows_timestamps_through_jitter_loss_and_reordering() {
        let mut p = Placer::default();
        let ts0 = 4_000_000_000u32; // wraps during the test
                                    // First packet arrives at 1000 (samples since the start): the anchor.
        assert_eq!(p.place(7, ts0, 1000), 1000);
        // Jittered arrivals do not move packets.
        assert_eq!(p.place(7, ts0.wrapping_add(160), 1000 + F + 90), 1000 + F);
        // Two packets lost: a gap of 3 frames.
        assert_eq!(
            p.place(7, ts0.wrapping_add(640), 1000 + 4 * F),
            1000 + 4 * F
        );
        // Reordered: an older packet goes back to its place.
        assert_eq!(
            p.place(7, ts0.wrapping_add(320), 1000 + 4 * F + 5),
            1000 + 2 * F
        );
        // Across the 32-bit timestamp wrap.
        let far = 400_000_000u32; // 50 000 s later in timestamp units, the sum wraps
        let at = 1000 + i64::from(far);
        assert!(ts0.checked_add(far).is_none());
        // Arrival consistent with the timestamp: no re-anchoring (walk there in 0.5 s steps).
        let mut ts = ts0.wrapping_add(640);
        let mut pos = 1000 + 4 * F;
        while pos + 4000 < at {
            ts = ts.wrapping_add(4000);
            pos += 4000;
            assert_eq!(p.place(7, ts, pos), pos);
        }
        assert_eq!(p.reanchors, 0);
    }

    #[test]
    fn opus_timestamps_are_placed_on_the_8khz_timeline() {
        let mut p = Placer::default();
        let ts0 = u32::MAX - 960; // the 48 kHz clock wraps after the first packet
        assert_eq!(p.place_clocked(3, ts0, 6, 500), 500);
        assert_eq!(
            p.place_clocked(3, ts0.wrapping_add(960), 6, 500 + F + 40),
            500 + F
        );
        // One 20 ms frame lost, then a reordered one.
        assert_eq!(
            p.place_clocked(3, ts0.wrapping_add(3 * 960), 6, 500 + 3 * F),
            500 + 3 * F
        );
        assert_eq!(
            p.place_clocked(3, ts0.wrapping_add(2 * 960), 6, 500 + 3 * F + 9),
            500 + 2 * F
        );
        assert_eq!(p.reanchors, 0);
    }

    #[test]
    fn new_ssrc_and_timestamp_jumps_reanchor_at_arrival() {
        let mut p = Placer::default();
        assert_eq!(p.place(1, 0, 0), 0);
        assert_eq!(p.place(1, 160, 160), 160);
        // The sender restarts with a new SSRC and random timestamp.
        assert_eq!(p.place(2, 123_456, 800), 800);
        assert_eq!(p.place(2, 123_456 + 160, 960), 960);
        assert_eq!(p.reanchors, 1);
        // Same SSRC, timestamp jumps 10 minutes ahead: placed at arrival instead.
        assert_eq!(p.place(2, 123_456 + 4_800_000, 1120), 1120);
        assert_eq!(p.place(2, 123_456 + 4_800_160, 1280), 1280);
        // A sender that froze its timestamp during 3 s of silence.
        assert_eq!(
            p.place(2, 123_456 + 4_800_320, 1280 + 24_000),
            1280 + 24_000
        );
        assert_eq!(p.reanchors, 3);
    }

    #[test]
    fn drift_beyond_60_ms_is_corrected_once_per_window() {
        let mut p = Placer::default();
        // The first packet came 100 ms late: later packets arrive "early" by 100 ms.
        assert_eq!(p.place(9, 0, 800), 800);
        let mut last = 0;
        for k in 1..=150i64 {
            last = p.place(9, (k * F) as u32, k * F);
        }
        // After the first 2 s window the anchor moved back by 100 ms.
        assert_eq!(last, 150 * F);
        assert_eq!(p.reanchors, 1);
        // A sender clock 0.5 % slow (timestamps advance 159.2 per 160 arrivals): drift is
        // corrected in steps, never more than the limit plus one window's drift.
        let mut p = Placer::default();
        let mut worst = 0i64;
        for k in 0..3000i64 {
            let ts = (k * 1592 / 10) as u32;
            let pos = p.place(3, ts, k * F);
            worst = worst.max((k * F - pos).abs());
        }
        assert!(worst <= DRIFT_LIMIT + DRIFT_WINDOW / 200 + F, "{worst}");
        assert!(p.reanchors >= 3);
    }

    fn sink(shared: &Arc<Shared>, ch: Channel) -> ChannelSink {
        ChannelSink::new(shared.clone(), ch)
    }

    fn drain(shared: &Shared, ch: usize) -> Vec<(i64, usize)> {
        let mut v = Vec::new();
        shared.channels[ch].ring.drain(|p, s| v.push((p, s.len())));
        v
    }

    #[test]
    fn sinks_anchor_on_the_recording_clock_and_hand_over_their_state() {
        let shared = Arc::new(Shared::new(Instant::now()));
        let mut a = sink(&shared, Channel::Left);
        let pcm = [0i16; 160];
        // The stream's clock says 5 s; the recording has run 0.25 s: origin = 4.75 s.
        a.record(1, 100, 1, 5_000_000_000, || 250_000_000, &pcm);
        a.record(1, 260, 1, 5_020_000_000, || unreachable!(), &pcm);
        assert_eq!(drain(&shared, 0), [(2000, 160), (2160, 160)]);
        // A second sink for the channel is refused while the first owns it...
        let mut b = sink(&shared, Channel::Left);
        b.record(1, 420, 1, 5_040_000_000, || unreachable!(), &pcm);
        assert_eq!(shared.channels[0].refused.load(Ordering::Relaxed), 1);
        // ...and carries on from its placement once it is closed.
        a.on_close();
        b.record(1, 420, 1, 5_040_000_000, || unreachable!(), &pcm);
        assert_eq!(drain(&shared, 0), [(2320, 160)]);
        // The right channel anchors on its own (a late start).
        let mut r = sink(&shared, Channel::Right);
        assert_eq!(r.channel(), Channel::Right);
        r.record(5, 9, 1, 7_000_000_000, || 2_250_000_000, &pcm);
        assert_eq!(drain(&shared, 1), [(18_000, 160)]);
        // After stop, nothing more is queued and the channel is released.
        shared.stopped.store(true, Ordering::Relaxed);
        b.record(1, 580, 1, 5_060_000_000, || unreachable!(), &pcm);
        assert!(drain(&shared, 0).is_empty());
        assert_eq!(shared.channels[0].owner.load(Ordering::Relaxed), 0);
        drop(r);
        assert_eq!(shared.channels[1].owner.load(Ordering::Relaxed), 0);
    }
}
