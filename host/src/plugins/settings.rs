//! A plugin's settings: the optional `<name>.toml` beside `<name>.wasm`.
//!
//! ```toml
//! order = 10              # lower runs first (default 100, then by name)
//! enabled = true
//! time_budget = "10ms"    # per call, computing or waiting; a call past it fails
//! memory_limit = "64MiB"  # linear memory cap per instance
//! max_output_ratio = 4    # filters: output per batch at most this many times the input
//! fail_mode = "open"      # filters: on failure pass packets ("open") or drop the batch ("closed")
//! max_failures = 5        # consecutive failures before the plugin is disabled
//! recover = true          # a disabled plugin is tried again after a backoff
//! recover_after = "30s"   # the first wait; doubled on each relapse
//! recover_max = "30m"     # the longest wait
//! event_queue = 1024      # events waiting for this plugin; more are dropped
//! max_series = 1000       # label sets of the plugin's own metrics on /metrics
//! sha256 = "9f86d0…"      # pins the .wasm: a file with another digest is refused
//!
//! [grants]                # nothing is granted by default
//! env = ["TZ"]            # these host environment variables (acemux's secrets never)
//! network = false         # outbound TCP and UDP, name lookups
//! dirs = { "/srv/lists" = "/lists" }   # read-only directories (host = guest)
//!
//! [config]                # the plugin's own settings, given to it as JSON
//! region = "eu"
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::values::{parse_duration, parse_size};

/// What a failing filter does with the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Pass the packets through unchanged.
    Open,
    /// Drop the batch.
    Closed,
}

/// Sandbox openings the operator allows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Grants {
    /// Names of host environment variables the plugin sees (those set).
    pub env: Vec<String>,
    pub network: bool,
    /// Host directory → guest path, read-only.
    pub dirs: BTreeMap<String, String>,
}

/// See the module docs.
#[derive(Debug, Clone, Serialize)]
pub struct PluginSettings {
    pub order: i64,
    pub enabled: bool,
    #[serde(serialize_with = "secs")]
    pub time_budget: Duration,
    pub memory_limit: usize,
    /// A filter's output per batch is at most this many times its input.
    pub max_output_ratio: usize,
    pub fail_mode: FailMode,
    pub max_failures: u32,
    pub recover: bool,
    #[serde(serialize_with = "secs")]
    pub recover_after: Duration,
    #[serde(serialize_with = "secs")]
    pub recover_max: Duration,
    pub event_queue: usize,
    /// Series (label sets) of the plugin's own metrics, all metrics together.
    pub max_series: usize,
    /// The SHA-256 the `.wasm` must have (lower-case hex), when pinned.
    pub sha256: Option<String>,
    pub grants: Grants,
    #[serde(skip)]
    pub config_json: Arc<str>,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Default for PluginSettings {
    fn default() -> Self {
        Self {
            order: 100,
            enabled: true,
            time_budget: Duration::from_millis(10),
            // Rust plugins use a few MiB at most; the interpreters inside
            // Python and JavaScript components grow their heaps to 10–35 MiB
            // (docs/benchmarks.md), and a cap they reach mid-stream fails calls.
            memory_limit: 64 << 20,
            max_output_ratio: 4,
            fail_mode: FailMode::Open,
            max_failures: 5,
            recover: true,
            recover_after: Duration::from_secs(30),
            recover_max: Duration::from_secs(30 * 60),
            event_queue: 1024,
            max_series: 1000,
            sha256: None,
            grants: Grants::default(),
            config_json: Arc::from("{}"),
        }
    }
}

/// The most `max_series` may be.
const MAX_SERIES_CAP: usize = 100_000;

const KEYS: &[&str] = &[
    "order",
    "enabled",
    "time_budget",
    "memory_limit",
    "max_output_ratio",
    "fail_mode",
    "max_failures",
    "recover",
    "recover_after",
    "recover_max",
    "event_queue",
    "max_series",
    "sha256",
    "grants",
    "config",
];

impl PluginSettings {
    /// When a disabled plugin is tried again.
    pub fn recovery_policy(&self) -> super::recovery::RecoveryPolicy {
        super::recovery::RecoveryPolicy {
            max_failures: self.max_failures,
            first_wait: self.recover.then_some(self.recover_after),
            max_wait: self.recover_max,
        }
    }

