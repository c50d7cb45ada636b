//! REGISTER client of one trunk (RFC 3261 §10, RFC 3581, RFC 7616 digest), sans-IO.
//!
//! A [`Registration`] keeps one binding alive: it sends REGISTER, answers 401/407 challenges
//! (MD5, SHA-256 and their `-sess` variants, qop=auth), learns the expiry the registrar granted
//! (the `expires` parameter of our Contact in the 2xx, else the Expires header, else what we
//! asked), refreshes before it lapses, retries 423 Interval Too Brief with the Min-Expires
//! floor, backs off exponentially after failures and unregisters (`Expires: 0`) on request.
//! Shape as the transactions: `handle_message(now, msg)` / `handle_timeout(now)`, then drain
//! `poll_transmit()`, `poll_event()` and ask `poll_timeout()`.
//!
//! **Refresh policy**: with a granted expiry `E`, the refresh is sent at
//! `max(E / 2, E − (64·T1 + 8 s))` after the 2xx — 40 s early with the default T1, which lets a
//! refresh sent into a lossy network run its whole Timer F (64·T1 = 32 s) of retransmissions
//! before the binding lapses, while short bindings (E ≤ 80 s) refresh at half-life.
//!
//! **Digest**: the challenge of the last 401/407 is kept and answered pre-emptively on every
//! following REGISTER with an increasing nonce count and the same client nonce (so the
//! `-sess` session key stays valid for the nonce's life, RFC 7616 §3.4.2). A new challenge is
//! answered once; the same realm challenging again after we answered, without `stale=true`,
//! means the credentials are wrong and the registration fails.
//!
//! **Backoff**: the n-th consecutive failure waits `min(retry_initial · 2^(n−1), retry_max)`,
//! or the server's Retry-After when that is longer (503). A success resets the count.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::dialog::{AuthCredentials, IdSource};
use crate::digest::Challenge;
use crate::error::Result;
use crate::headers::{HeaderName, NameAddr};
use crate::message::{Message, Method, Request, Response};
use crate::timer::TimerConfig;
use crate::transaction::{ClientNonInvite, Event as TxEvent, MAGIC_COOKIE};

/// Everything one trunk registration needs.
#[derive(Debug, Clone)]
pub struct RegistrationConfig {
    /// Request-URI of the REGISTER: the registrar's domain, e.g. `sip:example.com`.
    pub registrar: String,
    /// Our address of record (From and To), e.g. `sip:alice@example.com`.
    pub aor: String,
    /// The Contact URI to bind, e.g. `sip:alice@192.0.2.1:5060`.
    pub contact: String,
    /// Via transport (`UDP`, `TCP`) and sent-by (`host:port`).
    pub transport: String,
    pub sent_by: String,
    /// A pre-loaded route (outbound proxy), e.g. `sip:proxy.example;lr`.
    pub outbound_proxy: Option<String>,
    pub auth: Option<AuthCredentials>,
    /// The expiry to ask for, in seconds (default 3600).
    pub expires: u32,
    pub timers: TimerConfig,
    /// Whether the transport is reliable (TCP): no retransmissions.
    pub reliable: bool,
    /// First wait after a failure (default 5 s).
    pub retry_initial: Duration,
    /// Longest wait between attempts (default 300 s).
    pub retry_max: Duration,
    pub user_agent: Option<String>,
}

impl RegistrationConfig {
    pub fn new(registrar: &str, aor: &str, contact: &str, sent_by: &str) -> RegistrationConfig {
        RegistrationConfig {
            registrar: registrar.to_owned(),
            aor: aor.to_owned(),
            contact: contact.to_owned(),
            transport: "UDP".to_owned(),
            sent_by: sent_by.to_owned(),
            outbound_proxy: None,
            auth: None,
            expires: 3600,
            timers: TimerConfig::default(),
            reliable: false,
            retry_initial: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
            user_agent: Some("Switchboard".to_owned()),
        }
    }
}

