//! Telephony: the engine's one SIP [`Endpoint`] and the live registrations of every tenant's
//! trunks.
//!
//! [`Telephony::start`] binds the endpoint and registers every enabled trunk with
//! `register = true` (of all tenants). Each registration is driven by a task that owns its
//! [`RegistrationHandle`], keeps the trunk's live [`TrunkStatus`] and publishes `sipRegistered`,
//! `sipRegistrationFailed` and `sipUnregistered` on the event bus (channel `sip`, the trunk's
//! tenant). [`Telephony::apply`] re-reads a trunk after it changed (the old registration is
//! removed, a new one started when the trunk is enabled and registers); [`Telephony::test`]
//! pings a trunk with OPTIONS and optionally proves its credentials with a REGISTER;
//! [`Telephony::shutdown`] unregisters everything and closes the endpoint.
//!
//! Inbound INVITEs are refused with 480 until someone takes them with
//! [`Telephony::take_incoming`].

pub mod secrets;
pub mod softphones;
pub mod trunks;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_sip::endpoint::{
    Endpoint, IncomingCalls, Registrar, RegistrarConfig, RegistrationHandle, TrunkConfig,
};
use switchboard_sip::{AuthCredentials, RegistrationEvent, RegistrationStatus};
use tokio::sync::{oneshot, watch};

use crate::events::{Channel, EventBus};
use crate::store::Store;
use crate::{Error, Result};

pub use secrets::SecretBox;
pub use softphones::{AgentSip, AgentSipInput};
/// Re-exported so the binary and tests configure the endpoint without naming the sip crate.
pub use switchboard_sip::endpoint::EndpointConfig;
pub use trunks::{preview_trunk, provider, DialTrunk, Provider, Trunk, TrunkInput, PROVIDERS};

/// Knobs of the service (defaults suit production; tests shorten the waits).
#[derive(Debug, Clone)]
pub struct TelephonyOptions {
    /// Registration expiry asked of registrars, in seconds (they may grant less).
    pub expires: u32,
    /// First wait after a failed registration; doubles per failure up to `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Longest wait of `POST /api/sip/test` for the OPTIONS answer and for a REGISTER probe.
    pub test_wait: Duration,
    /// Longest wait of `POST /api/sip/register` for the first outcome.
    pub register_wait: Duration,
    /// Digest realm of the registrar agent softphones register with (default `switchboard`).
    pub realm: String,
}

impl Default for TelephonyOptions {
    fn default() -> Self {
        TelephonyOptions {
            expires: 3600,
            retry_initial: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
            test_wait: Duration::from_secs(10),
            register_wait: Duration::from_secs(10),
            realm: "switchboard".to_owned(),
        }
    }
}

/// Where a trunk's registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RegState {
    /// The first REGISTER (or a re-registration) is under way.
    Registering,
    Registered,
    /// The last attempt failed; another follows after a backoff.
    Failed,
    /// No binding (stopped, or never started).
    Unregistered,
    /// The trunk does not register (IP-authenticated).
    NotRequired,
    /// The trunk is disabled.
    Disabled,
}

/// A trunk's registration status (`GET /api/sip/status`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrunkStatus {
    pub trunk_id: String,
    pub name: String,
    pub provider: String,
    /// `host:port` of the registrar.
    pub server: String,
    pub transport: String,
    pub priority: i64,
    pub state: RegState,
    /// True when `state` is registered.
    pub registered: bool,
    /// The SIP status of the last failure (absent for timeouts and network errors).
    pub status_code: Option<u16>,
    /// The last failure, for people (`401 Unauthorized (credentials rejected: ...)`).
    pub last_error: Option<String>,
    /// When the state was entered.
    pub since: DateTime<Utc>,
    /// The expiry the registrar granted, in seconds.
    pub expires: Option<u32>,
    /// When the binding lapses unless refreshed (the service refreshes it before).
    pub expires_at: Option<DateTime<Utc>>,
    /// When the next attempt follows a failure.
    pub next_retry_at: Option<DateTime<Utc>>,
}

