//! ISO 3166-1 alpha-2 region → IANA time zone, for numbers outside NANP.
//!
//! One zone per region: the only zone, or for multi-zone countries the zone
//! where most of the population lives:
//!
//! - AR → America/Argentina/Buenos_Aires (whole country is UTC−3 anyway)
//! - AU → Australia/Sydney as the fallback; geographic numbers are refined by
//!   area code in [`australia_zone`]
//! - BR → America/Sao_Paulo (Brasília time, UTC−3, covers the large majority)
//! - CD → Africa/Lubumbashi (the eastern, UTC+2 half holds most people)
//! - CL → America/Santiago (Easter Island and Magallanes are small)
//! - CN → Asia/Shanghai (the only legal zone)
//! - EC → America/Guayaquil (Galápagos is small)
//! - ES → Europe/Madrid (Canary Islands are ~5%)
//! - FM → Pacific/Chuuk (Chuuk is the most populous state)
//! - GL → America/Nuuk
//! - ID → Asia/Jakarta (WIB: Java and Sumatra)
//! - KI → Pacific/Tarawa
//! - KZ → Asia/Almaty (whole country on UTC+5 since 2024)
//! - MN → Asia/Ulaanbaatar
//! - MX → America/Mexico_City (central zone)
//! - PF → Pacific/Tahiti
//! - PS → Asia/Hebron (West Bank is more populous than Gaza)
//! - PT → Europe/Lisbon (Azores are small)
//! - RU → Europe/Moscow (Moscow time covers most of European Russia)
//! - UA → Europe/Kyiv
//!
//! NANP regions (US, CA, PR, the Caribbean NANP countries…) are not here:
//! `+1` numbers are resolved by area code in `nanp_tz`. XK (Kosovo) has no
//! zone of its own and uses Europe/Belgrade; AC (Ascension) and TA (Tristan
//! da Cunha), which `phonenumber` knows as regions, use Atlantic/St_Helena.

