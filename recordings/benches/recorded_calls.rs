//! Load bench: N concurrent G.711 calls, both directions, every call recorded.
//!
//! A call is two streams of the media runtime on 127.0.0.1 sending a 20 ms μ-law packet to
//! each other every tick (50 packets/s each way); what each receives goes through statistics
//! into one channel of the call's recording (lead left, agent right), written by one
//! recording-writer thread into a temporary directory. The traffic generator is the same
//! process, so the CPU figures cover sending and receiving.
//!
//! `cpu us/pkt` is the process's CPU time per received packet (send + receive + statistics +
//! recording), `writer us` the part of it spent in the recording-writer thread.
//!
//! For each N: 1.5 s warm-up, a 4 s window, then every recording is stopped and every
//! stream's statistics read. N is carried **strictly** when, in the window, no pacing tick
//! started more than 10 ms late (or was skipped), and over the whole run no packet was lost
//! (RFC 3550 cumulative loss of every stream), none was dropped by a recorder (hand-off ring
//! full) and no sample reached its recorder too late to be written; **loosely** (the criterion
//! of `media/benches/rtp_loop.rs`, for a machine shared with other work) when late ticks stay
//! under 1 % and losses and recorder drops under 0.1 %. The run stops at the first N not
//! carried loosely.
//!
//! With `--relay` a call is the dialer's real shape instead: lead phone ⇄ lead leg ⇄ bridge ⇄
//! agent leg ⇄ agent phone (four streams; the legs receive, run statistics, record and relay
//! to the other phone with their own SSRC/sequence/timestamp), 200 packets received per call
//! per second.
//!
//! With `--opus` the lead side speaks Opus (16 kb/s, complexity 5): without `--relay` both
//! streams of a call are Opus (each packet encoded by the sender and decoded by the receiver,
//! both in this process); with `--relay` the lead phone and lead leg are Opus and the agent leg
//! and phone PCMU, so the bridge transcodes both ways (the dialer's Opus-carrier shape). The
//! media bench (`cargo bench -p switchboard-media --bench opus`) splits the cost per frame.
//!
//! `cargo bench -p switchboard-recordings --bench recorded_calls [-- [--relay] [--opus] N,N,...]`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_media::runtime::{
    Clip, Codec, FrameSource, LoopStats, LoopingClip, MediaRuntime, NullSink, RuntimeConfig,
    StreamConfig, StreamHandle,
};
use switchboard_recordings::{Channel, RecorderOptions, RecordingWriter};

const WARMUP: Duration = Duration::from_millis(1500);
const WINDOW: Duration = Duration::from_secs(4);
const BUDGET: Duration = Duration::from_secs(240);

/// CPU time of the whole process and of its recording-writer threads (sum of the threads'
/// run time from schedstat).
fn cpu_time() -> (Duration, Duration) {
    let (mut total, mut writer) = (0u64, 0u64);
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for task in dir.flatten() {
            let ns = std::fs::read_to_string(task.path().join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0);
            total += ns;
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim() == "sb-recorder" {
                writer += ns;
            }
        }
    }
    (Duration::from_nanos(total), Duration::from_nanos(writer))
}

fn sum(stats: &[LoopStats]) -> LoopStats {
    stats.iter().fold(LoopStats::default(), |a, s| LoopStats {
        streams: a.streams + s.streams,
        ticks: a.ticks + s.ticks,
        late_ticks: a.late_ticks + s.late_ticks,
        skipped_ticks: a.skipped_ticks + s.skipped_ticks,
        max_lateness_us: a.max_lateness_us.max(s.max_lateness_us),
        packets_sent: a.packets_sent + s.packets_sent,
        packets_received: a.packets_received + s.packets_received,
        send_errors: a.send_errors + s.send_errors,
    })
}

struct Row {
    calls: usize,
    rx_pps: f64,
    cpu_us_per_packet: f64,
    writer_us_per_packet: f64,
    cores: f64,
    late_ticks: u64,
    late_pct: f64,
    max_late_ms: f64,
    lost: u64,
    rec_dropped: u64,
    rec_late_samples: u64,
    recorded_s: f64,
}

