//! acemux: an AceStream proxy that opens one engine session per content
//! and fans it out to every player through a shared ring buffer.
//!
//! Follow one byte from engine to player by module:
//! [`engine::client`] → [`stream::upstream`] (with [`acemux_ts::Aligner`]) →
//! [`stream::ring`] → [`stream::player`] → [`http`]. Control sits beside
//! that path: [`stream::registry`], [`stream::session`], [`engine::pool`],
//! [`engine::select`].
//!
//! # Layers
//!
//! A module uses only modules of the layers below its own, never one of
//! its layer or above, so the import graph has no circle and a change to
//! a lower layer never needs one above it to compile first.
//! `host/tests/layers.rs` reads this table and fails on an import against
//! it.
//!
//! | layer | modules | what they are |
//! |---|---|---|
//! | 1 | `config` | the settings of a process, assembled from each concern's own |
//! | 2 | `http` | routes and the connection loop, thin |
//! | 3 | `hls`, `channels`, `engine_api`, `access` | what players and clients reach besides the plain stream, and who may |
//! | 4 | `stream` | one upstream per content, fanned out |
//! | 5 | `plugins`, `cluster`, `orchestrator` | what a stream consults and tells |
//! | 6 | `events` | what happens to streams, and who hears it |
//! | 7 | `engine` | the engines: their API, pool, health, selection |
//! | 8 | `content`, `values`, `descriptors`, `memory`, `periodic`, `zero_copy` | small things everything may use, and the kernel pages a stream's buffer may live in |
//!
//! The crate root ([`Acemux`]) assembles the settings and the tasks and
//! sits above them all.

pub mod access;
pub mod channels;
pub mod cluster;
pub mod config;
pub mod content;
pub mod descriptors;
pub mod engine;
pub mod engine_api;
pub mod events;
pub mod hls;
pub mod http;
pub mod memory;
pub mod orchestrator;
mod periodic;
pub mod plugins;
pub mod stream;
pub mod values;
pub mod zero_copy;

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
use stream::{Registry, StreamContext};

/// `acemux --version`: the release and the plugin contract it speaks.
pub const VERSION: &str = plugins::contract::ACEMUX_VERSION;

/// Binds the listening socket. Accepted sockets inherit its send buffer
/// size, so a player's kernel-side backlog is bounded when the operator
/// sets one.
fn listen(settings: &http::FrontDoorSettings) -> std::io::Result<TcpListener> {
    let socket = if settings.listen.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    if let Some(size) = settings.socket_send_buffer.get() {
        socket.set_send_buffer_size(u32::try_from(size).unwrap_or(u32::MAX))?;
    }
    socket.bind(settings.listen)?;
    socket.listen(1024)
}

