//! The HTTP surface: routes, error bodies, and the connection loop.
//! Handlers translate between HTTP and the stream registry; they hold no
//! business logic of their own.

mod admin;
pub mod auth;
mod channels;
mod cluster;
pub mod connection_limit;
mod dashboard;
mod engine_api;
mod error;
mod getstream;
mod hdhomerun;
mod hls;
mod hls_files;
mod live;
mod metrics;
mod playlist;
mod plugins;
mod server;
mod service;
pub mod settings;
mod status;
mod viewer;
mod write_timeout;
mod xtream;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::routing::get;

pub use connection_limit::ConnectionLimit;
pub use dashboard::DashboardSettings;
pub use error::ApiError;
pub use server::{Connection, serve};
pub use settings::{FrontDoorSettings, StatusAccess};

use crate::channels::Catalog;
use crate::cluster::ClusterSettings;
use crate::hls::Hls;
use crate::plugins::PluginHost;
use crate::stream::Registry;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    /// Every stream's HLS output.
    pub hls: Arc<Hls>,
    /// Where acemux listens, the admin token, who reads status.
    pub front: Arc<FrontDoorSettings>,
    /// The channels listed in playlists, the tuner lineup and
    /// `/channels.json`.
    pub channels: Arc<Catalog>,
    pub dashboard: DashboardSettings,
    /// This instance's name and how it forwards other instances' contents.
    pub cluster_settings: Arc<ClusterSettings>,
    /// Engine-API clients' playbacks (`format=json`), by token.
    pub engine_api: Arc<crate::engine_api::ClientPlaybacks>,
    /// Orchestrator event delivery, for `/metrics`.
    pub orchestrator_delivery: Arc<crate::orchestrator::Delivery>,
    pub started_at: Instant,
    pub plugins: Option<Arc<PluginHost>>,
    /// Open connections and the caps on them.
    pub connections: Arc<ConnectionLimit>,
    /// Cancelled when acemux starts shutting down: endless responses that
    /// no stream ends (the live feed) end with it.
    pub stopping: tokio_util::sync::CancellationToken,
    /// Content ownership across instances, when acemux runs in a cluster.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// Who may watch.
    pub access: Arc<crate::access::Access>,
}

/// Every route acemux serves.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/ace/getstream", get(getstream::getstream).head(getstream::head))
        .route("/ace/manifest.m3u8", get(hls::manifest).options(hls::preflight))
        .route("/hls/{id}/{file}", get(hls::file).options(hls::preflight))
        .route("/ace/r/{infohash}/{token}", get(engine_api::playback))
        .route("/ace/m/{infohash}/{file}", get(engine_api::hls_playback))
        .route("/ace/stat/{infohash}/{token}", get(engine_api::stat))
        .route("/ace/cmd/{infohash}/{token}", get(engine_api::command))
        .route("/webui/api/service", get(service::service))
        .route("/server/api", get(service::server_api))
        .route("/search", get(service::search))
        .route("/{form}/{id}/{name}", get(getstream::path_form).head(getstream::path_form_head))
        .route("/", get(dashboard::page))
        .route("/assets/{name}", get(dashboard::asset))
        .route("/proxy/status", get(status::status))
        .route("/proxy/events", get(live::events))
        .route("/proxy/sessions/{content}", get(status::session).delete(admin::stop_session))
        .route("/metrics", get(metrics::metrics))
        .route("/plugins", get(plugins::list))
        .route("/playlist.m3u", get(playlist::playlist))
        .route("/channels.json", get(channels::list))
        .route("/epg.xml", get(channels::epg))
        .route("/discover.json", get(hdhomerun::discover))
        .route("/lineup.json", get(hdhomerun::lineup))
        .route("/lineup_status.json", get(hdhomerun::lineup_status))
        .route("/device.xml", get(hdhomerun::device_xml))
        .route("/healthz", get(status::healthz))
        .route("/player_api.php", get(xtream::player_api))
        .route("/get.php", get(xtream::get_php))
        .route("/xmltv.php", get(xtream::xmltv_php))
        .route("/live/{username}/{password}/{file}", get(xtream::live))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .with_state(state)
}
