//! RFC 4733 telephone events (DTMF), sans-IO.
//!
//! - [`TelephoneEvent`]: the 4-byte payload (event, end bit, volume, duration), parsed and
//!   written without allocating.
//! - [`DtmfSender`]: one digit as the packet sequence of RFC 4733 §2.5.1: a first packet with
//!   the RTP marker bit, updates every packet interval with a growing duration, and the end
//!   packet (E bit) sent three times. Every packet of the event carries the same RTP timestamp
//!   (the event start); the caller's RTP session gives each one the next sequence number
//!   ([`crate::session::RtpSession::write_dtmf`]).
//! - [`DtmfReceiver`]: turns incoming telephone-event packets into digits, one per event. An
//!   event is identified by its RTP timestamp, so the repeated updates and the three end
//!   packets of one key press yield a single digit, while the same key pressed twice (two
//!   timestamps) yields two.

use core::time::Duration;

use crate::{Error, Result};

/// The payload type most offers use for `telephone-event/8000` (it is dynamic: take the one
/// negotiated in SDP).
pub const DEFAULT_PAYLOAD_TYPE: u8 = 101;
/// Size of a telephone-event payload.
pub const PAYLOAD_LEN: usize = 4;
/// How many times the end packet is sent (RFC 4733 §2.5.1.4).
pub const END_REPEATS: u8 = 3;
/// Largest volume value (-63 dBm0).
pub const MAX_VOLUME: u8 = 63;

/// The event code of a DTMF key (`0`-`9`, `*`, `#`, `A`-`D`; RFC 4733 §3.2), case-insensitive.
pub fn digit_to_event(digit: char) -> Option<u8> {
    Some(match digit {
        '0'..='9' => digit as u8 - b'0',
        '*' => 10,
        '#' => 11,
        'A'..='D' => digit as u8 - b'A' + 12,
        'a'..='d' => digit as u8 - b'a' + 12,
        _ => return None,
    })
}

/// The key of a DTMF event code (0-15), `None` for other events (e.g. 16, flash).
pub fn event_to_digit(event: u8) -> Option<char> {
    Some(match event {
        0..=9 => char::from(b'0' + event),
        10 => '*',
        11 => '#',
        12..=15 => char::from(b'A' + event - 12),
        _ => return None,
    })
}

