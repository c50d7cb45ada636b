//! SIP messages: [`Request`], [`Response`], parsing from wire bytes and serialization.
//!
//! # Why our own parser
//!
//! The issue asked for a maintained crate wrapped behind these types. We looked: `rsip` is
//! unmaintained since 2022 and mishandles compact headers (`v:` for Via) and digest `-sess`;
//! `rsipstack` (0.7.14, maintained) keeps its message types inside the full stack crate, whose
//! dependency tree brings tokio, futures, async-trait, rustls, hickory DNS and websockets by
//! default. That is not lean for a sans-IO core, and there is no standalone maintained message
//! crate. So this is a small RFC 3261 §7 parser of our own: request and status lines, header
//! lines with compact forms (i m e l c f s k t v, plus o r b u x), multi-value list headers,
//! line folding, Content-Length body framing for datagrams and streams. Header values are kept as
//! text and typed on demand (see [`crate::headers`]), so a strange header never fails a message.
//!
//! Malformed input returns an [`Error`]; nothing here panics on input. [`bad_request_response`]
//! builds the 400 for a request that is broken but still answerable.

use std::fmt;

use crate::error::{Error, Result};
use crate::headers::{is_token, HeaderName, Headers};

/// Largest head (start line plus headers) the parser accepts.
pub const MAX_HEAD_LEN: usize = 64 * 1024;
/// Largest body the parser accepts.
pub const MAX_BODY_LEN: usize = 1024 * 1024;

/// A SIP method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Info,
    Update,
    Prack,
    Subscribe,
    Notify,
    Refer,
    Message,
    Publish,
    /// Any other token, kept as sent (methods are case-sensitive).
    Other(String),
}