/// Sorted by region code (checked by a test) for binary search.
pub(super) const COUNTRY_ZONES: &[(&str, &str)] = &[
    ("AC", "Atlantic/St_Helena"),
    ("AD", "Europe/Andorra"),
    ("AE", "Asia/Dubai"),
    ("AF", "Asia/Kabul"),
    ("AL", "Europe/Tirane"),
    ("AM", "Asia/Yerevan"),
    ("AO", "Africa/Luanda"),
    ("AR", "America/Argentina/Buenos_Aires"),
    ("AT", "Europe/Vienna"),
    ("AU", "Australia/Sydney"),
    ("AW", "America/Aruba"),
    ("AX", "Europe/Mariehamn"),
    ("AZ", "Asia/Baku"),
    ("BA", "Europe/Sarajevo"),
    ("BD", "Asia/Dhaka"),
    ("BE", "Europe/Brussels"),
    ("BF", "Africa/Ouagadougou"),
    ("BG", "Europe/Sofia"),
    ("BH", "Asia/Bahrain"),
    ("BI", "Africa/Bujumbura"),
    ("BJ", "Africa/Porto-Novo"),
    ("BL", "America/St_Barthelemy"),
    ("BN", "Asia/Brunei"),
    ("BO", "America/La_Paz"),
    ("BQ", "America/Kralendijk"),
    ("BR", "America/Sao_Paulo"),
    ("BT", "Asia/Thimphu"),
    ("BW", "Africa/Gaborone"),
    ("BY", "Europe/Minsk"),
    ("BZ", "America/Belize"),
    ("CC", "Indian/Cocos"),
    ("CD", "Africa/Lubumbashi"),
    ("CF", "Africa/Bangui"),
    ("CG", "Africa/Brazzaville"),
    ("CH", "Europe/Zurich"),
    ("CI", "Africa/Abidjan"),
    ("CK", "Pacific/Rarotonga"),
    ("CL", "America/Santiago"),
    ("CM", "Africa/Douala"),
    ("CN", "Asia/Shanghai"),
    ("CO", "America/Bogota"),
    ("CR", "America/Costa_Rica"),
    ("CU", "America/Havana"),
    ("CV", "Atlantic/Cape_Verde"),
    ("CW", "America/Curacao"),
    ("CX", "Indian/Christmas"),
    ("CY", "Asia/Nicosia"),
    ("CZ", "Europe/Prague"),
    ("DE", "Europe/Berlin"),
    ("DJ", "Africa/Djibouti"),
    ("DK", "Europe/Copenhagen"),
    ("DZ", "Africa/Algiers"),
    ("EC", "America/Guayaquil"),
    ("EE", "Europe/Tallinn"),
    ("EG", "Africa/Cairo"),
    ("EH", "Africa/El_Aaiun"),
    ("ER", "Africa/Asmara"),
    ("ES", "Europe/Madrid"),
    ("ET", "Africa/Addis_Ababa"),
    ("FI", "Europe/Helsinki"),
    ("FJ", "Pacific/Fiji"),
    ("FK", "Atlantic/Stanley"),
    ("FM", "Pacific/Chuuk"),
    ("FO", "Atlantic/Faroe"),
    ("FR", "Europe/Paris"),
    ("GA", "Africa/Libreville"),
    ("GB", "Europe/London"),
    ("GE", "Asia/Tbilisi"),
    ("GF", "America/Cayenne"),
    ("GG", "Europe/Guernsey"),
    ("GH", "Africa/Accra"),
    ("GI", "Europe/Gibraltar"),
    ("GL", "America/Nuuk"),
    ("GM", "Africa/Banjul"),
    ("GN", "Africa/Conakry"),
    ("GP", "America/Guadeloupe"),
    ("GQ", "Africa/Malabo"),
    ("GR", "Europe/Athens"),
    ("GT", "America/Guatemala"),
    ("GW", "Africa/Bissau"),
    ("GY", "America/Guyana"),
    ("HK", "Asia/Hong_Kong"),
    ("HN", "America/Tegucigalpa"),
    ("HR", "Europe/Zagreb"),
    ("HT", "America/Port-au-Prince"),
    ("HU", "Europe/Budapest"),
    ("ID", "Asia/Jakarta"),
    ("IE", "Europe/Dublin"),
    ("IL", "Asia/Jerusalem"),
    ("IM", "Europe/Isle_of_Man"),
    ("IN", "Asia/Kolkata"),
    ("IO", "Indian/Chagos"),
    ("IQ", "Asia/Baghdad"),
    ("IR", "Asia/Tehran"),
    ("IS", "Atlantic/Reykjavik"),
    ("IT", "Europe/Rome"),
    ("JE", "Europe/Jersey"),
    ("JO", "Asia/Amman"),
    ("JP", "Asia/Tokyo"),
    ("KE", "Africa/Nairobi"),
    ("KG", "Asia/Bishkek"),
    ("KH", "Asia/Phnom_Penh"),
    ("KI", "Pacific/Tarawa"),
    ("KM", "Indian/Comoro"),
    ("KP", "Asia/Pyongyang"),
    ("KR", "Asia/Seoul"),
    ("KW", "Asia/Kuwait"),
    ("KZ", "Asia/Almaty"),
    ("LA", "Asia/Vientiane"),
    ("LB", "Asia/Beirut"),
    ("LI", "Europe/Vaduz"),
    ("LK", "Asia/Colombo"),
    ("LR", "Africa/Monrovia"),
    ("LS", "Africa/Maseru"),
    ("LT", "Europe/Vilnius"),
    ("LU", "Europe/Luxembourg"),
    ("LV", "Europe/Riga"),
    ("LY", "Africa/Tripoli"),
    ("MA", "Africa/Casablanca"),
    ("MC", "Europe/Monaco"),
    ("MD", "Europe/Chisinau"),
    ("ME", "Europe/Podgorica"),
    ("MF", "America/Marigot"),
    ("MG", "Indian/Antananarivo"),
    ("MH", "Pacific/Majuro"),
    ("MK", "Europe/Skopje"),
    ("ML", "Africa/Bamako"),
    ("MM", "Asia/Yangon"),
    ("MN", "Asia/Ulaanbaatar"),
    ("MO", "Asia/Macau"),
    ("MQ", "America/Martinique"),
    ("MR", "Africa/Nouakchott"),
    ("MT", "Europe/Malta"),
    ("MU", "Indian/Mauritius"),
    ("MV", "Indian/Maldives"),
    ("MW", "Africa/Blantyre"),
    ("MX", "America/Mexico_City"),
    ("MY", "Asia/Kuala_Lumpur"),
    ("MZ", "Africa/Maputo"),
    ("NA", "Africa/Windhoek"),
    ("NC", "Pacific/Noumea"),
    ("NE", "Africa/Niamey"),
    ("NF", "Pacific/Norfolk"),
    ("NG", "Africa/Lagos"),
    ("NI", "America/Managua"),
    ("NL", "Europe/Amsterdam"),
    ("NO", "Europe/Oslo"),
    ("NP", "Asia/Kathmandu"),
    ("NR", "Pacific/Nauru"),
    ("NU", "Pacific/Niue"),
    ("NZ", "Pacific/Auckland"),
    ("OM", "Asia/Muscat"),
    ("PA", "America/Panama"),
    ("PE", "America/Lima"),
    ("PF", "Pacific/Tahiti"),
    ("PG", "Pacific/Port_Moresby"),
    ("PH", "Asia/Manila"),
    ("PK", "Asia/Karachi"),
    ("PL", "Europe/Warsaw"),
    ("PM", "America/Miquelon"),
    ("PS", "Asia/Hebron"),
    ("PT", "Europe/Lisbon"),
    ("PW", "Pacific/Palau"),
    ("PY", "America/Asuncion"),
    ("QA", "Asia/Qatar"),
    ("RE", "Indian/Reunion"),
    ("RO", "Europe/Bucharest"),
    ("RS", "Europe/Belgrade"),
    ("RU", "Europe/Moscow"),
    ("RW", "Africa/Kigali"),
    ("SA", "Asia/Riyadh"),
    ("SB", "Pacific/Guadalcanal"),
    ("SC", "Indian/Mahe"),
    ("SD", "Africa/Khartoum"),
    ("SE", "Europe/Stockholm"),
    ("SG", "Asia/Singapore"),
    ("SH", "Atlantic/St_Helena"),
    ("SI", "Europe/Ljubljana"),
    ("SJ", "Arctic/Longyearbyen"),
    ("SK", "Europe/Bratislava"),
    ("SL", "Africa/Freetown"),
    ("SM", "Europe/San_Marino"),
    ("SN", "Africa/Dakar"),
    ("SO", "Africa/Mogadishu"),
    ("SR", "America/Paramaribo"),
    ("SS", "Africa/Juba"),
    ("ST", "Africa/Sao_Tome"),
    ("SV", "America/El_Salvador"),
    ("SY", "Asia/Damascus"),
    ("SZ", "Africa/Mbabane"),
    ("TA", "Atlantic/St_Helena"),
    ("TD", "Africa/Ndjamena"),
    ("TG", "Africa/Lome"),
    ("TH", "Asia/Bangkok"),
    ("TJ", "Asia/Dushanbe"),
    ("TK", "Pacific/Fakaofo"),
    ("TL", "Asia/Dili"),
    ("TM", "Asia/Ashgabat"),
    ("TN", "Africa/Tunis"),
    ("TO", "Pacific/Tongatapu"),
    ("TR", "Europe/Istanbul"),
    ("TV", "Pacific/Funafuti"),
    ("TW", "Asia/Taipei"),
    ("TZ", "Africa/Dar_es_Salaam"),
    ("UA", "Europe/Kyiv"),
    ("UG", "Africa/Kampala"),
    ("UY", "America/Montevideo"),
    ("UZ", "Asia/Tashkent"),
    ("VA", "Europe/Vatican"),
    ("VE", "America/Caracas"),
    ("VN", "Asia/Ho_Chi_Minh"),
    ("VU", "Pacific/Efate"),
    ("WF", "Pacific/Wallis"),
    ("WS", "Pacific/Apia"),
    ("XK", "Europe/Belgrade"),
    ("YE", "Asia/Aden"),
    ("YT", "Indian/Mayotte"),
    ("ZA", "Africa/Johannesburg"),
    ("ZM", "Africa/Lusaka"),
    ("ZW", "Africa/Harare"),
];