/// Loads the plugin directory (creating it if missing), then keeps it
/// watched and feeds stream events to event plugins.
async fn start_plugins(
    dir: &std::path::Path,
    settings: &plugins::PluginHostSettings,
    events: &mut EventBus,
    background: &mut JoinSet<()>,
    stop: &CancellationToken,
) -> anyhow::Result<Arc<plugins::PluginHost>> {
    let owned = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::create_dir_all(&owned)).await?.with_context(|| {
        format!("cannot create the plugin directory {} (--plugins / ACEMUX_PLUGINS_DIR)", dir.display())
    })?;
    let cache = match settings.cache_dir() {
        Some(cache) => {
            match tokio::task::spawn_blocking(move || plugins::cache::CompileCache::open(&cache)).await? {
                Ok(opened) => Some(opened),
                Err(e) if settings.cache_named() => {
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
    let host = plugins::PluginHost::new(
        dir.to_path_buf(),
        cache,
        settings.plugin_compiler,
        settings.plugins_require_digest,
        settings.plugin_signers.clone(),
    )?;
    let watch = plugins::watch::DirWatch::new(&host);
    host.scan().await;
    let loaded = host.current().plugins.len();
    info!(dir = %dir.display(), loaded, failed = host.failures().len(), "plugins loaded");
    background.spawn(watch.run(host.clone(), stop.clone()));
    let queue = events.subscribe("plugins", PLUGIN_EVENT_QUEUE);
    background.spawn(plugins::events::forward(host.clone(), queue, stop.clone()));
    Ok(host)
}

/// The channel list: the operator's own channels and every source's, each
/// source refreshed in a task of its own, numbers kept in the state
/// directory.
async fn start_channels(
    settings: channels::ChannelSettings,
    pool: &Arc<EnginePool>,
    client: &EngineClient,
    plugins: &Option<Arc<plugins::PluginHost>>,
    background: &mut JoinSet<()>,
    stop: &CancellationToken,
) -> anyhow::Result<Arc<channels::Catalog>> {
    let channels::ChannelSettings { epg_url, state_dir, channels: hand, sources, guides } = settings;
    let catalog = tokio::task::spawn_blocking(move || {
        channels::Catalog::new(
            hand,
            sources,
            guides,
            epg_url.0,
            state_dir.as_ref().map(std::path::PathBuf::as_path),
        )
    })
    .await??;
    background.spawn(catalog.clone().keep_numbers(stop.clone()));
    let http = channels::fetch::client()?;
    let helpers =
        channels::refresh::Helpers { pool: pool.clone(), client: client.clone(), plugins: plugins.clone() };
    for index in 0..catalog.sources().len() {
        background.spawn(channels::refresh::run(
            catalog.clone(),
            index,
            http.clone(),
            helpers.clone(),
            stop.clone(),
        ));
    }
    for guide in catalog.guides() {
        background.spawn(channels::refresh::guide(
            catalog.clone(),
            guide.clone(),
            http.clone(),
            stop.clone(),
        ));
    }
    Ok(catalog)
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
    shutdown_timeout: std::time::Duration,
    plugins: Option<Arc<plugins::PluginHost>>,
    api_clients: Arc<engine_api::ClientPlaybacks>,
}

impl Acemux {
    /// Binds the listen address and starts serving.
    pub async fn start(settings: Settings) -> anyhow::Result<Self> {
        let Settings {
            front,
            engines,
            orchestrator,
            stream,
            hls: hls_settings,
            plugins: plugin_settings,
            cluster: cluster_settings,
            channels,
            alternates,
            access,
            dashboard,
            engine_api: engine_api_settings,
        } = settings;
        let zero_copy = stream.zero_copy;
        let descriptors = descriptors::raise_limit();
        let connection_cap =
            front.max_connections.get().unwrap_or_else(|| descriptors.default_connection_cap());
        let connections = http::ConnectionLimit::new(connection_cap, front.max_connections_per_client.get());
        let listener = listen(&front)
            .with_context(|| format!("cannot listen on {} (--listen / ACEMUX_LISTEN)", front.listen))?;
        let addr = listener.local_addr()?;
        let pool = Arc::new(EnginePool::new(&engines.engines, engines.max_streams_per_engine));
        let client = EngineClient::new(engines.connection_timeout)?;
        let delivery = Arc::new(orchestrator::Delivery::default());
        let mut events = EventBus::new();
        let mut background = JoinSet::new();
        let stop_background = CancellationToken::new();

        background.spawn(memory::trim_periodically(stop_background.clone()));
        background.spawn(engine::health::run(
            pool.clone(),
            client.clone(),
            engines.health_interval,
            engines.health_failures,
            stop_background.clone(),
        ));
        if let Some(base) = orchestrator.orchestrator_url.as_ref().cloned() {
            let http = reqwest::Client::builder().connect_timeout(engines.connection_timeout).build()?;
            let queue = events.subscribe("orchestrator", ORCHESTRATOR_QUEUE);
            let reporter = orchestrator::reporter::Reporter::new(
                http.clone(),
                base.clone(),
                orchestrator.api_key.clone(),
                engines.connection_timeout,
                delivery.clone(),
            );
            background.spawn(reporter.run(queue, stop_background.clone()));
            background.spawn(orchestrator::discovery::run(
                http,
                base,
                orchestrator.api_key.clone(),
                engines.connection_timeout,
                orchestrator.orchestrator_refresh,
                pool.clone(),
                stop_background.clone(),
            ));
        }

        let plugins = match plugin_settings.plugins_dir.as_ref() {
            Some(dir) => Some(
                start_plugins(dir, &plugin_settings, &mut events, &mut background, &stop_background).await?,
            ),
            None => None,
        };
        let selector: Arc<dyn engine::EngineSelector> = match &plugins {
            Some(host) => Arc::new(plugins::PluginSelector { host: host.clone() }),
            None => Arc::new(BuiltinSelector),
        };
        let membership = match cluster_settings.membership() {
            Some(membership) => Some(cluster::Cluster::new(membership)?),
            None => None,
        };
        let catalog =
            start_channels(channels, &pool, &client, &plugins, &mut background, &stop_background).await?;
        let shutdown_timeout = front.shutdown_timeout;
        let registry = Registry::new(StreamContext {
            stream,
            engine_timeout: engines.connection_timeout,
            engine_stat_interval: engines.engine_stat_interval,
            pool: pool.clone(),
            client: client.clone(),
            selector,
            events: Arc::new(events),
            totals: Arc::default(),
            plugins: plugins.clone(),
            cluster: membership.as_ref().map(|(c, _)| c.clone()),
            alternates,
            channels: Some(catalog.clone()),
        });
        let membership = match membership {
            Some((cluster, keeper)) => {
                let sessions = Arc::downgrade(&registry);
                let running = move || sessions.upgrade().map(|r| r.streaming_keys()).unwrap_or_default();
                background.spawn(keeper.run(pool.clone(), client.clone(), running, stop_background.clone()));
                info!(
                    instance = %cluster.instance_id(),
                    advertise_url = ?cluster_settings.advertise_url.as_deref(),
                    lease = ?cluster_settings.cluster_lease,
                    "cluster on: content and engine slot leases in Redis"
                );
                Some(cluster)
            }
            None => None,
        };
        let hls = hls::Hls::new(registry.clone(), hls_settings);
        let api_clients = engine_api::ClientPlaybacks::new(
            engine_api_settings.api_client_timeout,
            engine_api_settings.api_clients_max,
        );
        background.spawn(api_clients.clone().run(stop_background.clone()));
        let stop_accepting = CancellationToken::new();
        let users_file = access.users_file.0.clone();
        let player_access = Arc::new(access::Access::new(access));
        if let Some(path) = users_file {
            background.spawn(access::users_file::watch(player_access.clone(), path, stop_background.clone()));
        }
        let state = http::AppState {
            stopping: stop_accepting.clone(),
            registry: registry.clone(),
            hls: hls.clone(),
            front: Arc::new(front.clone()),
            channels: catalog,
            dashboard,
            cluster_settings: Arc::new(cluster_settings),
            orchestrator_delivery: delivery,
            engine_api: api_clients.clone(),
            started_at: Instant::now(),
            plugins: plugins.clone(),
            connections: connections.clone(),
            cluster: membership,
            access: player_access,
        };
        let server = tokio::spawn(http::serve(
            listener,
            http::router(state),
            connections,
            front.client_timeout,
            stop_accepting.clone(),
            shutdown_timeout,
            zero_copy,
        ));
        info!(
            %addr,
            engines = engines.engines.len(),
            orchestrator = orchestrator.orchestrator_url.is_some(),
            max_connections = connection_cap,
            max_connections_per_client = ?front.max_connections_per_client.get(),
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
            shutdown_timeout,
            plugins,
            api_clients,
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
        self.api_clients.clear();
        if !self.registry.shutdown(self.shutdown_timeout).await {
            tracing::warn!("some streams did not stop within the shutdown timeout");
        }
        if !self.hls.shutdown(self.shutdown_timeout).await {
            tracing::warn!("some HLS outputs did not end within the shutdown timeout");
        }
        self.stop_background.cancel();
        let drained = tokio::time::timeout(self.shutdown_timeout, async {
            while self.background.join_next().await.is_some() {}
        });
        if drained.await.is_err() {
            tracing::warn!("background tasks (orchestrator events) did not finish in time");
            self.background.shutdown().await;
        }
        if let Some(p) = &self.plugins {
            let _ = tokio::time::timeout(self.shutdown_timeout, p.shutdown()).await;
        }
        let _ = self.server.await;
        info!("shutdown complete");
    }
}