/// Why an attempt failed: the final status when there was one, and a human readable reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationFailure {
    /// The final response status; `None` for a timeout or transport error.
    pub status: Option<u16>,
    pub reason: String,
}

impl std::fmt::Display for RegistrationFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "{s} {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

/// Where the binding stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationStatus {
    /// The first REGISTER is under way.
    Registering,
    /// The registrar holds our binding for `expires` seconds from the last 2xx.
    Registered { expires: u32 },
    /// The last attempt failed; another one follows after the backoff.
    Failed(RegistrationFailure),
    /// No binding (never registered, or unregistered at shutdown); `last_error` is the last
    /// failure seen, if any.
    Unregistered {
        last_error: Option<RegistrationFailure>,
    },
}

/// What the registration tells its user (sipRegistered / sipRegistrationFailed /
/// sipUnregistered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationEvent {
    /// A 2xx granted the binding for `expires` seconds (also after each refresh).
    Registered { expires: u32 },
    /// An attempt failed; the next one is sent in `retry_in`.
    Failed {
        failure: RegistrationFailure,
        retry_in: Duration,
    },
    /// The binding was removed (or the unregistration ended without an answer).
    Unregistered {
        last_error: Option<RegistrationFailure>,
    },
}

/// The pending timer of the machine (transaction timers live in the transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    None,
    /// Send the refresh (or the retry after a failure) at this instant.
    Register(Instant),
}

/// A challenge we answer pre-emptively.
#[derive(Debug, Clone)]
struct Auth {
    challenge: Challenge,
    /// `Authorization` for 401, `Proxy-Authorization` for 407.
    proxy: bool,
    cnonce: String,
    nc: u32,
}

/// The REGISTER client of one trunk. See the module documentation.
pub struct Registration {
    config: RegistrationConfig,
    ids: Box<dyn IdSource + Send>,
    call_id: String,
    from_tag: String,
    cseq: u32,
    /// Expiry asked for: `config.expires`, raised by 423.
    asking: u32,
    status: RegistrationStatus,
    tx: Option<ClientNonInvite>,
    /// True while the REGISTER in flight is the unregistration.
    unregistering: bool,
    auth: Option<Auth>,
    /// Challenges answered since the last final non-challenge response.
    challenges_answered: u8,
    failures: u32,
    last_error: Option<RegistrationFailure>,
    next: Next,
    transmits: VecDeque<Message>,
    events: VecDeque<RegistrationEvent>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("aor", &self.config.aor)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Most challenges answered in a row (a `stale=true` nonce may be renewed once or twice).
const MAX_CHALLENGES: u8 = 3;

impl Registration {
    /// Creates the registration and queues its first REGISTER.
    pub fn new(
        now: Instant,
        config: RegistrationConfig,
        mut ids: Box<dyn IdSource + Send>,
    ) -> Result<Registration> {
        let mut reg = Registration {
            call_id: ids.call_id(),
            from_tag: ids.tag(),
            asking: config.expires,
            config,
            ids,
            cseq: 0,
            status: RegistrationStatus::Registering,
            tx: None,
            unregistering: false,
            auth: None,
            challenges_answered: 0,
            failures: 0,
            last_error: None,
            next: Next::None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        reg.send_register(now)?;
        Ok(reg)
    }

    pub fn status(&self) -> &RegistrationStatus {
        &self.status
    }

    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Our From tag: with the Call-ID it identifies the responses of this registration.
    pub fn local_tag(&self) -> &str {
        &self.from_tag
    }

    /// The last failure seen (kept after later successes until replaced).
    pub fn last_error(&self) -> Option<&RegistrationFailure> {
        self.last_error.as_ref()
    }

    /// The expiry currently asked for (raised by 423 responses).
    pub fn requested_expires(&self) -> u32 {
        self.asking
    }

    /// True when `msg` is a response to one of our REGISTERs.
    pub fn matches(&self, msg: &Message) -> bool {
        matches!(msg, Message::Response(r) if r.headers.call_id().ok() == Some(self.call_id.as_str()))
    }

    /// Removes the binding: sends REGISTER with `Expires: 0` when a binding may exist (we are
    /// registered, or a REGISTER is in flight), else reports Unregistered at once. No refresh
    /// or retry follows.
    pub fn unregister(&mut self, now: Instant) {
        if self.unregistering || matches!(self.status, RegistrationStatus::Unregistered { .. }) {
            return;
        }
        self.next = Next::None;
        let bound = matches!(self.status, RegistrationStatus::Registered { .. })
            || self.tx.as_ref().is_some_and(|tx| !tx.is_terminated());
        self.unregistering = true;
        self.tx = None;
        if !bound || self.send_register(now).is_err() {
            self.finish_unregister();
        }
    }

    /// Feeds a received response (see [`Registration::matches`]).
    pub fn handle_message(&mut self, now: Instant, msg: Message) {
        if let Some(tx) = &mut self.tx {
            tx.handle_message(now, msg);
        }
        self.drain(now);
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(tx) = &mut self.tx {
            tx.handle_timeout(now);
        }
        self.drain(now);
        if let Next::Register(at) = self.next {
            if at <= now {
                self.next = Next::None;
                if let Err(e) = self.send_register(now) {
                    self.fail(now, None, format!("cannot build REGISTER: {e}"), None);
                }
            }
        }
    }

    /// The driver could not send the current REGISTER.
    pub fn handle_transport_error(&mut self, now: Instant) {
        if let Some(tx) = &mut self.tx {
            tx.handle_transport_error(now);
        }
        self.drain(now);
    }

    pub fn poll_transmit(&mut self) -> Option<Message> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<RegistrationEvent> {
        self.events.pop_front()
    }

    /// The earliest deadline: the transaction's, or the next refresh / retry.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let tx = self.tx.as_ref().and_then(ClientNonInvite::poll_timeout);
        let own = match self.next {
            Next::Register(at) => Some(at),
            Next::None => None,
        };
        tx.into_iter().chain(own).min()
    }

