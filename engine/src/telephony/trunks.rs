//! SIP trunks in the store: several per tenant, tried in failover order (`priority`
//! ascending — lower is preferred — then oldest first), with the password sealed at rest by a
//! [`SecretBox`] and never returned by anything that serializes a [`Trunk`].
//!
//! `configure_trunk` creates or updates (the cold-caller spec's `POST /api/sip/configure`):
//! with an `id` it updates that trunk; without one it updates the tenant's trunk of the same
//! `name` (the name defaults to `"<Provider> <server>"`, so configuring the same provider and
//! server twice updates instead of duplicating), else creates. Absent fields keep their value
//! on update; `null` clears the optional ones (`username`, `password`, `domain`,
//! `recordingPath`).

use std::net::{IpAddr, Ipv6Addr};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::secrets::SecretBox;
use crate::patch::Patch;
use crate::store::{impl_from_row, new_id, now, on_pool, Store};
use crate::tenancy::is_unique_violation;
use crate::validate::Issues;
use crate::{Error, Result};

/// A provider a trunk may name, with the hints `GET /api/sip/providers` serves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    /// The stored value (`twilio`, `telnyx`, ...).
    pub id: &'static str,
    /// For people (`Twilio`, ...).
    pub name: &'static str,
    /// The usual server, or an empty string when it is your own.
    pub server: &'static str,
    pub port: u16,
    /// `udp`, `tcp` or `tls` (TLS is not spoken yet: such a provider needs an UDP/TCP entry point).
    pub transport: &'static str,
    /// Whether such trunks usually REGISTER (false: authenticated by source IP or per call).
    pub register: bool,
    pub notes: &'static str,
}

/// Every provider, in the order the API lists them.
pub const PROVIDERS: [Provider; 6] = [
    Provider {
        id: "twilio",
        name: "Twilio",
        server: "your-account.pstn.twilio.com",
        port: 5060,
        transport: "udp",
        register: false,
        notes: "Elastic SIP Trunking: the termination URI as server; calls are authenticated by IP access list or by credential list (digest on INVITE), without REGISTER.",
    },
    Provider {
        id: "telnyx",
        name: "Telnyx",
        server: "sip.telnyx.com",
        port: 5060,
        transport: "udp",
        register: true,
        notes: "A credential connection registers with its SIP username and password; an IP connection needs no registration.",
    },
    Provider {
        id: "ringcentral",
        name: "RingCentral",
        server: "sip.ringcentral.com",
        port: 5061,
        transport: "tls",
        register: true,
        notes: "The cold-caller spec lists TLS on 5061; Switchboard speaks UDP and TCP only so far, so use the UDP/TCP entry point your account provides.",
    },
    Provider {
        id: "asterisk",
        name: "Asterisk",
        server: "",
        port: 5060,
        transport: "udp",
        register: true,
        notes: "Your Asterisk server: a PJSIP endpoint with auth and aor (or an IP-matched endpoint, without registration).",
    },
    Provider {
        id: "freeswitch",
        name: "FreeSWITCH",
        server: "",
        port: 5060,
        transport: "udp",
        register: true,
        notes: "Your FreeSWITCH server: a directory user on the internal profile (5060), or a gateway on the external profile (5080).",
    },
    Provider {
        id: "generic",
        name: "Generic SIP",
        server: "",
        port: 5060,
        transport: "udp",
        register: true,
        notes: "Any RFC 3261 registrar or proxy with digest authentication.",
    },
];

/// The provider of a stored value or of a client's spelling (`Twilio`, `twilio`).
pub fn provider(name: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| {
        p.id.eq_ignore_ascii_case(name.trim()) || p.name.eq_ignore_ascii_case(name.trim())
    })
}

/// A trunk as stored and served (the password is never part of it; see `has_password`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Trunk {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    /// twilio | telnyx | ringcentral | asterisk | freeswitch | generic
    pub provider: String,
    /// Host name or IP address of the registrar / proxy.
    pub server: String,
    pub port: i64,
    /// udp | tcp
    pub transport: String,
    pub username: Option<String>,
    /// The SIP domain (Request-URI of REGISTER, AOR host); `None` means the server.
    pub domain: Option<String>,
    /// Failover order: lower is tried first.
    pub priority: i64,
    pub max_concurrent_calls: i64,
    pub max_calls_per_second: f64,
    /// False for IP-authenticated trunks (no REGISTER).
    pub register: bool,
    pub enabled: bool,
    pub enable_recording: bool,
    /// A folder inside the recording storage for this trunk's recordings.
    pub recording_path: Option<String>,
    /// Whether a password is stored.
    pub has_password: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
