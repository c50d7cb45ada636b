//! Prompts from generated files of every accepted kind (WAV at 8/16/22.05/44.1/48 kHz, mono
//! and stereo, 16-bit PCM, μ-law, A-law; raw G.711), decoded to 8 kHz clips, cached, and
//! played once into a live stream on 127.0.0.1 with one packet per 20 ms tick.

use std::f64::consts::TAU;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_media::g711::{self, Law};
use switchboard_media::playback::{load_clip, PromptCache};
use switchboard_media::runtime::{
    Clip, FrameSink, FrameSource, LoopingClip, MediaRuntime, ReceivedFrame, RuntimeConfig,
    SourceFrame, StreamConfig,
};
use switchboard_media::Error;

/// A 1 kHz tone at 0.3 of full scale for `secs`, at `rate`.
fn tone(rate: u32, secs: f64) -> Vec<f64> {
    (0..(f64::from(rate) * secs) as usize)
        .map(|i| (TAU * 1000.0 * i as f64 / f64::from(rate)).sin() * 0.3)
        .collect()
}

/// A WAV file: `tag` 1 (16-bit PCM), 6 (A-law) or 7 (μ-law); every channel carries `x`
/// scaled by its channel number + 1 divided by the channel count (so a downmix of stereo is
/// 0.75 × x).
fn write_wav(path: &Path, tag: u16, rate: u32, channels: u16, x: &[f64]) {
    let bits: u16 = if tag == 1 { 16 } else { 8 };
    let mut data = Vec::new();
    for &v in x {
        for c in 0..channels {
            let s = (v * f64::from(c + 1) / f64::from(channels) * 32767.0) as i16;
            match tag {
                1 => data.extend_from_slice(&s.to_le_bytes()),
                6 => data.push(g711::linear_to_alaw(s)),
                _ => data.push(g711::linear_to_ulaw(s)),
            }
        }
    }
    let align = channels * bits / 8;
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&tag.to_le_bytes());
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
    b.extend_from_slice(&align.to_le_bytes());
    b.extend_from_slice(&bits.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&data);
    std::fs::write(path, b).unwrap();
}

/// Plays a clip once into a throwaway source and returns its 8 kHz samples.
fn samples(clip: &Arc<Clip>) -> Vec<f64> {
    let mut src = LoopingClip::once(clip.clone());
    let mut out = [0u8; 160];
    let mut v = Vec::new();
    while src.next_frame(Law::Mu, &mut out) == SourceFrame::Audio {
        v.extend(
            out.iter()
                .map(|&c| f64::from(Law::Mu.decode_sample(c)) / 32768.0),
        );
    }
    v
}

