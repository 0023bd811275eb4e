//! One loaded plugin: its compiled component, what it exports, and guarded
//! calls into it.
//!
//! Every call runs under the plugin's time budget (a deadline on the call's
//! future: it holds whether the plugin computes or waits inside a host
//! call) and memory cap. A call that traps, times out, runs out of memory
//! or answers outside the contract fails alone: the caller falls back, the
//! failure is counted once, and a poisoned instance is dropped (the next
//! call instantiates afresh). Only a call that was right ends a streak of
//! failures; after `max_failures` in a row the plugin is disabled, and
//! tried again after a backoff (see [`super::recovery`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use parking_lot::Mutex;
use serde::Serialize;
use wasmtime::component::{InstancePre, ResourceAny};
use wasmtime::{Store, Trap};

use super::bindings::exports::acemux::plugin::{access, channel_source, events, filter, selector};
use super::bindings::{Event, Request, Selection as WitSelection, Stream, WitChannel};
use super::cache::Compiled;
use super::candidates::Candidates;
use super::contract::{PACKAGE, PACKAGE_VERSION, compatible, refuse_other_versions};
use super::limits::MemoryUse;
use super::metrics::MetricsScope;
use super::recovery::{AfterFailure, Recovery, RecoveryView};
use super::runtime::{PluginState, Runtime, any, ticks};
use super::settings::PluginSettings;
use super::stats::PluginStats;
use crate::engine::select::Selection;
use crate::values::{format_duration, format_size};

/// Idle selector instances kept per plugin; concurrent selections beyond
/// it instantiate their own (tens of microseconds) and drop it after.
const IDLE_SELECTORS: usize = 4;

/// The phases a plugin takes part in (from its exports).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    pub selector: bool,
    pub filter: bool,
    pub events: bool,
    pub channel_source: bool,
    pub access: bool,
}

/// Why one call failed; the text is what `/plugins` shows.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("time budget {} exceeded", format_duration(*.0))]
    Timeout(Duration),
    #[error("memory limit {} reached", format_size(*.0))]
    Memory(usize),
    #[error("trapped: {0}")]
    Trap(String),
    /// The call returned, but its answer breaks the contract.
    #[error("{0}")]
    BadOutput(String),
    #[error("disabled")]
    Disabled,
}

impl CallError {
    /// The instance cannot be entered again after this failure.
    pub(super) fn poisons(&self) -> bool {
        matches!(self, Self::Timeout(_) | Self::Memory(_) | Self::Trap(_))
    }
}

/// A selector instance and the engine list it was last given.
struct SelectorInstance {
    store: Store<PluginState>,
    guest: selector::Guest,
    /// The serials of that list's engines (`None`: not given yet).
    engines: Option<Vec<u64>>,
}

/// See the module docs.
pub struct Plugin {
    pub name: Arc<str>,
    pub file: PathBuf,
    /// Hash of the `.wasm` and its settings text: a change means a reload.
    pub fingerprint: [u8; 32],
    pub version: String,
    pub capabilities: Capabilities,
    pub settings: PluginSettings,
    pub loaded_at: SystemTime,
    /// Compiled at load, or taken from the compile cache.
    pub compiled: Compiled,
    /// What compiling (or loading the compiled form) took.
    pub compile_time: Duration,
    /// Bytes of native code the component compiled to.
    pub code_bytes: usize,
    /// The plugin's live instances and their linear memory.
    pub memory: Arc<MemoryUse>,
    /// What its instances declare and update through `metrics`.
    pub metrics: MetricsScope,
    /// The `--plugin-signers` key whose signature it carries.
    pub signed_by: Option<String>,
    pub stats: PluginStats,
    runtime: Arc<Runtime>,
    pre: InstancePre<PluginState>,
    selector: Option<selector::GuestIndices>,
    filter: Option<filter::GuestIndices>,
    events: Option<events::GuestIndices>,
    channel_source: Option<channel_source::GuestIndices>,
    pub(super) access: Option<access::GuestIndices>,
    /// Access-check instances not in use (a check takes one out).
    pub(super) idle_access: Mutex<Vec<(Store<PluginState>, access::Guest)>>,
    /// The channel-source instance between refreshes (taken out for a
    /// call; dropped after a failure that poisons it).
    idle_source: Mutex<Option<(Store<PluginState>, channel_source::Guest)>>,
    /// Selector instances not in use (a selection takes one out for its call).
    idle_selectors: Mutex<Vec<SelectorInstance>>,
    recovery: Recovery,
    last_error: Mutex<Option<String>>,
}

