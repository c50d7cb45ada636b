//! `/api/auth/*`: register, login, me.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::Json as AxumJson;
use serde::{Deserialize, Serialize};
use switchboard_engine::tenancy::{NewUser, Role, Tenant, User};
use switchboard_engine::validate::{is_e164, is_email, Issues};

use crate::auth::{issue, Auth};
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::middleware::ClientIp;
use crate::{password, AppState};

/// Body of `POST /api/auth/register`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    pub email: String,
    /// 8..=128 characters with a letter and a digit.
    pub password: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    /// Into an existing tenant: owner | admin | supervisor | agent | viewer (default agent).
    /// A new tenant's first user is always its owner.
    pub role: Option<String>,
    /// Join this tenant (needs an owner/admin token of it); absent = create a new tenant.
    pub tenant_id: Option<String>,
    /// Name of the new tenant (default: the e-mail's domain).
    pub tenant_name: Option<String>,
}

/// Body of `POST /api/auth/login`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginBody {
    pub email: String,
    pub password: String,
}

/// The public view of a user.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub role: String,
    pub tenant_id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.clone(),
            email: u.email.clone(),
            role: u.role.clone(),
            tenant_id: u.tenant_id.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenData {
    pub token: String,
    pub user: UserView,
}

/// The dialer spec's auth response (token and user at the top level) plus `data`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuthResponse {
    pub success: bool,
    pub message: String,
    pub token: String,
    pub user: UserView,
    pub data: TokenData,
}