/// Registration counts over every tenant (`GET /api/health/sip`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SipSummary {
    /// ok (no failing registration) | degraded (some fail) | down (all fail)
    pub status: &'static str,
    /// Trunks the service registers.
    pub trunks: usize,
    pub registered: usize,
    pub registering: usize,
    pub failed: usize,
    pub unregistered: usize,
}

/// Body of `POST /api/sip/test`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrunkTestInput {
    /// The trunk to test; default: the tenant's first enabled trunk in failover order.
    pub id: Option<String>,
    /// Settings to test without saving them (the configure body); instead of `id`.
    pub trunk: Option<TrunkInput>,
    /// Also prove the credentials with a REGISTER (removed again at once) when the trunk
    /// registers; a trunk registered by the service reports its live registration instead.
    #[serde(default)]
    pub register: bool,
}

/// The OPTIONS part of a test.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OptionsOutcome {
    /// The URI pinged.
    pub target: String,
    /// The final status, absent when nothing answered.
    pub status: Option<u16>,
    pub reason: String,
    pub latency_ms: Option<f64>,
}

/// The REGISTER part of a test.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterOutcome {
    /// live (the service's registration) | probe (a REGISTER sent for the test)
    pub source: &'static str,
    pub registered: bool,
    pub status_code: Option<u16>,
    pub reason: String,
    pub expires: Option<u32>,
    pub latency_ms: Option<f64>,
}

/// What `POST /api/sip/test` found.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrunkTestReport {
    /// Absent for unsaved settings.
    pub trunk_id: Option<String>,
    pub name: String,
    /// The server answered the OPTIONS (with any final status).
    pub reachable: bool,
    pub options: OptionsOutcome,
    pub registration: Option<RegisterOutcome>,
    /// Reachable, and registered when a registration was asked for.
    pub ok: bool,
}

/// The live part of a registering trunk's status.
#[derive(Debug, Clone)]
struct Live {
    tenant_id: String,
    generation: u64,
    state: RegState,
    status_code: Option<u16>,
    last_error: Option<String>,
    since: DateTime<Utc>,
    expires: Option<u32>,
    expires_at: Option<DateTime<Utc>>,
    next_retry_at: Option<DateTime<Utc>>,
}

/// A running registration: dropping `stop` (or sending on it) makes its task unregister.
struct Slot {
    generation: u64,
    stop: oneshot::Sender<oneshot::Sender<()>>,
}

/// What the service and its registration tasks share.
struct Shared {
    events: EventBus,
    live: Mutex<HashMap<String, Live>>,
    /// Bumped on every change of `live` (waiters watch it).
    version: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `f` to the live status of `trunk` when `generation` is still current.
    fn update(&self, trunk: &Trunk, generation: u64, f: impl FnOnce(&mut Live)) {
        let mut live = self.lock();
        if let Some(l) = live.get_mut(&trunk.id) {
            if l.generation == generation {
                f(l);
            }
        }
        drop(live);
        self.version.send_modify(|v| *v += 1);
    }

    fn publish(&self, trunk: &Trunk, kind: &'static str, mut data: serde_json::Value) {
        if let Some(obj) = data.as_object_mut() {
            obj.insert("trunkId".into(), json!(trunk.id));
            obj.insert("name".into(), json!(trunk.name));
            obj.insert("provider".into(), json!(trunk.provider));
            obj.insert("server".into(), json!(trunk.server_addr()));
        }
        self.events
            .emit(&trunk.tenant_id, Channel::Sip, kind, None, data);
    }

