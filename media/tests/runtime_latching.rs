//! Symmetric RTP latching and DTMF through the media runtime, on 127.0.0.1 with plain UDP
//! sockets as the far end. Waits are bounded; assertions are on counts and addresses.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_media::dtmf::TelephoneEvent;
use switchboard_media::g711::Law;
use switchboard_media::rtp::{RtpBuilder, RtpPacket};
use switchboard_media::runtime::{
    FrameSink, MediaHandle, MediaRuntime, ReceivedFrame, RuntimeConfig, Silence, StreamConfig,
    StreamHandle, StreamReport,
};
use switchboard_media::session::SessionEvent;
use tokio::net::UdpSocket;

fn start() -> MediaHandle {
    MediaRuntime::start(RuntimeConfig {
        loops: 1,
        bind_ip: "127.0.0.1".parse().unwrap(),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 12 + payload.len()];
    let n = RtpBuilder::new(pt, seq, ts, ssrc)
        .write(&mut buf, payload)
        .unwrap();
    buf.truncate(n);
    buf
}

/// Waits (bounded) for one RTP packet from `from`; returns its payload type.
async fn next_rtp_from(sock: &UdpSocket, from: SocketAddr) -> Option<u8> {
    let mut buf = [0u8; 2048];
    loop {
        let (n, src) = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut buf))
            .await
            .ok()?
            .ok()?;
        if src == from {
            if let Ok(p) = RtpPacket::parse(&buf[..n]) {
                return Some(p.payload_type());
            }
        }
    }
}

async fn stats_when(s: &StreamHandle, mut done: impl FnMut(&StreamReport) -> bool) -> StreamReport {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = s.stats().await.expect("stream open");
        if done(&r) || tokio::time::Instant::now() >= deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn latches_to_the_source_and_relatches_when_the_source_port_changes() {
    let rt = start();
    // No remote from SDP: the stream sends only once it has latched.
    let s = rt
        .open_stream(StreamConfig {
            source: Some(Box::new(Silence)),
            ..StreamConfig::new(Law::Mu)
        })
        .unwrap();
    let p1 = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let p1_addr = p1.local_addr().unwrap();
    for seq in 0..3u16 {
        p1.send_to(
            &rtp(0, seq, u32::from(seq) * 160, 0x1000, &[0xff; 160]),
            s.local_addr(),
        )
        .await
        .unwrap();
    }
    let r = stats_when(&s, |r| r.latched.is_some()).await;
    assert_eq!(r.latched, Some((p1_addr, 0x1000)));
    assert_eq!(r.remote, Some(p1_addr));
    // Symmetric RTP: our audio now goes where the peer's comes from.
    assert_eq!(next_rtp_from(&p1, s.local_addr()).await, Some(0));

    // The peer's media moves to a new port with a new SSRC (e.g. a new socket after a
    // transfer): the first 4 packets are dropped, the 5th relatches.
    let p2 = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let p2_addr = p2.local_addr().unwrap();
    assert_ne!(p1_addr, p2_addr);
    for seq in 0..8u16 {
        p2.send_to(
            &rtp(0, 500 + seq, u32::from(seq) * 160, 0x2000, &[0xff; 160]),
            s.local_addr(),
        )
        .await
        .unwrap();
    }
    let r = stats_when(&s, |r| r.stats.packets >= 4).await;
    assert_eq!(r.latched, Some((p2_addr, 0x2000)));
    assert_eq!(r.remote, Some(p2_addr));
    assert_eq!(r.counters.relatches, 1);
    assert_eq!(r.counters.dropped_source, 4);
    // Statistics restarted for the new source: packets 5..8 of p2.
    assert_eq!(r.stats.packets, 4);
    assert_eq!(next_rtp_from(&p2, s.local_addr()).await, Some(0));

    // After latching, packets from elsewhere with the latched SSRC are dropped, and the old
    // port is not taken back while the new one is active.
    for seq in 0..3u16 {
        p1.send_to(&rtp(0, 900 + seq, 0, 0x2000, &[0xff; 160]), s.local_addr())
            .await
            .unwrap();
    }
    let r = stats_when(&s, |r| r.counters.dropped_source >= 7).await;
    assert_eq!(r.counters.dropped_source, 7);
    assert_eq!(r.latched, Some((p2_addr, 0x2000)));
    s.close();
    rt.shutdown();
}

#[derive(Clone, Default)]
struct Digits(Arc<Mutex<Vec<char>>>);

impl FrameSink for Digits {
    fn on_frame(&mut self, _: &ReceivedFrame<'_>) {}
    fn on_event(&mut self, event: &SessionEvent) {
        if let SessionEvent::Dtmf(d) = event {
            self.0.lock().unwrap().extend(d.digit);
        }
    }
}

#[tokio::test]
async fn dtmf_is_sent_and_received() {
    let rt = start();
    let digits = Digits::default();
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let s = rt
        .open_stream(StreamConfig {
            remote: Some(peer.local_addr().unwrap()),
            sink: Some(Box::new(digits.clone())),
            ..StreamConfig::new(Law::Mu)
        })
        .unwrap();
    // In: '4' (update, then the end packet three times) and '#', all on payload type 101.
    let mut seq = 0u16;
    for (digit_event, ts) in [(4u8, 8000u32), (11, 16000)] {
        for (end, duration) in [(false, 160u16), (true, 320), (true, 320), (true, 320)] {
            let mut payload = [0u8; 4];
            TelephoneEvent {
                event: digit_event,
                end,
                volume: 10,
                duration,
            }
            .write(&mut payload)
            .unwrap();
            peer.send_to(&rtp(101, seq, ts, 0x77, &payload), s.local_addr())
                .await
                .unwrap();
            seq += 1;
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while digits.0.lock().unwrap().len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(*digits.0.lock().unwrap(), ['4', '#']);

    // Out: a 60 ms digit is 3 packets plus 2 repeated ends, all payload type 101.
    s.send_dtmf('7', Duration::from_millis(60)).unwrap();
    let mut pts = Vec::new();
    for _ in 0..5 {
        pts.extend(next_rtp_from(&peer, s.local_addr()).await);
    }
    assert_eq!(pts, [101; 5]);
    assert!(s.send_dtmf('x', Duration::from_millis(60)).is_err());
    s.close();
    rt.shutdown();
}
