//! One call leg's RTP session, sans-IO: what goes out (SSRC, sequence, timestamp, marker,
//! packetization of G.711 or Opus payloads, RFC 4733 events, RTCP SR/RR/SDES) and what comes in (symmetric-RTP
//! latching, RFC 3550 statistics, RTCP for RTT, telephone events), with the 5 s report timer.
//!
//! The session never reads a clock and never touches a socket. Time is a [`Duration`] since
//! a fixed origin chosen by the caller (`now`), and [`SessionConfig::unix_origin`] says what
//! wall-clock time that origin was, for the NTP timestamps of RTCP. The driver:
//!
//! 1. every 20 ms calls [`RtpSession::write_frame`] (or [`RtpSession::silence`] when it has
//!    nothing to send) and sends the bytes to [`RtpSession::remote`];
//! 2. gives every datagram received to [`RtpSession::handle_rtp`] (RTP socket; with rtcp-mux
//!    RTCP is recognised there too) or [`RtpSession::handle_rtcp`] (RTCP socket);
//! 3. calls [`RtpSession::handle_timeout`] once `now >= poll_timeout()`, then drains
//!    [`RtpSession::poll_transmit`] (RTCP to send to [`RtpSession::rtcp_remote`]) and
//!    [`RtpSession::poll_event`].
//!
//! # Latching (symmetric RTP)
//!
//! The remote address from SDP is only where we start sending. The first valid RTP packet
//! (version 2, a payload type of this session) latches the session to its source address and
//! SSRC: from then on we send there, and packets from any other address are dropped and
//! counted. The session relatches to a new address after [`SessionConfig::relatch_after`]
//! consecutive valid packets from it, when they carry a *different* SSRC (the media moved to
//! another source, e.g. after a transfer) or when the latched source has been silent for
//! [`SessionConfig::relatch_idle`] (a NAT rebinding). A packet from the latched address with a
//! new SSRC is a source change: statistics restart for the new SSRC.
//!
//! # Reports
//!
//! Every [`SessionConfig::report_interval`] (5 s) one interval is closed in the statistics and
//! used twice: as the report block of an RTCP SR (if we sent media since the last report) or
//! RR, followed by an SDES CNAME; and as a [`SessionEvent::Quality`] event with jitter, loss
//! of the interval, the last RTT and the E-model MOS. RTT comes from report blocks about our
//! SSRC in incoming SR/RR (`A - LSR - DLSR`).
//!
//! Clocks: timestamps and statistics run at the codec's RTP clock ([`Codec::clock_rate`]:
//! 8 kHz for G.711, 48 kHz for Opus, so jitter in ms is right for both); a telephone event
//! carries its start in that clock too (the stream has one timeline), its duration field in
//! the 8 kHz of `telephone-event/8000`.
//!
//! MOS: [`crate::mos`] (Cole–Rosenbluth delay impairment) with the codec's values
//! ([`Codec::impairment`]: G.711 with PLC, Bpl 25.1, or Opus), the interval's loss, and a one-way delay of
//! `RTT / 2 + 20 ms (one frame) + 2 × jitter` (a jitter buffer twice the current jitter), the
//! same approximation as `rtp analyze` with RTT added.
//!
//! Nothing here allocates per packet: outgoing packets go into caller buffers and events wait
//! in a fixed-size queue.

use core::net::SocketAddr;
use core::time::Duration;

use crate::codec::Codec;
use crate::dtmf::{DtmfDigit, DtmfReceiver, DtmfSender};
use crate::mos::{self, CodecImpairment, QualityInput};
use crate::rtcp::{self, NtpTimestamp, RtcpPacket, SenderInfo};
use crate::rtp::{RtpBuilder, RtpPacket, FIXED_HEADER_LEN};
use crate::stats::{self, IntervalReport, PacketClass, ReceiveStats, SeqStatus, StatsConfig};
use crate::{Error, Result};

/// Samples (and G.711 bytes) in a 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// The packet interval.
pub const PTIME: Duration = Duration::from_millis(20);
/// Size of a 20 ms G.711 RTP packet.
pub const FRAME_PACKET_LEN: usize = FIXED_HEADER_LEN + FRAME_SAMPLES;
/// A buffer size that holds any RTCP compound this session writes (SR with one block and
/// an SDES CNAME).
pub const MAX_RTCP_LEN: usize = 128;
/// Clock rate of G.711, of telephone events, and of the PCM inside Switchboard.
pub const CLOCK_RATE: u32 = 8000;

const EVENT_QUEUE: usize = 8;

/// Configuration of one session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionConfig {
    /// Audio codec (its payload type and clock are used).
    pub codec: Codec,
    /// Payload type of `telephone-event/8000`, if negotiated.
    pub dtmf_payload_type: Option<u8>,
    /// Our SSRC (random, chosen by the caller).
    pub ssrc: u32,
    /// First sequence number (random).
    pub initial_seq: u16,
    /// First RTP timestamp (random).
    pub initial_timestamp: u32,
    /// Where to send before anything was received (from SDP).
    pub remote: Option<SocketAddr>,
    /// RTP and RTCP share the port (RFC 5761).
    pub rtcp_mux: bool,
    /// Consecutive packets from a new address needed to relatch.
    pub relatch_after: u32,
    /// Silence of the latched source after which a new address may take over with the same
    /// SSRC.
    pub relatch_idle: Duration,
    /// RTCP and quality report interval.
    pub report_interval: Duration,
    /// Codec impairment for MOS.
    pub impairment: CodecImpairment,
    /// Wall-clock time (since the Unix epoch) of `now = 0`.
    pub unix_origin: Duration,
}

