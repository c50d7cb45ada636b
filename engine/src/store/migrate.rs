//! Embedded migrations, one SQL file per version and backend, applied in order, each in
//! its own transaction, recorded in `schema_migrations`.

use super::{on_pool, Backend, Store};
use crate::{Error, Result};

/// A schema version: the same change written for both backends.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sqlite: include_str!("../../migrations/sqlite/0001_init.sql"),
        postgres: include_str!("../../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "calls",
        sqlite: include_str!("../../migrations/sqlite/0002_calls.sql"),
        postgres: include_str!("../../migrations/postgres/0002_calls.sql"),
    },
    Migration {
        version: 3,
        name: "lead_indexes",
        sqlite: include_str!("../../migrations/sqlite/0003_lead_indexes.sql"),
        postgres: include_str!("../../migrations/postgres/0003_lead_indexes.sql"),
    },
    Migration {
        version: 4,
        name: "sip_trunks",
        sqlite: include_str!("../../migrations/sqlite/0004_sip_trunks.sql"),
        postgres: include_str!("../../migrations/postgres/0004_sip_trunks.sql"),
    },
    Migration {
        version: 5,
        name: "agent_sip_whisper",
        sqlite: include_str!("../../migrations/sqlite/0005_agent_sip_whisper.sql"),
        postgres: include_str!("../../migrations/postgres/0005_agent_sip_whisper.sql"),
    },
];

impl Store {
    /// Applies every migration not yet applied; returns the versions it applied.
    pub async fn migrate(&self) -> Result<Vec<i64>> {
        let ts_type = match self.backend() {
            Backend::Sqlite => "TEXT",
            Backend::Postgres => "TIMESTAMPTZ",
        };
        let create = format!(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at {ts_type} NOT NULL)"
        );
        on_pool!(self, p => sqlx::query(&create).execute(p).await.map(|r| r.rows_affected()))?;
        let applied: Vec<i64> = on_pool!(self, p => sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version").fetch_all(p).await)?;
        let mut done = Vec::new();
        for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
            let sql = match self.backend() {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
            };
            let wrap = |source| Error::Migration {
                version: m.version,
                name: m.name,
                source,
            };
            on_pool!(self, p => {
                let mut tx = p.begin().await.map_err(wrap)?;
                sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(wrap)?;
                sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                    .bind(m.version)
                    .bind(m.name)
                    .bind(super::now())
                    .execute(&mut *tx)
                    .await
                    .map_err(wrap)?;
                tx.commit().await.map_err(wrap)?;
            });
            tracing::info!(version = m.version, name = m.name, "applied migration");
            done.push(m.version);
        }
        Ok(done)
    }
}