    fn on_event(&self, trunk: &Trunk, generation: u64, ev: RegistrationEvent) {
        let now = Utc::now();
        match ev {
            RegistrationEvent::Registered { expires } => {
                let mut was_registered = false;
                self.update(trunk, generation, |l| {
                    was_registered = l.state == RegState::Registered;
                    if !was_registered {
                        l.since = now;
                    }
                    l.state = RegState::Registered;
                    l.expires = Some(expires);
                    l.expires_at = Some(now + chrono::Duration::seconds(i64::from(expires)));
                    l.next_retry_at = None;
                });
                if !was_registered {
                    tracing::info!(trunk = %trunk.id, expires, "trunk registered");
                    self.publish(
                        trunk,
                        "sipRegistered",
                        json!({"registered": true, "expires": expires}),
                    );
                }
            }
            RegistrationEvent::Failed { failure, retry_in } => {
                let reason = failure.to_string();
                let retry_at = now + chrono::Duration::from_std(retry_in).unwrap_or_default();
                self.update(trunk, generation, |l| {
                    if l.state != RegState::Failed {
                        l.since = now;
                    }
                    l.state = RegState::Failed;
                    l.status_code = failure.status;
                    l.last_error = Some(reason.clone());
                    l.expires = None;
                    l.expires_at = None;
                    l.next_retry_at = Some(retry_at);
                });
                tracing::warn!(trunk = %trunk.id, reason = %reason, "trunk registration failed");
                self.publish(
                    trunk,
                    "sipRegistrationFailed",
                    json!({"registered": false, "status": failure.status, "reason": reason, "retryInSeconds": retry_in.as_secs()}),
                );
            }
            RegistrationEvent::Unregistered { last_error } => {
                self.update(trunk, generation, |l| {
                    l.state = RegState::Unregistered;
                    l.since = now;
                    l.expires = None;
                    l.expires_at = None;
                    l.next_retry_at = None;
                });
                tracing::info!(trunk = %trunk.id, "trunk unregistered");
                self.publish(
                    trunk,
                    "sipUnregistered",
                    json!({"registered": false, "lastError": last_error.map(|e| e.to_string())}),
                );
            }
        }
    }

    /// A failure before any REGISTER could be sent (the server name does not resolve).
    fn on_setup_failure(&self, trunk: &Trunk, generation: u64, reason: String, retry: Duration) {
        self.on_event(
            trunk,
            generation,
            RegistrationEvent::Failed {
                failure: switchboard_sip::RegistrationFailure {
                    status: None,
                    reason,
                },
                retry_in: retry,
            },
        );
    }
}

/// The telephony service. See the module documentation.
pub struct Telephony {
    store: Store,
    secrets: SecretBox,
    endpoint: Arc<Endpoint>,
    options: TelephonyOptions,
    shared: Arc<Shared>,
    slots: Mutex<HashMap<String, Slot>>,
    /// Serializes apply / re-register / shutdown.
    ops: tokio::sync::Mutex<()>,
    next_generation: std::sync::atomic::AtomicU64,
    incoming: Mutex<Option<oneshot::Sender<oneshot::Sender<IncomingCalls>>>>,
    /// Agent softphone passwords the registrar answers from.
    softphones: softphones::Passwords,
    /// The SIP address phones are told to register with.
    advertised: SocketAddr,
}

impl std::fmt::Debug for Telephony {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telephony")
            .field("local_addr", &self.endpoint.local_addr())
            .finish_non_exhaustive()
    }
}

impl Telephony {
    /// Binds the endpoint and registers every enabled, registering trunk of every tenant.
    pub async fn start(
        store: Store,
        events: EventBus,
        secrets: SecretBox,
        config: EndpointConfig,
    ) -> Result<Arc<Telephony>> {
        Telephony::start_with(store, events, secrets, config, TelephonyOptions::default()).await
    }

