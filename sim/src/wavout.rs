//! A small WAV writer: 8 kHz 16-bit PCM, mono or stereo (for `switchboard call --record`).

use std::io::Write;
use std::path::Path;

use crate::{Error, Result};

fn header(channels: u16, frames: usize) -> Vec<u8> {
    let rate = crate::audio::RATE;
    let block = 2 * u32::from(channels);
    let data = (frames as u32).saturating_mul(block);
    let mut h = Vec::with_capacity(44);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&data.saturating_add(36).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // PCM
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * block).to_le_bytes());
    h.extend_from_slice(&(block as u16).to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data.to_le_bytes());
    h
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |e: std::io::Error| Error::File {
        path: path.to_path_buf(),
        kind: e.kind(),
    };
    let mut f = std::fs::File::create(path).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)
}

/// Writes `pcm` as a mono 8 kHz WAV.
pub fn write_mono(path: &Path, pcm: &[i16]) -> Result<()> {
    let mut bytes = header(1, pcm.len());
    bytes.reserve(pcm.len() * 2);
    for s in pcm {
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    write(path, &bytes)
}

/// Writes a stereo 8 kHz WAV: `left` and `right` channels (the shorter padded with silence).
pub fn write_stereo(path: &Path, left: &[i16], right: &[i16]) -> Result<()> {
    let frames = left.len().max(right.len());
    let mut bytes = header(2, frames);
    bytes.reserve(frames * 4);
    for i in 0..frames {
        bytes.extend_from_slice(&left.get(i).copied().unwrap_or(0).to_le_bytes());
        bytes.extend_from_slice(&right.get(i).copied().unwrap_or(0).to_le_bytes());
    }
    write(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stereo_reads_back_with_the_media_reader() {
        let dir = std::env::temp_dir().join(format!("sb-sim-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("two.wav");
        let left: Vec<i16> = (0..800).map(|i| (i * 10) as i16).collect();
        let right = vec![-5i16; 400];
        write_stereo(&path, &left, &right).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 44 + 800 * 4);
        let wav = switchboard_media::wav::parse(&bytes).unwrap();
        assert_eq!(wav.info.channels, 2);
        assert_eq!(wav.info.sample_rate, 8000);
        assert_eq!(wav.info.frames, 800);
        // The reader returns the first (left) channel.
        assert_eq!(wav.samples[10], 100.0);
        // The right channel: sample 1 of frame 1 is -5, of frame 500 it is padding.
        assert_eq!(i16::from_le_bytes([bytes[44 + 6], bytes[44 + 7]]), -5);
        let at = 44 + 500 * 4 + 2;
        assert_eq!(i16::from_le_bytes([bytes[at], bytes[at + 1]]), 0);
        let err = write_mono(&dir.join("no/such/dir.wav"), &left).unwrap_err();
        assert!(err.to_string().contains("dir.wav"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
