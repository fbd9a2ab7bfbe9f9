//! `collab-server`: keeps rooms and speaks the collab protocol
//! (docs/protocol.md) over REST and WebSocket. `main` parses the command line
//! and calls [`run`]; everything else lives here.

pub mod config;
pub mod connection;
pub mod error;
pub mod http;
pub mod ids;
pub mod room;
pub mod store;

use std::future::Future;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

pub use config::Config;
use room::Rooms;
use store::{Backend, RedisStore};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The rooms of this server.
    pub rooms: Arc<Rooms>,
    /// Settings.
    pub config: Arc<Config>,
    /// Flips to true when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// Held by every live connection; all dropped means all closed.
    pub connections: mpsc::Sender<()>,
}

/// The HTTP routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/rooms", post(http::create_room))
        .route("/rooms/{id}", get(http::get_room))
        .route("/rooms/{id}/exists", get(http::room_exists))
        .route("/health", get(http::health))
        .route("/ws/{room_id}", get(connection::ws_handler))
        .with_state(state)
}

/// How often an instance tells Redis it is alive, and how long that lasts.
const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(3);
const HEARTBEAT_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The Redis URL is not valid.
    #[error("invalid redis url: {0}")]
    Redis(#[from] store::StoreError),
    /// Serving failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Serves collab on `listener` until `shutdown` completes; then stops
/// accepting, closes every WebSocket with 1012 and returns once they are
/// closed (or after `config.shutdown_grace`).
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let backend = match &config.redis_url {
        None => Backend::Memory,
        Some(url) => {
            let instance = ids::new_client_id().replacen("anon-", "i-", 1);
            let store = RedisStore::connect(url, instance, config.room_ttl, config.history_ops)?;
            tracing::info!(instance = %store.instance, "rooms live in redis");
            let beat = store.clone();
            tokio::spawn(async move {
                loop {
                    if let Err(e) = beat.heartbeat(HEARTBEAT_TTL).await {
                        tracing::warn!(error = %e, "redis heartbeat failed");
                    }
                    tokio::time::sleep(HEARTBEAT_EVERY).await;
                }
            });
            Backend::Redis(store)
        }
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let (conn_tx, mut conn_rx) = mpsc::channel::<()>(1);
    let grace = config.shutdown_grace;
    let state = AppState {
        rooms: Arc::new(Rooms::new(config.clone(), backend)),
        config: Arc::new(config),
        shutdown: stop_rx,
        connections: conn_tx,
    };
    let app = router(state);
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: closing connections with 1012");
        let _ = stop_tx.send(true);
    };
    // Every message is a small frame that someone is waiting for: never let
    // Nagle's algorithm hold one back for the peer's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .await?;
    // The router (and its state's sender) is gone; wait for upgraded sockets.
    let _ = tokio::time::timeout(grace, conn_rx.recv()).await;
    Ok(())
}
