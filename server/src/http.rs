//! The REST endpoints: create a room, look one up, list its files and read
//! one, health, metrics.

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::collections::HashSet;

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

/// `POST /rooms`: creates a room, optionally seeded with one document or
/// with a project's files.
pub async fn create_room(
    State(app): State<AppState>,
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
    let (room_id, read_only_id) = app.rooms.create(&docs).await?;
    tracing::info!(room = %crate::ids::short(&room_id), files = docs.len(), "room created");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:8000");
    Ok((
        StatusCode::CREATED,
        Json(rest::CreatedRoom {
            join_url: format!("http://{host}/rooms/{room_id}"),
            ws_url: format!("ws://{host}/ws/{room_id}"),
            read_only_ws_url: Some(format!("ws://{host}/ws/{read_only_id}")),
            read_only_id: Some(read_only_id),
            room_id,
        }),
    ))
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

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
}
