//! The OpenAPI document (generated from the handlers' annotations) and `/docs`, a small
//! interactive page of our own that reads it and sends requests (no CDN, works offline).

use std::sync::Arc;

use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::Modify;

use crate::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Switchboard API", description = "Real-time outbound dialer engine: campaigns, leads, agents, DNC. Bearer JWT from /api/auth/login on everything but /api/auth/* and /api/health."),
    modifiers(&BearerScheme),
    tags(
        (name = "auth", description = "Register, log in, who am I"),
        (name = "campaigns", description = "What to dial, when, how fast"),
        (name = "leads", description = "Who to dial; CSV import"),
        (name = "dnc", description = "Numbers never to dial"),
        (name = "agents", description = "Who takes the calls, and their groups"),
        (name = "calls", description = "Call records, call control, stats and analytics"),
        (name = "recordings", description = "Recording files: upload, metadata, ranged and signed downloads"),
        (name = "voice-calls", description = "The voice-calls spec: its own shapes, no envelope; errors are {message, error}"),
        (name = "audit", description = "Who changed what"),
        (name = "sip", description = "SIP trunks: configuration (sealed passwords), registration status, OPTIONS tests, providers"),
        (name = "health", description = "Liveness"),
    )
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// `/api/openapi.json`, `/docs`, `/docs/app.js`.
pub fn router(doc: Arc<utoipa::openapi::OpenApi>) -> Router<AppState> {
    Router::new()
        .route(
            "/api/openapi.json",
            get(move || async move { Json(doc.as_ref().clone()) }),
        )
        .route(
            "/docs",
            get(|| async { Html(include_str!("../assets/docs.html")) }),
        )
        .route(
            "/docs/app.css",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
                    include_str!("../assets/docs.css"),
                )
                    .into_response()
            }),
        )
        .route(
            "/docs/app.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    include_str!("../assets/docs.js"),
                )
                    .into_response()
            }),
        )
}
