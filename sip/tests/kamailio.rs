//! Interop with a real Kamailio (Debian `kamailio`) as registrar and proxy with digest auth.
//!
//! Each test writes a kamailio.cfg into a temp dir (loopback only, a free port, usrloc in
//! memory with db_mode 0, SHA-256 digest against a fixed password, no database), runs
//! `kamailio -DD -E -f cfg` in the foreground and stops it on drop. Without kamailio installed
//! the tests print a notice and pass, unless SWITCHBOARD_REQUIRE_INTEROP=1 (CI), then they fail.

use std::net::{SocketAddr, UdpSocket as StdUdp};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use switchboard_sip::endpoint::{
    CallConfig, CallEvent, Endpoint, EndpointConfig, Transport, TrunkConfig,
};
use switchboard_sip::sdp::LocalMedia;
use switchboard_sip::{CallOutcome, InboundEnd, InboundEvent, RegistrationStatus};
use tokio::time::timeout;

const PASSWORD: &str = "s3cret";
const DOMAIN: &str = "switchboard.test";
const WAIT: Duration = Duration::from_secs(15);

fn config(port: u16) -> String {
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
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"

modparam("usrloc", "db_mode", 0)
modparam("registrar", "max_expires", 600)
modparam("registrar", "min_expires", 30)
modparam("auth", "algorithm", "SHA-256")

request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (is_method("OPTIONS") && uri == myself && $rU == $null) {{
        sl_send_reply("200", "Keepalive");
        exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{
            t_relay();
            exit;
        }}
        if (is_method("ACK")) {{
            if (t_check_trans()) {{
                t_relay();
            }}
            exit;
        }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            t_relay();
        }}
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
    remove_hf("Route");
    if (is_method("INVITE")) {{
        record_route();
    }}
    if (!lookup("location")) {{
        sl_send_reply("404", "Not Found");
        exit;
    }}
    t_relay();
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

fn installed() -> bool {
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
        eprintln!("NOTICE: kamailio not installed; skipping the Kamailio interop test");
    }
    found
}

