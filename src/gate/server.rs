//! Serving a gate on a socket: one HTTP/1.1 connection task per client, caps
//! on connections (in all and per client address), a header timeout against
//! slow clients (the body has its own, in `http`), and a graceful shutdown
//! that finishes in-flight requests and flushes the journal.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::{Error, Gate};
use crate::util::sync::lock;

/// `--max-connections-per-client` unless given.
pub(crate) const DEFAULT_MAX_PER_CLIENT: usize = 4096;
/// The most connections a gate allows by default, whatever its open-file
/// limit (`--max-connections` sets any number).
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 65_536;

/// How much a gate lets clients hold at once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// A connection must send a request's headers within this.
    pub(crate) header_timeout: Duration,
    /// Connections open at once, in all.
    pub(crate) max_connections: usize,
    /// Connections open at once from one address (behind a load balancer:
    /// the balancer's; give it room).
    pub(crate) max_per_client: usize,
    /// An IPv6 peer counts as its network of this many bits (`[gate] ipv6_prefix`).
    pub(crate) ipv6_prefix: u8,
}

/// Connections open now, and those refused for being over a cap.
#[derive(Default)]
pub(crate) struct Connections {
    open: AtomicUsize,
    by_client: Mutex<HashMap<IpAddr, usize>>,
    refused_total: AtomicU64,
    refused_per_client: AtomicU64,
}

impl Connections {
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections refused for being over a cap: in all, and per client address.
    pub(crate) fn refused(&self) -> (u64, u64) {
        (
            self.refused_total.load(Ordering::Relaxed),
            self.refused_per_client.load(Ordering::Relaxed),
        )
    }

    /// Counts a new connection from `ip`, unless it is over a cap.
    fn admit(self: &Arc<Self>, ip: IpAddr, limits: &Limits) -> Option<Slot> {
        if self.open.load(Ordering::Relaxed) >= limits.max_connections {
            self.refused_total.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let mut by_client = lock(&self.by_client);
        let n = by_client.entry(ip).or_default();
        if *n >= limits.max_per_client {
            self.refused_per_client.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *n += 1;
        self.open.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            connections: self.clone(),
            ip,
        })
    }
}

/// One counted connection; uncounted when dropped (however it ends).
struct Slot {
    connections: Arc<Connections>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connections.open.fetch_sub(1, Ordering::Relaxed);
        let mut by_client = lock(&self.connections.by_client);
        if let Some(n) = by_client.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                by_client.remove(&self.ip);
            }
        }
    }
}

/// Binds `addr` (errors say which address).
pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|error| Error::Listen { addr, error })
}

/// Serves the gate on `listener` until `shutdown` resolves; then stops
/// accepting, lets in-flight requests finish (up to 10 s) and stops the gate
/// (the journal flushed, every background task ended, the directory free).
pub(crate) async fn serve(
    gate: Arc<Gate>,
    listener: TcpListener,
    admin: TcpListener,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let admin = tokio::spawn(serve_admin(gate.clone(), admin, limits.header_timeout));
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
                // Over a cap: closed at once, before anything is read.
                let client = super::limit::client_key(peer.ip(), limits.ipv6_prefix);
                let Some(slot) = gate.connections.admit(client, &limits) else {
                    drop(stream);
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
                    .header_read_timeout(limits.header_timeout)
                    .max_buf_size(16 * 1024)
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop(slot);
                });
            }
            _ = &mut shutdown => break,
        }
    }
    gate.begin_draining();
    drop(listener);
    tracing::info!("gate_stopping");
    // Health says "shutting down" until the orders in flight are answered.
    let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
    admin.abort();
    gate.stop().await;
    tracing::info!(admitted = ?gate.counts(), tasks = gate.tasks(), "gate_stopped");
}

/// Most connections the admin listener serves at once (a scraper, a load
/// balancer's checks, `watch`, `close --when-sold-out`).
const MAX_ADMIN_CONNECTIONS: usize = 64;

/// Serves `/healthz` and `/metrics` on the admin listener until aborted.
async fn serve_admin(gate: Arc<Gate>, listener: TcpListener, header_timeout: Duration) {
    let open = Arc::new(tokio::sync::Semaphore::new(MAX_ADMIN_CONNECTIONS));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let Ok(slot) = open.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let gate = gate.clone();
        let service = hyper::service::service_fn(move |req| {
            let answer = gate.handle_admin(&req);
            async move { Ok::<_, Infallible>(answer) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .max_buf_size(16 * 1024)
            .serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_in_all_and_per_client_and_slots_free_themselves() {
        let c = Arc::new(Connections::default());
        let limits = Limits {
            header_timeout: Duration::from_secs(1),
            max_connections: 3,
            max_per_client: 2,
            ipv6_prefix: 64,
        };
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let a1 = c.admit(a, &limits).unwrap();
        let _a2 = c.admit(a, &limits).unwrap();
        assert!(c.admit(a, &limits).is_none(), "per client");
        let _b1 = c.admit(b, &limits).unwrap();
        assert!(c.admit(b, &limits).is_none(), "in all");
        assert_eq!(c.open(), 3);
        drop(a1);
        assert!(c.admit(b, &limits).is_some());
        assert_eq!(c.refused_per_client.load(Ordering::Relaxed), 1);
        assert_eq!(c.refused_total.load(Ordering::Relaxed), 1);
    }
}
