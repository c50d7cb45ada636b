//! SDP (RFC 4566) for audio sessions and the RFC 3264 offer/answer model.
//!
//! [`SessionDescription::parse`] reads the lines a telephony peer sends (`v o s c t m a`, with
//! `rtpmap`, `fmtp`, `ptime`, direction and `rtcp` attributes typed; every other line and
//! attribute kept as text so it round-trips). Malformed input is an [`Error`], never a panic.
//!
//! Offer/answer: [`LocalMedia`] holds our address, port and codec preferences.
//! [`LocalMedia::offer`] builds an offer; [`LocalMedia::answer`] answers a peer's offer by
//! choosing the first codec of the *offerer's* list that we support (plus telephone-event when
//! offered), mirroring the direction and rejecting (port 0) every other stream;
//! [`negotiate_answer`] reads the answer to our own offer. When no codec is common the error is
//! [`Error::NoCommonCodec`] (or [`Error::NoAudioStream`] when no audio stream is offered at all);
//! callers answer both with `488 Not Acceptable Here`.

use std::fmt;

use crate::error::{Error, Result};

/// Media direction attribute (RFC 3264 §5.1), as seen from the side that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn parse(name: &str) -> Option<Direction> {
        Some(match name {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction the other side has: sendonly becomes recvonly and back.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    fn from_flags(sends: bool, receives: bool) -> Direction {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }
}

/// `o=<username> <sess-id> <sess-version> IN <addrtype> <address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    pub session_id: u64,
    pub session_version: u64,
    pub addr_type: String,
    pub address: String,
}

/// `c=IN <addrtype> <address>` (a multicast `/ttl` suffix is kept in `address`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub addr_type: String,
    pub address: String,
}

impl Connection {
    pub fn new(address: &str) -> Connection {
        Connection {
            addr_type: addr_type_of(address).to_owned(),
            address: address.to_owned(),
        }
    }

    /// The RFC 2543 hold form `c=IN IP4 0.0.0.0` (RFC 3264 §8.4).
    pub fn is_null(&self) -> bool {
        matches!(self.address.as_str(), "0.0.0.0" | "::")
    }
}

fn addr_type_of(address: &str) -> &'static str {
    if address.contains(':') {
        "IP6"
    } else {
        "IP4"
    }
}

/// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u8>,
}

/// `a=fmtp:<pt> <params>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    pub payload_type: u8,
    pub params: String,
}

/// `a=rtcp:<port> [IN <addrtype> <address>]` (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtcp {
    pub port: u16,
    pub connection: Option<Connection>,
}

/// Any other attribute: `a=name` or `a=name:value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub value: Option<String>,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, `image`, ...
    pub media: String,
    /// 0 means the stream is rejected or disabled.
    pub port: u16,
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, `udptl`, ...
    pub proto: String,
    /// Formats as sent; for RTP profiles these are payload type numbers.
    pub formats: Vec<String>,
    pub connection: Option<Connection>,
    pub rtpmaps: Vec<RtpMap>,
    pub fmtps: Vec<Fmtp>,
    pub ptime: Option<u32>,
    pub direction: Option<Direction>,
    pub rtcp: Option<Rtcp>,
    pub attributes: Vec<Attribute>,
    /// Other lines (`i`, `b`, `k`) in order.
    pub other: Vec<(char, String)>,
}

impl MediaDescription {
    fn new(media: &str, port: u16, proto: &str) -> MediaDescription {
        MediaDescription {
            media: media.to_owned(),
            port,
            port_count: None,
            proto: proto.to_owned(),
            formats: Vec::new(),
            connection: None,
            rtpmaps: Vec::new(),
            fmtps: Vec::new(),
            ptime: None,
            direction: None,
            rtcp: None,
            attributes: Vec::new(),
            other: Vec::new(),
        }
    }

