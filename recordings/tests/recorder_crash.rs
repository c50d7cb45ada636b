//! A recorder process killed with SIGKILL mid-call leaves a WAV file that the start-up repair
//! pass makes playable, with all the audio written up to the kill (at least everything up to
//! the last header flush).
//!
//! The parent test re-runs this test binary as the child (`recorder_child`, which does
//! nothing unless `SB_RECORDER_CHILD` names the file to record). The child records two
//! channels of known samples fed in real time through the recorder's sinks and never stops;
//! the parent watches the file, kills the child with SIGKILL (`Child::kill` on unix), runs
//! `repair_dir`, and reads the file back.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use switchboard_media::runtime::{FrameSink, ReceivedFrame};
use switchboard_media::stats::{ReceiveStats, SeqStatus, StatsConfig};
use switchboard_recordings::{
    probe, read_pcm16, repair_dir, wav_layout, AudioFormat, Channel, Recorder, RecorderOptions,
};

const CHILD_PATH: &str = "SB_RECORDER_CHILD";
const CHILD_FLUSH_MS: &str = "SB_RECORDER_CHILD_FLUSH_MS";

/// Sample `n` of a channel: never 0, different per channel, not periodic in a frame.
fn signal(channel: u16, n: u64) -> i16 {
    let v = (n.wrapping_mul(7919 + 104_729 * u64::from(channel)) % 24_000) as i16;
    if channel == 0 {
        1000 + v
    } else {
        -1000 - v
    }
}

/// Frames (20 ms) into the call at which the agent (right) channel starts.
const RIGHT_STARTS: u64 = 30;

/// The child: records until killed (or for 60 s, should the parent be gone).
#[test]
fn recorder_child() {
    let Some(path) = std::env::var_os(CHILD_PATH) else {
        return;
    };
    let flush_ms = std::env::var(CHILD_FLUSH_MS)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let rec = Recorder::start(
        &path,
        RecorderOptions {
            flush_every: Duration::from_millis(flush_ms),
            ..RecorderOptions::default()
        },
    )
    .unwrap();
    let mut left = rec.channel_sink(Channel::Left);
    let mut right = rec.channel_sink(Channel::Right);
    // The "media runtime" clock the frames' arrival times are measured on.
    let clock = Instant::now();
    let stats = ReceiveStats::new(StatsConfig::new(8000));
    let mut pcm = [0i16; 160];
    for k in 0..3000u64 {
        let due = clock + Duration::from_millis(20 * k);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        for (ch, sink, ts0, ssrc) in [
            (0u16, &mut left, 1_000_000u32, 0xAAAA),
            (1, &mut right, 3_000_000_000, 0xBBBB),
        ] {
            let start = if ch == 0 { 0 } else { RIGHT_STARTS };
            if k < start {
                continue;
            }
            let frame = k - start;
            for (i, s) in pcm.iter_mut().enumerate() {
                *s = signal(ch, frame * 160 + i as u64);
            }
            sink.on_frame(&ReceivedFrame {
                pcm: &pcm,
                payload: &[],
                codec: switchboard_media::codec::Codec::Pcmu,
                concealed: false,
                sequence: frame as u16,
                timestamp: ts0.wrapping_add(frame as u32 * 160),
                marker: frame == 0,
                ssrc,
                status: SeqStatus::InOrder,
                arrival: clock.elapsed(),
                stats: &stats,
            });
        }
    }
}

/// Starts the child recording into `path` with the given header flush period.
fn spawn_child(path: &Path, flush_ms: u64) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "recorder_child",
            "--exact",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD_PATH, path)
        .env(CHILD_FLUSH_MS, flush_ms.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Polls the file (every 2 ms, at most 60 s) until `ready(stated data bytes, file length)`.
fn wait_for_file(path: &Path, ready: impl Fn(u64, u64) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(l) = wav_layout(path) {
            if ready(u64::from(l.data_size), l.file_len) {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("the child never wrote what was expected");
}

/// Checks that channel `ch` of the recording is the known signal from its first non-zero
/// sample on, for every frame the file holds; returns the channel's audio frames.
fn check_channel(samples: &[i16], ch: u16) -> usize {
    let start = samples
        .iter()
        .position(|&s| s != 0)
        .unwrap_or_else(|| panic!("channel {ch} is silent"));
    let audio = &samples[start..];
    let mismatched: Vec<usize> = audio
        .iter()
        .enumerate()
        .filter(|&(i, &s)| s != signal(ch, i as u64))
        .map(|(i, _)| i)
        .collect();
    assert!(
        mismatched.is_empty(),
        "channel {ch}: {} of {} samples differ, first at {:?}",
        mismatched.len(),
        audio.len(),
        mismatched.first()
    );
    audio.len()
}

/// Kills the child, repairs, and checks the file. `stated` is the data size the header held
/// when the child was killed (re-read after the kill).
fn kill_repair_check(mut child: std::process::Child, dir: &Path, path: &Path) {
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed, not finished");
    let before = wav_layout(path).unwrap();
    let present = before.file_len - 44;
    let stale = u64::from(before.data_size) != present;
    eprintln!(
        "killed: header states {} bytes, {present} present",
        before.data_size
    );

    let report = repair_dir(dir).unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.repaired.len(), usize::from(stale));
    let after = wav_layout(path).unwrap();
    // Every whole frame in the file is now accounted for, at least all that was flushed.
    assert_eq!(u64::from(after.data_size), present - present % 4);
    assert!(after.data_size >= before.data_size);
    assert_eq!(u64::from(after.riff_size), after.file_len - 8);

    // Playable: a demuxer accepts it, and the samples are the ones sent.
    let info = probe(path).unwrap();
    assert_eq!(info.format, AudioFormat::Wav);
    assert_eq!((info.channels, info.sample_rate), (2, 8000));
    let pcm = read_pcm16(path).unwrap();
    assert_eq!(pcm.frames() as u64, u64::from(after.data_size) / 4);
    assert!((info.duration_secs - pcm.frames() as f64 / 8000.0).abs() < 1e-6);
    let left = check_channel(&pcm.channel(0), 0);
    let right = check_channel(&pcm.channel(1), 1);
    // The agent started 30 frames (0.6 s) after the lead.
    let lead_start = pcm.frames() - left;
    let agent_start = pcm.frames() - right;
    let offset = agent_start as i64 - lead_start as i64;
    assert!(
        (offset - RIGHT_STARTS as i64 * 160).abs() <= 160,
        "agent starts {offset} samples after the lead"
    );
}

#[test]
fn killed_after_header_flushes_repair_keeps_everything_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tenants/t/calls/call.wav");
    // The header is flushed every second and audio written every 500 ms: kill the child
    // when the file holds audio the header does not count yet (a stale header), after at
    // least 2 s of flushed audio.
    let child = spawn_child(&path, 1000);
    let two_seconds = 2 * 8000 * 4;
    wait_for_file(&path, |stated, len| {
        stated >= two_seconds && len > 44 + stated
    });
    kill_repair_check(child, dir.path(), &path);
}

#[test]
fn killed_before_any_header_flush_repair_recovers_all_the_audio() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("call.wav");
    // The header is never flushed (it says 0 bytes) while audio reaches the file every
    // 500 ms: the repair pass must recover all of it.
    let child = spawn_child(&path, 3_600_000);
    wait_for_file(&path, |stated, len| {
        assert_eq!(stated, 0);
        len >= 44 + 8000 * 4
    });
    kill_repair_check(child, dir.path(), &path);
    let l = wav_layout(&path).unwrap();
    assert!(l.data_size >= 8000 * 4);
}
