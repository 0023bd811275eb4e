//! A stream's chunks kept in kernel pages, so players can be fed from them
//! without a copy per player (see `super::socket`).
//!
//! Each stream appends its chunks to an anonymous in-memory file (a
//! `memfd`): the chunk is copied into the file once, at a page boundary,
//! through a shared mapping of the file, and handed to the ring as a
//! `Bytes` that reads those pages. The file is append-only: a page, once
//! written and possibly handed to a socket by `sendfile(2)`, is never
//! written again. When the last `Bytes` of a chunk is dropped (the ring
//! evicted it and no player or HLS segment holds it), its pages are
//! released (`fallocate(PUNCH_HOLE)`), so the file holds what the ring and
//! the HLS window hold, as the heap did — in whole blocks of the largest
//! folio the kernel may use (see `super::folios`), never part of one.
//!
//! The mapping asks for huge pages (`MADV_HUGEPAGE`): where the operator
//! allows them for shared memory (`shmem_enabled` = `advise` or more), a
//! 64 KiB chunk is then sent as part of one 2 MiB folio instead of 16
//! pages, which is what makes `sendfile` cheaper than a copy here.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

use super::folios::{self, PAGE};
use super::mappings;

/// The file is mapped in windows of this size; a chunk lies in one window.
pub const WINDOW: u64 = 4 << 20;

/// Chunks larger than this stay on the heap.
const LARGEST_CHUNK: u64 = 2 << 20;

/// Offsets only grow; past this a stream starts a new file (1 TiB: more
/// than a day at 10 MB/s), so no offset overflows what the kernel takes.
const FILE_LIMIT: u64 = 1 << 40;

/// Bytes of kernel pages held by every store.
static HELD_BYTES: AtomicU64 = AtomicU64::new(0);

/// Bytes of kernel pages every stream's store holds now (shared memory:
/// in the process's resident memory as `RssShmem`, not on the heap).
pub fn held_bytes() -> u64 {
    HELD_BYTES.load(Ordering::Relaxed)
}

/// One stream's file. See the module docs.
pub struct PageStore {
    file: Arc<MemFile>,
    window: Option<Arc<Window>>,
    /// Where the next chunk goes (page aligned).
    next: u64,
    /// Pages are released in aligned blocks of this size.
    block: u64,
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

    /// Gives `len` bytes from `at` back to the kernel.
    fn punch(&self, at: u64, len: u64) {
        // SAFETY: plain syscall on our own descriptor.
        unsafe {
            libc::fallocate(
                self.fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                at as libc::off_t,
                len as libc::off_t,
            )
        };
    }
}

/// A shared mapping of `WINDOW` bytes of the file from `offset`, and which
/// of its blocks still hold pieces.
struct Window {
    file: Arc<MemFile>,
    addr: usize,
    offset: u64,
    len: usize,
    block: u64,
    blocks: Mutex<Blocks>,
}

/// Per block of a window: pages written, and pages still held by pieces.
/// A block is given back when nothing holds it and nothing more will be
/// written in it.
struct Blocks {
    written: Vec<u32>,
    held: Vec<u32>,
    /// Offset in the window from which chunks may still be written.
    open_from: usize,
}

