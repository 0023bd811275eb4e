//! A stream's counters, defined once: the live atomics a session bumps, the
//! plain snapshot status and metrics read, and the names both use.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// Live counters of one session; all monotonic.
        #[derive(Debug, Default)]
        pub struct SessionCounters {
            $( $(#[$doc])* pub $name: AtomicU64, )*
        }

        /// A snapshot of [`SessionCounters`], or a sum of them.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
        pub struct CounterValues {
            $( $(#[$doc])* pub $name: u64, )*
        }

        impl SessionCounters {
            pub fn snapshot(&self) -> CounterValues {
                CounterValues { $( $name: self.$name.load(Ordering::Relaxed), )* }
            }
        }

        impl CounterValues {
            pub fn add(&mut self, other: &CounterValues) {
                $( self.$name += other.$name; )*
            }

            /// `(name, value)` of every counter, for metrics.
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![ $( (stringify!($name), self.$name), )* ]
            }
        }
    };
}

counters! {
    /// Bytes read from engines.
    upstream_bytes,
    /// Bytes handed to players' sockets.
    bytes_out,
    /// Upstream reconnects on the same engine.
    reconnects,
    /// Moves to another engine.
    failovers,
    /// Keepalive batches of null packets.
    keepalives,
    /// Upstream bytes thrown away while looking for TS sync.
    discarded_bytes,
    /// Times the upstream lost TS sync.
    sync_losses,
    /// Players that attached.
    players_total,
    /// Players that started at a keyframe, after PAT and PMT.
    keyframe_joins,
    /// Players that started at a chunk boundary (no keyframe known, or
    /// `join_at = chunk`).
    chunk_joins,
    /// Players that skipped ahead after falling behind the ring.
    skips,
    /// Players ended because they fell behind (lag policy `disconnect`).
    lag_disconnects,
    /// Players dropped because their socket accepted nothing in time.
    drops,
}
