//! Per-stream RTP receive statistics (RFC 3550 Appendix A.1, A.3 and §6.4.1), sans-IO.
//!
//! Feed every RTP packet of one SSRC to [`ReceiveStats::on_packet`] in arrival order with its
//! arrival time (a [`Duration`] since any fixed origin, e.g. the start of the stream; the
//! caller owns the clock). Read a cumulative [`StreamStats`] snapshot at any time, and take an
//! [`IntervalReport`] every RTCP interval / every 5 s quality update. State is a few dozen
//! bytes of fixed-size fields: nothing allocates per packet.
//!
//! # What is counted, and how it compares with Wireshark (`tshark -z rtp,streams`)
//!
//! - **Sequence validation** is RFC 3550 A.1 verbatim: a new source is on probation until
//!   `MIN_SEQUENTIAL` (2) packets in sequence arrived; those probation packets are not in
//!   `received` and the base sequence is the packet that ends probation. A forward jump of
//!   `MAX_DROPOUT` (3000) or more, or a backward jump of more than `MAX_MISORDER` (100), is held
//!   as `bad_seq` and not counted; if the next packet follows it, the source restarted and the
//!   A.1/A.3 counters start again (counted in `restarts`). Wraps at 65536 add a cycle.
//! - **Loss** is A.3: `expected = extended_max - base_seq + 1`, `lost = expected - received`.
//!   Duplicates are counted in `received` (as in A.1), so `lost` can go negative, exactly like
//!   Wireshark's "Lost" column, which is `expected - packets` with negative values kept.
//!   Wireshark has no probation: its expected starts at the first packet. The two agree
//!   whenever no packet is lost between the first two packets of the stream, the last packet
//!   of the capture is also the highest sequence number, and the source never restarts.
//!   [`StreamStats::packets`] counts every packet given to `on_packet` (Wireshark's "Packets").
//! - In [`IntervalReport`] (what goes into RTCP) cumulative loss is clamped to
//!   `0..=0x7FFFFF` (never negative: duplicates never show as negative loss on the wire) and
//!   the fraction lost to `0..=255` (A.3 would give 256 when every packet of an interval was
//!   lost, which does not fit 8 bits).
//! - **Duplicates** are detected with a 128-bit window of the sequence numbers at and below
//!   the highest one (MAX_MISORDER is 100, so every packet A.1 accepts as reordered is inside
//!   it). **Out of order** counts packets older than the highest sequence seen that are not
//!   duplicates. **Late** is the subset of out-of-order packets that arrive more than
//!   [`StatsConfig::late_after`] after their nominal arrival time, measured against the packet
//!   holding the highest sequence number: `(arrival - arrival_max) + (ts_max - ts) / rate`
//!   (a packet a jitter buffer of that depth would have discarded).
//! - **Jitter** is §6.4.1: for each packet in arrival order (probation, duplicate and
//!   reordered packets included), `D = (Rj - Ri) - (Sj - Si)` in timestamp units with the
//!   arrival time converted with the clock rate, `J += (|D| - J) / 16`. Timestamp differences
//!   are taken modulo 2^32 (timestamp wrap is harmless). Telephone-event packets (RFC 4733,
//!   whose timestamp stays at the event start) do not update `J` but become the reference for
//!   the next packet, as in Wireshark. Wireshark computes the same filter in ms (dividing by
//!   the integer `rate / 1000`). For reordered packets (timestamp going backwards) it depends
//!   on the version. Wireshark 4.0 (Debian 12's tshark 4.0.17, which CI compares with)
//!   measures a reordered packet against its predecessor in arrival order and makes it the
//!   reference for the next packet, exactly as here; it only skips packets whose timestamp is
//!   before the first packet's (more than 2^31 units behind it), which are measured here like
//!   any other. Later Wireshark releases instead measure a reordered packet against the last
//!   packet whose timestamp did not go backwards and never use it as the next reference.
//!   [`crate::analyze`] reproduces the 4.0 computation, in ms.
//! - **Max jitter, mean jitter and max delta** follow Wireshark's "regular packet" rule: the
//!   first packet, packets with the **marker bit**, comfort-noise packets and the packet after
//!   one, and packets whose timestamp goes backwards are left out (telephone events are left out
//!   of the jitter figures but not of the delta). The delta is the arrival gap to the last
//!   packet whose timestamp did not go backwards. "Goes backwards" is the later Wireshark
//!   rule (behind the last such packet); Wireshark 4.0 leaves out only packets before the
//!   first packet's timestamp and takes the delta to the previous such packet (see
//!   [`crate::analyze`]). The mean jitter uses Wireshark's running
//!   formula `mean = (mean * (n - 1) + J) / n` with `n` the number of packets before this one
//!   (so it equals the plain mean of J over packets 2..=n when every packet is regular).
//!
//! # RTT
//!
//! [`rtt`] turns the LSR/DLSR of a received report block and the arrival time of that RTCP
//! packet into a round-trip time (RFC 3550 §6.4.1, Figure 2).

use core::time::Duration;

use crate::rtcp::{compact_to_duration, duration_to_compact, NtpTimestamp, ReportBlock};

