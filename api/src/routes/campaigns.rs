//! `/api/campaigns`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json as AxumJson;
use serde::Deserialize;
use switchboard_engine::campaigns::{Campaign, CampaignFilter, CampaignInput, STATUSES};
use switchboard_engine::tenancy::Role;

use super::{check_id, list_response, one_response};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::AppState;

one_response!(CampaignResponse, campaign, Campaign);
list_response!(CampaignList, campaigns, Campaign);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// draft | scheduled | active | paused | completed | cancelled
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// List campaigns, newest first.
#[utoipa::path(operation_id = "campaigns_list", get, path = "/api/campaigns", tag = "campaigns", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = CampaignList), (status = 401, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    auth: Auth,
    q: Query<ListQuery>,
) -> ApiResult<AxumJson<CampaignList>> {
    if q.status.as_deref().is_some_and(|s| !STATUSES.contains(&s)) {
        return Err(ApiError::field(
            "status",
            "must be one of draft, scheduled, active, paused, completed, cancelled",
        ));
    }
    let f = CampaignFilter {
        status: q.status.clone(),
        limit: q.limit,
        offset: q.offset,
    };
    let (limit, offset) = switchboard_engine::store::page(q.limit, q.offset);
    let (items, total) = st.store.campaigns(&auth.tenant_id, &f).await?;
    Ok(AxumJson(CampaignList::new(items, limit, offset, total)))
}

/// Create a campaign (only name and caller_id are required).
#[utoipa::path(operation_id = "campaigns_create", post, path = "/api/campaigns", tag = "campaigns", request_body = CampaignInput, security(("bearer" = [])),
    responses((status = 201, body = CampaignResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    auth: Auth,
    Json(body): Json<CampaignInput>,
) -> ApiResult<(StatusCode, AxumJson<CampaignResponse>)> {
    auth.require(Role::Supervisor)?;
    let c = st.store.create_campaign(&auth.tenant_id, body).await?;
    st.store
        .audit(
            &auth.tenant_id,
            Some(&auth.user_id),
            "campaign.create",
            "campaign",
            Some(&c.id),
            serde_json::json!({"name": c.name}),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        AxumJson(CampaignResponse::with_message(
            c,
            "Campaign created successfully",
        )),
    ))
}

/// One campaign.
#[utoipa::path(operation_id = "campaigns_get", get, path = "/api/campaigns/{id}", tag = "campaigns", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = CampaignResponse), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<AxumJson<CampaignResponse>> {
    let c = st
        .store
        .campaign(&auth.tenant_id, check_id(&id, "campaign")?)
        .await?;
    Ok(AxumJson(CampaignResponse::new(c)))
}

/// Update a campaign: any create field; `null` clears an optional one; `status` may be
/// `completed` or `cancelled` where legal (409 otherwise).
#[utoipa::path(operation_id = "campaigns_update", put, path = "/api/campaigns/{id}", tag = "campaigns", params(("id" = String, Path)), request_body = CampaignInput, security(("bearer" = [])),
    responses((status = 200, body = CampaignResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn update(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<CampaignInput>,
) -> ApiResult<AxumJson<CampaignResponse>> {
    auth.require(Role::Supervisor)?;
    let c = st
        .store
        .update_campaign(&auth.tenant_id, check_id(&id, "campaign")?, body)
        .await?;
    st.store
        .audit(
            &auth.tenant_id,
            Some(&auth.user_id),
            "campaign.update",
            "campaign",
            Some(&c.id),
            serde_json::json!({"status": c.status}),
        )
        .await?;
    Ok(AxumJson(CampaignResponse::with_message(
        c,
        "Campaign updated successfully",
    )))
}

/// Start or resume: draft/paused → active (scheduled when schedule_start is ahead).
#[utoipa::path(operation_id = "campaigns_start", post, path = "/api/campaigns/{id}/start", tag = "campaigns", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = CampaignResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn start(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<AxumJson<CampaignResponse>> {
    auth.require(Role::Supervisor)?;
    let c = st
        .store
        .start_campaign(&auth.tenant_id, check_id(&id, "campaign")?)
        .await?;
    st.store
        .audit(
            &auth.tenant_id,
            Some(&auth.user_id),
            "campaign.start",
            "campaign",
            Some(&c.id),
            serde_json::json!({"status": c.status}),
        )
        .await?;
    st.events.emit(
        &c.tenant_id,
        switchboard_engine::events::Channel::Calls,
        "campaignUpdated",
        None,
        serde_json::json!({"campaignId": c.id, "status": c.status, "by": "api"}),
    );
    Ok(AxumJson(CampaignResponse::with_message(
        c,
        "Campaign started successfully",
    )))
}

/// Pause: active/scheduled → paused.
#[utoipa::path(operation_id = "campaigns_pause", post, path = "/api/campaigns/{id}/pause", tag = "campaigns", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = CampaignResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn pause(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<AxumJson<CampaignResponse>> {
    auth.require(Role::Supervisor)?;
    let c = st
        .store
        .pause_campaign(&auth.tenant_id, check_id(&id, "campaign")?)
        .await?;
    st.store
        .audit(
            &auth.tenant_id,
            Some(&auth.user_id),
            "campaign.pause",
            "campaign",
            Some(&c.id),
            serde_json::json!({}),
        )
        .await?;
    st.events.emit(
        &c.tenant_id,
        switchboard_engine::events::Channel::Calls,
        "campaignUpdated",
        None,
        serde_json::json!({"campaignId": c.id, "status": c.status, "by": "api"}),
    );
    Ok(AxumJson(CampaignResponse::with_message(
        c,
        "Campaign paused successfully",
    )))
}
