//! Who is calling: the bearer token, verified, as an extractor; and role checks.
//!
//! Permissions (roles are ordered owner > admin > supervisor > agent > viewer):
//! reading campaigns, leads, agents, groups and DNC: every role; changing campaigns,
//! leads, agents and groups: supervisor and up; adding a DNC number: agent and up (a
//! person asks not to be called during a call); removing one, reading the audit log and
//! adding users: admin and up; an agent may set its own status and read its own stats.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use switchboard_engine::tenancy::Role;

use crate::error::{ApiError, ApiResult};
use crate::jwt::{self, Claims, TokenError};
use crate::AppState;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Auth {
    pub user_id: String,
    pub tenant_id: String,
    pub role: Role,
}

impl Auth {
    /// 403 unless the caller's role is at least `min`.
    pub fn require(&self, min: Role) -> ApiResult<()> {
        if self.role >= min {
            Ok(())
        } else {
            Err(ApiError::Forbidden("your role does not allow this"))
        }
    }
}

/// The bearer token of a request, if it carries one.
pub fn bearer(parts: &Parts) -> Option<&str> {
    bearer_token(&parts.headers)
}

/// The token of an `Authorization: Bearer ...` header (scheme case-insensitive).
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Verifies a token with the state's secret at the current time.
pub fn verify(state: &AppState, token: &str) -> Result<Claims, TokenError> {
    jwt::verify(
        token,
        &state.config.jwt_secret,
        chrono::Utc::now().timestamp(),
    )
}

/// Authenticates from request headers (for handlers that authenticate only sometimes).
pub fn from_headers(state: &AppState, headers: &axum::http::HeaderMap) -> ApiResult<Auth> {
    let token = bearer_token(headers).ok_or(ApiError::Unauthorized("missing bearer token"))?;
    auth_from_token(state, token)
}

pub(crate) fn auth_from_token(state: &AppState, token: &str) -> ApiResult<Auth> {
    let claims = verify(state, token).map_err(|e| match e {
        TokenError::Expired => ApiError::Unauthorized("token expired"),
        _ => ApiError::Unauthorized("invalid token"),
    })?;
    let role = Role::parse(&claims.role).ok_or(ApiError::Unauthorized("invalid token"))?;
    Ok(Auth {
        user_id: claims.sub,
        tenant_id: claims.tid,
        role,
    })
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(auth) = parts.extensions.get::<Auth>() {
            return Ok(auth.clone());
        }
        let token = bearer(parts).ok_or(ApiError::Unauthorized("missing bearer token"))?;
        let auth = auth_from_token(state, token)?;
        parts.extensions.insert(auth.clone());
        Ok(auth)
    }
}

/// Issues a token for a user.
pub fn issue(state: &AppState, user: &switchboard_engine::tenancy::User) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: user.id.clone(),
        tid: user.tenant_id.clone(),
        role: user.role.clone(),
        iat: now,
        exp: now + state.config.token_ttl.as_secs() as i64,
    };
    jwt::sign(&claims, &state.config.jwt_secret)
}