/// Sequence numbers are 16 bits.
pub const RTP_SEQ_MOD: u32 = 1 << 16;
/// A.1: largest forward jump still taken as loss rather than a restart.
pub const MAX_DROPOUT: u16 = 3000;
/// A.1: largest backward jump still taken as reordering.
pub const MAX_MISORDER: u16 = 100;
/// A.1: packets in sequence needed before a source is valid.
pub const MIN_SEQUENTIAL: u32 = 2;
/// Largest cumulative loss a report block can carry (24-bit signed maximum).
pub const MAX_CUMULATIVE_LOST: i64 = 0x7f_ffff;

/// Configuration of one stream's statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsConfig {
    /// RTP clock rate of the payload (8000 for PCMU/PCMA, 48000 for Opus).
    pub clock_rate: u32,
    /// An out-of-order packet later than this past its nominal arrival counts as late.
    pub late_after: Duration,
}

impl StatsConfig {
    /// A stream with the given clock rate and a 60 ms late threshold (a typical fixed jitter
    /// buffer depth for 20 ms frames).
    pub const fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate,
            late_after: Duration::from_millis(60),
        }
    }
}

/// What a packet is, for the jitter and delta rules (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PacketClass {
    /// Ordinary media.
    #[default]
    Media,
    /// Comfort noise (payload type 13 or 19).
    ComfortNoise,
    /// RFC 4733 telephone event (DTMF).
    TelephoneEvent,
}

/// How [`ReceiveStats::on_packet`] classified a packet's sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqStatus {
    /// The source is still on probation (A.1); the packet is not counted as received.
    Probation,
    /// Next in sequence, or ahead with a gap smaller than MAX_DROPOUT (the gap is loss).
    InOrder,
    /// Same sequence number as a packet already received.
    Duplicate,
    /// Older than the highest sequence number seen, not seen before.
    OutOfOrder {
        /// Whether it arrived later than `late_after` past its nominal time.
        late: bool,
    },
    /// A large jump, held as `bad_seq` and not counted (A.1).
    Held,
    /// The packet followed a held one: the source restarted and counting began again.
    Restarted,
}

/// Cumulative statistics of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StreamStats {
    /// Every packet given to `on_packet` (Wireshark's "Packets").
    pub packets: u64,
    /// A.1 `received`: packets counted since validation (duplicates included).
    pub received: u64,
    /// A.3 `expected` since validation.
    pub expected: u64,
    /// A.3 `lost = expected - received`, unclamped (negative with duplicates).
    pub lost: i64,
    /// Duplicate packets.
    pub duplicates: u64,
    /// Reordered (older than the highest, not duplicate) packets.
    pub out_of_order: u64,
    /// Out-of-order packets later than the configured threshold.
    pub late: u64,
    /// Packets held as a possible restart (A.1 `bad_seq`) and not counted.
    pub held: u64,
    /// Source restarts detected (A.1).
    pub restarts: u64,
    /// Whether the source passed probation.
    pub validated: bool,
    /// Extended highest sequence number (cycles << 16 | max_seq).
    pub extended_highest_seq: u32,
    /// Current interarrival jitter in timestamp units.
    pub jitter: f64,
    /// Current interarrival jitter in ms.
    pub jitter_ms: f64,
    /// Largest jitter over regular packets, ms.
    pub max_jitter_ms: f64,
    /// Mean jitter over regular packets (Wireshark formula), ms.
    pub mean_jitter_ms: f64,
    /// Largest arrival gap over regular packets, ms.
    pub max_delta_ms: f64,
}

impl StreamStats {
    /// Loss in percent of expected (0 when nothing was expected, never negative).
    pub fn loss_percent(&self) -> f64 {
        if self.expected == 0 || self.lost <= 0 {
            0.0
        } else {
            self.lost as f64 * 100.0 / self.expected as f64
        }
    }
}

/// One interval's report: the content of an RTCP report block plus quality figures.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct IntervalReport {
    /// Extended highest sequence number received.
    pub extended_highest_seq: u32,
    /// Packets expected in this interval.
    pub expected_interval: u64,
    /// Packets received in this interval (duplicates included).
    pub received_interval: u64,
    /// `expected_interval - received_interval` (may be negative).
    pub lost_interval: i64,
    /// Fraction lost in this interval in 1/256, 0 when nothing was lost or expected.
    pub fraction_lost: u8,
    /// Cumulative loss clamped to `0..=0x7FFFFF`.
    pub cumulative_lost: i32,
    /// Jitter in timestamp units (as carried in RTCP).
    pub jitter: u32,
    /// Jitter in ms.
    pub jitter_ms: f64,
    /// Largest jitter over regular packets of this interval, ms.
    pub max_jitter_ms: f64,
    /// LSR: middle 32 bits of the last SR's NTP timestamp, 0 if none.
    pub last_sr: u32,
    /// DLSR: time since that SR arrived, 1/65536 s; 0 if none.
    pub delay_since_last_sr: u32,
}

impl IntervalReport {
    /// Fraction lost as a percentage.
    pub fn fraction_lost_percent(&self) -> f64 {
        f64::from(self.fraction_lost) * 100.0 / 256.0
    }

