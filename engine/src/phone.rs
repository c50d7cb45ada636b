//! Phone number normalization (E.164) and "where does it ring" lookups.
//!
//! Parsing and validity come from the `phonenumber` crate (a port of Google's
//! libphonenumber). Time zones come from two hand-written tables:
//! `nanp_tz` (NANP area codes) and `country_tz` (ISO region → zone).

mod country_tz;
mod nanp_tz;

use phonenumber::country::Id;
use phonenumber::metadata::DATABASE;
use phonenumber::{Mode, PhoneNumber};

/// Inputs longer than this many characters are rejected without parsing.
const MAX_RAW_CHARS: usize = 64;

/// E.164 allows at most 15 digits after the `+`.
const MAX_E164_DIGITS: usize = 15;

/// A phone number in E.164 with what we know of where it rings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedPhone {
    pub e164: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: Option<String>,
    /// IANA zone name.
    pub timezone: Option<String>,
}

/// Why a raw string is not a dialable number (a validation outcome, not a crate error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneProblem {
    Empty,
    /// National format and no country hint.
    NoCountry,
    /// Hint is not an ISO code.
    UnknownCountry,
    /// Cannot be parsed or not a valid number for its region.
    Invalid,
}

impl std::fmt::Display for PhoneProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PhoneProblem::Empty => "Phone number is empty",
            PhoneProblem::NoCountry => {
                "Phone number has no country code and no default country was given"
            }
            PhoneProblem::UnknownCountry => "Unknown country code",
            PhoneProblem::Invalid => "Invalid phone number format",
        })
    }
}

/// Normalize a raw phone number to E.164.
///
/// - Separators (whitespace, `-`, `.`, `(`, `)`, `/`) are ignored; any other
///   character (letters, `#`, `*`, `ext.`, `tel:` …) makes the input `Invalid`.
/// - A leading `+` or `00` marks an international number; the hint is then
///   ignored (even if it is not a valid code).
/// - Otherwise the number is national and `country_hint` (ISO alpha-2, any
///   case, surrounding whitespace ignored) is required: absent or blank →
///   `NoCountry`, not a known region → `UnknownCountry`. With a hint, the
///   hint country's own international prefix (e.g. `011` for US) and a
///   country code typed without `+` (e.g. `44 20 …` with hint GB) are
///   understood by `phonenumber`.
/// - The number must pass `phonenumber::is_valid` (metadata for its region),
///   else `Invalid`.
/// - NANP `NXX-555-0100`…`0199` numbers, reserved for fiction, are `Invalid`
///   too (libphonenumber's metadata accepts them).
/// - `country` is the region the number belongs to (from the number, not the
///   hint); `timezone` as for [`timezone_for_e164`].
pub fn normalize(raw: &str, country_hint: Option<&str>) -> Result<NormalizedPhone, PhoneProblem> {
    if raw.chars().nth(MAX_RAW_CHARS).is_some() {
        return Err(PhoneProblem::Invalid);
    }
    if raw.trim().is_empty() {
        return Err(PhoneProblem::Empty);
    }
    let (international, digits) = sanitize(raw)?;

    let parsed = if international {
        phonenumber::parse(None, format!("+{digits}"))
    } else {
        let hint = country_hint
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or(PhoneProblem::NoCountry)?;
        let id = region_id(hint).ok_or(PhoneProblem::UnknownCountry)?;
        phonenumber::parse(Some(id), &digits)
    };
    let number = parsed.map_err(|_| PhoneProblem::Invalid)?;
    if !phonenumber::is_valid(&number) || is_nanp_fictional(&number) {
        return Err(PhoneProblem::Invalid);
    }

    let e164 = number.format().mode(Mode::E164).to_string();
    let region = region_of(&number);
    let timezone = zone_for_number(&number, region);
    Ok(NormalizedPhone {
        e164,
        country: region.map(|id| id.as_ref().to_owned()),
        timezone: timezone.map(str::to_owned),
    })
}

/// IANA zone for an E.164 number (`+` followed by digits, no separators).
///
/// `+1` numbers are looked up by area code (geographic codes only: toll-free
/// and other non-geographic codes give `None`). Other numbers are resolved to
/// their region by `phonenumber` and looked up per country, with Australian
/// geographic numbers refined by area code. Unknown → `None`. The number's
/// validity is not checked here; use [`normalize`] for that.
pub fn timezone_for_e164(e164: &str) -> Option<&'static str> {
    let digits = e164.strip_prefix('+')?;
    if digits.is_empty()
        || digits.len() > MAX_E164_DIGITS
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    if let Some(national) = digits.strip_prefix('1') {
        return nanp_zone(national);
    }
    let number = phonenumber::parse(None, e164).ok()?;
    zone_for_number(&number, region_of(&number))
}