impl_from_row!(Trunk {
    id,
    tenant_id,
    name,
    provider,
    server,
    port,
    transport,
    username,
    domain,
    priority,
    max_concurrent_calls,
    max_calls_per_second,
    register,
    enabled,
    enable_recording,
    recording_path,
    has_password,
    created_at,
    updated_at
});

impl Trunk {
    /// `server:port`, the IPv6 literal in brackets.
    pub fn server_addr(&self) -> String {
        host_port(&self.server, self.port)
    }

    /// The SIP domain (REGISTER Request-URI, AOR host): `domain`, else the server (with its
    /// port when not 5060).
    pub fn sip_domain(&self) -> String {
        match &self.domain {
            Some(d) => d.clone(),
            None if self.port == 5060 => host_port(&self.server, self.port)
                .rsplit_once(':')
                .map_or_else(|| self.server.clone(), |(h, _)| h.to_owned()),
            None => self.server_addr(),
        }
    }

    pub fn sip_transport(&self) -> switchboard_sip::endpoint::Transport {
        if self.transport == "tcp" {
            switchboard_sip::endpoint::Transport::Tcp
        } else {
            switchboard_sip::endpoint::Transport::Udp
        }
    }

    /// The URI of the server itself (`sip:host:port`, `;transport=tcp` on TCP): where an
    /// OPTIONS ping goes.
    pub fn server_uri(&self) -> String {
        format!(
            "sip:{}{}",
            self.server_addr(),
            self.sip_transport().uri_param()
        )
    }
}

/// `host:port` with an IPv6 literal bracketed.
fn host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// What the dialer needs of a trunk: the row and its opened password.
#[derive(Debug, Clone, PartialEq)]
pub struct DialTrunk {
    pub trunk: Trunk,
    pub password: Option<String>,
}

/// Body of `POST /api/sip/configure`. Field names are the cold-caller spec's (camelCase);
/// `provider` and `transport` are case-insensitive (`Twilio`, `UDP`).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrunkInput {
    /// Update this trunk (else the tenant's trunk of the same name, else create).
    pub id: Option<String>,
    /// Default: `"<Provider> <server>"`.
    pub name: Option<String>,
    /// Default on create: generic.
    pub provider: Option<String>,
    /// Required on create.
    pub server: Option<String>,
    /// Default on create: the provider's (5060).
    pub port: Option<i64>,
    /// udp | tcp; default on create: the provider's.
    pub transport: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub username: Patch<String>,
    /// Write-only: stored sealed, never returned.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub password: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub domain: Patch<String>,
    /// 0..=1000, lower is tried first; default 100.
    pub priority: Option<i64>,
    /// 1..=100000; default 100.
    pub max_concurrent_calls: Option<i64>,
    /// Above 0, at most 10000; default 10.
    pub max_calls_per_second: Option<f64>,
    /// Default on create: the provider's (false for Twilio, true otherwise).
    pub register: Option<bool>,
    /// Default true.
    pub enabled: Option<bool>,
    /// Default false.
    pub enable_recording: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub recording_path: Patch<String>,
}

const COLS: &str = "id, tenant_id, name, provider, server, port, transport, username, domain, priority, \
    max_concurrent_calls, max_calls_per_second, register, enabled, enable_recording, recording_path, \
    (password_enc IS NOT NULL) AS has_password, created_at, updated_at";

/// Failover order.
const ORDER: &str = "ORDER BY priority, created_at, id";

/// The associated data a trunk's password is sealed for.
fn secret_context(tenant_id: &str, trunk_id: &str) -> String {
    format!("sip_trunk:{tenant_id}:{trunk_id}")
}

