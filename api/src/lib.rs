//! Switchboard's REST API: axum routers over the engine's store, bearer-JWT auth, rate
//! limits, and the OpenAPI document generated from the handlers themselves.
//!
//! `router(state)` builds everything; the binary serves it with `axum::serve`.

pub mod auth;
pub mod error;
pub mod json;
pub mod jwt;
pub mod limit;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod password;
pub mod routes;
pub mod web;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::DefaultBodyLimit;
use axum::Router;
use switchboard_engine::events::EventBus;
use switchboard_engine::Store;

pub use error::{ApiError, ApiResult};

/// Settings of the API (filled from the binary's configuration).
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// HS256 key for tokens.
    pub jwt_secret: Vec<u8>,
    /// How long a token is valid.
    pub token_ttl: Duration,
    /// Requests per minute per authenticated user (0 = unlimited).
    pub rate_limit_per_user: u32,
    /// Requests per minute per client IP (0 = unlimited).
    pub rate_limit_per_ip: u32,
    /// Failed logins allowed per e-mail and per IP in 15 minutes.
    pub login_attempts: u32,
    /// Largest CSV upload.
    pub upload_max_bytes: u64,
    /// Largest JSON body.
    pub json_max_bytes: usize,
    /// Allowed CORS origins (`*` for any); empty = same-origin only.
    pub cors_origins: Vec<String>,
    /// Country for national numbers when nothing else says.
    pub default_country: String,
    /// Where uploads are spooled while they are imported.
    pub spool_dir: PathBuf,
    /// Whether anyone may register a new tenant.
    pub allow_signup: bool,
    /// Largest recording upload.
    pub recording_max_bytes: u64,
    /// Lifetime of signed recording download links.
    pub signed_url_ttl: Duration,
}

impl ApiConfig {
    /// Defaults with the given secret and spool directory.
    pub fn new(jwt_secret: Vec<u8>, spool_dir: PathBuf) -> Self {
        Self {
            jwt_secret,
            token_ttl: Duration::from_secs(24 * 3600),
            rate_limit_per_user: 100,
            rate_limit_per_ip: 600,
            login_attempts: 5,
            upload_max_bytes: 50 * 1024 * 1024,
            json_max_bytes: 1024 * 1024,
            cors_origins: Vec::new(),
            default_country: "US".into(),
            spool_dir,
            allow_signup: true,
            recording_max_bytes: 100 * 1024 * 1024,
            signed_url_ttl: Duration::from_secs(15 * 60),
        }
    }
}

/// Limiters shared by all requests.
#[derive(Debug)]
pub struct Limits {
    pub per_user: limit::Gcra,
    pub per_ip: limit::Gcra,
    pub login: limit::Gcra,
}

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    /// Where handlers publish what people watch live.
    pub events: EventBus,
    /// Where recording files live (`None` when the storage could not be opened).
    pub recordings: Option<switchboard_recordings::RecordingStore>,
    pub config: Arc<ApiConfig>,
    pub limits: Arc<Limits>,
    pub started: Instant,
    /// HTTP request metrics for `/metrics`.
    pub http_metrics: Arc<metrics::HttpMetrics>,
    /// More exposition text for `/metrics` (the binary adds the WebSocket hub's).
    pub extra_metrics: ExtraMetrics,
    /// The SIP side (trunk registrations, OPTIONS tests); `None` when not running, and the
    /// `/api/sip/*` routes that need it answer 503.
    pub telephony: Option<Arc<switchboard_engine::telephony::Telephony>>,
    /// The dialing engine, when one runs in this process (preview dialing goes through it).
    pub dialer: Option<switchboard_engine::runner::Dialer>,
}

/// A renderer of more Prometheus text.
#[derive(Clone, Default)]
pub struct ExtraMetrics(pub Option<Arc<dyn Fn() -> String + Send + Sync>>);

impl std::fmt::Debug for ExtraMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ExtraMetrics(set)"
        } else {
            "ExtraMetrics(none)"
        })
    }
}

