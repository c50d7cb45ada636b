//! Load bench of the media runtime: K streams in one process, in pairs on 127.0.0.1, each
//! sending a 20 ms G.711 packet every tick to its peer (50 packets/s per stream, both
//! directions), receiving, running statistics and calling a sink.
//!
//! For each K: 1.5 s warm-up, then a 4 s window in which it measures packets received per
//! second, process CPU time per received packet (the same process also built and sent each
//! packet, so this is the full send + receive cost), cores used, loss, and the share of pacing
//! ticks that started more than 10 ms late or were skipped. A K is sustained when late ticks
//! stay under 1 % and loss under 0.1 %; the run stops at the first K that is not. Total
//! running time stays under a minute.
//!
//! `cargo bench -p switchboard-media --bench rtp_loop` (optional argument: a comma-separated
//! list of K values).

use std::time::{Duration, Instant};

use switchboard_media::g711::Law;
use switchboard_media::runtime::{
    Clip, LoopStats, LoopingClip, MediaRuntime, NullSink, RuntimeConfig, StreamConfig,
};

const WARMUP: Duration = Duration::from_millis(1500);
const WINDOW: Duration = Duration::from_secs(4);
const BUDGET: Duration = Duration::from_secs(55);

/// CPU time of the whole process: the sum over its threads of the run time the scheduler
/// reports (ns), falling back to utime + stime from /proc/self/stat (10 ms ticks).
fn cpu_time() -> Duration {
    let mut total = 0u64;
    let mut ok = false;
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for task in dir.flatten() {
            let path = task.path().join("schedstat");
            if let Ok(s) = std::fs::read_to_string(path) {
                if let Some(ns) = s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    total += ns;
                    ok = true;
                }
            }
        }
    }
    if ok {
        return Duration::from_nanos(total);
    }
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
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
    streams: usize,
    loops: usize,
    rx_pps: f64,
    expected_pps: f64,
    cpu_us_per_packet: f64,
    cores: f64,
    late_pct: f64,
    max_late_ms: f64,
    loss_pct: f64,
    send_errors: u64,
}

fn run(k: usize, clip: &std::sync::Arc<Clip>) -> Result<Row, String> {
    let rt = MediaRuntime::start(RuntimeConfig {
        bind_ip: "127.0.0.1".parse().map_err(|e| format!("{e}"))?,
        ..RuntimeConfig::default()
    })
    .map_err(|e| format!("start: {e}"))?;
    let mut handles = Vec::with_capacity(k);
    for _ in 0..k / 2 {
        let stream = |remote| StreamConfig {
            remote,
            source: Some(Box::new(LoopingClip::new(clip.clone()))),
            sink: Some(Box::new(NullSink)),
            ..StreamConfig::new(Law::Mu)
        };
        let a = rt
            .open_stream(stream(None))
            .map_err(|e| format!("open: {e}"))?;
        let b = rt
            .open_stream(stream(Some(a.local_addr())))
            .map_err(|e| format!("open: {e}"))?;
        a.set_remote(b.local_addr())
            .map_err(|e| format!("remote: {e}"))?;
        handles.push(a);
        handles.push(b);
    }
    std::thread::sleep(WARMUP);
    let (s0, c0, t0) = (sum(&rt.loop_stats()), cpu_time(), Instant::now());
    std::thread::sleep(WINDOW);
    let (s1, c1, t1) = (sum(&rt.loop_stats()), cpu_time(), Instant::now());
    drop(handles);
    rt.shutdown();

    let wall = (t1 - t0).as_secs_f64();
    let received = (s1.packets_received - s0.packets_received) as f64;
    let ticks = (s1.ticks - s0.ticks).max(1) as f64;
    let late = (s1.late_ticks - s0.late_ticks) as f64;
    let expected_pps = k as f64 * 50.0;
    let rx_pps = received / wall;
    let cpu = (c1 - c0).as_secs_f64();
    Ok(Row {
        streams: k,
        loops: rt.loops(),
        rx_pps,
        expected_pps,
        cpu_us_per_packet: if received > 0.0 {
            cpu * 1e6 / received
        } else {
            0.0
        },
        cores: cpu / wall,
        late_pct: late * 100.0 / ticks,
        max_late_ms: s1.max_lateness_us as f64 / 1000.0,
        loss_pct: ((expected_pps - rx_pps) / expected_pps * 100.0).max(0.0),
        send_errors: s1.send_errors - s0.send_errors,
    })
}

fn main() {
    let ks: Vec<usize> = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.split(',').filter_map(|v| v.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![500, 1000, 2000, 3000, 4000]);
    // One second of a 440 Hz tone, encoded once and shared by every stream.
    let pcm: Vec<i16> = (0..8000)
        .map(|i| ((i as f64 * 440.0 * std::f64::consts::TAU / 8000.0).sin() * 8000.0) as i16)
        .collect();
    let clip = Clip::from_pcm(&pcm);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("rtp_loop: K streams in pairs on 127.0.0.1, 50 pps each way, {cores} cores, window {WINDOW:?}");
    println!(
        "{:>7} {:>5} {:>10} {:>10} {:>8} {:>12} {:>6} {:>9} {:>10} {:>7} {:>8}",
        "streams",
        "loops",
        "rx pkt/s",
        "expected",
        "loss %",
        "cpu us/pkt",
        "cores",
        "late %",
        "max late",
        "send err",
        "status"
    );
    let started = Instant::now();
    let mut sustained = None;
    for &k in &ks {
        if started.elapsed() + WARMUP + WINDOW + Duration::from_secs(3) > BUDGET {
            println!("(time budget reached; stopping before K = {k})");
            break;
        }
        let row = match run(k, &clip) {
            Ok(r) => r,
            Err(e) => {
                println!("{k:>7} failed: {e}");
                break;
            }
        };
        let ok = row.late_pct < 1.0 && row.loss_pct < 0.1;
        println!(
            "{:>7} {:>5} {:>10.0} {:>10.0} {:>8.3} {:>12.2} {:>6.2} {:>9.2} {:>8.1}ms {:>7} {:>8}",
            row.streams,
            row.loops,
            row.rx_pps,
            row.expected_pps,
            row.loss_pct,
            row.cpu_us_per_packet,
            row.cores,
            row.late_pct,
            row.max_late_ms,
            row.send_errors,
            if ok { "ok" } else { "OVER" }
        );
        if !ok {
            break;
        }
        sustained = Some(k);
    }
    match sustained {
        Some(k) => println!(
            "max streams sustained (< 1 % late ticks, < 0.1 % loss): {k} of those tried \
             (total {:.1} s)",
            started.elapsed().as_secs_f64()
        ),
        None => println!("no K sustained"),
    }
}
