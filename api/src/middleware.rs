//! Cross-cutting layers: per-IP and per-user rate limits, request tracing with the matched
//! route, security headers, CORS.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::ApiError;
use crate::AppState;

/// The client's address as seen by the socket (no proxy headers are trusted).
pub fn client_ip(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "local".to_string())
}

/// The client's IP as an extractor.
pub struct ClientIp(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string())
                .unwrap_or_else(|| "local".to_string()),
        ))
    }
}

/// 429 with Retry-After when the caller's IP or user is over its limit.
pub async fn rate_limit(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let now = Instant::now();
    let ip = client_ip(&req);
    if let Err(wait) = state.limits.per_ip.check(&ip, now) {
        return ApiError::TooManyRequests {
            retry_after_secs: wait.as_secs().max(1),
        }
        .into_response();
    }
    // Verify once here; the `Auth` extractor reuses what this stores.
    let auth = crate::auth::bearer_token(req.headers())
        .and_then(|t| crate::auth::auth_from_token(&state, t).ok());
    if let Some(auth) = auth {
        if let Err(wait) = state.limits.per_user.check(&auth.user_id, now) {
            return ApiError::TooManyRequests {
                retry_after_secs: wait.as_secs().max(1),
            }
            .into_response();
        }
        req.extensions_mut().insert(auth);
    }
    next.run(req).await
}

/// One structured log line per request, with the matched route (never the raw path, which
/// may carry phone numbers).
pub async fn trace(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "<unmatched>".into());
    let resp = next.run(req).await;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let status = resp.status().as_u16();
    state
        .http_metrics
        .record(method.as_str(), &route, status, ms / 1000.0);
    if ms > 1000.0 {
        state.events.publish(switchboard_engine::events::Event {
            tenant_id: None,
            channel: switchboard_engine::events::Channel::Performance,
            kind: "slowRequest",
            agent_id: None,
            data: serde_json::json!({"method": method.as_str(), "route": route, "status": status, "durationMs": ms}),
            at: chrono::Utc::now(),
        });
    }
    if ms > 1000.0 {
        tracing::warn!(%method, route, status, ms, "slow request");
    } else {
        tracing::info!(%method, route, status, ms, "request");
    }
    resp
}

/// Security headers on every response.
pub fn security_headers() -> [SetResponseHeaderLayer<HeaderValue>; 5] {
    [
        SetResponseHeaderLayer::if_not_present(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'"),
        ),
        SetResponseHeaderLayer::if_not_present(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin")),
    ]
}

/// CORS for the configured origins (`*` for any); none configured → same-origin only.
pub fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .max_age(std::time::Duration::from_secs(600)),
    )
}
