//! `switchboard-media`: the sans-IO media core of Switchboard.
//!
//! Everything here is plain Rust state and byte-slice processing: no sockets, no threads, no
//! clock reads. Functions that need time take it as an argument (a [`core::time::Duration`]
//! since the start of a stream, or an NTP timestamp), so a 60 s call can be replayed in
//! virtual time in microseconds and deterministically.
//!
//! Modules, one concept each:
//!
//! - [`rtp`]: zero-copy RTP packet view ([`rtp::RtpPacket`]) and a builder writing into a
//!   caller-provided buffer.
//! - [`rtcp`]: compound RTCP parsing (SR, RR, SDES, BYE; unknown types skipped) into zero-copy
//!   views; SR/RR/SDES/BYE writers; NTP timestamp helpers.
//! - [`g711`]: ITU-T G.711 μ-law and A-law encode/decode, slice-at-a-time without allocation.
//! - [`codec`]: a stream's codec (PCMU, PCMA, Opus on its dynamic payload type), the one
//!   mapping from SDP, and the Opus encoder/decoder at 8 kHz (concealment, in-band FEC).
//! - [`stats`]: per-stream receive statistics (RFC 3550 A.1 sequence validation, A.3 loss,
//!   §6.4.1 jitter), interval reports for RTCP and quality updates, RTT from LSR/DLSR.
//! - [`pcap`]: zero-copy pcap / pcapng reader down to UDP payloads, and a small pcap writer.
//! - [`analyze`]: the core of `switchboard rtp analyze`: RTP streams found in a capture, with
//!   loss and jitter by Wireshark's definitions.
//! - [`amd`]: answering-machine detection: a sans-IO detector (adaptive VAD, word cadence,
//!   Goertzel beep bank, fax tones) with Twilio-compatible verdicts, and the file / corpus
//!   helpers behind `switchboard amd classify` and `amd eval`.
//! - [`wav`]: a small WAV reader (integer, float, μ-law, A-law PCM; first channel or a
//!   downmix).
//! - [`playback`]: prompts (WAV at any rate, raw G.711) decoded once into 8 kHz clips, and a
//!   bounded, thread-safe prompt cache.
//! - [`mos`]: the ITU-T G.107 E-model (simplified, as in rtpengine/VoIPmonitor) giving R and
//!   MOS from delay, loss and codec.
//!
//! Hot-path rule: parsing, building and statistics never allocate per packet; they work on
//! borrowed slices and fixed-size state.
//!
//! Errors: the crate has a single error enum, [`Error`]: RTP/RTCP parsing, the builders and
//! writers into caller buffers, G.711, capture-file reading ([`pcap::CaptureReader`],
//! [`pcap::udp_packets`], [`analyze::analyze_capture`]), WAV reading ([`wav`]) and the AMD
//! file helpers ([`amd::cli`]) all return it; I/O failures carry their
//! [`std::io::ErrorKind`] so the enum stays `Copy`. The only other error
//! type that appears is [`std::io::Error`], passed through unchanged from the
//! [`std::io::Write`] sink of [`pcap::PcapWriter`].

pub mod amd;
pub mod analyze;
pub mod codec;
pub mod dtmf;
pub mod g711;
pub mod mos;
pub mod pcap;
pub mod playback;
pub mod rtcp;
pub mod rtp;
pub mod runtime;
pub mod session;
pub mod stats;
pub mod wav;

use core::fmt;

/// Which wire protocol a parse error refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// An RTP data packet.
    Rtp,
    /// An RTCP control packet (one packet of a compound packet).
    Rtcp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Rtp => "RTP",
            Protocol::Rtcp => "RTCP",
        })
    }
}

