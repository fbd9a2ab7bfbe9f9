//! Typed REST calls to a collab server, with the protocol's own bodies
//! (`collab_protocol::rest`), so that tests and the bench read and write
//! exactly what the server does. Tests that check the wire format itself
//! (golden JSON, malformed bodies) send raw requests instead.
//!
//! Every call returns an error rather than panicking: the bench reports it;
//! [`crate::TestServer`]'s helpers turn it into a test failure.

use anyhow::{bail, Context, Result};
use collab_protocol::rest::{CreateRoom, CreatedRoom, Files, NewFile, RoomState};
use reqwest::StatusCode;

/// REST calls to the server at one address.
#[derive(Clone, Debug)]
pub struct Rest {
    base: String,
    client: reqwest::Client,
}

impl Rest {
    /// The server at `addr` (`host:port`), through a client of its own.
    /// (A client keeps connections on the runtime that opened them: share
    /// one only within one runtime, with [`Rest::with_client`].)
    pub fn new(addr: &str) -> Self {
        Self::with_client(reqwest::Client::new(), addr)
    }

    /// The server at `addr` through `client` (and its connection pool).
    pub fn with_client(client: reqwest::Client, addr: &str) -> Self {
        Self {
            base: format!("http://{addr}"),
            client,
        }
    }

    /// `POST /rooms` with `code` (language `rust`); its answer.
    pub async fn create_room(&self, code: &str) -> Result<CreatedRoom> {
        self.create(&CreateRoom {
            code: code.to_owned(),
            language: Some("rust".into()),
            ..CreateRoom::default()
        })
        .await
    }

    /// `POST /rooms` with a project's files (`(path, text)`, the first the
    /// main document); its answer.
    pub async fn create_project(&self, files: &[(&str, &str)]) -> Result<CreatedRoom> {
        let files = files
            .iter()
            .map(|(path, code)| NewFile {
                path: (*path).to_owned(),
                code: (*code).to_owned(),
                language: None,
            })
            .collect();
        self.create(&CreateRoom {
            files: Some(files),
            ..CreateRoom::default()
        })
        .await
    }

    /// `POST /rooms` with `body`; its answer.
    pub async fn create(&self, body: &CreateRoom) -> Result<CreatedRoom> {
        let resp = self
            .client
            .post(format!("{}/rooms", self.base))
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST /rooms on {}", self.base))?;
        if resp.status() != StatusCode::CREATED {
            bail!("POST /rooms on {} answered {}", self.base, resp.status());
        }
        resp.json().await.context("POST /rooms' answer")
    }

    /// `GET /rooms/{id}`, or `None` when the server answers 404.
    pub async fn room(&self, id: &str) -> Result<Option<RoomState>> {
        let resp = self.get(&format!("/rooms/{id}"), "/rooms/{id}").await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::OK => Ok(Some(resp.json().await.context("GET /rooms/{id}'s answer")?)),
            status => bail!("GET /rooms/{{id}} on {} answered {status}", self.base),
        }
    }

    /// `GET /rooms/{id}/files`, or `None` when the server answers 404.
    pub async fn files(&self, id: &str) -> Result<Option<Files>> {
        let resp = self
            .get(&format!("/rooms/{id}/files"), "/rooms/{id}/files")
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::OK => Ok(Some(
                resp.json().await.context("GET /rooms/{id}/files' answer")?,
            )),
            status => bail!("GET /rooms/{{id}}/files on {} answered {status}", self.base),
        }
    }

    /// `GET /rooms/{id}/files/{path}`'s bytes, or `None` on a 404.
    pub async fn file_text(&self, id: &str, path: &str) -> Result<Option<Vec<u8>>> {
        let resp = self
            .get(
                &format!("/rooms/{id}/files/{path}"),
                "/rooms/{id}/files/{path}",
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::OK => Ok(Some(resp.bytes().await.context("a file's text")?.to_vec())),
            status => bail!(
                "GET /rooms/{{id}}/files/{{path}} on {} answered {status}",
                self.base
            ),
        }
    }

    /// `GET /metrics`' text.
    pub async fn metrics(&self) -> Result<String> {
        let resp = self.get("/metrics", "/metrics").await?;
        resp.text().await.context("GET /metrics' answer")
    }

    /// `GET {path}`; `shown` names the path in errors (without secrets such
    /// as a room id).
    async fn get(&self, path: &str, shown: &str) -> Result<reqwest::Response> {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .with_context(|| format!("GET {shown} on {}", self.base))
    }

    /// The value of the series `name` in `GET /metrics`, if the server has it.
    pub async fn metric(&self, name: &str) -> Result<Option<f64>> {
        Ok(parse_metric(&self.metrics().await?, name))
    }
}

/// The value of the series `name` (with its labels, e.g.
/// `collab_rejected_total{reason="malformed"}`) in Prometheus text.
pub fn parse_metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::parse_metric;

    #[test]
    fn a_series_is_found_by_its_whole_name() {
        let text = "# TYPE collab_rooms gauge\ncollab_rooms_total 7\ncollab_rooms 2\n\
                    collab_rejected_total{reason=\"malformed\"} 1\n";
        assert_eq!(parse_metric(text, "collab_rooms"), Some(2.0));
        assert_eq!(
            parse_metric(text, "collab_rejected_total{reason=\"malformed\"}"),
            Some(1.0)
        );
        assert_eq!(parse_metric(text, "collab_connections"), None);
    }
}
