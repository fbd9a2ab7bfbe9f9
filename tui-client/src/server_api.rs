//! Talking to a collab server: its REST endpoints and the WebSocket upgrade
//! request (URL, query, bearer token). Errors say what went wrong in terms a
//! user can act on: unreachable, room not found, unexpected answer.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use collab_protocol::rest::{CreateRoom, CreatedRoom, Files, NewFile, RoomState};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// Why a server request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server URL is not usable.
    #[error("invalid server URL {url:?}: {why}")]
    BadUrl {
        /// What was given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The TLS set-up (`--ca-cert`) is not usable.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// No answer from the server.
    #[error("cannot reach the collab server at {url} ({why})")]
    Unreachable {
        /// The server.
        url: String,
        /// The root cause, e.g. "Connection refused".
        why: String,
    },
    /// The room does not exist (or expired).
    #[error("room {0} not found (it may have expired)")]
    RoomNotFound(String),
    /// Not something a room id can be.
    #[error("invalid room id {0:?}: a room id is the letters and digits `collab create` printed")]
    InvalidRoomId(String),
    /// Any other answer than the expected one.
    #[error("the server answered {status}: {body}")]
    Unexpected {
        /// HTTP status.
        status: StatusCode,
        /// Body (or the decoding problem).
        body: String,
    },
}

/// A collab server: base URL plus the optional bearer token.
#[derive(Debug, Clone)]
pub struct ServerApi {
    base: Url,
    token: Option<String>,
    http: reqwest::Client,
    /// For `https://` servers: what REST and the WebSocket trust.
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// The innermost cause of an error, which is the part that says why
/// ("Connection refused" rather than "error sending request").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut e = e;
    while let Some(next) = e.source() {
        e = next;
    }
    e.to_string()
}