/// A telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (0-15 for DTMF).
    pub event: u8,
    /// The E bit: this packet ends the event.
    pub end: bool,
    /// Power level as a positive number of -dBm0 (0..=63).
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first 4 bytes of an RTP payload; extra bytes (redundant events) are ignored.
    pub fn parse(payload: &[u8]) -> Result<Self> {
        let Some(b) = payload.get(..PAYLOAD_LEN) else {
            return Err(Error::InvalidTelephoneEvent { len: payload.len() });
        };
        Ok(Self {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3f,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// Writes the payload to the front of `out`; returns 4.
    pub fn write(&self, out: &mut [u8]) -> Result<usize> {
        let available = out.len();
        let Some(b) = out.get_mut(..PAYLOAD_LEN) else {
            return Err(Error::BufferTooSmall {
                needed: PAYLOAD_LEN,
                available,
            });
        };
        b[0] = self.event;
        b[1] = (u8::from(self.end) << 7) | (self.volume & 0x3f);
        b[2..4].copy_from_slice(&self.duration.to_be_bytes());
        Ok(PAYLOAD_LEN)
    }
}

/// One packet of an outgoing event: the payload and whether it carries the RTP marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacket {
    /// The telephone-event payload.
    pub event: TelephoneEvent,
    /// Set on the first packet of the event.
    pub marker: bool,
}

/// Produces the packets of one digit, one per packet interval (see the module docs).
#[derive(Debug, Clone)]
pub struct DtmfSender {
    event: u8,
    volume: u8,
    /// Total duration of the tone in timestamp units.
    total: u16,
    /// Duration added per packet.
    step: u16,
    /// Duration reported so far (0 before the first packet).
    sent: u16,
    ends_sent: u8,
}

impl DtmfSender {
    /// A digit held for `duration` (rounded up to whole packet intervals, at least one)
    /// at `volume` (-dBm0, clamped to 63), with `clock_rate` and packet interval `ptime`.
    pub fn new(
        digit: char,
        duration: Duration,
        volume: u8,
        clock_rate: u32,
        ptime: Duration,
    ) -> Result<Self> {
        let event = digit_to_event(digit).ok_or(Error::InvalidDtmfDigit { digit })?;
        let units = |d: Duration| d.as_micros() * u128::from(clock_rate) / 1_000_000;
        let step = units(ptime);
        if step == 0 || step > u128::from(u16::MAX) {
            return Err(Error::FieldOutOfRange {
                field: "telephone-event packet duration",
                value: u64::try_from(step).unwrap_or(u64::MAX),
                max: u64::from(u16::MAX),
            });
        }
        let packets = units(duration).div_ceil(step).max(1);
        let total = packets * step;
        // RFC 4733 §2.5.2.1 segments longer events; a key press never needs that.
        let total = u16::try_from(total).map_err(|_| Error::FieldOutOfRange {
            field: "telephone-event duration",
            value: u64::try_from(total).unwrap_or(u64::MAX),
            max: u64::from(u16::MAX),
        })?;
        Ok(Self {
            event,
            volume: volume.min(MAX_VOLUME),
            total,
            step: step as u16,
            sent: 0,
            ends_sent: 0,
        })
    }

    /// The event code.
    pub fn event(&self) -> u8 {
        self.event
    }

    /// Total packets this digit produces.
    pub fn packet_count(&self) -> usize {
        usize::from(self.total / self.step) + usize::from(END_REPEATS)
    }

    /// Whether every packet has been produced.
    pub fn is_done(&self) -> bool {
        self.ends_sent >= END_REPEATS
    }

    /// The next packet, or `None` when the digit is finished.
    pub fn next_packet(&mut self) -> Option<DtmfPacket> {
        if self.is_done() {
            return None;
        }
        let marker = self.sent == 0;
        if self.sent < self.total {
            self.sent += self.step;
        }
        // The last update is itself the first end packet.
        let end = self.sent >= self.total;
        if end {
            self.ends_sent += 1;
        }
        Some(DtmfPacket {
            event: TelephoneEvent {
                event: self.event,
                end,
                volume: self.volume,
                duration: self.sent,
            },
            marker,
        })
    }
}

/// A digit received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfDigit {
    /// The key, or `None` for a non-DTMF event code.
    pub digit: Option<char>,
    /// The event code.
    pub event: u8,
    /// RTP timestamp of the event start (its identity).
    pub timestamp: u32,
}

/// Decodes incoming telephone events into digits, deduplicated by RTP timestamp.
#[derive(Debug, Clone, Default)]
pub struct DtmfReceiver {
    last: Option<(u32, u8)>,
}

