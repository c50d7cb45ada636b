//! `switchboard serve` as an operator runs it, end to end: trunk, campaign, leads and agent
//! configured over REST, the engine dials the carrier simulator and bridges a person to the
//! agent's phone; then SIGTERM: no new dials, the answered calls get the grace period and then
//! BYE, every call row is closed, no lead is left mid-call, and the process exits 0.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use switchboard_engine::calls::CallFilter;
use switchboard_engine::leads::LeadFilter;
use switchboard_engine::{Store, StoreOptions};
use switchboard_sim::{AgentConfig, AgentPhones, Behavior, Carrier, CarrierConfig, EndedBy, Plan};

fn curl(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> Value {
    let mut c = Command::new("curl");
    c.args([
        "-s",
        "-X",
        method,
        url,
        "-H",
        "content-type: application/json",
    ]);
    if let Some(t) = token {
        c.args(["-H", &format!("authorization: Bearer {t}")]);
    }
    if let Some(b) = body {
        c.args(["-d", &b.to_string()]);
    }
    let out = c.output().expect("curl");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&out.stdout)}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_dials_and_stops_gracefully_on_sigterm() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("notice: curl not installed; serve test skipped");
        return;
    }
    let lo: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let carrier = Carrier::start(CarrierConfig {
        ring: Duration::from_millis(200),
        ..CarrierConfig::new(
            lo,
            Plan::always(Behavior::Human {
                talk: Duration::from_secs(30),
            }),
        )
    })
    .await
    .unwrap();
    let phones = AgentPhones::start_with(AgentConfig::new(lo)).await.unwrap();

    let dir = std::env::temp_dir().join(format!("sb-serve-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--sip-bind",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&dir)
        .env("SWITCHBOARD_LOG", "info")
        .env("SWITCHBOARD_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start switchboard");
    let stdout = server.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut addr = None;
    for line in lines.by_ref().take(80) {
        let line = line.unwrap();
        if let Some(i) = line.find("\"addr\":\"") {
            addr = line[i + 8..].split('"').next().map(str::to_string);
            break;
        }
    }
    // Keep draining the server's log so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let base = format!("http://{}", addr.expect("server printed its address"));

    let reg = curl(
        "POST",
        &format!("{base}/api/auth/register"),
        None,
        Some(
            json!({"email": "ops@serve.test", "password": "securePassword123", "tenant_name": "Ops"}),
        ),
    );
    let token = reg["token"].as_str().map(str::to_owned).unwrap_or_else(|| {
        let login = curl(
            "POST",
            &format!("{base}/api/auth/login"),
            None,
            Some(json!({"email": "ops@serve.test", "password": "securePassword123"})),
        );
        login["token"].as_str().expect("token").to_owned()
    });
    let t = Some(token.as_str());
    let sim = carrier.sip_addr();
    let trunk = curl(
        "POST",
        &format!("{base}/api/sip/configure"),
        t,
        Some(json!({
            "name": "sim", "provider": "generic", "server": sim.ip().to_string(), "port": sim.port(), "transport": "udp", "register": false
        })),
    );
    assert!(
        trunk["success"].as_bool().unwrap_or(false),
        "trunk: {trunk}"
    );
    let campaign = curl(
        "POST",
        &format!("{base}/api/campaigns"),
        t,
        Some(json!({
            "name": "Serve", "caller_id": "+14155550000", "dial_mode": "progressive", "amd_enabled": true, "record_calls": true
        })),
    );
    let cid = campaign["campaign"]["id"]
        .as_str()
        .expect("campaign id")
        .to_owned();
    let csv = dir.join("leads.csv");
    let zone = switchboard_sim::daytime_zone();
    std::fs::write(&csv, format!("phone,timezone\n+12125552300,{zone}\n+12125552301,{zone}\n+12125552302,{zone}\n+12125552303,{zone}\n")).unwrap();
    let up = Command::new("curl")
        .args([
            "-s",
            "-X",
            "POST",
            &format!("{base}/api/leads/upload"),
            "-H",
            &format!("authorization: Bearer {token}"),
            "-F",
            &format!("campaign_id={cid}"),
            "-F",
        ])
        .arg(format!("file=@{}", csv.display()))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&up.stdout).contains("\"inserted\":4"),
        "{}",
        String::from_utf8_lossy(&up.stdout)
    );
    let agent = curl(
        "POST",
        &format!("{base}/api/agents"),
        t,
        Some(json!({"name": "Agent", "endpoint": phones.uri("agent")})),
    );
    let aid = agent["agent"]["id"].as_str().expect("agent id").to_owned();
    let st = curl(
        "PUT",
        &format!("{base}/api/agents/{aid}/status"),
        t,
        Some(json!({"status": "available"})),
    );
    assert!(st["success"].as_bool().unwrap_or(false), "{st}");
    let started = curl(
        "POST",
        &format!("{base}/api/campaigns/{cid}/start"),
        t,
        None,
    );
    assert!(started["success"].as_bool().unwrap_or(false), "{started}");

    // Until the agent talks with a person.
    let mut talking = false;
    for _ in 0..150 {
        let calls = curl("GET", &format!("{base}/api/calls?limit=10"), t, None);
        if calls["calls"]
            .as_array()
            .is_some_and(|v| v.iter().any(|c| c["status"] == "in-progress"))
        {
            talking = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(talking, "a call reached the agent");
    // The agent's stored status follows the engine (REST views show them busy).
    let mut busy = false;
    for _ in 0..50 {
        let a = curl("GET", &format!("{base}/api/agents/{aid}"), t, None);
        if a["agent"]["status"] == "busy" {
            busy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(busy, "the agent shows busy over REST while talking");
    let metrics = Command::new("curl")
        .args(["-s", &format!("{base}/metrics")])
        .output()
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    assert!(
        metrics.contains("switchboard_engine_calls_started_total 1"),
        "engine metrics served"
    );

    // SIGTERM: the call gets its grace period, then BYE; the process exits cleanly.
    let term_at = chrono::Utc::now();
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    let mut status = None;
    for _ in 0..300 {
        if let Some(s) = server.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = status.unwrap_or_else(|| {
        let _ = server.kill();
        panic!("serve did not exit within 30 s of SIGTERM");
    });
    assert!(status.success(), "exit status {status:?}");

    let ended: Vec<_> = carrier
        .calls()
        .into_iter()
        .filter(|c| c.answered_at.is_some())
        .collect();
    assert!(!ended.is_empty());
    assert!(
        ended.iter().all(|c| c.ended_by == Some(EndedBy::Caller)),
        "the engine hung up the answered calls: {ended:?}"
    );

    let store = Store::connect(
        &format!("sqlite://{}/switchboard.db", dir.display()),
        &StoreOptions::default(),
    )
    .await
    .unwrap();
    let tenant = store
        .user_by_email("ops@serve.test")
        .await
        .unwrap()
        .map(|u| u.tenant_id)
        .expect("user");
    let (calls, _) = store
        .calls(
            &tenant,
            &CallFilter {
                limit: Some(100),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        calls.iter().all(|c| c.end_time.is_some()),
        "every call row closed: {calls:?}"
    );
    assert!(
        calls.iter().all(|c| c.start_time.unwrap() <= term_at),
        "no dial after SIGTERM"
    );
    let (leads, _) = store
        .leads(
            &tenant,
            &LeadFilter {
                campaign_id: cid.clone(),
                limit: Some(10),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        leads
            .iter()
            .all(|l| l.status != "calling" && l.status != "queued"),
        "{leads:?}"
    );
    store.close().await;
    carrier.shutdown().await;
    phones.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
