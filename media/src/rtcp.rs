//! RTCP (RFC 3550 §6): compound packet parsing into zero-copy views, SR/RR/SDES/BYE writers,
//! and NTP timestamp helpers.
//!
//! [`parse_compound`] walks a compound packet and yields one [`RtcpPacket`] per RTCP packet.
//! Each packet's common header, length and padding are checked, and the SR/RR/SDES/BYE bodies
//! are validated completely when the packet is yielded, so their iterators cannot fail.
//! Packet types this crate does not know (APP, RTPFB, PSFB, XR...) come out as
//! [`RtcpPacket::Unknown`] with their body and are otherwise skipped safely. After the first
//! error the iterator ends: the rest of a compound packet cannot be framed reliably.
//!
//! Writers put one packet at the front of a caller buffer and return its length; write a
//! compound packet by calling them one after another on the remaining buffer.

use core::time::Duration;

use crate::{Error, Protocol, Result};

/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
pub const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// A 64-bit NTP timestamp: 32 bits of seconds since 1900, 32 bits of fraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NtpTimestamp(pub u64);

impl NtpTimestamp {
    /// From a time since the Unix epoch (the caller reads the clock, not this crate).
    pub fn from_unix(since_unix_epoch: Duration) -> Self {
        let secs = since_unix_epoch
            .as_secs()
            .wrapping_add(NTP_UNIX_OFFSET_SECS);
        let frac = (u64::from(since_unix_epoch.subsec_nanos()) << 32) / 1_000_000_000;
        Self((secs << 32) | frac)
    }

    /// The middle 32 bits (16.16 fixed point seconds) as used in LSR and for RTT.
    pub fn mid32(self) -> u32 {
        (self.0 >> 16) as u32
    }
}

/// Converts a 16.16 fixed-point "compact NTP" value (LSR, DLSR, RTT) to a duration.
pub fn compact_to_duration(v: u32) -> Duration {
    let secs = u64::from(v >> 16);
    let nanos = (u64::from(v & 0xffff) * 1_000_000_000) >> 16;
    Duration::new(secs, nanos as u32)
}

/// Converts a duration to 16.16 fixed point, saturating at `u32::MAX` (about 18 hours).
pub fn duration_to_compact(d: Duration) -> u32 {
    let v = (d.as_nanos() << 16) / 1_000_000_000;
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// One reception report block (RFC 3550 §6.4.1), decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction of packets lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost, a 24-bit signed value on the wire (range -2^23..2^23-1).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles in the high 16 bits).
    pub extended_highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received, 0 if none.
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

/// Packet type of a sender report.
pub const PT_SR: u8 = 200;
/// Packet type of a receiver report.
pub const PT_RR: u8 = 201;
/// Packet type of source description.
pub const PT_SDES: u8 = 202;
/// Packet type of goodbye.
pub const PT_BYE: u8 = 203;
/// SDES item type of the canonical name.
pub const SDES_CNAME: u8 = 1;
/// Size of one report block on the wire.
pub const REPORT_BLOCK_LEN: usize = 24;
/// Largest number of report blocks (or BYE sources, SDES chunks) in one packet.
pub const MAX_COUNT: usize = 31;

const HEADER_LEN: usize = 4;
/// SSRC plus sender info (NTP, RTP timestamp, packet and octet counts).
const SENDER_INFO_LEN: usize = 24;

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn invalid(field: &'static str, needed: usize, available: usize) -> Error {
    Error::InvalidLength {
        protocol: Protocol::Rtcp,
        field,
        needed,
        available,
    }
}

impl ReportBlock {
    /// Decodes a 24-byte block; `b` must hold at least 24 bytes (checked by the callers).
    fn decode(b: &[u8]) -> Self {
        let lost_raw = be32(b, 4) & 0x00ff_ffff;
        Self {
            ssrc: be32(b, 0),
            fraction_lost: b[4],
            // Sign-extend the 24-bit field.
            cumulative_lost: ((lost_raw << 8) as i32) >> 8,
            extended_highest_seq: be32(b, 8),
            jitter: be32(b, 12),
            last_sr: be32(b, 16),
            delay_since_last_sr: be32(b, 20),
        }
    }

    fn encode(&self, out: &mut [u8]) -> Result<()> {
        if !(-0x80_0000..=0x7f_ffff).contains(&self.cumulative_lost) {
            return Err(Error::FieldOutOfRange {
                field: "cumulative lost",
                value: i64::from(self.cumulative_lost).unsigned_abs(),
                max: 0x7f_ffff,
            });
        }
        out[0..4].copy_from_slice(&self.ssrc.to_be_bytes());
        let lost = (self.cumulative_lost as u32) & 0x00ff_ffff;
        out[4..8].copy_from_slice(&((u32::from(self.fraction_lost) << 24) | lost).to_be_bytes());
        out[8..12].copy_from_slice(&self.extended_highest_seq.to_be_bytes());
        out[12..16].copy_from_slice(&self.jitter.to_be_bytes());
        out[16..20].copy_from_slice(&self.last_sr.to_be_bytes());
        out[20..24].copy_from_slice(&self.delay_since_last_sr.to_be_bytes());
        Ok(())
    }
}

/// Iterator over the report blocks of an SR or RR.
#[derive(Debug, Clone)]
pub struct ReportBlocks<'a>(core::slice::ChunksExact<'a, u8>);

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;
    fn next(&mut self) -> Option<ReportBlock> {
        self.0.next().map(ReportBlock::decode)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for ReportBlocks<'_> {}

/// A sender report (the body is validated: sender info and every announced block present).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderReport<'a> {
    count: usize,
    body: &'a [u8],
}

