//! The registry behind the fan-out: which connection may see which event.
//!
//! One dispatcher task per hub reads the engine's bus once, serializes each event once per
//! wire flavour (`/ws`, `/ws/calls`) into shared bytes, and queues it with `try_send` only
//! into the bounded queues of the connections that may see it, found through indexes: per
//! tenant by channel (roles above agent), by agent id (connections that joined as that
//! agent) and for the CRM flavour; system-wide events (no tenant) by channel. A connection
//! registers once authenticated and deregisters through a guard when its task ends, whatever
//! the reason, so no entry outlives its connection.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use axum::extract::ws::Message;
use serde_json::json;
use switchboard_engine::events::{Channel, Event, EventBus};
use switchboard_engine::tenancy::Role;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{broadcast, mpsc, Notify};
use tokio::task::JoinHandle;

use crate::protocol::{crm_message, envelope, event_message};
use crate::{Principal, RegistryStats, WsStats};

pub(crate) type ConnId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `/ws`: channels and the agent protocol.
    Channels,
    /// `/ws/calls`: the CRM spec's call events only.
    Crm,
}

const CHANNELS: usize = Channel::ALL.len();

fn slot(c: Channel) -> usize {
    c as usize
}

fn bit(c: Channel) -> u8 {
    1 << slot(c)
}

/// Why the hub ends a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kick {
    /// Its queue stayed full for `slow_client_timeout`.
    TooSlow = 1,
    /// The bus closed.
    ShuttingDown = 2,
}

/// What queueing a message came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    Sent,
    /// The queue was full: dropped, counted, and owed to the client as a `missed` notice.
    Dropped,
    /// Dropped, and the queue has been full for `slow_client_timeout`.
    TooSlow,
    /// The writer has ended (the socket failed).
    Gone,
}

/// What a connection's writer shares with whoever queues for it.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    /// Messages dropped on a full queue and not yet reported to the client.
    missed: AtomicU64,
    /// When the queue was first found full, in µs since the hub's epoch plus one; 0 = not full.
    full_since: AtomicU64,
    /// Wakes the writer when `missed` becomes non-zero.
    wake: Notify,
}

impl Meter {
    /// The `missed` notice owed to the client, if any (the count is reset).
    pub(crate) fn take_notice(&self) -> Option<Message> {
        match self.missed.swap(0, Ordering::AcqRel) {
            0 => None,
            n => Some(missed_notice(n)),
        }
    }

    /// Resolves when a drop happened since the last call (a permit is kept if nobody waits).
    pub(crate) async fn woken(&self) {
        self.wake.notified().await
    }

    fn add_missed(&self, n: u64) {
        if self.missed.fetch_add(n, Ordering::AcqRel) == 0 {
            self.wake.notify_one();
        }
    }
}

fn missed_notice(n: u64) -> Message {
    Message::Text(envelope("missed", None, json!({"count": n})).into())
}

/// The sending side of one connection's bounded queue, shared by the connection's task and
/// the dispatcher.
#[derive(Debug)]
pub(crate) struct Outlet {
    queue: mpsc::Sender<Message>,
    meter: Arc<Meter>,
    kick: AtomicU8,
    kicked: Notify,
}

impl Outlet {
    pub(crate) fn new(queue: mpsc::Sender<Message>, meter: Arc<Meter>) -> Self {
        Self {
            queue,
            meter,
            kick: AtomicU8::new(0),
            kicked: Notify::new(),
        }
    }

    /// Queues `msg` without waiting. A `missed` notice owed to the client goes first, so it
    /// sits where the gap is; on a full queue `msg` is dropped and counted.
    pub(crate) fn push(&self, msg: Message, hub: &Hub) -> Push {
        let owed = self.meter.missed.swap(0, Ordering::AcqRel);
        if owed > 0 && self.queue.try_send(missed_notice(owed)).is_err() {
            self.meter.missed.fetch_add(owed, Ordering::AcqRel);
        }
        match self.queue.try_send(msg) {
            Ok(()) => {
                self.meter.full_since.store(0, Ordering::Relaxed);
                WsStats::add(&hub.stats.messages_sent, 1);
                Push::Sent
            }
            Err(TrySendError::Closed(_)) => Push::Gone,
            Err(TrySendError::Full(_)) => {
                WsStats::add(&hub.stats.dropped, 1);
                self.meter.add_missed(1);
                let now = hub.epoch.elapsed().as_micros() as u64 + 1;
                let since = match self.meter.full_since.compare_exchange(
                    0,
                    now,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => now,
                    Err(since) => since,
                };
                if Duration::from_micros(now.saturating_sub(since)) >= hub.slow_after {
                    Push::TooSlow
                } else {
                    Push::Dropped
                }
            }
        }
    }

