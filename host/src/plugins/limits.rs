//! A plugin instance's resource cap, remembering when it was the cap that
//! stopped a call, and counting what a plugin's instances hold.
//!
//! wasmtime's own `StoreLimits` traps with a message that, after the wasm
//! backtrace is attached, tells an operator nothing. This limiter records
//! that the memory cap was hit, so the failed call can be reported as
//! `memory limit 64 MiB reached` whatever the guest did next (trap at once,
//! or abort in its allocator after `memory.grow` failed).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde::Serialize;

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

/// The live instances of one plugin and the linear memory they hold (what
/// `/plugins` shows as the plugin's memory, beside its compiled code).
#[derive(Debug, Default)]
pub struct MemoryUse {
    instances: AtomicUsize,
    linear_bytes: AtomicUsize,
}

/// [`MemoryUse`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemoryView {
    pub instances: usize,
    pub linear_bytes: usize,
}

impl MemoryUse {
    pub fn view(&self) -> MemoryView {
        MemoryView {
            instances: self.instances.load(Ordering::Relaxed),
            linear_bytes: self.linear_bytes.load(Ordering::Relaxed),
        }
    }
}

/// See the module docs.
pub struct PluginLimits {
    inner: StoreLimits,
    memory_limit: usize,
    /// The guest asked for more memory than the cap since this was last
    /// cleared (before every call). Shared, so the caller can read it while
    /// the call's future holds the store.
    memory_hit: Arc<AtomicBool>,
    /// The plugin's count, and this instance's part of it.
    use_of_plugin: Arc<MemoryUse>,
    linear_bytes: usize,
}

impl PluginLimits {
    /// Limits for one new instance of a plugin whose instances `use_of_plugin`
    /// counts (until this is dropped with its store).
    pub fn new(memory_limit: usize, use_of_plugin: Arc<MemoryUse>) -> Self {
        let inner = StoreLimitsBuilder::new()
            .memory_size(memory_limit)
            .instances(16)
            .tables(64)
            .memories(16)
            .trap_on_grow_failure(true)
            .build();
        use_of_plugin.instances.fetch_add(1, Ordering::Relaxed);
        Self {
            inner,
            memory_limit,
            memory_hit: Arc::new(AtomicBool::new(false)),
            use_of_plugin,
            linear_bytes: 0,
        }
    }

    pub fn memory_limit(&self) -> usize {
        self.memory_limit
    }

    /// Set when a growth past the cap was refused.
    pub fn memory_hit(&self) -> Arc<AtomicBool> {
        self.memory_hit.clone()
    }
}

impl ResourceLimiter for PluginLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_hit.store(true, Ordering::Relaxed);
        }
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if allowed {
            let grown = desired.saturating_sub(current);
            self.linear_bytes += grown;
            self.use_of_plugin.linear_bytes.fetch_add(grown, Ordering::Relaxed);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

impl Drop for PluginLimits {
    fn drop(&mut self) {
        self.use_of_plugin.instances.fetch_sub(1, Ordering::Relaxed);
        self.use_of_plugin.linear_bytes.fetch_sub(self.linear_bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_a_growth_past_the_cap() {
        let mut l = PluginLimits::new(1 << 20, Arc::default());
        let hit = l.memory_hit();
        assert!(l.memory_growing(0, 1 << 19, None).unwrap());
        assert!(!hit.load(Ordering::Relaxed));
        assert!(l.memory_growing(1 << 19, 2 << 20, None).is_err(), "trap_on_grow_failure");
        assert!(hit.load(Ordering::Relaxed));
    }

    #[test]
    fn counts_instances_and_their_memory_until_dropped() {
        let use_of_plugin = Arc::new(MemoryUse::default());
        let mut a = PluginLimits::new(1 << 20, use_of_plugin.clone());
        let mut b = PluginLimits::new(1 << 20, use_of_plugin.clone());
        assert!(a.memory_growing(0, 65536, None).unwrap());
        assert!(a.memory_growing(65536, 131072, None).unwrap());
        assert!(b.memory_growing(0, 65536, None).unwrap());
        assert!(b.memory_growing(65536, 2 << 20, None).is_err(), "refused growth is not counted");
        assert_eq!(use_of_plugin.view(), MemoryView { instances: 2, linear_bytes: 196608 });
        drop(a);
        assert_eq!(use_of_plugin.view(), MemoryView { instances: 1, linear_bytes: 65536 });
        drop(b);
        assert_eq!(use_of_plugin.view(), MemoryView { instances: 0, linear_bytes: 0 });
    }
}