impl SessionConfig {
    /// A session with the given codec and random initial values, defaults elsewhere:
    /// telephone-event on 101, no remote yet, separate RTCP port, relatch after 5 packets or
    /// 1 s of silence, 5 s reports, the codec's MOS values, Unix origin 0.
    pub fn new(
        codec: impl Into<Codec>,
        ssrc: u32,
        initial_seq: u16,
        initial_timestamp: u32,
    ) -> Self {
        let codec = codec.into();
        Self {
            codec,
            dtmf_payload_type: Some(crate::dtmf::DEFAULT_PAYLOAD_TYPE),
            ssrc,
            initial_seq,
            initial_timestamp,
            remote: None,
            rtcp_mux: false,
            relatch_after: 5,
            relatch_idle: Duration::from_secs(1),
            report_interval: Duration::from_secs(5),
            impairment: codec.impairment(),
            unix_origin: Duration::ZERO,
        }
    }
}

/// One interval's quality figures (a callQualityUpdate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityReport {
    /// When the interval closed.
    pub at: Duration,
    /// SSRC the figures are about (0 if nothing was received).
    pub remote_ssrc: u32,
    /// The interval as closed in the statistics (what the RTCP block carries).
    pub interval: IntervalReport,
    /// Interarrival jitter now, ms.
    pub jitter_ms: f64,
    /// Loss in this interval, percent (never negative).
    pub loss_percent: f64,
    /// Last measured round-trip time.
    pub rtt: Option<Duration>,
    /// One-way delay fed to the E-model, ms.
    pub one_way_delay_ms: f64,
    /// E-model rating.
    pub r: f64,
    /// E-model MOS.
    pub mos: f64,
    /// The stream's codec (its E-model values gave `r` and `mos`).
    pub codec: Codec,
}

/// Something the driver should know about.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SessionEvent {
    /// Latched to a source for the first time.
    Latched {
        /// Source address.
        addr: SocketAddr,
        /// Its SSRC.
        ssrc: u32,
    },
    /// Moved to a new source address.
    Relatched {
        /// Previous address.
        from: SocketAddr,
        /// New address.
        to: SocketAddr,
        /// SSRC of the new source.
        ssrc: u32,
    },
    /// The latched address started sending another SSRC (statistics restarted).
    SsrcChanged {
        /// Previous SSRC.
        from: u32,
        /// New SSRC.
        to: u32,
    },
    /// A 5 s quality report.
    Quality(QualityReport),
    /// A DTMF digit received.
    Dtmf(DtmfDigit),
}

/// Why an incoming datagram was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not a valid RTP (or RTCP) packet.
    Malformed(Error),
    /// A payload type this session did not negotiate.
    PayloadType(u8),
    /// From an address other than the latched one (counted towards relatching).
    UnexpectedSource,
    /// A duplicate of a packet already received.
    Duplicate,
}

/// What [`RtpSession::handle_rtp`] made of a datagram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Incoming<'a> {
    /// An audio packet to play out / record / forward.
    Media {
        /// The packet.
        packet: RtpPacket<'a>,
        /// Its sequence classification.
        status: SeqStatus,
    },
    /// A telephone event (a digit may be waiting in [`RtpSession::poll_event`]).
    Dtmf,
    /// RTCP on a muxed port, consumed.
    Rtcp,
    /// Dropped.
    Dropped(DropReason),
}

/// Counters of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionCounters {
    /// RTP packets sent.
    pub packets_sent: u64,
    /// RTP payload octets sent.
    pub octets_sent: u64,
    /// Datagrams accepted as media or events.
    pub packets_accepted: u64,
    /// Dropped: malformed.
    pub dropped_malformed: u64,
    /// Dropped: unknown payload type.
    pub dropped_payload_type: u64,
    /// Dropped: from an unexpected source.
    pub dropped_source: u64,
    /// Dropped: duplicates.
    pub dropped_duplicate: u64,
    /// Relatches to a new address.
    pub relatches: u64,
    /// RTCP packets sent.
    pub rtcp_sent: u64,
    /// RTCP packets received and accepted.
    pub rtcp_received: u64,
    /// Events lost because the queue was full.
    pub events_dropped: u64,
}

#[derive(Debug, Clone, Copy)]
struct Latch {
    addr: SocketAddr,
    ssrc: u32,
    last_seen: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    addr: SocketAddr,
    ssrc: u32,
    count: u32,
}

/// One call leg's RTP session; see the module docs.
#[derive(Debug, Clone)]
pub struct RtpSession {
    config: SessionConfig,
    // Outgoing.
    seq: u16,
    next_ts: u32,
    talkspurt: bool,
    sent_since_report: bool,
    last_sent: Option<(u32, Duration)>,
    event_ts: Option<u32>,
    remote: Option<SocketAddr>,
    rtcp_remote: Option<SocketAddr>,
    // Incoming.
    latch: Option<Latch>,
    candidate: Option<Candidate>,
    stats: ReceiveStats,
    dtmf: DtmfReceiver,
    rtt: Option<Duration>,
    // Timers and output.
    next_report: Duration,
    rtcp_due: Option<(Duration, IntervalReport, bool)>,
    last_quality: Option<QualityReport>,
    events: [Option<SessionEvent>; EVENT_QUEUE],
    event_head: usize,
    event_len: usize,
    counters: SessionCounters,
}