    /// The RTCP report block for source `ssrc`.
    pub fn report_block(&self, ssrc: u32) -> ReportBlock {
        ReportBlock {
            ssrc,
            fraction_lost: self.fraction_lost,
            cumulative_lost: self.cumulative_lost,
            extended_highest_seq: self.extended_highest_seq,
            jitter: self.jitter,
            last_sr: self.last_sr,
            delay_since_last_sr: self.delay_since_last_sr,
        }
    }
}

/// Receive statistics of one RTP stream (one SSRC).
#[derive(Debug, Clone)]
pub struct ReceiveStats {
    config: StatsConfig,
    // RFC 3550 A.1 state.
    started: bool,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u32,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Bit i set: sequence `max_seq - i` was received (valid after probation).
    window: u128,
    /// Arrival and timestamp of the packet holding `max_seq`.
    max_arrival: Duration,
    max_ts: u32,
    // Counters beyond A.1.
    packets: u64,
    duplicates: u64,
    out_of_order: u64,
    late: u64,
    held: u64,
    restarts: u64,
    // §6.4.1 jitter.
    jitter: f64,
    prev: Option<(Duration, u32)>,
    // Wireshark-style regular-packet figures.
    ws_ref: Option<(Duration, u32)>,
    prev_was_cn: bool,
    max_jitter_ms: f64,
    mean_jitter_ms: f64,
    max_delta_ms: f64,
    interval_max_jitter_ms: f64,
    // Last SR received.
    last_sr: Option<(u32, Duration)>,
}

