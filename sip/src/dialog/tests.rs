//! Call flows as wire-message sequences in virtual time: an `Instant` base plus offsets.

use std::time::{Duration, Instant};

use super::*;
use crate::digest::Credentials;
use crate::headers::Via;

/// Deterministic ids: `call1@test`, `tag2`, `br3`, ...
struct SeqIds(u32);

impl SeqIds {
    fn next(&mut self) -> u32 {
        self.0 += 1;
        self.0
    }
}

impl IdSource for SeqIds {
    fn call_id(&mut self) -> String {
        format!("call{}@test", self.next())
    }
    fn tag(&mut self) -> String {
        format!("tag{}", self.next())
    }
    fn branch(&mut self) -> String {
        format!("br{}", self.next())
    }
    fn cnonce(&mut self) -> String {
        format!("cn{}", self.next())
    }
}

const TARGET: &str = "sip:+15551234567@carrier.example";
const CALLEE_CONTACT: &str = "sip:callee@203.0.113.50:5060";
const UAS_TAG: &str = "as7f3a";

/// A carrier's answer in the shape Asterisk/FreeSWITCH send.
const ANSWER_SDP: &str = "v=0\r\n\
o=- 1610439152 1610439152 IN IP4 203.0.113.50\r\n\
s=carrier\r\n\
c=IN IP4 203.0.113.50\r\n\
t=0 0\r\n\
m=audio 18342 RTP/AVP 8 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

fn config() -> CallConfig {
    CallConfig::new(
        TARGET,
        "sip:dialer@switchboard.example",
        "sip:dialer@192.0.2.10:5060",
        "192.0.2.10:5060",
        LocalMedia::new("192.0.2.10", 40000, 77),
    )
}

fn wire(msg: impl Into<Message>) -> Message {
    let bytes = msg.into().to_bytes();
    match Message::parse(&bytes) {
        Ok(m) => m,
        Err(e) => panic!("our own message must parse: {e}"),
    }
}

/// A call under test with everything it sent and reported.
struct Call {
    d: Dialog,
    base: Instant,
    sent: Vec<Message>,
    events: Vec<DialogEvent>,
}

impl Call {
    fn start(config: CallConfig) -> Call {
        let base = Instant::now();
        let d = Dialog::invite(base, config, Box::new(SeqIds(0))).expect("valid config");
        let mut call = Call {
            d,
            base,
            sent: Vec::new(),
            events: Vec::new(),
        };
        call.flush();
        call
    }

    fn at(&self, secs: f64) -> Instant {
        self.base + Duration::from_secs_f64(secs)
    }

    fn flush(&mut self) {
        while let Some(m) = self.d.poll_transmit() {
            // Every message we send survives the wire.
            self.sent.push(wire(m));
        }
        while let Some(e) = self.d.poll_event() {
            self.events.push(e);
        }
    }

    fn feed(&mut self, secs: f64, msg: impl Into<Message>) {
        let now = self.at(secs);
        let msg = wire(msg);
        assert!(self.d.matches(&msg) || matches!(msg, Message::Request(_)));
        self.d.handle_message(now, msg);
        self.flush();
    }

    fn run_until(&mut self, secs: f64) {
        let end = self.at(secs);
        while let Some(at) = self.d.poll_timeout() {
            if at > end {
                break;
            }
            self.d.handle_timeout(at);
            self.flush();
        }
    }