    /// Reads `path` if it exists; defaults otherwise.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).with_context(|| format!("plugin settings {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let table: toml::Table = text.parse().context("not valid TOML")?;
        if let Some(k) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
            bail!("unknown key `{k}` (known: {})", KEYS.join(", "));
        }
        let mut s = Self::default();
        let text_of = |v: &toml::Value| match v {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if let Some(v) = table.get("order") {
            s.order = v.as_integer().context("`order` must be a whole number")?;
        }
        if let Some(v) = table.get("enabled") {
            s.enabled = v.as_bool().context("`enabled` must be true or false")?;
        }
        if let Some(v) = table.get("time_budget") {
            s.time_budget = parse_duration(&text_of(v)).map_err(|e| anyhow::anyhow!("`time_budget`: {e}"))?;
            if s.time_budget.is_zero() {
                bail!("`time_budget` must be more than zero");
            }
        }
        if let Some(v) = table.get("memory_limit") {
            s.memory_limit = parse_size(&text_of(v)).map_err(|e| anyhow::anyhow!("`memory_limit`: {e}"))?;
        }
        if let Some(v) = table.get("max_output_ratio") {
            s.max_output_ratio = at_least_one(v, "max_output_ratio")?;
        }
        if let Some(v) = table.get("fail_mode") {
            s.fail_mode = match v.as_str() {
                Some("open") => FailMode::Open,
                Some("closed") => FailMode::Closed,
                _ => bail!("`fail_mode` must be \"open\" or \"closed\""),
            };
        }
        if let Some(v) = table.get("max_failures") {
            s.max_failures = at_least_one(v, "max_failures")?;
        }
        if let Some(v) = table.get("recover") {
            s.recover = v.as_bool().context("`recover` must be true or false")?;
        }
        for (key, slot) in [("recover_after", &mut s.recover_after), ("recover_max", &mut s.recover_max)] {
            if let Some(v) = table.get(key) {
                *slot = parse_duration(&text_of(v)).map_err(|e| anyhow::anyhow!("`{key}`: {e}"))?;
                if slot.is_zero() {
                    bail!("`{key}` must be more than zero");
                }
            }
        }
        if s.recover_max < s.recover_after {
            bail!(
                "`recover_max` ({:?}) must not be shorter than `recover_after` ({:?})",
                s.recover_max,
                s.recover_after
            );
        }
        if let Some(v) = table.get("event_queue") {
            s.event_queue = at_least_one(v, "event_queue")?;
        }
        if let Some(v) = table.get("max_series") {
            s.max_series = at_least_one(v, "max_series")?;
            if s.max_series > MAX_SERIES_CAP {
                bail!(
                    "`max_series` must be at most {MAX_SERIES_CAP} (every series is in every scrape of /metrics)"
                );
            }
        }
        if let Some(v) = table.get("sha256") {
            let digest = v.as_str().context("`sha256` must be a string of 64 hexadecimal characters")?;
            let digest = digest.strip_prefix("sha256:").unwrap_or(digest).to_ascii_lowercase();
            if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!(
                    "`sha256` must be 64 hexadecimal characters (got {} characters)",
                    digest.chars().count()
                );
            }
            s.sha256 = Some(digest);
        }
        if let Some(g) = table.get("grants") {
            let g = g.as_table().context("`grants` must be a table")?;
            if let Some(k) = g.keys().find(|k| !["env", "network", "dirs"].contains(&k.as_str())) {
                bail!("unknown key `grants.{k}` (known: env, network, dirs)");
            }
            if let Some(env) = g.get("env") {
                s.grants.env = env_grant(env)?;
            }
            if let Some(network) = g.get("network") {
                s.grants.network = network.as_bool().context("`grants.network` must be true or false")?;
            }
            if let Some(dirs) = g.get("dirs") {
                for (host, guest) in dirs.as_table().context("`grants.dirs` must be a table")? {
                    let guest = guest.as_str().context("`grants.dirs` values must be guest paths")?;
                    s.grants.dirs.insert(host.clone(), guest.to_owned());
                }
            }
        }
        if let Some(c) = table.get("config") {
            s.config_json =
                Arc::from(serde_json::to_string(c).context("`config` cannot be turned into JSON")?);
        }
        Ok(s)
    }
}

/// `grants.env`: a list of variable names, none of them acemux's secrets.
fn env_grant(v: &toml::Value) -> anyhow::Result<Vec<String>> {
    let names = match v {
        toml::Value::Boolean(false) => return Ok(Vec::new()),
        toml::Value::Boolean(true) => bail!(
            "`grants.env = true` would pass acemux's whole environment; list the variables instead, e.g. env = [\"TZ\"]"
        ),
        toml::Value::Array(names) => names,
        _ => bail!("`grants.env` must be a list of variable names, e.g. env = [\"TZ\"]"),
    };
    let mut out = Vec::new();
    for name in names {
        let name = name.as_str().context("`grants.env` must be a list of variable names")?;
        if name.is_empty() || name.contains(['=', '\0']) {
            bail!("`grants.env`: `{name}` is not a variable name");
        }
        if crate::values::SECRET_VARIABLES.contains(&name) {
            bail!("`grants.env`: `{name}` holds acemux's own secret and is never given to a plugin");
        }
        out.push(name.to_owned());
    }
    Ok(out)
}

