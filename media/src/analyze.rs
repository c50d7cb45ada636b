//! The sans-IO core of `switchboard rtp analyze FILE.pcap [--port N] [--clock-rate HZ]`.
//!
//! Feed UDP datagrams ([`Analyzer::push`], or [`analyze_capture`] for a whole pcap / pcapng
//! file in memory) and get one [`StreamRow`] per RTP stream, serialisable as one JSON object
//! per line ([`StreamRow::to_json`]).
//!
//! # Finding RTP
//!
//! Without a port, RTP is found on any UDP port (a heuristic, like Wireshark's
//! `rtp_udp` heuristic dissector): version 2, at least 12 bytes, the second byte with the
//! marker masked is not 72–76 (that is RTCP SR/RR/SDES/BYE/APP, 200–204), and the payload type
//! is a plausible one: 0–34 (static assignments) or 96–127 (dynamic). A stream, keyed by
//! (source, destination, SSRC), is reported once it has two packets whose sequence numbers
//! and timestamps are consistent (the second 1–100 ahead in sequence, its timestamp ahead by
//! less than 60 s of the clock); its first packet is counted. With a port
//! ([`AnalyzeOptions::port`]) every RTP-looking datagram from or to that port is taken, as
//! Wireshark's "Decode As" does, and a single packet makes a stream.
//!
//! # Which definitions the row follows
//!
//! The command must agree with Wireshark's RTP stream analysis (`tshark -z rtp,streams`), so
//! the loss and timing columns follow **Wireshark's** definitions (`ui/tap-rtp-analysis.c`),
//! computed here by a small per-stream state machine next to [`crate::stats`], which keeps
//! RFC 3550 semantics for RTCP:
//!
//! - `expected = last_seq + 65536 * cycles - first_seq + 1` where `first_seq` is the sequence
//!   number of the first packet (no probation), `last_seq` that of the **last packet in
//!   capture order** (not the highest), and a cycle is counted when a packet in time
//!   sequence (below) has a sequence number below the first one (or 0 after 65535) — Wireshark's
//!   heuristic, which is exact for the usual single or repeated wrap.
//!   `lost = expected - packets`, negative with duplicates.
//! - Jitter is Wireshark 4.0's (the Debian 12 tshark CI compares with), in ms: a packet is
//!   "in time sequence" when its timestamp is at most 2^31 units after the **first** packet's
//!   (modulo 2^32, so timestamp wrap is harmless); for each such packet, with `N` its
//!   timestamp minus the first one's converted to ms and `t` its arrival,
//!   `D = |t - (t_prev + N - N_prev)|`, `J = (15 J + D) / 16`, where `prev` is the previous
//!   in-time packet in arrival order. A reordered packet is therefore measured against its
//!   predecessor in arrival order and becomes the next reference, as in RFC 3550 §6.4.1
//!   ([`crate::stats`] also describes later Wireshark releases, which measure a reordered
//!   packet against the last packet whose timestamp did not go backwards; 4.0 does not, and
//!   the generated reordering captures confirm it). The ms conversion divides by the integer `rate / 1000`, as Wireshark does.
//! - `max_jitter_ms`, `mean_jitter_ms` and `max_delta_ms` are over "regular" packets only: not
//!   the first, no marker bit, not comfort noise (PT 13 / 19) nor the packet after one, in
//!   time sequence; the delta is the arrival gap to the previous in-time packet. The mean is
//!   Wireshark's running `mean = (mean * (n - 1) + J) / n`, n = packets before this one. `final_jitter_ms` is J
//!   after the last packet.
//! - `duplicates` and `out_of_order` come from [`crate::stats::ReceiveStats`] (128-packet
//!   window after RFC 3550 A.1 probation). Wireshark has no such columns.
//! - The clock rate is taken from the first packet's payload type (static types per RFC 3551;
//!   dynamic types 8000 Hz unless [`AnalyzeOptions::clock_rate`] says otherwise). Wireshark
//!   has no clock rate for a dynamic type without SDP and then reports jitter 0; only streams
//!   with static payload types are compared with it.
//! - `mos`: the E-model of [`crate::mos`] (Cole–Rosenbluth delay, G.711 with PLC, Bpl 25.1,
//!   random loss) with loss `max(lost, 0) / expected` and a one-way delay estimated, for lack
//!   of RTT in a capture, as one 20 ms frame plus a jitter buffer of twice the mean jitter.
//!
//! Numbers are rounded in the row: times to 1 µs (3 decimals of ms), MOS to 4 decimals.
//!
//! The per-packet path does no allocation beyond creating a stream's state the first time
//! its key is seen (a hash-map entry).

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::mos::{self, QualityInput};
use crate::pcap;
use crate::stats::{PacketClass, ReceiveStats, StatsConfig};
use crate::Error;