    /// Queues `msg` if there is room (the closing frame), counting nothing.
    pub(crate) fn offer(&self, msg: Message) {
        let _ = self.queue.try_send(msg);
    }

    /// Tells the connection's task to end (the first reason wins).
    fn kick(&self, why: Kick) {
        if self
            .kick
            .compare_exchange(0, why as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.kicked.notify_one();
        }
    }

    /// Resolves when the hub ends this connection.
    pub(crate) async fn kicked(&self) -> Kick {
        self.kicked.notified().await;
        if self.kick.load(Ordering::Acquire) == Kick::ShuttingDown as u8 {
            Kick::ShuttingDown
        } else {
            Kick::TooSlow
        }
    }
}

/// One registered connection.
#[derive(Debug)]
struct Entry {
    outlet: Arc<Outlet>,
    tenant: Arc<str>,
    /// A role above agent: sees its whole tenant on the channels it subscribed to.
    whole_tenant: bool,
    flavor: Flavor,
    /// Subscribed channels, one bit per `Channel::ALL` slot.
    channels: u8,
    /// The agent this connection joined as.
    agent: Option<String>,
}

impl Entry {
    /// Whether the tenant-wide indexes already deliver `e` to this connection.
    fn covered(&self, e: &Event) -> bool {
        self.whole_tenant
            && match self.flavor {
                Flavor::Channels => self.channels & bit(e.channel) != 0,
                Flavor::Crm => true,
            }
    }
}

/// One tenant's connections.
#[derive(Debug, Default)]
struct TenantIx {
    /// `/ws` connections above agent, by subscribed channel.
    channels: [HashSet<ConnId>; CHANNELS],
    /// `/ws/calls` connections above agent.
    crm: HashSet<ConnId>,
    /// Connections that joined as an agent, by agent id (any role, either flavour).
    agents: HashMap<String, HashSet<ConnId>>,
    /// Registered connections of the tenant; the index goes when it reaches zero.
    members: usize,
}

/// The indexes; one lock, held for one event's fan-out or one change.
#[derive(Debug, Default)]
struct Index {
    conns: HashMap<ConnId, Entry>,
    tenants: HashMap<Arc<str>, TenantIx>,
    /// `/ws` connections (any role) by subscribed channel, for system-wide events.
    system: [HashSet<ConnId>; CHANNELS],
}

fn toggle(set: &mut HashSet<ConnId>, id: ConnId, on: bool) {
    if on {
        set.insert(id);
    } else {
        set.remove(&id);
    }
}

impl Index {
    fn insert(&mut self, id: ConnId, entry: Entry) {
        let t = self.tenants.entry(entry.tenant.clone()).or_default();
        t.members += 1;
        if entry.flavor == Flavor::Crm && entry.whole_tenant {
            t.crm.insert(id);
        }
        self.conns.insert(id, entry);
    }

    fn set_channel(&mut self, id: ConnId, c: Channel, on: bool) {
        let Some(e) = self.conns.get_mut(&id) else {
            return;
        };
        if e.flavor != Flavor::Channels {
            return;
        }
        if on {
            e.channels |= bit(c);
        } else {
            e.channels &= !bit(c);
        }
        toggle(&mut self.system[slot(c)], id, on);
        if e.whole_tenant {
            if let Some(t) = self.tenants.get_mut(&e.tenant) {
                toggle(&mut t.channels[slot(c)], id, on);
            }
        }
    }

    fn join(&mut self, id: ConnId, agent: &str) {
        let Some(e) = self.conns.get_mut(&id) else {
            return;
        };
        let Some(t) = self.tenants.get_mut(&e.tenant) else {
            return;
        };
        if let Some(old) = e.agent.take() {
            leave_agent(t, &old, id);
        }
        t.agents.entry(agent.to_string()).or_default().insert(id);
        e.agent = Some(agent.to_string());
    }

