//! The dashboard (`/`) and the agent page (`/agent`) in a real browser against a running
//! engine: `switchboard demo` (the engine, the carrier simulator, simulated agent phones that
//! answer and talk, a predictive demo campaign with AMD and recording, the API, the WebSocket
//! hub and the pages) on free loopback ports with a fresh data dir, driven by Debian's
//! Chromium through `playwright-core` (tests/browser/*.mjs). Every call the pages show is a
//! real SIP call the engine placed through the simulated carrier. Screenshots of every step
//! go to `<target>/browser-screenshots/` (or `SWITCHBOARD_SCREENSHOT_DIR`).
//!
//! Skipped with a notice unless /usr/bin/chromium (or `SWITCHBOARD_CHROMIUM`), node and
//! tests/browser/node_modules (`npm ci --prefix tests/browser`) are there; with
//! `SWITCHBOARD_REQUIRE_BROWSER=1` (CI) a missing piece fails instead.
//!
//! A script asks the Rust side for something (what the API says about a call or a lead) with
//! a `step NAME JSON` line on its stdout and reads one JSON answer on its stdin.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// One browser and one engine at a time: the machine has two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
/// A whole script, waits for real calls included (bounded; generous for a loaded machine).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);
const DISPOSITION: &str = "qualified";
const DISPOSITION_NOTES: &str = "Wants a demo on Friday";
/// The event the agent page pops from: the engine's `incoming:call`, sent to the agent when a
/// call is bridged to it.
const POP_SOURCE: &str = "incoming:call";
/// The demo's leads and agents: enough leads to keep dialing through a test, few agents so
/// the machine stays responsive.
const DEMO_LEADS: &str = "30";
const DEMO_AGENTS: &str = "2";
/// How long after a pause the engine may still start a call it had decided on (its campaign
/// refresh is 2 s; the rest is slack for a loaded machine).
const PAUSE_SETTLE: Duration = Duration::from_secs(10);
/// How long the paused campaign is then watched for new calls.
const PAUSE_WATCH: Duration = Duration::from_secs(10);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chromium() -> PathBuf {
    std::env::var_os("SWITCHBOARD_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Whether the browser tests can run; a missing piece fails under
/// `SWITCHBOARD_REQUIRE_BROWSER=1`.
fn browser_ready() -> bool {
    let mut missing = Vec::new();
    if !chromium().is_file() {
        missing.push(format!(
            "{} (apt-get install chromium)",
            chromium().display()
        ));
    }
    if !root()
        .join("tests/browser/node_modules/playwright-core/package.json")
        .is_file()
    {
        missing.push("tests/browser/node_modules (npm ci --prefix tests/browser)".into());
    }
    if Command::new("node").arg("--version").output().is_err() {
        missing.push("node".into());
    }
    if missing.is_empty() {
        return true;
    }
    let what = missing.join(", ");
    if std::env::var("SWITCHBOARD_REQUIRE_BROWSER").as_deref() == Ok("1") {
        panic!("SWITCHBOARD_REQUIRE_BROWSER=1 but missing: {what}");
    }
    eprintln!("notice: browser test skipped, missing: {what}");
    false
}

fn screenshots() -> PathBuf {
    std::env::var_os("SWITCHBOARD_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_TARGET_TMPDIR"))
                .parent()
                .expect("the target dir")
                .join("browser-screenshots")
        })
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sb-browser-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The last lines a child printed (stdout and stderr), for failure messages.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<VecDeque<String>>>);

impl Log {
    fn push(&self, line: String) {
        let mut l = self.0.lock().unwrap_or_else(|e| e.into_inner());
        l.push_back(line);
        if l.len() > 300 {
            l.pop_front();
        }
    }

    fn tail(&self) -> String {
        let l = self.0.lock().unwrap_or_else(|e| e.into_inner());
        l.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Copies `from` into the log on a thread; `on_line` sees each line first.
    fn follow(
        &self,
        from: impl Read + Send + 'static,
        mut on_line: impl FnMut(&str) + Send + 'static,
    ) {
        let log = self.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines().map_while(Result::ok) {
                on_line(&line);
                log.push(line);
            }
        });
    }
}

