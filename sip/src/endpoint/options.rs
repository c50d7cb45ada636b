//! One out-of-dialog OPTIONS ping (RFC 3261 §11), sans-IO: a client non-INVITE transaction,
//! one digest retry when the peer challenges and credentials were given, and the result
//! (final status, reason, latency from the first send) or an error for Timer F / a transport
//! failure. Shape as the other machines: `handle_message` / `handle_timeout`, then drain
//! `poll_transmit()`, take `poll_result()` and ask `poll_timeout()`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::dialog::{AuthCredentials, IdSource};
use crate::error::{Error, Result};
use crate::headers::{HeaderName, NameAddr};
use crate::message::{Message, Method, Request, Response};
use crate::timer::TimerConfig;
use crate::transaction::{ClientNonInvite, Event as TxEvent, MAGIC_COOKIE};

/// What an OPTIONS ping learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionsResult {
    /// The final status (200 when the peer is up; any final status proves it answers).
    pub status: u16,
    pub reason: String,
    /// From the first send of the request to its final response (digest retry included).
    pub latency: Duration,
}

/// How the request is addressed and sent.
#[derive(Debug, Clone)]
pub(crate) struct OptionsConfig {
    /// Request-URI and To.
    pub target: String,
    /// From user (the auth username, else `switchboard`).
    pub from_user: String,
    /// Via transport token and sent-by.
    pub transport: String,
    pub sent_by: String,
    pub contact: String,
    /// A pre-loaded Route (outbound proxy) URI.
    pub route: Option<String>,
    pub auth: Option<AuthCredentials>,
    pub timers: TimerConfig,
    pub reliable: bool,
    pub user_agent: Option<String>,
}

/// The ping. See the module documentation.
pub(crate) struct OptionsPing {
    config: OptionsConfig,
    ids: Box<dyn IdSource + Send>,
    call_id: String,
    from_tag: String,
    cseq: u32,
    started: Instant,
    tx: ClientNonInvite,
    /// Whether a challenge was answered already (only one is).
    answered: bool,
    transmits: VecDeque<Message>,
    result: Option<Result<OptionsResult>>,
    /// The result was produced (and maybe taken): nothing more happens but Timer K.
    done: bool,
}

impl OptionsPing {
    pub fn new(
        now: Instant,
        config: OptionsConfig,
        mut ids: Box<dyn IdSource + Send>,
    ) -> Result<OptionsPing> {
        let call_id = ids.call_id();
        let from_tag = ids.tag();
        let req = build(&config, ids.as_mut(), &call_id, &from_tag, 1, None);
        let tx = ClientNonInvite::new(now, req, config.timers, config.reliable)?;
        let mut ping = OptionsPing {
            tx,
            config,
            ids,
            call_id,
            from_tag,
            cseq: 1,
            started: now,
            answered: false,
            transmits: VecDeque::new(),
            result: None,
            done: false,
        };
        ping.drain_tx(now);
        Ok(ping)
    }

    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    pub fn local_tag(&self) -> &str {
        &self.from_tag
    }

