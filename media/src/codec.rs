//! The voice codecs a stream can carry, and the Opus encoder and decoder.
//!
//! - [`Codec`]: PCMU, PCMA (static payload types 0 and 8, 8 kHz RTP clock) or Opus on its
//!   negotiated dynamic payload type (RFC 7587: 48 kHz RTP clock whatever the audio
//!   bandwidth, so a 20 ms frame advances the timestamp by 960). [`Codec::from_rtpmap`] maps
//!   an SDP `a=rtpmap` (what the SIP core negotiated) to one; it is the only such mapping.
//! - [`opus_packet_samples`]: the duration of an Opus packet from its TOC byte (RFC 6716
//!   §3.1), for timestamps of relayed packets.
//! - [`OpusEncoder`] / [`OpusDecoder`]: Opus at 8 kHz mono PCM, the rate all audio has inside
//!   Switchboard (AMD, recording, prompts, DTMF detection), so no resampler is needed: Opus
//!   takes and produces 8 kHz itself. They wrap `opus-rs`, a pure-Rust port of libopus 1.6
//!   (checked against libopus through baresip in the interop tests). State is allocated once
//!   when a stream gets the codec; encoding, decoding and concealment allocate nothing.
//!   A panic inside the codec on hostile input is caught and turned into [`Error::Opus`] (the
//!   decoder is then rebuilt), so a packet can never take a media loop down.

use core::panic::AssertUnwindSafe;

use crate::g711::Law;
use crate::mos::{self, CodecImpairment};
use crate::session::FRAME_SAMPLES;
use crate::{Error, Result};

/// RTP clock rate of Opus (RFC 7587 §4.1), whatever the sample rate of the audio.
pub const OPUS_CLOCK_RATE: u32 = 48_000;
/// The payload type most offers use for Opus (it is dynamic: take the negotiated one).
pub const DEFAULT_OPUS_PAYLOAD_TYPE: u8 = 111;
/// PCM rate inside Switchboard.
pub const PCM_RATE: u32 = 8000;
/// The longest Opus packet, 120 ms, in 8 kHz samples.
pub const MAX_OPUS_SAMPLES: usize = 960;
/// A buffer size that holds any Opus packet (RFC 6716 §3.4: 1275 bytes of frames plus
/// framing).
pub const MAX_OPUS_PACKET: usize = 1500;

/// A stream's voice codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 μ-law, payload type 0.
    Pcmu,
    /// G.711 A-law, payload type 8.
    Pcma,
    /// Opus (mono inside, `opus/48000/2` in SDP) on a dynamic payload type.
    Opus {
        /// The negotiated payload type.
        payload_type: u8,
    },
}

impl From<Law> for Codec {
    fn from(law: Law) -> Self {
        match law {
            Law::Mu => Codec::Pcmu,
            Law::A => Codec::Pcma,
        }
    }
}

impl Codec {
    /// Opus on `payload_type`.
    pub const fn opus(payload_type: u8) -> Self {
        Codec::Opus { payload_type }
    }

