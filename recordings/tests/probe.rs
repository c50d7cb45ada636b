//! Probing real files written by the test itself.

use std::path::{Path, PathBuf};

use switchboard_recordings::{probe, probe_file, sniff, AudioFormat, Error, SNIFF_LEN};

/// A canonical PCM WAV: RIFF header, `fmt ` chunk, optional extra chunk, `data` chunk.
fn wav_bytes(channels: u16, rate: u32, bits: u16, frames: u32, extra_chunk: bool) -> Vec<u8> {
    let block_align = channels * bits / 8;
    let data_len = frames * u32::from(block_align);
    let list: &[u8] = b"LIST\x0c\x00\x00\x00JUNKabcdefgh";
    let extra = if extra_chunk { list.len() as u32 } else { 0 };
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(4 + 24 + extra + 8 + data_len).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes()); // PCM
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    v.extend_from_slice(&block_align.to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    if extra_chunk {
        v.extend_from_slice(list);
    }
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    // A 440 Hz-ish sawtooth: real, non-silent samples.
    for i in 0..frames {
        for _ in 0..channels {
            let s = ((i % 18) as i16 - 9) * 1000;
            v.extend_from_slice(&s.to_le_bytes()[..usize::from(bits / 8)]);
        }
    }
    v
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn assert_close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() < 1e-9, "{actual} != {expected}");
}

#[test]
fn stereo_8k_16bit_wav() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = wav_bytes(2, 8000, 16, 20_000, false);
    assert_eq!(sniff(&bytes[..SNIFF_LEN]), Some(AudioFormat::Wav));
    let info = probe(&write(dir.path(), "a.wav", &bytes)).unwrap();
    assert_close(info.duration_secs, 2.5);
    assert_eq!(info.channels, 2);
    assert_eq!(info.sample_rate, 8000);
    assert_eq!(info.bit_rate, Some(256_000));
    assert_eq!(info.format, AudioFormat::Wav);
}

#[test]
fn mono_16k_wav_with_an_extra_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = wav_bytes(1, 16_000, 16, 16_000 * 3 / 2, true);
    let info = probe(&write(dir.path(), "b.wav", &bytes)).unwrap();
    assert_close(info.duration_secs, 1.5);
    assert_eq!(info.channels, 1);
    assert_eq!(info.sample_rate, 16_000);
    assert_eq!(info.bit_rate, Some(256_000));
}

#[tokio::test]
async fn probe_file_runs_off_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = wav_bytes(1, 8000, 8, 4000, false);
    let info = probe_file(write(dir.path(), "c.wav", &bytes))
        .await
        .unwrap();
    assert_close(info.duration_secs, 0.5);
    assert_eq!(info.bit_rate, Some(64_000));
}

#[test]
fn text_named_wav_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let text = b"this is not audio, only a text file with a .wav name\n".repeat(10);
    assert_eq!(sniff(&text[..SNIFF_LEN]), None);
    let path = write(dir.path(), "fake.wav", &text);
    assert!(matches!(probe(&path), Err(Error::UnsupportedFormat)));
    let empty = write(dir.path(), "empty.wav", b"");
    assert!(matches!(probe(&empty), Err(Error::UnsupportedFormat)));
}

#[test]
fn truncated_wav_reports_the_true_duration_or_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let full = wav_bytes(2, 8000, 16, 20_000, false);
    // Header claims 2.5 s; only 1 s of frames (plus half a frame) is present.
    let one_second = 44 + 8000 * 4;
    let cut = &full[..one_second + 2];
    let info = probe(&write(dir.path(), "cut.wav", cut)).unwrap();
    assert_close(info.duration_secs, 1.0);
    assert_eq!(info.channels, 2);

    // Every prefix: an error or a duration no longer than what is there, never a panic.
    for len in [0, 3, 4, 11, 12, 13, 20, 36, 40, 43, 44, 45, 100, 1000] {
        let path = write(dir.path(), &format!("p{len}.wav"), &full[..len]);
        if let Ok(info) = probe(&path) {
            let present_frames = len.saturating_sub(44) / 4;
            assert!(
                info.duration_secs <= present_frames as f64 / 8000.0 + 1e-9,
                "{len}"
            );
        }
    }
}

