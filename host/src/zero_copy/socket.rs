//! A player's TCP socket that sends the stream's kernel pages without a
//! copy: a buffer that is a mapping of a stream's file (see `super::pages`)
//! goes out with `sendfile(2)` from the file, so the kernel hands the
//! file's pages to the socket instead of copying the payload into it; any
//! other buffer (response heads, the join's PAT/PMT, keepalive nulls, a
//! chunk kept on the heap) is written as before. Driven by tokio's
//! readiness like any write: never blocks a runtime thread.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

use super::mappings;

/// See the module docs.
pub struct SendfileSocket {
    tcp: TcpStream,
    /// Whether to look for mapped buffers at all (`--zero-copy`).
    enabled: bool,
}

impl SendfileSocket {
    pub fn new(tcp: TcpStream, enabled: bool) -> Self {
        Self { tcp, enabled }
    }
}

impl AsyncRead for SendfileSocket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendfileSocket {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if !self.enabled {
            return Pin::new(&mut self.tcp).poll_write(cx, buf);
        }
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if !self.enabled {
            return Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        }
        let tcp = &self.get_mut().tcp;
        loop {
            ready!(tcp.poll_write_ready(cx))?;
            match tcp.try_io(Interest::WRITABLE, || write_some(tcp.as_raw_fd(), bufs)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                done => return Poll::Ready(done),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// Sends what it can of `bufs` in order: runs of plain buffers with one
/// `writev`, each mapped buffer with `sendfile`. Stops at the first short
/// send; an error after some bytes went out is left for the next call.
fn write_some(socket: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    let mut sent = 0;
    let mut i = 0;
    while i < bufs.len() {
        let (result, wanted, next) = match mappings::find(&bufs[i]) {
            Some((file, offset)) => (send_file(socket, file, offset, bufs[i].len()), bufs[i].len(), i + 1),
            None => {
                let end =
                    bufs[i..].iter().position(|b| mappings::find(b).is_some()).map_or(bufs.len(), |n| i + n);
                let wanted = bufs[i..end].iter().map(|b| b.len()).sum();
                (writev(socket, &bufs[i..end]), wanted, end)
            }
        };
        match result {
            Ok(n) => {
                sent += n;
                if n < wanted {
                    return Ok(sent);
                }
            }
            Err(_) if sent > 0 => return Ok(sent),
            Err(e) => return Err(e),
        }
        i = next;
    }
    Ok(sent)
}

fn send_file(socket: RawFd, file: RawFd, offset: u64, len: usize) -> io::Result<usize> {
    let mut at = offset as libc::off_t;
    // SAFETY: both descriptors are open (the caller's buffer keeps the file
    // open); `at` is a valid offset pointer.
    let n = unsafe { libc::sendfile(socket, file, &mut at, len) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

fn writev(socket: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    let count = bufs.len().min(libc::UIO_MAXIOV as usize);
    // SAFETY: `IoSlice` is ABI-compatible with `iovec`.
    let n = unsafe { libc::writev(socket, bufs.as_ptr().cast(), count as libc::c_int) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}
