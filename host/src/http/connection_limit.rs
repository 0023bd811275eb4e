//! How many connections acemux holds open: in all, and per client address.
//!
//! Each open connection costs a file descriptor and kernel buffers whether
//! it reads or not. The total cap keeps descriptors back for engines (see
//! [`crate::descriptors`]); the per-address cap stops one client (or one
//! attacker) from taking all of them. A connection over either cap is
//! answered 503 and closed by the accept loop.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("acemux is at its connection limit ({0}); try again later")]
    Total(usize),
    #[error("too many connections from your address (limit {0})")]
    PerClient(usize),
}

/// See the module docs.
pub struct ConnectionLimit {
    total_cap: usize,
    per_client_cap: Option<usize>,
    open: Mutex<OpenConnections>,
    /// Connections refused since start, by the total and the per-address cap.
    pub refused_total: AtomicU64,
    pub refused_per_client: AtomicU64,
}

#[derive(Default)]
struct OpenConnections {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it frees its place.
pub struct ConnectionPermit {
    limit: Arc<ConnectionLimit>,
    client: IpAddr,
}

impl ConnectionLimit {
    pub fn new(total_cap: usize, per_client_cap: Option<usize>) -> Arc<Self> {
        Arc::new(Self {
            total_cap,
            per_client_cap,
            open: Mutex::new(OpenConnections::default()),
            refused_total: AtomicU64::new(0),
            refused_per_client: AtomicU64::new(0),
        })
    }

    /// Takes a place for a connection from `client`, or says why not.
    pub fn admit(self: &Arc<Self>, client: IpAddr) -> Result<ConnectionPermit, Refusal> {
        // An IPv4 client on a dual-stack socket is one address, not two.
        let client = client.to_canonical();
        let mut open = self.open.lock();
        if open.total >= self.total_cap {
            self.refused_total.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Total(self.total_cap));
        }
        let from_client = open.per_client.entry(client).or_default();
        if let Some(cap) = self.per_client_cap
            && *from_client >= cap
        {
            self.refused_per_client.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::PerClient(cap));
        }
        *from_client += 1;
        open.total += 1;
        Ok(ConnectionPermit { limit: self.clone(), client })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().total
    }

    pub fn total_cap(&self) -> usize {
        self.total_cap
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut open = self.limit.open.lock();
        open.total -= 1;
        if let Some(n) = open.per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.per_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn caps_in_all_and_per_address_and_frees_on_drop() {
        let limit = ConnectionLimit::new(3, Some(2));
        let a1 = limit.admit(ip("10.0.0.1")).unwrap();
        let _a2 = limit.admit(ip("::ffff:10.0.0.1")).unwrap();
        assert_eq!(limit.admit(ip("10.0.0.1")).err(), Some(Refusal::PerClient(2)));
        let _b = limit.admit(ip("10.0.0.2")).unwrap();
        assert_eq!(limit.admit(ip("10.0.0.3")).err(), Some(Refusal::Total(3)));
        drop(a1);
        assert_eq!(limit.open(), 2);
        let _c = limit.admit(ip("10.0.0.3")).unwrap();
        assert_eq!(limit.refused_total.load(Ordering::Relaxed), 1);
        assert_eq!(limit.refused_per_client.load(Ordering::Relaxed), 1);
        assert!(limit.open.lock().per_client.len() <= 3, "no entry kept for gone clients");
    }

    #[test]
    fn no_per_address_cap_when_unset() {
        let limit = ConnectionLimit::new(100, None);
        let permits: Vec<_> = (0..100).map(|_| limit.admit(ip("127.0.0.1")).unwrap()).collect();
        assert_eq!(permits.len(), 100);
    }
}
