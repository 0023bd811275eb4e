//! The wasmtime side: one engine for every plugin, the linker (WASI with
//! nothing granted, plus acemux's `host` interface), and stores with a
//! memory cap and a time budget per call.
//!
//! Time: epoch interruption. A ticker thread advances the engine's epoch
//! every [`TICK`]; before every call the store's deadline is set to the
//! plugin's budget in ticks, and a call past it traps. Memory: a
//! `StoreLimits` cap on linear memory growth, which traps too. A trap
//! poisons the instance, so callers drop it and instantiate afresh.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{self, Level};
use super::settings::PluginSettings;

/// Epoch tick: the granularity of time budgets.
pub const TICK: Duration = Duration::from_millis(1);

/// What a plugin's store holds.
pub struct PluginState {
    pub name: Arc<str>,
    pub config_json: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
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

/// The engine and linker shared by all plugins.
pub struct Runtime {
    pub engine: Engine,
    pub linker: Linker<PluginState>,
}

impl Runtime {
    pub fn new() -> anyhow::Result<Arc<Self>> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        let engine = any(Engine::new(&config)).context("cannot create the wasm engine")?;
        let mut linker = Linker::new(&engine);
        any(wasmtime_wasi::p2::add_to_linker_sync(&mut linker)).context("cannot link WASI")?;
        any(bindings::Plugin::add_to_linker::<PluginState, wasmtime::component::HasSelf<PluginState>>(
            &mut linker,
            |state| state,
        ))
        .context("cannot link the acemux host interface")?;
        let runtime = Arc::new(Self { engine, linker });
        spawn_ticker(&runtime.engine);
        Ok(runtime)
    }

    /// Compiles a component (CPU-heavy: call off the async threads).
    pub fn compile(&self, bytes: &[u8]) -> anyhow::Result<Component> {
        any(Component::new(&self.engine, bytes))
    }

    /// A store for one instance of a plugin, with its limits and grants.
    pub fn store(&self, name: &Arc<str>, settings: &PluginSettings) -> anyhow::Result<Store<PluginState>> {
        let mut wasi = WasiCtx::builder();
        if settings.grants.env {
            wasi.inherit_env();
        }
        if settings.grants.network {
            wasi.inherit_network();
            wasi.allow_ip_name_lookup(true);
        }
        for (host_dir, guest_dir) in &settings.grants.dirs {
            any(wasi.preopened_dir(host_dir, guest_dir, wasmtime_wasi::FsPerms::ReadOnly).map(|_| ()))
                .with_context(|| format!("plugin {name}: cannot grant directory {host_dir}"))?;
        }
        let limits = StoreLimitsBuilder::new()
            .memory_size(settings.memory_limit)
            .instances(16)
            .tables(64)
            .memories(16)
            .trap_on_grow_failure(true)
            .build();
        let state = PluginState {
            name: name.clone(),
            config_json: settings.config_json.clone(),
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(ticks(settings.time_budget));
        Ok(store)
    }
}

/// Runs a plugin call from async code. WASI's synchronous bindings block
/// on a tokio runtime internally, which an async worker thread must not do;
/// `block_in_place` hands this worker's other tasks to another thread for
/// the (budgeted, usually microsecond) length of the call.
pub fn off_async<R>(call: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(call)
        }
        _ => call(),
    }
}

/// wasmtime's error as anyhow's, so `.context()` applies.
pub fn any<T>(r: wasmtime::Result<T>) -> anyhow::Result<T> {
    r.map_err(anyhow::Error::from)
}

/// A time budget in epoch ticks (at least one).
pub fn ticks(budget: Duration) -> u64 {
    (budget.as_micros() / TICK.as_micros()).max(1) as u64 + 1
}

/// Advances the epoch every tick while the engine lives.
fn spawn_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("acemux-plugin-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .expect("spawn the plugin epoch thread");
}