/// Stops a child with SIGTERM, then SIGKILL if it is still there after a grace period.
fn stop(child: &mut Child) {
    if !matches!(child.try_wait(), Ok(None)) {
        return;
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `switchboard serve` on a free port with its own data dir (no engine); stopped on drop.
struct Server {
    child: Child,
    addr: String,
    dir: PathBuf,
}

impl Server {
    fn start(name: &str) -> Server {
        let dir = fresh_dir(name);
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["serve", "--http", "127.0.0.1:0", "--data-dir"])
            .arg(&dir)
            .env("SWITCHBOARD_LOG", "info")
            .env("SWITCHBOARD_LOG_FORMAT", "json")
            // The pages need no SIP.
            .env("SWITCHBOARD_SIP_BIND", "off")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start switchboard");
        let (tx, rx) = mpsc::channel();
        let mut tx = Some(tx);
        Log::default().follow(child.stdout.take().unwrap(), move |line| {
            // The HTTP address is on the "switchboard listening" line (other lines may carry
            // other addresses).
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                return;
            };
            let fields = &v["fields"];
            let listening = fields["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("switchboard listening"));
            if let (true, Some(addr)) = (listening, fields["addr"].as_str()) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server printed its address");
        Server { child, addr, dir }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        stop(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `switchboard demo` with a fresh data dir: the engine dialing its demo campaign through
/// the carrier simulator to simulated agents. Stopped (SIGTERM, then SIGKILL) on drop.
struct Demo {
    child: Child,
    /// `127.0.0.1:PORT` of the API, the WebSocket hub and the pages.
    addr: String,
    email: String,
    password: String,
    token: String,
    campaign_id: String,
    dir: PathBuf,
    log: Log,
}

impl Demo {
    fn start(name: &str) -> Demo {
        let dir = fresh_dir(name);
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("--data-dir")
            .arg(&dir)
            .args([
                "demo",
                "--json",
                "--leads",
                DEMO_LEADS,
                "--agents",
                DEMO_AGENTS,
            ])
            .args(["--http", "127.0.0.1:0"])
            // A demo left behind by a killed test run ends on its own.
            .args(["--duration", "900"])
            .env("SWITCHBOARD_LOG", "info")
            .env("SWITCHBOARD_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start switchboard demo");
        let log = Log::default();
        let (tx, rx) = mpsc::channel::<Value>();
        // Log lines may come before the `{"demo": ...}` line on stdout.
        log.follow(child.stdout.take().unwrap(), move |line| {
            if line.starts_with("{\"demo\"") {
                if let Ok(v) = serde_json::from_str::<Value>(line) {
                    let _ = tx.send(v["demo"].clone());
                }
            }
        });
        log.follow(child.stderr.take().unwrap(), |_| {});
        let d = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(d) => d,
            Err(_) => {
                let status = child.try_wait();
                stop(&mut child);
                panic!(
                    "switchboard demo printed no {{\"demo\": ...}} line ({status:?}):\n{}",
                    log.tail()
                );
            }
        };
        let field = |k: &str| {
            d[k].as_str()
                .unwrap_or_else(|| panic!("the demo line has no {k}: {d}"))
                .to_string()
        };
        let http = field("http");
        let demo = Demo {
            child,
            addr: http
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .into(),
            email: field("email"),
            password: field("password"),
            token: field("token"),
            campaign_id: field("campaign_id"),
            dir,
            log,
        };
        // The demo starts its campaign right after printing the line.
        demo.wait_for(
            "the demo campaign to be active",
            Duration::from_secs(60),
            || {
                let b = demo.api("GET", &format!("/api/campaigns/{}", demo.campaign_id), None);
                (b["campaign"]["status"] == "active").then_some(())
            },
        );
        demo
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An API call as the demo's owner; anything but a 2xx fails the test.
    fn api(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (s, b) = http(
            &self.addr,
            method,
            path,
            Some(&self.token),
            body.as_ref().and_then(json_body),
        );
        assert!(
            (200..300).contains(&s),
            "{method} {path}: {s} {b}\n--- demo log (last lines)\n{}",
            self.log.tail()
        );
        b
    }

    /// Polls `f` every 250 ms until it gives a value; fails after `limit`.
    fn wait_for<T>(&self, what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "gave up waiting for {what} after {limit:?}\n--- demo log (last lines)\n{}",
                self.log.tail()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn call(&self, id: &str) -> Value {
        self.api("GET", &format!("/api/calls/{id}"), None)["call"].clone()
    }

    /// The campaign's calls, newest first (at most 100).
    fn campaign_calls(&self) -> Vec<Value> {
        let b = self.api(
            "GET",
            &format!(
                "/api/calls?campaign_id={}&limit=100&sort_by=started_at&sort_order=desc",
                self.campaign_id
            ),
            None,
        );
        b["data"]["calls"]
            .as_array()
            .or(b["calls"].as_array())
            .cloned()
            .unwrap_or_default()
    }

    /// The lead of a call as the screen pop should show it.
    fn lead_of_call(&self, call_id: &str) -> Value {
        let call = self.call(call_id);
        let lead_id = call["lead_id"].as_str().expect("the call has a lead");
        let lead = self.api("GET", &format!("/api/leads/{lead_id}"), None)["lead"].clone();
        let campaign = self.api("GET", &format!("/api/campaigns/{}", self.campaign_id), None);
        json!({
            "callId": call_id,
            "agentId": call["agent_id"],
            "first_name": lead["first_name"],
            "last_name": lead["last_name"],
            "phone": lead["phone_normalized"],
            "notes": lead["notes"],
            "campaign": campaign["campaign"]["name"],
            "custom_fields": lead["custom_fields"],
        })
    }

    /// Runs `tests/browser/<script>` signed in as the demo's owner, with `env` added to its
    /// environment, answering its steps with `on_step`.
    fn run_script(
        &self,
        script: &str,
        env: &[(&str, &str)],
        on_step: impl Fn(&str, &Value) -> Value,
    ) {
        let shots = screenshots();
        std::fs::create_dir_all(&shots).unwrap();
        // Drop the previous run's pictures of this script.
        let prefix = format!("{}-", script.trim_end_matches(".mjs"));
        for e in std::fs::read_dir(&shots).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let mut cmd = Command::new("node");
        cmd.arg(root().join("tests/browser").join(script))
            .current_dir(root())
            .env("SB_BASE_URL", self.base())
            .env("SB_EMAIL", &self.email)
            .env("SB_PASSWORD", &self.password)
            .env("SB_SCREENSHOTS", &shots)
            .env("SB_CHROMIUM", chromium())
            .env(
                "SB_TIMEOUT_MS",
                (SCRIPT_TIMEOUT.as_millis() - 10_000).to_string(),
            )
            .env("SB_CAMPAIGN_ID", &self.campaign_id)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start node");
        let guard = KillOnDrop(&mut child);
        let mut stdin = guard.0.stdin.take().unwrap();
        let (tx, rx) = mpsc::channel::<Option<String>>();
        let out = guard.0.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(Some(line));
            }
            let _ = tx.send(None);
        });
        let err = guard.0.stderr.take().unwrap();
        let errors = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = BufReader::new(err).read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + SCRIPT_TIMEOUT;
        let mut transcript = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Some(line)) => {
                    println!("{script}: {line}");
                    if let Some(rest) = line.strip_prefix("step ") {
                        let (name, data) = rest.split_once(' ').unwrap_or((rest, "{}"));
                        let data: Value = serde_json::from_str(data).unwrap_or(Value::Null);
                        let answer = on_step(name, &data);
                        writeln!(stdin, "{answer}").expect("answer the script");
                    }
                    transcript.push(line);
                }
                Ok(None) => break,
                Err(_) => panic!(
                    "{script} did not finish within {SCRIPT_TIMEOUT:?}:\n{}\n--- demo log (last lines)\n{}",
                    transcript.join("\n"),
                    self.log.tail()
                ),
            }
        }
        let status = guard.0.wait().expect("wait for node");
        let stderr = errors.join().unwrap_or_default();
        assert!(
            status.success(),
            "{script} failed ({status}); screenshots in {}\n--- stdout\n{}\n--- stderr\n{stderr}\n--- demo log (last lines)\n{}",
            shots.display(),
            transcript.join("\n"),
            self.log.tail(),
        );
        assert!(
            transcript
                .iter()
                .any(|l| l == &format!("{}: ok", script.trim_end_matches(".mjs"))),
            "{}",
            transcript.join("\n")
        );
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        stop(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One HTTP/1.1 request over loopback (`Connection: close`); the status and the JSON body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> (u16, Value) {
    let (status, _, body) = http_raw(addr, method, path, token, body);
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// The status, the lower-cased head and the body.
fn http_raw(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json\r\n");
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let payload = match body {
        Some((ct, bytes)) => {
            head.push_str(&format!(
                "Content-Type: {ct}\r\nContent-Length: {}\r\n",
                bytes.len()
            ));
            bytes
        }
        None => {
            head.push_str("Content-Length: 0\r\n");
            Vec::new()
        }
    };
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&payload).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, head, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&b[..i])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + size]);
        b = &b[i + 2 + size + 2..];
    }
    out
}

