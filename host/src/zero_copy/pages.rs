//! A stream's chunks kept in kernel pages, so players can be fed from them
//! without a copy per player (see `super::socket`).
//!
//! Each stream appends its chunks to an anonymous in-memory file (a
//! `memfd`): the chunk is copied into the file once, at a page boundary,
//! and handed to the ring as a `Bytes` that reads the file's pages through
//! a shared read-only mapping. The file is append-only: a page, once
//! written and possibly handed to a socket by `sendfile(2)`, is never
//! written again. When the last `Bytes` of a chunk is dropped (the ring
//! evicted it and no player or HLS segment holds it), its pages are
//! released (`fallocate(PUNCH_HOLE)`), so the file holds what the ring and
//! the HLS window hold, as the heap did.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::mappings;

const PAGE: u64 = 4096;

/// The file is mapped in windows of this size; a chunk lies in one window.
/// Larger chunks stay on the heap.
pub const WINDOW: u64 = 4 << 20;

/// Offsets only grow; past this a stream starts a new file (1 TiB: more
/// than a day at 10 MB/s), so no offset overflows what the kernel takes.
const FILE_LIMIT: u64 = 1 << 40;

/// Bytes of kernel pages held by every store.
static HELD_BYTES: AtomicU64 = AtomicU64::new(0);

/// Bytes of kernel pages every stream's store holds now (page cache, not
/// counted in the process's resident memory).
pub fn held_bytes() -> u64 {
    HELD_BYTES.load(Ordering::Relaxed)
}

/// One stream's file. See the module docs.
pub struct PageStore {
    file: Arc<MemFile>,
    window: Option<Arc<Window>>,
    /// Where the next chunk goes (page aligned).
    next: u64,
}

struct MemFile(OwnedFd);

