//! The telephony service with real SIP peers on loopback: our own endpoint as an OPTIONS
//! answerer (and a registrar-less UAS), a silent socket, and Kamailio as a registrar with
//! digest (skipped unless installed; required when SWITCHBOARD_REQUIRE_INTEROP=1).

#[allow(dead_code)] // only the tenant helper is used here
mod common;

use std::net::{SocketAddr, UdpSocket as StdUdp};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchboard_engine::events::{Channel, Event, EventBus};
use switchboard_engine::telephony::{
    RegState, SecretBox, Telephony, TelephonyOptions, TrunkInput, TrunkTestInput,
};
use switchboard_engine::{Store, StoreOptions};
use switchboard_sip::endpoint::{CallConfig, CallEvent, Endpoint, EndpointConfig};
use switchboard_sip::sdp::LocalMedia;
use tokio::sync::broadcast;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);
const PASSWORD: &str = "s3cret";
const DOMAIN: &str = "switchboard.test";

async fn store() -> Store {
    let s = Store::connect("sqlite::memory:", &StoreOptions::default())
        .await
        .expect("open");
    s.migrate().await.expect("migrate");
    s
}

fn input(v: Value) -> TrunkInput {
    serde_json::from_value(v).expect("trunk body")
}

fn loopback() -> EndpointConfig {
    EndpointConfig::new("127.0.0.1:0".parse().expect("addr"))
}

fn options() -> TelephonyOptions {
    TelephonyOptions {
        retry_initial: Duration::from_secs(30),
        test_wait: Duration::from_secs(5),
        ..TelephonyOptions::default()
    }
}

/// Bus events, buffered so they can be awaited in any order.
struct Seen {
    rx: broadcast::Receiver<Arc<Event>>,
    buffer: Vec<Arc<Event>>,
}

impl Seen {
    fn new(bus: &EventBus) -> Seen {
        Seen {
            rx: bus.subscribe(),
            buffer: Vec::new(),
        }
    }