impl DtmfReceiver {
    /// A receiver that has seen no event.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accounts one telephone-event packet (its RTP timestamp and payload); returns the digit
    /// when this packet is the first one seen of a new event. A lost start packet does not lose
    /// the digit: any packet of the event (an update, an end packet) reports it.
    pub fn on_packet(&mut self, timestamp: u32, payload: &[u8]) -> Result<Option<DtmfDigit>> {
        let ev = TelephoneEvent::parse(payload)?;
        if self.last == Some((timestamp, ev.event)) {
            return Ok(None);
        }
        self.last = Some((timestamp, ev.event));
        Ok(Some(DtmfDigit {
            digit: event_to_digit(ev.event),
            event: ev.event,
            timestamp,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PTIME: Duration = Duration::from_millis(20);

    #[test]
    fn digit_codes_round_trip() {
        for (i, c) in "0123456789*#ABCD".chars().enumerate() {
            assert_eq!(digit_to_event(c), Some(i as u8));
            assert_eq!(event_to_digit(i as u8), Some(c));
        }
        assert_eq!(digit_to_event('b'), Some(13));
        assert_eq!(digit_to_event('E'), None);
        assert_eq!(event_to_digit(16), None);
    }

    #[test]
    fn payload_wire_format() {
        // RFC 4733 §2.3 layout: event 5, E set, volume 10, duration 800.
        let ev = TelephoneEvent {
            event: 5,
            end: true,
            volume: 10,
            duration: 800,
        };
        let mut buf = [0u8; 4];
        assert_eq!(ev.write(&mut buf), Ok(4));
        assert_eq!(buf, [5, 0x8a, 0x03, 0x20]);
        assert_eq!(TelephoneEvent::parse(&buf), Ok(ev));
        assert_eq!(
            TelephoneEvent::parse(&buf[..3]),
            Err(Error::InvalidTelephoneEvent { len: 3 })
        );
        assert!(ev.write(&mut [0u8; 3]).is_err());
        // The reserved bit is ignored on parse.
        assert_eq!(TelephoneEvent::parse(&[5, 0xca, 3, 0x20]), Ok(ev));
    }

    #[test]
    fn digit_packet_sequence() {
        // 100 ms at 8 kHz with 20 ms packets: 5 updates (the 5th is the first end packet) and
        // two more end packets.
        let mut s = DtmfSender::new('7', Duration::from_millis(100), 10, 8000, PTIME).unwrap();
        assert_eq!(s.packet_count(), 8);
        let packets: Vec<_> = core::iter::from_fn(|| s.next_packet()).collect();
        assert_eq!(packets.len(), 7);
        assert!(packets[0].marker);
        assert!(packets[1..].iter().all(|p| !p.marker));
        let durations: Vec<u16> = packets.iter().map(|p| p.event.duration).collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
        let ends: Vec<bool> = packets.iter().map(|p| p.event.end).collect();
        assert_eq!(ends, [false, false, false, false, true, true, true]);
        assert!(packets
            .iter()
            .all(|p| p.event.event == 7 && p.event.volume == 10));
        assert!(s.is_done());
        assert_eq!(s.next_packet(), None);
    }

    #[test]
    fn sender_rounding_and_errors() {
        let mut s = DtmfSender::new('#', Duration::from_millis(1), 99, 8000, PTIME).unwrap();
        let first = s.next_packet().unwrap();
        assert!(first.marker && first.event.end && first.event.duration == 160);
        assert_eq!(first.event.volume, MAX_VOLUME);
        assert_eq!(
            DtmfSender::new('x', PTIME, 10, 8000, PTIME).err(),
            Some(Error::InvalidDtmfDigit { digit: 'x' })
        );
        assert!(DtmfSender::new('1', Duration::from_secs(10), 10, 8000, PTIME).is_err());
        assert!(DtmfSender::new('1', PTIME, 10, 8000, Duration::ZERO).is_err());
    }

    #[test]
    fn receiver_dedupes_by_timestamp() {
        let mut tx = DtmfSender::new('5', Duration::from_millis(60), 10, 8000, PTIME).unwrap();
        let mut rx = DtmfReceiver::new();
        let mut digits = Vec::new();
        let mut buf = [0u8; 4];
        // One key press at timestamp 1000: 3 updates + 2 extra ends, all deduped.
        while let Some(p) = tx.next_packet() {
            p.event.write(&mut buf).unwrap();
            digits.extend(rx.on_packet(1000, &buf).unwrap());
        }
        // The same key again, a new event at another timestamp, start packet lost: the end
        // packet still reports it.
        let end = TelephoneEvent {
            event: 5,
            end: true,
            volume: 10,
            duration: 480,
        };
        end.write(&mut buf).unwrap();
        digits.extend(rx.on_packet(2000, &buf).unwrap());
        digits.extend(rx.on_packet(2000, &buf).unwrap());
        // A different key at a third timestamp.
        TelephoneEvent { event: 11, ..end }.write(&mut buf).unwrap();
        digits.extend(rx.on_packet(3000, &buf).unwrap());
        let got: Vec<_> = digits.iter().map(|d| (d.digit, d.timestamp)).collect();
        assert_eq!(
            got,
            [(Some('5'), 1000), (Some('5'), 2000), (Some('#'), 3000)]
        );
        assert!(rx.on_packet(4000, &[1, 2]).is_err());
    }
}