    /// The formats that are RTP payload type numbers.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse().ok())
    }

    pub fn rtpmap(&self, pt: u8) -> Option<&RtpMap> {
        self.rtpmaps.iter().find(|m| m.payload_type == pt)
    }

    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        self.fmtps
            .iter()
            .find(|f| f.payload_type == pt)
            .map(|f| f.params.as_str())
    }

    fn is_rtp(&self) -> bool {
        self.proto.starts_with("RTP/")
    }

    /// The codec a payload type denotes: its rtpmap, or the RFC 3551 static table.
    pub fn codec(&self, pt: u8) -> Option<Codec> {
        let (name, clock_rate, channels) = match self.rtpmap(pt) {
            Some(m) => (m.encoding.clone(), m.clock_rate, m.channels.unwrap_or(1)),
            None => {
                let (name, rate) = static_payload(pt)?;
                (name.to_owned(), rate, 1)
            }
        };
        Some(Codec {
            payload_type: pt,
            name,
            clock_rate,
            channels,
            fmtp: self.fmtp(pt).map(str::to_owned),
        })
    }
}

/// RFC 3551 static audio payload types we may meet without an rtpmap.
fn static_payload(pt: u8) -> Option<(&'static str, u32)> {
    Some(match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        18 => ("G729", 8000),
        _ => return None,
    })
}

/// A whole session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin: Origin,
    pub session_name: String,
    pub connection: Option<Connection>,
    /// `t=<start> <stop>`; `(0, 0)` for a permanent session (the telephony norm).
    pub timing: (u64, u64),
    /// A session-level direction attribute, the default of every stream.
    pub direction: Option<Direction>,
    pub attributes: Vec<Attribute>,
    /// Other session-level lines (`i u e p b r z k`) in order.
    pub other: Vec<(char, String)>,
    pub media: Vec<MediaDescription>,
}

/// Where a parse failed: `line` is 1-based, `field` names what was wrong.
fn bad(line: usize, field: &'static str) -> Error {
    Error::InvalidSdp { line, field }
}

fn num<T: std::str::FromStr>(s: &str, line: usize, field: &'static str) -> Result<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(line, field));
    }
    s.parse().map_err(|_| bad(line, field))
}

/// The next line, which must be `want=`; `name` reports it missing.
fn next_field<'a>(
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
    want: char,
    name: &'static str,
) -> Result<(usize, &'a str)> {
    let (n, l) = lines.next().ok_or(Error::MissingSdpField(name))?;
    match l.split_once('=') {
        Some((t, v)) if t.len() == 1 && t.starts_with(want) => Ok((n, v)),
        _ => Err(bad(n, "line order")),
    }
}

fn parse_connection(v: &str, line: usize) -> Result<Connection> {
    let mut p = v.split_ascii_whitespace();
    let (Some("IN"), Some(addr_type), Some(address), None) =
        (p.next(), p.next(), p.next(), p.next())
    else {
        return Err(bad(line, "c"));
    };
    if !matches!(addr_type, "IP4" | "IP6") {
        return Err(bad(line, "c"));
    }
    Ok(Connection {
        addr_type: addr_type.to_owned(),
        address: address.to_owned(),
    })
}

fn parse_origin(v: &str, line: usize) -> Result<Origin> {
    let mut p = v.split_ascii_whitespace();
    let (Some(user), Some(id), Some(version), Some("IN"), Some(addr_type), Some(address), None) = (
        p.next(),
        p.next(),
        p.next(),
        p.next(),
        p.next(),
        p.next(),
        p.next(),
    ) else {
        return Err(bad(line, "o"));
    };
    Ok(Origin {
        username: user.to_owned(),
        session_id: num(id, line, "o")?,
        session_version: num(version, line, "o")?,
        addr_type: addr_type.to_owned(),
        address: address.to_owned(),
    })
}

