//! Settings: command-line flags, then environment, then an optional TOML
//! file, then defaults; validated once at start.
//!
//! Each setting is resolved in one place with its three names (flag,
//! environment variable, file key), so an error names all of them.

mod legacy;
mod parse;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use serde::Serialize;

pub use legacy::unused_settings;
pub use parse::{format_duration, format_size, parse_duration, parse_size};

/// Environment variables that carry acemux's own secrets: never handed to
/// a plugin, whatever its grants list.
pub const SECRET_VARIABLES: &[&str] = &["ACEMUX_ADMIN_TOKEN", "API_KEY"];

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

/// One engine from the settings (or from the orchestrator).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EngineSetting {
    pub host: String,
    pub port: u16,
    /// Free-form labels; `acestream.forwarded = "true"` marks a
    /// port-forwarded engine, which selection prefers.
    pub labels: std::collections::BTreeMap<String, String>,
    /// The engine's container, named in orchestrator events.
    pub container_id: Option<String>,
}

impl EngineSetting {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self { host: host.into(), port, ..Self::default() }
    }
}

/// A channel the operator lists for playlists and tuner lineups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Channel {
    pub name: String,
    pub key: crate::content::ContentKey,
    pub group: Option<String>,
    pub logo: Option<String>,
    pub tvg_id: Option<String>,
}

/// Validated settings of one acemux process.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub listen: SocketAddr,
    pub engines: Vec<EngineSetting>,
    pub ring_bytes: usize,
    pub chunk_bytes: usize,
    #[serde(with = "secs")]
    pub chunk_max_delay: Duration,
    #[serde(with = "secs")]
    pub buffer_ttl: Duration,
    #[serde(with = "secs")]
    pub join_behind: Duration,
    pub join_at: JoinAt,
    pub lag_policy: LagPolicy,
    #[serde(with = "secs")]
    pub keepalive_interval: Duration,
    #[serde(with = "secs")]
    pub init_timeout: Duration,
    #[serde(with = "secs")]
    pub connection_timeout: Duration,
    #[serde(with = "secs")]
    pub client_timeout: Duration,
    #[serde(with = "secs")]
    pub grace_period: Duration,
    pub max_retries: u32,
    #[serde(with = "secs")]
    pub retry_wait: Duration,
    pub max_streams_per_engine: usize,
    #[serde(with = "secs")]
    pub shutdown_timeout: Duration,
    /// SO_SNDBUF of player sockets; `None` leaves the kernel's auto-tuning.
    pub socket_send_buffer: Option<usize>,
    /// Concurrent connections in all; `None` = the open-file limit less a
    /// reserve for engine traffic (worked out at start).
    pub max_connections: Option<usize>,
    /// Concurrent connections from one client address; `None` = no cap.
    pub max_connections_per_client: Option<usize>,
    /// Who may read status endpoints when an admin token is set.
    pub status_access: StatusAccess,
    #[serde(with = "secs")]
    pub health_interval: Duration,
    /// Consecutive failed probes that make an engine unhealthy.
    pub health_failures: u32,
    /// Where engines are listed and stream events go; `None` = no orchestrator.
    pub orchestrator_url: Option<String>,
    #[serde(with = "secs")]
    pub orchestrator_refresh: Duration,
    /// Bearer token for the orchestrator.
    #[serde(skip)]
    pub api_key: Option<String>,
    /// Bearer token required by admin endpoints; `None` = open.
    #[serde(skip)]
    pub admin_token: Option<String>,
    /// Directory of `.wasm` plugins (watched); `None` = no plugins.
    pub plugins_dir: Option<PathBuf>,
    /// Compiled plugins kept here across loads and restarts; `None` = off.
    pub plugin_cache: Option<PathBuf>,
    /// The operator named the cache directory (a default that cannot be
    /// created only turns the cache off; a named one is an error).
    pub plugin_cache_given: bool,
    /// What compiles plugins to native code.
    pub plugin_compiler: PluginCompiler,
    /// Concurrent contents; a request for a new one beyond it gets 503.
    pub max_streams: Option<usize>,
    /// Concurrent players across all contents.
    pub max_players: Option<usize>,
    /// Channels for `/playlist.m3u` and the HDHomeRun lineup (file only).
    pub channels: Vec<Channel>,
    /// EPG (XMLTV) URL announced in the playlist header.
    pub epg_url: Option<String>,
    /// Base URL players reach acemux at (else taken from the request).
    pub public_url: Option<String>,
    /// HLS output: target segment length (a longer GOP makes longer segments).
    #[serde(with = "secs")]
    pub hls_segment: Duration,
    /// HLS output: segments listed in a live playlist.
    pub hls_window: usize,
    /// HLS output: a viewer that fetches no playlist for this long is gone.
    #[serde(with = "secs")]
    pub hls_viewer_timeout: Duration,
    /// Serve the dashboard at `/`.
    pub dashboard: bool,
    /// Cluster: the Redis holding the state instances share; `None` = this
    /// instance alone. (Skipped when shown: it may carry a password.)
    #[serde(skip)]
    pub redis_url: Option<String>,
    /// Cluster: how other instances and redirected players reach this one.
    pub advertise_url: Option<String>,
    /// Cluster: this instance's name in Redis, status and metrics.
    pub instance_id: String,
    /// Cluster: leases not renewed for this long lapse (a dead instance's
    /// contents can start elsewhere after it).
    #[serde(with = "secs")]
    pub cluster_lease: Duration,
    /// Cluster: what a request for a content another instance owns gets.
    pub cluster_forward: ClusterForward,
}

/// wasmtime's compiler for plugins: Cranelift optimises (slower to
/// compile, faster calls); Winch, its baseline compiler, compiles in one
/// pass (faster first loads of big components, slower calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginCompiler {
    Cranelift,
    Winch,
}