/// True for what a room id (or a read-only id) can be: 1 to 64 ASCII
/// letters and digits (the server makes 22).
pub fn is_valid_room_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl ServerApi {
    /// A client for the server at `base` (`http://host:port` or
    /// `https://host`; a bare `host:port` means `http://host:port`),
    /// trusting the system's roots for `https://`.
    pub fn new(base: &str, token: Option<String>) -> Result<Self, ApiError> {
        Self::with_ca(base, token, None)
    }

    /// As [`ServerApi::new`], trusting only the CA certificates in
    /// `ca_cert` (PEM) for `https://` when given (`--ca-cert`).
    pub fn with_ca(
        base: &str,
        token: Option<String>,
        ca_cert: Option<&Path>,
    ) -> Result<Self, ApiError> {
        let bad = |why: &str| ApiError::BadUrl {
            url: base.to_owned(),
            why: why.to_owned(),
        };
        let with_scheme;
        let base = if base.contains("://") {
            base
        } else {
            with_scheme = format!("http://{base}");
            &with_scheme
        };
        let mut url = Url::parse(base).map_err(|e| bad(&e.to_string()))?;
        let tls = match url.scheme() {
            "http" => None,
            "https" => Some(crate::tls::client_config(ca_cert)?),
            _ => return Err(bad("expected http://host:port or https://host")),
        };
        if url.host().is_none() {
            return Err(bad("no host"));
        }
        // Paths are appended to the base; make sure it ends in '/'.
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        let mut http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20));
        if let Some(config) = &tls {
            http = http.use_preconfigured_tls((**config).clone());
        }
        let http = http.build().map_err(|e| bad(&e.to_string()))?;
        Ok(Self {
            base: url,
            token: token.filter(|t| !t.is_empty()),
            http,
            tls,
        })
    }

    /// The base URL as given (without the trailing slash).
    pub fn base(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    fn url(&self, path: &str) -> Url {
        // Joining a relative path to a base ending in '/' cannot fail.
        self.base.join(path).unwrap_or_else(|_| self.base.clone())
    }

    fn unreachable(&self, e: &reqwest::Error) -> ApiError {
        ApiError::Unreachable {
            url: self.base(),
            why: crate::tls::certificate_problem(e).unwrap_or_else(|| root_cause(e)),
        }
    }

    /// How the WebSocket connects: TLS with the same roots as REST for an
    /// `https://` server, plain TCP otherwise.
    pub fn ws_connector(&self) -> Option<tokio_tungstenite::Connector> {
        self.tls.clone().map(tokio_tungstenite::Connector::Rustls)
    }

    fn authorized(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    async fn decode<T: for<'de> Deserialize<'de>>(resp: reqwest::Response) -> Result<T, ApiError> {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        serde_json::from_str(&body).map_err(|e| ApiError::Unexpected {
            status,
            body: format!("{e}: {body}"),
        })
    }

    /// `POST /rooms` with one document (at `path` in the room's tree).
    pub async fn create_room(
        &self,
        code: &str,
        language: &str,
        path: Option<&str>,
    ) -> Result<CreatedRoom, ApiError> {
        let body = CreateRoom {
            code: code.to_owned(),
            language: Some(language.to_owned()),
            path: path.map(str::to_owned),
            files: None,
        };
        self.post_room(&body).await
    }

    /// `POST /rooms` with `files`: a project room (the first file is its
    /// main document).
    pub async fn create_project(&self, files: Vec<NewFile>) -> Result<CreatedRoom, ApiError> {
        let body = CreateRoom {
            files: Some(files),
            ..CreateRoom::default()
        };
        self.post_room(&body).await
    }

    /// `POST /rooms` with `body`; the created room.
    async fn post_room(&self, body: &CreateRoom) -> Result<CreatedRoom, ApiError> {
        let resp = self
            .authorized(self.http.post(self.url("rooms")).json(body))
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        if resp.status() != StatusCode::CREATED {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            return Err(ApiError::Unexpected { status, body });
        }
        Self::decode(resp).await
    }

    /// `GET /rooms/{id}/files`: every document's path.
    pub async fn files(&self, room: &str) -> Result<Files, ApiError> {
        self.get_room(room, "/files").await
    }

    /// `GET /rooms/{id}/files/{path}`: one document's text, byte for byte;
    /// `None` when no document has that path.
    pub async fn file(&self, room: &str, path: &str) -> Result<Option<String>, ApiError> {
        if !is_valid_room_id(room) {
            return Err(ApiError::InvalidRoomId(room.to_owned()));
        }
        let mut url = self.url(&format!("rooms/{room}/files/"));
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(path.split('/'));
        }
        let resp = self
            .authorized(self.http.get(url))
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        match resp.status() {
            StatusCode::OK => {
                let bytes = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
                String::from_utf8(bytes.to_vec())
                    .map(Some)
                    .map_err(|e| ApiError::Unexpected {
                        status: StatusCode::OK,
                        body: format!("not UTF-8: {e}"),
                    })
            }
            StatusCode::NOT_FOUND => {
                // The room may be the one missing: say which.
                self.room(room).await?;
                Ok(None)
            }
            status => Err(ApiError::Unexpected {
                status,
                body: resp.text().await.unwrap_or_default(),
            }),
        }
    }

    /// `GET /rooms/{id}`.
    pub async fn room(&self, room: &str) -> Result<RoomState, ApiError> {
        self.get_room(room, "").await
    }

    /// `GET /rooms/{id}{rest}` as JSON; a 404 says the room was not found.
    async fn get_room<T: for<'de> Deserialize<'de>>(
        &self,
        room: &str,
        rest: &str,
    ) -> Result<T, ApiError> {
        if !is_valid_room_id(room) {
            return Err(ApiError::InvalidRoomId(room.to_owned()));
        }
        let resp = self
            .authorized(self.http.get(self.url(&format!("rooms/{room}{rest}"))))
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        match resp.status() {
            StatusCode::OK => Self::decode(resp).await,
            StatusCode::NOT_FOUND => Err(ApiError::RoomNotFound(room.to_owned())),
            status => Err(ApiError::Unexpected {
                status,
                body: resp.text().await.unwrap_or_default(),
            }),
        }
    }

    /// The WebSocket upgrade request for `room` with the given query
    /// parameters (name, client_id, since), carrying the token.
    pub fn ws_request(&self, room: &str, query: &[(&str, String)]) -> Result<Request, ApiError> {
        let mut url = self.url(&format!("ws/{room}"));
        // http -> ws, https -> wss keep host, port and path.
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        let _ = url.set_scheme(scheme);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        let bad = |why: String| ApiError::BadUrl {
            url: url.to_string(),
            why,
        };
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| bad(e.to_string()))?;
        if let Some(t) = &self.token {
            let value =
                HeaderValue::from_str(&format!("Bearer {t}")).map_err(|e| bad(e.to_string()))?;
            req.headers_mut().insert("authorization", value);
        }
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_requests_carry_query_and_token() {
        let api = ServerApi::new("http://example.test:8000", Some("s3cret".into())).unwrap();
        let req = api
            .ws_request("abc", &[("name", "Ann Lee".into()), ("since", "4".into())])
            .unwrap();
        assert_eq!(
            req.uri().to_string(),
            "ws://example.test:8000/ws/abc?name=Ann+Lee&since=4"
        );
        assert_eq!(req.headers()["authorization"], "Bearer s3cret");
        assert_eq!(api.base(), "http://example.test:8000");
    }

    #[test]
    fn unusable_urls_are_refused_and_bare_addresses_mean_http() {
        let bare = ServerApi::new("127.0.0.1:18100", None).unwrap();
        assert_eq!(bare.base(), "http://127.0.0.1:18100");
        let host = ServerApi::new("localhost:8000", None).unwrap();
        assert_eq!(host.base(), "http://localhost:8000");
        assert!(ServerApi::new("ftp://example.test", None).is_err());
        assert!(ServerApi::new("http://", None).is_err());
        let tls = ServerApi::new("https://example.test/", Some("s3cret".into())).unwrap();
        let req = tls.ws_request("abc", &[]).unwrap();
        assert_eq!(req.uri().to_string(), "wss://example.test/ws/abc");
        assert_eq!(req.headers()["authorization"], "Bearer s3cret");
        assert!(tls.ws_connector().is_some() && bare.ws_connector().is_none());
        assert!(
            ServerApi::with_ca("https://h", None, Some(Path::new("/nonexistent.pem"))).is_err()
        );
        assert!(ServerApi::new("http://h/prefix", None).is_ok());
    }
}
