//! Which memory is a mapping of a stream's file (see `super::pages`), so
//! the socket can send a buffer from the file instead of copying it.
//!
//! hyper hands the socket the body's bytes as plain slices; the only way
//! back from a slice to the file it came from is its address. A slice is
//! borrowed from a live `Bytes`, which keeps its window mapped and the file
//! open, so what a lookup returns stays valid while the slice does.

use std::collections::BTreeMap;
use std::os::fd::RawFd;

use parking_lot::RwLock;

struct Mapped {
    len: usize,
    fd: RawFd,
    offset: u64,
}

/// Mapped windows by start address.
static MAPPINGS: RwLock<BTreeMap<usize, Mapped>> = RwLock::new(BTreeMap::new());

pub(super) fn register(addr: usize, len: usize, fd: RawFd, offset: u64) {
    MAPPINGS.write().insert(addr, Mapped { len, fd, offset });
}

pub(super) fn unregister(addr: usize) {
    MAPPINGS.write().remove(&addr);
}

/// The file and offset `bytes` are a mapping of, if they lie wholly in one
/// window.
pub fn find(bytes: &[u8]) -> Option<(RawFd, u64)> {
    let addr = bytes.as_ptr() as usize;
    let map = MAPPINGS.read();
    let (&start, m) = map.range(..=addr).next_back()?;
    (addr + bytes.len() <= start + m.len).then(|| (m.fd, m.offset + (addr - start) as u64))
}
