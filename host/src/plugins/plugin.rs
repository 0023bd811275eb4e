//! One loaded plugin: its compiled component, what it exports, and guarded
//! calls into it.
//!
//! Every call runs with the plugin's time budget and memory cap. A call
//! that traps, times out, runs out of memory or answers nonsense fails
//! alone: the caller falls back, the failure is counted, and the poisoned
//! instance is dropped (the next call instantiates afresh). After
//! `max_failures` failures in a row the plugin is disabled until its file
//! changes.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Instant, SystemTime};

use anyhow::{Context, bail};
use parking_lot::Mutex;
use serde::Serialize;
use wasmtime::component::{InstancePre, ResourceAny};
use wasmtime::{Store, Trap};

use super::bindings::exports::acemux::plugin::{events, filter, selector};
use super::bindings::{Engine, Event, Request, Selection, Stream};
use super::runtime::{PluginState, Runtime, any, ticks};
use super::settings::PluginSettings;
use super::stats::PluginStats;

/// The WIT package this host speaks.
pub const PACKAGE: &str = "acemux:plugin";
pub const PACKAGE_VERSION: &str = "0.1.0";

/// The phases a plugin takes part in (from its exports).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    pub selector: bool,
    pub filter: bool,
    pub events: bool,
}

/// Why one call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("time budget exceeded")]
    Timeout,
    #[error("trapped: {0}")]
    Trap(String),
    #[error("{0}")]
    BadOutput(String),
    #[error("disabled")]
    Disabled,
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
    pub stats: PluginStats,
    runtime: Arc<Runtime>,
    pre: InstancePre<PluginState>,
    selector: Option<selector::GuestIndices>,
    filter: Option<filter::GuestIndices>,
    events: Option<events::GuestIndices>,
    /// The selector's long-lived instance (selection calls are short).
    selector_instance: Mutex<Option<(Store<PluginState>, selector::Guest)>>,
    disabled: AtomicBool,
    failures_in_a_row: AtomicU32,
    last_error: Mutex<Option<String>>,
}

impl Plugin {
    /// Compiles and checks a component. CPU-heavy: call off the async threads.
    pub fn load(
        runtime: &Arc<Runtime>,
        name: &str,
        file: PathBuf,
        bytes: &[u8],
        settings: PluginSettings,
        fingerprint: [u8; 32],
    ) -> anyhow::Result<Self> {
        let component = runtime.compile(bytes).context("not a valid WebAssembly component")?;
        let (capabilities, version) = inspect(runtime, &component)?;
        let pre = any(runtime.linker.instantiate_pre(&component))
            .context("the component imports something acemux does not provide")?;
        let selector = capabilities.selector.then(|| any(selector::GuestIndices::new(&pre))).transpose()?;
        let filter = capabilities.filter.then(|| any(filter::GuestIndices::new(&pre))).transpose()?;
        let events = capabilities.events.then(|| any(events::GuestIndices::new(&pre))).transpose()?;
        let plugin = Self {
            name: Arc::from(name),
            file,
            fingerprint,
            version,
            capabilities,
            settings,
            loaded_at: SystemTime::now(),
            stats: PluginStats::default(),
            runtime: runtime.clone(),
            pre,
            selector,
            filter,
            events,
            selector_instance: Mutex::new(None),
            disabled: AtomicBool::new(false),
            failures_in_a_row: AtomicU32::new(0),
            last_error: Mutex::new(None),
        };
        // Instantiate once now, so a plugin that cannot start fails the load.
        let mut store = plugin.runtime.store(&plugin.name, &plugin.settings)?;
        any(plugin.pre.instantiate(&mut store)).context("instantiation failed")?;
        Ok(plugin)
    }

    pub fn is_disabled(&self) -> bool {
        self.disabled.load(Ordering::Relaxed)
    }

    pub fn is_active(&self) -> bool {
        self.settings.enabled && !self.is_disabled()
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().clone()
    }

    /// Runs one call with the budget, timing and failure accounting.
    fn guarded<R>(
        &self,
        store: &mut Store<PluginState>,
        call: impl FnOnce(&mut Store<PluginState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        if !self.is_active() {
            return Err(CallError::Disabled);
        }
        store.set_epoch_deadline(ticks(self.settings.time_budget));
        let started = Instant::now();
        let result = call(store);
        self.stats.record(started.elapsed());
        result.map_err(|e| match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => CallError::Timeout,
            // The trap's reason; the wasm backtrace says nothing to an operator.
            Some(trap) => CallError::Trap(trap.to_string()),
            None => CallError::Trap(e.to_string()),
        })
    }

    /// Counts a call's outcome; disables the plugin after too many
    /// failures in a row.
    pub fn account<R>(&self, result: Result<R, CallError>) -> Result<R, CallError> {
        self.account_as(result, true)
    }

    /// Like [`Plugin::account`] for setting up an instance: a success
    /// there proves nothing about the plugin's calls, so it does not end a
    /// streak of failures.
    fn account_setup<R>(&self, result: Result<R, CallError>) -> Result<R, CallError> {
        self.account_as(result, false)
    }

