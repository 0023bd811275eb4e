//! Accepts connections and serves each with hyper, until shutdown.
//!
//! acemux runs its own accept loop (rather than `axum::serve`) to give
//! every connection the write timeout ([`WriteTimeout`]), TCP_NODELAY, the
//! client's address, and an owner: each connection task lives in a
//! `JoinSet`; on shutdown each connection is told to finish its current
//! response and close, and whatever is still open after the drain time is
//! aborted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::{debug, warn};

use super::write_timeout::WriteTimeout;

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
    client_timeout: Duration,
    shutdown: CancellationToken,
    drain: Duration,
) {
    let mut connections = JoinSet::new();
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
        let _ = tcp.set_nodelay(true);
        let io = WriteTimeout::new(tcp, client_timeout);
        let conn_info = Connection { peer, write_timed_out: io.flag() };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(conn_info.clone());
            router.clone().oneshot(request)
        });
        let shutdown = shutdown.clone();
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
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(drain, async { while connections.join_next().await.is_some() {} });
    if drained.await.is_err() {
        warn!(open = connections.len(), "connections still open after the shutdown drain; closing them");
        connections.shutdown().await;
    }
}