/// What a request for a content that another instance owns gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterForward {
    /// `307` to the same path and query on the owner.
    Redirect,
    /// acemux fetches it from the owner and passes it through.
    Proxy,
}

mod secs {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// Command line; every value may also come from the environment variable
/// named beside it, and from the TOML file given by `--config`.
#[derive(Debug, Default, Parser)]
#[command(
    name = "acemux",
    version = crate::VERSION,
    // `--grace-period -1` reaches the setting's parser, which names it.
    allow_negative_numbers = true,
    about = "AceStream proxy: one engine session per content, shared by every player"
)]
pub struct Cli {
    /// TOML settings file (keys are the long flag names with `_`).
    #[arg(long, env = "ACEMUX_CONFIG")]
    pub config: Option<PathBuf>,
    /// Also start a simulated engine in-process and use it as the only
    /// engine, so acemux works without AceStream.
    #[arg(long, env = "ACEMUX_DEMO")]
    pub demo: bool,
    /// Instead of serving: ask the acemux listening on `--listen` (or
    /// ACEMUX_LISTEN) for /healthz and exit 0 if it answers, 1 if not (a
    /// container health check that needs no shell or curl).
    #[arg(long)]
    pub healthcheck: bool,
    /// Address to listen on [default: 0.0.0.0:8000].
    #[arg(long, env = "ACEMUX_LISTEN")]
    pub listen: Option<String>,
    /// Engine `host:port`, repeatable [default: 127.0.0.1:6878].
    #[arg(long = "engine", env = "ACEMUX_ENGINES", value_delimiter = ',')]
    pub engines: Vec<String>,
    /// Shared buffer per stream, bytes (`8MiB` works) [default: 8MiB].
    #[arg(long, env = "ACEMUX_RING_SIZE")]
    pub ring_size: Option<String>,
    /// Bytes per buffer chunk, a multiple of 188 [default: 65424 = 348 packets].
    #[arg(long, env = "PROXY_BUFFER_CHUNK_SIZE")]
    pub chunk_size: Option<String>,
    /// Longest a partial chunk waits before players get it [default: 100ms].
    #[arg(long, env = "ACEMUX_CHUNK_MAX_DELAY")]
    pub chunk_max_delay: Option<String>,
    /// Longest a chunk stays in the buffer, beyond the keyframe a player
    /// joining `--join-behind` behind live starts at [default: 3s].
    #[arg(long, env = "PROXY_BUFFER_TTL")]
    pub buffer_ttl: Option<String>,
    /// How far behind live a new player starts [default: 2s].
    #[arg(long, env = "ACEMUX_JOIN_BEHIND")]
    pub join_behind: Option<String>,
    /// `keyframe` or `chunk`: where a new player starts [default: keyframe].
    #[arg(long, env = "ACEMUX_JOIN_AT")]
    pub join_at: Option<String>,
    /// `skip` or `disconnect` a player that falls behind the buffer [default: skip].
    #[arg(long, env = "ACEMUX_LAG_POLICY")]
    pub lag_policy: Option<String>,
    /// Null-packet keepalive period while the engine sends nothing [default: 1s].
    #[arg(long, env = "ACEMUX_KEEPALIVE_INTERVAL")]
    pub keepalive_interval: Option<String>,
    /// Longest wait for the first byte after the engine accepted [default: 30s].
    #[arg(long, env = "PROXY_INIT_TIMEOUT")]
    pub init_timeout: Option<String>,
    /// Engine request timeout, and longest upstream silence once live [default: 10s].
    #[arg(long, env = "PROXY_CONNECTION_TIMEOUT")]
    pub connection_timeout: Option<String>,
    /// A player whose socket accepts nothing for this long is dropped [default: 30s].
    #[arg(long, env = "ACEMUX_CLIENT_TIMEOUT")]
    pub client_timeout: Option<String>,
    /// The upstream stays this long after the last player left [default: 5s].
    #[arg(long, env = "PROXY_GRACE_PERIOD")]
    pub grace_period: Option<String>,
    /// Upstream reconnects before the stream fails [default: 3].
    #[arg(long, env = "PROXY_MAX_RETRIES")]
    pub max_retries: Option<String>,
    /// Wait before the first reconnect, doubled each time [default: 0.5s].
    #[arg(long, env = "PROXY_RETRY_WAIT_INTERVAL")]
    pub retry_wait: Option<String>,
    /// Streams one engine may carry [default: 3].
    #[arg(long, env = "MAX_STREAMS_PER_ENGINE")]
    pub max_streams_per_engine: Option<String>,
    /// Longest a shutdown waits for engine stops and players [default: 10s].
    #[arg(long, env = "ACEMUX_SHUTDOWN_TIMEOUT")]
    pub shutdown_timeout: Option<String>,
    /// Kernel send buffer per player socket; `0` = kernel auto-tuning (up
    /// to 4 MiB on Linux, so a player that reads nothing pins megabytes)
    /// [default: 256KiB, enough for 8 Mbit/s across a 300 ms round trip].
    #[arg(long, env = "ACEMUX_SOCKET_SEND_BUFFER")]
    pub socket_send_buffer: Option<String>,
    /// Concurrent connections in all (503 beyond); `auto` = the open-file
    /// limit (raised to the hard limit at start) less a reserve for engine
    /// traffic [default: auto].
    #[arg(long, env = "ACEMUX_MAX_CONNECTIONS")]
    pub max_connections: Option<String>,
    /// Concurrent connections from one client address (503 beyond); `0` =
    /// no cap, e.g. behind a reverse proxy [default: 64].
    #[arg(long, env = "ACEMUX_MAX_CONNECTIONS_PER_CLIENT")]
    pub max_connections_per_client: Option<String>,
    /// With an admin token set, who reads `/proxy/status` and
    /// `/proxy/sessions/…`: `redacted` (anyone; player and engine
    /// addresses and engine session ids only with the token), `token`
    /// (only with the token) or `open` [default: redacted].
    #[arg(long, env = "ACEMUX_STATUS_ACCESS")]
    pub status_access: Option<String>,
    /// Engine health probe period [default: 10s].
    #[arg(long, env = "ACEMUX_HEALTH_INTERVAL")]
    pub health_interval: Option<String>,
    /// Failed probes in a row that mark an engine unhealthy [default: 3].
    #[arg(long, env = "ACEMUX_HEALTH_FAILURES")]
    pub health_failures: Option<String>,
    /// Orchestrator base URL: engines from `GET /engines`, stream events
    /// to `POST /events/…` [default: none].
    #[arg(long, env = "ORCHESTRATOR_URL")]
    pub orchestrator_url: Option<String>,
    /// Period of the orchestrator's engine list refresh [default: 30s].
    #[arg(long, env = "ACEMUX_ORCHESTRATOR_REFRESH")]
    pub orchestrator_refresh: Option<String>,
    /// Bearer token sent to the orchestrator [default: none].
    #[arg(long, env = "API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Bearer token required by admin endpoints (DELETE a session) [default: none].
    #[arg(long, env = "ACEMUX_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Plugin directory (`*.wasm` + optional `<name>.toml`), hot-reloaded;
    /// `none` turns plugins off [default: plugins.d].
    #[arg(long = "plugins", env = "ACEMUX_PLUGINS_DIR")]
    pub plugins_dir: Option<String>,
    /// Directory where compiled plugins are kept, so known code loads at
    /// once; `none` turns it off. Not inside the plugin directory
    /// [default: $XDG_CACHE_HOME/acemux/plugins or ~/.cache/acemux/plugins].
    #[arg(long, env = "ACEMUX_PLUGIN_CACHE")]
    pub plugin_cache: Option<String>,
    /// `cranelift` (optimising: faster calls) or `winch` (baseline: faster
    /// first loads, slower calls) compiles plugins [default: cranelift].
    #[arg(long, env = "ACEMUX_PLUGIN_COMPILER")]
    pub plugin_compiler: Option<String>,
    /// Concurrent contents; `0` = no limit [default: 0].
    #[arg(long, env = "ACEMUX_MAX_STREAMS")]
    pub max_streams: Option<String>,
    /// Concurrent players over all contents; `0` = no limit [default: 0].
    #[arg(long, env = "ACEMUX_MAX_PLAYERS")]
    pub max_players: Option<String>,
    /// EPG (XMLTV) URL for the playlist's `url-tvg` [default: none].
    #[arg(long, env = "ACEMUX_EPG_URL")]
    pub epg_url: Option<String>,
    /// Public base URL of acemux for playlist and tuner URLs, e.g.
    /// `https://tv.example.org` [default: from the request].
    #[arg(long, env = "ACEMUX_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// HLS target segment length; segments are cut at the first keyframe
    /// after it, so a longer GOP makes longer segments [default: 4s].
    #[arg(long, env = "ACEMUX_HLS_SEGMENT")]
    pub hls_segment: Option<String>,
    /// Segments listed in an HLS live playlist (at least 3) [default: 6].
    #[arg(long, env = "ACEMUX_HLS_WINDOW")]
    pub hls_window: Option<String>,
    /// An HLS viewer that fetches no playlist for this long is gone (at
    /// least twice the segment length) [default: 30s].
    #[arg(long, env = "ACEMUX_HLS_VIEWER_TIMEOUT")]
    pub hls_viewer_timeout: Option<String>,
    /// `on` or `off`: the web dashboard at `/` [default: on].
    #[arg(long, env = "ACEMUX_DASHBOARD")]
    pub dashboard: Option<String>,
    /// Redis URL shared by the instances of a cluster, e.g.
    /// `redis://:password@redis:6379/0` or `rediss://…` for TLS; needs
    /// --advertise-url [default: none: this instance alone].
    #[arg(long, env = "ACEMUX_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Base URL other instances and redirected players reach this instance
    /// at, e.g. `http://10.0.0.5:6878` (cluster only) [default: none].
    #[arg(long, env = "ACEMUX_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
    /// This instance's name in the cluster (letters, digits, `.`, `_`, `-`)
    /// [default: random at each start].
    #[arg(long, env = "ACEMUX_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Cluster leases lapse this long after their instance stopped renewing
    /// them (at least 1s) [default: 5s].
    #[arg(long, env = "ACEMUX_CLUSTER_LEASE")]
    pub cluster_lease: Option<String>,
    /// `redirect` (307 to the owner) or `proxy` (pass the owner's answer
    /// through) for a content another instance streams [default: redirect].
    #[arg(long, env = "ACEMUX_CLUSTER_FORWARD")]
    pub cluster_forward: Option<String>,
}