impl MemFile {
    fn create() -> io::Result<Arc<Self>> {
        // SAFETY: a NUL-terminated name and valid flags.
        let fd = unsafe { libc::memfd_create(c"acemux-stream".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned to us and nothing else owns it.
        Ok(Arc::new(Self(unsafe { OwnedFd::from_raw_fd(fd) })))
    }

    fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// A read-only shared mapping of `len` bytes of the file from `offset`.
struct Window {
    file: Arc<MemFile>,
    addr: usize,
    offset: u64,
    len: usize,
}

impl Window {
    fn map(file: Arc<MemFile>, offset: u64) -> io::Result<Arc<Self>> {
        let len = WINDOW as usize;
        // The file must reach the window's end before it is mapped.
        // SAFETY: plain syscalls on our own descriptor.
        if unsafe { libc::ftruncate(file.fd(), (offset + WINDOW) as libc::off_t) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh read-only shared mapping of our own file; unmapped
        // only in `Drop`, after every slice of it is gone.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.fd(),
                offset as libc::off_t,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let addr = addr as usize;
        mappings::register(addr, len, file.fd(), offset);
        Ok(Arc::new(Self { file, addr, offset, len }))
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        mappings::unregister(self.addr);
        // SAFETY: our own mapping; nothing refers to it any more.
        unsafe { libc::munmap(self.addr as *mut libc::c_void, self.len) };
    }
}

/// One chunk's bytes in a window: what a `Bytes` of the store owns.
struct Piece {
    window: Arc<Window>,
    /// Offset in the window, and length.
    start: usize,
    len: usize,
}

impl AsRef<[u8]> for Piece {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the range was written before the piece was made, lies in
        // the window (checked in `keep`), and the window outlives the piece.
        unsafe { std::slice::from_raw_parts((self.window.addr + self.start) as *const u8, self.len) }
    }
}

impl Drop for Piece {
    fn drop(&mut self) {
        let pages = (self.len as u64).div_ceil(PAGE) * PAGE;
        let at = self.window.offset + self.start as u64;
        // SAFETY: plain syscall on our own descriptor; the pages are this
        // piece's alone (chunks start on page boundaries).
        unsafe {
            libc::fallocate(
                self.window.file.fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                at as libc::off_t,
                pages as libc::off_t,
            )
        };
        HELD_BYTES.fetch_sub(pages, Ordering::Relaxed);
    }
}

impl PageStore {
    pub fn new() -> io::Result<Self> {
        Ok(Self { file: MemFile::create()?, window: None, next: 0 })
    }

    /// `data` copied into the file once, as a `Bytes` of the file's pages;
    /// or `data` itself when it cannot be (larger than a window, or the
    /// kernel refused: out of memory, a descriptor limit).
    pub fn keep(&mut self, data: Bytes) -> Bytes {
        if data.len() as u64 > WINDOW || data.is_empty() {
            return data;
        }
        match self.copy_in(&data) {
            Ok(kept) => kept,
            Err(e) => {
                tracing::warn!(error = %e, "cannot keep a chunk in kernel pages; it stays on the heap");
                data
            }
        }
    }

    fn copy_in(&mut self, data: &[u8]) -> io::Result<Bytes> {
        let len = data.len() as u64;
        let window = match &self.window {
            Some(w) if self.next + len <= w.offset + w.len as u64 => w.clone(),
            _ => {
                let mut start = self.next.div_ceil(WINDOW) * WINDOW;
                if start + WINDOW > FILE_LIMIT {
                    self.file = MemFile::create()?;
                    start = 0;
                }
                let w = Window::map(self.file.clone(), start)?;
                self.next = start;
                self.window = Some(w.clone());
                w
            }
        };
        pwrite_all(self.file.fd(), data, self.next)?;
        let piece = Piece { start: (self.next - window.offset) as usize, window, len: data.len() };
        self.next = (self.next + len).div_ceil(PAGE) * PAGE;
        HELD_BYTES.fetch_add(len.div_ceil(PAGE) * PAGE, Ordering::Relaxed);
        Ok(Bytes::from_owner(piece))
    }
}

/// Writes all of `data` at `offset` of `fd`.
fn pwrite_all(fd: RawFd, mut data: &[u8], mut offset: u64) -> io::Result<()> {
    while !data.is_empty() {
        // SAFETY: `data` is a valid buffer of its length.
        let n = unsafe { libc::pwrite(fd, data.as_ptr().cast(), data.len(), offset as libc::off_t) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        data = &data[n as usize..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes of the file's pages the kernel holds now.
    fn allocated(store: &PageStore) -> u64 {
        // SAFETY: a zeroed `stat` filled in by the kernel.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::fstat(store.file.fd(), &mut st) }, 0);
        st.st_blocks as u64 * 512
    }

    fn chunk(seed: u8, len: usize) -> Bytes {
        Bytes::from((0..len).map(|i| seed.wrapping_add(i as u8)).collect::<Vec<u8>>())
    }

    #[test]
    fn kept_chunks_read_back_from_page_aligned_offsets_and_are_released_when_dropped() {
        let mut store = PageStore::new().unwrap();
        let originals: Vec<Bytes> = (0..3).map(|i| chunk(i, 65_424)).collect();
        let kept: Vec<Bytes> = originals.iter().map(|c| store.keep(c.clone())).collect();
        for (k, o) in kept.iter().zip(&originals) {
            assert_eq!(k, o);
            let (_, offset) = mappings::find(k).expect("a kept chunk is a mapping of the file");
            assert_eq!(offset % PAGE, 0);
        }
        // A slice of a kept chunk is found at its own offset.
        let slice = kept[1].slice(188..376);
        let (_, whole) = mappings::find(&kept[1]).unwrap();
        assert_eq!(mappings::find(&slice).unwrap().1, whole + 188);
        assert_eq!(allocated(&store), 3 * 16 * PAGE);
        drop(slice);
        let second = kept.into_iter().nth(1).unwrap();
        assert_eq!(allocated(&store), 16 * PAGE, "dropped chunks' pages are released");
        drop(second);
        assert_eq!(allocated(&store), 0);
    }

    #[test]
    fn chunks_move_to_a_new_window_and_old_ones_stay_readable() {
        let mut store = PageStore::new().unwrap();
        let first = store.keep(chunk(7, 100_000));
        let many: Vec<Bytes> = (0..60).map(|i| store.keep(chunk(i, 100_000))).collect();
        assert_eq!(first, chunk(7, 100_000));
        assert_eq!(many[59], chunk(59, 100_000));
        let (_, last) = mappings::find(&many[59]).unwrap();
        assert!(last >= WINDOW, "60 chunks of 100 kB fill more than one window");
    }

    #[test]
    fn what_a_window_cannot_hold_stays_on_the_heap() {
        let mut store = PageStore::new().unwrap();
        let big = chunk(1, WINDOW as usize + 1);
        let kept = store.keep(big.clone());
        assert_eq!(kept.as_ptr(), big.as_ptr());
        assert!(mappings::find(&kept).is_none());
    }
}
