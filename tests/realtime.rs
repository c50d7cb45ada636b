//! The WebSocket hub over real TCP on loopback: tenant isolation, agent scoping, the agent
//! protocol, the three ways to authenticate, the CRM flavour, metrics, and slow clients.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use switchboard_api::{ApiConfig, AppState};
use switchboard_engine::events::{Channel, EventBus};
use switchboard_engine::{Store, StoreOptions};
use switchboard_ws::{Principal, WsConfig, WsState};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tower::ServiceExt;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const GUARD: Duration = Duration::from_secs(10);

struct Rig {
    api: axum::Router,
    addr: std::net::SocketAddr,
    bus: EventBus,
    ws: WsState,
}

async fn rig(cfg: WsConfig) -> Rig {
    let store = Store::connect("sqlite::memory:", &StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let mut c = ApiConfig::new(
        b"realtime-secret-realtime-secret-123".to_vec(),
        std::env::temp_dir().join("sb-rt"),
    );
    c.rate_limit_per_ip = 0;
    c.rate_limit_per_user = 0;
    let bus = EventBus::new(8192);
    let api_state = AppState::new(store.clone(), c).with_events(bus.clone());
    let v = api_state.clone();
    let verify: switchboard_ws::Verifier = std::sync::Arc::new(move |t: &str| {
        v.principal(t).map(|(user_id, tenant_id, role)| Principal {
            user_id,
            tenant_id,
            role,
        })
    });
    let ws = WsState::new(store, bus.clone(), verify, cfg);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = switchboard_ws::router(ws.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Rig {
        api: switchboard_api::router(api_state),
        addr,
        bus,
        ws,
    }
}

impl Rig {
    async fn http(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        let resp = self.api.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn owner(&self, email: &str) -> (String, String) {
        let (s, b) = self
            .http(
                Method::POST,
                "/api/auth/register",
                None,
                Some(json!({"email": email, "password": "securePassword123"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        (
            b["token"].as_str().unwrap().into(),
            b["user"]["tenant_id"].as_str().unwrap().into(),
        )
    }

    async fn connect(&self, path: &str) -> Ws {
        tokio_tungstenite::connect_async(format!("ws://{}{path}", self.addr))
            .await
            .expect("connect")
            .0
    }

    async fn connect_with_header(&self, token: &str) -> Ws {
        let mut req = format!("ws://{}/ws", self.addr)
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        tokio_tungstenite::connect_async(req)
            .await
            .expect("connect")
            .0
    }

    async fn call(&self, token: &str, agent: Option<&str>, phone: &str) -> String {
        let mut body = json!({"phone_number": "+14155551234", "caller_phone": phone, "direction": "outbound", "status": "initiated", "started_at": "2024-01-01T00:00:00Z"});
        if let Some(a) = agent {
            body["agent_id"] = json!(a);
        }
        let (s, b) = self
            .http(Method::POST, "/api/calls", Some(token), Some(body))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b["data"]["id"].as_str().unwrap().into()
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

async fn subscribe(ws: &mut Ws, channel: &str) {
    assert_eq!(next(ws).await["type"], "connected");
    send(ws, json!({"type": "subscribe", "channel": channel})).await;
    let r = next(ws).await;
    assert_eq!(
        (r["type"].as_str(), r["channel"].as_str()),
        (Some("subscribed"), Some(channel))
    );
}

#[tokio::test]
async fn events_reach_only_their_tenant_and_agents_only_their_own() {
    let rig = rig(WsConfig::default()).await;
    let (a, ta) = rig.owner("a@one.test").await;
    let (b, _) = rig.owner("b@two.test").await;
    let (_, agent_user) = rig.http(Method::POST, "/api/auth/register", Some(&a), Some(json!({"email": "ag@one.test", "password": "securePassword123", "role": "agent", "tenant_id": ta}))).await;
    let agent_token = agent_user["token"].as_str().unwrap().to_string();
    let (_, ag) = rig
        .http(
            Method::POST,
            "/api/agents",
            Some(&a),
            Some(json!({"name": "Ann", "user_id": agent_user["user"]["id"]})),
        )
        .await;
    let agent_id = ag["agent"]["id"].as_str().unwrap().to_string();

    let mut sup_a = rig.connect(&format!("/ws?token={a}")).await;
    subscribe(&mut sup_a, "calls").await;
    let mut sup_b = rig.connect(&format!("/ws?token={b}")).await;
    subscribe(&mut sup_b, "calls").await;
    let mut agent = rig.connect_with_header(&agent_token).await;
    assert_eq!(next(&mut agent).await["type"], "connected");
    send(
        &mut agent,
        json!({"type": "agent:join", "agentId": agent_id}),
    )
    .await;
    assert_eq!(next(&mut agent).await["type"], "agent:joined");

    let unassigned = rig.call(&a, None, "+14155552671").await;
    let assigned = rig.call(&a, Some(&agent_id), "+14155552672").await;
    let e = next(&mut sup_a).await;
    assert_eq!(
        (
            e["type"].as_str(),
            e["channel"].as_str(),
            e["data"]["id"].as_str()
        ),
        (
            Some("callInitiated"),
            Some("calls"),
            Some(unassigned.as_str())
        )
    );
    assert!(e["timestamp"].is_string());
    assert_eq!(next(&mut sup_a).await["data"]["id"], assigned.as_str());
    assert_eq!(
        next(&mut agent).await["data"]["id"],
        assigned.as_str(),
        "the agent's first event is its own call, not the unassigned one"
    );
    let theirs = rig.call(&b, None, "+14155552673").await;
    assert_eq!(
        next(&mut sup_b).await["data"]["id"],
        theirs.as_str(),
        "tenant B's first event is its own: none of A's leaked"
    );
}

#[tokio::test]
async fn agent_protocol_join_rules_and_status_updates() {
    let rig = rig(WsConfig::default()).await;
    let (a, ta) = rig.owner("a@one.test").await;
    let (_, u) = rig.http(Method::POST, "/api/auth/register", Some(&a), Some(json!({"email": "ag@one.test", "password": "securePassword123", "role": "agent", "tenant_id": ta}))).await;
    let (_, mine) = rig
        .http(
            Method::POST,
            "/api/agents",
            Some(&a),
            Some(json!({"name": "Ann", "user_id": u["user"]["id"]})),
        )
        .await;
    let (_, other) = rig
        .http(
            Method::POST,
            "/api/agents",
            Some(&a),
            Some(json!({"name": "Bob"})),
        )
        .await;
    let mine = mine["agent"]["id"].as_str().unwrap().to_string();
    let other = other["agent"]["id"].as_str().unwrap().to_string();
    let mut sup = rig.connect(&format!("/ws?token={a}")).await;
    subscribe(&mut sup, "agents").await;
    let mut ag = rig
        .connect(&format!("/ws?token={}", u["token"].as_str().unwrap()))
        .await;
    assert_eq!(next(&mut ag).await["type"], "connected");
    send(&mut ag, json!({"type": "agent:join", "agentId": other})).await;
    assert_eq!(
        next(&mut ag).await["type"],
        "error",
        "an agent cannot join as another"
    );
    send(
        &mut ag,
        json!({"type": "agent:join", "data": {"agentId": mine}}),
    )
    .await;
    assert_eq!(next(&mut ag).await["type"], "agent:joined");
    send(
        &mut ag,
        json!({"type": "agent:status", "status": "available"}),
    )
    .await;
    let e = next(&mut sup).await;
    assert_eq!(
        (
            e["type"].as_str(),
            e["data"]["agentId"].as_str(),
            e["data"]["status"].as_str()
        ),
        (
            Some("agent:status:updated"),
            Some(mine.as_str()),
            Some("available")
        )
    );
    assert_eq!(
        next(&mut ag).await["type"],
        "agent:status:updated",
        "the agent hears its own update"
    );
    send(&mut ag, json!({"type": "agent:status", "status": "asleep"})).await;
    assert_eq!(next(&mut ag).await["type"], "error");
    send(
        &mut ag,
        json!({"type": "agent:status", "agentId": other, "status": "break"}),
    )
    .await;
    assert_eq!(
        next(&mut ag).await["type"],
        "error",
        "nor set another's status"
    );
    let (_, got) = rig
        .http(Method::GET, &format!("/api/agents/{mine}"), Some(&a), None)
        .await;
    assert_eq!(got["agent"]["status"], "available");
    send(&mut ag, json!({"type": "subscribe", "channel": "nowhere"})).await;
    assert_eq!(next(&mut ag).await["type"], "error");
    ag.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(
        next(&mut ag).await["type"],
        "error",
        "bad frames get an error, not a disconnect"
    );
}

#[tokio::test]
async fn authentication_by_header_query_or_first_message() {
    let rig = rig(WsConfig {
        auth_timeout: Duration::from_millis(500),
        ..Default::default()
    })
    .await;
    let (a, _) = rig.owner("a@one.test").await;
    let refused =
        tokio_tungstenite::connect_async(format!("ws://{}/ws?token=forged", rig.addr)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED)
        }
        other => panic!("a bad token must be refused before the upgrade: {other:?}"),
    }
    let mut first = rig.connect("/ws").await;
    send(&mut first, json!({"type": "auth", "token": a})).await;
    assert_eq!(next(&mut first).await["type"], "connected");
    let mut anon = rig.connect("/ws").await;
    send(&mut anon, json!({"type": "subscribe", "channel": "calls"})).await;
    let closed = tokio::time::timeout(GUARD, anon.next())
        .await
        .expect("closed in time");
    match closed {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(u16::from(f.code), 4401),
        other => panic!("expected a 4401 close, got {other:?}"),
    }
}

#[tokio::test]
async fn crm_flavour_and_metrics() {
    let rig = rig(WsConfig::default()).await;
    let (a, _) = rig.owner("a@one.test").await;
    let mut crm = rig.connect(&format!("/ws/calls?token={a}")).await;
    assert_eq!(next(&mut crm).await["type"], "connected");
    let id = rig.call(&a, None, "+14155552671").await;
    let e = next(&mut crm).await;
    assert_eq!(
        (e["type"].as_str(), e["data"]["id"].as_str()),
        (Some("new_call"), Some(id.as_str()))
    );
    rig.http(
        Method::POST,
        &format!("/api/calls/{id}/end"),
        Some(&a),
        Some(json!({"disposition": "answered"})),
    )
    .await;
    assert_eq!(next(&mut crm).await["type"], "call_updated");

    let mut m = rig.connect(&format!("/ws?token={a}")).await;
    subscribe(&mut m, "metrics").await;
    let ticker = switchboard_ws::spawn_metrics(rig.ws.clone(), Duration::from_millis(50));
    let e = next(&mut m).await;
    assert_eq!(
        (e["type"].as_str(), e["channel"].as_str()),
        (Some("metricsUpdate"), Some("metrics"))
    );
    assert!(e["data"]["websocketConnections"].as_u64().unwrap() >= 2);
    ticker.abort();
    let (s, h) = rig.http(Method::GET, "/api/health", None, None).await;
    assert_eq!(s, StatusCode::OK, "{h}");
}

#[tokio::test]
async fn a_client_that_does_not_read_is_dropped_and_others_keep_up() {
    let rig = rig(WsConfig {
        queue: 64,
        slow_client_timeout: Duration::from_millis(500),
        ..Default::default()
    })
    .await;
    let (a, ta) = rig.owner("a@one.test").await;
    let mut slow = rig.connect(&format!("/ws?token={a}")).await;
    subscribe(&mut slow, "calls").await;
    let mut fast = rig.connect(&format!("/ws?token={a}")).await;
    subscribe(&mut fast, "calls").await;
    let blob = "x".repeat(8 * 1024);
    let reader = tokio::spawn(async move {
        let mut seen = 0u64;
        loop {
            let v = next(&mut fast).await;
            if v["type"] == "callEnded" {
                return (seen, v);
            }
            seen += 1;
        }
    });
    // ~24 MB over ~3 s: far more than the socket buffers of a client that never reads, at a
    // pace a reading client follows.
    for i in 0..3000 {
        rig.bus.emit(
            &ta,
            Channel::Calls,
            "callUpdated",
            None,
            json!({"i": i, "blob": blob}),
        );
        if i % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    rig.bus.emit(
        &ta,
        Channel::Calls,
        "callEnded",
        None,
        json!({"marker": true}),
    );
    let (seen, marker) = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("fast client finishes")
        .unwrap();
    assert_eq!(marker["data"]["marker"], true);
    assert!(seen > 0);
    let stats = &rig.ws.stats;
    assert!(
        switchboard_ws::WsStats::get(&stats.slow_disconnects) >= 1,
        "the slow client was disconnected"
    );
    assert!(switchboard_ws::WsStats::get(&stats.dropped) >= 1);
    // The slow client finds its stream ended (after whatever was buffered).
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match slow.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await
    .expect("slow client's stream ends");
    assert!(ended);
    drop(slow);
    // Both clients are gone (the fast one with its reader task): nothing stays registered.
    tokio::time::timeout(GUARD, async {
        while rig.ws.registry_stats() != switchboard_ws::RegistryStats::default() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("registry left with {:?}", rig.ws.registry_stats()));
}
