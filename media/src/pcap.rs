//! Capture files: a zero-copy reader for classic pcap and pcapng, a UDP extractor, and a tiny
//! classic-pcap writer.
//!
//! # Reading
//!
//! [`CaptureReader::new`] takes the whole file as a byte slice and iterates [`Frame`]s that
//! borrow from it. Both formats are read in either byte order; classic pcap with µs or ns
//! timestamps; pcapng with Section Header, Interface Description (`if_tsresol`,
//! `if_tsoffset`), Enhanced Packet, Simple Packet and the obsolete Packet blocks (every other
//! block type is skipped; a new section resets the interfaces).
//!
//! [`udp_datagram`] decodes a frame's link layer, IPv4 / IPv6 and UDP: link types Ethernet
//! (with any number of 802.1Q / 802.1ad tags), raw IP (`LINKTYPE_RAW`, `DLT_RAW`, IPv4, IPv6),
//! Linux cooked capture v1 and v2 (SLL, SLL2) and BSD loopback (`NULL` in either byte order,
//! `LOOP`). IPv4 fragments other than the first are skipped (no reassembly); IPv6 extension
//! headers (hop-by-hop, routing, destination options, fragment, AH) are skipped over. A UDP
//! payload cut by the snapshot length (or in a first fragment) is returned as far as it was
//! captured. [`UdpPackets`] combines both into the iterator the analyzer consumes.
//!
//! Malformed input never panics: a broken file structure ends the iteration with one
//! [`Error`] (one of the capture variants: [`Error::UnknownCaptureFormat`],
//! [`Error::CaptureTruncated`], [`Error::BadPcapngBlock`], [`Error::UnknownInterface`]); a
//! frame whose headers do not decode is skipped.
//!
//! # Writing
//!
//! [`PcapWriter`] writes classic pcap (µs or ns timestamps) with Ethernet or raw IPv4 link
//! type and builds the Ethernet / IPv4 / IPv6 / UDP headers around a payload; used by the
//! tests and the carrier simulator.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::time::Duration;
use std::io::{self, Write};

use crate::Error;

/// Classic pcap magic, µs timestamps (as written in the file's byte order).
const MAGIC_US: u32 = 0xa1b2_c3d4;
/// Classic pcap magic, ns timestamps.
const MAGIC_NS: u32 = 0xa1b2_3c4d;
/// pcapng Section Header Block type (a palindrome: same in both byte orders).
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
/// pcapng byte-order magic inside the SHB.
const PCAPNG_BOM: u32 = 0x1a2b_3c4d;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_PB: u32 = 2;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;

/// Link-layer header types understood by [`udp_datagram`] (values from the tcpdump.org
/// link-type registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// BSD loopback, 4-byte address family in the capturing host's byte order (0).
    Null,
    /// Ethernet II / 802.3 (1).
    Ethernet,
    /// Raw IPv4 or IPv6 (101, and the platform values 12 and 14).
    Raw,
    /// OpenBSD loopback, address family in network byte order (108).
    Loop,
    /// Linux cooked capture v1 (113).
    LinuxSll,
    /// Raw IPv4 only (228).
    Ipv4,
    /// Raw IPv6 only (229).
    Ipv6,
    /// Linux cooked capture v2 (276).
    LinuxSll2,
    /// Anything else (frames are skipped by [`udp_datagram`]).
    Other(u32),
}

impl LinkType {
    /// The link type for a registry value.
    pub fn from_u32(v: u32) -> Self {
        match v {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::Raw,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            other => LinkType::Other(other),
        }
    }

    /// The registry value written into files.
    pub fn to_u32(self) -> u32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::Raw => 101,
            LinkType::Loop => 108,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll2 => 276,
            LinkType::Other(v) => v,
        }
    }
}

/// One captured frame, borrowed from the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Capture time since the Unix epoch (pcapng: plus the interface's `if_tsoffset`).
    pub timestamp: Duration,
    /// Link type of the interface.
    pub link: LinkType,
    /// The captured bytes (possibly cut to the snapshot length).
    pub data: &'a [u8],
    /// Length of the frame on the wire.
    pub orig_len: u32,
}

/// Byte order of a file or section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let s: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u16::from_le_bytes(s),
            Endian::Big => u16::from_be_bytes(s),
        })
    }

    fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let s: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u32::from_le_bytes(s),
            Endian::Big => u32::from_be_bytes(s),
        })
    }
}

/// Timestamp resolution of a pcapng interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TsResol {
    /// Units of 10^-n s.
    Decimal(u8),
    /// Units of 2^-n s.
    Binary(u8),
}