    /// The first not yet taken event of `kind` about `trunk`, waiting (bounded) for it.
    async fn take(&mut self, kind: &str, trunk: &str) -> Arc<Event> {
        let matches = |e: &Event| e.kind == kind && e.data["trunkId"] == trunk;
        if let Some(i) = self.buffer.iter().position(|e| matches(e)) {
            return self.buffer.remove(i);
        }
        let rx = &mut self.rx;
        let buffer = &mut self.buffer;
        timeout(WAIT, async {
            loop {
                let e = rx.recv().await.expect("bus open");
                if matches(&e) {
                    return e;
                }
                buffer.push(e);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {kind} for {trunk} in time"))
    }
}

#[tokio::test]
async fn test_pings_a_real_uas_and_reports_a_silent_one() {
    let store = store().await;
    let (t, _) = common::tenant(&store, "Acme").await;
    let sb = SecretBox::new(SecretBox::generate_key());
    let peer = Endpoint::bind(loopback()).await.expect("peer");
    let silent = StdUdp::bind("127.0.0.1:0").expect("silent");
    let (up, _) = store
        .configure_trunk(
            &t,
            input(json!({"name": "Up", "server": "127.0.0.1", "port": peer.local_addr().port(), "register": false, "priority": 1})),
            &sb,
        )
        .await
        .unwrap();
    let (down, _) = store
        .configure_trunk(
            &t,
            input(json!({"name": "Down", "server": "127.0.0.1", "port": silent.local_addr().unwrap().port(), "register": false, "priority": 2})),
            &sb,
        )
        .await
        .unwrap();
    let mut opts = options();
    opts.test_wait = Duration::from_millis(1500);
    let tel = Telephony::start_with(store.clone(), EventBus::default(), sb, loopback(), opts)
        .await
        .expect("start");

    // No id: the first trunk in failover order.
    let r = tel.test(&t, TrunkTestInput::default()).await.unwrap();
    assert_eq!(r.trunk_id.as_deref(), Some(up.id.as_str()));
    assert!(r.reachable && r.ok, "{r:?}");
    assert_eq!(r.options.status, Some(200));
    assert!(r.options.latency_ms.is_some());
    assert!(r.registration.is_none(), "IP-authenticated: no REGISTER");

    let r = tel
        .test(
            &t,
            TrunkTestInput {
                id: Some(down.id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!r.reachable && !r.ok, "{r:?}");
    assert_eq!(r.options.status, None);
    assert!(r.options.reason.contains("no response"), "{r:?}");

    // Unsaved settings are tested without being stored.
    let r = tel
        .test(
            &t,
            TrunkTestInput {
                trunk: Some(input(json!({"server": "127.0.0.1", "port": peer.local_addr().port(), "transport": "tcp", "register": false}))),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(r.reachable && r.trunk_id.is_none(), "{r:?}");
    assert!(r.options.target.ends_with(";transport=tcp"), "{r:?}");
    assert_eq!(store.trunks(&t).await.unwrap().len(), 2);

    // Another tenant's trunk looks absent.
    let (other, _) = common::tenant(&store, "Other").await;
    let err = tel
        .test(
            &other,
            TrunkTestInput {
                id: Some(up.id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, switchboard_engine::Error::NotFound { .. }));
    tel.shutdown().await;
}

#[tokio::test]
async fn a_refused_registration_is_failed_with_the_status_and_published() {
    // Our own endpoint is no registrar: it answers REGISTER 501.
    let store = store().await;
    let (t, _) = common::tenant(&store, "Acme").await;
    let sb = SecretBox::new(SecretBox::generate_key());
    let peer = Endpoint::bind(loopback()).await.expect("peer");
    let (trunk, _) = store
        .configure_trunk(
            &t,
            input(json!({"name": "NoRegistrar", "server": "127.0.0.1", "port": peer.local_addr().port(), "username": "alice", "password": "pw"})),
            &sb,
        )
        .await
        .unwrap();
    let (ip, _) = store
        .configure_trunk(
            &t,
            input(json!({"name": "Ip", "server": "127.0.0.1", "register": false})),
            &sb,
        )
        .await
        .unwrap();
    let bus = EventBus::default();
    let mut rx = Seen::new(&bus);
    let tel = Telephony::start_with(store.clone(), bus, sb, loopback(), options())
        .await
        .expect("start");
    let e = rx.take("sipRegistrationFailed", &trunk.id).await;
    assert_eq!(e.channel, Channel::Sip);
    assert_eq!(e.tenant_id.as_deref(), Some(t.as_str()));
    assert_eq!(e.data["status"], 501);
    let status = tel.status(&t).await.unwrap();
    let s = status.iter().find(|s| s.trunk_id == trunk.id).unwrap();
    assert_eq!(s.state, RegState::Failed);
    assert_eq!(s.status_code, Some(501));
    assert!(s.next_retry_at.is_some());
    let s = status.iter().find(|s| s.trunk_id == ip.id).unwrap();
    assert_eq!(s.state, RegState::NotRequired);
    let summary = tel.summary();
    assert_eq!(
        (summary.trunks, summary.failed, summary.status),
        (1, 1, "down")
    );

    // Inbound INVITEs are refused with 480 until someone takes them.
    let caller = Endpoint::bind(loopback()).await.expect("caller");
    let mut call = caller
        .call(CallConfig::new(
            &format!("sip:bob@{}", tel.local_addr()),
            "sip:alice@127.0.0.1",
            LocalMedia::new("127.0.0.1", 40000, 1),
        ))
        .await
        .expect("call");
    let ended = timeout(WAIT, async {
        loop {
            match call.next_event().await {
                Some(CallEvent::Ended(cause)) => return cause,
                Some(_) => {}
                None => panic!("call handle closed"),
            }
        }
    })
    .await
    .expect("refused in time");
    assert_eq!(ended.status, Some(480));
    let mut incoming = tel.take_incoming().await.expect("handed over");
    assert!(tel.take_incoming().await.is_none(), "once");
    let _call = caller
        .call(CallConfig::new(
            &format!("sip:bob@{}", tel.local_addr()),
            "sip:alice@127.0.0.1",
            LocalMedia::new("127.0.0.1", 40002, 1),
        ))
        .await
        .expect("call");
    let inbound = timeout(WAIT, incoming.next())
        .await
        .expect("in time")
        .expect("an INVITE");
    assert!(inbound.request_uri.starts_with("sip:bob@"));
    inbound.reject(486, "Busy Here").expect("reject");

    tel.shutdown().await;
    let e = rx.take("sipUnregistered", &trunk.id).await;
    assert_eq!(e.data["registered"], false);
}

// ------------------------------------------------------------------ Kamailio

fn kamailio_config(port: u16) -> String {
    format!(
        r#"#!KAMAILIO
debug=2
log_stderror=yes
children=1
tcp_children=1
auto_aliases=no
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
alias="127.0.0.1:{port}"

loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"

modparam("usrloc", "db_mode", 0)
modparam("registrar", "max_expires", 600)
modparam("registrar", "min_expires", 30)

request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (is_method("OPTIONS") && uri == myself && $rU == $null) {{
        sl_send_reply("200", "Keepalive");
        exit;
    }}
    if (is_method("REGISTER")) {{
        if (!pv_www_authenticate("$td", "{PASSWORD}", "0")) {{
            www_challenge("$td", "1");
            exit;
        }}
        consume_credentials();
        if (!save("location")) {{
            sl_reply_error();
        }}
        exit;
    }}
    sl_send_reply("404", "Not here");
}}
"#
    )
}

/// A running kamailio; stopped (SIGTERM, then SIGKILL) and its temp dir removed on drop.
struct Kamailio {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..30 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn kamailio_installed() -> bool {
    let found = Command::new("kamailio")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("SWITCHBOARD_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("kamailio is not installed but SWITCHBOARD_REQUIRE_INTEROP=1");
        }
        eprintln!("NOTICE: kamailio not installed; skipping the trunk registration test");
    }
    found
}

fn free_port() -> u16 {
    loop {
        let udp = StdUdp::bind("127.0.0.1:0").expect("bind probe");
        let port = udp.local_addr().expect("probe addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

async fn start_kamailio() -> Kamailio {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!(
        "switchboard-trunks-kamailio-{}-{port}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cfg = dir.join("kamailio.cfg");
    std::fs::write(&cfg, kamailio_config(port)).expect("write cfg");
    let log = std::fs::File::create(dir.join("kamailio.log")).expect("log file");
    let child = Command::new("kamailio")
        .args(["-DD", "-E", "-f"])
        .arg(&cfg)
        .args(["-w", &dir.to_string_lossy()])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn kamailio");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let k = Kamailio { child, dir, addr };
    // Ready when it answers OPTIONS (bounded).
    let probe = Endpoint::bind(loopback()).await.expect("probe");
    for _ in 0..40 {
        if let Ok(Ok(_)) = timeout(
            Duration::from_millis(500),
            probe.options(&format!("sip:{addr}"), None, None),
        )
        .await
        {
            return k;
        }
    }
    panic!("kamailio did not answer OPTIONS within 20 s");
}

#[tokio::test]
async fn kamailio_registration_lifecycle_with_events() {
    if !kamailio_installed() {
        return;
    }
    let k = start_kamailio().await;
    let store = store().await;
    let (t, _) = common::tenant(&store, "Acme").await;
    let sb = SecretBox::new(SecretBox::generate_key());
    let trunk = |name: &str, user: &str, pw: &str, transport: &str| {
        input(json!({
            "name": name, "provider": "Asterisk", "server": "127.0.0.1", "port": k.addr.port(),
            "domain": DOMAIN, "username": user, "password": pw, "transport": transport
        }))
    };
    let (good, _) = store
        .configure_trunk(&t, trunk("Good", "alice", PASSWORD, "udp"), &sb)
        .await
        .unwrap();
    let (tcp, _) = store
        .configure_trunk(&t, trunk("Tcp", "carol", PASSWORD, "TCP"), &sb)
        .await
        .unwrap();
    let (bad, _) = store
        .configure_trunk(&t, trunk("Bad", "mallory", "not-the-password", "udp"), &sb)
        .await
        .unwrap();

    let bus = EventBus::default();
    let mut rx = Seen::new(&bus);
    let tel = Telephony::start_with(store.clone(), bus, sb.clone(), loopback(), options())
        .await
        .expect("start");

    // Right password: registered, with Kamailio's granted expiry.
    let e = rx.take("sipRegistered", &good.id).await;
    assert_eq!(
        (e.channel, e.tenant_id.as_deref()),
        (Channel::Sip, Some(t.as_str()))
    );
    assert_eq!(e.data["expires"], 600, "kamailio caps our 3600 s");
    rx.take("sipRegistered", &tcp.id).await;
    // Wrong password: failed with a clear reason.
    let e = rx.take("sipRegistrationFailed", &bad.id).await;
    assert_eq!(e.data["status"], 401);
    let reason = e.data["reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("wrong username or password"), "{reason}");

    let status = tel.status(&t).await.unwrap();
    let by_id = |id: &str| status.iter().find(|s| s.trunk_id == id).unwrap().clone();
    let g = by_id(&good.id);
    assert_eq!(
        (g.state, g.registered, g.expires),
        (RegState::Registered, true, Some(600))
    );
    assert!(g.expires_at.is_some());
    let b = by_id(&bad.id);
    assert_eq!((b.state, b.status_code), (RegState::Failed, Some(401)));
    assert!(b
        .last_error
        .as_deref()
        .unwrap()
        .contains("credentials rejected"));
    let summary = tel.summary();
    assert_eq!(
        (
            summary.trunks,
            summary.registered,
            summary.failed,
            summary.status
        ),
        (3, 2, 1, "degraded")
    );

    // The test endpoint: OPTIONS to Kamailio; REGISTER proof for a live and an unsaved trunk.
    let r = tel
        .test(
            &t,
            TrunkTestInput {
                id: Some(good.id.clone()),
                register: true,
                trunk: None,
            },
        )
        .await
        .unwrap();
    assert!(r.ok && r.reachable, "{r:?}");
    assert_eq!(
        (r.options.status, r.options.reason.as_str()),
        (Some(200), "Keepalive")
    );
    let reg = r.registration.unwrap();
    assert_eq!((reg.source, reg.registered), ("live", true));
    let r = tel
        .test(
            &t,
            TrunkTestInput {
                trunk: Some(trunk("Probe", "dave", "wrong", "udp")),
                register: true,
                id: None,
            },
        )
        .await
        .unwrap();
    let reg = r.registration.clone().unwrap();
    assert!(r.reachable && !r.ok, "{r:?}");
    assert_eq!(
        (reg.source, reg.registered, reg.status_code),
        ("probe", false, Some(401))
    );
    let r = tel
        .test(
            &t,
            TrunkTestInput {
                trunk: Some(trunk("Probe", "erin", PASSWORD, "udp")),
                register: true,
                id: None,
            },
        )
        .await
        .unwrap();
    assert!(r.ok, "{r:?}");
    assert_eq!(r.registration.unwrap().expires, Some(600));

    // Fix the password, apply: the old registration goes, the new one registers.
    store
        .configure_trunk(
            &t,
            input(json!({"id": bad.id, "password": PASSWORD, "username": "bob"})),
            &sb,
        )
        .await
        .unwrap();
    tel.apply(&t, &bad.id).await.unwrap();
    rx.take("sipUnregistered", &bad.id).await;
    rx.take("sipRegistered", &bad.id).await;
    assert_eq!(tel.summary().registered, 3);

    // Re-register now.
    let s = tel.reregister(&t, &good.id).await.unwrap();
    assert_eq!(s.state, RegState::Registered, "{s:?}");
    // Another tenant cannot touch it.
    let (other, _) = common::tenant(&store, "Other").await;
    assert!(tel.reregister(&other, &good.id).await.is_err());
    assert!(tel.status(&other).await.unwrap().is_empty());

    // Disable: unregistered, reported as disabled.
    store
        .configure_trunk(&t, input(json!({"id": tcp.id, "enabled": false})), &sb)
        .await
        .unwrap();
    tel.apply(&t, &tcp.id).await.unwrap();
    rx.take("sipUnregistered", &tcp.id).await;
    let status = tel.status(&t).await.unwrap();
    assert_eq!(
        status.iter().find(|s| s.trunk_id == tcp.id).unwrap().state,
        RegState::Disabled
    );

    // Shutdown unregisters the rest.
    tel.shutdown().await;
    rx.take("sipUnregistered", &good.id).await;
    rx.take("sipUnregistered", &bad.id).await;
    drop(k);
}

// ------------------------------------------------------------------ agent softphones

/// Registers `user` with `password` at `registrar` from a fresh endpoint (a softphone) and
/// returns the first settled status.
async fn softphone_register(
    registrar: SocketAddr,
    user: &str,
    password: &str,
) -> (
    Endpoint,
    switchboard_sip::endpoint::RegistrationHandle,
    switchboard_sip::RegistrationStatus,
) {
    use switchboard_sip::endpoint::TrunkConfig;
    use switchboard_sip::RegistrationStatus;
    let phone = Endpoint::bind(loopback()).await.expect("phone");
    let mut cfg = TrunkConfig::new(&registrar.to_string(), "switchboard", user, Some(password));
    cfg.expires = 120;
    cfg.retry_initial = Duration::from_secs(60);
    let reg = phone.register(cfg).await.expect("register");
    let status = timeout(WAIT, async {
        loop {
            match reg.status() {
                RegistrationStatus::Registering => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                s => return s,
            }
        }
    })
    .await
    .expect("a registration outcome");
    (phone, reg, status)
}

#[tokio::test]
async fn agent_softphone_logins_register_with_the_engine() {
    use switchboard_engine::telephony::AgentSipInput;
    use switchboard_sip::RegistrationStatus;
    let dir = std::env::temp_dir().join(format!("sb-softphones-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/t.db?mode=rwc", dir.display());
    let store = Store::connect(&url, &StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let (t, _) = common::tenant(&store, "Acme").await;
    let ann = store
        .create_agent(&t, serde_json::from_value(json!({"name": "Ann"})).unwrap())
        .await
        .unwrap();
    let bob = store
        .create_agent(&t, serde_json::from_value(json!({"name": "Bob"})).unwrap())
        .await
        .unwrap();
    let key = SecretBox::generate_key();
    let tel = Telephony::start_with(
        store.clone(),
        EventBus::default(),
        SecretBox::new(key),
        loopback(),
        options(),
    )
    .await
    .expect("start");
    let login = |u: &str, p: &str| AgentSipInput {
        username: u.into(),
        password: p.into(),
    };
    let s = tel
        .set_agent_sip(&t, &ann.id, &login("ann", "correct horse"))
        .await
        .unwrap();
    assert_eq!(
        (s.username.as_deref(), s.realm.as_str(), s.registered),
        (Some("ann"), "switchboard", false)
    );
    // One user name per engine.
    let dup = tel
        .set_agent_sip(&t, &bob.id, &login("ann", "another pass"))
        .await;
    assert!(
        matches!(dup, Err(switchboard_engine::Error::Conflict { .. })),
        "{dup:?}"
    );
    // Bad input names the field and stores nothing.
    let bad = tel.set_agent_sip(&t, &bob.id, &login("b b", "x")).await;
    assert!(
        matches!(bad, Err(switchboard_engine::Error::Validation { ref issues }) if issues.len() == 2),
        "{bad:?}"
    );
    assert_eq!(store.agent_sip_username(&t, &bob.id).await.unwrap(), None);
    // The password is stored sealed.
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    let col: String = sqlx::query_scalar("SELECT sip_password_enc FROM agents WHERE id = $1")
        .bind(&ann.id)
        .fetch_one(&raw)
        .await
        .unwrap();
    assert!(
        col.starts_with("v1:") && !col.contains("correct horse"),
        "{col}"
    );

    // A wrong password is refused; the right one registers, and the engine knows the contact.
    let (_p, _r, wrong) = softphone_register(tel.local_addr(), "ann", "wrong horse").await;
    assert!(
        matches!(&wrong, RegistrationStatus::Failed(f) if f.status == Some(403)),
        "{wrong:?}"
    );
    let (phone, _reg, ok) = softphone_register(tel.local_addr(), "ann", "correct horse").await;
    assert!(
        matches!(ok, RegistrationStatus::Registered { .. }),
        "{ok:?}"
    );
    let s = tel.agent_sip(&t, &ann.id).await.unwrap();
    assert!(s.registered, "{s:?}");
    let contact = s.contact.unwrap();
    assert!(
        contact.contains(&phone.local_addr().port().to_string()),
        "{contact} is the phone's address"
    );
    tel.shutdown().await;

    // After a restart the logins are loaded again (with the same key).
    let tel = Telephony::start_with(
        store.clone(),
        EventBus::default(),
        SecretBox::new(key),
        loopback(),
        options(),
    )
    .await
    .expect("restart");
    let (_p2, _r2, again) = softphone_register(tel.local_addr(), "ann", "correct horse").await;
    assert!(
        matches!(again, RegistrationStatus::Registered { .. }),
        "{again:?}"
    );
    // A removed login can no longer register.
    let s = tel.clear_agent_sip(&t, &ann.id).await.unwrap();
    assert_eq!(s.username, None);
    let (_p3, _r3, gone) = softphone_register(tel.local_addr(), "ann", "correct horse").await;
    assert!(
        matches!(&gone, RegistrationStatus::Failed(f) if f.status == Some(403)),
        "{gone:?}"
    );
    tel.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