impl Window {
    fn map(file: Arc<MemFile>, offset: u64, block: u64) -> io::Result<Arc<Self>> {
        let len = WINDOW as usize;
        // The file must reach the window's end before it is mapped.
        // SAFETY: plain syscalls on our own descriptor.
        if unsafe { libc::ftruncate(file.fd(), (offset + WINDOW) as libc::off_t) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh shared mapping of our own file; unmapped only in
        // `Drop`, after every slice of it is gone.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.fd(),
                offset as libc::off_t,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // Huge pages where the kernel allows them for this mapping; a
        // refusal (no THP in this kernel) changes nothing else.
        // SAFETY: advice on our own fresh mapping.
        unsafe { libc::madvise(addr, len, libc::MADV_HUGEPAGE) };
        let addr = addr as usize;
        mappings::register(addr, len, file.fd(), offset);
        let blocks = (WINDOW / block) as usize;
        let blocks = Mutex::new(Blocks { written: vec![0; blocks], held: vec![0; blocks], open_from: 0 });
        Ok(Arc::new(Self { file, addr, offset, len, block, blocks }))
    }

    /// Copies `data` to `at` in the window. The kernel allocates the pages
    /// first (`MADV_POPULATE_WRITE`), so running out of memory is an error
    /// here rather than a fault on the copy; a kernel older than 5.14 gets
    /// `pwrite` (no huge pages under `advise` then).
    fn write(&self, at: usize, data: &[u8]) -> io::Result<()> {
        let pages = (data.len() as u64).div_ceil(PAGE) * PAGE;
        // SAFETY: the range lies in our own mapping (checked by the caller)
        // and starts on a page boundary.
        let populated = unsafe {
            libc::madvise((self.addr + at) as *mut libc::c_void, pages as usize, libc::MADV_POPULATE_WRITE)
        };
        if populated < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EINVAL) => pwrite_all(self.file.fd(), data, self.offset + at as u64),
                _ => Err(e),
            };
        }
        // SAFETY: the pages exist (populated above), lie in the window, and
        // are past everything handed out: no reader sees them until the
        // piece is made after this copy.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), (self.addr + at) as *mut u8, data.len()) };
        Ok(())
    }

    /// The blocks `pages` bytes from `at` touch.
    fn block_range(&self, at: usize, pages: u64) -> std::ops::Range<usize> {
        let block = self.block as usize;
        at / block..(at + pages as usize).div_ceil(block)
    }

    /// The blocks `pages` bytes from `at` touch, with how many of their
    /// pages in each.
    fn blocks_of(&self, at: usize, pages: u64) -> impl Iterator<Item = (usize, u32)> {
        let (start, end, block) = (at as u64, at as u64 + pages, self.block);
        self.block_range(at, pages).map(move |b| {
            let (b_start, b_end) = (b as u64 * block, (b as u64 + 1) * block);
            (b, ((end.min(b_end) - start.max(b_start)) / PAGE) as u32)
        })
    }

    /// A piece of `pages` bytes at `at` was written and is held; nothing
    /// more goes before `open_from`.
    fn hold(&self, at: usize, pages: u64, open_from: usize) {
        let mut blocks = self.blocks.lock();
        for (b, n) in self.blocks_of(at, pages) {
            blocks.written[b] += n;
            blocks.held[b] += n;
        }
        HELD_BYTES.fetch_add(pages, Ordering::Relaxed);
        let closing = blocks.open_from / self.block as usize..open_from / self.block as usize;
        blocks.open_from = open_from;
        self.give_back(blocks, closing);
    }

    /// Nothing more will be written in this window.
    fn close(&self) {
        let mut blocks = self.blocks.lock();
        let closing = blocks.open_from / self.block as usize..blocks.written.len();
        blocks.open_from = self.len;
        self.give_back(blocks, closing);
    }

    /// A piece of `pages` bytes at `at` was dropped.
    fn release(&self, at: usize, pages: u64) {
        let mut blocks = self.blocks.lock();
        for (b, n) in self.blocks_of(at, pages) {
            blocks.held[b] -= n;
        }
        self.give_back(blocks, self.block_range(at, pages));
    }

    /// Punches every block in `range` that is closed and held by nothing,
    /// after the lock is let go, runs of blocks in one call.
    fn give_back(&self, mut blocks: parking_lot::MutexGuard<'_, Blocks>, range: std::ops::Range<usize>) {
        let closed = blocks.open_from / self.block as usize;
        let mut runs: Vec<(usize, usize)> = Vec::new();
        let mut freed = 0u64;
        for b in range.start..range.end.min(closed) {
            if blocks.held[b] == 0 && blocks.written[b] > 0 {
                freed += u64::from(blocks.written[b]) * PAGE;
                blocks.written[b] = 0;
                match runs.last_mut() {
                    Some((_, end)) if *end == b => *end = b + 1,
                    _ => runs.push((b, b + 1)),
                }
            }
        }
        drop(blocks);
        for (from, to) in runs {
            let block = self.block;
            self.file.punch(self.offset + from as u64 * block, (to - from) as u64 * block);
        }
        HELD_BYTES.fetch_sub(freed, Ordering::Relaxed);
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // Every piece is gone and the store moved on or ended.
        self.close();
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

impl Piece {
    fn pages(&self) -> u64 {
        (self.len as u64).div_ceil(PAGE) * PAGE
    }
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
        self.window.release(self.start, self.pages());
    }
}

impl PageStore {
    pub fn new() -> io::Result<Self> {
        Self::with_blocks(folios::largest())
    }

    /// A store that gives pages back in aligned blocks of `block` bytes (a
    /// power of two from a page to a window).
    fn with_blocks(block: u64) -> io::Result<Self> {
        let block = block.clamp(PAGE, WINDOW);
        Ok(Self { file: MemFile::create()?, window: None, next: 0, block })
    }

    /// `data` copied into the file once, as a `Bytes` of the file's pages;
    /// or `data` itself when it cannot be (larger than a window, or the
    /// kernel refused: out of memory, a descriptor limit).
    pub fn keep(&mut self, data: Bytes) -> Bytes {
        if data.len() as u64 > LARGEST_CHUNK || data.is_empty() {
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
                let w = Window::map(self.file.clone(), start, self.block)?;
                if let Some(old) = self.window.replace(w.clone()) {
                    old.close();
                }
                self.next = start;
                w
            }
        };
        let at = (self.next - window.offset) as usize;
        window.write(at, data)?;
        let piece = Piece { start: at, window, len: data.len() };
        self.next = (self.next + len).div_ceil(PAGE) * PAGE;
        piece.window.hold(at, piece.pages(), (self.next - piece.window.offset) as usize);
        Ok(Bytes::from_owner(piece))
    }
}