fn free_port() -> u16 {
    // UDP and TCP must both be free: probe with both.
    loop {
        let udp = StdUdp::bind("127.0.0.1:0").expect("bind probe");
        let port = udp.local_addr().expect("probe addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

async fn start() -> Kamailio {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!(
        "switchboard-kamailio-{}-{port}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cfg = dir.join("kamailio.cfg");
    std::fs::write(&cfg, config(port)).expect("write cfg");
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
    wait_ready(addr).await;
    k
}

/// Sends OPTIONS until kamailio answers (bounded).
async fn wait_ready(addr: SocketAddr) {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let me = sock.local_addr().expect("addr");
    let mut buf = vec![0u8; 4096];
    for i in 0..100 {
        let probe = format!(
            "OPTIONS sip:{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKready{i}\r\n\
             From: <sip:probe@{me}>;tag=r\r\nTo: <sip:{addr}>\r\nCall-ID: ready{i}@test\r\n\
             CSeq: {i} OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            i = i + 1
        );
        let _ = sock.send_to(probe.as_bytes(), addr).await;
        if let Ok(Ok(_)) = timeout(Duration::from_millis(200), sock.recv_from(&mut buf)).await {
            return;
        }
    }
    panic!("kamailio did not answer OPTIONS within 20 s");
}

async fn endpoint() -> Endpoint {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    timeout(WAIT, Endpoint::bind(EndpointConfig::new(addr)))
        .await
        .expect("bind in time")
        .expect("bind")
}

fn trunk(k: &Kamailio, user: &str, password: &str, transport: Transport) -> TrunkConfig {
    let mut t = TrunkConfig::new(&k.addr.to_string(), DOMAIN, user, Some(password));
    t.transport = transport;
    t
}

async fn registers_and_unregisters(transport: Transport) {
    if !installed() {
        return;
    }
    let k = start().await;
    let ep = endpoint().await;
    let mut reg = ep
        .register(trunk(&k, "alice", PASSWORD, transport))
        .await
        .expect("register");
    let status = timeout(WAIT, reg.settled()).await.expect("settled in time");
    assert_eq!(
        status,
        RegistrationStatus::Registered { expires: 600 },
        "kamailio caps our 3600 s at its max_expires"
    );
    let status = timeout(WAIT, reg.unregister()).await.expect("in time");
    assert_eq!(
        status,
        RegistrationStatus::Unregistered { last_error: None }
    );
    drop(k);
}

#[tokio::test]
async fn kamailio_digest_register_and_unregister_udp() {
    registers_and_unregisters(Transport::Udp).await;
}

#[tokio::test]
async fn kamailio_digest_register_and_unregister_tcp() {
    registers_and_unregisters(Transport::Tcp).await;
}

#[tokio::test]
async fn kamailio_wrong_password_fails_with_reason() {
    if !installed() {
        return;
    }
    let k = start().await;
    let ep = endpoint().await;
    let mut reg = ep
        .register(trunk(&k, "mallory", "not-the-password", Transport::Udp))
        .await
        .expect("register");
    let status = timeout(WAIT, reg.settled()).await.expect("settled in time");
    let RegistrationStatus::Failed(failure) = status else {
        panic!("expected a failure, got {status:?}");
    };
    assert!(matches!(failure.status, Some(401 | 403)), "{failure}");
    assert!(failure.reason.contains("wrong"), "clear reason: {failure}");
    let status = timeout(WAIT, reg.unregister()).await.expect("in time");
    assert!(matches!(
        status,
        RegistrationStatus::Unregistered {
            last_error: Some(_)
        }
    ));
}

#[tokio::test]
async fn kamailio_proxies_a_call_to_our_registered_ua() {
    if !installed() {
        return;
    }
    let k = start().await;
    let caller = endpoint().await;
    let mut callee = endpoint().await;
    let mut bob = callee
        .register(trunk(&k, "bob", PASSWORD, Transport::Udp))
        .await
        .expect("register");
    let status = timeout(WAIT, bob.settled()).await.expect("in time");
    assert!(
        matches!(status, RegistrationStatus::Registered { .. }),
        "{status:?}"
    );

    let mut config = CallConfig::new(
        &format!("sip:bob@{DOMAIN}"),
        &format!("sip:alice@{DOMAIN}"),
        LocalMedia::new("127.0.0.1", 41000, 1),
    );
    config.proxy = Some(k.addr.to_string());
    let mut call = caller.call(config).await.expect("call");
    let mut inbound = timeout(WAIT, callee.next_incoming())
        .await
        .expect("INVITE through kamailio in time")
        .expect("endpoint running");
    let offer = inbound.offer.clone().expect("offer relayed");
    inbound.ring().expect("ring");
    let answer = LocalMedia::new("127.0.0.1", 41002, 2)
        .answer(&offer, 1)
        .expect("codec");
    inbound.accept(&answer.sdp).expect("accept");
    loop {
        match timeout(WAIT, call.next_event()).await.expect("in time") {
            Some(CallEvent::Answered { media, .. }) => {
                assert_eq!(media.remote_port, 41002);
                break;
            }
            Some(CallEvent::Ended(cause)) => panic!("ended: {cause:?}"),
            Some(_) => {}
            None => panic!("call handle closed"),
        }
    }
    let confirmed = timeout(WAIT, inbound.next_event())
        .await
        .expect("ACK in time");
    assert_eq!(
        confirmed,
        Some(InboundEvent::Confirmed),
        "ACK routed by Kamailio"
    );
    call.hangup().expect("hangup");
    let end = timeout(WAIT, inbound.ended()).await.expect("BYE in time");
    assert_eq!(end, Some(InboundEnd::RemoteBye));
    loop {
        match timeout(WAIT, call.next_event()).await.expect("in time") {
            Some(CallEvent::Ended(cause)) => {
                assert_eq!(cause.outcome, CallOutcome::Completed);
                break;
            }
            Some(_) => {}
            None => panic!("call handle closed"),
        }
    }
    timeout(WAIT, bob.unregister()).await.expect("in time");
}
