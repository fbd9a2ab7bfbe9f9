//! `POST /rooms/autocomplete`: one completion for a cursor in some code, as
//! the seed designs asked (`{code, cursor_position, language}` →
//! `{suggestion, insert_position}`; docs/protocol.md, "Completion"). A
//! module of its own because it shares nothing with the room handlers: no
//! room, no store, only the completion engine the editor uses too
//! ([`collab_protocol::complete`]).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::Json;

use collab_protocol::complete;
use collab_protocol::rest::{self, Autocomplete, Suggestion};

use crate::error::ApiError;

/// The largest body taken (1 MiB); a larger one gets 413.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The route's body limit, for the router.
pub fn body_limit() -> axum::extract::DefaultBodyLimit {
    axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES)
}

#[utoipa::path(
    post,
    path = "/rooms/autocomplete",
    tag = "rooms",
    security((), ("bearer" = [])),
    request_body(content = rest::Autocomplete, content_type = "application/json"),
    responses(
        (status = 200, description = "The suggestion (\"\" when there is none) and where to insert it", body = rest::Suggestion),
        (status = 400, description = "Not the request's shape, or a cursor past the code's end", body = rest::ErrorBody),
        (status = 413, description = "A body over 1 MiB", body = rest::ErrorBody),
        (status = 401, description = "Authentication is on and the token is missing or bad", body = rest::ErrorBody)
    )
)]
/// `POST /rooms/autocomplete`: 200 with the suggestion (`""` when there is
/// none), 400 for a body that is not the request or a cursor past the
/// code's end, 413 for a body over [`MAX_BODY_BYTES`].
pub async fn autocomplete(
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Suggestion>, ApiError> {
    let body = body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
            ApiError::TooLarge(format!(
                "the body is over {MAX_BODY_BYTES} bytes (1 MiB), the autocomplete limit"
            ))
        }
        e => ApiError::BadRequest(format!("could not read the body: {e}")),
    })?;
    let req: Autocomplete = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "body must be {{\"code\": string, \"cursor_position\": number, \"language\": string}}: {e}"
        ))
    })?;
    let suggestion = complete::suggest(&req.code, req.cursor_position, &req.language)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(Json(Suggestion {
        suggestion,
        insert_position: req.cursor_position,
    }))
}