/// One setting's names, for error messages.
struct Names {
    flag: &'static str,
    env: &'static str,
    key: &'static str,
}

impl std::fmt::Display for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "--{} / {} / file key `{}`", self.flag, self.env, self.key)
    }
}

const FILE_KEYS: &[&str] = &[
    "listen",
    "engines",
    "ring_size",
    "chunk_size",
    "chunk_max_delay",
    "buffer_ttl",
    "join_behind",
    "join_at",
    "lag_policy",
    "keepalive_interval",
    "init_timeout",
    "connection_timeout",
    "client_timeout",
    "grace_period",
    "max_retries",
    "retry_wait",
    "max_streams_per_engine",
    "shutdown_timeout",
    "socket_send_buffer",
    "max_connections",
    "max_connections_per_client",
    "status_access",
    "health_interval",
    "health_failures",
    "orchestrator_url",
    "orchestrator_refresh",
    "api_key",
    "admin_token",
    "plugins_dir",
    "plugin_cache",
    "plugin_compiler",
    "max_streams",
    "max_players",
    "channels",
    "epg_url",
    "public_url",
    "hls_segment",
    "hls_window",
    "hls_viewer_timeout",
    "dashboard",
    "redis_url",
    "advertise_url",
    "instance_id",
    "cluster_lease",
    "cluster_forward",
];