    // ------------------------------------------------------------------ internals

    fn build(&mut self) -> Request {
        self.cseq += 1;
        let c = &self.config;
        let mut r = Request::new(Method::Register, c.registrar.clone());
        let branch = self.ids.branch();
        let h = &mut r.headers;
        h.push(
            HeaderName::VIA,
            format!(
                "SIP/2.0/{} {};branch={MAGIC_COOKIE}{branch};rport",
                c.transport, c.sent_by
            ),
        );
        if let Some(proxy) = &c.outbound_proxy {
            h.push(HeaderName::ROUTE, format!("<{proxy}>"));
        }
        h.push(HeaderName::MAX_FORWARDS, "70");
        let mut from = NameAddr::new(c.aor.clone());
        from.set_tag(&self.from_tag);
        h.push(HeaderName::FROM, from.to_string());
        h.push(HeaderName::TO, NameAddr::new(c.aor.clone()).to_string());
        h.push(HeaderName::CALL_ID, self.call_id.clone());
        h.push(HeaderName::CSEQ, format!("{} REGISTER", self.cseq));
        h.push(HeaderName::CONTACT, format!("<{}>", c.contact));
        let expires = if self.unregistering { 0 } else { self.asking };
        h.push(HeaderName::new("Expires"), expires.to_string());
        if let Some(ua) = &c.user_agent {
            h.push(HeaderName::new("User-Agent"), ua.clone());
        }
        if let (Some(auth), Some(creds)) = (&mut self.auth, &c.auth) {
            auth.nc += 1;
            let answer = auth.challenge.respond(
                &creds.username,
                &creds.password,
                "REGISTER",
                &r.uri,
                &r.body,
                &auth.cnonce,
                auth.nc,
            );
            let name = if auth.proxy {
                HeaderName::PROXY_AUTHORIZATION
            } else {
                HeaderName::AUTHORIZATION
            };
            r.headers.push(name, answer.to_string());
        }
        r
    }

    fn send_register(&mut self, now: Instant) -> Result<()> {
        let req = self.build();
        let tx = ClientNonInvite::new(now, req, self.config.timers, self.config.reliable)?;
        self.tx = Some(tx);
        self.drain_tx();
        Ok(())
    }

