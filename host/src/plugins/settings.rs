//! A plugin's settings: the optional `<name>.toml` beside `<name>.wasm`.
//!
//! ```toml
//! order = 10              # lower runs first (default 100, then by name)
//! enabled = true
//! time_budget = "10ms"    # per call; a call past it traps
//! memory_limit = "32MiB"  # linear memory cap per instance
//! fail_mode = "open"      # filters: on failure pass packets ("open") or drop the batch ("closed")
//! max_failures = 5        # consecutive failures before the plugin is disabled
//! event_queue = 1024      # events waiting for this plugin; more are dropped
//!
//! [grants]                # nothing is granted by default
//! env = false             # see the host's environment variables
//! network = false         # open sockets, resolve names
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

use crate::config::{parse_duration, parse_size};

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
    pub env: bool,
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
    pub fail_mode: FailMode,
    pub max_failures: u32,
    pub event_queue: usize,
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
            memory_limit: 32 << 20,
            fail_mode: FailMode::Open,
            max_failures: 5,
            event_queue: 1024,
            grants: Grants::default(),
            config_json: Arc::from("{}"),
        }
    }
}

const KEYS: &[&str] = &[
    "order",
    "enabled",
    "time_budget",
    "memory_limit",
    "fail_mode",
    "max_failures",
    "event_queue",
    "grants",
    "config",
];

impl PluginSettings {
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
        if let Some(v) = table.get("event_queue") {
            s.event_queue = at_least_one(v, "event_queue")?;
        }
        if let Some(g) = table.get("grants") {
            let g = g.as_table().context("`grants` must be a table")?;
            s.grants.env = g.get("env").and_then(toml::Value::as_bool).unwrap_or(false);
            s.grants.network = g.get("network").and_then(toml::Value::as_bool).unwrap_or(false);
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
        assert!(!s.grants.network && !s.grants.env && s.grants.dirs.is_empty());
        assert!(PluginSettings::parse("ordr = 1").unwrap_err().to_string().contains("unknown key `ordr`"));
        assert!(PluginSettings::parse("fail_mode = \"maybe\"").is_err());
    }
}
