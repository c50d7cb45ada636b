//! A small registrar for agent softphones (RFC 3261 §10.3) with digest authentication
//! (RFC 7616): REGISTER from users whose password the caller's lookup knows, one binding per
//! user kept in memory until it expires, and [`Registrar::lookup`] so the dialer can call
//! `alice` at the contact her phone registered.
//!
//! It is plain data behind a mutex (one short lock per REGISTER or lookup, never on a media
//! path) and takes `now` from its caller; [`super::Endpoint::enable_registrar`] installs it as
//! the endpoint's request handler.
//!
//! Nonces are random, remembered for [`NONCE_LIFETIME`] (an older one is answered with a new
//! challenge marked `stale=true`), at most [`MAX_NONCES`] at a time. Wrong credentials, an
//! unknown user or a user registering someone else's address answer 403.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::digest::{Algorithm, Challenge, Credentials};
use crate::headers::HeaderName;
use crate::message::{Method, Request, Response};

/// How long a nonce is accepted after it was issued.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// Most outstanding nonces (the oldest are forgotten beyond it).
pub const MAX_NONCES: usize = 10_000;

/// The password of a user, if the user may register (called on the endpoint task: keep it
/// quick — an in-memory map, not a database query).
pub type PasswordLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Settings of a registrar.
#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    /// The digest realm (and the domain users register in).
    pub realm: String,
    /// Shorter expiries are refused with 423 (default 30 s).
    pub min_expires: u32,
    /// Longer expiries are shortened to this (default 3600 s).
    pub max_expires: u32,
    /// Digest algorithm of the challenges (default MD5, which every softphone speaks).
    pub algorithm: Algorithm,
}

impl RegistrarConfig {
    pub fn new(realm: &str) -> RegistrarConfig {
        RegistrarConfig {
            realm: realm.to_owned(),
            min_expires: 30,
            max_expires: 3600,
            algorithm: Algorithm::Md5,
        }
    }
}

#[derive(Debug, Clone)]
struct Binding {
    contact: String,
    expires_at: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    bindings: HashMap<String, Binding>,
    nonces: HashMap<String, Instant>,
    counter: u64,
}

/// The registrar. See the module documentation.
pub struct Registrar {
    config: RegistrarConfig,
    passwords: PasswordLookup,
    random: RandomState,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Registrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrar")
            .field("realm", &self.config.realm)
            .finish_non_exhaustive()
    }
}

/// The user part of a SIP URI (`alice` of `sip:alice@host;x`).
fn uri_user(uri: &str) -> Option<&str> {
    let u = uri.trim().trim_start_matches('<');
    let rest = u.strip_prefix("sips:").or_else(|| u.strip_prefix("sip:"))?;
    let (user, _) = rest.split_once('@')?;
    let user = user.split([';', ':']).next().unwrap_or(user);
    (!user.is_empty()).then_some(user)
}

