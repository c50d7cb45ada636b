//! The event bus: everything the engine and the API do that a person watches live. One
//! broadcast channel; the WebSocket hub reads it once (one dispatcher) and routes each event
//! by tenant, channel and agent.
//! Publishing never blocks and never fails the caller: with no subscriber the event is
//! dropped, and a subscriber that lags loses the oldest events (and is told how many).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::broadcast;

/// The channels of the cold-caller spec's `/ws` protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Calls,
    Recordings,
    Sip,
    Metrics,
    Performance,
    Agents,
}

impl Channel {
    pub const ALL: [Channel; 6] = [
        Channel::Calls,
        Channel::Recordings,
        Channel::Sip,
        Channel::Metrics,
        Channel::Performance,
        Channel::Agents,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Calls => "calls",
            Channel::Recordings => "recordings",
            Channel::Sip => "sip",
            Channel::Metrics => "metrics",
            Channel::Performance => "performance",
            Channel::Agents => "agents",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// One event.
#[derive(Debug, Clone)]
pub struct Event {
    /// Whose it is; `None` for system-wide events (metrics), which every tenant may see.
    pub tenant_id: Option<String>,
    pub channel: Channel,
    /// `callInitiated`, `callEnded`, `agent:status:updated`, ...
    pub kind: &'static str,
    /// The agent this event is for or about (agents only see their own).
    pub agent_id: Option<String>,
    pub data: Value,
    pub at: DateTime<Utc>,
}

/// A cheap-to-clone handle on the bus.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
}

impl EventBus {
    /// A bus keeping up to `capacity` events for slow subscribers.
    pub fn new(capacity: usize) -> Self {
        Self {
            tx: broadcast::channel(capacity.max(16)).0,
        }
    }

    /// Publishes; never blocks.
    pub fn publish(&self, e: Event) {
        let _ = self.tx.send(Arc::new(e));
    }

    /// Publishes a tenant's event.
    pub fn emit(
        &self,
        tenant_id: &str,
        channel: Channel,
        kind: &'static str,
        agent_id: Option<&str>,
        data: Value,
    ) {
        self.publish(Event {
            tenant_id: Some(tenant_id.to_string()),
            channel,
            kind,
            agent_id: agent_id.map(str::to_string),
            data,
            at: Utc::now(),
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// How many subscribers listen now.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(4096)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn publish_reaches_subscribers_and_never_blocks() {
        let bus = EventBus::new(16);
        bus.emit(
            "t",
            Channel::Calls,
            "callInitiated",
            None,
            serde_json::json!({"id": 1}),
        );
        let mut rx = bus.subscribe();
        bus.emit(
            "t",
            Channel::Calls,
            "callEnded",
            Some("a"),
            serde_json::json!({}),
        );
        let e = rx.recv().await.unwrap();
        assert_eq!(
            (e.kind, e.agent_id.as_deref(), e.tenant_id.as_deref()),
            ("callEnded", Some("a"), Some("t"))
        );
        for _ in 0..100 {
            bus.emit("t", Channel::Calls, "callEnded", None, Value::Null);
        }
        assert!(
            matches!(rx.recv().await, Err(broadcast::error::RecvError::Lagged(_))),
            "a slow subscriber is told it lagged"
        );
        assert_eq!(Channel::parse("agents"), Some(Channel::Agents));
        assert_eq!(Channel::parse("nope"), None);
    }
}
