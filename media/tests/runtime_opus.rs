//! Opus streams in the media runtime on 127.0.0.1: audio that arrives decoded and correlates
//! with what was sent, the 48 kHz RTP clock, concealment of lost frames, a codec set after
//! negotiation, and bridges between legs of different codecs (transcoded through 8 kHz PCM)
//! and of the same codec on different payload types (passed through). Waits are bounded;
//! assertions are on contents, never on timing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_media::g711::Law;
use switchboard_media::runtime::{
    Clip, Codec, FrameSink, FrameSource, LoopingClip, MediaHandle, MediaRuntime, ReceivedFrame,
    RuntimeConfig, SourceFrame, StreamConfig, StreamHandle,
};

fn start() -> MediaHandle {
    MediaRuntime::start(RuntimeConfig {
        loops: 1,
        bind_ip: "127.0.0.1".parse().unwrap(),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

/// A voice-like signal: harmonics 2–8 of a pitch gliding around `f0`, syllable-rate
/// amplitude.
fn voice(seconds: f64, f0: f64) -> Vec<i16> {
    let tau = 2.0 * std::f64::consts::PI;
    let mut phase = 0.0f64;
    (0..(seconds * 8000.0) as usize)
        .map(|i| {
            let t = i as f64 / 8000.0;
            phase += tau * (f0 + 0.25 * f0 * (tau * 0.7 * t).sin()) / 8000.0;
            let env = 0.55 + 0.45 * (tau * 3.0 * t).sin();
            let s: f64 = (2..=8)
                .map(|k| (f64::from(k) * phase).sin() / f64::from(k))
                .sum();
            (env * s * 12_000.0) as i16
        })
        .collect()
}

/// Best normalized correlation of `got` against `sent` over lags 0..max_lag (the codec and
/// the first packets' timing delay the received audio).
fn correlation(sent: &[i16], got: &[i16], max_lag: usize) -> f64 {
    let mut best = f64::MIN;
    for lag in 0..max_lag {
        let n = sent.len().min(got.len().saturating_sub(lag));
        let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
        for i in 0..n {
            let (x, y) = (f64::from(sent[i]), f64::from(got[i + lag]));
            xy += x * y;
            xx += x * x;
            yy += y * y;
        }
        best = best.max(xy / (xx * yy).sqrt().max(1.0));
    }
    best
}

#[derive(Debug, Clone)]
struct Frame {
    codec: Codec,
    concealed: bool,
    seq: u16,
    ts: u32,
    payload: Vec<u8>,
    pcm: Vec<i16>,
}

/// Keeps what arrives (a lock in a test sink is fine; the runtime itself takes none).
#[derive(Clone, Default)]
struct Keep(Arc<Mutex<Vec<Frame>>>);

impl FrameSink for Keep {
    fn on_frame(&mut self, f: &ReceivedFrame<'_>) {
        self.0.lock().unwrap().push(Frame {
            codec: f.codec,
            concealed: f.concealed,
            seq: f.sequence,
            ts: f.timestamp,
            payload: f.payload.to_vec(),
            pcm: f.pcm.to_vec(),
        });
    }
}

impl Keep {
    fn frames(&self) -> Vec<Frame> {
        self.0.lock().unwrap().clone()
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// The received audio, with silence where frames are missing (by timestamp).
    fn audio(&self) -> Vec<i16> {
        let frames = self.frames();
        let Some(first) = frames.first() else {
            return Vec::new();
        };
        let per_sample = first.codec.clock_rate() / 8000;
        let mut out = Vec::new();
        for f in &frames {
            let at = (f.ts.wrapping_sub(first.ts) / per_sample) as usize;
            if out.len() < at + f.pcm.len() {
                out.resize(at + f.pcm.len(), 0);
            }
            out[at..at + f.pcm.len()].copy_from_slice(&f.pcm);
        }
        out
    }
}

/// Polls `done` every 20 ms for at most `limit`.
async fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn once(pcm: &[i16]) -> Option<Box<dyn FrameSource>> {
    Some(Box::new(LoopingClip::once(Clip::from_pcm(pcm))))
}

/// Two streams sending to each other.
fn pair(rt: &MediaHandle, a: StreamConfig, b: StreamConfig) -> (StreamHandle, StreamHandle) {
    let a = rt.open_stream(a).unwrap();
    let b = rt
        .open_stream(StreamConfig {
            remote: Some(a.local_addr()),
            ..b
        })
        .unwrap();
    a.set_remote(b.local_addr()).unwrap();
    (a, b)
}

#[tokio::test]
async fn opus_audio_arrives_decoded_on_a_48khz_clock() {
    let rt = start();
    let sent = voice(3.0, 150.0);
    let keep = Keep::default();
    let (a, b) = pair(
        &rt,
        StreamConfig::new(Codec::opus(111)),
        StreamConfig {
            sink: Some(Box::new(keep.clone())),
            ..StreamConfig::new(Codec::opus(111))
        },
    );
    a.set_source(once(&sent)).unwrap();
    wait_for(Duration::from_secs(20), || keep.len() >= 150).await;
    let frames = keep.frames();
    assert_eq!(frames.len(), 150);
    for f in &frames {
        assert_eq!(f.codec, Codec::opus(111));
        assert!(!f.concealed);
        assert_eq!(f.pcm.len(), 160, "8 kHz frames for the sinks");
        // Compressed: a 20 ms Opus packet at 16 kb/s is about 40 bytes, not G.711's 160.
        assert!(f.payload.len() < 100, "{} bytes", f.payload.len());
    }
    for w in frames.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
        assert_eq!(w[1].ts, w[0].ts.wrapping_add(960), "48 kHz RTP clock");
    }
    let c = correlation(&sent, &keep.audio(), 400);
    assert!(c > 0.9, "correlation {c}");
    let report = b.stats().await.unwrap();
    assert_eq!(report.codec, Codec::opus(111));
    assert_eq!(report.stats.packets, 150);
    assert_eq!((report.decode_errors, report.concealed_frames), (0, 0));
    let sender = a.stats().await.unwrap();
    assert_eq!(sender.counters.packets_sent, 150);
    assert!(sender.counters.octets_sent < 150 * 100);
    drop((a, b));
    rt.shutdown();
}

/// Plays a clip and says every `every`-th frame is lost on the way.
struct Lossy {
    inner: LoopingClip,
    every: usize,
    n: usize,
}

impl Lossy {
    fn step(&mut self, f: SourceFrame) -> SourceFrame {
        self.n += 1;
        match f {
            SourceFrame::Audio if self.n % self.every == 0 => SourceFrame::Lost,
            f => f,
        }
    }
}

impl FrameSource for Lossy {
    fn next_frame(&mut self, law: Law, out: &mut [u8; 160]) -> SourceFrame {
        let f = self.inner.next_frame(law, out);
        self.step(f)
    }

    fn next_pcm(&mut self, out: &mut [i16; 160]) -> SourceFrame {
        let f = self.inner.next_pcm(out);
        self.step(f)
    }
}

#[tokio::test]
async fn lost_opus_frames_are_concealed_by_the_decoder() {
    let rt = start();
    let sent = voice(3.0, 150.0);
    let keep = Keep::default();
    let (a, b) = pair(
        &rt,
        StreamConfig::new(Codec::opus(111)),
        StreamConfig {
            sink: Some(Box::new(keep.clone())),
            ..StreamConfig::new(Codec::opus(111))
        },
    );
    a.set_source(Some(Box::new(Lossy {
        inner: LoopingClip::once(Clip::from_pcm(&sent)),
        every: 10,
        n: 0,
    })))
    .unwrap();
    // 150 frames, 15 lost on the way (frames 10, 20, ..., 150); the last one has no
    // successor, so 14 are concealed.
    wait_for(Duration::from_secs(20), || keep.len() >= 149).await;
    let frames = keep.frames();
    assert_eq!(frames.len(), 149);
    let concealed: Vec<usize> = (0..frames.len()).filter(|&i| frames[i].concealed).collect();
    assert_eq!(concealed, (1..=14).map(|k| 10 * k - 1).collect::<Vec<_>>());
    for f in frames.iter().filter(|f| f.concealed) {
        assert!(f.payload.is_empty());
        assert_eq!(f.pcm.len(), 160);
        // Concealment continues the voice, it is not silence.
        let energy: f64 = f.pcm.iter().map(|&s| f64::from(s).abs()).sum::<f64>() / 160.0;
        assert!(energy > 50.0, "concealed frame energy {energy}");
    }
    // Every frame in place: the timeline has no hole.
    for w in frames.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
        assert_eq!(w[1].ts, w[0].ts.wrapping_add(960));
    }
    let report = b.stats().await.unwrap();
    assert_eq!(report.concealed_frames, 14);
    assert_eq!(report.stats.lost, 14);
    let c = correlation(&sent, &keep.audio(), 400);
    assert!(c > 0.75, "correlation {c}");
    drop((a, b));
    rt.shutdown();
}

#[tokio::test]
async fn codec_set_after_negotiation() {
    let rt = start();
    let sent = voice(1.0, 180.0);
    let keep = Keep::default();
    // Opened as PCMU for the offer; the answer chose opus on 96.
    let (a, b) = pair(
        &rt,
        StreamConfig::new(Law::Mu),
        StreamConfig {
            sink: Some(Box::new(keep.clone())),
            ..StreamConfig::new(Law::Mu)
        },
    );
    a.set_codec(Codec::opus(96), Some(101)).unwrap();
    b.set_codec(Codec::opus(96), Some(101)).unwrap();
    a.set_source(once(&sent)).unwrap();
    wait_for(Duration::from_secs(20), || keep.len() >= 50).await;
    let frames = keep.frames();
    assert_eq!(frames.len(), 50);
    assert!(frames.iter().all(|f| f.codec == Codec::opus(96)));
    assert!(correlation(&sent, &keep.audio(), 400) > 0.9);
    // And back to G.711.
    a.set_codec(Codec::Pcma, Some(101)).unwrap();
    b.set_codec(Codec::Pcma, Some(101)).unwrap();
    a.set_source(once(&sent)).unwrap();
    wait_for(Duration::from_secs(20), || keep.len() >= 100).await;
    let frames = keep.frames();
    assert!(frames[50..].iter().all(|f| f.codec == Codec::Pcma));
    assert_eq!(b.stats().await.unwrap().codec, Codec::Pcma);
    drop((a, b));
    rt.shutdown();
}

/// X ── lead leg L ══ bridge ══ agent leg G ── Y: X and L speak `lead`, G and Y `agent`.
struct Bridged {
    x: StreamHandle,
    l: StreamHandle,
    g: StreamHandle,
    y: StreamHandle,
    at_x: Keep,
    at_l: Keep,
    at_y: Keep,
}

async fn bridged(rt: &MediaHandle, lead: Codec, agent: Codec) -> Bridged {
    let (at_x, at_l, at_y) = (Keep::default(), Keep::default(), Keep::default());
    let (x, l) = pair(
        rt,
        StreamConfig {
            sink: Some(Box::new(at_x.clone())),
            ..StreamConfig::new(lead)
        },
        StreamConfig {
            sink: Some(Box::new(at_l.clone())),
            ..StreamConfig::new(lead)
        },
    );
    let (y, g) = pair(
        rt,
        StreamConfig {
            sink: Some(Box::new(at_y.clone())),
            ..StreamConfig::new(agent)
        },
        StreamConfig {
            colocate_with: Some(l.id()),
            ..StreamConfig::new(agent)
        },
    );
    rt.bridge(&l, &g).await.unwrap();
    Bridged {
        x,
        l,
        g,
        y,
        at_x,
        at_l,
        at_y,
    }
}

#[tokio::test]
async fn opus_lead_bridged_to_pcmu_agent_is_transcoded_both_ways() {
    let rt = start();
    let b = bridged(&rt, Codec::opus(111), Codec::Pcmu).await;
    let (lead_says, agent_says) = (voice(3.0, 140.0), voice(3.0, 210.0));
    b.x.set_source(once(&lead_says)).unwrap();
    b.y.set_source(once(&agent_says)).unwrap();
    wait_for(Duration::from_secs(20), || {
        b.at_y.len() >= 150 && b.at_x.len() >= 150
    })
    .await;

    // Lead → agent: Opus decoded, sent as μ-law with the agent leg's 8 kHz timestamps.
    let at_y = b.at_y.frames();
    assert_eq!(at_y.len(), 150);
    assert!(at_y
        .iter()
        .all(|f| f.codec == Codec::Pcmu && f.payload.len() == 160));
    for w in at_y.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
        assert_eq!(w[1].ts, w[0].ts.wrapping_add(160));
    }
    let c = correlation(&lead_says, &b.at_y.audio(), 400);
    assert!(c > 0.85, "lead → agent correlation {c}");

    // Agent → lead: μ-law decoded, encoded to Opus in 20 ms frames, 48 kHz timestamps.
    let at_x = b.at_x.frames();
    assert_eq!(at_x.len(), 150);
    assert!(at_x
        .iter()
        .all(|f| f.codec == Codec::opus(111) && f.payload.len() < 100));
    for w in at_x.windows(2) {
        assert_eq!(w[1].ts, w[0].ts.wrapping_add(960));
    }
    let c = correlation(&agent_says, &b.at_x.audio(), 400);
    assert!(c > 0.85, "agent → lead correlation {c}");

    let (l, g) = (b.l.stats().await.unwrap(), b.g.stats().await.unwrap());
    assert_eq!((l.codec, g.codec), (Codec::opus(111), Codec::Pcmu));
    assert_eq!(l.decode_errors + g.decode_errors, 0);
    drop(b);
    rt.shutdown();
}

#[tokio::test]
async fn opus_legs_on_different_payload_types_pass_packets_through() {
    let rt = start();
    let b = bridged(&rt, Codec::opus(111), Codec::opus(96)).await;
    let lead_says = voice(2.0, 160.0);
    b.x.set_source(once(&lead_says)).unwrap();
    wait_for(Duration::from_secs(20), || b.at_y.len() >= 100).await;
    let (at_l, at_y) = (b.at_l.frames(), b.at_y.frames());
    assert_eq!(at_y.len(), 100);
    assert!(at_y.iter().all(|f| f.codec == Codec::opus(96)));
    // The very packets L received, not re-encoded ones, with G's own 48 kHz timeline.
    let payloads = |v: &[Frame]| v.iter().map(|f| f.payload.clone()).collect::<Vec<_>>();
    assert_eq!(payloads(&at_y), payloads(&at_l));
    for w in at_y.windows(2) {
        assert_eq!(w[1].ts, w[0].ts.wrapping_add(960));
    }
    assert!(correlation(&lead_says, &b.at_y.audio(), 400) > 0.9);
    drop(b);
    rt.shutdown();
}
