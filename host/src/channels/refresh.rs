//! Each source read again on its own period, in a task of its own, its
//! channels handed to the [`Catalog`].
//!
//! A refresh that fails in any way — unreachable, an error status, too
//! big, too slow, not a list, a list naming no AceStream content at all —
//! keeps the last good channels and records the error, so a broken scraper
//! never empties an operator's lineup. A source is read at most once per
//! period whatever it answers (a failure is retried at the next period
//! too), so a list that changes every second costs one read per period.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::catalog::{Catalog, SourceChannel, SourceState};
use super::fetch::{self, Fetched, Validators};
use super::guide::{self, GuideSlot, GuideSpec, Location, SOURCE_GUIDE_REFRESH};
use super::m3u;
use super::source::{Source, SourceKind};
use crate::engine::{EngineClient, EnginePool};
use crate::plugins::PluginHost;

/// What sources read besides files and URLs: the engines (a search
/// source asks a healthy one) and the plugins (a plugin source's).
#[derive(Clone)]
pub struct Helpers {
    pub pool: Arc<EnginePool>,
    pub client: EngineClient,
    pub plugins: Option<Arc<PluginHost>>,
}

/// Refreshes source `index` of `catalog` every period until `stop`.
pub async fn run(
    catalog: Arc<Catalog>,
    index: usize,
    http: reqwest::Client,
    helpers: Helpers,
    stop: CancellationToken,
) {
    let spec = catalog.sources()[index].spec.clone();
    let span = tracing::info_span!("source", source = %spec.name, kind = spec.kind.name());
    restore(&catalog, index, &spec).instrument(span.clone()).await;
    crate::periodic::every(spec.refresh, stop, || {
        refresh(&catalog, index, &spec, &http, &helpers).instrument(span.clone())
    })
    .await;
}

/// Reads a `[[guides]]` guide every period until `stop`; the first read
/// waits (a minute at most) until every source was tried, so it keeps the
/// programmes of their channels too.
pub async fn guide(
    catalog: Arc<Catalog>,
    slot: Arc<GuideSlot>,
    http: reqwest::Client,
    stop: CancellationToken,
) {
    let settle = tokio::time::Instant::now() + Duration::from_secs(60);
    while !catalog.sources_tried() && tokio::time::Instant::now() < settle {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.cancelled() => return,
        }
    }
    crate::periodic::every(slot.spec.refresh, stop, || async {
        slot.refresh(&http, &catalog.current()).await
    })
    .await;
}

/// Reads a source's guide (the list's `url-tvg`) when it is new or its
/// period has passed.
async fn source_guide(catalog: &Catalog, index: usize, http: &reqwest::Client) {
    let source = &catalog.sources()[index];
    if !source.spec.follow_guide {
        return;
    }
    let Some(url) = source.state().guide_url else { return };
    let Ok(url) = crate::values::http_url(&url) else { return };
    let slot = source.guide_at(GuideSpec {
        name: format!("source:{}", source.spec.name),
        location: Location::Url(url),
        refresh: SOURCE_GUIDE_REFRESH,
        max_bytes: guide::DEFAULT_MAX_BYTES,
        timeout: guide::DEFAULT_TIMEOUT,
    });
    if slot.due() {
        slot.refresh(http, &catalog.current()).await;
    }
}

/// Lists the channels of the list an M3U source last read well (kept in
/// the state directory), so a restart while its site is down keeps them;
/// the first refresh, at once, replaces them.
async fn restore(catalog: &Arc<Catalog>, index: usize, spec: &Source) {
    let Some(path) = catalog.kept_list(index) else { return };
    if !matches!(spec.kind, SourceKind::M3uFile(_) | SourceKind::M3uUrl(_)) {
        return;
    }
    let Ok(body) = fetch::file(&path, spec.max_bytes).await else { return };
    let Ok((Read::Channels { channels, skipped, excluded, guide_url }, _)) =
        read_m3u(spec, body, Validators::default(), None).await
    else {
        return;
    };
    tracing::info!(channels = channels.len(), "source's last good list restored");
    let owner = catalog.clone();
    let restored = tokio::task::spawn_blocking(move || {
        owner.update_source(index, |state| {
            state.channels = Arc::new(channels);
            state.skipped = skipped;
            state.excluded = excluded;
            state.guide_url = guide_url;
        })
    });
    let _ = restored.await;
}

/// What one read gave.
enum Read {
    Channels { channels: Vec<SourceChannel>, skipped: usize, excluded: usize, guide_url: Option<String> },
    Unchanged,
}