impl ReceiveStats {
    /// A fresh stream.
    pub fn new(config: StatsConfig) -> Self {
        Self {
            config,
            started: false,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: RTP_SEQ_MOD + 1,
            probation: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            window: 0,
            max_arrival: Duration::ZERO,
            max_ts: 0,
            packets: 0,
            duplicates: 0,
            out_of_order: 0,
            late: 0,
            held: 0,
            restarts: 0,
            jitter: 0.0,
            prev: None,
            ws_ref: None,
            prev_was_cn: false,
            max_jitter_ms: 0.0,
            mean_jitter_ms: 0.0,
            max_delta_ms: 0.0,
            interval_max_jitter_ms: 0.0,
            last_sr: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> StatsConfig {
        self.config
    }

    /// Accounts one media packet (see [`ReceiveStats::on_packet_class`]).
    pub fn on_packet(
        &mut self,
        arrival: Duration,
        seq: u16,
        rtp_ts: u32,
        marker: bool,
    ) -> SeqStatus {
        self.on_packet_class(arrival, seq, rtp_ts, marker, PacketClass::Media)
    }

    /// Accounts one packet of the stream arriving at `arrival` with its sequence number,
    /// timestamp, marker bit and class; returns how its sequence number was classified.
    pub fn on_packet_class(
        &mut self,
        arrival: Duration,
        seq: u16,
        rtp_ts: u32,
        marker: bool,
        class: PacketClass,
    ) -> SeqStatus {
        let packets_before = self.packets;
        self.packets += 1;
        let status = self.update_seq(arrival, seq, rtp_ts);
        self.update_timing(arrival, rtp_ts, marker, class, packets_before);
        status
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
        self.window = 1;
    }

    fn set_max(&mut self, arrival: Duration, rtp_ts: u32) {
        self.max_arrival = arrival;
        self.max_ts = rtp_ts;
    }

    /// RFC 3550 A.1 `update_seq`, plus duplicate / reorder / late classification.
    fn update_seq(&mut self, arrival: Duration, seq: u16, rtp_ts: u32) -> SeqStatus {
        if !self.started {
            self.started = true;
            self.init_seq(seq);
            self.max_seq = seq.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
        }
        let udelta = seq.wrapping_sub(self.max_seq);
        let status = if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.set_max(arrival, rtp_ts);
                    self.received += 1;
                    return SeqStatus::InOrder;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return SeqStatus::Probation;
        } else if udelta < MAX_DROPOUT {
            if udelta == 0 {
                // Same as the highest: the window's bit 0 is always set after validation.
                self.duplicates += 1;
                SeqStatus::Duplicate
            } else {
                if seq < self.max_seq {
                    self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
                }
                self.max_seq = seq;
                self.window = self.window.checked_shl(u32::from(udelta)).unwrap_or(0) | 1;
                self.set_max(arrival, rtp_ts);
                SeqStatus::InOrder
            }
        } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets after a jump: the source restarted.
                self.init_seq(seq);
                self.set_max(arrival, rtp_ts);
                self.restarts += 1;
                SeqStatus::Restarted
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                self.held += 1;
                return SeqStatus::Held;
            }
        } else {
            // Behind the highest by 1..=MAX_MISORDER: duplicate or reordered.
            let behind = self.max_seq.wrapping_sub(seq);
            let bit = 1u128 << behind; // behind <= 100 < 128
            if self.window & bit != 0 {
                self.duplicates += 1;
                SeqStatus::Duplicate
            } else {
                self.window |= bit;
                self.out_of_order += 1;
                let rate = f64::from(self.config.clock_rate.max(1));
                let since_max = arrival.as_secs_f64() - self.max_arrival.as_secs_f64();
                let ts_behind = f64::from(self.max_ts.wrapping_sub(rtp_ts) as i32) / rate;
                let late = since_max + ts_behind > self.config.late_after.as_secs_f64();
                if late {
                    self.late += 1;
                }
                SeqStatus::OutOfOrder { late }
            }
        };
        self.received += 1;
        status
    }

    fn update_timing(
        &mut self,
        arrival: Duration,
        rtp_ts: u32,
        marker: bool,
        class: PacketClass,
        packets_before: u64,
    ) {
        let rate = f64::from(self.config.clock_rate.max(1));
        // §6.4.1 jitter against the previous packet in arrival order.
        if let Some((prev_arrival, prev_ts)) = self.prev {
            if class != PacketClass::TelephoneEvent {
                let d = (arrival.as_secs_f64() - prev_arrival.as_secs_f64()) * rate
                    - f64::from(rtp_ts.wrapping_sub(prev_ts) as i32);
                self.jitter += (d.abs() - self.jitter) / 16.0;
            }
        }
        self.prev = Some((arrival, rtp_ts));

        // Wireshark-style regular-packet figures.
        let Some((ref_arrival, ref_ts)) = self.ws_ref else {
            self.ws_ref = Some((arrival, rtp_ts));
            self.prev_was_cn = class == PacketClass::ComfortNoise;
            return;
        };
        let in_time_sequence = rtp_ts.wrapping_sub(ref_ts) as i32 >= 0;
        let regular =
            !marker && in_time_sequence && class != PacketClass::ComfortNoise && !self.prev_was_cn;
        if regular {
            let delta_ms = (arrival.as_secs_f64() - ref_arrival.as_secs_f64()) * 1000.0;
            self.max_delta_ms = self.max_delta_ms.max(delta_ms);
            if class != PacketClass::TelephoneEvent {
                let j = self.jitter_ms();
                self.max_jitter_ms = self.max_jitter_ms.max(j);
                self.interval_max_jitter_ms = self.interval_max_jitter_ms.max(j);
                let n = packets_before as f64; // >= 1 here: the first packet set ws_ref
                self.mean_jitter_ms = (self.mean_jitter_ms * (n - 1.0) + j) / n;
            }
        }
        if in_time_sequence {
            self.ws_ref = Some((arrival, rtp_ts));
        }
        self.prev_was_cn = class == PacketClass::ComfortNoise;
    }

    fn jitter_ms(&self) -> f64 {
        self.jitter * 1000.0 / f64::from(self.config.clock_rate.max(1))
    }

    fn validated(&self) -> bool {
        self.started && self.probation == 0
    }

    fn extended_max(&self) -> u64 {
        u64::from(self.cycles) + u64::from(self.max_seq)
    }

    fn expected(&self) -> u64 {
        if self.validated() {
            (self.extended_max() + 1).saturating_sub(u64::from(self.base_seq))
        } else {
            0
        }
    }

    /// Records a sender report from this source arriving at `arrival` (for LSR/DLSR).
    pub fn on_sender_report(&mut self, arrival: Duration, ntp: NtpTimestamp) {
        self.last_sr = Some((ntp.mid32(), arrival));
    }

    /// Cumulative statistics now.
    pub fn snapshot(&self) -> StreamStats {
        let expected = self.expected();
        StreamStats {
            packets: self.packets,
            received: self.received,
            expected,
            lost: expected as i64 - self.received as i64,
            duplicates: self.duplicates,
            out_of_order: self.out_of_order,
            late: self.late,
            held: self.held,
            restarts: self.restarts,
            validated: self.validated(),
            extended_highest_seq: self.extended_max() as u32,
            jitter: self.jitter,
            jitter_ms: self.jitter_ms(),
            max_jitter_ms: self.max_jitter_ms,
            mean_jitter_ms: self.mean_jitter_ms,
            max_delta_ms: self.max_delta_ms,
        }
    }

    /// Closes the current interval at `now` (A.3) and returns its report; the next interval
    /// starts now. Call it when sending an RTCP report and for each quality update.
    pub fn interval_report(&mut self, now: Duration) -> IntervalReport {
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval as u64 * 256) / expected_interval).min(255) as u8
        };
        let lost = expected as i64 - self.received as i64;
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some((lsr, at)) => (lsr, duration_to_compact(now.saturating_sub(at))),
            None => (0, 0),
        };
        let report = IntervalReport {
            extended_highest_seq: self.extended_max() as u32,
            expected_interval,
            received_interval,
            lost_interval,
            fraction_lost,
            cumulative_lost: lost.clamp(0, MAX_CUMULATIVE_LOST) as i32,
            jitter: self.jitter.min(f64::from(u32::MAX)) as u32,
            jitter_ms: self.jitter_ms(),
            max_jitter_ms: self.interval_max_jitter_ms,
            last_sr,
            delay_since_last_sr,
        };
        self.interval_max_jitter_ms = 0.0;
        report
    }
}

