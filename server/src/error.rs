//! The one error type at the HTTP edge.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use collab_protocol::rest::ErrorBody;

/// An error answered to a REST call as `{"error": "..."}` with a status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No such room.
    #[error("room not found")]
    RoomNotFound,
    /// No document at that path.
    #[error("no document at {0}")]
    FileNotFound(String),
    /// The request body is not what the endpoint takes.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A file, or all of them, over a size limit.
    #[error("too large: {0}")]
    TooLarge(String),
    /// Missing or bad token.
    #[error("{0}")]
    Unauthorized(#[from] crate::auth::AuthError),
    /// Not the room owner's token (or none).
    #[error("{0}")]
    Forbidden(String),
    /// No such user in the room.
    #[error("no user {0} in this room")]
    UserNotFound(String),
    /// The store could not be reached.
    #[error("the room store is unavailable")]
    Unavailable(#[from] crate::store::StoreError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::RoomNotFound | ApiError::FileNotFound(_) | ApiError::UserNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Unavailable(ref e) => {
                tracing::warn!(error = %e, "store unavailable");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        let body = ErrorBody {
            error: self.to_string(),
        };
        (status, Json(body)).into_response()
    }
}