impl TsResol {
    fn to_duration(self, units: u64) -> Duration {
        match self {
            TsResol::Decimal(n) if n <= 9 => {
                let per_sec = 10u64.pow(u32::from(n));
                let nanos = (units % per_sec) * 10u64.pow(9 - u32::from(n));
                Duration::new(units / per_sec, nanos as u32)
            }
            TsResol::Decimal(n) => {
                // Finer than ns: 10^n does not fit u64 beyond n = 19; such units can only be
                // sub-ns fractions of a second over a very short time.
                let per_sec = 10u128.checked_pow(u32::from(n)).unwrap_or(u128::MAX);
                let units = u128::from(units);
                let secs = (units / per_sec) as u64;
                let nanos = ((units % per_sec) * 1_000_000_000 / per_sec) as u32;
                Duration::new(secs, nanos)
            }
            TsResol::Binary(n) => {
                if n >= 64 {
                    let nanos = (u128::from(units) * 1_000_000_000) >> n.min(127);
                    return Duration::from_nanos(nanos.min(u128::from(u64::MAX)) as u64);
                }
                let secs = units >> n;
                let frac = u128::from(units & ((1u64 << n) - 1));
                let nanos = ((frac * 1_000_000_000) >> n) as u32;
                Duration::new(secs, nanos)
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    link: LinkType,
    resol: TsResol,
    offset_secs: i64,
}

#[derive(Debug, Clone, Copy)]
enum Format {
    Pcap {
        endian: Endian,
        nanos: bool,
        link: LinkType,
    },
    PcapNg {
        endian: Endian,
    },
}

/// Iterator over the frames of a pcap or pcapng file held in memory.
#[derive(Debug, Clone)]
pub struct CaptureReader<'a> {
    data: &'a [u8],
    pos: usize,
    format: Format,
    /// Interfaces of the current pcapng section (a few per file, not per packet).
    interfaces: Vec<Interface>,
    done: bool,
}

fn truncated(offset: usize, needed: usize, data_len: usize) -> Error {
    Error::CaptureTruncated {
        offset,
        needed,
        available: data_len.saturating_sub(offset),
    }
}

impl<'a> CaptureReader<'a> {
    /// Opens a capture: detects pcap (either byte order, µs or ns) or pcapng.
    pub fn new(data: &'a [u8]) -> Result<Self, Error> {
        let magic_le = Endian::Little
            .u32(data, 0)
            .ok_or(truncated(0, 4, data.len()))?;
        let magic_be = magic_le.swap_bytes();
        let format = if magic_le == PCAPNG_SHB {
            let bom = Endian::Little
                .u32(data, 8)
                .ok_or(truncated(0, 12, data.len()))?;
            let endian = match bom {
                PCAPNG_BOM => Endian::Little,
                b if b.swap_bytes() == PCAPNG_BOM => Endian::Big,
                _ => {
                    return Err(Error::BadPcapngBlock {
                        offset: 0,
                        reason: "unknown byte-order magic",
                    })
                }
            };
            Format::PcapNg { endian }
        } else {
            let (endian, nanos) = match (magic_le, magic_be) {
                (MAGIC_US, _) => (Endian::Little, false),
                (MAGIC_NS, _) => (Endian::Little, true),
                (_, MAGIC_US) => (Endian::Big, false),
                (_, MAGIC_NS) => (Endian::Big, true),
                _ => return Err(Error::UnknownCaptureFormat { magic: magic_be }),
            };
            let link = endian.u32(data, 20).ok_or(truncated(0, 24, data.len()))?;
            // The upper bits may carry FCS information; the link type is the low 16 bits.
            Format::Pcap {
                endian,
                nanos,
                link: LinkType::from_u32(link & 0xffff),
            }
        };
        let pos = match format {
            Format::Pcap { .. } => 24,
            Format::PcapNg { .. } => 0,
        };
        Ok(Self {
            data,
            pos,
            format,
            interfaces: Vec::new(),
            done: false,
        })
    }

    /// Wraps the frames into an iterator over UDP datagrams.
    pub fn udp(self) -> UdpPackets<'a> {
        UdpPackets { frames: self }
    }

    fn next_pcap(
        &mut self,
        endian: Endian,
        nanos: bool,
        link: LinkType,
    ) -> Option<Result<Frame<'a>, Error>> {
        let d = self.data;
        let at = self.pos;
        if at >= d.len() {
            return None;
        }
        let (Some(sec), Some(frac), Some(incl), Some(orig)) = (
            endian.u32(d, at),
            endian.u32(d, at + 4),
            endian.u32(d, at + 8),
            endian.u32(d, at + 12),
        ) else {
            return Some(Err(truncated(at, 16, d.len())));
        };
        let start = at + 16;
        let end = match start.checked_add(incl as usize) {
            Some(e) if e <= d.len() => e,
            _ => return Some(Err(truncated(start, incl as usize, d.len()))),
        };
        self.pos = end;
        let frac_ns = if nanos {
            u64::from(frac)
        } else {
            u64::from(frac) * 1000
        };
        let timestamp = Duration::from_secs(u64::from(sec)) + Duration::from_nanos(frac_ns);
        Some(Ok(Frame {
            timestamp,
            link,
            data: &d[start..end],
            orig_len: orig,
        }))
    }