/// Options of one analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AnalyzeOptions {
    /// Only datagrams from or to this UDP port, all taken as RTP; `None`: any port, heuristic.
    pub port: Option<u16>,
    /// Clock rate for dynamic payload types (96–127); `None`: 8000 Hz.
    pub clock_rate: Option<u32>,
}

/// One stream's result: one line of `switchboard rtp analyze` output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamRow {
    /// SSRC as `0x%08X`, like Wireshark.
    pub ssrc: String,
    /// Source `ip:port` (`[v6]:port` for IPv6).
    pub src: String,
    /// Destination `ip:port`.
    pub dst: String,
    /// Payload type of the first packet.
    pub payload_type: u8,
    /// Packets of the stream (duplicates included).
    pub packets: u64,
    /// Expected packets (Wireshark's definition, see the module docs).
    pub expected: u64,
    /// `expected - packets` (negative with duplicates, like Wireshark's "Lost").
    pub lost: i64,
    /// Duplicate packets.
    pub duplicates: u64,
    /// Reordered packets.
    pub out_of_order: u64,
    /// Largest jitter over regular packets, ms.
    pub max_jitter_ms: f64,
    /// Mean jitter over regular packets (Wireshark's running mean), ms.
    pub mean_jitter_ms: f64,
    /// Jitter after the last packet, ms.
    pub final_jitter_ms: f64,
    /// Largest arrival gap between regular packets, ms.
    pub max_delta_ms: f64,
    /// E-model MOS estimate.
    pub mos: f64,
}

impl StreamRow {
    /// The row as one line of JSON (no trailing newline).
    pub fn to_json(&self) -> String {
        // Serialising plain strings and finite numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Clock rate of a static payload type (RFC 3551), `None` for unassigned or dynamic ones.
pub fn static_clock_rate(pt: u8) -> Option<u32> {
    Some(match pt {
        0 | 3 | 4 | 5 | 7 | 8 | 9 | 12 | 13 | 15 | 18 | 19 => 8000,
        6 => 16000,
        10 | 11 => 44100,
        16 => 11025,
        17 => 22050,
        14 | 25 | 26 | 28 | 31 | 32 | 33 | 34 => 90000,
        _ => return None,
    })
}

fn plausible_payload_type(pt: u8) -> bool {
    pt <= 34 || pt >= 96
}

fn is_comfort_noise(pt: u8) -> bool {
    pt == 13 || pt == 19
}

/// The RTP header fields the analysis needs (parsed without building an `RtpPacket`, so that
/// truncated captures still count).
#[derive(Debug, Clone, Copy)]
struct Header {
    marker: bool,
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
}

fn parse_header(p: &[u8]) -> Option<Header> {
    let h: &[u8; 12] = p.get(..12)?.try_into().ok()?;
    if h[0] >> 6 != 2 {
        return None;
    }
    let pt = h[1] & 0x7f;
    if (72..=76).contains(&pt) {
        return None; // RTCP
    }
    Some(Header {
        marker: h[1] & 0x80 != 0,
        pt,
        seq: u16::from_be_bytes([h[2], h[3]]),
        ts: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        ssrc: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
    })
}

/// Wireshark's per-stream RTP analysis state (see the module docs).
#[derive(Debug, Clone)]
struct WiresharkStats {
    clock_rate: u32,
    first: bool,
    start_seq: u16,
    stop_seq: u16,
    cycles: u32,
    under: bool,
    /// Timestamp of the first packet: nominal times are measured from it.
    first_ts: u32,
    /// Nominal time (ms since the first packet) of the last in-time packet.
    last_nominal_ms: f64,
    /// Arrival (ms) of the last in-time packet.
    ref_time_ms: f64,
    /// Arrival gap to the last in-time packet, ms.
    delta: f64,
    prev_pt_cn: bool,
    jitter: f64,
    max_jitter: f64,
    mean_jitter: f64,
    max_delta: f64,
    total: u64,
}

impl WiresharkStats {
    fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate,
            first: true,
            start_seq: 0,
            stop_seq: 0,
            cycles: 0,
            under: false,
            first_ts: 0,
            last_nominal_ms: 0.0,
            ref_time_ms: 0.0,
            delta: 0.0,
            prev_pt_cn: false,
            jitter: 0.0,
            max_jitter: 0.0,
            mean_jitter: 0.0,
            max_delta: 0.0,
            total: 0,
        }
    }

