//! The door of a WebSocket connection: everything checked before it may
//! join its room (origin, token, how many connections its address holds,
//! its query parameters, whether the room exists). A refusal is an `error`
//! and a close frame, sent before anything else.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use collab_protocol::{close_code, error_code, is_valid_client_id, ServerMessage};

use super::RoomHandle;
use crate::auth::{AuthError, Claims};
use crate::ids;
use crate::metrics::{Metrics, Reject};
use crate::room::Access;
use crate::state::AppState;

/// True when `origin` may open WebSockets and call REST from a browser.
pub fn origin_allowed(allowed: &Option<Vec<String>>, origin: Option<&str>) -> bool {
    match (allowed, origin) {
        (None, _) | (_, None) => true, // no list, or not a browser
        (Some(list), Some(o)) => list.iter().any(|a| a == o),
    }
}

/// Sends one message and a close frame straight on the socket (before the
/// writer half exists).
pub(super) async fn refuse(socket: &mut WebSocket, code: &str, message: &str, close: u16) {
    let _ = socket
        .send(Message::Text(
            ServerMessage::error(code, message).to_json().into(),
        ))
        .await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: close,
            reason: Utf8Bytes::from(code),
        })))
        .await;
}

/// Counts a connection against its address (and the gauge) while it lives.
pub(super) struct AddrSlot {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
    metrics: Arc<Metrics>,
}

impl AddrSlot {
    fn take(app: &AppState, ip: IpAddr) -> Option<Self> {
        let mut counts = app.ip_conns.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= app.config.max_conns_per_ip {
            return None;
        }
        *n += 1;
        app.metrics.connections.fetch_add(1, Ordering::Relaxed);
        Some(Self {
            counts: app.ip_conns.clone(),
            ip,
            metrics: app.metrics.clone(),
        })
    }
}

