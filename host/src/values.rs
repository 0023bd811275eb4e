//! The value forms operators write in settings, and the parsers every
//! concern's settings use for them: seconds (`5`, `0.5`) or suffixed
//! durations (`500ms`, `2s`, `1m`); bytes (`65424`) or suffixed sizes
//! (`64KiB`, `8MiB`, `1MB`); limits where `0` means none; http(s) URLs;
//! tokens. Each parser's error says what is wrong with the value; the
//! settings layer (`crate::config`) puts the setting's names in front.
//!
//! Also [`setting_names`]: the flag, environment variable and file key of
//! a declared setting, for the errors of checks that span two settings.

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

/// A value that may say "none" (`0` for a limit, `auto`, `none`) while
/// the setting itself always has one: the setting is never absent (it has
/// a default), so clap's own `Option` cannot carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OrNone<T>(pub Option<T>);

impl<T: Copy> OrNone<T> {
    pub fn get(&self) -> Option<T> {
        self.0
    }
}

impl<T> OrNone<T> {
    pub fn as_ref(&self) -> Option<&T> {
        self.0.as_ref()
    }

    pub fn is_some(&self) -> bool {
        self.0.is_some()
    }
}

impl OrNone<String> {
    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// `parse`, where an empty value (an `ORCHESTRATOR_URL=` left in a
/// compose file, `epg_url = ""`) means none.
pub fn empty_is_none<T>(
    parse: impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static,
) -> impl Fn(&str) -> Result<OrNone<T>, String> + Clone + Send + Sync + 'static {
    move |s: &str| if s.trim().is_empty() { Ok(OrNone(None)) } else { parse(s).map(|v| OrNone(Some(v))) }
}

/// Any duration.
pub fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s.trim())
}

/// A duration of more than zero.
pub fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s.trim())?;
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

/// A duration from `min` to `max`.
pub fn duration_within(s: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = parse_duration(s.trim())?;
    if d < min || d > max {
        return Err(format!(
            "`{}` must be between {} and {}",
            s.trim(),
            format_duration(min),
            format_duration(max)
        ));
    }
    Ok(d)
}

/// A size in bytes.
pub fn size(s: &str) -> Result<usize, String> {
    parse_size(s.trim())
}

/// A size in bytes, `0` meaning none.
pub fn size_or_none(s: &str) -> Result<OrNone<usize>, String> {
    parse_size(s.trim()).map(|n| OrNone((n > 0).then_some(n)))
}

/// A whole number.
pub fn whole_number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.trim().parse::<T>().map_err(|_| format!("`{}` is not a whole number", s.trim()))
}

/// A whole number of at least 1.
pub fn at_least_one<T: std::str::FromStr + PartialOrd + From<u8>>(s: &str) -> Result<T, String> {
    let n: T = whole_number(s)?;
    if n < T::from(1) {
        return Err("must be at least 1".into());
    }
    Ok(n)
}

/// A whole number from `min` to `max`.
pub fn whole_number_within(s: &str, min: usize, max: usize) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("`{}` is not a whole number from {min} to {max}", s.trim())),
    }
}

/// A limit: a whole number, `0` meaning none.
pub fn limit(s: &str) -> Result<OrNone<usize>, String> {
    let n: usize = whole_number(s)?;
    Ok(OrNone((n > 0).then_some(n)))
}

/// A path (a directory or a file), `none` (or nothing) meaning none.
pub fn path_or_none(s: &str) -> Result<OrNone<std::path::PathBuf>, String> {
    let s = s.trim();
    Ok(OrNone(if s == "none" || s.is_empty() { None } else { Some(std::path::PathBuf::from(s)) }))
}

/// `on`/`off` (or `true`/`false`).
pub fn on_off(s: &str) -> Result<bool, String> {
    match s.trim() {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        other => Err(format!("`{other}` is not one of `on`, `off`")),
    }
}

/// An http(s) URL, kept without a trailing slash.
pub fn http_url(s: &str) -> Result<String, String> {
    let url = s.trim().trim_end_matches('/');
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url.to_owned())
    } else {
        Err(format!("`{}` is not an http:// or https:// URL", s.trim()))
    }
}