    fn next_pcapng(&mut self, mut endian: Endian) -> Option<Result<Frame<'a>, Error>> {
        let d = self.data;
        loop {
            let at = self.pos;
            if at >= d.len() {
                return None;
            }
            let Some(btype) = endian.u32(d, at) else {
                return Some(Err(truncated(at, 8, d.len())));
            };
            if btype == PCAPNG_SHB {
                // A new section may switch byte order.
                endian = match Endian::Little.u32(d, at + 8) {
                    Some(PCAPNG_BOM) => Endian::Little,
                    Some(b) if b.swap_bytes() == PCAPNG_BOM => Endian::Big,
                    Some(_) => {
                        return Some(Err(Error::BadPcapngBlock {
                            offset: at,
                            reason: "unknown byte-order magic",
                        }))
                    }
                    None => return Some(Err(truncated(at, 12, d.len()))),
                };
                self.format = Format::PcapNg { endian };
                self.interfaces.clear();
            }
            let Some(blen) = endian.u32(d, at + 4) else {
                return Some(Err(truncated(at, 8, d.len())));
            };
            let blen = blen as usize;
            if blen < 12 || blen % 4 != 0 {
                return Some(Err(Error::BadPcapngBlock {
                    offset: at,
                    reason: "block length not a multiple of 4 or below 12",
                }));
            }
            let end = match at.checked_add(blen) {
                Some(e) if e <= d.len() => e,
                _ => return Some(Err(truncated(at, blen, d.len()))),
            };
            if endian.u32(d, end - 4) != Some(blen as u32) {
                return Some(Err(Error::BadPcapngBlock {
                    offset: at,
                    reason: "trailing block length differs",
                }));
            }
            self.pos = end;
            let body = &d[at + 8..end - 4];
            match btype {
                PCAPNG_IDB => {
                    let Some(link) = endian.u16(body, 0) else {
                        return Some(Err(Error::BadPcapngBlock {
                            offset: at,
                            reason: "interface description too short",
                        }));
                    };
                    let mut iface = Interface {
                        link: LinkType::from_u32(u32::from(link)),
                        resol: TsResol::Decimal(6),
                        offset_secs: 0,
                    };
                    parse_idb_options(endian, body.get(8..).unwrap_or(&[]), &mut iface);
                    self.interfaces.push(iface);
                }
                PCAPNG_EPB | PCAPNG_PB => {
                    let (iface_id, data_off) = if btype == PCAPNG_EPB {
                        (endian.u32(body, 0), 20usize)
                    } else {
                        (endian.u16(body, 0).map(u32::from), 20)
                    };
                    let (Some(iface_id), Some(hi), Some(lo), Some(cap), Some(orig)) = (
                        iface_id,
                        endian.u32(body, 4),
                        endian.u32(body, 8),
                        endian.u32(body, 12),
                        endian.u32(body, 16),
                    ) else {
                        return Some(Err(Error::BadPcapngBlock {
                            offset: at,
                            reason: "packet block too short",
                        }));
                    };
                    let Some(iface) = self.interfaces.get(iface_id as usize).copied() else {
                        return Some(Err(Error::UnknownInterface {
                            offset: at,
                            interface: iface_id,
                        }));
                    };
                    let Some(data) = body.get(data_off..data_off.saturating_add(cap as usize))
                    else {
                        return Some(Err(Error::BadPcapngBlock {
                            offset: at,
                            reason: "captured length exceeds the block",
                        }));
                    };
                    let units = (u64::from(hi) << 32) | u64::from(lo);
                    return Some(Ok(Frame {
                        timestamp: apply_offset(iface.resol.to_duration(units), iface.offset_secs),
                        link: iface.link,
                        data,
                        orig_len: orig,
                    }));
                }
                PCAPNG_SPB => {
                    let Some(iface) = self.interfaces.first().copied() else {
                        return Some(Err(Error::UnknownInterface {
                            offset: at,
                            interface: 0,
                        }));
                    };
                    let Some(orig) = endian.u32(body, 0) else {
                        return Some(Err(Error::BadPcapngBlock {
                            offset: at,
                            reason: "simple packet block too short",
                        }));
                    };
                    let avail = body.len() - 4;
                    let cap = (orig as usize).min(avail);
                    return Some(Ok(Frame {
                        // The SPB carries no timestamp.
                        timestamp: Duration::ZERO,
                        link: iface.link,
                        data: &body[4..4 + cap],
                        orig_len: orig,
                    }));
                }
                _ => {} // SHB handled above; everything else is skipped.
            }
        }
    }
}

fn apply_offset(t: Duration, offset_secs: i64) -> Duration {
    if offset_secs >= 0 {
        t.saturating_add(Duration::from_secs(offset_secs as u64))
    } else {
        t.saturating_sub(Duration::from_secs(offset_secs.unsigned_abs()))
    }
}

fn parse_idb_options(endian: Endian, mut opts: &[u8], iface: &mut Interface) {
    while let (Some(code), Some(len)) = (endian.u16(opts, 0), endian.u16(opts, 2)) {
        let len = usize::from(len);
        let Some(value) = opts.get(4..4 + len) else {
            return;
        };
        match code {
            0 => return, // opt_endofopt
            9 if len >= 1 => {
                let v = value[0];
                iface.resol = if v & 0x80 != 0 {
                    TsResol::Binary(v & 0x7f)
                } else {
                    TsResol::Decimal(v)
                };
            }
            14 if len >= 8 => {
                let (hi, lo) = (endian.u32(value, 0), endian.u32(value, 4));
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    let raw = match endian {
                        Endian::Little => (u64::from(lo) << 32) | u64::from(hi),
                        Endian::Big => (u64::from(hi) << 32) | u64::from(lo),
                    };
                    iface.offset_secs = raw as i64;
                }
            }
            _ => {}
        }
        let padded = (4 + len).div_ceil(4) * 4;
        opts = opts.get(padded..).unwrap_or(&[]);
    }
}

impl<'a> Iterator for CaptureReader<'a> {
    type Item = Result<Frame<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = match self.format {
            Format::Pcap {
                endian,
                nanos,
                link,
            } => self.next_pcap(endian, nanos, link),
            Format::PcapNg { endian } => self.next_pcapng(endian),
        };
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// A UDP datagram found in a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    /// Capture time since the Unix epoch.
    pub timestamp: Duration,
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// The UDP payload as captured.
    pub payload: &'a [u8],
}