impl<'a> SenderReport<'a> {
    /// SSRC of the sender.
    pub fn ssrc(&self) -> u32 {
        be32(self.body, 0)
    }
    /// NTP time the report was sent.
    pub fn ntp_timestamp(&self) -> NtpTimestamp {
        NtpTimestamp((u64::from(be32(self.body, 4)) << 32) | u64::from(be32(self.body, 8)))
    }
    /// RTP timestamp corresponding to the NTP time.
    pub fn rtp_timestamp(&self) -> u32 {
        be32(self.body, 12)
    }
    /// Packets sent.
    pub fn packet_count(&self) -> u32 {
        be32(self.body, 16)
    }
    /// Payload octets sent.
    pub fn octet_count(&self) -> u32 {
        be32(self.body, 20)
    }
    /// The reception report blocks.
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        let end = SENDER_INFO_LEN + REPORT_BLOCK_LEN * self.count;
        ReportBlocks(self.body[SENDER_INFO_LEN..end].chunks_exact(REPORT_BLOCK_LEN))
    }
    /// Profile-specific extension after the blocks (usually empty).
    pub fn extension(&self) -> &'a [u8] {
        &self.body[SENDER_INFO_LEN + REPORT_BLOCK_LEN * self.count..]
    }
}

/// A receiver report (validated like [`SenderReport`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverReport<'a> {
    count: usize,
    body: &'a [u8],
}

impl<'a> ReceiverReport<'a> {
    /// SSRC of the packet's sender.
    pub fn ssrc(&self) -> u32 {
        be32(self.body, 0)
    }
    /// The reception report blocks.
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        let end = 4 + REPORT_BLOCK_LEN * self.count;
        ReportBlocks(self.body[4..end].chunks_exact(REPORT_BLOCK_LEN))
    }
    /// Profile-specific extension after the blocks (usually empty).
    pub fn extension(&self) -> &'a [u8] {
        &self.body[4 + REPORT_BLOCK_LEN * self.count..]
    }
}

/// One SDES item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesItem<'a> {
    /// Item type (1 CNAME, 2 NAME, ...).
    pub kind: u8,
    /// Item text (UTF-8 by the RFC, not checked here).
    pub value: &'a [u8],
}

/// One SDES chunk: a source and its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    /// The source described.
    pub ssrc: u32,
    items: &'a [u8],
}

impl<'a> SdesChunk<'a> {
    /// The items of this chunk.
    pub fn items(&self) -> SdesItems<'a> {
        SdesItems(self.items)
    }

    /// The CNAME item, if present.
    pub fn cname(&self) -> Option<&'a [u8]> {
        self.items().find(|i| i.kind == SDES_CNAME).map(|i| i.value)
    }
}

/// Iterator over the items of a validated chunk.
#[derive(Debug, Clone)]
pub struct SdesItems<'a>(&'a [u8]);

impl<'a> Iterator for SdesItems<'a> {
    type Item = SdesItem<'a>;
    fn next(&mut self) -> Option<SdesItem<'a>> {
        let (&kind, rest) = self.0.split_first()?;
        if kind == 0 {
            return None;
        }
        let (&len, rest) = rest.split_first()?;
        let value = rest.get(..usize::from(len))?;
        self.0 = &rest[usize::from(len)..];
        Some(SdesItem { kind, value })
    }
}

