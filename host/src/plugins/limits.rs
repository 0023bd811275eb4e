//! A plugin instance's resource cap, remembering when it was the cap that
//! stopped a call.
//!
//! wasmtime's own `StoreLimits` traps with a message that, after the wasm
//! backtrace is attached, tells an operator nothing. This limiter records
//! that the memory cap was hit, so the failed call can be reported as
//! `memory limit 32 MiB reached` whatever the guest did next (trap at once,
//! or abort in its allocator after `memory.grow` failed).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

/// See the module docs.
pub struct PluginLimits {
    inner: StoreLimits,
    memory_limit: usize,
    /// The guest asked for more memory than the cap since this was last
    /// cleared (before every call). Shared, so the caller can read it while
    /// the call's future holds the store.
    memory_hit: Arc<AtomicBool>,
}

impl PluginLimits {
    pub fn new(memory_limit: usize) -> Self {
        let inner = StoreLimitsBuilder::new()
            .memory_size(memory_limit)
            .instances(16)
            .tables(64)
            .memories(16)
            .trap_on_grow_failure(true)
            .build();
        Self { inner, memory_limit, memory_hit: Arc::new(AtomicBool::new(false)) }
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
        self.inner.memory_growing(current, desired, maximum)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_a_growth_past_the_cap() {
        let mut l = PluginLimits::new(1 << 20);
        let hit = l.memory_hit();
        assert!(l.memory_growing(0, 1 << 19, None).unwrap());
        assert!(!hit.load(Ordering::Relaxed));
        assert!(l.memory_growing(1 << 19, 2 << 20, None).is_err(), "trap_on_grow_failure");
        assert!(hit.load(Ordering::Relaxed));
    }
}
