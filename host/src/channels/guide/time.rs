//! XMLTV times, `YYYYMMDDhhmmss ±zzzz`: guides drop the seconds, the
//! minutes or the offset (then UTC), so every prefix of at least the date
//! is read. Written back in UTC (`… +0000`).

/// Unix seconds of an XMLTV time, or none if it is not one.
pub fn parse(text: &str) -> Option<i64> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if !(8..=14).contains(&digits) || digits % 2 == 1 {
        return None;
    }
    let field = |from: usize, len: usize| -> Option<i64> {
        if from + len <= digits { text[from..from + len].parse().ok() } else { Some(0) }
    };
    let (year, month, day) = (field(0, 4)?, field(4, 2)?, field(6, 2)?);
    let (hour, minute, second) = (field(8, 2)?, field(10, 2)?, field(12, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let offset = match text[digits..].trim() {
        "" | "Z" | "UTC" | "GMT" => 0,
        zone => {
            let (sign, rest) = match zone.as_bytes().first()? {
                b'+' => (1, &zone[1..]),
                b'-' => (-1, &zone[1..]),
                _ => return None,
            };
            let rest = rest.replace(':', "");
            if rest.len() != 4 || !rest.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let (h, m): (i64, i64) = (rest[..2].parse().ok()?, rest[2..].parse().ok()?);
            if h > 14 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// `YYYYMMDDhhmmss +0000`.
pub fn format(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}{m:02}{d:02}{:02}{:02}{:02} +0000", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// `YYYY-MM-DD hh:mm:ss` (UTC), as the Xtream Codes API writes times.
pub fn format_plain(unix: i64) -> String {
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_guides_write() {
        assert_eq!(parse("20261204170000 +0000"), Some(1_796_403_600));
        assert_eq!(parse("20261204180000 +0100"), Some(1_796_403_600));
        assert_eq!(parse("202612041700 -0130"), Some(1_796_403_600 + 5400));
        assert_eq!(parse("20261204170000"), Some(1_796_403_600));
        assert_eq!(parse("19700101"), Some(0));
        for bad in ["", "2026", "20261304000000", "20261204170000 +2500", "2026120417000", "x20261204"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(format(1_796_403_600), "20261204170000 +0000");
        assert_eq!(format_plain(1_796_403_600), "2026-12-04 17:00:00");
    }

    proptest::proptest! {
        #[test]
        fn formatting_and_reading_agree(unix in -10_000_000_000i64..10_000_000_000) {
            proptest::prop_assert_eq!(parse(&format(unix)), Some(unix));
        }

        #[test]
        fn any_text_is_read_without_panic(text in "[0-9+\\-: A-Z]{0,24}") {
            let _ = parse(&text);
        }
    }
}
