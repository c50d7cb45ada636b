//! HTTP Digest authentication for SIP (RFC 7616, RFC 2617, RFC 3261 §22.4), both sides.
//!
//! Client: parse a [`Challenge`] from `WWW-Authenticate` / `Proxy-Authenticate`, then
//! [`Challenge::respond`] builds the [`Credentials`] for `Authorization` /
//! `Proxy-Authorization`. Server: issue a [`Challenge`] and check received credentials with
//! [`Credentials::verify`]. Nonces and cnonces come from the caller (this crate has no RNG).
//!
//! Supported: MD5, MD5-sess, SHA-256, SHA-256-sess; qop `auth` and `auth-int`, and the RFC 2069
//! form without qop. For the `-sess` variants HA1 = H(H(user:realm:password):nonce:cnonce).

use std::fmt::{self, Write as _};

use md5::Md5;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// Digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Algorithm {
    pub fn parse(s: &str) -> Result<Algorithm> {
        let s = s.trim_matches('"');
        [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
        ]
        .into_iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(s))
        .ok_or(Error::UnsupportedAlgorithm)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    pub fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// Lower-case hex of the hash of `data`.
    fn hash(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex(&Md5::digest(data)),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex(&Sha256::digest(data)),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing into a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Quality of protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qop {
    Auth,
    AuthInt,
}

impl Qop {
    pub fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }

    fn parse(s: &str) -> Option<Qop> {
        match s.trim() {
            q if q.eq_ignore_ascii_case("auth") => Some(Qop::Auth),
            q if q.eq_ignore_ascii_case("auth-int") => Some(Qop::AuthInt),
            _ => None,
        }
    }
}

/// A `Digest` challenge (`WWW-Authenticate` / `Proxy-Authenticate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// The qop values offered; empty for an RFC 2069 challenge. Unknown values are dropped.
    pub qop: Vec<Qop>,
    pub stale: bool,
    pub domain: Option<String>,
}

impl Challenge {
    /// A server challenge with qop=auth.
    pub fn new(realm: &str, nonce: &str, algorithm: Algorithm) -> Challenge {
        Challenge {
            realm: realm.to_owned(),
            nonce: nonce.to_owned(),
            opaque: None,
            algorithm,
            qop: vec![Qop::Auth],
            stale: false,
            domain: None,
        }
    }

    /// Parses a header value such as `Digest realm="x", nonce="y", qop="auth,auth-int"`.
    /// A missing algorithm means MD5; an unknown one is an error.
    pub fn parse(value: &str) -> Result<Challenge> {
        let params = parse_digest_params(value)?;
        let get = |name: &str| find(&params, name);
        let algorithm = match get("algorithm") {
            Some(a) => Algorithm::parse(a)?,
            None => Algorithm::Md5,
        };
        let qop = match get("qop") {
            Some(q) => {
                let offered: Vec<Qop> = q.split(',').filter_map(Qop::parse).collect();
                if offered.is_empty() {
                    return Err(Error::UnsupportedQop);
                }
                offered
            }
            None => Vec::new(),
        };
        Ok(Challenge {
            realm: get("realm").ok_or(Error::DigestParam("realm"))?.to_owned(),
            nonce: get("nonce").ok_or(Error::DigestParam("nonce"))?.to_owned(),
            opaque: get("opaque").map(str::to_owned),
            algorithm,
            qop,
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
            domain: get("domain").map(str::to_owned),
        })
    }