impl RtpSession {
    /// A session starting at `now`; the first report is due one interval later.
    pub fn new(config: SessionConfig, now: Duration) -> Self {
        let rtcp_remote = config.remote.map(|a| rtcp_addr_for(a, config.rtcp_mux));
        Self {
            config,
            seq: config.initial_seq,
            next_ts: config.initial_timestamp,
            talkspurt: false,
            sent_since_report: false,
            last_sent: None,
            event_ts: None,
            remote: config.remote,
            rtcp_remote,
            latch: None,
            candidate: None,
            stats: ReceiveStats::new(StatsConfig::new(config.codec.clock_rate())),
            dtmf: DtmfReceiver::new(),
            rtt: None,
            next_report: now + config.report_interval,
            rtcp_due: None,
            last_quality: None,
            events: [None; EVENT_QUEUE],
            event_head: 0,
            event_len: 0,
            counters: SessionCounters::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The codec.
    pub fn codec(&self) -> Codec {
        self.config.codec
    }

    /// Switches to `codec` (what SDP negotiated after the stream opened) and its MOS values,
    /// with `dtmf_payload_type` for telephone events. Sequence numbers go on; statistics
    /// restart when the clock rate changes (their jitter is in clock units).
    pub fn set_codec(&mut self, codec: Codec, dtmf_payload_type: Option<u8>) {
        let old = self.config.codec;
        self.config.codec = codec;
        self.config.impairment = codec.impairment();
        self.config.dtmf_payload_type = dtmf_payload_type;
        if old.clock_rate() != codec.clock_rate() {
            let mut c = self.stats.config();
            c.clock_rate = codec.clock_rate();
            self.stats = ReceiveStats::new(c);
        }
    }

    /// Where RTP goes: the latched source, else the configured remote.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// Where RTCP goes (the RTCP source once one was seen, else RTP port + 1, or the RTP
    /// address with rtcp-mux).
    pub fn rtcp_remote(&self) -> Option<SocketAddr> {
        self.rtcp_remote
    }

    /// Replaces the remote address (e.g. from a re-INVITE's SDP) and forgets the latch: the
    /// next valid packets latch again.
    pub fn set_remote(&mut self, remote: Option<SocketAddr>) {
        self.remote = remote;
        self.rtcp_remote = remote.map(|a| rtcp_addr_for(a, self.config.rtcp_mux));
        self.latch = None;
        self.candidate = None;
    }

    /// The SSRC and address latched to, if any.
    pub fn latched(&self) -> Option<(SocketAddr, u32)> {
        self.latch.map(|l| (l.addr, l.ssrc))
    }

    /// Receive statistics of the current remote SSRC.
    pub fn stats(&self) -> &ReceiveStats {
        &self.stats
    }

    /// Counters.
    pub fn counters(&self) -> SessionCounters {
        self.counters
    }

    /// Last round-trip time measured from RTCP.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// The last quality report produced.
    pub fn last_quality(&self) -> Option<QualityReport> {
        self.last_quality
    }

    /// Sequence number and timestamp the next packet will carry.
    pub fn next_seq_ts(&self) -> (u16, u32) {
        (self.seq, self.next_ts)
    }

    // ---------------------------------------------------------------- outgoing

    /// Packetizes one encoded frame (160 bytes of G.711 or one Opus packet for 20 ms) into
    /// `out`; returns the packet length. The timestamp advances by the payload's duration.
    /// The first packet of a talkspurt carries the marker bit.
    pub fn write_frame(&mut self, now: Duration, payload: &[u8], out: &mut [u8]) -> Result<usize> {
        let marker = !self.talkspurt;
        self.write_audio(now, marker, payload, out)
    }

    /// Packetizes a payload relayed from another leg with the same codec (no transcoding),
    /// keeping this leg's SSRC, sequence and timestamp continuous; `marker` is the marker of
    /// the relayed packet (or-ed with this leg's own talkspurt start).
    pub fn write_relayed(
        &mut self,
        now: Duration,
        marker: bool,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize> {
        let marker = marker || !self.talkspurt;
        self.write_audio(now, marker, payload, out)
    }

    fn write_audio(
        &mut self,
        now: Duration,
        marker: bool,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize> {
        let n = RtpBuilder::new(
            self.config.codec.payload_type(),
            self.seq,
            self.next_ts,
            self.config.ssrc,
        )
        .marker(marker)
        .write(out, payload)?;
        self.last_sent = Some((self.next_ts, now));
        self.seq = self.seq.wrapping_add(1);
        // G.711: one byte per sample; Opus: from the TOC (a relayed packet we cannot read
        // counts as one 20 ms frame).
        let codec = self.config.codec;
        let ticks = codec
            .payload_ticks(payload)
            .unwrap_or_else(|_| codec.frame_ticks());
        self.next_ts = self.next_ts.wrapping_add(ticks);
        self.talkspurt = true;
        self.sent_since_report = true;
        self.counters.packets_sent += 1;
        self.counters.octets_sent += payload.len() as u64;
        Ok(n)
    }

    /// Nothing is sent for `frames` 20 ms frames (silence suppression, the source paused, or
    /// pacing ticks that were skipped): the timestamp advances, and the next packet starts a
    /// talkspurt (marker).
    pub fn silence(&mut self, frames: u32) {
        self.next_ts = self
            .next_ts
            .wrapping_add(frames.wrapping_mul(self.config.codec.frame_ticks()));
        self.talkspurt = false;
    }

    /// Writes the next packet of a telephone event into `out` in place of this interval's
    /// audio frame; `None` when `sender` is finished (or no telephone-event payload type was
    /// negotiated). All packets of one event carry the event's start timestamp; the media
    /// clock keeps advancing 20 ms per packet, and audio after the event starts a talkspurt.
    pub fn write_dtmf(
        &mut self,
        now: Duration,
        sender: &mut DtmfSender,
        out: &mut [u8],
    ) -> Option<Result<usize>> {
        let pt = self.config.dtmf_payload_type?;
        let Some(p) = sender.next_packet() else {
            self.event_ts = None;
            return None;
        };
        let ts = *self.event_ts.get_or_insert(self.next_ts);
        let mut payload = [0u8; crate::dtmf::PAYLOAD_LEN];
        let result = p.event.write(&mut payload).and_then(|_| {
            RtpBuilder::new(pt, self.seq, ts, self.config.ssrc)
                .marker(p.marker)
                .write(out, &payload)
        });
        if result.is_ok() {
            self.seq = self.seq.wrapping_add(1);
            self.last_sent = Some((self.next_ts, now));
            self.next_ts = self.next_ts.wrapping_add(self.config.codec.frame_ticks());
            self.talkspurt = false;
            self.sent_since_report = true;
            self.counters.packets_sent += 1;
            self.counters.octets_sent += payload.len() as u64;
        }
        if sender.is_done() {
            self.event_ts = None;
        }
        Some(result)
    }

    // ---------------------------------------------------------------- incoming

    /// Handles a datagram from the RTP port arriving at `now` from `from`.
    pub fn handle_rtp<'a>(
        &mut self,
        now: Duration,
        from: SocketAddr,
        datagram: &'a [u8],
    ) -> Incoming<'a> {
        if self.config.rtcp_mux && is_rtcp(datagram) {
            return match self.handle_rtcp(now, from, datagram) {
                Ok(()) => Incoming::Rtcp,
                Err(e) => Incoming::Dropped(e),
            };
        }
        let packet = match RtpPacket::parse(datagram) {
            Ok(p) => p,
            Err(e) => return self.drop(DropReason::Malformed(e)),
        };
        let pt = packet.payload_type();
        let is_event = Some(pt) == self.config.dtmf_payload_type;
        if pt != self.config.codec.payload_type() && !is_event {
            return self.drop(DropReason::PayloadType(pt));
        }
        let ssrc = packet.ssrc();
        if !self.accept_source(now, from, ssrc) {
            return self.drop(DropReason::UnexpectedSource);
        }
        let class = if is_event {
            PacketClass::TelephoneEvent
        } else {
            PacketClass::Media
        };
        let status = self.stats.on_packet_class(
            now,
            packet.sequence_number(),
            packet.timestamp(),
            packet.marker(),
            class,
        );
        if status == SeqStatus::Duplicate {
            return self.drop(DropReason::Duplicate);
        }
        self.counters.packets_accepted += 1;
        if is_event {
            if let Ok(Some(d)) = self.dtmf.on_packet(packet.timestamp(), packet.payload()) {
                self.push_event(SessionEvent::Dtmf(d));
            }
            return Incoming::Dtmf;
        }
        Incoming::Media { packet, status }
    }

    fn drop(&mut self, reason: DropReason) -> Incoming<'static> {
        let c = &mut self.counters;
        match reason {
            DropReason::Malformed(_) => c.dropped_malformed += 1,
            DropReason::PayloadType(_) => c.dropped_payload_type += 1,
            DropReason::UnexpectedSource => c.dropped_source += 1,
            DropReason::Duplicate => c.dropped_duplicate += 1,
        }
        Incoming::Dropped(reason)
    }

    /// Latching: whether a valid packet from `from` with `ssrc` is accepted.
    fn accept_source(&mut self, now: Duration, from: SocketAddr, ssrc: u32) -> bool {
        let Some(latch) = self.latch.as_mut() else {
            self.latch = Some(Latch {
                addr: from,
                ssrc,
                last_seen: now,
            });
            self.remote = Some(from);
            // Until RTCP arrives from somewhere, send it next to the latched RTP source.
            self.rtcp_remote = Some(rtcp_addr_for(from, self.config.rtcp_mux));
            self.push_event(SessionEvent::Latched { addr: from, ssrc });
            return true;
        };
        if latch.addr == from {
            self.candidate = None;
            latch.last_seen = now;
            if latch.ssrc != ssrc {
                let old = latch.ssrc;
                latch.ssrc = ssrc;
                self.new_source();
                self.push_event(SessionEvent::SsrcChanged {
                    from: old,
                    to: ssrc,
                });
            }
            return true;
        }
        let idle = now.saturating_sub(latch.last_seen) >= self.config.relatch_idle;
        if ssrc == latch.ssrc && !idle {
            // Same source seen from elsewhere while the latched path works: a copy or a
            // spoof; never a reason to move.
            self.candidate = None;
            return false;
        }
        let count = match self.candidate {
            Some(c) if c.addr == from && c.ssrc == ssrc => c.count + 1,
            _ => 1,
        };
        if count < self.config.relatch_after.max(1) {
            self.candidate = Some(Candidate {
                addr: from,
                ssrc,
                count,
            });
            return false;
        }
        let old = latch.addr;
        let ssrc_changed = latch.ssrc != ssrc;
        *latch = Latch {
            addr: from,
            ssrc,
            last_seen: now,
        };
        self.candidate = None;
        self.remote = Some(from);
        self.rtcp_remote = Some(rtcp_addr_for(from, self.config.rtcp_mux));
        self.counters.relatches += 1;
        if ssrc_changed {
            self.new_source();
        }
        self.push_event(SessionEvent::Relatched {
            from: old,
            to: from,
            ssrc,
        });
        true
    }

    fn new_source(&mut self) {
        self.stats = ReceiveStats::new(self.stats.config());
        self.dtmf = DtmfReceiver::new();
    }

    /// Handles an RTCP compound packet arriving at `now` from `from`: an SR from the latched
    /// SSRC feeds LSR/DLSR, and report blocks about our SSRC give the RTT. Packets whose
    /// sender is not the latched SSRC are ignored.
    pub fn handle_rtcp(
        &mut self,
        now: Duration,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<(), DropReason> {
        let Some(latch) = self.latch else {
            return Err(DropReason::UnexpectedSource);
        };
        let arrival_mid = self.ntp_at(now).mid32();
        let mut accepted = false;
        let mut blocks_rtt = None;
        for packet in rtcp::parse_compound(datagram) {
            let packet = match packet {
                Ok(p) => p,
                Err(e) => {
                    self.counters.dropped_malformed += 1;
                    return Err(DropReason::Malformed(e));
                }
            };
            let (sender, blocks) = match packet {
                RtcpPacket::SenderReport(sr) => {
                    if sr.ssrc() == latch.ssrc {
                        self.stats.on_sender_report(now, sr.ntp_timestamp());
                    }
                    (sr.ssrc(), Some(sr.report_blocks()))
                }
                RtcpPacket::ReceiverReport(rr) => (rr.ssrc(), Some(rr.report_blocks())),
                _ => continue,
            };
            if sender != latch.ssrc {
                continue;
            }
            accepted = true;
            for block in blocks.into_iter().flatten() {
                if block.ssrc == self.config.ssrc {
                    if let Some(rtt) =
                        stats::rtt(arrival_mid, block.last_sr, block.delay_since_last_sr)
                    {
                        blocks_rtt = Some(rtt);
                    }
                }
            }
        }
        if !accepted {
            return Err(DropReason::UnexpectedSource);
        }
        self.counters.rtcp_received += 1;
        if blocks_rtt.is_some() {
            self.rtt = blocks_rtt;
        }
        self.rtcp_remote = Some(from);
        Ok(())
    }

    // ---------------------------------------------------------------- timers and output

    /// When [`RtpSession::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Duration {
        self.next_report
    }

    /// Runs the report timer: when due, closes a statistics interval, queues an RTCP report
    /// and a quality event.
    pub fn handle_timeout(&mut self, now: Duration) {
        if now < self.next_report {
            return;
        }
        self.next_report += self.config.report_interval;
        if self.next_report <= now {
            // Far behind (the driver stalled): do not fire a burst of reports.
            self.next_report = now + self.config.report_interval;
        }
        let interval = self.stats.interval_report(now);
        let have_source = self.latch.is_some();
        self.rtcp_due = Some((now, interval, core::mem::take(&mut self.sent_since_report)));
        let jitter_ms = interval.jitter_ms;
        // The exact interval loss (the RTCP fraction is the same figure in 1/256).
        let loss_percent =
            if have_source && interval.expected_interval > 0 && interval.lost_interval > 0 {
                interval.lost_interval as f64 * 100.0 / interval.expected_interval as f64
            } else {
                0.0
            };
        let one_way_delay_ms = self.rtt.map_or(0.0, |r| r.as_secs_f64() * 500.0)
            + PTIME.as_secs_f64() * 1000.0
            + 2.0 * jitter_ms;
        let q = mos::estimate(QualityInput {
            codec: self.config.impairment,
            one_way_delay_ms,
            loss_percent,
            burst_r: 1.0,
        });
        let report = QualityReport {
            at: now,
            remote_ssrc: self.latch.map_or(0, |l| l.ssrc),
            interval,
            jitter_ms,
            loss_percent,
            rtt: self.rtt,
            one_way_delay_ms,
            r: q.r,
            mos: q.mos,
            codec: self.config.codec,
        };
        self.last_quality = Some(report);
        self.push_event(SessionEvent::Quality(report));
    }

    /// Writes a pending RTCP compound (SR or RR, then SDES CNAME) into `out` (at least
    /// [`MAX_RTCP_LEN`] bytes); returns its length and destination. `None` when nothing is due
    /// or no destination is known.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Option<Result<(usize, SocketAddr)>> {
        let (at, interval, sender) = self.rtcp_due.take()?;
        let dest = self.rtcp_remote?;
        let blocks_storage;
        let blocks: &[rtcp::ReportBlock] = match self.latch {
            Some(l) => {
                blocks_storage = [interval.report_block(l.ssrc)];
                &blocks_storage
            }
            None => &[],
        };
        let ssrc = self.config.ssrc;
        let first = if sender {
            // RTP timestamp of the same instant as the NTP timestamp.
            let rtp_timestamp = match self.last_sent {
                Some((ts, sent_at)) => {
                    let elapsed = at.saturating_sub(sent_at);
                    let clock = u128::from(self.config.codec.clock_rate());
                    let units = elapsed.as_micros() * clock / 1_000_000;
                    ts.wrapping_add(units as u32)
                }
                None => self.next_ts,
            };
            let info = SenderInfo {
                ntp: self.ntp_at(at),
                rtp_timestamp,
                packet_count: self.counters.packets_sent as u32,
                octet_count: self.counters.octets_sent as u32,
            };
            rtcp::write_sender_report(out, ssrc, &info, blocks)
        } else {
            rtcp::write_receiver_report(out, ssrc, blocks)
        };
        let result = first.and_then(|n| {
            let mut cname = [0u8; 11];
            cname[..3].copy_from_slice(b"sb-");
            write_hex(ssrc, &mut cname[3..]);
            let rest = out.get_mut(n..).unwrap_or_default();
            rtcp::write_sdes_cname(rest, ssrc, &cname).map(|m| n + m)
        });
        if result.is_ok() {
            self.counters.rtcp_sent += 1;
        }
        Some(result.map(|n| (n, dest)))
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        if self.event_len == 0 {
            return None;
        }
        let ev = self.events[self.event_head].take();
        self.event_head = (self.event_head + 1) % EVENT_QUEUE;
        self.event_len -= 1;
        ev
    }

