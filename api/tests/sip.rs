//! `/api/sip/*` and `/api/health/sip` through the real router on SQLite, with a real telephony
//! service on loopback (and a second one as the peer that answers OPTIONS).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use switchboard_api::{router, ApiConfig, AppState};
use switchboard_engine::events::EventBus;
use switchboard_engine::telephony::{SecretBox, Telephony, TelephonyOptions};
use switchboard_engine::{Store, StoreOptions};
use tower::ServiceExt;

struct App {
    router: axum::Router,
    store: Store,
}

struct Resp {
    status: StatusCode,
    body: Value,
    text: String,
}

async fn store() -> Store {
    let store = Store::connect("sqlite::memory:", &StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
}

fn config() -> ApiConfig {
    let mut c = ApiConfig::new(
        b"test-secret-test-secret-test-secret!".to_vec(),
        std::env::temp_dir().join("sb-api-sip-tests"),
    );
    c.rate_limit_per_ip = 0;
    c.rate_limit_per_user = 0;
    c
}

fn loopback() -> switchboard_engine::telephony::EndpointConfig {
    switchboard_engine::telephony::EndpointConfig::new("127.0.0.1:0".parse().unwrap())
}

async fn telephony(store: &Store) -> Arc<Telephony> {
    let opts = TelephonyOptions {
        retry_initial: Duration::from_secs(60),
        test_wait: Duration::from_secs(5),
        register_wait: Duration::from_secs(5),
        ..TelephonyOptions::default()
    };
    Telephony::start_with(
        store.clone(),
        EventBus::default(),
        SecretBox::new(SecretBox::generate_key()),
        loopback(),
        opts,
    )
    .await
    .unwrap()
}

impl App {
    async fn new(with_telephony: bool) -> (App, Option<Arc<Telephony>>) {
        let store = store().await;
        let mut state = AppState::new(store.clone(), config());
        let tel = if with_telephony {
            let t = telephony(&store).await;
            state = state.with_telephony(t.clone());
            Some(t)
        } else {
            None
        };
        (
            App {
                router: router(state),
                store,
            },
            tel,
        )
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::String(text.clone()));
        Resp { status, body, text }
    }

    /// A new tenant's owner token and tenant id.
    async fn owner(&self, email: &str) -> (String, String) {
        let r = self
            .call(
                Method::POST,
                "/api/auth/register",
                None,
                Some(json!({"email": email, "password": "securePassword123", "first_name": "O"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        (
            r.body["token"].as_str().unwrap().to_string(),
            r.body["user"]["tenant_id"].as_str().unwrap().to_string(),
        )
    }

    async fn member(&self, owner: &str, tenant: &str, email: &str, role: &str) -> String {
        let r = self
            .call(Method::POST, "/api/auth/register", Some(owner), Some(json!({"email": email, "password": "securePassword123", "role": role, "tenant_id": tenant})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["token"].as_str().unwrap().to_string()
    }
}

#[tokio::test]
async fn without_telephony_the_routes_that_need_it_answer_503() {
    let (app, _) = App::new(false).await;
    let (owner, _) = app.owner("o@acme.test").await;
    for (method, path, body) in [
        (
            Method::POST,
            "/api/sip/configure",
            Some(json!({"server": "sip.example.com", "register": false})),
        ),
        (Method::POST, "/api/sip/test", None),
        (Method::GET, "/api/sip/status", None),
        (Method::POST, "/api/sip/register", None),
    ] {
        let r = app.call(method, path, Some(&owner), body).await;
        assert_eq!(
            r.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{path}: {:?}",
            r.body
        );
        assert_eq!(r.body["code"], "unavailable");
        assert!(
            r.body["error"]
                .as_str()
                .unwrap()
                .contains("SIP telephony is not running"),
            "{:?}",
            r.body
        );
    }
    let r = app
        .call(Method::GET, "/api/sip/settings", Some(&owner), None)
        .await;
    assert_eq!(
        (r.status, r.body["count"].clone()),
        (StatusCode::OK, json!(0))
    );
    let r = app
        .call(Method::GET, "/api/sip/providers", Some(&owner), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let ids: Vec<&str> = r.body["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "twilio",
            "telnyx",
            "ringcentral",
            "asterisk",
            "freeswitch",
            "generic"
        ]
    );
    assert_eq!(r.body["providers"][1]["server"], "sip.telnyx.com");
    assert_eq!(r.body["transports"], json!(["udp", "tcp"]));
    let r = app.call(Method::GET, "/api/health/sip", None, None).await;
    assert_eq!(
        (r.status, r.body["status"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("unavailable"))
    );
}

#[tokio::test]
async fn configure_settings_status_test_register_and_delete() {
    let (app, tel) = App::new(true).await;
    let tel = tel.unwrap();
    let peer = telephony(&app.store).await; // a second engine: answers OPTIONS 200; its registrar knows no trunk user
    let peer_port = peer.local_addr().port();
    let (owner, tenant) = app.owner("o@acme.test").await;
    let supervisor = app
        .member(&owner, &tenant, "s@acme.test", "supervisor")
        .await;
    let (other, _) = app.owner("o@other.test").await;

    // The cold-caller spec's body (plus register: false, an IP-authenticated trunk).
    let spec_body = json!({
        "provider": "Twilio", "server": "127.0.0.1", "port": peer_port,
        "username": "acme", "password": "Sup3r-Secret!", "domain": "acme.pstn.twilio.com",
        "transport": "UDP", "enableRecording": true, "recordingPath": "./recordings"
    });
    let r = app
        .call(
            Method::POST,
            "/api/sip/configure",
            Some(&owner),
            Some(spec_body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["created"], true);
    let trunk = r.body["trunk"].clone();
    let id = trunk["id"].as_str().unwrap().to_string();
    assert_eq!(trunk["provider"], "twilio");
    assert_eq!(trunk["hasPassword"], true);
    assert_eq!(trunk["enableRecording"], true);
    assert_eq!(trunk["register"], false);
    assert_eq!(r.body["status"]["state"], "not_required");
    assert!(!r.text.contains("Sup3r-Secret!"), "{}", r.text);
    assert!(trunk.get("password").is_none());

    // Again: the same trunk is updated.
    let r = app
        .call(
            Method::POST,
            "/api/sip/configure",
            Some(&owner),
            Some(spec_body),
        )
        .await;
    assert_eq!(
        (r.status, r.body["created"].clone()),
        (StatusCode::OK, json!(false))
    );
    assert_eq!(r.body["trunk"]["id"], id.as_str());

    let r = app
        .call(Method::GET, "/api/sip/settings", Some(&supervisor), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["count"], 1);
    assert!(!r.text.contains("Sup3r-Secret!"));
    assert_eq!(r.body["trunks"][0]["name"], format!("Twilio 127.0.0.1"));

    // Supervisors read but do not configure; other tenants see nothing.
    let r = app
        .call(
            Method::POST,
            "/api/sip/configure",
            Some(&supervisor),
            Some(json!({"id": id, "priority": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .call(
            Method::POST,
            "/api/sip/configure",
            Some(&other),
            Some(json!({"id": id, "priority": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    let r = app
        .call(Method::GET, "/api/sip/settings", Some(&other), None)
        .await;
    assert_eq!(r.body["count"], 0);
    let r = app
        .call(
            Method::POST,
            "/api/sip/test",
            Some(&other),
            Some(json!({"id": id})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Validation names the fields; unknown fields are refused.
    let r = app
        .call(
            Method::POST,
            "/api/sip/configure",
            Some(&owner),
            Some(json!({"server": "a b", "transport": "TLS", "register": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = r.body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["server", "transport", "username"]);
    let r = app
        .call(
            Method::POST,
            "/api/sip/configure",
            Some(&owner),
            Some(json!({"server": "x.test", "pasword": "typo"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Test: an empty body pings the first trunk; the peer answers 200.
    let r = app
        .call(Method::POST, "/api/sip/test", Some(&owner), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["result"]["reachable"], true);
    assert_eq!(r.body["result"]["options"]["status"], 200);
    assert!(r.body["result"]["options"]["latencyMs"].as_f64().is_some());
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("answered OPTIONS with 200"));
    let r = app
        .call(Method::POST, "/api/sip/test", Some(&supervisor), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // A registering trunk against a peer whose registrar does not know the user: 403, failed.
    let r = app
        .call(
            Method::POST,
            "/api/sip/configure",
            Some(&owner),
            Some(json!({"name": "Reg", "provider": "asterisk", "server": "127.0.0.1", "port": peer_port, "username": "bob", "password": "pw", "priority": 50})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["trunk"]["register"], true);
    let reg_id = r.body["trunk"]["id"].as_str().unwrap().to_string();
    let r = app
        .call(
            Method::POST,
            "/api/sip/register",
            Some(&owner),
            Some(json!({"id": reg_id})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["trunks"][0]["state"], "failed", "{:?}", r.body);
    assert_eq!(r.body["trunks"][0]["statusCode"], 403);
    assert_eq!(r.body["registered"], false);
    let r = app
        .call(
            Method::POST,
            "/api/sip/register",
            Some(&owner),
            Some(json!({"id": id})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "IP-authenticated: {:?}",
        r.body
    );
    let r = app
        .call(Method::POST, "/api/sip/register", Some(&owner), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["trunks"].as_array().unwrap().len(),
        1,
        "only registering trunks"
    );

    // Status in failover order: Reg (priority 50) before the Twilio trunk (100).
    let r = app
        .call(Method::GET, "/api/sip/status", Some(&supervisor), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let states: Vec<(&str, &str)> = r.body["trunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [("Reg", "failed"), ("Twilio 127.0.0.1", "not_required")]
    );
    assert!(r.body["trunks"][0]["lastError"]
        .as_str()
        .unwrap()
        .contains("403"));

    // Health: every registration fails -> 503 down; counts only.
    let r = app.call(Method::GET, "/api/health/sip", None, None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        (r.body["status"].clone(), r.body["data"]["failed"].clone()),
        (json!("down"), json!(1))
    );

    // Delete: gone from settings, status and health; another tenant cannot.
    let path = format!("/api/sip/trunks/{reg_id}");
    let r = app.call(Method::DELETE, &path, Some(&other), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.call(Method::DELETE, &path, Some(&owner), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app.call(Method::GET, "/api/health/sip", None, None).await;
    assert_eq!(
        (
            r.status,
            r.body["status"].clone(),
            r.body["data"]["trunks"].clone()
        ),
        (StatusCode::OK, json!("ok"), json!(0))
    );
    let r = app
        .call(Method::GET, "/api/sip/settings", Some(&owner), None)
        .await;
    assert_eq!(r.body["count"], 1);
    let r = app
        .call(
            Method::DELETE,
            "/api/sip/trunks/not-a-uuid",
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Every change is audited, without the password.
    let r = app
        .call(Method::GET, "/api/audit-log", Some(&owner), None)
        .await;
    let text = r.text.clone();
    assert!(
        text.contains("sip_trunk.create")
            && text.contains("sip_trunk.update")
            && text.contains("sip_trunk.delete"),
        "{text}"
    );
    assert!(!text.contains("Sup3r-Secret!"));
    tel.shutdown().await;
    peer.shutdown().await;
}

#[tokio::test]
async fn agent_softphone_logins_over_rest() {
    let (app, _tel) = App::new(true).await;
    let (owner, tenant) = app.owner("soft@acme.test").await;
    let mk = |name: &str| json!({ "name": name });
    let ann = app
        .call(Method::POST, "/api/agents", Some(&owner), Some(mk("Ann")))
        .await;
    let ann = ann.body["agent"]["id"].as_str().unwrap().to_string();
    let bob = app
        .call(Method::POST, "/api/agents", Some(&owner), Some(mk("Bob")))
        .await;
    let bob = bob.body["agent"]["id"].as_str().unwrap().to_string();

    let r = app
        .call(
            Method::GET,
            &format!("/api/agents/{ann}/sip"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["sip"]["username"], Value::Null);
    assert_eq!(r.body["sip"]["realm"], "switchboard");
    assert!(r.body["sip"]["registrar"]
        .as_str()
        .unwrap()
        .starts_with("sip:127.0.0.1:"));

    let r = app
        .call(
            Method::PUT,
            &format!("/api/agents/{ann}/sip"),
            Some(&owner),
            Some(json!({"username": "ann", "password": "correct horse"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["sip"]["username"], "ann");
    assert_eq!(r.body["sip"]["registered"], false);
    assert!(!r.text.contains("correct horse"), "{}", r.text);

    // Bad input: 422 naming each field; nothing stored.
    let r = app
        .call(
            Method::PUT,
            &format!("/api/agents/{bob}/sip"),
            Some(&owner),
            Some(json!({"username": "bob smith", "password": "short"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert!(
        r.text.contains("username") && r.text.contains("password"),
        "{}",
        r.text
    );
    let r = app
        .call(
            Method::PUT,
            &format!("/api/agents/{bob}/sip"),
            Some(&owner),
            Some(json!({"username": "bob", "password": "long enough", "extra": 1})),
        )
        .await;
    assert!(
        r.status.is_client_error(),
        "unknown fields refused: {:?}",
        r.body
    );
    let r = app
        .call(
            Method::GET,
            &format!("/api/agents/{bob}/sip"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(r.body["sip"]["username"], Value::Null);
    // A user name is the engine's, once.
    let r = app
        .call(
            Method::PUT,
            &format!("/api/agents/{bob}/sip"),
            Some(&owner),
            Some(json!({"username": "ann", "password": "long enough"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    // Another tenant cannot see or change it.
    let (other, _) = app.owner("other@beta.test").await;
    let r = app
        .call(
            Method::GET,
            &format!("/api/agents/{ann}/sip"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = app
        .call(
            Method::DELETE,
            &format!("/api/agents/{ann}/sip"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["sip"]["username"], Value::Null);
    assert_eq!(
        app.store.agent_sip_username(&tenant, &ann).await.unwrap(),
        None
    );
}