    fn drain_tx(&mut self) {
        if let Some(tx) = &mut self.tx {
            while let Some(m) = tx.poll_transmit() {
                self.transmits.push_back(m);
            }
        }
    }

    fn drain(&mut self, now: Instant) {
        loop {
            self.drain_tx();
            let Some(event) = self.tx.as_mut().and_then(ClientNonInvite::poll_event) else {
                break;
            };
            match event {
                TxEvent::Response(resp) if !resp.is_provisional() => self.on_final(now, resp),
                TxEvent::Timeout(_) => {
                    self.on_no_answer(now, "no response from registrar (timeout)".to_owned())
                }
                TxEvent::TransportError => {
                    self.on_no_answer(now, "transport error sending REGISTER".to_owned())
                }
                _ => {}
            }
        }
    }

    fn on_no_answer(&mut self, now: Instant, reason: String) {
        self.tx = None;
        if self.unregistering {
            self.last_error = Some(RegistrationFailure {
                status: None,
                reason,
            });
            return self.finish_unregister();
        }
        self.fail(now, None, reason, None);
    }

    fn on_final(&mut self, now: Instant, resp: Response) {
        match resp.status {
            200..=299 => self.on_success(now, &resp),
            401 | 407 => self.on_challenge(now, resp),
            423 => self.on_too_brief(now, &resp),
            status => {
                let retry_after = resp
                    .headers
                    .get("Retry-After")
                    .and_then(|v| v.split([';', '(']).next())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                self.reject(now, status, resp.reason.clone(), retry_after);
            }
        }
    }

    /// A final failure status: unregistration ends, registration fails.
    fn reject(&mut self, now: Instant, status: u16, reason: String, retry_after: Option<Duration>) {
        self.tx = None;
        if self.unregistering {
            self.last_error = Some(RegistrationFailure {
                status: Some(status),
                reason,
            });
            return self.finish_unregister();
        }
        self.fail(now, Some(status), reason, retry_after);
    }

    fn on_success(&mut self, now: Instant, resp: &Response) {
        self.tx = None;
        self.challenges_answered = 0;
        if self.unregistering {
            return self.finish_unregister();
        }
        let granted = self.granted_expires(resp);
        if granted == 0 {
            return self.fail(
                now,
                Some(resp.status),
                "registrar granted no binding (expires=0)".to_owned(),
                None,
            );
        }
        self.failures = 0;
        self.status = RegistrationStatus::Registered { expires: granted };
        self.events
            .push_back(RegistrationEvent::Registered { expires: granted });
        self.next = Next::Register(now + self.refresh_after(granted));
    }

    /// When to refresh a binding granted for `expires` seconds (see the module docs).
    fn refresh_after(&self, expires: u32) -> Duration {
        let e = Duration::from_secs(u64::from(expires));
        let margin = self.config.timers.timeout() + Duration::from_secs(8);
        (e / 2).max(e.saturating_sub(margin))
    }