impl AuthResponse {
    fn new(message: &str, token: String, user: UserView) -> Self {
        Self {
            success: true,
            message: message.into(),
            data: TokenData {
                token: token.clone(),
                user: user.clone(),
            },
            token,
            user,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MeData {
    pub user: User,
    pub tenant: Tenant,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MeResponse {
    pub success: bool,
    pub data: MeData,
    pub user: User,
}

async fn hash_blocking(pw: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(|e| ApiError::Internal(Box::new(e)))?
        .map_err(|e| ApiError::Internal(e.to_string().into()))
}

async fn verify_blocking(pw: String, phc: String) -> ApiResult<bool> {
    tokio::task::spawn_blocking(move || password::verify(&pw, &phc))
        .await
        .map_err(|e| ApiError::Internal(Box::new(e)))
}

/// Register a user: a new tenant with its owner, or (with an owner/admin token) a user of
/// that tenant.
#[utoipa::path(operation_id = "auth_register", post, path = "/api/auth/register", tag = "auth", request_body = RegisterBody,
    responses((status = 201, body = AuthResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn register(
    State(st): State<AppState>,
    headers: HeaderMap,
    Json(b): Json<RegisterBody>,
) -> ApiResult<(StatusCode, AxumJson<AuthResponse>)> {
    let mut issues = Issues::new();
    if !is_email(b.email.trim()) {
        issues.add("email", "is not a valid e-mail address");
    }
    if let Err(m) = password::check_rules(&b.password) {
        issues.add("password", m);
    }
    if b.phone.as_deref().is_some_and(|p| !is_e164(p)) {
        issues.add("phone", "must be an E.164 number such as +14155551234");
    }
    for (f, v) in [
        ("first_name", &b.first_name),
        ("last_name", &b.last_name),
        ("tenant_name", &b.tenant_name),
    ] {
        if v.as_deref().is_some_and(|s| s.chars().count() > 100) {
            issues.add(f, "must be at most 100 characters");
        }
    }
    let role = match b.role.as_deref() {
        None => None,
        Some(r) => match Role::parse(r) {
            Some(role) => Some(role),
            None => {
                issues.add(
                    "role",
                    "must be one of owner, admin, supervisor, agent, viewer",
                );
                None
            }
        },
    };
    issues.finish()?;
    let new = |role: Role, hash: String| NewUser {
        email: b.email.trim().to_string(),
        password_hash: hash,
        role,
        first_name: b.first_name.clone(),
        last_name: b.last_name.clone(),
        phone: b.phone.clone(),
    };
    let user = match &b.tenant_id {
        None => {
            if !st.config.allow_signup {
                return Err(ApiError::Forbidden(
                    "sign-up is disabled: ask an admin of your tenant",
                ));
            }
            let hash = hash_blocking(b.password.clone()).await?;
            let name = b.tenant_name.clone().unwrap_or_else(|| {
                b.email
                    .trim()
                    .rsplit('@')
                    .next()
                    .unwrap_or("tenant")
                    .to_string()
            });
            let (_, user) = st
                .store
                .create_tenant_with_owner(&name, &new(Role::Owner, hash))
                .await?;
            user
        }
        Some(tid) => {
            let auth = crate::auth::from_headers(&st, &headers)?;
            if &auth.tenant_id != tid {
                return Err(ApiError::Forbidden(
                    "you can only add users to your own tenant",
                ));
            }
            auth.require(Role::Admin)?;
            let role = role.unwrap_or(Role::Agent);
            if role > auth.role {
                return Err(ApiError::Forbidden(
                    "you cannot grant a role above your own",
                ));
            }
            let hash = hash_blocking(b.password.clone()).await?;
            let user = st.store.create_user(tid, &new(role, hash)).await?;
            st.store
                .audit(
                    tid,
                    Some(&auth.user_id),
                    "user.create",
                    "user",
                    Some(&user.id),
                    serde_json::json!({"role": role.as_str()}),
                )
                .await?;
            user
        }
    };
    let token = issue(&st, &user);
    Ok((
        StatusCode::CREATED,
        AxumJson(AuthResponse::new(
            "User registered successfully",
            token,
            UserView::from(&user),
        )),
    ))
}

/// Log in with e-mail and password. Five failures per address or IP in 15 minutes answer
/// 429 until the window passes.
#[utoipa::path(operation_id = "auth_login", post, path = "/api/auth/login", tag = "auth", request_body = LoginBody,
    responses((status = 200, body = AuthResponse), (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)))]
pub async fn login(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(b): Json<LoginBody>,
) -> ApiResult<AxumJson<AuthResponse>> {
    let now = std::time::Instant::now();
    let email_key = format!("email:{}", b.email.trim().to_lowercase());
    let ip_key = format!("ip:{ip}");
    for key in [&email_key, &ip_key] {
        if let Err(wait) = st.limits.login.peek(key, now) {
            return Err(ApiError::TooManyRequests {
                retry_after_secs: wait.as_secs().max(1),
            });
        }
    }
    let user = st.store.user_by_email(&b.email).await?;
    let phc = user.as_ref().map_or_else(
        || password::dummy_hash().to_string(),
        |u| u.password_hash.clone(),
    );
    let ok = verify_blocking(b.password, phc).await?;
    match user {
        Some(u) if ok && u.is_active => {
            st.limits.login.reset(&email_key);
            st.store.touch_login(&u.id).await?;
            let token = issue(&st, &u);
            Ok(AxumJson(AuthResponse::new(
                "Login successful",
                token,
                UserView::from(&u),
            )))
        }
        _ => {
            let _ = st.limits.login.check(&email_key, now);
            let _ = st.limits.login.check(&ip_key, now);
            Err(ApiError::Unauthorized("invalid email or password"))
        }
    }
}

/// The caller's user and tenant.
#[utoipa::path(operation_id = "auth_me", get, path = "/api/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = MeResponse), (status = 401, body = crate::error::ErrorBody)))]
pub async fn me(State(st): State<AppState>, auth: Auth) -> ApiResult<AxumJson<MeResponse>> {
    let user = st
        .store
        .user(&auth.tenant_id, &auth.user_id)
        .await
        .map_err(|_| ApiError::Unauthorized("user no longer exists"))?;
    let tenant = st.store.tenant(&auth.tenant_id).await?;
    Ok(AxumJson(MeResponse {
        success: true,
        data: MeData {
            user: user.clone(),
            tenant,
        },
        user,
    }))
}