impl Method {
    pub fn parse(s: &str) -> Result<Method> {
        Ok(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other if is_token(other) => Method::Other(other.to_owned()),
            _ => return Err(Error::InvalidMethod),
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// Request-URI as text.
    pub uri: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code, 100..=699.
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// Either kind of SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

impl Request {
    pub fn new(method: Method, uri: impl Into<String>) -> Request {
        Request {
            method,
            uri: uri.into(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// Checks what every request needs before a transaction or dialog may use it
    /// (RFC 3261 §8.1.1 / §8.2): a top Via with a branch, From, To, Call-ID, a CSeq whose method
    /// matches the request line, and a numeric Max-Forwards when present.
    pub fn validate(&self) -> Result<()> {
        let via = self.headers.top_via()?;
        if via.branch().is_none() {
            return Err(Error::InvalidHeader("Via"));
        }
        self.headers.from()?;
        self.headers.to()?;
        self.headers.call_id()?;
        let cseq = self.headers.cseq()?;
        if cseq.method != self.method {
            return Err(Error::CSeqMethodMismatch);
        }
        self.headers.max_forwards()?;
        Ok(())
    }

    /// Serializes to wire bytes. Content-Length is always written from the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(format!("{} {} SIP/2.0\r\n", self.method, self.uri).as_bytes());
        write_headers_and_body(&mut out, &self.headers, &self.body);
        out
    }
}

impl Response {
    pub fn new(status: u16, reason: impl Into<String>) -> Response {
        Response {
            status,
            reason: reason.into(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// A response to `req` per RFC 3261 §8.2.6.2: Via (all, in order), From, To, Call-ID and
    /// CSeq copied. The caller adds the To tag (see [`Response::set_to_tag`]).
    pub fn from_request(req: &Request, status: u16, reason: impl Into<String>) -> Response {
        let mut resp = Response::new(status, reason);
        copy_dialog_headers(&req.headers, &mut resp.headers);
        resp
    }

    /// Adds `tag` to the To header unless it already carries one.
    pub fn set_to_tag(&mut self, tag: &str) -> Result<()> {
        let mut to = self.headers.to()?;
        if to.tag().is_none() {
            to.set_tag(tag);
            self.headers.set(HeaderName::TO, to.to_string());
        }
        Ok(())
    }

    pub fn is_provisional(&self) -> bool {
        self.status < 200
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Serializes to wire bytes. Content-Length is always written from the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(format!("SIP/2.0 {} {}\r\n", self.status, self.reason).as_bytes());
        write_headers_and_body(&mut out, &self.headers, &self.body);
        out
    }
}

impl Message {
    /// Parses one datagram (UDP). Without Content-Length the body runs to the end of the
    /// datagram; bytes past a Content-Length are discarded (RFC 3261 §18.3).
    pub fn parse(datagram: &[u8]) -> Result<Message> {
        let start = skip_leading_crlf(datagram);
        let input = &datagram[start..];
        if input.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::Empty);
        }
        let Some((head_end, body_start)) = find_head_end(input) else {
            return Err(if input.len() > MAX_HEAD_LEN {
                Error::HeadTooLarge {
                    limit: MAX_HEAD_LEN,
                }
            } else {
                Error::UnterminatedHead
            });
        };
        let (start_line, headers) = parse_head(&input[..head_end])?;
        let rest = &input[body_start..];
        let body = match headers.content_length()? {
            Some(n) if n > MAX_BODY_LEN => {
                return Err(Error::BodyTooLarge {
                    declared: n,
                    limit: MAX_BODY_LEN,
                })
            }
            Some(n) => rest.get(..n).ok_or(Error::TruncatedBody {
                declared: n,
                available: rest.len(),
            })?,
            None => rest,
        };
        Ok(start_line.into_message(headers, body.to_vec()))
    }

    /// Parses one message from the front of a stream buffer (TCP). `Ok(None)` means more bytes
    /// are needed; `Ok(Some((msg, n)))` means `n` bytes were consumed (leading CRLF keep-alives
    /// included). Content-Length is mandatory on streams.
    pub fn parse_stream(buf: &[u8]) -> Result<Option<(Message, usize)>> {
        let start = skip_leading_crlf(buf);
        let input = &buf[start..];
        let Some((head_end, body_start)) = find_head_end(input) else {
            if input.len() > MAX_HEAD_LEN {
                return Err(Error::HeadTooLarge {
                    limit: MAX_HEAD_LEN,
                });
            }
            return Ok(None);
        };
        if head_end > MAX_HEAD_LEN {
            return Err(Error::HeadTooLarge {
                limit: MAX_HEAD_LEN,
            });
        }
        let (start_line, headers) = parse_head(&input[..head_end])?;
        let n = headers
            .content_length()?
            .ok_or(Error::MissingContentLength)?;
        if n > MAX_BODY_LEN {
            return Err(Error::BodyTooLarge {
                declared: n,
                limit: MAX_BODY_LEN,
            });
        }
        let Some(body) = input.get(body_start..body_start + n) else {
            return Ok(None);
        };
        let msg = start_line.into_message(headers, body.to_vec());
        Ok(Some((msg, start + body_start + n)))
    }

    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

impl From<Request> for Message {
    fn from(r: Request) -> Message {
        Message::Request(r)
    }
}

impl From<Response> for Message {
    fn from(r: Response) -> Message {
        Message::Response(r)
    }
}

/// Builds the `400 Bad Request` for input that did not parse or validate but is still
/// answerable: a request line and Via, From, To, Call-ID and CSeq lines are present. Returns
/// `None` for responses, ACKs (never answered) and input too broken to answer; the caller drops
/// and counts those. `to_tag` is added to To unless it already has a tag.
pub fn bad_request_response(input: &[u8], to_tag: &str) -> Option<Response> {
    let input = &input[skip_leading_crlf(input)..];
    let head = match find_head_end(input) {
        Some((end, _)) => &input[..end],
        None => input.get(..MAX_HEAD_LEN).unwrap_or(input),
    };
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?;
    if !is_token(method) || method == "ACK" || method.starts_with("SIP/") {
        return None;
    }
    // Collect header lines leniently (folding honoured, junk lines skipped).
    let mut headers = Headers::new();
    let mut last: Option<(HeaderName, String)> = None;
    for line in lines {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = last.as_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((n, v)) = last.take() {
            headers.push(n, v);
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim_end();
            if is_token(name) {
                last = Some((HeaderName::new(name), value.trim().to_owned()));
            }
        }
    }
    if let Some((n, v)) = last.take() {
        headers.push(n, v);
    }
    for required in ["Via", "From", "To", "Call-ID", "CSeq"] {
        headers.get(required)?;
    }
    let mut resp = Response::new(400, "Bad Request");
    copy_dialog_headers(&headers, &mut resp.headers);
    // A To we cannot parse is echoed as is; a parseable one gets our tag.
    resp.set_to_tag(to_tag).ok();
    Some(resp)
}

fn copy_dialog_headers(from: &Headers, to: &mut Headers) {
    for (name, value) in from.iter() {
        if name.is("Via") {
            to.push(name.clone(), value);
        }
    }
    for wanted in ["From", "To", "Call-ID", "CSeq"] {
        if let Some(v) = from.get(wanted) {
            to.push(HeaderName::new(wanted), v);
        }
    }
}

fn write_headers_and_body(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    for (name, value) in headers.iter() {
        if name.is("Content-Length") {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
}

fn skip_leading_crlf(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count()
}

/// Finds the empty line ending the head: returns (end of head, start of body). Accepts CRLF and,
/// leniently, bare LF line ends.
fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            match buf.get(i + 1) {
                Some(b'\n') => return Some((i + 1, i + 2)),
                Some(b'\r') if buf.get(i + 2) == Some(&b'\n') => return Some((i + 1, i + 3)),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

enum StartLine {
    Request { method: Method, uri: String },
    Response { status: u16, reason: String },
}

impl StartLine {
    fn into_message(self, headers: Headers, body: Vec<u8>) -> Message {
        match self {
            StartLine::Request { method, uri } => Message::Request(Request {
                method,
                uri,
                headers,
                body,
            }),
            StartLine::Response { status, reason } => Message::Response(Response {
                status,
                reason,
                headers,
                body,
            }),
        }
    }
}

fn parse_head(head: &[u8]) -> Result<(StartLine, Headers)> {
    if head.len() > MAX_HEAD_LEN {
        return Err(Error::HeadTooLarge {
            limit: MAX_HEAD_LEN,
        });
    }
    let text = std::str::from_utf8(head).map_err(|_| Error::NonUtf8Head)?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start = parse_start_line(lines.next().ok_or(Error::Empty)?)?;
    let mut headers = Headers::new();
    let mut current: Option<(HeaderName, String)> = None;
    for (index, line) in lines.enumerate() {
        let line_no = index + 2;
        if line.is_empty() {
            continue;
        }
        if line.contains(|c: char| c.is_control() && c != '\t') {
            return Err(Error::InvalidHeaderLine { line: line_no });
        }
        if line.starts_with([' ', '\t']) {
            let (_, value) = current
                .as_mut()
                .ok_or(Error::InvalidHeaderLine { line: line_no })?;
            let more = line.trim();
            if !more.is_empty() {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(more);
            }
            continue;
        }
        if let Some((n, v)) = current.take() {
            headers.push(n, v);
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(Error::InvalidHeaderLine { line: line_no })?;
        let name = name.trim_end_matches([' ', '\t']);
        if !is_token(name) {
            return Err(Error::InvalidHeaderLine { line: line_no });
        }
        current = Some((HeaderName::new(name), value.trim().to_owned()));
    }
    if let Some((n, v)) = current.take() {
        headers.push(n, v);
    }
    Ok((start, headers))
}

fn parse_start_line(line: &str) -> Result<StartLine> {
    if let Some(rest) = line.strip_prefix("SIP/") {
        let (version, rest) = rest.split_once(' ').ok_or(Error::InvalidStartLine)?;
        if version != "2.0" {
            return Err(Error::UnsupportedVersion);
        }
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::InvalidStatusCode);
        }
        let status: u16 = code.parse().map_err(|_| Error::InvalidStatusCode)?;
        if !(100..=699).contains(&status) || reason.contains(|c: char| c.is_control()) {
            return Err(Error::InvalidStatusCode);
        }
        return Ok(StartLine::Response {
            status,
            reason: reason.to_owned(),
        });
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::InvalidStartLine);
    };
    let method = Method::parse(method)?;
    if uri.is_empty() || !uri.contains(':') || uri.contains(|c: char| c.is_control()) {
        return Err(Error::InvalidStartLine);
    }
    if version != "SIP/2.0" {
        return Err(Error::UnsupportedVersion);
    }
    Ok(StartLine::Request {
        method,
        uri: uri.to_owned(),
    })
}

/// Display writes the wire form (lossy for a non-UTF-8 body), for logs and tests.
impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::CSeq;

    const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

    fn request(bytes: &[u8]) -> Request {
        match Message::parse(bytes).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => panic!("expected a request"),
        }
    }

    fn response(bytes: &[u8]) -> Response {
        match Message::parse(bytes).unwrap() {
            Message::Response(r) => r,
            Message::Request(_) => panic!("expected a response"),
        }
    }

    #[test]
    fn parses_rfc_invite() {
        let r = request(INVITE);
        assert_eq!(r.method, Method::Invite);
        assert_eq!(r.uri, "sip:bob@biloxi.example.com");
        assert_eq!(r.body, b"v=0\n");
        let h = &r.headers;
        assert_eq!(h.top_via().unwrap().branch(), Some("z9hG4bK776asdhds"));
        assert_eq!(h.top_via().unwrap().sent_by(), "pc33.atlanta.example.com");
        assert_eq!(h.from().unwrap().tag(), Some("1928301774"));
        assert_eq!(h.to().unwrap().tag(), None);
        assert_eq!(h.to().unwrap().uri, "sip:bob@biloxi.example.com");
        assert_eq!(
            h.call_id().unwrap(),
            "a84b4c76e66710@pc33.atlanta.example.com"
        );
        assert_eq!(
            h.cseq().unwrap(),
            CSeq {
                seq: 314159,
                method: Method::Invite
            }
        );
        assert_eq!(h.max_forwards().unwrap(), Some(70));
        assert_eq!(h.content_length().unwrap(), Some(4));
        assert_eq!(
            h.contact().unwrap()[0].uri,
            "sip:alice@pc33.atlanta.example.com"
        );
        r.validate().unwrap();
    }

    #[test]
    fn round_trips_through_bytes() {
        let r = request(INVITE);
        let again = request(&r.to_bytes());
        assert_eq!(r, again);
        assert_eq!(Message::Request(r.clone()).to_bytes(), r.to_bytes());
    }

    #[test]
    fn compact_forms_folding_and_multiple_via() {
        let wire = b"\r\nBYE sip:bob@10.0.0.2:5060 SIP/2.0\r\n\
v: SIP/2.0/UDP proxy.example;branch=z9hG4bKp1 , SIP/2.0/TCP 10.0.0.1:5070;branch=z9hG4bKa1;received=192.0.2.1\r\n\
V: SIP/2.0/UDP 10.0.0.9\r\n\
\x20  ;branch=z9hG4bKlast\r\n\
f: <sip:alice@a.example>;tag=ff\r\n\
t: sip:bob@b.example;tag=tt\r\n\
i: call-1@a.example\r\n\
CSeq: 2\r\n\
\tBYE\r\n\
m: <sip:alice@10.0.0.1>, \"Al, ice\" <sip:alice@10.0.0.3>\r\n\
k: timer\r\n\
s: hello\r\n\
c: text/plain\r\n\
e: gzip\r\n\
Max-Forwards:69\r\n\
Route: <sip:p1.example;lr>, <sip:p2.example;lr>\r\n\
Record-Route: <sip:rr.example;lr>\r\n\
l: 0\r\n\r\n";
        let r = request(wire);
        let vias = r.headers.via().unwrap();
        assert_eq!(vias.len(), 3);
        assert_eq!(vias[0].branch(), Some("z9hG4bKp1"));
        assert_eq!(vias[1].transport, "TCP");
        assert_eq!(vias[1].sent_by(), "10.0.0.1:5070");
        assert_eq!(vias[1].received(), Some("192.0.2.1"));
        assert_eq!(vias[2].branch(), Some("z9hG4bKlast"));
        assert_eq!(r.headers.cseq().unwrap().method, Method::Bye);
        assert_eq!(r.headers.from().unwrap().tag(), Some("ff"));
        assert_eq!(r.headers.to().unwrap().tag(), Some("tt"));
        assert_eq!(r.headers.call_id().unwrap(), "call-1@a.example");
        let contacts = r.headers.contact().unwrap();
        assert_eq!(contacts.len(), 2);
        assert_eq!(contacts[1].display.as_deref(), Some("Al, ice"));
        assert_eq!(r.headers.get("Supported"), Some("timer"));
        assert_eq!(r.headers.get("Subject"), Some("hello"));
        assert_eq!(r.headers.get("Content-Type"), Some("text/plain"));
        assert_eq!(r.headers.get("Content-Encoding"), Some("gzip"));
        assert_eq!(r.headers.max_forwards().unwrap(), Some(69));
        assert_eq!(r.headers.route().unwrap().len(), 2);
        assert_eq!(r.headers.route().unwrap()[1].uri, "sip:p2.example;lr");
        assert_eq!(
            r.headers.record_route().unwrap()[0].uri,
            "sip:rr.example;lr"
        );
        assert!(r.body.is_empty());
        r.validate().unwrap();
        // Serialized with full names, and parses back to the same values.
        let bytes = r.to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("\r\nVia: SIP/2.0/UDP proxy.example;branch=z9hG4bKp1"));
        assert!(text.contains("\r\nCall-ID: call-1@a.example\r\n"));
        assert_eq!(request(&bytes).headers.via().unwrap(), vias);
    }

    #[test]
    fn parses_response_and_bare_lf() {
        let r = response(
            b"SIP/2.0 180 Ringing\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nTo: <sip:b@h>;tag=2\n\
From: <sip:a@h>;tag=1\nCall-ID: x\nCSeq: 1 INVITE\n\n",
        );
        assert_eq!(r.status, 180);
        assert_eq!(r.reason, "Ringing");
        assert!(r.is_provisional());
        let r = response(b"SIP/2.0 200 \r\nContent-Length: 0\r\n\r\n");
        assert_eq!(r.reason, "");
        assert!(r.is_success());
    }

    #[test]
    fn datagram_body_framing() {
        // No Content-Length: body runs to the end of the datagram.
        let r = request(b"MESSAGE sip:a@b SIP/2.0\r\n\r\nhello");
        assert_eq!(r.body, b"hello");
        // Extra bytes past Content-Length are discarded.
        let r = request(b"MESSAGE sip:a@b SIP/2.0\r\nl: 2\r\n\r\nhello");
        assert_eq!(r.body, b"he");
        assert_eq!(
            Message::parse(b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 9\r\n\r\nhello"),
            Err(Error::TruncatedBody {
                declared: 9,
                available: 5
            })
        );
    }

    #[test]
    fn stream_framing_handles_partial_and_pipelined() {
        let one = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 3\r\n\r\nabc";
        let mut buf = b"\r\n\r\n".to_vec();
        buf.extend_from_slice(one);
        buf.extend_from_slice(one);
        for cut in 0..4 + one.len() {
            assert_eq!(
                Message::parse_stream(&buf[..cut]).unwrap(),
                None,
                "cut {cut}"
            );
        }
        let (msg, used) = Message::parse_stream(&buf).unwrap().unwrap();
        assert_eq!(used, 4 + one.len());
        let Message::Request(req) = msg else {
            panic!("request expected")
        };
        assert_eq!(req.body, b"abc");
        let (_, used2) = Message::parse_stream(&buf[used..]).unwrap().unwrap();
        assert_eq!(used2, one.len());
        assert_eq!(
            Message::parse_stream(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n"),
            Err(Error::MissingContentLength)
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        let cases: &[(&[u8], Error)] = &[
            (b"", Error::Empty),
            (b"\r\n\r\n", Error::Empty),
            (
                b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\n",
                Error::UnterminatedHead,
            ),
            (b"INVITE sip:a@b SIP/1.0\r\n\r\n", Error::UnsupportedVersion),
            (b"INVITE  sip:a@b SIP/2.0\r\n\r\n", Error::InvalidStartLine),
            (b"INVITE sip:a@b\r\n\r\n", Error::InvalidStartLine),
            (b"INV(TE sip:a@b SIP/2.0\r\n\r\n", Error::InvalidMethod),
            (b"SIP/2.0 99 Low\r\n\r\n", Error::InvalidStatusCode),
            (b"SIP/2.0 700 High\r\n\r\n", Error::InvalidStatusCode),
            (b"SIP/2.0 2x0 OK\r\n\r\n", Error::InvalidStatusCode),
            (b"SIP/2.1 200 OK\r\n\r\n", Error::UnsupportedVersion),
            (
                b"OPTIONS sip:a@b SIP/2.0\r\nno colon here\r\n\r\n",
                Error::InvalidHeaderLine { line: 2 },
            ),
            (
                b"OPTIONS sip:a@b SIP/2.0\r\n folded: first\r\n\r\n",
                Error::InvalidHeaderLine { line: 2 },
            ),
            (
                b"OPTIONS sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n",
                Error::InvalidHeaderLine { line: 2 },
            ),
            (
                b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n",
                Error::InvalidContentLength,
            ),
            (
                b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 99999999999999\r\n\r\n",
                Error::InvalidContentLength,
            ),
            (b"OPTIONS sip:\xff SIP/2.0\r\n\r\n", Error::NonUtf8Head),
        ];
        for (input, want) in cases {
            assert_eq!(
                Message::parse(input).as_ref().err(),
                Some(want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn validate_catches_missing_and_mismatched_headers() {
        let ok = request(INVITE);
        let mut r = ok.clone();
        r.headers.remove("Call-ID");
        assert_eq!(r.validate(), Err(Error::MissingHeader("Call-ID")));
        let mut r = ok.clone();
        r.headers.set(HeaderName::CSEQ, "1 BYE");
        assert_eq!(r.validate(), Err(Error::CSeqMethodMismatch));
        let mut r = ok.clone();
        r.headers.set(HeaderName::MAX_FORWARDS, "lots");
        assert_eq!(r.validate(), Err(Error::InvalidHeader("Max-Forwards")));
        let mut r = ok;
        r.headers.set(HeaderName::VIA, "SIP/2.0/UDP host");
        assert_eq!(r.validate(), Err(Error::InvalidHeader("Via")));
    }

    #[test]
    fn builds_400_for_answerable_garbage() {
        let wire = b"INVITE sip:bob@b.example SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\n\
Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKy\r\n\
From: <sip:alice@a.example>;tag=a\r\n\
To: <sip:bob@b.example>\r\n\
Call-ID: c1\r\n\
CSeq: 1 INVITE\r\n\
Content-Length: nonsense\r\n\r\n";
        assert_eq!(Message::parse(wire), Err(Error::InvalidContentLength));
        let resp = bad_request_response(wire, "srv1").unwrap();
        assert_eq!(resp.status, 400);
        assert_eq!(resp.headers.via().unwrap().len(), 2);
        assert_eq!(resp.headers.to().unwrap().tag(), Some("srv1"));
        assert_eq!(resp.headers.call_id().unwrap(), "c1");
        let reparsed = response(&resp.to_bytes());
        assert_eq!(reparsed.status, 400);
        // Nothing to answer: responses, ACKs, missing headers, binary noise.
        assert!(bad_request_response(b"SIP/2.0 200 OK\r\n\r\n", "t").is_none());
        assert!(bad_request_response(&wire.replace_invite_with_ack(), "t").is_none());
        assert!(bad_request_response(b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\n\r\n", "t").is_none());
        assert!(bad_request_response(b"\x00\x01\x02", "t").is_none());
    }

    trait ReplaceInvite {
        fn replace_invite_with_ack(&self) -> Vec<u8>;
    }
    impl ReplaceInvite for [u8] {
        fn replace_invite_with_ack(&self) -> Vec<u8> {
            let mut v = b"ACK".to_vec();
            v.extend_from_slice(&self[6..]);
            v
        }
    }

    #[test]
    fn response_from_request_copies_headers() {
        let req = request(INVITE);
        let mut resp = Response::from_request(&req, 180, "Ringing");
        resp.set_to_tag("b1").unwrap();
        resp.set_to_tag("ignored").unwrap();
        assert_eq!(resp.headers.to().unwrap().tag(), Some("b1"));
        assert_eq!(resp.headers.via().unwrap(), req.headers.via().unwrap());
        assert_eq!(resp.headers.cseq().unwrap(), req.headers.cseq().unwrap());
        assert_eq!(resp.headers.get("Contact"), None);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                let _ = Message::parse(&bytes);
                let _ = Message::parse_stream(&bytes);
                let _ = bad_request_response(&bytes, "t");
            }

            #[test]
            fn mutated_messages_never_panic(
                edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
                cut in any::<usize>(),
            ) {
                let mut bytes = INVITE.to_vec();
                for (at, b) in edits {
                    let i = at % bytes.len();
                    bytes[i] = b;
                }
                bytes.truncate(cut % (bytes.len() + 1));
                if let Ok(msg) = Message::parse(&bytes) {
                    // Whatever parses serializes and parses again.
                    let headers = msg.headers();
                    let _ = headers.via();
                    let _ = headers.from();
                    let _ = headers.to();
                    let _ = headers.cseq();
                    let _ = headers.contact();
                    let _ = headers.route();
                    let _ = headers.www_authenticate();
                    let _ = headers.authorization();
                    if let Message::Request(r) = &msg {
                        let _ = r.validate();
                    }
                    let again = Message::parse(&msg.to_bytes());
                    prop_assert!(again.is_ok());
                }
                let _ = Message::parse_stream(&bytes);
                let _ = bad_request_response(&bytes, "t");
            }

            #[test]
            fn header_text_round_trips(name in "[A-Za-z][A-Za-z0-9-]{0,12}", value in "[ -~]{0,40}") {
                let mut req = Request::new(Method::Options, "sip:a@b");
                req.headers.push(HeaderName::new(&name), value.trim());
                let Message::Request(back) = Message::parse(&req.to_bytes()).unwrap() else {
                    panic!("request expected");
                };
                if !name.eq_ignore_ascii_case("l") && !name.eq_ignore_ascii_case("content-length") {
                    prop_assert_eq!(back.headers.get(&name), Some(value.trim()));
                }
            }
        }
    }
}
