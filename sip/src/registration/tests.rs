//! Registration tests in virtual time: a scripted registrar answers each REGISTER.

use std::time::{Duration, Instant};

use super::*;
use crate::digest::{Algorithm, Challenge, Credentials};

struct SeqIds(u32);

impl IdSource for SeqIds {
    fn call_id(&mut self) -> String {
        self.0 += 1;
        format!("reg{}@test", self.0)
    }
    fn tag(&mut self) -> String {
        self.0 += 1;
        format!("tag{}", self.0)
    }
    fn branch(&mut self) -> String {
        self.0 += 1;
        format!("br{}", self.0)
    }
    fn cnonce(&mut self) -> String {
        self.0 += 1;
        format!("cn{}", self.0)
    }
}

const PASSWORD: &str = "s3cret";
const CONTACT: &str = "sip:alice@192.0.2.10:5060";

fn config() -> RegistrationConfig {
    let mut c = RegistrationConfig::new(
        "sip:trunk.example",
        "sip:alice@trunk.example",
        CONTACT,
        "192.0.2.10:5060",
    );
    c.auth = Some(AuthCredentials {
        username: "alice".into(),
        password: PASSWORD.into(),
    });
    c.expires = 300;
    c
}

fn start(now: Instant, config: RegistrationConfig) -> Registration {
    Registration::new(now, config, Box::new(SeqIds(0))).expect("valid config")
}

/// The one REGISTER the machine queued (retransmissions aside).
fn sent(reg: &mut Registration) -> Request {
    let mut last = None;
    while let Some(m) = reg.poll_transmit() {
        last = Some(m);
    }
    match last {
        Some(Message::Request(r)) if r.method == Method::Register => r,
        other => panic!("expected a REGISTER, got {other:?}"),
    }
}

fn reply(req: &Request, status: u16, reason: &str) -> Response {
    let mut r = Response::from_request(req, status, reason);
    r.set_to_tag("srv").expect("To parses");
    r
}

fn challenge(req: &Request, nonce: &str, algorithm: Algorithm, stale: bool) -> Message {
    let mut r = reply(req, 401, "Unauthorized");
    let mut ch = Challenge::new("trunk.example", nonce, algorithm);
    ch.stale = stale;
    r.headers.push(HeaderName::WWW_AUTHENTICATE, ch.to_string());
    Message::Response(r)
}

fn ok(req: &Request, contact_expires: Option<u32>, header_expires: Option<u32>) -> Message {
    let mut r = reply(req, 200, "OK");
    match contact_expires {
        Some(e) => r
            .headers
            .push(HeaderName::CONTACT, format!("<{CONTACT}>;expires={e}")),
        None => r.headers.push(HeaderName::CONTACT, format!("<{CONTACT}>")),
    }
    if let Some(e) = header_expires {
        r.headers.push(HeaderName::new("Expires"), e.to_string());
    }
    Message::Response(r)
}

fn creds(req: &Request) -> Credentials {
    req.headers
        .authorization()
        .expect("Authorization parses")
        .into_iter()
        .next()
        .expect("an Authorization header")
}

fn expires_of(req: &Request) -> Option<&str> {
    req.headers.get("Expires")
}

fn events(reg: &mut Registration) -> Vec<RegistrationEvent> {
    std::iter::from_fn(|| reg.poll_event()).collect()
}

/// Registers through one challenge with `algorithm`; returns the machine at the 2xx.
fn register_with(now: Instant, algorithm: Algorithm, granted: u32) -> Registration {
    let mut reg = start(now, config());
    let first = sent(&mut reg);
    assert_eq!(expires_of(&first), Some("300"));
    assert!(first.headers.get("Authorization").is_none());
    let via = first.headers.top_via().expect("Via");
    assert_eq!(via.sent_by(), "192.0.2.10:5060");
    assert_eq!(via.rport(), Some(None), "rport asked for (RFC 3581)");
    reg.handle_message(now, challenge(&first, "n1", algorithm, false));
    let second = sent(&mut reg);
    let c = creds(&second);
    assert_eq!(c.algorithm, algorithm);
    assert_eq!(c.qop, Some(crate::digest::Qop::Auth));
    assert_eq!(c.nc, Some(1));
    assert!(c.verify(PASSWORD, "REGISTER", &[]), "digest verifies");
    assert_eq!(
        second.headers.cseq().expect("CSeq").seq,
        first.headers.cseq().expect("CSeq").seq + 1
    );
    assert_eq!(second.headers.call_id().ok(), first.headers.call_id().ok());
    reg.handle_message(now, ok(&second, Some(granted), None));
    reg
}