/// Walks one SDES chunk starting at `at`; returns (ssrc, items, offset of the next chunk).
fn sdes_chunk(body: &[u8], at: usize) -> Result<(u32, &[u8], usize)> {
    if body.len() < at + 4 {
        return Err(invalid("SDES chunk", at + 4, body.len()));
    }
    let ssrc = be32(body, at);
    let start = at + 4;
    let mut pos = start;
    loop {
        match body.get(pos) {
            None => return Err(invalid("SDES item list", pos + 1, body.len())),
            Some(0) => break,
            Some(_) => {
                let len = match body.get(pos + 1) {
                    Some(&l) => usize::from(l),
                    None => return Err(invalid("SDES item", pos + 2, body.len())),
                };
                pos += 2 + len;
                if pos > body.len() {
                    return Err(invalid("SDES item", pos, body.len()));
                }
            }
        }
    }
    let items = &body[start..pos];
    // The null terminator, then padding to the next 32-bit boundary.
    let next = (pos + 1).div_ceil(4) * 4;
    if next > body.len() {
        return Err(invalid("SDES chunk padding", next, body.len()));
    }
    Ok((ssrc, items, next))
}

/// Source description: `count` chunks (validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sdes<'a> {
    count: usize,
    body: &'a [u8],
}

impl<'a> Sdes<'a> {
    /// Number of chunks.
    pub fn len(&self) -> usize {
        self.count
    }
    /// Whether there are no chunks.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// The chunks.
    pub fn chunks(&self) -> SdesChunks<'a> {
        SdesChunks {
            body: self.body,
            at: 0,
            remaining: self.count,
        }
    }
}

/// Iterator over SDES chunks.
#[derive(Debug, Clone)]
pub struct SdesChunks<'a> {
    body: &'a [u8],
    at: usize,
    remaining: usize,
}

impl<'a> Iterator for SdesChunks<'a> {
    type Item = SdesChunk<'a>;
    fn next(&mut self) -> Option<SdesChunk<'a>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // Validated at parse time; an error here cannot happen but ends the iteration.
        let (ssrc, items, next) = sdes_chunk(self.body, self.at).ok()?;
        self.at = next;
        Some(SdesChunk { ssrc, items })
    }
}

/// Goodbye: sources leaving and an optional reason (validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bye<'a> {
    count: usize,
    body: &'a [u8],
}

impl<'a> Bye<'a> {
    /// The sources leaving.
    pub fn sources(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        self.body[..4 * self.count]
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
    /// The reason text, if any.
    pub fn reason(&self) -> Option<&'a [u8]> {
        let rest = &self.body[4 * self.count..];
        let (&len, text) = rest.split_first()?;
        text.get(..usize::from(len))
    }
}

/// A packet type this crate does not interpret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownPacket<'a> {
    /// Packet type.
    pub packet_type: u8,
    /// The 5-bit count / format field.
    pub count: u8,
    /// The body after the common header, without padding.
    pub body: &'a [u8],
}

