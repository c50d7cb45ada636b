//! A small WAV (RIFF/WAVE) reader: PCM 8/16/24/32-bit integer, 32/64-bit float, μ-law and
//! A-law, plain `fmt ` or `WAVE_FORMAT_EXTENSIBLE`, any channel count and sample rate.
//!
//! It returns the first channel only, as `f32` at 16-bit scale (full scale ±32768), which is
//! what answering-machine detection needs. Chunks other than `fmt ` and `data` are skipped; a
//! `data` size larger than the file (a stream that was never finalised, or 0xFFFFFFFF) is
//! clamped to what is there. Malformed input is an [`Error`], never a panic.

use crate::g711;
use crate::{Error, Result};

/// Lowest sample rate accepted (Hz).
pub const MIN_RATE: u32 = 1_000;
/// Highest sample rate accepted (Hz).
pub const MAX_RATE: u32 = 768_000;

/// How samples are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    /// Integer PCM of 8 (unsigned), 16, 24 or 32 bits.
    Int(u16),
    /// IEEE float of 32 or 64 bits.
    Float(u16),
    /// G.711 μ-law.
    MuLaw,
    /// G.711 A-law.
    ALaw,
}

/// The file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavInfo {
    /// Sample rate (Hz).
    pub sample_rate: u32,
    /// Channels in the file.
    pub channels: u16,
    /// Sample encoding.
    pub format: SampleFormat,
    /// Sample frames (samples per channel) read.
    pub frames: usize,
}

/// The first channel of a WAV file.
#[derive(Debug, Clone, PartialEq)]
pub struct Wav {
    /// Format of the file.
    pub info: WavInfo,
    /// First-channel samples at 16-bit scale (±32768).
    pub samples: Vec<f32>,
}

const FORMAT_PCM: u16 = 0x0001;
const FORMAT_FLOAT: u16 = 0x0003;
const FORMAT_ALAW: u16 = 0x0006;
const FORMAT_MULAW: u16 = 0x0007;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn invalid(offset: usize, reason: &'static str) -> Error {
    Error::InvalidWav { offset, reason }
}

/// Reads a WAV file from disk (see [`parse`]).
pub fn read_file(path: &std::path::Path) -> Result<Wav> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io { kind: e.kind() })?;
    parse(&bytes)
}

/// Parses a WAV file held in memory and returns its first channel.
pub fn parse(bytes: &[u8]) -> Result<Wav> {
    parse_with(bytes, false)
}

/// Parses a WAV file held in memory and returns the mean of all its channels (a stereo prompt
/// played into a mono call keeps both sides).
pub fn parse_downmix(bytes: &[u8]) -> Result<Wav> {
    parse_with(bytes, true)
}

fn parse_with(bytes: &[u8], mix: bool) -> Result<Wav> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(invalid(0, "no RIFF/WAVE header"));
    }
    let mut pos = 12;
    let mut fmt: Option<Fmt> = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32_at(bytes, pos + 4).ok_or(invalid(pos, "chunk header truncated"))? as usize;
        let body = pos + 8;
        if id == b"fmt " {
            if size < 16 || body + 16 > bytes.len() {
                return Err(invalid(pos, "fmt chunk too short"));
            }
            let mut tag = u16_at(bytes, body).unwrap_or(0);
            let channels = u16_at(bytes, body + 2).unwrap_or(0);
            let rate = u32_at(bytes, body + 4).unwrap_or(0);
            let block_align = u16_at(bytes, body + 12).unwrap_or(0);
            let bits = u16_at(bytes, body + 14).unwrap_or(0);
            if tag == FORMAT_EXTENSIBLE {
                // cbSize(2) validBits(2) channelMask(4) then the SubFormat GUID, whose first
                // two bytes are the format tag.
                tag = u16_at(bytes, body + 24)
                    .filter(|_| size >= 40)
                    .ok_or(invalid(pos, "extensible fmt chunk too short"))?;
            }
            fmt = Some((tag, channels, rate, block_align, bits));
        } else if id == b"data" {
            let fmt = fmt.ok_or(invalid(pos, "data chunk before fmt chunk"))?;
            let end = body.saturating_add(size).min(bytes.len());
            return decode(&bytes[body..end], fmt, pos, mix);
        }
        // Chunks are padded to an even size.
        pos = body.saturating_add(size).saturating_add(size & 1);
    }
    Err(invalid(pos.min(bytes.len()), "no data chunk"))
}