impl Drop for PageStore {
    fn drop(&mut self) {
        if let Some(window) = &self.window {
            window.close();
        }
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

    /// Bytes of a file's pages the kernel holds now.
    fn allocated(fd: RawFd) -> u64 {
        // SAFETY: a zeroed `stat` filled in by the kernel.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::fstat(fd, &mut st) }, 0);
        st.st_blocks as u64 * 512
    }

    /// Another descriptor of the store's file, to look at it after the
    /// store is gone.
    fn file_of(store: &PageStore) -> OwnedFd {
        // SAFETY: dup of our own open descriptor.
        unsafe { OwnedFd::from_raw_fd(libc::dup(store.file.fd())) }
    }

    fn chunk(seed: u8, len: usize) -> Bytes {
        Bytes::from((0..len).map(|i| seed.wrapping_add(i as u8)).collect::<Vec<u8>>())
    }

    #[test]
    fn kept_chunks_read_back_from_page_aligned_offsets() {
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
    }

    #[test]
    fn pages_are_given_back_in_whole_blocks_once_closed_and_held_by_nothing() {
        const BLOCK: u64 = 2 << 20; // at least any folio the kernel gives here
        let mut store = PageStore::with_blocks(BLOCK).unwrap();
        let file = file_of(&store);
        // 16 pages each: 32 fill the first block, 8 more start the second.
        let mut kept: Vec<Option<Bytes>> = (0..40).map(|i| Some(store.keep(chunk(i, 65_424)))).collect();
        for (i, k) in kept.iter_mut().enumerate().take(32) {
            if i != 5 {
                *k = None;
            }
        }
        let before = allocated(file.as_raw_fd());
        assert!(before >= BLOCK + 8 * 16 * PAGE, "one chunk still holds the first block: {before}");
        kept[5] = None;
        assert_eq!(allocated(file.as_raw_fd()), before - BLOCK, "the first block goes back whole");
        assert_eq!(kept[39].as_deref(), Some(&chunk(39, 65_424)[..]));
        // The second block is still being written: dropping its chunks
        // gives nothing back until the store moves on or ends.
        let held = allocated(file.as_raw_fd());
        kept.clear();
        assert_eq!(allocated(file.as_raw_fd()), held);
        drop(store);
        assert_eq!(allocated(file.as_raw_fd()), 0);
    }

    #[test]
    fn with_huge_pages_off_each_chunk_goes_back_when_dropped() {
        if folios::largest() != PAGE {
            eprintln!("huge pages are on for shared memory here: blocks are larger than a chunk");
            return;
        }
        let mut store = PageStore::new().unwrap();
        let file = file_of(&store);
        let kept: Vec<Bytes> = (0..3).map(|i| store.keep(chunk(i, 65_424))).collect();
        assert_eq!(allocated(file.as_raw_fd()), 3 * 16 * PAGE);
        let mut kept = kept.into_iter();
        drop(kept.next());
        assert_eq!(allocated(file.as_raw_fd()), 2 * 16 * PAGE);
        drop(kept);
        assert_eq!(allocated(file.as_raw_fd()), 0, "single pages go back even while the store writes");
        drop(store);
    }

    /// What makes whole blocks necessary: a chunk sent with `sendfile` sits
    /// in the socket by reference after the call returns; giving its pages
    /// back must not change what the reader gets. (Punching part of a huge
    /// folio zeroes that part first: with huge pages on for shared memory,
    /// this fails if pages are given back by the chunk.)
    #[test]
    fn a_chunk_still_in_a_socket_reads_back_intact_after_it_is_given_back() {
        let mut fds = [0; 2];
        // SAFETY: a fresh socket pair into a valid array.
        assert_eq!(unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) }, 0);
        // SAFETY: both were just returned to us.
        let (tx, rx) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let mut store = PageStore::new().unwrap();
        let kept: Vec<Bytes> = (0..4).map(|i| store.keep(chunk(i * 3, 16_000))).collect();
        for k in &kept {
            let (file, offset) = mappings::find(k).unwrap();
            let mut at = offset as libc::off_t;
            // SAFETY: open descriptors and a valid offset pointer.
            let n = unsafe { libc::sendfile(tx.as_raw_fd(), file, &mut at, k.len()) };
            assert_eq!(n, k.len() as isize, "{}", io::Error::last_os_error());
        }
        drop(kept);
        drop(store);
        let mut got = vec![0u8; 64_000];
        let mut read = 0;
        while read < got.len() {
            // SAFETY: reading into our own buffer's free part.
            let n = unsafe { libc::read(rx.as_raw_fd(), got[read..].as_mut_ptr().cast(), got.len() - read) };
            assert!(n > 0, "{}", io::Error::last_os_error());
            read += n as usize;
        }
        let expected: Vec<u8> = (0..4).flat_map(|i| chunk(i * 3, 16_000).to_vec()).collect();
        assert!(got == expected, "bytes in the socket changed when their pages were given back");
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
    fn what_is_larger_than_a_block_of_huge_pages_stays_on_the_heap() {
        let mut store = PageStore::new().unwrap();
        let big = chunk(1, LARGEST_CHUNK as usize + 1);
        let kept = store.keep(big.clone());
        assert_eq!(kept.as_ptr(), big.as_ptr());
        assert!(mappings::find(&kept).is_none());
    }
}
