//! The REST endpoints: create a room, look one up, list its files and read
//! one, health, metrics.

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::collections::HashSet;
use std::net::SocketAddr;

use collab_protocol::{language, paths, rest, FileInfo};

use crate::error::ApiError;
use crate::metrics::Reject;
use crate::room::core::tree::check_size;
use crate::state::AppState;
use crate::store::{LoadedRoom, NewDoc, MAIN_DOC};

/// Refuses REST calls without a valid bearer token when auth is on.
pub async fn require_auth(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(auth) = &app.auth {
        if let Err(e) = auth.check(req.headers(), None) {
            app.metrics.reject(Reject::Unauthorized);
            return ApiError::Unauthorized(e).into_response();
        }
    }
    next.run(req).await
}

#[utoipa::path(
    post,
    path = "/rooms",
    tag = "rooms",
    security((), ("bearer" = [])),
    request_body(
        content = Option<rest::CreateRoom>,
        content_type = "application/json",
        description = "One document (`code`, `language`, `path`) or a project (`files`); none: an empty room"
    ),
    responses(
        (status = 201, description = "The room, its URLs and its read-only id", body = rest::CreatedRoom),
        (status = 400, description = "The body is not one of the two shapes, a path is bad or listed twice", body = rest::ErrorBody),
        (status = 413, description = "A file, or all of them, over a size limit (--max-doc-bytes, --max-room-bytes, --max-docs)", body = rest::ErrorBody),
        (status = 401, description = "Authentication is on and the token is missing or bad", body = rest::ErrorBody),
        (status = 503, description = "The room store (Redis) is unreachable", body = rest::ErrorBody)
    )
)]
/// `POST /rooms`: creates a room, optionally seeded with one document or
/// with a project's files.
pub async fn create_room(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<rest::CreatedRoom>), ApiError> {
    let req: rest::CreateRoom = if body.iter().all(u8::is_ascii_whitespace) {
        rest::CreateRoom::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::BadRequest(format!(
                "body must be {{\"code\", \"language\", \"path\"}} or {{\"files\": [{{\"path\", \"code\"}}, ...]}}: {e}"
            ))
        })?
    };
    let docs = new_docs(&app.config, req)?;
    let (room_id, read_only_id, owner_token) = app.rooms.create(&docs).await?;
    tracing::info!(room = %crate::ids::short(&room_id), files = docs.len(), "room created");
    let created = links(
        &app,
        peer,
        &headers,
        room_id,
        read_only_id,
        Some(owner_token),
    );
    Ok((StatusCode::CREATED, Json(created)))
}

/// A room's links as `POST /rooms` answers them, at the address the client
/// reached us by (or `--public-url`).
pub(crate) fn links(
    app: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    room_id: String,
    read_only_id: String,
    owner_token: Option<String>,
) -> rest::CreatedRoom {
    let base = match &app.config.public_url {
        Some(url) => url.clone(),
        None => {
            let proxied = app.config.trusted_proxies.is_trusted(peer.ip());
            request_base(headers, app.config.tls.is_some(), proxied)
        }
    };
    let ws_base = ws_base(&base);
    rest::CreatedRoom {
        join_url: format!("{base}/rooms/{room_id}"),
        ws_url: format!("{ws_base}/ws/{room_id}"),
        read_only_ws_url: Some(format!("{ws_base}/ws/{read_only_id}")),
        read_only_id: Some(read_only_id),
        room_id,
        owner_token,
    }
}

/// `--public-url` checked and normalised: `http(s)://host[:port][/prefix]`,
/// without a trailing slash, query or fragment.
pub fn public_base(url: &str) -> Result<String, String> {
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must start with https:// or http://")?;
    let host = rest.split('/').next().unwrap_or_default();
    if !is_host(host) {
        return Err(format!("{host:?} is not a host name (or host:port)"));
    }
    if rest.contains(['?', '#']) || rest.chars().any(char::is_whitespace) {
        return Err("must not hold a query, a fragment or spaces".into());
    }
    Ok(url.to_owned())
}

/// Only what a host (name, IPv4, `[IPv6]`, `:port`) is made of: a `Host`
/// header is the client's to write, and it ends up in the URLs we answer.
fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'))
}

