//! Serving a gate on a socket: one HTTP/1.1 connection task per client, a
//! header timeout against slow clients, and a graceful shutdown that
//! finishes in-flight requests and flushes the journal.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::{Error, Gate};

/// Binds `addr` (errors say which address).
pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|error| Error::Listen { addr, error })
}

/// Serves the gate on `listener` until `shutdown` resolves; then stops
/// accepting, lets in-flight requests finish (up to 10 s) and flushes the journal.
pub(crate) async fn serve(
    gate: Arc<Gate>,
    listener: TcpListener,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let gate = gate.clone();
                let service = hyper::service::service_fn(move |req| {
                    let gate = gate.clone();
                    async move { Ok::<_, Infallible>(gate.handle(req, peer).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .max_buf_size(16 * 1024)
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            _ = &mut shutdown => break,
        }
    }
    gate.draining.store(true, Ordering::Relaxed);
    drop(listener);
    tracing::info!("gate_stopping");
    let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
    gate.drain();
    tracing::info!(admitted = ?gate.counts(), "gate_stopped");
}