    /// [`Telephony::start`] with other options.
    pub async fn start_with(
        store: Store,
        events: EventBus,
        secrets: SecretBox,
        config: EndpointConfig,
        options: TelephonyOptions,
    ) -> Result<Arc<Telephony>> {
        let trunks = store.registering_trunks(&secrets).await?;
        let passwords: softphones::Passwords = Arc::new(std::sync::RwLock::new(
            softphones::load(&store, &secrets).await?,
        ));
        let advertised = config.advertised;
        let mut endpoint = Endpoint::bind(config).await?;
        let advertised = advertised.unwrap_or(endpoint.local_addr());
        let lookup = passwords.clone();
        let registrar = Registrar::new(
            RegistrarConfig::new(&options.realm),
            Arc::new(move |user: &str| {
                lookup
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(user)
                    .cloned()
            }),
        );
        endpoint.enable_registrar(Arc::new(registrar))?;
        let incoming = endpoint.take_incoming();
        let (handover_tx, handover_rx) = oneshot::channel();
        if let Some(calls) = incoming {
            tokio::spawn(refuse_inbound(calls, handover_rx));
        }
        let t = Arc::new(Telephony {
            store,
            secrets,
            endpoint: Arc::new(endpoint),
            options,
            shared: Arc::new(Shared {
                events,
                live: Mutex::new(HashMap::new()),
                version: watch::channel(0).0,
            }),
            slots: Mutex::new(HashMap::new()),
            ops: tokio::sync::Mutex::new(()),
            next_generation: std::sync::atomic::AtomicU64::new(1),
            incoming: Mutex::new(Some(handover_tx)),
            softphones: passwords,
            advertised,
        });
        tracing::info!(sip = %t.endpoint.local_addr(), trunks = trunks.len(), "SIP endpoint listening; registering trunks");
        for dt in trunks {
            t.start_registration(dt).await;
        }
        Ok(t)
    }

    /// The endpoint, for placing calls.
    pub fn endpoint(&self) -> Arc<Endpoint> {
        self.endpoint.clone()
    }

    /// The key sealing trunk passwords.
    pub fn secrets(&self) -> &SecretBox {
        &self.secrets
    }

    /// An agent's softphone login and registration (`NotFound` for no such agent).
    pub async fn agent_sip(&self, tenant_id: &str, agent_id: &str) -> Result<AgentSip> {
        let username = self.store.agent_sip_username(tenant_id, agent_id).await?;
        let contact = username
            .as_deref()
            .and_then(|u| self.endpoint.lookup_binding(u));
        Ok(AgentSip {
            agent_id: agent_id.to_owned(),
            username,
            realm: self.options.realm.clone(),
            registrar: format!("sip:{}", self.advertised),
            registered: contact.is_some(),
            contact,
        })
    }

    /// Gives an agent a softphone login (replacing any): the phone may register at once.
    pub async fn set_agent_sip(
        &self,
        tenant_id: &str,
        agent_id: &str,
        input: &AgentSipInput,
    ) -> Result<AgentSip> {
        softphones::set(
            &self.store,
            &self.secrets,
            &self.softphones,
            tenant_id,
            agent_id,
            input,
        )
        .await?;
        self.agent_sip(tenant_id, agent_id).await
    }

    /// Removes an agent's softphone login.
    pub async fn clear_agent_sip(&self, tenant_id: &str, agent_id: &str) -> Result<AgentSip> {
        softphones::clear(&self.store, &self.softphones, tenant_id, agent_id).await?;
        self.agent_sip(tenant_id, agent_id).await
    }

