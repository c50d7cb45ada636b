//! Agent presence and routing, in memory. An agent who becomes available is called at their
//! audio endpoint (a SIP URI, or a number through a trunk) and the leg is kept up between
//! calls, so a lead is bridged in at once; a dropped leg sets the agent offline.
//!
//! States: offline → connecting (leg ringing) → available ⇄ reserved → talking → wrap-up →
//! available; break keeps the leg up but takes no calls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::json;
use switchboard_media::runtime::StreamHandle;
use tokio::sync::{mpsc, Notify};

use crate::events::{Channel, EventBus};

/// An agent's state in the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentState {
    Offline,
    /// Their leg is being called.
    Connecting,
    Available,
    /// Picked for a call; the bridge is being made.
    Reserved(String),
    Talking(String),
    WrapUp(String),
    Break,
}

impl AgentState {
    /// The name served to clients.
    pub fn as_str(&self) -> &'static str {
        match self {
            AgentState::Offline => "offline",
            AgentState::Connecting => "connecting",
            AgentState::Available => "available",
            AgentState::Reserved(_) | AgentState::Talking(_) => "busy",
            AgentState::WrapUp(_) => "wrap-up",
            AgentState::Break => "break",
        }
    }

    /// The status stored on the agent row (the store knows available, busy, offline, break).
    pub fn stored(&self) -> &'static str {
        match self {
            AgentState::Offline => "offline",
            AgentState::Break => "break",
            // Connecting: the agent asked to be available; the leg is being set up.
            AgentState::Connecting | AgentState::Available => "available",
            _ => "busy",
        }
    }
}

/// What a call task learns about its agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AgentNotice {
    /// The agent's leg dropped.
    LegLost,
    /// The agent ended the call (or posted the disposition) from the API.
    Ended,
}

pub(crate) struct Slot {
    pub tenant_id: String,
    pub id: String,
    pub name: String,
    pub group: Option<String>,
    pub endpoint: Option<String>,
    pub state: AgentState,
    pub since: Instant,
    /// When the agent last became available (longest idle is served first).
    pub idle_since: Instant,
    pub stream: Option<Arc<StreamHandle>>,
    /// Hangs the leg up.
    pub hangup: Option<mpsc::UnboundedSender<()>>,
    /// The call task of the current call.
    pub call: Option<mpsc::UnboundedSender<AgentNotice>>,
    /// The agent asked for another state while on a call; applied when it ends.
    pub after_call: Option<&'static str>,
    pub calls_handled: u64,
}

/// A snapshot for views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentView {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub state: &'static str,
    pub seconds_in_state: u64,
    pub call_id: Option<String>,
    pub calls_handled: u64,
}

/// A reserved agent.
pub(crate) struct Reserved {
    pub id: String,
    pub stream: Arc<StreamHandle>,
}

#[derive(Default)]
pub(crate) struct Pool {
    pub slots: HashMap<String, Slot>,
}

pub(crate) struct Agents {
    /// Where agent statuses are mirrored, in order (so REST shows busy / break / offline too).
    pub writer: Option<std::sync::Arc<super::writer::WriteBehind>>,
    pub pool: Mutex<Pool>,
    /// Woken whenever an agent becomes available.
    pub ready: Notify,
    pub events: EventBus,
}

