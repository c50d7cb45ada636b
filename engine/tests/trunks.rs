//! SIP trunks in the store, on SQLite and PostgreSQL: configure (create / update by id or
//! name), validation, failover order, tenant isolation, sealed passwords, `dial_trunks`.

mod common;

use common::{on_each_backend, tenant};
use serde_json::json;
use switchboard_engine::telephony::{SecretBox, TrunkInput};
use switchboard_engine::{Error, Store, StoreOptions};

fn input(v: serde_json::Value) -> TrunkInput {
    serde_json::from_value(v).expect("trunk body")
}

fn secrets() -> SecretBox {
    SecretBox::new(SecretBox::generate_key())
}

#[tokio::test]
async fn configure_creates_then_updates_by_id_and_by_name() {
    on_each_backend(|store| async move {
        let sb = secrets();
        let (t, _) = tenant(&store, "Acme").await;
        let (trunk, created) = store
            .configure_trunk(
                &t,
                input(json!({
                    "provider": "Twilio", "server": "acme.pstn.twilio.com", "port": 5060,
                    "username": "acme", "password": "s3cret-pw", "domain": "acme.pstn.twilio.com",
                    "transport": "UDP", "enableRecording": true, "recordingPath": "./recordings"
                })),
                &sb,
            )
            .await
            .unwrap();
        assert!(created);
        assert_eq!(trunk.name, "Twilio acme.pstn.twilio.com");
        assert_eq!(trunk.provider, "twilio");
        assert_eq!(trunk.transport, "udp");
        assert!(trunk.has_password);
        assert!(trunk.enable_recording);
        assert!(!trunk.register, "Twilio trunks are IP/credential-list authenticated");
        assert_eq!(trunk.priority, 100);
        let served = serde_json::to_value(&trunk).unwrap();
        assert!(served.get("password").is_none());
        assert!(!served.to_string().contains("s3cret-pw"), "{served}");
        assert_eq!(served["hasPassword"], true);

        // The same body again updates (same default name), no duplicate.
        let (again, created) = store
            .configure_trunk(
                &t,
                input(json!({"provider": "twilio", "server": "acme.pstn.twilio.com", "port": 5080})),
                &sb,
            )
            .await
            .unwrap();
        assert!(!created);
        assert_eq!(again.id, trunk.id);
        assert_eq!(again.port, 5080);
        assert!(again.has_password, "absent password is kept");
        assert_eq!(store.trunks(&t).await.unwrap().len(), 1);

        // By id: a partial update; null clears the password and the domain.
        let (upd, created) = store
            .configure_trunk(
                &t,
                input(json!({"id": trunk.id, "name": "Main", "password": null, "domain": null, "priority": 5})),
                &sb,
            )
            .await
            .unwrap();
        assert!(!created);
        assert_eq!(
            (upd.name.as_str(), upd.priority, upd.has_password, upd.domain.as_deref()),
            ("Main", 5, false, None)
        );
        assert_eq!(upd.server, "acme.pstn.twilio.com");
        assert!(upd.updated_at >= upd.created_at);
        assert_eq!(store.trunk_password(&t, &upd.id, &sb).await.unwrap(), None);

        // An unknown id is 404.
        assert!(matches!(
            store
                .configure_trunk(&t, input(json!({"id": "0190f0f0-0000-7000-8000-000000000000"})), &sb)
                .await,
            Err(Error::NotFound { .. })
        ));
        // Renaming onto an existing name is a conflict.
        let (second, _) = store
            .configure_trunk(&t, input(json!({"name": "Backup", "server": "10.0.0.2", "username": "b"})), &sb)
            .await
            .unwrap();
        assert!(matches!(
            store
                .configure_trunk(&t, input(json!({"id": second.id, "name": "Main"})), &sb)
                .await,
            Err(Error::Conflict { .. })
        ));
    })
    .await;
}

