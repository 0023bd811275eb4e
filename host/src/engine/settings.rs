//! Settings of the engine pool: which engines, how many streams each may
//! carry, how long an engine call may take, and how engines are probed.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::values;

/// One engine from the settings (or from the orchestrator).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EngineSetting {
    pub host: String,
    pub port: u16,
    /// Free-form labels; `acestream.forwarded = "true"` marks a
    /// port-forwarded engine, which selection prefers.
    pub labels: BTreeMap<String, String>,
    /// The engine's container, named in orchestrator events.
    pub container_id: Option<String>,
}

impl EngineSetting {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self { host: host.into(), port, ..Self::default() }
    }
}

/// See the module docs.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineSettings {
    /// Engine `host:port`, repeatable (the environment variable takes a
    /// comma list; the file a list of `"host:port"` or of `[[engines]]`
    /// tables with `address`, `labels` and `container_id`).
    #[arg(
        id = "engines",
        long = "engine",
        value_name = "HOST:PORT",
        env = "ACEMUX_ENGINES",
        value_delimiter = ',',
        default_value = "127.0.0.1:6878",
        value_parser = parse_engine
    )]
    pub engines: Vec<EngineSetting>,
    /// Streams one engine may carry.
    #[arg(long, env = "MAX_STREAMS_PER_ENGINE", default_value = "3", value_parser = values::at_least_one::<usize>)]
    pub max_streams_per_engine: usize,
    /// Engine request timeout, and longest upstream silence once live.
    #[arg(long, env = "PROXY_CONNECTION_TIMEOUT", default_value = "10", value_parser = values::positive_duration)]
    pub connection_timeout: Duration,
    /// Engine health probe period (`/server/api?method=get_status`).
    #[arg(long, env = "ACEMUX_HEALTH_INTERVAL", default_value = "10", value_parser = values::positive_duration)]
    pub health_interval: Duration,
    /// Failed probes in a row that mark an engine unhealthy.
    #[arg(long, env = "ACEMUX_HEALTH_FAILURES", default_value = "3", value_parser = values::at_least_one::<u32>)]
    pub health_failures: u32,
    /// Period of each stream's one poll of its engine's statistics (peers,
    /// speeds, live position), whoever reads them (0.5–60 s).
    #[arg(long, env = "ACEMUX_ENGINE_STAT_INTERVAL", default_value = "2s", value_parser = stat_interval)]
    pub engine_stat_interval: Duration,
}

fn stat_interval(s: &str) -> Result<Duration, String> {
    values::duration_within(s, Duration::from_millis(500), Duration::from_secs(60))
}

/// The file's `engines`: a list of `"host:port"` strings or of tables with
/// `address`, optional `labels` and `container_id`.
pub fn engines_from_file(value: &toml::Value) -> Result<Vec<EngineSetting>, String> {
    let list = value.as_array().ok_or("expected a list of engines")?;
    list.iter().map(file_engine).collect()
}

fn file_engine(entry: &toml::Value) -> Result<EngineSetting, String> {
    match entry {
        toml::Value::String(s) => parse_engine(s),
        toml::Value::Table(t) => {
            if let Some(k) = t.keys().find(|k| !["address", "labels", "container_id"].contains(&k.as_str())) {
                return Err(format!("unknown engine key `{k}` (known: address, labels, container_id)"));
            }
            let address =
                t.get("address").and_then(|a| a.as_str()).ok_or("an engine table needs `address`")?;
            let mut engine = parse_engine(address)?;
            if let Some(labels) = t.get("labels") {
                let labels = labels.as_table().ok_or("`labels` must be a table of strings")?;
                for (k, v) in labels {
                    let v = match v {
                        toml::Value::String(s) => s.clone(),
                        toml::Value::Boolean(b) => b.to_string(),
                        toml::Value::Integer(i) => i.to_string(),
                        _ => return Err(format!("label `{k}` must be a string")),
                    };
                    engine.labels.insert(k.clone(), v);
                }
            }
            if let Some(id) = t.get("container_id") {
                engine.container_id = Some(id.as_str().ok_or("`container_id` must be a string")?.to_owned());
            }
            Ok(engine)
        }
        other => Err(format!("`{other}` is neither \"host:port\" nor an engine table")),
    }
}

/// `host:port`, `[v6]:port`; the host a DNS name, container name or IPv4.
pub fn parse_engine(s: &str) -> Result<EngineSetting, String> {
    let s = s.trim();
    let (host, port) = s.rsplit_once(':').ok_or_else(|| format!("`{s}` is not host:port"))?;
    let port: u16 = port.parse().map_err(|_| format!("`{s}`: `{port}` is not a port"))?;
    if host.is_empty() || port == 0 {
        return Err(format!("`{s}` is not host:port"));
    }
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6
            .parse::<std::net::Ipv6Addr>()
            .map(|_| v6)
            .map_err(|_| format!("`{s}`: `{host}` is not an IPv6 address"))?,
        None if is_host_name(host) => host,
        None => return Err(format!("`{s}`: `{host}` is not a host name or IPv4 address ([…] for IPv6)")),
    };
    Ok(EngineSetting::new(host, port))
}

/// A DNS name or dotted IPv4 address: labels of letters, digits, `-` and
/// `_` (container names), not starting or ending with `-`.
fn is_host_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_tables_carry_labels_and_containers_and_refuse_unknown_keys() {
        let value: toml::Table = toml::from_str(
            "engines = [\"e0:1\", { address = \"e1:6878\", container_id = \"c1\", labels = { \"acestream.forwarded\" = true } }]",
        )
        .unwrap();
        let engines = engines_from_file(&value["engines"]).unwrap();
        assert_eq!(engines[0], EngineSetting::new("e0", 1));
        assert_eq!(engines[1].container_id.as_deref(), Some("c1"));
        assert_eq!(engines[1].labels["acestream.forwarded"], "true");
        let value: toml::Table = toml::from_str("engines = [{ addres = \"e1:1\" }]").unwrap();
        let err = engines_from_file(&value["engines"]).unwrap_err();
        assert!(err.contains("unknown engine key `addres`"), "{err}");
    }

    proptest::proptest! {
        /// An engine address either parses to a usable host and port or is
        /// refused with a message; it never panics.
        #[test]
        fn any_engine_address_parses_or_is_refused(text in ".{0,40}|[a-z0-9.\\[\\]:_-]{1,30}:[0-9]{1,6}") {
            if let Ok(e) = parse_engine(&text) {
                proptest::prop_assert!(e.port > 0 && !e.host.is_empty());
                proptest::prop_assert!(!e.host.contains(char::is_whitespace));
            }
        }
    }
}
