//! The start-up repair pass: WAV files whose header sizes were never finalized.
//!
//! A recorder killed mid-call leaves a file whose `data` size (and RIFF size) is the one of
//! its last header flush, or 0 if it died before the first. The audio written after that is in
//! the file all the same. [`repair_file`] sets both sizes from the file's length, truncated to
//! whole sample frames, so every player reads all of it.
//!
//! A file is repaired when its `data` size is 0 with bytes after it, larger than the bytes
//! present (0xFFFFFFFF streaming headers included), or smaller than them with something other
//! than well-formed chunks after the `data` chunk (audio appended after the last header flush).
//! A file whose sizes are consistent, including one with metadata chunks after `data`, is left
//! untouched, so running the pass over a directory of finished recordings changes nothing.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::wavfile::{self, Layout, MAX_DATA};
use crate::{Error, Result};

/// What [`repair_file`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repaired {
    /// The file.
    pub path: PathBuf,
    /// The `data` size the header stated before.
    pub stated_data_bytes: u32,
    /// The `data` size now (whole frames).
    pub data_bytes: u64,
    /// Bytes cut from the end (a partial last frame, or what lies past 4 GiB).
    pub truncated_bytes: u64,
    /// Playing time now.
    pub duration: Duration,
}

/// What [`repair_dir`] did.
#[derive(Debug, Default)]
pub struct DirRepair {
    /// Files repaired.
    pub repaired: Vec<Repaired>,
    /// `.wav` files that could not be read or repaired (not a WAV, header cut short, I/O
    /// error), left as they were.
    pub failed: Vec<(PathBuf, Error)>,
}

/// Directory levels [`repair_dir`] descends (the store's layout is
/// `tenants/{tenant}/calls/{call}.wav`).
const MAX_DEPTH: usize = 6;

/// Chunks examined after the `data` chunk when deciding whether trailing bytes are metadata.
const MAX_TRAILING_CHUNKS: usize = 64;

/// Repairs one WAV file in place if its header sizes disagree with its length (see the module
/// docs). `Ok(None)`: nothing to repair.
pub fn repair_file(path: &Path) -> Result<Option<Repaired>> {
    let l = wavfile::layout(path)?;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let present = l.bytes_after_data_start();
    let stated = u64::from(l.data_size);
    let stale = match stated.cmp(&present) {
        core::cmp::Ordering::Equal => false,
        core::cmp::Ordering::Greater => true,
        core::cmp::Ordering::Less if stated == 0 => true,
        core::cmp::Ordering::Less => !trailing_chunks_ok(path, &l).map_err(io)?,
    };
    if !stale {
        return Ok(None);
    }
    let align = u64::from(l.block_align.max(1));
    let data_bytes = present.min(MAX_DATA - MAX_DATA % align);
    let data_bytes = data_bytes - data_bytes % align;
    let end = l.data_start() + data_bytes;
    let mut file = OpenOptions::new().write(true).open(path).map_err(io)?;
    if end < l.file_len {
        file.set_len(end).map_err(io)?;
    }
    // Both fit in u32 by the clamp above.
    let data_size = data_bytes as u32;
    let riff_size = (end - 8).min(u64::from(u32::MAX)) as u32;
    file.seek(SeekFrom::Start(4)).map_err(io)?;
    file.write_all(&riff_size.to_le_bytes()).map_err(io)?;
    file.seek(SeekFrom::Start(l.data_chunk + 4)).map_err(io)?;
    file.write_all(&data_size.to_le_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    let frames = data_bytes / align;
    Ok(Some(Repaired {
        path: path.to_path_buf(),
        stated_data_bytes: l.data_size,
        data_bytes,
        truncated_bytes: l.file_len - end,
        duration: Duration::from_secs_f64(frames as f64 / f64::from(l.sample_rate)),
    }))
}

/// Whether the bytes after the stated `data` chunk are a chain of chunks ending at the end of
/// the file (metadata written after the audio), rather than unaccounted audio.
fn trailing_chunks_ok(path: &Path, l: &Layout) -> std::io::Result<bool> {
    let mut file = File::open(path)?;
    let size = u64::from(l.data_size);
    let mut pos = l.data_start() + size + (size & 1);
    for _ in 0..MAX_TRAILING_CHUNKS {
        if pos == l.file_len {
            return Ok(true);
        }
        if pos + 8 > l.file_len {
            return Ok(false);
        }
        file.seek(SeekFrom::Start(pos))?;
        let mut h = [0u8; 8];
        file.read_exact(&mut h)?;
        let id_ok = h[..4]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b' ');
        if !id_ok {
            return Ok(false);
        }
        let len = u64::from(u32::from_le_bytes([h[4], h[5], h[6], h[7]]));
        pos += 8 + len + (len & 1);
        if pos > l.file_len {
            return Ok(false);
        }
    }
    Ok(false)
}

/// Runs [`repair_file`] on every `*.wav` file under `dir` (recursively, a few levels deep).
/// A missing `dir` is not an error (nothing was ever recorded). Symbolic links are not
/// followed.
pub fn repair_dir(dir: &Path) -> Result<DirRepair> {
    let mut out = DirRepair::default();
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(source) => {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
        Ok(_) => {}
    }
    walk(dir, 0, &mut out)?;
    Ok(out)
}

