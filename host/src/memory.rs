//! Giving memory back: allocator tuning for a process whose memory comes
//! in bursts (stream buffers, HLS windows, thousands of connections) and
//! should shrink again when they are gone.
//!
//! glibc's malloc serves buffers below its mmap threshold (128 KiB, rising
//! as big blocks are freed) from per-thread arenas and keeps what is freed
//! there: after a load goes away the process stays at its peak. Two
//! settings fix that without changing allocator (measured in
//! `docs/benchmarks.md`):
//!
//! - buffers of [`MMAP_FROM`] and more (every stream chunk) get their own
//!   mapping, returned to the system the moment the last reader drops it;
//! - [`trim`] hands the free pages of every arena back; acemux calls it
//!   every [`TRIM_EVERY`].
//!
//! Other C libraries (musl, in the container image) return memory on their
//! own; there this module does nothing. `ACEMUX_ALLOCATOR_TUNING=0` turns
//! it off (for comparisons).

use std::time::Duration;

/// Allocations this large or larger are mapped on their own.
pub const MMAP_FROM: usize = 32 * 1024;

/// How often free arena pages are handed back.
pub const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Whether the tuning applies (glibc, and not turned off).
pub fn enabled() -> bool {
    cfg!(all(target_os = "linux", target_env = "gnu"))
        && std::env::var("ACEMUX_ALLOCATOR_TUNING").map_or(true, |v| v != "0")
}

/// Sets the mmap threshold. Call once at start, before the runtime's
/// threads allocate much.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if enabled() {
        // SAFETY: mallopt only changes the allocator's parameters.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_FROM as libc::c_int);
        }
    }
}

/// Hands the free pages of every malloc arena back to the system.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if enabled() {
        // SAFETY: malloc_trim walks the allocator's own free lists.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// Trims every [`TRIM_EVERY`] until `stop` (on a blocking thread: a trim
/// of a large heap takes a moment).
pub async fn trim_periodically(stop: tokio_util::sync::CancellationToken) {
    if !enabled() {
        return;
    }
    let mut every = tokio::time::interval(TRIM_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {
                let _ = tokio::task::spawn_blocking(trim).await;
            }
            _ = stop.cancelled() => return,
        }
    }
}