impl Plugin {
    /// Compiles and checks a component. CPU-heavy: call off the async
    /// threads; then [`Plugin::try_instantiate`].
    pub fn compile(
        runtime: &Arc<Runtime>,
        name: &str,
        file: PathBuf,
        bytes: &[u8],
        settings: PluginSettings,
        fingerprint: [u8; 32],
        metrics: MetricsScope,
    ) -> anyhow::Result<Self> {
        refuse_other_versions(bytes)?;
        let started = Instant::now();
        let (component, compiled) = runtime.compile(bytes).context("not a valid WebAssembly component")?;
        let compile_time = started.elapsed();
        let (capabilities, version) = inspect(runtime, &component)?;
        let pre = any(runtime.linker.instantiate_pre(&component))
            .context("the component imports something acemux does not provide")?;
        let selector = capabilities.selector.then(|| any(selector::GuestIndices::new(&pre))).transpose()?;
        let filter = capabilities.filter.then(|| any(filter::GuestIndices::new(&pre))).transpose()?;
        let events = capabilities.events.then(|| any(events::GuestIndices::new(&pre))).transpose()?;
        let channel_source =
            capabilities.channel_source.then(|| any(channel_source::GuestIndices::new(&pre))).transpose()?;
        let access = capabilities.access.then(|| any(access::GuestIndices::new(&pre))).transpose()?;
        let recovery = Recovery::new(settings.recovery_policy());
        Ok(Self {
            name: Arc::from(name),
            file,
            fingerprint,
            version,
            capabilities,
            settings,
            loaded_at: SystemTime::now(),
            compiled,
            compile_time,
            code_bytes: {
                let image = component.image_range();
                image.end as usize - image.start as usize
            },
            memory: Arc::default(),
            metrics,
            signed_by: None,
            stats: PluginStats::default(),
            runtime: runtime.clone(),
            pre,
            selector,
            filter,
            events,
            channel_source,
            access,
            idle_access: Mutex::new(Vec::new()),
            idle_source: Mutex::new(None),
            idle_selectors: Mutex::new(Vec::new()),
            recovery,
            last_error: Mutex::new(None),
        })
    }

    /// Instantiates once, so a plugin that cannot start fails its load
    /// rather than its first call.
    pub async fn try_instantiate(&self) -> anyhow::Result<()> {
        let mut store = self.runtime.store(&self.name, &self.settings, &self.memory, &self.metrics)?;
        let made = self.run_guarded(&mut store, |s| self.pre.instantiate_async(s)).await;
        made.map(drop).map_err(|e| anyhow::anyhow!("instantiation failed: {e}"))
    }

    /// The compiler its code came from.
    pub fn compiler(&self) -> super::host_settings::PluginCompiler {
        self.runtime.compiler
    }

    pub fn is_disabled(&self) -> bool {
        self.recovery.is_disabled()
    }

    /// Its relapses and next retry, for `/plugins`.
    pub fn recovery(&self) -> RecoveryView {
        self.recovery.view()
    }

    pub fn is_active(&self) -> bool {
        self.settings.enabled && !self.is_disabled()
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().clone()
    }

    /// Runs one call within the budget and the memory cap, timed, and says
    /// why it failed. Refuses when the plugin is not active.
    pub(super) async fn guarded<'s, R, F>(
        &self,
        store: &'s mut Store<PluginState>,
        call: impl FnOnce(&'s mut Store<PluginState>) -> F,
    ) -> Result<R, CallError>
    where
        F: Future<Output = wasmtime::Result<R>> + 's,
    {
        if !self.is_active() {
            return Err(CallError::Disabled);
        }
        self.run_guarded(store, call).await
    }

