//! Zero-copy RTP (RFC 3550 §5.1) packet view and an allocation-free builder.
//!
//! Choice: this is our own code rather than the `rtp-types` crate. `rtp-types` has the same
//! design (a borrowed view over `&[u8]`, a builder into a caller buffer) and is fast, but the
//! part we need is about 150 lines, and owning it keeps one error type for the crate (parse
//! errors are [`Error`] variants the statistics and `rtp analyze` can count), keeps the
//! dependency tree empty, and lets fuzz targets live next to the code. Webrtc-rs's `rtp` crate
//! was not considered: it allocates per packet.
//!
//! Parsing validates everything the header announces (version, CSRC list, extension length,
//! padding count) once, in [`RtpPacket::parse`]; accessors then only index into the
//! already-checked slice and cannot fail.

use crate::{Error, Protocol, Result};

/// Size of the fixed RTP header.
pub const FIXED_HEADER_LEN: usize = 12;
/// The only RTP version in use.
pub const VERSION: u8 = 2;
/// Largest number of CSRCs a header can carry (4-bit count).
pub const MAX_CSRC: usize = 15;
/// Largest payload type (7 bits).
pub const MAX_PAYLOAD_TYPE: u8 = 127;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn truncated(len: usize, needed: usize) -> Error {
    Error::Truncated {
        protocol: Protocol::Rtp,
        len,
        needed,
    }
}

/// A validated, borrowed RTP packet.
///
/// Invariant (established by [`RtpPacket::parse`]): `header_len <= payload_end <= buf.len()`,
/// the CSRC list and the extension lie within `buf[..header_len]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    buf: &'a [u8],
    header_len: usize,
    payload_end: usize,
}

impl<'a> RtpPacket<'a> {
    /// Validates `buf` as one RTP packet and returns a view over it.
    ///
    /// Errors: shorter than the fixed header, CSRC list or extension ([`Error::Truncated`]);
    /// version other than 2 ([`Error::UnsupportedVersion`]); padding bit set with a count of 0
    /// or larger than what follows the header ([`Error::InvalidPadding`]).
    pub fn parse(buf: &'a [u8]) -> Result<Self> {
        if buf.len() < FIXED_HEADER_LEN {
            return Err(truncated(buf.len(), FIXED_HEADER_LEN));
        }
        let version = buf[0] >> 6;
        if version != VERSION {
            return Err(Error::UnsupportedVersion {
                protocol: Protocol::Rtp,
                version,
            });
        }
        let csrc_count = usize::from(buf[0] & 0x0f);
        let mut header_len = FIXED_HEADER_LEN + 4 * csrc_count;
        if buf.len() < header_len {
            return Err(truncated(buf.len(), header_len));
        }
        if buf[0] & 0x10 != 0 {
            // Extension header: 16-bit profile, 16-bit length in 32-bit words.
            let ext_head = header_len + 4;
            if buf.len() < ext_head {
                return Err(truncated(buf.len(), ext_head));
            }
            header_len = ext_head + 4 * usize::from(be16(buf, header_len + 2));
            if buf.len() < header_len {
                return Err(truncated(buf.len(), header_len));
            }
        }
        let mut payload_end = buf.len();
        if buf[0] & 0x20 != 0 {
            let available = buf.len() - header_len;
            // The last byte exists: available > 0 is checked by the padding range test.
            let padding = buf.last().map_or(0, |&b| usize::from(b));
            if padding == 0 || padding > available {
                return Err(Error::InvalidPadding {
                    protocol: Protocol::Rtp,
                    padding,
                    available,
                });
            }
            payload_end -= padding;
        }
        Ok(Self {
            buf,
            header_len,
            payload_end,
        })
    }

    /// RTP version (always 2 for a parsed packet).
    pub fn version(&self) -> u8 {
        self.buf[0] >> 6
    }

    /// Whether the padding bit is set.
    pub fn has_padding(&self) -> bool {
        self.buf[0] & 0x20 != 0
    }

    /// Number of padding bytes at the end (0 without the padding bit).
    pub fn padding_len(&self) -> usize {
        self.buf.len() - self.payload_end
    }

    /// Whether the extension bit is set.
    pub fn has_extension(&self) -> bool {
        self.buf[0] & 0x10 != 0
    }

