//! Calling hours in the lead's own time zone, never outside the legal 08:00–21:00 local
//! window whatever a campaign says (US TSR / FCC; the strictest common rule), DST included.
//!
//! Times of day are seconds since local midnight; a call may start at `start` and must have
//! started before `end`.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// 08:00 local.
pub const LEGAL_START: u32 = 8 * 3600;
/// 21:00 local.
pub const LEGAL_END: u32 = 21 * 3600;

/// A campaign's daily window clamped to the legal one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallingWindow {
    pub start: u32,
    pub end: u32,
}

impl CallingWindow {
    /// The campaign's hours (seconds since midnight) intersected with 08:00–21:00.
    pub fn new(campaign_start: u32, campaign_end: u32) -> Self {
        Self {
            start: campaign_start.max(LEGAL_START),
            end: campaign_end.min(LEGAL_END),
        }
    }

    /// From the campaign's `HH:MM:SS` strings (invalid → the legal window).
    pub fn from_strings(start: &str, end: &str) -> Self {
        let p = |s: &str, d| crate::validate::parse_time_of_day(s).unwrap_or(d);
        Self::new(p(start, LEGAL_START), p(end, LEGAL_END))
    }

    /// No time of day is allowed (campaign hours entirely outside the legal window).
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    /// Whether a call may start at `now` for a lead in `tz`.
    pub fn allows(&self, now: DateTime<Utc>, tz: Tz) -> bool {
        let secs = now.with_timezone(&tz).time().num_seconds_from_midnight();
        !self.is_empty() && self.start <= secs && secs < self.end
    }

    /// The first instant at or after `now` when a call may start, or None if never.
    pub fn next_allowed(&self, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        if self.is_empty() {
            return None;
        }
        if self.allows(now, tz) {
            return Some(now);
        }
        let local = now.with_timezone(&tz);
        let secs = local.time().num_seconds_from_midnight();
        let mut day = local.date_naive();
        if secs >= self.start {
            day = day.succ_opt()?;
        }
        // The window opens at `start` local time on `day`; on a DST gap, at the first valid
        // instant after it. Search a few days in case the start itself is skipped.
        for _ in 0..3 {
            if let Some(t) = local_instant(tz, day, self.start) {
                if t >= now && self.allows(t, tz) {
                    return Some(t);
                }
            }
            day = day.succ_opt()?;
        }
        None
    }
}