    pub fn handle_message(&mut self, now: Instant, msg: Message) {
        self.tx.handle_message(now, msg);
        self.drain_tx(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.tx.handle_timeout(now);
        self.drain_tx(now);
    }

    pub fn poll_transmit(&mut self) -> Option<Message> {
        self.transmits.pop_front()
    }

    /// The result, once (the final response, or the error).
    pub fn poll_result(&mut self) -> Option<Result<OptionsResult>> {
        self.result.take()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.tx.poll_timeout()
    }

    /// True when the result was produced and the transaction has ended.
    pub fn is_finished(&self) -> bool {
        self.done && self.result.is_none() && self.tx.is_terminated()
    }

    fn drain_tx(&mut self, now: Instant) {
        loop {
            while let Some(m) = self.tx.poll_transmit() {
                self.transmits.push_back(m);
            }
            let Some(event) = self.tx.poll_event() else {
                break;
            };
            if self.done {
                continue;
            }
            match event {
                TxEvent::Response(resp) if !resp.is_provisional() => self.on_final(now, resp),
                TxEvent::Timeout(_) => self.finish(Err(Error::Timeout("OPTIONS"))),
                TxEvent::TransportError => self.finish(Err(Error::Io {
                    op: "send OPTIONS",
                    kind: std::io::ErrorKind::ConnectionRefused,
                })),
                _ => {}
            }
        }
    }

    fn on_final(&mut self, now: Instant, resp: Response) {
        if matches!(resp.status, 401 | 407) && !self.answered {
            if let Some(answer) = self.answer(&resp) {
                self.answered = true;
                self.cseq += 1;
                let req = build(
                    &self.config,
                    self.ids.as_mut(),
                    &self.call_id,
                    &self.from_tag,
                    self.cseq,
                    Some(answer),
                );
                match ClientNonInvite::new(now, req, self.config.timers, self.config.reliable) {
                    Ok(tx) => {
                        // The old transaction only absorbed retransmissions from here on.
                        self.tx = tx;
                        return;
                    }
                    Err(e) => return self.finish(Err(e)),
                }
            }
        }
        self.finish(Ok(OptionsResult {
            status: resp.status,
            reason: resp.reason,
            latency: now.saturating_duration_since(self.started),
        }));
    }

    /// The Authorization (or Proxy-Authorization) answering the challenge of `resp`.
    fn answer(&mut self, resp: &Response) -> Option<(HeaderName, String)> {
        let creds = self.config.auth.as_ref()?;
        let proxy = resp.status == 407;
        let challenges = if proxy {
            resp.headers.proxy_authenticate()
        } else {
            resp.headers.www_authenticate()
        };
        let mut challenges = challenges.ok()?;
        challenges.sort_by_key(|ch| match ch.algorithm {
            crate::digest::Algorithm::Sha256 | crate::digest::Algorithm::Sha256Sess => 0,
            _ => 1,
        });
        let challenge = challenges.into_iter().next()?;
        let cnonce = self.ids.cnonce();
        let answer = challenge.respond(
            &creds.username,
            &creds.password,
            "OPTIONS",
            &self.config.target,
            &[],
            &cnonce,
            1,
        );
        let name = if proxy {
            HeaderName::PROXY_AUTHORIZATION
        } else {
            HeaderName::AUTHORIZATION
        };
        Some((name, answer.to_string()))
    }

    fn finish(&mut self, result: Result<OptionsResult>) {
        self.done = true;
        self.result = Some(result);
    }
}

/// The OPTIONS request number `cseq`, with `authorization` when answering a challenge.
fn build(
    c: &OptionsConfig,
    ids: &mut (dyn IdSource + Send),
    call_id: &str,
    from_tag: &str,
    cseq: u32,
    authorization: Option<(HeaderName, String)>,
) -> Request {
    let mut r = Request::new(Method::Options, c.target.clone());
    let branch = ids.branch();
    let h = &mut r.headers;
    h.push(
        HeaderName::VIA,
        format!(
            "SIP/2.0/{} {};branch={MAGIC_COOKIE}{branch};rport",
            c.transport, c.sent_by
        ),
    );
    if let Some(route) = &c.route {
        h.push(HeaderName::ROUTE, format!("<{route}>"));
    }
    h.push(HeaderName::MAX_FORWARDS, "70");
    let mut from = NameAddr::new(format!("sip:{}@{}", c.from_user, c.sent_by));
    from.set_tag(from_tag);
    h.push(HeaderName::FROM, from.to_string());
    h.push(HeaderName::TO, NameAddr::new(c.target.clone()).to_string());
    h.push(HeaderName::CALL_ID, call_id.to_owned());
    h.push(HeaderName::CSEQ, format!("{cseq} OPTIONS"));
    h.push(HeaderName::CONTACT, format!("<{}>", c.contact));
    h.push(HeaderName::new("Accept"), "application/sdp");
    if let Some(ua) = &c.user_agent {
        h.push(HeaderName::new("User-Agent"), ua.clone());
    }
    if let Some((name, value)) = authorization {
        h.push(name, value);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{Algorithm, Challenge, Credentials};

    struct Seq(u32);
    impl IdSource for Seq {
        fn call_id(&mut self) -> String {
            self.0 += 1;
            format!("c{}@test", self.0)
        }
        fn tag(&mut self) -> String {
            self.0 += 1;
            format!("t{}", self.0)
        }
        fn branch(&mut self) -> String {
            self.0 += 1;
            format!("b{}", self.0)
        }
        fn cnonce(&mut self) -> String {
            self.0 += 1;
            format!("n{}", self.0)
        }
    }

    fn config(auth: Option<AuthCredentials>) -> OptionsConfig {
        OptionsConfig {
            target: "sip:127.0.0.1:5070".to_owned(),
            from_user: "switchboard".to_owned(),
            transport: "UDP".to_owned(),
            sent_by: "127.0.0.1:5060".to_owned(),
            contact: "sip:switchboard@127.0.0.1:5060".to_owned(),
            route: None,
            auth,
            timers: TimerConfig::default(),
            reliable: false,
            user_agent: None,
        }
    }

    fn request(m: Message) -> Request {
        match m {
            Message::Request(r) => r,
            Message::Response(_) => panic!("expected a request"),
        }
    }

    #[test]
    fn a_200_gives_status_reason_and_latency() {
        let t0 = Instant::now();
        let mut ping = OptionsPing::new(t0, config(None), Box::new(Seq(0))).expect("ping");
        let sent = request(ping.poll_transmit().expect("OPTIONS sent"));
        assert_eq!(sent.method, Method::Options);
        assert_eq!(sent.headers.cseq().expect("CSeq").seq, 1);
        assert!(ping.poll_result().is_none());
        let resp = Response::from_request(&sent, 200, "OK");
        ping.handle_message(t0 + Duration::from_millis(42), Message::Response(resp));
        let r = ping.poll_result().expect("result").expect("ok");
        assert_eq!(
            (r.status, r.reason.as_str(), r.latency),
            (200, "OK", Duration::from_millis(42))
        );
        assert!(
            !ping.is_finished(),
            "Timer K absorbs retransmissions on UDP"
        );
        ping.handle_timeout(ping.poll_timeout().expect("Timer K"));
        assert!(ping.is_finished());
    }

    #[test]
    fn lost_requests_are_retransmitted_then_timer_f_reports_a_timeout() {
        let t0 = Instant::now();
        let mut ping = OptionsPing::new(t0, config(None), Box::new(Seq(0))).expect("ping");
        assert!(ping.poll_transmit().is_some());
        let mut sends = 1;
        let mut now = t0;
        while let Some(at) = ping.poll_timeout() {
            now = at;
            ping.handle_timeout(now);
            while ping.poll_transmit().is_some() {
                sends += 1;
            }
        }
        assert!(sends > 5, "Timer E retransmits ({sends})");
        assert_eq!(
            now - t0,
            TimerConfig::default().timeout(),
            "Timer F = 64*T1"
        );
        assert_eq!(
            ping.poll_result().expect("result"),
            Err(Error::Timeout("OPTIONS"))
        );
        assert!(ping.is_finished());
    }

    #[test]
    fn a_challenge_is_answered_once_with_digest() {
        let t0 = Instant::now();
        let auth = AuthCredentials {
            username: "alice".to_owned(),
            password: "s3cret".to_owned(),
        };
        let mut ping = OptionsPing::new(t0, config(Some(auth)), Box::new(Seq(0))).expect("ping");
        let first = request(ping.poll_transmit().expect("sent"));
        let mut challenge = Response::from_request(&first, 407, "Proxy Authentication Required");
        let ch = Challenge::new("example.test", "abc", Algorithm::Sha256);
        challenge
            .headers
            .push(HeaderName::PROXY_AUTHENTICATE, ch.to_string());
        ping.handle_message(t0, Message::Response(challenge.clone()));
        assert!(ping.poll_result().is_none(), "retried, not finished");
        let second = request(ping.poll_transmit().expect("retry sent"));
        assert_eq!(second.headers.cseq().expect("CSeq").seq, 2);
        let creds =
            Credentials::parse(second.headers.get("Proxy-Authorization").expect("answered"))
                .expect("credentials");
        assert!(creds.verify("s3cret", "OPTIONS", &[]));
        assert!(!creds.verify("wrong", "OPTIONS", &[]));
        // A second challenge is the final answer: wrong credentials.
        let mut again = Response::from_request(&second, 407, "Proxy Authentication Required");
        again
            .headers
            .push(HeaderName::PROXY_AUTHENTICATE, ch.to_string());
        ping.handle_message(t0, Message::Response(again));
        let r = ping.poll_result().expect("result").expect("a status");
        assert_eq!(r.status, 407);
    }

    #[test]
    fn without_credentials_a_challenge_is_the_result() {
        let t0 = Instant::now();
        let mut ping = OptionsPing::new(t0, config(None), Box::new(Seq(0))).expect("ping");
        let first = request(ping.poll_transmit().expect("sent"));
        let mut challenge = Response::from_request(&first, 401, "Unauthorized");
        challenge.headers.push(
            HeaderName::WWW_AUTHENTICATE,
            Challenge::new("r", "n", Algorithm::Md5).to_string(),
        );
        ping.handle_message(t0, Message::Response(challenge));
        assert_eq!(
            ping.poll_result().expect("result").expect("status").status,
            401
        );
        assert!(ping.poll_transmit().is_none());
    }
}
