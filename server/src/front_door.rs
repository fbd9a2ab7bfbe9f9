//! The front door: accepts TCP connections and serves HTTP/1.1 on them until
//! they finish or become WebSockets.
//!
//! `axum::serve` puts no bound on connections that never finish a request:
//! 1,500 connections holding half-sent headers stayed open for minutes, they
//! did not count against `--max-conns-per-ip` (which counts WebSockets), and
//! under a 1,024 open-file limit 1,100 of them stopped the server from
//! accepting anything, `/health` included. Here:
//!
//! - a request whose headers do not arrive within `--header-timeout-seconds`
//!   closes its connection (hyper's header-read timeout, which needs a timer);
//! - one client address holds at most `--max-pending-per-ip` connections that
//!   have not become WebSockets (a request under way, or an idle keep-alive);
//!   a connection beyond that is closed as soon as it is accepted. Trusted
//!   proxies are exempt: every user behind them shares their address, and
//!   which user a connection is for is only known from its headers;
//! - with `--tls-cert`, the TLS handshake happens in the connection's own
//!   task (a slow handshake holds up nobody else) and must finish within the
//!   same header timeout;
//! - a failed accept (out of file descriptors) waits before the next try,
//!   longer each time, instead of retrying at a fixed pace, and is logged
//!   once per doubling rather than every time.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::client_addr::TrustedProxies;
use crate::metrics::{Metrics, Reject};

/// The first wait after a failed accept; it doubles with each failure in a
/// row, up to [`MAX_ACCEPT_BACKOFF`].
const FIRST_ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// The longest wait between two accepts that fail.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// What the front door enforces.
#[derive(Clone)]
pub struct DoorLimits {
    /// Speak TLS on every connection (`--tls-cert`); plain HTTP when `None`.
    pub tls: Option<TlsAcceptor>,
    /// How long a client has to send a request's headers.
    pub header_timeout: Duration,
    /// Connections one address may hold before they become WebSockets.
    pub max_pending_per_ip: usize,
    /// Addresses exempt from `max_pending_per_ip`.
    pub trusted_proxies: TrustedProxies,
}

/// How long to wait before accepting again after `failures` failed accepts
/// in a row (at least 1).
pub fn accept_backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (FIRST_ACCEPT_BACKOFF * 2u32.pow(doublings)).min(MAX_ACCEPT_BACKOFF)
}

/// Not-yet-upgraded connections per client address.
#[derive(Default)]
pub struct PendingSlots {
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; dropping it frees the slot.
pub struct PendingSlot {
    slots: Arc<PendingSlots>,
    ip: IpAddr,
}

impl PendingSlots {
    /// A slot for a connection from `ip`, unless it already holds `limit`.
    pub fn take(self: &Arc<Self>, ip: IpAddr, limit: usize) -> Option<PendingSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(PendingSlot {
            slots: self.clone(),
            ip,
        })
    }

