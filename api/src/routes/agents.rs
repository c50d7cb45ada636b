//! `/api/agents` and `/api/agent-groups`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json as AxumJson;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use switchboard_engine::agents::{
    Agent, AgentGroup, AgentGroupInput, AgentStats, NewAgent, STATUSES,
};
use switchboard_engine::telephony::{AgentSip, AgentSipInput};
use switchboard_engine::tenancy::Role;

use super::sip::telephony;
use super::{check_id, list_response, one_response, MessageResponse};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::AppState;

one_response!(AgentResponse, agent, Agent);
list_response!(AgentList, agents, Agent);
one_response!(AgentGroupResponse, agent_group, AgentGroup);
list_response!(AgentGroupList, agent_groups, AgentGroup);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// available | busy | offline | break
    pub status: Option<String>,
    pub agent_group_id: Option<String>,
}

/// Agents of the tenant (at most 1000), by name.
#[utoipa::path(operation_id = "agents_list", get, path = "/api/agents", tag = "agents", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = AgentList), (status = 401, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    auth: Auth,
    q: Query<ListQuery>,
) -> ApiResult<AxumJson<AgentList>> {
    if q.status.as_deref().is_some_and(|s| !STATUSES.contains(&s)) {
        return Err(ApiError::field(
            "status",
            "must be one of available, busy, offline, break",
        ));
    }
    let items = st
        .store
        .agents(
            &auth.tenant_id,
            q.status.as_deref(),
            q.agent_group_id.as_deref(),
        )
        .await?;
    let n = items.len() as i64;
    Ok(AxumJson(AgentList::new(items, n.max(1), 0, n)))
}

/// Create an agent (status starts offline).
#[utoipa::path(operation_id = "agents_create", post, path = "/api/agents", tag = "agents", request_body = NewAgent, security(("bearer" = [])),
    responses((status = 201, body = AgentResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    auth: Auth,
    Json(b): Json<NewAgent>,
) -> ApiResult<(StatusCode, AxumJson<AgentResponse>)> {
    auth.require(Role::Supervisor)?;
    let a = st.store.create_agent(&auth.tenant_id, b).await?;
    st.store
        .audit(
            &auth.tenant_id,
            Some(&auth.user_id),
            "agent.create",
            "agent",
            Some(&a.id),
            serde_json::json!({"name": a.name}),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        AxumJson(AgentResponse::with_message(a, "Agent created successfully")),
    ))
}

/// One agent.
#[utoipa::path(operation_id = "agents_get", get, path = "/api/agents/{id}", tag = "agents", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = AgentResponse), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<AxumJson<AgentResponse>> {
    Ok(AxumJson(AgentResponse::new(
        st.store
            .agent(&auth.tenant_id, check_id(&id, "agent")?)
            .await?,
    )))
}

/// Body of `PUT /api/agents/{id}/status`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct StatusBody {
    /// available | busy | offline | break
    pub status: String,
}

/// Supervisors and up may act on any agent; an agent on itself only.
async fn may_act_on(st: &AppState, auth: &Auth, id: &str) -> ApiResult<Agent> {
    let agent = st
        .store
        .agent(&auth.tenant_id, check_id(id, "agent")?)
        .await?;
    if auth.role >= Role::Supervisor || agent.user_id.as_deref() == Some(auth.user_id.as_str()) {
        Ok(agent)
    } else {
        Err(ApiError::Forbidden("agents may only act on themselves"))
    }
}