#[test]
fn md5_challenge_registers_with_granted_expiry_and_refreshes_early() {
    let t0 = Instant::now();
    let mut reg = register_with(t0, Algorithm::Md5, 120);
    assert_eq!(
        events(&mut reg),
        vec![RegistrationEvent::Registered { expires: 120 }]
    );
    assert_eq!(
        reg.status(),
        &RegistrationStatus::Registered { expires: 120 }
    );
    // max(120/2, 120 - 40) = 80 s.
    assert_eq!(reg.poll_timeout(), Some(t0 + Duration::from_secs(80)));
    reg.handle_timeout(t0 + Duration::from_secs(79));
    assert!(reg.poll_transmit().is_none(), "not yet");
    let t1 = t0 + Duration::from_secs(80);
    reg.handle_timeout(t1);
    let refresh = sent(&mut reg);
    let c = creds(&refresh);
    assert_eq!(c.nc, Some(2), "pre-emptive answer counts the nonce");
    assert!(c.verify(PASSWORD, "REGISTER", &[]));
    assert_eq!(expires_of(&refresh), Some("300"));
    reg.handle_message(t1, ok(&refresh, None, Some(3600)));
    assert_eq!(
        events(&mut reg),
        vec![RegistrationEvent::Registered { expires: 3600 }]
    );
    // max(1800, 3600 - 40) = 3560 s.
    assert_eq!(reg.poll_timeout(), Some(t1 + Duration::from_secs(3560)));
}

#[test]
fn sha256_sess_keeps_its_client_nonce_across_refreshes() {
    let t0 = Instant::now();
    let mut reg = register_with(t0, Algorithm::Sha256Sess, 60);
    events(&mut reg);
    // Short binding: refresh at half-life.
    assert_eq!(reg.poll_timeout(), Some(t0 + Duration::from_secs(30)));
    let t1 = t0 + Duration::from_secs(30);
    reg.handle_timeout(t1);
    let refresh = sent(&mut reg);
    let c = creds(&refresh);
    assert_eq!(c.algorithm, Algorithm::Sha256Sess);
    assert_eq!(c.nc, Some(2));
    assert!(c.verify(PASSWORD, "REGISTER", &[]));
    // The session key H(H(u:r:p):nonce:cnonce) is fixed for the nonce: the cnonce of the
    // answer to the challenge (the 4th id drawn) is kept.
    assert_eq!(c.cnonce.as_deref(), Some("cn4"));
}

#[test]
fn refresh_meeting_a_new_nonce_is_answered_without_failing() {
    let t0 = Instant::now();
    let mut reg = register_with(t0, Algorithm::Md5, 120);
    events(&mut reg);
    let t1 = t0 + Duration::from_secs(80);
    reg.handle_timeout(t1);
    let refresh = sent(&mut reg);
    reg.handle_message(t1, challenge(&refresh, "n2", Algorithm::Md5, false));
    let answer = sent(&mut reg);
    let c = creds(&answer);
    assert_eq!((c.nonce.as_str(), c.nc), ("n2", Some(1)));
    reg.handle_message(t1, ok(&answer, Some(120), None));
    assert_eq!(
        events(&mut reg),
        vec![RegistrationEvent::Registered { expires: 120 }]
    );
}

#[test]
fn wrong_password_fails_with_reason_then_backs_off_exponentially_to_the_cap() {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.retry_initial = Duration::from_secs(5);
    cfg.retry_max = Duration::from_secs(30);
    let mut reg = start(t0, cfg);
    let mut now = t0;
    let mut waits = Vec::new();
    for round in 0..5 {
        let first = sent(&mut reg);
        reg.handle_message(
            now,
            challenge(&first, &format!("a{round}"), Algorithm::Md5, false),
        );
        let answer = sent(&mut reg);
        reg.handle_message(
            now,
            challenge(&answer, &format!("b{round}"), Algorithm::Md5, false),
        );
        let evs = events(&mut reg);
        let [RegistrationEvent::Failed { failure, retry_in }] = evs.as_slice() else {
            panic!("expected one failure, got {evs:?}");
        };
        assert_eq!(failure.status, Some(401));
        assert!(
            failure.reason.contains("wrong username or password"),
            "{}",
            failure.reason
        );
        assert!(matches!(reg.status(), RegistrationStatus::Failed(f) if f.status == Some(401)));
        waits.push(retry_in.as_secs());
        assert_eq!(reg.poll_timeout(), Some(now + *retry_in));
        now += *retry_in;
        reg.handle_timeout(now);
    }
    assert_eq!(waits, vec![5, 10, 20, 30, 30]);
}

#[test]
fn stale_nonce_is_answered_again() {
    let t0 = Instant::now();
    let mut reg = start(t0, config());
    let first = sent(&mut reg);
    reg.handle_message(t0, challenge(&first, "n1", Algorithm::Md5, false));
    let answer = sent(&mut reg);
    reg.handle_message(t0, challenge(&answer, "n2", Algorithm::Md5, true));
    let again = sent(&mut reg);
    assert_eq!(creds(&again).nonce, "n2");
    reg.handle_message(t0, ok(&again, Some(300), None));
    assert_eq!(
        events(&mut reg),
        vec![RegistrationEvent::Registered { expires: 300 }]
    );
}

