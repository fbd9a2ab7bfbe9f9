//! The REST endpoints: create a room, look one up, health, metrics.

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use collab_protocol::rest;

use crate::error::ApiError;
use crate::metrics::Reject;
use crate::state::AppState;

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

/// `POST /rooms`: creates a room, optionally seeded with code.
pub async fn create_room(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<rest::CreatedRoom>), ApiError> {
    let req: rest::CreateRoom = if body.iter().all(u8::is_ascii_whitespace) {
        rest::CreateRoom::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::BadRequest(format!("body must be {{\"code\", \"language\"}}: {e}"))
        })?
    };
    let chars = req.code.chars().count();
    if chars > app.config.max_document_chars {
        return Err(ApiError::BadRequest(format!(
            "code of {chars} chars is over the {}-char document limit",
            app.config.max_document_chars
        )));
    }
    let language = req
        .language
        .filter(|l| !l.trim().is_empty())
        .unwrap_or_else(|| "plaintext".to_owned());
    let (room_id, read_only_id) = app.rooms.create(&req.code, &language).await?;
    tracing::info!(room = %crate::ids::short(&room_id), "room created");
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