fn parse_media_line(v: &str, line: usize) -> Result<MediaDescription> {
    let mut p = v.split_ascii_whitespace();
    let (Some(media), Some(port), Some(proto)) = (p.next(), p.next(), p.next()) else {
        return Err(bad(line, "m"));
    };
    let (port, count) = match port.split_once('/') {
        Some((port, count)) => (port, Some(num(count, line, "m")?)),
        None => (port, None),
    };
    let mut m = MediaDescription::new(media, num(port, line, "m")?, proto);
    m.port_count = count;
    m.formats = p.map(str::to_owned).collect();
    if m.is_rtp() {
        for f in &m.formats {
            let pt: u8 = num(f, line, "m")?;
            if pt > 127 {
                return Err(bad(line, "m"));
            }
        }
    }
    Ok(m)
}

/// Parses `<pt> rest` of rtpmap and fmtp.
fn split_pt<'a>(v: &'a str, line: usize, field: &'static str) -> Result<(u8, &'a str)> {
    let (pt, rest) = v.split_once(' ').ok_or(bad(line, field))?;
    let pt: u8 = num(pt, line, field)?;
    if pt > 127 {
        return Err(bad(line, field));
    }
    Ok((pt, rest.trim()))
}

fn parse_rtpmap(v: &str, line: usize) -> Result<RtpMap> {
    let (pt, rest) = split_pt(v, line, "rtpmap")?;
    let mut p = rest.split('/');
    let (Some(encoding), Some(rate)) = (p.next(), p.next()) else {
        return Err(bad(line, "rtpmap"));
    };
    let channels = p.next().map(|c| num(c, line, "rtpmap")).transpose()?;
    if encoding.is_empty() || p.next().is_some() {
        return Err(bad(line, "rtpmap"));
    }
    Ok(RtpMap {
        payload_type: pt,
        encoding: encoding.to_owned(),
        clock_rate: num(rate, line, "rtpmap")?,
        channels,
    })
}

fn parse_rtcp(v: &str, line: usize) -> Result<Rtcp> {
    let (port, rest) = match v.split_once(' ') {
        Some((port, rest)) => (port, Some(rest)),
        None => (v, None),
    };
    Ok(Rtcp {
        port: num(port, line, "rtcp")?,
        connection: rest.map(|c| parse_connection(c, line)).transpose()?,
    })
}

impl SessionDescription {
    /// Parses an SDP body. `v=0`, `o=` and `s=` are required; `t=` defaults to `0 0`.
    pub fn parse(body: &[u8]) -> Result<SessionDescription> {
        let text = std::str::from_utf8(body).map_err(|_| bad(0, "utf-8"))?;
        let mut lines = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .enumerate()
            .map(|(i, l)| (i + 1, l))
            .filter(|(_, l)| !l.trim().is_empty());
        let (n, v) = next_field(&mut lines, 'v', "v")?;
        if v.trim() != "0" {
            return Err(bad(n, "v"));
        }
        let (n, o) = next_field(&mut lines, 'o', "o")?;
        let origin = parse_origin(o, n)?;
        let (_, s) = next_field(&mut lines, 's', "s")?;
        let mut sdp = SessionDescription {
            origin,
            session_name: s.to_owned(),
            connection: None,
            timing: (0, 0),
            direction: None,
            attributes: Vec::new(),
            other: Vec::new(),
            media: Vec::new(),
        };
        for (n, l) in lines {
            let Some((t, value)) = l.split_once('=') else {
                return Err(bad(n, "type=value"));
            };
            let mut type_chars = t.chars();
            let kind = match (type_chars.next(), type_chars.next()) {
                (Some(k), None) if k.is_ascii_lowercase() => k,
                _ => return Err(bad(n, "type=value")),
            };
            match (kind, sdp.media.last_mut()) {
                ('m', _) => sdp.media.push(parse_media_line(value, n)?),
                ('c', None) => sdp.connection = Some(parse_connection(value, n)?),
                ('c', Some(m)) => m.connection = Some(parse_connection(value, n)?),
                ('t', None) => {
                    let mut p = value.split_ascii_whitespace();
                    let (Some(a), Some(b), None) = (p.next(), p.next(), p.next()) else {
                        return Err(bad(n, "t"));
                    };
                    sdp.timing = (num(a, n, "t")?, num(b, n, "t")?);
                }
                ('a', None) => {
                    let (name, val) = split_attribute(value);
                    match Direction::parse(name) {
                        Some(d) if val.is_none() => sdp.direction = Some(d),
                        _ => sdp.attributes.push(attribute(name, val)),
                    }
                }
                ('a', Some(m)) => media_attribute(m, value, n)?,
                (_, None) => sdp.other.push((kind, value.to_owned())),
                (_, Some(m)) => m.other.push((kind, value.to_owned())),
            }
        }
        Ok(sdp)
    }

