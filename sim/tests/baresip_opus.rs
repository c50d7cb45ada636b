//! Opus interop with a real libopus peer: Debian's baresip with its `opus.so` module (and no
//! G.711 module), auto-answering. Our offer is opus + telephone-event only; baresip plays a
//! known WAV into the call (its `aufile` source) and records what it decodes (`sndfile`).
//! Both directions must carry the audio: what we decode correlates with baresip's WAV, and
//! baresip's recording correlates with what we sent.
//!
//! Without baresip (or its opus module) the test prints a notice and passes, unless
//! SWITCHBOARD_REQUIRE_INTEROP=1 (CI), then it fails.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_media::codec::Codec as MediaCodec;
use switchboard_media::playback::decode_clip;
use switchboard_media::runtime::{
    Clip, FrameSink, LoopingClip, MediaRuntime, ReceivedFrame, RuntimeConfig, StreamConfig,
};
use switchboard_sip::endpoint::{CallConfig, CallEvent, Endpoint, EndpointConfig};
use switchboard_sip::sdp::{Codec, LocalMedia};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(15);
const OPUS_MODULE: &str = "/usr/lib/baresip/modules/opus.so";
/// Seconds of audio each side plays.
const SECONDS: f64 = 4.0;

struct Baresip {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Baresip {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("baresip.log")).unwrap_or_default()
    }

    /// Ends baresip (SIGTERM, then SIGKILL after 3 s) so its recording is closed.
    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..30 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn installed() -> bool {
    let found = Path::new(OPUS_MODULE).exists()
        && Command::new("baresip")
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
    if !found {
        if std::env::var("SWITCHBOARD_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("baresip with {OPUS_MODULE} is not installed but SWITCHBOARD_REQUIRE_INTEROP=1");
        }
        eprintln!(
            "NOTICE: baresip or its opus module not installed; skipping the Opus interop test"
        );
    }
    found
}

/// A voice-like signal sampled at `rate`: harmonics 2–8 of a pitch gliding around `f0`
/// (at most 1.9 kHz, inside every rate's band), with a syllable-rate envelope. The same
/// function at 8 kHz and at 48 kHz is the same sound.
fn voice(rate: u32, seconds: f64, f0: f64) -> Vec<i16> {
    let tau = 2.0 * std::f64::consts::PI;
    let rate = f64::from(rate);
    let mut phase = 0.0f64;
    (0..(seconds * rate) as usize)
        .map(|i| {
            let t = i as f64 / rate;
            phase += tau * (f0 + 0.25 * f0 * (tau * 0.7 * t).sin()) / rate;
            let env = 0.55 + 0.45 * (tau * 3.0 * t).sin();
            let s: f64 = (2..=8)
                .map(|k| (f64::from(k) * phase).sin() / f64::from(k))
                .sum();
            (env * s * 9000.0) as i16
        })
        .collect()
}