async fn refresh(
    catalog: &Arc<Catalog>,
    index: usize,
    spec: &Source,
    http: &reqwest::Client,
    helpers: &Helpers,
) {
    let since = catalog.sources()[index].state().validators;
    let attempt = SystemTime::now();
    let read = match &spec.kind {
        SourceKind::M3uFile(path) => match fetch::file(path, spec.max_bytes).await {
            Ok(body) => read_m3u(spec, body, Validators::default(), catalog.kept_list(index)).await,
            Err(e) => Err(e),
        },
        SourceKind::M3uUrl(url) => match fetch::url(http, url, &since, spec.max_bytes, spec.timeout).await {
            Ok(Fetched::Body(body, validators)) => {
                read_m3u(spec, body, validators, catalog.kept_list(index)).await
            }
            Ok(Fetched::NotModified) => Ok((Read::Unchanged, since)),
            Err(e) => Err(e),
        },
        SourceKind::Search { queries, categories } => {
            super::search::channels(helpers, spec, queries, categories).await.map(|(channels, excluded)| {
                (Read::Channels { channels, skipped: 0, excluded, guide_url: None }, Validators::default())
            })
        }
        SourceKind::Plugin(plugin) => super::plugin_source::channels(helpers.plugins.as_ref(), plugin, spec)
            .await
            .map(|(channels, skipped, excluded)| {
                (Read::Channels { channels, skipped, excluded, guide_url: None }, Validators::default())
            }),
    };
    let ok = read.is_ok();
    // Merging and numbering a list of tens of thousands of channels is
    // CPU work: off the runtime threads, in this source's span.
    let (owner, span) = (catalog.clone(), tracing::Span::current());
    let recorded = tokio::task::spawn_blocking(move || {
        let _in = span.enter();
        owner.update_source(index, |state| record(state, attempt, read));
    });
    if let Err(e) = recorded.await {
        tracing::error!(error = %e, "recording a refresh failed");
    }
    if ok {
        source_guide(catalog, index, http).await;
    }
}

/// What a refresh's outcome changes in the source's state.
fn record(state: &mut SourceState, attempt: SystemTime, read: anyhow::Result<(Read, Validators)>) {
    state.last_attempt = Some(attempt);
    state.refreshes += 1;
    match read {
        Ok((Read::Channels { channels, skipped, excluded, guide_url }, validators)) => {
            tracing::info!(channels = channels.len(), skipped, excluded, "source read");
            state.channels = Arc::new(channels);
            state.skipped = skipped;
            state.excluded = excluded;
            state.guide_url = guide_url;
            state.validators = validators;
            state.last_success = Some(attempt);
            state.error = None;
        }
        Ok((Read::Unchanged, _)) => {
            tracing::debug!("source unchanged");
            state.not_modified += 1;
            state.last_success = Some(attempt);
            state.error = None;
        }
        Err(e) => {
            let error = format!("{e:#}");
            tracing::warn!(
                error,
                kept = state.channels.len(),
                "source refresh failed; its last good channels stay"
            );
            state.failures += 1;
            state.error = Some(error);
        }
    }
}

/// Reads an M3U body off the runtime threads and applies the source's
/// rules; a good list is kept at `keep` (whole or not at all).
async fn read_m3u(
    spec: &Source,
    body: Vec<u8>,
    validators: Validators,
    keep: Option<std::path::PathBuf>,
) -> anyhow::Result<(Read, Validators)> {
    let rules = spec.rules.clone();
    tokio::task::spawn_blocking(move || {
        let text = String::from_utf8_lossy(&body);
        let list = m3u::read(&text);
        if list.entries.is_empty() {
            anyhow::bail!(
                "the list names no AceStream content ({} entries skipped); keeping the last good list",
                list.skipped
            );
        }
        let read: Vec<SourceChannel> = list
            .entries
            .into_iter()
            .map(|e| SourceChannel {
                suggested_number: e.tvg_chno.as_deref().and_then(|n| n.trim().parse().ok()),
                search: None,
                source_name: Some(e.tvg_name.clone().unwrap_or_else(|| e.name.clone())),
                channel: super::Channel {
                    name: e.name,
                    key: e.key,
                    alternates: Vec::new(),
                    identity: None,
                    group: e.group,
                    logo: e.tvg_logo,
                    tvg_id: e.tvg_id,
                    number: None,
                },
            })
            .collect();
        let (channels, excluded) = rules.apply(read);
        if let Some(path) = keep
            && let Err(e) = super::write_whole(&path, &body)
        {
            tracing::warn!(file = %path.display(), error = %e, "cannot keep the source's list in the state directory");
        }
        Ok((
            Read::Channels { channels, skipped: list.skipped, excluded, guide_url: list.guide_url },
            validators,
        ))
    })
    .await?
}