    fn on_packet(&mut self, time_ms: f64, h: Header) {
        let cn = is_comfort_noise(h.pt);
        if self.first {
            self.first = false;
            self.start_seq = h.seq;
            self.stop_seq = h.seq;
            self.first_ts = h.ts;
            self.last_nominal_ms = 0.0;
            self.ref_time_ms = time_ms;
            self.prev_pt_cn = cn;
            self.total = 1;
            return;
        }
        // "In time sequence": at most 2^31 timestamp units after the first packet's
        // timestamp, modulo 2^32 (the two comparisons Wireshark makes, with its off-by-one
        // on the wrapped side kept).
        let in_time = if self.first_ts <= h.ts {
            h.ts - self.first_ts < 0x8000_0000
        } else {
            u64::from(u32::MAX - self.first_ts) + u64::from(h.ts) < 0x8000_0000
        };

        if in_time
            && !self.under
            && (h.seq < self.start_seq || (h.seq == 0 && self.stop_seq == 65535))
        {
            self.cycles += 1;
            self.under = true;
        } else if in_time && self.under && h.seq > self.start_seq {
            self.under = false;
        }

        let mut current_jitter = 0.0;
        if in_time {
            let ms_per_unit = f64::from((self.clock_rate / 1000).max(1));
            let nominal_ms = f64::from(h.ts.wrapping_sub(self.first_ts)) / ms_per_unit;
            let expected_ms = self.ref_time_ms + (nominal_ms - self.last_nominal_ms);
            let diff = (time_ms - expected_ms).abs();
            current_jitter = (15.0 * self.jitter + diff) / 16.0;
            self.jitter = current_jitter;
            self.delta = time_ms - self.ref_time_ms;
            self.last_nominal_ms = nominal_ms;
        }

        let regular = !h.marker && !cn && in_time && !self.prev_pt_cn;
        if regular {
            self.max_delta = self.max_delta.max(self.delta);
            self.max_jitter = self.max_jitter.max(self.jitter);
            let n = self.total as f64;
            self.mean_jitter = (self.mean_jitter * (n - 1.0) + current_jitter) / n;
        }
        if in_time {
            self.ref_time_ms = time_ms;
        }
        self.prev_pt_cn = cn;
        self.stop_seq = h.seq;
        self.total += 1;
    }

    fn expected(&self) -> i64 {
        if self.first {
            return 0;
        }
        i64::from(self.stop_seq) + 65536 * i64::from(self.cycles) - i64::from(self.start_seq) + 1
    }
}

/// State of one (source, destination, SSRC).
#[derive(Debug, Clone)]
struct Stream {
    src: SocketAddr,
    dst: SocketAddr,
    ssrc: u32,
    payload_type: u8,
    /// Order of first appearance.
    order: u64,
    /// A candidate's first packet, held until a consistent second one confirms the stream.
    pending: Option<(Duration, Header)>,
    confirmed: bool,
    rfc: ReceiveStats,
    ws: WiresharkStats,
}

