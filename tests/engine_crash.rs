//! `kill -9` at random points: a child engine process (this test binary re-executed with
//! `SB_CRASH_CHILD` set, running the real `Dialer` against a SQLite file) dials a campaign
//! through the carrier simulator (in this process) and is killed with SIGKILL several times,
//! then restarted until the campaign completes. Afterwards: no lead lost (every lead ends in a
//! final status with at least one call), no lead dialled beyond `max_attempts`, no two calls
//! of one lead overlapping, no call of a lead outside 08:00–21:00 in its zone, the DNC number
//! never dialled, and no call row left open.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::Timelike;
use rand::Rng;
use serde_json::json;
use switchboard_engine::calls::CallFilter;
use switchboard_engine::campaigns::CampaignInput;
use switchboard_engine::import::ImportOptions;
use switchboard_engine::leads::LeadFilter;
use switchboard_engine::runner::{DialTrunkConfig, Dialer, DialerConfig, StaticTrunks};
use switchboard_engine::tenancy::{NewUser, Role};
use switchboard_engine::{Store, StoreOptions};
use switchboard_media::runtime::{MediaRuntime, RuntimeConfig};
use switchboard_sim::{AgentConfig, AgentPhones, Behavior, Carrier, CarrierConfig, Plan};
use switchboard_sip::endpoint::{Endpoint, EndpointConfig, Transport};

const LEADS: usize = 24;
const MAX_ATTEMPTS: i64 = 3;

fn lo() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The child: runs the engine on the database at `SB_CRASH_DB` with the carrier at
/// `SB_CRASH_CARRIER` until killed. A no-op in a normal test run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_engine() {
    let (Ok(db), Ok(carrier)) = (
        std::env::var("SB_CRASH_DB"),
        std::env::var("SB_CRASH_CARRIER"),
    ) else {
        return;
    };
    let dir = std::env::var("SB_CRASH_DIR").unwrap();
    let store = Store::connect(&db, &StoreOptions::default()).await.unwrap();
    let endpoint = Arc::new(Endpoint::bind(EndpointConfig::new(lo())).await.unwrap());
    let media = MediaRuntime::start(RuntimeConfig {
        loops: 1,
        bind_ip: "127.0.0.1".parse().unwrap(),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let addr: SocketAddr = carrier.parse().unwrap();
    let trunks = StaticTrunks(vec![DialTrunkConfig {
        id: "sim".into(),
        name: "sim".into(),
        server: carrier.clone(),
        domain: addr.ip().to_string(),
        username: None,
        password: None,
        transport: Transport::Udp,
        max_concurrent: 0,
        max_cps: 0.0,
    }]);
    let mut cfg = DialerConfig::new(
        "127.0.0.1",
        std::path::PathBuf::from(dir).join("recordings"),
    );
    cfg.retry_unit = Duration::from_millis(500);
    cfg.timers.dial_timeout = Duration::from_secs(2);
    cfg.timers.min_ring = Duration::from_secs(1);
    cfg.timers.wrap_up = Duration::from_millis(300);
    cfg.campaign_refresh = Duration::from_millis(200);
    cfg.tick = Duration::from_millis(200);
    cfg.abandon_prompt = switchboard_media::runtime::Clip::from_pcm(&[0; 800]);
    let events = switchboard_engine::events::EventBus::new(1024);
    let _dialer = Dialer::start(store, events, endpoint, media, Arc::new(trunks), cfg)
        .await
        .unwrap();
    println!("child engine running");
    tokio::time::sleep(Duration::from_secs(600)).await;
}

fn spawn_child(db: &str, dir: &str, carrier: SocketAddr) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child_engine",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SB_CRASH_DB", db)
        .env("SB_CRASH_DIR", dir)
        .env("SB_CRASH_CARRIER", carrier.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child engine")
}