    fn remove(&mut self, id: ConnId) {
        let Some(e) = self.conns.remove(&id) else {
            return;
        };
        for c in Channel::ALL {
            if e.channels & bit(c) != 0 {
                self.system[slot(c)].remove(&id);
            }
        }
        let Some(t) = self.tenants.get_mut(&e.tenant) else {
            return;
        };
        for set in &mut t.channels {
            set.remove(&id);
        }
        t.crm.remove(&id);
        if let Some(agent) = &e.agent {
            leave_agent(t, agent, id);
        }
        t.members -= 1;
        if t.members == 0 {
            self.tenants.remove(&e.tenant);
        }
    }

    /// Calls `deliver` once for every connection that may see `e`.
    fn route(&self, e: &Event, mut deliver: impl FnMut(ConnId, &Entry)) {
        let mut each = |ids: &HashSet<ConnId>, skip_covered: bool| {
            for id in ids {
                if let Some(c) = self.conns.get(id) {
                    if !(skip_covered && c.covered(e)) {
                        deliver(*id, c);
                    }
                }
            }
        };
        let Some(tenant) = e.tenant_id.as_deref() else {
            each(&self.system[slot(e.channel)], false);
            return;
        };
        let Some(t) = self.tenants.get(tenant) else {
            return;
        };
        each(&t.channels[slot(e.channel)], false);
        each(&t.crm, false);
        if let Some(ids) = e.agent_id.as_ref().and_then(|a| t.agents.get(a)) {
            each(ids, true);
        }
    }

    fn stats(&self) -> RegistryStats {
        let sets = |s: &[HashSet<ConnId>]| s.iter().map(HashSet::len).sum::<usize>();
        RegistryStats {
            connections: self.conns.len(),
            tenants: self.tenants.len(),
            index_entries: sets(&self.system)
                + self
                    .tenants
                    .values()
                    .map(|t| {
                        sets(&t.channels)
                            + t.crm.len()
                            + t.agents.values().map(HashSet::len).sum::<usize>()
                    })
                    .sum::<usize>(),
        }
    }
}

fn leave_agent(t: &mut TenantIx, agent: &str, id: ConnId) {
    if let Some(set) = t.agents.get_mut(agent) {
        set.remove(&id);
        if set.is_empty() {
            t.agents.remove(agent);
        }
    }
}

/// The registry and its dispatcher.
#[derive(Debug)]
pub(crate) struct Hub {
    index: Mutex<Index>,
    next_id: AtomicU64,
    pub(crate) stats: Arc<WsStats>,
    slow_after: Duration,
    epoch: Instant,
    dispatcher: Mutex<Option<JoinHandle<()>>>,
}

