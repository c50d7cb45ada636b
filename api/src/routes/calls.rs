//! `/api/calls`: call records (call-log spec), manual call control (cold-caller spec),
//! stats (call-log and dialer specs), analytics, and `/api/audit/calls/{id}`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json as AxumJson;
use serde::{Deserialize, Serialize};
use switchboard_engine::audit::AuditEntry;
use switchboard_engine::calls::{
    Analytics, Call, CallFilter, CallInput, CallStats, ControlUpdate, DispositionCount, EndCall,
    Page, StartCall, StatsSummary, Transcript,
};
use switchboard_engine::tenancy::Role;

use super::{check_id, one_response};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::AppState;

one_response!(CallResponse, call, Call);

/// Publishes a call event on the `calls` channel (agents get their own calls).
fn emit(st: &AppState, kind: &'static str, c: &Call) {
    let data = serde_json::json!({
        "id": c.id,
        "callId": c.id,
        "phoneNumber": c.caller_phone,
        "status": c.status,
        "direction": c.direction,
        "startTime": c.start_time,
        "endTime": c.end_time,
        "duration": c.duration,
        "campaignId": c.campaign_id,
        "leadId": c.lead_id,
        "agentId": c.agent_id,
        "disposition": c.disposition,
        "quality": c.quality,
    });
    st.events.emit(
        &c.tenant_id,
        switchboard_engine::events::Channel::Calls,
        kind,
        c.agent_id.as_deref(),
        data,
    );
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallPage {
    pub calls: Vec<Call>,
    pub pagination: Page,
}

/// `data.calls` + `data.pagination` (call-log spec) and `calls` + `count` (dialer spec).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallList {
    pub success: bool,
    pub data: CallPage,
    pub calls: Vec<Call>,
    pub count: usize,
}

fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> ApiResult<T> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::field("query", e.body_text()))
}

