//! Settings of the stream path: the shared buffer (its size, its chunks
//! and how long they stay), where a new player joins and what happens to
//! one that falls behind, keepalive, how long a start may take, reconnects,
//! the grace period, and the limits on streams and players.

use std::time::Duration;

use serde::Serialize;

use crate::values::{self, OrNone};

/// What to do with a player whose cursor fell behind the ring's oldest data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LagPolicy {
    /// Jump to the live edge and count a skip.
    Skip,
    /// End the player's response.
    Disconnect,
}

/// Where in the buffer a new player starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JoinAt {
    /// At the newest video keyframe at or before the join-behind point,
    /// preceded by PAT and PMT, so the player decodes from its first byte;
    /// at the plain point while no keyframe is known.
    Keyframe,
    /// At the first chunk within the join-behind window, whatever it holds.
    Chunk,
}

const LAG_POLICY: &[(&str, LagPolicy)] = &[("skip", LagPolicy::Skip), ("disconnect", LagPolicy::Disconnect)];
const JOIN_AT: &[(&str, JoinAt)] = &[("keyframe", JoinAt::Keyframe), ("chunk", JoinAt::Chunk)];

/// See the module docs.
#[derive(Debug, Clone, clap::Args)]
pub struct StreamSettings {
    /// Upper bound of the shared buffer per stream (at least two chunks).
    #[arg(id = "ring_size", long = "ring-size", env = "ACEMUX_RING_SIZE", default_value = "8MiB", value_parser = values::size)]
    pub ring_bytes: usize,
    /// Bytes per buffer chunk, a multiple of 188 (65424 = 348 packets).
    #[arg(id = "chunk_size", long = "chunk-size", env = "PROXY_BUFFER_CHUNK_SIZE", default_value = "65424", value_parser = chunk_size)]
    pub chunk_bytes: usize,
    /// Longest a partial chunk waits before players get it.
    #[arg(long, env = "ACEMUX_CHUNK_MAX_DELAY", default_value = "100ms", value_parser = values::positive_duration)]
    pub chunk_max_delay: Duration,
    /// Longest a chunk stays in the buffer, beyond the keyframe a player
    /// joining `--join-behind` behind live starts at.
    #[arg(long, env = "PROXY_BUFFER_TTL", default_value = "3", value_parser = values::positive_duration)]
    pub buffer_ttl: Duration,
    /// Keep each stream's buffer in kernel pages (a memfd) and send it to
    /// players and HLS viewers with sendfile(2), without a copy per player;
    /// `off` keeps it on the heap and writes it. Cheaper with huge pages
    /// for shared memory (`shmem_enabled` = `advise`; docs/benchmarks.md).
    #[arg(long, env = "ACEMUX_ZERO_COPY", default_value = "on", action = clap::ArgAction::Set, value_parser = values::on_off)]
    pub zero_copy: bool,
    /// How far behind live a new player starts.
    #[arg(long, env = "ACEMUX_JOIN_BEHIND", default_value = "2", value_parser = values::duration)]
    pub join_behind: Duration,
    /// `keyframe` or `chunk`: where a new player starts.
    #[arg(long, env = "ACEMUX_JOIN_AT", default_value = "keyframe", value_parser = values::choice(JOIN_AT))]
    pub join_at: JoinAt,
    /// `skip` or `disconnect` a player that falls behind the buffer.
    #[arg(long, env = "ACEMUX_LAG_POLICY", default_value = "skip", value_parser = values::choice(LAG_POLICY))]
    pub lag_policy: LagPolicy,
    /// Null-packet keepalive period while the engine sends nothing.
    #[arg(long, env = "ACEMUX_KEEPALIVE_INTERVAL", default_value = "1", value_parser = values::positive_duration)]
    pub keepalive_interval: Duration,
    /// Longest wait for the first byte after the engine accepted.
    #[arg(long, env = "PROXY_INIT_TIMEOUT", default_value = "30", value_parser = values::positive_duration)]
    pub init_timeout: Duration,
    /// The upstream stays this long after the last player left.
    #[arg(long, env = "PROXY_GRACE_PERIOD", default_value = "5", value_parser = values::duration)]
    pub grace_period: Duration,
    /// Upstream reconnects on one engine before failing over.
    #[arg(long, env = "PROXY_MAX_RETRIES", default_value = "3", value_parser = values::whole_number::<u32>)]
    pub max_retries: u32,
    /// Wait before the first reconnect, doubled each time (at most 10 s).
    #[arg(long, env = "PROXY_RETRY_WAIT_INTERVAL", default_value = "0.5", value_parser = values::duration)]
    pub retry_wait: Duration,
    /// Concurrent contents; `0` = no limit.
    #[arg(long, env = "ACEMUX_MAX_STREAMS", default_value = "0", value_parser = values::limit)]
    pub max_streams: OrNone<usize>,
    /// Concurrent players over all contents; `0` = no limit.
    #[arg(long, env = "ACEMUX_MAX_PLAYERS", default_value = "0", value_parser = values::limit)]
    pub max_players: OrNone<usize>,
}

impl StreamSettings {
    /// What only the two settings together can make wrong.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.ring_bytes < 2 * self.chunk_bytes {
            anyhow::bail!(
                "invalid setting {}: {} bytes must hold at least two chunks ({} bytes each)",
                values::setting_names::<Self>("ring_size"),
                self.ring_bytes,
                self.chunk_bytes
            );
        }
        Ok(())
    }
}

fn chunk_size(s: &str) -> Result<usize, String> {
    let n = values::size(s)?;
    if n == 0 || !n.is_multiple_of(acemux_ts::PACKET_SIZE) {
        let below = n / 188 * 188;
        return Err(format!(
            "{n} is not a multiple of 188 (the TS packet size); use {} or {}",
            below.max(188),
            below + 188
        ));
    }
    Ok(n)
}