#[test]
fn interval_too_brief_retries_with_min_expires() {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.auth = None;
    cfg.expires = 60;
    let mut reg = start(t0, cfg);
    let first = sent(&mut reg);
    let mut r = reply(&first, 423, "Interval Too Brief");
    r.headers.push(HeaderName::new("Min-Expires"), "600");
    reg.handle_message(t0, Message::Response(r));
    let retry = sent(&mut reg);
    assert_eq!(expires_of(&retry), Some("600"));
    assert_eq!(reg.requested_expires(), 600);
    reg.handle_message(t0, ok(&retry, None, None));
    assert_eq!(
        events(&mut reg),
        vec![RegistrationEvent::Registered { expires: 600 }],
        "no expiry in the 2xx: what we asked"
    );
}

#[test]
fn challenge_without_credentials_fails() {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.auth = None;
    let mut reg = start(t0, cfg);
    let first = sent(&mut reg);
    reg.handle_message(t0, challenge(&first, "n1", Algorithm::Md5, false));
    let evs = events(&mut reg);
    assert!(
        matches!(evs.as_slice(), [RegistrationEvent::Failed { failure, .. }]
        if failure.status == Some(401) && failure.reason.contains("none configured"))
    );
}

#[test]
fn forbidden_and_service_unavailable_with_retry_after() {
    let t0 = Instant::now();
    let mut reg = start(t0, config());
    let first = sent(&mut reg);
    reg.handle_message(t0, Message::Response(reply(&first, 403, "Forbidden")));
    let evs = events(&mut reg);
    assert!(
        matches!(evs.as_slice(), [RegistrationEvent::Failed { failure, retry_in }]
        if failure.status == Some(403) && failure.reason == "Forbidden" && *retry_in == Duration::from_secs(5))
    );
    let t1 = t0 + Duration::from_secs(5);
    reg.handle_timeout(t1);
    let second = sent(&mut reg);
    let mut r = reply(&second, 503, "Service Unavailable");
    r.headers
        .push(HeaderName::new("Retry-After"), "120 (maintenance)");
    reg.handle_message(t1, Message::Response(r));
    let evs = events(&mut reg);
    assert!(
        matches!(evs.as_slice(), [RegistrationEvent::Failed { retry_in, .. }]
        if *retry_in == Duration::from_secs(120))
    );
    assert_eq!(
        reg.last_error().and_then(|e| e.status),
        Some(503),
        "last error kept"
    );
}

#[test]
fn timeout_fails_after_timer_f_with_retransmissions() {
    let t0 = Instant::now();
    let mut reg = start(t0, config());
    let _ = sent(&mut reg);
    let mut now = t0;
    let mut retransmissions = 0;
    while let Some(at) = reg.poll_timeout() {
        now = at;
        reg.handle_timeout(now);
        retransmissions += std::iter::from_fn(|| reg.poll_transmit()).count();
        if !events(&mut reg).is_empty() {
            break;
        }
    }
    assert_eq!(now - t0, Duration::from_secs(32), "Timer F = 64*T1");
    assert!(
        retransmissions >= 7,
        "Timer E retransmissions: {retransmissions}"
    );
    assert!(matches!(reg.status(), RegistrationStatus::Failed(f) if f.status.is_none()));
}

#[test]
fn unregister_sends_expires_zero_with_credentials() {
    let t0 = Instant::now();
    let mut reg = register_with(t0, Algorithm::Md5, 300);
    events(&mut reg);
    let t1 = t0 + Duration::from_secs(10);
    reg.unregister(t1);
    let bye = sent(&mut reg);
    assert_eq!(expires_of(&bye), Some("0"));
    assert!(creds(&bye).verify(PASSWORD, "REGISTER", &[]));
    reg.handle_message(t1, ok(&bye, None, None));
    assert_eq!(
        events(&mut reg),
        vec![RegistrationEvent::Unregistered { last_error: None }]
    );
    assert_eq!(
        reg.status(),
        &RegistrationStatus::Unregistered { last_error: None }
    );
    assert_eq!(reg.poll_timeout(), None, "no refresh after unregistering");
}

#[test]
fn unregister_without_binding_reports_at_once() {
    let t0 = Instant::now();
    let mut reg = start(t0, config());
    let first = sent(&mut reg);
    reg.handle_message(t0, Message::Response(reply(&first, 403, "Forbidden")));
    events(&mut reg);
    reg.unregister(t0);
    assert!(reg.poll_transmit().is_none());
    let evs = events(&mut reg);
    assert!(
        matches!(evs.as_slice(), [RegistrationEvent::Unregistered { last_error: Some(e) }]
        if e.status == Some(403))
    );
    assert_eq!(reg.poll_timeout(), None);
}

#[test]
fn responses_of_other_calls_do_not_match() {
    let t0 = Instant::now();
    let mut reg = start(t0, config());
    let first = sent(&mut reg);
    let mut other = reply(&first, 200, "OK");
    other.headers.set(HeaderName::CALL_ID, "someone-else");
    assert!(!reg.matches(&Message::Response(other)));
    assert!(reg.matches(&ok(&first, None, None)));
}