/// Iterator over the UDP datagrams of a capture (non-UDP and undecodable frames skipped).
#[derive(Debug, Clone)]
pub struct UdpPackets<'a> {
    frames: CaptureReader<'a>,
}

impl<'a> Iterator for UdpPackets<'a> {
    type Item = Result<UdpDatagram<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let frame = match self.frames.next()? {
                Ok(f) => f,
                Err(e) => return Some(Err(e)),
            };
            if let Some((src, dst, payload)) = udp_datagram(frame.link, frame.data) {
                return Some(Ok(UdpDatagram {
                    timestamp: frame.timestamp,
                    src,
                    dst,
                    payload,
                }));
            }
        }
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Endian::Big.u16(b, at)
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;

/// Decodes link layer, IP and UDP of one frame: `(source, destination, UDP payload)`, or
/// `None` when the frame is not (the first fragment of) a UDP datagram or does not decode.
pub fn udp_datagram(link: LinkType, data: &[u8]) -> Option<(SocketAddr, SocketAddr, &[u8])> {
    let (ethertype, ip) = match link {
        LinkType::Ethernet => {
            let mut off = 12;
            let mut et = be16(data, off)?;
            // 802.1Q, 802.1ad and the old QinQ value: skip each 4-byte tag.
            while matches!(et, 0x8100 | 0x88a8 | 0x9100) {
                off += 4;
                et = be16(data, off)?;
            }
            (et, data.get(off + 2..)?)
        }
        LinkType::Raw => (0, data),
        LinkType::Ipv4 => (ETH_IPV4, data),
        LinkType::Ipv6 => (ETH_IPV6, data),
        LinkType::LinuxSll => (be16(data, 14)?, data.get(16..)?),
        LinkType::LinuxSll2 => (be16(data, 0)?, data.get(20..)?),
        LinkType::Null | LinkType::Loop => {
            let raw: [u8; 4] = data.get(..4)?.try_into().ok()?;
            let fam = if link == LinkType::Loop {
                u32::from_be_bytes(raw)
            } else {
                // Host byte order of the capturing machine: small values identify it.
                let le = u32::from_le_bytes(raw);
                if le <= 0xffff {
                    le
                } else {
                    u32::from_be_bytes(raw)
                }
            };
            let et = match fam {
                2 => ETH_IPV4,
                10 | 24 | 28 | 30 => ETH_IPV6,
                _ => return None,
            };
            (et, data.get(4..)?)
        }
        LinkType::Other(_) => return None,
    };
    let ethertype = if ethertype == 0 {
        match ip.first()? >> 4 {
            4 => ETH_IPV4,
            6 => ETH_IPV6,
            _ => return None,
        }
    } else {
        ethertype
    };
    match ethertype {
        ETH_IPV4 => ipv4_udp(ip),
        ETH_IPV6 => ipv6_udp(ip),
        _ => None,
    }
}

fn ipv4_udp(ip: &[u8]) -> Option<(SocketAddr, SocketAddr, &[u8])> {
    let vihl = *ip.first()?;
    if vihl >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(vihl & 0x0f) * 4;
    let total = usize::from(be16(ip, 2)?);
    if ihl < 20 || total < ihl || ip.len() < ihl {
        return None;
    }
    let frag = be16(ip, 6)?;
    if frag & 0x1fff != 0 || ip[9] != 17 {
        return None; // a later fragment, or not UDP
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    // Ethernet padding may follow the datagram; a snapshot length may cut it.
    let ip = &ip[..total.min(ip.len())];
    udp(IpAddr::V4(src), IpAddr::V4(dst), &ip[ihl..])
}

fn ipv6_udp(ip: &[u8]) -> Option<(SocketAddr, SocketAddr, &[u8])> {
    if ip.first()? >> 4 != 6 || ip.len() < 40 {
        return None;
    }
    let plen = usize::from(be16(ip, 4)?);
    let addr = |at: usize| -> Option<Ipv6Addr> {
        let b: [u8; 16] = ip.get(at..at + 16)?.try_into().ok()?;
        Some(Ipv6Addr::from(b))
    };
    let (src, dst) = (addr(8)?, addr(24)?);
    let mut next = ip[6];
    let mut rest = &ip[40..(40 + plen).min(ip.len())];
    loop {
        match next {
            17 => return udp(IpAddr::V6(src), IpAddr::V6(dst), rest),
            0 | 43 | 60 => {
                let len = (usize::from(*rest.get(1)?) + 1) * 8;
                next = *rest.first()?;
                rest = rest.get(len..)?;
            }
            44 => {
                let off = be16(rest, 2)? >> 3;
                if off != 0 {
                    return None; // not the first fragment
                }
                next = *rest.first()?;
                rest = rest.get(8..)?;
            }
            51 => {
                let len = (usize::from(*rest.get(1)?) + 2) * 4;
                next = *rest.first()?;
                rest = rest.get(len..)?;
            }
            _ => return None,
        }
    }
}

fn udp(src: IpAddr, dst: IpAddr, seg: &[u8]) -> Option<(SocketAddr, SocketAddr, &[u8])> {
    let sport = be16(seg, 0)?;
    let dport = be16(seg, 2)?;
    let len = usize::from(be16(seg, 4)?);
    if len < 8 {
        // 0 is legal for IPv6 jumbograms only; treat the rest of the packet as payload then.
        if len != 0 {
            return None;
        }
    }
    let end = if len == 0 {
        seg.len()
    } else {
        len.min(seg.len())
    };
    let payload = seg.get(8..end.max(8))?;
    Some((
        SocketAddr::new(src, sport),
        SocketAddr::new(dst, dport),
        payload,
    ))
}

/// Reads every UDP datagram of a capture held in memory.
pub fn udp_packets(data: &[u8]) -> Result<UdpPackets<'_>, Error> {
    Ok(CaptureReader::new(data)?.udp())
}