/// Set an agent's status.
#[utoipa::path(operation_id = "agents_set_status", put, path = "/api/agents/{id}/status", tag = "agents", params(("id" = String, Path)), request_body = StatusBody, security(("bearer" = [])),
    responses((status = 200, body = AgentResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn set_status(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(b): Json<StatusBody>,
) -> ApiResult<AxumJson<AgentResponse>> {
    may_act_on(&st, &auth, &id).await?;
    let a = st
        .store
        .set_agent_status(&auth.tenant_id, &id, &b.status)
        .await?;
    st.events.emit(
        &a.tenant_id,
        switchboard_engine::events::Channel::Agents,
        "agent:status:updated",
        Some(&a.id),
        serde_json::json!({"agentId": a.id, "status": a.status}),
    );
    Ok(AxumJson(AgentResponse::with_message(
        a,
        "Agent status updated",
    )))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct StatsQuery {
    /// First day (YYYY-MM-DD, UTC), inclusive.
    pub date_from: Option<NaiveDate>,
    /// Last day (YYYY-MM-DD, UTC), inclusive.
    pub date_to: Option<NaiveDate>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgentStatsData {
    pub agent: Agent,
    pub stats: AgentStats,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentStatsResponse {
    pub success: bool,
    pub agent: Agent,
    pub stats: AgentStats,
    pub data: AgentStatsData,
}

/// An agent's call aggregates over a date range.
#[utoipa::path(operation_id = "agents_stats", get, path = "/api/agents/{id}/stats", tag = "agents", params(("id" = String, Path), StatsQuery), security(("bearer" = [])),
    responses((status = 200, body = AgentStatsResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn stats(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    q: Result<Query<StatsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<AxumJson<AgentStatsResponse>> {
    let q = q.map_err(|e| {
        ApiError::field(
            "date_from",
            format!("dates must be YYYY-MM-DD: {}", e.body_text()),
        )
    })?;
    if let (Some(f), Some(t)) = (q.date_from, q.date_to) {
        if t < f {
            return Err(ApiError::field("date_to", "must not be before date_from"));
        }
    }
    let agent = may_act_on(&st, &auth, &id).await?;
    let stats = st
        .store
        .agent_stats(&auth.tenant_id, &id, q.date_from, q.date_to)
        .await?;
    Ok(AxumJson(AgentStatsResponse {
        success: true,
        data: AgentStatsData {
            agent: agent.clone(),
            stats: stats.clone(),
        },
        agent,
        stats,
    }))
}

/// Agent groups, by name.
#[utoipa::path(operation_id = "agents_list_groups", get, path = "/api/agent-groups", tag = "agents", security(("bearer" = [])),
    responses((status = 200, body = AgentGroupList), (status = 401, body = crate::error::ErrorBody)))]
pub async fn list_groups(
    State(st): State<AppState>,
    auth: Auth,
) -> ApiResult<AxumJson<AgentGroupList>> {
    let items = st.store.agent_groups(&auth.tenant_id).await?;
    let n = items.len() as i64;
    Ok(AxumJson(AgentGroupList::new(items, n.max(1), 0, n)))
}

/// Create an agent group (names are unique per tenant).
#[utoipa::path(operation_id = "agents_create_group", post, path = "/api/agent-groups", tag = "agents", request_body = AgentGroupInput, security(("bearer" = [])),
    responses((status = 201, body = AgentGroupResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn create_group(
    State(st): State<AppState>,
    auth: Auth,
    Json(b): Json<AgentGroupInput>,
) -> ApiResult<(StatusCode, AxumJson<AgentGroupResponse>)> {
    auth.require(Role::Supervisor)?;
    let g = st.store.create_agent_group(&auth.tenant_id, b).await?;
    Ok((StatusCode::CREATED, AxumJson(AgentGroupResponse::new(g))))
}

/// One agent group.
#[utoipa::path(operation_id = "agents_get_group", get, path = "/api/agent-groups/{id}", tag = "agents", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = AgentGroupResponse), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_group(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<AxumJson<AgentGroupResponse>> {
    Ok(AxumJson(AgentGroupResponse::new(
        st.store
            .agent_group(&auth.tenant_id, check_id(&id, "agent group")?)
            .await?,
    )))
}

/// Rename or describe an agent group.
#[utoipa::path(operation_id = "agents_update_group", put, path = "/api/agent-groups/{id}", tag = "agents", params(("id" = String, Path)), request_body = AgentGroupInput, security(("bearer" = [])),
    responses((status = 200, body = AgentGroupResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn update_group(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(b): Json<AgentGroupInput>,
) -> ApiResult<AxumJson<AgentGroupResponse>> {
    auth.require(Role::Supervisor)?;
    Ok(AxumJson(AgentGroupResponse::new(
        st.store
            .update_agent_group(&auth.tenant_id, check_id(&id, "agent group")?, b)
            .await?,
    )))
}

/// Delete an agent group no campaign routes to (409 otherwise); its agents become ungrouped.
#[utoipa::path(operation_id = "agents_delete_group", delete, path = "/api/agent-groups/{id}", tag = "agents", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = MessageResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn delete_group(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<AxumJson<MessageResponse>> {
    auth.require(Role::Supervisor)?;
    st.store
        .delete_agent_group(&auth.tenant_id, check_id(&id, "agent group")?)
        .await?;
    Ok(AxumJson(MessageResponse {
        success: true,
        message: "Agent group deleted".into(),
    }))
}

/// Answer of the `/api/agents/{id}/sip` routes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentSipResponse {
    pub success: bool,
    pub sip: AgentSip,
    pub data: AgentSip,
}

impl AgentSipResponse {
    fn new(s: AgentSip) -> Self {
        AgentSipResponse {
            success: true,
            sip: s.clone(),
            data: s,
        }
    }
}

/// An agent's softphone login (never the password) and whether the phone is registered.
#[utoipa::path(operation_id = "agents_get_sip", get, path = "/api/agents/{id}/sip", tag = "agents", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = AgentSipResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)))]
pub async fn get_sip(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<AxumJson<AgentSipResponse>> {
    may_act_on(&st, &auth, &id).await?;
    let s = telephony(&st)?.agent_sip(&auth.tenant_id, &id).await?;
    Ok(AxumJson(AgentSipResponse::new(s)))
}

/// Give an agent a softphone login: the phone registers with the engine (digest, the
/// answer's `realm`, at `registrar`) and the dialer calls it there when the agent is available.
#[utoipa::path(operation_id = "agents_set_sip", put, path = "/api/agents/{id}/sip", tag = "agents", params(("id" = String, Path)), request_body = AgentSipInput, security(("bearer" = [])),
    responses((status = 200, body = AgentSipResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)))]
pub async fn set_sip(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(b): Json<AgentSipInput>,
) -> ApiResult<AxumJson<AgentSipResponse>> {
    may_act_on(&st, &auth, &id).await?;
    let s = telephony(&st)?
        .set_agent_sip(&auth.tenant_id, &id, &b)
        .await?;
    Ok(AxumJson(AgentSipResponse::new(s)))
}

/// Remove an agent's softphone login.
#[utoipa::path(operation_id = "agents_delete_sip", delete, path = "/api/agents/{id}/sip", tag = "agents", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = AgentSipResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)))]
pub async fn delete_sip(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<AxumJson<AgentSipResponse>> {
    may_act_on(&st, &auth, &id).await?;
    let s = telephony(&st)?
        .clear_agent_sip(&auth.tenant_id, &id)
        .await?;
    Ok(AxumJson(AgentSipResponse::new(s)))
}
