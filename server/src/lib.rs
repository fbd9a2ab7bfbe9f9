//! `collab-server`: keeps rooms and speaks the collab protocol
//! (docs/protocol.md) over REST and WebSocket. `main` parses the command line
//! and calls [`run`]; everything else lives here.

pub mod auth;
pub mod autocomplete;
pub mod cli;
pub mod client_addr;
pub mod config;
pub mod config_file;
pub mod connection;
pub mod error;
pub mod front_door;
pub mod http;
pub mod ids;
pub mod metrics;
pub mod openapi;
pub mod owner;
pub mod room;
pub mod state;
pub mod store;
pub mod tls;

/// `collab-server --version`: the crate's version and, when built from a
/// git checkout, its commit (`0.1.0 (a035380)`; see build.rs).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), env!("COLLAB_GIT_SUFFIX"));

use std::future::Future;
use std::sync::Arc;

use axum::http::HeaderValue;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use auth::Auth;
pub use config::Config;
use metrics::Metrics;
pub use state::{AppState, Rooms};
use store::{MemoryStore, RedisStore, Store};

/// The HTTP routes, each registered once with its OpenAPI description
/// (see [`openapi`]); the description itself is served at
/// `/openapi.json`.
pub fn router(state: AppState) -> Router {
    let (router, doc) = documented_router(Some(&state)).split_for_parts();
    let doc = openapi::finish(doc);
    let served = openapi::Served(Arc::new(doc.to_json().unwrap_or_default()));
    let mut app = router.layer(axum::Extension(served));
    if let Some(origins) = &state.config.cors_origins {
        let list: Vec<HeaderValue> = origins.iter().filter_map(|o| o.parse().ok()).collect();
        app = app.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(list))
                .allow_methods([
                    axum::http::Method::GET,
                    axum::http::Method::POST,
                    axum::http::Method::DELETE,
                    axum::http::Method::PUT,
                ])
                .allow_headers([
                    axum::http::header::AUTHORIZATION,
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderName::from_static(owner::OWNER_HEADER),
                ]),
        );
    }
    app.with_state(state)
}

/// The routes and their description, before they are split; without a
/// state (for the description alone), without the layers that need one.
fn documented_router(state: Option<&AppState>) -> OpenApiRouter<AppState> {
    let (schemas, paths, mut create) = routes!(http::create_room);
    if let Some(state) = state {
        // A project's files come in one body: room for all of them, escaped.
        let body_limit = usize::try_from(state.config.max_room_bytes)
            .unwrap_or(usize::MAX)
            .saturating_mul(2)
            .saturating_add(1 << 20);
        create = create.layer(axum::extract::DefaultBodyLimit::max(body_limit));
    }
    let (c_schemas, c_paths, complete) = routes!(autocomplete::autocomplete);
    let complete = (
        c_schemas,
        c_paths,
        complete.layer(autocomplete::body_limit()),
    );
    let mut rest = OpenApiRouter::new()
        .routes((schemas, paths, create))
        .routes(complete)
        .routes(routes!(http::get_room, owner::end_room))
        .routes(routes!(owner::remove_user))
        .routes(routes!(owner::set_read_only))
        .routes(routes!(owner::rotate_links))
        .routes(routes!(http::room_exists))
        .routes(routes!(http::list_files))
        .routes(routes!(http::file_text));
    if let Some(state) = state {
        rest = rest.route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::require_auth,
        ));
    }
    OpenApiRouter::with_openapi(openapi::base())
        .merge(rest)
        .routes(routes!(http::health))
        .routes(routes!(http::metrics))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(openapi::websocket))
}

/// The OpenAPI description `GET /openapi.json` serves, without a server
/// (`collab-server openapi`).
pub fn openapi_description() -> utoipa::openapi::OpenApi {
    openapi::finish(documented_router(None).split_for_parts().1)
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
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
    let metrics = Arc::new(Metrics::default());
    let store = match &config.redis_url {
        None => Store::Memory(Arc::new(MemoryStore::new())),
        Some(url) => {
            let instance = ids::new_client_id().replacen("anon-", "i-", 1);
            let store = RedisStore::connect(
                &store::redis::RedisSetup {
                    url: url.clone(),
                    cluster: config.redis_cluster,
                    wait_replicas: config.redis_wait_replicas,
                },
                instance,
                config.room_ttl,
                config.history_ops,
                config.history_bytes,
                metrics.redis_errors.clone(),
            )?;
            tracing::info!(instance = %store.instance(), cluster = config.redis_cluster, "rooms live in redis");
            store::redis::spawn_heartbeat(store.clone());
            Store::Redis(store)
        }
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let (conn_tx, mut conn_rx) = mpsc::channel::<()>(1);
    let grace = config.shutdown_grace;
    let rooms = Arc::new(Rooms::new(config.clone(), store, metrics.clone()));
    let tls = match &config.tls {
        None => None,
        Some(files) => {
            let certs = tls::TlsCerts::load(files.clone())?;
            tls::reload_on_sighup(certs.clone());
            tracing::info!(cert = %files.cert.display(), "serving HTTPS and wss:// (certificate reloads on SIGHUP)");
            Some(certs.acceptor())
        }
    };
    let limits = front_door::DoorLimits {
        tls,
        header_timeout: config.header_timeout,
        max_pending_per_ip: config.max_pending_per_ip,
        trusted_proxies: config.trusted_proxies.clone(),
    };
    let state = AppState {
        rooms: rooms.clone(),
        auth: config.jwt_secret.as_deref().map(|s| Arc::new(Auth::new(s))),
        config: Arc::new(config),
        shutdown: stop_rx,
        connections: conn_tx,
        metrics: metrics.clone(),
        ip_conns: Arc::default(),
    };
    let app = router(state);
    // On the signal: stop accepting at once, let every room commit what it
    // has queued and close its clients with 1012, then close stragglers.
    let (accepting_tx, accepting_rx) = oneshot::channel::<()>();
    let drained = tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: draining rooms, closing connections with 1012");
        let _ = accepting_tx.send(());
        if tokio::time::timeout(grace, rooms.drain_all())
            .await
            .is_err()
        {
            tracing::warn!("rooms did not drain within {grace:?}");
        }
        let _ = stop_tx.send(true);
    });
    front_door::serve(listener, app, limits, metrics, async {
        let _ = accepting_rx.await;
    })
    .await;
    let _ = drained.await;
    // The router (and its state's sender) is gone; wait for upgraded sockets.
    let _ = tokio::time::timeout(grace, conn_rx.recv()).await;
    Ok(())
}
