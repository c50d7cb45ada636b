//! Every route, registered with its OpenAPI description (utoipa-axum), so the document
//! lists exactly what the router serves.
//!
//! Response shape: the design's envelope (`success`, `data`, `pagination` for lists,
//! `message`) plus the keys the seed specs show at the top level (`campaign`, `campaigns`,
//! `count`, `token`, `user`, `results`, ...), so clients of either read what they expect.

pub mod agents;
pub mod audit;
pub mod auth;
pub mod calls;
pub mod campaigns;
pub mod dnc;
pub mod health;
pub mod leads;
pub mod monitoring;
pub mod recordings;
pub mod sip;
pub mod voice_calls;

use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult};
use crate::openapi::ApiDoc;
use crate::AppState;

/// Builds the API routes and their OpenAPI document.
pub fn api_router() -> OpenApiRouter<AppState> {
    use utoipa::OpenApi;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::me))
        .routes(routes!(campaigns::list, campaigns::create))
        .routes(routes!(campaigns::get, campaigns::update))
        .routes(routes!(campaigns::start))
        .routes(routes!(campaigns::pause))
        .routes(routes!(leads::list))
        .routes(routes!(leads::get, leads::update))
        .routes(routes!(leads::template))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(leads::upload))
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .routes(routes!(dnc::list, dnc::add))
        .routes(routes!(dnc::remove))
        .routes(routes!(agents::list, agents::create))
        .routes(routes!(agents::get))
        .routes(routes!(agents::set_status))
        .routes(routes!(
            agents::get_sip,
            agents::set_sip,
            agents::delete_sip
        ))
        .routes(routes!(agents::stats))
        .routes(routes!(agents::list_groups, agents::create_group))
        .routes(routes!(
            agents::get_group,
            agents::update_group,
            agents::delete_group
        ))
        .routes(routes!(audit::list))
        .routes(routes!(calls::list, calls::create))
        .routes(routes!(calls::get, calls::update, calls::patch))
        .routes(routes!(calls::transcript))
        .routes(routes!(calls::start))
        .routes(routes!(calls::control_update))
        .routes(routes!(calls::end))
        .routes(routes!(calls::stats))
        .routes(routes!(calls::stats_summary))
        .routes(routes!(calls::stats_by_disposition))
        .routes(routes!(calls::analytics))
        .routes(routes!(calls::audit))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(
                    recordings::upload,
                    recordings::get,
                    recordings::delete
                ))
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .routes(routes!(recordings::list))
        .routes(routes!(recordings::signed_download))
        .routes(routes!(voice_calls::create, voice_calls::of_campaign))
        .routes(routes!(voice_calls::of_lead))
        .routes(routes!(
            voice_calls::get,
            voice_calls::update,
            voice_calls::delete
        ))
        .routes(routes!(health::health))
        .routes(routes!(monitoring::realtime))
        .routes(routes!(monitoring::monitoring))
        .routes(routes!(sip::configure))
        .routes(routes!(sip::settings))
        .routes(routes!(sip::test))
        .routes(routes!(sip::status))
        .routes(routes!(sip::register))
        .routes(routes!(sip::providers))
        .routes(routes!(sip::delete_trunk))
        .routes(routes!(sip::health))
}

/// Offset pagination of a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Pagination {
    pub limit: i64,
    pub offset: i64,
    pub total: i64,
}

/// Query of list endpoints.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    /// 1..=100, default 50.
    pub limit: Option<i64>,
    /// Default 0.
    pub offset: Option<i64>,
}

/// Answers 404 for ids that cannot exist (not a UUID) without asking the database.
pub fn check_id<'a>(id: &'a str, entity: &'static str) -> ApiResult<&'a str> {
    if uuid::Uuid::parse_str(id).is_ok() {
        Ok(id)
    } else {
        Err(ApiError::NotFound { entity })
    }
}

/// A single-resource response: `{success, message?, data, <key>}`.
macro_rules! one_response {
    ($name:ident, $key:ident, $ty:ty) => {
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            pub success: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub message: Option<String>,
            pub data: $ty,
            pub $key: $ty,
        }
        impl $name {
            pub fn new(v: $ty) -> Self {
                Self {
                    success: true,
                    message: None,
                    $key: v.clone(),
                    data: v,
                }
            }
            pub fn with_message(v: $ty, m: &str) -> Self {
                Self {
                    message: Some(m.to_string()),
                    ..Self::new(v)
                }
            }
        }
    };
}
pub(crate) use one_response;

/// A list response: `{success, data, pagination, <key>, count}`.
macro_rules! list_response {
    ($name:ident, $key:ident, $ty:ty) => {
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            pub success: bool,
            pub data: Vec<$ty>,
            pub pagination: $crate::routes::Pagination,
            pub $key: Vec<$ty>,
            pub count: usize,
            pub total: i64,
        }
        impl $name {
            pub fn new(items: Vec<$ty>, limit: i64, offset: i64, total: i64) -> Self {
                Self {
                    success: true,
                    count: items.len(),
                    $key: items.clone(),
                    data: items,
                    pagination: $crate::routes::Pagination {
                        limit,
                        offset,
                        total,
                    },
                    total,
                }
            }
        }
    };
}
pub(crate) use list_response;

/// `{success, message}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageResponse {
    pub success: bool,
    pub message: String,
}
