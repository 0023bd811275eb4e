//! Settings of failover between a channel's ids: how long a failed id is
//! left before it is tried again, and when too few peers make a channel
//! move on.

use std::time::Duration;

use crate::values::{self, OrNone};

/// See the module docs.
#[derive(Debug, Clone, clap::Args)]
pub struct AlternatesSettings {
    /// How long a channel leaves an id that failed before trying it again,
    /// doubled with each failure in a row (up to `--channel-retry-max`).
    #[arg(long, env = "ACEMUX_CHANNEL_RETRY_AFTER", default_value = "10", value_parser = values::positive_duration)]
    pub channel_retry_after: Duration,
    /// Longest a channel leaves a failed id.
    #[arg(long, env = "ACEMUX_CHANNEL_RETRY_MAX", default_value = "300", value_parser = values::positive_duration)]
    pub channel_retry_max: Duration,
    /// A channel moves to its next id when the engine reports fewer peers
    /// than this for `--channel-low-peers-for`; `0` = never for peers.
    #[arg(long, env = "ACEMUX_CHANNEL_MIN_PEERS", default_value = "0", value_parser = values::limit)]
    pub channel_min_peers: OrNone<usize>,
    /// How long a channel's peers stay under `--channel-min-peers` before
    /// it moves on.
    #[arg(long, env = "ACEMUX_CHANNEL_LOW_PEERS_FOR", default_value = "60", value_parser = values::positive_duration)]
    pub channel_low_peers_for: Duration,
}

impl AlternatesSettings {
    /// The wait after `failures` failures in a row (1, 2, …).
    pub fn backoff(&self, failures: u32) -> Duration {
        self.channel_retry_after
            .saturating_mul(1 << failures.saturating_sub(1).min(16))
            .min(self.channel_retry_max)
    }
}
