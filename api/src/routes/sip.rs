//! `/api/sip/*` (the cold-caller spec's SIP trunk configuration) and `/api/health/sip`.
//!
//! Bodies and responses use the spec's camelCase names. A tenant has several trunks, tried by
//! the dialer in failover order (`priority` ascending). `POST /api/sip/configure` creates or
//! updates: with `id` that trunk; without, the tenant's trunk of the same `name` (default
//! `"<Provider> <server>"`), else a new one. Passwords are write-only (`hasPassword` says one
//! is stored). Configure, test, register and delete need admin or above; reads need
//! supervisor or above. Without a running telephony service the routes that need it answer
//! 503.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json as AxumJson;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_engine::telephony::{
    Provider, SipSummary, Telephony, Trunk, TrunkInput, TrunkStatus, TrunkTestInput,
    TrunkTestReport, PROVIDERS,
};
use switchboard_engine::tenancy::Role;

use super::{check_id, MessageResponse};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::AppState;

/// The running telephony service, or 503.
pub(crate) fn telephony(st: &AppState) -> ApiResult<&Arc<Telephony>> {
    st.telephony.as_ref().ok_or(ApiError::ServiceUnavailable(
        "SIP telephony is not running on this server (see the sip_bind setting and the server log)",
    ))
}

/// A body that may be absent: empty means the default, else JSON.
fn optional_body<T: Default + serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.contains("+json"));
    if !is_json {
        return Err(ApiError::BadRequest(
            "expected Content-Type: application/json".into(),
        ));
    }
    crate::json::parse(body)
}

/// `POST /api/sip/configure` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConfigureResponse {
    pub success: bool,
    pub message: String,
    /// True when a new trunk was created (201), false when one was updated (200).
    pub created: bool,
    pub data: Trunk,
    pub trunk: Trunk,
    /// The registration status right after applying (`registering` while the first REGISTER
    /// is under way).
    pub status: TrunkStatus,
}

/// Create or update a SIP trunk and apply it (re-register) at once.
#[utoipa::path(operation_id = "sip_configure", post, path = "/api/sip/configure", tag = "sip", request_body = TrunkInput, security(("bearer" = [])),
    responses((status = 200, body = ConfigureResponse), (status = 201, body = ConfigureResponse), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)))]
pub async fn configure(
    State(st): State<AppState>,
    auth: Auth,
    Json(input): Json<TrunkInput>,
) -> ApiResult<(StatusCode, AxumJson<ConfigureResponse>)> {
    auth.require(Role::Admin)?;
    let tel = telephony(&st)?;
    if let Some(id) = &input.id {
        check_id(id, "trunk")?;
    }
    let password_changed = !input.password.is_absent();
    let (trunk, created) = st
        .store
        .configure_trunk(&auth.tenant_id, input, tel.secrets())
        .await?;
    tel.apply(&auth.tenant_id, &trunk.id).await?;
    let status = tel.trunk_status(&auth.tenant_id, &trunk.id).await?;
    st.store
        .audit(
            &auth.tenant_id,
            Some(&auth.user_id),
            if created {
                "sip_trunk.create"
            } else {
                "sip_trunk.update"
            },
            "sip_trunk",
            Some(&trunk.id),
            json!({"name": trunk.name, "provider": trunk.provider, "server": trunk.server_addr(), "enabled": trunk.enabled, "register": trunk.register, "passwordChanged": password_changed}),
        )
        .await?;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        AxumJson(ConfigureResponse {
            success: true,
            message: if created {
                "SIP trunk created".into()
            } else {
                "SIP trunk updated".into()
            },
            created,
            data: trunk.clone(),
            trunk,
            status,
        }),
    ))
}

/// `GET /api/sip/settings` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SettingsResponse {
    pub success: bool,
    pub data: Vec<Trunk>,
    pub trunks: Vec<Trunk>,
    pub count: usize,
}

/// The tenant's trunks in failover order (passwords never returned: see `hasPassword`).
#[utoipa::path(operation_id = "sip_settings", get, path = "/api/sip/settings", tag = "sip", security(("bearer" = [])),
    responses((status = 200, body = SettingsResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn settings(
    State(st): State<AppState>,
    auth: Auth,
) -> ApiResult<AxumJson<SettingsResponse>> {
    auth.require(Role::Supervisor)?;
    let trunks = st.store.trunks(&auth.tenant_id).await?;
    Ok(AxumJson(SettingsResponse {
        success: true,
        count: trunks.len(),
        data: trunks.clone(),
        trunks,
    }))
}

/// `POST /api/sip/test` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestResponse {
    pub success: bool,
    pub message: String,
    pub data: TrunkTestReport,
    pub result: TrunkTestReport,
}

/// OPTIONS ping (latency and result) to a trunk — the given one, unsaved settings, or the
/// first in failover order when the body is empty — with an optional REGISTER proof.
#[utoipa::path(operation_id = "sip_test", post, path = "/api/sip/test", tag = "sip", request_body(content = Option<TrunkTestInput>, description = "optional; empty tests the first trunk"), security(("bearer" = [])),
    responses((status = 200, body = TestResponse), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)))]