    /// Our Contact's `expires` parameter in the 2xx, else the Expires header, else our ask.
    fn granted_expires(&self, resp: &Response) -> u32 {
        let contacts = resp.headers.contact().unwrap_or_default();
        let ours = contacts
            .iter()
            .find(|c| same_uri(&c.uri, &self.config.contact))
            .or(match contacts.as_slice() {
                [only] => Some(only),
                _ => None,
            });
        ours.and_then(|c| c.params.value("expires"))
            .and_then(|v| v.trim().parse().ok())
            .or_else(|| {
                resp.headers
                    .get("Expires")
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(self.asking)
    }

    fn on_challenge(&mut self, now: Instant, resp: Response) {
        let proxy = resp.status == 407;
        let challenges = if proxy {
            resp.headers.proxy_authenticate()
        } else {
            resp.headers.www_authenticate()
        };
        // Prefer SHA-256 when the server offers several algorithms (RFC 8760 §2.4).
        let challenge = challenges.ok().and_then(|mut c| {
            c.sort_by_key(|ch| match ch.algorithm {
                crate::digest::Algorithm::Sha256 | crate::digest::Algorithm::Sha256Sess => 0,
                _ => 1,
            });
            c.into_iter().next()
        });
        let Some(challenge) = challenge else {
            return self.reject(
                now,
                resp.status,
                format!("{} (no usable digest challenge)", resp.reason),
                None,
            );
        };
        if self.config.auth.is_none() {
            return self.reject(
                now,
                resp.status,
                format!(
                    "{} (registrar demands credentials, none configured)",
                    resp.reason
                ),
                None,
            );
        }
        // We answered a challenge and got challenged again without a stale nonce: the
        // registrar refused our credentials.
        let answered_this = self.tx.as_ref().is_some_and(|tx| {
            tx.request()
                .headers
                .get(if proxy {
                    "Proxy-Authorization"
                } else {
                    "Authorization"
                })
                .is_some()
        });
        // A pre-emptive answer (no challenge answered yet in this attempt) may meet a fresh
        // nonce; an answer to the challenge just received must not.
        let refused = answered_this && self.challenges_answered >= 1 && !challenge.stale;
        if refused || self.challenges_answered >= MAX_CHALLENGES {
            self.auth = None;
            return self.reject(
                now,
                resp.status,
                format!(
                    "{} (credentials rejected: wrong username or password)",
                    resp.reason
                ),
                None,
            );
        }
        self.challenges_answered += 1;
        self.auth = Some(Auth {
            challenge,
            proxy,
            cnonce: self.ids.cnonce(),
            nc: 0,
        });
        self.tx = None;
        if let Err(e) = self.send_register(now) {
            self.fail(now, None, format!("cannot build REGISTER: {e}"), None);
        }
    }

    fn on_too_brief(&mut self, now: Instant, resp: &Response) {
        let floor: Option<u32> = resp
            .headers
            .get("Min-Expires")
            .and_then(|v| v.trim().parse().ok());
        match floor {
            Some(floor) if floor > self.asking && !self.unregistering => {
                self.asking = floor;
                self.tx = None;
                if let Err(e) = self.send_register(now) {
                    self.fail(now, None, format!("cannot build REGISTER: {e}"), None);
                }
            }
            _ => self.reject(now, resp.status, resp.reason.clone(), None),
        }
    }

    fn fail(
        &mut self,
        now: Instant,
        status: Option<u16>,
        reason: String,
        retry_after: Option<Duration>,
    ) {
        self.tx = None;
        self.challenges_answered = 0;
        self.failures = self.failures.saturating_add(1);
        let exp = self.failures.saturating_sub(1).min(20);
        let backoff = self
            .config
            .retry_initial
            .saturating_mul(1u32 << exp)
            .min(self.config.retry_max);
        let retry_in = retry_after.map_or(backoff, |ra| ra.max(backoff));
        let failure = RegistrationFailure { status, reason };
        self.last_error = Some(failure.clone());
        self.status = RegistrationStatus::Failed(failure.clone());
        self.events
            .push_back(RegistrationEvent::Failed { failure, retry_in });
        self.next = Next::Register(now + retry_in);
    }

    fn finish_unregister(&mut self) {
        self.tx = None;
        self.challenges_answered = 0;
        self.next = Next::None;
        let last_error = self.last_error.clone();
        self.status = RegistrationStatus::Unregistered {
            last_error: last_error.clone(),
        };
        self.events
            .push_back(RegistrationEvent::Unregistered { last_error });
    }
}

/// Compares two SIP URIs loosely: scheme, user, host and port, case-insensitive on the host,
/// ignoring URI parameters.
fn same_uri(a: &str, b: &str) -> bool {
    fn core(u: &str) -> String {
        let u = u.trim().trim_start_matches('<').trim_end_matches('>');
        let u = u.split(['?', ';']).next().unwrap_or(u);
        u.to_ascii_lowercase()
    }
    core(a) == core(b)
}

#[cfg(test)]
mod tests;
