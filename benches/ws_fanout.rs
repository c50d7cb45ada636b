//! WebSocket fan-out benchmark (issue 7): N clients from one process on loopback, each a
//! supervisor subscribed to `calls` for its tenant, while the hub's event bus carries events
//! at a steady rate. Reports connect time, delivery latency (receive − publish, both read
//! from the system's real-time clock) p50/p95/p99/max, delivered/expected, the hub's drop
//! counters, and the hub's resident memory per connection.
//!
//! ```text
//! cargo bench --bench ws_fanout -- 10000
//! ```
//! Optional environment: `WS_BENCH_RATE` (events/s, default 200), `WS_BENCH_SECS` (publishing
//! time, default 20), `WS_BENCH_TENANTS` (default 100).
//!
//! Two processes: the bench re-executes itself as the server (the hub, its bus and the event
//! publisher, as in `switchboard serve`) and keeps every client in the first process. Each
//! holds one descriptor per connection, so 10,000 clients fit under a 20,000 per-process
//! open-files limit; both raise their soft limit to the hard one (through `sh -c ulimit`, so
//! no unsafe code) when it is too low. The two share the machine's cores, so the clients'
//! CPU still weighs on the figures; memory is the server process's alone.

use std::io::{BufRead, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use switchboard_engine::events::{Channel, Event, EventBus};
use switchboard_engine::tenancy::Role;
use switchboard_engine::{Store, StoreOptions};
use switchboard_ws::{Principal, WsConfig, WsState, WsStats};
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// Handshakes in flight at once.
const CONNECT_CONCURRENCY: usize = 64;
/// Wall-clock limit on the connect phase.
const CONNECT_LIMIT: Duration = Duration::from_secs(300);
/// Time after the last publish for the last deliveries to arrive.
const DRAIN: Duration = Duration::from_secs(3);
/// Set in the server child's environment.
const SERVER_ENV: &str = "WS_FANOUT_SERVER";
/// Set once the client process has re-executed itself with a raised open-files limit.
const RAISED_ENV: &str = "WS_FANOUT_NOFILE_RAISED";
/// Re-executes `$0 "$@"` with the soft open-files limit raised to the hard one.
const RAISE_NOFILE: &str = r#"ulimit -Sn "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@""#;

fn env_num(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a whole number")),
        Err(_) => Ok(default),
    }
}