/// The `fmt ` fields used: format tag, channels, sample rate, block align, bits per sample.
type Fmt = (u16, u16, u32, u16, u16);

fn decode(data: &[u8], fmt: Fmt, chunk_at: usize, mix: bool) -> Result<Wav> {
    let (tag, channels, rate, block_align, bits) = fmt;
    let unsupported = Error::UnsupportedWavFormat {
        format_tag: tag,
        bits_per_sample: bits,
    };
    let format = match (tag, bits) {
        (FORMAT_PCM, 8 | 16 | 24 | 32) => SampleFormat::Int(bits),
        (FORMAT_FLOAT, 32 | 64) => SampleFormat::Float(bits),
        (FORMAT_MULAW, 8) => SampleFormat::MuLaw,
        (FORMAT_ALAW, 8) => SampleFormat::ALaw,
        _ => return Err(unsupported),
    };
    if channels == 0 || rate == 0 {
        return Err(invalid(chunk_at, "zero channels or sample rate"));
    }
    // Audio is recorded between telephone rate and studio rates; anything outside is a
    // corrupt or hostile header (a rate of 4 GHz made the resampler's kernel 4.9 GB).
    if !(MIN_RATE..=MAX_RATE).contains(&rate) {
        return Err(invalid(chunk_at, "sample rate outside 1 kHz to 768 kHz"));
    }
    let width = usize::from(bits / 8);
    let frame = usize::from(block_align).max(width * usize::from(channels));
    if frame == 0 || usize::from(block_align) < width * usize::from(channels) && block_align != 0 {
        return Err(invalid(
            chunk_at,
            "block align smaller than one sample frame",
        ));
    }
    let sample = |s: &[u8]| -> f32 {
        match format {
            SampleFormat::Int(8) => (f32::from(s[0]) - 128.0) * 256.0,
            SampleFormat::Int(16) => f32::from(i16::from_le_bytes([s[0], s[1]])),
            SampleFormat::Int(24) => {
                (i32::from_le_bytes([0, s[0], s[1], s[2]]) >> 8) as f32 / 256.0
            }
            SampleFormat::Int(_) => i32::from_le_bytes([s[0], s[1], s[2], s[3]]) as f32 / 65536.0,
            SampleFormat::Float(32) => {
                let v = f32::from_le_bytes([s[0], s[1], s[2], s[3]]) * 32768.0;
                if v.is_finite() {
                    v
                } else {
                    0.0
                }
            }
            SampleFormat::Float(_) => {
                let v = f64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]);
                let v = (v * 32768.0) as f32;
                if v.is_finite() {
                    v
                } else {
                    0.0
                }
            }
            SampleFormat::MuLaw => f32::from(g711::ulaw_to_linear(s[0])),
            SampleFormat::ALaw => f32::from(g711::alaw_to_linear(s[0])),
        }
    };
    let n = usize::from(channels);
    let samples: Vec<f32> = data
        .chunks_exact(frame)
        .map(|f| {
            if mix && n > 1 {
                f[..width * n].chunks_exact(width).map(sample).sum::<f32>() / n as f32
            } else {
                sample(&f[..width])
            }
        })
        .collect();
    Ok(Wav {
        info: WavInfo {
            sample_rate: rate,
            channels,
            format,
            frames: samples.len(),
        },
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let align = channels * bits / 8;
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&(36 + data.len() as u32 + 10).to_le_bytes());
        b.extend_from_slice(b"WAVE");
        // An unknown chunk with odd size and padding, to be skipped.
        b.extend_from_slice(b"LIST");
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(b"fmt ");
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&channels.to_le_bytes());
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
        b.extend_from_slice(&align.to_le_bytes());
        b.extend_from_slice(&bits.to_le_bytes());
        b.extend_from_slice(b"data");
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn reads_each_encoding_first_channel() {
        // Stereo 16-bit: left 1000, -1000; right 5.
        let d: Vec<u8> = [1000i16, 5, -1000, 5]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let w = parse(&wav(1, 2, 16000, 16, &d)).unwrap();
        assert_eq!(w.samples, vec![1000.0, -1000.0]);
        assert_eq!(w.info.channels, 2);
        assert_eq!(w.info.sample_rate, 16000);

        let w = parse(&wav(1, 1, 8000, 8, &[128, 255, 0])).unwrap();
        assert_eq!(w.samples, vec![0.0, 127.0 * 256.0, -32768.0]);

        let w = parse(&wav(1, 1, 8000, 24, &[0x00, 0x00, 0x80, 0x00, 0x01, 0x00])).unwrap();
        assert_eq!(w.samples, vec![-32768.0, 1.0]);

        let d: Vec<u8> = [i32::MIN, 1 << 16]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(
            parse(&wav(1, 1, 8000, 32, &d)).unwrap().samples,
            vec![-32768.0, 1.0]
        );

        let d: Vec<u8> = [0.5f32, -1.0, f32::NAN]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let w = parse(&wav(3, 1, 44100, 32, &d)).unwrap();
        assert_eq!(w.samples, vec![16384.0, -32768.0, 0.0]);

        let d: Vec<u8> = [0.25f64].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            parse(&wav(3, 1, 8000, 64, &d)).unwrap().samples,
            vec![8192.0]
        );

        let u = g711::linear_to_ulaw(12345);
        let a = g711::linear_to_alaw(-2345);
        assert_eq!(
            parse(&wav(7, 1, 8000, 8, &[u])).unwrap().samples,
            vec![f32::from(g711::ulaw_to_linear(u))]
        );
        assert_eq!(
            parse(&wav(6, 1, 8000, 8, &[a])).unwrap().samples,
            vec![f32::from(g711::alaw_to_linear(a))]
        );
    }

    #[test]
    fn downmix_averages_every_channel() {
        // Stereo 16-bit: (1000, 3000), (-1000, 5).
        let d: Vec<u8> = [1000i16, 3000, -1000, 5]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let w = parse_downmix(&wav(1, 2, 16000, 16, &d)).unwrap();
        assert_eq!(w.samples, vec![2000.0, -497.5]);
        assert_eq!(parse(&wav(1, 2, 16000, 16, &d)).unwrap().samples[0], 1000.0);
        // Mono is unchanged.
        let w = parse_downmix(&wav(1, 1, 8000, 8, &[128, 255])).unwrap();
        assert_eq!(w.samples, vec![0.0, 127.0 * 256.0]);
    }

    #[test]
    fn extensible_format_and_oversized_data_chunk() {
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF\0\0\0\0WAVEfmt ");
        b.extend_from_slice(&40u32.to_le_bytes());
        b.extend_from_slice(&0xFFFEu16.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&8000u32.to_le_bytes());
        b.extend_from_slice(&16000u32.to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&16u16.to_le_bytes());
        b.extend_from_slice(&22u16.to_le_bytes());
        b.extend_from_slice(&16u16.to_le_bytes());
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes()); // SubFormat PCM
        b.extend_from_slice(&[0; 14]);
        b.extend_from_slice(b"data");
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        b.extend_from_slice(&7i16.to_le_bytes());
        b.push(9); // a trailing half sample is ignored
        let w = parse(&b).unwrap();
        assert_eq!(w.samples, vec![7.0]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(parse(b"hello"), Err(Error::InvalidWav { .. })));
        assert!(matches!(
            parse(b"RIFF\0\0\0\0WAVEdata\x02\0\0\0\0\0"),
            Err(Error::InvalidWav { .. })
        ));
        assert!(matches!(
            parse(&wav(2, 1, 8000, 4, &[1, 2])),
            Err(Error::UnsupportedWavFormat { format_tag: 2, .. })
        ));
        assert!(matches!(
            parse(&wav(1, 0, 8000, 16, &[1, 2])),
            Err(Error::InvalidWav { .. })
        ));
        let full = wav(1, 1, 8000, 16, &[1, 2, 3, 4]);
        for cut in 0..full.len() {
            let _ = parse(&full[..cut]);
        }
    }
}

#[cfg(test)]
mod rate_bounds {
    /// Found by the `wav_amd` fuzz target: a tiny file claiming 4 294 967 295 Hz made the
    /// resampler allocate 4.9 GB. Such headers are refused.
    #[test]
    fn absurd_sample_rates_are_refused() {
        let bytes =
            include_bytes!("../../fuzz/regressions/wav_amd/oom-resample-rate-4294967295.wav");
        assert!(super::parse(bytes).is_err());
    }
}