/// Streaming analyzer: push datagrams in capture order, then [`Analyzer::finish`].
#[derive(Debug, Clone)]
pub struct Analyzer {
    options: AnalyzeOptions,
    streams: HashMap<(SocketAddr, SocketAddr, u32), Stream>,
    origin: Option<Duration>,
    next_order: u64,
}

/// Largest forward sequence step between a candidate's two packets.
const HEURISTIC_MAX_SEQ_STEP: u16 = 100;
/// Largest timestamp step between a candidate's two packets, in seconds of its clock.
const HEURISTIC_MAX_TS_SECS: u32 = 60;

impl Analyzer {
    /// A fresh analysis.
    pub fn new(options: AnalyzeOptions) -> Self {
        Self {
            options,
            streams: HashMap::new(),
            origin: None,
            next_order: 0,
        }
    }

    fn clock_rate(&self, pt: u8) -> u32 {
        match static_clock_rate(pt) {
            Some(r) => r,
            None => self.options.clock_rate.filter(|&r| r > 0).unwrap_or(8000),
        }
    }

    /// Accounts one UDP datagram captured at `timestamp` (any fixed origin; times are taken
    /// relative to the first datagram pushed). Datagrams that are not RTP are ignored.
    pub fn push(&mut self, timestamp: Duration, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        if let Some(port) = self.options.port {
            if src.port() != port && dst.port() != port {
                return;
            }
        }
        let Some(h) = parse_header(payload) else {
            return;
        };
        let heuristic = self.options.port.is_none();
        if heuristic && !plausible_payload_type(h.pt) {
            return;
        }
        let origin = *self.origin.get_or_insert(timestamp);
        let arrival = timestamp.saturating_sub(origin);
        let rate = self.clock_rate(h.pt);
        let order = self.next_order;
        let stream = self
            .streams
            .entry((src, dst, h.ssrc))
            .or_insert_with(|| Stream {
                src,
                dst,
                ssrc: h.ssrc,
                payload_type: h.pt,
                order,
                pending: None,
                confirmed: !heuristic,
                rfc: ReceiveStats::new(StatsConfig::new(rate)),
                ws: WiresharkStats::new(rate),
            });
        if stream.order == order {
            self.next_order += 1;
        }
        if !stream.confirmed {
            match stream.pending {
                Some((t0, h0))
                    if (1..=HEURISTIC_MAX_SEQ_STEP).contains(&h.seq.wrapping_sub(h0.seq))
                        && h.ts.wrapping_sub(h0.ts)
                            < HEURISTIC_MAX_TS_SECS.saturating_mul(stream.ws.clock_rate) =>
                {
                    stream.confirmed = true;
                    stream.pending = None;
                    stream.payload_type = h0.pt;
                    feed(stream, t0, h0);
                }
                _ => {
                    stream.pending = Some((arrival, h));
                    return;
                }
            }
        }
        feed(stream, arrival, h);
    }

    /// The rows of every confirmed stream, in order of first appearance.
    pub fn finish(self) -> Vec<StreamRow> {
        let mut streams: Vec<Stream> = self
            .streams
            .into_values()
            .filter(|s| s.confirmed && s.ws.total > 0)
            .collect();
        streams.sort_by_key(|s| s.order);
        streams.iter().map(row).collect()
    }
}

fn feed(stream: &mut Stream, arrival: Duration, h: Header) {
    let class = if is_comfort_noise(h.pt) {
        PacketClass::ComfortNoise
    } else {
        PacketClass::Media
    };
    stream
        .rfc
        .on_packet_class(arrival, h.seq, h.ts, h.marker, class);
    stream.ws.on_packet(arrival.as_secs_f64() * 1000.0, h);
}

fn round_to(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    let r = (v * f).round() / f;
    if r.is_finite() {
        r
    } else {
        0.0
    }
}

