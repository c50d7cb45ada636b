//! The RIFF/WAVE layout the recorder writes and the repair pass reads.
//!
//! The recorder writes the canonical 44-byte header (`RIFF`, `fmt ` of 16 bytes, `data`) for
//! 16-bit PCM and rewrites its two size fields as the file grows. [`layout`] finds the `fmt `
//! and `data` chunks of any WAV file (other chunks are skipped) so the repair pass can check
//! those sizes against the file's length. [`read_pcm16`] reads a 16-bit PCM file back with all
//! its channels (tests, and anyone checking a recording).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::{Error, Result};

/// Bytes of the canonical header written by the recorder.
pub const HEADER_LEN: u64 = 44;

/// Largest `data` size a RIFF header can state (its RIFF size is this + 36).
pub(crate) const MAX_DATA: u64 = u32::MAX as u64 - 36;

/// How far into a file [`layout`] looks for the `data` chunk.
const SCAN_LIMIT: u64 = 64 * 1024;

/// The canonical 44-byte header of a 16-bit PCM file holding `data_bytes` of samples.
pub(crate) fn header(channels: u16, sample_rate: u32, data_bytes: u32) -> [u8; 44] {
    let block_align = channels * 2;
    let byte_rate = sample_rate * u32::from(block_align);
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&data_bytes.saturating_add(36).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes());
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&sample_rate.to_le_bytes());
    h[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    h[32..34].copy_from_slice(&block_align.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_bytes.to_le_bytes());
    h
}

/// Where the parts of a WAV file are, and what its header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The RIFF size field (file length - 8 when correct).
    pub riff_size: u32,
    /// The `fmt ` format tag (1 = PCM; 0xFFFE = extensible).
    pub format_tag: u16,
    /// Channels.
    pub channels: u16,
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// Bytes per sample frame (all channels).
    pub block_align: u16,
    /// Bits per sample.
    pub bits_per_sample: u16,
    /// Offset of the `data` chunk's header (its size field is at `data_chunk + 4`).
    pub data_chunk: u64,
    /// The `data` size field.
    pub data_size: u32,
    /// Length of the file.
    pub file_len: u64,
}

impl Layout {
    /// Offset of the first sample byte.
    pub fn data_start(&self) -> u64 {
        self.data_chunk + 8
    }

    /// Bytes present after the `data` chunk's header.
    pub fn bytes_after_data_start(&self) -> u64 {
        self.file_len.saturating_sub(self.data_start())
    }
}

fn invalid(path: &Path, reason: &'static str) -> Error {
    Error::InvalidWav {
        path: path.to_path_buf(),
        reason,
    }
}

/// Reads the chunk layout of a WAV file: the `fmt ` fields and where `data` starts. Only the
/// first 64 KiB are read; `data` must start there.
pub fn layout(path: &Path) -> Result<Layout> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut head = Vec::new();
    (&mut file)
        .take(SCAN_LIMIT)
        .read_to_end(&mut head)
        .map_err(io)?;
    parse_layout(&head, file_len).map_err(|reason| invalid(path, reason))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// [`layout`] on the first bytes of a file of `file_len` bytes.
pub(crate) fn parse_layout(
    head: &[u8],
    file_len: u64,
) -> core::result::Result<Layout, &'static str> {
    if head.len() < 12 || &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return Err("no RIFF/WAVE header");
    }
    let riff_size = u32_at(head, 4).ok_or("truncated RIFF header")?;
    let mut fmt = None;
    let mut pos = 12usize;
    while pos + 8 <= head.len() {
        let id = &head[pos..pos + 4];
        let size = u32_at(head, pos + 4).ok_or("truncated chunk header")?;
        if id == b"fmt " {
            let body = pos + 8;
            if size < 16 || body + 16 > head.len() {
                return Err("fmt chunk too short");
            }
            let tag = u16_at(head, body).unwrap_or(0);
            let channels = u16_at(head, body + 2).unwrap_or(0);
            let rate = u32_at(head, body + 4).unwrap_or(0);
            let align = u16_at(head, body + 12).unwrap_or(0);
            let bits = u16_at(head, body + 14).unwrap_or(0);
            if channels == 0 || rate == 0 || align == 0 {
                return Err("fmt chunk has zero channels, rate or block align");
            }
            fmt = Some((tag, channels, rate, align, bits));
        } else if id == b"data" {
            let (format_tag, channels, sample_rate, block_align, bits_per_sample) =
                fmt.ok_or("data chunk before fmt chunk")?;
            return Ok(Layout {
                riff_size,
                format_tag,
                channels,
                sample_rate,
                block_align,
                bits_per_sample,
                data_chunk: pos as u64,
                data_size: size,
                file_len,
            });
        }
        // Chunks are padded to an even size.
        pos = pos
            .saturating_add(8)
            .saturating_add(size as usize)
            .saturating_add(size as usize & 1);
    }
    Err("no data chunk in the first 64 KiB")
}