    /// Where the endpoint listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.endpoint.local_addr()
    }

    /// The inbound INVITEs (once); until taken they are refused with 480.
    pub async fn take_incoming(&self) -> Option<IncomingCalls> {
        let handover = self
            .incoming
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        let (tx, rx) = oneshot::channel();
        handover.send(tx).ok()?;
        rx.await.ok()
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts registering `dt` (the caller has stopped any previous registration).
    async fn start_registration(&self, dt: DialTrunk) {
        let generation = self
            .next_generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let trunk = dt.trunk;
        let now = Utc::now();
        self.shared.lock().insert(
            trunk.id.clone(),
            Live {
                tenant_id: trunk.tenant_id.clone(),
                generation,
                state: RegState::Registering,
                status_code: None,
                last_error: None,
                since: now,
                expires: None,
                expires_at: None,
                next_retry_at: None,
            },
        );
        self.shared.version.send_modify(|v| *v += 1);
        let mut config = TrunkConfig::new(
            &trunk.server_addr(),
            &trunk.sip_domain(),
            trunk.username.as_deref().unwrap_or_default(),
            dt.password.as_deref(),
        );
        config.transport = trunk.sip_transport();
        config.expires = self.options.expires;
        config.retry_initial = self.options.retry_initial;
        config.retry_max = self.options.retry_max;
        let (stop, stop_rx) = oneshot::channel();
        self.slots()
            .insert(trunk.id.clone(), Slot { generation, stop });
        tokio::spawn(drive_registration(
            self.endpoint.clone(),
            self.shared.clone(),
            trunk,
            config,
            generation,
            self.options.retry_initial,
            self.options.retry_max,
            stop_rx,
        ));
    }

    /// Tells the registration of `trunk_id` (if any) to unregister; the receiver resolves
    /// when it has.
    fn begin_stop(&self, trunk_id: &str) -> Option<(u64, oneshot::Receiver<()>)> {
        let slot = self.slots().remove(trunk_id)?;
        let (done, wait) = oneshot::channel();
        let _ = slot.stop.send(done);
        Some((slot.generation, wait))
    }

    /// Forgets the live status of a stopped registration (unless a newer one replaced it).
    fn forget(&self, trunk_id: &str, generation: u64) {
        let mut live = self.shared.lock();
        if live
            .get(trunk_id)
            .is_some_and(|l| l.generation == generation)
        {
            live.remove(trunk_id);
        }
    }

    /// Stops the registration of `trunk_id` (if any) and waits (bounded) for the unregister.
    async fn stop_registration(&self, trunk_id: &str) {
        if let Some((generation, wait)) = self.begin_stop(trunk_id) {
            let _ = tokio::time::timeout(UNREGISTER_WAIT, wait).await;
            self.forget(trunk_id, generation);
        }
    }

    /// Re-reads a trunk after it was created, changed or deleted: its old registration is
    /// removed, and a new one started when it is enabled and registers.
    pub async fn apply(&self, tenant_id: &str, trunk_id: &str) -> Result<()> {
        let _op = self.ops.lock().await;
        self.apply_locked(tenant_id, trunk_id).await
    }

    async fn apply_locked(&self, tenant_id: &str, trunk_id: &str) -> Result<()> {
        let owned = self
            .shared
            .lock()
            .get(trunk_id)
            .is_none_or(|l| l.tenant_id == tenant_id);
        if !owned {
            return Err(Error::NotFound { entity: "trunk" });
        }
        self.stop_registration(trunk_id).await;
        let trunk = match self.store.trunk(tenant_id, trunk_id).await {
            Ok(t) => t,
            Err(Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        if trunk.enabled && trunk.register {
            let password = self
                .store
                .trunk_password(tenant_id, trunk_id, &self.secrets)
                .await?;
            self.start_registration(DialTrunk { trunk, password }).await;
        }
        Ok(())
    }

    /// Registers a trunk anew now (`POST /api/sip/register`) and waits (bounded) for the
    /// first outcome; its status then. A disabled or non-registering trunk is a conflict.
    pub async fn reregister(&self, tenant_id: &str, trunk_id: &str) -> Result<TrunkStatus> {
        let trunk = self.store.trunk(tenant_id, trunk_id).await?;
        if !trunk.enabled {
            return Err(Error::conflict("the trunk is disabled: enable it first"));
        }
        if !trunk.register {
            return Err(Error::conflict(
                "the trunk does not register (register is false: IP-authenticated)",
            ));
        }
        let mut statuses = self.reregister_trunks(tenant_id, vec![trunk]).await?;
        Ok(statuses.remove(0))
    }

    /// Registers every enabled, registering trunk of the tenant anew (all at once) and waits
    /// (bounded) for their first outcomes; their statuses then, in failover order.
    pub async fn reregister_all(&self, tenant_id: &str) -> Result<Vec<TrunkStatus>> {
        let trunks = self
            .store
            .trunks(tenant_id)
            .await?
            .into_iter()
            .filter(|t| t.enabled && t.register)
            .collect();
        self.reregister_trunks(tenant_id, trunks).await
    }

    async fn reregister_trunks(
        &self,
        tenant_id: &str,
        trunks: Vec<Trunk>,
    ) -> Result<Vec<TrunkStatus>> {
        let mut version = self.shared.version.subscribe();
        {
            let _op = self.ops.lock().await;
            for t in &trunks {
                self.apply_locked(tenant_id, &t.id).await?;
            }
        }
        let deadline = tokio::time::Instant::now() + self.options.register_wait;
        loop {
            let pending = {
                let live = self.shared.lock();
                trunks.iter().any(|t| {
                    live.get(&t.id)
                        .is_some_and(|l| l.state == RegState::Registering)
                })
            };
            if !pending {
                break;
            }
            match tokio::time::timeout_at(deadline, version.changed()).await {
                Ok(Ok(())) => {}
                _ => break,
            }
        }
        let live = self.shared.lock();
        Ok(trunks
            .iter()
            .map(|t| status_for(t, live.get(&t.id)))
            .collect())
    }

    /// The registration status of one of the tenant's trunks.
    pub async fn trunk_status(&self, tenant_id: &str, trunk_id: &str) -> Result<TrunkStatus> {
        let trunk = self.store.trunk(tenant_id, trunk_id).await?;
        self.status_of(&trunk)
    }

    fn status_of(&self, trunk: &Trunk) -> Result<TrunkStatus> {
        let live = self.shared.lock().get(&trunk.id).cloned();
        Ok(status_for(trunk, live.as_ref()))
    }

    /// The registration status of each of the tenant's trunks, in failover order.
    pub async fn status(&self, tenant_id: &str) -> Result<Vec<TrunkStatus>> {
        let trunks = self.store.trunks(tenant_id).await?;
        let live = self.shared.lock();
        Ok(trunks
            .iter()
            .map(|t| status_for(t, live.get(&t.id)))
            .collect())
    }

    /// Counts over every tenant.
    pub fn summary(&self) -> SipSummary {
        let live = self.shared.lock();
        let count = |s: RegState| live.values().filter(|l| l.state == s).count();
        let failed = count(RegState::Failed);
        let trunks = live.len();
        SipSummary {
            status: if failed == 0 {
                "ok"
            } else if failed == trunks {
                "down"
            } else {
                "degraded"
            },
            trunks,
            registered: count(RegState::Registered),
            registering: count(RegState::Registering),
            failed,
            unregistered: count(RegState::Unregistered),
        }
    }

    /// Pings a trunk with OPTIONS and, when asked, proves its credentials with a REGISTER.
    pub async fn test(&self, tenant_id: &str, input: TrunkTestInput) -> Result<TrunkTestReport> {
        let dt = match (&input.trunk, &input.id) {
            (Some(_), Some(_)) => {
                return Err(Error::field("trunk", "give either id or trunk, not both"))
            }
            (Some(settings), None) => preview_trunk(tenant_id, settings)?,
            (None, Some(id)) => {
                let trunk = self.store.trunk(tenant_id, id).await?;
                let password = self
                    .store
                    .trunk_password(tenant_id, id, &self.secrets)
                    .await?;
                DialTrunk { trunk, password }
            }
            (None, None) => self
                .store
                .dial_trunks(tenant_id, &[], &self.secrets)
                .await?
                .into_iter()
                .next()
                .ok_or(Error::NotFound { entity: "trunk" })?,
        };
        let saved = input.trunk.is_none();
        let trunk = &dt.trunk;
        let auth = match (&trunk.username, &dt.password) {
            (Some(u), Some(p)) => Some(AuthCredentials {
                username: u.clone(),
                password: p.clone(),
            }),
            _ => None,
        };
        let target = trunk.server_uri();
        let started = Instant::now();
        let ping = tokio::time::timeout(
            self.options.test_wait,
            self.endpoint.options(&target, None, auth),
        )
        .await;
        let options = match ping {
            Ok(Ok(r)) => OptionsOutcome {
                target,
                status: Some(r.status),
                reason: r.reason,
                latency_ms: Some(r.latency.as_secs_f64() * 1000.0),
            },
            Ok(Err(e)) => OptionsOutcome {
                target,
                status: None,
                reason: match e {
                    switchboard_sip::Error::Timeout(_) => {
                        "no response to OPTIONS (timeout)".to_owned()
                    }
                    other => format!("cannot reach the server: {other}"),
                },
                latency_ms: None,
            },
            Err(_) => OptionsOutcome {
                target,
                status: None,
                reason: format!(
                    "no response to OPTIONS within {} s",
                    started.elapsed().as_secs()
                ),
                latency_ms: None,
            },
        };
        let reachable = options.status.is_some();
        let registration = if input.register && trunk.register {
            let live = if saved {
                self.shared.lock().get(&trunk.id).cloned()
            } else {
                None
            };
            Some(match live {
                Some(l) if l.state == RegState::Registered => RegisterOutcome {
                    source: "live",
                    registered: true,
                    status_code: None,
                    reason: "registered by the service".to_owned(),
                    expires: l.expires,
                    latency_ms: None,
                },
                _ => self.probe_register(&dt).await,
            })
        } else {
            None
        };
        let ok = reachable && registration.as_ref().is_none_or(|r| r.registered);
        Ok(TrunkTestReport {
            trunk_id: saved.then(|| trunk.id.clone()),
            name: trunk.name.clone(),
            reachable,
            options,
            registration,
            ok,
        })
    }

    /// A REGISTER with the trunk's credentials, removed again at once.
    async fn probe_register(&self, dt: &DialTrunk) -> RegisterOutcome {
        let trunk = &dt.trunk;
        let mut config = TrunkConfig::new(
            &trunk.server_addr(),
            &trunk.sip_domain(),
            trunk.username.as_deref().unwrap_or_default(),
            dt.password.as_deref(),
        );
        config.transport = trunk.sip_transport();
        config.expires = self.options.expires;
        let started = Instant::now();
        let mut handle = match self.endpoint.register(config).await {
            Ok(h) => h,
            Err(e) => {
                return RegisterOutcome {
                    source: "probe",
                    registered: false,
                    status_code: None,
                    reason: format!("cannot reach the server: {e}"),
                    expires: None,
                    latency_ms: None,
                }
            }
        };
        let settled = tokio::time::timeout(self.options.test_wait, handle.settled()).await;
        let latency_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        let outcome = match settled {
            Ok(RegistrationStatus::Registered { expires }) => RegisterOutcome {
                source: "probe",
                registered: true,
                status_code: Some(200),
                reason: "registered".to_owned(),
                expires: Some(expires),
                latency_ms,
            },
            Ok(RegistrationStatus::Failed(f)) => RegisterOutcome {
                source: "probe",
                registered: false,
                status_code: f.status,
                reason: f.to_string(),
                expires: None,
                latency_ms,
            },
            Ok(other) => RegisterOutcome {
                source: "probe",
                registered: false,
                status_code: None,
                reason: format!("registration ended: {other:?}"),
                expires: None,
                latency_ms,
            },
            Err(_) => RegisterOutcome {
                source: "probe",
                registered: false,
                status_code: None,
                reason: format!(
                    "no answer to REGISTER within {} s",
                    self.options.test_wait.as_secs()
                ),
                expires: None,
                latency_ms: None,
            },
        };
        let _ = tokio::time::timeout(UNREGISTER_WAIT, handle.unregister()).await;
        outcome
    }

    /// Unregisters every trunk (all at once, bounded wait) and closes the endpoint.
    pub async fn shutdown(&self) {
        let _op = self.ops.lock().await;
        let ids: Vec<String> = self.slots().keys().cloned().collect();
        let waits: Vec<_> = ids
            .iter()
            .filter_map(|id| self.begin_stop(id).map(|w| (id, w)))
            .collect();
        let deadline = tokio::time::Instant::now() + UNREGISTER_WAIT;
        for (id, (generation, wait)) in waits {
            let _ = tokio::time::timeout_at(deadline, wait).await;
            self.forget(id, generation);
        }
        self.endpoint.close().await;
    }
}

/// Longest wait for one unregistration.
const UNREGISTER_WAIT: Duration = Duration::from_secs(5);

fn status_for(t: &Trunk, live: Option<&Live>) -> TrunkStatus {
    let (state, l) = if !t.enabled {
        (RegState::Disabled, None)
    } else if !t.register {
        (RegState::NotRequired, None)
    } else {
        match live {
            Some(l) => (l.state, Some(l)),
            None => (RegState::Unregistered, None),
        }
    };
    TrunkStatus {
        trunk_id: t.id.clone(),
        name: t.name.clone(),
        provider: t.provider.clone(),
        server: t.server_addr(),
        transport: t.transport.clone(),
        priority: t.priority,
        state,
        registered: state == RegState::Registered,
        status_code: l.and_then(|l| l.status_code),
        last_error: l.and_then(|l| l.last_error.clone()),
        since: l.map_or(t.updated_at, |l| l.since),
        expires: l.and_then(|l| l.expires),
        expires_at: l.and_then(|l| l.expires_at),
        next_retry_at: l.and_then(|l| l.next_retry_at),
    }
}

/// Drives one trunk's registration until stopped: starts it (retrying with backoff while the
/// server does not resolve), forwards its events, and unregisters when told (or when the
/// service drops the stop sender).
#[allow(clippy::too_many_arguments)] // the parts of one registration
async fn drive_registration(
    endpoint: Arc<Endpoint>,
    shared: Arc<Shared>,
    trunk: Trunk,
    config: TrunkConfig,
    generation: u64,
    retry_initial: Duration,
    retry_max: Duration,
    mut stop: oneshot::Receiver<oneshot::Sender<()>>,
) {
    let mut backoff = retry_initial;
    let mut handle: RegistrationHandle = loop {
        match endpoint.register(config.clone()).await {
            Ok(h) => break h,
            Err(e) => {
                shared.on_setup_failure(
                    &trunk,
                    generation,
                    format!("cannot reach {}: {e}", config.server),
                    backoff,
                );
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    done = &mut stop => {
                        shared.on_event(&trunk, generation, RegistrationEvent::Unregistered { last_error: None });
                        if let Ok(done) = done {
                            let _ = done.send(());
                        }
                        return;
                    }
                }
                backoff = (backoff * 2).min(retry_max);
            }
        }
    };
    loop {
        tokio::select! {
            ev = handle.next_event() => match ev {
                Some(ev) => shared.on_event(&trunk, generation, ev),
                None => return,
            },
            done = &mut stop => {
                let _ = tokio::time::timeout(UNREGISTER_WAIT, handle.unregister()).await;
                let mut unregistered = false;
                while let Some(ev) = handle.try_next_event() {
                    unregistered |= matches!(ev, RegistrationEvent::Unregistered { .. });
                    shared.on_event(&trunk, generation, ev);
                }
                if !unregistered {
                    // No answer in time (or the endpoint is gone): the binding lapses on its own.
                    shared.on_event(&trunk, generation, RegistrationEvent::Unregistered { last_error: None });
                }
                if let Ok(done) = done {
                    let _ = done.send(());
                }
                return;
            }
        }
    }
}

/// Refuses inbound INVITEs with 480 until the stream is handed over.
async fn refuse_inbound(
    mut calls: IncomingCalls,
    mut handover: oneshot::Receiver<oneshot::Sender<IncomingCalls>>,
) {
    loop {
        tokio::select! {
            call = calls.next() => match call {
                Some(call) => {
                    let _ = call.reject(480, "No Inbound Route");
                }
                None => return,
            },
            to = &mut handover => {
                if let Ok(to) = to {
                    let _ = to.send(calls);
                }
                return;
            }
        }
    }
}