/// Where the client reached us, without `--public-url`: the `Host` header
/// (`https` when we speak TLS), or, from a trusted proxy only,
/// `X-Forwarded-Proto` and `X-Forwarded-Host` (their first entries: the
/// client's side of the first proxy).
fn request_base(headers: &HeaderMap, tls: bool, proxied: bool) -> String {
    let first = |name: &str| {
        headers
            .get(name)
            .and_then(|h| h.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let mut scheme = if tls { "https" } else { "http" };
    let mut host = first(header::HOST.as_str()).filter(|h| is_host(h));
    if proxied {
        match first("x-forwarded-proto") {
            Some(p) if p.eq_ignore_ascii_case("https") => scheme = "https",
            Some(p) if p.eq_ignore_ascii_case("http") => scheme = "http",
            _ => {}
        }
        if let Some(h) = first("x-forwarded-host").filter(|h| is_host(h)) {
            host = Some(h);
        }
    }
    format!("{scheme}://{}", host.unwrap_or("127.0.0.1:8000"))
}

/// The WebSocket form of an HTTP base URL.
fn ws_base(base: &str) -> String {
    match base.strip_prefix("https://") {
        Some(rest) => format!("wss://{rest}"),
        None => format!("ws://{}", base.trim_start_matches("http://")),
    }
}

/// The documents a `POST /rooms` body asks for, checked against the
/// limits: a bad path or a duplicate is a 400, a file or the whole over its
/// size a 413, each naming the path.
fn new_docs(config: &crate::Config, req: rest::CreateRoom) -> Result<Vec<NewDoc>, ApiError> {
    let blank = |l: Option<String>| l.filter(|l| !l.trim().is_empty());
    let files = match req.files {
        Some(files) => {
            if !req.code.is_empty() || req.path.is_some() || req.language.is_some() {
                return Err(ApiError::BadRequest(
                    "send either code (with language and path) or files, not both".into(),
                ));
            }
            files
        }
        None => {
            let chars = req.code.chars().count();
            if chars > config.max_document_chars {
                return Err(ApiError::BadRequest(format!(
                    "code of {chars} chars is over the {}-char document limit",
                    config.max_document_chars
                )));
            }
            let language = blank(req.language)
                .or_else(|| req.path.as_deref().map(|p| language::guess(p).to_owned()))
                .unwrap_or_else(|| "plaintext".to_owned());
            let (_, mut docs) = LoadedRoom::single(&req.code, &language, req.path.as_deref());
            let path = std::mem::take(&mut docs[0].file.path);
            vec![rest::NewFile {
                path,
                code: std::mem::take(&mut docs[0].code),
                language: Some(language),
            }]
        }
    };
    let limits = config.tree_limits();
    if files.len() > limits.max_docs {
        return Err(ApiError::TooLarge(format!(
            "{} files; a room holds at most {}",
            files.len(),
            limits.max_docs
        )));
    }
    let mut seen = HashSet::new();
    let mut room = 0;
    let mut docs = Vec::with_capacity(files.len());
    for (i, f) in files.into_iter().enumerate() {
        paths::check(&f.path).map_err(|e| ApiError::BadRequest(format!("{:?}: {e}", f.path)))?;
        if !seen.insert(f.path.clone()) {
            return Err(ApiError::BadRequest(format!(
                "{:?} is listed twice",
                f.path
            )));
        }
        let size = f.code.len() as u64;
        check_size(&f.path, size, room, &limits).map_err(|r| ApiError::TooLarge(r.message))?;
        room += size;
        let language = blank(f.language).unwrap_or_else(|| language::guess(&f.path).to_owned());
        docs.push(NewDoc {
            file: FileInfo {
                // The first file is the main document.
                doc: if i == 0 {
                    MAIN_DOC.to_owned()
                } else {
                    crate::ids::new_doc_id(&mut rand::rng())
                },
                path: f.path,
                size,
                language,
            },
            code: f.code,
        });
    }
    Ok(docs)
}

#[utoipa::path(
    get,
    path = "/rooms/{id}/files",
    tag = "rooms",
    security((), ("bearer" = [])),
    params(("id" = String, Path, description = "The room's id or its read-only id")),
    responses(
        (status = 200, description = "Every document of the room, sorted by path", body = rest::Files),
        (status = 404, description = "No such room", body = rest::ErrorBody),
        (status = 401, description = "Authentication is on and the token is missing or bad", body = rest::ErrorBody),
        (status = 503, description = "The room store (Redis) is unreachable", body = rest::ErrorBody)
    )
)]
/// `GET /rooms/{id}/files`: every document of a room, sorted by path.
pub async fn list_files(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<rest::Files>, ApiError> {
    let access = app
        .rooms
        .resolve(&id)
        .await?
        .ok_or(ApiError::RoomNotFound)?;
    let (tree_revision, files) = app
        .rooms
        .files(&access.room_id)
        .await?
        .ok_or(ApiError::RoomNotFound)?;
    Ok(Json(rest::Files {
        room_id: id,
        tree_revision,
        files,
    }))
}

#[utoipa::path(
    get,
    path = "/rooms/{id}/files/{*path}",
    tag = "rooms",
    security((), ("bearer" = [])),
    params(
        ("id" = String, Path, description = "The room's id or its read-only id"),
        ("path" = String, Path, description = "The file's path in the room's tree; may hold slashes (`src/main.rs`)")
    ),
    responses(
        (status = 200, description = "The document's text, byte for byte", content_type = "text/plain; charset=utf-8", body = String),
        (status = 404, description = "No such room, or no document at that path", body = rest::ErrorBody),
        (status = 401, description = "Authentication is on and the token is missing or bad", body = rest::ErrorBody),
        (status = 503, description = "The room store (Redis) is unreachable", body = rest::ErrorBody)
    )
)]
/// `GET /rooms/{id}/files/{path}`: one document's text, byte for byte.
pub async fn file_text(
    State(app): State<AppState>,
    Path((id, path)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let access = app
        .rooms
        .resolve(&id)
        .await?
        .ok_or(ApiError::RoomNotFound)?;
    let text = app
        .rooms
        .file_text(&access.room_id, &path)
        .await?
        .ok_or(ApiError::FileNotFound(path))?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.to_string(),
    )
        .into_response())
}

