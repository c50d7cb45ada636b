//! Interop with pjsua2 (PyPI `pjsua2-python`) as a second third-party UA: `switchboard call`
//! dials `tests/pjsua2_ua.py`, an auto-answering pjsua2 phone on 127.0.0.1 that plays a 440 Hz
//! tone and records what it hears. Checked: the call is answered (180, 200, ACK), RTP flows both
//! ways (packets counted on each side, the audio each side recorded carries the other's tone),
//! and the call ends by our BYE, or, in the second case, by pjsua2's.
//!
//! Skips with a notice when `import pjsua2` fails, unless SWITCHBOARD_REQUIRE_INTEROP=1 (CI),
//! then it fails. The interpreter is `python3`, or SWITCHBOARD_PYTHON (e.g. a venv's).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pjsua2_ua.py");
/// Longest wait for pjsua2's start-up and for each process to finish.
const WAIT: Duration = Duration::from_secs(40);

fn python() -> String {
    std::env::var("SWITCHBOARD_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn pjsua2_available() -> bool {
    let ok = Command::new(python())
        .args(["-c", "import pjsua2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("SWITCHBOARD_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!(
                "`{} -c 'import pjsua2'` failed but SWITCHBOARD_REQUIRE_INTEROP=1 \
                 (pip install pjsua2-python)",
                python()
            );
        }
        eprintln!("NOTICE: pjsua2 not importable; skipping the pjsua2 interop test");
    }
    ok
}

/// The pjsua2 phone: killed (TERM, then KILL) on drop, its folder removed.
struct Pjsua {
    child: Child,
    dir: PathBuf,
    port: u16,
    lines: mpsc::Receiver<String>,
}

impl Drop for Pjsua {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..30 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Pjsua {
    /// Starts the phone; `hangup_after` > 0 makes it send BYE that long after the ACK.
    fn start(tag: &str, hangup_after: f64) -> Pjsua {
        let dir =
            std::env::temp_dir().join(format!("switchboard-pjsua2-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let stderr = std::fs::File::create(dir.join("stderr.log")).expect("stderr log");
        let mut child = Command::new(python())
            .arg(SCRIPT)
            .arg("--dir")
            .arg(&dir)
            .arg("--hangup-after")
            .arg(hangup_after.to_string())
            .arg("--max-secs")
            .arg("30")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn the pjsua2 script");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut p = Pjsua {
            child,
            dir,
            port: 0,
            lines,
        };
        let ready = p.report("ready");
        p.port = ready["port"].as_u64().expect("port") as u16;
        p
    }

    /// The next report line `{"<key>": {...}}`.
    fn report(&mut self, key: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        if let Some(r) = v.get(key) {
                            return r.clone();
                        }
                    }
                }
                Err(_) => panic!(
                    "pjsua2 sent no {key:?} report\nstderr:\n{}\nlog tail:\n{}",
                    std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default(),
                    tail(&self.dir.join("pjsua2.log"), 60)
                ),
            }
        }
    }

    fn uri(&self) -> String {
        format!("sip:bob@127.0.0.1:{}", self.port)
    }
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs `switchboard ARGS`, killed after [`WAIT`].
fn switchboard(args: &[String]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("SWITCHBOARD_SIP_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run switchboard");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: reader.join().expect("stdout"),
        stderr: err_reader.join().expect("stderr"),
    }
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn event<'a>(lines: &'a [Value], name: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l.get("event").and_then(Value::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no {name:?} event in {lines:#?}"))
}

/// A mono 16-bit 8 kHz WAV: `seconds` of a 1 kHz tone.
fn tone_wav(seconds: u32) -> Vec<u8> {
    let samples = 8000 * seconds;
    let data_len = samples * 2;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..samples {
        let v = 8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * f64::from(i) / 8000.0).sin();
        out.extend_from_slice(&(v as i16).to_le_bytes());
    }
    out
}

/// The left channel (what we received) of our stereo 8 kHz recording.
fn received_channel(wav: &[u8]) -> Vec<i16> {
    let data = wav
        .windows(4)
        .position(|w| w == b"data")
        .expect("data chunk")
        + 8;
    wav[data..]
        .chunks_exact(4)
        .map(|f| i16::from_le_bytes([f[0], f[1]]))
        .collect()
}

/// Power at `freq` (Goertzel) relative to the total power of `s` at 8 kHz: near 1 for a pure
/// tone at `freq`, near 0 for anything else.
fn tone_share(s: &[i16], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / 8000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut total = 0.0f64;
    for &x in s {
        let x = f64::from(x);
        total += x * x;
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    if total == 0.0 {
        return 0.0;
    }
    // A pure tone of N samples gives power = total * N / 2.
    2.0 * power / (total * s.len() as f64)
}

fn rms(s: &[i16]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len() as f64).sqrt()
}

