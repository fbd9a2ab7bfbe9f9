//! The OpenAPI 3.1 description of the HTTP API, served at
//! `GET /openapi.json` so that client generators and people can read what
//! the server answers. It exists beside the handlers rather than as a
//! hand-written file: every route is registered once, through
//! `utoipa_axum`'s `routes!`, which takes its path and methods from the
//! handler's `#[utoipa::path]`, so a route cannot be served without being
//! described, and the bodies' schemas come from the `collab-protocol`
//! types the handlers read and write. `server/tests/openapi.rs` walks the
//! served description against a running server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::OpenApi;

use crate::state::AppState;

/// The description's fixed parts; the paths come from the routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "collab-server",
        description = "REST API of the collab real-time collaborative editor's server. \
            The editing protocol itself runs over the WebSocket at /ws/{room_id} \
            (docs/protocol.md). With --jwt-secret, the rooms' endpoints need \
            `Authorization: Bearer <token>`."
    ),
    tags(
        (name = "rooms", description = "Create rooms and read their documents"),
        (name = "operations", description = "Health, metrics and this description"),
        (name = "websocket", description = "The collab protocol (docs/protocol.md)")
    )
)]
pub struct ApiDoc;

/// The base description: info, tags and the optional bearer scheme.
pub fn base() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    doc
}

/// Makes the router's paths OpenAPI's: axum's catch-all `{*path}` becomes
/// `{path}` (OpenAPI has no catch-all; the parameter says it may hold
/// slashes).
pub fn finish(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let paths = std::mem::take(&mut doc.paths.paths);
    doc.paths.paths = paths
        .into_iter()
        .map(|(path, item)| (path.replace("{*", "{"), item))
        .collect();
    doc
}

/// The served description, rendered once.
#[derive(Clone)]
pub struct Served(pub Arc<String>);

/// `GET /openapi.json`: this description.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses(
        (status = 200, description = "The OpenAPI 3.1 description of this API", content_type = "application/json", body = Object)
    )
)]
pub async fn openapi_json(Extension(served): Extension<Served>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        served.0.as_str().to_owned(),
    )
        .into_response()
}

/// `GET /ws/{room_id}`: the WebSocket of the collab protocol (see
/// `connection::ws_handler`; this only describes it).
#[utoipa::path(
    get,
    path = "/ws/{room_id}",
    tag = "websocket",
    params(
        ("room_id" = String, Path, description = "The room's id (editing) or its read-only id"),
        ("client_id" = Option<String>, Query, description = "1-64 chars of [A-Za-z0-9_-], kept across reconnects"),
        ("since" = Option<u64>, Query, description = "The last revision seen, when reconnecting"),
        ("role" = Option<String>, Query, description = "`editor` (default) or `watcher`"),
        ("project" = Option<String>, Query, description = "`1` for a client of project rooms"),
        ("token" = Option<String>, Query, description = "A token, for clients that cannot set headers")
    ),
    responses(
        (status = 101, description = "Switching to the WebSocket; a refusal (unknown room, bad token, full room) is a close code, see docs/protocol.md"),
        (status = 400, description = "Not a WebSocket upgrade request", content_type = "text/plain", body = String),
        (status = 403, description = "The Origin is not allowed (--cors-origins)", content_type = "text/plain", body = String),
        (status = 426, description = "The connection cannot be upgraded", content_type = "text/plain", body = String)
    )
)]
pub async fn websocket(
    ws: WebSocketUpgrade,
    path: Path<String>,
    query: Query<HashMap<String, String>>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    state: State<AppState>,
) -> Response {
    crate::connection::ws_handler(ws, path, query, peer, headers, state).await
}