/// Whether `code` is an ISO 3166-1 alpha-2 region code (any case) that phone
/// numbers can be parsed for.
///
/// This is the region list of `phonenumber`'s metadata: every ISO region that
/// has its own numbering (so not e.g. AQ, BV, HM, TF, UM), plus AC (Ascension),
/// TA (Tristan da Cunha) and XK (Kosovo), which libphonenumber treats as regions.
pub fn is_valid_country(code: &str) -> bool {
    region_id(code).is_some()
}

fn region_id(code: &str) -> Option<Id> {
    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    code.to_ascii_uppercase().parse::<Id>().ok()
}

/// Strip separators. Returns (is international, digits without prefix).
fn sanitize(raw: &str) -> Result<(bool, String), PhoneProblem> {
    let mut digits = String::with_capacity(raw.len());
    let mut plus = false;
    for c in raw.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if !plus && digits.is_empty() => plus = true,
            '-' | '.' | '(' | ')' | '/' => {}
            c if c.is_whitespace() => {}
            _ => return Err(PhoneProblem::Invalid),
        }
    }
    if digits.is_empty() {
        return Err(PhoneProblem::Invalid);
    }
    if plus {
        return Ok((true, digits));
    }
    match digits.strip_prefix("00") {
        Some(rest) => Ok((true, rest.to_owned())),
        None => Ok((false, digits)),
    }
}

/// `+1 NPA 555 01XX`: NANPA reserves these for fictional use.
fn is_nanp_fictional(number: &PhoneNumber) -> bool {
    if number.code().value() != 1 {
        return false;
    }
    let national = number.national().to_string();
    national.len() == 10 && national.get(3..8) == Some("55501")
}

/// The region a parsed number belongs to.
///
/// `PhoneNumber::country().id()` drops the national number's leading zeros
/// before matching, so for a calling code shared by several regions whose
/// numbers keep a leading zero (+39 IT/VA) it finds no region. In that case
/// redo the lookup with the zeros kept: first a region whose `leading_digits`
/// match, then a region without `leading_digits` whose general pattern matches.
fn region_of(number: &PhoneNumber) -> Option<Id> {
    if let Some(id) = number.country().id() {
        return Some(id);
    }
    let national = number.national().to_string();
    let metas = DATABASE.by_code(&number.code().value())?;
    let by_leading_digits = metas.iter().find(|m| {
        m.leading_digits()
            .and_then(|re| re.find(&national))
            .is_some_and(|found| found.start() == 0)
    });
    let found = by_leading_digits.or_else(|| {
        metas
            .iter()
            .find(|m| m.leading_digits().is_none() && m.descriptors().general().is_match(&national))
    })?;
    found.id().parse().ok()
}

/// Zone of the ten NANP digits after `+1`.
fn nanp_zone(national: &str) -> Option<&'static str> {
    if national.len() != 10 {
        return None;
    }
    let area_code = national.get(..3)?.parse::<u16>().ok()?;
    nanp_tz::zone_for_area_code(area_code)
}