/// Link type of a [`PcapWriter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterLink {
    /// Ethernet II frames (IPv4 and IPv6).
    Ethernet,
    /// Raw IPv4 packets (`LINKTYPE_RAW`).
    RawIpv4,
}

/// Writes a classic pcap file: global header on creation, then one record per datagram.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    link: WriterLink,
    nanos: bool,
    buf: Vec<u8>,
    ip_id: u16,
}

impl<W: Write> PcapWriter<W> {
    /// A writer with µs timestamps (the common format); writes the global header.
    pub fn new(out: W, link: WriterLink) -> io::Result<Self> {
        Self::with_resolution(out, link, false)
    }

    /// A writer with µs (`nanos == false`) or ns timestamps; writes the global header.
    pub fn with_resolution(mut out: W, link: WriterLink, nanos: bool) -> io::Result<Self> {
        let magic = if nanos { MAGIC_NS } else { MAGIC_US };
        let linktype = match link {
            WriterLink::Ethernet => LinkType::Ethernet,
            WriterLink::RawIpv4 => LinkType::Raw,
        }
        .to_u32();
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&magic.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        h[16..20].copy_from_slice(&262_144u32.to_le_bytes());
        h[20..24].copy_from_slice(&linktype.to_le_bytes());
        out.write_all(&h)?;
        Ok(Self {
            out,
            link,
            nanos,
            buf: Vec::with_capacity(1600),
            ip_id: 0,
        })
    }

    /// Writes one frame as it is (already in the writer's link format).
    pub fn write_frame(&mut self, timestamp: Duration, frame: &[u8]) -> io::Result<()> {
        let len = u32::try_from(frame.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
        let secs = u32::try_from(timestamp.as_secs())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "timestamp beyond 2106"))?;
        let frac = if self.nanos {
            timestamp.subsec_nanos()
        } else {
            timestamp.subsec_micros()
        };
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&secs.to_le_bytes());
        h[4..8].copy_from_slice(&frac.to_le_bytes());
        h[8..12].copy_from_slice(&len.to_le_bytes());
        h[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(frame)
    }

    /// Wraps `payload` in UDP, IP (and Ethernet) headers and writes it. IPv6 needs the
    /// Ethernet link; both addresses must be of the same family.
    pub fn write_udp(
        &mut self,
        timestamp: Duration,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) -> io::Result<()> {
        let invalid = |m: &'static str| io::Error::new(io::ErrorKind::InvalidInput, m);
        let udp_len = u16::try_from(payload.len() + 8).map_err(|_| invalid("payload too large"))?;
        let mut buf = core::mem::take(&mut self.buf);
        buf.clear();
        let is_v6 = match (src.ip(), dst.ip()) {
            (IpAddr::V4(_), IpAddr::V4(_)) => false,
            (IpAddr::V6(_), IpAddr::V6(_)) => true,
            _ => return Err(invalid("address families differ")),
        };
        if self.link == WriterLink::Ethernet {
            buf.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01]);
            buf.extend_from_slice(&if is_v6 { ETH_IPV6 } else { ETH_IPV4 }.to_be_bytes());
        } else if is_v6 {
            return Err(invalid("raw IPv4 link cannot carry IPv6"));
        }
        let ip_start = buf.len();
        match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let total = udp_len
                    .checked_add(20)
                    .ok_or_else(|| invalid("payload too large"))?;
                self.ip_id = self.ip_id.wrapping_add(1);
                buf.extend_from_slice(&[0x45, 0]);
                buf.extend_from_slice(&total.to_be_bytes());
                buf.extend_from_slice(&self.ip_id.to_be_bytes());
                buf.extend_from_slice(&[0x40, 0, 64, 17, 0, 0]);
                buf.extend_from_slice(&s.octets());
                buf.extend_from_slice(&d.octets());
                let sum = checksum(0, &buf[ip_start..ip_start + 20]);
                buf[ip_start + 10..ip_start + 12].copy_from_slice(&sum.to_be_bytes());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                buf.extend_from_slice(&[0x60, 0, 0, 0]);
                buf.extend_from_slice(&udp_len.to_be_bytes());
                buf.extend_from_slice(&[17, 64]);
                buf.extend_from_slice(&s.octets());
                buf.extend_from_slice(&d.octets());
            }
            _ => unreachable!("families checked above"),
        }
        let udp_start = buf.len();
        buf.extend_from_slice(&src.port().to_be_bytes());
        buf.extend_from_slice(&dst.port().to_be_bytes());
        buf.extend_from_slice(&udp_len.to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(payload);
        // UDP checksum over the pseudo-header (mandatory for IPv6, written for IPv4 too).
        let mut pseudo = 0u32;
        match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                pseudo = sum_words(pseudo, &s.octets());
                pseudo = sum_words(pseudo, &d.octets());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                pseudo = sum_words(pseudo, &s.octets());
                pseudo = sum_words(pseudo, &d.octets());
            }
            _ => {}
        }
        pseudo += 17 + u32::from(udp_len);
        let mut sum = checksum(pseudo, &buf[udp_start..]);
        if sum == 0 {
            sum = 0xffff;
        }
        buf[udp_start + 6..udp_start + 8].copy_from_slice(&sum.to_be_bytes());
        let res = self.write_frame(timestamp, &buf);
        self.buf = buf;
        res
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