impl Hub {
    pub(crate) fn new(stats: Arc<WsStats>, slow_after: Duration) -> Self {
        Self {
            index: Mutex::new(Index::default()),
            next_id: AtomicU64::new(1),
            stats,
            slow_after,
            epoch: Instant::now(),
            dispatcher: Mutex::new(None),
        }
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a connection (starting the dispatcher if it is not running). Events
    /// published from now on reach it; dropping the returned guard deregisters it.
    pub(crate) fn register(
        self: &Arc<Self>,
        bus: &EventBus,
        principal: &Principal,
        flavor: Flavor,
        outlet: Arc<Outlet>,
    ) -> Registration {
        self.ensure_dispatcher(bus);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.index().insert(
            id,
            Entry {
                outlet,
                tenant: Arc::from(principal.tenant_id.as_str()),
                whole_tenant: principal.role != Role::Agent,
                flavor,
                channels: 0,
                agent: None,
            },
        );
        Registration {
            hub: self.clone(),
            id,
        }
    }

    fn ensure_dispatcher(self: &Arc<Self>, bus: &EventBus) {
        let mut d = self
            .dispatcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if d.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        // Subscribed here, before the caller registers, so nothing published after the
        // registration is missed.
        let rx = bus.subscribe();
        *d = Some(tokio::spawn(dispatch_loop(Arc::downgrade(self), rx)));
    }

    pub(crate) fn set_channel(&self, reg: &Registration, c: Channel, on: bool) {
        self.index().set_channel(reg.id, c, on);
    }

    pub(crate) fn join(&self, reg: &Registration, agent: &str) {
        self.index().join(reg.id, agent);
    }

    pub(crate) fn stats(&self) -> RegistryStats {
        self.index().stats()
    }

    /// Fans one event out: serialized at most once per flavour, shared by every queue.
    fn dispatch(&self, e: &Event) {
        let text = |s: Option<String>| s.map(|t| Message::Text(t.into()));
        let mut channels: Option<Option<Message>> = None;
        let mut crm: Option<Option<Message>> = None;
        let ix = self.index();
        ix.route(e, |_, c| {
            let msg = match c.flavor {
                Flavor::Channels => channels.get_or_insert_with(|| text(event_message(e))),
                Flavor::Crm => crm.get_or_insert_with(|| text(crm_message(e))),
            };
            if let Some(m) = msg {
                if c.outlet.push(m.clone(), self) == Push::TooSlow {
                    c.outlet.kick(Kick::TooSlow);
                }
            }
        });
    }

    /// The dispatcher fell `n` events behind the bus: nobody knows whose they were, so every
    /// connection is told it may have missed them (the pages reload their state).
    fn lagged(&self, n: u64) {
        tracing::warn!(
            events = n,
            "websocket dispatcher lagged behind the event bus"
        );
        WsStats::add(&self.stats.dropped, n);
        for c in self.index().conns.values() {
            c.outlet.meter.add_missed(n);
        }
    }

    fn shut_down(&self) {
        for c in self.index().conns.values() {
            c.outlet.kick(Kick::ShuttingDown);
        }
    }
}

/// A connection's place in the registry; dropping it deregisters the connection.
#[derive(Debug)]
pub(crate) struct Registration {
    hub: Arc<Hub>,
    id: ConnId,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.index().remove(self.id);
    }
}

