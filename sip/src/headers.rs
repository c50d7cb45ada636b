//! SIP headers: the ordered header collection, names with compact forms, and typed values.
//!
//! A [`Headers`] keeps every header line in wire order with its value as text (folded lines
//! joined). Typed values ([`Via`], [`NameAddr`], [`CSeq`], digest challenges) are parsed on
//! demand by the accessors, so an unknown or odd header never makes a whole message fail.

use std::borrow::Cow;
use std::fmt;

use crate::digest::{Challenge, Credentials};
use crate::error::{Error, Result};
use crate::message::Method;

/// Full names of the compact forms of RFC 3261 §7.3.3 and later RFCs.
const COMPACT: &[(u8, &str)] = &[
    (b'i', "Call-ID"),
    (b'm', "Contact"),
    (b'e', "Content-Encoding"),
    (b'l', "Content-Length"),
    (b'c', "Content-Type"),
    (b'f', "From"),
    (b's', "Subject"),
    (b'k', "Supported"),
    (b't', "To"),
    (b'v', "Via"),
    (b'o', "Event"),
    (b'r', "Refer-To"),
    (b'b', "Referred-By"),
    (b'u', "Allow-Events"),
    (b'x', "Session-Expires"),
];

/// Canonical spelling of the headers we know, so that serialization is tidy.
const KNOWN: &[&str] = &[
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Max-Forwards",
    "Content-Length",
    "Content-Type",
    "Content-Encoding",
    "Subject",
    "Supported",
    "Route",
    "Record-Route",
    "WWW-Authenticate",
    "Authorization",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Expires",
    "Min-Expires",
    "User-Agent",
    "Server",
    "Allow",
    "Require",
    "Unsupported",
    "Event",
    "Refer-To",
    "Referred-By",
    "Allow-Events",
    "Session-Expires",
    "Min-SE",
    "Reason",
    "Retry-After",
    "Accept",
    "Warning",
];

/// A header name. Compact forms are expanded and known names canonically cased; comparison is
/// ASCII case-insensitive, as RFC 3261 §7.3.1 requires.
#[derive(Debug, Clone)]
pub struct HeaderName(Cow<'static, str>);

impl HeaderName {
    pub const VIA: HeaderName = HeaderName(Cow::Borrowed("Via"));
    pub const FROM: HeaderName = HeaderName(Cow::Borrowed("From"));
    pub const TO: HeaderName = HeaderName(Cow::Borrowed("To"));
    pub const CALL_ID: HeaderName = HeaderName(Cow::Borrowed("Call-ID"));
    pub const CSEQ: HeaderName = HeaderName(Cow::Borrowed("CSeq"));
    pub const CONTACT: HeaderName = HeaderName(Cow::Borrowed("Contact"));
    pub const MAX_FORWARDS: HeaderName = HeaderName(Cow::Borrowed("Max-Forwards"));
    pub const CONTENT_LENGTH: HeaderName = HeaderName(Cow::Borrowed("Content-Length"));
    pub const CONTENT_TYPE: HeaderName = HeaderName(Cow::Borrowed("Content-Type"));
    pub const ROUTE: HeaderName = HeaderName(Cow::Borrowed("Route"));
    pub const RECORD_ROUTE: HeaderName = HeaderName(Cow::Borrowed("Record-Route"));
    pub const WWW_AUTHENTICATE: HeaderName = HeaderName(Cow::Borrowed("WWW-Authenticate"));
    pub const AUTHORIZATION: HeaderName = HeaderName(Cow::Borrowed("Authorization"));
    pub const PROXY_AUTHENTICATE: HeaderName = HeaderName(Cow::Borrowed("Proxy-Authenticate"));
    pub const PROXY_AUTHORIZATION: HeaderName = HeaderName(Cow::Borrowed("Proxy-Authorization"));

    /// Builds a name from wire text: `v` becomes `Via`, `call-id` becomes `Call-ID`.
    pub fn new(name: &str) -> HeaderName {
        let full = expand(name);
        match KNOWN.iter().find(|k| k.eq_ignore_ascii_case(full)) {
            Some(known) => HeaderName(Cow::Borrowed(known)),
            None => HeaderName(Cow::Owned(full.to_owned())),
        }
    }

    /// The name as it is serialized.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when this name denotes the header `query` (full or compact form, any case).
    pub fn is(&self, query: &str) -> bool {
        self.0.eq_ignore_ascii_case(expand(query))
    }
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}
impl Eq for HeaderName {}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Expands a one-letter compact form; other names are returned unchanged.
fn expand(name: &str) -> &str {
    if let [c] = name.as_bytes() {
        let c = c.to_ascii_lowercase();
        if let Some((_, full)) = COMPACT.iter().find(|(k, _)| *k == c) {
            return full;
        }
    }
    name
}

/// The headers of a message, one entry per header line, in wire order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(HeaderName, String)>,
}

