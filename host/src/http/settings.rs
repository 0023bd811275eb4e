//! Settings of the front door: where acemux listens, how many connections
//! it holds and how long a silent player may stay, who reads status and
//! admin endpoints, and the URL players are sent to.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use crate::values::{self, OrNone};

/// Who may read the status endpoints when an admin token is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusAccess {
    /// Anyone, but without the token player addresses, engine addresses
    /// and engine session identifiers are left out.
    Redacted,
    /// Only callers with the admin token (401/403 otherwise).
    Token,
    /// Everything to everyone.
    Open,
}

const STATUS_ACCESS: &[(&str, StatusAccess)] =
    &[("redacted", StatusAccess::Redacted), ("token", StatusAccess::Token), ("open", StatusAccess::Open)];

/// See the module docs.
#[derive(Debug, Clone, clap::Args)]
pub struct FrontDoorSettings {
    /// Address to serve players on.
    #[arg(long, env = "ACEMUX_LISTEN", default_value = "0.0.0.0:8000", value_parser = socket_address)]
    pub listen: SocketAddr,
    /// Kernel send buffer per player socket; `0` = kernel auto-tuning (up
    /// to 4 MiB on Linux, so a player that reads nothing pins megabytes);
    /// 256 KiB carries 8 Mbit/s across a 300 ms round trip.
    #[arg(long, env = "ACEMUX_SOCKET_SEND_BUFFER", default_value = "256KiB", value_parser = values::size_or_none)]
    pub socket_send_buffer: OrNone<usize>,
    /// Concurrent connections in all (503 beyond); `auto` = the open-file
    /// limit (raised to the hard limit at start) less a reserve for engine
    /// traffic.
    #[arg(long, env = "ACEMUX_MAX_CONNECTIONS", default_value = "auto", value_parser = auto_or_count)]
    pub max_connections: OrNone<usize>,
    /// Concurrent connections from one client address (503 beyond); `0` =
    /// no cap, e.g. behind a reverse proxy.
    #[arg(long, env = "ACEMUX_MAX_CONNECTIONS_PER_CLIENT", default_value = "64", value_parser = values::limit)]
    pub max_connections_per_client: OrNone<usize>,
    /// A player whose socket accepts nothing for this long is dropped.
    #[arg(long, env = "ACEMUX_CLIENT_TIMEOUT", default_value = "30", value_parser = values::positive_duration)]
    pub client_timeout: Duration,
    /// Longest a shutdown waits for engine stops and players.
    #[arg(long, env = "ACEMUX_SHUTDOWN_TIMEOUT", default_value = "10", value_parser = values::positive_duration)]
    pub shutdown_timeout: Duration,
    /// With an admin token set, who reads `/proxy/status`,
    /// `/proxy/sessions/…` and `/metrics`: `redacted` (anyone; player and
    /// engine addresses and engine session ids only with the token),
    /// `token` (only with the token) or `open`.
    #[arg(long, env = "ACEMUX_STATUS_ACCESS", default_value = "redacted", value_parser = values::choice(STATUS_ACCESS))]
    pub status_access: StatusAccess,
    /// Bearer token required by admin endpoints (DELETE a session)
    /// [default: none].
    #[arg(long, env = "ACEMUX_ADMIN_TOKEN", hide_env_values = true, value_parser = values::token)]
    pub admin_token: Option<String>,
    /// Public base URL of acemux for playlist and tuner URLs, e.g.
    /// `https://tv.example.org` [default: from the request].
    #[arg(long, env = "ACEMUX_PUBLIC_URL", default_value = "", hide_default_value = true, value_parser = values::empty_is_none(values::http_url))]
    pub public_url: OrNone<String>,
}

fn socket_address(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    s.parse::<SocketAddr>().map_err(|e| format!("`{s}` is not host:port ({e})"))
}

fn auto_or_count(s: &str) -> Result<OrNone<usize>, String> {
    if s.trim() == "auto" {
        Ok(OrNone(None))
    } else {
        values::at_least_one::<usize>(s).map(|n| OrNone(Some(n)))
    }
}