impl Agents {
    pub(crate) fn new(
        events: EventBus,
        writer: Option<std::sync::Arc<super::writer::WriteBehind>>,
    ) -> Self {
        Self {
            writer,
            pool: Mutex::new(Pool::default()),
            ready: Notify::new(),
            events,
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Emits the state of `slot` (the engine's own events carry `"by": "engine"`, so the
    /// engine does not act on them again).
    pub(crate) fn emit_state(&self, slot: &Slot) {
        self.events.emit(
            &slot.tenant_id,
            Channel::Agents,
            "agent:status:updated",
            Some(&slot.id),
            json!({"agentId": slot.id, "status": slot.state.as_str(), "by": "engine"}),
        );
        if let Some(w) = &self.writer {
            w.push(crate::dialer::attempts::EngineWrite::AgentStatus {
                tenant_id: slot.tenant_id.clone(),
                agent_id: slot.id.clone(),
                status: slot.state.stored(),
            });
        }
    }

    /// Sets a state, emitting it. Returns false if the agent is unknown.
    pub(crate) fn set_state(&self, id: &str, state: AgentState) -> bool {
        let mut pool = self.lock();
        let Some(slot) = pool.slots.get_mut(id) else {
            return false;
        };
        if slot.state == state {
            return true;
        }
        let now = Instant::now();
        if state == AgentState::Available {
            slot.idle_since = now;
        }
        slot.state = state;
        slot.since = now;
        self.emit_state(slot);
        let available = slot.state == AgentState::Available;
        drop(pool);
        if available {
            self.ready.notify_waiters();
        }
        true
    }

    /// Ready and busy agents of a tenant (and group, when the campaign has one).
    pub(crate) fn load(&self, tenant_id: &str, group: Option<&str>) -> (u32, u32) {
        let pool = self.lock();
        let (mut ready, mut busy) = (0, 0);
        for s in pool.slots.values() {
            if s.tenant_id != tenant_id || (group.is_some() && s.group.as_deref() != group) {
                continue;
            }
            match s.state {
                AgentState::Available => ready += 1,
                AgentState::Reserved(_) | AgentState::Talking(_) | AgentState::WrapUp(_) => {
                    busy += 1
                }
                _ => {}
            }
        }
        (ready, busy)
    }

    /// Picks the longest-idle available agent and reserves it for `call_id`.
    pub(crate) fn reserve(
        &self,
        tenant_id: &str,
        group: Option<&str>,
        call_id: &str,
        notices: mpsc::UnboundedSender<AgentNotice>,
    ) -> Option<Reserved> {
        let mut pool = self.lock();
        let slot = pool
            .slots
            .values_mut()
            .filter(|s| {
                s.tenant_id == tenant_id
                    && s.state == AgentState::Available
                    && s.stream.is_some()
                    && (group.is_none() || s.group.as_deref() == group)
            })
            .min_by_key(|s| s.idle_since)?;
        slot.state = AgentState::Reserved(call_id.to_owned());
        slot.since = Instant::now();
        slot.call = Some(notices);
        self.emit_state(slot);
        Some(Reserved {
            id: slot.id.clone(),
            stream: slot.stream.clone()?,
        })
    }

    /// Reserves one given agent (preview dialing), if available with a leg.
    pub(crate) fn reserve_agent(
        &self,
        tenant_id: &str,
        agent_id: &str,
        call_id: &str,
        notices: mpsc::UnboundedSender<AgentNotice>,
    ) -> Option<Reserved> {
        let mut pool = self.lock();
        let slot = pool.slots.get_mut(agent_id)?;
        if slot.tenant_id != tenant_id || slot.state != AgentState::Available {
            return None;
        }
        let stream = slot.stream.clone()?;
        slot.state = AgentState::Reserved(call_id.to_owned());
        slot.since = Instant::now();
        slot.call = Some(notices);
        self.emit_state(slot);
        Some(Reserved {
            id: slot.id.clone(),
            stream,
        })
    }

    /// The call is over for the agent: back to available (or what they asked for meanwhile).
    pub(crate) fn release(&self, id: &str, call_id: &str) {
        let mut pool = self.lock();
        let Some(slot) = pool.slots.get_mut(id) else {
            return;
        };
        let on_this_call = matches!(&slot.state,
            AgentState::Reserved(c) | AgentState::Talking(c) | AgentState::WrapUp(c) if c == call_id);
        if !on_this_call {
            return;
        }
        slot.call = None;
        slot.calls_handled += 1;
        let next = match slot.after_call.take() {
            Some("break") => AgentState::Break,
            Some("offline") => AgentState::Offline,
            _ if slot.stream.is_some() => AgentState::Available,
            _ => AgentState::Offline,
        };
        if next == AgentState::Offline {
            if let Some(h) = slot.hangup.take() {
                let _ = h.send(());
            }
        }
        let now = Instant::now();
        slot.idle_since = now;
        slot.since = now;
        slot.state = next;
        self.emit_state(slot);
        let available = slot.state == AgentState::Available;
        drop(pool);
        if available {
            self.ready.notify_waiters();
        }
    }

    /// Snapshot of every agent of a tenant.
    pub fn views(&self, tenant_id: &str) -> Vec<AgentView> {
        let pool = self.lock();
        let now = Instant::now();
        let mut v: Vec<AgentView> = pool
            .slots
            .values()
            .filter(|s| s.tenant_id == tenant_id)
            .map(|s| AgentView {
                id: s.id.clone(),
                tenant_id: s.tenant_id.clone(),
                name: s.name.clone(),
                state: s.state.as_str(),
                seconds_in_state: now.duration_since(s.since).as_secs(),
                call_id: match &s.state {
                    AgentState::Reserved(c) | AgentState::Talking(c) | AgentState::WrapUp(c) => {
                        Some(c.clone())
                    }
                    _ => None,
                },
                calls_handled: s.calls_handled,
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}
