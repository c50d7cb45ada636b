//! `/api/health`: liveness with the database's state (no token needed).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as AxumJson;
use serde::Serialize;

use crate::AppState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// ok | degraded
    pub status: &'static str,
    /// ok | unreachable
    pub database: &'static str,
    /// sqlite | postgres
    pub database_backend: &'static str,
    pub version: &'static str,
    pub uptime_seconds: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthResponse {
    pub success: bool,
    pub data: Health,
}

/// 200 when the database answers, 503 otherwise.
#[utoipa::path(operation_id = "health_health", get, path = "/api/health", tag = "health", responses((status = 200, body = HealthResponse), (status = 503, body = HealthResponse)))]
pub async fn health(State(st): State<AppState>) -> (StatusCode, AxumJson<HealthResponse>) {
    let db_ok = tokio::time::timeout(std::time::Duration::from_secs(2), st.store.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let data = Health {
        status: if db_ok { "ok" } else { "degraded" },
        database: if db_ok { "ok" } else { "unreachable" },
        database_backend: match st.store.backend() {
            switchboard_engine::Backend::Sqlite => "sqlite",
            switchboard_engine::Backend::Postgres => "postgres",
        },
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: st.started.elapsed().as_secs(),
    };
    let code = if db_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        AxumJson(HealthResponse {
            success: db_ok,
            data,
        }),
    )
}
