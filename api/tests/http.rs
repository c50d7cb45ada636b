//! The HTTP surface through the real router (tower `oneshot`) on a real SQLite store.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use switchboard_api::{router, ApiConfig, AppState};
use switchboard_engine::{Store, StoreOptions};
use tower::ServiceExt;

struct App {
    router: axum::Router,
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

async fn app_with(cfg: impl FnOnce(&mut ApiConfig)) -> App {
    let store = Store::connect("sqlite::memory:", &StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let mut c = ApiConfig::new(
        b"test-secret-test-secret-test-secret!".to_vec(),
        std::env::temp_dir().join("sb-api-tests"),
    );
    c.rate_limit_per_ip = 0;
    c.rate_limit_per_user = 0;
    cfg(&mut c);
    App {
        router: router(AppState::new(store, c)),
    }
}

async fn app() -> App {
    app_with(|_| {}).await
}

impl App {
    async fn send(&self, req: Request<Body>) -> Resp {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Resp {
            status,
            headers,
            body,
        }
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
        self.send(req).await
    }

    /// Registers a new tenant's owner; returns (token, tenant id).
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

    /// Adds a user of `role` to the owner's tenant; returns its token.
    async fn member(&self, owner: &str, tenant: &str, email: &str, role: &str) -> (String, String) {
        let r = self
            .call(Method::POST, "/api/auth/register", Some(owner), Some(json!({"email": email, "password": "securePassword123", "role": role, "tenant_id": tenant})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        (
            r.body["token"].as_str().unwrap().to_string(),
            r.body["user"]["id"].as_str().unwrap().to_string(),
        )
    }

    async fn upload(
        &self,
        token: &str,
        campaign_id: &str,
        csv: &str,
        mapping: Option<&str>,
    ) -> Resp {
        let boundary = "XyZzYboundary";
        let mut body = String::new();
        body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"campaign_id\"\r\n\r\n{campaign_id}\r\n"));
        if let Some(m) = mapping {
            body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"field_mapping\"\r\n\r\n{m}\r\n"));
        }
        body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"leads.csv\"\r\nContent-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"));
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/leads/upload")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body))
            .unwrap();
        self.send(req).await
    }
}

