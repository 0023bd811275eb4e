//! acemux: an AceStream proxy that opens one engine session per content
//! and fans it out to every player through a shared ring buffer.
//!
//! Follow one byte from engine to player by module:
//! [`engine::client`] → [`stream::upstream`] (with [`acemux_ts::Aligner`]) →
//! [`stream::ring`] → [`stream::player`] → [`http`]. Control sits beside
//! that path: [`stream::registry`], [`stream::session`], [`engine::pool`],
//! [`engine::select`].

pub mod cluster;
pub mod config;
pub mod content;
pub mod descriptors;
pub mod engine;
pub mod events;
pub mod hls;
pub mod http;
pub mod memory;
pub mod metrics;
pub mod orchestrator;
mod periodic;
pub mod plugins;
pub mod stream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::info;

use config::Settings;
use engine::{BuiltinSelector, EngineClient, EnginePool};
use events::EventBus;
use metrics::Metrics;
use stream::{Registry, StreamContext};

/// `acemux --version`: the release and the plugin contract it speaks.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (plugins: WIT package acemux:plugin@",
    plugins::contract::package_version!(),
    ")"
);

/// Binds the listening socket. Accepted sockets inherit its send buffer
/// size, so a player's kernel-side backlog is bounded when the operator
/// sets one.
fn listen(settings: &Settings) -> std::io::Result<TcpListener> {
    let socket = if settings.listen.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    if let Some(size) = settings.socket_send_buffer {
        socket.set_send_buffer_size(u32::try_from(size).unwrap_or(u32::MAX))?;
    }
    socket.bind(settings.listen)?;
    socket.listen(1024)
}

/// Loads the plugin directory (creating it if missing), then keeps it
/// watched and feeds stream events to event plugins.
async fn start_plugins(
    dir: &std::path::Path,
    settings: &Settings,
    events: &mut EventBus,
    background: &mut JoinSet<()>,
    stop: &CancellationToken,
) -> anyhow::Result<Arc<plugins::PluginHost>> {
    let owned = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::create_dir_all(&owned)).await?.with_context(|| {
        format!("cannot create the plugin directory {} (--plugins / ACEMUX_PLUGINS_DIR)", dir.display())
    })?;
    let cache = match settings.plugin_cache.clone() {
        Some(cache) => {
            match tokio::task::spawn_blocking(move || plugins::cache::CompileCache::open(&cache)).await? {
                Ok(opened) => Some(opened),
                Err(e) if settings.plugin_cache_given => {
                    return Err(e.context(
                        "invalid setting --plugin-cache / ACEMUX_PLUGIN_CACHE (`none` turns it off)",
                    ));
                }
                Err(e) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "plugin compile cache off (set --plugin-cache / ACEMUX_PLUGIN_CACHE to a writable directory)"
                    );
                    None
                }
            }
        }
        None => None,
    };
    let host = plugins::PluginHost::new(dir.to_path_buf(), cache, settings.plugin_compiler)?;
    let watch = plugins::watch::DirWatch::new(&host);
    host.scan().await;
    let loaded = host.current().plugins.len();
    info!(dir = %dir.display(), loaded, failed = host.failures().len(), "plugins loaded");
    background.spawn(watch.run(host.clone(), stop.clone()));
    let queue = events.subscribe("plugins", PLUGIN_EVENT_QUEUE);
    background.spawn(plugins::events::forward(host.clone(), queue, stop.clone()));
    Ok(host)
}

/// Events waiting to be handed to event plugins' own queues.
const PLUGIN_EVENT_QUEUE: usize = 4096;

/// Orchestrator event queue length; events beyond it are dropped and counted.
const ORCHESTRATOR_QUEUE: usize = 1024;

/// A running acemux: listening, serving, until [`Acemux::shutdown`].
pub struct Acemux {
    addr: SocketAddr,
    registry: Arc<Registry>,
    hls: Arc<hls::Hls>,
    stop_accepting: CancellationToken,
    server: JoinHandle<()>,
    /// Health probes, engine discovery, event delivery.
    background: JoinSet<()>,
    stop_background: CancellationToken,
    settings: Arc<Settings>,
    plugins: Option<Arc<plugins::PluginHost>>,
}

impl Acemux {
    /// Binds the listen address and starts serving.
    pub async fn start(settings: Settings) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        let descriptors = descriptors::raise_limit();
        let connection_cap = settings.max_connections.unwrap_or_else(|| descriptors.default_connection_cap());
        let connections = http::ConnectionLimit::new(connection_cap, settings.max_connections_per_client);
        let listener = listen(&settings)
            .with_context(|| format!("cannot listen on {} (--listen / ACEMUX_LISTEN)", settings.listen))?;
        let addr = listener.local_addr()?;
        let pool = Arc::new(EnginePool::new(&settings.engines, settings.max_streams_per_engine));
        let client = EngineClient::new(settings.connection_timeout)?;
        let metrics = Arc::new(Metrics::default());
        let mut events = EventBus::new();
        let mut background = JoinSet::new();
        let stop_background = CancellationToken::new();