/// A 16-bit PCM WAV file read back whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcm16 {
    /// Channels.
    pub channels: u16,
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// Interleaved samples (frame after frame), as many whole frames as the `data` chunk
    /// holds (clamped to the file).
    pub samples: Vec<i16>,
}

impl Pcm16 {
    /// Sample frames.
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }

    /// One channel's samples.
    pub fn channel(&self, index: u16) -> Vec<i16> {
        let n = usize::from(self.channels.max(1));
        self.samples
            .iter()
            .skip(usize::from(index))
            .step_by(n)
            .copied()
            .collect()
    }
}

/// Reads a 16-bit PCM WAV file with all its channels. The `data` size is trusted only as far
/// as the file goes (an unrepaired file reads as far as its header says, or to its end if the
/// header says more).
pub fn read_pcm16(path: &Path) -> Result<Pcm16> {
    let l = layout(path)?;
    if l.format_tag != 1 || l.bits_per_sample != 16 || l.block_align != l.channels * 2 {
        return Err(invalid(path, "not 16-bit PCM"));
    }
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    file.seek(SeekFrom::Start(l.data_start())).map_err(io)?;
    let len = u64::from(l.data_size).min(l.bytes_after_data_start());
    let len = len - len % u64::from(l.block_align);
    let mut bytes = Vec::new();
    file.take(len).read_to_end(&mut bytes).map_err(io)?;
    let samples = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    Ok(Pcm16 {
        channels: l.channels,
        sample_rate: l.sample_rate,
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_through_the_layout_parser() {
        let h = header(2, 8000, 3200);
        let l = parse_layout(&h, 44 + 3200).unwrap();
        assert_eq!(l.riff_size, 3236);
        assert_eq!((l.format_tag, l.channels, l.sample_rate), (1, 2, 8000));
        assert_eq!((l.block_align, l.bits_per_sample), (4, 16));
        assert_eq!((l.data_chunk, l.data_size, l.data_start()), (36, 3200, 44));
        assert_eq!(u32_at(&h, 28), Some(32000));
    }

    #[test]
    fn skips_other_chunks_and_refuses_garbage() {
        let mut b = b"RIFF\0\0\0\0WAVE".to_vec();
        b.extend_from_slice(b"LIST\x03\0\0\0abc\0");
        b.extend_from_slice(&header(1, 16000, 0)[12..]);
        let l = parse_layout(&b, b.len() as u64).unwrap();
        assert_eq!(l.data_chunk, 12 + 12 + 24);
        assert_eq!(l.channels, 1);
        assert!(parse_layout(b"RIFF\0\0\0\0WAVE", 12).is_err());
        assert!(parse_layout(b"RIFX\0\0\0\0WAVE", 12).is_err());
        assert!(parse_layout(b"RIFF\0\0\0\0WAVEdata\0\0\0\0", 20).is_err());
        let mut zero = header(2, 8000, 0);
        zero[22] = 0;
        assert!(parse_layout(&zero, 44).is_err());
        let h = header(2, 8000, 0);
        for cut in 0..h.len() {
            assert!(parse_layout(&h[..cut], cut as u64).is_err());
        }
    }
}