#[test]
fn corrupt_headers_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let good = wav_bytes(1, 8000, 16, 800, false);
    // Flip each header byte in turn to a few bad values.
    for i in 0..44 {
        for value in [0x00, 0x7F, 0xFF] {
            let mut bad = good.clone();
            bad[i] = value;
            let path = write(dir.path(), "bad.wav", &bad);
            let _ = probe(&path);
        }
    }
    // Garbage behind valid magic bytes of every format.
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    for magic in [
        &b"RIFF\x00\x00\x00\x00WAVE"[..],
        b"ID3\x04\x00\x00\x00\x00\x00\x10",
        &[0xFF, 0xFB, 0x90, 0x64],
        b"OggS\x00\x02",
        b"fLaC\x00\x00\x00\x22",
        &[0x1A, 0x45, 0xDF, 0xA3, 0x84, b'w', b'e', b'b', b'm'],
    ] {
        let mut bytes = magic.to_vec();
        bytes.extend_from_slice(&garbage);
        let path = write(dir.path(), "garbage", &bytes);
        assert!(sniff(&bytes).is_some());
        match probe(&path) {
            Ok(info) => assert!(info.duration_secs.is_finite() && info.duration_secs >= 0.0),
            Err(Error::UnsupportedFormat) => panic!("sniffed but unsupported"),
            Err(_) => {}
        }
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Made with `sox -n -r 8000 -c 1 tone-8k-mono-1s.flac synth 1.0 sine 440`.
#[test]
fn flac_fixture() {
    let info = probe(&fixture("tone-8k-mono-1s.flac")).unwrap();
    assert_eq!(info.format, AudioFormat::Flac);
    assert_close(info.duration_secs, 1.0);
    assert_eq!((info.channels, info.sample_rate), (1, 8000));
    assert!(info.bit_rate.is_some_and(|b| b > 0));
}

/// Made with `sox -n -r 8000 -c 2 tone-8k-stereo-1s.ogg synth 1.0 sine 440` (Vorbis).
#[test]
fn ogg_vorbis_fixture() {
    let info = probe(&fixture("tone-8k-stereo-1s.ogg")).unwrap();
    assert_eq!(info.format, AudioFormat::Ogg);
    assert_close(info.duration_secs, 1.0);
    assert_eq!((info.channels, info.sample_rate), (2, 8000));
    // 3879 bytes over 1 s.
    assert_eq!(info.bit_rate, Some(3879 * 8));
}

/// 100 MPEG-1 layer III frames (128 kbit/s, 44.1 kHz, joint stereo), payload zeroed: the
/// demuxer only needs valid headers. 100 × 1152 samples = 2.612 s.
#[test]
fn mp3_constant_bitrate_frames() {
    let dir = tempfile::tempdir().unwrap();
    let frame_len = 144 * 128_000 / 44_100; // 417 bytes, no padding bit
    let mut bytes = Vec::new();
    for _ in 0..100 {
        let start = bytes.len();
        bytes.extend_from_slice(&[0xFF, 0xFB, 0x90, 0x64]);
        bytes.resize(start + frame_len, 0);
    }
    let info = probe(&write(dir.path(), "cbr.mp3", &bytes)).unwrap();
    assert_eq!(info.format, AudioFormat::Mp3);
    assert_eq!((info.channels, info.sample_rate), (2, 44_100));
    let expected = 100.0 * 1152.0 / 44_100.0;
    assert!(
        (info.duration_secs - expected).abs() < 0.05,
        "{}",
        info.duration_secs
    );
    let bit_rate = info.bit_rate.unwrap();
    assert!((120_000..=136_000).contains(&bit_rate), "{bit_rate}");
}