#[tokio::test]
async fn register_login_me() {
    let app = app().await;
    let (token, tenant) = app.owner("owner@acme.test").await;
    let me = app
        .call(Method::GET, "/api/auth/me", Some(&token), None)
        .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["user"]["role"], "owner");
    assert_eq!(me.body["data"]["tenant"]["id"], tenant.as_str());
    assert!(
        me.body["user"].get("password_hash").is_none(),
        "hashes never leave the server"
    );

    let login = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "OWNER@acme.test", "password": "securePassword123"})),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(login.body["success"], true);
    assert_eq!(login.body["user"]["email"], "owner@acme.test");
    assert!(login.body["token"].as_str().unwrap().split('.').count() == 3);

    let wrong = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "owner@acme.test", "password": "nope-nope-1"})),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body["code"], "unauthorized");
    let dup = app
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": "owner@acme.test", "password": "securePassword123"})),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn register_validates_fields() {
    let app = app().await;
    let r = app
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": "nope", "password": "short", "phone": "123", "role": "king"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = r.body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "password", "phone", "role"]);
    let r = app
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": 5})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["details"][0]["field"], "email");
    let raw = Request::builder()
        .method(Method::POST)
        .uri("/api/auth/register")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    assert_eq!(app.send(raw).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn joining_a_tenant_needs_its_owner_or_admin() {
    let app = app().await;
    let (owner, tenant) = app.owner("o@one.test").await;
    let (other_owner, _) = app.owner("o@two.test").await;
    let body = |email: &str, role: &str| json!({"email": email, "password": "securePassword123", "role": role, "tenant_id": tenant});
    let r = app
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(body("x@one.test", "agent")),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "knowing a tenant id is not enough"
    );
    let r = app
        .call(
            Method::POST,
            "/api/auth/register",
            Some(&other_owner),
            Some(body("x@one.test", "agent")),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "another tenant's owner cannot add users here"
    );
    let (sup, _) = app
        .member(&owner, &tenant, "sup@one.test", "supervisor")
        .await;
    let r = app
        .call(
            Method::POST,
            "/api/auth/register",
            Some(&sup),
            Some(body("y@one.test", "agent")),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a supervisor cannot add users"
    );
    let (admin, _) = app.member(&owner, &tenant, "admin@one.test", "admin").await;
    let r = app
        .call(
            Method::POST,
            "/api/auth/register",
            Some(&admin),
            Some(body("z@one.test", "owner")),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "an admin cannot create an owner"
    );
    let r = app
        .call(
            Method::POST,
            "/api/auth/register",
            Some(&admin),
            Some(body("z@one.test", "viewer")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["user"]["tenant_id"], tenant.as_str());
    assert_eq!(r.body["user"]["role"], "viewer");
}

/// Every route: (method, path with {id}, body, the weakest role allowed).
fn routes(ids: &Ids) -> Vec<(Method, String, Option<Value>, &'static str)> {
    let c = &ids.campaign;
    let l = &ids.lead;
    let a = &ids.agent;
    let g = &ids.group;
    let k = &ids.call;
    let t = &ids.tenant;
    vec![
        (Method::GET, "/api/auth/me".into(), None, "viewer"),
        (Method::GET, "/api/campaigns".into(), None, "viewer"),
        (
            Method::POST,
            "/api/campaigns".into(),
            Some(json!({"name": "n", "caller_id": "+14155551234"})),
            "supervisor",
        ),
        (Method::GET, format!("/api/campaigns/{c}"), None, "viewer"),
        (
            Method::PUT,
            format!("/api/campaigns/{c}"),
            Some(json!({"name": "renamed"})),
            "supervisor",
        ),
        (
            Method::POST,
            format!("/api/campaigns/{c}/start"),
            None,
            "supervisor",
        ),
        (
            Method::POST,
            format!("/api/campaigns/{c}/pause"),
            None,
            "supervisor",
        ),
        (
            Method::GET,
            format!("/api/leads?campaign_id={c}"),
            None,
            "viewer",
        ),
        (Method::GET, format!("/api/leads/{l}"), None, "viewer"),
        (
            Method::PUT,
            format!("/api/leads/{l}"),
            Some(json!({"notes": "x"})),
            "supervisor",
        ),
        (Method::POST, "/api/leads/upload".into(), None, "supervisor"),
        (
            Method::GET,
            "/api/leads/template/csv".into(),
            None,
            "viewer",
        ),
        (Method::GET, "/api/dnc".into(), None, "viewer"),
        (
            Method::POST,
            "/api/dnc".into(),
            Some(json!({"phone": "+14155559999"})),
            "agent",
        ),
        (
            Method::DELETE,
            "/api/dnc/%2B14155559999".into(),
            None,
            "admin",
        ),
        (Method::GET, "/api/agents".into(), None, "viewer"),
        (
            Method::POST,
            "/api/agents".into(),
            Some(json!({"name": "A"})),
            "supervisor",
        ),
        (Method::GET, format!("/api/agents/{a}"), None, "viewer"),
        (
            Method::PUT,
            format!("/api/agents/{a}/status"),
            Some(json!({"status": "available"})),
            "supervisor",
        ),
        (
            Method::GET,
            format!("/api/agents/{a}/stats"),
            None,
            "supervisor",
        ),
        // Softphone logins (503 without a telephony service, after the token, tenant and
        // role checks).
        (
            Method::GET,
            format!("/api/agents/{a}/sip"),
            None,
            "supervisor",
        ),
        (
            Method::PUT,
            format!("/api/agents/{a}/sip"),
            Some(json!({"username": "ann", "password": "correct horse"})),
            "supervisor",
        ),
        (
            Method::DELETE,
            format!("/api/agents/{a}/sip"),
            None,
            "supervisor",
        ),
        (Method::GET, "/api/agent-groups".into(), None, "viewer"),
        (
            Method::POST,
            "/api/agent-groups".into(),
            Some(json!({"name": "G2"})),
            "supervisor",
        ),
        (
            Method::GET,
            format!("/api/agent-groups/{g}"),
            None,
            "viewer",
        ),
        (
            Method::PUT,
            format!("/api/agent-groups/{g}"),
            Some(json!({"description": "d"})),
            "supervisor",
        ),
        (
            Method::DELETE,
            format!("/api/agent-groups/{g}"),
            None,
            "supervisor",
        ),
        (Method::GET, "/api/audit-log".into(), None, "admin"),
        (Method::GET, "/api/calls".into(), None, "viewer"),
        (
            Method::POST,
            "/api/calls".into(),
            Some(
                json!({"phone_number": "+14155551234", "direction": "outbound", "status": "completed", "started_at": "2024-01-01T00:00:00Z"}),
            ),
            "agent",
        ),
        (Method::GET, format!("/api/calls/{k}"), None, "viewer"),
        (
            Method::PUT,
            format!("/api/calls/{k}"),
            Some(json!({"notes": "n"})),
            "agent",
        ),
        (
            Method::PATCH,
            format!("/api/calls/{k}"),
            Some(json!({"notes": "n"})),
            "agent",
        ),
        (
            Method::PUT,
            format!("/api/calls/{k}/transcript"),
            Some(json!({"transcript": {"segments": []}})),
            "agent",
        ),
        (
            Method::POST,
            "/api/calls/start".into(),
            Some(json!({"phoneNumber": "+14155552671"})),
            "agent",
        ),
        (
            Method::PUT,
            format!("/api/calls/{k}/update"),
            Some(json!({"status": "ringing"})),
            "agent",
        ),
        (
            Method::POST,
            format!("/api/calls/{k}/end"),
            Some(json!({"disposition": "answered"})),
            "agent",
        ),
        (Method::GET, "/api/calls/stats".into(), None, "viewer"),
        (
            Method::GET,
            "/api/calls/stats/summary".into(),
            None,
            "viewer",
        ),
        (
            Method::GET,
            "/api/calls/stats/by-disposition".into(),
            None,
            "viewer",
        ),
        (
            Method::GET,
            "/api/calls/analytics?period=week".into(),
            None,
            "viewer",
        ),
        (
            Method::GET,
            format!("/api/audit/calls/{k}"),
            None,
            "supervisor",
        ),
        (
            Method::POST,
            format!("/api/calls/{k}/recording"),
            None,
            "agent",
        ),
        (
            Method::GET,
            format!("/api/calls/{k}/recording"),
            None,
            "viewer",
        ),
        (
            Method::DELETE,
            format!("/api/calls/{k}/recording"),
            None,
            "supervisor",
        ),
        (Method::GET, "/api/calls/recordings".into(), None, "viewer"),
        (
            Method::GET,
            "/api/calls/metrics/realtime".into(),
            None,
            "viewer",
        ),
        (
            Method::POST,
            format!("/api/voice-calls/{t}/campaigns/{c}/calls"),
            Some(json!({"call_status": "initiated"})),
            "agent",
        ),
        (
            Method::GET,
            format!("/api/voice-calls/{t}/campaigns/{c}/calls"),
            None,
            "viewer",
        ),
        (
            Method::GET,
            format!("/api/voice-calls/{t}/leads/{l}/calls"),
            None,
            "viewer",
        ),
        (
            Method::GET,
            format!("/api/voice-calls/{t}/calls/{k}"),
            None,
            "viewer",
        ),
        (
            Method::PUT,
            format!("/api/voice-calls/{t}/calls/{k}"),
            Some(json!({"call_status": "completed"})),
            "agent",
        ),
        (
            Method::DELETE,
            format!("/api/voice-calls/{t}/calls/{k}"),
            None,
            "supervisor",
        ),
        // SIP trunks (without a telephony service the allowed roles get 503, after the
        // token and role checks).
        (
            Method::POST,
            "/api/sip/configure".into(),
            Some(json!({"server": "sip.example.com", "register": false})),
            "admin",
        ),
        (Method::GET, "/api/sip/settings".into(), None, "supervisor"),
        (Method::POST, "/api/sip/test".into(), None, "admin"),
        (Method::GET, "/api/sip/status".into(), None, "supervisor"),
        (Method::POST, "/api/sip/register".into(), None, "admin"),
        (Method::GET, "/api/sip/providers".into(), None, "supervisor"),
        (
            Method::DELETE,
            format!("/api/sip/trunks/{}", uuid::Uuid::now_v7()),
            None,
            "admin",
        ),
    ]
}

struct Ids {
    tenant: String,
    call: String,
    campaign: String,
    lead: String,
    agent: String,
    group: String,
}

async fn seed(app: &App, owner: &str, tenant: &str) -> Ids {
    let g = app
        .call(
            Method::POST,
            "/api/agent-groups",
            Some(owner),
            Some(json!({"name": "G"})),
        )
        .await;
    let group = g.body["data"]["id"].as_str().unwrap().to_string();
    let c = app
        .call(
            Method::POST,
            "/api/campaigns",
            Some(owner),
            Some(json!({"name": "C", "caller_id": "+14155551234"})),
        )
        .await;
    let campaign = c.body["campaign"]["id"].as_str().unwrap().to_string();
    let up = app
        .upload(owner, &campaign, "phone\n+14155552671\n", None)
        .await;
    assert_eq!(up.body["results"]["inserted"], 1, "{:?}", up.body);
    let l = app
        .call(
            Method::GET,
            &format!("/api/leads?campaign_id={campaign}"),
            Some(owner),
            None,
        )
        .await;
    let lead = l.body["leads"][0]["id"].as_str().unwrap().to_string();
    let a = app
        .call(
            Method::POST,
            "/api/agents",
            Some(owner),
            Some(json!({"name": "Ann"})),
        )
        .await;
    let agent = a.body["agent"]["id"].as_str().unwrap().to_string();
    let k = app.call(Method::POST, "/api/calls", Some(owner), Some(json!({"phone_number": "+14155551234", "caller_phone": "+14155552671", "direction": "outbound", "status": "completed", "started_at": "2024-01-01T00:00:00Z", "lead_id": lead}))).await;
    assert_eq!(k.status, StatusCode::CREATED, "{:?}", k.body);
    let call = k.body["data"]["id"].as_str().unwrap().to_string();
    Ids {
        tenant: tenant.to_string(),
        call,
        campaign,
        lead,
        agent,
        group,
    }
}

fn templated(path: &str) -> String {
    let mut out = String::new();
    let mut segs = Vec::new();
    for seg in path.split('?').next().unwrap_or(path).split('/') {
        let looks_like_id = uuid::Uuid::parse_str(seg).is_ok() || seg.starts_with("%2B");
        segs.push(if looks_like_id {
            "{}".to_string()
        } else {
            seg.to_string()
        });
    }
    out.push_str(&segs.join("/"));
    out
}

#[tokio::test]
async fn every_route_checks_token_tenant_and_role() {
    let app = app().await;
    let (owner, tenant) = app.owner("o@one.test").await;
    let ids = seed(&app, &owner, &tenant).await;
    let (other_owner, _) = app.owner("o@two.test").await;
    let mut by_role = std::collections::HashMap::new();
    for role in ["admin", "supervisor", "agent", "viewer"] {
        by_role.insert(
            role,
            app.member(&owner, &tenant, &format!("{role}@one.test"), role)
                .await
                .0,
        );
    }
    let order = ["viewer", "agent", "supervisor", "admin", "owner"];
    let rank = |r: &str| order.iter().position(|x| *x == r).unwrap();
    let table = routes(&ids);

    // The table covers every operation of the OpenAPI document but health (public).
    let doc: Value = serde_json::to_value(switchboard_api::openapi_document()).unwrap();
    let mut documented: Vec<String> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let mut templ = String::new();
            let mut depth = false;
            for ch in path.chars() {
                match ch {
                    '{' => {
                        depth = true;
                        templ.push_str("{}");
                    }
                    '}' => depth = false,
                    _ if depth => {}
                    _ => templ.push(ch),
                }
            }
            documented.push(format!("{} {templ}", method.to_uppercase()));
        }
    }
    let mut tested: Vec<String> = table
        .iter()
        .map(|(m, p, _, _)| format!("{m} {}", templated(p)))
        .collect();
    tested.extend(
        [
            "POST /api/auth/register",
            "POST /api/auth/login",
            "GET /api/health",
            "GET /api/health/monitoring",
            "GET /api/health/sip",
            // Signed links carry their own authorization (tested with the recordings).
            "GET /api/recordings/{}/download",
        ]
        .map(String::from),
    );
    documented.sort();
    tested.sort();
    assert_eq!(documented, tested, "every documented route is in the table");

    for (method, path, body, min_role) in &table {
        let what = format!("{method} {path}");
        let r = app.call(method.clone(), path, None, body.clone()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "no token: {what}");
        assert_eq!(r.body["success"], false, "{what}");
        let r = app
            .call(method.clone(), path, Some("not.a.token"), body.clone())
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "bad token: {what}");
        let forged = format!("{}x", &owner[..owner.len() - 1]);
        let r = app
            .call(method.clone(), path, Some(&forged), body.clone())
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "bad signature: {what}");
        if path.contains(&ids.campaign)
            || path.contains(&ids.lead)
            || path.contains(&ids.agent)
            || path.contains(&ids.group)
        {
            let r = app
                .call(method.clone(), path, Some(&other_owner), body.clone())
                .await;
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "another tenant's id: {what}: {:?}",
                r.body
            );
        }
        for role in ["viewer", "agent", "supervisor", "admin"] {
            if rank(role) < rank(min_role) {
                let r = app
                    .call(method.clone(), path, Some(&by_role[role]), body.clone())
                    .await;
                assert_eq!(
                    r.status,
                    StatusCode::FORBIDDEN,
                    "{role} may not: {what}: {:?}",
                    r.body
                );
            }
        }
    }
    // The weakest allowed role gets through (reads).
    for (method, path, body, min_role) in &table {
        if *method == Method::GET && *min_role == "viewer" {
            let r = app
                .call(method.clone(), path, Some(&by_role["viewer"]), body.clone())
                .await;
            assert_eq!(
                r.status,
                StatusCode::OK,
                "viewer reads {path}: {:?}",
                r.body
            );
        }
    }
}