/// The UTC instant of `secs` after local midnight of `day` in `tz`; in a gap (spring
/// forward), the first valid minute after it; when ambiguous (fall back), the earlier.
fn local_instant(tz: Tz, day: NaiveDate, secs: u32) -> Option<DateTime<Utc>> {
    let mut naive = day.and_time(NaiveTime::from_num_seconds_from_midnight_opt(secs, 0)?);
    for _ in 0..=180 {
        match tz.from_local_datetime(&naive) {
            LocalResult::Single(t) => return Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(a, _) => return Some(a.with_timezone(&Utc)),
            LocalResult::None => naive += Duration::minutes(1),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn campaign_hours_never_exceed_the_legal_window() {
        let w = CallingWindow::new(6 * 3600, 23 * 3600);
        assert_eq!(
            w,
            CallingWindow {
                start: LEGAL_START,
                end: LEGAL_END
            }
        );
        assert!(CallingWindow::new(22 * 3600, 23 * 3600).is_empty());
    }

    #[test]
    fn uses_the_leads_zone() {
        let w = CallingWindow::new(9 * 3600, 20 * 3600);
        let now = utc("2024-06-03T15:00:00Z"); // 11:00 New York, 08:00 Los Angeles
        assert!(w.allows(now, chrono_tz::America::New_York));
        assert!(
            !w.allows(now, chrono_tz::America::Los_Angeles),
            "08:00 is before the campaign's 09:00"
        );
        assert_eq!(
            w.next_allowed(now, chrono_tz::America::Los_Angeles),
            Some(utc("2024-06-03T16:00:00Z"))
        );
        // 20:30 in New York: after the campaign's 20:00, next is 09:00 tomorrow.
        let late = utc("2024-06-04T00:30:00Z");
        assert_eq!(
            w.next_allowed(late, chrono_tz::America::New_York),
            Some(utc("2024-06-04T13:00:00Z"))
        );
    }

    #[test]
    fn dst_transitions() {
        let w = CallingWindow::new(0, 24 * 3600 - 1); // the legal window alone
                                                      // US spring forward 2024-03-10: 08:00 EDT = 12:00Z, the day before 08:00 EST = 13:00Z.
        assert_eq!(
            w.next_allowed(utc("2024-03-10T06:00:00Z"), chrono_tz::America::New_York),
            Some(utc("2024-03-10T12:00:00Z"))
        );
        assert_eq!(
            w.next_allowed(utc("2024-03-09T06:00:00Z"), chrono_tz::America::New_York),
            Some(utc("2024-03-09T13:00:00Z"))
        );
        // Fall back 2024-11-03: 08:00 EST = 13:00Z.
        assert_eq!(
            w.next_allowed(utc("2024-11-03T05:00:00Z"), chrono_tz::America::New_York),
            Some(utc("2024-11-03T13:00:00Z"))
        );
        // 21:00 EDT on 2024-03-10 = 01:00Z next day: closed from then.
        assert!(w.allows(utc("2024-03-11T00:59:59Z"), chrono_tz::America::New_York));
        assert!(!w.allows(utc("2024-03-11T01:00:00Z"), chrono_tz::America::New_York));
        // A zone whose gap is at midnight (Santiago, 2024-09-08 00:00 → 01:00): 08:00 still exists.
        assert_eq!(
            w.next_allowed(utc("2024-09-08T02:00:00Z"), chrono_tz::America::Santiago),
            Some(utc("2024-09-08T11:00:00Z"))
        );
        assert_eq!(
            local_instant(
                chrono_tz::America::Santiago,
                NaiveDate::from_ymd_opt(2024, 9, 8).unwrap(),
                1800
            ),
            Some(utc("2024-09-08T04:00:00Z")),
            "00:30 does not exist: 01:00 it is"
        );
    }

    fn zones() -> impl Strategy<Value = Tz> {
        prop::sample::select(vec![
            chrono_tz::America::New_York,
            chrono_tz::America::Chicago,
            chrono_tz::America::Denver,
            chrono_tz::America::Phoenix,
            chrono_tz::America::Los_Angeles,
            chrono_tz::America::Anchorage,
            chrono_tz::Pacific::Honolulu,
            chrono_tz::Europe::London,
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::America::Santiago,
            chrono_tz::Asia::Kolkata,
        ])
    }

    proptest! {
        /// Whatever the campaign says and whatever the instant, an allowed instant is between
        /// 08:00 and 21:00 lead-local, and `next_allowed` returns an allowed instant no
        /// earlier than now and at most ~2 days ahead.
        #[test]
        fn never_outside_8_to_21_local(secs in 0i64..(4 * 365 * 86_400), cs in 0u32..86_400, ce in 0u32..86_400, tz in zones()) {
            let now = utc("2023-01-01T00:00:00Z") + Duration::seconds(secs);
            let w = CallingWindow::new(cs, ce);
            if w.allows(now, tz) {
                let local = now.with_timezone(&tz).time().num_seconds_from_midnight();
                prop_assert!((LEGAL_START..LEGAL_END).contains(&local));
            }
            match w.next_allowed(now, tz) {
                Some(t) => {
                    prop_assert!(t >= now);
                    prop_assert!(w.allows(t, tz));
                    prop_assert!(t - now <= Duration::hours(50));
                }
                None => prop_assert!(w.is_empty()),
            }
        }
    }
}