    /// The RTP payload type.
    pub const fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::Opus { payload_type } => payload_type,
        }
    }

    /// The RTP timestamp clock rate: 8000 for G.711, 48000 for Opus.
    pub const fn clock_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => PCM_RATE,
            Codec::Opus { .. } => OPUS_CLOCK_RATE,
        }
    }

    /// RTP timestamp units in one 20 ms frame (160 or 960).
    pub const fn frame_ticks(self) -> u32 {
        self.clock_rate() / 50
    }

    /// The G.711 law, if the codec is G.711.
    pub const fn law(self) -> Option<Law> {
        match self {
            Codec::Pcmu => Some(Law::Mu),
            Codec::Pcma => Some(Law::A),
            Codec::Opus { .. } => None,
        }
    }

    /// Whether payloads of the two codecs can be relayed unchanged: the same G.711 law, or
    /// Opus on both sides whatever the payload types.
    pub const fn same_encoding(self, other: Codec) -> bool {
        matches!(
            (self, other),
            (Codec::Pcmu, Codec::Pcmu)
                | (Codec::Pcma, Codec::Pcma)
                | (Codec::Opus { .. }, Codec::Opus { .. })
        )
    }

    /// Whether the codec is Opus.
    pub const fn is_opus(self) -> bool {
        matches!(self, Codec::Opus { .. })
    }

    /// The encoding name of SDP (`PCMU`, `PCMA`, `opus`), also what call records store.
    pub const fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::Opus { .. } => "opus",
        }
    }

    /// The E-model values for MOS ([`crate::mos`]): G.711 with concealment, or Opus.
    pub const fn impairment(self) -> CodecImpairment {
        match self {
            Codec::Pcmu | Codec::Pcma => mos::G711_PLC,
            Codec::Opus { .. } => mos::OPUS,
        }
    }

    /// The codec of an SDP `a=rtpmap:<payload_type> <name>/<clock_rate>`, if Switchboard
    /// carries it: PCMU/8000, PCMA/8000 (on any payload type the SDP gave them) or
    /// opus/48000 (names case-insensitive). Engine and simulator map what SIP negotiated
    /// through this one function.
    pub fn from_rtpmap(name: &str, clock_rate: u32, payload_type: u8) -> Option<Codec> {
        if payload_type > 127 {
            return None;
        }
        if name.eq_ignore_ascii_case("PCMU") && clock_rate == PCM_RATE {
            Some(Codec::Pcmu)
        } else if name.eq_ignore_ascii_case("PCMA") && clock_rate == PCM_RATE {
            Some(Codec::Pcma)
        } else if name.eq_ignore_ascii_case("opus") && clock_rate == OPUS_CLOCK_RATE {
            Some(Codec::Opus { payload_type })
        } else {
            None
        }
    }

    /// The duration of `payload` in RTP timestamp units: its length for G.711, the TOC's
    /// frame count times frame length for Opus.
    pub fn payload_ticks(self, payload: &[u8]) -> Result<u32> {
        match self {
            Codec::Pcmu | Codec::Pcma => Ok(payload.len() as u32),
            Codec::Opus { .. } => opus_packet_samples(payload, OPUS_CLOCK_RATE),
        }
    }
}

/// Samples per channel at `rate` (8, 12, 16, 24 or 48 kHz) that an Opus packet decodes to,
/// from its TOC byte and, for code 3, the frame count byte (RFC 6716 §3.1–3.2). Errors for
/// an empty packet, a code 3 packet without its count byte or with 0 frames, more than
/// 120 ms, or a rate Opus does not decode to.
pub fn opus_packet_samples(packet: &[u8], rate: u32) -> Result<u32> {
    if !matches!(rate, 8000 | 12_000 | 16_000 | 24_000 | 48_000) {
        return Err(Error::Opus {
            reason: "unsupported Opus sample rate",
        });
    }
    let toc = *packet.first().ok_or(Error::Opus {
        reason: "empty Opus packet",
    })?;
    let config = toc >> 3;
    // Frame length in units of 2.5 ms (RFC 6716 Table 2).
    let units: u32 = match config {
        0..=11 => [4, 8, 16, 24][usize::from(config % 4)],
        12..=15 => [4, 8][usize::from(config % 2)],
        _ => [1, 2, 4, 8][usize::from(config % 4)],
    };
    let frames: u32 = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => {
            let count = packet.get(1).ok_or(Error::Opus {
                reason: "Opus code 3 packet without a frame count",
            })?;
            u32::from(count & 0x3f)
        }
    };
    let total = units * frames;
    if frames == 0 || total > 48 {
        return Err(Error::Opus {
            reason: "Opus packet of 0 frames or longer than 120 ms",
        });
    }
    Ok(total * rate / 400)
}

/// Encoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusSettings {
    /// Target bitrate, bits per second (VBR).
    pub bitrate_bps: u32,
    /// Complexity 0–10: CPU against quality (see the media bench for the cost).
    pub complexity: u8,
}

impl Default for OpusSettings {
    /// 16 kb/s (narrowband speech at the quality the E-model values of [`mos::OPUS`]
    /// assume), complexity 5.
    fn default() -> Self {
        Self {
            bitrate_bps: 16_000,
            complexity: 5,
        }
    }
}

fn codec_error(reason: &'static str) -> Error {
    Error::Opus { reason }
}

fn caught<T>(f: impl FnOnce() -> core::result::Result<T, &'static str>) -> Result<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(codec_error),
        Err(_) => Err(codec_error("the Opus codec panicked")),
    }
}

/// An Opus encoder for 20 ms frames of 8 kHz mono PCM.
pub struct OpusEncoder {
    inner: opus_rs::OpusEncoder,
    settings: OpusSettings,
}