    /// Answers the challenge for a request `method uri` with `body` (used by auth-int).
    /// Prefers qop=auth when offered; `cnonce` and `nc` (nonce count, from 1) are the caller's.
    #[allow(clippy::too_many_arguments)] // each is one field of the RFC 7616 computation
    pub fn respond(
        &self,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
        body: &[u8],
        cnonce: &str,
        nc: u32,
    ) -> Credentials {
        let qop = if self.qop.contains(&Qop::Auth) {
            Some(Qop::Auth)
        } else {
            self.qop.first().copied()
        };
        let sends_cnonce = qop.is_some() || self.algorithm.is_sess();
        let mut creds = Credentials {
            username: username.to_owned(),
            realm: self.realm.clone(),
            nonce: self.nonce.clone(),
            uri: uri.to_owned(),
            response: String::new(),
            algorithm: self.algorithm,
            algorithm_sent: true,
            cnonce: sends_cnonce.then(|| cnonce.to_owned()),
            opaque: self.opaque.clone(),
            qop,
            nc: qop.map(|_| nc),
        };
        creds.response = creds.expected_response(password, method, body);
        creds
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest realm={}", quote(&self.realm))?;
        if let Some(d) = &self.domain {
            write!(f, ", domain={}", quote(d))?;
        }
        write!(f, ", nonce={}", quote(&self.nonce))?;
        if let Some(o) = &self.opaque {
            write!(f, ", opaque={}", quote(o))?;
        }
        if self.stale {
            f.write_str(", stale=TRUE")?;
        }
        write!(f, ", algorithm={}", self.algorithm.as_str())?;
        if !self.qop.is_empty() {
            let list: Vec<&str> = self.qop.iter().map(|q| q.as_str()).collect();
            write!(f, ", qop=\"{}\"", list.join(","))?;
        }
        Ok(())
    }
}

/// `Digest` credentials (`Authorization` / `Proxy-Authorization`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    /// The hex response digest.
    pub response: String,
    pub algorithm: Algorithm,
    /// Whether `algorithm=` is written (RFC 2617 clients may omit it for MD5).
    pub algorithm_sent: bool,
    pub cnonce: Option<String>,
    pub opaque: Option<String>,
    pub qop: Option<Qop>,
    pub nc: Option<u32>,
}

impl Credentials {
    /// Parses a header value such as `Digest username="u", realm="r", ..., nc=00000001`.
    pub fn parse(value: &str) -> Result<Credentials> {
        let params = parse_digest_params(value)?;
        let get = |name: &str| find(&params, name);
        let required = |name: &'static str| get(name).ok_or(Error::DigestParam(name));
        let algorithm = match get("algorithm") {
            Some(a) => Algorithm::parse(a)?,
            None => Algorithm::Md5,
        };
        let qop = match get("qop") {
            Some(q) => Some(Qop::parse(q).ok_or(Error::UnsupportedQop)?),
            None => None,
        };
        let nc = match get("nc") {
            Some(n) if n.len() == 8 => {
                Some(u32::from_str_radix(n, 16).map_err(|_| Error::DigestParam("nc"))?)
            }
            Some(_) => return Err(Error::DigestParam("nc")),
            None => None,
        };
        let cnonce = get("cnonce").map(str::to_owned);
        if qop.is_some() && (nc.is_none() || cnonce.is_none()) {
            return Err(Error::DigestParam("cnonce"));
        }
        Ok(Credentials {
            username: required("username")?.to_owned(),
            realm: required("realm")?.to_owned(),
            nonce: required("nonce")?.to_owned(),
            uri: required("uri")?.to_owned(),
            response: required("response")?.to_owned(),
            algorithm,
            algorithm_sent: get("algorithm").is_some(),
            cnonce,
            opaque: get("opaque").map(str::to_owned),
            qop,
            nc,
        })
    }

    /// The response these credentials should carry for `password`.
    pub fn expected_response(&self, password: &str, method: &str, body: &[u8]) -> String {
        let alg = self.algorithm;
        let ha1 = alg.hash(format!("{}:{}:{}", self.username, self.realm, password).as_bytes());
        self.expected_response_from_ha1(&ha1, method, body)
    }

