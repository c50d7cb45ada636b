//! The media runtime on 127.0.0.1: streams exchanging audio, 200 concurrent streams, bridging.
//! Waits are bounded; assertions are on counts and contents, never on timing.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_media::g711::Law;
use switchboard_media::rtp::{RtpBuilder, RtpPacket};
use switchboard_media::runtime::{
    FrameSink, FrameSource, MediaHandle, MediaRuntime, ReceivedFrame, RuntimeConfig, SourceFrame,
    StreamConfig,
};
use switchboard_media::Error;
use tokio::net::UdpSocket;

fn start(loops: usize) -> MediaHandle {
    MediaRuntime::start(RuntimeConfig {
        loops,
        bind_ip: "127.0.0.1".parse().unwrap(),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

/// Sends `n` frames; frame `i` carries `i` in its first two bytes.
struct Numbered {
    next: u16,
    n: u16,
}

impl FrameSource for Numbered {
    fn next_frame(&mut self, law: Law, out: &mut [u8; 160]) -> SourceFrame {
        if self.next == self.n {
            return SourceFrame::End;
        }
        out.fill(law.silence());
        out[..2].copy_from_slice(&self.next.to_be_bytes());
        self.next += 1;
        SourceFrame::Audio
    }
}

fn numbered(n: u16) -> Option<Box<dyn FrameSource>> {
    Some(Box::new(Numbered { next: 0, n }))
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Got {
    index: u16,
    seq: u16,
    ts: u32,
    pcm0: i16,
    samples: usize,
}

/// Keeps what arrives (a lock in a test sink is fine; the runtime itself takes none).
#[derive(Clone, Default)]
struct Keep(Arc<Mutex<Vec<Got>>>);

impl FrameSink for Keep {
    fn on_frame(&mut self, f: &ReceivedFrame<'_>) {
        self.0.lock().unwrap().push(Got {
            index: u16::from_be_bytes([f.payload[0], f.payload[1]]),
            seq: f.sequence,
            ts: f.timestamp,
            pcm0: f.pcm[0],
            samples: f.pcm.len(),
        });
    }
}

impl Keep {
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

#[derive(Clone, Default)]
struct Count(Arc<AtomicUsize>);

impl FrameSink for Count {
    fn on_frame(&mut self, _: &ReceivedFrame<'_>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Polls `done` every 20 ms for at most `limit`.
async fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn two_streams_exchange_50_frames_each_way_in_order() {
    let rt = start(2);
    let (ka, kb) = (Keep::default(), Keep::default());
    let a = rt
        .open_stream(StreamConfig {
            source: numbered(50),
            sink: Some(Box::new(ka.clone())),
            ..StreamConfig::new(Law::Mu)
        })
        .unwrap();
    let b = rt
        .open_stream(StreamConfig {
            remote: Some(a.local_addr()),
            source: numbered(50),
            sink: Some(Box::new(kb.clone())),
            ..StreamConfig::new(Law::Mu)
        })
        .unwrap();
    a.set_remote(b.local_addr()).unwrap();
    assert_eq!(a.local_addr().port() % 2, 0);
    assert_eq!(a.rtcp_addr().port(), a.local_addr().port() + 1);

    wait_for(Duration::from_secs(20), || ka.len() >= 50 && kb.len() >= 50).await;
    for (name, keep, handle, peer) in [("a", &ka, &a, &b), ("b", &kb, &b, &a)] {
        let got = keep.0.lock().unwrap().clone();
        let indexes: Vec<u16> = got.iter().map(|g| g.index).collect();
        assert_eq!(indexes, (0..50).collect::<Vec<_>>(), "{name} frames");
        for w in got.windows(2) {
            assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "{name} sequence");
            assert_eq!(w[1].ts, w[0].ts.wrapping_add(160), "{name} timestamp");
        }
        assert!(got.iter().all(|g| g.samples == 160));
        // Frame 0 starts with bytes 0, 0: μ-law code 0 decodes to -32124.
        assert_eq!(got[0].pcm0, Law::Mu.decode_sample(0));

        let r = handle.stats().await.expect("stream open");
        assert_eq!(r.stats.packets, 50, "{name}");
        assert_eq!(r.stats.lost, 0, "{name}");
        assert_eq!(r.stats.duplicates + r.stats.out_of_order, 0, "{name}");
        assert_eq!(r.counters.packets_sent, 50, "{name}");
        assert_eq!(r.send_errors, 0, "{name}");
        assert_eq!(r.latched.map(|l| l.0), Some(peer.local_addr()), "{name}");
    }
    let loops = rt.loop_stats();
    assert_eq!(loops.iter().map(|l| l.streams).sum::<u64>(), 2);
    a.close();
    b.close();
    rt.shutdown();
}

#[tokio::test]
async fn two_hundred_streams_in_one_runtime_all_receive() {
    let rt = start(2);
    let mut handles = Vec::new();
    let mut counts = Vec::new();
    for pair in 0..100 {
        let law = if pair % 2 == 0 { Law::Mu } else { Law::A };
        let (ca, cb) = (Count::default(), Count::default());
        let a = rt
            .open_stream(StreamConfig {
                source: numbered(50),
                sink: Some(Box::new(ca.clone())),
                ..StreamConfig::new(law)
            })
            .unwrap();
        let b = rt
            .open_stream(StreamConfig {
                remote: Some(a.local_addr()),
                source: numbered(50),
                sink: Some(Box::new(cb.clone())),
                ..StreamConfig::new(law)
            })
            .unwrap();
        a.set_remote(b.local_addr()).unwrap();
        handles.push(a);
        handles.push(b);
        counts.push(ca);
        counts.push(cb);
    }
    let total = || {
        counts
            .iter()
            .map(|c| c.0.load(Ordering::Relaxed))
            .sum::<usize>()
    };
    wait_for(Duration::from_secs(30), || total() >= 200 * 50).await;
    let per_stream: Vec<usize> = counts.iter().map(|c| c.0.load(Ordering::Relaxed)).collect();
    for (i, &n) in per_stream.iter().enumerate() {
        if n != 50 {
            let r = handles[i].stats().await;
            let p = handles[i ^ 1].stats().await;
            let peer = p.map(|p| (p.counters, p.send_errors));
            eprintln!(
                "stream {i}: sink {n}, own {:?}, peer {peer:?}",
                r.map(|r| r.stats)
            );
        }
    }
    eprintln!("{:?}", rt.loop_stats());
    assert!(per_stream.iter().all(|&n| n == 50), "{per_stream:?}");
    for h in &handles {
        let r = h.stats().await.expect("open");
        assert_eq!((r.stats.packets, r.stats.lost), (50, 0));
    }
    let loops = rt.loop_stats();
    assert_eq!(loops.len(), 2);
    assert_eq!(loops.iter().map(|l| l.streams).sum::<u64>(), 200);
    assert!(loops.iter().all(|l| l.streams == 100));
    drop(handles);
    rt.shutdown();
}

fn rtp(law: Law, seq: u16, ssrc: u32, fill: u8) -> Vec<u8> {
    let mut buf = vec![0u8; 172];
    let n = RtpBuilder::new(law.payload_type(), seq, u32::from(seq) * 160, ssrc)
        .write(&mut buf, &[fill; 160])
        .unwrap();
    buf.truncate(n);
    buf
}

/// Receives RTP packets from `from` until `n` arrived (bounded wait); returns
/// (ssrc, seq, payload type, payload).
async fn recv_from(sock: &UdpSocket, from: SocketAddr, n: usize) -> Vec<(u32, u16, u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while out.len() < n {
        let Ok(Ok((len, src))) =
            tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut buf)).await
        else {
            break;
        };
        if src != from {
            continue;
        }
        if let Ok(p) = RtpPacket::parse(&buf[..len]) {
            out.push((
                p.ssrc(),
                p.sequence_number(),
                p.payload_type(),
                p.payload().to_vec(),
            ));
        }
    }
    out
}

#[tokio::test]
async fn bridge_relays_payload_both_ways_and_transcodes_when_laws_differ() {
    let rt = start(2);
    let pa = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let pb = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let a = rt
        .open_stream(StreamConfig {
            remote: Some(pa.local_addr().unwrap()),
            ..StreamConfig::new(Law::Mu)
        })
        .unwrap();
    let b = rt
        .open_stream(StreamConfig {
            remote: Some(pb.local_addr().unwrap()),
            colocate_with: Some(a.id()),
            ..StreamConfig::new(Law::Mu)
        })
        .unwrap();
    assert_eq!(a.id().loop_index(), b.id().loop_index());
    rt.bridge(&a, &b).await.unwrap();

    // PA -> A ==> B -> PB, payload copied, B's own SSRC and continuous sequence.
    for seq in 0..20u16 {
        pa.send_to(&rtp(Law::Mu, 1000 + seq, 0xA, seq as u8), a.local_addr())
            .await
            .unwrap();
    }
    let got = recv_from(&pb, b.local_addr(), 20).await;
    assert_eq!(got.len(), 20);
    let ssrc_b = got[0].0;
    assert_ne!(ssrc_b, 0xA);
    for (i, (ssrc, seq, pt, payload)) in got.iter().enumerate() {
        assert_eq!((*ssrc, *pt), (ssrc_b, 0));
        assert_eq!(*seq, got[0].1.wrapping_add(i as u16));
        assert_eq!(payload, &vec![i as u8; 160]);
    }
    // PB -> B ==> A -> PA.
    for seq in 0..20u16 {
        pb.send_to(&rtp(Law::Mu, seq, 0xB, 100 + seq as u8), b.local_addr())
            .await
            .unwrap();
    }
    let got = recv_from(&pa, a.local_addr(), 20).await;
    assert_eq!(got.len(), 20);
    for (i, (_, _, _, payload)) in got.iter().enumerate() {
        assert_eq!(payload, &vec![100 + i as u8; 160]);
    }

    // μ-law leg bridged to an A-law leg: transcoded sample by sample.
    let pc = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let pd = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let c = rt
        .open_stream(StreamConfig {
            remote: Some(pc.local_addr().unwrap()),
            ..StreamConfig::new(Law::Mu)
        })
        .unwrap();
    let d = rt
        .open_stream(StreamConfig {
            remote: Some(pd.local_addr().unwrap()),
            colocate_with: Some(c.id()),
            ..StreamConfig::new(Law::A)
        })
        .unwrap();
    rt.bridge(&c, &d).await.unwrap();
    for seq in 0..5u16 {
        pc.send_to(&rtp(Law::Mu, seq, 0xC, 0x10 + seq as u8), c.local_addr())
            .await
            .unwrap();
    }
    let got = recv_from(&pd, d.local_addr(), 5).await;
    assert_eq!(got.len(), 5);
    for (i, (_, _, pt, payload)) in got.iter().enumerate() {
        let expect = Law::A.encode_sample(Law::Mu.decode_sample(0x10 + i as u8));
        assert_eq!(*pt, 8);
        assert!(payload.iter().all(|&x| x == expect));
    }

    // Streams of two loops cannot be bridged.
    let e = rt.open_stream(StreamConfig::new(Law::Mu)).unwrap();
    let f = rt.open_stream(StreamConfig::new(Law::Mu)).unwrap();
    if e.id().loop_index() != f.id().loop_index() {
        assert_eq!(rt.bridge(&e, &f).await, Err(Error::BridgeAcrossLoops));
    }
    let ra = a.stats().await.unwrap();
    assert_eq!(ra.counters.packets_sent, 20);
    drop((a, b, c, d, e, f));
    rt.shutdown();
}
