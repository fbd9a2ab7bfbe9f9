//! A minimal HTTP/1.1 client for the two REST calls the benchmark needs
//! (`POST /rooms`, `GET /rooms/{id}`), so the server crate needs no HTTP
//! client dependency. One request per connection (`Connection: close`).

use anyhow::{bail, Context, Result};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn request(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    let body = body.unwrap_or("");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("HTTP response without headers")?;
    let headers = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status: u16 = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("HTTP response without status")?;
    let rest = &raw[split + 4..];
    let body = if headers.contains("transfer-encoding: chunked") {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("bad chunk")?;
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            bail!("truncated chunk");
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Creates a room holding `code`; returns its id.
pub async fn create_room(addr: &str, code: &str) -> Result<String> {
    let body = serde_json::json!({ "code": code, "language": "rust" }).to_string();
    let (status, body) = request(addr, "POST", "/rooms", Some(&body)).await?;
    if status != 201 {
        bail!("POST /rooms answered {status}");
    }
    let v: Value = serde_json::from_slice(&body)?;
    v["room_id"]
        .as_str()
        .map(str::to_owned)
        .context("no room_id in the answer")
}

/// A room as `GET /rooms/{id}` reports it.
pub struct RoomState {
    /// Its revision.
    pub revision: u64,
    /// Its document.
    pub code: String,
}

/// `GET /rooms/{id}`.
pub async fn room(addr: &str, id: &str) -> Result<RoomState> {
    let (status, body) = request(addr, "GET", &format!("/rooms/{id}"), None).await?;
    if status != 200 {
        bail!("GET /rooms/{{id}} on {addr} answered {status}");
    }
    let v: Value = serde_json::from_slice(&body)?;
    Ok(RoomState {
        revision: v["revision"].as_u64().context("no revision")?,
        code: v["code"].as_str().context("no code")?.to_owned(),
    })
}

/// The revision of a room, from `GET /rooms/{id}` (the document is parsed
/// and dropped; the REST API has no lighter call).
pub async fn room_revision(addr: &str, id: &str) -> Result<u64> {
    Ok(room(addr, id).await?.revision)
}