    async fn run_guarded<'s, R, F>(
        &self,
        store: &'s mut Store<PluginState>,
        call: impl FnOnce(&'s mut Store<PluginState>) -> F,
    ) -> Result<R, CallError>
    where
        F: Future<Output = wasmtime::Result<R>> + 's,
    {
        let budget = self.settings.time_budget;
        let _in_flight = self.runtime.call_in_flight();
        store.set_epoch_deadline(ticks(budget));
        let memory_hit = store.data().limits.memory_hit();
        let memory_limit = store.data().limits.memory_limit();
        memory_hit.store(false, Ordering::Relaxed);
        let started = Instant::now();
        let deadline = started + budget;
        let mut call = std::pin::pin!(call(store));
        // Most calls end at their first poll and need no timer. One that
        // yielded (waiting in a host call, or computing past its budget) gets
        // the rest of its budget as a deadline, past which its future is
        // dropped: the wasm stack is unwound wherever it was.
        let first_poll = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
        let result = match first_poll {
            Poll::Ready(result) => Some(result),
            Poll::Pending if Instant::now() >= deadline => None,
            Poll::Pending => tokio::time::timeout_at(deadline.into(), call).await.ok(),
        };
        self.stats.record(started.elapsed());
        match result {
            None => Err(CallError::Timeout(budget)),
            Some(Ok(r)) => Ok(r),
            Some(Err(_)) if memory_hit.load(Ordering::Relaxed) => Err(CallError::Memory(memory_limit)),
            Some(Err(e)) => Err(match e.downcast_ref::<Trap>() {
                Some(Trap::Interrupt) => CallError::Timeout(budget),
                // The trap's reason; the wasm backtrace says nothing to an operator.
                Some(trap) => CallError::Trap(trap.to_string()),
                None => CallError::Trap(e.to_string()),
            }),
        }
    }

    /// Counts a call's outcome once: a failure adds to the streak (and
    /// disables the plugin at `max_failures`), a right answer ends it.
    pub fn account<R>(&self, result: Result<R, CallError>) -> Result<R, CallError> {
        self.account_as(result, true)
    }

    /// Like [`Plugin::account`] for setting up an instance: a success
    /// there proves nothing about the plugin's calls, so it does not end a
    /// streak of failures.
    pub(super) fn account_setup<R>(&self, result: Result<R, CallError>) -> Result<R, CallError> {
        self.account_as(result, false)
    }