    /// As [`Credentials::expected_response`], from a stored H(user:realm:password).
    pub fn expected_response_from_ha1(&self, ha1: &str, method: &str, body: &[u8]) -> String {
        let alg = self.algorithm;
        let cnonce = self.cnonce.as_deref().unwrap_or("");
        let ha1 = if alg.is_sess() {
            alg.hash(format!("{ha1}:{}:{cnonce}", self.nonce).as_bytes())
        } else {
            ha1.to_owned()
        };
        let ha2 = match self.qop {
            Some(Qop::AuthInt) => {
                alg.hash(format!("{method}:{}:{}", self.uri, alg.hash(body)).as_bytes())
            }
            _ => alg.hash(format!("{method}:{}", self.uri).as_bytes()),
        };
        match self.qop {
            Some(qop) => alg.hash(
                format!(
                    "{ha1}:{}:{:08x}:{cnonce}:{}:{ha2}",
                    self.nonce,
                    self.nc.unwrap_or(1),
                    qop.as_str()
                )
                .as_bytes(),
            ),
            None => alg.hash(format!("{ha1}:{}:{ha2}", self.nonce).as_bytes()),
        }
    }

    /// Server side: true when the response matches `password` for `method` and `body`.
    /// The caller also checks that realm and nonce are ones it issued and the nc is fresh.
    pub fn verify(&self, password: &str, method: &str, body: &[u8]) -> bool {
        let expected = self.expected_response(password, method, body);
        constant_time_eq(
            expected.as_bytes(),
            self.response.to_ascii_lowercase().as_bytes(),
        )
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest username={}, realm={}, nonce={}, uri={}, response={}",
            quote(&self.username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(&self.uri),
            quote(&self.response)
        )?;
        if self.algorithm_sent {
            write!(f, ", algorithm={}", self.algorithm.as_str())?;
        }
        if let Some(c) = &self.cnonce {
            write!(f, ", cnonce={}", quote(c))?;
        }
        if let Some(o) = &self.opaque {
            write!(f, ", opaque={}", quote(o))?;
        }
        if let Some(q) = self.qop {
            write!(f, ", qop={}, nc={:08x}", q.as_str(), self.nc.unwrap_or(1))?;
        }
        Ok(())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn find<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Parses `Digest a=b, c="d, e"` into unquoted name/value pairs.
fn parse_digest_params(value: &str) -> Result<Vec<(String, String)>> {
    let value = value.trim();
    let (scheme, rest) = value
        .split_once(|c: char| c.is_whitespace())
        .unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(Error::NotDigest);
    }
    let bytes = rest.as_bytes();
    let mut params = Vec::new();
    let mut i = 0;
    let skip = |i: &mut usize, pred: &dyn Fn(u8) -> bool| {
        while *i < bytes.len() && pred(bytes[*i]) {
            *i += 1;
        }
    };
    loop {
        skip(&mut i, &|b| b == b',' || b.is_ascii_whitespace());
        if i >= bytes.len() {
            break;
        }
        let start = i;
        skip(&mut i, &|b| {
            b != b'=' && b != b',' && !b.is_ascii_whitespace()
        });
        let name = &rest[start..i];
        skip(&mut i, &|b| b.is_ascii_whitespace());
        if name.is_empty() || bytes.get(i) != Some(&b'=') {
            return Err(Error::DigestParam("syntax"));
        }
        i += 1;
        skip(&mut i, &|b| b.is_ascii_whitespace());
        let mut val = String::new();
        if bytes.get(i) == Some(&b'"') {
            i += 1;
            let mut closed = false;
            while let Some(&b) = bytes.get(i) {
                i += 1;
                match b {
                    b'\\' => {
                        let Some(&next) = bytes.get(i) else { break };
                        // Escapes only ever precede ASCII here; multi-byte text copies below.
                        val.push(char::from(next));
                        i += 1;
                    }
                    b'"' => {
                        closed = true;
                        break;
                    }
                    _ => {
                        let ch_start = i - 1;
                        let ch_len = utf8_len(b);
                        let end = (ch_start + ch_len).min(bytes.len());
                        val.push_str(rest.get(ch_start..end).unwrap_or(""));
                        i = end;
                    }
                }
            }
            if !closed {
                return Err(Error::DigestParam("syntax"));
            }
        } else {
            let start = i;
            skip(&mut i, &|b| b != b',' && !b.is_ascii_whitespace());
            val.push_str(&rest[start..i]);
        }
        params.push((name.to_owned(), val));
    }
    Ok(params)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5.
    #[test]
    fn rfc2617_md5_example() {
        let challenge = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert_eq!(challenge.algorithm, Algorithm::Md5);
        assert_eq!(challenge.qop, vec![Qop::Auth, Qop::AuthInt]);
        let creds = challenge.respond(
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            b"",
            "0a4f113b",
            1,
        );
        assert_eq!(creds.response, "6629fae49393a05397450978507c4ef1");
        assert_eq!(
            creds.opaque.as_deref(),
            Some("5ccc069c403ebaf9f0171e9517f40e41")
        );
        let header = creds.to_string();
        assert!(header.contains("qop=auth, nc=00000001"), "{header}");
        assert!(header.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
        // The server side parses and verifies the same header.
        let parsed = Credentials::parse(&header).unwrap();
        assert_eq!(parsed, creds);
        assert!(parsed.verify("Circle Of Life", "GET", b""));
        assert!(!parsed.verify("circle of life", "GET", b""));
        assert!(!parsed.verify("Circle Of Life", "POST", b""));
    }

    /// RFC 2617 §3.5 as sent by the client, parsed as a server would.
    #[test]
    fn rfc2617_authorization_header_verifies() {
        let creds = Credentials::parse(
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             qop=auth, nc=00000001, cnonce=\"0a4f113b\", \
             response=\"6629fae49393a05397450978507c4ef1\", \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert!(creds.verify("Circle Of Life", "GET", b""));
    }

    /// RFC 7616 §3.9.1, both the SHA-256 and the MD5 response.
    #[test]
    fn rfc7616_examples() {
        for (alg, want) in [
            (
                "SHA-256",
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ] {
            let challenge = Challenge::parse(&format!(
                "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
                 algorithm={alg}, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
                 opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
            ))
            .unwrap();
            let creds = challenge.respond(
                "Mufasa",
                "Circle of Life",
                "GET",
                "/dir/index.html",
                b"",
                "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
                1,
            );
            assert_eq!(creds.response, want, "{alg}");
            assert!(creds.verify("Circle of Life", "GET", b""));
        }
    }

    #[test]
    fn sess_variants_hash_ha1_with_nonce_and_cnonce() {
        for alg in [Algorithm::Md5Sess, Algorithm::Sha256Sess] {
            let challenge = Challenge::new("sip.example", "n0nce", alg);
            let creds =
                challenge.respond("alice", "pw", "REGISTER", "sip:sip.example", b"", "c1", 3);
            // Computed by hand from the definitions.
            let inner = alg.hash(b"alice:sip.example:pw");
            let ha1 = alg.hash(format!("{inner}:n0nce:c1").as_bytes());
            let ha2 = alg.hash(b"REGISTER:sip:sip.example");
            let want = alg.hash(format!("{ha1}:n0nce:00000003:c1:auth:{ha2}").as_bytes());
            assert_eq!(creds.response, want);
            // Differs from the non-sess result.
            let plain = Credentials {
                algorithm: if alg == Algorithm::Md5Sess {
                    Algorithm::Md5
                } else {
                    Algorithm::Sha256
                },
                ..creds.clone()
            };
            assert_ne!(
                plain.expected_response("pw", "REGISTER", b""),
                creds.response
            );
            let parsed = Credentials::parse(&creds.to_string()).unwrap();
            assert_eq!(parsed.algorithm, alg);
            assert!(parsed.verify("pw", "REGISTER", b""));
            assert_eq!(
                parsed.expected_response_from_ha1(&inner, "REGISTER", b""),
                creds.response
            );
        }
    }

    #[test]
    fn auth_int_and_rfc2069() {
        let mut challenge = Challenge::new("r", "n", Algorithm::Md5);
        challenge.qop = vec![Qop::AuthInt];
        let creds = challenge.respond("u", "p", "INVITE", "sip:x@y", b"v=0\r\n", "c", 1);
        assert_eq!(creds.qop, Some(Qop::AuthInt));
        assert!(creds.verify("p", "INVITE", b"v=0\r\n"));
        assert!(!creds.verify("p", "INVITE", b"v=1\r\n"));

        let legacy = Challenge::parse("Digest realm=\"r\", nonce=\"n\"").unwrap();
        let creds = legacy.respond("u", "p", "REGISTER", "sip:r", b"", "ignored", 1);
        assert_eq!(creds.qop, None);
        assert_eq!(creds.cnonce, None);
        let ha1 = Algorithm::Md5.hash(b"u:r:p");
        let ha2 = Algorithm::Md5.hash(b"REGISTER:sip:r");
        assert_eq!(
            creds.response,
            Algorithm::Md5.hash(format!("{ha1}:n:{ha2}").as_bytes())
        );
        assert!(!creds.to_string().contains("nc="));
    }

    #[test]
    fn challenge_round_trips_and_rejects_bad_input() {
        let mut c = Challenge::new("sip.example", "abc\"q", Algorithm::Sha256);
        c.opaque = Some("op".into());
        c.stale = true;
        assert_eq!(Challenge::parse(&c.to_string()).unwrap(), c);
        assert_eq!(Challenge::parse("Basic realm=\"x\""), Err(Error::NotDigest));
        assert_eq!(
            Challenge::parse("Digest nonce=\"n\""),
            Err(Error::DigestParam("realm"))
        );
        assert_eq!(
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256"),
            Err(Error::UnsupportedAlgorithm)
        );
        assert_eq!(
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth-conf\""),
            Err(Error::UnsupportedQop)
        );
        assert!(Challenge::parse("Digest realm=\"unterminated").is_err());
        assert!(Challenge::parse("Digest realm").is_err());
        assert!(Credentials::parse("Digest username=\"u\"").is_err());
        assert!(Credentials::parse(
            "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"s\", response=\"x\", qop=auth"
        )
        .is_err());
        assert!(Challenge::parse("Digest realm=\"é\\\"\", nonce=\"n\"").is_ok());
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_header_text_never_panics(text in "\\PC{0,200}") {
                let _ = Challenge::parse(&text);
                let _ = Credentials::parse(&text);
                let digest = format!("Digest {text}");
                let _ = Challenge::parse(&digest);
                if let Ok(c) = Credentials::parse(&digest) {
                    let _ = c.verify("pw", "REGISTER", b"");
                }
            }

            #[test]
            fn respond_then_verify_round_trips(
                user in "[a-z0-9]{1,12}",
                pass in "[ -~]{0,20}",
                nonce in "[A-Za-z0-9+/=]{1,40}",
                cnonce in "[A-Za-z0-9]{1,16}",
                nc in 1u32..1000,
                alg in 0usize..4,
            ) {
                let alg = [Algorithm::Md5, Algorithm::Md5Sess, Algorithm::Sha256, Algorithm::Sha256Sess][alg];
                let challenge = Challenge::parse(&Challenge::new("realm", &nonce, alg).to_string()).unwrap();
                let creds = challenge.respond(&user, &pass, "INVITE", "sip:x@y", b"", &cnonce, nc);
                let parsed = Credentials::parse(&creds.to_string()).unwrap();
                prop_assert!(parsed.verify(&pass, "INVITE", b""));
                let wrong = format!("{pass}x");
                prop_assert!(!parsed.verify(&wrong, "INVITE", b""));
            }
        }
    }
}