    /// The wire form (CRLF line ends), as bytes for a SIP body.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// The first audio stream.
    pub fn audio(&self) -> Option<&MediaDescription> {
        self.media.iter().find(|m| m.media == "audio")
    }

    /// The connection address of `m`: its own `c=` or the session's.
    pub fn connection_for<'a>(&'a self, m: &'a MediaDescription) -> Option<&'a Connection> {
        m.connection.as_ref().or(self.connection.as_ref())
    }

    /// The direction of `m` as its writer states it (media, else session, else sendrecv).
    pub fn direction_of(&self, m: &MediaDescription) -> Direction {
        m.direction
            .or(self.direction)
            .unwrap_or(Direction::SendRecv)
    }

    /// True when this description puts the first audio stream on hold: `sendonly` or
    /// `inactive`, or the legacy `c=0.0.0.0` form.
    pub fn is_hold(&self) -> bool {
        self.audio().is_some_and(|m| {
            let d = self.effective_direction(m);
            !d.receives()
        })
    }

    /// The direction of `m`, where a null connection address means the writer receives nothing.
    fn effective_direction(&self, m: &MediaDescription) -> Direction {
        let d = self.direction_of(m);
        if self.connection_for(m).is_some_and(Connection::is_null) {
            Direction::from_flags(d.sends(), false)
        } else {
            d
        }
    }
}

fn split_attribute(v: &str) -> (&str, Option<&str>) {
    match v.split_once(':') {
        Some((n, v)) => (n, Some(v)),
        None => (v, None),
    }
}

fn attribute(name: &str, value: Option<&str>) -> Attribute {
    Attribute {
        name: name.to_owned(),
        value: value.map(str::to_owned),
    }
}

fn media_attribute(m: &mut MediaDescription, value: &str, n: usize) -> Result<()> {
    let (name, val) = split_attribute(value);
    match (name, val) {
        ("rtpmap", Some(v)) => m.rtpmaps.push(parse_rtpmap(v, n)?),
        ("fmtp", Some(v)) => {
            let (pt, params) = split_pt(v, n, "fmtp")?;
            m.fmtps.push(Fmtp {
                payload_type: pt,
                params: params.to_owned(),
            });
        }
        ("ptime", Some(v)) => m.ptime = Some(num(v.trim(), n, "ptime")?),
        ("rtcp", Some(v)) => m.rtcp = Some(parse_rtcp(v.trim(), n)?),
        (name, None) if Direction::parse(name).is_some() => m.direction = Direction::parse(name),
        (name, val) => m.attributes.push(attribute(name, val)),
    }
    Ok(())
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IN {} {}", self.addr_type, self.address)
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "a={}:{v}\r\n", self.name),
            None => write!(f, "a={}\r\n", self.name),
        }
    }
}

fn write_other(f: &mut fmt::Formatter<'_>, other: &[(char, String)], kinds: &str) -> fmt::Result {
    for (k, v) in other.iter().filter(|(k, _)| kinds.contains(*k)) {
        write!(f, "{k}={v}\r\n")?;
    }
    Ok(())
}

impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.media, self.port)?;
        if let Some(c) = self.port_count {
            write!(f, "/{c}")?;
        }
        write!(f, " {}", self.proto)?;
        for fmt_ in &self.formats {
            write!(f, " {fmt_}")?;
        }
        f.write_str("\r\n")?;
        write_other(f, &self.other, "i")?;
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        write_other(f, &self.other, "bk")?;
        for m in &self.rtpmaps {
            write!(
                f,
                "a=rtpmap:{} {}/{}",
                m.payload_type, m.encoding, m.clock_rate
            )?;
            if let Some(ch) = m.channels {
                write!(f, "/{ch}")?;
            }
            f.write_str("\r\n")?;
        }
        for p in &self.fmtps {
            write!(f, "a=fmtp:{} {}\r\n", p.payload_type, p.params)?;
        }
        if let Some(p) = self.ptime {
            write!(f, "a=ptime:{p}\r\n")?;
        }
        if let Some(r) = &self.rtcp {
            write!(f, "a=rtcp:{}", r.port)?;
            if let Some(c) = &r.connection {
                write!(f, " {c}")?;
            }
            f.write_str("\r\n")?;
        }
        for a in &self.attributes {
            write!(f, "{a}")?;
        }
        if let Some(d) = self.direction {
            write!(f, "a={}\r\n", d.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        write!(
            f,
            "v=0\r\no={} {} {} IN {} {}\r\ns={}\r\n",
            o.username, o.session_id, o.session_version, o.addr_type, o.address, self.session_name
        )?;
        write_other(f, &self.other, "iuep")?;
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        write_other(f, &self.other, "b")?;
        write!(f, "t={} {}\r\n", self.timing.0, self.timing.1)?;
        write_other(f, &self.other, "rzk")?;
        for a in &self.attributes {
            write!(f, "{a}")?;
        }
        if let Some(d) = self.direction {
            write!(f, "a={}\r\n", d.as_str())?;
        }
        for m in &self.media {
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

/// A codec as negotiated or preferred: RTP payload type, encoding name, clock rate, channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    pub payload_type: u8,
    pub name: String,
    pub clock_rate: u32,
    pub channels: u8,
    pub fmtp: Option<String>,
}

impl Codec {
    pub fn pcmu() -> Codec {
        Codec::new(0, "PCMU", 8000, 1, None)
    }

    pub fn pcma() -> Codec {
        Codec::new(8, "PCMA", 8000, 1, None)
    }

    /// Opus (RFC 7587: always `opus/48000/2` in SDP) on a dynamic payload type.
    pub fn opus(pt: u8) -> Codec {
        Codec::new(pt, "opus", 48000, 2, Some("useinbandfec=1"))
    }

    /// DTMF events (RFC 4733) at 8 kHz on a dynamic payload type.
    pub fn telephone_event(pt: u8) -> Codec {
        Codec::new(pt, "telephone-event", 8000, 1, Some("0-16"))
    }

    fn new(pt: u8, name: &str, clock_rate: u32, channels: u8, fmtp: Option<&str>) -> Codec {
        Codec {
            payload_type: pt,
            name: name.to_owned(),
            clock_rate,
            channels,
            fmtp: fmtp.map(str::to_owned),
        }
    }

    pub fn is_telephone_event(&self) -> bool {
        self.name.eq_ignore_ascii_case("telephone-event")
    }

    /// Same encoding: name (case-insensitive), clock rate and channels; payload types may differ.
    pub fn same_format(&self, other: &Codec) -> bool {
        self.name.eq_ignore_ascii_case(&other.name)
            && self.clock_rate == other.clock_rate
            && self.channels == other.channels
    }

    fn rtpmap(&self) -> RtpMap {
        RtpMap {
            payload_type: self.payload_type,
            encoding: self.name.clone(),
            clock_rate: self.clock_rate,
            channels: (self.channels != 1).then_some(self.channels),
        }
    }

    fn add_to(&self, m: &mut MediaDescription) {
        m.formats.push(self.payload_type.to_string());
        m.rtpmaps.push(self.rtpmap());
        if let Some(p) = &self.fmtp {
            m.fmtps.push(Fmtp {
                payload_type: self.payload_type,
                params: p.clone(),
            });
        }
    }
}

/// What one side of a session agreed on for the audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The voice codec, with the payload type to send and expect.
    pub codec: Codec,
    /// telephone-event, when both sides have it.
    pub telephone_event: Option<Codec>,
    /// Where to send RTP (may be `0.0.0.0` in a legacy hold).
    pub remote_address: String,
    pub remote_port: u16,
    /// The peer's RTCP port when it announced one (RFC 3605), else RTP port + 1 applies.
    pub remote_rtcp_port: Option<u16>,
    /// What we do: `SendRecv`, or less when the peer holds or we are held.
    pub direction: Direction,
    /// The peer has put the call on hold (it does not want to receive our media).
    pub remote_hold: bool,
    pub ptime: Option<u32>,
}

/// An answer to a remote offer, and what it agrees on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub sdp: SessionDescription,
    pub media: Negotiated,
}