impl Headers {
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Appends a header line.
    pub fn push(&mut self, name: HeaderName, value: impl Into<String>) {
        self.entries.push((name, value.into()));
    }

    /// Replaces every line of `name` by one line holding `value` (at the first line's place).
    pub fn set(&mut self, name: HeaderName, value: impl Into<String>) {
        let value = value.into();
        match self.entries.iter().position(|(n, _)| *n == name) {
            Some(first) => {
                self.entries[first].1 = value;
                let mut i = 0;
                self.entries.retain(|(n, _)| {
                    let keep = i == first || *n != name;
                    i += 1;
                    keep
                });
            }
            None => self.entries.push((name, value)),
        }
    }

    /// Inserts a header line before all others (used for a new top Via).
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<String>) {
        self.entries.insert(0, (name, value.into()));
    }

    /// Removes every line of `name`.
    pub fn remove(&mut self, name: &str) {
        self.entries.retain(|(n, _)| !n.is(name));
    }

    /// The first line's value of `name` (full or compact form, any case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n.is(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every line's value of `name`, in order. Lines are not split at commas; see [`Headers::values`].
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |(n, _)| n.is(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every comma-separated value of `name` across all its lines (RFC 3261 §7.3.1), for the
    /// list headers (Via, Contact, Route, Record-Route, ...). Commas inside quotes and angle
    /// brackets do not split.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all(name).flat_map(split_list)
    }

    /// All header lines in order.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &str)> {
        self.entries.iter().map(|(n, v)| (n, v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn required(&self, name: &'static str) -> Result<&str> {
        self.get(name).ok_or(Error::MissingHeader(name))
    }

    /// All Via values, topmost first.
    pub fn via(&self) -> Result<Vec<Via>> {
        self.values("Via").map(Via::parse).collect()
    }

    /// The topmost Via.
    pub fn top_via(&self) -> Result<Via> {
        let first = self
            .values("Via")
            .next()
            .ok_or(Error::MissingHeader("Via"))?;
        Via::parse(first)
    }

    pub fn from(&self) -> Result<NameAddr> {
        NameAddr::parse(self.required("From")?).map_err(|_| Error::InvalidHeader("From"))
    }

    pub fn to(&self) -> Result<NameAddr> {
        NameAddr::parse(self.required("To")?).map_err(|_| Error::InvalidHeader("To"))
    }

    pub fn call_id(&self) -> Result<&str> {
        let v = self.required("Call-ID")?;
        if v.is_empty() || v.contains(char::is_whitespace) {
            return Err(Error::InvalidHeader("Call-ID"));
        }
        Ok(v)
    }

    pub fn cseq(&self) -> Result<CSeq> {
        CSeq::parse(self.required("CSeq")?)
    }

    /// Contact values; a `*` contact is returned as a [`NameAddr`] whose uri is `*`.
    pub fn contact(&self) -> Result<Vec<NameAddr>> {
        self.values("Contact")
            .map(|v| NameAddr::parse(v).map_err(|_| Error::InvalidHeader("Contact")))
            .collect()
    }

    pub fn max_forwards(&self) -> Result<Option<u32>> {
        self.get("Max-Forwards")
            .map(|v| {
                parse_decimal(v)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or(Error::InvalidHeader("Max-Forwards"))
            })
            .transpose()
    }

    pub fn content_length(&self) -> Result<Option<usize>> {
        self.get("Content-Length")
            .map(|v| parse_decimal(v).ok_or(Error::InvalidContentLength))
            .transpose()
    }

    pub fn route(&self) -> Result<Vec<NameAddr>> {
        self.values("Route")
            .map(|v| NameAddr::parse(v).map_err(|_| Error::InvalidHeader("Route")))
            .collect()
    }

    pub fn record_route(&self) -> Result<Vec<NameAddr>> {
        self.values("Record-Route")
            .map(|v| NameAddr::parse(v).map_err(|_| Error::InvalidHeader("Record-Route")))
            .collect()
    }

    pub fn www_authenticate(&self) -> Result<Vec<Challenge>> {
        self.get_all("WWW-Authenticate")
            .map(Challenge::parse)
            .collect()
    }

    pub fn proxy_authenticate(&self) -> Result<Vec<Challenge>> {
        self.get_all("Proxy-Authenticate")
            .map(Challenge::parse)
            .collect()
    }

    pub fn authorization(&self) -> Result<Vec<Credentials>> {
        self.get_all("Authorization")
            .map(Credentials::parse)
            .collect()
    }

    pub fn proxy_authorization(&self) -> Result<Vec<Credentials>> {
        self.get_all("Proxy-Authorization")
            .map(Credentials::parse)
            .collect()
    }
}

/// A non-negative decimal of at most 10 digits (no sign, no spaces inside).
fn parse_decimal(v: &str) -> Option<usize> {
    if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// True for RFC 3261 `token` characters.
pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// Splits `s` at `sep` where the separator is outside double quotes and angle brackets.
/// Pieces are trimmed; empty pieces are dropped.
fn split_outside(s: &str, sep: u8) -> Vec<&str> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let (mut quoted, mut escaped, mut angle) = (false, false, false);
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if quoted {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                quoted = false;
            }
            continue;
        }
        match b {
            b'"' => quoted = true,
            b'<' => angle = true,
            b'>' => angle = false,
            _ if b == sep && !angle => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// Splits a list header value at top-level commas.
fn split_list(v: &str) -> Vec<&str> {
    split_outside(v, b',')
}

/// Header or URI parameters (`;name=value;flag`), in order. Values are kept as on the wire
/// (quoted strings keep their quotes); names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, Option<String>)>);

impl Params {
    /// Parses `;a=b;c` (the leading `;` is optional). Fails on an empty or non-token name.
    pub fn parse(s: &str) -> Result<Params> {
        let s = s.trim();
        let s = s.strip_prefix(';').unwrap_or(s);
        let mut out = Vec::new();
        if s.trim().is_empty() {
            return Ok(Params(out));
        }
        for piece in split_outside(s, b';') {
            let (name, value) = match piece.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim().to_owned())),
                None => (piece, None),
            };
            if !is_token(name) {
                return Err(Error::InvalidHeader("parameters"));
            }
            out.push((name.to_owned(), value));
        }
        Ok(Params(out))
    }

    /// `Some(Some(v))` for `name=v`, `Some(None)` for a bare flag, `None` when absent.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// The value of `name=value`, if present with a value.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).flatten()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets `name` (replacing an existing one in place).
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_owned);
        match self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_owned(), value)),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_deref()))
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, v) in &self.0 {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}

