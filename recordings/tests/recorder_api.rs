//! The recorder through its public API, fed in real time through its sinks: pause (skip and
//! silence), the mono mix, stop and drop, bad options. Assertions are on the file's content;
//! the feeder's schedule only decides what is sent when.

use std::path::Path;
use std::time::{Duration, Instant};

use switchboard_media::g711::Law;
use switchboard_media::runtime::{FrameSink, ReceivedFrame};
use switchboard_media::stats::{ReceiveStats, SeqStatus, StatsConfig};
use switchboard_recordings::{
    read_pcm16, wav_layout, Channel, ChannelSink, Error, PauseMode, RecorderOptions,
    RecordingWriter,
};

/// Feeds frames to sinks on a 20 ms schedule, with continuous RTP timestamps.
struct Feeder {
    clock: Instant,
    stats: ReceiveStats,
}

impl Feeder {
    fn new() -> Self {
        Self {
            clock: Instant::now(),
            stats: ReceiveStats::new(StatsConfig::new(8000)),
        }
    }

    /// Waits for frame `k`'s time.
    fn wait(&self, k: u64) {
        let due = self.clock + Duration::from_millis(20 * k);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }

    /// Sends frame `k` (all samples `value`) to `sink`.
    fn send(&self, sink: &mut ChannelSink, k: u64, value: i16) {
        sink.on_frame(&ReceivedFrame {
            pcm: &[value; 160],
            payload: &[],
            codec: Law::Mu.into(),
            concealed: false,
            sequence: k as u16,
            timestamp: 77_000 + k as u32 * 160,
            marker: false,
            ssrc: 42,
            status: SeqStatus::InOrder,
            arrival: self.clock.elapsed(),
            stats: &self.stats,
        });
    }
}

fn count(samples: &[i16], v: i16) -> usize {
    samples.iter().filter(|&&s| s == v).count()
}

/// Records 1.5 s of 1000, pauses for 1 s (2000 is sent meanwhile), then 1 s of 3000.
fn record_with_pause(path: &Path, mode: PauseMode) -> Vec<i16> {
    let writer = RecordingWriter::start().unwrap();
    let rec = writer
        .record(
            path,
            RecorderOptions {
                pause: mode,
                flush_every: Duration::from_millis(300),
                ..RecorderOptions::default()
            },
        )
        .unwrap();
    let mut left = rec.channel_sink(Channel::Left);
    let f = Feeder::new();
    for k in 0..175 {
        f.wait(k);
        match k {
            0..75 => f.send(&mut left, k, 1000),
            75 => rec.pause().unwrap(),
            // While paused (after a short silence): never written.
            80..125 => f.send(&mut left, k, 2000),
            125 => {
                rec.resume().unwrap();
                f.send(&mut left, k, 3000);
            }
            126.. => f.send(&mut left, k, 3000),
            _ => {}
        }
    }
    f.wait(175);
    let info = rec.stop().unwrap();
    let pcm = read_pcm16(path).unwrap();
    assert_eq!(pcm.frames() as u64, info.frames);
    assert_eq!(info.bytes, std::fs::metadata(path).unwrap().len());
    let left = pcm.channel(0);
    // Nothing on the right channel; nothing sent while paused.
    assert!(pcm.channel(1).iter().all(|&s| s == 0));
    assert_eq!(count(&left, 2000), 0);
    // All of the first part; the second part less at most the 10 ms around the resume.
    assert_eq!(count(&left, 1000), 75 * 160);
    let tail = count(&left, 3000);
    assert!((50 * 160 - 80..=50 * 160).contains(&tail), "{tail}");
    left
}

#[test]
fn pause_skip_cuts_the_paused_second() {
    let dir = tempfile::tempdir().unwrap();
    let left = record_with_pause(&dir.path().join("skip.wav"), PauseMode::Skip);
    // 1.5 s + 1 s, give or take the ~ms between the recording's start and the first frame.
    assert!(
        left.len().abs_diff(2 * 8000 + 4000) <= 160,
        "{}",
        left.len()
    );
    let first_3000 = left.iter().position(|&s| s == 3000).unwrap();
    let last_1000 = left.iter().rposition(|&s| s == 1000).unwrap();
    assert!(first_3000 - last_1000 <= 81, "{last_1000} → {first_3000}");
}

#[test]
fn pause_silence_keeps_the_paused_second_as_silence() {
    let dir = tempfile::tempdir().unwrap();
    let left = record_with_pause(&dir.path().join("silence.wav"), PauseMode::Silence);
    assert!(
        left.len().abs_diff(3 * 8000 + 4000) <= 160,
        "{}",
        left.len()
    );
    let first_3000 = left.iter().position(|&s| s == 3000).unwrap();
    let last_1000 = left.iter().rposition(|&s| s == 1000).unwrap();
    assert!((first_3000 - last_1000).abs_diff(8000) <= 81);
    assert!(left[last_1000 + 1..first_3000].iter().all(|&s| s == 0));
}

#[tokio::test]
async fn mono_mix_sums_both_legs_with_clipping_and_stop_async() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mono.wav");
    let writer = RecordingWriter::start().unwrap();
    let rec = writer
        .record(
            &path,
            RecorderOptions {
                mono: true,
                ..RecorderOptions::default()
            },
        )
        .unwrap();
    let (mut l, mut r) = (
        rec.channel_sink(Channel::Left),
        rec.channel_sink(Channel::Right),
    );
    assert_eq!(r.channel(), Channel::Right);
    let f = Feeder::new();
    for k in 0..25 {
        f.wait(k);
        f.send(&mut l, k, if k < 10 { 1000 } else { 30_000 });
        f.send(&mut r, k, if k < 10 { 234 } else { 30_000 });
    }
    f.wait(26);
    let info = rec.stop_async().await.unwrap();
    assert_eq!(info.channels, 1);
    let pcm = read_pcm16(&path).unwrap();
    assert_eq!(pcm.channels, 1);
    // Each channel is anchored on its own first packet: they may sit a sample apart.
    assert!(count(&pcm.samples, 1234).abs_diff(10 * 160) <= 1);
    assert!(count(&pcm.samples, i16::MAX).abs_diff(15 * 160) <= 1);
    assert_eq!(pcm.frames() as u64, info.frames);
}

#[test]
fn dropping_a_recorder_finishes_the_file_and_bad_requests_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dropped.wav");
    let writer = RecordingWriter::start().unwrap();
    let rec = writer.record(&path, RecorderOptions::default()).unwrap();
    let mut l = rec.channel_sink(Channel::Left);
    let f = Feeder::new();
    for k in 0..10 {
        f.wait(k);
        f.send(&mut l, k, 500);
    }
    f.wait(10);
    drop(rec);
    // The writer finishes it in the background: wait (bounded) for a final header.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut done = false;
    while Instant::now() < deadline && !done {
        let l = wav_layout(&path).unwrap();
        done = l.data_size > 0 && u64::from(l.data_size) + 44 == l.file_len;
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(done);
    assert_eq!(count(&read_pcm16(&path).unwrap().channel(0), 500), 10 * 160);
    // After stop, a sink's frames go nowhere (and do not panic).
    f.send(&mut l, 11, 500);

    // The file exists already.
    let again = writer.record(&path, RecorderOptions::default());
    assert!(
        matches!(again, Err(Error::Io { ref source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists)
    );
    // A flush period of zero.
    let zero = writer.record(
        dir.path().join("zero.wav"),
        RecorderOptions {
            flush_every: Duration::ZERO,
            ..RecorderOptions::default()
        },
    );
    assert!(matches!(zero, Err(Error::InvalidRecorderOptions { .. })));
}
