//! `switchboard call` and `switchboard carrier-sim` end to end on 127.0.0.1: the built binary
//! against the carrier simulator (in-process, or the `carrier-sim` command itself).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use switchboard_sim::{Behavior, Carrier, CarrierConfig, EndedBy, Plan};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

async fn carrier(plan: Plan, tweak: impl FnOnce(&mut CarrierConfig)) -> Carrier {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let mut config = CarrierConfig::new(addr, plan);
    config.ring = Duration::from_millis(20);
    tweak(&mut config);
    Carrier::start(config).await.expect("carrier")
}

/// Runs `switchboard call ARGS` (off the async threads, the carrier keeps serving).
async fn call(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .arg("call")
            .args(&args)
            .env_remove("SWITCHBOARD_SIP_PASSWORD")
            .output()
            .expect("run switchboard call")
    })
    .await
    .expect("join")
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn summary(lines: &[Value]) -> &Value {
    let last = lines.last().expect("output");
    last.get("summary").expect("summary last")
}

fn events<'a>(lines: &'a [Value], name: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l.get("event").and_then(Value::as_str) == Some(name))
        .collect()
}

fn s(v: impl ToString) -> String {
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_calls_all_answered_exit_zero() {
    let c = carrier(
        Plan::always(Behavior::Human {
            talk: Duration::from_secs(30),
        }),
        |_| {},
    )
    .await;
    let out = call(vec![
        s("--to"),
        c.uri("+15550100001"),
        s("--count"),
        s(20),
        s("--rate"),
        s(50),
        s("--concurrent"),
        s(10),
        s("--json"),
    ])
    .await;
    let lines = json_lines(&out);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sum = summary(&lines);
    assert_eq!(sum["attempted"], 20);
    assert_eq!(sum["answered"], 20);
    assert_eq!(sum["failed"], 0);
    assert_eq!(sum["busy"], 0);
    assert_eq!(sum["no_answer"], 0);
    for key in ["cps", "setup_ms_p50", "setup_ms_p99", "wall_s"] {
        assert!(sum[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {sum}");
    }
    assert_eq!(events(&lines, "answered").len(), 20);
    let ended = events(&lines, "ended");
    assert_eq!(ended.len(), 20);
    assert!(ended.iter().all(|e| e["outcome"] == "completed"));
    // The carrier saw the same: 20 answered calls, all ended by the caller's BYE.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while c.stats().ended < 20 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let st = c.stats();
    assert_eq!((st.invites, st.answered, st.ended_by_caller), (20, 20, 20));
    assert!(c
        .calls()
        .iter()
        .all(|k| k.ended_by == Some(EndedBy::Caller) && k.number == "+15550100001"));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_number_exits_non_zero_through_the_carrier_sim_command() {
    let mut sim = Command::new(BIN)
        .args([
            "carrier-sim",
            "--bind",
            "127.0.0.1:0",
            "--mix",
            "human=1",
            "--rule",
            "+15550100001=busy",
            "--rule",
            "*7=404",
            "--ring-ms",
            "0",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start carrier-sim");
    let mut lines = BufReader::new(sim.stdout.take().expect("stdout")).lines();
    let first: Value =
        serde_json::from_str(&lines.next().expect("a line").expect("read")).expect("json");
    let addr = first["listening"].as_str().expect("address").to_owned();

    let out = call(vec![
        s("--to"),
        format!("sip:+15550100001@{addr}"),
        s("--json"),
    ])
    .await;
    assert!(!out.status.success());
    let sum = summary(&json_lines(&out)).clone();
    assert_eq!(
        (sum["attempted"].clone(), sum["busy"].clone()),
        (1.into(), 1.into())
    );
    assert_eq!(sum["answered"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("0 of 1 calls answered"), "{err}");

    let out = call(vec![
        s("--to"),
        format!("sip:+15550100017@{addr}"),
        s("--json"),
    ])
    .await;
    assert!(!out.status.success());
    let lines_out = json_lines(&out);
    assert_eq!(summary(&lines_out)["failed"], 1);
    assert_eq!(events(&lines_out, "ended")[0]["outcome"], "invalid_number");

    // The simulator printed one line per finished call.
    let busy: Value = serde_json::from_str(&lines.next().expect("line").expect("read")).unwrap();
    assert_eq!(busy["behavior"], "busy");
    assert_eq!(busy["final_status"], 486);
    let invalid: Value = serde_json::from_str(&lines.next().expect("line").expect("read")).unwrap();
    assert_eq!(invalid["final_status"], 404);
    let _ = sim.kill();
    let _ = sim.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_refused_exits_with_the_status_and_reason() {
    let c = carrier(
        Plan::always(Behavior::Human {
            talk: Duration::from_secs(30),
        }),
        |c| c.register = Some(("alice".into(), "s3cret".into())),
    )
    .await;
    let base = |password: &str| {
        vec![
            s("--to"),
            c.uri("+15550100001"),
            s("--register"),
            s("--username"),
            s("alice"),
            s("--password"),
            s(password),
        ]
    };
    let out = call(base("wrong")).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("401"), "{err}");
    assert!(err.contains("wrong username or password"), "{err}");
    assert_eq!(c.stats().invites, 0, "no call after a refused registration");

    let out = call(base("s3cret")).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(c.stats().registrations >= 1);
    assert_eq!(c.stats().invites, 1);
    c.shutdown().await;
}

fn right_channel(bytes: &[u8]) -> Vec<i16> {
    bytes[44..]
        .chunks_exact(4)
        .map(|f| i16::from_le_bytes([f[2], f[3]]))
        .collect()
}

fn loud_frames(pcm: impl Iterator<Item = f32>) -> usize {
    let v: Vec<f32> = pcm.collect();
    v.chunks(160)
        .filter(|f| f.iter().map(|s| s.abs()).sum::<f32>() / 160.0 >= 200.0)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_keeps_received_left_and_sent_right() {
    let c = carrier(
        Plan::always(Behavior::Human {
            talk: Duration::from_millis(2500),
        }),
        |_| {},
    )
    .await;
    let dir = std::env::temp_dir().join(format!("sb-call-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let play = dir.join("play.wav");
    let mut pcm = switchboard_sim::audio::burst(11);
    pcm.extend(switchboard_sim::audio::burst(12));
    switchboard_sim::wavout::write_mono(&play, &pcm).expect("write");
    let record = dir.join("call.wav");
    let out = call(vec![
        s("--to"),
        c.uri("+15550100002"),
        s("--duration"),
        s(4),
        s("--play"),
        play.display().to_string(),
        s("--record"),
        record.display().to_string(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&record).expect("recording");
    let wav = switchboard_media::wav::parse(&bytes).expect("a WAV");
    assert_eq!(wav.info.channels, 2);
    assert_eq!(wav.info.sample_rate, 8000);
    // Left: the simulated human's "Hello?"; right: what we played.
    assert!(loud_frames(wav.samples.iter().copied()) >= 10);
    let right = right_channel(&bytes);
    assert!(loud_frames(right.iter().map(|&s| f32::from(s))) >= 10);
    // The human hung up after 2.5 s, before our 4 s: the recording is about that long.
    let secs = wav.info.frames as f64 / 8000.0;
    assert!((2.0..4.5).contains(&secs), "{secs}");
    let _ = std::fs::remove_dir_all(&dir);
    c.shutdown().await;
}

#[test]
fn bad_arguments_are_clear_errors() {
    let out = Command::new(BIN)
        .args(["call", "--to", "not a uri"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--to"));
    let out = Command::new(BIN)
        .args(["carrier-sim", "--mix", "robots=5"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown behaviour"));
}
