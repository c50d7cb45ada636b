//! `/api/voice-calls/{companyId}/...`: the voice-calls spec, in its own shapes — no
//! envelope; errors are `{"message", "error"?, "details"?}`. `companyId` must be the caller's
//! tenant (anything else answers 404, like a missing call).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json as AxumJson;
use serde::{Deserialize, Serialize};
use switchboard_engine::calls::voice::{VoiceCall, VoiceCallInput};
use switchboard_engine::tenancy::Role;
use switchboard_engine::validate::FieldIssue;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::Json;
use crate::AppState;

/// The spec's error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VoiceError {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<FieldIssue>>,
}

/// An error answered in the spec's shape.
pub struct Fail(ApiError, &'static str);

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Self {
        Fail(e, "Request failed")
    }
}

impl From<switchboard_engine::Error> for Fail {
    fn from(e: switchboard_engine::Error) -> Self {
        Fail(e.into(), "Request failed")
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let Fail(e, action) = self;
        match e {
            ApiError::NotFound { .. } => (
                StatusCode::NOT_FOUND,
                AxumJson(VoiceError {
                    message: "Call not found".into(),
                    error: None,
                    details: None,
                }),
            )
                .into_response(),
            ApiError::Validation(issues) => {
                let error = issues
                    .iter()
                    .map(|i| format!("{}: {}", i.field, i.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                (
                    StatusCode::BAD_REQUEST,
                    AxumJson(VoiceError {
                        message: action.into(),
                        error: Some(error),
                        details: Some(issues),
                    }),
                )
                    .into_response()
            }
            ApiError::BadRequest(m) => (
                StatusCode::BAD_REQUEST,
                AxumJson(VoiceError {
                    message: action.into(),
                    error: Some(m),
                    details: None,
                }),
            )
                .into_response(),
            other => other.into_response(),
        }
    }
}

type VResult<T> = Result<T, Fail>;

/// The path's company must be the caller's tenant.
fn company(auth: &Auth, company_id: &str) -> VResult<()> {
    if auth.tenant_id == company_id {
        Ok(())
    } else {
        Err(Fail(
            ApiError::NotFound { entity: "call" },
            "Call not found",
        ))
    }
}

fn with(action: &'static str) -> impl Fn(switchboard_engine::Error) -> Fail {
    move |e| Fail(e.into(), action)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Created {
    pub id: String,
    pub message: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Deleted {
    pub message: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    /// Default 1.
    pub page: Option<i64>,
    /// Default 10, at most 100.
    pub limit: Option<i64>,
}

/// Create a voice call record of a campaign.
#[utoipa::path(post, operation_id = "voice_calls_create", path = "/api/voice-calls/{companyId}/campaigns/{campaignId}/calls", tag = "voice-calls",
    params(("companyId" = String, Path), ("campaignId" = String, Path)), request_body = VoiceCallInput, security(("bearer" = [])),
    responses((status = 201, body = Created), (status = 400, body = VoiceError), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = VoiceError)))]
pub async fn create(
    State(st): State<AppState>,
    auth: Auth,
    Path((company_id, campaign_id)): Path<(String, String)>,
    body: Result<Json<VoiceCallInput>, ApiError>,
) -> VResult<(StatusCode, AxumJson<Created>)> {
    company(&auth, &company_id)?;
    auth.require(Role::Agent)?;
    let Json(b) = body.map_err(|e| Fail(e, "Error creating call"))?;
    super::check_id(&campaign_id, "campaign")?;
    let id = st
        .store
        .voice_call_create(&auth.tenant_id, &campaign_id, b, Some(&auth.user_id))
        .await
        .map_err(with("Error creating call"))?;
    Ok((
        StatusCode::CREATED,
        AxumJson(Created {
            id,
            message: "Voice call record created successfully".into(),
        }),
    ))
}

/// A campaign's voice calls, newest first.
#[utoipa::path(get, operation_id = "voice_calls_of_campaign", path = "/api/voice-calls/{companyId}/campaigns/{campaignId}/calls", tag = "voice-calls",
    params(("companyId" = String, Path), ("campaignId" = String, Path), PageQuery), security(("bearer" = [])),
    responses((status = 200, body = [VoiceCall]), (status = 401, body = crate::error::ErrorBody), (status = 404, body = VoiceError)))]
