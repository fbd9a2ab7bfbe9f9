//! The room owner's REST endpoints. `POST /rooms` answers an
//! `owner_token` once; whoever holds it (sent as the `Collab-Owner-Token`
//! header) may make the room read-only for everyone else, remove a
//! participant, or end the room. The server keeps only
//! the token's hash and never logs it.

use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use collab_protocol::rest;

use crate::error::ApiError;
use crate::state::AppState;

/// The header that carries the owner token (lower case, as HTTP/2 and
/// axum want header names).
pub const OWNER_HEADER: &str = "collab-owner-token";

/// The owner token a request carries: its [`OWNER_HEADER`], else `query`
/// (the `owner_token` parameter of a WebSocket URL, as browsers cannot set
/// headers there); `None` when blank.
pub fn token_of<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    headers
        .get(OWNER_HEADER)
        .and_then(|v| v.to_str().ok())
        .or(query)
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Checks that the request holds room `id`'s owner token. The room must be
/// named by its editing id: a read-only id never carries the owner's
/// powers.
async fn check_owner(app: &AppState, id: &str, headers: &HeaderMap) -> Result<String, ApiError> {
    let token = token_of(headers, None).ok_or_else(|| {
        ApiError::Forbidden(
            "only the room's owner may do this: send the owner_token that POST /rooms \
                 answered in the Collab-Owner-Token header"
                .into(),
        )
    })?;
    let access = app.rooms.resolve(id).await?.ok_or(ApiError::RoomNotFound)?;
    if access.viewer_id.is_some() {
        return Err(ApiError::Forbidden(
            "name the room by its id, not by its read-only id".into(),
        ));
    }
    if !app.rooms.is_owner(&access.room_id, token).await? {
        return Err(ApiError::Forbidden(
            "that is not this room's owner token".into(),
        ));
    }
    Ok(access.room_id)
}

#[utoipa::path(
    delete,
    path = "/rooms/{id}",
    tag = "owner",
    security((), ("bearer" = [])),
    params(("id" = String, Path, description = "The id that opens the room"), ("Collab-Owner-Token" = String, Header, description = "The room's owner token")),
    responses(
        (status = 204, description = "Ended: everyone was closed with 4007, its data deleted"),
        (status = 403, description = "Without the room's owner token (Collab-Owner-Token), or through the read-only id", body = rest::ErrorBody),
        (status = 404, description = "No such room", body = rest::ErrorBody),
        (status = 401, description = "Authentication is on and the token is missing or bad", body = rest::ErrorBody),
        (status = 503, description = "The room store (Redis) is unreachable", body = rest::ErrorBody)
    )
)]
/// `DELETE /rooms/{id}`: ends the room. Everyone in it is told (`error`
/// `room_ended`, close 4007) and its data is deleted. 204, 403, 404.
pub async fn end_room(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let room = check_owner(&app, &id, &headers).await?;
    if !app.rooms.end(&room).await? {
        return Err(ApiError::RoomNotFound);
    }
    tracing::info!(room = %crate::ids::short(&id), "room ended by its owner");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    put,
    path = "/rooms/{id}/read_only",
    tag = "owner",
    security((), ("bearer" = [])),
    params(("id" = String, Path, description = "The id that opens the room"), ("Collab-Owner-Token" = String, Header, description = "The room's owner token")),
    request_body(content = rest::ReadOnly, content_type = "application/json"),
    responses(
        (status = 200, description = "The room's mode now", body = rest::ReadOnly),
        (status = 400, description = "The body is not {\"read_only\": bool}", body = rest::ErrorBody),
        (status = 403, description = "Without the room's owner token (Collab-Owner-Token), or through the read-only id", body = rest::ErrorBody),
        (status = 404, description = "No such room", body = rest::ErrorBody),
        (status = 401, description = "Authentication is on and the token is missing or bad", body = rest::ErrorBody),
        (status = 503, description = "The room store (Redis) is unreachable", body = rest::ErrorBody)
    )
)]
/// `PUT /rooms/{id}/read_only` with `{"read_only": bool}`: makes the room
/// read-only for everyone but connections that hold the owner token, or
/// editable again. Everyone is told (`mode`). 200 with the mode, 400, 403,
/// 404.
pub async fn set_read_only(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<rest::ReadOnly>, ApiError> {
    let room = check_owner(&app, &id, &headers).await?;
    let mode: rest::ReadOnly = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!("body must be {{\"read_only\": true|false}}: {e}"))
    })?;
    if !app.rooms.set_read_only(&room, mode.read_only).await? {
        return Err(ApiError::RoomNotFound);
    }
    tracing::info!(room = %crate::ids::short(&id), read_only = mode.read_only, "room mode set by its owner");
    Ok(Json(mode))
}