fn walk(dir: &Path, depth: usize, out: &mut DirRepair) -> Result<()> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<std::io::Result<_>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if depth + 1 < MAX_DEPTH {
                walk(&path, depth + 1, out)?;
            }
        } else if kind.is_file() && is_wav_name(&path) {
            match repair_file(&path) {
                Ok(Some(r)) => out.repaired.push(r),
                Ok(None) => {}
                Err(e) => out.failed.push((path, e)),
            }
        }
    }
    Ok(())
}

fn is_wav_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("wav"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wavfile::{header, read_pcm16};

    fn write(path: &Path, bytes: &[u8]) {
        std::fs::write(path, bytes).unwrap();
    }

    fn stereo(frames: usize) -> Vec<u8> {
        (0..frames)
            .flat_map(|i| {
                let l = (i as i16).wrapping_mul(7);
                let r = -(i as i16);
                [l.to_le_bytes(), r.to_le_bytes()].concat()
            })
            .collect()
    }

    #[test]
    fn zero_sizes_are_set_from_the_length_and_a_partial_frame_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.wav");
        let mut b = header(2, 8000, 0).to_vec();
        b[4..8].copy_from_slice(&0u32.to_le_bytes());
        let data = stereo(8000);
        b.extend_from_slice(&data);
        b.extend_from_slice(&[1, 2, 3]); // a partial frame
        write(&p, &b);
        let r = repair_file(&p).unwrap().unwrap();
        assert_eq!(r.stated_data_bytes, 0);
        assert_eq!(r.data_bytes, 32000);
        assert_eq!(r.truncated_bytes, 3);
        assert_eq!(r.duration, Duration::from_secs(1));
        let l = wavfile::layout(&p).unwrap();
        assert_eq!(l.file_len, 44 + 32000);
        assert_eq!((l.riff_size, l.data_size), (36 + 32000, 32000));
        let pcm = read_pcm16(&p).unwrap();
        assert_eq!(pcm.frames(), 8000);
        assert_eq!(pcm.channel(1)[100], -100);
        // A second pass finds nothing to do.
        assert_eq!(repair_file(&p).unwrap(), None);
    }

    #[test]
    fn stale_and_oversized_sizes_are_corrected() {
        let dir = tempfile::tempdir().unwrap();
        // Stale: the header counts 100 frames, 300 are there.
        let p = dir.path().join("stale.wav");
        let mut b = header(2, 8000, 400).to_vec();
        b.extend_from_slice(&stereo(300));
        write(&p, &b);
        let r = repair_file(&p).unwrap().unwrap();
        assert_eq!((r.stated_data_bytes, r.data_bytes), (400, 1200));
        assert_eq!(read_pcm16(&p).unwrap().frames(), 300);
        // Streaming header: 0xFFFFFFFF.
        let p = dir.path().join("stream.wav");
        let mut b = header(1, 8000, u32::MAX).to_vec();
        b.extend_from_slice(&[0u8; 1000]);
        write(&p, &b);
        let r = repair_file(&p).unwrap().unwrap();
        assert_eq!(r.data_bytes, 1000);
        assert_eq!(wavfile::layout(&p).unwrap().riff_size, 1036);
    }

    #[test]
    fn consistent_files_and_trailing_metadata_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ok.wav");
        let mut b = header(2, 8000, 40).to_vec();
        b.extend_from_slice(&stereo(10));
        write(&p, &b);
        assert_eq!(repair_file(&p).unwrap(), None);
        // A LIST chunk (odd size, padded) after the audio.
        let p = dir.path().join("meta.wav");
        let mut m = b.clone();
        m.extend_from_slice(b"LIST\x05\0\0\0INFOx\0");
        write(&p, &m);
        assert_eq!(repair_file(&p).unwrap(), None);
        assert_eq!(std::fs::read(&p).unwrap(), m);
        // An empty recording.
        let p = dir.path().join("empty.wav");
        write(&p, &header(2, 8000, 0));
        assert_eq!(repair_file(&p).unwrap(), None);
    }

    #[test]
    fn directory_pass_repairs_recursively_and_reports_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("tenants/t/calls");
        std::fs::create_dir_all(&nested).unwrap();
        let mut b = header(2, 8000, 0).to_vec();
        b.extend_from_slice(&stereo(80));
        write(&nested.join("c.wav"), &b);
        write(&nested.join("d.WAV"), &b);
        write(&nested.join("notes.txt"), b"not audio");
        write(&dir.path().join("broken.wav"), b"RIFF\0\0");
        let mut ok = header(1, 8000, 2).to_vec();
        ok.extend_from_slice(&[0, 0]);
        write(&dir.path().join("fine.wav"), &ok);
        let report = repair_dir(dir.path()).unwrap();
        let names: Vec<_> = report
            .repaired
            .iter()
            .map(|r| r.path.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["c.wav", "d.WAV"]);
        assert_eq!(report.failed.len(), 1);
        assert!(matches!(report.failed[0].1, Error::InvalidWav { .. }));
        assert_eq!(
            std::fs::read(nested.join("notes.txt")).unwrap(),
            b"not audio"
        );
        assert!(repair_dir(&dir.path().join("missing"))
            .unwrap()
            .repaired
            .is_empty());
    }
}
