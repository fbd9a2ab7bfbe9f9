//! The raw WebSocket test client: one connection to `/ws/{room}`, speaking
//! the protocol's messages (or any frame at all, for tests of what the
//! server refuses), with timeouts that turn a hung server into a failure.
//! The [`crate::Bot`] is built on it; tests that check the wire format read
//! raw JSON with [`Client::recv_json`].

use std::time::Duration;

use collab_protocol::{ClientMessage, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for any single expected message.
pub const STEP: Duration = Duration::from_secs(10);

/// [`Client::try_join`]'s error when the server upgraded the connection but
/// sent no `init` within [`STEP`]: the join may still complete on the
/// server after the caller gave up.
pub const NO_INIT_IN_TIME: &str = "no init in time";

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One raw protocol connection.
pub struct Client {
    ws: Ws,
}

/// What a connection ended with.
#[derive(Clone, Debug, PartialEq)]
pub enum End {
    /// A close frame with this code.
    Closed(u16),
    /// The connection dropped without a close frame.
    Dropped,
    /// The server sent a text frame that is no protocol message.
    Garbled(String),
}

impl Client {
    /// Connects to `ws://{addr}/ws/{room}?{query}` with `config` (the
    /// library's defaults when `None`), Nagle's algorithm off when
    /// `nodelay`.
    pub async fn open(
        addr: &str,
        room: &str,
        query: &str,
        config: Option<WebSocketConfig>,
        nodelay: bool,
    ) -> Result<Self, tungstenite::Error> {
        let url = format!("ws://{addr}/ws/{room}?{query}");
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, config, nodelay).await?;
        Ok(Self { ws })
    }

    /// Connects with extra request headers; the HTTP status on refusal.
    pub async fn connect_with(
        addr: &str,
        room: &str,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Result<Self, u16> {
        let mut req = format!("ws://{addr}/ws/{room}?{query}")
            .into_client_request()
            .unwrap();
        for (k, v) in headers {
            req.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((ws, _)) => Ok(Self { ws }),
            Err(tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(e) => panic!("connect failed: {e}"),
        }
    }

    /// Connects to `url` (`wss://…/ws/{room}?…`) over TLS trusting what
    /// `tls` trusts, with extra request headers (say `authorization`).
    pub async fn open_tls(
        url: &str,
        headers: &[(&str, &str)],
        tls: std::sync::Arc<rustls::ClientConfig>,
    ) -> Result<Self, tungstenite::Error> {
        let mut req = url.into_client_request()?;
        for (k, v) in headers {
            req.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let connector = tokio_tungstenite::Connector::Rustls(tls);
        let (ws, _) =
            tokio_tungstenite::connect_async_tls_with_config(req, None, true, Some(connector))
                .await?;
        Ok(Self { ws })
    }

    /// Connects to `/ws/{room}?{query}`.
    pub async fn connect(addr: &str, room: &str, query: &str) -> Self {
        Self::open(addr, room, query, None, false)
            .await
            .expect("ws connect")
    }

    /// Connects and reads the `init` message.
    pub async fn join(addr: &str, room: &str, query: &str) -> (Self, ServerMessage) {
        let mut c = Self::connect(addr, room, query).await;
        let init = c.recv().await;
        assert!(
            matches!(init, ServerMessage::Init { .. }),
            "first message must be init: {init:?}"
        );
        (c, init)
    }

    /// Connects and reads `init`, or says why that failed.
    pub async fn try_join(
        addr: &str,
        room: &str,
        query: &str,
    ) -> Result<(Self, ServerMessage), String> {
        let mut c = Self::open(addr, room, query, None, false)
            .await
            .map_err(|e| e.to_string())?;
        match c.next(STEP).await {
            Some(Ok(init @ ServerMessage::Init { .. })) => Ok((c, init)),
            None => Err(NO_INIT_IN_TIME.to_owned()),
            other => Err(format!("no init: {other:?}")),
        }
    }

    /// Joins with a tiny socket receive buffer, so that a connection that
    /// stops reading stalls the server's writer after a few megabytes
    /// (the server's send buffer) instead of the tens of megabytes a
    /// self-tuning receive buffer takes.
    pub async fn join_small_window(addr: &str, room: &str, query: &str) -> (Self, ServerMessage) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let tcp = socket.connect(addr.parse().unwrap()).await.unwrap();
        let url = format!("ws://{addr}/ws/{room}?{query}");
        let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp))
            .await
            .expect("ws handshake");
        let mut c = Self { ws };
        let init = c.recv().await;
        assert!(matches!(init, ServerMessage::Init { .. }), "{init:?}");
        (c, init)
    }

    /// Sends a protocol message, or says why it could not.
    pub async fn send_message(&mut self, msg: &ClientMessage) -> Result<(), tungstenite::Error> {
        self.ws.send(Message::text(msg.to_json())).await
    }

    /// Sends a protocol message.
    pub async fn send(&mut self, msg: &ClientMessage) {
        self.send_message(msg).await.expect("send");
    }

    /// Sends a message; false when the connection is gone.
    pub async fn try_send(&mut self, msg: &ClientMessage) -> bool {
        self.send_message(msg).await.is_ok()
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// Sends a raw frame.
    pub async fn send_frame(&mut self, frame: Message) -> bool {
        self.ws.send(frame).await.is_ok()
    }

    /// Closes the connection politely.
    pub async fn close(&mut self) {
        let _ = self.ws.close(None).await;
    }

    /// The next protocol message, or how the connection ended; waits as
    /// long as it takes. Frames other than text are skipped. Safe to race
    /// in a `select!` until a frame arrives (only a close frame's answer
    /// is awaited after one).
    pub async fn read(&mut self) -> Result<ServerMessage, End> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    return ServerMessage::from_json(&t)
                        .map_err(|e| End::Garbled(format!("{e}: {t}")));
                }
                Some(Ok(Message::Close(f))) => {
                    self.answer_close().await;
                    return Err(End::Closed(f.map_or(1005, |f| f.code.into())));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Err(End::Dropped),
            }
        }
    }

    /// The next protocol message, or how the connection ended, or `None`
    /// when nothing came within `wait`. Panics on a garbled message.
    pub async fn next(&mut self, wait: Duration) -> Option<Result<ServerMessage, End>> {
        let read = tokio::time::timeout(wait, self.read()).await.ok()?;
        Some(match read {
            Err(End::Garbled(e)) => panic!("valid message: {e}"),
            other => other,
        })
    }

    /// Sends the answer to the server's close frame (tungstenite queued it
    /// when the close arrived), as a well-behaved client does: the server
    /// waits a little for it before it lets go of the socket.
    async fn answer_close(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.ws.flush()).await;
    }

    /// The next raw frame's JSON, skipping nothing; panics on close or timeout.
    pub async fn recv_json(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(STEP, self.ws.next())
                .await
                .expect("a message within the step timeout")
                .expect("connection open")
                .expect("frame ok");
            match frame {
                Message::Text(t) => return serde_json::from_str(&t).expect("server sends JSON"),
                Message::Close(c) => panic!("unexpected close: {c:?}"),
                _ => continue,
            }
        }
    }

    /// The next protocol message.
    pub async fn recv(&mut self) -> ServerMessage {
        serde_json::from_value(self.recv_json().await).expect("a valid server message")
    }

    /// The next message that is not presence or a caret.
    pub async fn recv_doc(&mut self) -> ServerMessage {
        loop {
            let m = self.recv().await;
            if matches!(
                m,
                ServerMessage::CodeUpdate(_)
                    | ServerMessage::Ack { .. }
                    | ServerMessage::Error { .. }
                    | ServerMessage::Pong
            ) {
                return m;
            }
        }
    }

    /// Reads to the end and asserts the server refused: an `error` with
    /// `code` among the messages, then a close with `close`. Returns the
    /// messages. `what` names the case in failures.
    pub async fn expect_refusal(
        &mut self,
        code: &str,
        close: u16,
        what: &str,
    ) -> Vec<ServerMessage> {
        let (seen, end) = self.until_end().await;
        assert!(
            seen.iter()
                .any(|m| matches!(m, ServerMessage::Error { code: c, .. } if c == code)),
            "{what}: no `{code}` error in {seen:?}"
        );
        assert_eq!(end, End::Closed(close), "{what}: close code");
        seen
    }

    /// Like [`Client::expect_refusal`] for a connection refused before
    /// `init`: the error is the only message.
    pub async fn expect_refused_at_door(&mut self, code: &str, close: u16, what: &str) {
        let seen = self.expect_refusal(code, close, what).await;
        assert_eq!(
            seen.len(),
            1,
            "{what}: only the error before the close: {seen:?}"
        );
    }

    /// Reads until the connection ends; returns the messages before the end
    /// and how it ended.
    pub async fn until_end(&mut self) -> (Vec<ServerMessage>, End) {
        let mut seen = Vec::new();
        loop {
            match tokio::time::timeout(STEP, self.read())
                .await
                .expect("end within timeout")
            {
                Ok(msg) => seen.push(msg),
                Err(End::Garbled(e)) => panic!("valid message: {e}"),
                Err(end) => return (seen, end),
            }
        }
    }
}
