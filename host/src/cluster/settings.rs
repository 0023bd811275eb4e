//! Settings of the cluster: the Redis the instances share, how others
//! reach this one, its name, how long its leases last, and what a request
//! for another instance's content gets.

use std::time::Duration;

use serde::Serialize;

use super::Membership;
use crate::values::{self, OrNone};

/// What a request for a content that another instance owns gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterForward {
    /// `307` to the same path and query on the owner.
    Redirect,
    /// acemux fetches it from the owner and passes it through.
    Proxy,
}

const FORWARD: &[(&str, ClusterForward)] =
    &[("redirect", ClusterForward::Redirect), ("proxy", ClusterForward::Proxy)];

/// See the module docs.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterSettings {
    /// Redis URL shared by the instances of a cluster, e.g.
    /// `redis://:password@redis:6379/0` or `rediss://…` for TLS (`#insecure`
    /// skips certificate checks); needs --advertise-url [default: none].
    #[arg(long, env = "ACEMUX_REDIS_URL", hide_env_values = true, default_value = "", hide_default_value = true, value_parser = values::empty_is_none(redis_url))]
    pub redis_url: OrNone<String>,
    /// Base URL other instances and redirected players reach this instance
    /// at, e.g. `http://10.0.0.5:8000` (cluster only) [default: none].
    #[arg(long, env = "ACEMUX_ADVERTISE_URL", default_value = "", hide_default_value = true, value_parser = values::empty_is_none(values::http_url))]
    pub advertise_url: OrNone<String>,
    /// This instance's name in the cluster, `/proxy/status` and `/metrics`
    /// (letters, digits, `.`, `_`, `-`) [default: random].
    #[arg(long, env = "ACEMUX_INSTANCE_ID", default_value = "", hide_default_value = true, value_parser = instance_id)]
    pub instance_id: String,
    /// Cluster leases lapse this long after their instance stopped renewing
    /// them (at least 1 s; renewed every third).
    #[arg(long, env = "ACEMUX_CLUSTER_LEASE", default_value = "5s", value_parser = lease)]
    pub cluster_lease: Duration,
    /// `redirect` (307 to the owner) or `proxy` (pass the owner's answer
    /// through) for a content another instance streams.
    #[arg(long, env = "ACEMUX_CLUSTER_FORWARD", default_value = "redirect", value_parser = values::choice(FORWARD))]
    pub cluster_forward: ClusterForward,
}

impl ClusterSettings {
    /// What only two settings together can make wrong.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.redis_url.is_some() && !self.advertise_url.is_some() {
            anyhow::bail!(
                "invalid setting {}: a cluster (--redis-url) needs the URL other instances reach this one at",
                values::setting_names::<Self>("advertise_url"),
            );
        }
        Ok(())
    }

    /// This instance's part in a cluster, when the settings name one.
    pub fn membership(&self) -> Option<Membership> {
        Some(Membership {
            redis_url: self.redis_url.as_ref()?.clone(),
            advertise_url: self.advertise_url.as_ref()?.clone(),
            instance_id: self.instance_id.clone(),
            lease: self.cluster_lease,
        })
    }
}

/// A Redis URL as redis-rs accepts it (checked, not connected; the error
/// never repeats the URL, which may hold a password).
fn redis_url(s: &str) -> Result<String, String> {
    let s = s.trim();
    redis::Client::open(s).map(|_| s.to_owned()).map_err(|e| {
        format!(
            "not a Redis URL ({:?}): expected redis://[:password@]host[:port][/db] or rediss://…",
            e.kind()
        )
    })
}

/// The operator's name for this instance; none given: a random one.
fn instance_id(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff));
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if s.len() > 64 || !s.chars().all(ok) {
        return Err(format!("`{s}` is not 1 to 64 letters, digits, `.`, `_` or `-`"));
    }
    Ok(s.to_owned())
}

fn lease(s: &str) -> Result<Duration, String> {
    let d = values::duration(s)?;
    if d < Duration::from_secs(1) {
        return Err("must be at least 1s (leases are renewed every third of it)".into());
    }
    Ok(d)
}