    /// Number of CSRC identifiers.
    pub fn csrc_count(&self) -> u8 {
        self.buf[0] & 0x0f
    }

    /// The marker bit (for audio: the first packet of a talkspurt).
    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }

    /// Payload type (7 bits).
    pub fn payload_type(&self) -> u8 {
        self.buf[1] & 0x7f
    }

    /// Sequence number.
    pub fn sequence_number(&self) -> u16 {
        be16(self.buf, 2)
    }

    /// Media timestamp in clock-rate units.
    pub fn timestamp(&self) -> u32 {
        be32(self.buf, 4)
    }

    /// Synchronization source.
    pub fn ssrc(&self) -> u32 {
        be32(self.buf, 8)
    }

    /// The CSRC identifiers, decoded lazily.
    pub fn csrcs(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        let end = FIXED_HEADER_LEN + 4 * usize::from(self.csrc_count());
        self.buf[FIXED_HEADER_LEN..end]
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// The header extension as (profile-defined 16 bits, extension data), if present.
    pub fn extension(&self) -> Option<(u16, &'a [u8])> {
        if !self.has_extension() {
            return None;
        }
        let at = FIXED_HEADER_LEN + 4 * usize::from(self.csrc_count());
        Some((be16(self.buf, at), &self.buf[at + 4..self.header_len]))
    }

    /// Header length including CSRCs and extension.
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// The payload, without header and padding.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.header_len..self.payload_end]
    }

    /// The whole packet as given to [`RtpPacket::parse`].
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
}

/// Writes RTP packets into a caller-provided buffer without allocating.
///
/// ```
/// use switchboard_media::rtp::{RtpBuilder, RtpPacket};
/// let mut buf = [0u8; 172];
/// let n = RtpBuilder::new(0, 1, 160, 0x1234).marker(true).write(&mut buf, &[0xff; 160]).unwrap();
/// let p = RtpPacket::parse(&buf[..n]).unwrap();
/// assert_eq!((p.sequence_number(), p.timestamp(), p.payload().len()), (1, 160, 160));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpBuilder<'a> {
    payload_type: u8,
    marker: bool,
    sequence_number: u16,
    timestamp: u32,
    ssrc: u32,
    csrcs: &'a [u32],
    extension: Option<(u16, &'a [u8])>,
    padding: u8,
}

impl<'a> RtpBuilder<'a> {
    /// A header with the given payload type, sequence number, timestamp and SSRC; no marker,
    /// CSRC, extension or padding.
    pub fn new(payload_type: u8, sequence_number: u16, timestamp: u32, ssrc: u32) -> Self {
        Self {
            payload_type,
            marker: false,
            sequence_number,
            timestamp,
            ssrc,
            csrcs: &[],
            extension: None,
            padding: 0,
        }
    }

    /// Sets the marker bit.
    pub fn marker(mut self, marker: bool) -> Self {
        self.marker = marker;
        self
    }

    /// Sets the CSRC list (at most 15).
    pub fn csrcs(mut self, csrcs: &'a [u32]) -> Self {
        self.csrcs = csrcs;
        self
    }

    /// Adds a header extension; `data.len()` must be a multiple of 4.
    pub fn extension(mut self, profile: u16, data: &'a [u8]) -> Self {
        self.extension = Some((profile, data));
        self
    }

    /// Appends `padding` bytes (0 for none); the last one holds the count.
    pub fn padding(mut self, padding: u8) -> Self {
        self.padding = padding;
        self
    }

    /// Length of the packet [`RtpBuilder::write`] produces for `payload_len` bytes of payload.
    pub fn packet_len(&self, payload_len: usize) -> usize {
        FIXED_HEADER_LEN
            + 4 * self.csrcs.len()
            + self.extension.map_or(0, |(_, d)| 4 + d.len())
            + payload_len
            + usize::from(self.padding)
    }

