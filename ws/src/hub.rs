//! Two tasks per connection: one reads client messages (subscriptions and the agent protocol
//! change the connection's registry entry), pings, and enforces the idle limit and the
//! hub's verdicts; the other writes the connection's bounded queue to the socket. Events
//! reach the queue from the registry's dispatcher, never through a per-connection bus
//! subscription.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use switchboard_engine::events::Channel;
use switchboard_engine::tenancy::Role;
use tokio::sync::mpsc;

use crate::protocol::{envelope, ClientMessage};
use crate::registry::{Flavor, Kick, Meter, Outlet, Push, Registration};
use crate::{Principal, WsState, WsStats};

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, t) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| t.trim().to_string())
}

/// Why an upgrade is refused.
struct Refused;

/// Authenticates from the header or `?token=`; a present but bad token is refused before the
/// upgrade (401), an absent one may come as the first message.
fn pre_auth(
    st: &WsState,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Result<Option<Principal>, Refused> {
    match bearer(headers).or_else(|| q.get("token").cloned()) {
        Some(t) => (st.verify)(&t).map(Some).ok_or(Refused),
        None => Ok(None),
    }
}

pub(crate) async fn upgrade_ws(
    State(st): State<WsState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(st, headers, q, ws, Flavor::Channels)
}

pub(crate) async fn upgrade_crm(
    State(st): State<WsState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(st, headers, q, ws, Flavor::Crm)
}

fn upgrade(
    st: WsState,
    headers: HeaderMap,
    q: HashMap<String, String>,
    ws: WebSocketUpgrade,
    flavor: Flavor,
) -> Response {
    let principal = match pre_auth(&st, &headers, &q) {
        Ok(p) => p,
        Err(Refused) => {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"success": false, "error": "invalid token", "code": "unauthorized"})),
            )
                .into_response();
        }
    };
    let max = st.config.max_message_bytes;
    // Small socket buffers: client messages are tiny, and 10,000 connections at the default
    // 128 KiB read buffer would cost 1.3 GB (measured with benches/ws_fanout.rs).
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .on_upgrade(move |socket| connection(socket, st, principal, flavor))
}

pub(crate) async fn health(State(st): State<WsState>) -> Json<serde_json::Value> {
    let s = &st.stats;
    Json(json!({"success": true, "data": {
        "connections": WsStats::get(&s.connections),
        "connections_total": WsStats::get(&s.connections_total),
        "messages_sent": WsStats::get(&s.messages_sent),
        "messages_received": WsStats::get(&s.messages_received),
        "messages_per_second": WsStats::get(&s.messages_sent) as f64 / st.started.elapsed().as_secs_f64().max(1.0),
        "dropped": WsStats::get(&s.dropped),
        "slow_disconnects": WsStats::get(&s.slow_disconnects),
        "registry": st.registry_stats(),
    }}))
}

/// The state of one connection.
struct Conn {
    principal: Principal,
    flavor: Flavor,
    agent: Option<String>,
    outlet: Arc<Outlet>,
    reg: Registration,
}

impl Conn {
    fn reply(
        &self,
        st: &WsState,
        kind: &str,
        channel: Option<&str>,
        data: serde_json::Value,
    ) -> Push {
        self.outlet
            .push(Message::Text(envelope(kind, channel, data).into()), &st.hub)
    }
}

/// Why a push ends the connection, if it does.
fn fatal(p: Push) -> Option<&'static str> {
    match p {
        Push::TooSlow => Some("too slow"),
        Push::Gone => Some("closed by client"),
        Push::Sent | Push::Dropped => None,
    }
}

async fn authenticate(socket: &mut WebSocket, st: &WsState) -> Option<Principal> {
    let first = tokio::time::timeout(st.config.auth_timeout, socket.recv())
        .await
        .ok()??
        .ok()?;
    let Message::Text(text) = first else {
        return None;
    };
    let msg: ClientMessage = serde_json::from_str(text.as_str()).ok()?;
    if msg.kind != "auth" {
        return None;
    }
    msg.token.as_deref().and_then(|t| (st.verify)(t))
}

