//! One task per connection: reads client messages, forwards visible bus events into the
//! connection's bounded queue, pings, and enforces idle and slow-client limits; a second
//! task writes the queue to the socket.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use switchboard_engine::events::{Channel, Event};
use switchboard_engine::tenancy::Role;
use tokio::sync::{broadcast, mpsc};

use crate::protocol::{crm_message, envelope, event_message, ClientMessage};
use crate::{Principal, WsState, WsStats};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// `/ws`: channels and the agent protocol.
    Channels,
    /// `/ws/calls`: the CRM spec's call events only.
    Crm,
}

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
    }}))
}

/// The state of one connection.
struct Conn {
    principal: Principal,
    flavor: Flavor,
    channels: HashSet<Channel>,
    agent: Option<String>,
    queue: mpsc::Sender<Message>,
    missed: u64,
    full_since: Option<Instant>,
}

enum Push {
    Sent,
    Dropped,
    TooSlow,
}

impl Conn {
    /// Whether this connection may see `e`.
    fn visible(&self, e: &Event) -> bool {
        match &e.tenant_id {
            Some(t) if *t != self.principal.tenant_id => return false,
            None => return self.flavor == Flavor::Channels && self.channels.contains(&e.channel),
            _ => {}
        }
        let own = e.agent_id.is_some() && e.agent_id == self.agent;
        match self.flavor {
            Flavor::Crm => self.principal.role != Role::Agent || own,
            Flavor::Channels if self.principal.role == Role::Agent => own,
            Flavor::Channels => own || self.channels.contains(&e.channel),
        }
    }

    /// Queues a message; overflow is dropped and counted, and a queue full for too long ends
    /// the connection.
    fn push(&mut self, msg: Message, st: &WsState) -> Push {
        if self.missed > 0 && self.full_since.is_none() {
            let notice = envelope("missed", None, json!({"count": self.missed}));
            if self.queue.try_send(Message::Text(notice.into())).is_ok() {
                self.missed = 0;
            }
        }
        match self.queue.try_send(msg) {
            Ok(()) => {
                self.full_since = None;
                WsStats::add(&st.stats.messages_sent, 1);
                Push::Sent
            }
            Err(_) => {
                self.missed += 1;
                WsStats::add(&st.stats.dropped, 1);
                let since = *self.full_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= st.config.slow_client_timeout {
                    Push::TooSlow
                } else {
                    Push::Dropped
                }
            }
        }
    }

    fn reply(
        &mut self,
        st: &WsState,
        kind: &str,
        channel: Option<&str>,
        data: serde_json::Value,
    ) -> Push {
        self.push(Message::Text(envelope(kind, channel, data).into()), st)
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
    let (mut sink, mut stream) = socket.split();
    let (queue, mut rx) = mpsc::channel::<Message>(st.config.queue.max(1));
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    let mut conn = Conn {
        channels: if flavor == Flavor::Crm {
            HashSet::from([Channel::Calls])
        } else {
            HashSet::new()
        },
        principal,
        flavor,
        agent: None,
        queue,
        missed: 0,
        full_since: None,
    };
    let mut bus = st.bus.subscribe();
    let mut ping = tokio::time::interval(st.config.heartbeat);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    ping.tick().await;
    let mut last_heard = Instant::now();
    conn.reply(&st, "connected", None, json!({"userId": conn.principal.user_id, "tenantId": conn.principal.tenant_id, "role": conn.principal.role.as_str(), "channels": Channel::ALL.map(Channel::as_str)}));
    let reason = loop {
        tokio::select! {
            incoming = stream.next() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break "closed by client",
                Some(Ok(Message::Text(t))) => {
                    last_heard = Instant::now();
                    WsStats::add(&st.stats.messages_received, 1);
                    if let Push::TooSlow = client_message(&mut conn, &st, t.as_str()).await {
                        break "too slow";
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    last_heard = Instant::now();
                    conn.reply(&st, "error", None, json!({"message": "binary frames are not supported: send JSON text"}));
                }
                Some(Ok(_)) => last_heard = Instant::now(),
            },
            event = bus.recv() => match event {
                Ok(e) => {
                    if !conn.visible(&e) {
                        continue;
                    }
                    let text = match conn.flavor {
                        Flavor::Channels => Some(event_message(&e)),
                        Flavor::Crm => crm_message(&e),
                    };
                    if let Some(text) = text {
                        if let Push::TooSlow = conn.push(Message::Text(text.into()), &st) {
                            break "too slow";
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    conn.missed += n;
                    WsStats::add(&st.stats.dropped, n);
                }
                Err(broadcast::error::RecvError::Closed) => break "shutting down",
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > st.config.heartbeat * 2 {
                    break "idle";
                }
                if let Push::TooSlow = conn.push(Message::Ping(Default::default()), &st) {
                    break "too slow";
                }
            }
        }
    };
    if reason == "too slow" {
        WsStats::add(&st.stats.slow_disconnects, 1);
    }
    tracing::debug!(reason, tenant = %conn.principal.tenant_id, "websocket closed");
    let code = if reason == "too slow" { 1013 } else { 1000 };
    let _ = conn.queue.try_send(Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(if code == 1013 {
            "too slow: reconnect"
        } else {
            "bye"
        }),
    })));
    drop(conn.queue);
    if tokio::time::timeout(Duration::from_secs(1), writer)
        .await
        .is_err()
    {
        tracing::debug!("websocket writer stuck on a full socket: dropped");
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
                if subscribe {
                    conn.channels.insert(c);
                } else {
                    conn.channels.remove(&c);
                }
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
