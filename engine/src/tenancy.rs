//! Tenants, users and roles.
//!
//! Roles, most to least privileged, and the CRM spec's roles they stand for:
//! `owner` (CRM Owner), `admin` (CRM Admin), `supervisor` (CRM Dispatcher: runs campaigns,
//! watches agents), `agent` (CRM Tech: works the calls given to it), `viewer` (CRM Viewer:
//! read-only, no downloads).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::{impl_from_row, new_id, now, on_pool, Store};
use crate::{Error, Result};

/// What a user may do inside its tenant.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Agent,
    Supervisor,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Supervisor,
        Role::Agent,
        Role::Viewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Agent => "agent",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Runs campaigns, leads, agents and DNC: owner, admin, supervisor.
    pub fn can_manage(self) -> bool {
        self >= Role::Supervisor
    }

    /// Manages users and tenant settings: owner, admin.
    pub fn is_admin(self) -> bool {
        self >= Role::Admin
    }
}

/// A tenant: the unit of isolation.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}
impl_from_row!(Tenant {
    id,
    name,
    created_at
});

/// A user row, password hash included (never serialized).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    #[serde(skip)]
    #[schema(ignore)]
    pub password_hash: String,
    #[schema(value_type = Role)]
    pub role: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}
impl_from_row!(User {
    id,
    tenant_id,
    email,
    password_hash,
    role,
    first_name,
    last_name,
    phone,
    is_active,
    created_at,
    updated_at,
    last_login_at
});

impl User {
    /// The stored role; an unknown value (never written by us) is treated as the weakest.
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Viewer)
    }
}

/// A user to create; the password is already hashed by the caller.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
}

const USER_COLS: &str = "id, tenant_id, email, password_hash, role, first_name, last_name, phone, is_active, created_at, updated_at, last_login_at";

impl Store {
    /// Creates a tenant and its first user (the owner) in one transaction.
    pub async fn create_tenant_with_owner(
        &self,
        tenant_name: &str,
        owner: &NewUser,
    ) -> Result<(Tenant, User)> {
        let tenant = Tenant {
            id: new_id(),
            name: tenant_name.to_string(),
            created_at: now(),
        };
        let user = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(&tenant.id)
                .bind(&tenant.name)
                .bind(tenant.created_at)
                .execute(&mut *tx)
                .await?;
            let user = insert_user(&mut tx, &tenant.id, owner).await?;
            tx.commit().await?;
            user
        });
        Ok((tenant, user))
    }

    /// Creates a user in an existing tenant.
    pub async fn create_user(&self, tenant_id: &str, new: &NewUser) -> Result<User> {
        let user = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let exists: Option<String> = sqlx::query_scalar("SELECT id FROM tenants WHERE id = $1")
                .bind(tenant_id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Err(Error::NotFound { entity: "tenant" });
            }
            let user = insert_user(&mut tx, tenant_id, new).await?;
            tx.commit().await?;
            user
        });
        Ok(user)
    }

    pub async fn tenant(&self, id: &str) -> Result<Tenant> {
        on_pool!(self, p => sqlx::query_as("SELECT id, name, created_at FROM tenants WHERE id = $1").bind(id).fetch_optional(p).await)?
            .ok_or(Error::NotFound { entity: "tenant" })
    }

    /// Looks a user up by e-mail (case-insensitive: addresses are stored lower-cased).
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE email = $1");
        Ok(
            on_pool!(self, p => sqlx::query_as(&sql).bind(email.trim().to_lowercase()).fetch_optional(p).await)?,
        )
    }

    /// A user of the given tenant.
    pub async fn user(&self, tenant_id: &str, id: &str) -> Result<User> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE tenant_id = $1 AND id = $2");
        on_pool!(self, p => sqlx::query_as(&sql).bind(tenant_id).bind(id).fetch_optional(p).await)?
            .ok_or(Error::NotFound { entity: "user" })
    }

    pub async fn touch_login(&self, user_id: &str) -> Result<()> {
        on_pool!(self, p => sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2").bind(now()).bind(user_id).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}

async fn insert_user<'c, DB>(
    tx: &mut sqlx::Transaction<'c, DB>,
    tenant_id: &str,
    new: &NewUser,
) -> Result<User>
where
    DB: sqlx::Database,
    for<'e> &'e mut DB::Connection: sqlx::Executor<'e, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> DateTime<Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let email = new.email.trim().to_lowercase();
    let ts = now();
    let user = User {
        id: new_id(),
        tenant_id: tenant_id.to_string(),
        email,
        password_hash: new.password_hash.clone(),
        role: new.role.as_str().to_string(),
        first_name: new.first_name.clone(),
        last_name: new.last_name.clone(),
        phone: new.phone.clone(),
        is_active: true,
        created_at: ts,
        updated_at: ts,
        last_login_at: None,
    };
    let res = sqlx::query(
        "INSERT INTO users (id, tenant_id, email, password_hash, role, first_name, last_name, phone, is_active, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(user.id.clone())
    .bind(user.tenant_id.clone())
    .bind(user.email.clone())
    .bind(user.password_hash.clone())
    .bind(user.role.clone())
    .bind(user.first_name.clone())
    .bind(user.last_name.clone())
    .bind(user.phone.clone())
    .bind(true)
    .bind(ts)
    .bind(ts)
    .execute(&mut **tx)
    .await;
    match res {
        Ok(_) => Ok(user),
        Err(e) if is_unique_violation(&e) => {
            Err(Error::conflict("a user with this email already exists"))
        }
        Err(e) => Err(e.into()),
    }
}

/// True when the database refused a row because of a unique index.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}