impl core::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OpusEncoder")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl OpusEncoder {
    /// A VoIP-mode encoder (allocates its state, about 230 KiB).
    pub fn new(settings: OpusSettings) -> Result<Self> {
        let mut inner = opus_rs::OpusEncoder::new(PCM_RATE as i32, 1, opus_rs::Application::Voip)
            .map_err(codec_error)?;
        inner.bitrate_bps = settings.bitrate_bps.min(512_000) as i32;
        inner.complexity = i32::from(settings.complexity.min(10));
        inner.use_cbr = false;
        inner.use_inband_fec = false;
        Ok(Self { inner, settings })
    }

    /// The settings.
    pub fn settings(&self) -> OpusSettings {
        self.settings
    }

    /// Encodes one 20 ms frame into `out`; returns the packet length.
    pub fn encode(&mut self, pcm: &[i16; FRAME_SAMPLES], out: &mut [u8]) -> Result<usize> {
        let inner = &mut self.inner;
        caught(|| inner.encode_i16(pcm, FRAME_SAMPLES, out))
    }
}

/// An Opus decoder to 8 kHz mono PCM (stereo packets are mixed down), with concealment.
pub struct OpusDecoder {
    inner: opus_rs::OpusDecoder,
    scratch: [f32; MAX_OPUS_SAMPLES],
}

impl core::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OpusDecoder").finish_non_exhaustive()
    }
}

impl OpusDecoder {
    /// A decoder (allocates its state, about 175 KiB).
    pub fn new() -> Result<Self> {
        Ok(Self {
            inner: new_decoder()?,
            scratch: [0.0; MAX_OPUS_SAMPLES],
        })
    }

    /// Decodes one packet into the front of `out`; returns the number of samples (160 for a
    /// 20 ms packet). `out` must hold the packet's duration ([`MAX_OPUS_SAMPLES`] holds any).
    pub fn decode(&mut self, packet: &[u8], out: &mut [i16]) -> Result<usize> {
        if packet.is_empty() {
            // libopus's spelling of a lost frame; ours is `conceal`.
            return Err(codec_error("empty Opus packet"));
        }
        // A TOC byte alone is a DTX frame (the sender's silence): the decoder fills its
        // duration from its history, fading out.
        let n = opus_packet_samples(packet, PCM_RATE)? as usize;
        if out.len() < n {
            return Err(Error::BufferTooSmall {
                needed: n,
                available: out.len(),
            });
        }
        self.run(out, n, |d, scratch| d.decode(packet, n, scratch))
    }

    /// Conceals `samples` lost samples (a multiple of 20, i.e. of 2.5 ms, at most
    /// [`MAX_OPUS_SAMPLES`]) from the decoder's history (packet loss concealment) into the
    /// front of `out`.
    pub fn conceal(&mut self, samples: usize, out: &mut [i16]) -> Result<usize> {
        self.check_conceal(samples, out)?;
        self.run(out, samples, |d, scratch| d.decode(&[], samples, scratch))
    }

    /// Rebuilds the `samples` lost just before `next` (the packet after the loss) from the
    /// in-band FEC `next` carries, or conceals them when it carries none; `next` itself is
    /// not consumed (decode it next).
    pub fn decode_fec(&mut self, next: &[u8], samples: usize, out: &mut [i16]) -> Result<usize> {
        self.check_conceal(samples, out)?;
        self.run(out, samples, |d, scratch| {
            d.decode_fec(next, samples, scratch)
        })
    }

    fn check_conceal(&self, samples: usize, out: &[i16]) -> Result<()> {
        if samples == 0 || samples > MAX_OPUS_SAMPLES || samples % 20 != 0 {
            return Err(codec_error(
                "concealment length is not a multiple of 2.5 ms up to 120 ms",
            ));
        }
        if out.len() < samples {
            return Err(Error::BufferTooSmall {
                needed: samples,
                available: out.len(),
            });
        }
        Ok(())
    }

    fn run(
        &mut self,
        out: &mut [i16],
        samples: usize,
        f: impl FnOnce(
            &mut opus_rs::OpusDecoder,
            &mut [f32],
        ) -> core::result::Result<usize, &'static str>,
    ) -> Result<usize> {
        let Self { inner, scratch } = self;
        let scratch = &mut scratch[..samples];
        match std::panic::catch_unwind(AssertUnwindSafe(|| f(inner, scratch))) {
            Ok(Ok(n)) => {
                let n = n.min(samples);
                for (o, &s) in out.iter_mut().zip(&scratch[..n]) {
                    // `as` saturates (and maps NaN to 0): the float output may ring past ±1.
                    *o = (s * 32768.0).round() as i16;
                }
                Ok(n)
            }
            Ok(Err(reason)) => Err(codec_error(reason)),
            Err(_) => {
                // State after a panic is unknown: start over (allocates, only then).
                if let Ok(fresh) = new_decoder() {
                    self.inner = fresh;
                }
                Err(codec_error("the Opus decoder panicked"))
            }
        }
    }
}

