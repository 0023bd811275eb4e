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

/// The zero-copy floor: the same stream, but each chunk is written once
/// into an append-only `memfd` and every client is fed with `sendfile(2)`
/// from it, so the kernel hands the file's pages to the sockets instead of
/// copying the payload into each. Old chunks are released with
/// `fallocate(PUNCH_HOLE)` far behind the newest.
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
    tokio::spawn(async move {
        let mut generator = TsGenerator::new(0);
        let started = Instant::now();
        let mut sent = 0u32;
        let mut offset = 0u64;
        let stride = ((packets * PACKET_SIZE) as u64).div_ceil(PAGE) * PAGE;
        loop {
            let mut chunk = Vec::with_capacity(packets * PACKET_SIZE);
            generator.write(packets, &mut chunk);
            if pwrite_all(writer.as_raw_fd(), &chunk, offset).is_err() {
                return;
            }
            let _ = producer.send((offset, chunk.len()));
            if let Some(old) = offset.checked_sub(stride * KEPT_CHUNKS) {
                // SAFETY: plain syscall on our own descriptor.
                unsafe {
                    libc::fallocate(
                        writer.as_raw_fd(),
                        libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                        old as libc::off_t,
                        stride as libc::off_t,
                    )
                };
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