    fn account_as<R>(&self, result: Result<R, CallError>, success_resets: bool) -> Result<R, CallError> {
        match &result {
            Ok(_) if success_resets => self.recovery.succeeded(),
            Ok(_) => {}
            Err(CallError::Disabled) => {}
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                if matches!(e, CallError::Timeout(_)) {
                    self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                }
                *self.last_error.lock() = Some(e.to_string());
                match self.recovery.failed() {
                    AfterFailure::Counted(n) => {
                        tracing::warn!(plugin = &*self.name, error = %e, failures_in_a_row = n, "plugin call failed");
                    }
                    AfterFailure::Disabled { in_a_row, retry_in: Some(wait), relapses } => tracing::error!(
                        plugin = &*self.name,
                        error = %e,
                        relapses,
                        "plugin disabled after {in_a_row} failures in a row; tried again in {wait:?}"
                    ),
                    AfterFailure::Disabled { in_a_row, retry_in: None, .. } => tracing::error!(
                        plugin = &*self.name,
                        error = %e,
                        "plugin disabled after {in_a_row} failures in a row; replace its file to retry (recover = false)"
                    ),
                    AfterFailure::AlreadyDisabled => {}
                }
            }
        }
        result
    }

    /// Asks the selector. `Err` means fall through to the next one; an
    /// answer naming an engine that is not among `candidates` is a failure.
    pub async fn select(
        &self,
        request: &Request,
        candidates: &Candidates<'_>,
    ) -> Result<Selection, CallError> {
        let Some(indices) = &self.selector else { return Err(CallError::Disabled) };
        // Each selection has an instance of its own: one slow call never
        // queues another content's start behind it.
        let idle = self.idle_selectors.lock().pop();
        let mut instance = match idle {
            Some(instance) => instance,
            None => {
                let made = self.instantiate(|store, instance| indices.load(store, instance)).await;
                let (store, guest) = self.account_setup(made)?;
                SelectorInstance { store, guest, engines: None }
            }
        };
        let result = self.select_with(&mut instance, request, candidates).await;
        let result = result.and_then(|selection| match selection {
            WitSelection::Engine(position) => match candidates.id_at(position) {
                Some(id) => Ok(Selection::Engine(id.to_owned())),
                // (Every engine in the list is a candidate.)
                None => Err(CallError::BadOutput(format!(
                    "answered engine {position}, past the last candidate (position {})",
                    candidates.count().saturating_sub(1)
                ))),
            },
            WitSelection::NoOpinion => Ok(Selection::NoOpinion),
            WitSelection::Refuse(reason) => Ok(Selection::Refuse(reason)),
        });
        if !result.as_ref().is_err_and(CallError::poisons) {
            let mut idle = self.idle_selectors.lock();
            if idle.len() < IDLE_SELECTORS {
                idle.push(instance);
            }
        }
        self.account(result)
    }

    /// Gives the instance the engine list if it changed, then selects.
    async fn select_with(
        &self,
        instance: &mut SelectorInstance,
        request: &Request,
        candidates: &Candidates<'_>,
    ) -> Result<WitSelection, CallError> {
        let guest = &instance.guest;
        if !instance.engines.as_ref().is_some_and(|given| given.iter().copied().eq(candidates.serials())) {
            instance.engines = None;
            let engines = candidates.engines();
            self.guarded(&mut instance.store, |s| guest.call_set_engines(s, engines)).await?;
            instance.engines = Some(candidates.serials().collect());
        }
        let loads = &candidates.loads;
        self.guarded(&mut instance.store, |s| guest.call_select(s, request, loads)).await
    }

    /// A fresh store and instance, then `load` picks the export.
    pub(super) async fn instantiate<G>(
        &self,
        load: impl FnOnce(&mut Store<PluginState>, &wasmtime::component::Instance) -> wasmtime::Result<G>,
    ) -> Result<(Store<PluginState>, G), CallError> {
        let mut store = self
            .runtime
            .store(&self.name, &self.settings, &self.memory, &self.metrics)
            .map_err(|e| CallError::Trap(format!("{e:#}")))?;
        let pre = &self.pre;
        let made = self
            .guarded(&mut store, |s| async move {
                let instance = pre.instantiate_async(&mut *s).await?;
                load(s, &instance)
            })
            .await?;
        Ok((store, made))
    }

    /// This plugin's filter state for one stream.
    pub async fn stream_filter(self: &Arc<Self>, stream: &Stream) -> Result<StreamFilter, CallError> {
        let Some(indices) = &self.filter else { return Err(CallError::Disabled) };
        let made = self.instantiate(|store, instance| indices.load(store, instance)).await;
        let (mut store, guest) = self.account_setup(made)?;
        let iface = guest.stream_filter();
        let resource = self.guarded(&mut store, |s| iface.call_constructor(s, stream)).await;
        let resource = self.account_setup(resource)?;
        Ok(StreamFilter { plugin: self.clone(), store, guest, resource, stream: stream.clone() })
    }

    /// Asks a channel source for its channels (`source`: the `[[sources]]`
    /// table's name). The instance is kept between refreshes, so a source
    /// may keep state (a cache, validators); a trap or a timeout drops it.
    pub async fn channels(&self, source: &str) -> Result<Result<Vec<WitChannel>, String>, CallError> {
        let Some(indices) = &self.channel_source else { return Err(CallError::Disabled) };
        let idle = self.idle_source.lock().take();
        let (mut store, guest) = match idle {
            Some(instance) => instance,
            None => {
                let made = self.instantiate(|store, instance| indices.load(store, instance)).await;
                self.account_setup(made)?
            }
        };
        let result = self.guarded(&mut store, |s| guest.call_channels(s, source)).await;
        if !result.as_ref().is_err_and(CallError::poisons) {
            *self.idle_source.lock() = Some((store, guest));
        }
        self.account(result)
    }

    /// A store and instance for event delivery.
    pub async fn event_sink(self: &Arc<Self>) -> Result<EventSink, CallError> {
        let Some(indices) = &self.events else { return Err(CallError::Disabled) };
        let made = self.instantiate(|store, instance| indices.load(store, instance)).await;
        let (store, guest) = self.account_setup(made)?;
        Ok(EventSink { plugin: self.clone(), instance: Some((store, guest)) })
    }
}