/// One RTCP packet of a compound packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    /// SR (200).
    SenderReport(SenderReport<'a>),
    /// RR (201).
    ReceiverReport(ReceiverReport<'a>),
    /// SDES (202).
    SourceDescription(Sdes<'a>),
    /// BYE (203).
    Goodbye(Bye<'a>),
    /// Anything else, skipped by length.
    Unknown(UnknownPacket<'a>),
}

/// Iterates the packets of a compound RTCP packet; see the module docs.
pub fn parse_compound(buf: &[u8]) -> Compound<'_> {
    Compound { rest: buf }
}

/// Iterator returned by [`parse_compound`].
#[derive(Debug, Clone)]
pub struct Compound<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Compound<'a> {
    type Item = Result<RtcpPacket<'a>>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let result = parse_one(self.rest);
        match result {
            Ok((packet, size)) => {
                self.rest = &self.rest[size..];
                Some(Ok(packet))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// Parses the RTCP packet at the front of `buf`; returns it and its size.
fn parse_one(buf: &[u8]) -> Result<(RtcpPacket<'_>, usize)> {
    if buf.len() < HEADER_LEN {
        return Err(Error::Truncated {
            protocol: Protocol::Rtcp,
            len: buf.len(),
            needed: HEADER_LEN,
        });
    }
    let version = buf[0] >> 6;
    if version != 2 {
        return Err(Error::UnsupportedVersion {
            protocol: Protocol::Rtcp,
            version,
        });
    }
    let count = buf[0] & 0x1f;
    let packet_type = buf[1];
    let size = (usize::from(u16::from_be_bytes([buf[2], buf[3]])) + 1) * 4;
    if size > buf.len() {
        return Err(invalid("length", size, buf.len()));
    }
    let mut body = &buf[HEADER_LEN..size];
    if buf[0] & 0x20 != 0 {
        let padding = usize::from(body.last().copied().unwrap_or(0));
        if padding == 0 || padding > body.len() {
            return Err(Error::InvalidPadding {
                protocol: Protocol::Rtcp,
                padding,
                available: body.len(),
            });
        }
        body = &body[..body.len() - padding];
    }
    let n = usize::from(count);
    let packet = match packet_type {
        PT_SR => {
            let needed = SENDER_INFO_LEN + REPORT_BLOCK_LEN * n;
            if body.len() < needed {
                return Err(invalid("SR report count", needed, body.len()));
            }
            RtcpPacket::SenderReport(SenderReport { count: n, body })
        }
        PT_RR => {
            let needed = 4 + REPORT_BLOCK_LEN * n;
            if body.len() < needed {
                return Err(invalid("RR report count", needed, body.len()));
            }
            RtcpPacket::ReceiverReport(ReceiverReport { count: n, body })
        }
        PT_SDES => {
            let mut at = 0;
            for _ in 0..n {
                at = sdes_chunk(body, at)?.2;
            }
            RtcpPacket::SourceDescription(Sdes { count: n, body })
        }
        PT_BYE => {
            let needed = 4 * n;
            if body.len() < needed {
                return Err(invalid("BYE source count", needed, body.len()));
            }
            if let Some(&len) = body.get(needed) {
                let end = needed + 1 + usize::from(len);
                if end > body.len() {
                    return Err(invalid("BYE reason", end, body.len()));
                }
            }
            RtcpPacket::Goodbye(Bye { count: n, body })
        }
        _ => RtcpPacket::Unknown(UnknownPacket {
            packet_type,
            count,
            body,
        }),
    };
    Ok((packet, size))
}

/// Sender information of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// Wall-clock time of sending (supplied by the caller).
    pub ntp: NtpTimestamp,
    /// RTP timestamp of the same instant.
    pub rtp_timestamp: u32,
    /// Packets sent so far.
    pub packet_count: u32,
    /// Payload octets sent so far.
    pub octet_count: u32,
}

fn check_count(field: &'static str, n: usize) -> Result<u8> {
    if n > MAX_COUNT {
        return Err(Error::FieldOutOfRange {
            field,
            value: n as u64,
            max: MAX_COUNT as u64,
        });
    }
    Ok(n as u8)
}

fn write_header(out: &mut [u8], count: u8, packet_type: u8, size: usize) -> Result<()> {
    if out.len() < size {
        return Err(Error::BufferTooSmall {
            needed: size,
            available: out.len(),
        });
    }
    out[0] = 0x80 | count;
    out[1] = packet_type;
    let words = u16::try_from(size / 4 - 1).map_err(|_| Error::FieldOutOfRange {
        field: "RTCP length",
        value: size as u64,
        max: 4 * (u64::from(u16::MAX) + 1),
    })?;
    out[2..4].copy_from_slice(&words.to_be_bytes());
    Ok(())
}

fn write_blocks(out: &mut [u8], blocks: &[ReportBlock]) -> Result<()> {
    for (chunk, block) in out.chunks_exact_mut(REPORT_BLOCK_LEN).zip(blocks) {
        block.encode(chunk)?;
    }
    Ok(())
}

/// Writes an SR with up to 31 report blocks; returns its length.
pub fn write_sender_report(
    out: &mut [u8],
    ssrc: u32,
    info: &SenderInfo,
    blocks: &[ReportBlock],
) -> Result<usize> {
    let count = check_count("report count", blocks.len())?;
    let size = HEADER_LEN + SENDER_INFO_LEN + REPORT_BLOCK_LEN * blocks.len();
    write_header(out, count, PT_SR, size)?;
    out[4..8].copy_from_slice(&ssrc.to_be_bytes());
    out[8..16].copy_from_slice(&info.ntp.0.to_be_bytes());
    out[16..20].copy_from_slice(&info.rtp_timestamp.to_be_bytes());
    out[20..24].copy_from_slice(&info.packet_count.to_be_bytes());
    out[24..28].copy_from_slice(&info.octet_count.to_be_bytes());
    write_blocks(&mut out[28..size], blocks)?;
    Ok(size)
}

/// Writes an RR with up to 31 report blocks; returns its length.
pub fn write_receiver_report(out: &mut [u8], ssrc: u32, blocks: &[ReportBlock]) -> Result<usize> {
    let count = check_count("report count", blocks.len())?;
    let size = HEADER_LEN + 4 + REPORT_BLOCK_LEN * blocks.len();
    write_header(out, count, PT_RR, size)?;
    out[4..8].copy_from_slice(&ssrc.to_be_bytes());
    write_blocks(&mut out[8..size], blocks)?;
    Ok(size)
}

/// Writes an SDES with one chunk holding a CNAME item (at most 255 bytes); returns its length.
pub fn write_sdes_cname(out: &mut [u8], ssrc: u32, cname: &[u8]) -> Result<usize> {
    let len = u8::try_from(cname.len()).map_err(|_| Error::FieldOutOfRange {
        field: "CNAME length",
        value: cname.len() as u64,
        max: 255,
    })?;
    // Chunk: SSRC, item header, text, null terminator, padded to 32 bits.
    let chunk = (4 + 2 + cname.len() + 1).div_ceil(4) * 4;
    let size = HEADER_LEN + chunk;
    write_header(out, 1, PT_SDES, size)?;
    out[4..8].copy_from_slice(&ssrc.to_be_bytes());
    out[8] = SDES_CNAME;
    out[9] = len;
    out[10..10 + cname.len()].copy_from_slice(cname);
    out[10 + cname.len()..size].fill(0);
    Ok(size)
}

/// Writes a BYE for up to 31 sources with an optional reason (at most 255 bytes).
pub fn write_bye(out: &mut [u8], sources: &[u32], reason: Option<&[u8]>) -> Result<usize> {
    let count = check_count("BYE source count", sources.len())?;
    let reason_len = match reason {
        Some(r) => Some(u8::try_from(r.len()).map_err(|_| Error::FieldOutOfRange {
            field: "BYE reason length",
            value: r.len() as u64,
            max: 255,
        })?),
        None => None,
    };
    let body = 4 * sources.len() + reason.map_or(0, |r| (1 + r.len()).div_ceil(4) * 4);
    let size = HEADER_LEN + body;
    write_header(out, count, PT_BYE, size)?;
    let mut at = HEADER_LEN;
    for s in sources {
        out[at..at + 4].copy_from_slice(&s.to_be_bytes());
        at += 4;
    }
    if let (Some(r), Some(len)) = (reason, reason_len) {
        out[at] = len;
        out[at + 1..at + 1 + r.len()].copy_from_slice(r);
        out[at + 1 + r.len()..size].fill(0);
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn block(ssrc: u32, lost: i32) -> ReportBlock {
        ReportBlock {
            ssrc,
            fraction_lost: 25,
            cumulative_lost: lost,
            extended_highest_seq: 0x0001_0005,
            jitter: 42,
            last_sr: 0xb705_2000,
            delay_since_last_sr: 0x0005_4000,
        }
    }

    #[test]
    fn ntp_helpers() {
        let t = NtpTimestamp::from_unix(Duration::new(1, 500_000_000));
        assert_eq!(t.0 >> 32, NTP_UNIX_OFFSET_SECS + 1);
        assert_eq!(t.0 & 0xffff_ffff, 0x8000_0000);
        assert_eq!(
            NtpTimestamp(0xb710_8000_0000_0000 >> 16 << 16).mid32(),
            0x8000_0000
        );
        assert_eq!(NtpTimestamp(0x0000_b710_8000_1234).mid32(), 0xb710_8000);
        assert_eq!(
            compact_to_duration(0x0006_2000),
            Duration::from_millis(6125)
        );
        assert_eq!(
            duration_to_compact(Duration::from_millis(6125)),
            0x0006_2000
        );
        assert_eq!(duration_to_compact(Duration::from_secs(1 << 20)), u32::MAX);
    }

    #[test]
    fn parses_hand_written_compound() {
        // RR from 0x11111111 with one block about 0x22222222 (lost -3 as 24-bit 0xfffffd),
        // then SDES CNAME "ab", then an APP packet (type 204) that is skipped.
        let bytes: [u8; 56] = [
            0x81, 201, 0, 7, 0x11, 0x11, 0x11, 0x11, //
            0x22, 0x22, 0x22, 0x22, 0x10, 0xff, 0xff, 0xfd, 0, 1, 0, 5, 0, 0, 0, 9, 0, 0, 0, 0, 0,
            0, 0, 0, //
            0x81, 202, 0, 3, 0x11, 0x11, 0x11, 0x11, 1, 2, b'a', b'b', 0, 0, 0, 0, //
            0x80, 204, 0, 1, 1, 2, 3, 4,
        ];
        let packets: Vec<_> = parse_compound(&bytes).collect::<Result<_>>().unwrap();
        assert_eq!(packets.len(), 3);
        let RtcpPacket::ReceiverReport(rr) = packets[0] else {
            panic!("not an RR: {:?}", packets[0])
        };
        assert_eq!(rr.ssrc(), 0x1111_1111);
        let b: Vec<_> = rr.report_blocks().collect();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].ssrc, 0x2222_2222);
        assert_eq!(b[0].fraction_lost, 0x10);
        assert_eq!(b[0].cumulative_lost, -3);
        assert_eq!(b[0].extended_highest_seq, 0x0001_0005);
        assert_eq!(b[0].jitter, 9);
        let RtcpPacket::SourceDescription(sdes) = packets[1] else {
            panic!("not SDES")
        };
        let chunk = sdes.chunks().next().unwrap();
        assert_eq!(chunk.ssrc, 0x1111_1111);
        assert_eq!(chunk.cname(), Some(&b"ab"[..]));
        assert_eq!(
            packets[2],
            RtcpPacket::Unknown(UnknownPacket {
                packet_type: 204,
                count: 0,
                body: &[1, 2, 3, 4]
            })
        );
    }

    #[test]
    fn build_and_parse_compound() {
        let mut buf = [0u8; 512];
        let info = SenderInfo {
            ntp: NtpTimestamp(0xb710_8000_0000_0001),
            rtp_timestamp: 160,
            packet_count: 50,
            octet_count: 8000,
        };
        let blocks = [block(2, 10), block(3, -0x80_0000), block(4, 0x7f_ffff)];
        let mut n = write_sender_report(&mut buf, 1, &info, &blocks).unwrap();
        n += write_sdes_cname(&mut buf[n..], 1, b"switchboard@host").unwrap();
        n += write_receiver_report(&mut buf[n..], 1, &blocks[..1]).unwrap();
        n += write_bye(&mut buf[n..], &[1, 5], Some(b"bye")).unwrap();
        n += write_bye(&mut buf[n..], &[6], None).unwrap();
        assert_eq!(n % 4, 0);
        let packets: Vec<_> = parse_compound(&buf[..n]).collect::<Result<_>>().unwrap();
        assert_eq!(packets.len(), 5);
        match packets[0] {
            RtcpPacket::SenderReport(sr) => {
                assert_eq!(sr.ssrc(), 1);
                assert_eq!(sr.ntp_timestamp(), info.ntp);
                assert_eq!(
                    (sr.rtp_timestamp(), sr.packet_count(), sr.octet_count()),
                    (160, 50, 8000)
                );
                assert_eq!(sr.report_blocks().collect::<Vec<_>>(), blocks.to_vec());
                assert!(sr.extension().is_empty());
            }
            other => panic!("{other:?}"),
        }
        match packets[1] {
            RtcpPacket::SourceDescription(s) => {
                assert_eq!(s.len(), 1);
                let c = s.chunks().next().unwrap();
                assert_eq!(c.cname(), Some(&b"switchboard@host"[..]));
                assert_eq!(c.items().count(), 1);
            }
            other => panic!("{other:?}"),
        }
        match packets[2] {
            RtcpPacket::ReceiverReport(rr) => {
                assert_eq!(rr.report_blocks().collect::<Vec<_>>(), vec![blocks[0]]);
            }
            other => panic!("{other:?}"),
        }
        match (packets[3], packets[4]) {
            (RtcpPacket::Goodbye(a), RtcpPacket::Goodbye(b)) => {
                assert_eq!(a.sources().collect::<Vec<_>>(), vec![1, 5]);
                assert_eq!(a.reason(), Some(&b"bye"[..]));
                assert_eq!(b.sources().collect::<Vec<_>>(), vec![6]);
                assert_eq!(b.reason(), None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn writer_errors() {
        let mut buf = [0u8; 2048];
        assert!(matches!(
            write_receiver_report(&mut buf, 1, &[block(1, 0); 32]),
            Err(Error::FieldOutOfRange { .. })
        ));
        assert!(matches!(
            write_receiver_report(&mut buf, 1, &[block(1, 0x80_0000)]),
            Err(Error::FieldOutOfRange { .. })
        ));
        assert!(matches!(
            write_sender_report(&mut buf[..20], 1, &SenderInfo::default(), &[]),
            Err(Error::BufferTooSmall {
                needed: 28,
                available: 20
            })
        ));
        assert!(matches!(
            write_sdes_cname(&mut buf, 1, &[b'x'; 256]),
            Err(Error::FieldOutOfRange { .. })
        ));
    }

    #[test]
    fn rejects_malformed() {
        let mut buf = [0u8; 64];
        let n = write_receiver_report(&mut buf, 1, &[block(2, 1)]).unwrap();
        // Truncated: the length word says more than is there.
        let mut it = parse_compound(&buf[..n - 4]);
        assert!(matches!(
            it.next(),
            Some(Err(Error::InvalidLength {
                field: "length",
                ..
            }))
        ));
        assert!(it.next().is_none());
        // Count says 2 blocks, length holds 1.
        let mut bad = buf;
        bad[0] = 0x82;
        assert!(matches!(
            parse_compound(&bad[..n]).next(),
            Some(Err(Error::InvalidLength { .. }))
        ));
        // Wrong version, too short.
        bad = buf;
        bad[0] = 0x41;
        assert!(matches!(
            parse_compound(&bad[..n]).next(),
            Some(Err(Error::UnsupportedVersion { version: 1, .. }))
        ));
        assert!(matches!(
            parse_compound(&buf[..3]).next(),
            Some(Err(Error::Truncated { .. }))
        ));
        // Padding bit with a zero count.
        bad = buf;
        bad[0] |= 0x20;
        assert!(matches!(
            parse_compound(&bad[..n]).next(),
            Some(Err(Error::InvalidPadding { .. }))
        ));
        // SDES item running past the packet.
        let sdes = [0x81, 202, 0, 2, 0, 0, 0, 1, 1, 9, b'a', b'b'];
        assert!(matches!(
            parse_compound(&sdes).next(),
            Some(Err(Error::InvalidLength { .. }))
        ));
        // BYE reason longer than the packet.
        let bye = [0x81, 203, 0, 2, 0, 0, 0, 1, 9, b'a', b'b', b'c'];
        assert!(matches!(
            parse_compound(&bye).next(),
            Some(Err(Error::InvalidLength { .. }))
        ));
        assert!(parse_compound(&[]).next().is_none());
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            for p in parse_compound(&bytes) {
                match p {
                    Ok(RtcpPacket::SenderReport(sr)) => { let _ = (sr.report_blocks().count(), sr.extension(), sr.ntp_timestamp()); }
                    Ok(RtcpPacket::ReceiverReport(rr)) => { let _ = (rr.report_blocks().count(), rr.extension()); }
                    Ok(RtcpPacket::SourceDescription(s)) => {
                        prop_assert_eq!(s.chunks().count(), s.len());
                        for c in s.chunks() { let _ = c.items().count(); }
                    }
                    Ok(RtcpPacket::Goodbye(b)) => { let _ = (b.sources().count(), b.reason()); }
                    Ok(RtcpPacket::Unknown(_)) | Err(_) => {}
                }
            }
        }

        #[test]
        fn report_block_roundtrip(ssrc: u32, fraction: u8, lost in -0x80_0000i32..=0x7f_ffff, seq: u32, jitter: u32, lsr: u32, dlsr: u32) {
            let b = ReportBlock { ssrc, fraction_lost: fraction, cumulative_lost: lost, extended_highest_seq: seq, jitter, last_sr: lsr, delay_since_last_sr: dlsr };
            let mut buf = [0u8; 64];
            let n = write_receiver_report(&mut buf, 9, &[b]).unwrap();
            let p = parse_compound(&buf[..n]).next().unwrap().unwrap();
            let RtcpPacket::ReceiverReport(rr) = p else { panic!("not RR") };
            prop_assert_eq!(rr.report_blocks().next(), Some(b));
        }
    }
}