/// One Via value: `SIP/2.0/UDP host:port;branch=...;rport;received=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token as sent (`UDP`, `TCP`, `TLS`, `WS`, ...), upper-cased.
    pub transport: String,
    /// The sent-by host (an IPv6 reference keeps its brackets).
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    /// A Via for sending: `SIP/2.0/{transport} {host}:{port};branch={branch}`.
    pub fn new(transport: &str, host: &str, port: Option<u16>, branch: &str) -> Via {
        let mut params = Params::default();
        params.set("branch", Some(branch));
        Via {
            transport: transport.to_ascii_uppercase(),
            host: host.to_owned(),
            port,
            params,
        }
    }

    /// Parses one Via value (already split from its list).
    pub fn parse(v: &str) -> Result<Via> {
        let bad = Error::InvalidHeader("Via");
        let (sent, params) = match v.find(';') {
            Some(i) => (&v[..i], &v[i..]),
            None => (v, ""),
        };
        // LWS is allowed around the slashes of sent-protocol: drop it.
        let mut compact = String::with_capacity(sent.len());
        let mut pending_space = false;
        for c in sent.trim().chars() {
            if c.is_whitespace() {
                pending_space = true;
                continue;
            }
            if pending_space && c != '/' && !compact.ends_with('/') {
                compact.push(' ');
            }
            pending_space = false;
            compact.push(c);
        }
        let mut parts = compact.split(' ');
        let (Some(protocol), Some(sent_by), None) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad);
        };
        let mut proto = protocol.split('/');
        let (Some(name), Some(version), Some(transport), None) =
            (proto.next(), proto.next(), proto.next(), proto.next())
        else {
            return Err(bad);
        };
        if !name.eq_ignore_ascii_case("SIP") || version != "2.0" || !is_token(transport) {
            return Err(bad);
        }
        let (host, port) = split_host_port(sent_by).ok_or(bad.clone())?;
        let params = Params::parse(params).map_err(|_| bad)?;
        Ok(Via {
            transport: transport.to_ascii_uppercase(),
            host: host.to_owned(),
            port,
            params,
        })
    }

    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }

    /// `host[:port]`, the sent-by as compared by transaction matching.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }

    /// `Some(None)` for a bare `rport` (a request asking for it), `Some(Some(port))` once filled.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }

    pub fn received(&self) -> Option<&str> {
        self.params.value("received")
    }

    /// Server side of RFC 3581 / RFC 3261 §18.2.1: record the source address of a request.
    pub fn set_received(&mut self, ip: &str, port: u16) {
        self.params.set("received", Some(ip));
        if self.params.contains("rport") {
            self.params.set("rport", Some(&port.to_string()));
        }
    }

    pub fn is_reliable(&self) -> bool {
        !matches!(self.transport.as_str(), "UDP" | "DTLS")
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SIP/2.0/{} {}{}",
            self.transport,
            self.sent_by(),
            self.params
        )
    }
}

