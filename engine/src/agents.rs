//! Agents (the people who take answered calls) and agent groups (who a campaign routes to).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::types::Json;

use crate::patch::Patch;
use crate::store::{impl_from_row, new_id, now, on_pool, Store};
use crate::tenancy::{is_unique_violation, Role};
use crate::validate::{is_e164, is_email, parse_time_of_day, Issues};
use crate::{Error, Result};

/// Agent statuses an agent or supervisor may set.
pub const STATUSES: [&str; 4] = ["available", "busy", "offline", "break"];
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// An agent as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Agent {
    pub id: String,
    pub tenant_id: String,
    /// The user (role agent) this agent logs in as, if linked.
    pub user_id: Option<String>,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// Where the engine sends the agent's audio leg: a SIP URI (`sip:alice@10.0.0.5`) or an
    /// E.164 number dialled through a trunk. Defaults to `phone`.
    pub endpoint: Option<String>,
    pub agent_group_id: Option<String>,
    pub status: String,
    pub max_concurrent_calls: i64,
    pub current_calls: i64,
    pub total_calls_handled: i64,
    pub total_call_duration_seconds: i64,
    #[schema(value_type = Option<Object>)]
    pub working_hours: Option<Json<Map<String, Value>>>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_active_at: Option<DateTime<Utc>>,
}
impl_from_row!(Agent {
    id,
    tenant_id,
    user_id,
    name,
    phone,
    email,
    endpoint,
    agent_group_id,
    status,
    max_concurrent_calls,
    current_calls,
    total_calls_handled,
    total_call_duration_seconds,
    working_hours,
    is_active,
    created_at,
    updated_at,
    last_active_at
});

const COLS: &str = "id, tenant_id, user_id, name, phone, email, endpoint, agent_group_id, status, max_concurrent_calls, current_calls, \
    total_calls_handled, total_call_duration_seconds, working_hours, is_active, created_at, updated_at, last_active_at";

/// Body of `POST /api/agents`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub endpoint: Option<String>,
    pub agent_group_id: Option<String>,
    pub user_id: Option<String>,
    /// 1..=10, default 1.
    pub max_concurrent_calls: Option<i64>,
    /// `{"monday": {"start": "09:00", "end": "17:00"}, ...}`
    #[schema(value_type = Option<Object>)]
    pub working_hours: Option<Map<String, Value>>,
}

/// An agent group.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AgentGroup {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
impl_from_row!(AgentGroup {
    id,
    tenant_id,
    name,
    description,
    created_at,
    updated_at
});

/// Body of create (name required) and update of an agent group.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentGroupInput {
    pub name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub description: Patch<String>,
}

/// Aggregates of an agent's calls over a date range.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AgentStats {
    pub total_calls: i64,
    pub answered_calls: i64,
    pub avg_talk_time: f64,
    pub total_talk_time: i64,
}

fn check_working_hours(wh: &Map<String, Value>, issues: &mut Issues) {
    for (day, v) in wh {
        if !WEEKDAYS.contains(&day.as_str()) {
            issues.add(
                format!("working_hours.{day}"),
                "must be a weekday name in lower case",
            );
            continue;
        }
        let span = |k: &str| v.get(k).and_then(Value::as_str).and_then(parse_time_of_day);
        match (span("start"), span("end")) {
            (Some(s), Some(e)) if s < e => {}
            _ => issues.add(
                format!("working_hours.{day}"),
                "must be {\"start\": \"HH:MM\", \"end\": \"HH:MM\"} with end after start",
            ),
        }
    }
}