/// The single error enum of this crate.
///
/// Packet parse errors carry the protocol and the sizes involved, and capture-file errors the
/// file offset, so that a caller can log or count them by kind without string matching. A
/// malformed packet or capture file always yields one of these; it never panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ends before a structure that the header announces.
    #[error("{protocol} packet truncated: {len} bytes, at least {needed} needed")]
    Truncated {
        /// Protocol being parsed.
        protocol: Protocol,
        /// Bytes available.
        len: usize,
        /// Bytes the header requires.
        needed: usize,
    },
    /// The version field is not 2.
    #[error("{protocol} version {version} is not supported (expected 2)")]
    UnsupportedVersion {
        /// Protocol being parsed.
        protocol: Protocol,
        /// Version found on the wire.
        version: u8,
    },
    /// The padding bit is set but the padding count is 0 or larger than the space after the
    /// header.
    #[error("{protocol} padding of {padding} bytes is invalid ({available} bytes available)")]
    InvalidPadding {
        /// Protocol being parsed.
        protocol: Protocol,
        /// Padding count from the last byte.
        padding: usize,
        /// Bytes available for payload plus padding.
        available: usize,
    },
    /// A length or count field is inconsistent with the bytes of the packet (RTCP length
    /// word, report count, SDES chunk or item length, BYE reason length).
    #[error("{protocol} {field} is inconsistent: needs {needed} bytes, {available} available")]
    InvalidLength {
        /// Protocol being parsed.
        protocol: Protocol,
        /// The field at fault.
        field: &'static str,
        /// Bytes the field requires.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The caller's output buffer is too small for what must be written.
    #[error("output buffer too small: {needed} bytes needed, {available} available")]
    BufferTooSmall {
        /// Bytes required.
        needed: usize,
        /// Bytes provided.
        available: usize,
    },
    /// A value given to a builder does not fit its wire field.
    #[error("{field} value {value} out of range (max {max})")]
    FieldOutOfRange {
        /// The field at fault.
        field: &'static str,
        /// The value given.
        value: u64,
        /// The largest allowed value.
        max: u64,
    },
    /// A capture file starts with neither a pcap magic nor a pcapng Section Header Block.
    #[error("not a pcap or pcapng file (magic {magic:#010x})")]
    UnknownCaptureFormat {
        /// The first four bytes of the file, read big-endian.
        magic: u32,
    },
    /// A capture-file header or record announces more bytes than the file holds.
    #[error("capture truncated at offset {offset}: {needed} bytes needed, {available} left")]
    CaptureTruncated {
        /// Offset of the structure in the file.
        offset: usize,
        /// Bytes it needs.
        needed: usize,
        /// Bytes left from the offset.
        available: usize,
    },
    /// A pcapng block is malformed (length not a multiple of 4, too small, trailer mismatch,
    /// unknown byte-order magic).
    #[error("malformed pcapng block at offset {offset}: {reason}")]
    BadPcapngBlock {
        /// Offset of the block.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A pcapng packet refers to an interface that no Interface Description Block described.
    #[error("pcapng packet at offset {offset} refers to unknown interface {interface}")]
    UnknownInterface {
        /// Offset of the block.
        offset: usize,
        /// Interface id in the block.
        interface: u32,
    },
    /// A file is not a WAV file, or its RIFF structure is malformed.
    #[error("not a valid WAV file (at offset {offset}): {reason}")]
    InvalidWav {
        /// Offset of the faulty structure.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A WAV file uses an encoding the reader does not decode.
    #[error("unsupported WAV encoding: format tag {format_tag:#06x}, {bits_per_sample} bits")]
    UnsupportedWavFormat {
        /// The `fmt ` chunk's format tag (or the extensible SubFormat's).
        format_tag: u16,
        /// Bits per sample.
        bits_per_sample: u16,
    },
    /// Reading a file failed.
    #[error("I/O error: {kind}")]
    Io {
        /// The kind of the underlying [`std::io::Error`].
        kind: std::io::ErrorKind,
    },
    /// A line of an AMD corpus `labels.csv` is malformed.
    #[error("labels.csv line {line}: {reason}")]
    InvalidLabels {
        /// 1-based line number (0: the file as a whole).
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// An AMD mode name is neither `enable` nor `detect-message-end`.
    #[error("unknown AMD mode (expected enable or detect-message-end)")]
    UnknownAmdMode,
    /// A telephone-event (RFC 4733) payload is shorter than 4 bytes.
    #[error("telephone-event payload of {len} bytes (4 needed)")]
    InvalidTelephoneEvent {
        /// Payload length.
        len: usize,
    },
    /// A character that is not a DTMF key (0-9, *, #, A-D).
    #[error("{digit:?} is not a DTMF digit")]
    InvalidDtmfDigit {
        /// The character given.
        digit: char,
    },
    /// Every port of the media port range is in use.
    #[error("no free RTP port pair in {min}-{max}")]
    NoFreePort {
        /// Lowest port of the range.
        min: u16,
        /// Highest port of the range.
        max: u16,
    },
    /// A media loop holds as many streams as the port range allows.
    #[error("media loop full: {max} streams")]
    TooManyStreams {
        /// Streams per loop.
        max: u64,
    },
    /// The media runtime configuration is unusable.
    #[error("invalid media runtime configuration: {reason}")]
    InvalidRuntimeConfig {
        /// What is wrong.
        reason: &'static str,
    },
    /// The media runtime has shut down.
    #[error("media runtime stopped")]
    RuntimeStopped,
    /// The stream is closed or belongs to another runtime.
    #[error("unknown or closed media stream")]
    UnknownStream,
    /// Bridging needs both streams on one media loop (open the second with `colocate_with`).
    #[error("cannot bridge streams of different media loops")]
    BridgeAcrossLoops,
    /// The Opus codec refused a packet or a call (malformed packet, bad length).
    #[error("Opus: {reason}")]
    Opus {
        /// What is wrong.
        reason: &'static str,
    },
    /// A prompt file is neither a WAV file nor raw G.711 named by its extension.
    #[error("unknown audio format (expected WAV, or raw G.711 named .ulaw/.alaw)")]
    UnknownAudioFormat,
}

/// Result alias of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;
