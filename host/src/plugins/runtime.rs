//! The wasmtime side: one engine for every plugin, the linker (WASI with
//! nothing granted, plus acemux's `host` interface), and stores with a
//! memory cap and the sandbox openings the operator granted.
//!
//! Every call is async, and its time budget is an ordinary tokio deadline
//! around the call's future (see `Plugin::guarded`): when it passes, the
//! future is dropped, the wasm stack is unwound, and the (now poisoned)
//! instance is thrown away — whatever the plugin was doing, and without a
//! thread left blocked. A plugin waiting in a WASI call (a clock, a poll, a
//! socket) returns `Pending` by itself; wasm code that computes is made to
//! yield by epoch interruption once it has run for its whole budget (a
//! ticker thread advances the epoch every [`TICK`] while calls are in
//! flight, and sleeps when none came for a moment, so plugins cost nothing
//! between calls). A call that ends within its budget never yields, so a
//! busy runtime that polls it late cannot make it look slow.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use anyhow::Context;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, Strategy};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{self, Level};
use super::cache::{CompileCache, Compiled};
use super::host_settings::PluginCompiler;
use super::limits::{MemoryUse, PluginLimits};
use super::metrics::{MetricsScope, Update};
use super::settings::PluginSettings;

/// Epoch tick: the granularity at which computing wasm code is stopped.
pub const TICK: Duration = Duration::from_millis(1);

/// What a plugin's store holds.
pub struct PluginState {
    pub name: Arc<str>,
    pub config_json: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: PluginLimits,
    pub metrics: MetricsScope,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl bindings::acemux::plugin::host::Host for PluginState {
    fn log(&mut self, level: Level, message: String) {
        let plugin = &*self.name;
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
    }

    fn config(&mut self) -> String {
        self.config_json.to_string()
    }
}

impl bindings::acemux::plugin::types::Host for PluginState {}

impl bindings::acemux::plugin::metrics::Host for PluginState {
    fn define(&mut self, metric: bindings::Metric) -> Result<u32, String> {
        self.metrics.define(metric)
    }

    fn series(&mut self, metric: u32, label_values: Vec<String>) -> Result<u32, String> {
        self.metrics.series(metric, label_values)
    }

    fn add(&mut self, series: u32, value: f64) -> Result<(), String> {
        self.metrics.update(series, Update::Add, value)
    }

    fn set(&mut self, series: u32, value: f64) -> Result<(), String> {
        self.metrics.update(series, Update::Set, value)
    }

    fn observe(&mut self, series: u32, value: f64) -> Result<(), String> {
        self.metrics.update(series, Update::Observe, value)
    }
}

/// The engine and linker shared by all plugins.
pub struct Runtime {
    pub engine: Engine,
    pub linker: Linker<PluginState>,
    ticker: Arc<Ticker>,
    /// Compiled components on disk (`None`: compile every load).
    cache: Option<CompileCache>,
    /// What compiles here (Cranelift or Winch).
    pub compiler: PluginCompiler,
}

impl Runtime {
    pub fn new(cache: Option<CompileCache>, compiler: PluginCompiler) -> anyhow::Result<Arc<Self>> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.strategy(match compiler {
            PluginCompiler::Cranelift | PluginCompiler::Tiered => Strategy::Cranelift,
            PluginCompiler::Winch => Strategy::Winch,
        });
        let engine = any(Engine::new(&config)).context("cannot create the wasm engine")?;
        let mut linker = Linker::new(&engine);
        any(wasmtime_wasi::p2::add_to_linker_async(&mut linker)).context("cannot link WASI")?;
        any(bindings::Plugin::add_to_linker::<PluginState, wasmtime::component::HasSelf<PluginState>>(
            &mut linker,
            |state| state,
        ))
        .context("cannot link the acemux host interface")?;
        let ticker = Arc::new(Ticker::default());
        spawn_ticker(&engine, ticker.clone()).context("cannot start the plugin epoch thread")?;
        let compiler =
            if compiler == PluginCompiler::Winch { PluginCompiler::Winch } else { PluginCompiler::Cranelift };
        Ok(Arc::new(Self { engine, linker, ticker, cache, compiler }))
    }

    /// Whether the compile cache holds this code compiled by this runtime.
    pub fn has_compiled(&self, bytes: &[u8]) -> bool {
        self.cache.as_ref().is_some_and(|c| c.holds(&self.engine, bytes))
    }

