//! `/api/dnc`: the tenant's do-not-call list.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json as AxumJson;
use serde::Deserialize;
use switchboard_engine::dnc::DncNumber;
use switchboard_engine::phone;
use switchboard_engine::tenancy::Role;

use super::{list_response, one_response, MessageResponse};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::AppState;

one_response!(DncResponse, dnc, DncNumber);
list_response!(DncList, numbers, DncNumber);

/// Body of `POST /api/dnc`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DncBody {
    /// Any common format; national numbers use the configured default country.
    pub phone: String,
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Part of a number.
    pub search: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

fn normalize(st: &AppState, raw: &str) -> ApiResult<String> {
    phone::normalize(raw, Some(&st.config.default_country))
        .map(|n| n.e164)
        .map_err(|p| ApiError::field("phone", p.to_string()))
}

/// Add a number (201 when new, 200 when it was already listed); the tenant's leads with
/// that number become `dnc`.
#[utoipa::path(operation_id = "dnc_add", post, path = "/api/dnc", tag = "dnc", request_body = DncBody, security(("bearer" = [])),
    responses((status = 201, body = DncResponse), (status = 200, body = DncResponse), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn add(
    State(st): State<AppState>,
    auth: Auth,
    Json(b): Json<DncBody>,
) -> ApiResult<(StatusCode, AxumJson<DncResponse>)> {
    auth.require(Role::Agent)?;
    if b.reason.as_deref().is_some_and(|r| r.chars().count() > 500) {
        return Err(ApiError::field("reason", "must be at most 500 characters"));
    }
    let e164 = normalize(&st, &b.phone)?;
    let (n, new) = st
        .store
        .add_dnc(
            &auth.tenant_id,
            &e164,
            b.reason.as_deref(),
            Some(&auth.user_id),
        )
        .await?;
    if new {
        st.store
            .audit(
                &auth.tenant_id,
                Some(&auth.user_id),
                "dnc.add",
                "dnc",
                None,
                serde_json::json!({}),
            )
            .await?;
    }
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, AxumJson(DncResponse::new(n))))
}

/// The list, newest first.
#[utoipa::path(operation_id = "dnc_list", get, path = "/api/dnc", tag = "dnc", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = DncList), (status = 401, body = crate::error::ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    auth: Auth,
    q: Query<ListQuery>,
) -> ApiResult<AxumJson<DncList>> {
    let (limit, offset) = switchboard_engine::store::page(q.limit, q.offset);
    let (items, total) = st
        .store
        .dnc_numbers(&auth.tenant_id, q.search.as_deref(), q.limit, q.offset)
        .await?;
    Ok(AxumJson(DncList::new(items, limit, offset, total)))
}

/// Remove a number (URL-encode the `+` as `%2B`).
#[utoipa::path(operation_id = "dnc_remove", delete, path = "/api/dnc/{phone}", tag = "dnc", params(("phone" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = MessageResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn remove(
    State(st): State<AppState>,
    auth: Auth,
    Path(phone): Path<String>,
) -> ApiResult<AxumJson<MessageResponse>> {
    auth.require(Role::Admin)?;
    let e164 = normalize(&st, &phone)?;
    st.store.remove_dnc(&auth.tenant_id, &e164).await?;
    st.store
        .audit(
            &auth.tenant_id,
            Some(&auth.user_id),
            "dnc.remove",
            "dnc",
            None,
            serde_json::json!({}),
        )
        .await?;
    Ok(AxumJson(MessageResponse {
        success: true,
        message: "Number removed from the do-not-call list".into(),
    }))
}