/// Zone for a non-NANP region code (upper case ISO alpha-2).
pub(super) fn zone_for_region(region: &str) -> Option<&'static str> {
    COUNTRY_ZONES
        .binary_search_by(|(code, _)| (*code).cmp(region))
        .ok()
        .and_then(|i| COUNTRY_ZONES.get(i))
        .map(|(_, zone)| *zone)
}

pub(super) const AU_SYDNEY: &str = "Australia/Sydney";
/// Every zone [`australia_zone`] can return (for the zone-name test).
#[cfg(test)]
pub(super) const AU_ZONES: &[&str] = &[
    AU_SYDNEY,
    "Australia/Melbourne",
    "Australia/Hobart",
    "Australia/Brisbane",
    "Australia/Perth",
    "Australia/Adelaide",
    "Australia/Darwin",
];

/// Australian zones from the national significant number (no trunk `0`).
///
/// Geographic numbers carry a one-digit area code:
/// - `2` NSW/ACT → Australia/Sydney
/// - `3` VIC/TAS → Australia/Melbourne; `36…` is Tasmania → Australia/Hobart
/// - `7` QLD → Australia/Brisbane (no DST, so Sydney would be wrong in summer)
/// - `8` is shared by WA, SA and NT, so the next digit decides:
///   `86…`/`89…` WA → Australia/Perth; `87…`/`88…` SA → Australia/Adelaide,
///   except `889…` NT (Darwin/Alice Springs) → Australia/Darwin. Any other
///   `8…` falls back to Australia/Perth (WA is the most populous of the three).
///
/// Everything else (mobiles `4…`, `13`/`1300`/`1800`, …) is not tied to a
/// place and gets the most populous zone, Australia/Sydney.
pub(super) fn australia_zone(national: &str) -> &'static str {
    let b = national.as_bytes();
    match b {
        [b'2', ..] => AU_SYDNEY,
        [b'3', b'6', ..] => "Australia/Hobart",
        [b'3', ..] => "Australia/Melbourne",
        [b'7', ..] => "Australia/Brisbane",
        [b'8', b'8', b'9', ..] => "Australia/Darwin",
        [b'8', b'7' | b'8', ..] => "Australia/Adelaide",
        [b'8', ..] => "Australia/Perth",
        _ => AU_SYDNEY,
    }
}
