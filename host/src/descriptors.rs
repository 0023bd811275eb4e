//! File descriptors: the resource a flood of idle sockets exhausts first.
//!
//! Every player connection costs one descriptor, and so does every engine
//! call, upstream, orchestrator request, plugin file and log. acemux raises
//! its soft limit to the hard limit at start (the usual default of 1024 is
//! a shell's, not a server's), then keeps a reserve out of the player
//! connection cap, so that however many players knock, engine health
//! probes, starts and upstreams still get a socket.

use rlimit::Resource;
use tracing::{info, warn};

/// Descriptors kept back from player connections: at most this many, and
/// at most a quarter of the limit (a tiny limit still serves players).
const RESERVE: u64 = 256;

/// The process's open-file limit after [`raise_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescriptorLimit {
    pub soft: u64,
    pub hard: u64,
}

impl DescriptorLimit {
    /// Descriptors kept for everything but player connections.
    pub fn reserve(&self) -> u64 {
        RESERVE.min(self.soft / 4)
    }

    /// The default cap on concurrent connections: the limit less the reserve.
    pub fn default_connection_cap(&self) -> usize {
        usize::try_from(self.soft - self.reserve()).unwrap_or(usize::MAX)
    }
}

/// Raises the soft open-file limit to the hard limit (logged), and says
/// what it is now.
pub fn raise_limit() -> DescriptorLimit {
    let (soft, hard) = match Resource::NOFILE.get() {
        Ok(limits) => limits,
        Err(e) => {
            warn!(error = %e, "cannot read the open-file limit; assuming 1024");
            return DescriptorLimit { soft: 1024, hard: 1024 };
        }
    };
    if soft >= hard {
        info!(limit = soft, "open-file limit");
        return DescriptorLimit { soft, hard };
    }
    match rlimit::increase_nofile_limit(hard) {
        Ok(raised) => {
            info!(from = soft, to = raised, "raised the open-file limit to the hard limit");
            DescriptorLimit { soft: raised, hard }
        }
        Err(e) => {
            warn!(limit = soft, hard, error = %e, "cannot raise the open-file limit");
            DescriptorLimit { soft, hard }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_bounded_both_ways() {
        let typical = DescriptorLimit { soft: 1024, hard: 1024 };
        assert_eq!(typical.reserve(), 256);
        assert_eq!(typical.default_connection_cap(), 768);
        let tiny = DescriptorLimit { soft: 100, hard: 100 };
        assert_eq!(tiny.reserve(), 25);
        let large = DescriptorLimit { soft: 1 << 20, hard: 1 << 20 };
        assert_eq!(large.default_connection_cap(), (1 << 20) - 256);
    }

    #[test]
    fn raising_never_lowers() {
        let before = Resource::NOFILE.get().unwrap();
        let after = raise_limit();
        assert!(after.soft >= before.0 && after.soft <= after.hard);
    }
}