impl Settings {
    /// Resolves and validates the settings of `cli` (which already carries
    /// the environment) on top of its TOML file and the defaults.
    pub fn from_cli(cli: &Cli) -> anyhow::Result<Self> {
        let file = match &cli.config {
            Some(path) => load_file(path)?,
            None => toml::Table::new(),
        };
        let r = Resolver { file: &file };
        let ring_bytes = r.get(
            cli.ring_size.as_deref(),
            names("ring-size", "ACEMUX_RING_SIZE", "ring_size"),
            "8MiB",
            parse_size,
        )?;
        let chunk_bytes = r.get(
            cli.chunk_size.as_deref(),
            names("chunk-size", "PROXY_BUFFER_CHUNK_SIZE", "chunk_size"),
            "65424",
            parse_chunk_size,
        )?;
        if ring_bytes < 2 * chunk_bytes {
            bail!(
                "invalid setting {}: {ring_bytes} bytes must hold at least two chunks ({} bytes each)",
                names("ring-size", "ACEMUX_RING_SIZE", "ring_size"),
                chunk_bytes
            );
        }
        let settings = Settings {
            listen: r.get(
                cli.listen.as_deref(),
                names("listen", "ACEMUX_LISTEN", "listen"),
                "0.0.0.0:8000",
                |s| s.parse::<SocketAddr>().map_err(|e| format!("`{s}` is not host:port ({e})")),
            )?,
            engines: r.engines(&cli.engines)?,
            ring_bytes,
            chunk_bytes,
            chunk_max_delay: r.duration(
                cli.chunk_max_delay.as_deref(),
                names("chunk-max-delay", "ACEMUX_CHUNK_MAX_DELAY", "chunk_max_delay"),
                "100ms",
                true,
            )?,
            buffer_ttl: r.duration(
                cli.buffer_ttl.as_deref(),
                names("buffer-ttl", "PROXY_BUFFER_TTL", "buffer_ttl"),
                "3",
                true,
            )?,
            join_behind: r.duration(
                cli.join_behind.as_deref(),
                names("join-behind", "ACEMUX_JOIN_BEHIND", "join_behind"),
                "2",
                false,
            )?,
            join_at: r.choice(
                cli.join_at.as_deref(),
                names("join-at", "ACEMUX_JOIN_AT", "join_at"),
                &[("keyframe", JoinAt::Keyframe), ("chunk", JoinAt::Chunk)],
            )?,
            lag_policy: r.choice(
                cli.lag_policy.as_deref(),
                names("lag-policy", "ACEMUX_LAG_POLICY", "lag_policy"),
                &[("skip", LagPolicy::Skip), ("disconnect", LagPolicy::Disconnect)],
            )?,
            keepalive_interval: r.duration(
                cli.keepalive_interval.as_deref(),
                names("keepalive-interval", "ACEMUX_KEEPALIVE_INTERVAL", "keepalive_interval"),
                "1",
                true,
            )?,
            init_timeout: r.duration(
                cli.init_timeout.as_deref(),
                names("init-timeout", "PROXY_INIT_TIMEOUT", "init_timeout"),
                "30",
                true,
            )?,
            connection_timeout: r.duration(
                cli.connection_timeout.as_deref(),
                names("connection-timeout", "PROXY_CONNECTION_TIMEOUT", "connection_timeout"),
                "10",
                true,
            )?,
            client_timeout: r.duration(
                cli.client_timeout.as_deref(),
                names("client-timeout", "ACEMUX_CLIENT_TIMEOUT", "client_timeout"),
                "30",
                true,
            )?,
            grace_period: r.duration(
                cli.grace_period.as_deref(),
                names("grace-period", "PROXY_GRACE_PERIOD", "grace_period"),
                "5",
                false,
            )?,
            max_retries: r.get(
                cli.max_retries.as_deref(),
                names("max-retries", "PROXY_MAX_RETRIES", "max_retries"),
                "3",
                |s| s.parse::<u32>().map_err(|_| format!("`{s}` is not a whole number")),
            )?,
            retry_wait: r.duration(
                cli.retry_wait.as_deref(),
                names("retry-wait", "PROXY_RETRY_WAIT_INTERVAL", "retry_wait"),
                "0.5",
                false,
            )?,
            max_streams_per_engine: r.get(
                cli.max_streams_per_engine.as_deref(),
                names("max-streams-per-engine", "MAX_STREAMS_PER_ENGINE", "max_streams_per_engine"),
                "3",
                at_least_one::<usize>,
            )?,
            shutdown_timeout: r.duration(
                cli.shutdown_timeout.as_deref(),
                names("shutdown-timeout", "ACEMUX_SHUTDOWN_TIMEOUT", "shutdown_timeout"),
                "10",
                true,
            )?,
            socket_send_buffer: r
                .get(
                    cli.socket_send_buffer.as_deref(),
                    names("socket-send-buffer", "ACEMUX_SOCKET_SEND_BUFFER", "socket_send_buffer"),
                    "256KiB",
                    parse_size,
                )
                .map(|n| (n > 0).then_some(n))?,
            max_connections: r.get(
                cli.max_connections.as_deref(),
                names("max-connections", "ACEMUX_MAX_CONNECTIONS", "max_connections"),
                "auto",
                |s| if s == "auto" { Ok(None) } else { at_least_one::<usize>(s).map(Some) },
            )?,
            max_connections_per_client: r.get(
                cli.max_connections_per_client.as_deref(),
                names(
                    "max-connections-per-client",
                    "ACEMUX_MAX_CONNECTIONS_PER_CLIENT",
                    "max_connections_per_client",
                ),
                "64",
                limit,
            )?,
            status_access: r.choice(
                cli.status_access.as_deref(),
                names("status-access", "ACEMUX_STATUS_ACCESS", "status_access"),
                &[
                    ("redacted", StatusAccess::Redacted),
                    ("token", StatusAccess::Token),
                    ("open", StatusAccess::Open),
                ],
            )?,
            health_interval: r.duration(
                cli.health_interval.as_deref(),
                names("health-interval", "ACEMUX_HEALTH_INTERVAL", "health_interval"),
                "10",
                true,
            )?,
            health_failures: r.get(
                cli.health_failures.as_deref(),
                names("health-failures", "ACEMUX_HEALTH_FAILURES", "health_failures"),
                "3",
                at_least_one::<u32>,
            )?,
            orchestrator_url: r.optional(
                cli.orchestrator_url.as_deref(),
                names("orchestrator-url", "ORCHESTRATOR_URL", "orchestrator_url"),
                http_url,
            )?,
            orchestrator_refresh: r.duration(
                cli.orchestrator_refresh.as_deref(),
                names("orchestrator-refresh", "ACEMUX_ORCHESTRATOR_REFRESH", "orchestrator_refresh"),
                "30",
                true,
            )?,
            api_key: r.secret(cli.api_key.as_deref(), names("api-key", "API_KEY", "api_key"))?,
            admin_token: r.secret(
                cli.admin_token.as_deref(),
                names("admin-token", "ACEMUX_ADMIN_TOKEN", "admin_token"),
            )?,
            plugins_dir: r.get(
                cli.plugins_dir.as_deref(),
                names("plugins", "ACEMUX_PLUGINS_DIR", "plugins_dir"),
                "plugins.d",
                |s| Ok(if s == "none" || s.is_empty() { None } else { Some(PathBuf::from(s)) }),
            )?,
            plugin_cache: r.get(
                cli.plugin_cache.as_deref(),
                names("plugin-cache", "ACEMUX_PLUGIN_CACHE", "plugin_cache"),
                &default_plugin_cache(),
                |s| Ok(if s == "none" || s.is_empty() { None } else { Some(PathBuf::from(s)) }),
            )?,
            plugin_cache_given: cli.plugin_cache.is_some() || file.contains_key("plugin_cache"),
            plugin_compiler: r.choice(
                cli.plugin_compiler.as_deref(),
                names("plugin-compiler", "ACEMUX_PLUGIN_COMPILER", "plugin_compiler"),
                &[("cranelift", PluginCompiler::Cranelift), ("winch", PluginCompiler::Winch)],
            )?,
            max_streams: r.get(
                cli.max_streams.as_deref(),
                names("max-streams", "ACEMUX_MAX_STREAMS", "max_streams"),
                "0",
                limit,
            )?,
            max_players: r.get(
                cli.max_players.as_deref(),
                names("max-players", "ACEMUX_MAX_PLAYERS", "max_players"),
                "0",
                limit,
            )?,
            channels: channels(&file)?,
            epg_url: r.optional(
                cli.epg_url.as_deref(),
                names("epg-url", "ACEMUX_EPG_URL", "epg_url"),
                http_url,
            )?,
            public_url: r.optional(
                cli.public_url.as_deref(),
                names("public-url", "ACEMUX_PUBLIC_URL", "public_url"),
                http_url,
            )?,
            hls_segment: r.get(
                cli.hls_segment.as_deref(),
                names("hls-segment", "ACEMUX_HLS_SEGMENT", "hls_segment"),
                "4s",
                |s| {
                    let d = parse_duration(s)?;
                    if d < Duration::from_secs(1) || d > Duration::from_secs(60) {
                        return Err(format!("`{s}` must be between 1s and 60s"));
                    }
                    Ok(d)
                },
            )?,
            hls_window: r.get(
                cli.hls_window.as_deref(),
                names("hls-window", "ACEMUX_HLS_WINDOW", "hls_window"),
                "6",
                |s| match s.parse::<usize>() {
                    Ok(n) if (3..=100).contains(&n) => Ok(n),
                    _ => Err(format!("`{s}` is not a whole number from 3 to 100")),
                },
            )?,
            hls_viewer_timeout: r.duration(
                cli.hls_viewer_timeout.as_deref(),
                names("hls-viewer-timeout", "ACEMUX_HLS_VIEWER_TIMEOUT", "hls_viewer_timeout"),
                "30",
                true,
            )?,
            dashboard: r.choice(
                cli.dashboard.as_deref(),
                names("dashboard", "ACEMUX_DASHBOARD", "dashboard"),
                &[("on", true), ("off", false), ("true", true), ("false", false)],
            )?,
            redis_url: r.optional(
                cli.redis_url.as_deref(),
                names("redis-url", "ACEMUX_REDIS_URL", "redis_url"),
                redis_url,
            )?,
            advertise_url: r.optional(
                cli.advertise_url.as_deref(),
                names("advertise-url", "ACEMUX_ADVERTISE_URL", "advertise_url"),
                http_url,
            )?,
            instance_id: r
                .optional(
                    cli.instance_id.as_deref(),
                    names("instance-id", "ACEMUX_INSTANCE_ID", "instance_id"),
                    instance_id,
                )?
                .unwrap_or_else(crate::cluster::random_instance_id),
            cluster_lease: r.get(
                cli.cluster_lease.as_deref(),
                names("cluster-lease", "ACEMUX_CLUSTER_LEASE", "cluster_lease"),
                "5",
                |s| {
                    let d = parse_duration(s)?;
                    if d < Duration::from_secs(1) {
                        return Err("must be at least 1s (leases are renewed every third of it)".into());
                    }
                    Ok(d)
                },
            )?,
            cluster_forward: r.choice(
                cli.cluster_forward.as_deref(),
                names("cluster-forward", "ACEMUX_CLUSTER_FORWARD", "cluster_forward"),
                &[("redirect", ClusterForward::Redirect), ("proxy", ClusterForward::Proxy)],
            )?,
        };
        if let (Some(cache), Some(plugins)) = (&settings.plugin_cache, &settings.plugins_dir)
            && absolute(cache).starts_with(absolute(plugins))
        {
            bail!(
                "invalid setting {}: {} is inside the plugin directory {}; compiled plugins are native code \
                 that is loaded unchecked, so they must not sit where plugin files are dropped",
                names("plugin-cache", "ACEMUX_PLUGIN_CACHE", "plugin_cache"),
                cache.display(),
                plugins.display()
            );
        }
        if settings.redis_url.is_some() && settings.advertise_url.is_none() {
            bail!(
                "invalid setting {}: a cluster (--redis-url) needs the URL other instances reach this one at",
                names("advertise-url", "ACEMUX_ADVERTISE_URL", "advertise_url"),
            );
        }
        if settings.hls_viewer_timeout < 2 * settings.hls_segment {
            bail!(
                "invalid setting {}: {} must be at least twice the HLS segment length ({}), \
                 or viewers are dropped between two playlist fetches",
                names("hls-viewer-timeout", "ACEMUX_HLS_VIEWER_TIMEOUT", "hls_viewer_timeout"),
                format_duration(settings.hls_viewer_timeout),
                format_duration(settings.hls_segment),
            );
        }
        let mut settings = settings;
        if settings.orchestrator_url.is_some() && cli.engines.is_empty() && !file.contains_key("engines") {
            // With an orchestrator, engines come from it unless listed.
            settings.engines.clear();
        }
        Ok(settings)
    }