struct Run {
    lines: Vec<Value>,
    heard: Vec<i16>,
    pjsua2: Value,
}

/// Calls the phone with `switchboard call --duration SECS`, playing a 1 kHz tone and recording.
fn call_pjsua2(tag: &str, hangup_after: f64, duration: f64) -> Run {
    let mut phone = Pjsua::start(tag, hangup_after);
    let play = phone.dir.join("play.wav");
    std::fs::write(&play, tone_wav(10)).expect("tone");
    let record = phone.dir.join("heard-by-us.wav");
    let out = switchboard(&[
        "call".into(),
        "--to".into(),
        phone.uri(),
        "--duration".into(),
        duration.to_string(),
        "--ring-timeout".into(),
        "10".into(),
        "--play".into(),
        play.display().to_string(),
        "--record".into(),
        record.display().to_string(),
        "--json".into(),
    ]);
    let pjsua2 = phone.report("result");
    assert!(
        out.status.success(),
        "switchboard call failed: {}\nstdout:\n{}\nstderr:\n{}\npjsua2: {pjsua2}\nlog tail:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        tail(&phone.dir.join("pjsua2.log"), 80)
    );
    let lines = json_lines(&out);
    let heard = received_channel(&std::fs::read(&record).expect("our recording"));
    Run {
        lines,
        heard,
        pjsua2,
    }
}

/// What both cases check: answered with G.711, RTP both ways, each side heard the other's tone.
fn check_media(run: &Run) {
    let answered = event(&run.lines, "answered");
    assert_eq!(answered["codec"], "PCMU", "{answered}");
    let ended = event(&run.lines, "ended");
    assert_eq!(ended["outcome"], "completed", "{ended}");
    let p = &run.pjsua2;
    assert_eq!(p["answered"], true, "{p}");
    assert_eq!(p["confirmed"], true, "ACK reached pjsua2: {p}");
    assert_eq!(p["codec"], "PCMU", "{p}");
    assert!(p["error"].is_null(), "{p}");

    // At 50 packets/s for about two seconds or more, on loopback.
    let ours = ended["rtp_received"].as_u64().expect("rtp_received");
    assert!(ours >= 50, "we received {ours} RTP packets from pjsua2");
    let rx = p["rx_packets"].as_u64().expect("rx_packets");
    let tx = p["tx_packets"].as_u64().expect("tx_packets");
    assert!(rx >= 50, "pjsua2 received {rx} RTP packets from us: {p}");
    assert!(tx >= 50, "pjsua2 sent {tx} RTP packets: {p}");

    // pjsua2 heard our 1 kHz tone; we heard its 440 Hz tone.
    let their_rms = p["rx_rms"].as_f64().expect("rx_rms");
    assert!(their_rms > 1000.0, "pjsua2 heard near silence: {p}");
    let voiced: Vec<i16> = run
        .heard
        .chunks(160)
        .filter(|f| rms(f) > 1000.0)
        .flatten()
        .copied()
        .collect();
    assert!(
        voiced.len() >= 8000,
        "we heard {} samples of sound (of {})",
        voiced.len(),
        run.heard.len()
    );
    let at_440 = tone_share(&voiced, 440.0);
    let at_1000 = tone_share(&voiced, 1000.0);
    assert!(
        at_440 > 0.5 && at_1000 < 0.1,
        "what we heard is pjsua2's 440 Hz tone (share at 440 Hz {at_440:.2}, at 1 kHz {at_1000:.2})"
    );
}

#[test]
fn pjsua2_answers_our_call_rtp_both_ways_then_our_bye() {
    if !pjsua2_available() {
        return;
    }
    let run = call_pjsua2("our-bye", 0.0, 3.0);
    check_media(&run);
    let ended = event(&run.lines, "ended");
    assert_eq!(ended["by_remote"], false, "our BYE ended it: {ended}");
    assert_eq!(run.pjsua2["ended_by"], "remote", "{}", run.pjsua2);
    assert_eq!(run.pjsua2["last_status"], 200, "{}", run.pjsua2);
}

#[test]
fn pjsua2_answers_then_hangs_up_with_its_own_bye() {
    if !pjsua2_available() {
        return;
    }
    // We would stay 20 s; pjsua2 hangs up 3 s after the ACK.
    let run = call_pjsua2("their-bye", 3.0, 20.0);
    check_media(&run);
    let ended = event(&run.lines, "ended");
    assert_eq!(ended["by_remote"], true, "pjsua2's BYE ended it: {ended}");
    assert_eq!(run.pjsua2["ended_by"], "pjsua2", "{}", run.pjsua2);
}
