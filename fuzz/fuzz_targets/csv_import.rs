//! The per-cell logic of the CSV lead import: phone normalization and the validate helpers.
//!
//! `Store::import_leads` needs a database and its CSV record splitting (`parse_file`) is
//! private, so this target fuzzes the public functions every imported cell goes through:
//! `phone::normalize` (with and without a country hint), `phone::timezone_for_e164`,
//! `phone::is_valid_country`, and `validate::{is_e164, is_email, is_time_zone,
//! parse_time_of_day}`. The input is read as lines of comma-separated cells
//! `phone,country,email,timezone,time` (no CSV quoting).
//!
//! Properties: nothing panics; a normalized number is E.164, normalizes to itself again, and
//! its time zone (if any) is a known IANA zone; a parsed time of day formats back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_engine::phone;
use switchboard_engine::validate::{
    format_time_of_day, is_e164, is_email, is_time_zone, parse_time_of_day,
};

fn check_phone(raw: &str, hint: Option<&str>) {
    let Ok(n) = phone::normalize(raw, hint) else { return };
    assert!(is_e164(&n.e164), "normalize({raw:?}, {hint:?}) gave non-E.164 {:?}", n.e164);
    if let Some(tz) = &n.timezone {
        assert!(is_time_zone(tz), "unknown zone {tz:?} for {:?}", n.e164);
    }
    if let Some(c) = &n.country {
        assert!(phone::is_valid_country(c), "unknown country {c:?} for {:?}", n.e164);
    }
    let again = phone::normalize(&n.e164, None)
        .unwrap_or_else(|p| panic!("{:?} (from {raw:?}) does not normalize again: {p}", n.e164));
    assert_eq!(again.e164, n.e164, "normalization is not idempotent for {raw:?}");
    let _ = phone::timezone_for_e164(&n.e164);
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for line in text.split('\n').take(32) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let mut cells = line.split(',');
        let phone_cell = cells.next().unwrap_or("");
        let country = cells.next();
        let email = cells.next().unwrap_or("");
        let tz = cells.next().unwrap_or("");
        let time = cells.next().unwrap_or("");

        check_phone(phone_cell, country);
        check_phone(phone_cell, None);
        if let Some(c) = country {
            let _ = phone::is_valid_country(c);
        }
        let _ = phone::timezone_for_e164(phone_cell);
        let _ = is_e164(phone_cell);
        let _ = is_email(email);
        let _ = is_time_zone(tz);
        if let Some(secs) = parse_time_of_day(time) {
            assert!(secs < 86_400);
            let formatted = format_time_of_day(secs);
            assert_eq!(parse_time_of_day(&formatted), Some(secs));
        }
    }
});