fn json_body(v: &Value) -> Option<(&'static str, Vec<u8>)> {
    Some(("application/json", v.to_string().into_bytes()))
}

struct KillOnDrop<'a>(&'a mut Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn call_id(v: &Value) -> String {
    v["callId"].as_str().expect("a callId").to_string()
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

#[test]
fn dashboard_shows_engine_calls_live_without_reload() {
    let _one = one_at_a_time();
    if !browser_ready() {
        return;
    }
    let demo = Demo::start("dashboard");
    let agents = demo.api("GET", "/api/agents", None);
    let agent_ids: Vec<String> = agents["data"]
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(|a| a["id"].as_str().map(String::from))
        .collect();
    assert_eq!(agent_ids.len(), 2, "{agents}");
    let followed = Mutex::new(None);
    demo.run_script(
        "dashboard.mjs",
        &[("SB_AGENT_IDS", &agent_ids.join(","))],
        |step, data| match step {
            // What the API says about the call the page follows.
            "call" => {
                let id = call_id(data);
                let c = demo.call(&id);
                *followed.lock().unwrap() = Some(id);
                json!({"callId": c["id"], "phone": c["to_number"], "campaignId": c["campaign_id"]})
            }
            other => json!({"error": format!("unknown step {other}")}),
        },
    );
    // The call the page saw with live quality ended in the store with its quality kept.
    let id = followed
        .lock()
        .unwrap()
        .clone()
        .expect("the page followed a call");
    let c = demo.wait_for(
        "the followed call's end to be written",
        Duration::from_secs(30),
        || {
            let c = demo.call(&id);
            (c["end_time"].is_string() && !c["quality"].is_null()).then_some(c)
        },
    );
    assert_eq!(c["status"], "completed", "an answered call: {c}");
    let mos = c["quality"]["mos_score"].as_f64().unwrap_or(0.0);
    assert!((1.0..=5.0).contains(&mos), "a MOS was stored: {c}");
    assert_eq!(c["campaign_id"].as_str(), Some(demo.campaign_id.as_str()));
}

#[test]
fn campaign_is_paused_from_the_dashboard() {
    let _one = one_at_a_time();
    if !browser_ready() {
        return;
    }
    let demo = Demo::start("campaign");
    // The engine is dialing the campaign before it is paused.
    demo.wait_for(
        "the engine to dial the demo campaign",
        Duration::from_secs(90),
        || (!demo.campaign_calls().is_empty()).then_some(()),
    );
    let paused_seen = Mutex::new(false);
    demo.run_script("campaign.mjs", &[], |step, _| match step {
        // The page paused the campaign: the API says so, and once the pause has settled the
        // engine starts no call of it.
        "paused" => {
            let b = demo.api("GET", &format!("/api/campaigns/{}", demo.campaign_id), None);
            assert_eq!(b["campaign"]["status"], "paused", "{b}");
            let paused_at = time(&b["campaign"]["updated_at"]).expect("updated_at");
            let settled = paused_at + chrono::Duration::from_std(PAUSE_SETTLE).unwrap();
            let watched = settled + chrono::Duration::from_std(PAUSE_WATCH).unwrap();
            while Utc::now() < watched {
                std::thread::sleep(Duration::from_millis(250));
            }
            let calls = demo.campaign_calls();
            assert!(!calls.is_empty(), "calls were placed before the pause");
            let late: Vec<&Value> = calls
                .iter()
                .filter(|c| time(&c["start_time"]).is_some_and(|t| t > settled))
                .collect();
            assert!(
                late.is_empty(),
                "calls started more than {PAUSE_SETTLE:?} after the pause at {paused_at}: {late:?}"
            );
            *paused_seen.lock().unwrap() = true;
            json!({"calls": calls.len()})
        }
        // Someone else starts it again (over REST, not from this page).
        "resume" => {
            let b = demo.api(
                "POST",
                &format!("/api/campaigns/{}/start", demo.campaign_id),
                None,
            );
            json!({"status": b["campaign"]["status"]})
        }
        other => json!({"error": format!("unknown step {other}")}),
    });
    assert!(
        *paused_seen.lock().unwrap(),
        "the script reported the pause"
    );
    let b = demo.api("GET", &format!("/api/campaigns/{}", demo.campaign_id), None);
    assert_eq!(b["campaign"]["status"], "active", "resumed: {b}");
}

#[test]
fn agent_page_pops_the_lead_and_posts_the_disposition() {
    let _one = one_at_a_time();
    if !browser_ready() {
        return;
    }
    let demo = Demo::start("agent");
    let agents = demo.api("GET", "/api/agents", None);
    let agent = agents["data"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == "Agent 1"))
        .cloned()
        .unwrap_or_else(|| panic!("the demo's Agent 1: {agents}"));
    let agent_id = agent["id"].as_str().unwrap().to_string();
    let agent_name = agent["name"].as_str().unwrap().to_string();
    let popped = Mutex::new(None);
    demo.run_script(
        "agent.mjs",
        &[
            ("SB_AGENT_ID", &agent_id),
            ("SB_AGENT_NAME", &agent_name),
            ("SB_DISPOSITION", DISPOSITION),
            ("SB_NOTES", DISPOSITION_NOTES),
            ("SB_POP_SOURCE", POP_SOURCE),
        ],
        |step, data| match step {
            // The lead of the popped call, from the API.
            "lead" => {
                let id = call_id(data);
                *popped.lock().unwrap() = Some(id.clone());
                demo.lead_of_call(&id)
            }
            other => json!({"error": format!("unknown step {other}")}),
        },
    );
    let id = popped.lock().unwrap().clone().expect("a call was popped");
    // The engine writes the call's end (with its recording) after the agent's disposition or
    // before it; either way the agent's disposition and notes are what the call keeps.
    let c = demo.wait_for(
        "the engine's end of the popped call",
        Duration::from_secs(30),
        || {
            let c = demo.call(&id);
            (c["end_time"].is_string() && c["has_recording"] == true).then_some(c)
        },
    );
    assert_eq!(
        (
            c["disposition"].as_str(),
            c["notes"].as_str(),
            c["agent_id"].as_str(),
            c["status"].as_str(),
        ),
        (
            Some(DISPOSITION),
            Some(DISPOSITION_NOTES),
            Some(agent_id.as_str()),
            Some("completed"),
        ),
        "{c}"
    );
    let a = demo.api("GET", &format!("/api/agents/{agent_id}"), None);
    assert_eq!(
        a["agent"]["status"], "break",
        "set from the page over the WebSocket: {a}"
    );
}

/// No browser needed: the pages come from the binary without a token and under the security
/// headers (the CSP forbids inline script and style, which the browser tests would report),
/// while the data behind them needs one.
#[test]
fn pages_are_public_and_their_data_is_not() {
    let server = Server::start("public");
    for (path, marker) in [
        ("/", "data-testid=\"dashboard\""),
        ("/agent", "data-testid=\"screen-pop\""),
    ] {
        let (status, head, body) = http_raw(&server.addr, "GET", path, None, None);
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 200, "{path}: {head}");
        assert!(head.contains("content-type: text/html"), "{path}: {head}");
        assert!(
            head.contains("content-security-policy: default-src 'self'"),
            "{path}: {head}"
        );
        assert!(body.contains(marker), "{path}");
    }
    let (status, head, _) = http_raw(&server.addr, "GET", "/web/dashboard.js", None, None);
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("content-type: text/javascript"), "{head}");
    for path in [
        "/api/calls/metrics/realtime",
        "/api/agents",
        "/api/campaigns",
    ] {
        assert_eq!(http(&server.addr, "GET", path, None, None).0, 401, "{path}");
    }
}