#[tokio::test]
async fn validation_names_each_field() {
    on_each_backend(|store| async move {
        let sb = secrets();
        let (t, _) = tenant(&store, "Acme").await;
        let err = store
            .configure_trunk(
                &t,
                input(json!({"provider": "Skype", "server": "bad host", "transport": "TLS", "port": 0, "register": true})),
                &sb,
            )
            .await
            .unwrap_err();
        let Error::Validation { issues } = err else {
            panic!("validation error expected, got {err:?}")
        };
        let fields: Vec<&str> = issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["provider", "server", "port", "transport", "username"]);
        assert!(store.trunks(&t).await.unwrap().is_empty(), "nothing written");
        // An update is validated as a whole: turning register on needs a username.
        let (ip, _) = store
            .configure_trunk(&t, input(json!({"name": "IP", "server": "10.0.0.1", "register": false})), &sb)
            .await
            .unwrap();
        let err = store
            .configure_trunk(&t, input(json!({"id": ip.id, "register": true})), &sb)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Validation { issues } if issues[0].field == "username"),
            "{err:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn dial_trunks_are_enabled_in_failover_order_with_passwords_and_tenant_scoped() {
    on_each_backend(|store| async move {
        let sb = secrets();
        let (a, _) = tenant(&store, "A").await;
        let (b, _) = tenant(&store, "B").await;
        let mk = |name: &str, prio: i64, enabled: bool, pw: Option<&str>| {
            let mut v = json!({"name": name, "server": "sip.example.com", "username": name.to_lowercase(), "priority": prio, "enabled": enabled});
            if let Some(pw) = pw {
                v["password"] = json!(pw);
            }
            input(v)
        };
        let third = store.create_trunk(&a, mk("Third", 30, true, None), &sb).await.unwrap();
        let first = store.create_trunk(&a, mk("First", 10, true, Some("pw-one")), &sb).await.unwrap();
        let off = store.create_trunk(&a, mk("Off", 1, false, Some("pw-off")), &sb).await.unwrap();
        let second = store.create_trunk(&a, mk("Second", 20, true, Some("pw-two")), &sb).await.unwrap();
        let other = store.create_trunk(&b, mk("Other", 0, true, Some("pw-b")), &sb).await.unwrap();

        let all = store.dial_trunks(&a, &[], &sb).await.unwrap();
        let names: Vec<&str> = all.iter().map(|d| d.trunk.name.as_str()).collect();
        assert_eq!(names, ["First", "Second", "Third"], "enabled only, priority order");
        assert_eq!(all[0].password.as_deref(), Some("pw-one"));
        assert_eq!(all[2].password, None);

        let some = store
            .dial_trunks(&a, &[third.id.clone(), first.id.clone(), off.id.clone(), other.id.clone()], &sb)
            .await
            .unwrap();
        let names: Vec<&str> = some.iter().map(|d| d.trunk.name.as_str()).collect();
        assert_eq!(names, ["First", "Third"], "disabled and other tenants' ids left out");

        // Another tenant's trunk looks absent.
        assert!(matches!(store.trunk(&a, &other.id).await, Err(Error::NotFound { .. })));
        assert!(matches!(store.trunk_password(&a, &other.id, &sb).await, Err(Error::NotFound { .. })));
        assert!(matches!(
            store.configure_trunk(&a, input(json!({"id": other.id, "name": "Mine"})), &sb).await,
            Err(Error::NotFound { .. })
        ));
        assert_eq!(store.trunk(&b, &other.id).await.unwrap().name, "Other");

        // Another key does not open the passwords.
        assert!(matches!(
            store.dial_trunks(&a, std::slice::from_ref(&second.id), &secrets()).await,
            Err(Error::Secret(_))
        ));
        // The start-up scan covers every tenant's enabled, registering trunks.
        let reg = store.registering_trunks(&sb).await.unwrap();
        let mut names: Vec<&str> = reg.iter().map(|d| d.trunk.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["First", "Other", "Second", "Third"]);

        store.delete_trunk(&a, &third.id).await.unwrap();
        assert!(matches!(store.delete_trunk(&a, &third.id).await, Err(Error::NotFound { .. })));
        assert!(matches!(store.delete_trunk(&a, &other.id).await, Err(Error::NotFound { .. })));
    })
    .await;
}

/// The password column holds only the sealed value: read it with raw SQL on each backend.
#[tokio::test]
async fn the_password_column_never_holds_the_plaintext() {
    let sb = secrets();
    let body = || {
        input(
            json!({"name": "T", "server": "sip.example.com", "username": "u", "password": "plain-Secret-123"}),
        )
    };

    let dir = std::env::temp_dir().join(format!("sb-trunks-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/t.db", dir.display());
    let store = Store::connect(&url, &StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let (t, _) = tenant(&store, "Acme").await;
    let trunk = store.create_trunk(&t, body(), &sb).await.unwrap();
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    let col: String = sqlx::query_scalar("SELECT password_enc FROM sip_trunks WHERE id = $1")
        .bind(&trunk.id)
        .fetch_one(&raw)
        .await
        .unwrap();
    assert!(
        col.starts_with("v1:") && !col.contains("plain-Secret-123"),
        "{col}"
    );
    assert_eq!(
        store
            .trunk_password(&t, &trunk.id, &sb)
            .await
            .unwrap()
            .as_deref(),
        Some("plain-Secret-123")
    );
    raw.close().await;
    store.close().await;
    std::fs::remove_dir_all(&dir).ok();

    let Ok(pg_url) = std::env::var("SWITCHBOARD_TEST_PG_URL") else {
        eprintln!("notice: SWITCHBOARD_TEST_PG_URL not set; PostgreSQL part skipped");
        return;
    };
    let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
    let opts = StoreOptions {
        pg_schema: Some(schema.clone()),
        max_connections: 2,
    };
    let store = Store::connect(&pg_url, &opts).await.unwrap();
    store.migrate().await.unwrap();
    let (t, _) = tenant(&store, "Acme").await;
    let trunk = store.create_trunk(&t, body(), &sb).await.unwrap();
    let raw = sqlx::PgPool::connect(&pg_url).await.unwrap();
    let col: String = sqlx::query_scalar(&format!(
        "SELECT password_enc FROM \"{schema}\".sip_trunks WHERE id = $1"
    ))
    .bind(&trunk.id)
    .fetch_one(&raw)
    .await
    .unwrap();
    assert!(
        col.starts_with("v1:") && !col.contains("plain-Secret-123"),
        "{col}"
    );
    raw.close().await;
    store.drop_schema(&schema).await.unwrap();
    store.close().await;
}