/// A TOML integer of at least 1 that fits `T`.
fn at_least_one<T: TryFrom<i64>>(v: &toml::Value, key: &str) -> anyhow::Result<T> {
    v.as_integer()
        .filter(|n| *n > 0)
        .and_then(|n| T::try_from(n).ok())
        .with_context(|| format!("`{key}` must be a whole number of at least 1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_key_and_refuses_unknown_ones() {
        let s = PluginSettings::parse(
            "order = 3\ntime_budget = \"5ms\"\nmemory_limit = \"8MiB\"\nfail_mode = \"closed\"\n[config]\nregion = \"eu\"\n",
        )
        .unwrap();
        assert_eq!(s.order, 3);
        assert_eq!(s.time_budget, Duration::from_millis(5));
        assert_eq!(s.memory_limit, 8 << 20);
        assert_eq!(s.fail_mode, FailMode::Closed);
        assert_eq!(&*s.config_json, r#"{"region":"eu"}"#);
        assert!(!s.grants.network && s.grants.env.is_empty() && s.grants.dirs.is_empty());
        assert!(PluginSettings::parse("ordr = 1").unwrap_err().to_string().contains("unknown key `ordr`"));
        assert!(PluginSettings::parse("fail_mode = \"maybe\"").is_err());
    }

    #[test]
    fn a_pinned_digest_is_64_hex_characters_kept_in_lower_case() {
        let hex = "AB".repeat(32);
        let s = PluginSettings::parse(&format!("sha256 = \"sha256:{hex}\"")).unwrap();
        assert_eq!(s.sha256.as_deref(), Some("ab".repeat(32).as_str()));
        for bad in ["sha256 = \"abc\"", "sha256 = 5", &format!("sha256 = \"{}\"", "g".repeat(64))] {
            let e = PluginSettings::parse(bad).unwrap_err();
            assert!(format!("{e:#}").contains("`sha256`"), "{bad}: {e:#}");
        }
        assert_eq!(PluginSettings::parse("").unwrap().sha256, None);
    }

    #[test]
    fn env_grant_is_an_allow_list_without_secrets() {
        let s = PluginSettings::parse("[grants]\nenv = [\"TZ\", \"REGION\"]\nnetwork = true\n").unwrap();
        assert_eq!(s.grants.env, ["TZ", "REGION"]);
        assert!(s.grants.network);
        let whole = PluginSettings::parse("[grants]\nenv = true\n").unwrap_err().to_string();
        assert!(whole.contains("list the variables"), "{whole}");
        let secret =
            PluginSettings::parse("[grants]\nenv = [\"ACEMUX_ADMIN_TOKEN\"]\n").unwrap_err().to_string();
        assert!(secret.contains("secret"), "{secret}");
        assert!(PluginSettings::parse("[grants]\nnetwork = \"yes\"\n").is_err());
        assert!(
            PluginSettings::parse("[grants]\nnet = true\n").unwrap_err().to_string().contains("grants.net")
        );
        assert!(PluginSettings::parse("max_output_ratio = 0").is_err());
        assert_eq!(PluginSettings::parse("max_output_ratio = 2").unwrap().max_output_ratio, 2);
    }

    proptest::proptest! {
        /// Any text, and any TOML made of the real keys with values of any
        /// type, gives settings or an error; never a panic.
        #[test]
        fn any_settings_text_parses_or_is_refused(
            text in ".{0,80}",
            entries in proptest::collection::vec(
                (proptest::sample::select(KEYS.to_vec()), proptest::sample::select(vec![
                    "1", "0", "-5", "\"10ms\"", "\"0s\"", "\"32MiB\"", "true", "\"open\"", "[]", "[\"TZ\"]",
                    "{ env = true }", "{ network = 1 }", "{ dirs = { \"/a\" = 1 } }", "9999999999999999999", "1.5",
                ])),
                0..6,
            ),
        ) {
            let _ = PluginSettings::parse(&text);
            let mut toml = String::new();
            let mut seen = std::collections::BTreeSet::new();
            for (key, value) in entries {
                if seen.insert(key) {
                    toml.push_str(&format!("{key} = {value}\n"));
                }
            }
            if let Ok(s) = PluginSettings::parse(&toml) {
                proptest::prop_assert!(s.max_failures >= 1 && s.max_output_ratio >= 1 && !s.time_budget.is_zero());
            }
        }
    }
}