    /// Writes header and `payload` to the front of `out`; returns the packet length.
    pub fn write(&self, out: &mut [u8], payload: &[u8]) -> Result<usize> {
        if self.payload_type > MAX_PAYLOAD_TYPE {
            return Err(Error::FieldOutOfRange {
                field: "payload type",
                value: self.payload_type.into(),
                max: MAX_PAYLOAD_TYPE.into(),
            });
        }
        if self.csrcs.len() > MAX_CSRC {
            return Err(Error::FieldOutOfRange {
                field: "CSRC count",
                value: self.csrcs.len() as u64,
                max: MAX_CSRC as u64,
            });
        }
        let ext_words = match self.extension {
            Some((_, data)) => {
                let words = data.len() / 4;
                if data.len() % 4 != 0 || words > usize::from(u16::MAX) {
                    return Err(Error::FieldOutOfRange {
                        field: "extension length",
                        value: data.len() as u64,
                        max: 4 * u64::from(u16::MAX),
                    });
                }
                words as u16
            }
            None => 0,
        };
        let needed = self.packet_len(payload.len());
        if out.len() < needed {
            return Err(Error::BufferTooSmall {
                needed,
                available: out.len(),
            });
        }
        out[0] = (VERSION << 6)
            | (u8::from(self.padding > 0) << 5)
            | (u8::from(self.extension.is_some()) << 4)
            | self.csrcs.len() as u8;
        out[1] = (u8::from(self.marker) << 7) | self.payload_type;
        out[2..4].copy_from_slice(&self.sequence_number.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        let mut at = FIXED_HEADER_LEN;
        for csrc in self.csrcs {
            out[at..at + 4].copy_from_slice(&csrc.to_be_bytes());
            at += 4;
        }
        if let Some((profile, data)) = self.extension {
            out[at..at + 2].copy_from_slice(&profile.to_be_bytes());
            out[at + 2..at + 4].copy_from_slice(&ext_words.to_be_bytes());
            at += 4;
            out[at..at + data.len()].copy_from_slice(data);
            at += data.len();
        }
        out[at..at + payload.len()].copy_from_slice(payload);
        at += payload.len();
        if self.padding > 0 {
            let end = at + usize::from(self.padding);
            out[at..end].fill(0);
            out[end - 1] = self.padding;
            at = end;
        }
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // A PCMU packet: V=2, M=1, PT=0, seq 0x1234, ts 0xdeadbeef, ssrc 0x01020304, payload 4 bytes.
    const SIMPLE: [u8; 16] = [
        0x80, 0x80, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0xff, 0x7f, 0x00,
        0x80,
    ];

    #[test]
    fn parses_fixed_header() {
        let p = RtpPacket::parse(&SIMPLE).unwrap();
        assert_eq!(p.version(), 2);
        assert!(p.marker());
        assert!(!p.has_padding() && !p.has_extension());
        assert_eq!(p.payload_type(), 0);
        assert_eq!(p.sequence_number(), 0x1234);
        assert_eq!(p.timestamp(), 0xdead_beef);
        assert_eq!(p.ssrc(), 0x0102_0304);
        assert_eq!(p.csrc_count(), 0);
        assert_eq!(p.payload(), &[0xff, 0x7f, 0x00, 0x80]);
        assert_eq!(p.header_len(), 12);
        assert_eq!(p.extension(), None);
    }

    #[test]
    fn parses_csrc_extension_padding() {
        let mut b = vec![0xb2, 0x08, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9];
        b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]); // 2 CSRCs
        b.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0]); // one-word extension
        b.extend_from_slice(&[1, 2, 3]); // payload
        b.extend_from_slice(&[0, 0, 3]); // 3 bytes padding
        let p = RtpPacket::parse(&b).unwrap();
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(p.extension(), Some((0xbede, &[0x10, 0xaa, 0, 0][..])));
        assert_eq!(p.payload(), &[1, 2, 3]);
        assert_eq!(p.padding_len(), 3);
        assert_eq!(p.payload_type(), 8);
        assert!(!p.marker());
    }

    #[test]
    fn rejects_malformed() {
        assert!(matches!(
            RtpPacket::parse(&SIMPLE[..11]),
            Err(Error::Truncated { needed: 12, .. })
        ));
        let mut v1 = SIMPLE;
        v1[0] = 0x40;
        assert!(matches!(
            RtpPacket::parse(&v1),
            Err(Error::UnsupportedVersion { version: 1, .. })
        ));
        let mut cc = SIMPLE;
        cc[0] = 0x82; // 2 CSRCs need 20 bytes
        assert!(matches!(
            RtpPacket::parse(&cc),
            Err(Error::Truncated { needed: 20, .. })
        ));
        let mut ext = SIMPLE;
        ext[0] = 0x90; // extension header at 12..16 says 0x0080 words
        assert!(matches!(
            RtpPacket::parse(&ext),
            Err(Error::Truncated { .. })
        ));
        let mut pad = SIMPLE;
        pad[0] = 0xa0;
        pad[15] = 5; // more padding than the 4 bytes after the header
        assert!(matches!(
            RtpPacket::parse(&pad),
            Err(Error::InvalidPadding { padding: 5, .. })
        ));
        pad[15] = 0;
        assert!(matches!(
            RtpPacket::parse(&pad),
            Err(Error::InvalidPadding { padding: 0, .. })
        ));
        let mut only_header = [0u8; 12];
        only_header.copy_from_slice(&SIMPLE[..12]);
        only_header[0] = 0xa0; // padding bit, no byte after the header
        assert!(matches!(
            RtpPacket::parse(&only_header),
            Err(Error::InvalidPadding { .. })
        ));
    }

    #[test]
    fn builder_roundtrip_and_errors() {
        let mut buf = [0u8; 64];
        let b = RtpBuilder::new(96, 65535, u32::MAX, 7)
            .marker(true)
            .csrcs(&[10, 11])
            .extension(0xbede, &[1, 2, 3, 4])
            .padding(4);
        let n = b.write(&mut buf, &[9, 9, 9]).unwrap();
        assert_eq!(n, b.packet_len(3));
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        assert_eq!(p.payload_type(), 96);
        assert!(p.marker());
        assert_eq!(p.sequence_number(), 65535);
        assert_eq!(p.timestamp(), u32::MAX);
        assert_eq!(p.ssrc(), 7);
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![10, 11]);
        assert_eq!(p.extension(), Some((0xbede, &[1, 2, 3, 4][..])));
        assert_eq!(p.payload(), &[9, 9, 9]);
        assert_eq!(p.padding_len(), 4);

        let mut small = [0u8; 12];
        assert!(matches!(
            RtpBuilder::new(0, 0, 0, 0).write(&mut small, &[1]),
            Err(Error::BufferTooSmall {
                needed: 13,
                available: 12
            })
        ));
        assert!(matches!(
            RtpBuilder::new(128, 0, 0, 0).write(&mut buf, &[]),
            Err(Error::FieldOutOfRange { .. })
        ));
        assert!(matches!(
            RtpBuilder::new(0, 0, 0, 0)
                .csrcs(&[0; 16])
                .write(&mut buf, &[]),
            Err(Error::FieldOutOfRange { .. })
        ));
        assert!(matches!(
            RtpBuilder::new(0, 0, 0, 0)
                .extension(1, &[1, 2, 3])
                .write(&mut buf, &[]),
            Err(Error::FieldOutOfRange { .. })
        ));
        assert_eq!(&SIMPLE[..], {
            let n = RtpBuilder::new(0, 0x1234, 0xdead_beef, 0x0102_0304)
                .marker(true)
                .write(&mut buf, &SIMPLE[12..])
                .unwrap();
            &buf[..n]
        });
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(p) = RtpPacket::parse(&bytes) {
                prop_assert!(p.header_len() + p.payload().len() + p.padding_len() == bytes.len());
                let _ = (p.csrcs().count(), p.extension());
            }
        }

        #[test]
        fn build_then_parse(pt in 0u8..128, seq: u16, ts: u32, ssrc: u32, marker: bool,
                            csrcs in proptest::collection::vec(any::<u32>(), 0..16),
                            payload in proptest::collection::vec(any::<u8>(), 0..200),
                            padding: u8) {
            let mut buf = [0u8; 512];
            let b = RtpBuilder::new(pt, seq, ts, ssrc).marker(marker).csrcs(&csrcs).padding(padding);
            let n = b.write(&mut buf, &payload).unwrap();
            let p = RtpPacket::parse(&buf[..n]).unwrap();
            prop_assert_eq!(p.payload_type(), pt);
            prop_assert_eq!(p.sequence_number(), seq);
            prop_assert_eq!(p.timestamp(), ts);
            prop_assert_eq!(p.ssrc(), ssrc);
            prop_assert_eq!(p.marker(), marker);
            prop_assert_eq!(p.csrcs().collect::<Vec<_>>(), csrcs);
            prop_assert_eq!(p.payload(), &payload[..]);
        }
    }
}