fn plan() -> Plan {
    let talk = Duration::from_millis(1500);
    Plan::new()
        .suffix("0", Behavior::Human { talk })
        .suffix("1", Behavior::Human { talk })
        .suffix("2", Behavior::Machine { beep: true })
        .suffix("3", Behavior::Busy)
        .suffix("4", Behavior::NoAnswer)
        .suffix("5", Behavior::Reject(404))
        .suffix("6", Behavior::Unavailable)
        .suffix("7", Behavior::Human { talk })
        .suffix(
            "8",
            Behavior::AnswerAfter {
                ring: Duration::from_millis(800),
                then: Box::new(Behavior::Human { talk }),
            },
        )
        .suffix("9", Behavior::Busy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_minus_nine_loses_nothing_and_breaks_no_rule() {
    if std::env::var("SB_CRASH_DB").is_ok() {
        return; // we are the child's process
    }
    let dir = std::env::temp_dir().join(format!("sb-crash-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.join("sb.db").display());
    let carrier = Carrier::start(CarrierConfig {
        ring: Duration::from_millis(200),
        machine_hangup: Duration::from_secs(3),
        ..CarrierConfig::new(lo(), plan())
    })
    .await
    .unwrap();
    let phones = AgentPhones::start_with(AgentConfig::new(lo()))
        .await
        .unwrap();

    // The campaign, in the parent.
    let store = Store::connect(&db, &StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let (t, _) = store
        .create_tenant_with_owner(
            "Crash",
            &NewUser {
                email: "o@crash.test".into(),
                password_hash: "x".into(),
                role: Role::Owner,
                first_name: None,
                last_name: None,
                phone: None,
            },
        )
        .await
        .unwrap();
    let c = store
        .create_campaign(
            &t.id,
            serde_json::from_value::<CampaignInput>(json!({
                "name": "Crash", "caller_id": "+14155550000", "dial_mode": "progressive", "amd_enabled": true, "record_calls": true,
                "retry_policy": {"max_attempts": MAX_ATTEMPTS, "delay_minutes": 1, "retry_on_no_answer": true, "retry_on_busy": true, "retry_on_voicemail": true}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let zone = switchboard_sim::daytime_zone();
    let mut csv = String::from("phone,timezone\n");
    for i in 0..LEADS {
        csv.push_str(&format!("+1212555{:04},{zone}\n", 2300 + i));
    }
    store
        .import_leads(
            &t.id,
            &c.id,
            None,
            std::io::Cursor::new(csv.into_bytes()),
            &ImportOptions {
                default_country: "US".into(),
            },
        )
        .await
        .unwrap();
    // One lead becomes DNC after the import: it must never be dialled.
    let dnc = "+12125552305";
    store.add_dnc(&t.id, dnc, None, None).await.unwrap();
    for i in 0..3 {
        let a = store
            .create_agent(
                &t.id,
                serde_json::from_value(
                    json!({"name": format!("A{i}"), "endpoint": phones.uri(&format!("a{i}"))}),
                )
                .unwrap(),
            )
            .await
            .unwrap();
        store
            .set_agent_status(&t.id, &a.id, "available")
            .await
            .unwrap();
    }
    store.start_campaign(&t.id, &c.id).await.unwrap();

    // Kill the engine at random points, several times.
    let mut rng = rand::thread_rng();
    let dir_s = dir.display().to_string();
    for round in 0..5 {
        let mut child = spawn_child(&db, &dir_s, carrier.sip_addr());
        let ms = rng.gen_range(700..3500);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        let made = store.campaign(&t.id, &c.id).await.unwrap().calls_made;
        eprintln!("round {round}: killed after {ms} ms, calls made so far {made}");
    }
    // The last run finishes the campaign.
    let mut child = spawn_child(&db, &dir_s, carrier.sip_addr());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let camp = store.campaign(&t.id, &c.id).await.unwrap();
        if camp.status == "completed" {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("campaign did not complete: {camp:?}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Let the last writes land, then stop the engine.
    tokio::time::sleep(Duration::from_millis(500)).await;
    child.kill().unwrap();
    let _ = child.wait();

    let (leads, _) = store
        .leads(
            &t.id,
            &LeadFilter {
                campaign_id: c.id.clone(),
                limit: Some(100),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (calls, _) = store
        .calls(
            &t.id,
            &CallFilter {
                limit: Some(100),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(leads.len(), LEADS);
    let tz: chrono_tz::Tz = zone.parse().unwrap();
    for l in &leads {
        let mine: Vec<_> = calls
            .iter()
            .filter(|c| c.lead_id.as_deref() == Some(l.id.as_str()))
            .collect();
        if l.phone_normalized == dnc {
            assert!(mine.is_empty(), "the DNC number was dialled");
            assert_eq!(l.status, "dnc");
            continue;
        }
        assert!(
            ["completed", "failed"].contains(&l.status.as_str()),
            "lead {} left {}",
            l.phone_normalized,
            l.status
        );
        assert!(
            !mine.is_empty(),
            "lead {} never dialled",
            l.phone_normalized
        );
        assert!(
            mine.len() as i64 <= MAX_ATTEMPTS,
            "lead {} dialled {} times",
            l.phone_normalized,
            mine.len()
        );
        assert_eq!(
            mine.len() as i64,
            l.call_attempts,
            "attempts counted = calls made for {}",
            l.phone_normalized
        );
        let mut spans: Vec<_> = mine
            .iter()
            .map(|c| {
                (
                    c.start_time.unwrap(),
                    c.end_time.expect("every call closed"),
                )
            })
            .collect();
        spans.sort();
        for w in spans.windows(2) {
            assert!(
                w[0].1 <= w[1].0,
                "two calls of lead {} overlap: {:?}",
                l.phone_normalized,
                w
            );
        }
        for (start, _) in &spans {
            let h = start.with_timezone(&tz).hour();
            assert!((8..21).contains(&h), "call at {h}:00 local");
        }
    }
    // Recordings cut by the kills were repaired when the next engine started: nothing is
    // left to repair, and every linked recording reads back as stereo.
    let left = switchboard_recordings::repair_dir(&dir.join("recordings")).unwrap();
    assert!(
        left.repaired.is_empty() && left.failed.is_empty(),
        "{left:?}"
    );
    for call in &calls {
        let row = store.call_row(&t.id, &call.id).await.unwrap();
        if let Some(key) = row.recording_path {
            let wav =
                switchboard_recordings::read_pcm16(&dir.join("recordings").join(key)).unwrap();
            assert_eq!(wav.channels, 2);
        }
    }
    assert_eq!(
        store.campaign(&t.id, &c.id).await.unwrap().calls_made,
        calls.len() as i64,
        "calls_made agrees with the call rows"
    );
    carrier.shutdown().await;
    phones.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
