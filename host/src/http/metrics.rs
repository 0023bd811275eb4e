//! `GET /metrics` in the Prometheus text format.
//!
//! It follows the status access rule ([`Detail`]): where status would hide
//! engine addresses from a caller without the admin token, engines are
//! labelled here by their serial (a number each engine gets once, stable
//! while acemux runs), not by their address; under `--status-access
//! token` such a caller gets 401. Scrapers send the token with
//! Prometheus' `authorization` setting.

use std::fmt::Write;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;

use crate::engine::pool::EngineView;
use crate::plugins::metrics_text::escape_value;
use crate::stream::{CounterValues, SessionState};

use super::status::Detail;
use super::{ApiError, AppState};

/// Writes one metric family.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.head(name, kind, help);
        let _ = writeln!(self.out, "{name} {value}");
    }
}

/// Reads one gauge's value off an engine.
type EngineValue = fn(&EngineView) -> u64;

/// Reads one gauge's value off an engine's statistics of a stream.
type StatValue = fn(&crate::engine::EngineStats) -> Option<u64>;

pub async fn metrics(State(app): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse, ApiError> {
    let detail = Detail::for_caller(&app, &headers)?;
    let ctx = app.registry.context();
    let sessions = app.registry.sessions();
    let mut totals: CounterValues = ctx.totals.ended_totals();
    let mut ring_bytes = 0usize;
    let mut players = 0usize;
    let mut live = 0usize;
    for s in &sessions {
        totals.add(&s.counters.snapshot());
        ring_bytes += s.ring.stats().bytes;
        players += s.player_count();
        live += usize::from(s.state() == SessionState::Live);
    }
    let mut out = String::with_capacity(4096);
    let mut f = Family { out: &mut out };
    f.one("acemux_streams", "gauge", "Stream sessions held now.", sessions.len());
    f.one("acemux_streams_live", "gauge", "Stream sessions with data flowing.", live);
    f.one("acemux_players", "gauge", "Players attached now (TS players and HLS viewers).", players);
    f.one(
        "acemux_buffer_kernel_bytes",
        "gauge",
        "Bytes of stream buffers held in kernel pages (--zero-copy on; in the process's RSS as shared memory).",
        crate::zero_copy::pages::held_bytes(),
    );
    // Players by user: names of configured users only (a bounded set).
    let users = app.access.users();
    let mut by_user: std::collections::BTreeMap<&str, usize> =
        users.iter().map(|u| (u.name.as_str(), 0)).collect();
    let hls_outputs = app.hls.outputs();
    let hls_users = hls_outputs.iter().flat_map(|o| o.viewers()).filter_map(|v| v.user);
    let ts_users = sessions.iter().flat_map(|s| s.player_stats()).filter_map(|p| p.user.clone());
    for user in ts_users.chain(hls_users) {
        if let Some(n) = by_user.get_mut(&*user) {
            *n += 1;
        }
    }
    if !by_user.is_empty() {
        f.head("acemux_user_players", "gauge", "Players attached now, by the user whose token they carry.");
        for (user, n) in by_user {
            let _ = writeln!(f.out, "acemux_user_players{{user=\"{}\"}} {n}", escape_value(user));
        }
    }
    let outputs: Vec<_> = app.hls.outputs().iter().map(|o| o.stats()).collect();
    let viewers: usize = outputs.iter().map(|o| o.viewers).sum();
    f.one("acemux_hls_viewers", "gauge", "HLS viewers present now (fetching their playlist).", viewers);
    f.one("acemux_hls_outputs", "gauge", "Streams being cut into HLS segments now.", outputs.len());
    f.one(
        "acemux_hls_window_bytes",
        "gauge",
        "Bytes the HLS segment windows hold (shared with the buffers while they still hold them).",
        outputs.iter().map(|o| o.window_bytes).sum::<usize>(),
    );
    let hls_totals = app.hls.totals();
    f.one(
        "acemux_hls_playlists_total",
        "counter",
        "HLS media playlists served.",
        hls_totals.playlists_served,
    );
    f.one("acemux_hls_segments_total", "counter", "HLS segments served.", hls_totals.segments_served);
    f.one("acemux_hls_parts_total", "counter", "Low-Latency HLS parts served.", hls_totals.parts_served);
    f.one(
        "acemux_hls_segment_bytes_total",
        "counter",
        "Bytes of HLS segments and parts served.",
        hls_totals.segment_bytes_served,
    );
    f.one("acemux_ring_bytes", "gauge", "Bytes held in all stream buffers.", ring_bytes);
    engine_stat_metrics(&mut f, &sessions);
    f.one("acemux_connections", "gauge", "HTTP connections open now.", app.connections.open());
    f.one(
        "acemux_tasks",
        "gauge",
        "Tokio tasks alive now (a count that keeps growing is a leak).",
        tokio::runtime::Handle::current().metrics().num_alive_tasks(),
    );
    f.one("acemux_connections_max", "gauge", "Cap on open HTTP connections.", app.connections.total_cap());
    f.head("acemux_connections_refused_total", "counter", "Connections answered 503 at accept, by cap.");
    for (cap, n) in
        [("total", &app.connections.refused_total), ("per_client", &app.connections.refused_per_client)]
    {
        let _ = writeln!(
            f.out,
            "acemux_connections_refused_total{{cap=\"{cap}\"}} {}",
            n.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    f.one(
        "acemux_streams_started_total",
        "counter",
        "Streams an engine accepted.",
        ctx.totals.streams_started.load(std::sync::atomic::Ordering::Relaxed),
    );
    f.head("acemux_streams_ended_total", "counter", "Streams ended, by reason.");
    for (reason, n) in ctx.totals.ends() {
        let reason = serde_json::to_value(reason).ok().and_then(|v| v.as_str().map(str::to_owned));
        let _ =
            writeln!(f.out, "acemux_streams_ended_total{{reason=\"{}\"}} {n}", reason.unwrap_or_default());
    }
    for (name, value) in totals.fields() {
        let metric = format!("acemux_{name}_total");
        f.one(&metric, "counter", &format!("Sum over all streams of `{name}`."), value);
    }

    f.one(
        "acemux_player_token_refusals_total",
        "counter",
        "Player requests refused for a missing or wrong token.",
        app.access.refused_total.load(std::sync::atomic::Ordering::Relaxed),
    );
    f.one(
        "acemux_player_token_limited_total",
        "counter",
        "Player requests refused because their address sent too many wrong tokens.",
        app.access.limited_total.load(std::sync::atomic::Ordering::Relaxed),
    );
    f.head("acemux_channel_switches_total", "counter", "Channels moved to their next id, by reason.");
    for (reason, n) in ctx.totals.channel_switches() {
        let _ = writeln!(f.out, "acemux_channel_switches_total{{reason=\"{}\"}} {n}", reason.as_str());
    }
    for (name, help, histogram) in [
        (
            "acemux_time_to_first_byte_seconds",
            "From a player's request to its first stream byte.",
            &ctx.totals.time_to_first_byte,
        ),
        (
            "acemux_channel_switch_wait_seconds",
            "From the last data of a channel's id to the first data of the next id.",
            &ctx.totals.switch_wait,
        ),
    ] {
        let (buckets, count, sum) = histogram.snapshot();
        f.head(name, "histogram", help);
        for (bound, n) in buckets {
            let _ = writeln!(f.out, "{name}_bucket{{le=\"{bound}\"}} {n}");
        }
        let _ =
            writeln!(f.out, "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}");
    }

    let engines = ctx.pool.views();
    let label = |e: &EngineView| match detail {
        Detail::Full => escape_value(&e.id),
        Detail::Redacted => format!("engine-{}", e.serial),
    };
    let per_engine: [(&str, &str, EngineValue); 4] = [
        ("acemux_engine_healthy", "1 when the engine passes its health probes.", |e| u64::from(e.healthy)),
        ("acemux_engine_load", "Streams on the engine, pending included.", |e| e.load as u64),
        ("acemux_engine_pending", "Streams whose start on the engine is under way.", |e| e.pending as u64),
        ("acemux_engine_load_elsewhere", "Of the engine's load, streams other instances run.", |e| {
            e.load_elsewhere as u64
        }),
    ];
    for (name, help, value) in per_engine {
        f.head(name, "gauge", help);
        for e in &engines {
            let _ = writeln!(f.out, "{name}{{engine=\"{}\"}} {}", label(e), value(e));
        }
    }
    f.one("acemux_engine_capacity", "gauge", "Streams one engine may carry.", ctx.pool.capacity());
    cluster_metrics(&mut f, &app);
    source_metrics(&mut f, &app);
    plugin_metrics(&mut f, &app, detail);

    let sent = app.orchestrator_delivery.sent.load(std::sync::atomic::Ordering::Relaxed);
    let failed = app.orchestrator_delivery.failed.load(std::sync::atomic::Ordering::Relaxed);
    f.one("acemux_orchestrator_events_sent_total", "counter", "Events the orchestrator accepted.", sent);
    f.one("acemux_orchestrator_events_failed_total", "counter", "Events given up after retries.", failed);
    f.head("acemux_events_dropped_total", "counter", "Events dropped because a consumer's queue was full.");
    for (consumer, n) in ctx.events.dropped() {
        let _ = writeln!(f.out, "acemux_events_dropped_total{{consumer=\"{consumer}\"}} {n}");
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out))
}

/// Each plugin's calls and failures, then the metrics plugins define
/// (only to callers who see full status: a plugin's label values are its
/// own text, and may name engines or players).
fn plugin_metrics(f: &mut Family<'_>, app: &AppState, detail: Detail) {
    let Some(host) = &app.plugins else { return };
    let set = host.current();
    type PluginValue = fn(&crate::plugins::plugin::Plugin) -> u64;
    use std::sync::atomic::Ordering::Relaxed;
    let families: [(&str, &str, &str, PluginValue); 6] = [
        (
            "acemux_plugins_active",
            "gauge",
            "1 while the plugin is enabled and not disabled after failures.",
            |p| u64::from(p.is_active()),
        ),
        ("acemux_plugins_calls_total", "counter", "Calls into the plugin.", |p| p.stats.calls.load(Relaxed)),
        (
            "acemux_plugins_errors_total",
            "counter",
            "Calls that failed (trap, time, memory, contract).",
            |p| p.stats.errors.load(Relaxed),
        ),
        (
            "acemux_plugins_events_dropped_total",
            "counter",
            "Events dropped on the plugin's full queue.",
            |p| p.stats.events_dropped.load(Relaxed),
        ),
        (
            "acemux_plugins_metric_series",
            "gauge",
            "Series of the plugin's own metrics (capped by max_series).",
            |p| p.metrics.own.view().series as u64,
        ),
        (
            "acemux_plugins_metric_refusals_total",
            "counter",
            "Metric calls refused for breaking the bounds.",
            |p| p.metrics.own.view().refused,
        ),
    ];
    for (name, kind, help, value) in families {
        f.head(name, kind, help);
        for p in &set.plugins {
            let _ = writeln!(f.out, "{name}{{plugin=\"{}\"}} {}", escape_value(&p.name), value(p));
        }
    }
    if detail == Detail::Full {
        crate::plugins::metrics_text::write(f.out, &host.metrics);
    }
}

/// The channel list and each source (one series per source: at most 64).
fn source_metrics(f: &mut Family<'_>, app: &AppState) {
    f.one(
        "acemux_channels",
        "gauge",
        "Channels listed (merged, duplicates removed).",
        app.channels.current().channels.len(),
    );
    let states: Vec<(String, crate::channels::catalog::SourceState)> =
        app.channels.sources().iter().map(|s| (escape_value(&s.spec.name), s.state())).collect();
    type SourceValue = fn(&crate::channels::catalog::SourceState) -> f64;
    let families: [(&str, &str, &str, SourceValue); 6] = [
        (
            "acemux_source_channels",
            "gauge",
            "Channels of the source's last good read, after its rules.",
            |s| s.channels.len() as f64,
        ),
        ("acemux_source_up", "gauge", "1 when the source's last refresh succeeded.", |s| {
            f64::from(u8::from(s.last_attempt.is_some() && s.error.is_none()))
        }),
        (
            "acemux_source_skipped",
            "gauge",
            "Entries of the last good read that named no AceStream content or were broken.",
            |s| s.skipped as f64,
        ),
        ("acemux_source_refreshes_total", "counter", "Refreshes tried.", |s| s.refreshes as f64),
        (
            "acemux_source_failures_total",
            "counter",
            "Refreshes that failed (the last good channels stayed).",
            |s| s.failures as f64,
        ),
        (
            "acemux_source_last_success_timestamp_seconds",
            "gauge",
            "When the source last refreshed well (unix time).",
            |s| {
                s.last_success
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0.0, |d| d.as_secs_f64())
            },
        ),
    ];
    for (name, kind, help, value) in families {
        f.head(name, kind, help);
        for (source, state) in &states {
            let _ = writeln!(f.out, "{name}{{source=\"{source}\"}} {}", value(state));
        }
    }
}

/// The engines' statistics per stream: one series per stream held (at most
/// `--max-streams`), labelled by its content key, which `/proxy/status`
/// shows to anyone too.
fn engine_stat_metrics(f: &mut Family<'_>, sessions: &[std::sync::Arc<crate::stream::Session>]) {
    let stats: Vec<(String, crate::engine::EngineStats)> = sessions
        .iter()
        .filter_map(|s| s.engine_stats.lock().as_ref().map(|l| (s.key.id.clone(), l.stats.clone())))
        .collect();
    let gauges: [(&str, &str, StatValue); 4] = [
        ("acemux_stream_peers", "Peers the engine reports for the stream.", |s| s.peers),
        ("acemux_stream_speed_down_kbytes", "Download speed the engine reports (KB/s).", |s| s.speed_down),
        ("acemux_stream_speed_up_kbytes", "Upload speed the engine reports (KB/s).", |s| s.speed_up),
        ("acemux_stream_engine_downloaded_bytes", "Bytes the engine downloaded for the stream.", |s| {
            s.downloaded
        }),
    ];
    for (name, help, value) in gauges {
        f.head(name, "gauge", help);
        for (content, s) in &stats {
            if let Some(v) = value(s) {
                let _ = writeln!(f.out, "{name}{{content=\"{}\"}} {v}", escape_value(content));
            }
        }
    }
}

/// The instance's id, and with Redis the cluster's state and counters.
fn cluster_metrics(f: &mut Family<'_>, app: &AppState) {
    f.head("acemux_instance_info", "gauge", "This instance's id (always 1).");
    let _ = writeln!(
        f.out,
        "acemux_instance_info{{instance=\"{}\"}} 1",
        escape_value(&app.cluster_settings.instance_id)
    );
    let Some(cluster) = &app.cluster else { return };
    let get = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
    let status = cluster.status();
    f.one(
        "acemux_cluster_redis_up",
        "gauge",
        "1 while Redis answers; 0 while new streams use local accounting.",
        u8::from(cluster.is_reachable()),
    );
    f.one("acemux_cluster_instances", "gauge", "Instances alive in the cluster.", status.instances);
    f.one(
        "acemux_cluster_owned_contents",
        "gauge",
        "Contents this instance holds the lease on.",
        status.owned_contents,
    );
    f.one("acemux_cluster_held_slots", "gauge", "Engine slots this instance holds.", status.held_slots);
    let c = &cluster.counters;
    for (name, help, n) in [
        ("redis_calls", "Redis calls made.", &c.redis_calls),
        ("redis_errors", "Redis calls that failed or timed out.", &c.redis_errors),
        ("redirects", "Requests redirected to the instance that streams the content.", &c.redirects),
        ("proxied", "Requests passed through to the instance that streams the content.", &c.proxied),
        (
            "ownership_conflicts",
            "Contents found streaming here and on the lease holder.",
            &c.ownership_conflicts,
        ),
        ("orphans_stopped", "Engine sessions of dead instances stopped here.", &c.orphans_stopped),
        ("slots_refused", "Engine slots refused because the engine was full cluster-wide.", &c.slots_refused),
        (
            "handovers",
            "Sessions that found their content owned by another instance and moved their players onto its stream.",
            &c.handovers,
        ),
        (
            "slots_revoked",
            "Streams moved off an engine found over its cap once Redis answered again.",
            &c.slots_revoked,
        ),
    ] {
        f.one(&format!("acemux_cluster_{name}_total"), "counter", help, get(n));
    }
}