fn sum_words(mut acc: u32, b: &[u8]) -> u32 {
    let mut chunks = b.chunks_exact(2);
    for c in &mut chunks {
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
    }
    if let [last] = chunks.remainder() {
        acc = acc.wrapping_add(u32::from(*last) << 8);
    }
    acc
}

/// Internet checksum (RFC 1071) of `b` plus an initial partial sum.
fn checksum(initial: u32, b: &[u8]) -> u16 {
    let mut acc = u64::from(sum_words(0, b)) + u64::from(initial);
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// A classic pcap written by our writer with the given packets.
    fn written(link: WriterLink, nanos: bool, pkts: &[(u64, &str, &str, &[u8])]) -> Vec<u8> {
        let mut w = PcapWriter::with_resolution(Vec::new(), link, nanos).unwrap();
        for (ns, s, d, p) in pkts {
            w.write_udp(Duration::from_nanos(*ns), sa(s), sa(d), p)
                .unwrap();
        }
        w.finish().unwrap()
    }

    fn collect(data: &[u8]) -> Vec<(Duration, SocketAddr, SocketAddr, Vec<u8>)> {
        udp_packets(data)
            .unwrap()
            .map(|r| {
                let d = r.unwrap();
                (d.timestamp, d.src, d.dst, d.payload.to_vec())
            })
            .collect()
    }

    #[test]
    fn writer_round_trips_ethernet_raw_v6_and_ns() {
        let pkts: [(u64, &str, &str, &[u8]); 2] = [
            (
                1_700_000_000_123_456_000,
                "10.0.0.1:5000",
                "10.0.0.2:6000",
                b"hello",
            ),
            (
                1_700_000_000_143_456_000,
                "10.0.0.2:6000",
                "10.0.0.1:5000",
                b"",
            ),
        ];
        for link in [WriterLink::Ethernet, WriterLink::RawIpv4] {
            let got = collect(&written(link, false, &pkts));
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].0, Duration::from_nanos(pkts[0].0));
            assert_eq!((got[0].1, got[0].2), (sa(pkts[0].1), sa(pkts[0].2)));
            assert_eq!(got[0].3, b"hello");
            assert!(got[1].3.is_empty());
        }
        let v6: [(u64, &str, &str, &[u8]); 1] =
            [(1_000_000_001, "[2001:db8::1]:1", "[2001:db8::2]:2", b"x6")];
        let got = collect(&written(WriterLink::Ethernet, true, &v6));
        assert_eq!(got[0].0, Duration::from_nanos(1_000_000_001));
        assert_eq!(got[0].1, sa("[2001:db8::1]:1"));
        assert_eq!(got[0].3, b"x6");
        // IPv6 cannot go on the raw IPv4 link; mixed families are refused.
        let mut w = PcapWriter::new(Vec::new(), WriterLink::RawIpv4).unwrap();
        assert!(w
            .write_udp(Duration::ZERO, sa(v6[0].1), sa(v6[0].2), b"")
            .is_err());
        assert!(w
            .write_udp(Duration::ZERO, sa("1.2.3.4:1"), sa(v6[0].2), b"")
            .is_err());
    }

    #[test]
    fn writer_checksums_verify() {
        let data = written(
            WriterLink::RawIpv4,
            false,
            &[(0, "192.0.2.1:1234", "192.0.2.2:80", b"abc")],
        );
        let ip = &data[24 + 16..];
        assert_eq!(checksum(0, &ip[..20]), 0);
        let mut pseudo = sum_words(0, &ip[12..20]);
        pseudo += 17 + 11;
        assert_eq!(checksum(pseudo, &ip[20..]), 0);
    }

    /// Rewrites a little-endian classic pcap from our writer into big-endian.
    fn to_big_endian(le: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let swap32 = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap()).to_be_bytes();
        let swap16 = |b: &[u8]| u16::from_le_bytes(b.try_into().unwrap()).to_be_bytes();
        out.extend_from_slice(&swap32(&le[0..4]));
        out.extend_from_slice(&swap16(&le[4..6]));
        out.extend_from_slice(&swap16(&le[6..8]));
        for i in 0..4 {
            out.extend_from_slice(&swap32(&le[8 + 4 * i..12 + 4 * i]));
        }
        let mut at = 24;
        while at < le.len() {
            for i in 0..4 {
                out.extend_from_slice(&swap32(&le[at + 4 * i..at + 4 * i + 4]));
            }
            let n = u32::from_le_bytes(le[at + 8..at + 12].try_into().unwrap()) as usize;
            out.extend_from_slice(&le[at + 16..at + 16 + n]);
            at += 16 + n;
        }
        out
    }

    #[test]
    fn big_endian_classic_pcap() {
        for nanos in [false, true] {
            let le = written(
                WriterLink::Ethernet,
                nanos,
                &[(5_000_001_000, "10.0.0.1:1", "10.0.0.2:2", b"be")],
            );
            let got = collect(&to_big_endian(&le));
            assert_eq!(got[0].0, Duration::from_nanos(5_000_001_000));
            assert_eq!(got[0].3, b"be");
        }
    }

    /// A raw IPv4/UDP packet.
    fn ipv4_udp_bytes(payload: &[u8], frag: u16) -> Vec<u8> {
        let data = written(
            WriterLink::RawIpv4,
            false,
            &[(0, "10.0.0.1:1000", "10.0.0.2:2000", payload)],
        );
        let mut ip = data[40..].to_vec();
        ip[6..8].copy_from_slice(&frag.to_be_bytes());
        ip
    }

    fn block(e: Endian, btype: u32, body: &[u8]) -> Vec<u8> {
        let pad = (4 - body.len() % 4) % 4;
        let len = (12 + body.len() + pad) as u32;
        let w32 = |v: u32| match e {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        };
        let mut b = Vec::new();
        b.extend_from_slice(&w32(btype));
        b.extend_from_slice(&w32(len));
        b.extend_from_slice(body);
        b.extend(core::iter::repeat_n(0u8, pad));
        b.extend_from_slice(&w32(len));
        b
    }

    fn pcapng(e: Endian, tsresol: Option<u8>, frame: &[u8], units: u64) -> Vec<u8> {
        let w32 = |v: u32| match e {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        };
        let w16 = |v: u16| match e {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        };
        let mut shb = Vec::new();
        shb.extend_from_slice(&w32(PCAPNG_BOM));
        shb.extend_from_slice(&w16(1));
        shb.extend_from_slice(&w16(0));
        shb.extend_from_slice(&[0xff; 8]);
        let mut idb = Vec::new();
        idb.extend_from_slice(&w16(101));
        idb.extend_from_slice(&w16(0));
        idb.extend_from_slice(&w32(0));
        if let Some(r) = tsresol {
            idb.extend_from_slice(&w16(9));
            idb.extend_from_slice(&w16(1));
            idb.extend_from_slice(&[r, 0, 0, 0]);
        }
        idb.extend_from_slice(&w16(0));
        idb.extend_from_slice(&w16(0));
        let mut epb = Vec::new();
        epb.extend_from_slice(&w32(0));
        epb.extend_from_slice(&w32((units >> 32) as u32));
        epb.extend_from_slice(&w32(units as u32));
        epb.extend_from_slice(&w32(frame.len() as u32));
        epb.extend_from_slice(&w32(frame.len() as u32));
        epb.extend_from_slice(frame);
        let mut spb = Vec::new();
        spb.extend_from_slice(&w32(frame.len() as u32));
        spb.extend_from_slice(frame);
        let mut out = block(e, PCAPNG_SHB, &shb);
        out.extend(block(e, 0x0000_0bad, b"custom block, skipped"));
        out.extend(block(e, PCAPNG_IDB, &idb));
        out.extend(block(e, 5, &[0u8; 12])); // interface statistics, skipped
        out.extend(block(e, PCAPNG_EPB, &epb));
        out.extend(block(e, PCAPNG_SPB, &spb));
        out
    }

    #[test]
    fn pcapng_both_byte_orders_and_resolutions() {
        let frame = ipv4_udp_bytes(b"ng", 0x4000);
        for e in [Endian::Little, Endian::Big] {
            for (resol, units, want) in [
                (None, 1_500_000u64, Duration::from_millis(1500)),
                (Some(9), 1_500_000_007, Duration::from_nanos(1_500_000_007)),
                (Some(3), 1500, Duration::from_millis(1500)),
                (Some(0x80 | 10), 1536, Duration::from_millis(1500)),
            ] {
                let file = pcapng(e, resol, &frame, units);
                let got = collect(&file);
                assert_eq!(got.len(), 2, "{e:?} {resol:?}");
                assert_eq!(got[0].0, want, "{e:?} {resol:?}");
                assert_eq!(got[0].3, b"ng");
                assert_eq!(got[1].3, b"ng");
                assert_eq!(got[1].1, sa("10.0.0.1:1000"));
            }
        }
        // A packet before any interface description is an error, not a panic.
        let mut bad = pcapng(Endian::Little, None, &frame, 0);
        let shb_len = 28;
        let idb_start = shb_len + 36;
        let idb_len = u32::from_le_bytes(bad[idb_start + 4..idb_start + 8].try_into().unwrap());
        bad.drain(idb_start..idb_start + idb_len as usize);
        let mut it = CaptureReader::new(&bad).unwrap();
        assert!(matches!(
            it.next(),
            Some(Err(Error::UnknownInterface { .. }))
        ));
        assert!(it.next().is_none());
    }

    #[test]
    fn link_types_decode() {
        let ip = ipv4_udp_bytes(b"L", 0x4000);
        let with = |prefix: &[u8]| {
            let mut v = prefix.to_vec();
            v.extend_from_slice(&ip);
            v
        };
        let mut eth_vlan = vec![0u8; 12];
        eth_vlan.extend_from_slice(&[0x81, 0x00, 0, 5, 0x81, 0x00, 0, 6, 0x08, 0x00]);
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        let mut sll2 = vec![0x08, 0x00];
        sll2.extend_from_slice(&[0u8; 18]);
        for (link, frame) in [
            (LinkType::Ethernet, with(&eth_vlan)),
            (LinkType::LinuxSll, with(&sll)),
            (LinkType::LinuxSll2, with(&sll2)),
            (LinkType::Null, with(&2u32.to_le_bytes())),
            (LinkType::Null, with(&2u32.to_be_bytes())),
            (LinkType::Loop, with(&2u32.to_be_bytes())),
            (LinkType::Raw, ip.clone()),
            (LinkType::Ipv4, ip.clone()),
        ] {
            let (s, d, p) = udp_datagram(link, &frame).unwrap_or_else(|| panic!("{link:?}"));
            assert_eq!((s.port(), d.port(), p), (1000, 2000, &b"L"[..]), "{link:?}");
        }
        assert_eq!(udp_datagram(LinkType::Other(147), &ip), None);
        assert_eq!(
            udp_datagram(LinkType::Null, &with(&99u32.to_le_bytes())),
            None
        );
        assert_eq!(
            LinkType::from_u32(LinkType::LinuxSll2.to_u32()),
            LinkType::LinuxSll2
        );
    }

    #[test]
    fn fragments_and_truncation() {
        // First fragment (MF set, offset 0) decodes; a later fragment is skipped.
        assert!(udp_datagram(LinkType::Raw, &ipv4_udp_bytes(b"abcd", 0x2000)).is_some());
        assert_eq!(
            udp_datagram(LinkType::Raw, &ipv4_udp_bytes(b"abcd", 0x2001)),
            None
        );
        // Cut by the snapshot length: what was captured is returned.
        let ip = ipv4_udp_bytes(b"abcdef", 0);
        let (_, _, p) = udp_datagram(LinkType::Raw, &ip[..ip.len() - 2]).unwrap();
        assert_eq!(p, b"abcd");
        // Not UDP.
        let mut tcp = ip.clone();
        tcp[9] = 6;
        assert_eq!(udp_datagram(LinkType::Raw, &tcp), None);
    }

    #[test]
    fn ipv6_extension_headers_are_skipped() {
        let data = written(
            WriterLink::Ethernet,
            false,
            &[(0, "[::1]:7", "[::2]:9", b"v6")],
        );
        let frame = &data[40..];
        let (eth, ip) = frame.split_at(14);
        // Insert hop-by-hop (8 bytes) and a first fragment header before UDP.
        let mut v6 = ip[..40].to_vec();
        let udp = &ip[40..];
        v6[6] = 0; // next: hop-by-hop
        let mut ext = vec![44, 0, 1, 4, 0, 0, 0, 0]; // hop-by-hop -> fragment
        ext.extend_from_slice(&[17, 0, 0, 1, 0, 0, 0, 1]); // fragment (offset 0, M) -> UDP
        let plen = (ext.len() + udp.len()) as u16;
        v6[4..6].copy_from_slice(&plen.to_be_bytes());
        v6.extend_from_slice(&ext);
        v6.extend_from_slice(udp);
        let mut f = eth.to_vec();
        f.extend_from_slice(&v6);
        let (s, d, p) = udp_datagram(LinkType::Ethernet, &f).unwrap();
        assert_eq!((s, d, p), (sa("[::1]:7"), sa("[::2]:9"), &b"v6"[..]));
        // A later fragment is skipped.
        let off = 14 + 40 + 8 + 2;
        f[off..off + 2].copy_from_slice(&8u16.to_be_bytes());
        assert_eq!(udp_datagram(LinkType::Ethernet, &f), None);
    }

    #[test]
    fn structural_errors() {
        assert!(matches!(
            CaptureReader::new(b"GIF89a......"),
            Err(Error::UnknownCaptureFormat { .. })
        ));
        assert!(CaptureReader::new(&[0xd4, 0xc3]).is_err());
        let mut data = written(
            WriterLink::Ethernet,
            false,
            &[(0, "10.0.0.1:1", "10.0.0.2:2", b"x")],
        );
        data.truncate(data.len() - 1);
        let mut it = udp_packets(&data).unwrap();
        assert!(matches!(
            it.next(),
            Some(Err(Error::CaptureTruncated { .. }))
        ));
        assert!(it.next().is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400), link in any::<u32>()) {
            if let Ok(r) = CaptureReader::new(&data) {
                for f in r.take(100) {
                    let _ = f;
                }
            }
            let _ = udp_datagram(LinkType::from_u32(link % 300), &data);
            for l in [LinkType::Ethernet, LinkType::Raw, LinkType::LinuxSll, LinkType::LinuxSll2, LinkType::Null] {
                let _ = udp_datagram(l, &data);
            }
        }

        #[test]
        fn corrupted_files_never_panic(cut in 0usize..300, flips in proptest::collection::vec((0usize..300, any::<u8>()), 0..8), ng: bool) {
            let frame = ipv4_udp_bytes(b"payload", 0);
            let mut data = if ng {
                pcapng(Endian::Big, Some(9), &frame, 12345)
            } else {
                written(WriterLink::Ethernet, true, &[(1, "10.0.0.1:1", "10.0.0.2:2", b"pp"), (2, "[::1]:1", "[::2]:2", b"qq")])
            };
            for (at, v) in flips {
                if let Some(b) = data.get_mut(at) {
                    *b = v;
                }
            }
            data.truncate(cut.min(data.len()));
            if let Ok(it) = udp_packets(&data) {
                for d in it.take(100) {
                    let _ = d;
                }
            }
        }
    }
}