    /// Settings for tests and embedding: the defaults with the given engines.
    pub fn with_engines(engines: &[String]) -> anyhow::Result<Self> {
        Self::from_cli(&Cli { engines: engines.to_vec(), ..Cli::default() })
    }
}

fn names(flag: &'static str, env: &'static str, key: &'static str) -> Names {
    Names { flag, env, key }
}

fn load_file(path: &std::path::Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!("cannot read settings file {} (--config / ACEMUX_CONFIG)", path.display())
    })?;
    let table: toml::Table =
        text.parse().with_context(|| format!("settings file {} is not valid TOML", path.display()))?;
    if let Some(unknown) = table.keys().find(|k| !FILE_KEYS.contains(&k.as_str())) {
        bail!(
            "settings file {}: unknown key `{unknown}` (known keys: {})",
            path.display(),
            FILE_KEYS.join(", ")
        );
    }
    Ok(table)
}

/// Picks each setting from the command line/environment, the file, or the
/// default, and turns a parse failure into an error naming the setting.
struct Resolver<'a> {
    file: &'a toml::Table,
}

impl Resolver<'_> {
    fn get<T>(
        &self,
        cli: Option<&str>,
        names: Names,
        default: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> anyhow::Result<T> {
        let from_file = match self.file.get(names.key) {
            None => None,
            Some(toml::Value::String(s)) => Some(s.clone()),
            Some(toml::Value::Integer(i)) => Some(i.to_string()),
            Some(toml::Value::Float(f)) => Some(f.to_string()),
            Some(other) => bail!("invalid setting {names}: `{other}` is not a string or number"),
        };
        let raw = cli.map(str::to_owned).or(from_file).unwrap_or_else(|| default.to_owned());
        parse(raw.trim()).map_err(|why| anyhow::anyhow!("invalid setting {names}: {why}"))
    }

    /// One of a few named values; the first is the default.
    fn choice<T: Copy>(&self, cli: Option<&str>, names: Names, choices: &[(&str, T)]) -> anyhow::Result<T> {
        self.get(cli, names, choices[0].0, |given| {
            choices.iter().find(|(name, _)| *name == given).map(|(_, value)| *value).ok_or_else(|| {
                let names: Vec<String> = choices.iter().map(|(name, _)| format!("`{name}`")).collect();
                format!("`{given}` is not one of {}", names.join(", "))
            })
        })
    }

    /// A setting without a default: unset (or empty) stays `None`.
    fn optional<T>(
        &self,
        cli: Option<&str>,
        names: Names,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> anyhow::Result<Option<T>> {
        let given = cli.is_some_and(|v| !v.trim().is_empty())
            || self.file.get(names.key).is_some_and(|v| v.as_str() != Some(""));
        if !given {
            return Ok(None);
        }
        self.get(cli.filter(|v| !v.trim().is_empty()), names, "", parse).map(Some)
    }

    /// A secret: unset stays `None`; set but empty is refused (an empty
    /// `ACEMUX_ADMIN_TOKEN=` must not silently leave admin endpoints open).
    fn secret(&self, cli: Option<&str>, names: Names) -> anyhow::Result<Option<String>> {
        let from_file = self.file.get(names.key);
        if cli.is_none() && from_file.is_none() {
            return Ok(None);
        }
        self.get(cli, names, "", |s| {
            if s.is_empty() {
                return Err("set but empty; give a token, or unset it".into());
            }
            token(s)
        })
        .map(Some)
    }

    fn duration(
        &self,
        cli: Option<&str>,
        names: Names,
        default: &str,
        positive: bool,
    ) -> anyhow::Result<Duration> {
        self.get(cli, names, default, |s| {
            let d = parse_duration(s)?;
            if positive && d.is_zero() {
                return Err("must be more than zero".into());
            }
            Ok(d)
        })
    }

    /// Engines from `--engine`/`ACEMUX_ENGINES`, else the file's `engines`
    /// (a list of `"host:port"` strings or of tables with `address`,
    /// optional `labels` and `container_id`), else the default.
    fn engines(&self, cli: &[String]) -> anyhow::Result<Vec<EngineSetting>> {
        let n = names("engine", "ACEMUX_ENGINES", "engines");
        let invalid = |why: String| anyhow::anyhow!("invalid setting {n}: {why}");
        if !cli.is_empty() {
            return cli.iter().map(|e| parse_engine(e.trim()).map_err(invalid)).collect();
        }
        let Some(value) = self.file.get(n.key) else {
            return Ok(vec![EngineSetting::new("127.0.0.1", 6878)]);
        };
        let list = value.as_array().ok_or_else(|| invalid("expected a list of engines".into()))?;
        list.iter().map(|entry| file_engine(entry).map_err(invalid)).collect()
    }
}

fn file_engine(entry: &toml::Value) -> Result<EngineSetting, String> {
    match entry {
        toml::Value::String(s) => parse_engine(s.trim()),
        toml::Value::Table(t) => {
            if let Some(k) = t.keys().find(|k| !["address", "labels", "container_id"].contains(&k.as_str())) {
                return Err(format!("unknown engine key `{k}` (known: address, labels, container_id)"));
            }
            let address =
                t.get("address").and_then(|a| a.as_str()).ok_or("an engine table needs `address`")?;
            let mut engine = parse_engine(address.trim())?;
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

fn parse_engine(s: &str) -> Result<EngineSetting, String> {
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

/// An http(s) URL without a trailing slash.
fn http_url(s: &str) -> Result<String, String> {
    let url = s.trim_end_matches('/');
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url.to_owned())
    } else {
        Err(format!("`{s}` is not an http:// or https:// URL"))
    }
}

/// The file's `[[channels]]`: `name`, one of `id`/`content_id`/`infohash`,
/// optional `group`, `logo`, `tvg_id`.
fn channels(file: &toml::Table) -> anyhow::Result<Vec<Channel>> {
    let Some(list) = file.get("channels") else { return Ok(Vec::new()) };
    let list = list.as_array().context("invalid setting `channels`: expected [[channels]] tables")?;
    list.iter()
        .enumerate()
        .map(|(i, c)| {
            let bad = |why: String| anyhow::anyhow!("invalid setting `channels` entry {}: {why}", i + 1);
            let t = c.as_table().ok_or_else(|| bad("not a table".into()))?;
            let text = |k: &str| t.get(k).and_then(toml::Value::as_str).map(str::to_owned);
            if let Some(k) = t.keys().find(|k| {
                !["name", "id", "content_id", "infohash", "group", "logo", "tvg_id"].contains(&k.as_str())
            }) {
                return Err(bad(format!("unknown key `{k}`")));
            }
            let name = text("name").ok_or_else(|| bad("`name` is required".into()))?;
            let query: Vec<(String, String)> = ["id", "content_id", "infohash"]
                .iter()
                .filter_map(|k| text(k).map(|v| ((*k).to_owned(), v)))
                .collect();
            let key =
                crate::content::ContentKey::from_query(&query).map_err(|e| bad(format!("{name}: {e}")))?;
            Ok(Channel { name, key, group: text("group"), logo: text("logo"), tvg_id: text("tvg_id") })
        })
        .collect()
}

/// A limit: a whole number, `0` meaning none.
fn limit(s: &str) -> Result<Option<usize>, String> {
    let n: usize = s.parse().map_err(|_| format!("`{s}` is not a whole number"))?;
    Ok((n > 0).then_some(n))
}

/// A whole number of at least 1.
fn at_least_one<T: std::str::FromStr + PartialOrd + From<u8>>(s: &str) -> Result<T, String> {
    match s.parse::<T>() {
        Ok(n) if n >= T::from(1) => Ok(n),
        Ok(_) => Err("must be at least 1".into()),
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

/// `$XDG_CACHE_HOME/acemux/plugins`, else `~/.cache/acemux/plugins`, else
/// `none`.
fn default_plugin_cache() -> String {
    let base =
        std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()).map(PathBuf::from).or_else(|| {
            std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".cache"))
        });
    base.map_or_else(|| "none".to_owned(), |b| b.join("acemux").join("plugins").display().to_string())
}

/// `path` made absolute against the working directory (not resolved: it
/// may not exist yet).
fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// A Redis URL as redis-rs accepts it (checked, not connected; the error
/// never repeats the URL, which may hold a password).
fn redis_url(s: &str) -> Result<String, String> {
    redis::Client::open(s).map(|_| s.to_owned()).map_err(|e| {
        format!(
            "not a Redis URL ({:?}): expected redis://[:password@]host[:port][/db] or rediss://…",
            e.kind()
        )
    })
}

fn instance_id(s: &str) -> Result<String, String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if s.is_empty() || s.len() > 64 || !s.chars().all(ok) {
        return Err(format!("`{s}` is not 1 to 64 letters, digits, `.`, `_` or `-`"));
    }
    Ok(s.to_owned())
}

fn token(s: &str) -> Result<String, String> {
    if s.chars().any(char::is_whitespace) {
        return Err("a token must not contain white space".into());
    }
    Ok(s.to_owned())
}

fn parse_chunk_size(s: &str) -> Result<usize, String> {
    let n = parse_size(s)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("acemux").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_are_valid() {
        let s = Settings::from_cli(&Cli::default()).unwrap();
        assert_eq!(s.listen, "0.0.0.0:8000".parse().unwrap());
        assert_eq!(s.engines, vec![EngineSetting::new("127.0.0.1", 6878)]);
        assert_eq!(s.orchestrator_url, None);
        assert_eq!(s.admin_token, None);
        assert_eq!(s.chunk_bytes % 188, 0);
        assert_eq!(s.grace_period, Duration::from_secs(5));
        assert_eq!(s.lag_policy, LagPolicy::Skip);
        assert_eq!(s.join_at, JoinAt::Keyframe);
    }

    #[test]
    fn join_at_names_its_setting_when_wrong() {
        let s = Settings::from_cli(&cli(&["--join-at", "chunk"])).unwrap();
        assert_eq!(s.join_at, JoinAt::Chunk);
        let err = Settings::from_cli(&cli(&["--join-at", "idr"])).unwrap_err().to_string();
        assert!(err.contains("--join-at") && err.contains("ACEMUX_JOIN_AT"), "{err}");
    }

    #[test]
    fn plugin_compiler_is_cranelift_unless_named_and_names_its_setting_when_wrong() {
        assert_eq!(Settings::from_cli(&Cli::default()).unwrap().plugin_compiler, PluginCompiler::Cranelift);
        let s = Settings::from_cli(&cli(&["--plugin-compiler", "winch"])).unwrap();
        assert_eq!(s.plugin_compiler, PluginCompiler::Winch);
        let err = Settings::from_cli(&cli(&["--plugin-compiler", "llvm"])).unwrap_err().to_string();
        assert!(err.contains("--plugin-compiler") && err.contains("ACEMUX_PLUGIN_COMPILER"), "{err}");
        assert!(err.contains("`cranelift`, `winch`"), "{err}");
    }

    #[test]
    fn seed_chunk_size_is_refused_by_name() {
        let err = Settings::from_cli(&cli(&["--chunk-size", "1061472"])).unwrap_err().to_string();
        assert!(err.contains("PROXY_BUFFER_CHUNK_SIZE"), "{err}");
        assert!(err.contains("not a multiple of 188"), "{err}");
        assert!(err.contains("1061448") && err.contains("1061636"), "{err}");
    }

    #[test]
    fn cli_beats_file_beats_default() {
        let dir = std::env::temp_dir().join(format!("acemux-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.toml");
        std::fs::write(&path, "grace_period = 7\nretry_wait = \"250ms\"\nengines = [\"e1:1\", \"e2:2\"]\n")
            .unwrap();
        let p = path.to_str().unwrap();
        let s = Settings::from_cli(&cli(&["--config", p, "--grace-period", "1.5"])).unwrap();
        assert_eq!(s.grace_period, Duration::from_millis(1500));
        assert_eq!(s.retry_wait, Duration::from_millis(250));
        assert_eq!(s.engines.len(), 2);
        std::fs::write(
            &path,
            "orchestrator_url = \"http://orch:8000/\"\n[[engines]]\naddress = \"e1:6878\"\ncontainer_id = \"c1\"\nlabels = { \"acestream.forwarded\" = \"true\", region = \"eu\" }\n",
        )
        .unwrap();
        let s = Settings::from_cli(&cli(&["--config", p])).unwrap();
        assert_eq!(s.orchestrator_url.as_deref(), Some("http://orch:8000"));
        assert_eq!(s.engines[0].container_id.as_deref(), Some("c1"));
        assert_eq!(s.engines[0].labels["acestream.forwarded"], "true");
        std::fs::write(&path, "[[engines]]\naddres = \"e1:1\"\n").unwrap();
        let err = Settings::from_cli(&cli(&["--config", p])).unwrap_err().to_string();
        assert!(err.contains("unknown engine key `addres`"), "{err}");
        std::fs::write(
            &path,
            "[[channels]]\nname = \"A\"\nid = \"0123456789abcdef0123456789abcdef01234567\"\ngroup = \"G\"\n",
        )
        .unwrap();
        let s = Settings::from_cli(&cli(&["--config", p])).unwrap();
        assert_eq!(s.channels[0].name, "A");
        assert_eq!(s.channels[0].group.as_deref(), Some("G"));
        std::fs::write(&path, "[[channels]]\nname = \"A\"\nid = \"abc\"\n").unwrap();
        let err = Settings::from_cli(&cli(&["--config", p])).unwrap_err().to_string();
        assert!(err.contains("`channels` entry 1") && err.contains("40 hexadecimal"), "{err}");
        std::fs::write(&path, "grace_priod = 7\n").unwrap();
        let err = Settings::from_cli(&cli(&["--config", p])).unwrap_err().to_string();
        assert!(err.contains("unknown key `grace_priod`"), "{err}");
    }

    #[test]
    fn bad_values_name_the_setting() {
        for (args, needle) in [
            (vec!["--grace-period", "soon"], "PROXY_GRACE_PERIOD"),
            (vec!["--lag-policy", "wait"], "ACEMUX_LAG_POLICY"),
            (vec!["--engine", "nohost"], "ACEMUX_ENGINES"),
            (vec!["--listen", "8000"], "ACEMUX_LISTEN"),
            (vec!["--ring-size", "100000", "--chunk-size", "65424"], "ACEMUX_RING_SIZE"),
            (vec!["--max-streams-per-engine", "0"], "MAX_STREAMS_PER_ENGINE"),
            (vec!["--client-timeout", "0"], "ACEMUX_CLIENT_TIMEOUT"),
            (vec!["--orchestrator-url", "orch:8000"], "ORCHESTRATOR_URL"),
            (vec!["--health-failures", "0"], "ACEMUX_HEALTH_FAILURES"),
        ] {
            let err = Settings::from_cli(&cli(&args)).unwrap_err().to_string();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
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
