//! WebSocket fan-out benchmark (issue 7): N clients from one process on loopback, each
//! subscribed to `calls` for its tenant, while the engine's event bus carries events at a
//! steady rate. Reports connect time, delivery latency (receive − publish, same process
//! clock) p50/p95/p99/max, deliveries per second, the hub's drop counters, and resident
//! memory per connection.
//!
//! ```text
//! ulimit -n 65536   # each client costs two descriptors (client and server side)
//! cargo bench --bench ws_fanout -- 10000
//! ```
//! Optional environment: `WS_BENCH_RATE` (events/s, default 200), `WS_BENCH_SECS` (publishing
//! time, default 20), `WS_BENCH_TENANTS` (default 100).
//!
//! Client and server share one process and one runtime, so the client side's CPU and memory
//! are included in the figures (an upper bound on the hub's own cost).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
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

fn env_num(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a whole number")),
        Err(_) => Ok(default),
    }
}

/// `VmRSS` of this process, in bytes.
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The soft and hard limits on open files, from `/proc/self/limits` (None when unknown or
/// unlimited).
fn nofile_limits() -> Option<(u64, String)> {
    let s = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = s.lines().find(|l| l.starts_with("Max open files"))?;
    let mut f = line.split_whitespace().skip(3);
    let soft = f.next()?.parse().ok()?;
    Some((soft, f.next().unwrap_or("?").to_string()))
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
}

/// Microseconds since `base`, as carried in an event's data and read back by the client.
fn micros(base: Instant) -> u64 {
    base.elapsed().as_micros() as u64
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

/// What one client saw.
#[derive(Default)]
struct Seen {
    latencies_us: Vec<u32>,
    missed_notices: u64,
    missed_count: u64,
}

/// Connects, authenticates by `?token=`, subscribes to `calls`, and returns the open socket.
async fn open_client(
    addr: std::net::SocketAddr,
    token: &str,
) -> anyhow::Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    // Small client buffers, so the memory figure is mostly the hub's own (tungstenite's
    // default read buffer is 128 KiB per socket).
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
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

    let need = clients as u64 * 2 + 64;
    if let Some((soft, hard)) = nofile_limits() {
        if soft < need {
            eprintln!(
                "ws_fanout: {clients} clients need about {need} open files (client + server side) \
                 but the soft limit is {soft} (hard limit {hard}). Raise it in the shell first, \
                 e.g.\n  ulimit -n 65536 && cargo bench --bench ws_fanout -- {clients}\n\
                 (without the privilege to pass the hard limit, use at most (limit - 64) / 2 clients)"
            );
            std::process::exit(2);
        }
    }

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
            eprintln!("ws_fanout: server stopped: {e}");
        }
    });

    println!(
        "ws_fanout: {clients} clients, {tenants} tenants, {rate} events/s for {secs} s, \
         hub on {addr}"
    );
    let rss_before = rss();
    let base = Instant::now();
    let (stop_tx, stop_rx) = watch::channel(false);
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<anyhow::Result<()>>(clients);
    let connect_started = Instant::now();
    let mut handles = Vec::with_capacity(clients);
    for i in 0..clients {
        let gate = gate.clone();
        let ready = ready_tx.clone();
        let mut stop = stop_rx.clone();
        let token = format!("bench.{}.{i}", i % tenants);
        handles.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let opened = open_client(addr, &token).await;
            drop(permit);
            let ws = match opened {
                Ok(ws) => {
                    let _ = ready.send(Ok(())).await;
                    ws
                }
                Err(e) => {
                    let _ = ready.send(Err(e)).await;
                    return Seen::default();
                }
            };
            drop(ready);
            let (_sink, mut stream) = ws.split();
            let mut seen = Seen::default();
            loop {
                tokio::select! {
                    m = stream.next() => match m {
                        Some(Ok(Message::Text(t))) => {
                            let now = micros(base);
                            let t = t.as_str();
                            if let Some(sent) = stamp(t) {
                                seen.latencies_us
                                    .push(now.saturating_sub(sent).min(u32::MAX as u64) as u32);
                            } else if t.contains("\"missed\"") {
                                seen.missed_notices += 1;
                                if let Ok(v) = serde_json::from_str::<serde_json::Value>(t) {
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
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = rss();
    println!(
        "connect: {connected} ok, {failed} failed in {:.2} s ({:.0} handshakes/s); hub reports {} connections",
        connect_time.as_secs_f64(),
        connected as f64 / connect_time.as_secs_f64(),
        WsStats::get(&ws.stats.connections),
    );
    if let Some(e) = first_error {
        println!("  first connect error: {e:#}");
    }
    let per_conn = rss_after.saturating_sub(rss_before) as f64 / connected.max(1) as f64;
    println!(
        "memory: RSS {:.1} MiB before, {:.1} MiB after connecting = {:.1} KiB per connection \
         (server side + 4 KiB-buffer clients)",
        rss_before as f64 / 1048576.0,
        rss_after as f64 / 1048576.0,
        per_conn / 1024.0,
    );
    anyhow::ensure!(connected > 0, "no client connected");

    // Subscribers per tenant, for the expected delivery count.
    let mut per_tenant = vec![0u64; tenants];
    for i in 0..clients {
        per_tenant[i % tenants] += 1;
    }
    let dropped_before = WsStats::get(&ws.stats.dropped);
    let sent_before = WsStats::get(&ws.stats.messages_sent);
    let total_events = rate * secs;
    let mut expected = 0u64;
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let publish_started = Instant::now();
    let mut late_ticks = 0u64;
    for seq in 0..total_events {
        let scheduled = tick.tick().await;
        if scheduled.elapsed() > Duration::from_millis(5) {
            late_ticks += 1;
        }
        let tenant = seq as usize % tenants;
        expected += per_tenant[tenant];
        bus.publish(Event {
            tenant_id: Some(format!("tenant-{tenant}")),
            channel: Channel::Calls,
            kind: "callUpdated",
            agent_id: None,
            data: serde_json::json!({"bench_t": micros(base), "seq": seq, "status": "ringing"}),
            at: chrono::Utc::now(),
        });
    }
    let publish_time = publish_started.elapsed();
    tokio::time::sleep(DRAIN).await;
    let _ = stop_tx.send(true);

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
    println!(
        "publish: {total_events} events in {:.2} s ({:.0}/s, {late_ticks} ticks > 5 ms late)",
        publish_time.as_secs_f64(),
        total_events as f64 / publish_time.as_secs_f64(),
    );
    println!(
        "delivery: {delivered} of {expected} expected ({:.0}/s over the publish window), \
         {} not received",
        delivered as f64 / publish_time.as_secs_f64(),
        expected.saturating_sub(delivered),
    );
    println!(
        "latency ms: p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}",
        pct(&lat, 0.50),
        pct(&lat, 0.95),
        pct(&lat, 0.99),
        lat.last().map_or(f64::NAN, |&m| m as f64 / 1000.0),
    );
    println!(
        "hub: messages queued {} during the run, dropped {} (bus lag + full queues), \
         slow disconnects {}; clients saw {notices} missed notices covering {notice_count} messages",
        WsStats::get(&ws.stats.messages_sent) - sent_before,
        WsStats::get(&ws.stats.dropped) - dropped_before,
        WsStats::get(&ws.stats.slow_disconnects),
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
    Ok(())
}