impl AppState {
    pub fn new(store: Store, config: ApiConfig) -> Self {
        let minute = Duration::from_secs(60);
        let limits = Limits {
            per_user: limit::Gcra::new(config.rate_limit_per_user, minute),
            per_ip: limit::Gcra::new(config.rate_limit_per_ip, minute),
            login: limit::Gcra::new(config.login_attempts, Duration::from_secs(15 * 60)),
        };
        Self {
            store,
            events: EventBus::default(),
            recordings: switchboard_recordings::RecordingStore::new(
                &switchboard_recordings::StorageConfig::Local {
                    root: config.spool_dir.join("recordings"),
                },
            )
            .map_err(|e| tracing::error!(error = %e, "recording storage unavailable"))
            .ok(),
            config: Arc::new(config),
            limits: Arc::new(limits),
            started: Instant::now(),
            http_metrics: Arc::new(metrics::HttpMetrics::default()),
            extra_metrics: ExtraMetrics::default(),
            telephony: None,
            dialer: None,
        }
    }
}

impl AppState {
    /// Adds exposition text to `/metrics`.
    pub fn with_extra_metrics(mut self, f: Arc<dyn Fn() -> String + Send + Sync>) -> Self {
        self.extra_metrics = ExtraMetrics(Some(f));
        self
    }

    /// Uses this recording storage (the binary opens the configured one).
    pub fn with_recordings(mut self, store: switchboard_recordings::RecordingStore) -> Self {
        self.recordings = Some(store);
        self
    }

    /// Lets the API drive the dialing engine (preview dialing).
    pub fn with_dialer(mut self, dialer: switchboard_engine::runner::Dialer) -> Self {
        self.dialer = Some(dialer);
        self
    }

    /// Shares an event bus (the binary gives the API and the WebSocket hub the same one).
    pub fn with_events(mut self, events: EventBus) -> Self {
        self.events = events;
        self
    }

    /// Serves `/api/sip/*` through this telephony service.
    pub fn with_telephony(
        mut self,
        telephony: Arc<switchboard_engine::telephony::Telephony>,
    ) -> Self {
        self.telephony = Some(telephony);
        self
    }

    /// The user, tenant and role of a valid token.
    pub fn principal(
        &self,
        token: &str,
    ) -> Option<(String, String, switchboard_engine::tenancy::Role)> {
        let claims = auth::verify(self, token).ok()?;
        let role = switchboard_engine::tenancy::Role::parse(&claims.role)?;
        Some((claims.sub, claims.tid, role))
    }
}

/// The whole HTTP surface: `/api/*`, `/api/openapi.json`, `/docs`, the pages `/` and `/agent`.
pub fn router(state: AppState) -> Router {
    let (api, doc) = routes::api_router().split_for_parts();
    let doc = Arc::new(doc);
    let mut app = Router::new()
        .merge(api)
        .merge(openapi::router(doc))
        .merge(web::router())
        .route("/metrics", axum::routing::get(prometheus))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::rate_limit,
        ))
        .layer(DefaultBodyLimit::max(state.config.json_max_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::trace,
        ));
    for layer in middleware::security_headers() {
        app = app.layer(layer);
    }
    if let Some(cors) = middleware::cors(&state.config.cors_origins) {
        app = app.layer(cors);
    }
    app.with_state(state)
}

/// `GET /metrics`: Prometheus text (no token: expose it to trusted networks only; the
/// default bind is 127.0.0.1).
async fn prometheus(
    axum::extract::State(st): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use std::fmt::Write;
    let mut out = st.http_metrics.render();
    out.push_str(
        "# HELP switchboard_calls Live calls by status.\n# TYPE switchboard_calls gauge\n",
    );
    match st.store.calls_by_status().await {
        Ok(rows) => {
            for (status, n) in rows {
                let _ = writeln!(
                    out,
                    "switchboard_calls{{status=\"{}\"}} {n}",
                    metrics::escape(&status)
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: calls by status unavailable"),
    }
    let _ = writeln!(out, "# HELP switchboard_event_subscribers Event bus subscribers.\n# TYPE switchboard_event_subscribers gauge\nswitchboard_event_subscribers {}", st.events.subscribers());
    let _ = writeln!(out, "# HELP switchboard_uptime_seconds Seconds since start.\n# TYPE switchboard_uptime_seconds gauge\nswitchboard_uptime_seconds {}", st.started.elapsed().as_secs());
    if let Some(extra) = &st.extra_metrics.0 {
        out.push_str(&extra());
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

/// The OpenAPI document (for `switchboard openapi` and tests).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    routes::api_router().split_for_parts().1
}