/// A filter plugin's state for one stream.
pub struct StreamFilter {
    pub plugin: Arc<Plugin>,
    store: Store<PluginState>,
    guest: filter::Guest,
    resource: ResourceAny,
    stream: Stream,
}

impl StreamFilter {
    /// Runs one batch of whole packets through the filter; checks that the
    /// answer is whole packets, and no more than `max_output_ratio` times
    /// the input (or than that many times 16 packets, for small batches).
    pub async fn process(&mut self, batch: &[u8]) -> Result<Vec<u8>, CallError> {
        let (iface, resource) = (self.guest.stream_filter(), self.resource);
        let out = self.plugin.guarded(&mut self.store, |s| iface.call_process(s, resource, batch)).await;
        let most = self.plugin.settings.max_output_ratio * batch.len().max(16 * acemux_ts::PACKET_SIZE);
        let out = out.and_then(|out| {
            if out.len() > most {
                Err(CallError::BadOutput(format!(
                    "output of {} bytes for {} bytes in is over max_output_ratio = {}",
                    out.len(),
                    batch.len(),
                    self.plugin.settings.max_output_ratio
                )))
            } else if !acemux_ts::is_whole_packets(&out) {
                Err(CallError::BadOutput(format!("output of {} bytes is not whole TS packets", out.len())))
            } else {
                Ok(out)
            }
        });
        let poisoned = out.as_ref().is_err_and(CallError::poisons);
        let out = self.plugin.account(out);
        if poisoned {
            // Start over with fresh state for the next batch.
            if let Ok(fresh) = self.plugin.stream_filter(&self.stream).await {
                *self = fresh;
            }
        }
        out
    }
}

/// An event plugin's instance.
pub struct EventSink {
    pub plugin: Arc<Plugin>,
    instance: Option<(Store<PluginState>, events::Guest)>,
}

impl EventSink {
    pub async fn deliver(&mut self, event: &Event) -> Result<(), CallError> {
        if self.instance.is_none() {
            let indices = self.plugin.events.as_ref().ok_or(CallError::Disabled)?;
            let made = self.plugin.instantiate(|store, instance| indices.load(store, instance)).await;
            self.instance = Some(self.plugin.account_setup(made)?);
        }
        let (store, guest) = self.instance.as_mut().expect("instance just made");
        let result = self.plugin.guarded(store, |s| guest.call_on_event(s, event)).await;
        if result.as_ref().is_err_and(CallError::poisons) {
            self.instance = None;
        }
        self.plugin.account(result)
    }
}

/// Reads the component's exports: which phases, which package version.
fn inspect(
    runtime: &Runtime,
    component: &wasmtime::component::Component,
) -> anyhow::Result<(Capabilities, String)> {
    let ty = component.component_type();
    let mut caps = Capabilities::default();
    let mut version = None;
    for (name, _) in ty.exports(&runtime.engine) {
        let Some(rest) = name.strip_prefix(&format!("{PACKAGE}/")) else {
            continue;
        };
        let (interface, ver) = rest.split_once('@').unwrap_or((rest, ""));
        // (Other versions were refused before compiling.)
        if !compatible(ver) {
            continue;
        }
        version = Some(ver.to_owned());
        match interface {
            "selector" => caps.selector = true,
            "filter" => caps.filter = true,
            "events" => caps.events = true,
            "channel-source" => caps.channel_source = true,
            "access" => caps.access = true,
            _ => {}
        }
    }
    if caps == Capabilities::default() {
        bail!(
            "exports none of {PACKAGE}/selector, /filter, /events, /channel-source or /access @{PACKAGE_VERSION}"
        );
    }
    Ok((caps, version.unwrap_or_default()))
}