/// Power of `x` at `hz` (Goertzel), relative to its total power.
fn share_at(x: &[f64], hz: f64) -> f64 {
    let w = TAU * hz / 8000.0;
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in x {
        let s = v + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let p = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
    let total: f64 = x.iter().map(|v| v * v).sum();
    p / (total * x.len() as f64 / 2.0)
}

fn rms(x: &[f64]) -> f64 {
    (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64).sqrt()
}

#[test]
fn every_format_decodes_to_the_same_8k_tone() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases: Vec<(PathBuf, f64)> = Vec::new();
    for rate in [8000, 16000, 22050, 44100, 48000] {
        for channels in [1, 2] {
            let p = dir.path().join(format!("pcm-{rate}-{channels}.wav"));
            write_wav(&p, 1, rate, channels, &tone(rate, 1.0));
            // A stereo file is mixed down: (0.5 + 1.0) / 2 of the tone.
            cases.push((p, if channels == 1 { 1.0 } else { 0.75 }));
        }
    }
    for (tag, name) in [(7, "ulaw"), (6, "alaw")] {
        let p = dir.path().join(format!("{name}.wav"));
        write_wav(&p, tag, 8000, 1, &tone(8000, 1.0));
        cases.push((p, 1.0));
    }
    // Raw G.711, recognised by extension.
    let x = tone(8000, 1.0);
    let raw_u: Vec<u8> = x
        .iter()
        .map(|v| g711::linear_to_ulaw((v * 32767.0) as i16))
        .collect();
    let raw_a: Vec<u8> = x
        .iter()
        .map(|v| g711::linear_to_alaw((v * 32767.0) as i16))
        .collect();
    std::fs::write(dir.path().join("prompt.ulaw"), &raw_u).unwrap();
    std::fs::write(dir.path().join("prompt.pcma"), &raw_a).unwrap();
    cases.push((dir.path().join("prompt.ulaw"), 1.0));
    cases.push((dir.path().join("prompt.pcma"), 1.0));

    for (path, gain) in &cases {
        let clip = load_clip(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        // One second is 50 frames at every rate.
        assert_eq!(clip.frames(), 50, "{name}");
        let s = samples(&clip);
        let body = &s[400..7600];
        let expect = 0.3 * gain / 2f64.sqrt();
        assert!(
            (rms(body) - expect).abs() < 0.05 * expect,
            "{name}: rms {}",
            rms(body)
        );
        assert!(
            share_at(body, 1000.0) > 0.95,
            "{name}: {}",
            share_at(body, 1000.0)
        );
    }

    // Unknown content with no raw extension, a missing file, a corrupt WAV.
    std::fs::write(dir.path().join("x.mp3"), b"ID3 not for us").unwrap();
    assert_eq!(
        load_clip(&dir.path().join("x.mp3")),
        Err(Error::UnknownAudioFormat)
    );
    assert!(matches!(
        load_clip(&dir.path().join("missing.wav")),
        Err(Error::Io { .. })
    ));
    std::fs::write(dir.path().join("bad.wav"), b"RIFF\0\0\0\0WAVEfmt ").unwrap();
    assert!(load_clip(&dir.path().join("bad.wav")).is_err());

    // Through the cache: one decode per path.
    let cache = PromptCache::new(1 << 20);
    let a = cache.load(&cases[0].0).unwrap();
    let b = cache.load(&cases[0].0).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(cache.len(), 1);
}

/// Sequence number, timestamp and payload of a received frame.
type Got = (u16, u32, Vec<u8>);

/// Keeps every frame received.
#[derive(Clone, Default)]
struct Keep(Arc<Mutex<Vec<Got>>>);

impl FrameSink for Keep {
    fn on_frame(&mut self, f: &ReceivedFrame<'_>) {
        self.0
            .lock()
            .unwrap()
            .push((f.sequence, f.timestamp, f.payload.to_vec()));
    }
}

#[tokio::test]
async fn a_prompt_plays_once_frame_by_frame_with_20_ms_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("abandon.wav");
    write_wav(&p, 1, 16000, 1, &tone(16000, 0.5));
    let clip = load_clip(&p).unwrap();
    assert_eq!(clip.frames(), 25);
    let expect: Vec<Vec<u8>> = {
        let mut src = LoopingClip::once(clip.clone());
        let mut out = [0u8; 160];
        let mut v = Vec::new();
        while src.next_frame(Law::A, &mut out) == SourceFrame::Audio {
            v.push(out.to_vec());
        }
        v
    };

    let rt = MediaRuntime::start(RuntimeConfig {
        loops: 1,
        bind_ip: "127.0.0.1".parse().unwrap(),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let keep = Keep::default();
    let rx = rt
        .open_stream(StreamConfig {
            sink: Some(Box::new(keep.clone())),
            ..StreamConfig::new(Law::A)
        })
        .unwrap();
    let tx = rt
        .open_stream(StreamConfig {
            remote: Some(rx.local_addr()),
            source: Some(Box::new(LoopingClip::once(clip))),
            ..StreamConfig::new(Law::A)
        })
        .unwrap();
    for _ in 0..300 {
        if keep.0.lock().unwrap().len() >= 25 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Give a stray extra frame the chance to show up.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let got = keep.0.lock().unwrap().clone();
    assert_eq!(got.len(), 25);
    // Timestamps advance 160 per tick: one frame per tick, except that a tick the loop
    // skipped under load advances them too (the receiver sees a gap, not a time warp).
    let skipped: u64 = rt.loop_stats().iter().map(|l| l.skipped_ticks).sum();
    let mut gap_ticks = 0;
    for (i, (seq, ts, payload)) in got.iter().enumerate() {
        assert_eq!(payload, &expect[i], "frame {i}");
        assert_eq!(*seq, got[0].0.wrapping_add(i as u16));
        if i > 0 {
            let step = ts.wrapping_sub(got[i - 1].1);
            assert_eq!(step % 160, 0, "frame {i}");
            gap_ticks += u64::from(step / 160 - 1);
        }
    }
    assert!(
        gap_ticks <= skipped,
        "{gap_ticks} gaps, {skipped} ticks skipped"
    );
    let sent = tx.stats().await.unwrap().counters.packets_sent;
    assert_eq!(sent, 25);
    drop((tx, rx));
    rt.shutdown();
}