#[tokio::test]
async fn campaigns_crud_validation_and_moves() {
    let app = app().await;
    let (t, _) = app.owner("o@acme.test").await;
    let bad = app
        .call(Method::POST, "/api/campaigns", Some(&t), Some(json!({"name": "Q1", "caller_id": "4155551234", "timezone": "Nowhere/City", "calling_hours_start": "26:00", "retry_policy": {"max_attempts": 99}})))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["code"], "validation_failed");
    let fields: Vec<&str> = bad.body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "caller_id",
            "timezone",
            "calling_hours_start",
            "retry_policy.max_attempts"
        ]
    );
    let unknown = app
        .call(
            Method::POST,
            "/api/campaigns",
            Some(&t),
            Some(json!({"name": "Q1", "caller_id": "+14155551234", "colour": "red"})),
        )
        .await;
    assert_eq!(
        unknown.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are refused, not ignored"
    );

    let c = app
        .call(Method::POST, "/api/campaigns", Some(&t), Some(json!({"name": "Q1 2024 Outreach", "caller_id": "+14155551234", "timezone": "America/Los_Angeles", "calling_hours_start": "09:00:00", "calling_hours_end": "17:00:00", "retry_policy": {"max_attempts": 3, "delay_minutes": 60, "retry_on_no_answer": true, "retry_on_busy": true, "retry_on_voicemail": false}, "amd_enabled": true, "record_calls": true})))
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{:?}", c.body);
    let id = c.body["campaign"]["id"].as_str().unwrap().to_string();
    assert_eq!(c.body["data"], c.body["campaign"]);
    assert_eq!(c.body["campaign"]["status"], "draft");
    let list = app
        .call(
            Method::GET,
            "/api/campaigns?status=draft&limit=500",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(list.body["count"], 1);
    assert_eq!(
        list.body["pagination"]["limit"], 100,
        "limit is capped at 100"
    );
    assert_eq!(
        app.call(Method::GET, "/api/campaigns?status=bogus", Some(&t), None)
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let started = app
        .call(
            Method::POST,
            &format!("/api/campaigns/{id}/start"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(started.body["campaign"]["status"], "active");
    assert_eq!(started.body["message"], "Campaign started successfully");
    assert_eq!(
        app.call(
            Method::POST,
            &format!("/api/campaigns/{id}/start"),
            Some(&t),
            None
        )
        .await
        .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        app.call(
            Method::POST,
            &format!("/api/campaigns/{id}/pause"),
            Some(&t),
            None
        )
        .await
        .body["campaign"]["status"],
        "paused"
    );
    let upd = app
        .call(
            Method::PUT,
            &format!("/api/campaigns/{id}"),
            Some(&t),
            Some(json!({"dial_mode": "predictive", "max_abandon_rate": 0.02})),
        )
        .await;
    assert_eq!(upd.body["campaign"]["dial_mode"], "predictive");
    assert_eq!(
        app.call(Method::GET, "/api/campaigns/not-a-uuid", Some(&t), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

const CSV: &str = "First Name,Last Name,Phone Number,Country Code\n\
Sara,Ahmed,+14155552671,\n\
Raj,Patel,(415) 555-2672,US\n\
Bad,Phone,invalid,\n\
Dup,Row,415-555-2671,\n\
Blocked,Number,+14155552673,\n\
Broken\n";

#[tokio::test]
async fn csv_upload_reports_rows_and_reupload_inserts_none() {
    let app = app().await;
    let (t, _) = app.owner("o@acme.test").await;
    let c = app
        .call(
            Method::POST,
            "/api/campaigns",
            Some(&t),
            Some(json!({"name": "C", "caller_id": "+14155551234"})),
        )
        .await;
    let cid = c.body["campaign"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        app.call(
            Method::POST,
            "/api/dnc",
            Some(&t),
            Some(json!({"phone": "(415) 555-2673"}))
        )
        .await
        .status,
        StatusCode::CREATED
    );
    let mapping = r#"{"First Name": "first_name", "Last Name": "last_name", "Phone Number": "phone", "Country Code": "country"}"#;
    let r = app.upload(&t, &cid, CSV, Some(mapping)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["message"], "CSV processed successfully");
    assert_eq!(
        r.body["results"],
        json!({"total": 6, "valid": 2, "invalid": 2, "duplicates": 1, "dnc": 1, "inserted": 2})
    );
    let errors = r.body["errors"].as_array().unwrap();
    assert_eq!(
        errors[0],
        json!({"row": 4, "field": "phone", "value": "invalid", "error": "Invalid phone number format"})
    );
    assert_eq!(errors.len(), 4);
    let again = app.upload(&t, &cid, CSV, Some(mapping)).await;
    assert_eq!(again.body["results"]["inserted"], 0);
    let leads = app
        .call(
            Method::GET,
            &format!("/api/leads?campaign_id={cid}"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(leads.body["total"], 2);
    assert_eq!(leads.body["leads"][0]["phone_normalized"], "+14155552671");
    assert_eq!(leads.body["leads"][0]["first_name"], "Sara");

    let missing = app.call(Method::GET, "/api/leads", Some(&t), None).await;
    assert_eq!(
        (missing.status, missing.body["details"][0]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("campaign_id"))
    );
    let bad_map = app.upload(&t, &cid, CSV, Some("[1,2]")).await;
    assert_eq!(bad_map.status, StatusCode::UNPROCESSABLE_ENTITY);
    let template = app
        .call(Method::GET, "/api/leads/template/csv", Some(&t), None)
        .await;
    assert!(template.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(template
        .body
        .as_str()
        .unwrap()
        .starts_with("phone,first_name"));
}

#[tokio::test]
async fn upload_over_the_limit_is_413_and_stores_nothing() {
    let app = app_with(|c| c.upload_max_bytes = 1024).await;
    let (t, _) = app.owner("o@acme.test").await;
    let c = app
        .call(
            Method::POST,
            "/api/campaigns",
            Some(&t),
            Some(json!({"name": "C", "caller_id": "+14155551234"})),
        )
        .await;
    let cid = c.body["campaign"]["id"].as_str().unwrap().to_string();
    let mut csv = String::from("phone\n");
    for i in 0..200 {
        csv.push_str(&format!("+1415555{:04}\n", 2000 + i));
    }
    let r = app.upload(&t, &cid, &csv, None).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
    let leads = app
        .call(
            Method::GET,
            &format!("/api/leads?campaign_id={cid}"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(leads.body["total"], 0);
}

#[tokio::test]
async fn agents_may_set_only_their_own_status() {
    let app = app().await;
    let (owner, tenant) = app.owner("o@acme.test").await;
    let (agent_token, agent_user) = app.member(&owner, &tenant, "ann@acme.test", "agent").await;
    let mine = app
        .call(
            Method::POST,
            "/api/agents",
            Some(&owner),
            Some(json!({"name": "Ann", "user_id": agent_user, "endpoint": "sip:ann@127.0.0.1"})),
        )
        .await;
    assert_eq!(mine.status, StatusCode::CREATED, "{:?}", mine.body);
    let mine = mine.body["agent"]["id"].as_str().unwrap().to_string();
    let theirs = app
        .call(
            Method::POST,
            "/api/agents",
            Some(&owner),
            Some(json!({"name": "Bob"})),
        )
        .await
        .body["agent"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .call(
            Method::PUT,
            &format!("/api/agents/{mine}/status"),
            Some(&agent_token),
            Some(json!({"status": "available"})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["agent"]["status"].clone()),
        (StatusCode::OK, json!("available"))
    );
    let r = app
        .call(
            Method::PUT,
            &format!("/api/agents/{theirs}/status"),
            Some(&agent_token),
            Some(json!({"status": "available"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .call(
            Method::PUT,
            &format!("/api/agents/{mine}/status"),
            Some(&agent_token),
            Some(json!({"status": "napping"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let s = app
        .call(
            Method::GET,
            &format!("/api/agents/{mine}/stats?date_from=2024-01-01&date_to=2024-01-31"),
            Some(&agent_token),
            None,
        )
        .await;
    assert_eq!(s.status, StatusCode::OK);
    assert_eq!(s.body["stats"]["total_calls"], 0);
    let s = app
        .call(
            Method::GET,
            &format!("/api/agents/{mine}/stats?date_from=yesterday"),
            Some(&agent_token),
            None,
        )
        .await;
    assert_eq!(s.status, StatusCode::UNPROCESSABLE_ENTITY);
    let available = app
        .call(
            Method::GET,
            "/api/agents?status=available",
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(available.body["count"], 1);
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let app = app_with(|c| c.rate_limit_per_user = 3).await;
    let (t, _) = app.owner("o@acme.test").await;
    for _ in 0..3 {
        assert_eq!(
            app.call(Method::GET, "/api/campaigns", Some(&t), None)
                .await
                .status,
            StatusCode::OK
        );
    }
    let r = app
        .call(Method::GET, "/api/campaigns", Some(&t), None)
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body["code"], "rate_limited");
    let retry: u64 = r.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
}

#[tokio::test]
async fn login_is_throttled_after_repeated_failures() {
    let app = app_with(|c| c.login_attempts = 3).await;
    app.owner("o@acme.test").await;
    let bad = json!({"email": "o@acme.test", "password": "wrong-password-1"});
    for _ in 0..3 {
        assert_eq!(
            app.call(Method::POST, "/api/auth/login", None, Some(bad.clone()))
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
    let good = json!({"email": "o@acme.test", "password": "securePassword123"});
    let r = app
        .call(Method::POST, "/api/auth/login", None, Some(good))
        .await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits out the lock"
    );
    assert!(r.headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn health_openapi_docs_and_headers() {
    let app = app().await;
    let h = app.call(Method::GET, "/api/health", None, None).await;
    assert_eq!(h.status, StatusCode::OK);
    assert_eq!(h.body["data"]["database"], "ok");
    assert_eq!(h.headers["x-content-type-options"], "nosniff");
    assert_eq!(h.headers["x-frame-options"], "DENY");
    let doc = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc.body["paths"]["/api/leads/upload"]["post"].is_object());
    assert!(doc.body["components"]["securitySchemes"]["bearer"].is_object());
    let page = app.call(Method::GET, "/docs", None, None).await;
    assert!(page.body.as_str().unwrap().contains("/docs/app.js"));
    assert_eq!(
        app.call(Method::GET, "/docs/app.js", None, None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn cors_only_for_configured_origins() {
    let app = app_with(|c| c.cors_origins = vec!["https://crm.example".into()]).await;
    let req = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/api/campaigns")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .body(Body::empty())
            .unwrap()
    };
    let ok = app.send(req("https://crm.example")).await;
    assert_eq!(
        ok.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://crm.example"
    );
    let other = app.send(req("https://evil.example")).await;
    assert!(!other
        .headers
        .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
}

#[tokio::test]
async fn dnc_add_list_remove() {
    let app = app().await;
    let (t, _) = app.owner("o@acme.test").await;
    let r = app
        .call(
            Method::POST,
            "/api/dnc",
            Some(&t),
            Some(json!({"phone": "(415) 555-2671", "reason": "asked"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["dnc"]["phone"], "+14155552671");
    assert_eq!(
        app.call(
            Method::POST,
            "/api/dnc",
            Some(&t),
            Some(json!({"phone": "+14155552671"}))
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.call(
            Method::POST,
            "/api/dnc",
            Some(&t),
            Some(json!({"phone": "garbage"}))
        )
        .await
        .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.call(Method::GET, "/api/dnc", Some(&t), None).await.body["total"],
        1
    );
    assert_eq!(
        app.call(Method::DELETE, "/api/dnc/%2B14155552671", Some(&t), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.call(Method::DELETE, "/api/dnc/%2B14155552671", Some(&t), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn call_lifecycle_list_shape_and_stats() {
    let app = app().await;
    let (t, _) = app.owner("o@acme.test").await;
    let created = app
        .call(Method::POST, "/api/calls", Some(&t), Some(json!({"customer_id": "cust-1", "caller_phone": "+15551234567", "caller_name": "John Doe", "twilio_call_sid": "CA1234567890abcdef", "twilio_account_sid": "AC1", "phone_number": "+15559876543", "direction": "inbound", "status": "completed", "started_at": "2024-01-15T10:00:00Z", "ended_at": "2024-01-15T10:05:30Z", "duration": 330, "outcome": "completed", "quality": {"jitter": 0.05, "packet_loss": 0.001, "mos_score": 4.2, "rtt": 45, "codec": "OPUS"}, "metadata": {"tags": ["support"], "notes": "billing"}})))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["message"], "Call created successfully");
    let id = created.body["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["data"]["caller_phone"], "+15551234567");
    assert_eq!(
        created.body["data"]["business_id"],
        created.body["data"]["tenant_id"]
    );
    let tr = app
        .call(Method::PUT, &format!("/api/calls/{id}/transcript"), Some(&t), Some(json!({"transcript": {"segments": [{"speaker": "customer", "start_time": 0, "end_time": 3.5, "text": "Hello", "confidence": 0.95}], "duration": 330, "language": "en", "provider": "assembly-ai"}, "transcription_url": "https://asr.example/t/1"})))
        .await;
    assert_eq!(tr.status, StatusCode::OK, "{:?}", tr.body);
    let bad = app.call(Method::PUT, &format!("/api/calls/{id}/transcript"), Some(&t), Some(json!({"transcript": {"segments": [{"speaker": "a", "start_time": 2, "end_time": 1, "text": "x"}]}}))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bad.body["details"][0]["field"],
        "transcript.segments[0].end_time"
    );
    let details = app
        .call(Method::GET, &format!("/api/calls/{id}"), Some(&t), None)
        .await;
    assert_eq!(
        details.body["data"]["transcript"]["segments"][0]["text"],
        "Hello"
    );
    assert_eq!(details.body["data"]["quality"]["mos_score"], 4.2);
    assert_eq!(details.body["data"]["has_transcript"], true);
    let patched = app
        .call(
            Method::PATCH,
            &format!("/api/calls/{id}"),
            Some(&t),
            Some(json!({"outcome": "voicemail"})),
        )
        .await;
    assert_eq!(patched.body["data"]["outcome"], "voicemail");
    assert_eq!(
        patched.body["data"]["duration"], 330,
        "absent fields are kept"
    );

    let list = app.call(Method::GET, "/api/calls?direction=inbound&has_transcript=true&tags=support&search=John&page=1&limit=20&sort_by=started_at&sort_order=desc", Some(&t), None).await;
    assert_eq!(list.status, StatusCode::OK, "{:?}", list.body);
    assert_eq!(list.body["data"]["pagination"]["total_count"], 1);
    assert_eq!(list.body["data"]["pagination"]["current_page"], 1);
    assert_eq!(list.body["data"]["calls"][0]["id"], id.as_str());
    assert_eq!(list.body["count"], 1);
    let none = app
        .call(Method::GET, "/api/calls?direction=outbound", Some(&t), None)
        .await;
    assert_eq!(none.body["data"]["pagination"]["total_count"], 0);
    let bad = app
        .call(Method::GET, "/api/calls?sort_by=colour", Some(&t), None)
        .await;
    assert_eq!(
        (bad.status, bad.body["details"][0]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("sort_by"))
    );
    let bad = app
        .call(Method::GET, "/api/calls?min_duration=abc", Some(&t), None)
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    let stats = app
        .call(Method::GET, "/api/calls/stats", Some(&t), None)
        .await;
    assert_eq!(stats.body["data"]["totalCalls"], 1);
    assert_eq!(stats.body["data"]["callsByDirection"]["inbound"], 1);
    let summary = app
        .call(
            Method::GET,
            "/api/calls/stats/summary?date_from=2024-01-01&date_to=2024-01-31",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(summary.body["stats"]["total_calls"], 1);
    let analytics = app
        .call(
            Method::GET,
            "/api/calls/analytics?period=week",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(analytics.status, StatusCode::OK);
    assert!(analytics.body["summary"]["totalCalls"].is_number());
    assert_eq!(
        app.call(
            Method::GET,
            "/api/calls/analytics?period=decade",
            Some(&t),
            None
        )
        .await
        .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let audit = app
        .call(
            Method::GET,
            &format!("/api/audit/calls/{id}"),
            Some(&t),
            None,
        )
        .await;
    let actions: Vec<&str> = audit.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["call.create", "call.transcript", "call.update"]);
    assert_eq!(
        audit.body["data"][2]["details"]["changes"]["outcome"],
        json!({"before": "completed", "after": "voicemail"})
    );
}

#[tokio::test]
async fn voice_calls_use_their_spec_shapes() {
    let app = app().await;
    let (t, tenant) = app.owner("o@acme.test").await;
    let c = app
        .call(
            Method::POST,
            "/api/campaigns",
            Some(&t),
            Some(json!({"name": "C", "caller_id": "+14155551234"})),
        )
        .await;
    let cid = c.body["campaign"]["id"].as_str().unwrap().to_string();
    let base = format!("/api/voice-calls/{tenant}");
    let r = app
        .call(Method::POST, &format!("{base}/campaigns/{cid}/calls"), Some(&t), Some(json!({"callId": "ultravox_123", "callsid": "twilio_456", "call_status": "initiated", "call_duration": 0, "recording_url": null, "call_data": {"direction": "outbound", "from": "+1234567890", "to": "+9876543210", "custom_params": {}}})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["message"], "Voice call record created successfully");
    let id = r.body["id"].as_str().unwrap().to_string();
    let got = app
        .call(Method::GET, &format!("{base}/calls/{id}"), Some(&t), None)
        .await;
    assert_eq!(got.body["call_id"], "ultravox_123");
    assert_eq!(got.body["company_id"], tenant.as_str());
    assert_eq!(got.body["is_active"], true);
    assert!(
        got.body.get("success").is_none(),
        "no envelope in this spec"
    );
    let bad = app
        .call(
            Method::PUT,
            &format!("{base}/calls/{id}"),
            Some(&t),
            Some(json!({"call_status": "answered"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["message"], "Error updating call");
    let list = app
        .call(
            Method::GET,
            &format!("{base}/campaigns/{cid}/calls?page=1&limit=10"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    let del = app
        .call(
            Method::DELETE,
            &format!("{base}/calls/{id}"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::OK);
    let gone = app
        .call(Method::GET, &format!("{base}/calls/{id}"), Some(&t), None)
        .await;
    assert_eq!(
        (gone.status, gone.body["message"].clone()),
        (StatusCode::NOT_FOUND, json!("Call not found"))
    );
    let other_company = app
        .call(
            Method::GET,
            &format!("/api/voice-calls/{}/calls/{id}", uuid::Uuid::now_v7()),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(other_company.status, StatusCode::NOT_FOUND);
}

/// A PCM WAV: `secs` seconds, `channels`, `rate` Hz, 16-bit.
fn wav(secs: f64, channels: u16, rate: u32) -> Vec<u8> {
    let frames = (secs * f64::from(rate)) as u32;
    let data_len = frames * u32::from(channels) * 2;
    let mut v = Vec::with_capacity(44 + data_len as usize);
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data_len).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
    v.extend_from_slice(&(channels * 2).to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..frames * u32::from(channels) {
        v.extend_from_slice(&((i % 200) as i16 * 50).to_le_bytes());
    }
    v
}

impl App {
    async fn upload_recording(
        &self,
        token: &str,
        call: &str,
        file: &[u8],
        name: &str,
        sids: (&str, &str),
    ) -> Resp {
        let boundary = "RecBoundary77";
        let mut body = Vec::new();
        for (k, v) in [
            ("call_sid", sids.0),
            ("account_sid", sids.1),
            ("duration", "2"),
        ] {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"recording\"; filename=\"{name}\"\r\nContent-Type: audio/wav\r\n\r\n").as_bytes());
        body.extend_from_slice(file);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!("/api/calls/{call}/recording"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body))
            .unwrap();
        self.send(req).await
    }

    async fn raw(
        &self,
        uri: &str,
        token: Option<&str>,
        range: Option<&str>,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let mut b = Request::builder().uri(uri);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(r) = range {
            b = b.header(header::RANGE, r);
        }
        let resp = self
            .router
            .clone()
            .oneshot(b.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        (
            status,
            headers,
            resp.into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
    }
}

#[tokio::test]
async fn call_log_lifecycle_with_a_real_recording() {
    let dir = std::env::temp_dir().join(format!("sb-rec-{}", uuid::Uuid::now_v7()));
    let app = app_with(|c| {
        c.spool_dir = dir.clone();
        c.recording_max_bytes = 200_000;
    })
    .await;
    let (t, tenant) = app.owner("o@acme.test").await;
    let (viewer, _) = app.member(&t, &tenant, "v@acme.test", "viewer").await;
    // 1. create
    let c = app
        .call(Method::POST, "/api/calls", Some(&t), Some(json!({"caller_phone": "+15551234567", "phone_number": "+15559876543", "direction": "inbound", "status": "completed", "started_at": "2024-01-15T10:00:00Z", "ended_at": "2024-01-15T10:05:30Z", "twilio_call_sid": "CA1", "twilio_account_sid": "AC1"})))
        .await;
    let id = c.body["data"]["id"].as_str().unwrap().to_string();
    // 2. upload: checks first
    assert_eq!(
        app.upload_recording(&t, &id, &wav(2.5, 2, 8000), "r.wav", ("CA-other", "AC1"))
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "sid mismatch"
    );
    assert_eq!(
        app.upload_recording(
            &t,
            &id,
            b"this is just text, not audio",
            "r.wav",
            ("CA1", "AC1")
        )
        .await
        .status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_eq!(
        app.upload_recording(&t, &id, &wav(20.0, 2, 8000), "big.wav", ("CA1", "AC1"))
            .await
            .status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let (other, _) = app.owner("o@other.test").await;
    assert_eq!(
        app.upload_recording(&other, &id, &wav(1.0, 1, 8000), "r.wav", ("CA1", "AC1"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let file = wav(2.5, 2, 8000);
    let up = app
        .upload_recording(&t, &id, &file, "r.wav", ("CA1", "AC1"))
        .await;
    assert_eq!(up.status, StatusCode::OK, "{:?}", up.body);
    assert_eq!(up.body["message"], "Recording uploaded successfully");
    let m = &up.body["data"]["file_metadata"];
    assert_eq!(
        (
            m["duration"].as_f64(),
            m["channels"].as_u64(),
            m["sample_rate"].as_u64(),
            m["bit_rate"].as_u64()
        ),
        (Some(2.5), Some(2), Some(8000), Some(256_000))
    );
    assert_eq!(m["size"].as_u64(), Some(file.len() as u64));
    // 3. transcript
    let tr = app.call(Method::PUT, &format!("/api/calls/{id}/transcript"), Some(&t), Some(json!({"transcript": {"segments": [{"speaker": "customer", "start_time": 0, "end_time": 3.5, "text": "Hello", "confidence": 0.95}]}}))).await;
    assert_eq!(tr.status, StatusCode::OK);
    // 4. details
    let d = app
        .call(Method::GET, &format!("/api/calls/{id}"), Some(&t), None)
        .await;
    assert_eq!(d.body["data"]["has_recording"], true);
    assert_eq!(d.body["data"]["has_transcript"], true);
    assert_eq!(
        d.body["data"]["recording_duration"], 3,
        "2.5 s rounds to 3 s on the call row"
    );

    // Metadata, full and ranged downloads, signed link.
    let meta = app
        .call(
            Method::GET,
            &format!("/api/calls/{id}/recording"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(meta.body["data"]["format"], "wav");
    let (s, h, body) = app
        .raw(
            &format!("/api/calls/{id}/recording?download=true"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(
        (s, h[header::CONTENT_TYPE].to_str().unwrap(), body.len()),
        (StatusCode::OK, "audio/wav", file.len())
    );
    assert_eq!(body, file);
    let (s, h, body) = app
        .raw(
            &format!("/api/calls/{id}/recording?download=true"),
            Some(&t),
            Some("bytes=0-43"),
        )
        .await;
    assert_eq!(
        (s, body.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &file[..44])
    );
    assert_eq!(
        h[header::CONTENT_RANGE],
        format!("bytes 0-43/{}", file.len()).as_str()
    );
    let (s, _, body) = app
        .raw(
            &format!("/api/calls/{id}/recording?download=true"),
            Some(&t),
            Some("bytes=-10"),
        )
        .await;
    assert_eq!(
        (s, body.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &file[file.len() - 10..])
    );
    let (s, h, _) = app
        .raw(
            &format!("/api/calls/{id}/recording?download=true"),
            Some(&t),
            Some("bytes=999999-"),
        )
        .await;
    assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        h[header::CONTENT_RANGE],
        format!("bytes */{}", file.len()).as_str()
    );
    assert_eq!(
        app.raw(
            &format!("/api/calls/{id}/recording?download=true"),
            Some(&viewer),
            None
        )
        .await
        .0,
        StatusCode::FORBIDDEN,
        "viewers may not download"
    );
    let signed = meta.body["data"]["signed_url"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _, body) = app.raw(&signed, None, None).await;
    assert_eq!(
        (s, body.len()),
        (StatusCode::OK, file.len()),
        "a signed link works without a token"
    );
    let tampered = signed.replace("sig=", "sig=0");
    assert_eq!(
        app.raw(&tampered, None, None).await.0,
        StatusCode::FORBIDDEN
    );

    let list = app
        .call(
            Method::GET,
            "/api/calls/recordings?page=1&limit=10&format=wav&dateFrom=2024-01-01",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(list.body["data"]["pagination"]["total_count"], 1);
    assert_eq!(
        app.call(
            Method::GET,
            "/api/calls/recordings?format=mp3",
            Some(&t),
            None
        )
        .await
        .body["data"]["pagination"]["total_count"],
        0
    );
    assert_eq!(
        app.call(
            Method::GET,
            &format!("/api/calls/{id}/recording"),
            Some(&other),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let del = app
        .call(
            Method::DELETE,
            &format!("/api/calls/{id}/recording"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::OK);
    assert_eq!(
        app.raw(
            &format!("/api/calls/{id}/recording?download=true"),
            Some(&t),
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let leftovers: Vec<_> = walk(&dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "wav" || e == "part"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no stored object or spool file remains: {leftovers:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test]
async fn realtime_view_monitoring_and_prometheus() {
    let app = app().await;
    let (t, _) = app.owner("o@acme.test").await;
    for (status, q) in [
        ("ringing", None),
        (
            "connected",
            Some(json!({"jitter": 10.0, "mos_score": 4.2, "rtt": 80.0})),
        ),
        ("completed", None),
    ] {
        let mut body = json!({"phone_number": "+14155551234", "caller_phone": "+14155552671", "direction": "outbound", "status": status, "started_at": chrono::Utc::now()});
        if let Some(q) = q {
            body["quality"] = q;
        }
        assert_eq!(
            app.call(Method::POST, "/api/calls", Some(&t), Some(body))
                .await
                .status,
            StatusCode::CREATED
        );
    }
    let r = app
        .call(Method::GET, "/api/calls/metrics/realtime", Some(&t), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (
            r.body["calls"]["active"].as_i64(),
            r.body["calls"]["connecting"].as_i64(),
            r.body["calls"]["connected"].as_i64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(
        (
            r.body["calls"]["total"].as_i64(),
            r.body["calls"]["todayTotal"].as_i64()
        ),
        (Some(3), Some(3))
    );
    assert_eq!(
        r.body["performance"]["averageLatency"], 40.0,
        "rtt/2 of the connected call"
    );
    assert_eq!(r.body["performance"]["callQuality"], "excellent");
    assert_eq!(r.body["activeCalls"].as_array().unwrap().len(), 2);
    let m = app
        .call(Method::GET, "/api/health/monitoring", None, None)
        .await;
    assert_eq!(m.body["data"]["database"]["status"], "ok");
    let (s, _, body) = app.raw("/metrics", None, None).await;
    let text = String::from_utf8(body).unwrap();
    assert_eq!(s, StatusCode::OK);
    assert!(
        text.contains("switchboard_calls{status=\"ringing\"} 1"),
        "{text}"
    );
    assert!(text.contains("switchboard_calls{status=\"connected\"} 1"));
    assert!(text.contains("switchboard_http_requests_total{method=\"GET\",route=\"/api/calls/metrics/realtime\",status=\"2xx\"} 1"), "{text}");
    assert!(text.contains(
        "switchboard_http_request_duration_seconds_count{method=\"POST\",route=\"/api/calls\"} 3"
    ));
}