fn row(s: &Stream) -> StreamRow {
    let snap = s.rfc.snapshot();
    let ws = &s.ws;
    let expected = ws.expected();
    let lost = expected - ws.total as i64;
    let loss_percent = if expected > 0 && lost > 0 {
        lost as f64 * 100.0 / expected as f64
    } else {
        0.0
    };
    let quality = mos::estimate(QualityInput {
        codec: mos::G711_PLC,
        one_way_delay_ms: 20.0 + 2.0 * ws.mean_jitter,
        loss_percent,
        burst_r: 1.0,
    });
    StreamRow {
        ssrc: format!("0x{:08X}", s.ssrc),
        src: s.src.to_string(),
        dst: s.dst.to_string(),
        payload_type: s.payload_type,
        packets: ws.total,
        expected: expected.max(0) as u64,
        lost,
        duplicates: snap.duplicates,
        out_of_order: snap.out_of_order,
        max_jitter_ms: round_to(ws.max_jitter, 3),
        mean_jitter_ms: round_to(ws.mean_jitter, 3),
        final_jitter_ms: round_to(ws.jitter, 3),
        max_delta_ms: round_to(ws.max_delta, 3),
        mos: round_to(quality.mos, 4),
    }
}

/// Analyzes a whole pcap or pcapng file held in memory.
///
/// A structural error part-way through the file (e.g. a capture cut while being written)
/// ends the reading; the streams seen so far are still returned along with the error, so a
/// caller can print them and warn.
pub fn analyze_capture(
    data: &[u8],
    options: AnalyzeOptions,
) -> Result<(Vec<StreamRow>, Option<Error>), Error> {
    let mut analyzer = Analyzer::new(options);
    let mut error = None;
    for item in pcap::udp_packets(data)? {
        match item {
            Ok(d) => analyzer.push(d.timestamp, d.src, d.dst, d.payload),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    Ok((analyzer.finish(), error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpBuilder;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, marker: bool) -> Vec<u8> {
        let mut buf = [0u8; 200];
        let n = RtpBuilder::new(pt, seq, ts, ssrc)
            .marker(marker)
            .write(&mut buf, &[0xff; 160])
            .unwrap();
        buf[..n].to_vec()
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn heuristic_needs_two_consistent_packets_and_skips_rtcp() {
        let mut a = Analyzer::new(AnalyzeOptions::default());
        let (s, d) = (sa("10.0.0.1:4000"), sa("10.0.0.2:5000"));
        // A lone RTP-looking datagram is not a stream.
        a.push(ms(0), sa("10.0.0.9:53"), d, &rtp(0, 1, 0, 7, false));
        // RTCP RR (PT 201) and non-RTP bytes are ignored.
        let mut rr = vec![0x80, 201, 0, 1, 0, 0, 0, 9];
        rr.extend_from_slice(&[0; 4]);
        a.push(ms(1), s, d, &rr);
        a.push(ms(2), s, d, b"GET / HTTP/1.1\r\n");
        // Unassigned payload type 50: not RTP for the heuristic.
        a.push(ms(3), s, d, &rtp(50, 1, 0, 8, false));
        a.push(ms(23), s, d, &rtp(50, 2, 160, 8, false));
        // A real stream.
        for i in 0..10u16 {
            a.push(
                ms(100 + 20 * u64::from(i)),
                s,
                d,
                &rtp(8, 500 + i, 160 * u32::from(i), 0xdead_beef, i == 0),
            );
        }
        let rows = a.finish();
        assert_eq!(rows.len(), 1, "{rows:?}");
        let r = &rows[0];
        assert_eq!(r.ssrc, "0xDEADBEEF");
        assert_eq!(
            (r.src.as_str(), r.dst.as_str()),
            ("10.0.0.1:4000", "10.0.0.2:5000")
        );
        assert_eq!(
            (r.payload_type, r.packets, r.expected, r.lost),
            (8, 10, 10, 0)
        );
        assert_eq!(r.max_delta_ms, 20.0);
        assert!(
            (r.mos
                - mos::estimate(QualityInput {
                    codec: mos::G711_PLC,
                    one_way_delay_ms: 20.0,
                    loss_percent: 0.0,
                    burst_r: 1.0,
                })
                .mos)
                .abs()
                < 1e-4
        );
        let json = r.to_json();
        for key in [
            "\"ssrc\"",
            "\"src\"",
            "\"dst\"",
            "\"payload_type\"",
            "\"packets\"",
            "\"expected\"",
            "\"lost\"",
            "\"duplicates\"",
            "\"out_of_order\"",
            "\"max_jitter_ms\"",
            "\"mean_jitter_ms\"",
            "\"final_jitter_ms\"",
            "\"max_delta_ms\"",
            "\"mos\"",
        ] {
            assert!(json.contains(key), "{key} in {json}");
        }
        assert_eq!(json.matches(':').count(), 14 + 2, "{json}");
    }

    #[test]
    fn port_option_takes_every_rtp_packet_on_that_port() {
        let mut a = Analyzer::new(AnalyzeOptions {
            port: Some(5000),
            clock_rate: None,
        });
        let (s, d) = (sa("10.0.0.1:4000"), sa("10.0.0.2:5000"));
        a.push(ms(0), s, d, &rtp(50, 1, 0, 1, false)); // one packet suffices with a port
        a.push(ms(0), s, sa("10.0.0.2:5002"), &rtp(0, 1, 0, 2, false)); // other port
        let rows = a.finish();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].ssrc.as_str(), rows[0].packets), ("0x00000001", 1));
        assert_eq!(rows[0].expected, 1);
    }

    #[test]
    fn dynamic_clock_rate_option_and_wireshark_jitter() {
        // Opus-like dynamic PT at 48 kHz: perfectly paced with --clock-rate 48000, jittery
        // when read at the 8000 Hz default.
        for (rate, zero) in [(Some(48_000), true), (None, false)] {
            let mut a = Analyzer::new(AnalyzeOptions {
                port: None,
                clock_rate: rate,
            });
            for i in 0..50u16 {
                a.push(
                    ms(20 * u64::from(i)),
                    sa("[::1]:1"),
                    sa("[::1]:2"),
                    &rtp(111, i, 960 * u32::from(i), 3, false),
                );
            }
            let r = &a.finish()[0];
            assert_eq!(r.max_jitter_ms == 0.0, zero, "{r:?}");
            assert_eq!(r.src, "[::1]:1");
        }
        // One packet 10 ms late: D = 10, J = 10/16; the next on time: D = 10 again.
        let mut a = Analyzer::new(AnalyzeOptions::default());
        let (s, d) = (sa("10.0.0.1:1"), sa("10.0.0.2:2"));
        for i in 0..12u64 {
            let late = if i == 10 { 10 } else { 0 };
            a.push(
                ms(20 * i + late),
                s,
                d,
                &rtp(0, i as u16, 160 * i as u32, 1, false),
            );
        }
        let r = &a.finish()[0];
        let j1: f64 = 10.0 / 16.0;
        let j2: f64 = (15.0 * j1 + 10.0) / 16.0;
        assert!((r.final_jitter_ms - (j2 * 1000.0).round() / 1000.0).abs() < 1e-9);
        assert!((r.max_jitter_ms - (j2 * 1000.0).round() / 1000.0).abs() < 1e-9);
        assert_eq!(r.max_delta_ms, 30.0);
    }

    #[test]
    fn capture_errors_keep_streams_seen_so_far() {
        let mut w =
            crate::pcap::PcapWriter::new(Vec::new(), crate::pcap::WriterLink::Ethernet).unwrap();
        for i in 0..5u16 {
            w.write_udp(
                ms(20 * u64::from(i)),
                sa("10.0.0.1:1"),
                sa("10.0.0.2:2"),
                &rtp(0, i, 160 * u32::from(i), 9, false),
            )
            .unwrap();
        }
        let mut data = w.finish().unwrap();
        data.truncate(data.len() - 3);
        let (rows, err) = analyze_capture(&data, AnalyzeOptions::default()).unwrap();
        assert!(matches!(err, Some(Error::CaptureTruncated { .. })));
        assert_eq!(rows[0].packets, 4);
        assert!(analyze_capture(b"nonsense", AnalyzeOptions::default()).is_err());
    }
}