impl Store {
    pub async fn create_agent(&self, tenant_id: &str, a: NewAgent) -> Result<Agent> {
        let mut issues = Issues::new();
        let name = a.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 100 {
            issues.add("name", "must be 1 to 100 characters");
        }
        if a.phone.as_deref().is_some_and(|p| !is_e164(p)) {
            issues.add("phone", "must be an E.164 number such as +14155553333");
        }
        if a.email.as_deref().is_some_and(|e| !is_email(e)) {
            issues.add("email", "is not a valid e-mail address");
        }
        if let Some(ep) = a.endpoint.as_deref() {
            let sip = (ep.starts_with("sip:") || ep.starts_with("sips:"))
                && ep.contains('@')
                && ep.len() <= 256;
            if !sip && !is_e164(ep) {
                issues.add(
                    "endpoint",
                    "must be a SIP URI (sip:user@host) or an E.164 number",
                );
            }
        }
        let max = a.max_concurrent_calls.unwrap_or(1);
        if !(1..=10).contains(&max) {
            issues.add("max_concurrent_calls", "must be between 1 and 10");
        }
        if let Some(wh) = &a.working_hours {
            check_working_hours(wh, &mut issues);
        }
        if let Some(g) = &a.agent_group_id {
            if self.agent_group(tenant_id, g).await.is_err() {
                issues.add("agent_group_id", "no such agent group in this tenant");
            }
        }
        if let Some(u) = &a.user_id {
            match self.user(tenant_id, u).await {
                Ok(user) if user.role() == Role::Agent => {}
                Ok(_) => issues.add("user_id", "the user must have the agent role"),
                Err(_) => issues.add("user_id", "no such user in this tenant"),
            }
        }
        issues.finish()?;
        let ts = now();
        let agent = Agent {
            id: new_id(),
            tenant_id: tenant_id.to_string(),
            user_id: a.user_id,
            name,
            endpoint: a.endpoint.or_else(|| a.phone.clone()),
            phone: a.phone,
            email: a.email,
            agent_group_id: a.agent_group_id,
            status: "offline".into(),
            max_concurrent_calls: max,
            current_calls: 0,
            total_calls_handled: 0,
            total_call_duration_seconds: 0,
            working_hours: a.working_hours.map(Json),
            is_active: true,
            created_at: ts,
            updated_at: ts,
            last_active_at: None,
        };
        let res = on_pool!(self, p => sqlx::query(&format!("INSERT INTO agents ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"))
            .bind(&agent.id)
            .bind(&agent.tenant_id)
            .bind(&agent.user_id)
            .bind(&agent.name)
            .bind(&agent.phone)
            .bind(&agent.email)
            .bind(&agent.endpoint)
            .bind(&agent.agent_group_id)
            .bind(&agent.status)
            .bind(agent.max_concurrent_calls)
            .bind(agent.current_calls)
            .bind(agent.total_calls_handled)
            .bind(agent.total_call_duration_seconds)
            .bind(&agent.working_hours)
            .bind(agent.is_active)
            .bind(agent.created_at)
            .bind(agent.updated_at)
            .bind(agent.last_active_at)
            .execute(p)
            .await
            .map(|r| r.rows_affected()));
        match res {
            Ok(_) => Ok(agent),
            Err(e) if is_unique_violation(&e) => {
                Err(Error::conflict("this user is already linked to an agent"))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn agent(&self, tenant_id: &str, id: &str) -> Result<Agent> {
        let sql = format!("SELECT {COLS} FROM agents WHERE tenant_id = $1 AND id = $2");
        on_pool!(self, p => sqlx::query_as(&sql).bind(tenant_id).bind(id).fetch_optional(p).await)?
            .ok_or(Error::NotFound { entity: "agent" })
    }

    /// The agent linked to a user, if any.
    pub async fn agent_for_user(&self, tenant_id: &str, user_id: &str) -> Result<Option<Agent>> {
        let sql = format!("SELECT {COLS} FROM agents WHERE tenant_id = $1 AND user_id = $2");
        Ok(
            on_pool!(self, p => sqlx::query_as(&sql).bind(tenant_id).bind(user_id).fetch_optional(p).await)?,
        )
    }

    pub async fn agents(
        &self,
        tenant_id: &str,
        status: Option<&str>,
        group: Option<&str>,
    ) -> Result<Vec<Agent>> {
        let sql = format!(
            "SELECT {COLS} FROM agents WHERE tenant_id = $1 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR agent_group_id = $3) ORDER BY name, id LIMIT 1000"
        );
        Ok(
            on_pool!(self, p => sqlx::query_as(&sql).bind(tenant_id).bind(status).bind(group).fetch_all(p).await)?,
        )
    }

    pub async fn set_agent_status(&self, tenant_id: &str, id: &str, status: &str) -> Result<Agent> {
        if !STATUSES.contains(&status) {
            return Err(Error::field(
                "status",
                "must be one of available, busy, offline, break",
            ));
        }
        let ts = now();
        let r = on_pool!(self, p => sqlx::query("UPDATE agents SET status = $1, updated_at = $2, last_active_at = $2 WHERE tenant_id = $3 AND id = $4").bind(status).bind(ts).bind(tenant_id).bind(id).execute(p).await.map(|r| r.rows_affected()))?;
        if r == 0 {
            return Err(Error::NotFound { entity: "agent" });
        }
        self.agent(tenant_id, id).await
    }

    /// Call aggregates of one agent, `from`..=`to` by call creation date (UTC).
    pub async fn agent_stats(
        &self,
        tenant_id: &str,
        id: &str,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<AgentStats> {
        let from = from
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc());
        let to = to
            .and_then(|d| d.succ_opt())
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc());
        let (total, answered, talk, avg): (i64, i64, i64, f64) = on_pool!(self, p => {
            use sqlx::Row;
            let row = sqlx::query(
                "SELECT COUNT(*) AS total, \
                 CAST(COALESCE(SUM(CASE WHEN answer_time IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS answered, \
                 CAST(COALESCE(SUM(talk_time), 0) AS BIGINT) AS talk, \
                 COALESCE(AVG(CAST(talk_time AS DOUBLE PRECISION)), 0.0) AS avg_talk \
                 FROM calls WHERE tenant_id = $1 AND agent_id = $2 AND deleted_at IS NULL \
                 AND ($3 IS NULL OR created_at >= $3) AND ($4 IS NULL OR created_at < $4)",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(from)
            .bind(to)
            .fetch_one(p)
            .await?;
            (row.try_get("total")?, row.try_get("answered")?, row.try_get("talk")?, row.try_get("avg_talk")?)
        });
        Ok(AgentStats {
            total_calls: total,
            answered_calls: answered,
            avg_talk_time: (avg * 10.0).round() / 10.0,
            total_talk_time: talk,
        })
    }

    pub async fn create_agent_group(
        &self,
        tenant_id: &str,
        input: AgentGroupInput,
    ) -> Result<AgentGroup> {
        let name = input
            .name
            .as_deref()
            .map(str::trim)
            .unwrap_or_default()
            .to_string();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::field("name", "is required, 1 to 100 characters"));
        }
        let ts = now();
        let g = AgentGroup {
            id: new_id(),
            tenant_id: tenant_id.to_string(),
            name,
            description: input.description.apply_to(None),
            created_at: ts,
            updated_at: ts,
        };
        let res = on_pool!(self, p => sqlx::query("INSERT INTO agent_groups (id, tenant_id, name, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&g.id).bind(&g.tenant_id).bind(&g.name).bind(&g.description).bind(g.created_at).bind(g.updated_at).execute(p).await.map(|r| r.rows_affected()));
        match res {
            Ok(_) => Ok(g),
            Err(e) if is_unique_violation(&e) => Err(Error::conflict(
                "an agent group with this name already exists",
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn agent_group(&self, tenant_id: &str, id: &str) -> Result<AgentGroup> {
        on_pool!(self, p => sqlx::query_as("SELECT id, tenant_id, name, description, created_at, updated_at FROM agent_groups WHERE tenant_id = $1 AND id = $2").bind(tenant_id).bind(id).fetch_optional(p).await)?
            .ok_or(Error::NotFound { entity: "agent group" })
    }

    pub async fn agent_groups(&self, tenant_id: &str) -> Result<Vec<AgentGroup>> {
        Ok(
            on_pool!(self, p => sqlx::query_as("SELECT id, tenant_id, name, description, created_at, updated_at FROM agent_groups WHERE tenant_id = $1 ORDER BY name LIMIT 1000").bind(tenant_id).fetch_all(p).await)?,
        )
    }

    pub async fn update_agent_group(
        &self,
        tenant_id: &str,
        id: &str,
        input: AgentGroupInput,
    ) -> Result<AgentGroup> {
        let mut g = self.agent_group(tenant_id, id).await?;
        if let Some(n) = input.name {
            let n = n.trim().to_string();
            if n.is_empty() || n.chars().count() > 100 {
                return Err(Error::field("name", "must be 1 to 100 characters"));
            }
            g.name = n;
        }
        g.description = input.description.apply_to(g.description.take());
        g.updated_at = now();
        let res = on_pool!(self, p => sqlx::query("UPDATE agent_groups SET name = $1, description = $2, updated_at = $3 WHERE tenant_id = $4 AND id = $5")
            .bind(&g.name).bind(&g.description).bind(g.updated_at).bind(tenant_id).bind(id).execute(p).await.map(|r| r.rows_affected()));
        match res {
            Ok(_) => Ok(g),
            Err(e) if is_unique_violation(&e) => Err(Error::conflict(
                "an agent group with this name already exists",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a group no campaign routes to; its agents become ungrouped.
    pub async fn delete_agent_group(&self, tenant_id: &str, id: &str) -> Result<()> {
        self.agent_group(tenant_id, id).await?;
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let used: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM campaigns WHERE tenant_id = $1 AND agent_group_id = $2").bind(tenant_id).bind(id).fetch_one(&mut *tx).await?;
            if used > 0 {
                return Err(Error::conflict(format!("{used} campaign(s) route to this group: move them first")));
            }
            sqlx::query("UPDATE agents SET agent_group_id = NULL WHERE tenant_id = $1 AND agent_group_id = $2").bind(tenant_id).bind(id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM agent_groups WHERE tenant_id = $1 AND id = $2").bind(tenant_id).bind(id).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }
}