/// A bearer token: not empty (an empty `ACEMUX_ADMIN_TOKEN=` must not
/// silently leave admin endpoints open), no white space.
pub fn token(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("set but empty; give a token, or unset it".into());
    }
    if s.chars().any(char::is_whitespace) {
        return Err("a token must not contain white space".into());
    }
    Ok(s.to_owned())
}

/// Environment variables that carry acemux's own secrets (tokens, and the
/// Redis URL, which may hold a password): never handed to a plugin,
/// whatever its grants list. Every setting that hides its environment
/// value is here (a test in `crate::config` checks it).
pub const SECRET_VARIABLES: &[&str] = &["ACEMUX_ADMIN_TOKEN", "API_KEY", "ACEMUX_REDIS_URL"];

/// One of a few named values, as clap's value parser: `choice(&[("skip",
/// LagPolicy::Skip), …])`. The error lists every name.
pub fn choice<T: Copy + Send + Sync + 'static>(
    choices: &'static [(&'static str, T)],
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    move |given: &str| {
        let given = given.trim();
        choices.iter().find(|(name, _)| *name == given).map(|(_, value)| *value).ok_or_else(|| {
            let names: Vec<String> = choices.iter().map(|(name, _)| format!("`{name}`")).collect();
            format!("`{given}` is not one of {}", names.join(", "))
        })
    }
}

/// `--flag / ENV / file key `key`` of the setting `id` that `T` declares,
/// for an error about a value that only a second setting makes wrong.
pub fn setting_names<T: clap::Args>(id: &str) -> String {
    let command = T::augment_args(clap::Command::new("acemux"));
    let Some(arg) = command.get_arguments().find(|a| a.get_id() == id) else {
        return format!("`{id}`");
    };
    describe(arg)
}

/// `--flag / ENV / file key `key`` of one declared setting.
pub fn describe(arg: &clap::Arg) -> String {
    let mut names = Vec::new();
    if let Some(long) = arg.get_long() {
        names.push(format!("--{long}"));
    }
    if let Some(env) = arg.get_env() {
        names.push(env.to_string_lossy().into_owned());
    }
    names.push(format!("file key `{}`", arg.get_id()));
    names.join(" / ")
}

/// Durations as seconds when shown.
pub mod secs {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

fn split_unit(s: &str, units: &[(&str, f64)]) -> Result<(f64, f64), String> {
    let bad = || format!("`{s}` is not a number with an optional unit");
    let (digits, scale) =
        units.iter().find_map(|(unit, scale)| s.strip_suffix(unit).map(|d| (d, *scale))).unwrap_or((s, 1.0));
    let number: f64 = digits.trim().parse().map_err(|_| bad())?;
    Ok((number, scale))
}

/// The file's `[[<key>]]` tables read by `read` (an error names the entry),
/// at most `max`, each named once (`name_of`).
pub fn named_tables<T>(
    value: &toml::Value,
    key: &str,
    max: usize,
    read: impl Fn(&toml::Value) -> Result<T, String>,
    name_of: impl Fn(&T) -> &str,
) -> anyhow::Result<Vec<T>> {
    let list = anyhow::Context::with_context(value.as_array(), || {
        format!("invalid setting `{key}`: expected [[{key}]] tables")
    })?;
    anyhow::ensure!(list.len() <= max, "invalid setting `{key}`: more than {max} [[{key}]] tables");
    let mut read_so_far: Vec<T> = Vec::with_capacity(list.len());
    for (i, table) in list.iter().enumerate() {
        let entry =
            read(table).map_err(|why| anyhow::anyhow!("invalid setting `{key}` entry {}: {why}", i + 1))?;
        if read_so_far.iter().any(|e| name_of(e) == name_of(&entry)) {
            anyhow::bail!(
                "invalid setting `{key}` entry {}: the name `{}` is used twice",
                i + 1,
                name_of(&entry)
            );
        }
        read_so_far.push(entry);
    }
    Ok(read_so_far)
}

/// A one-line text: trimmed, without control characters, at most `max`
/// bytes (cut at a character); none when nothing is left.
pub fn one_line(value: &str, max: usize) -> Option<String> {
    let mut out = String::with_capacity(value.len().min(max));
    for c in value.trim().chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    let trimmed = out.trim_end();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
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
