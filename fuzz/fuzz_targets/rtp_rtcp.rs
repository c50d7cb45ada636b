//! RTP and RTCP parsing, and receive statistics fed with what was parsed.
//!
//! The input is first parsed whole as one RTP packet and as one compound RTCP packet; then it
//! is read as a capture-like sequence of records `[len u8][arrival step ms u16][len bytes]`,
//! each parsed as RTP (fed to [`ReceiveStats`] with its header fields and a non-decreasing
//! arrival time) and as RTCP (SRs fed to the stats, report blocks given to `rtt`).
//! Properties: nothing panics, and a parsed RTP packet's header, payload and padding add up to
//! the packet.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use switchboard_media::rtcp::{self, RtcpPacket};
use switchboard_media::rtp::RtpPacket;
use switchboard_media::stats::{self, PacketClass, ReceiveStats, StatsConfig};

fn check_rtp(p: &RtpPacket<'_>, buf: &[u8]) {
    assert_eq!(p.version(), 2);
    assert_eq!(p.as_bytes().len(), buf.len());
    let padding = if p.has_padding() { p.padding_len() } else { 0 };
    assert_eq!(
        p.header_len() + p.payload().len() + padding,
        buf.len(),
        "header + payload + padding != packet length"
    );
    assert_eq!(p.csrcs().count(), usize::from(p.csrc_count()));
    if let Some((_, ext)) = p.extension() {
        assert!(ext.len() <= p.header_len());
    }
    let _ = (p.marker(), p.payload_type(), p.sequence_number(), p.timestamp(), p.ssrc());
}

fn walk_rtcp(buf: &[u8], stats: Option<(&mut ReceiveStats, Duration)>) {
    let mut stats = stats;
    for item in rtcp::parse_compound(buf).take(1024) {
        let Ok(packet) = item else { break };
        match packet {
            RtcpPacket::SenderReport(sr) => {
                let _ = (sr.ssrc(), sr.rtp_timestamp(), sr.packet_count(), sr.octet_count());
                let _ = sr.extension();
                for rb in sr.report_blocks() {
                    let _ = stats::rtt(sr.ntp_timestamp().mid32(), rb.last_sr, rb.delay_since_last_sr);
                }
                if let Some((s, at)) = stats.as_mut() {
                    s.on_sender_report(*at, sr.ntp_timestamp());
                }
            }
            RtcpPacket::ReceiverReport(rr) => {
                let _ = (rr.ssrc(), rr.extension());
                for rb in rr.report_blocks() {
                    let _ = stats::rtt(0x1234_5678, rb.last_sr, rb.delay_since_last_sr);
                }
            }
            RtcpPacket::SourceDescription(sdes) => {
                let _ = (sdes.len(), sdes.is_empty());
                for chunk in sdes.chunks().take(64) {
                    let _ = chunk.cname();
                    for item in chunk.items().take(256) {
                        let _ = (item.kind, item.value.len());
                    }
                }
            }
            RtcpPacket::Goodbye(bye) => {
                let _ = bye.sources().count();
                let _ = bye.reason();
            }
            RtcpPacket::Unknown(u) => {
                let _ = (u.packet_type, u.count, u.body.len());
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = RtpPacket::parse(data) {
        check_rtp(&p, data);
    }
    walk_rtcp(data, None);

    // Clock rate from the input, including 0 and absurd values (it comes from SDP rtpmap).
    let Some((head, mut rest)) = data.split_first_chunk::<4>() else { return };
    let clock_rate = match head[0] % 4 {
        0 => 8000,
        1 => 48000,
        2 => 16000,
        _ => u32::from_be_bytes(*head),
    };
    let mut stats = ReceiveStats::new(StatsConfig::new(clock_rate));
    let mut arrival = Duration::ZERO;
    let mut n = 0u32;
    while let Some((&[len, hi, lo], tail)) = rest.split_first_chunk::<3>() {
        let len = usize::from(len).min(tail.len());
        let (pkt, tail) = tail.split_at(len);
        rest = tail;
        arrival += Duration::from_millis(u64::from(u16::from_be_bytes([hi, lo])));
        if let Ok(p) = RtpPacket::parse(pkt) {
            check_rtp(&p, pkt);
            let class = match p.payload_type() {
                13 | 19 => PacketClass::ComfortNoise,
                101 => PacketClass::TelephoneEvent,
                _ => PacketClass::Media,
            };
            stats.on_packet_class(arrival, p.sequence_number(), p.timestamp(), p.marker(), class);
        } else {
            walk_rtcp(pkt, Some((&mut stats, arrival)));
        }
        n += 1;
        if n % 8 == 0 {
            let report = stats.interval_report(arrival);
            let _ = report.fraction_lost_percent();
            let _ = report.report_block(0xdead_beef);
        }
    }
    let s = stats.snapshot();
    let _ = s.loss_percent();
    let _ = stats.interval_report(arrival);
});