#[utoipa::path(
    get,
    path = "/rooms/{id}/exists",
    tag = "rooms",
    security((), ("bearer" = [])),
    params(("id" = String, Path, description = "Either id of a room")),
    responses(
        (status = 200, description = "Whether a room has that id", body = rest::RoomExists),
        (status = 401, description = "Authentication is on and the token is missing or bad", body = rest::ErrorBody),
        (status = 503, description = "The room store (Redis) is unreachable", body = rest::ErrorBody)
    )
)]
/// `GET /rooms/{id}/exists` (either id of a room).
pub async fn room_exists(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<rest::RoomExists>, ApiError> {
    let exists = app.rooms.resolve(&id).await?.is_some();
    Ok(Json(rest::RoomExists {
        exists,
        room_id: id,
    }))
}

#[utoipa::path(
    get,
    path = "/rooms/{id}",
    tag = "rooms",
    security((), ("bearer" = [])),
    params(("id" = String, Path, description = "The room's id or its read-only id")),
    responses(
        (status = 200, description = "The main document, its revision and who is in the room", body = rest::RoomState),
        (status = 404, description = "No such room", body = rest::ErrorBody),
        (status = 401, description = "Authentication is on and the token is missing or bad", body = rest::ErrorBody),
        (status = 503, description = "The room store (Redis) is unreachable", body = rest::ErrorBody)
    )
)]
/// `GET /rooms/{id}`: the document and who is in the room. Through a
/// read-only id, the room is named by that id.
pub async fn get_room(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<rest::RoomState>, ApiError> {
    let access = app
        .rooms
        .resolve(&id)
        .await?
        .ok_or(ApiError::RoomNotFound)?;
    let snap = app
        .rooms
        .snapshot(&access.room_id)
        .await?
        .ok_or(ApiError::RoomNotFound)?;
    Ok(Json(rest::RoomState {
        room_id: id,
        revision: snap.revision,
        language: snap.language,
        code: snap.doc.to_string(),
        users: snap.users,
    }))
}

#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses(
        (status = 200, description = "The server and its room store answer", body = rest::Health),
        (status = 503, description = "The room store (Redis) is unreachable", body = rest::Health)
    )
)]
/// `GET /health`: 200 while the store answers, 503 when it does not.
pub async fn health(State(app): State<AppState>) -> (StatusCode, Json<rest::Health>) {
    let store = app.rooms.store();
    let (status, store) = if store.healthy().await {
        (StatusCode::OK, store.name().to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{} unreachable", store.name()),
        )
    };
    let word = if status == StatusCode::OK {
        "ok"
    } else {
        "unavailable"
    };
    let health = rest::Health {
        status: word.to_owned(),
        store,
    };
    (status, Json(health))
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain; version=0.0.4", body = String)
    )
)]
/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_are_checked_and_trimmed() {
        assert_eq!(
            public_base("https://collab.example.com/").unwrap(),
            "https://collab.example.com"
        );
        assert_eq!(
            public_base("http://10.0.0.5:8000/collab").unwrap(),
            "http://10.0.0.5:8000/collab"
        );
        assert!(public_base("collab.example.com").is_err());
        assert!(public_base("https://").is_err());
        assert!(public_base("https://a b").is_err());
        assert!(public_base("https://h/?x=1").is_err());
        assert_eq!(ws_base("https://h/p"), "wss://h/p");
        assert_eq!(ws_base("http://h:1"), "ws://h:1");
    }

    #[test]
    fn forwarded_headers_count_only_from_a_trusted_proxy() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "10.0.0.2:8000".parse().unwrap());
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        h.insert(
            "x-forwarded-host",
            "collab.example.com, inner".parse().unwrap(),
        );
        assert_eq!(request_base(&h, false, false), "http://10.0.0.2:8000");
        assert_eq!(request_base(&h, true, false), "https://10.0.0.2:8000");
        assert_eq!(request_base(&h, false, true), "https://collab.example.com");
        h.insert(header::HOST, "evil/path?".parse().unwrap());
        assert_eq!(request_base(&h, false, false), "http://127.0.0.1:8000");
    }
}