/// Our side of the audio session: address, port, codec preferences, and the `o=` identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// The RTP address put in `c=` and `o=`.
    pub address: String,
    pub port: u16,
    /// Preference order; telephone-event, when present, is offered after the voice codecs.
    pub codecs: Vec<Codec>,
    pub ptime: Option<u32>,
    pub username: String,
    /// `o=` session id; pick it once per session (any number, e.g. from the id source).
    pub session_id: u64,
}

impl LocalMedia {
    /// Our defaults: PCMU 0, PCMA 8, opus 111, telephone-event 101, ptime 20.
    pub fn new(address: &str, port: u16, session_id: u64) -> LocalMedia {
        LocalMedia {
            address: address.to_owned(),
            port,
            codecs: vec![
                Codec::pcmu(),
                Codec::pcma(),
                Codec::opus(111),
                Codec::telephone_event(101),
            ],
            ptime: Some(20),
            username: "switchboard".to_owned(),
            session_id,
        }
    }

    fn skeleton(&self, version: u64) -> SessionDescription {
        SessionDescription {
            origin: Origin {
                username: self.username.clone(),
                session_id: self.session_id,
                session_version: version,
                addr_type: addr_type_of(&self.address).to_owned(),
                address: self.address.clone(),
            },
            session_name: "-".to_owned(),
            connection: Some(Connection::new(&self.address)),
            timing: (0, 0),
            direction: None,
            attributes: Vec::new(),
            other: Vec::new(),
            media: Vec::new(),
        }
    }

    /// An offer with every codec in preference order; `version` is the `o=` session version
    /// (increment it for each changed offer in a dialog).
    pub fn offer(&self, version: u64, direction: Direction) -> SessionDescription {
        let mut sdp = self.skeleton(version);
        let mut m = MediaDescription::new("audio", self.port, "RTP/AVP");
        let (events, voice): (Vec<&Codec>, Vec<&Codec>) =
            self.codecs.iter().partition(|c| c.is_telephone_event());
        for c in voice.into_iter().chain(events) {
            c.add_to(&mut m);
        }
        m.ptime = self.ptime;
        m.direction = Some(direction);
        sdp.media.push(m);
        sdp
    }

    /// Answers `offer` (RFC 3264 §6): the first audio stream with a codec we support is
    /// accepted with the offerer's first such codec and payload type (plus telephone-event when
    /// both have it); every other stream is rejected with port 0. Our direction mirrors the
    /// offer's (sendonly → recvonly, inactive → inactive, `c=0.0.0.0` means the offerer
    /// receives nothing).
    pub fn answer(&self, offer: &SessionDescription, version: u64) -> Result<Answer> {
        let mut sdp = self.skeleton(version);
        let mut chosen: Option<Negotiated> = None;
        let mut saw_audio = false;
        for m in &offer.media {
            let usable = m.media == "audio" && m.port != 0 && m.is_rtp();
            saw_audio |= usable;
            let accepted = match (&chosen, usable) {
                (None, true) => self.accept_stream(offer, m)?,
                _ => None,
            };
            match accepted {
                Some((line, negotiated)) => {
                    sdp.media.push(line);
                    chosen = Some(negotiated);
                }
                None => {
                    let mut rejected = MediaDescription::new(&m.media, 0, &m.proto);
                    rejected.formats = m.formats.clone();
                    sdp.media.push(rejected);
                }
            }
        }
        match chosen {
            Some(media) => Ok(Answer { sdp, media }),
            None if saw_audio => Err(Error::NoCommonCodec),
            None => Err(Error::NoAudioStream),
        }
    }

