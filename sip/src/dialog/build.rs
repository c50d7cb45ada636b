//! Building the requests of a UAC dialog (RFC 3261 §8.1.1, §9.1, §12.2.1.1, §13.2.2.4).

use crate::headers::{HeaderName, NameAddr};
use crate::message::{Method, Request};
use crate::transaction::MAGIC_COOKIE;

/// Methods we accept inside a dialog (sent in Allow).
pub(super) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE";

/// The identity and routing of one dialog (or of the INVITE that will create it).
#[derive(Debug, Clone)]
pub(crate) struct Leg {
    pub call_id: String,
    /// Our From, with our tag.
    pub local: NameAddr,
    /// Their To; the tag once an early or confirmed dialog exists.
    pub remote: NameAddr,
    pub local_cseq: u32,
    /// Request-URI of in-dialog requests: the peer's Contact.
    pub remote_target: String,
    /// Route set, in the order to write it (already reversed from Record-Route).
    pub route_set: Vec<NameAddr>,
    pub contact: String,
    pub via_transport: String,
    pub via_sent_by: String,
    pub user_agent: Option<String>,
}

impl Leg {
    pub fn via(&self, branch: &str) -> String {
        format!(
            "SIP/2.0/{} {};branch={MAGIC_COOKIE}{branch};rport",
            self.via_transport, self.via_sent_by
        )
    }

    /// The common head of every request: Via, Max-Forwards, From, To, Call-ID, CSeq.
    fn base(&self, method: Method, uri: &str, branch: &str, seq: u32) -> Request {
        let mut r = Request::new(method.clone(), uri);
        let h = &mut r.headers;
        h.push(HeaderName::VIA, self.via(branch));
        h.push(HeaderName::MAX_FORWARDS, "70");
        h.push(HeaderName::FROM, self.local.to_string());
        h.push(HeaderName::TO, self.remote.to_string());
        h.push(HeaderName::CALL_ID, self.call_id.clone());
        h.push(HeaderName::CSEQ, format!("{seq} {method}"));
        r
    }

    /// Request-URI and Route headers from the route set and remote target (§12.2.1.1):
    /// loose routing keeps the target as Request-URI; a strict first hop becomes the
    /// Request-URI and the target goes last in Route.
    fn routed(&self, target: &str) -> (String, Vec<String>) {
        match self.route_set.first() {
            Some(first) if !first.uri.contains(";lr") => {
                let mut routes: Vec<String> =
                    self.route_set[1..].iter().map(|r| r.to_string()).collect();
                routes.push(format!("<{target}>"));
                (strip_uri_headers(&first.uri), routes)
            }
            _ => (
                target.to_owned(),
                self.route_set.iter().map(|r| r.to_string()).collect(),
            ),
        }
    }

    /// An INVITE (initial, retried or re-INVITE) to `target`, with a new CSeq.
    pub fn invite(&mut self, target: &str, branch: &str, body: Vec<u8>) -> Request {
        self.local_cseq += 1;
        let (uri, routes) = self.routed(target);
        let mut r = self.base(Method::Invite, &uri, branch, self.local_cseq);
        self.finish(&mut r, routes);
        r.headers
            .push(HeaderName::CONTACT, format!("<{}>", self.contact));
        r.headers.push(HeaderName::new("Allow"), ALLOW);
        r.headers.push(HeaderName::new("Supported"), "timer");
        if !body.is_empty() {
            r.headers
                .push(HeaderName::CONTENT_TYPE, "application/sdp".to_owned());
        }
        r.body = body;
        r
    }

    /// A new in-dialog non-INVITE request (BYE, ...) with the next CSeq.
    pub fn in_dialog(&mut self, method: Method, branch: &str) -> Request {
        self.local_cseq += 1;
        let target = self.remote_target.clone();
        let (uri, routes) = self.routed(&target);
        let mut r = self.base(method, &uri, branch, self.local_cseq);
        self.finish(&mut r, routes);
        r
    }

    /// The ACK for a 2xx (§13.2.2.4): its own transaction-less request with a new branch, the
    /// CSeq number of the INVITE, sent to the remote target through the route set.
    pub fn ack(&self, invite_seq: u32, branch: &str, body: Vec<u8>) -> Request {
        let (uri, routes) = self.routed(&self.remote_target);
        let mut r = self.base(Method::Ack, &uri, branch, invite_seq);
        self.finish(&mut r, routes);
        if !body.is_empty() {
            r.headers
                .push(HeaderName::CONTENT_TYPE, "application/sdp".to_owned());
        }
        r.body = body;
        r
    }

    fn finish(&self, r: &mut Request, routes: Vec<String>) {
        for route in routes {
            r.headers.push(HeaderName::ROUTE, route);
        }
        if let Some(ua) = &self.user_agent {
            r.headers.push(HeaderName::new("User-Agent"), ua.clone());
        }
    }
}

/// The CANCEL for a pending INVITE (§9.1): same Request-URI, Call-ID, From, To (no tag), top
/// Via (same branch) and Route; the INVITE's CSeq number with method CANCEL.
pub(super) fn cancel(invite: &Request) -> Request {
    let mut c = Request::new(Method::Cancel, invite.uri.clone());
    let h = &invite.headers;
    if let Some(via) = h.values("Via").next() {
        c.headers.push(HeaderName::VIA, via);
    }
    for route in h.get_all("Route") {
        c.headers.push(HeaderName::ROUTE, route);
    }
    c.headers.push(HeaderName::MAX_FORWARDS, "70");
    for (name, key) in [
        (HeaderName::FROM, "From"),
        (HeaderName::TO, "To"),
        (HeaderName::CALL_ID, "Call-ID"),
    ] {
        if let Some(v) = h.get(key) {
            c.headers.push(name, v);
        }
    }
    if let Ok(cseq) = h.cseq() {
        c.headers
            .push(HeaderName::CSEQ, format!("{} {}", cseq.seq, Method::Cancel));
    }
    c
}

/// Drops `?headers` from a URI used as a Request-URI.
fn strip_uri_headers(uri: &str) -> String {
    uri.split('?').next().unwrap_or(uri).to_owned()
}