impl Drop for AddrSlot {
    fn drop(&mut self) {
        self.metrics.connections.fetch_sub(1, Ordering::Relaxed);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// What passed the door: who connects, how, and to which room.
pub(super) struct Admitted {
    /// Counts the connection against its address while it lives.
    pub(super) slot: AddrSlot,
    pub(super) client_id: String,
    pub(super) since: Option<u64>,
    pub(super) watcher: bool,
    /// A project client (`project=1`).
    pub(super) project: bool,
    /// Wants typing indicators (`typing=1`).
    pub(super) typing: bool,
    /// Holds the room's owner token.
    pub(super) owner: bool,
    /// The display name (the token's subject when authenticated).
    pub(super) name: Option<String>,
    pub(super) access: Access,
    pub(super) room: RoomHandle,
}

/// Checks everything about a new connection before it joins: its token,
/// its address's connection count, its query (client id, `since`, role)
/// and the room. A refusal is sent on the socket (an `error` and a close)
/// and `None` returned.
pub(super) async fn admit(
    socket: &mut WebSocket,
    app: &AppState,
    id: &str,
    params: &HashMap<String, String>,
    auth: Option<Result<Claims, AuthError>>,
    owner_token: Option<String>,
    ip: IpAddr,
) -> Option<Admitted> {
    let claims = match auth {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            app.metrics.reject(Reject::Unauthorized);
            let msg = e.to_string();
            {
                refuse(
                    socket,
                    error_code::UNAUTHORIZED,
                    &msg,
                    close_code::UNAUTHORIZED,
                )
                .await;
                return None;
            }
        }
    };
    let Some(slot) = AddrSlot::take(app, ip) else {
        app.metrics.reject(Reject::TooManyConnections);
        let msg = format!(
            "more than {} connections from your address",
            app.config.max_conns_per_ip
        );
        {
            refuse(
                socket,
                error_code::TOO_MANY_CONNECTIONS,
                &msg,
                close_code::TRY_AGAIN_LATER,
            )
            .await;
            return None;
        }
    };
    let client_id = match params.get("client_id") {
        Some(id) if is_valid_client_id(id) => id.clone(),
        Some(_) => {
            app.metrics.reject(Reject::Malformed);
            let msg = "client_id must be 1-64 chars of [A-Za-z0-9_-]";
            {
                refuse(socket, error_code::MALFORMED, msg, close_code::MALFORMED).await;
                return None;
            }
        }
        None => ids::new_client_id(),
    };
    let since = match params.get("since").map(|s| s.parse::<u64>()) {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(_)) => {
            app.metrics.reject(Reject::Malformed);
            let msg = "since must be a revision number";
            {
                refuse(socket, error_code::MALFORMED, msg, close_code::MALFORMED).await;
                return None;
            }
        }
    };
    let watcher = match params.get("role").map(String::as_str) {
        None | Some("editor") => false,
        Some("watcher") => true,
        Some(_) => {
            app.metrics.reject(Reject::Malformed);
            let msg = "role must be editor or watcher";
            {
                refuse(socket, error_code::MALFORMED, msg, close_code::MALFORMED).await;
                return None;
            }
        }
    };
    let project = match params.get("project").map(String::as_str) {
        None | Some("0") => false,
        Some("1") => true,
        Some(_) => {
            app.metrics.reject(Reject::Malformed);
            let msg = "project must be 1 (a client that understands project rooms) or 0";
            refuse(socket, error_code::MALFORMED, msg, close_code::MALFORMED).await;
            return None;
        }
    };
    let typing = match params.get("typing").map(String::as_str) {
        None | Some("0") => false,
        Some("1") => true,
        Some(_) => {
            app.metrics.reject(Reject::Malformed);
            let msg = "typing must be 1 (a client that shows typing indicators) or 0";
            refuse(socket, error_code::MALFORMED, msg, close_code::MALFORMED).await;
            return None;
        }
    };
    let (access, room) = match find_room(app, id).await {
        Ok(found) => found,
        Err((code, message, close)) => {
            refuse(socket, code, message, close).await;
            return None;
        }
    };
    // The owner token counts only with the editing id, and only if it is
    // the room's: a wrong one is refused rather than ignored, so an owner
    // does not silently lose the owner's powers.
    let owner = match owner_token.as_deref() {
        None => Ok(false),
        // Never through the read-only id: refused without asking the store.
        Some(_) if access.viewer_id.is_some() => {
            Err("the owner token does not go with the room's read-only id")
        }
        Some(token) => match app.rooms.is_owner(&access.room_id, token).await {
            Ok(true) => Ok(true),
            Ok(_) => Err(
                "that is not this room's owner token (or the room was joined through its read-only id)",
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot check an owner token");
                let (code, message, close) = UNAVAILABLE;
                refuse(socket, code, message, close).await;
                return None;
            }
        },
    };
    let owner = match owner {
        Ok(owner) => owner,
        Err(msg) => {
            app.metrics.reject(Reject::Unauthorized);
            refuse(
                socket,
                error_code::UNAUTHORIZED,
                msg,
                close_code::UNAUTHORIZED,
            )
            .await;
            return None;
        }
    };
    let name = claims
        .map(|c| c.sub)
        .or_else(|| params.get("name").cloned());
    Some(Admitted {
        slot,
        client_id,
        since,
        watcher,
        project,
        typing,
        owner,
        name,
        access,
        room,
    })
}

/// An `error` code, its message and the close code that follows.
pub(super) type Refusal = (&'static str, &'static str, u16);

pub(super) const NOT_FOUND: Refusal = (
    error_code::ROOM_NOT_FOUND,
    "no room with this id (it may have expired)",
    close_code::ROOM_NOT_FOUND,
);
pub(super) const UNAVAILABLE: Refusal = (
    error_code::UNAVAILABLE,
    "the room's store is unavailable; try again shortly",
    close_code::TRY_AGAIN_LATER,
);

/// The room an id opens (editing or read-only) and its task.
pub(super) async fn find_room(app: &AppState, id: &str) -> Result<(Access, RoomHandle), Refusal> {
    let unavailable = |e: crate::store::StoreError| {
        tracing::warn!(error = %e, "cannot open room");
        UNAVAILABLE
    };
    let access = app
        .rooms
        .resolve(id)
        .await
        .map_err(unavailable)?
        .ok_or(NOT_FOUND)?;
    let room = app
        .rooms
        .get(&access.room_id)
        .await
        .map_err(unavailable)?
        .ok_or(NOT_FOUND)?;
    Ok((access, room))
}