    /// Keeps the epoch advancing while the returned guard lives: hold one
    /// for the whole of every plugin call.
    pub fn call_in_flight(&self) -> InFlight<'_> {
        // (SeqCst here and in the ticker: either this call sees the ticker
        // asleep and wakes it, or the ticker sees this call and stays up.)
        if self.ticker.in_flight.fetch_add(1, Ordering::SeqCst) == 0
            && self.ticker.asleep.load(Ordering::SeqCst)
        {
            let _lock = self.ticker.lock.lock();
            self.ticker.wake.notify_one();
        }
        InFlight { ticker: &self.ticker }
    }

    /// Compiles a component, or loads it from the compile cache (either
    /// can be CPU-heavy: call off the async threads).
    pub fn compile(&self, bytes: &[u8]) -> anyhow::Result<(Component, Compiled)> {
        match &self.cache {
            Some(cache) => any(cache.component(&self.engine, bytes)),
            None => any(Component::new(&self.engine, bytes)).map(|c| (c, Compiled::Fresh)),
        }
    }

    /// A store for one instance of a plugin, with its limits and grants;
    /// `memory` counts the instance while the store lives.
    pub fn store(
        &self,
        name: &Arc<str>,
        settings: &PluginSettings,
        memory: &Arc<MemoryUse>,
        metrics: &MetricsScope,
    ) -> anyhow::Result<Store<PluginState>> {
        let mut wasi = WasiCtx::builder();
        // Only the variables the operator listed, and only those set.
        for variable in &settings.grants.env {
            if let Ok(value) = std::env::var(variable) {
                wasi.env(variable, value);
            }
        }
        if settings.grants.network {
            wasi.inherit_network();
            wasi.allow_ip_name_lookup(true);
            wasi.allow_tcp(true);
            wasi.allow_udp(true);
        }
        for (host_dir, guest_dir) in &settings.grants.dirs {
            any(wasi.preopened_dir(host_dir, guest_dir, wasmtime_wasi::FsPerms::ReadOnly).map(|_| ()))
                .with_context(|| format!("plugin {name}: cannot grant directory {host_dir}"))?;
        }
        let state = PluginState {
            name: name.clone(),
            config_json: settings.config_json.clone(),
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits: PluginLimits::new(settings.memory_limit, memory.clone()),
            metrics: metrics.clone(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        // Past its budget, computing code yields, and the caller's deadline
        // (already passed) ends the call.
        store.epoch_deadline_async_yield_and_update(ticks(settings.time_budget));
        Ok(store)
    }
}

/// wasmtime's error as anyhow's, so `.context()` applies.
pub fn any<T>(r: wasmtime::Result<T>) -> anyhow::Result<T> {
    r.map_err(anyhow::Error::from)
}

/// Epoch ticks that surely outlast `budget`: a deadline of `n` ticks
/// passes between `n - 1` and `n` ticks from now, so one tick more makes
/// the first yield come after the caller's deadline (at most a tick late).
pub fn ticks(budget: Duration) -> u64 {
    budget.as_micros().div_ceil(TICK.as_micros()) as u64 + 1
}

/// Plugin calls in flight, and where the ticker sleeps while there is none.
#[derive(Default)]
struct Ticker {
    in_flight: AtomicUsize,
    /// The ticker waits on `wake` (a new call must notify it).
    asleep: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

/// One plugin call in flight (see [`Runtime::call_in_flight`]).
pub struct InFlight<'a> {
    ticker: &'a Ticker,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.ticker.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Longest the ticker sleeps with no call in flight before it looks again
/// whether the engine is gone (a wake-up from a new call comes at once).
const IDLE_CHECK: Duration = Duration::from_secs(5);

/// Ticks the ticker goes on after the last call ended before it sleeps:
/// calls that follow each other closely (a busy selector, a filter per
/// chunk) then cost no wake-up each.
const LINGER_TICKS: u32 = 50;

/// Advances the epoch every tick while a plugin call is in flight; sleeps
/// on a condition variable otherwise; ends when the engine is dropped.
fn spawn_ticker(engine: &Engine, ticker: Arc<Ticker>) -> std::io::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("acemux-plugin-epoch".into())
        .spawn(move || {
            let mut idle_ticks = 0;
            loop {
                if ticker.in_flight.load(Ordering::SeqCst) == 0 {
                    idle_ticks += 1;
                } else {
                    idle_ticks = 0;
                }
                if idle_ticks > LINGER_TICKS {
                    let mut lock = ticker.lock.lock();
                    ticker.asleep.store(true, Ordering::SeqCst);
                    // Checked again after saying so: a call that began in
                    // between either saw `asleep` and will notify (we hold
                    // the lock it needs until we wait), or is counted here.
                    if ticker.in_flight.load(Ordering::SeqCst) == 0 {
                        ticker.wake.wait_for(&mut lock, IDLE_CHECK);
                    }
                    ticker.asleep.store(false, Ordering::SeqCst);
                    idle_ticks = 0;
                }
                let Some(engine) = weak.upgrade() else { return };
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_in_ticks_outlasts_the_budget() {
        assert_eq!(ticks(Duration::from_millis(10)), 11);
        assert_eq!(ticks(Duration::from_micros(1500)), 3);
        assert_eq!(ticks(Duration::from_micros(1)), 2);
    }
}
