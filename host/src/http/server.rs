//! Accepts connections and serves each with hyper, until shutdown.
//!
//! acemux runs its own accept loop (rather than `axum::serve`) to give
//! every connection the write timeout ([`WriteTimeout`]), TCP_NODELAY, the
//! client's address, a socket that sends kernel-page buffers with
//! `sendfile` ([`SendfileSocket`], with `--zero-copy on`), and an owner: each connection task lives in a
//! `JoinSet`; on shutdown each connection is told to finish its current
//! response and close, and whatever is still open after the drain time is
//! aborted. A connection over the [`ConnectionLimit`] is answered 503 and
//! closed without reaching the router.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::{debug, warn};

use super::connection_limit::{ConnectionLimit, Refusal};
use super::write_timeout::WriteTimeout;
use crate::zero_copy::socket::SendfileSocket;

/// Refused connections being answered at once; more are closed unanswered.
/// Small: each holds a descriptor for up to [`REFUSAL_TIME`], taken from
/// the reserve kept for engine traffic.
const REFUSING: usize = 16;

/// Longest a refused connection is kept to answer it.
const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// Facts about the connection a request came on, in its extensions.
#[derive(Debug, Clone)]
pub struct Connection {
    pub peer: SocketAddr,
    /// Set when the connection was closed for accepting no bytes in time.
    pub write_timed_out: Arc<AtomicBool>,
}

/// Serves `router` on `listener` until `shutdown` is cancelled; returns
/// after every connection has closed (or `drain` has passed).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limit: Arc<ConnectionLimit>,
    client_timeout: Duration,
    shutdown: CancellationToken,
    drain: Duration,
    zero_copy: bool,
) {
    let mut connections = JoinSet::new();
    let refusing = Arc::new(Semaphore::new(REFUSING));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            _ = shutdown.cancelled() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let permit = match limit.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(why) => {
                debug!(%peer, %why, "connection refused");
                if let Ok(slot) = refusing.clone().try_acquire_owned() {
                    connections.spawn(async move {
                        refuse(tcp, why).await;
                        drop(slot);
                    });
                }
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let io = WriteTimeout::new(SendfileSocket::new(tcp, zero_copy), client_timeout);
        let conn_info = Connection { peer, write_timed_out: io.flag() };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(conn_info.clone());
            // A player's token as a path prefix comes off before routing.
            if let Some((token, uri)) = super::viewer::take_path_token(request.uri()) {
                *request.uri_mut() = uri;
                request.extensions_mut().insert(token);
            }
            router.clone().oneshot(request)
        });
        // A child token per connection: the connection's task polls it on
        // every wake-up, and polling takes the token's mutex. A clone would
        // share one mutex among all connections (taken some 8000 times a
        // second at 500 players); a child's is its own.
        let shutdown = shutdown.child_token();
        connections.spawn(async move {
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(io), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(drain, async { while connections.join_next().await.is_some() {} });
    if drained.await.is_err() {
        warn!(open = connections.len(), "connections still open after the shutdown drain; closing them");
        connections.shutdown().await;
    }
}

/// Answers a refused connection `503` with the JSON error body and closes
/// it, within [`REFUSAL_TIME`]. The request is read first (what arrives in
/// a moment), so that closing does not reset the connection under the answer.
async fn refuse(mut tcp: TcpStream, why: Refusal) {
    let body = serde_json::json!({"error": why.to_string(), "code": "too_many_connections"}).to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         retry-after: 5\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_TIME, async {
        let mut request = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut request)).await;
        tcp.write_all(answer.as_bytes()).await?;
        tcp.shutdown().await?;
        // Wait for the client to close (or the time to run out).
        while tcp.read(&mut request).await? > 0 {}
        std::io::Result::Ok(())
    })
    .await;
}
