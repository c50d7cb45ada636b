//! Session timers (RFC 4028): `Session-Expires` / `Min-SE` values and the refresh schedule.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::headers::{Headers, Params};

/// Who sends the refreshing re-INVITEs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    Uac,
    Uas,
}

/// `Session-Expires: <delta-seconds>[;refresher=uac|uas]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires {
    pub interval: u32,
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    pub fn parse(v: &str) -> Result<SessionExpires> {
        let bad = Error::InvalidHeader("Session-Expires");
        let (secs, params) = match v.split_once(';') {
            Some((s, p)) => (s.trim(), p),
            None => (v.trim(), ""),
        };
        let interval = parse_secs(secs).ok_or(bad.clone())?;
        let params = Params::parse(params).map_err(|_| bad.clone())?;
        let refresher = match params.value("refresher") {
            Some(r) if r.eq_ignore_ascii_case("uac") => Some(Refresher::Uac),
            Some(r) if r.eq_ignore_ascii_case("uas") => Some(Refresher::Uas),
            Some(_) => return Err(bad),
            None => None,
        };
        Ok(SessionExpires {
            interval,
            refresher,
        })
    }

    /// The header of `headers` (compact form `x` included), if present.
    pub fn from_headers(headers: &Headers) -> Result<Option<SessionExpires>> {
        headers
            .get("Session-Expires")
            .map(SessionExpires::parse)
            .transpose()
    }
}

impl std::fmt::Display for SessionExpires {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.interval)?;
        match self.refresher {
            Some(Refresher::Uac) => f.write_str(";refresher=uac"),
            Some(Refresher::Uas) => f.write_str(";refresher=uas"),
            None => Ok(()),
        }
    }
}

/// `Min-SE: <delta-seconds>` of `headers`, if present.
pub fn min_se(headers: &Headers) -> Result<Option<u32>> {
    headers
        .get("Min-SE")
        .map(|v| {
            let secs = v.split(';').next().unwrap_or("").trim();
            parse_secs(secs).ok_or(Error::InvalidHeader("Min-SE"))
        })
        .transpose()
}

fn parse_secs(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The session timer of a confirmed dialog, from our point of view (we are the UAC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimer {
    pub interval: Duration,
    /// True when we send the refreshes.
    pub we_refresh: bool,
}

impl SessionTimer {
    /// From the `Session-Expires` of a 2xx to our INVITE; a missing refresher means us.
    pub fn from_answer(se: SessionExpires) -> SessionTimer {
        SessionTimer {
            interval: Duration::from_secs(u64::from(se.interval)),
            we_refresh: se.refresher != Some(Refresher::Uas),
        }
    }

    /// When we refresh: half the interval after the last refresh (RFC 4028 §10).
    pub fn refresh_at(&self, refreshed: Instant) -> Instant {
        refreshed + self.interval / 2
    }

    /// When the peer's refresh is overdue and we end the session: the interval minus
    /// min(32 s, interval / 3) (RFC 4028 §10).
    pub fn expiry_at(&self, refreshed: Instant) -> Instant {
        let margin = Duration::from_secs(32).min(self.interval / 3);
        refreshed + self.interval - margin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_session_expires_forms() {
        assert_eq!(
            SessionExpires::parse("1800;refresher=uas").unwrap(),
            SessionExpires {
                interval: 1800,
                refresher: Some(Refresher::Uas)
            }
        );
        assert_eq!(
            SessionExpires::parse(" 90 ").unwrap(),
            SessionExpires {
                interval: 90,
                refresher: None
            }
        );
        assert!(SessionExpires::parse("soon").is_err());
        assert!(SessionExpires::parse("90;refresher=both").is_err());
        let mut h = Headers::new();
        h.push(crate::headers::HeaderName::new("x"), "600;refresher=uac");
        h.push(crate::headers::HeaderName::new("Min-SE"), "120");
        assert_eq!(
            SessionExpires::from_headers(&h)
                .unwrap()
                .map(|s| s.interval),
            Some(600)
        );
        assert_eq!(min_se(&h).unwrap(), Some(120));
    }

    #[test]
    fn deadlines() {
        let t0 = Instant::now();
        let ours = SessionTimer::from_answer(SessionExpires {
            interval: 1800,
            refresher: None,
        });
        assert!(ours.we_refresh);
        assert_eq!(ours.refresh_at(t0) - t0, Duration::from_secs(900));
        let theirs = SessionTimer::from_answer(SessionExpires {
            interval: 90,
            refresher: Some(Refresher::Uas),
        });
        assert!(!theirs.we_refresh);
        assert_eq!(theirs.expiry_at(t0) - t0, Duration::from_secs(60));
    }
}