    /// Accepts one offered audio stream, or `None` when no codec is common.
    fn accept_stream(
        &self,
        offer: &SessionDescription,
        m: &MediaDescription,
    ) -> Result<Option<(MediaDescription, Negotiated)>> {
        let offered: Vec<Codec> = m.payload_types().filter_map(|pt| m.codec(pt)).collect();
        let ours = |c: &Codec| self.codecs.iter().find(|l| l.same_format(c)).cloned();
        let Some(codec) = offered
            .iter()
            .filter(|c| !c.is_telephone_event())
            .find_map(|c| ours(c).map(|l| with_pt(l, c.payload_type)))
        else {
            return Ok(None);
        };
        let telephone_event = offered
            .iter()
            .filter(|c| c.is_telephone_event() && c.clock_rate == 8000)
            .find_map(|c| ours(c).map(|l| with_pt(l, c.payload_type)));
        let conn = offer.connection_for(m).ok_or(Error::MissingSdpField("c"))?;
        let remote = offer.effective_direction(m);
        let direction = Direction::from_flags(remote.receives(), remote.sends());
        let mut line = MediaDescription::new("audio", self.port, &m.proto);
        codec.add_to(&mut line);
        if let Some(te) = &telephone_event {
            te.add_to(&mut line);
        }
        line.ptime = self.ptime;
        line.direction = Some(direction);
        let negotiated = Negotiated {
            codec,
            telephone_event,
            remote_address: conn.address.clone(),
            remote_port: m.port,
            remote_rtcp_port: m.rtcp.as_ref().map(|r| r.port),
            direction,
            remote_hold: !remote.receives(),
            ptime: m.ptime,
        };
        Ok(Some((line, negotiated)))
    }
}

fn with_pt(mut c: Codec, pt: u8) -> Codec {
    c.payload_type = pt;
    c
}

/// Reads the answer to our `offer` (RFC 3264 §7): the first audio stream the answerer kept
/// (port ≠ 0), its first voice codec that we offered, and our resulting direction.
pub fn negotiate_answer(
    offer: &SessionDescription,
    answer: &SessionDescription,
) -> Result<Negotiated> {
    let ours = offer.audio().ok_or(Error::NoAudioStream)?;
    let m = answer
        .media
        .iter()
        .find(|m| m.media == "audio" && m.port != 0 && m.is_rtp())
        .ok_or(Error::NoCommonCodec)?;
    let codecs: Vec<Codec> = m.payload_types().filter_map(|pt| m.codec(pt)).collect();
    let offered = |c: &Codec| {
        ours.payload_types().any(|pt| pt == c.payload_type)
            && ours
                .codec(c.payload_type)
                .filter(|o| o.same_format(c))
                .is_some()
    };
    let codec = codecs
        .iter()
        .find(|c| !c.is_telephone_event() && offered(c))
        .cloned()
        .ok_or(Error::NoCommonCodec)?;
    let telephone_event = codecs
        .iter()
        .find(|c| c.is_telephone_event() && offered(c))
        .cloned();
    let conn = answer
        .connection_for(m)
        .ok_or(Error::MissingSdpField("c"))?;
    let remote = answer.effective_direction(m);
    let mine = offer.direction_of(ours);
    let direction = Direction::from_flags(
        mine.sends() && remote.receives(),
        mine.receives() && remote.sends(),
    );
    Ok(Negotiated {
        codec,
        telephone_event,
        remote_address: conn.address.clone(),
        remote_port: m.port,
        remote_rtcp_port: m.rtcp.as_ref().map(|r| r.port),
        direction,
        remote_hold: !remote.receives(),
        ptime: m.ptime,
    })
}

#[cfg(test)]
mod tests;
