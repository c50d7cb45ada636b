//! Sinks on a live stream: `set_sink` swaps them, `TeeSink` feeds two, `on_close` tells a sink
//! it gets nothing more (replaced, stream closed, runtime shut down). Real sockets on
//! 127.0.0.1; waits are bounded, assertions are on what each sink saw.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_media::g711::Law;
use switchboard_media::rtp::RtpBuilder;
use switchboard_media::runtime::{
    FrameSink, MediaHandle, MediaRuntime, ReceivedFrame, RuntimeConfig, StreamConfig, TeeSink,
};
use tokio::net::UdpSocket;

fn start() -> MediaHandle {
    MediaRuntime::start(RuntimeConfig {
        loops: 1,
        bind_ip: "127.0.0.1".parse().unwrap(),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

type Log = Arc<Mutex<Vec<String>>>;

/// Writes "`name` `seq`" for each frame and "`name` closed" on close.
struct Tag(&'static str, Log);

impl FrameSink for Tag {
    fn on_frame(&mut self, f: &ReceivedFrame<'_>) {
        self.1
            .lock()
            .unwrap()
            .push(format!("{} {}", self.0, f.sequence));
    }

    fn on_close(&mut self) {
        self.1.lock().unwrap().push(format!("{} closed", self.0));
    }
}

fn tag(name: &'static str, log: &Log) -> Box<dyn FrameSink> {
    Box::new(Tag(name, log.clone()))
}

async fn send(sock: &UdpSocket, to: std::net::SocketAddr, seqs: std::ops::Range<u16>) {
    for seq in seqs {
        let mut buf = [0u8; 172];
        let n = RtpBuilder::new(0, seq, u32::from(seq) * 160, 0x5151)
            .write(&mut buf, &[0xFF; 160])
            .unwrap();
        sock.send_to(&buf[..n], to).await.unwrap();
    }
}

/// Waits (bounded) until the log holds `n` lines, then returns them.
async fn lines(log: &Log, n: usize) -> Vec<String> {
    for _ in 0..500 {
        if log.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    log.lock().unwrap().clone()
}

#[tokio::test]
async fn tee_feeds_both_and_set_sink_swaps_with_on_close() {
    let rt = start();
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let log = Log::default();
    let s = rt
        .open_stream(StreamConfig {
            remote: Some(peer.local_addr().unwrap()),
            sink: Some(Box::new(TeeSink::new(tag("amd", &log), tag("rec", &log)))),
            ..StreamConfig::new(Law::Mu)
        })
        .unwrap();
    send(&peer, s.local_addr(), 0..3).await;
    let got = lines(&log, 6).await;
    assert_eq!(got, ["amd 0", "rec 0", "amd 1", "rec 1", "amd 2", "rec 2"]);

    // Swap: both tee members are closed, then only the new sink receives.
    s.set_sink(Some(tag("new", &log))).unwrap();
    let got = lines(&log, 8).await;
    assert_eq!(got[6..], ["amd closed", "rec closed"]);
    send(&peer, s.local_addr(), 3..5).await;
    let got = lines(&log, 10).await;
    assert_eq!(got[8..], ["new 3", "new 4"]);

    // No sink: the old one is closed, packets are still counted by the session.
    s.set_sink(None).unwrap();
    let got = lines(&log, 11).await;
    assert_eq!(got[10..], ["new closed"]);
    send(&peer, s.local_addr(), 5..7).await;
    let mut stats = None;
    for _ in 0..500 {
        stats = s.stats().await;
        if stats.is_some_and(|r| r.stats.packets == 7) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(stats.map(|r| r.stats.packets), Some(7));
    assert_eq!(log.lock().unwrap().len(), 11);
    s.close();
    rt.shutdown();
}

#[tokio::test]
async fn closing_the_stream_or_the_runtime_closes_its_sink() {
    let rt = start();
    let log = Log::default();
    let a = rt
        .open_stream(StreamConfig {
            sink: Some(tag("a", &log)),
            ..StreamConfig::new(Law::A)
        })
        .unwrap();
    let b = rt
        .open_stream(StreamConfig {
            sink: Some(tag("b", &log)),
            ..StreamConfig::new(Law::A)
        })
        .unwrap();
    a.close();
    assert_eq!(lines(&log, 1).await, ["a closed"]);
    // Shutdown closes what is still open; b's handle outlives the runtime harmlessly.
    rt.shutdown();
    assert_eq!(log.lock().unwrap().clone(), ["a closed", "b closed"]);
    assert!(b.set_sink(None).is_err());
}