pub async fn of_campaign(
    State(st): State<AppState>,
    auth: Auth,
    Path((company_id, campaign_id)): Path<(String, String)>,
    q: Query<PageQuery>,
) -> VResult<AxumJson<Vec<VoiceCall>>> {
    company(&auth, &company_id)?;
    super::check_id(&campaign_id, "campaign")?;
    Ok(AxumJson(
        st.store
            .voice_calls_of_campaign(
                &auth.tenant_id,
                &campaign_id,
                q.page.unwrap_or(1),
                q.limit.unwrap_or(10),
            )
            .await?,
    ))
}

/// A lead's voice calls, newest first.
#[utoipa::path(get, operation_id = "voice_calls_of_lead", path = "/api/voice-calls/{companyId}/leads/{leadid}/calls", tag = "voice-calls",
    params(("companyId" = String, Path), ("leadid" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = [VoiceCall]), (status = 401, body = crate::error::ErrorBody), (status = 404, body = VoiceError)))]
pub async fn of_lead(
    State(st): State<AppState>,
    auth: Auth,
    Path((company_id, lead_id)): Path<(String, String)>,
) -> VResult<AxumJson<Vec<VoiceCall>>> {
    company(&auth, &company_id)?;
    super::check_id(&lead_id, "lead")?;
    Ok(AxumJson(
        st.store
            .voice_calls_of_lead(&auth.tenant_id, &lead_id)
            .await?,
    ))
}

/// One voice call.
#[utoipa::path(get, operation_id = "voice_calls_get", path = "/api/voice-calls/{companyId}/calls/{id}", tag = "voice-calls",
    params(("companyId" = String, Path), ("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = VoiceCall), (status = 401, body = crate::error::ErrorBody), (status = 404, body = VoiceError)))]
pub async fn get(
    State(st): State<AppState>,
    auth: Auth,
    Path((company_id, id)): Path<(String, String)>,
) -> VResult<AxumJson<VoiceCall>> {
    company(&auth, &company_id)?;
    Ok(AxumJson(
        st.store
            .voice_call(&auth.tenant_id, super::check_id(&id, "call")?)
            .await?,
    ))
}

/// Update a voice call.
#[utoipa::path(put, operation_id = "voice_calls_update", path = "/api/voice-calls/{companyId}/calls/{id}", tag = "voice-calls",
    params(("companyId" = String, Path), ("id" = String, Path)), request_body = VoiceCallInput, security(("bearer" = [])),
    responses((status = 200, body = VoiceCall), (status = 400, body = VoiceError), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = VoiceError)))]
pub async fn update(
    State(st): State<AppState>,
    auth: Auth,
    Path((company_id, id)): Path<(String, String)>,
    body: Result<Json<VoiceCallInput>, ApiError>,
) -> VResult<AxumJson<VoiceCall>> {
    company(&auth, &company_id)?;
    auth.require(Role::Agent)?;
    let Json(b) = body.map_err(|e| Fail(e, "Error updating call"))?;
    let id = super::check_id(&id, "call")?;
    Ok(AxumJson(
        st.store
            .voice_call_update(&auth.tenant_id, id, b, Some(&auth.user_id))
            .await
            .map_err(with("Error updating call"))?,
    ))
}

/// Soft delete: the call leaves every list and get (supervisor and up).
#[utoipa::path(delete, operation_id = "voice_calls_delete", path = "/api/voice-calls/{companyId}/calls/{id}", tag = "voice-calls",
    params(("companyId" = String, Path), ("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Deleted), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = VoiceError)))]
pub async fn delete(
    State(st): State<AppState>,
    auth: Auth,
    Path((company_id, id)): Path<(String, String)>,
) -> VResult<AxumJson<Deleted>> {
    company(&auth, &company_id)?;
    auth.require(Role::Supervisor)?;
    st.store
        .voice_call_delete(
            &auth.tenant_id,
            super::check_id(&id, "call")?,
            Some(&auth.user_id),
        )
        .await?;
    Ok(AxumJson(Deleted {
        message: "Voice call record deleted successfully".into(),
    }))
}