async fn dispatch_loop(hub: Weak<Hub>, mut rx: broadcast::Receiver<Arc<Event>>) {
    loop {
        let got = rx.recv().await;
        let Some(hub) = hub.upgrade() else {
            return;
        };
        match got {
            Ok(e) => hub.dispatch(&e),
            Err(broadcast::error::RecvError::Lagged(n)) => hub.lagged(n),
            Err(broadcast::error::RecvError::Closed) => {
                hub.shut_down();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection as the oracle sees it.
    struct Model {
        id: ConnId,
        tenant: &'static str,
        role: Role,
        flavor: Flavor,
        channels: u8,
        agent: Option<&'static str>,
    }

    /// The hub's rule before the registry, one connection at a time: the oracle.
    fn visible(m: &Model, e: &Event) -> bool {
        match &e.tenant_id {
            Some(t) if t != m.tenant => return false,
            None => return m.flavor == Flavor::Channels && m.channels & bit(e.channel) != 0,
            _ => {}
        }
        let own = e.agent_id.is_some() && e.agent_id.as_deref() == m.agent;
        match m.flavor {
            Flavor::Crm => m.role != Role::Agent || own,
            Flavor::Channels if m.role == Role::Agent => own,
            Flavor::Channels => own || m.channels & bit(e.channel) != 0,
        }
    }

    fn outlet() -> Arc<Outlet> {
        let (tx, _) = mpsc::channel(1);
        Arc::new(Outlet::new(tx, Arc::default()))
    }

    fn event(tenant: Option<&str>, channel: Channel, agent: Option<&str>) -> Event {
        Event {
            tenant_id: tenant.map(str::to_string),
            channel,
            kind: "callUpdated",
            agent_id: agent.map(str::to_string),
            data: json!({}),
            at: chrono::Utc::now(),
        }
    }

    /// A small deterministic generator (no extra crate).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    #[test]
    fn routing_matches_the_per_connection_rule_through_every_change() {
        let tenants = ["t1", "t2", "t3"];
        let agents = ["a1", "a2", "a3"];
        let roles = [Role::Agent, Role::Viewer, Role::Supervisor, Role::Admin];
        let mut rng = Lcg(7);
        let mut ix = Index::default();
        let mut model: Vec<Model> = Vec::new();
        let mut next_id = 1;
        for round in 0..3000 {
            match rng.next(6) {
                0 | 1 => {
                    let tenant = tenants[rng.next(3) as usize];
                    let role = roles[rng.next(4) as usize];
                    let flavor = if rng.next(3) == 0 {
                        Flavor::Crm
                    } else {
                        Flavor::Channels
                    };
                    ix.insert(
                        next_id,
                        Entry {
                            outlet: outlet(),
                            tenant: Arc::from(tenant),
                            whole_tenant: role != Role::Agent,
                            flavor,
                            channels: 0,
                            agent: None,
                        },
                    );
                    model.push(Model {
                        id: next_id,
                        tenant,
                        role,
                        flavor,
                        channels: 0,
                        agent: None,
                    });
                    next_id += 1;
                }
                2 if !model.is_empty() => {
                    let i = rng.next(model.len() as u64) as usize;
                    let c = Channel::ALL[rng.next(CHANNELS as u64) as usize];
                    let on = rng.next(3) != 0;
                    let m = &mut model[i];
                    ix.set_channel(m.id, c, on);
                    if m.flavor == Flavor::Channels {
                        if on {
                            m.channels |= bit(c);
                        } else {
                            m.channels &= !bit(c);
                        }
                    }
                }
                3 if !model.is_empty() => {
                    let i = rng.next(model.len() as u64) as usize;
                    let a = agents[rng.next(3) as usize];
                    ix.join(model[i].id, a);
                    model[i].agent = Some(a);
                }
                4 if !model.is_empty() => {
                    let i = rng.next(model.len() as u64) as usize;
                    ix.remove(model.swap_remove(i).id);
                }
                _ => {}
            }
            for tenant in [None, Some("t1"), Some("t2"), Some("nobody")] {
                for c in Channel::ALL {
                    for agent in [None, Some("a1"), Some("a2")] {
                        let e = event(tenant, c, agent);
                        let mut got: Vec<ConnId> = Vec::new();
                        ix.route(&e, |id, _| got.push(id));
                        let n = got.len();
                        got.sort_unstable();
                        got.dedup();
                        assert_eq!(n, got.len(), "round {round}: a connection got {e:?} twice");
                        let mut want: Vec<ConnId> = model
                            .iter()
                            .filter(|m| visible(m, &e))
                            .map(|m| m.id)
                            .collect();
                        want.sort_unstable();
                        assert_eq!(got, want, "round {round}: {e:?}");
                    }
                }
            }
        }
        for m in model.drain(..) {
            ix.remove(m.id);
        }
        assert_eq!(ix.stats(), RegistryStats::default(), "{ix:?}");
        assert!(ix.conns.is_empty() && ix.tenants.is_empty());
    }

    #[tokio::test]
    async fn a_full_queue_drops_counts_and_owes_a_notice() {
        let hub = Hub::new(Arc::default(), Duration::from_secs(3600));
        let (tx, mut rx) = mpsc::channel(2);
        let meter = Arc::new(Meter::default());
        let o = Outlet::new(tx, meter.clone());
        let m = || Message::Text("x".into());
        assert_eq!(o.push(m(), &hub), Push::Sent);
        assert_eq!(o.push(m(), &hub), Push::Sent);
        assert_eq!(o.push(m(), &hub), Push::Dropped);
        assert_eq!(o.push(m(), &hub), Push::Dropped);
        assert_eq!(WsStats::get(&hub.stats.dropped), 2);
        // The writer is woken for the drop even if no further message comes.
        tokio::time::timeout(Duration::from_secs(5), meter.woken())
            .await
            .expect("woken");
        rx.recv().await.unwrap();
        // Room for one: the notice takes it, in order, and the message is dropped too.
        assert_eq!(o.push(m(), &hub), Push::Dropped);
        rx.recv().await.unwrap();
        match rx.recv().await.unwrap() {
            Message::Text(t) => {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                assert_eq!(
                    (v["type"].as_str(), v["data"]["count"].as_u64()),
                    (Some("missed"), Some(2))
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(
            meter.take_notice().is_some(),
            "the third drop is still owed"
        );
        assert!(meter.take_notice().is_none());
        let slow = Hub::new(Arc::default(), Duration::ZERO);
        assert_eq!(o.push(m(), &slow), Push::Sent);
        assert_eq!(o.push(m(), &slow), Push::Sent);
        assert_eq!(
            o.push(m(), &slow),
            Push::TooSlow,
            "full for zero time is too slow"
        );
    }
}
