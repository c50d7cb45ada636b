//! The hub's registry over real sockets on loopback: one bus subscription for the whole hub,
//! routing by tenant and channel through subscription changes, the `/ws/calls` flavour, no
//! entry left behind by closed connections, the `missed` notice without a further event,
//! and the heartbeat.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use switchboard_engine::events::{Channel, Event, EventBus};
use switchboard_engine::tenancy::Role;
use switchboard_engine::{Store, StoreOptions};
use switchboard_ws::{Principal, RegistryStats, WsConfig, WsState, WsStats};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const GUARD: Duration = Duration::from_secs(10);

struct Rig {
    addr: std::net::SocketAddr,
    bus: EventBus,
    ws: WsState,
}

/// A hub on loopback; tokens are `<tenant>.<user>.<role>` with role `agent` or `supervisor`.
async fn rig(cfg: WsConfig) -> Rig {
    let store = Store::connect("sqlite::memory:", &StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let bus = EventBus::new(1024);
    let verify: switchboard_ws::Verifier = Arc::new(|t: &str| {
        let mut p = t.split('.');
        let (tenant, user, role) = (p.next()?, p.next()?, p.next()?);
        Some(Principal {
            user_id: user.into(),
            tenant_id: tenant.into(),
            role: match role {
                "agent" => Role::Agent,
                "supervisor" => Role::Supervisor,
                _ => return None,
            },
        })
    });
    let ws = WsState::new(store, bus.clone(), verify, cfg);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = switchboard_ws::router(ws.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Rig { addr, bus, ws }
}

impl Rig {
    /// Connects and reads the `connected` greeting.
    async fn connect(&self, path: &str, token: &str) -> Ws {
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{}{path}?token={token}", self.addr))
                .await
                .expect("connect");
        assert_eq!(next(&mut ws).await["type"], "connected");
        ws
    }

    fn emit(&self, tenant: Option<&str>, channel: Channel, kind: &'static str, id: &str) {
        self.bus.publish(Event {
            tenant_id: tenant.map(str::to_string),
            channel,
            kind,
            agent_id: None,
            data: json!({"id": id}),
            at: chrono::Utc::now(),
        });
    }

    /// Waits (bounded) until the registry and the connection gauge are back to empty.
    async fn wait_empty(&self) {
        tokio::time::timeout(GUARD, async {
            while self.ws.registry_stats() != RegistryStats::default()
                || WsStats::get(&self.ws.stats.connections) != 0
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| {
            panic!(
                "registry not empty after every client closed: {:?}",
                self.ws.registry_stats()
            )
        });
    }
}

/// The next JSON text message (pings skipped).
async fn next(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(GUARD, ws.next())
            .await
            .expect("a message within the guard")
            .expect("open")
            .expect("ok");
        match m {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

async fn set(ws: &mut Ws, kind: &str, channel: &str) {
    send(ws, json!({"type": kind, "channel": channel})).await;
    let r = next(ws).await;
    assert_eq!(
        (r["type"].as_str(), r["channel"].as_str()),
        (Some(format!("{kind}d").as_str()), Some(channel))
    );
}

/// The next event's `(type, data.id)`.
async fn event(ws: &mut Ws) -> (String, String) {
    let v = next(ws).await;
    (
        v["type"].as_str().unwrap().into(),
        v["data"]["id"].as_str().unwrap_or_default().into(),
    )
}

fn pair(kind: &str, id: &str) -> (String, String) {
    (kind.into(), id.into())
}

/// Each assertion reads a connection's next event after publishing what it must not see
/// first: queues are FIFO and the dispatcher keeps bus order, so a leak shows up as the
/// wrong next event.
#[tokio::test]
async fn one_dispatcher_routes_by_tenant_and_channel_and_leaves_no_entries() {
    let rig = rig(WsConfig::default()).await;
    let mut x_calls = rig.connect("/ws", "x.u1.supervisor").await;
    set(&mut x_calls, "subscribe", "calls").await;
    let mut x_rec = rig.connect("/ws", "x.u2.supervisor").await;
    set(&mut x_rec, "subscribe", "recordings").await;
    let mut y_calls = rig.connect("/ws", "y.u3.supervisor").await;
    set(&mut y_calls, "subscribe", "calls").await;
    let mut x_crm = rig.connect("/ws/calls", "x.u4.supervisor").await;
    let mut x_agent = rig.connect("/ws", "x.u5.agent").await;
    set(&mut x_agent, "subscribe", "calls").await;

    assert_eq!(
        rig.bus.subscribers(),
        1,
        "one bus subscription for the whole hub, not one per connection"
    );
    let s = rig.ws.registry_stats();
    assert_eq!((s.connections, s.tenants), (5, 2), "{s:?}");

    rig.emit(Some("x"), Channel::Recordings, "recordingStarted", "r1");
    rig.emit(Some("y"), Channel::Calls, "callInitiated", "y1");
    rig.emit(None, Channel::Metrics, "metricsUpdate", "m1");
    rig.emit(Some("x"), Channel::Calls, "callInitiated", "x1");
    assert_eq!(event(&mut x_calls).await, pair("callInitiated", "x1"));
    assert_eq!(event(&mut x_rec).await, pair("recordingStarted", "r1"));
    assert_eq!(event(&mut y_calls).await, pair("callInitiated", "y1"));
    assert_eq!(event(&mut x_crm).await, pair("new_call", "x1"));

    // x_calls moves from calls to recordings; x_rec adds metrics; y stays on calls.
    set(&mut x_calls, "unsubscribe", "calls").await;
    set(&mut x_calls, "subscribe", "recordings").await;
    set(&mut x_rec, "subscribe", "metrics").await;
    rig.emit(Some("x"), Channel::Calls, "callUpdated", "x2");
    rig.emit(Some("y"), Channel::Recordings, "recordingStarted", "y2");
    rig.emit(None, Channel::Metrics, "metricsUpdate", "m2");
    rig.emit(Some("x"), Channel::Recordings, "recordingStopped", "r2");
    rig.emit(Some("y"), Channel::Calls, "callEnded", "y3");
    assert_eq!(event(&mut x_calls).await, pair("recordingStopped", "r2"));
    assert_eq!(event(&mut x_rec).await, pair("metricsUpdate", "m2"));
    assert_eq!(event(&mut x_rec).await, pair("recordingStopped", "r2"));
    assert_eq!(event(&mut y_calls).await, pair("callEnded", "y3"));
    assert_eq!(event(&mut x_crm).await, pair("call_updated", "x2"));

    // The agent, subscribed to calls, saw none of its tenant's calls: only its own and
    // system-wide events on the channels it chose reach it.
    set(&mut x_agent, "subscribe", "metrics").await;
    rig.emit(None, Channel::Metrics, "metricsUpdate", "m3");
    assert_eq!(event(&mut x_agent).await, pair("metricsUpdate", "m3"));

    for ws in [
        &mut x_calls,
        &mut x_rec,
        &mut y_calls,
        &mut x_crm,
        &mut x_agent,
    ] {
        ws.close(None).await.unwrap();
    }
    rig.wait_empty().await;
}

/// A client that stopped reading while a burst overflowed its queue is told exactly what
/// it missed once it reads again, with no further event to carry the notice.
#[tokio::test]
async fn the_missed_notice_comes_without_a_further_event() {
    let rig = rig(WsConfig {
        queue: 8,
        slow_client_timeout: Duration::from_secs(3600),
        ..Default::default()
    })
    .await;
    let mut c = rig.connect("/ws", "x.u1.supervisor").await;
    set(&mut c, "subscribe", "calls").await;
    let queued_before = WsStats::get(&rig.ws.stats.messages_sent);
    // 400 × 64 KiB = 25 MiB: more than loopback's socket buffers and the queue hold.
    const EVENTS: u64 = 400;
    let blob = "x".repeat(64 * 1024);
    for i in 0..EVENTS {
        rig.bus.publish(Event {
            tenant_id: Some("x".into()),
            channel: Channel::Calls,
            kind: "callUpdated",
            agent_id: None,
            data: json!({"i": i, "blob": blob}),
            at: chrono::Utc::now(),
        });
    }
    // Every event has been queued or dropped before the client reads anything.
    tokio::time::timeout(GUARD, async {
        while WsStats::get(&rig.ws.stats.messages_sent) - queued_before
            + WsStats::get(&rig.ws.stats.dropped)
            < EVENTS
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the burst is dispatched");
    let dropped = WsStats::get(&rig.ws.stats.dropped);
    assert!(dropped > 0, "the burst must overflow the queue");
    let (mut received, mut missed, mut last) = (0u64, 0u64, None);
    while received + missed < EVENTS {
        let v = next(&mut c).await;
        match v["type"].as_str() {
            Some("callUpdated") => {
                let i = v["data"]["i"].as_u64().unwrap();
                assert!(last.is_none_or(|l| i > l), "in order");
                last = Some(i);
                received += 1;
            }
            Some("missed") => missed += v["data"]["count"].as_u64().unwrap(),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        (received + missed, missed),
        (EVENTS, dropped),
        "every event delivered or reported"
    );
    c.close(None).await.unwrap();
    rig.wait_empty().await;
}

/// Pings keep a reading client (its library answers them) and close one that never reads;
/// the closed one leaves the registry.
#[tokio::test]
async fn the_heartbeat_keeps_readers_and_closes_silent_clients() {
    let rig = rig(WsConfig {
        heartbeat: Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    let mut reader = rig.connect("/ws", "x.u1.supervisor").await;
    set(&mut reader, "subscribe", "calls").await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let pump = tokio::spawn(async move {
        loop {
            let v = next(&mut reader).await;
            if tx.send(v).is_err() {
                return reader;
            }
        }
    });
    let mut silent = rig.connect("/ws", "x.u2.supervisor").await;
    tokio::time::timeout(GUARD, async {
        while rig.ws.registry_stats().connections != 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the silent client is closed as idle");
    rig.emit(Some("x"), Channel::Calls, "callInitiated", "c1");
    let v = tokio::time::timeout(GUARD, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v["data"]["id"], "c1", "the reading client is still served");
    assert_eq!(WsStats::get(&rig.ws.stats.slow_disconnects), 0);
    // The silent client's stream ends: a normal close frame after what was queued, or a
    // reset when its library answers the queued pings on the closed socket first.
    let closed = tokio::time::timeout(GUARD, async {
        loop {
            match silent.next().await {
                Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await
    .expect("the silent client's stream ends");
    assert!(matches!(closed, None | Some(1000)), "{closed:?}");
    drop(rx);
    pump.abort();
    rig.wait_empty().await;
}