impl Registrar {
    pub fn new(config: RegistrarConfig, passwords: PasswordLookup) -> Registrar {
        Registrar {
            config,
            passwords,
            random: RandomState::new(),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The contact `user` registered, while the binding lasts.
    pub fn lookup(&self, user: &str, now: Instant) -> Option<String> {
        self.lock()
            .bindings
            .get(user)
            .filter(|b| b.expires_at > now)
            .map(|b| b.contact.clone())
    }

    /// Users with a live binding and their contacts, sorted by user.
    pub fn bindings(&self, now: Instant) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .lock()
            .bindings
            .iter()
            .filter(|(_, b)| b.expires_at > now)
            .map(|(u, b)| (u.clone(), b.contact.clone()))
            .collect();
        out.sort();
        out
    }

    /// Answers a REGISTER (`None` for every other request).
    pub fn handle(&self, req: &Request, now: Instant) -> Option<Response> {
        if req.method != Method::Register {
            return None;
        }
        let mut inner = self.lock();
        inner.bindings.retain(|_, b| b.expires_at > now);
        let Some(user) = req
            .headers
            .to()
            .ok()
            .and_then(|to| uri_user(&to.uri).map(str::to_owned))
        else {
            return Some(self.reply(req, 400, "Bad Request (no user in To)", &mut inner));
        };
        // Authenticate.
        let creds = req
            .headers
            .get("Authorization")
            .and_then(|v| Credentials::parse(v).ok());
        let Some(creds) = creds else {
            return Some(self.challenge(req, false, now, &mut inner));
        };
        match inner.nonces.get(&creds.nonce) {
            None => return Some(self.challenge(req, false, now, &mut inner)),
            Some(issued) if now.saturating_duration_since(*issued) > NONCE_LIFETIME => {
                inner.nonces.remove(&creds.nonce);
                return Some(self.challenge(req, true, now, &mut inner));
            }
            Some(_) => {}
        }
        let password = (self.passwords)(&user);
        let ok = creds.username == user
            && creds.realm == self.config.realm
            && password.is_some_and(|p| creds.verify(&p, "REGISTER", &req.body));
        if !ok {
            return Some(self.reply(req, 403, "Forbidden (wrong credentials)", &mut inner));
        }
        // Bind, refresh or remove.
        if req.headers.get("Contact").map(str::trim) == Some("*") {
            inner.bindings.remove(&user);
            return Some(self.reply(req, 200, "OK", &mut inner));
        }
        let contacts = match req.headers.contact() {
            Ok(c) => c,
            Err(_) => return Some(self.reply(req, 400, "Bad Request (Contact)", &mut inner)),
        };
        let Some(contact) = contacts.into_iter().next() else {
            // A query: the current binding.
            let mut resp = self.reply(req, 200, "OK", &mut inner);
            if let Some(b) = inner.bindings.get(&user) {
                let left = b.expires_at.saturating_duration_since(now).as_secs();
                resp.headers.push(
                    HeaderName::CONTACT,
                    format!("<{}>;expires={left}", b.contact),
                );
            }
            return Some(resp);
        };
        let asked: u32 = contact
            .params
            .value("expires")
            .or_else(|| req.headers.get("Expires"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(3600);
        if asked == 0 {
            inner.bindings.remove(&user);
            return Some(self.reply(req, 200, "OK", &mut inner));
        }
        if asked < self.config.min_expires {
            let mut resp = self.reply(req, 423, "Interval Too Brief", &mut inner);
            resp.headers.push(
                HeaderName::new("Min-Expires"),
                self.config.min_expires.to_string(),
            );
            return Some(resp);
        }
        let granted = asked.min(self.config.max_expires);
        inner.bindings.insert(
            user,
            Binding {
                contact: contact.uri.clone(),
                expires_at: now + Duration::from_secs(u64::from(granted)),
            },
        );
        let mut resp = self.reply(req, 200, "OK", &mut inner);
        resp.headers.push(
            HeaderName::CONTACT,
            format!("<{}>;expires={granted}", contact.uri),
        );
        resp.headers
            .push(HeaderName::new("Expires"), granted.to_string());
        Some(resp)
    }

    fn token(&self, inner: &mut Inner) -> String {
        inner.counter += 1;
        format!(
            "{:016x}{:016x}",
            self.random.hash_one(inner.counter),
            self.random.hash_one(!inner.counter)
        )
    }

    fn reply(&self, req: &Request, status: u16, reason: &str, inner: &mut Inner) -> Response {
        let mut resp = Response::from_request(req, status, reason);
        let tag = self.token(inner);
        let _ = resp.set_to_tag(&tag[..16]);
        resp
    }

    fn challenge(&self, req: &Request, stale: bool, now: Instant, inner: &mut Inner) -> Response {
        if inner.nonces.len() >= MAX_NONCES {
            inner
                .nonces
                .retain(|_, issued| now.saturating_duration_since(*issued) <= NONCE_LIFETIME);
            while inner.nonces.len() >= MAX_NONCES {
                let oldest = inner
                    .nonces
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(n, _)| n.clone());
                match oldest {
                    Some(n) => inner.nonces.remove(&n),
                    None => break,
                };
            }
        }
        let nonce = self.token(inner);
        inner.nonces.insert(nonce.clone(), now);
        let mut ch = Challenge::new(&self.config.realm, &nonce, self.config.algorithm);
        ch.stale = stale;
        let mut resp = self.reply(req, 401, "Unauthorized", inner);
        resp.headers
            .push(HeaderName::WWW_AUTHENTICATE, ch.to_string());
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;

    fn registrar() -> Registrar {
        let passwords: PasswordLookup =
            Arc::new(|u: &str| (u == "alice").then(|| "s3cret".to_owned()));
        Registrar::new(RegistrarConfig::new("agents.test"), passwords)
    }

    fn register(user: &str, contact: &str, expires: Option<u32>, auth: Option<String>) -> Request {
        let mut text = format!(
            "REGISTER sip:agents.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKr1\r\n\
             From: <sip:{user}@agents.test>;tag=f1\r\nTo: <sip:{user}@agents.test>\r\nCall-ID: reg1@test\r\n\
             CSeq: 1 REGISTER\r\nMax-Forwards: 70\r\nContact: {contact}\r\n"
        );
        if let Some(e) = expires {
            text.push_str(&format!("Expires: {e}\r\n"));
        }
        if let Some(a) = auth {
            text.push_str(&format!("Authorization: {a}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        match Message::parse(text.as_bytes()).expect("parse") {
            Message::Request(r) => r,
            Message::Response(_) => panic!("a request"),
        }
    }

    fn answer(resp: &Response, user: &str, password: &str) -> String {
        let ch = resp.headers.www_authenticate().expect("challenge")[0].clone();
        ch.respond(
            user,
            password,
            "REGISTER",
            "sip:agents.test",
            &[],
            "c0ffee",
            1,
        )
        .to_string()
    }

    #[test]
    fn digest_register_binds_refreshes_and_removes() {
        let r = registrar();
        let t0 = Instant::now();
        let contact = "<sip:alice@127.0.0.1:5099>";
        let first = r
            .handle(&register("alice", contact, Some(60), None), t0)
            .expect("answer");
        assert_eq!(first.status, 401);
        assert!(r.lookup("alice", t0).is_none());
        let auth = answer(&first, "alice", "s3cret");
        let ok = r
            .handle(
                &register("alice", contact, Some(60), Some(auth.clone())),
                t0,
            )
            .expect("answer");
        assert_eq!(ok.status, 200);
        assert_eq!(ok.headers.get("Expires"), Some("60"));
        assert_eq!(
            r.lookup("alice", t0).as_deref(),
            Some("sip:alice@127.0.0.1:5099")
        );
        assert_eq!(r.bindings(t0).len(), 1);
        // Expiry.
        assert!(r.lookup("alice", t0 + Duration::from_secs(61)).is_none());
        // Capped expiry and 423.
        let ok = r
            .handle(
                &register("alice", contact, Some(99_999), Some(auth.clone())),
                t0,
            )
            .expect("answer");
        assert_eq!(ok.headers.get("Expires"), Some("3600"));
        let brief = r
            .handle(&register("alice", contact, Some(5), Some(auth.clone())), t0)
            .expect("answer");
        assert_eq!(
            (brief.status, brief.headers.get("Min-Expires")),
            (423, Some("30"))
        );
        // Removal.
        let gone = r
            .handle(&register("alice", contact, Some(0), Some(auth)), t0)
            .expect("answer");
        assert_eq!(gone.status, 200);
        assert!(r.lookup("alice", t0).is_none());
    }

    #[test]
    fn wrong_passwords_unknown_users_and_stale_nonces() {
        let r = registrar();
        let t0 = Instant::now();
        let contact = "<sip:x@127.0.0.1:5099>";
        let ch = r
            .handle(&register("alice", contact, None, None), t0)
            .expect("answer");
        let wrong = answer(&ch, "alice", "nope");
        let resp = r
            .handle(&register("alice", contact, None, Some(wrong)), t0)
            .expect("answer");
        assert_eq!(resp.status, 403);
        let ch = r
            .handle(&register("mallory", contact, None, None), t0)
            .expect("answer");
        let unknown = answer(&ch, "mallory", "s3cret");
        let resp = r
            .handle(&register("mallory", contact, None, Some(unknown)), t0)
            .expect("answer");
        assert_eq!(resp.status, 403);
        // Alice's credentials used for bob's address.
        let ch = r
            .handle(&register("bob", contact, None, None), t0)
            .expect("answer");
        let other = answer(&ch, "alice", "s3cret");
        let resp = r
            .handle(&register("bob", contact, None, Some(other)), t0)
            .expect("answer");
        assert_eq!(resp.status, 403);
        // A nonce past its lifetime gets a fresh, stale challenge.
        let ch = r
            .handle(&register("alice", contact, None, None), t0)
            .expect("answer");
        let auth = answer(&ch, "alice", "s3cret");
        let later = t0 + NONCE_LIFETIME + Duration::from_secs(1);
        let resp = r
            .handle(&register("alice", contact, None, Some(auth)), later)
            .expect("answer");
        assert_eq!(resp.status, 401);
        assert!(resp.headers.www_authenticate().expect("challenge")[0].stale);
        // Other methods are not the registrar's.
        let mut options = register("alice", contact, None, None);
        options.method = Method::Options;
        assert!(r.handle(&options, t0).is_none());
    }
}
