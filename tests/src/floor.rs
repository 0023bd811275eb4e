//! The fan-out floor: a bare server that writes one shared stream to every
//! client and does nothing else, so acemux's cost per GB can be compared
//! with the least any server could spend on the same machine in the same
//! run (`acemux-load --floor`).
//!
//! One task makes the simulated engine's TS at the set bitrate in chunks
//! of the same size acemux uses and broadcasts each chunk as a shared
//! `Bytes`; one task per client reads its request head, answers a bare
//! HTTP/1.0 header and `write_all`s every chunk. No ring, no timeouts, no
//! keepalive, no accounting: what is left is the kernel's work and the
//! wake-ups. [`serve_zero_copy_floor`] is the same with `sendfile` from a
//! `memfd` instead of a copy per client.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ace_sim::TsGenerator;
use acemux_ts::PACKET_SIZE;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

/// Serves until the process ends.
pub async fn serve_floor(listener: TcpListener, bitrate_bps: u64, chunk_bytes: usize) -> anyhow::Result<()> {
    let (tx, _) = broadcast::channel::<Bytes>(256);
    let producer = tx.clone();
    let packets = (chunk_bytes / PACKET_SIZE).max(1);
    let period = Duration::from_secs_f64((packets * PACKET_SIZE * 8) as f64 / bitrate_bps.max(1) as f64);
    tokio::spawn(async move {
        let mut generator = TsGenerator::new(0);
        let started = Instant::now();
        let mut sent = 0u32;
        loop {
            let mut chunk = Vec::with_capacity(packets * PACKET_SIZE);
            generator.write(packets, &mut chunk);
            let _ = producer.send(Bytes::from(chunk));
            sent += 1;
            tokio::time::sleep_until((started + period * sent).into()).await;
        }
    });
    loop {
        let (mut socket, _) = listener.accept().await?;
        let mut rx = tx.subscribe();
        tokio::spawn(async move {
            if !answer_head(&mut socket).await {
                return;
            }
            loop {
                match rx.recv().await {
                    Ok(chunk) => {
                        if socket.write_all(&chunk).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
}

/// Reads a request head and answers a bare HTTP/1.0 200; false if the
/// client went away.
async fn answer_head(socket: &mut TcpStream) -> bool {
    let mut head = [0u8; 4096];
    let mut got = 0;
    while !head[..got].windows(4).any(|w| w == b"\r\n\r\n") && got < head.len() {
        match socket.read(&mut head[got..]).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => got += n,
        }
    }
    socket.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: video/mp2t\r\n\r\n").await.is_ok()
}

/// Where each chunk starts in the file: a page boundary, so a page handed
/// to a socket is never written again.
const PAGE: u64 = 4096;

/// Chunks kept in the file behind the newest before their pages are
/// released (at 64 KiB, 16 MiB: far more than any client is behind).
const KEPT_CHUNKS: u64 = 256;

/// The file is given back in blocks of this size (a huge page).
const RELEASED: u64 = 2 << 20;

/// The zero-copy floor: the same stream, but each chunk is written once
/// into an append-only `memfd` and every client is fed with `sendfile(2)`
/// from it, so the kernel hands the file's pages to the sockets instead of
/// copying the payload into each. Old chunks are released with
/// `fallocate(PUNCH_HOLE)` far behind the newest. Chunks are written
/// through a shared mapping that asks for huge pages, as acemux's are, so
/// both get them when the kernel allows (`shmem_enabled`).
pub async fn serve_zero_copy_floor(
    listener: TcpListener,
    bitrate_bps: u64,
    chunk_bytes: usize,
) -> anyhow::Result<()> {
    // SAFETY: a NUL-terminated name and valid flags.
    let fd = unsafe { libc::memfd_create(c"acemux-floor".as_ptr(), libc::MFD_CLOEXEC) };
    anyhow::ensure!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` was just returned to us and is owned by nothing else.
    let file = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
    let (tx, _) = broadcast::channel::<(u64, usize)>(256);
    let producer = tx.clone();
    let packets = (chunk_bytes / PACKET_SIZE).max(1);
    let period = Duration::from_secs_f64((packets * PACKET_SIZE * 8) as f64 / bitrate_bps.max(1) as f64);
    let writer = file.clone();
    let mapped = MappedFile::new(file.as_raw_fd())?;
    tokio::spawn(async move {
        let mut generator = TsGenerator::new(0);
        let started = Instant::now();
        let mut sent = 0u32;
        let mut offset = 0u64;
        let mut released = 0u64;
        let stride = ((packets * PACKET_SIZE) as u64).div_ceil(PAGE) * PAGE;
        loop {
            let mut chunk = Vec::with_capacity(packets * PACKET_SIZE);
            generator.write(packets, &mut chunk);
            if mapped.write(&chunk, offset).is_err()
                && pwrite_all(writer.as_raw_fd(), &chunk, offset).is_err()
            {
                return;
            }
            let _ = producer.send((offset, chunk.len()));
            // Released in whole 2 MiB blocks, never part of a huge page.
            let behind = offset.saturating_sub(stride * KEPT_CHUNKS) / RELEASED * RELEASED;
            if behind > released {
                // SAFETY: plain syscall on our own descriptor.
                unsafe {
                    libc::fallocate(
                        writer.as_raw_fd(),
                        libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                        released as libc::off_t,
                        (behind - released) as libc::off_t,
                    )
                };
                released = behind;
            }
            offset += stride;
            sent += 1;
            tokio::time::sleep_until((started + period * sent).into()).await;
        }
    });
    loop {
        let (mut socket, _) = listener.accept().await?;
        let mut rx = tx.subscribe();
        let file = file.clone();
        tokio::spawn(async move {
            if !answer_head(&mut socket).await {
                return;
            }
            loop {
                match rx.recv().await {
                    Ok((offset, len)) => {
                        if send_file(&socket, file.as_raw_fd(), offset, len).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
}

/// The floor's file mapped whole, far larger than a benchmark writes.
struct MappedFile {
    addr: usize,
}

/// 64 GiB: 18 hours at 8 Mbit/s; past it chunks are written with `pwrite`.
const MAPPED: u64 = 64 << 30;

impl MappedFile {
    fn new(fd: RawFd) -> anyhow::Result<Self> {
        // SAFETY: plain syscalls on our own descriptor and a fresh mapping.
        unsafe {
            anyhow::ensure!(libc::ftruncate(fd, MAPPED as libc::off_t) == 0, "ftruncate");
            let addr = libc::mmap(
                std::ptr::null_mut(),
                MAPPED as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd,
                0,
            );
            anyhow::ensure!(addr != libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
            libc::madvise(addr, MAPPED as usize, libc::MADV_HUGEPAGE);
            Ok(Self { addr: addr as usize })
        }
    }

    /// Allocates the pages (an error rather than a fault if the kernel
    /// cannot) and copies `data` in.
    fn write(&self, data: &[u8], offset: u64) -> std::io::Result<()> {
        if offset + data.len() as u64 > MAPPED {
            return Err(std::io::ErrorKind::FileTooLarge.into());
        }
        let at = (self.addr + offset as usize) as *mut libc::c_void;
        let pages = (data.len() as u64).div_ceil(PAGE) * PAGE;
        // SAFETY: a page-aligned range inside our own mapping, written once.
        unsafe {
            if libc::madvise(at, pages as usize, libc::MADV_POPULATE_WRITE) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            std::ptr::copy_nonoverlapping(data.as_ptr(), at.cast(), data.len());
        }
        Ok(())
    }
}

/// Writes all of `data` at `offset` of `fd`.
fn pwrite_all(fd: RawFd, mut data: &[u8], mut offset: u64) -> std::io::Result<()> {
    while !data.is_empty() {
        // SAFETY: `data` is a valid buffer of its length.
        let n = unsafe { libc::pwrite(fd, data.as_ptr().cast(), data.len(), offset as libc::off_t) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        data = &data[n as usize..];
        offset += n as u64;
    }
    Ok(())
}

/// Sends `len` bytes at `offset` of `file` to `socket`, waiting for the
/// socket to take them.
async fn send_file(socket: &TcpStream, file: RawFd, offset: u64, len: usize) -> std::io::Result<()> {
    let mut at = offset as libc::off_t;
    let end = offset + len as u64;
    while (at as u64) < end {
        socket.writable().await?;
        let left = (end - at as u64) as usize;
        match socket.try_io(Interest::WRITABLE, || {
            // SAFETY: both descriptors are open; `at` is a valid offset pointer.
            let n = unsafe { libc::sendfile(socket.as_raw_fd(), file, &mut at, left) };
            if n < 0 { Err(std::io::Error::last_os_error()) } else { Ok(n as usize) }
        }) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