    fn requests(&self, method: Method) -> Vec<Request> {
        self.sent
            .iter()
            .filter_map(|m| match m {
                Message::Request(r) if r.method == method => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    fn last(&self, method: Method) -> Request {
        match self.requests(method.clone()).pop() {
            Some(r) => r,
            None => panic!("no {method} sent; sent: {:#?}", self.sent),
        }
    }

    fn responses(&self) -> Vec<Response> {
        self.sent
            .iter()
            .filter_map(|m| match m {
                Message::Response(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    fn take_events(&mut self) -> Vec<DialogEvent> {
        std::mem::take(&mut self.events)
    }
}

/// The far end's response to `req`: To tag (above 100), extra header lines, optional SDP.
fn reply(req: &Request, status: u16, reason: &str, extra: &[(&str, &str)], sdp: &str) -> Response {
    let mut r = Response::from_request(req, status, reason);
    if status > 100 {
        r.set_to_tag(UAS_TAG).expect("request has a To");
    }
    for (n, v) in extra {
        r.headers.push(HeaderName::new(n), *v);
    }
    if !sdp.is_empty() {
        r.headers.push(HeaderName::CONTENT_TYPE, "application/sdp");
        r.body = sdp.as_bytes().to_vec();
    }
    r
}

const CALLEE: &[(&str, &str)] = &[
    ("Contact", "<sip:callee@203.0.113.50:5060>"),
    (
        "Record-Route",
        "<sip:p2.carrier.example;lr>, <sip:p1.carrier.example;lr>",
    ),
];

fn branch(r: &Request) -> String {
    r.headers
        .top_via()
        .ok()
        .and_then(|v: Via| v.branch().map(str::to_owned))
        .unwrap_or_default()
}

fn cseq(r: &Request) -> (u32, Method) {
    let c = r.headers.cseq().expect("CSeq");
    (c.seq, c.method)
}

fn routes(r: &Request) -> Vec<String> {
    r.headers
        .route()
        .expect("Route parses")
        .into_iter()
        .map(|r| r.uri)
        .collect()
}

/// Sets up a confirmed call (100, 180, 200 with the callee's Record-Route and Contact).
fn answered(config: CallConfig, extra_200: &[(&str, &str)]) -> Call {
    let mut c = Call::start(config);
    let invite = c.last(Method::Invite);
    c.feed(0.05, reply(&invite, 100, "Trying", &[], ""));
    c.feed(0.5, reply(&invite, 180, "Ringing", CALLEE, ""));
    let mut headers = CALLEE.to_vec();
    headers.extend_from_slice(extra_200);
    c.feed(3.0, reply(&invite, 200, "OK", &headers, ANSWER_SDP));
    assert_eq!(c.d.state(), DialogState::Confirmed);
    c
}

/// A request the callee sends inside the dialog.
fn callee_request(c: &Call, method: &str, seq: u32, body: &str) -> Request {
    let invite = c.requests(Method::Invite)[0].clone();
    let from = invite.headers.get("From").unwrap_or_default().to_owned();
    let content = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".to_owned()
    };
    let text = format!(
        "{method} sip:dialer@192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP p1.carrier.example;branch=z9hG4bKp1{seq}\r\n\
Via: SIP/2.0/UDP 203.0.113.50:5060;branch=z9hG4bKuas{seq}\r\n\
Max-Forwards: 69\r\n\
From: <{TARGET}>;tag={UAS_TAG}\r\n\
To: {from}\r\n\
Call-ID: {}\r\n\
CSeq: {seq} {method}\r\n\
Contact: <{CALLEE_CONTACT}>\r\n\
{content}\r\n{body}",
        c.d.call_id()
    );
    match Message::parse(text.as_bytes()) {
        Ok(Message::Request(r)) => r,
        other => panic!("test request must parse: {other:?}"),
    }
}

#[test]
fn invite_request_is_well_formed() {
    let c = Call::start(config());
    let invite = c.last(Method::Invite);
    invite.validate().unwrap();
    assert_eq!(invite.uri, TARGET);
    assert!(branch(&invite).starts_with("z9hG4bK"));
    assert_eq!(cseq(&invite), (1, Method::Invite));
    assert_eq!(invite.headers.call_id().unwrap(), c.d.call_id());
    assert!(invite.headers.from().unwrap().tag().is_some());
    assert_eq!(invite.headers.to().unwrap().tag(), None);
    assert_eq!(
        invite.headers.contact().unwrap()[0].uri,
        "sip:dialer@192.0.2.10:5060"
    );
    assert_eq!(invite.headers.get("Content-Type"), Some("application/sdp"));
    assert_eq!(invite.headers.get("Supported"), Some("timer"));
    let offer = SessionDescription::parse(&invite.body).unwrap();
    assert_eq!(offer.audio().unwrap().formats, vec!["0", "8", "111", "101"]);
    // Timer A retransmits the INVITE on UDP.
    let mut c = c;
    c.run_until(0.6);
    assert_eq!(c.requests(Method::Invite).len(), 2);
}

#[test]
fn flow_100_180_200_ack_bye_200() {
    let mut c = Call::start(config());
    let invite = c.last(Method::Invite);
    c.feed(0.05, reply(&invite, 100, "Trying", &[], ""));
    c.feed(0.5, reply(&invite, 180, "Ringing", CALLEE, ""));
    assert_eq!(c.d.state(), DialogState::Early);
    assert_eq!(c.d.remote_tag(), Some(UAS_TAG));
    assert_eq!(
        c.take_events(),
        vec![
            DialogEvent::Trying,
            DialogEvent::Ringing {
                status: 180,
                early_media: false
            }
        ]
    );
    c.feed(3.0, reply(&invite, 200, "OK", CALLEE, ANSWER_SDP));
    assert_eq!(c.d.state(), DialogState::Confirmed);
    let events = c.take_events();
    let [DialogEvent::Answered { sdp, media }] = events.as_slice() else {
        panic!("expected Answered, got {events:?}");
    };
    assert_eq!(sdp.origin.address, "203.0.113.50");
    assert_eq!(media.codec.name, "PCMA");
    assert_eq!(media.remote_port, 18342);
    // Route set is the Record-Route reversed; remote target is the Contact.
    assert_eq!(
        c.d.route_set(),
        vec!["sip:p1.carrier.example;lr", "sip:p2.carrier.example;lr"]
    );
    assert_eq!(c.d.remote_target(), CALLEE_CONTACT);
    let ack = c.last(Method::Ack);
    assert_eq!(ack.uri, CALLEE_CONTACT);
    assert_eq!(cseq(&ack), (1, Method::Ack));
    assert_ne!(branch(&ack), branch(&invite));
    assert_eq!(routes(&ack), c.d.route_set());
    assert_eq!(ack.headers.to().unwrap().tag(), Some(UAS_TAG));
    // A retransmitted 200 is ACKed again with the same ACK.
    c.feed(3.5, reply(&invite, 200, "OK", CALLEE, ANSWER_SDP));
    assert_eq!(c.requests(Method::Ack), vec![ack.clone(), ack]);
    assert!(c.take_events().is_empty());

    c.d.hangup(c.at(30.0)).unwrap();
    c.flush();
    let bye = c.last(Method::Bye);
    bye.validate().unwrap();
    assert_eq!(bye.uri, CALLEE_CONTACT);
    assert_eq!(cseq(&bye), (2, Method::Bye));
    assert_eq!(routes(&bye), c.d.route_set());
    assert_eq!(bye.headers.to().unwrap().tag(), Some(UAS_TAG));
    assert_eq!(c.d.state(), DialogState::Terminating);
    c.feed(30.1, reply(&bye, 200, "OK", &[], ""));
    assert_eq!(
        c.take_events(),
        vec![DialogEvent::Terminated {
            reason: TerminationReason::LocalBye
        }]
    );
    assert!(c.d.is_terminated());
}

#[test]
fn early_media_183_then_200() {
    let mut c = Call::start(config());
    let invite = c.last(Method::Invite);
    c.feed(
        0.4,
        reply(&invite, 183, "Session Progress", CALLEE, ANSWER_SDP),
    );
    let events = c.take_events();
    assert_eq!(
        events[0],
        DialogEvent::Ringing {
            status: 183,
            early_media: true
        }
    );
    let DialogEvent::EarlyMedia { media } = &events[1] else {
        panic!("expected EarlyMedia: {events:?}");
    };
    assert_eq!(media.remote_address, "203.0.113.50");
    assert_eq!(c.d.media().map(|m| m.codec.payload_type), Some(8));
    c.feed(5.0, reply(&invite, 200, "OK", CALLEE, ANSWER_SDP));
    assert!(matches!(
        c.take_events().as_slice(),
        [DialogEvent::Answered { .. }]
    ));
    assert_eq!(c.requests(Method::Ack).len(), 1);
}

#[test]
fn busy_486_is_acked_by_the_transaction_and_ends_the_call() {
    let mut c = Call::start(config());
    let invite = c.last(Method::Invite);
    c.feed(0.1, reply(&invite, 100, "Trying", &[], ""));
    c.feed(
        0.8,
        reply(
            &invite,
            486,
            "Busy Here",
            &[("Reason", "Q.850;cause=17;text=\"User busy\"")],
            "",
        ),
    );
    let ack = c.last(Method::Ack);
    assert_eq!(
        branch(&ack),
        branch(&invite),
        "non-2xx ACK shares the branch"
    );
    assert_eq!(cseq(&ack), (1, Method::Ack));
    assert_eq!(
        c.take_events(),
        vec![
            DialogEvent::Trying,
            DialogEvent::Terminated {
                reason: TerminationReason::Rejected {
                    status: 486,
                    reason: "Busy Here".into(),
                    q850_cause: Some(17)
                }
            }
        ]
    );
    assert!(c.d.is_terminated());
}

#[test]
fn cancel_after_180_then_487_and_ack() {
    let mut c = Call::start(config());
    let invite = c.last(Method::Invite);
    c.feed(0.5, reply(&invite, 180, "Ringing", CALLEE, ""));
    c.take_events();
    c.d.hangup(c.at(10.0)).unwrap();
    c.flush();
    let cancel = c.last(Method::Cancel);
    assert_eq!(cancel.uri, invite.uri);
    assert_eq!(branch(&cancel), branch(&invite));
    assert_eq!(cseq(&cancel), (1, Method::Cancel));
    assert_eq!(cancel.headers.to().unwrap().tag(), None);
    assert_eq!(cancel.headers.get("From"), invite.headers.get("From"));
    cancel.validate().unwrap();
    c.feed(10.1, reply(&cancel, 200, "OK", &[], ""));
    assert!(!c.d.is_terminated());
    c.feed(10.2, reply(&invite, 487, "Request Terminated", &[], ""));
    let ack = c.last(Method::Ack);
    assert_eq!(branch(&ack), branch(&invite));
    assert_eq!(
        c.take_events(),
        vec![DialogEvent::Terminated {
            reason: TerminationReason::Cancelled
        }]
    );
}

#[test]
fn cancel_waits_for_a_provisional_and_a_racing_200_gets_bye() {
    let mut c = Call::start(config());
    let invite = c.last(Method::Invite);
    c.d.hangup(c.at(0.1)).unwrap();
    c.flush();
    assert!(
        c.requests(Method::Cancel).is_empty(),
        "no CANCEL before a 1xx"
    );
    c.feed(0.2, reply(&invite, 100, "Trying", &[], ""));
    assert_eq!(c.requests(Method::Cancel).len(), 1);
    // The callee answered before the CANCEL arrived: ACK, then BYE.
    c.feed(0.3, reply(&invite, 200, "OK", CALLEE, ANSWER_SDP));
    assert_eq!(c.requests(Method::Ack).len(), 1);
    let bye = c.last(Method::Bye);
    assert_eq!(cseq(&bye), (2, Method::Bye));
    c.feed(0.4, reply(&bye, 200, "OK", &[], ""));
    assert_eq!(
        c.take_events(),
        vec![DialogEvent::Terminated {
            reason: TerminationReason::Cancelled
        }]
    );
}

fn auth_config() -> CallConfig {
    let mut cfg = config();
    cfg.auth = Some(AuthCredentials {
        username: "trunk42".into(),
        password: "s3cret".into(),
    });
    cfg
}

#[test]
fn challenge_401_is_answered_with_authorization() {
    let mut c = Call::start(auth_config());
    let first = c.last(Method::Invite);
    c.feed(
        0.1,
        reply(
            &first,
            401,
            "Unauthorized",
            &[(
                "WWW-Authenticate",
                "Digest realm=\"carrier.example\", nonce=\"4f1b2c\", qop=\"auth\", algorithm=MD5",
            )],
            "",
        ),
    );
    let ack = c.last(Method::Ack);
    assert_eq!(branch(&ack), branch(&first));
    let second = c.last(Method::Invite);
    assert_ne!(branch(&second), branch(&first));
    assert_eq!(cseq(&second), (2, Method::Invite));
    assert_eq!(second.headers.call_id(), first.headers.call_id());
    assert_eq!(second.headers.get("From"), first.headers.get("From"));
    let creds: Vec<Credentials> = second.headers.authorization().unwrap();
    let [creds] = creds.as_slice() else {
        panic!("one Authorization expected")
    };
    assert_eq!(creds.username, "trunk42");
    assert_eq!(creds.realm, "carrier.example");
    assert_eq!(creds.uri, TARGET);
    assert!(creds.verify("s3cret", "INVITE", &second.body));
    assert!(!creds.verify("wrong", "INVITE", &second.body));
    assert_eq!(
        c.take_events(),
        vec![DialogEvent::Authenticating { status: 401 }]
    );
    c.feed(0.3, reply(&second, 200, "OK", CALLEE, ANSWER_SDP));
    assert!(matches!(
        c.take_events().as_slice(),
        [DialogEvent::Answered { .. }]
    ));
    assert_eq!(cseq(&c.last(Method::Ack)), (2, Method::Ack));
}

#[test]
fn repeated_challenge_fails_and_407_uses_proxy_authorization() {
    let mut c = Call::start(auth_config());
    let first = c.last(Method::Invite);
    let challenge = [(
        "Proxy-Authenticate",
        "Digest realm=\"proxy.example\", nonce=\"abc\", algorithm=MD5",
    )];
    c.feed(
        0.1,
        reply(&first, 407, "Proxy Authentication Required", &challenge, ""),
    );
    let second = c.last(Method::Invite);
    let creds = second.headers.proxy_authorization().unwrap();
    assert_eq!(creds.len(), 1);
    assert!(creds[0].verify("s3cret", "INVITE", &second.body));
    c.feed(
        0.2,
        reply(
            &second,
            407,
            "Proxy Authentication Required",
            &challenge,
            "",
        ),
    );
    assert_eq!(c.requests(Method::Invite).len(), 2);
    assert_eq!(
        c.take_events().last(),
        Some(&DialogEvent::Terminated {
            reason: TerminationReason::AuthenticationFailed { status: 407 }
        })
    );
    // Without credentials a challenge ends the call at once.
    let mut c = Call::start(config());
    let first = c.last(Method::Invite);
    c.feed(
        0.1,
        reply(&first, 407, "Proxy Authentication Required", &challenge, ""),
    );
    assert_eq!(
        c.take_events(),
        vec![DialogEvent::Terminated {
            reason: TerminationReason::AuthenticationFailed { status: 407 }
        }]
    );
}

#[test]
fn reinvite_sendonly_is_answered_recvonly() {
    let mut c = answered(config(), &[]);
    c.take_events();
    let hold_sdp = ANSWER_SDP
        .replace("a=sendrecv", "a=sendonly")
        .replace("1610439152 1610439152", "1610439152 1610439153");
    let reinvite = callee_request(&c, "INVITE", 2, &hold_sdp);
    c.feed(20.0, reinvite.clone());
    let resps = c.responses();
    let ok = resps
        .iter()
        .find(|r| r.status == 200)
        .expect("200 to re-INVITE");
    assert_eq!(ok.headers.cseq().unwrap().seq, 2);
    assert_eq!(ok.headers.to().unwrap().tag(), c.d.local_tag());
    assert_eq!(ok.headers.via().unwrap().len(), 2);
    let answer = SessionDescription::parse(&ok.body).unwrap();
    assert_eq!(answer.audio().unwrap().direction, Some(Direction::RecvOnly));
    assert_eq!(answer.audio().unwrap().formats, vec!["8", "101"]);
    assert_eq!(answer.origin.session_version, 2);
    let events = c.take_events();
    let [DialogEvent::MediaUpdated { media }] = events.as_slice() else {
        panic!("expected MediaUpdated: {events:?}");
    };
    assert!(media.remote_hold);
    assert_eq!(media.direction, Direction::RecvOnly);
    // No ACK yet: the 2xx is retransmitted after T1.
    c.run_until(20.6);
    assert_eq!(c.responses().iter().filter(|r| r.status == 200).count(), 2);
    let mut ack = reinvite.clone();
    ack.method = Method::Ack;
    ack.body.clear();
    ack.headers.set(HeaderName::CSEQ, "2 ACK");
    ack.headers.remove("Content-Type");
    c.feed(20.7, ack);
    c.run_until(30.0);
    assert_eq!(c.responses().iter().filter(|r| r.status == 200).count(), 2);
    // Unhold: sendrecv again.
    let unhold = callee_request(&c, "INVITE", 3, ANSWER_SDP);
    c.feed(40.0, unhold);
    let last_ok = c
        .responses()
        .into_iter()
        .rev()
        .find(|r| r.status == 200)
        .unwrap();
    let answer = SessionDescription::parse(&last_ok.body).unwrap();
    assert_eq!(answer.audio().unwrap().direction, Some(Direction::SendRecv));
}

#[test]
fn reinvite_with_no_common_codec_gets_488() {
    let mut c = answered(config(), &[]);
    let g729 = ANSWER_SDP
        .replace("RTP/AVP 8 101", "RTP/AVP 18")
        .replace("a=rtpmap:8 PCMA/8000", "a=rtpmap:18 G729/8000");
    c.feed(20.0, callee_request(&c, "INVITE", 2, &g729));
    assert_eq!(c.responses().last().map(|r| r.status), Some(488));
    assert_eq!(c.d.state(), DialogState::Confirmed);
}

#[test]
fn inbound_bye_is_answered_200() {
    let mut c = answered(config(), &[]);
    c.take_events();
    // A BYE for another dialog (wrong From tag) is refused with 481.
    let mut stray = callee_request(&c, "BYE", 5, "");
    stray
        .headers
        .set(HeaderName::FROM, format!("<{TARGET}>;tag=other"));
    c.feed(9.0, stray);
    assert_eq!(c.responses().last().map(|r| r.status), Some(481));
    assert!(!c.d.is_terminated());
    let bye = callee_request(&c, "BYE", 6, "");
    c.feed(10.0, bye.clone());
    let ok = c.responses().pop().unwrap();
    assert_eq!(ok.status, 200);
    assert_eq!(ok.headers.cseq().unwrap(), bye.headers.cseq().unwrap());
    assert_eq!(
        c.take_events(),
        vec![DialogEvent::Terminated {
            reason: TerminationReason::RemoteBye
        }]
    );
    // A retransmitted BYE is answered again by its transaction.
    c.feed(10.5, bye);
    assert_eq!(c.responses().iter().filter(|r| r.status == 200).count(), 2);
}

#[test]
fn session_timer_refresh_deadline_is_half_the_interval() {
    let mut cfg = config();
    cfg.session_expires = Some(1800);
    let mut c = Call::start(cfg);
    let invite = c.last(Method::Invite);
    assert_eq!(invite.headers.get("Session-Expires"), Some("1800"));
    assert_eq!(invite.headers.get("Min-SE"), Some("90"));
    c.feed(0.1, reply(&invite, 180, "Ringing", CALLEE, ""));
    c.feed(
        1.0,
        reply(
            &invite,
            200,
            "OK",
            &[
                ("Contact", "<sip:callee@203.0.113.50:5060>"),
                ("Session-Expires", "1800;refresher=uac"),
                ("Require", "timer"),
            ],
            ANSWER_SDP,
        ),
    );
    let timer = c.d.session_timer().unwrap();
    assert!(timer.we_refresh);
    assert_eq!(timer.interval, Duration::from_secs(1800));
    // Transaction timers end first (Timer M); then the only deadline is the refresh at 900 s.
    c.run_until(899.0);
    assert_eq!(c.d.poll_timeout(), Some(c.at(901.0)));
    assert_eq!(c.requests(Method::Invite).len(), 1);
    c.run_until(901.0);
    let refresh = c.last(Method::Invite);
    assert_eq!(c.requests(Method::Invite).len(), 2);
    assert_eq!(refresh.uri, CALLEE_CONTACT);
    assert_eq!(cseq(&refresh), (2, Method::Invite));
    assert_eq!(
        refresh.headers.get("Session-Expires"),
        Some("1800;refresher=uac")
    );
    c.feed(
        901.2,
        reply(
            &refresh,
            200,
            "OK",
            &[("Session-Expires", "1800;refresher=uac")],
            ANSWER_SDP,
        ),
    );
    assert_eq!(cseq(&c.last(Method::Ack)), (2, Method::Ack));
    assert!(c.take_events().contains(&DialogEvent::SessionRefreshed));
    c.run_until(1700.0);
    assert_eq!(c.d.poll_timeout(), Some(c.at(1801.2)));
}

#[test]
fn session_expiry_when_the_peer_refreshes_too_late() {
    let mut cfg = config();
    cfg.session_expires = Some(90);
    let mut c = answered(cfg, &[("Session-Expires", "90;refresher=uas")]);
    c.take_events();
    // The peer refreshes at 45 s: the expiry moves.
    c.run_until(44.0);
    c.feed(45.0, callee_request(&c, "INVITE", 2, ANSWER_SDP));
    let mut ack = callee_request(&c, "ACK", 2, "");
    ack.headers.set(HeaderName::CSEQ, "2 ACK");
    c.feed(45.1, ack);
    assert!(c.requests(Method::Bye).is_empty());
    // Then silence: BYE at 45 + 90 - 30 = 105 s.
    c.run_until(104.9);
    assert!(c.requests(Method::Bye).is_empty());
    c.run_until(105.1);
    let bye = c.last(Method::Bye);
    c.feed(105.2, reply(&bye, 200, "OK", &[], ""));
    assert_eq!(
        c.take_events().last(),
        Some(&DialogEvent::Terminated {
            reason: TerminationReason::SessionExpired
        })
    );
}

#[test]
fn glare_inbound_reinvite_during_our_refresh_gets_491() {
    let mut cfg = config();
    cfg.session_expires = Some(120);
    let mut c = answered(cfg, &[("Session-Expires", "120;refresher=uac")]);
    c.run_until(63.1);
    let refresh = c.last(Method::Invite);
    assert_eq!(cseq(&refresh), (2, Method::Invite));
    c.feed(63.2, callee_request(&c, "INVITE", 2, ANSWER_SDP));
    assert_eq!(c.responses().last().map(|r| r.status), Some(491));
    // And our refresh meeting their 491 is retried after 2.1 s.
    c.feed(63.3, reply(&refresh, 491, "Request Pending", &[], ""));
    c.run_until(65.5);
    let retry = c.last(Method::Invite);
    assert_eq!(cseq(&retry), (3, Method::Invite));
}

#[test]
fn redirect_302_sends_new_invite_to_contact() {
    let mut c = Call::start(config());
    let first = c.last(Method::Invite);
    c.feed(
        0.2,
        reply(
            &first,
            302,
            "Moved Temporarily",
            &[(
                "Contact",
                "<sip:+15551234567@gw2.carrier.example>, <sip:+15551234567@gw3.carrier.example>",
            )],
            "",
        ),
    );
    assert_eq!(branch(&c.last(Method::Ack)), branch(&first));
    let second = c.last(Method::Invite);
    assert_eq!(second.uri, "sip:+15551234567@gw2.carrier.example");
    assert_eq!(cseq(&second), (2, Method::Invite));
    assert_eq!(second.headers.to().unwrap().uri, TARGET);
    assert_eq!(second.headers.call_id(), first.headers.call_id());
    assert_eq!(
        c.take_events(),
        vec![DialogEvent::Redirected {
            target: "sip:+15551234567@gw2.carrier.example".into()
        }]
    );
    // The first contact fails: the next one in list order is tried.
    c.feed(0.4, reply(&second, 503, "Service Unavailable", &[], ""));
    let third = c.last(Method::Invite);
    assert_eq!(third.uri, "sip:+15551234567@gw3.carrier.example");
    c.feed(0.6, reply(&third, 200, "OK", CALLEE, ANSWER_SDP));
    assert_eq!(c.d.state(), DialogState::Confirmed);
}

#[test]
fn redirects_are_bounded() {
    let mut c = Call::start(config());
    for i in 0..4 {
        let inv = c.last(Method::Invite);
        let contact = format!("<sip:hop{i}@carrier.example>");
        c.feed(
            f64::from(i),
            reply(&inv, 302, "Moved Temporarily", &[("Contact", &contact)], ""),
        );
    }
    assert_eq!(c.requests(Method::Invite).len(), 4);
    assert_eq!(
        c.take_events().last(),
        Some(&DialogEvent::Terminated {
            reason: TerminationReason::TooManyRedirects
        })
    );
}

#[test]
fn answer_without_common_codec_is_acked_then_byed() {
    let mut c = Call::start(config());
    let invite = c.last(Method::Invite);
    let g729 = ANSWER_SDP
        .replace("RTP/AVP 8 101", "RTP/AVP 18")
        .replace("a=rtpmap:8 PCMA/8000", "a=rtpmap:18 G729/8000");
    c.feed(0.5, reply(&invite, 200, "OK", CALLEE, &g729));
    assert_eq!(c.requests(Method::Ack).len(), 1);
    let bye = c.last(Method::Bye);
    c.feed(0.6, reply(&bye, 200, "OK", &[], ""));
    assert_eq!(
        c.take_events(),
        vec![DialogEvent::Terminated {
            reason: TerminationReason::MediaNegotiationFailed
        }]
    );
}

#[test]
fn no_answer_times_out_with_timer_b() {
    let mut c = Call::start(config());
    c.run_until(40.0);
    assert_eq!(
        c.take_events(),
        vec![DialogEvent::Terminated {
            reason: TerminationReason::Timeout
        }]
    );
    assert_eq!(c.d.poll_timeout(), None);
}

#[test]
fn outbound_proxy_is_a_preloaded_route() {
    let mut cfg = config();
    cfg.outbound_proxy = Some("sip:edge.switchboard.example;lr".into());
    let mut c = Call::start(cfg);
    let invite = c.last(Method::Invite);
    assert_eq!(invite.uri, TARGET);
    assert_eq!(routes(&invite), vec!["sip:edge.switchboard.example;lr"]);
    // A strict-routing proxy (no lr) in Record-Route becomes the Request-URI of the ACK.
    c.feed(
        0.5,
        reply(
            &invite,
            200,
            "OK",
            &[
                ("Contact", "<sip:callee@203.0.113.50:5060>"),
                ("Record-Route", "<sip:strict.carrier.example>"),
            ],
            ANSWER_SDP,
        ),
    );
    let ack = c.last(Method::Ack);
    assert_eq!(ack.uri, "sip:strict.carrier.example");
    assert_eq!(routes(&ack), vec![CALLEE_CONTACT]);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Mutated responses and requests never panic the dialog.
        #[test]
        fn mutated_input_never_panics(
            status in 100u16..700,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        ) {
            let mut c = Call::start(config());
            let invite = c.last(Method::Invite);
            let mut bytes = reply(&invite, status, "X", CALLEE, ANSWER_SDP).to_bytes();
            for (at, b) in edits {
                let i = at % bytes.len();
                bytes[i] = b;
            }
            if let Ok(msg) = Message::parse(&bytes) {
                c.d.handle_message(c.at(0.1), msg);
                c.flush();
                c.run_until(100.0);
            }
        }
    }
}
