//! Switchboard's real-time hub: `/ws` (the cold-caller spec's channels and the dialer spec's
//! agent protocol) and `/ws/calls` (the CRM spec's `new_call` / `call_updated`), fed by the
//! engine's event bus.
//!
//! Every message is `{"type", "channel"?, "data", "timestamp"}`. A connection authenticates
//! with `Authorization: Bearer`, a `token` query parameter (browsers cannot set headers on a
//! WebSocket) or a first message `{"type": "auth", "token": ...}`; the token verifier comes
//! from the binary (the API owns tokens), so this crate depends on the engine only.
//!
//! Fan-out: one dispatcher reads the bus once and queues each event, serialized once per wire
//! flavour, only for the connections the registry says may see it (see `registry`), so the
//! cost of an event is its audience, not the number of connections.
//!
//! Invariants: no event of one tenant reaches another; agents see only their own events
//! (plus system metrics); a slow client never slows the engine or other clients — each
//! connection has a bounded queue, overflow is dropped and counted, the client is told how
//! many it missed as soon as it has caught up, and one that stays full past
//! `slow_client_timeout` is disconnected.

mod hub;
mod protocol;
mod registry;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use switchboard_engine::events::EventBus;
use switchboard_engine::tenancy::Role;
use switchboard_engine::Store;

pub use protocol::envelope;

/// Who is connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub tenant_id: String,
    pub role: Role,
}

/// Turns a bearer token into a principal (None = refused).
pub type Verifier = Arc<dyn Fn(&str) -> Option<Principal> + Send + Sync>;

/// The crate's error type (connection-level failures are logged, not returned to callers).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("websocket: {0}")]
    Socket(#[from] axum::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// Hub settings.
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// Server ping interval; a client silent for two intervals is closed.
    pub heartbeat: Duration,
    /// Messages queued per connection before overflow is dropped.
    pub queue: usize,
    /// How long a queue may stay full before the client is disconnected.
    pub slow_client_timeout: Duration,
    /// Largest client message.
    pub max_message_bytes: usize,
    /// How long an unauthenticated connection may wait before its `auth` message.
    pub auth_timeout: Duration,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(30),
            queue: 256,
            slow_client_timeout: Duration::from_secs(10),
            max_message_bytes: 64 * 1024,
            auth_timeout: Duration::from_secs(5),
        }
    }
}

/// Counters for `/api/health/websocket` and Prometheus.
#[derive(Debug, Default)]
pub struct WsStats {
    pub connections: AtomicU64,
    pub connections_total: AtomicU64,
    pub messages_sent: AtomicU64,
    pub messages_received: AtomicU64,
    pub dropped: AtomicU64,
    pub slow_disconnects: AtomicU64,
}

impl WsStats {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

impl WsStats {
    /// Prometheus text for the hub.
    pub fn render(&self) -> String {
        let g = |name: &str, kind: &str, help: &str, v: u64| {
            format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n")
        };
        [
            g(
                "switchboard_ws_clients",
                "gauge",
                "Connected WebSocket clients.",
                Self::get(&self.connections),
            ),
            g(
                "switchboard_ws_connections_total",
                "counter",
                "WebSocket connections accepted.",
                Self::get(&self.connections_total),
            ),
            g(
                "switchboard_ws_messages_sent_total",
                "counter",
                "WebSocket messages queued to clients.",
                Self::get(&self.messages_sent),
            ),
            g(
                "switchboard_ws_dropped_total",
                "counter",
                "WebSocket messages dropped for slow clients.",
                Self::get(&self.dropped),
            ),
            g(
                "switchboard_ws_slow_disconnects_total",
                "counter",
                "Clients disconnected for not reading.",
                Self::get(&self.slow_disconnects),
            ),
        ]
        .concat()
    }
}

/// The size of the hub's registry (`/api/health/websocket`; all zero once every client has
/// gone).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RegistryStats {
    /// Registered connections.
    pub connections: usize,
    /// Tenants with at least one registered connection.
    pub tenants: usize,
    /// Connection ids held by all the indexes (channel, CRM, agent, system-wide).
    pub index_entries: usize,
}

/// What the hub needs.
#[derive(Clone)]
pub struct WsState {
    pub store: Store,
    pub bus: EventBus,
    pub verify: Verifier,
    pub config: Arc<WsConfig>,
    pub stats: Arc<WsStats>,
    pub started: Instant,
    hub: Arc<registry::Hub>,
}

impl WsState {
    pub fn new(store: Store, bus: EventBus, verify: Verifier, config: WsConfig) -> Self {
        let stats = Arc::new(WsStats::default());
        Self {
            store,
            bus,
            verify,
            hub: Arc::new(registry::Hub::new(
                stats.clone(),
                config.slow_client_timeout,
            )),
            config: Arc::new(config),
            stats,
            started: Instant::now(),
        }
    }

    /// The registry's size now.
    pub fn registry_stats(&self) -> RegistryStats {
        self.hub.stats()
    }
}

/// `/ws`, `/ws/calls` and `/api/health/websocket`.
pub fn router(state: WsState) -> Router {
    Router::new()
        .route("/ws", get(hub::upgrade_ws))
        .route("/ws/calls", get(hub::upgrade_crm))
        .route("/api/health/websocket", get(hub::health))
        .with_state(state)
}

/// Publishes `metricsUpdate` on the metrics channel every `every` (system-wide).
pub fn spawn_metrics(state: WsState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        tick.tick().await;
        loop {
            tick.tick().await;
            state.bus.publish(switchboard_engine::events::Event {
                tenant_id: None,
                channel: switchboard_engine::events::Channel::Metrics,
                kind: "metricsUpdate",
                agent_id: None,
                data: serde_json::json!({
                    "systemUptime": state.started.elapsed().as_secs(),
                    "websocketConnections": WsStats::get(&state.stats.connections),
                    "memoryUsage": {"rss": protocol::rss_bytes()},
                }),
                at: chrono::Utc::now(),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_render_as_prometheus_text() {
        let s = WsStats::default();
        WsStats::add(&s.connections, 3);
        WsStats::add(&s.dropped, 7);
        let t = s.render();
        assert!(t.contains("switchboard_ws_clients 3"), "{t}");
        assert!(t.contains(
            "# TYPE switchboard_ws_dropped_total counter\nswitchboard_ws_dropped_total 7"
        ));
    }
}
