//! Store test harness: every test body runs on SQLite and, when `SWITCHBOARD_TEST_PG_URL` is
//! set, on PostgreSQL in a schema of its own (dropped afterwards).

use std::future::Future;

use switchboard_engine::tenancy::{NewUser, Role};
use switchboard_engine::{Store, StoreOptions};

/// Runs `body` once per backend, each on a fresh, migrated database.
pub async fn on_each_backend<F, Fut>(body: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let sqlite = Store::connect("sqlite::memory:", &StoreOptions::default())
        .await
        .expect("open sqlite");
    sqlite.migrate().await.expect("migrate sqlite");
    body(sqlite).await;
    match std::env::var("SWITCHBOARD_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => {
            let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
            let opts = StoreOptions {
                pg_schema: Some(schema.clone()),
                max_connections: 4,
            };
            let pg = Store::connect(&url, &opts)
                .await
                .expect("PostgreSQL at SWITCHBOARD_TEST_PG_URL must be reachable");
            pg.migrate().await.expect("migrate postgres");
            body(pg.clone()).await;
            pg.drop_schema(&schema).await.expect("drop test schema");
            pg.close().await;
        }
        _ => eprintln!("notice: SWITCHBOARD_TEST_PG_URL not set; PostgreSQL store tests skipped"),
    }
}

/// A tenant with an owner; returns (tenant id, owner user id).
pub async fn tenant(store: &Store, name: &str) -> (String, String) {
    let (t, u) = store
        .create_tenant_with_owner(
            name,
            &NewUser {
                email: format!(
                    "owner-{}@{}.test",
                    uuid::Uuid::now_v7().simple(),
                    name.to_lowercase()
                ),
                password_hash: "x".into(),
                role: Role::Owner,
                first_name: None,
                last_name: None,
                phone: None,
            },
        )
        .await
        .expect("create tenant");
    (t.id, u.id)
}
