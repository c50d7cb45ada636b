//! Agent softphones: agents who log in with a SIP phone register it with the engine's
//! registrar (digest, realm [`super::TelephonyOptions::realm`]), and the dialer calls the
//! contact the phone registered when the agent becomes available.
//!
//! Credentials are stored on the agent row (`sip_username`, `sip_password_enc` sealed with the
//! process's [`SecretBox`]); the registrar answers from an in-memory copy (its password lookup
//! runs on the SIP task and must not touch the database), loaded at start and kept in step by
//! [`super::Telephony::set_agent_sip`] / [`super::Telephony::clear_agent_sip`]. User names are
//! unique across tenants: one registrar serves the whole engine.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use super::SecretBox;
use crate::store::{on_pool, Store};
use crate::tenancy::is_unique_violation;
use crate::validate::Issues;
use crate::{Error, Result};

/// Body of `PUT /api/agents/{id}/sip`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSipInput {
    /// The digest user name the phone registers as: 1–64 of `A-Z a-z 0-9 . _ -`, unique
    /// across the engine.
    pub username: String,
    /// 8–128 characters; stored sealed, never returned.
    pub password: String,
}

/// An agent's softphone login and whether the phone is registered now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AgentSip {
    pub agent_id: String,
    /// `None`: the agent has no softphone login.
    pub username: Option<String>,
    /// The digest realm (and domain) to configure in the phone.
    pub realm: String,
    /// Where the phone registers: the engine's SIP address.
    pub registrar: String,
    pub registered: bool,
    /// The contact the phone registered (where the engine calls it).
    pub contact: Option<String>,
}

/// The registrar's view of the passwords: user name → password.
pub(crate) type Passwords = Arc<RwLock<HashMap<String, String>>>;

/// Associated data sealing an agent's SIP password (binds it to the row).
fn context(tenant_id: &str, agent_id: &str) -> String {
    format!("agent-sip:{tenant_id}:{agent_id}")
}

fn check(input: &AgentSipInput) -> Result<()> {
    let mut issues = Issues::new();
    let u = &input.username;
    let ok_user = (1..=64).contains(&u.len())
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok_user {
        issues.add(
            "username",
            "must be 1 to 64 characters of letters, digits, '.', '_' or '-'",
        );
    }
    let n = input.password.chars().count();
    if !(8..=128).contains(&n) || input.password.chars().any(char::is_control) {
        issues.add(
            "password",
            "must be 8 to 128 characters, without control characters",
        );
    }
    issues.finish()
}

impl Store {
    /// Every agent softphone login, as `(tenant_id, agent_id, username, sealed password)`.
    pub(crate) async fn agent_sip_logins(&self) -> Result<Vec<(String, String, String, String)>> {
        let rows: Vec<(String, String, String, String)> = on_pool!(self, p => sqlx::query_as(
            "SELECT tenant_id, id, sip_username, sip_password_enc FROM agents \
             WHERE sip_username IS NOT NULL AND sip_password_enc IS NOT NULL")
            .fetch_all(p)
            .await)?;
        Ok(rows)
    }

    /// The agent's softphone user name (`None`: no login); `NotFound` for no such agent.
    pub async fn agent_sip_username(
        &self,
        tenant_id: &str,
        agent_id: &str,
    ) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> = on_pool!(self, p => sqlx::query_as(
            "SELECT sip_username FROM agents WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(agent_id)
            .fetch_optional(p)
            .await)?;
        row.map(|r| r.0).ok_or(Error::NotFound { entity: "agent" })
    }

    /// Sets (or with `None` removes) an agent's softphone login; returns the user name it
    /// replaced.
    async fn put_agent_sip(
        &self,
        tenant_id: &str,
        agent_id: &str,
        login: Option<(&str, &str)>,
    ) -> Result<Option<String>> {
        let before = self.agent_sip_username(tenant_id, agent_id).await?;
        let (user, sealed) = match login {
            Some((u, s)) => (Some(u), Some(s)),
            None => (None, None),
        };
        let res = on_pool!(self, p => sqlx::query(
            "UPDATE agents SET sip_username = $1, sip_password_enc = $2, updated_at = $3 \
             WHERE tenant_id = $4 AND id = $5")
            .bind(user)
            .bind(sealed)
            .bind(crate::store::now())
            .bind(tenant_id)
            .bind(agent_id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()));
        match res {
            Ok(0) => Err(Error::NotFound { entity: "agent" }),
            Ok(_) => Ok(before),
            Err(e) if is_unique_violation(&e) => Err(Error::conflict(
                "another agent already uses this SIP user name",
            )),
            Err(e) => Err(e.into()),
        }
    }
}

/// Loads every login into a password map (a login whose password no longer opens with this
/// key is skipped and logged: that agent must be given a new password).
pub(crate) async fn load(store: &Store, secrets: &SecretBox) -> Result<HashMap<String, String>> {
    let mut map = HashMap::new();
    for (tenant, agent, user, sealed) in store.agent_sip_logins().await? {
        match secrets.open(&context(&tenant, &agent), &sealed) {
            Ok(p) => {
                map.insert(user, p);
            }
            Err(e) => {
                tracing::warn!(agent = %agent, user = %user, error = %e, "agent SIP password cannot be opened with this secret key; set it again");
            }
        }
    }
    Ok(map)
}

/// Validates, seals, stores and publishes an agent's login to the registrar.
pub(crate) async fn set(
    store: &Store,
    secrets: &SecretBox,
    passwords: &Passwords,
    tenant_id: &str,
    agent_id: &str,
    input: &AgentSipInput,
) -> Result<()> {
    check(input)?;
    let sealed = secrets.seal(&context(tenant_id, agent_id), &input.password);
    let before = store
        .put_agent_sip(tenant_id, agent_id, Some((&input.username, &sealed)))
        .await?;
    let mut map = passwords.write().unwrap_or_else(|e| e.into_inner());
    if let Some(old) = before {
        map.remove(&old);
    }
    map.insert(input.username.clone(), input.password.clone());
    Ok(())
}

/// Removes an agent's login (its phone can no longer register; a live binding lapses).
pub(crate) async fn clear(
    store: &Store,
    passwords: &Passwords,
    tenant_id: &str,
    agent_id: &str,
) -> Result<()> {
    let before = store.put_agent_sip(tenant_id, agent_id, None).await?;
    if let Some(old) = before {
        passwords
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&old);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(u: &str, p: &str) -> AgentSipInput {
        AgentSipInput {
            username: u.into(),
            password: p.into(),
        }
    }

    #[test]
    fn login_validation_names_the_field() {
        assert!(check(&input("alice.1_x-y", "correct horse")).is_ok());
        for (u, p, field) in [
            ("", "correct horse", "username"),
            ("al ice", "correct horse", "username"),
            ("alice@x", "correct horse", "username"),
            ("alice", "short", "password"),
            ("alice", "tab\there!", "password"),
        ] {
            let Err(Error::Validation { issues }) = check(&input(u, p)) else {
                panic!("{u:?}/{p:?} accepted");
            };
            assert_eq!(issues[0].field, field, "{u:?}/{p:?}");
        }
        assert!(check(&input(&"a".repeat(65), "correct horse")).is_err());
    }
}