async fn run(n: usize, relay: bool, opus: bool, clip: &Arc<Clip>) -> Result<Row, String> {
    let (lead_codec, agent_codec) = if opus {
        (
            Codec::opus(111),
            if relay { Codec::Pcmu } else { Codec::opus(111) },
        )
    } else {
        (Codec::Pcmu, Codec::Pcmu)
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let rt = MediaRuntime::start(RuntimeConfig {
        bind_ip: "127.0.0.1".parse().map_err(|e| format!("{e}"))?,
        ..RuntimeConfig::default()
    })
    .map_err(|e| format!("start: {e}"))?;
    let writer = RecordingWriter::start().map_err(|e| e.to_string())?;
    let mut calls = Vec::with_capacity(n);
    for i in 0..n {
        let rec = writer
            .record(
                dir.path().join(format!("{i}.wav")),
                RecorderOptions::default(),
            )
            .map_err(|e| e.to_string())?;
        let open = |c: StreamConfig| rt.open_stream(c).map_err(|e| format!("open: {e}"));
        let remote = |s: &StreamHandle, to: &StreamHandle| {
            s.set_remote(to.local_addr())
                .map_err(|e| format!("remote: {e}"))
        };
        let source =
            || -> Option<Box<dyn FrameSource>> { Some(Box::new(LoopingClip::new(clip.clone()))) };
        let streams = if relay {
            // Lead phone ⇄ lead leg ⇄ (bridge) ⇄ agent leg ⇄ agent phone.
            let lead_leg = open(StreamConfig {
                sink: Some(Box::new(rec.channel_sink(Channel::Left))),
                ..StreamConfig::new(lead_codec)
            })?;
            let agent_leg = open(StreamConfig {
                sink: Some(Box::new(rec.channel_sink(Channel::Right))),
                colocate_with: Some(lead_leg.id()),
                ..StreamConfig::new(agent_codec)
            })?;
            let phone = |leg: &StreamHandle, codec: Codec| {
                open(StreamConfig {
                    remote: Some(leg.local_addr()),
                    source: source(),
                    sink: Some(Box::new(NullSink)),
                    ..StreamConfig::new(codec)
                })
            };
            let (lead_phone, agent_phone) = (
                phone(&lead_leg, lead_codec)?,
                phone(&agent_leg, agent_codec)?,
            );
            remote(&lead_leg, &lead_phone)?;
            remote(&agent_leg, &agent_phone)?;
            rt.bridge(&lead_leg, &agent_leg)
                .await
                .map_err(|e| format!("bridge: {e}"))?;
            vec![lead_leg, agent_leg, lead_phone, agent_phone]
        } else {
            // `agent` receives the agent side's audio (right), `lead` the lead's (left).
            let agent = open(StreamConfig {
                source: source(),
                sink: Some(Box::new(rec.channel_sink(Channel::Right))),
                ..StreamConfig::new(agent_codec)
            })?;
            let lead = open(StreamConfig {
                remote: Some(agent.local_addr()),
                source: source(),
                sink: Some(Box::new(rec.channel_sink(Channel::Left))),
                ..StreamConfig::new(lead_codec)
            })?;
            remote(&agent, &lead)?;
            vec![lead, agent]
        };
        calls.push((rec, streams));
    }
    tokio::time::sleep(WARMUP).await;
    let (s0, c0, t0) = (sum(&rt.loop_stats()), cpu_time(), Instant::now());
    tokio::time::sleep(WINDOW).await;
    let (s1, c1, t1) = (sum(&rt.loop_stats()), cpu_time(), Instant::now());

    let mut lost = 0u64;
    let mut rec_dropped = 0;
    let mut rec_late_samples = 0;
    let mut recorded = Duration::ZERO;
    for (rec, streams) in calls {
        for s in &streams {
            if let Some(r) = s.stats().await {
                lost += r.stats.lost.max(0) as u64;
            }
        }
        let info = rec.stop_async().await.map_err(|e| e.to_string())?;
        rec_dropped += info.dropped_packets;
        rec_late_samples += info.late_samples;
        recorded += info.duration;
        drop(streams);
    }
    rt.shutdown();

    let wall = (t1 - t0).as_secs_f64();
    let received = (s1.packets_received - s0.packets_received) as f64;
    let cpu = (c1.0 - c0.0).as_secs_f64();
    let writer_cpu = (c1.1 - c0.1).as_secs_f64();
    Ok(Row {
        calls: n,
        rx_pps: received / wall,
        cpu_us_per_packet: if received > 0.0 {
            cpu * 1e6 / received
        } else {
            0.0
        },
        writer_us_per_packet: if received > 0.0 {
            writer_cpu * 1e6 / received
        } else {
            0.0
        },
        cores: cpu / wall,
        late_ticks: s1.late_ticks - s0.late_ticks,
        late_pct: (s1.late_ticks - s0.late_ticks) as f64 * 100.0
            / (s1.ticks - s0.ticks).max(1) as f64,
        max_late_ms: s1.max_lateness_us as f64 / 1000.0,
        lost,
        rec_dropped,
        rec_late_samples,
        recorded_s: recorded.as_secs_f64() / n.max(1) as f64,
    })
}

fn main() {
    let ns: Vec<usize> = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.split(',').filter_map(|v| v.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![250, 500, 750, 1000, 1250, 1500]);
    let relay = std::env::args().any(|a| a == "--relay");
    let opus = std::env::args().any(|a| a == "--opus");
    // Packets received per call per second.
    let per_call = if relay { 200.0 } else { 100.0 };
    let pcm: Vec<i16> = (0..8000)
        .map(|i| ((i as f64 * 440.0 * std::f64::consts::TAU / 8000.0).sin() * 8000.0) as i16)
        .collect();
    let clip = Clip::from_pcm(&pcm);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let shape = match (relay, opus) {
        (true, false) => "4 streams each: phones and bridged legs, legs relay and record",
        (true, true) => {
            "4 streams each: Opus lead phone and leg, PCMU agent leg and phone, legs transcode \
             and record"
        }
        (false, false) => "2 streams each, 50 pps each way",
        (false, true) => "2 Opus streams each, 50 pps each way",
    };
    println!(
        "recorded_calls: N calls ({shape}) on 127.0.0.1, all recorded, {cores} cores, window \
         {WINDOW:?}"
    );
    println!(
        "{:>6} {:>10} {:>10} {:>12} {:>9} {:>6} {:>10} {:>9} {:>6} {:>9} {:>10} {:>9} {:>7}",
        "calls",
        "rx pkt/s",
        "expected",
        "cpu us/pkt",
        "writer us",
        "cores",
        "late %",
        "max late",
        "lost",
        "rec drop",
        "rec late",
        "rec s",
        "status"
    );
    let started = Instant::now();
    let mut strict = None;
    let mut loose = None;
    for &n in &ns {
        if started.elapsed() + WARMUP + WINDOW + Duration::from_secs(10) > BUDGET {
            println!("(time budget reached; stopping before N = {n})");
            break;
        }
        let row = match tokio.block_on(run(n, relay, opus, &clip)) {
            Ok(r) => r,
            Err(e) => {
                println!("{n:>6} failed: {e}");
                break;
            }
        };
        let strict_ok = row.late_ticks == 0
            && row.lost == 0
            && row.rec_dropped == 0
            && row.rec_late_samples == 0;
        // Packets over the whole run (warm-up, window, stop), both directions.
        let packets = row.calls as f64 * per_call * (WARMUP + WINDOW).as_secs_f64();
        let loose_ok = row.late_pct < 1.0
            && (row.lost + row.rec_dropped) as f64 / packets < 0.001
            && row.rec_late_samples as f64 / (packets * 160.0) < 0.001;
        println!(
            "{:>6} {:>10.0} {:>10.0} {:>12.2} {:>9.2} {:>6.2} {:>10.2} {:>7.1}ms {:>6} {:>9} {:>10} {:>9.2} {:>7}",
            row.calls,
            row.rx_pps,
            row.calls as f64 * per_call,
            row.cpu_us_per_packet,
            row.writer_us_per_packet,
            row.cores,
            row.late_pct,
            row.max_late_ms,
            row.lost,
            row.rec_dropped,
            row.rec_late_samples,
            row.recorded_s,
            match (strict_ok, loose_ok) {
                (true, _) => "ok",
                (false, true) => "loose",
                _ => "OVER",
            }
        );
        if strict_ok && strict == loose {
            strict = Some(n);
        }
        if !loose_ok {
            break;
        }
        loose = Some(n);
    }
    println!(
        "max recorded calls carried: strictly (no loss, no tick > 10 ms late, no recorder \
         drop) {strict:?}; loosely (< 1 % late ticks, < 0.1 % loss) {loose:?} (total {:.1} s)",
        started.elapsed().as_secs_f64()
    );
}