/// `VmRSS` of a process (`self` or a pid), in bytes.
fn rss(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The soft and hard limits on open files, from `/proc/self/limits` (None when unknown;
/// "unlimited" reads as `u64::MAX`).
fn nofile_limits() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = s.lines().find(|l| l.starts_with("Max open files"))?;
    let mut f = line.split_whitespace().skip(3).map(|v| match v {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    });
    Some((f.next()??, f.next()??))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
}

/// Microseconds since the Unix epoch: the same clock in both processes.
fn wall_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Pulls `"bench_t":<digits>` out of a message without a full JSON parse (the client side
/// shares the CPU with the hub).
fn stamp(text: &str) -> Option<u64> {
    let at = text.find("\"bench_t\":")? + "\"bench_t\":".len();
    let digits: &str = &text[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if std::env::var_os(SERVER_ENV).is_some() {
        rt.block_on(server())
    } else {
        rt.block_on(clients())
    }
}

// ---------------------------------------------------------------------------------------
// The server process: the hub, its bus, and the publisher, driven by lines on stdin.

/// Prints one reply line for the client process.
fn reply(v: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn hub_counters(ws: &WsState) -> Value {
    let s = &ws.stats;
    json!({
        "connections": WsStats::get(&s.connections),
        "sent": WsStats::get(&s.messages_sent),
        "dropped": WsStats::get(&s.dropped),
        "slow_disconnects": WsStats::get(&s.slow_disconnects),
    })
}

async fn server() -> anyhow::Result<()> {
    let store = Store::connect("sqlite::memory:", &StoreOptions::default()).await?;
    store.migrate().await?;
    let bus = EventBus::default();
    // Test tokens: `bench.<tenant>.<user>`, every one a supervisor (sees the calls channel).
    let verify: switchboard_ws::Verifier = Arc::new(|t: &str| {
        let (tenant, user) = t.strip_prefix("bench.")?.split_once('.')?;
        Some(Principal {
            user_id: format!("u-{user}"),
            tenant_id: format!("tenant-{tenant}"),
            role: Role::Supervisor,
        })
    });
    let ws = WsState::new(store, bus.clone(), verify, WsConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = switchboard_ws::router(ws.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            eprintln!("ws_fanout server: stopped: {e}");
        }
    });
    reply(json!({"listening": addr.to_string(), "nofile": nofile_limits().map(|l| l.0)}));
    // Commands from the client process, one a line; a plain thread reads the pipe.
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = lines.recv().await {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("stats") => reply(hub_counters(&ws)),
            Some("publish") => {
                let mut n = || -> anyhow::Result<u64> {
                    Ok(words
                        .next()
                        .ok_or_else(|| anyhow::anyhow!("publish <rate> <secs> <tenants>"))?
                        .parse()?)
                };
                let (rate, secs, tenants) = (n()?, n()?, n()?);
                reply(publish(&bus, rate, secs, tenants).await);
            }
            Some(other) => anyhow::bail!("unknown command {other:?}"),
            None => {}
        }
    }
    Ok(())
}

/// Publishes `rate` events a second for `secs` seconds, round-robin over the tenants.
async fn publish(bus: &EventBus, rate: u64, secs: u64, tenants: u64) -> Value {
    let total = rate * secs;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut late_ticks = 0u64;
    for seq in 0..total {
        let scheduled = tick.tick().await;
        if scheduled.elapsed() > Duration::from_millis(5) {
            late_ticks += 1;
        }
        bus.publish(Event {
            tenant_id: Some(format!("tenant-{}", seq % tenants)),
            channel: Channel::Calls,
            kind: "callUpdated",
            agent_id: None,
            data: json!({"bench_t": wall_micros(), "seq": seq, "status": "ringing"}),
            at: chrono::Utc::now(),
        });
    }
    json!({"events": total, "secs": started.elapsed().as_secs_f64(), "late_ticks": late_ticks})
}

// ---------------------------------------------------------------------------------------
// The client process.

/// The server child and its command pipe.
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: std::io::BufReader<ChildStdout>,
}

impl Server {
    fn start() -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(RAISE_NOFILE)
            .arg(exe)
            .env(SERVER_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
        Ok(Self {
            child,
            stdin,
            stdout,
        })
    }

    /// Reads the next reply line (blocking: used between phases only).
    fn read(&mut self) -> anyhow::Result<Value> {
        let mut line = String::new();
        anyhow::ensure!(
            self.stdout.read_line(&mut line)? > 0,
            "the server process ended"
        );
        Ok(serde_json::from_str(&line)?)
    }

    fn ask(&mut self, command: &str) -> anyhow::Result<Value> {
        writeln!(self.stdin, "{command}")?;
        self.stdin.flush()?;
        self.read()
    }

    fn rss(&self) -> u64 {
        rss(&self.child.id().to_string())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one client saw.
#[derive(Default)]
struct Seen {
    latencies_us: Vec<u32>,
    missed_notices: u64,
    missed_count: u64,
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects, authenticates by `?token=`, subscribes to `calls`, and returns the open socket.
async fn open_client(addr: &str, token: &str) -> anyhow::Result<Client> {
    // Small client buffers (tungstenite's default read buffer is 128 KiB per socket).
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(
        format!("ws://{addr}/ws?token={token}"),
        Some(config),
        true,
    )
    .await?;
    ws.send(Message::Text(
        r#"{"type":"subscribe","channel":"calls"}"#.into(),
    ))
    .await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.as_str().contains("\"subscribed\"") => {
                return Ok(ws)
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => anyhow::bail!("closed before subscribed"),
            Err(_) => anyhow::bail!("no subscribed reply in 30 s"),
        }
    }
}

/// Reads until told to stop, timing every stamped event.
async fn run_client(ws: Client, mut stop: watch::Receiver<bool>) -> Seen {
    let (_sink, mut stream) = ws.split();
    let mut seen = Seen::default();
    loop {
        tokio::select! {
            m = stream.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    let now = wall_micros();
                    let t = t.as_str();
                    if let Some(sent) = stamp(t) {
                        seen.latencies_us
                            .push(now.saturating_sub(sent).min(u32::MAX as u64) as u32);
                    } else if t.contains("\"missed\"") {
                        seen.missed_notices += 1;
                        if let Ok(v) = serde_json::from_str::<Value>(t) {
                            seen.missed_count += v["data"]["count"].as_u64().unwrap_or(0);
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            _ = stop.changed() => break,
        }
    }
    seen
}

async fn clients() -> anyhow::Result<()> {
    let clients: usize = match std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        Some(a) => a
            .parse()
            .map_err(|_| anyhow::anyhow!("client count {a:?} is not a whole number"))?,
        None => 10_000,
    };
    anyhow::ensure!(clients > 0, "need at least one client");
    let rate = env_num("WS_BENCH_RATE", 200)?.max(1);
    let secs = env_num("WS_BENCH_SECS", 20)?.max(1);
    let tenants = (env_num("WS_BENCH_TENANTS", 100)?.max(1) as usize).min(clients);

    // One descriptor per client here and one per connection in the server.
    let need = clients as u64 + 64;
    if let Some((soft, hard)) = nofile_limits() {
        if soft < need {
            if hard >= need && std::env::var_os(RAISED_ENV).is_none() {
                let status = Command::new("sh")
                    .arg("-c")
                    .arg(RAISE_NOFILE)
                    .arg(std::env::current_exe()?)
                    .args(std::env::args_os().skip(1))
                    .env(RAISED_ENV, "1")
                    .status()?;
                std::process::exit(status.code().unwrap_or(1));
            }
            eprintln!(
                "ws_fanout: {clients} clients need about {need} open files per process but the \
                 limit is {soft} (hard limit {hard}); use at most {} clients",
                hard.saturating_sub(64)
            );
            std::process::exit(2);
        }
    }

    let mut server = Server::start()?;
    let hello = server.read()?;
    let addr = hello["listening"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("server said {hello}"))?
        .to_string();
    if let Some(soft) = hello["nofile"].as_u64() {
        anyhow::ensure!(
            soft >= need,
            "the server process may open only {soft} files: {clients} clients need {need}"
        );
    }
    println!(
        "ws_fanout: {clients} clients, {tenants} tenants, {rate} events/s for {secs} s; hub in \
         process {} on {addr}, clients in process {}; load average {}",
        server.child.id(),
        std::process::id(),
        load_average(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let server_rss_before = server.rss();
    let client_rss_before = rss("self");

    let (stop_tx, stop_rx) = watch::channel(false);
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<anyhow::Result<()>>(clients);
    let connect_started = Instant::now();
    let mut handles = Vec::with_capacity(clients);
    for i in 0..clients {
        let gate = gate.clone();
        let ready = ready_tx.clone();
        let stop = stop_rx.clone();
        let token = format!("bench.{}.{i}", i % tenants);
        let addr = addr.clone();
        handles.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let opened = open_client(&addr, &token).await;
            drop(permit);
            match opened {
                Ok(ws) => {
                    let _ = ready.send(Ok(())).await;
                    drop(ready);
                    run_client(ws, stop).await
                }
                Err(e) => {
                    let _ = ready.send(Err(e)).await;
                    Seen::default()
                }
            }
        }));
    }
    drop(ready_tx);
    let mut connected = 0usize;
    let mut failed = 0usize;
    let mut first_error = None;
    let deadline = tokio::time::Instant::now() + CONNECT_LIMIT;
    while connected + failed < clients {
        match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
            Ok(Some(Ok(()))) => connected += 1,
            Ok(Some(Err(e))) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
            Ok(None) => break,
            Err(_) => {
                eprintln!("ws_fanout: connect phase hit its {CONNECT_LIMIT:?} limit");
                break;
            }
        }
    }
    let connect_time = connect_started.elapsed();
    // Let the last `subscribed` replies and allocations settle before reading memory.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let server_rss_after = server.rss();
    let client_rss_after = rss("self");
    let before = server.ask("stats")?;
    println!(
        "connect: {connected} ok, {failed} failed in {:.2} s ({:.0} handshakes/s); hub reports {} connections",
        connect_time.as_secs_f64(),
        connected as f64 / connect_time.as_secs_f64(),
        before["connections"],
    );
    if let Some(e) = first_error {
        println!("  first connect error: {e:#}");
    }
    let per = |after: u64, before: u64| {
        after.saturating_sub(before) as f64 / connected.max(1) as f64 / 1024.0
    };
    println!(
        "memory: hub process RSS {:.1} MiB before, {:.1} MiB after connecting = {:.1} KiB per \
         connection (client process: {:.1} KiB per client)",
        server_rss_before as f64 / 1048576.0,
        server_rss_after as f64 / 1048576.0,
        per(server_rss_after, server_rss_before),
        per(client_rss_after, client_rss_before),
    );
    anyhow::ensure!(connected > 0, "no client connected");

    // Subscribers per tenant, for the expected delivery count (failed clients excluded is not
    // knowable per tenant, so failures show as missing deliveries).
    let mut per_tenant = vec![0u64; tenants];
    for i in 0..clients {
        per_tenant[i % tenants] += 1;
    }
    let total_events = rate * secs;
    let expected: u64 = (0..total_events)
        .map(|seq| per_tenant[seq as usize % tenants])
        .sum();
    // Blocking on the pipe while the clients read on the runtime's workers.
    let published =
        tokio::task::block_in_place(|| server.ask(&format!("publish {rate} {secs} {tenants}")))?;
    tokio::time::sleep(DRAIN).await;
    let load_after = load_average();
    let _ = stop_tx.send(true);
    let after = server.ask("stats")?;

    let mut lat: Vec<u32> = Vec::new();
    let mut notices = 0u64;
    let mut notice_count = 0u64;
    for h in handles {
        if let Ok(Ok(seen)) = tokio::time::timeout(Duration::from_secs(10), h).await {
            lat.extend_from_slice(&seen.latencies_us);
            notices += seen.missed_notices;
            notice_count += seen.missed_count;
        }
    }
    lat.sort_unstable();
    let delivered = lat.len() as u64;
    let publish_secs = published["secs"].as_f64().unwrap_or(f64::NAN);
    println!(
        "publish: {total_events} events in {publish_secs:.2} s ({:.0}/s, {} ticks > 5 ms late)",
        total_events as f64 / publish_secs,
        published["late_ticks"],
    );
    println!(
        "delivery: {delivered} of {expected} expected ({:.0}/s over the publish window), \
         {} not received",
        delivered as f64 / publish_secs,
        expected.saturating_sub(delivered),
    );
    println!(
        "latency ms: p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}",
        pct(&lat, 0.50),
        pct(&lat, 0.95),
        pct(&lat, 0.99),
        lat.last().map_or(f64::NAN, |&m| m as f64 / 1000.0),
    );
    let diff = |k: &str| after[k].as_u64().unwrap_or(0) - before[k].as_u64().unwrap_or(0);
    println!(
        "hub: messages queued {} during the run, dropped {} (bus lag + full queues), \
         slow disconnects {}; clients saw {notices} missed notices covering {notice_count} \
         messages; load average after {load_after}",
        diff("sent"),
        diff("dropped"),
        after["slow_disconnects"],
    );
    let p99 = pct(&lat, 0.99);
    println!(
        "goal (p99 <= 100 ms at 10,000 clients): {} at {clients} clients (p99 {p99:.2} ms)",
        if p99 <= 100.0 && delivered == expected {
            "met"
        } else {
            "NOT met"
        }
    );
    drop(server);
    Ok(())
}