pub async fn test(
    State(st): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<AxumJson<TestResponse>> {
    auth.require(Role::Admin)?;
    let input: TrunkTestInput = optional_body(&headers, &body)?;
    let tel = telephony(&st)?;
    if let Some(id) = &input.id {
        check_id(id, "trunk")?;
    }
    let report = tel.test(&auth.tenant_id, input).await?;
    let message = match (&report.options.status, report.ok) {
        (Some(code), true) => format!(
            "the server answered OPTIONS with {code} in {:.0} ms",
            report.options.latency_ms.unwrap_or_default()
        ),
        (Some(code), false) => {
            format!("the server answered OPTIONS with {code}, but the registration failed")
        }
        (None, _) => format!("the server did not answer: {}", report.options.reason),
    };
    Ok(AxumJson(TestResponse {
        success: true,
        message,
        data: report.clone(),
        result: report,
    }))
}

/// `GET /api/sip/status` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatusResponse {
    pub success: bool,
    /// True when at least one trunk is registered.
    pub registered: bool,
    pub data: Vec<TrunkStatus>,
    pub trunks: Vec<TrunkStatus>,
}

/// The registration status of each of the tenant's trunks, in failover order.
#[utoipa::path(operation_id = "sip_status", get, path = "/api/sip/status", tag = "sip", security(("bearer" = [])),
    responses((status = 200, body = StatusResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)))]
pub async fn status(State(st): State<AppState>, auth: Auth) -> ApiResult<AxumJson<StatusResponse>> {
    auth.require(Role::Supervisor)?;
    let tel = telephony(&st)?;
    let trunks = tel.status(&auth.tenant_id).await?;
    Ok(AxumJson(StatusResponse {
        success: true,
        registered: trunks.iter().any(|t| t.registered),
        data: trunks.clone(),
        trunks,
    }))
}

/// Body of `POST /api/sip/register`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterInput {
    /// The trunk; default: every enabled trunk that registers.
    pub id: Option<String>,
}

/// Register a trunk (or all of the tenant's registering trunks) anew now; answers with the
/// outcome once known (or `registering` after a bounded wait).
#[utoipa::path(operation_id = "sip_register", post, path = "/api/sip/register", tag = "sip", request_body(content = Option<RegisterInput>, description = "optional; empty re-registers every trunk"), security(("bearer" = [])),
    responses((status = 200, body = StatusResponse), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)))]
pub async fn register(
    State(st): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<AxumJson<StatusResponse>> {
    auth.require(Role::Admin)?;
    let input: RegisterInput = optional_body(&headers, &body)?;
    let tel = telephony(&st)?;
    let trunks = match &input.id {
        Some(id) => {
            check_id(id, "trunk")?;
            vec![tel.reregister(&auth.tenant_id, id).await?]
        }
        None => tel.reregister_all(&auth.tenant_id).await?,
    };
    Ok(AxumJson(StatusResponse {
        success: true,
        registered: trunks.iter().any(|t| t.registered),
        data: trunks.clone(),
        trunks,
    }))
}

/// Remove a trunk (its registration is removed first).
#[utoipa::path(operation_id = "sip_delete_trunk", delete, path = "/api/sip/trunks/{id}", tag = "sip", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = MessageResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)))]
pub async fn delete_trunk(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<AxumJson<MessageResponse>> {
    auth.require(Role::Admin)?;
    let tel = telephony(&st)?;
    check_id(&id, "trunk")?;
    let trunk = st.store.trunk(&auth.tenant_id, &id).await?;
    st.store.delete_trunk(&auth.tenant_id, &id).await?;
    tel.apply(&auth.tenant_id, &id).await?;
    st.store
        .audit(
            &auth.tenant_id,
            Some(&auth.user_id),
            "sip_trunk.delete",
            "sip_trunk",
            Some(&id),
            json!({"name": trunk.name, "server": trunk.server_addr()}),
        )
        .await?;
    Ok(AxumJson(MessageResponse {
        success: true,
        message: "SIP trunk deleted".into(),
    }))
}

/// `GET /api/sip/providers` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProvidersResponse {
    pub success: bool,
    pub data: Vec<Provider>,
    pub providers: Vec<Provider>,
    /// What the engine speaks.
    pub transports: Vec<&'static str>,
}

/// Supported providers with their usual server, port, transport and whether they register.
#[utoipa::path(operation_id = "sip_providers", get, path = "/api/sip/providers", tag = "sip", security(("bearer" = [])),
    responses((status = 200, body = ProvidersResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn providers(auth: Auth) -> ApiResult<AxumJson<ProvidersResponse>> {
    auth.require(Role::Supervisor)?;
    Ok(AxumJson(ProvidersResponse {
        success: true,
        data: PROVIDERS.to_vec(),
        providers: PROVIDERS.to_vec(),
        transports: vec!["udp", "tcp"],
    }))
}

/// `GET /api/health/sip` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SipHealthResponse {
    pub success: bool,
    /// ok | degraded | down | unavailable (no telephony service)
    pub status: &'static str,
    pub data: Option<SipSummary>,
}

/// Registration states over every trunk the server registers (counts only, no token needed):
/// 200 when ok or degraded, 503 when every registration fails or SIP is not running.
#[utoipa::path(operation_id = "sip_health", get, path = "/api/health/sip", tag = "health",
    responses((status = 200, body = SipHealthResponse), (status = 503, body = SipHealthResponse)))]
pub async fn health(State(st): State<AppState>) -> (StatusCode, AxumJson<SipHealthResponse>) {
    match &st.telephony {
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            AxumJson(SipHealthResponse {
                success: false,
                status: "unavailable",
                data: None,
            }),
        ),
        Some(tel) => {
            let summary = tel.summary();
            let up = summary.status != "down";
            (
                if up {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                },
                AxumJson(SipHealthResponse {
                    success: up,
                    status: summary.status,
                    data: Some(summary),
                }),
            )
        }
    }
}