/// A plausible DNS name or IP address (an IPv6 literal with or without brackets).
fn is_host(s: &str) -> bool {
    let bare = s
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(s);
    if bare.parse::<IpAddr>().is_ok() {
        return true;
    }
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Stores IPv6 literals without brackets, everything else as given (lower-cased).
fn normalize_host(s: &str) -> String {
    let t = s.trim();
    let bare = t
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(t);
    match bare.parse::<Ipv6Addr>() {
        Ok(v6) => v6.to_string(),
        Err(_) => t.to_ascii_lowercase(),
    }
}

fn check_host(field: &str, value: &str, issues: &mut Issues) {
    if value.is_empty() {
        issues.add(field, "is required");
    } else if value.contains(':') && value.parse::<Ipv6Addr>().is_err() {
        issues.add(
            field,
            "must be a host name or IP address without a port (put the port in port)",
        );
    } else if !is_host(value) {
        issues.add(field, "must be a host name or IP address");
    }
}

/// A SIP user part we can put in a URI unescaped.
fn is_sip_user(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/%".contains(c))
}

/// A relative folder without `..`, backslashes or control characters.
fn is_relative_folder(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && !s.starts_with('/')
        && !s.contains('\\')
        && !s.chars().any(char::is_control)
        && s.split('/').all(|seg| seg != "..")
}

/// `"<Provider> <server>"`.
fn default_name(p: &Provider, server: &str) -> String {
    format!("{} {server}", p.name)
}

/// Validates `input` as a new trunk without storing it (for testing settings before saving):
/// the trunk as it would be created (id `unsaved`) and the password given.
pub fn preview_trunk(tenant_id: &str, input: &TrunkInput) -> Result<DialTrunk> {
    let d = Draft::build(input, None)?;
    let ts = now();
    Ok(DialTrunk {
        password: input.password.value().cloned(),
        trunk: Trunk {
            id: "unsaved".to_owned(),
            tenant_id: tenant_id.to_owned(),
            name: d.name,
            provider: d.provider,
            server: d.server,
            port: d.port,
            transport: d.transport,
            username: d.username,
            domain: d.domain,
            priority: d.priority,
            max_concurrent_calls: d.max_concurrent_calls,
            max_calls_per_second: d.max_calls_per_second,
            register: d.register,
            enabled: d.enabled,
            enable_recording: d.enable_recording,
            recording_path: d.recording_path,
            has_password: input.password.value().is_some(),
            created_at: ts,
            updated_at: ts,
        },
    })
}

/// The state a configure request leads to, checked as a whole.
struct Draft {
    name: String,
    provider: String,
    server: String,
    port: i64,
    transport: String,
    username: Option<String>,
    domain: Option<String>,
    priority: i64,
    max_concurrent_calls: i64,
    max_calls_per_second: f64,
    register: bool,
    enabled: bool,
    enable_recording: bool,
    recording_path: Option<String>,
}

impl Draft {
    /// Merges `input` over `current` (or the defaults), validating every field.
    fn build(input: &TrunkInput, current: Option<&Trunk>) -> Result<Draft> {
        let mut issues = Issues::new();
        let provider_in = input
            .provider
            .as_deref()
            .or(current.map(|t| t.provider.as_str()))
            .unwrap_or("generic");
        let prov = provider(provider_in);
        if prov.is_none() {
            issues.add(
                "provider",
                "must be one of Twilio, Telnyx, RingCentral, Asterisk, FreeSWITCH, generic",
            );
        }
        let hint = prov.unwrap_or(&PROVIDERS[5]);
        let server = input
            .server
            .as_deref()
            .map(normalize_host)
            .or(current.map(|t| t.server.clone()))
            .unwrap_or_default();
        if current.is_none() && input.server.is_none() {
            issues.add("server", "is required");
        } else {
            check_host("server", &server, &mut issues);
        }
        let port = input
            .port
            .or(current.map(|t| t.port))
            .unwrap_or(i64::from(hint.port));
        if !(1..=65535).contains(&port) {
            issues.add("port", "must be between 1 and 65535");
        }
        let transport = input
            .transport
            .as_deref()
            .map(|t| t.trim().to_ascii_lowercase())
            .or(current.map(|t| t.transport.clone()))
            .unwrap_or_else(|| hint.transport.to_owned());
        match transport.as_str() {
            "udp" | "tcp" => {}
            "tls" => issues.add("transport", "TLS is not supported yet: use udp or tcp"),
            _ => issues.add("transport", "must be udp or tcp"),
        }
        let username = input
            .username
            .clone()
            .apply_to(current.and_then(|t| t.username.clone()))
            .map(|u| u.trim().to_owned());
        if let Some(u) = &username {
            if !is_sip_user(u) {
                issues.add(
                    "username",
                    "must be 1 to 128 characters without spaces, '@', ':', '<', '>' or quotes",
                );
            }
        }
        if let Patch::Value(p) = &input.password {
            if p.is_empty() || p.chars().count() > 256 {
                issues.add(
                    "password",
                    "must be 1 to 256 characters (send null to remove the password)",
                );
            }
        }
        let domain = input
            .domain
            .clone()
            .apply_to(current.and_then(|t| t.domain.clone()))
            .map(|d| normalize_host(&d));
        if let Some(d) = &domain {
            check_host("domain", d, &mut issues);
        }
        let priority = input
            .priority
            .or(current.map(|t| t.priority))
            .unwrap_or(100);
        if !(0..=1000).contains(&priority) {
            issues.add(
                "priority",
                "must be between 0 and 1000 (lower is tried first)",
            );
        }
        let max_concurrent_calls = input
            .max_concurrent_calls
            .or(current.map(|t| t.max_concurrent_calls))
            .unwrap_or(100);
        if !(1..=100_000).contains(&max_concurrent_calls) {
            issues.add("maxConcurrentCalls", "must be between 1 and 100000");
        }
        let max_calls_per_second = input
            .max_calls_per_second
            .or(current.map(|t| t.max_calls_per_second))
            .unwrap_or(10.0);
        if !(max_calls_per_second.is_finite()
            && max_calls_per_second > 0.0
            && max_calls_per_second <= 10_000.0)
        {
            issues.add("maxCallsPerSecond", "must be above 0 and at most 10000");
        }
        let register = input
            .register
            .or(current.map(|t| t.register))
            .unwrap_or(hint.register);
        if register && username.is_none() {
            issues.add(
                "username",
                "is required when register is true (set register to false for an IP-authenticated trunk)",
            );
        }
        let recording_path = input
            .recording_path
            .clone()
            .apply_to(current.and_then(|t| t.recording_path.clone()))
            .map(|p| p.trim().to_owned());
        if let Some(p) = &recording_path {
            if !is_relative_folder(p) {
                issues.add(
                    "recordingPath",
                    "must be a relative folder inside the recording storage (no leading '/', no '..')",
                );
            }
        }
        let name = input
            .name
            .as_deref()
            .map(|n| n.trim().to_owned())
            .or(current.map(|t| t.name.clone()))
            .unwrap_or_else(|| default_name(hint, &server));
        if name.is_empty() || name.chars().count() > 100 {
            issues.add("name", "must be 1 to 100 characters");
        }
        issues.finish()?;
        Ok(Draft {
            name,
            provider: hint.id.to_owned(),
            server,
            port,
            transport,
            username,
            domain,
            priority,
            max_concurrent_calls,
            max_calls_per_second,
            register,
            enabled: input.enabled.or(current.map(|t| t.enabled)).unwrap_or(true),
            enable_recording: input
                .enable_recording
                .or(current.map(|t| t.enable_recording))
                .unwrap_or(false),
            recording_path,
        })
    }
}

fn name_conflict(e: sqlx::Error) -> Error {
    if is_unique_violation(&e) {
        Error::conflict("a trunk with this name exists in this tenant")
    } else {
        e.into()
    }
}

impl Store {
    /// Creates or updates a trunk (see the module documentation); returns it and whether it
    /// was created.
    pub async fn configure_trunk(
        &self,
        tenant_id: &str,
        input: TrunkInput,
        secrets: &SecretBox,
    ) -> Result<(Trunk, bool)> {
        if let Some(id) = &input.id {
            let current = self.trunk(tenant_id, id).await?;
            return Ok((
                self.write_trunk(tenant_id, Some(current), input, secrets)
                    .await?,
                false,
            ));
        }
        // The name it will have decides whether it exists.
        let name = match (&input.name, &input.server) {
            (Some(n), _) => Some(n.trim().to_owned()),
            (None, Some(server)) => {
                let hint = provider(input.provider.as_deref().unwrap_or("generic"))
                    .unwrap_or(&PROVIDERS[5]);
                Some(default_name(hint, &normalize_host(server)))
            }
            (None, None) => None,
        };
        let existing = match name {
            Some(n) => self.trunk_by_name(tenant_id, &n).await?,
            None => None,
        };
        let created = existing.is_none();
        let trunk = self
            .write_trunk(tenant_id, existing, input, secrets)
            .await?;
        Ok((trunk, created))
    }

    /// Creates a trunk.
    pub async fn create_trunk(
        &self,
        tenant_id: &str,
        input: TrunkInput,
        secrets: &SecretBox,
    ) -> Result<Trunk> {
        self.write_trunk(tenant_id, None, input, secrets).await
    }

    /// Updates a trunk: absent fields keep their value.
    pub async fn update_trunk(
        &self,
        tenant_id: &str,
        id: &str,
        input: TrunkInput,
        secrets: &SecretBox,
    ) -> Result<Trunk> {
        let current = self.trunk(tenant_id, id).await?;
        self.write_trunk(tenant_id, Some(current), input, secrets)
            .await
    }

    async fn write_trunk(
        &self,
        tenant_id: &str,
        current: Option<Trunk>,
        input: TrunkInput,
        secrets: &SecretBox,
    ) -> Result<Trunk> {
        let d = Draft::build(&input, current.as_ref())?;
        let ts = now();
        let id = current.as_ref().map_or_else(new_id, |t| t.id.clone());
        let sealed = match &input.password {
            Patch::Value(p) => Some(Some(secrets.seal(&secret_context(tenant_id, &id), p))),
            Patch::Null => Some(None),
            Patch::Absent => None,
        };
        match current {
            None => {
                let sealed: Option<String> = sealed.flatten();
                on_pool!(self, p => sqlx::query(
                    "INSERT INTO sip_trunks (id, tenant_id, name, provider, server, port, transport, username, password_enc, domain, priority, \
                     max_concurrent_calls, max_calls_per_second, register, enabled, enable_recording, recording_path, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18)")
                    .bind(&id)
                    .bind(tenant_id)
                    .bind(&d.name)
                    .bind(&d.provider)
                    .bind(&d.server)
                    .bind(d.port)
                    .bind(&d.transport)
                    .bind(&d.username)
                    .bind(&sealed)
                    .bind(&d.domain)
                    .bind(d.priority)
                    .bind(d.max_concurrent_calls)
                    .bind(d.max_calls_per_second)
                    .bind(d.register)
                    .bind(d.enabled)
                    .bind(d.enable_recording)
                    .bind(&d.recording_path)
                    .bind(ts)
                    .execute(p)
                    .await
                    .map(|r| r.rows_affected()))
                .map_err(name_conflict)?;
            }
            Some(_) => {
                let (set_password, sealed) = match sealed {
                    Some(v) => (true, v),
                    None => (false, None),
                };
                let n = on_pool!(self, p => sqlx::query(
                    "UPDATE sip_trunks SET name = $1, provider = $2, server = $3, port = $4, transport = $5, username = $6, \
                     password_enc = CASE WHEN $7 THEN $8 ELSE password_enc END, domain = $9, priority = $10, max_concurrent_calls = $11, \
                     max_calls_per_second = $12, register = $13, enabled = $14, enable_recording = $15, recording_path = $16, updated_at = $17 \
                     WHERE tenant_id = $18 AND id = $19")
                    .bind(&d.name)
                    .bind(&d.provider)
                    .bind(&d.server)
                    .bind(d.port)
                    .bind(&d.transport)
                    .bind(&d.username)
                    .bind(set_password)
                    .bind(&sealed)
                    .bind(&d.domain)
                    .bind(d.priority)
                    .bind(d.max_concurrent_calls)
                    .bind(d.max_calls_per_second)
                    .bind(d.register)
                    .bind(d.enabled)
                    .bind(d.enable_recording)
                    .bind(&d.recording_path)
                    .bind(ts)
                    .bind(tenant_id)
                    .bind(&id)
                    .execute(p)
                    .await
                    .map(|r| r.rows_affected()))
                .map_err(name_conflict)?;
                if n == 0 {
                    return Err(Error::NotFound { entity: "trunk" });
                }
            }
        }
        self.trunk(tenant_id, &id).await
    }

    pub async fn trunk(&self, tenant_id: &str, id: &str) -> Result<Trunk> {
        let sql = format!("SELECT {COLS} FROM sip_trunks WHERE tenant_id = $1 AND id = $2");
        on_pool!(self, p => sqlx::query_as(&sql).bind(tenant_id).bind(id).fetch_optional(p).await)?
            .ok_or(Error::NotFound { entity: "trunk" })
    }

    pub async fn trunk_by_name(&self, tenant_id: &str, name: &str) -> Result<Option<Trunk>> {
        let sql = format!("SELECT {COLS} FROM sip_trunks WHERE tenant_id = $1 AND name = $2");
        Ok(
            on_pool!(self, p => sqlx::query_as(&sql).bind(tenant_id).bind(name).fetch_optional(p).await)?,
        )
    }

    /// The tenant's trunks in failover order (disabled ones included).
    pub async fn trunks(&self, tenant_id: &str) -> Result<Vec<Trunk>> {
        let sql = format!("SELECT {COLS} FROM sip_trunks WHERE tenant_id = $1 {ORDER} LIMIT 1000");
        Ok(on_pool!(self, p => sqlx::query_as(&sql).bind(tenant_id).fetch_all(p).await)?)
    }

    /// Deletes a trunk (the telephony service must be told to drop its registration).
    pub async fn delete_trunk(&self, tenant_id: &str, id: &str) -> Result<()> {
        let n = on_pool!(self, p => sqlx::query("DELETE FROM sip_trunks WHERE tenant_id = $1 AND id = $2").bind(tenant_id).bind(id).execute(p).await.map(|r| r.rows_affected()))?;
        if n == 0 {
            return Err(Error::NotFound { entity: "trunk" });
        }
        Ok(())
    }

    /// The opened password of a trunk, if one is stored.
    pub async fn trunk_password(
        &self,
        tenant_id: &str,
        id: &str,
        secrets: &SecretBox,
    ) -> Result<Option<String>> {
        let sealed: Option<Option<String>> = on_pool!(self, p => sqlx::query_scalar("SELECT password_enc FROM sip_trunks WHERE tenant_id = $1 AND id = $2").bind(tenant_id).bind(id).fetch_optional(p).await)?;
        match sealed {
            None => Err(Error::NotFound { entity: "trunk" }),
            Some(None) => Ok(None),
            Some(Some(s)) => secrets.open(&secret_context(tenant_id, id), &s).map(Some),
        }
    }

    /// The tenant's enabled trunks in failover order with their passwords: those of `ids`
    /// (in failover order, unknown or disabled ones left out), or all when `ids` is empty.
    pub async fn dial_trunks(
        &self,
        tenant_id: &str,
        ids: &[String],
        secrets: &SecretBox,
    ) -> Result<Vec<DialTrunk>> {
        let sql = format!(
            "SELECT {COLS}, password_enc FROM sip_trunks WHERE tenant_id = $1 AND enabled = $2 {ORDER} LIMIT 1000"
        );
        let rows: Vec<(Trunk, Option<String>)> = on_pool!(self, p => {
            let rows = sqlx::query(&sql).bind(tenant_id).bind(true).fetch_all(p).await?;
            rows.iter()
                .map(|r| {
                    use sqlx::{FromRow, Row};
                    Ok::<_, sqlx::Error>((Trunk::from_row(r)?, r.try_get("password_enc")?))
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        rows.into_iter()
            .filter(|(t, _)| ids.is_empty() || ids.contains(&t.id))
            .map(|(trunk, sealed)| {
                let password = sealed
                    .map(|s| secrets.open(&secret_context(tenant_id, &trunk.id), &s))
                    .transpose()?;
                Ok(DialTrunk { trunk, password })
            })
            .collect()
    }

    /// Every tenant's enabled trunks that register, with passwords: the telephony service's
    /// start-up scan, the one query here without a tenant filter (its rows go to the
    /// service, never to a client).
    pub async fn registering_trunks(&self, secrets: &SecretBox) -> Result<Vec<DialTrunk>> {
        let sql = format!(
            "SELECT {COLS}, password_enc FROM sip_trunks WHERE enabled = $1 AND register = $1 ORDER BY tenant_id, priority, created_at, id"
        );
        let rows: Vec<(Trunk, Option<String>)> = on_pool!(self, p => {
            let rows = sqlx::query(&sql).bind(true).fetch_all(p).await?;
            rows.iter()
                .map(|r| {
                    use sqlx::{FromRow, Row};
                    Ok::<_, sqlx::Error>((Trunk::from_row(r)?, r.try_get("password_enc")?))
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for (trunk, sealed) in rows {
            let password = match sealed {
                None => None,
                Some(s) => match secrets.open(&secret_context(&trunk.tenant_id, &trunk.id), &s) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        tracing::error!(trunk = %trunk.id, error = %e, "trunk password does not open: registering without it");
                        None
                    }
                },
            };
            out.push(DialTrunk { trunk, password });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_users_and_folders() {
        for ok in [
            "sip.telnyx.com",
            "10.0.0.1",
            "::1",
            "[2001:db8::1]",
            "localhost",
        ] {
            assert!(is_host(ok), "{ok}");
        }
        for bad in ["", "a..b", "-a.com", "a b", "host:5060", "a_b.com"] {
            assert!(!is_host(bad), "{bad}");
        }
        assert_eq!(normalize_host("[2001:DB8::1]"), "2001:db8::1");
        assert_eq!(normalize_host(" Sip.Example.COM "), "sip.example.com");
        assert_eq!(host_port("2001:db8::1", 5060), "[2001:db8::1]:5060");
        assert!(is_sip_user("alice+1.x"));
        for bad in ["", "a b", "a@b", "a:b", "<a>", "\"a\""] {
            assert!(!is_sip_user(bad), "{bad}");
        }
        assert!(is_relative_folder("./recordings"));
        assert!(is_relative_folder("sales/east"));
        for bad in ["", "/var/recordings", "../x", "a/../../b", "a\\b", "a\0b"] {
            assert!(!is_relative_folder(bad), "{bad}");
        }
    }

    #[test]
    fn providers_parse_in_any_case() {
        assert_eq!(provider("Twilio").map(|p| p.id), Some("twilio"));
        assert_eq!(provider("FREESWITCH").map(|p| p.id), Some("freeswitch"));
        assert_eq!(provider("Generic SIP").map(|p| p.id), Some("generic"));
        assert!(provider("skype").is_none());
    }

    #[test]
    fn drafts_default_validate_and_name_fields() {
        let input: TrunkInput = serde_json::from_value(serde_json::json!({
            "provider": "Twilio", "server": "Acme.PSTN.twilio.com", "transport": "UDP"
        }))
        .unwrap();
        let d = Draft::build(&input, None).unwrap();
        assert_eq!(d.provider, "twilio");
        assert_eq!(d.server, "acme.pstn.twilio.com");
        assert_eq!(d.name, "Twilio acme.pstn.twilio.com");
        assert_eq!((d.port, d.transport.as_str()), (5060, "udp"));
        assert!(!d.register, "Twilio trunks do not register by default");

        let bad: TrunkInput = serde_json::from_value(serde_json::json!({
            "provider": "Skype", "server": "x.com:5060", "port": 70000, "transport": "TLS",
            "priority": -1, "maxConcurrentCalls": 0, "maxCallsPerSecond": 0.0,
            "recordingPath": "/etc", "register": true, "password": ""
        }))
        .unwrap();
        let Err(Error::Validation { issues }) = Draft::build(&bad, None) else {
            panic!("invalid")
        };
        let fields: Vec<&str> = issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "provider",
                "server",
                "port",
                "transport",
                "password",
                "priority",
                "maxConcurrentCalls",
                "maxCallsPerSecond",
                "username",
                "recordingPath"
            ]
        );
        let tls = issues.iter().find(|i| i.field == "transport").unwrap();
        assert!(tls.message.contains("TLS is not supported"), "{tls:?}");

        let missing: TrunkInput = serde_json::from_value(serde_json::json!({})).unwrap();
        let Err(Error::Validation { issues }) = Draft::build(&missing, None) else {
            panic!("server required")
        };
        assert!(issues.iter().any(|i| i.field == "server"));
    }
}
