//! The carrier's registrar and INVITE authentication: answers REGISTER (digest MD5, qop=auth
//! when credentials are configured, else 200 to anyone) and, when asked, challenges INVITEs
//! with 407. Installed as the endpoint's request handler, so it answers statelessly.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use switchboard_sip::digest::{Algorithm, Challenge, Credentials};
use switchboard_sip::{HeaderName, Method, NameAddr, Request, Response};

use crate::rng::Rng;

/// Nonces remembered (older ones are answered `stale=true`).
const NONCES: usize = 4096;
/// Longest binding granted (s).
const MAX_EXPIRES: u32 = 3600;

/// Counters of the registrar.
#[derive(Debug, Default)]
pub struct RegistrarCounts {
    /// REGISTERs answered 200 (bindings made or refreshed; unregistrations too).
    pub registered: AtomicU64,
    /// Requests whose credentials were wrong (answered 401 / 407 without `stale`).
    pub refused: AtomicU64,
    /// Challenges sent (401 / 407).
    pub challenges: AtomicU64,
}

struct Nonces {
    order: VecDeque<String>,
    known: HashSet<String>,
    rng: Rng,
}

pub(crate) struct Registrar {
    realm: String,
    credentials: Option<(String, String)>,
    auth_invites: bool,
    nonces: Mutex<Nonces>,
    pub(crate) counts: Arc<RegistrarCounts>,
}

enum Check {
    Ok,
    Missing,
    Stale,
    Wrong,
}

impl Registrar {
    pub(crate) fn new(
        realm: &str,
        credentials: Option<(String, String)>,
        auth_invites: bool,
        seed: u64,
    ) -> Registrar {
        Registrar {
            realm: realm.to_owned(),
            credentials,
            auth_invites,
            nonces: Mutex::new(Nonces {
                order: VecDeque::new(),
                known: HashSet::new(),
                rng: Rng::new(seed ^ 0x05EE_D0FA_11CE),
            }),
            counts: Arc::new(RegistrarCounts::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Nonces> {
        self.nonces.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn tag(&self) -> String {
        format!("{:016x}", self.lock().rng.next_u64())
    }

    fn nonce(&self) -> String {
        let mut n = self.lock();
        let nonce = format!("{:016x}{:016x}", n.rng.next_u64(), n.rng.next_u64());
        n.order.push_back(nonce.clone());
        n.known.insert(nonce.clone());
        while n.order.len() > NONCES {
            if let Some(old) = n.order.pop_front() {
                n.known.remove(&old);
            }
        }
        nonce
    }

    /// The endpoint's request handler.
    pub(crate) fn handle(&self, req: &Request, _source: SocketAddr) -> Option<Response> {
        match req.method {
            Method::Register => Some(self.register(req)),
            Method::Invite if self.auth_invites && self.credentials.is_some() => self.invite(req),
            _ => None,
        }
    }

    fn check(&self, req: &Request, header: &str) -> Check {
        let Some((user, password)) = &self.credentials else {
            return Check::Ok;
        };
        let Some(creds) = req
            .headers
            .get_all(header)
            .filter_map(|v| Credentials::parse(v).ok())
            .find(|c| c.realm == self.realm)
        else {
            return Check::Missing;
        };
        if creds.username != *user || !creds.verify(password, req.method.as_str(), &req.body) {
            return Check::Wrong;
        }
        if self.lock().known.contains(&creds.nonce) {
            Check::Ok
        } else {
            Check::Stale
        }
    }

    fn challenge(&self, req: &Request, status: u16, check: &Check) -> Response {
        let (reason, header) = if status == 407 {
            (
                "Proxy Authentication Required",
                HeaderName::PROXY_AUTHENTICATE,
            )
        } else {
            ("Unauthorized", HeaderName::WWW_AUTHENTICATE)
        };
        let mut challenge = Challenge::new(&self.realm, &self.nonce(), Algorithm::Md5);
        challenge.stale = matches!(check, Check::Stale);
        self.counts.challenges.fetch_add(1, Ordering::Relaxed);
        if matches!(check, Check::Wrong) {
            self.counts.refused.fetch_add(1, Ordering::Relaxed);
        }
        let mut resp = Response::from_request(req, status, reason);
        let _ = resp.set_to_tag(&self.tag());
        resp.headers.push(header, challenge.to_string());
        resp
    }

    fn register(&self, req: &Request) -> Response {
        let check = self.check(req, "Authorization");
        if !matches!(check, Check::Ok) {
            return self.challenge(req, 401, &check);
        }
        let asked = req
            .headers
            .get("Expires")
            .and_then(|v| v.trim().parse::<u32>().ok());
        let mut resp = Response::from_request(req, 200, "OK");
        let _ = resp.set_to_tag(&self.tag());
        let contacts = req.headers.contact().unwrap_or_default();
        let mut granted = None;
        for mut c in contacts.into_iter().filter(|c| c.uri != "*") {
            let want = c
                .params
                .value("expires")
                .and_then(|v| v.parse::<u32>().ok())
                .or(asked)
                .unwrap_or(MAX_EXPIRES)
                .min(MAX_EXPIRES);
            if want == 0 {
                continue;
            }
            c.params.set("expires", Some(&want.to_string()));
            granted = Some(want);
            resp.headers
                .push(HeaderName::CONTACT, NameAddr::to_string(&c));
        }
        if let Some(g) = granted {
            resp.headers.push(HeaderName::new("Expires"), g.to_string());
        }
        self.counts.registered.fetch_add(1, Ordering::Relaxed);
        resp
    }

    fn invite(&self, req: &Request) -> Option<Response> {
        let check = self.check(req, "Proxy-Authorization");
        match check {
            Check::Ok => None,
            _ => Some(self.challenge(req, 407, &check)),
        }
    }
}