#[utoipa::path(
    delete,
    path = "/rooms/{id}/users/{user_id}",
    tag = "owner",
    security((), ("bearer" = [])),
    params(
        ("id" = String, Path, description = "The id that opens the room"),
        ("user_id" = String, Path, description = "Who to remove"),
        ("Collab-Owner-Token" = String, Header, description = "The room's owner token")
    ),
    responses(
        (status = 200, description = "Removed: closed with 4006, their clients refused, the links replaced", body = rest::Removed),
        (status = 403, description = "Without the room's owner token (Collab-Owner-Token), or through the read-only id", body = rest::ErrorBody),
        (status = 404, description = "No such room, or nobody by that user id", body = rest::ErrorBody),
        (status = 401, description = "Authentication is on and the token is missing or bad", body = rest::ErrorBody),
        (status = 503, description = "The room store (Redis) is unreachable", body = rest::ErrorBody)
    )
)]
/// `DELETE /rooms/{id}/users/{user_id}`: removes a participant. Their
/// connections are closed (`error` `removed`, close 4006), their client
/// refused when it comes back, and the room's links replaced (the one they
/// had stops working until the room is shared anew; everyone else is told
/// the new one). 200 with the number of client ids refused, 403, 404 (no
/// such room, or nobody by that user id).
pub async fn remove_user(
    State(app): State<AppState>,
    Path((id, user_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<rest::Removed>, ApiError> {
    let room = check_owner(&app, &id, &headers).await?;
    let removed = app.rooms.remove(&room, &user_id).await?;
    if removed.is_empty() {
        return Err(ApiError::UserNotFound(user_id));
    }
    tracing::info!(room = %crate::ids::short(&id), user = %user_id, "user removed by the owner");
    Ok(Json(rest::Removed {
        user_id,
        clients: removed.len(),
    }))
}

#[utoipa::path(
    post,
    path = "/rooms/{id}/links",
    tag = "owner",
    security((), ("bearer" = [])),
    params(("id" = String, Path, description = "The id that opens the room"), ("Collab-Owner-Token" = String, Header, description = "The room's owner token")),
    responses(
        (status = 200, description = "The new links (the old ones no longer open the room)", body = rest::CreatedRoom),
        (status = 403, description = "Without the room's owner token (Collab-Owner-Token), or through the read-only id", body = rest::ErrorBody),
        (status = 404, description = "No such room", body = rest::ErrorBody),
        (status = 401, description = "Authentication is on and the token is missing or bad", body = rest::ErrorBody),
        (status = 503, description = "The room store (Redis) is unreachable", body = rest::ErrorBody)
    )
)]
/// `POST /rooms/{id}/links`: replaces the room's share links. The old
/// editing and read-only ids (and the room's own id) stop opening it;
/// connected users stay and are told the new ones (`links`). 200 with the
/// new links as `POST /rooms` answers them (no owner token), 403, 404.
pub async fn rotate_links(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<rest::CreatedRoom>, ApiError> {
    let room = check_owner(&app, &id, &headers).await?;
    let (link, viewer) = app
        .rooms
        .rotate(&room)
        .await?
        .ok_or(ApiError::RoomNotFound)?;
    tracing::info!(room = %crate::ids::short(&room), "links replaced by the owner");
    let created = crate::http::links(&app, peer, &headers, link, viewer, None);
    Ok(Json(created))
}