/// Round-trip time from a report block about our stream (RFC 3550 §6.4.1):
/// `RTT = A - LSR - DLSR` in 1/65536 s, modulo 2^32, where `a_ntp_mid32` is the middle 32 bits
/// of the NTP time at which the report arrived.
///
/// `None` when `lsr` is 0 (the peer has not received an SR yet) or when DLSR exceeds the time
/// since LSR by more than 2 units (~30 µs, rounding of the compact format), which means the
/// report is inconsistent (a clock step, a corrupted block). A deficit within rounding gives 0.
pub fn rtt(a_ntp_mid32: u32, lsr: u32, dlsr: u32) -> Option<Duration> {
    if lsr == 0 {
        return None;
    }
    let since_lsr = a_ntp_mid32.wrapping_sub(lsr);
    if dlsr > since_lsr {
        return (dlsr - since_lsr <= 2).then_some(Duration::ZERO);
    }
    Some(compact_to_duration(since_lsr - dlsr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::{RtpBuilder, RtpPacket};
    use proptest::prelude::*;

    const PTIME: Duration = Duration::from_millis(20);

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Feeds packet `i` of a perfectly paced 20 ms PCMU stream starting at `seq0`/`ts0`,
    /// arriving `extra` later than nominal.
    fn feed(s: &mut ReceiveStats, seq0: u16, ts0: u32, i: u64, extra: Duration) -> SeqStatus {
        s.on_packet(
            PTIME * i as u32 + extra,
            seq0.wrapping_add(i as u16),
            ts0.wrapping_add(160 * i as u32),
            false,
        )
    }

    fn pcmu() -> ReceiveStats {
        ReceiveStats::new(StatsConfig::new(8000))
    }

    #[test]
    fn rfc3550_figure2_rtt() {
        let rtt = rtt(0xb710_8000, 0xb705_2000, 0x0005_4000).unwrap();
        assert_eq!(rtt, Duration::from_millis(6125));
        assert_eq!(super::rtt(0xb710_8000, 0, 0x0005_4000), None);
        // Wrap of the compact NTP clock between LSR and A.
        assert_eq!(
            super::rtt(0x0000_1000, 0xffff_f000, 0x0000_1000),
            Some(compact_to_duration(0x1000))
        );
        // DLSR larger than the elapsed time: inconsistent, unless within rounding.
        assert_eq!(super::rtt(0x10, 0x8, 0x20), None);
        assert_eq!(super::rtt(0x10, 0x8, 0x9), Some(Duration::ZERO));
    }

    #[test]
    fn probation_then_counting() {
        let mut s = pcmu();
        assert_eq!(
            feed(&mut s, 1000, 0, 0, Duration::ZERO),
            SeqStatus::Probation
        );
        assert!(!s.snapshot().validated);
        assert_eq!(s.snapshot().expected, 0);
        assert_eq!(feed(&mut s, 1000, 0, 1, Duration::ZERO), SeqStatus::InOrder);
        let snap = s.snapshot();
        assert!(snap.validated);
        assert_eq!(
            (snap.packets, snap.received, snap.expected, snap.lost),
            (2, 1, 1, 0)
        );
        // A jump during probation restarts it.
        let mut s = pcmu();
        s.on_packet(ms(0), 10, 0, false);
        assert_eq!(s.on_packet(ms(20), 50, 160, false), SeqStatus::Probation);
        assert_eq!(s.on_packet(ms(40), 51, 320, false), SeqStatus::InOrder);
        assert_eq!(s.snapshot().expected, 1);
    }

    #[test]
    fn perfectly_paced_stream() {
        let mut s = pcmu();
        for i in 0..1000 {
            feed(&mut s, 7, 1234, i, Duration::ZERO);
        }
        let snap = s.snapshot();
        assert_eq!(snap.packets, 1000);
        assert_eq!(snap.received, 999);
        assert_eq!(snap.expected, 999);
        assert_eq!(snap.lost, 0);
        assert!(snap.jitter < 1e-9 && snap.max_jitter_ms < 1e-9 && snap.mean_jitter_ms < 1e-9);
        assert!((snap.max_delta_ms - 20.0).abs() < 1e-9);
        assert_eq!((snap.duplicates, snap.out_of_order, snap.late), (0, 0, 0));
    }

    #[test]
    fn sequence_and_timestamp_wrap() {
        let mut s = pcmu();
        for i in 0..200_000u64 {
            feed(&mut s, 65_000, u32::MAX - 1_000, i, Duration::ZERO);
        }
        let snap = s.snapshot();
        assert_eq!(snap.lost, 0);
        assert_eq!(snap.expected, 199_999);
        let ext = (65_000u64 + 199_999) as u32; // 4 wraps
        assert_eq!(snap.extended_highest_seq, ext);
        assert_eq!(snap.extended_highest_seq >> 16, 4);
        assert!(snap.jitter < 1e-6, "{}", snap.jitter);
    }

    #[test]
    fn random_and_burst_loss_with_fraction() {
        let mut s = pcmu();
        // 100 packets, every 10th lost (never the first two).
        for i in (0..100).filter(|i| i % 10 != 5) {
            feed(&mut s, 0, 0, i, Duration::ZERO);
        }
        let r = s.interval_report(ms(2000));
        assert_eq!(r.expected_interval, 99);
        assert_eq!(r.lost_interval, 10);
        assert_eq!(r.fraction_lost, (10 * 256 / 99) as u8);
        assert_eq!(r.cumulative_lost, 10);
        // Burst of 50 lost in the next interval.
        for i in (100..200).filter(|i| !(120..170).contains(i)) {
            feed(&mut s, 0, 0, i, Duration::ZERO);
        }
        let r = s.interval_report(ms(4000));
        assert_eq!(r.expected_interval, 100);
        assert_eq!(r.lost_interval, 50);
        assert_eq!(r.fraction_lost, 128);
        assert_eq!(r.cumulative_lost, 60);
        assert!((r.fraction_lost_percent() - 50.0).abs() < 1e-9);
        // Empty interval: nothing expected, fraction 0.
        let r = s.interval_report(ms(6000));
        assert_eq!((r.expected_interval, r.fraction_lost), (0, 0));
        assert_eq!(s.snapshot().lost, 60);
        assert!((s.snapshot().loss_percent() - 60.0 / 199.0 * 100.0).abs() < 1e-9);
        // The whole interval lost: fraction clamps to 255 (A.3 would give 256).
        feed(&mut s, 0, 0, 400, Duration::ZERO);
        let r = s.interval_report(ms(8000));
        assert_eq!(r.expected_interval, 201);
        assert_eq!(r.received_interval, 1);
        assert_eq!(r.fraction_lost, 254);
    }

    #[test]
    fn duplicates_count_as_negative_loss_but_clamped_in_reports() {
        let mut s = pcmu();
        for i in 0..10 {
            feed(&mut s, 100, 0, i, Duration::ZERO);
        }
        assert_eq!(feed(&mut s, 100, 0, 9, ms(1)), SeqStatus::Duplicate);
        assert_eq!(feed(&mut s, 100, 0, 5, ms(2)), SeqStatus::Duplicate);
        let snap = s.snapshot();
        assert_eq!(snap.duplicates, 2);
        assert_eq!(snap.lost, -2);
        assert_eq!(snap.packets, 12);
        let r = s.interval_report(ms(300));
        assert_eq!(r.cumulative_lost, 0);
        assert_eq!(r.fraction_lost, 0);
        assert_eq!(r.lost_interval, -2);
    }

    #[test]
    fn reordering_and_late() {
        let mut s = pcmu();
        for i in 0..5 {
            feed(&mut s, 0, 0, i, Duration::ZERO);
        }
        // 6 arrives before 5, 5 arrives 1 ms after 6: reordered, not late.
        feed(&mut s, 0, 0, 6, Duration::ZERO);
        assert_eq!(
            s.on_packet(ms(121), 5, 800, false),
            SeqStatus::OutOfOrder { late: false }
        );
        // 7 is lost for now, 8..10 arrive, 7 arrives 100 ms after its time: late.
        for i in 8..11 {
            feed(&mut s, 0, 0, i, Duration::ZERO);
        }
        assert_eq!(
            feed(&mut s, 0, 0, 7, ms(100)),
            SeqStatus::OutOfOrder { late: true }
        );
        let snap = s.snapshot();
        assert_eq!((snap.out_of_order, snap.late, snap.duplicates), (2, 1, 0));
        assert_eq!(snap.lost, 0);
        assert_eq!(snap.expected, 10);
    }

    #[test]
    fn restart_after_large_jump() {
        let mut s = pcmu();
        for i in 0..50 {
            feed(&mut s, 0, 0, i, Duration::ZERO);
        }
        // New source state (e.g. SSRC kept but sequence reset): jump of 30000.
        assert_eq!(
            s.on_packet(ms(1000), 30_000, 90_000, false),
            SeqStatus::Held
        );
        assert_eq!(
            s.on_packet(ms(1020), 30_001, 90_160, false),
            SeqStatus::Restarted
        );
        assert_eq!(
            s.on_packet(ms(1040), 30_002, 90_320, false),
            SeqStatus::InOrder
        );
        let snap = s.snapshot();
        assert_eq!((snap.restarts, snap.held), (1, 1));
        assert_eq!((snap.received, snap.expected, snap.lost), (2, 2, 0));
        // A lone jump that is not followed stays held and is not counted.
        assert_eq!(s.on_packet(ms(1060), 5, 0, false), SeqStatus::Held);
        assert_eq!(
            s.on_packet(ms(1060), 30_003, 90_480, false),
            SeqStatus::InOrder
        );
        assert_eq!(s.snapshot().lost, 0);
        // A jump just below MAX_DROPOUT is loss, not a restart.
        assert_eq!(
            s.on_packet(ms(1080), 30_003 + MAX_DROPOUT - 1, 0, false),
            SeqStatus::InOrder
        );
        assert_eq!(s.snapshot().lost, i64::from(MAX_DROPOUT) - 2);
    }

    #[test]
    fn jitter_follows_rfc_filter() {
        let mut s = pcmu();
        for i in 0..10 {
            feed(&mut s, 0, 0, i, Duration::ZERO);
        }
        // Packet 10 arrives 10 ms late (80 ts units): |D| = 80, J = 80/16 = 5.
        feed(&mut s, 0, 0, 10, ms(10));
        assert!((s.snapshot().jitter - 5.0).abs() < 1e-6);
        // Packet 11 on time: D = -80, J = 5 + (80 - 5)/16.
        feed(&mut s, 0, 0, 11, Duration::ZERO);
        let j = 5.0 + 75.0 / 16.0;
        let snap = s.snapshot();
        assert!((snap.jitter - j).abs() < 1e-6);
        assert!((snap.jitter_ms - j / 8.0).abs() < 1e-6);
        assert!((snap.max_jitter_ms - j / 8.0).abs() < 1e-6);
        assert!((snap.max_delta_ms - 30.0).abs() < 1e-6);
        // Wireshark's running mean over packets 2..=12 (11 deltas), nonzero on the last two.
        let mean = (5.0 / 8.0 + j / 8.0) / 11.0;
        assert!(
            (snap.mean_jitter_ms - mean).abs() < 1e-9,
            "{} vs {mean}",
            snap.mean_jitter_ms
        );
        let r = s.interval_report(ms(300));
        assert_eq!(r.jitter, j as u32);
        assert!((r.max_jitter_ms - j / 8.0).abs() < 1e-6);
        assert_eq!(s.interval_report(ms(400)).max_jitter_ms, 0.0);
    }

    #[test]
    fn long_silence_with_marker_is_not_a_delta() {
        let mut s = pcmu();
        for i in 0..10 {
            feed(&mut s, 0, 0, i, Duration::ZERO);
        }
        // 5 s of silence: timestamps advance with the clock, sequence numbers do not.
        s.on_packet(ms(180 + 5000), 10, 1440 + 40_000, true);
        for i in 1..10u64 {
            s.on_packet(
                ms(5180 + 20 * i),
                10 + i as u16,
                1440 + 40_000 + 160 * i as u32,
                false,
            );
        }
        let snap = s.snapshot();
        assert!(
            (snap.max_delta_ms - 20.0).abs() < 1e-6,
            "{}",
            snap.max_delta_ms
        );
        assert!(snap.jitter < 1e-6);
        assert_eq!(snap.lost, 0);
        // Without the marker, the gap counts.
        let mut s = pcmu();
        for i in 0..10 {
            feed(&mut s, 0, 0, i, Duration::ZERO);
        }
        s.on_packet(ms(5180), 10, 41_440, false);
        assert!((s.snapshot().max_delta_ms - 5000.0).abs() < 1e-6);
    }

    #[test]
    fn telephone_events_and_comfort_noise() {
        let mut s = pcmu();
        for i in 0..5 {
            feed(&mut s, 0, 0, i, Duration::ZERO);
        }
        // DTMF packets keep the event's start timestamp: no jitter from them.
        for i in 5..8u64 {
            s.on_packet_class(
                ms(20 * i),
                i as u16,
                800,
                i == 5,
                PacketClass::TelephoneEvent,
            );
        }
        assert!(s.snapshot().jitter < 1e-6);
        // Comfort noise and the packet after it stay out of max jitter.
        let mut s = pcmu();
        for i in 0..5 {
            feed(&mut s, 0, 0, i, Duration::ZERO);
        }
        s.on_packet_class(ms(180), 5, 800, false, PacketClass::ComfortNoise);
        let j_before = s.snapshot().max_jitter_ms;
        s.on_packet(ms(181), 6, 960, false);
        assert_eq!(s.snapshot().max_jitter_ms, j_before);
        assert!(s.snapshot().jitter > 0.0);
    }

    #[test]
    fn lsr_and_dlsr_in_reports() {
        let mut s = pcmu();
        for i in 0..3 {
            feed(&mut s, 0, 0, i, Duration::ZERO);
        }
        let r = s.interval_report(ms(100));
        assert_eq!((r.last_sr, r.delay_since_last_sr), (0, 0));
        let ntp = NtpTimestamp(0x1234_5678_9abc_def0);
        s.on_sender_report(ms(1000), ntp);
        let r = s.interval_report(ms(1500));
        assert_eq!(r.last_sr, 0x5678_9abc);
        assert_eq!(r.delay_since_last_sr, 0x8000);
        let b = r.report_block(0xabcd);
        assert_eq!(
            (b.ssrc, b.last_sr, b.delay_since_last_sr),
            (0xabcd, 0x5678_9abc, 0x8000)
        );
    }

    /// Statistics driven by wire bytes: RTP packets built, parsed and fed, including an SSRC
    /// change handled by the caller with a fresh `ReceiveStats`.
    #[test]
    fn wire_bytes_end_to_end() {
        let mut buf = [0u8; 200];
        let mut streams: Vec<(u32, ReceiveStats)> = Vec::new();
        let payload = [0xffu8; 160];
        let mut send = |seq: u16, ts: u32, ssrc: u32, at: Duration, marker: bool| {
            let n = RtpBuilder::new(0, seq, ts, ssrc)
                .marker(marker)
                .write(&mut buf, &payload)
                .unwrap();
            let p = RtpPacket::parse(&buf[..n]).unwrap();
            let idx = match streams.iter().position(|(s, _)| *s == p.ssrc()) {
                Some(i) => i,
                None => {
                    streams.push((p.ssrc(), pcmu()));
                    streams.len() - 1
                }
            };
            streams[idx]
                .1
                .on_packet(at, p.sequence_number(), p.timestamp(), p.marker());
        };
        for i in 0..100u32 {
            if i != 50 {
                send(
                    65_500u16.wrapping_add(i as u16),
                    (u32::MAX - 3_000).wrapping_add(160 * i),
                    1,
                    ms(20 * u64::from(i)),
                    i == 0,
                );
            }
        }
        for i in 0..20u32 {
            send(
                7 + i as u16,
                160 * i,
                2,
                ms(2000 + 20 * u64::from(i)),
                i == 0,
            );
        }
        let a = streams[0].1.snapshot();
        let b = streams[1].1.snapshot();
        assert_eq!((a.packets, a.expected, a.lost), (99, 99, 1));
        assert!(a.extended_highest_seq > 65_535);
        assert_eq!((b.packets, b.expected, b.lost), (20, 19, 0));
        assert!(a.jitter < 1e-6 && b.jitter < 1e-6);
    }

    /// Tiny deterministic PRNG for the property tests (no extra dependency).
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn wrapping_many_times_counts_no_loss(seq0: u16, ts0: u32, wraps in 1u64..5, extra in 0u64..1000) {
            let mut s = pcmu();
            let n = wraps * 65_536 + extra + 2;
            for i in 0..n {
                feed(&mut s, seq0, ts0, i, Duration::ZERO);
            }
            let snap = s.snapshot();
            prop_assert_eq!(snap.lost, 0);
            prop_assert_eq!(snap.expected, snap.received);
            prop_assert_eq!(snap.received, n - 1);
            prop_assert_eq!(snap.out_of_order + snap.duplicates + snap.held, 0);
        }
    }

    proptest! {
        #[test]
        fn shuffling_within_misorder_keeps_expected_equal_received(
            seq0: u16, seed in 1u64.., n in 3usize..2000, block in 2usize..=(MAX_MISORDER as usize / 2),
        ) {
            let mut order: Vec<u64> = (0..n as u64).collect();
            let mut rng = seed;
            // The first two stay in order (probation); later blocks are shuffled in place, so
            // no packet is ever more than `block` behind the highest.
            for chunk in order[2..].chunks_mut(block) {
                for i in (1..chunk.len()).rev() {
                    let j = (next(&mut rng) % (i as u64 + 1)) as usize;
                    chunk.swap(i, j);
                }
            }
            let mut s = pcmu();
            for (k, &i) in order.iter().enumerate() {
                s.on_packet(PTIME * k as u32, seq0.wrapping_add(i as u16), 160 * i as u32, false);
            }
            let snap = s.snapshot();
            prop_assert_eq!(snap.expected, snap.received);
            prop_assert_eq!(snap.lost, 0);
            prop_assert_eq!(snap.duplicates, 0);
            prop_assert_eq!(snap.held, 0);
        }

        #[test]
        fn duplicates_never_make_reported_loss_negative(
            seq0: u16, seed in 1u64.., n in 3usize..1500, dup_pct in 0u64..50, loss_pct in 0u64..30,
        ) {
            let mut rng = seed;
            let mut s = pcmu();
            let mut t = 0u32;
            for i in 0..n as u64 {
                if i >= 2 && next(&mut rng) % 100 < loss_pct {
                    continue;
                }
                let copies = if next(&mut rng) % 100 < dup_pct { 1 + next(&mut rng) % 3 } else { 1 };
                for _ in 0..copies {
                    t += 1;
                    s.on_packet(ms(u64::from(t)), seq0.wrapping_add(i as u16), 160 * i as u32, false);
                }
                if next(&mut rng) % 50 == 0 {
                    let r = s.interval_report(ms(u64::from(t)));
                    prop_assert!(r.cumulative_lost >= 0);
                    prop_assert!(r.cumulative_lost <= MAX_CUMULATIVE_LOST as i32);
                }
            }
            let snap = s.snapshot();
            prop_assert_eq!(snap.lost, snap.expected as i64 - snap.received as i64);
            let r = s.interval_report(ms(u64::from(t) + 1));
            prop_assert!(r.cumulative_lost >= 0);
            prop_assert_eq!(i64::from(r.cumulative_lost), snap.lost.max(0));
        }

        #[test]
        fn perfectly_paced_packets_have_zero_jitter(
            seq0: u16, ts0: u32, n in 2u64..3000, frame_ms in prop::sample::select(vec![10u64, 20, 30, 60]),
            rate in prop::sample::select(vec![8000u32, 16000, 48000]), offset_ms in 0u64..100_000,
        ) {
            let mut s = ReceiveStats::new(StatsConfig::new(rate));
            let step = (u64::from(rate) * frame_ms / 1000) as u32;
            for i in 0..n {
                s.on_packet(ms(offset_ms + frame_ms * i), seq0.wrapping_add(i as u16), ts0.wrapping_add(step.wrapping_mul(i as u32)), false);
            }
            let snap = s.snapshot();
            prop_assert!(snap.jitter < 1e-6, "{}", snap.jitter);
            prop_assert!(snap.max_jitter_ms < 1e-6);
            prop_assert_eq!(snap.lost, 0);
        }

        #[test]
        fn arbitrary_input_never_panics(seq in proptest::collection::vec((any::<u16>(), any::<u32>(), any::<bool>(), 0u64..100), 0..300)) {
            let mut s = pcmu();
            let mut t = 0;
            for (q, ts, m, dt) in seq {
                t += dt;
                s.on_packet(ms(t), q, ts, m);
            }
            let snap = s.snapshot();
            prop_assert!(snap.jitter >= 0.0);
            let r = s.interval_report(ms(t));
            prop_assert!(r.cumulative_lost >= 0);
        }
    }
}