fn zone_for_number(number: &PhoneNumber, region: Option<Id>) -> Option<&'static str> {
    let national = number.national().to_string();
    if number.code().value() == 1 {
        return nanp_zone(&national);
    }
    match region? {
        Id::AU => Some(country_tz::australia_zone(&national)),
        id => country_tz::zone_for_region(id.as_ref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn e164(raw: &str, hint: Option<&str>) -> Result<String, PhoneProblem> {
        normalize(raw, hint).map(|p| p.e164)
    }

    #[test]
    fn accepts_common_formats() {
        let want = Ok("+12127365000".to_owned());
        for raw in [
            "+1 212 736 5000",
            "+1-212-736-5000",
            "+1.212.736.5000",
            "+1 (212) 736-5000",
            "(+1) 212 736 5000",
            "+12127365000",
            "001 212 736 5000",
            "0012127365000",
            "  +1 212 736 5000  ",
            "+1\u{a0}212\u{a0}736\u{a0}5000",
        ] {
            assert_eq!(e164(raw, None), want, "{raw:?}");
        }
        for raw in [
            "(212) 736-5000",
            "212-736-5000",
            "212.736.5000",
            "212 736 5000",
            "2127365000",
            "1 212 736 5000",
            "011 1 212 736 5000",
        ] {
            assert_eq!(e164(raw, Some("US")), want, "{raw:?}");
        }
    }

    #[test]
    fn known_numbers_normalize() {
        let cases: &[(&str, Option<&str>, &str, &str, &str)] = &[
            // raw, hint, e164, country, zone
            (
                "(212) 736-5000",
                Some("US"),
                "+12127365000",
                "US",
                "America/New_York",
            ),
            (
                "+1 212 555 0200",
                None,
                "+12125550200",
                "US",
                "America/New_York",
            ),
            (
                "+1 415 555 2671",
                None,
                "+14155552671",
                "US",
                "America/Los_Angeles",
            ),
            (
                "(416) 979-2400",
                Some("CA"),
                "+14169792400",
                "CA",
                "America/Toronto",
            ),
            (
                "604 682 1234",
                Some("ca"),
                "+16046821234",
                "CA",
                "America/Vancouver",
            ),
            (
                "787 722 1234",
                Some("US"),
                "+17877221234",
                "PR",
                "America/Puerto_Rico",
            ),
            (
                "020 7219 3000",
                Some("GB"),
                "+442072193000",
                "GB",
                "Europe/London",
            ),
            (
                "+44 (0)20 7219 3000",
                None,
                "+442072193000",
                "GB",
                "Europe/London",
            ),
            (
                "07400 123456",
                Some("gb"),
                "+447400123456",
                "GB",
                "Europe/London",
            ),
            // libphonenumber puts 07911 1… in Guernsey's mobile ranges.
            (
                "07911 123456",
                Some("GB"),
                "+447911123456",
                "GG",
                "Europe/Guernsey",
            ),
            (
                "030 901820",
                Some("DE"),
                "+4930901820",
                "DE",
                "Europe/Berlin",
            ),
            ("0049 30 901820", None, "+4930901820", "DE", "Europe/Berlin"),
            (
                "030/901820",
                Some("de"),
                "+4930901820",
                "DE",
                "Europe/Berlin",
            ),
            (
                "01 42 68 53 00",
                Some("FR"),
                "+33142685300",
                "FR",
                "Europe/Paris",
            ),
            (
                "+33 6 12 34 56 78",
                None,
                "+33612345678",
                "FR",
                "Europe/Paris",
            ),
            (
                "098765 43210",
                Some("IN"),
                "+919876543210",
                "IN",
                "Asia/Kolkata",
            ),
            (
                "+91 98765 43210",
                None,
                "+919876543210",
                "IN",
                "Asia/Kolkata",
            ),
            (
                "+39 06 4991 1234",
                None,
                "+390649911234",
                "IT",
                "Europe/Rome",
            ),
            (
                "02 1234 5678",
                Some("it"),
                "+390212345678",
                "IT",
                "Europe/Rome",
            ),
            // Rome's 06 698… block is the Vatican's (libphonenumber leading digits).
            (
                "+39 06 6988 4857",
                None,
                "+390669884857",
                "VA",
                "Europe/Vatican",
            ),
            (
                "+39 312 345 6789",
                None,
                "+393123456789",
                "IT",
                "Europe/Rome",
            ),
            (
                "(02) 9374 4000",
                Some("AU"),
                "+61293744000",
                "AU",
                "Australia/Sydney",
            ),
            (
                "0412 345 678",
                Some("AU"),
                "+61412345678",
                "AU",
                "Australia/Sydney",
            ),
            (
                "+61 8 9222 1234",
                None,
                "+61892221234",
                "AU",
                "Australia/Perth",
            ),
            (
                "+61 8 8207 1234",
                None,
                "+61882071234",
                "AU",
                "Australia/Adelaide",
            ),
            (
                "+61 8 8981 1234",
                None,
                "+61889811234",
                "AU",
                "Australia/Darwin",
            ),
            (
                "+61 7 3224 1234",
                None,
                "+61732241234",
                "AU",
                "Australia/Brisbane",
            ),
            (
                "+61 3 9654 1234",
                None,
                "+61396541234",
                "AU",
                "Australia/Melbourne",
            ),
        ];
        for &(raw, hint, want_e164, want_country, want_zone) in cases {
            let got = normalize(raw, hint);
            let want = Ok(NormalizedPhone {
                e164: want_e164.to_owned(),
                country: Some(want_country.to_owned()),
                timezone: Some(want_zone.to_owned()),
            });
            assert_eq!(got, want, "{raw:?} hint {hint:?}");
        }
    }

    #[test]
    fn hint_is_case_insensitive() {
        for hint in ["GB", "gb", "Gb", "gB", " gb "] {
            assert_eq!(
                e164("020 7219 3000", Some(hint)),
                Ok("+442072193000".to_owned()),
                "{hint:?}"
            );
        }
    }

    #[test]
    fn leading_plus_ignores_hint() {
        for hint in [None, Some("US"), Some("FR"), Some("zz"), Some("")] {
            assert_eq!(
                e164("+44 20 7219 3000", hint),
                Ok("+442072193000".to_owned()),
                "{hint:?}"
            );
        }
    }

    #[test]
    fn national_without_hint_is_no_country() {
        assert_eq!(e164("020 7219 3000", None), Err(PhoneProblem::NoCountry));
        assert_eq!(e164("(212) 736-5000", None), Err(PhoneProblem::NoCountry));
        assert_eq!(
            e164("212 736 5000", Some("  ")),
            Err(PhoneProblem::NoCountry)
        );
    }

    #[test]
    fn bad_hint_is_unknown_country() {
        for hint in ["ZZ", "USA", "U", "1", "U$", "ÜS", "GBR"] {
            assert_eq!(
                e164("020 7219 3000", Some(hint)),
                Err(PhoneProblem::UnknownCountry),
                "{hint:?}"
            );
        }
    }

    #[test]
    fn empty_is_empty() {
        for raw in ["", " ", "\t\n", "\u{a0}"] {
            assert_eq!(e164(raw, Some("US")), Err(PhoneProblem::Empty), "{raw:?}");
        }
    }

    #[test]
    fn garbage_is_invalid() {
        for raw in [
            "abc",
            "hello world",
            "---",
            "()",
            "+",
            "++44 20 7219 3000",
            "+44 +20 7219 3000",
            "44+20",
            "1-800-FLOWERS",
            "212 736 5000 ext. 12",
            "tel:+1-212-736-5000",
            "212#736#5000",
            "١٢٣٤٥٦٧٨٩٠",
            "0",
            "12",
            "+1 555 0100",
            "+1 212 555 0100",
            "(212) 555-0199",
            "+1 555 555 0100",
            "+1 212 736 500",
            "+1 212 736 50000",
            "+999 1234 5678",
            "+0 123 456 789",
            "00",
            "0000000000",
            "+44 20 7219 3000 1234 5678",
        ] {
            assert_eq!(e164(raw, Some("US")), Err(PhoneProblem::Invalid), "{raw:?}");
        }
    }

    #[test]
    fn overlong_input_is_invalid_without_parsing() {
        let long = format!("+1 212 736 5000{}", " ".repeat(60));
        assert_eq!(e164(&long, None), Err(PhoneProblem::Invalid));
        assert_eq!(e164(&" ".repeat(65), None), Err(PhoneProblem::Invalid));
        // 64 characters is still fine.
        let edge = format!("{:<64}", "+1 212 736 5000");
        assert_eq!(edge.chars().count(), 64);
        assert_eq!(e164(&edge, None), Ok("+12127365000".to_owned()));
    }

    #[test]
    fn display_is_a_sentence() {
        assert_eq!(
            PhoneProblem::Invalid.to_string(),
            "Invalid phone number format"
        );
        for p in [
            PhoneProblem::Empty,
            PhoneProblem::NoCountry,
            PhoneProblem::UnknownCountry,
            PhoneProblem::Invalid,
        ] {
            assert!(!p.to_string().is_empty());
        }
    }

    #[test]
    fn valid_countries() {
        for code in ["US", "us", "gb", "De", "FR", "IN", "AU", "XK"] {
            assert!(is_valid_country(code), "{code}");
        }
        for code in ["", "U", "USA", "ZZ", "UK", "1A", "u$", "ÜS", " us"] {
            assert!(!is_valid_country(code), "{code:?}");
        }
    }

    #[test]
    fn area_codes_map_to_zones() {
        let cases: &[(&str, &str)] = &[
            ("212", "America/New_York"),
            ("617", "America/New_York"),
            ("305", "America/New_York"),
            ("404", "America/New_York"),
            ("313", "America/Detroit"),
            ("317", "America/Indiana/Indianapolis"),
            ("312", "America/Chicago"),
            ("214", "America/Chicago"),
            ("612", "America/Chicago"),
            ("850", "America/Chicago"),
            ("270", "America/Chicago"),
            ("303", "America/Denver"),
            ("801", "America/Denver"),
            ("915", "America/Denver"),
            ("208", "America/Boise"),
            ("602", "America/Phoenix"),
            ("928", "America/Phoenix"),
            ("415", "America/Los_Angeles"),
            ("206", "America/Los_Angeles"),
            ("702", "America/Los_Angeles"),
            ("907", "America/Anchorage"),
            ("808", "Pacific/Honolulu"),
            ("416", "America/Toronto"),
            ("514", "America/Toronto"),
            ("604", "America/Vancouver"),
            ("403", "America/Edmonton"),
            ("204", "America/Winnipeg"),
            ("306", "America/Regina"),
            ("902", "America/Halifax"),
            ("709", "America/St_Johns"),
            ("787", "America/Puerto_Rico"),
            ("876", "America/Jamaica"),
            ("809", "America/Santo_Domingo"),
            ("671", "Pacific/Guam"),
        ];
        for &(ac, zone) in cases {
            let number = format!("+1{ac}2345678");
            assert_eq!(timezone_for_e164(&number), Some(zone), "{number}");
        }
        for number in [
            "+18002345678",
            "+18882345678",
            "+19002345678",
            "+1212234567",
        ] {
            assert_eq!(timezone_for_e164(number), None, "{number}");
        }
    }

    #[test]
    fn country_zones() {
        let cases: &[(&str, &str)] = &[
            ("+442072193000", "Europe/London"),
            ("+4930901820", "Europe/Berlin"),
            ("+33142685300", "Europe/Paris"),
            ("+919876543210", "Asia/Kolkata"),
            ("+5511912345678", "America/Sao_Paulo"),
            ("+525512345678", "America/Mexico_City"),
            ("+74951234567", "Europe/Moscow"),
            ("+81312345678", "Asia/Tokyo"),
            ("+6421234567", "Pacific/Auckland"),
            ("+380441234567", "Europe/Kyiv"),
        ];
        for &(number, zone) in cases {
            assert_eq!(timezone_for_e164(number), Some(zone), "{number}");
        }
        for number in [
            "",
            "+",
            "442072193000",
            "+44 20 7219 3000",
            "+80012345678",
            "+x",
        ] {
            assert_eq!(timezone_for_e164(number), None, "{number:?}");
        }
    }

    #[test]
    fn required_countries_have_zones() {
        let required = [
            // EU/EEA
            "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
            "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS",
            "LI", "NO", // others
            "GB", "CH", "AU", "NZ", "IN", "BR", "MX", "AR", "CL", "CO", "PE", "ZA", "NG", "KE",
            "EG", "MA", "TR", "IL", "AE", "SA", "JP", "KR", "CN", "HK", "SG", "MY", "TH", "PH",
            "ID", "VN", "PK", "BD", "RU", "UA",
        ];
        for code in required {
            assert!(country_tz::zone_for_region(code).is_some(), "{code}");
            assert!(is_valid_country(code), "{code}");
        }
    }

    #[test]
    fn tables_are_well_formed() {
        // Country table: sorted, unique, every key a region phonenumber knows.
        for pair in country_tz::COUNTRY_ZONES.windows(2) {
            assert!(pair[0].0 < pair[1].0, "not sorted: {pair:?}");
        }
        for (code, _) in country_tz::COUNTRY_ZONES {
            assert!(is_valid_country(code), "{code}");
        }
        // NANP table: every area code once, all of form NXX.
        let mut seen = std::collections::HashSet::new();
        for (region, _, codes) in nanp_tz::NANP_AREA_CODES {
            for &ac in *codes {
                assert!((200..=999).contains(&ac), "{region} {ac}");
                assert!(seen.insert(ac), "duplicate area code {ac} ({region})");
            }
        }
    }

    #[test]
    fn every_zone_is_a_valid_iana_name() {
        let zones = nanp_tz::NANP_AREA_CODES
            .iter()
            .map(|(_, zone, _)| *zone)
            .chain(country_tz::COUNTRY_ZONES.iter().map(|(_, zone)| *zone))
            .chain(country_tz::AU_ZONES.iter().copied());
        let mut count = 0;
        for zone in zones {
            assert!(chrono_tz::Tz::from_str(zone).is_ok(), "{zone}");
            count += 1;
        }
        assert!(count > 300, "{count}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn normalize_never_panics(raw in any::<String>(), hint in proptest::option::of(any::<String>())) {
            let _ = normalize(&raw, hint.as_deref());
            let _ = timezone_for_e164(&raw);
            let _ = is_valid_country(&raw);
        }

        #[test]
        fn phone_like_input_never_panics(
            raw in "[+]?[0-9 ()./-]{0,40}",
            hint in proptest::option::of("[A-Za-z]{0,3}"),
        ) {
            if let Ok(p) = normalize(&raw, hint.as_deref()) {
                prop_assert!(p.e164.starts_with('+'));
                prop_assert!(p.e164[1..].bytes().all(|b| b.is_ascii_digit()));
                // Re-normalizing the output is stable.
                prop_assert_eq!(normalize(&p.e164, None), Ok(p.clone()));
            }
            let _ = timezone_for_e164(&raw);
        }
    }
}
