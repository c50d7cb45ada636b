//! `SourceFrame::Lost` on 127.0.0.1: a lost frame is not sent, but its sequence number and
//! timestamp are used, so the receiver sees a gap and counts the loss.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_media::g711::Law;
use switchboard_media::runtime::{
    FrameSink, FrameSource, MediaRuntime, ReceivedFrame, RuntimeConfig, SourceFrame, StreamConfig,
};

/// Twenty frames; every frame whose index is 3 mod 4 is lost.
struct EveryFourthLost {
    next: u16,
}

impl FrameSource for EveryFourthLost {
    fn next_frame(&mut self, law: Law, out: &mut [u8; 160]) -> SourceFrame {
        if self.next == 20 {
            return SourceFrame::End;
        }
        out.fill(law.silence());
        out[..2].copy_from_slice(&self.next.to_be_bytes());
        self.next += 1;
        if self.next % 4 == 0 {
            SourceFrame::Lost
        } else {
            SourceFrame::Audio
        }
    }
}

#[derive(Clone, Default)]
struct Keep(Arc<Mutex<Vec<(u16, u16, u32)>>>);

impl FrameSink for Keep {
    fn on_frame(&mut self, f: &ReceivedFrame<'_>) {
        let index = u16::from_be_bytes([f.payload[0], f.payload[1]]);
        self.0
            .lock()
            .unwrap()
            .push((index, f.sequence, f.timestamp));
    }
}

#[tokio::test]
async fn lost_frames_leave_sequence_gaps() {
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
            ..StreamConfig::new(Law::Mu)
        })
        .unwrap();
    let tx = rt
        .open_stream(StreamConfig {
            remote: Some(rx.local_addr()),
            source: Some(Box::new(EveryFourthLost { next: 0 })),
            ..StreamConfig::new(Law::Mu)
        })
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while keep.0.lock().unwrap().len() < 15 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = keep.0.lock().unwrap().clone();
    let indexes: Vec<u16> = got.iter().map(|g| g.0).collect();
    let expected: Vec<u16> = (0..20).filter(|i| i % 4 != 3).collect();
    assert_eq!(indexes, expected);
    // Sequence and timestamp distances equal the index distances: the lost frames used theirs.
    for w in got.windows(2) {
        let d = w[1].0 - w[0].0;
        assert_eq!(w[1].1, w[0].1.wrapping_add(d));
        assert_eq!(w[1].2, w[0].2.wrapping_add(160 * u32::from(d)));
    }
    let r = rx.stats().await.expect("stream open");
    assert_eq!(r.stats.packets, 15);
    // The receiver has seen up to frame 18: frames 3, 7, 11 and 15 are missing.
    assert_eq!(r.stats.lost, 4);
    // The last frame (19) is lost too; wait until the source has run out.
    let mut sent = tx.stats().await.expect("stream open");
    while sent.counters.packets_sent < 20 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        sent = tx.stats().await.expect("stream open");
    }
    assert_eq!(sent.counters.packets_sent, 20, "lost frames count as sent");
    assert_eq!(rx.stats().await.expect("open").stats.packets, 15);
    rt.shutdown();
}