/// Splits `host[:port]` with IPv6 references in brackets.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let (host, rest) = if s.starts_with('[') {
        let end = s.find(']')?;
        (&s[..=end], &s[end + 1..])
    } else {
        match s.find(':') {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, ""),
        }
    };
    if host.is_empty() || host == "[]" {
        return None;
    }
    let port = match rest {
        "" => None,
        r => Some(r.strip_prefix(':')?.parse::<u16>().ok()?),
    };
    let valid = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-.[]:_".contains(&b));
    valid.then_some((host, port))
}

const BAD_NAME_ADDR: Error = Error::InvalidHeader("name-addr");

/// `name-addr` / `addr-spec` with header parameters: From, To, Contact, Route, Record-Route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, unquoted.
    pub display: Option<String>,
    /// The URI as text (`sip:alice@example.com;transport=tcp`), or `*` for a wildcard Contact.
    pub uri: String,
    pub params: Params,
}

impl NameAddr {
    pub fn new(uri: impl Into<String>) -> NameAddr {
        NameAddr {
            display: None,
            uri: uri.into(),
            params: Params::default(),
        }
    }

    pub fn parse(v: &str) -> Result<NameAddr> {
        let s = v.trim();
        if s == "*" {
            return Ok(NameAddr::new("*"));
        }
        let (display, rest) = if let Some(quoted) = s.strip_prefix('"') {
            let (text, after) = take_quoted(quoted).ok_or(BAD_NAME_ADDR)?;
            (Some(text), after.trim_start())
        } else if let Some(lt) = s.find('<') {
            let d = s[..lt].trim();
            ((!d.is_empty()).then(|| d.to_owned()), &s[lt..])
        } else {
            (None, s)
        };
        let (uri, params) = if let Some(inner) = rest.strip_prefix('<') {
            let gt = inner.find('>').ok_or(BAD_NAME_ADDR)?;
            (&inner[..gt], &inner[gt + 1..])
        } else if display.is_some() {
            return Err(BAD_NAME_ADDR);
        } else {
            // addr-spec: parameters after the URI belong to the header.
            match rest.find(';') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            }
        };
        let uri = uri.trim();
        if uri.is_empty() || uri.contains(char::is_whitespace) || !uri.contains(':') {
            return Err(BAD_NAME_ADDR);
        }
        let params = params.trim();
        if !params.is_empty() && !params.starts_with(';') {
            return Err(BAD_NAME_ADDR);
        }
        Ok(NameAddr {
            display,
            uri: uri.to_owned(),
            params: Params::parse(params)?,
        })
    }

    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }

    pub fn set_tag(&mut self, tag: &str) {
        self.params.set("tag", Some(tag));
    }
}