    fn push_event(&mut self, ev: SessionEvent) {
        if self.event_len == EVENT_QUEUE {
            self.counters.events_dropped += 1;
            return;
        }
        self.events[(self.event_head + self.event_len) % EVENT_QUEUE] = Some(ev);
        self.event_len += 1;
    }

    fn ntp_at(&self, now: Duration) -> NtpTimestamp {
        NtpTimestamp::from_unix(self.config.unix_origin + now)
    }
}

/// Whether a datagram on a muxed port is RTCP (RFC 5761 §4: second byte 192..=223).
pub fn is_rtcp(datagram: &[u8]) -> bool {
    matches!(datagram.get(1), Some(192..=223))
}

fn rtcp_addr_for(rtp: SocketAddr, mux: bool) -> SocketAddr {
    if mux {
        rtp
    } else {
        SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1))
    }
}

fn write_hex(v: u32, out: &mut [u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, o) in out.iter_mut().take(8).enumerate() {
        *o = HEX[((v >> (28 - 4 * i)) & 0xf) as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::g711::Law;
    use crate::rtcp::{duration_to_compact, ReportBlock};

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn session() -> RtpSession {
        let mut c = SessionConfig::new(Law::Mu, 0x1111_2222, 65534, 0xffff_ff00);
        c.remote = Some(addr(4000));
        c.unix_origin = Duration::from_secs(1_700_000_000);
        RtpSession::new(c, Duration::ZERO)
    }

    fn rtp(seq: u16, ts: u32, ssrc: u32, buf: &mut [u8; 200]) -> &[u8] {
        let n = RtpBuilder::new(0, seq, ts, ssrc)
            .write(buf, &[0xff; 160])
            .unwrap();
        &buf[..n]
    }

    #[test]
    fn packetization_sequence_timestamp_marker() {
        let mut s = session();
        let mut out = [0u8; 200];
        let mut seen = Vec::new();
        for i in 0..3 {
            let n = s.write_frame(ms(20 * i), &[0x55; 160], &mut out).unwrap();
            assert_eq!(n, FRAME_PACKET_LEN);
            let p = RtpPacket::parse(&out[..n]).unwrap();
            assert_eq!(
                (p.payload_type(), p.ssrc(), p.payload()),
                (0, 0x1111_2222, &[0x55; 160][..])
            );
            seen.push((p.sequence_number(), p.timestamp(), p.marker()));
        }
        // Sequence and timestamp wrap; marker only on the first packet of the talkspurt.
        assert_eq!(
            seen,
            [
                (65534, 0xffff_ff00, true),
                (65535, 0xffff_ffa0, false),
                (0, 0x40, false)
            ]
        );
        s.silence(2);
        let n = s.write_frame(ms(100), &[0x55; 160], &mut out).unwrap();
        let p = RtpPacket::parse(&out[..n]).unwrap();
        assert_eq!(
            (p.sequence_number(), p.timestamp(), p.marker()),
            (1, 0x40 + 160 * 3, true)
        );
        assert_eq!(s.counters().packets_sent, 4);
        assert_eq!(s.counters().octets_sent, 640);
        assert!(s.write_frame(ms(120), &[0; 160], &mut [0u8; 100]).is_err());
    }

    #[test]
    fn latching_and_relatching() {
        let mut s = session();
        let mut b = [0u8; 200];
        assert_eq!(s.remote(), Some(addr(4000)));
        assert_eq!(s.rtcp_remote(), Some(addr(4001)));
        // First valid packet latches to its source, wherever SDP pointed.
        assert!(matches!(
            s.handle_rtp(ms(0), addr(5000), rtp(10, 0, 0xAA, &mut b)),
            Incoming::Media { .. }
        ));
        assert_eq!(s.remote(), Some(addr(5000)));
        assert_eq!(s.rtcp_remote(), Some(addr(5001)));
        assert_eq!(
            s.poll_event(),
            Some(SessionEvent::Latched {
                addr: addr(5000),
                ssrc: 0xAA
            })
        );
        // Wrong payload type and garbage are dropped without effect.
        let n = RtpBuilder::new(18, 11, 160, 0xAA)
            .write(&mut b, &[0; 20])
            .unwrap();
        assert_eq!(
            s.handle_rtp(ms(20), addr(5000), &b[..n]),
            Incoming::Dropped(DropReason::PayloadType(18))
        );
        assert!(matches!(
            s.handle_rtp(ms(20), addr(5000), &[0x80, 0]),
            Incoming::Dropped(DropReason::Malformed(_))
        ));
        // The same SSRC from another port while the latched one is active: dropped always.
        for i in 0..10u16 {
            assert!(matches!(
                s.handle_rtp(
                    ms(20 + u64::from(i)),
                    addr(5000),
                    rtp(11 + i, 160 * (1 + u32::from(i)), 0xAA, &mut b)
                ),
                Incoming::Media { .. }
            ));
            assert_eq!(
                s.handle_rtp(
                    ms(20 + u64::from(i)),
                    addr(6000),
                    rtp(11 + i, 0, 0xAA, &mut b)
                ),
                Incoming::Dropped(DropReason::UnexpectedSource)
            );
        }
        assert_eq!(s.remote(), Some(addr(5000)));
        // A new SSRC from a new port: relatch after 5 consecutive packets.
        for i in 0..4u16 {
            assert_eq!(
                s.handle_rtp(ms(300), addr(7000), rtp(100 + i, 0, 0xBB, &mut b)),
                Incoming::Dropped(DropReason::UnexpectedSource)
            );
        }
        assert!(matches!(
            s.handle_rtp(ms(300), addr(7000), rtp(104, 0, 0xBB, &mut b)),
            Incoming::Media { .. }
        ));
        assert_eq!(s.remote(), Some(addr(7000)));
        assert_eq!(s.latched(), Some((addr(7000), 0xBB)));
        assert_eq!(
            s.poll_event(),
            Some(SessionEvent::Relatched {
                from: addr(5000),
                to: addr(7000),
                ssrc: 0xBB
            })
        );
        let c = s.counters();
        assert_eq!(
            (
                c.relatches,
                c.dropped_source,
                c.dropped_payload_type,
                c.dropped_malformed
            ),
            (1, 14, 1, 1)
        );
        // Statistics restarted for the new SSRC (only the relatching packet so far).
        assert_eq!(s.stats().snapshot().packets, 1);
        // Same SSRC from a new port after the source went quiet (NAT rebinding): relatch.
        for i in 0..5u16 {
            s.handle_rtp(ms(1400), addr(7002), rtp(105 + i, 0, 0xBB, &mut b));
        }
        assert_eq!(s.remote(), Some(addr(7002)));
        // The latched address changing SSRC: accepted at once, statistics restart.
        let _ = s.poll_event();
        assert!(matches!(
            s.handle_rtp(ms(1500), addr(7002), rtp(1, 0, 0xCC, &mut b)),
            Incoming::Media { .. }
        ));
        assert_eq!(
            s.poll_event(),
            Some(SessionEvent::SsrcChanged {
                from: 0xBB,
                to: 0xCC
            })
        );
        // set_remote forgets the latch.
        s.set_remote(Some(addr(9000)));
        assert_eq!(s.latched(), None);
        assert_eq!(s.rtcp_remote(), Some(addr(9001)));
    }

    #[test]
    fn rtcp_reports_quality_and_rtt() {
        let mut s = session();
        let mut b = [0u8; 200];
        let mut out = [0u8; MAX_RTCP_LEN];
        // 5 s of a 20 ms stream in, with every 10th packet lost; we also send.
        for i in 0..250u32 {
            let now = ms(20 * u64::from(i));
            if i % 10 != 5 {
                s.handle_rtp(now, addr(5000), rtp(i as u16, 160 * i, 0xAA, &mut b));
            }
            s.write_frame(now, &[0xff; 160], &mut [0u8; 200]).unwrap();
            assert!(s.poll_transmit(&mut out).is_none());
        }
        assert_eq!(s.poll_timeout(), ms(5000));
        s.handle_timeout(ms(4999));
        assert!(s.poll_transmit(&mut out).is_none());
        s.handle_timeout(ms(5000));
        assert_eq!(s.poll_timeout(), ms(10_000));
        let (n, dest) = s.poll_transmit(&mut out).unwrap().unwrap();
        assert_eq!(dest, addr(5001));
        let packets: Vec<_> = rtcp::parse_compound(&out[..n])
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(packets.len(), 2);
        let RtcpPacket::SenderReport(sr) = packets[0] else {
            panic!("SR expected")
        };
        assert_eq!(sr.ssrc(), 0x1111_2222);
        assert_eq!(sr.packet_count(), 250);
        assert_eq!(
            sr.ntp_timestamp(),
            NtpTimestamp::from_unix(Duration::from_secs(1_700_000_005))
        );
        let block = sr.report_blocks().next().unwrap();
        assert_eq!(block.ssrc, 0xAA);
        // 25 of 249 expected after probation lost.
        assert!(block.cumulative_lost == 25, "{block:?}");
        assert!(matches!(packets[1], RtcpPacket::SourceDescription(_)));
        // The quality event.
        let _latched = s.poll_event();
        let Some(SessionEvent::Quality(q)) = s.poll_event() else {
            panic!("quality expected")
        };
        assert!(
            (q.loss_percent - 25.0 * 100.0 / 249.0).abs() < 1e-9,
            "{}",
            q.loss_percent
        );
        assert!(q.mos > 1.0 && q.mos < 4.0, "{}", q.mos);
        assert_eq!(q.rtt, None);

        // The peer's RR about us 100 ms after our SR arrived there, sent 30 ms later; it
        // arrives at 5.2 s: RTT = 200 ms - 30 ms = 170 ms.
        let lsr = NtpTimestamp::from_unix(Duration::from_secs(1_700_000_005)).mid32();
        let rr = ReportBlock {
            ssrc: 0x1111_2222,
            last_sr: lsr,
            delay_since_last_sr: duration_to_compact(ms(30)),
            ..ReportBlock::default()
        };
        let n = rtcp::write_receiver_report(&mut out, 0xAA, &[rr]).unwrap();
        assert_eq!(s.handle_rtcp(ms(5200), addr(5001), &out[..n]), Ok(()));
        let rtt = s.rtt().unwrap();
        assert!((rtt.as_secs_f64() - 0.170).abs() < 0.0001, "{rtt:?}");
        // From another SSRC: ignored.
        let n = rtcp::write_receiver_report(&mut out, 0xEE, &[rr]).unwrap();
        assert_eq!(
            s.handle_rtcp(ms(5200), addr(5001), &out[..n]),
            Err(DropReason::UnexpectedSource)
        );
        // An SR from the peer is reflected in our next RR's LSR/DLSR; we sent nothing, so RR.
        let info = SenderInfo {
            ntp: NtpTimestamp::from_unix(Duration::from_secs(1_700_000_009)),
            ..SenderInfo::default()
        };
        let n = rtcp::write_sender_report(&mut out, 0xAA, &info, &[]).unwrap();
        assert_eq!(s.handle_rtcp(ms(9000), addr(5001), &out[..n]), Ok(()));
        s.handle_timeout(ms(10_000));
        let (n, _) = s.poll_transmit(&mut out).unwrap().unwrap();
        let Some(Ok(RtcpPacket::ReceiverReport(rr))) = rtcp::parse_compound(&out[..n]).next()
        else {
            panic!("RR expected")
        };
        let block = rr.report_blocks().next().unwrap();
        assert_eq!(block.last_sr, info.ntp.mid32());
        assert_eq!(block.delay_since_last_sr, duration_to_compact(ms(1000)));
        let Some(SessionEvent::Quality(q)) = s.poll_event() else {
            panic!("quality expected")
        };
        assert_eq!(q.rtt, Some(rtt));
        // Nothing expected in that interval: no loss figure.
        assert_eq!(q.loss_percent, 0.0);
    }

    #[test]
    fn rtcp_mux_and_dtmf() {
        let mut c = SessionConfig::new(Law::A, 7, 0, 0);
        c.rtcp_mux = true;
        let mut s = RtpSession::new(c, Duration::ZERO);
        let mut out = [0u8; 200];
        // Outgoing digit: 3 packets with the same timestamp, then audio with a marker.
        let mut d = DtmfSender::new('9', ms(20), 5, 8000, PTIME).unwrap();
        let mut stamps = Vec::new();
        while let Some(r) = s.write_dtmf(ms(0), &mut d, &mut out) {
            let n = r.unwrap();
            let p = RtpPacket::parse(&out[..n]).unwrap();
            assert_eq!(p.payload_type(), 101);
            stamps.push((p.sequence_number(), p.timestamp(), p.marker()));
        }
        assert_eq!(stamps, [(0, 0, true), (1, 0, false), (2, 0, false)]);
        let n = s.write_frame(ms(60), &[0xd5; 160], &mut out).unwrap();
        let p = RtpPacket::parse(&out[..n]).unwrap();
        assert_eq!(
            (
                p.payload_type(),
                p.sequence_number(),
                p.timestamp(),
                p.marker()
            ),
            (8, 3, 480, true)
        );

        // Incoming: latch with audio, then a digit; RTCP on the same port is recognised.
        let mut b = [0u8; 200];
        let n = RtpBuilder::new(8, 1, 0, 0xAB)
            .write(&mut b, &[0xd5; 160])
            .unwrap();
        assert!(matches!(
            s.handle_rtp(ms(0), addr(5000), &b[..n]),
            Incoming::Media { .. }
        ));
        assert_eq!(s.rtcp_remote(), Some(addr(5000)));
        let mut payload = [0u8; 4];
        for (seq, end) in [(2u16, false), (3, true), (4, true)] {
            crate::dtmf::TelephoneEvent {
                event: 1,
                end,
                volume: 10,
                duration: 160,
            }
            .write(&mut payload)
            .unwrap();
            let n = RtpBuilder::new(101, seq, 160, 0xAB)
                .write(&mut b, &payload)
                .unwrap();
            assert_eq!(s.handle_rtp(ms(20), addr(5000), &b[..n]), Incoming::Dtmf);
        }
        let _latched = s.poll_event();
        assert!(matches!(
            s.poll_event(),
            Some(SessionEvent::Dtmf(DtmfDigit {
                digit: Some('1'),
                ..
            }))
        ));
        assert_eq!(s.poll_event(), None);
        let n = rtcp::write_receiver_report(&mut b, 0xAB, &[]).unwrap();
        assert_eq!(s.handle_rtp(ms(30), addr(5000), &b[..n]), Incoming::Rtcp);
        assert_eq!(s.counters().rtcp_received, 1);
    }

    #[test]
    fn opus_runs_on_a_48khz_clock() {
        let mut c = SessionConfig::new(Codec::opus(111), 9, 100, 1000);
        c.remote = Some(addr(4000));
        c.unix_origin = Duration::from_secs(1_700_000_000);
        let mut s = RtpSession::new(c, Duration::ZERO);
        assert_eq!(s.config().impairment, mos::OPUS);
        assert_eq!(s.stats().config().clock_rate, 48_000);
        let mut out = [0u8; 200];
        // A 20 ms SILK packet (TOC config 1) advances by 960, a 40 ms one (config 2) by 1920.
        let n = s
            .write_frame(ms(0), &[1 << 3, 0xaa, 0xbb], &mut out)
            .unwrap();
        let p = RtpPacket::parse(&out[..n]).unwrap();
        assert_eq!(
            (p.payload_type(), p.timestamp(), p.marker()),
            (111, 1000, true)
        );
        s.write_frame(ms(20), &[2 << 3, 0xaa], &mut out).unwrap();
        assert_eq!(s.next_seq_ts(), (102, 1000 + 960 + 1920));
        s.silence(2);
        assert_eq!(s.next_seq_ts().1, 1000 + 960 + 1920 + 2 * 960);
        // A telephone event takes one 20 ms step of the 48 kHz clock per packet.
        let mut d = DtmfSender::new('5', ms(20), 10, CLOCK_RATE, PTIME).unwrap();
        while s.write_dtmf(ms(60), &mut d, &mut out).is_some() {}
        assert_eq!(
            s.next_seq_ts(),
            (105, 1000 + 960 + 1920 + 2 * 960 + 3 * 960)
        );

        // Receiving: 48 kHz timestamps, every other packet 10 ms late: jitter in ms is what
        // an 8 kHz stream with the same delays shows.
        let mut g711 = RtpSession::new(SessionConfig::new(Law::Mu, 1, 0, 0), Duration::ZERO);
        let mut b = [0u8; 200];
        for i in 0..100u32 {
            let at = ms(20 * u64::from(i) + if i % 2 == 1 { 10 } else { 0 });
            let n = RtpBuilder::new(111, i as u16, 960 * i, 0xAB)
                .write(&mut b, &[1 << 3, 1, 2, 3])
                .unwrap();
            assert!(matches!(
                s.handle_rtp(at, addr(5000), &b[..n]),
                Incoming::Media { .. }
            ));
            g711.handle_rtp(at, addr(5000), rtp(i as u16, 160 * i, 0xAB, &mut b));
        }
        let (j48, j8) = (
            s.stats().snapshot().mean_jitter_ms,
            g711.stats().snapshot().mean_jitter_ms,
        );
        assert!(j8 > 3.0, "{j8}");
        assert!((j48 - j8).abs() < 1e-6, "{j48} vs {j8}");
        // PCMU on an Opus session is a foreign payload type.
        assert_eq!(
            s.handle_rtp(ms(3000), addr(5000), rtp(100, 0, 0xAB, &mut b)),
            Incoming::Dropped(DropReason::PayloadType(0))
        );
        // The SR's RTP timestamp is in the 48 kHz clock: 100 ms after the last packet
        // (timestamp 1000 + 960) it is 4800 further.
        let mut s2 = RtpSession::new(c, Duration::ZERO);
        s2.write_frame(ms(4900), &[1 << 3, 0], &mut out).unwrap();
        s2.handle_timeout(ms(5000));
        let mut rtcp_out = [0u8; MAX_RTCP_LEN];
        let (n, _) = s2.poll_transmit(&mut rtcp_out).unwrap().unwrap();
        let Some(Ok(RtcpPacket::SenderReport(sr))) = rtcp::parse_compound(&rtcp_out[..n]).next()
        else {
            panic!("SR expected")
        };
        assert_eq!(sr.rtp_timestamp(), 1000 + 4800);
    }

    #[test]
    fn set_codec_switches_payload_type_and_clock() {
        let mut s = session();
        let mut b = [0u8; 200];
        s.handle_rtp(ms(0), addr(5000), rtp(1, 0, 0xAA, &mut b));
        assert_eq!(s.stats().snapshot().packets, 1);
        s.set_codec(Codec::opus(96), Some(100));
        assert_eq!(s.codec(), Codec::opus(96));
        assert_eq!(s.config().dtmf_payload_type, Some(100));
        assert_eq!(s.stats().config().clock_rate, 48_000);
        assert_eq!(s.stats().snapshot().packets, 0);
        let n = s.write_frame(ms(20), &[1 << 3, 0], &mut b).unwrap();
        assert_eq!(RtpPacket::parse(&b[..n]).unwrap().payload_type(), 96);
        // Same clock: statistics go on.
        s.handle_rtp(ms(20), addr(5000), &{
            let mut o = [0u8; 20];
            let n = RtpBuilder::new(96, 2, 960, 0xAA)
                .write(&mut o, &[8, 0])
                .unwrap();
            o[..n].to_vec()
        });
        s.set_codec(Codec::opus(97), Some(100));
        assert_eq!(s.stats().snapshot().packets, 1);
    }

    #[test]
    fn event_queue_is_bounded() {
        let mut s = session();
        for i in 0..20 {
            s.handle_timeout(ms(5000 * (i + 1)));
        }
        let mut n = 0;
        while s.poll_event().is_some() {
            n += 1;
        }
        assert_eq!(n, EVENT_QUEUE);
        assert_eq!(s.counters().events_dropped, 20 - EVENT_QUEUE as u64);
    }
}