    fn account_as<R>(&self, result: Result<R, CallError>, success_resets: bool) -> Result<R, CallError> {
        match &result {
            Ok(_) if success_resets => self.failures_in_a_row.store(0, Ordering::Relaxed),
            Ok(_) => {}
            Err(CallError::Disabled) => {}
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                if matches!(e, CallError::Timeout) {
                    self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                }
                *self.last_error.lock() = Some(e.to_string());
                let n = self.failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(plugin = &*self.name, error = %e, failures_in_a_row = n, "plugin call failed");
                if n >= self.settings.max_failures && !self.disabled.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        plugin = &*self.name,
                        "plugin disabled after {n} failures in a row; replace its file to retry"
                    );
                }
            }
        }
        result
    }

    /// Asks the selector; `Err` means fall through to the next one.
    pub fn select(&self, request: &Request, candidates: &[Engine]) -> Result<Selection, CallError> {
        let Some(indices) = &self.selector else { return Err(CallError::Disabled) };
        let mut slot = self.selector_instance.lock();
        if slot.is_none() {
            let made = self.instantiate(|store, instance| indices.load(store, instance));
            *slot = Some(self.account_setup(made)?);
        }
        let (store, guest) = slot.as_mut().expect("instance just made");
        let result = self.guarded(store, |s| guest.call_select(s, request, candidates));
        if result.is_err() {
            // A trap poisons the instance.
            *slot = None;
        }
        self.account(result)
    }

    /// A fresh store and instance, then `load` picks the export.
    fn instantiate<G>(
        &self,
        load: impl FnOnce(&mut Store<PluginState>, &wasmtime::component::Instance) -> wasmtime::Result<G>,
    ) -> Result<(Store<PluginState>, G), CallError> {
        let mut store =
            self.runtime.store(&self.name, &self.settings).map_err(|e| CallError::Trap(format!("{e:#}")))?;
        let made = self.guarded(&mut store, |s| {
            let instance = self.pre.instantiate(&mut *s)?;
            load(s, &instance)
        })?;
        Ok((store, made))
    }

    /// This plugin's filter state for one stream.
    pub fn stream_filter(self: &Arc<Self>, stream: &Stream) -> Result<StreamFilter, CallError> {
        let Some(indices) = &self.filter else { return Err(CallError::Disabled) };
        let made = self.instantiate(|store, instance| {
            let guest = indices.load(&mut *store, instance)?;
            Ok(guest)
        });
        let (mut store, guest) = self.account_setup(made)?;
        let resource = self.guarded(&mut store, |s| guest.stream_filter().call_constructor(s, stream));
        let resource = self.account_setup(resource)?;
        Ok(StreamFilter { plugin: self.clone(), store, guest, resource, stream: stream.clone() })
    }

    /// A store and instance for event delivery.
    pub fn event_sink(self: &Arc<Self>) -> Result<EventSink, CallError> {
        let Some(indices) = &self.events else { return Err(CallError::Disabled) };
        let made = self.instantiate(|store, instance| indices.load(store, instance));
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
    /// answer is whole packets too.
    pub fn process(&mut self, batch: &[u8]) -> Result<Vec<u8>, CallError> {
        let (guest, resource) = (&self.guest, self.resource);
        let out =
            self.plugin.guarded(&mut self.store, |s| guest.stream_filter().call_process(s, resource, batch));
        let out = out.and_then(|out| {
            if acemux_ts::is_whole_packets(&out) {
                Ok(out)
            } else {
                Err(CallError::BadOutput(format!("output of {} bytes is not whole TS packets", out.len())))
            }
        });
        let trapped = matches!(out, Err(CallError::Timeout | CallError::Trap(_)));
        let out = self.plugin.account(out);
        if trapped {
            // Poisoned: start over with fresh state for the next batch.
            if let Ok(fresh) = self.plugin.stream_filter(&self.stream) {
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
    pub fn deliver(&mut self, event: &Event) -> Result<(), CallError> {
        if self.instance.is_none() {
            let indices = self.plugin.events.as_ref().ok_or(CallError::Disabled)?;
            let made = self.plugin.instantiate(|store, instance| indices.load(store, instance));
            self.instance = Some(self.plugin.account_setup(made)?);
        }
        let (store, guest) = self.instance.as_mut().expect("instance just made");
        let result = self.plugin.guarded(store, |s| guest.call_on_event(s, event));
        if result.is_err() {
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
    let mut foreign = Vec::new();
    for (name, _) in ty.exports(&runtime.engine) {
        let Some(rest) = name.strip_prefix(&format!("{PACKAGE}/")) else {
            continue;
        };
        let (interface, ver) = rest.split_once('@').unwrap_or((rest, ""));
        if !compatible(ver) {
            foreign.push(ver.to_owned());
            continue;
        }
        version = Some(ver.to_owned());
        match interface {
            "selector" => caps.selector = true,
            "filter" => caps.filter = true,
            "events" => caps.events = true,
            _ => {}
        }
    }
    if let Some(v) = foreign.first() {
        bail!(
            "built for {PACKAGE}@{v}; this acemux speaks {PACKAGE}@{PACKAGE_VERSION} (rebuild the plugin against a matching SDK)"
        );
    }
    if caps == Capabilities::default() {
        bail!("exports none of {PACKAGE}/selector, /filter or /events @{PACKAGE_VERSION}");
    }
    Ok((caps, version.unwrap_or_default()))
}

/// Semver compatibility with this host's 0.1.x: same minor while 0.x.
fn compatible(version: &str) -> bool {
    let mut ours = PACKAGE_VERSION.split('.');
    let mut theirs = version.split('.');
    ours.next() == theirs.next() && ours.next() == theirs.next()
}

#[cfg(test)]
mod tests {
    use super::compatible;

    #[test]
    fn only_the_same_minor_version_is_compatible() {
        assert!(compatible("0.1.0"));
        assert!(compatible("0.1.7"));
        assert!(!compatible("0.2.0"));
        assert!(!compatible("1.1.0"));
        assert!(!compatible(""));
    }
}
