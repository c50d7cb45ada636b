//! Field-level validation results shared by every input type.

use serde::Serialize;

/// One problem with one input field, reported to clients as-is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldIssue {
    /// The field's name as the client sent it (dotted for nested fields).
    pub field: String,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl FieldIssue {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Collects issues while an input is checked; `finish` turns them into an error.
#[derive(Debug, Default)]
pub struct Issues(Vec<FieldIssue>);

impl Issues {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldIssue::new(field, message));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was found, else the validation error.
    pub fn finish(self) -> crate::Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(crate::Error::Validation { issues: self.0 })
        }
    }
}

/// True for `+` followed by 7 to 15 digits, the first not 0 (ITU-T E.164).
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// A plausible e-mail address: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && s.len() <= 254
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

/// Parses `HH:MM` or `HH:MM:SS` into seconds since midnight.
pub fn parse_time_of_day(s: &str) -> Option<u32> {
    let mut parts = s.split(':');
    let h: u32 = parse_2digits(parts.next()?)?;
    let m: u32 = parse_2digits(parts.next()?)?;
    let sec: u32 = match parts.next() {
        Some(p) => parse_2digits(p)?,
        None => 0,
    };
    if parts.next().is_some() || h > 23 || m > 59 || sec > 59 {
        return None;
    }
    Some(h * 3600 + m * 60 + sec)
}

fn parse_2digits(p: &str) -> Option<u32> {
    if p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()) {
        p.parse().ok()
    } else {
        None
    }
}

/// Formats seconds since midnight as `HH:MM:SS`.
pub fn format_time_of_day(secs: u32) -> String {
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// True when `tz` is an IANA time zone name we know.
pub fn is_time_zone(tz: &str) -> bool {
    tz.parse::<chrono_tz::Tz>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164() {
        assert!(is_e164("+14155551234"));
        assert!(!is_e164("14155551234"));
        assert!(!is_e164("+0123456789"));
        assert!(!is_e164("+1415555123a"));
        assert!(!is_e164("+123456"));
        assert!(!is_e164("+1234567890123456"));
    }

    #[test]
    fn email() {
        assert!(is_email("a@b.co"));
        assert!(!is_email("a@b"));
        assert!(!is_email("@b.co"));
        assert!(!is_email("a b@c.co"));
        assert!(!is_email("a@@b.co"));
    }

    #[test]
    fn time_of_day() {
        assert_eq!(parse_time_of_day("09:00"), Some(9 * 3600));
        assert_eq!(
            parse_time_of_day("21:30:15"),
            Some(21 * 3600 + 30 * 60 + 15)
        );
        assert_eq!(parse_time_of_day("24:00"), None);
        assert_eq!(parse_time_of_day("9:00"), None);
        assert_eq!(parse_time_of_day("09:60"), None);
        assert_eq!(parse_time_of_day("09:00:00:00"), None);
        assert_eq!(format_time_of_day(9 * 3600 + 5), "09:00:05");
    }

    #[test]
    fn zones() {
        assert!(is_time_zone("America/Los_Angeles"));
        assert!(!is_time_zone("Mars/Olympus"));
    }
}