/// Reads a quoted string body (after the opening quote); returns the unescaped text and the rest.
fn take_quoted(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?.1),
            '"' => return Some((out, &s[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.uri == "*" {
            return f.write_str("*");
        }
        if let Some(d) = &self.display {
            f.write_str("\"")?;
            for c in d.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\" ")?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// `CSeq: 4711 INVITE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(v: &str) -> Result<CSeq> {
        let bad = Error::InvalidHeader("CSeq");
        let mut parts = v.split_whitespace();
        let (Some(seq), Some(method), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad);
        };
        let seq = parse_decimal(seq)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n < 1 << 31)
            .ok_or(bad.clone())?;
        let method = Method::parse(method).map_err(|_| bad)?;
        Ok(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_names_expand() {
        assert_eq!(HeaderName::new("v").as_str(), "Via");
        assert_eq!(HeaderName::new("I").as_str(), "Call-ID");
        assert_eq!(HeaderName::new("call-id").as_str(), "Call-ID");
        assert_eq!(HeaderName::new("X-Custom").as_str(), "X-Custom");
        assert!(HeaderName::VIA.is("v"));
        assert!(HeaderName::new("x-custom").is("X-CUSTOM"));
    }

    #[test]
    fn via_parses_with_lws_ipv6_and_params() {
        let v = Via::parse(
            "SIP / 2.0 / udp [2001:db8::1]:5070 ;branch=z9hG4bK77;rport;received=1.2.3.4",
        )
        .unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "[2001:db8::1]");
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.branch(), Some("z9hG4bK77"));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.received(), Some("1.2.3.4"));
        assert_eq!(v.sent_by(), "[2001:db8::1]:5070");
        assert!(!v.is_reliable());
    }

    #[test]
    fn via_set_received_fills_rport() {
        let mut v = Via::parse("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa;rport").unwrap();
        v.set_received("192.0.2.9", 40000);
        assert_eq!(v.rport(), Some(Some(40000)));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa;rport=40000;received=192.0.2.9"
        );
    }

    #[test]
    fn via_rejects_garbage() {
        for bad in [
            "",
            "SIP/2.0/UDP",
            "SIP/3.0/UDP host",
            "SIP/2.0/UDP host:99999",
            "SIP/2.0/UDP host:port",
            "HTTP/2.0/UDP host",
            "SIP/2.0/UDP a b",
            "SIP/2.0/UDP host;=x",
        ] {
            assert!(Via::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn name_addr_forms() {
        let a =
            NameAddr::parse("\"Bob \\\"B\\\"\" <sip:bob@b.example;transport=tcp>;tag=9a").unwrap();
        assert_eq!(a.display.as_deref(), Some("Bob \"B\""));
        assert_eq!(a.uri, "sip:bob@b.example;transport=tcp");
        assert_eq!(a.tag(), Some("9a"));
        let b = NameAddr::parse("sip:alice@a.example;tag=1").unwrap();
        assert_eq!(b.uri, "sip:alice@a.example");
        assert_eq!(b.tag(), Some("1"));
        let c = NameAddr::parse("Alice <sip:alice@a.example>").unwrap();
        assert_eq!(c.display.as_deref(), Some("Alice"));
        assert_eq!(c.to_string(), "\"Alice\" <sip:alice@a.example>");
        assert!(NameAddr::parse("<sip:x@y").is_err());
        assert!(NameAddr::parse("\"open <sip:x@y>").is_err());
        assert!(NameAddr::parse("nouri").is_err());
        assert_eq!(NameAddr::parse("*").unwrap().to_string(), "*");
    }

    #[test]
    fn list_split_respects_quotes_and_brackets() {
        let parts = split_list("\"a,b\" <sip:x@y;p=1,2>, <sip:z@w> ,");
        assert_eq!(parts, vec!["\"a,b\" <sip:x@y;p=1,2>", "<sip:z@w>"]);
    }

    #[test]
    fn cseq_parse() {
        assert_eq!(
            CSeq::parse("  314159 INVITE").unwrap(),
            CSeq {
                seq: 314159,
                method: Method::Invite
            }
        );
        assert!(CSeq::parse("x INVITE").is_err());
        assert!(CSeq::parse("2147483648 INVITE").is_err());
        assert!(CSeq::parse("1").is_err());
        assert!(CSeq::parse("1 INV ITE").is_err());
    }

    #[test]
    fn headers_set_replaces_all() {
        let mut h = Headers::new();
        h.push(HeaderName::new("l"), "1");
        h.push(HeaderName::new("X"), "x");
        h.push(HeaderName::CONTENT_LENGTH, "2");
        h.set(HeaderName::CONTENT_LENGTH, "0");
        assert_eq!(h.get_all("Content-Length").collect::<Vec<_>>(), vec!["0"]);
        assert_eq!(h.len(), 2);
    }
}
