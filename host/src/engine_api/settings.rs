//! Settings of the engine API acemux answers: how long a client's
//! playback outlives its last sign of life, and how many there may be.

use std::time::Duration;

use crate::values;

/// See the module docs.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct EngineApiSettings {
    /// An engine-API client (`format=json`) with no open `playback_url` and
    /// no `stat_url` poll for this long is gone: its playback ends, its URLs
    /// answer "unknown playback session id".
    #[arg(long, env = "ACEMUX_API_CLIENT_TIMEOUT", default_value = "30s", value_parser = values::positive_duration)]
    pub api_client_timeout: Duration,
    /// Engine-API playbacks held at once (503 beyond).
    #[arg(long, env = "ACEMUX_API_CLIENTS_MAX", default_value = "4096", value_parser = values::at_least_one::<usize>)]
    pub api_clients_max: usize,
}