/// A mono 16-bit WAV file.
fn wav(rate: u32, samples: &[i16]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// The best normalized correlation of a 1 s window from the middle of `sent` (8 kHz)
/// anywhere in `got`, and where it was found.
fn best_match(sent: &[i16], got: &[i16]) -> (f64, usize) {
    let window = &sent[sent.len() / 2 - 4000..sent.len() / 2 + 4000];
    let ww: f64 = window.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    let mut best = (f64::MIN, 0);
    for at in 0..got.len().saturating_sub(window.len()) {
        let g = &got[at..at + window.len()];
        let (mut xy, mut yy) = (0.0, 0.0);
        for (&x, &y) in window.iter().zip(g) {
            let y = f64::from(y);
            xy += f64::from(x) * y;
            yy += y * y;
        }
        let c = xy / (ww * yy).sqrt().max(1.0);
        if c > best.0 {
            best = (c, at);
        }
    }
    best
}

fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind probe");
        let port = udp.local_addr().expect("probe addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// baresip with only the opus audio codec, playing `play` (48 kHz) and recording what it
/// decodes (`sndfile`: `dump-<peer>-dec.wav` in its folder).
async fn start(play: &[i16]) -> Baresip {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!(
        "switchboard-baresip-opus-{}-{port}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let play_path = dir.join("play.wav");
    std::fs::write(&play_path, wav(48_000, play)).expect("wav");
    let config = format!(
        "poll_method\t\tepoll\n\
         sip_listen\t\t127.0.0.1:{port}\n\
         net_interface\t\t127.0.0.1\n\
         audio_player\t\taufile,{dir}/heard.wav\n\
         audio_source\t\taufile,{play}\n\
         audio_alert\t\taufile,{play}\n\
         ausrc_srate\t\t48000\n\
         auplay_srate\t\t48000\n\
         ausrc_channels\t\t1\n\
         auplay_channels\t\t1\n\
         module_path\t\t/usr/lib/baresip/modules\n\
         module\t\t\topus.so\n\
         module\t\t\taufile.so\n\
         module\t\t\tsndfile.so\n\
         snd_path\t\t{dir}\n\
         module_tmp\t\taccount.so\n\
         module_app\t\tmenu.so\n\
         opus_bitrate\t\t32000\n\
         opus_stereo\t\tno\n\
         opus_sprop_stereo\tno\n",
        dir = dir.display(),
        play = play_path.display()
    );
    std::fs::write(dir.join("config"), config).expect("config");
    std::fs::write(
        dir.join("accounts"),
        "<sip:bob@127.0.0.1>;regint=0;answermode=auto\n",
    )
    .expect("accounts");
    std::fs::write(dir.join("contacts"), "").expect("contacts");
    let log = std::fs::File::create(dir.join("baresip.log")).expect("log");
    let child = Command::new("baresip")
        .arg("-f")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn baresip");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let b = Baresip { child, dir, addr };
    wait_ready(addr).await;
    b
}

async fn wait_ready(addr: SocketAddr) {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let me = sock.local_addr().expect("addr");
    let mut buf = vec![0u8; 4096];
    for i in 1..=100 {
        let probe = format!(
            "OPTIONS sip:bob@{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKready{i}\r\n\
             From: <sip:probe@{me}>;tag=r\r\nTo: <sip:bob@{addr}>\r\nCall-ID: ready{i}@test\r\n\
             CSeq: {i} OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        let _ = sock.send_to(probe.as_bytes(), addr).await;
        if let Ok(Ok(_)) = timeout(Duration::from_millis(200), sock.recv_from(&mut buf)).await {
            return;
        }
    }
    panic!("baresip did not answer OPTIONS within 20 s");
}

/// Keeps every decoded sample and counts the frames.
#[derive(Clone, Default)]
struct Keep(Arc<Mutex<(Vec<i16>, Vec<MediaCodec>)>>);

impl FrameSink for Keep {
    fn on_frame(&mut self, f: &ReceivedFrame<'_>) {
        let mut k = self.0.lock().expect("lock");
        k.0.extend_from_slice(f.pcm);
        k.1.push(f.codec);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opus_both_ways_with_baresip() {
    if !installed() {
        return;
    }
    // What baresip plays (at 48 kHz, its codec rate) and the same sound at our 8 kHz.
    let theirs_48k = voice(48_000, SECONDS + 2.0, 130.0);
    let theirs = voice(8000, SECONDS + 2.0, 130.0);
    let ours = voice(8000, SECONDS, 210.0);
    let mut b = start(&theirs_48k).await;

    let media = MediaRuntime::start(RuntimeConfig {
        loops: 1,
        bind_ip: "127.0.0.1".parse().expect("ip"),
        port_min: 31000,
        port_max: 31999,
        ..RuntimeConfig::default()
    })
    .expect("media");
    let keep = Keep::default();
    let stream = media
        .open_stream(StreamConfig {
            sink: Some(Box::new(keep.clone())),
            ..StreamConfig::new(MediaCodec::opus(111))
        })
        .expect("stream");
    let ep = timeout(
        WAIT,
        Endpoint::bind(EndpointConfig::new(([127, 0, 0, 1], 0).into())),
    )
    .await
    .expect("bind in time")
    .expect("bind");
    let mut local = LocalMedia::new("127.0.0.1", stream.local_addr().port(), 7);
    local.codecs = vec![Codec::opus(111), Codec::telephone_event(101)];
    let mut call = ep
        .call(CallConfig::new(
            &format!("sip:bob@{}", b.addr),
            "sip:alice@127.0.0.1",
            local,
        ))
        .await
        .expect("call");
    loop {
        match timeout(WAIT, call.next_event()).await.expect("in time") {
            Some(CallEvent::Answered { media: m, .. }) => {
                assert!(
                    m.codec.name.eq_ignore_ascii_case("opus") && m.codec.clock_rate == 48_000,
                    "opus agreed: {:?}",
                    m.codec
                );
                let codec = MediaCodec::from_rtpmap(
                    &m.codec.name,
                    m.codec.clock_rate,
                    m.codec.payload_type,
                )
                .expect("a codec we carry");
                assert_eq!(codec, MediaCodec::opus(111));
                let ip = m.remote_address.parse().expect("remote ip");
                stream
                    .set_remote(SocketAddr::new(ip, m.remote_port))
                    .expect("remote");
                stream
                    .set_codec(codec, m.telephone_event.as_ref().map(|t| t.payload_type))
                    .expect("codec");
                stream
                    .set_source(Some(Box::new(LoopingClip::once(Clip::from_pcm(&ours)))))
                    .expect("source");
                break;
            }
            Some(CallEvent::Ended(cause)) => panic!("ended: {cause:?}\nbaresip log:\n{}", b.log()),
            Some(_) => {}
            None => panic!("call handle closed"),
        }
    }
    // Our clip plays for SECONDS; give it a second more to arrive.
    tokio::time::sleep(Duration::from_secs_f64(SECONDS + 1.0)).await;
    let report = stream.stats().await.expect("stats");
    call.hangup().expect("hangup");
    let _ = timeout(WAIT, async {
        while let Some(ev) = call.next_event().await {
            if matches!(ev, CallEvent::Ended(_)) {
                break;
            }
        }
    })
    .await;
    b.stop();
    drop(stream);
    media.shutdown();

    // baresip → us: libopus packets decoded by our decoder.
    assert_eq!(report.codec, MediaCodec::opus(111));
    assert_eq!(report.decode_errors, 0, "baresip log:\n{}", b.log());
    let (heard, codecs) = keep.0.lock().expect("lock").clone();
    assert!(
        codecs.len() >= 150,
        "{} frames from baresip\nbaresip log:\n{}",
        codecs.len(),
        b.log()
    );
    assert!(codecs.iter().all(|&c| c == MediaCodec::opus(111)));
    let (c, at) = best_match(&theirs, &heard);
    eprintln!("baresip → us: correlation {c:.3} at {at}");
    assert!(c > 0.8, "baresip → us correlation {c} at sample {at}");

    // us → baresip: our packets decoded by libopus, recorded by baresip.
    let dumped = std::fs::read_dir(&b.dir)
        .expect("baresip's folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .unwrap_or_else(|| panic!("no sndfile recording\nbaresip log:\n{}", b.log()));
    let bytes = std::fs::read(dumped).expect("baresip's recording");
    let recorded = decode_clip(&bytes, None).expect("a WAV");
    let (c, at) = best_match(&ours, recorded.pcm());
    eprintln!("us → baresip: correlation {c:.3} at {at}");
    assert!(
        c > 0.8,
        "us → baresip correlation {c} at sample {at}\nbaresip log:\n{}",
        b.log()
    );
}