/// Log a call (phone_number, direction, status and started_at required).
#[utoipa::path(post, operation_id = "calls_create", path = "/api/calls", tag = "calls", request_body = CallInput, security(("bearer" = [])),
    responses((status = 201, body = CallResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    auth: Auth,
    Json(b): Json<CallInput>,
) -> ApiResult<(StatusCode, AxumJson<CallResponse>)> {
    auth.require(Role::Agent)?;
    let c = st
        .store
        .create_call(
            &auth.tenant_id,
            b,
            &st.config.default_country,
            Some(&auth.user_id),
        )
        .await?;
    emit(&st, "callInitiated", &c);
    Ok((
        StatusCode::CREATED,
        AxumJson(CallResponse::with_message(c, "Call created successfully")),
    ))
}

/// List calls with filters, sorting and page- or offset-based pagination.
#[utoipa::path(get, operation_id = "calls_list", path = "/api/calls", tag = "calls", params(CallFilter), security(("bearer" = [])),
    responses((status = 200, body = CallList), (status = 401, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    auth: Auth,
    q: Result<Query<CallFilter>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<AxumJson<CallList>> {
    let f = query(q)?;
    let (calls, pagination) = st.store.calls(&auth.tenant_id, &f).await?;
    Ok(AxumJson(CallList {
        success: true,
        count: calls.len(),
        calls: calls.clone(),
        data: CallPage { calls, pagination },
    }))
}

/// One call with its transcript, quality and recording.
#[utoipa::path(get, operation_id = "calls_get", path = "/api/calls/{id}", tag = "calls", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = CallResponse), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<AxumJson<CallResponse>> {
    Ok(AxumJson(CallResponse::new(
        st.store
            .call(&auth.tenant_id, check_id(&id, "call")?)
            .await?,
    )))
}

async fn do_update(
    st: AppState,
    auth: Auth,
    id: String,
    b: CallInput,
) -> ApiResult<AxumJson<CallResponse>> {
    auth.require(Role::Agent)?;
    let c = st
        .store
        .update_call(
            &auth.tenant_id,
            check_id(&id, "call")?,
            b,
            &st.config.default_country,
            Some(&auth.user_id),
        )
        .await?;
    emit(&st, "callUpdated", &c);
    Ok(AxumJson(CallResponse::with_message(
        c,
        "Call updated successfully",
    )))
}

/// Update a call (fields given replace the stored ones; absent fields are kept).
#[utoipa::path(put, operation_id = "calls_update", path = "/api/calls/{id}", tag = "calls", params(("id" = String, Path)), request_body = CallInput, security(("bearer" = [])),
    responses((status = 200, body = CallResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn update(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(b): Json<CallInput>,
) -> ApiResult<AxumJson<CallResponse>> {
    do_update(st, auth, id, b).await
}

/// Same as PUT: a partial update.
#[utoipa::path(patch, operation_id = "calls_patch", path = "/api/calls/{id}", tag = "calls", params(("id" = String, Path)), request_body = CallInput, security(("bearer" = [])),
    responses((status = 200, body = CallResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn patch(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(b): Json<CallInput>,
) -> ApiResult<AxumJson<CallResponse>> {
    do_update(st, auth, id, b).await
}

/// Body of `PUT /api/calls/{id}/transcript`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TranscriptBody {
    pub transcript: Transcript,
    pub transcription_url: Option<String>,
}

/// Replace a call's transcript (segments ordered, end ≥ start, confidence 0..1).
#[utoipa::path(put, operation_id = "calls_transcript", path = "/api/calls/{id}/transcript", tag = "calls", params(("id" = String, Path)), request_body = TranscriptBody, security(("bearer" = [])),
    responses((status = 200, body = CallResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn transcript(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(b): Json<TranscriptBody>,
) -> ApiResult<AxumJson<CallResponse>> {
    auth.require(Role::Agent)?;
    let c = st
        .store
        .set_transcript(
            &auth.tenant_id,
            check_id(&id, "call")?,
            b.transcript,
            b.transcription_url,
            Some(&auth.user_id),
        )
        .await?;
    Ok(AxumJson(CallResponse::with_message(
        c,
        "Transcript updated successfully",
    )))
}

/// Start a manual / preview call record (the dialing engine places the call).
#[utoipa::path(post, operation_id = "calls_start", path = "/api/calls/start", tag = "calls", request_body = StartCall, security(("bearer" = [])),
    responses((status = 201, body = CallResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn start(
    State(st): State<AppState>,
    auth: Auth,
    Json(b): Json<StartCall>,
) -> ApiResult<(StatusCode, AxumJson<CallResponse>)> {
    auth.require(Role::Agent)?;
    let c = st
        .store
        .start_call(
            &auth.tenant_id,
            b,
            &st.config.default_country,
            Some(&auth.user_id),
        )
        .await?;
    emit(&st, "callInitiated", &c);
    // With an engine running and a lead to call, the call is really placed, bridged to the
    // agent (the caller's own agent record unless `agentId` names one).
    if let (Some(dialer), Some(_)) = (&st.dialer, &c.lead_id) {
        let agent = match &c.agent_id {
            Some(a) => Some(a.clone()),
            None => st
                .store
                .agent_for_user(&auth.tenant_id, &auth.user_id)
                .await?
                .map(|a| a.id),
        };
        let Some(agent) = agent else {
            fail_call(&st, &c, "no agent to bridge the call to").await;
            return Err(switchboard_engine::Error::field(
                "agentId",
                "is required to dial (or log in as an agent)",
            )
            .into());
        };
        if let Err(e) = dialer.preview_dial(&auth.tenant_id, &c.id, &agent).await {
            fail_call(&st, &c, &e.to_string()).await;
            return Err(e.into());
        }
    }
    Ok((
        StatusCode::CREATED,
        AxumJson(CallResponse::with_message(c, "Call started")),
    ))
}

/// A preview call the engine could not place: closed as failed with the reason.
async fn fail_call(st: &AppState, c: &Call, reason: &str) {
    use switchboard_engine::dialer::attempts::{CallPatch, EngineWrite};
    let _ = st
        .store
        .apply_engine_writes(&[EngineWrite::Call {
            tenant_id: c.tenant_id.clone(),
            call_id: c.id.clone(),
            patch: CallPatch {
                status: Some("failed"),
                outcome: Some(reason.to_owned()),
                end_time: Some(switchboard_engine::store::now()),
                ..Default::default()
            },
        }])
        .await;
}

/// Update status, live quality and notes during a call.
#[utoipa::path(put, operation_id = "calls_control_update", path = "/api/calls/{id}/update", tag = "calls", params(("id" = String, Path)), request_body = ControlUpdate, security(("bearer" = [])),
    responses((status = 200, body = CallResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn control_update(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(b): Json<ControlUpdate>,
) -> ApiResult<AxumJson<CallResponse>> {
    auth.require(Role::Agent)?;
    let quality = b.quality.is_some();
    let c = st
        .store
        .control_update(
            &auth.tenant_id,
            check_id(&id, "call")?,
            b,
            Some(&auth.user_id),
        )
        .await?;
    let kind = if matches!(c.status.as_str(), "answered" | "connected" | "in-progress") {
        "callConnected"
    } else {
        "callUpdated"
    };
    emit(&st, kind, &c);
    if quality {
        emit(&st, "callQualityUpdate", &c);
    }
    Ok(AxumJson(CallResponse::with_message(
        c,
        "Call updated successfully",
    )))
}

/// End a call with outcome, disposition, notes, tags, objections and next actions.
#[utoipa::path(post, operation_id = "calls_end", path = "/api/calls/{id}/end", tag = "calls", params(("id" = String, Path)), request_body = EndCall, security(("bearer" = [])),
    responses((status = 200, body = CallResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn end(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(b): Json<EndCall>,
) -> ApiResult<AxumJson<CallResponse>> {
    auth.require(Role::Agent)?;
    let c = st
        .store
        .end_call(
            &auth.tenant_id,
            check_id(&id, "call")?,
            b,
            Some(&auth.user_id),
        )
        .await?;
    emit(&st, "callEnded", &c);
    if let Some(agent) = &c.agent_id {
        st.events.emit(
            &c.tenant_id,
            switchboard_engine::events::Channel::Agents,
            "call:ended",
            Some(agent),
            serde_json::json!({"callId": c.id, "disposition": c.disposition}),
        );
    }
    Ok(AxumJson(CallResponse::with_message(c, "Call ended")))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatsResponse {
    pub success: bool,
    pub data: CallStats,
}

/// Totals, answered / missed, durations and breakdowns (accepts the list filters).
#[utoipa::path(get, operation_id = "calls_stats", path = "/api/calls/stats", tag = "calls", params(CallFilter), security(("bearer" = [])),
    responses((status = 200, body = StatsResponse), (status = 401, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn stats(
    State(st): State<AppState>,
    auth: Auth,
    q: Result<Query<CallFilter>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<AxumJson<StatsResponse>> {
    Ok(AxumJson(StatsResponse {
        success: true,
        data: st.store.call_stats(&auth.tenant_id, &query(q)?).await?,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SummaryResponse {
    pub success: bool,
    pub stats: StatsSummary,
    pub data: StatsSummary,
}

/// The dialer spec's summary: dispositions, human vs machine, averages, cost.
#[utoipa::path(get, operation_id = "calls_stats_summary", path = "/api/calls/stats/summary", tag = "calls", params(CallFilter), security(("bearer" = [])),
    responses((status = 200, body = SummaryResponse), (status = 401, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn stats_summary(
    State(st): State<AppState>,
    auth: Auth,
    q: Result<Query<CallFilter>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<AxumJson<SummaryResponse>> {
    let s = st.store.stats_summary(&auth.tenant_id, &query(q)?).await?;
    Ok(AxumJson(SummaryResponse {
        success: true,
        stats: s.clone(),
        data: s,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DispositionResponse {
    pub success: bool,
    pub dispositions: Vec<DispositionCount>,
    pub data: Vec<DispositionCount>,
}

/// Calls per disposition, most frequent first.
#[utoipa::path(get, operation_id = "calls_stats_by_disposition", path = "/api/calls/stats/by-disposition", tag = "calls", params(CallFilter), security(("bearer" = [])),
    responses((status = 200, body = DispositionResponse), (status = 401, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn stats_by_disposition(
    State(st): State<AppState>,
    auth: Auth,
    q: Result<Query<CallFilter>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<AxumJson<DispositionResponse>> {
    let d = st
        .store
        .stats_by_disposition(&auth.tenant_id, &query(q)?)
        .await?;
    Ok(AxumJson(DispositionResponse {
        success: true,
        dispositions: d.clone(),
        data: d,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
pub struct AnalyticsQuery {
    /// day | week | month (default month)
    pub period: Option<String>,
    pub agent_id: Option<String>,
    pub campaign_id: Option<String>,
}

/// The cold-caller spec's analytics (its keys at the top level) plus `data`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AnalyticsResponse {
    pub success: bool,
    #[serde(flatten)]
    pub analytics: Analytics,
    pub data: Analytics,
}

/// Summary with connection and conversion rates, outcomes, quality, trends, per agent and campaign.
#[utoipa::path(get, operation_id = "calls_analytics", path = "/api/calls/analytics", tag = "calls", params(AnalyticsQuery), security(("bearer" = [])),
    responses((status = 200, body = AnalyticsResponse), (status = 401, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn analytics(
    State(st): State<AppState>,
    auth: Auth,
    q: Query<AnalyticsQuery>,
) -> ApiResult<AxumJson<AnalyticsResponse>> {
    let q = q.0;
    let a = st
        .store
        .analytics(
            &auth.tenant_id,
            q.period.as_deref().unwrap_or("month"),
            q.agent_id,
            q.campaign_id,
            chrono::Utc::now(),
        )
        .await?;
    Ok(AxumJson(AnalyticsResponse {
        success: true,
        analytics: a.clone(),
        data: a,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallAuditResponse {
    pub success: bool,
    pub data: Vec<AuditEntry>,
}

/// Every change to a call: who, what, when, before and after (supervisor and up).
#[utoipa::path(get, operation_id = "calls_audit", path = "/api/audit/calls/{id}", tag = "audit", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = CallAuditResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn audit(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<AxumJson<CallAuditResponse>> {
    auth.require(Role::Supervisor)?;
    Ok(AxumJson(CallAuditResponse {
        success: true,
        data: st
            .store
            .call_audit(&auth.tenant_id, check_id(&id, "call")?)
            .await?,
    }))
}