/// Writes the queue to the socket: what is queued goes out in one flush, and once everything
/// queued before a gap is written the client is told what it missed, even if nothing else
/// is ever queued.
async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Message>,
    meter: Arc<Meter>,
) {
    /// Messages written per flush at most, so a busy queue still flushes.
    const BATCH: usize = 64;
    loop {
        let first = tokio::select! {
            biased;
            m = rx.recv() => match m {
                Some(m) => Some(m),
                None => break,
            },
            () = meter.woken() => None,
        };
        if let Some(m) = first {
            if sink.feed(m).await.is_err() {
                return;
            }
            for _ in 1..BATCH {
                let Ok(m) = rx.try_recv() else { break };
                if sink.feed(m).await.is_err() {
                    return;
                }
            }
        }
        if rx.is_empty() {
            if let Some(notice) = meter.take_notice() {
                if sink.feed(notice).await.is_err() {
                    return;
                }
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

async fn connection(
    mut socket: WebSocket,
    st: WsState,
    principal: Option<Principal>,
    flavor: Flavor,
) {
    let principal = match principal {
        Some(p) => p,
        None => match authenticate(&mut socket, &st).await {
            Some(p) => p,
            None => {
                let _ = socket
                    .send(Message::Close(Some(CloseFrame {
                        code: 4401,
                        reason: Utf8Bytes::from_static("authentication required"),
                    })))
                    .await;
                return;
            }
        },
    };
    WsStats::add(&st.stats.connections, 1);
    WsStats::add(&st.stats.connections_total, 1);
    let (sink, mut stream) = socket.split();
    let (queue, rx) = mpsc::channel::<Message>(st.config.queue.max(1));
    let meter = Arc::new(Meter::default());
    let outlet = Arc::new(Outlet::new(queue, meter.clone()));
    // `connected` is queued before the registration and the writer starts after it: a
    // client that has read `connected` is registered.
    outlet.push(Message::Text(envelope("connected", None, json!({"userId": principal.user_id, "tenantId": principal.tenant_id, "role": principal.role.as_str(), "channels": Channel::ALL.map(Channel::as_str)})).into()), &st.hub);
    let reg = st.hub.register(&st.bus, &principal, flavor, outlet.clone());
    let writer = tokio::spawn(write_loop(sink, rx, meter));
    let mut conn = Conn {
        principal,
        flavor,
        agent: None,
        outlet,
        reg,
    };
    let mut ping = tokio::time::interval(st.config.heartbeat);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    ping.tick().await;
    let mut last_heard = Instant::now();
    let reason = loop {
        tokio::select! {
            incoming = stream.next() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break "closed by client",
                Some(Ok(Message::Text(t))) => {
                    last_heard = Instant::now();
                    WsStats::add(&st.stats.messages_received, 1);
                    if let Some(r) = fatal(client_message(&mut conn, &st, t.as_str()).await) {
                        break r;
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    last_heard = Instant::now();
                    let p = conn.reply(&st, "error", None, json!({"message": "binary frames are not supported: send JSON text"}));
                    if let Some(r) = fatal(p) {
                        break r;
                    }
                }
                Some(Ok(_)) => last_heard = Instant::now(),
            },
            kick = conn.outlet.kicked() => break match kick {
                Kick::TooSlow => "too slow",
                Kick::ShuttingDown => "shutting down",
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > st.config.heartbeat * 2 {
                    break "idle";
                }
                if let Some(r) = fatal(conn.outlet.push(Message::Ping(Default::default()), &st.hub)) {
                    break r;
                }
            }
        }
    };
    if reason == "too slow" {
        WsStats::add(&st.stats.slow_disconnects, 1);
    }
    tracing::debug!(reason, tenant = %conn.principal.tenant_id, "websocket closed");
    let Conn { outlet, reg, .. } = conn;
    // Out of the registry first: nothing more is queued for this connection.
    drop(reg);
    let code = if reason == "too slow" { 1013 } else { 1000 };
    outlet.offer(Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(if code == 1013 {
            "too slow: reconnect"
        } else {
            "bye"
        }),
    })));
    // The last sender: the writer ends once it has written what is queued.
    drop(outlet);
    drop(stream);
    let abort = writer.abort_handle();
    if tokio::time::timeout(Duration::from_secs(1), writer)
        .await
        .is_err()
    {
        // Stuck on a socket the client does not read: dropping the writer closes it.
        abort.abort();
        tracing::debug!("websocket writer stuck on a full socket: aborted");
    }
    st.stats
        .connections
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
}

async fn client_message(conn: &mut Conn, st: &WsState, text: &str) -> Push {
    let msg: ClientMessage = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => {
            return conn.reply(
                st,
                "error",
                None,
                json!({"message": format!("not a valid message: {e}")}),
            )
        }
    };
    match msg.kind.as_str() {
        "subscribe" | "unsubscribe" if conn.flavor == Flavor::Channels => match msg.channel.as_deref().and_then(Channel::parse) {
            Some(c) => {
                let subscribe = msg.kind == "subscribe";
                st.hub.set_channel(&conn.reg, c, subscribe);
                conn.reply(st, if subscribe { "subscribed" } else { "unsubscribed" }, Some(c.as_str()), json!({}))
            }
            None => conn.reply(st, "error", None, json!({"message": "unknown channel: use calls, recordings, sip, metrics, performance or agents"})),
        },
        "agent:join" => {
            let Some(agent_id) = msg.agent() else {
                return conn.reply(st, "error", None, json!({"message": "agent:join needs agentId"}));
            };
            match st.store.agent(&conn.principal.tenant_id, &agent_id).await {
                Ok(a) if conn.principal.role >= Role::Supervisor || a.user_id.as_deref() == Some(conn.principal.user_id.as_str()) => {
                    st.hub.join(&conn.reg, &a.id);
                    conn.agent = Some(a.id.clone());
                    conn.reply(st, "agent:joined", None, json!({"agentId": a.id, "status": a.status}))
                }
                Ok(_) => conn.reply(st, "error", None, json!({"message": "you can only join as your own agent"})),
                Err(_) => conn.reply(st, "error", None, json!({"message": "no such agent"})),
            }
        }
        "agent:status" => {
            let agent_id = msg.agent().or_else(|| conn.agent.clone());
            let Some(agent_id) = agent_id else {
                return conn.reply(st, "error", None, json!({"message": "join first or give agentId"}));
            };
            let allowed = conn.principal.role >= Role::Supervisor || conn.agent.as_deref() == Some(agent_id.as_str());
            if !allowed {
                return conn.reply(st, "error", None, json!({"message": "you can only set your own status"}));
            }
            let Some(status) = msg.status_value() else {
                return conn.reply(st, "error", None, json!({"message": "agent:status needs status"}));
            };
            match st.store.set_agent_status(&conn.principal.tenant_id, &agent_id, &status).await {
                Ok(a) => {
                    st.bus.emit(&conn.principal.tenant_id, Channel::Agents, "agent:status:updated", Some(&a.id), json!({"agentId": a.id, "status": a.status}));
                    Push::Sent
                }
                Err(switchboard_engine::Error::Validation { .. }) => conn.reply(st, "error", None, json!({"message": "status must be available, busy, offline or break"})),
                Err(_) => conn.reply(st, "error", None, json!({"message": "no such agent"})),
            }
        }
        "ping" => conn.reply(st, "pong", None, json!({})),
        "auth" => conn.reply(st, "error", None, json!({"message": "already authenticated"})),
        other => conn.reply(st, "error", None, json!({"message": format!("unknown message type {other:?}")})),
    }
}