    /// How many slots `ip` holds.
    pub fn held(&self, ip: IpAddr) -> usize {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut counts = self.slots.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Errors of one connection that `accept` reports; the next accept is fine.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves `app` on `listener` until `stop` completes; then stops accepting,
/// lets every HTTP connection finish its request (WebSockets are not HTTP
/// connections any more: their own shutdown closes them) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: DoorLimits,
    metrics: Arc<Metrics>,
    stop: impl Future<Output = ()>,
) {
    let slots = Arc::new(PendingSlots::default());
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    // Flips when the server stops; every connection task holds `alive`.
    let (closing_tx, closing_rx) = watch::channel(false);
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    tokio::pin!(stop);
    let mut failures = 0u32;
    loop {
        let accepted = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(conn) => {
                failures = 0;
                conn
            }
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                failures = failures.saturating_add(1);
                let wait = accept_backoff(failures);
                if failures.is_power_of_two() {
                    tracing::error!(error = %e, failures, ?wait, "cannot accept connections; backing off");
                }
                tokio::select! {
                    () = &mut stop => break,
                    () = tokio::time::sleep(wait) => continue,
                }
            }
        };
        let slot = if limits.trusted_proxies.is_trusted(peer.ip()) {
            None
        } else {
            let ip = crate::client_addr::canonical(peer.ip());
            match slots.take(ip, limits.max_pending_per_ip) {
                Some(slot) => Some(slot),
                None => {
                    // Closed at once: no request of it is read.
                    metrics.reject(Reject::TooManyConnections);
                    tracing::debug!(%ip, "too many unfinished connections from one address");
                    continue;
                }
            }
        };
        // Every message is a small frame that someone is waiting for: never
        // let Nagle's algorithm hold one back for the peer's delayed ACK.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let conn = Connection {
            http: http.clone(),
            peer,
            app: app.clone(),
            closing: closing_rx.clone(),
        };
        let tls = limits.tls.clone();
        let handshake_timeout = limits.header_timeout;
        let alive = alive_tx.clone();
        tokio::spawn(async move {
            let _alive = alive;
            match tls {
                None => conn.serve(tcp).await,
                Some(tls) => match tokio::time::timeout(handshake_timeout, tls.accept(tcp)).await {
                    Ok(Ok(stream)) => conn.serve(stream).await,
                    Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
            }
            // The connection ended, or became a WebSocket: either way it is
            // no longer an unfinished request of its address.
            drop(slot);
        });
    }
    drop(listener);
    let _ = closing_tx.send(true);
    drop(alive_tx);
    let _ = alive_rx.recv().await;
}

/// What serving HTTP on one accepted connection needs.
struct Connection {
    http: http1::Builder,
    peer: SocketAddr,
    app: Router,
    closing: watch::Receiver<bool>,
}

impl Connection {
    /// Serves HTTP on `io` (TCP, or TLS over it) until it ends or becomes a
    /// WebSocket; finishes its request when the server stops.
    async fn serve<I>(mut self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let peer = self.peer;
        // Handlers learn the peer address as with `into_make_service_with_connect_info`.
        let service = self
            .app
            .map_request(move |mut req: axum::http::Request<Incoming>| {
                // The path only (a browser's WebSocket may carry its token
                // in the query), its ids cut short: neither a token nor a
                // full room id may reach a log.
                tracing::debug!(method = %req.method(), path = %loggable_path(req.uri().path()), "request");
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let conn = self
            .http
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
            .with_upgrades();
        tokio::pin!(conn);
        let result = tokio::select! {
            result = conn.as_mut() => result,
            () = async {
                let _ = self.closing.wait_for(|c| *c).await;
            } => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "connection ended");
        }
    }
}

/// A request path as the logs may show it: every segment that could be a
/// room or read-only id (16 or more letters and digits) cut to its prefix.
fn loggable_path(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.len() >= 16 && seg.bytes().all(|b| b.is_ascii_alphanumeric()) {
                crate::ids::short(seg)
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_paths_hold_no_full_id() {
        assert_eq!(loggable_path("/ws/e18ipZfXJ2Ishkp8F8uW6a"), "/ws/e18ipZ");
        assert_eq!(
            loggable_path("/rooms/e18ipZfXJ2Ishkp8F8uW6a/files"),
            "/rooms/e18ipZ/files"
        );
        assert_eq!(loggable_path("/health"), "/health");
    }

    #[test]
    fn accept_backoff_doubles_up_to_a_second() {
        assert_eq!(accept_backoff(1), Duration::from_millis(10));
        assert_eq!(accept_backoff(2), Duration::from_millis(20));
        assert_eq!(accept_backoff(4), Duration::from_millis(80));
        assert_eq!(accept_backoff(8), Duration::from_secs(1));
        assert_eq!(accept_backoff(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn pending_slots_are_counted_per_address_and_freed_on_drop() {
        let slots = Arc::new(PendingSlots::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = slots.take(a, 2).expect("first");
        let second = slots.take(a, 2).expect("second");
        assert!(slots.take(a, 2).is_none(), "a third over the limit");
        assert!(
            slots.take(b, 2).is_some(),
            "another address is not affected"
        );
        drop(first);
        assert_eq!(slots.held(a), 1);
        let third = slots.take(a, 2);
        assert!(third.is_some(), "a freed slot can be taken again");
        drop((second, third));
        assert_eq!(slots.held(a), 0);
    }
}