        background.spawn(memory::trim_periodically(stop_background.clone()));
        background.spawn(engine::health::run(
            pool.clone(),
            client.clone(),
            settings.health_interval,
            settings.health_failures,
            stop_background.clone(),
        ));
        if let Some(base) = settings.orchestrator_url.clone() {
            let http = reqwest::Client::builder().connect_timeout(settings.connection_timeout).build()?;
            let queue = events.subscribe("orchestrator", ORCHESTRATOR_QUEUE);
            let reporter = orchestrator::reporter::Reporter::new(
                http.clone(),
                base.clone(),
                settings.api_key.clone(),
                settings.connection_timeout,
                metrics.clone(),
            );
            background.spawn(reporter.run(queue, stop_background.clone()));
            background.spawn(orchestrator::discovery::run(
                http,
                base,
                settings.api_key.clone(),
                settings.connection_timeout,
                settings.orchestrator_refresh,
                pool.clone(),
                stop_background.clone(),
            ));
        }

        let plugins = match &settings.plugins_dir {
            Some(dir) => {
                Some(start_plugins(dir, &settings, &mut events, &mut background, &stop_background).await?)
            }
            None => None,
        };
        let selector: Arc<dyn engine::EngineSelector> = match &plugins {
            Some(host) => Arc::new(plugins::PluginSelector { host: host.clone() }),
            None => Arc::new(BuiltinSelector),
        };
        let cluster = match (&settings.redis_url, &settings.advertise_url) {
            (Some(redis_url), Some(advertise_url)) => {
                Some(cluster::Cluster::new(cluster::ClusterSettings {
                    redis_url: redis_url.clone(),
                    advertise_url: advertise_url.clone(),
                    instance_id: settings.instance_id.clone(),
                    lease: settings.cluster_lease,
                })?)
            }
            _ => None,
        };
        let registry = Registry::new(StreamContext {
            settings: settings.clone(),
            pool: pool.clone(),
            client: client.clone(),
            selector,
            events: Arc::new(events),
            metrics,
            plugins: plugins.clone(),
            cluster: cluster.as_ref().map(|(c, _)| c.clone()),
        });
        let cluster = match cluster {
            Some((cluster, keeper)) => {
                let sessions = Arc::downgrade(&registry);
                let running = move || sessions.upgrade().map(|r| r.keys()).unwrap_or_default();
                background.spawn(keeper.run(pool, client, running, stop_background.clone()));
                info!(
                    instance = %cluster.instance_id(),
                    advertise_url = ?settings.advertise_url,
                    lease = ?settings.cluster_lease,
                    "cluster on: content and engine slot leases in Redis"
                );
                Some(cluster)
            }
            None => None,
        };
        let hls = hls::Hls::new(registry.clone(), &settings);
        let stop_accepting = CancellationToken::new();
        let state = http::AppState {
            stopping: stop_accepting.clone(),
            registry: registry.clone(),
            hls: hls.clone(),
            settings: settings.clone(),
            started_at: Instant::now(),
            plugins: plugins.clone(),
            connections: connections.clone(),
            cluster,
        };
        let server = tokio::spawn(http::serve(
            listener,
            http::router(state),
            connections,
            settings.client_timeout,
            stop_accepting.clone(),
            settings.shutdown_timeout,
        ));
        info!(
            %addr,
            engines = settings.engines.len(),
            orchestrator = settings.orchestrator_url.is_some(),
            max_connections = connection_cap,
            max_connections_per_client = ?settings.max_connections_per_client,
            "acemux listening"
        );
        Ok(Self {
            addr,
            registry,
            hls,
            stop_accepting,
            server,
            background,
            stop_background,
            settings,
            plugins,
        })
    }

    /// The plugin host, when plugins are on.
    pub fn plugins(&self) -> Option<&Arc<plugins::PluginHost>> {
        self.plugins.as_ref()
    }

    /// The address acemux listens on (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Stops accepting, stops every stream (engine stop commands sent),
    /// delivers the last orchestrator events, lets connections finish, and
    /// returns.
    pub async fn shutdown(mut self) {
        info!("shutting down");
        self.stop_accepting.cancel();
        if !self.registry.shutdown(self.settings.shutdown_timeout).await {
            tracing::warn!("some streams did not stop within the shutdown timeout");
        }
        if !self.hls.shutdown(self.settings.shutdown_timeout).await {
            tracing::warn!("some HLS outputs did not end within the shutdown timeout");
        }
        self.stop_background.cancel();
        let drained = tokio::time::timeout(self.settings.shutdown_timeout, async {
            while self.background.join_next().await.is_some() {}
        });
        if drained.await.is_err() {
            tracing::warn!("background tasks (orchestrator events) did not finish in time");
            self.background.shutdown().await;
        }
        if let Some(p) = &self.plugins {
            let _ = tokio::time::timeout(self.settings.shutdown_timeout, p.shutdown()).await;
        }
        let _ = self.server.await;
        info!("shutdown complete");
    }
}