fn new_decoder() -> Result<opus_rs::OpusDecoder> {
    opus_rs::OpusDecoder::new(PCM_RATE as i32, 1).map_err(codec_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Voice-like test signal: a harmonic tone with gliding pitch and syllable-rate amplitude.
    pub(crate) fn voice(n: usize) -> Vec<i16> {
        let tau = 2.0 * core::f64::consts::PI;
        let mut phase = 0.0f64;
        (0..n)
            .map(|i| {
                let t = i as f64 / 8000.0;
                // Pitch gliding 110–190 Hz, integrated into the phase.
                phase += tau * (150.0 + 40.0 * (tau * 0.7 * t).sin()) / 8000.0;
                let env = 0.55 + 0.45 * (tau * 3.0 * t).sin();
                // Harmonics 2–8 (the band telephony keeps), falling off.
                let s: f64 = (2..=8)
                    .map(|k| (f64::from(k) * phase).sin() / f64::from(k))
                    .sum();
                (env * s * 12_000.0) as i16
            })
            .collect()
    }

    /// Best normalized correlation of `b` against `a` over lags 0..max_lag.
    pub(crate) fn best_correlation(a: &[i16], b: &[i16], max_lag: usize) -> (f64, usize) {
        let mut best = (f64::MIN, 0);
        for lag in 0..max_lag {
            let n = a.len().min(b.len().saturating_sub(lag));
            let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
            for i in 0..n {
                let (x, y) = (f64::from(a[i]), f64::from(b[i + lag]));
                xy += x * y;
                xx += x * x;
                yy += y * y;
            }
            let c = xy / (xx * yy).sqrt().max(1.0);
            if c > best.0 {
                best = (c, lag);
            }
        }
        best
    }

    #[test]
    fn codec_table() {
        assert_eq!(Codec::from(Law::Mu), Codec::Pcmu);
        assert_eq!(Codec::from(Law::A).payload_type(), 8);
        let o = Codec::opus(111);
        assert_eq!(
            (o.payload_type(), o.clock_rate(), o.frame_ticks(), o.name()),
            (111, 48_000, 960, "opus")
        );
        assert_eq!(
            (Codec::Pcmu.clock_rate(), Codec::Pcmu.frame_ticks()),
            (8000, 160)
        );
        assert_eq!(Codec::Pcma.law(), Some(Law::A));
        assert_eq!(o.law(), None);
        assert_eq!(o.impairment(), mos::OPUS);
        assert_eq!(Codec::Pcmu.impairment(), mos::G711_PLC);
        assert_eq!(Codec::from_rtpmap("pcmu", 8000, 0), Some(Codec::Pcmu));
        assert_eq!(Codec::from_rtpmap("PCMA", 8000, 8), Some(Codec::Pcma));
        assert_eq!(Codec::from_rtpmap("OPUS", 48000, 96), Some(Codec::opus(96)));
        assert_eq!(Codec::from_rtpmap("opus", 16000, 96), None);
        assert_eq!(Codec::from_rtpmap("G729", 8000, 18), None);
        assert_eq!(Codec::from_rtpmap("opus", 48000, 200), None);
        assert_eq!(Codec::Pcmu.payload_ticks(&[0; 160]), Ok(160));
    }

    #[test]
    fn toc_durations() {
        // (TOC, count byte) → 48 kHz samples.
        let cases: &[(&[u8], u32)] = &[
            (&[1 << 3], 960),            // SILK NB 20 ms, 1 frame
            (&[0], 480),                 // SILK NB 10 ms
            (&[(3 << 3) | 1, 0], 5760),  // SILK 60 ms ×2 = 120 ms
            (&[(13 << 3) | 2], 1920),    // Hybrid 20 ms ×2
            (&[16 << 3], 120),           // CELT 2.5 ms
            (&[(31 << 3) | 3, 3], 2880), // CELT 20 ms ×3
        ];
        for &(p, want) in cases {
            assert_eq!(opus_packet_samples(p, 48_000), Ok(want), "{p:?}");
            assert_eq!(opus_packet_samples(p, 8000), Ok(want / 6), "{p:?}");
        }
        assert!(opus_packet_samples(&[], 48_000).is_err());
        assert!(opus_packet_samples(&[3], 48_000).is_err()); // code 3, no count
        assert!(opus_packet_samples(&[3, 0], 48_000).is_err()); // 0 frames
        assert!(opus_packet_samples(&[(3 << 3) | 3, 3], 48_000).is_err()); // 180 ms
        assert!(opus_packet_samples(&[8], 44_100).is_err());
        assert_eq!(Codec::opus(111).payload_ticks(&[8, 1, 2]), Ok(960));
    }

    #[test]
    fn round_trip_correlates() {
        let pcm = voice(8000 * 2);
        let mut enc = OpusEncoder::new(OpusSettings::default()).unwrap();
        let mut dec = OpusDecoder::new().unwrap();
        let mut packet = [0u8; MAX_OPUS_PACKET];
        let mut out = vec![0i16; pcm.len()];
        let mut bytes = 0;
        for (i, frame) in pcm.chunks_exact(FRAME_SAMPLES).enumerate() {
            let n = enc.encode(frame.try_into().unwrap(), &mut packet).unwrap();
            bytes += n;
            assert_eq!(opus_packet_samples(&packet[..n], 48_000), Ok(960));
            let m = dec
                .decode(&packet[..n], &mut out[i * FRAME_SAMPLES..])
                .unwrap();
            assert_eq!(m, FRAME_SAMPLES);
        }
        // About the configured 16 kb/s (40 bytes per 20 ms), far below G.711's 160.
        let per_frame = bytes / (pcm.len() / FRAME_SAMPLES);
        assert!(
            (10..=80).contains(&per_frame),
            "{per_frame} bytes per frame"
        );
        // The codec delays the signal by a few ms; past the first 100 ms it correlates.
        let (c, lag) = best_correlation(&pcm[800..], &out[800..], 200);
        assert!(c > 0.9, "correlation {c} at lag {lag}");
    }

    #[test]
    fn concealment_and_fec_fill_a_loss() {
        let pcm = voice(8000);
        let mut enc = OpusEncoder::new(OpusSettings::default()).unwrap();
        let mut dec = OpusDecoder::new().unwrap();
        let mut packet = [0u8; MAX_OPUS_PACKET];
        let mut out = [0i16; MAX_OPUS_SAMPLES];
        let mut energy_concealed = 0.0;
        for (i, frame) in pcm.chunks_exact(FRAME_SAMPLES).enumerate() {
            let n = enc.encode(frame.try_into().unwrap(), &mut packet).unwrap();
            if i % 10 == 5 {
                // Lost: concealed from the history, a voiced signal stays voiced.
                assert_eq!(dec.conceal(FRAME_SAMPLES, &mut out), Ok(FRAME_SAMPLES));
                energy_concealed += out[..FRAME_SAMPLES]
                    .iter()
                    .map(|&s| f64::from(s).abs())
                    .sum::<f64>();
                continue;
            }
            if i % 10 == 8 {
                // FEC path (falls back to concealment without LBRR); then the packet itself.
                assert_eq!(
                    dec.decode_fec(&packet[..n], FRAME_SAMPLES, &mut out),
                    Ok(FRAME_SAMPLES)
                );
            }
            dec.decode(&packet[..n], &mut out).unwrap();
        }
        assert!(
            energy_concealed / (5.0 * 160.0) > 100.0,
            "{energy_concealed}"
        );
        assert!(dec.conceal(30, &mut out).is_err());
        assert!(dec.conceal(2000, &mut out).is_err());
        assert!(dec.conceal(160, &mut [0i16; 10]).is_err());
    }

    #[test]
    fn bad_packets_are_errors_not_panics() {
        let mut dec = OpusDecoder::new().unwrap();
        let mut out = [0i16; MAX_OPUS_SAMPLES];
        assert!(dec.decode(&[], &mut out).is_err());
        // A DTX frame (TOC only, SILK 20 ms): its 20 ms, concealed.
        assert_eq!(dec.decode(&[8], &mut out), Ok(160));
        // Too small an output for a 120 ms packet.
        assert!(matches!(
            dec.decode(&[(3 << 3) | 1, 0, 0], &mut [0i16; 160]),
            Err(Error::BufferTooSmall { needed: 960, .. })
        ));
        // Random bytes, with and without a plausible TOC: never a panic.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut buf = [0u8; 300];
        for i in 0..3000 {
            let len = 2 + (next() % 298) as usize;
            for b in &mut buf[..len] {
                *b = next() as u8;
            }
            if i % 2 == 0 {
                buf[0] = 1 << 3;
            }
            let _ = dec.decode(&buf[..len], &mut out);
        }
        // The decoder still works afterwards.
        let mut enc = OpusEncoder::new(OpusSettings::default()).unwrap();
        let mut packet = [0u8; MAX_OPUS_PACKET];
        let n = enc.encode(&[0; 160], &mut packet).unwrap();
        assert_eq!(dec.decode(&packet[..n], &mut out), Ok(160));
    }
}
