//! Parsers for the value forms operators write: seconds (`5`, `0.5`) or
//! suffixed durations (`500ms`, `2s`, `1m`); bytes (`65424`) or suffixed
//! sizes (`64KiB`, `8MiB`, `1MB`).

use std::time::Duration;

/// Parses `5`, `0.5` (seconds), `500ms`, `2s`, `1m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, scale) = split_unit(s, &[("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)])?;
    let secs = number * scale;
    if !(0.0..=1e9).contains(&secs) {
        return Err(format!("`{s}` is not a duration (e.g. `5`, `0.5`, `500ms`, `2s`)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `65424`, `64KiB`, `8MiB`, `1GiB`, `64KB`, `1MB`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let units = [
        ("KiB", 1024.0),
        ("MiB", 1024.0 * 1024.0),
        ("GiB", 1024.0 * 1024.0 * 1024.0),
        ("KB", 1e3),
        ("MB", 1e6),
        ("GB", 1e9),
        ("B", 1.0),
    ];
    let (number, scale) = split_unit(s, &units)?;
    let bytes = number * scale;
    if !(0.0..=1e12).contains(&bytes) || bytes.fract() != 0.0 {
        return Err(format!("`{s}` is not a size in bytes (e.g. `65424`, `64KiB`, `8MiB`)"));
    }
    Ok(bytes as usize)
}

/// A size as an operator writes it: `32 MiB`, `512 KiB`, `1000 bytes`.
pub fn format_size(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

/// A duration as an operator writes it: `10 ms`, `2 s`, `1.5 s`, `250 µs`.
pub fn format_duration(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else if d < Duration::from_secs(1) {
        format!("{} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

fn split_unit(s: &str, units: &[(&str, f64)]) -> Result<(f64, f64), String> {
    let bad = || format!("`{s}` is not a number with an optional unit");
    let (digits, scale) =
        units.iter().find_map(|(unit, scale)| s.strip_suffix(unit).map(|d| (d, *scale))).unwrap_or((s, 1.0));
    let number: f64 = digits.trim().parse().map_err(|_| bad())?;
    Ok((number, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("NaN").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65424").unwrap(), 65424);
        assert_eq!(parse_size("64KiB").unwrap(), 65536);
        assert_eq!(parse_size("8MiB").unwrap(), 8 << 20);
        assert_eq!(parse_size("1MB").unwrap(), 1_000_000);
        assert!(parse_size("1.5B").is_err());
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn formatted_as_written() {
        assert_eq!(format_size(32 << 20), "32 MiB");
        assert_eq!(format_size(512 << 10), "512 KiB");
        assert_eq!(format_size(1000), "1000 bytes");
        assert_eq!(format_duration(Duration::from_millis(10)), "10 ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(format_duration(Duration::from_micros(250)), "250 µs");
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_is_refused_without_panic(text in ".{0,24}|[0-9.eE+-]{1,12}(ms|s|m|h|KiB|MiB|GiB|KB|MB|B)?") {
            if let Ok(d) = parse_duration(&text) {
                proptest::prop_assert!(d.as_secs_f64() <= 1e9);
            }
            let _ = parse_size(&text);
        }
    }
}
