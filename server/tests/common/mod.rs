//! Test harness: a real `collab-server` process on a free port, and real
//! WebSocket clients speaking the protocol to it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use collab_protocol::{ClientMessage, Operation, Replica, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for any single expected message.
pub const STEP: Duration = Duration::from_secs(10);

/// A `collab-server` child process; killed on drop.
pub struct TestServer {
    child: Child,
    /// `host:port` it listens on.
    pub addr: String,
}

impl TestServer {
    /// Starts the server binary with extra flags/env on a free port.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(args, env, None)
    }

    /// Like `start`, with debug logs written to `log`.
    pub fn start_logged(args: &[&str], env: &[(&str, &str)], log: &std::path::Path) -> Self {
        Self::spawn(args, env, Some(log))
    }

    /// Like `start`, with the server's open-file limit lowered to `files`
    /// (for the server process only: `prlimit` execs the server).
    pub fn start_with_file_limit(files: u32, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new("prlimit");
        cmd.arg(format!("--nofile={files}:{files}"))
            .arg(env!("CARGO_BIN_EXE_collab-server"));
        Self::spawn_command(cmd, args, env, None)
    }

    fn spawn(args: &[&str], env: &[(&str, &str)], log: Option<&std::path::Path>) -> Self {
        let cmd = Command::new(env!("CARGO_BIN_EXE_collab-server"));
        Self::spawn_command(cmd, args, env, log)
    }

    fn spawn_command(
        mut cmd: Command,
        args: &[&str],
        env: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> Self {
        cmd.args(["--host", "127.0.0.1", "--port", "0"])
            .args(args)
            .env_remove("REDIS_URL")
            .env_remove("COLLAB_JWT_SECRET")
            .env_remove("CORS_ORIGINS")
            .env("RUST_LOG", if log.is_some() { "debug" } else { "warn" })
            .stdout(Stdio::piped());
        match log {
            Some(path) => cmd.stderr(std::fs::File::create(path).expect("log file")),
            None => cmd.stderr(Stdio::inherit()),
        };
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("collab-server starts");
        let stdout = child.stdout.take().expect("stdout piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("collab-server prints its address");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        Self { child, addr }
    }

    /// The server with default settings.
    pub fn default_settings() -> Self {
        Self::start(&[], &[])
    }

    /// `http://addr`.
    pub fn http(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates a room; returns its id.
    pub async fn create_room(&self, code: &str) -> String {
        let body = self.create_room_json(code).await;
        body["room_id"].as_str().unwrap().to_owned()
    }

    /// `POST /rooms` with `code`; its whole answer (ids and URLs).
    pub async fn create_room_json(&self, code: &str) -> Value {
        let resp = reqwest::Client::new()
            .post(format!("{}/rooms", self.http()))
            .json(&json!({ "code": code, "language": "rust" }))
            .send()
            .await
            .expect("POST /rooms");
        assert_eq!(resp.status(), 201);
        resp.json().await.unwrap()
    }

    /// `GET /rooms/{id}` as JSON, or `None` on 404.
    pub async fn room(&self, id: &str) -> Option<Value> {
        let resp = reqwest::get(format!("{}/rooms/{id}", self.http()))
            .await
            .unwrap();
        if resp.status() == 404 {
            return None;
        }
        assert_eq!(resp.status(), 200);
        Some(resp.json().await.unwrap())
    }

    /// The current code of a room.
    pub async fn code(&self, id: &str) -> String {
        self.room(id).await.expect("room exists")["code"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Sends SIGKILL and waits.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server runs");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM; returns the exit status once it exits.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("server exits")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One raw protocol connection.
pub struct Client {
    ws: Ws,
}

/// What a connection ended with.
#[derive(Debug, PartialEq)]
pub enum End {
    /// A close frame with this code.
    Closed(u16),
    /// The connection dropped without a close frame.
    Dropped,
}

impl Client {
    /// Connects with extra request headers; the HTTP status on refusal.
    pub async fn connect_with(
        addr: &str,
        room: &str,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Result<Self, u16> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = format!("ws://{addr}/ws/{room}?{query}")
            .into_client_request()
            .unwrap();
        for (k, v) in headers {
            req.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((ws, _)) => Ok(Self { ws }),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(e) => panic!("connect failed: {e}"),
        }
    }

    /// Sends a raw frame.
    pub async fn send_frame(&mut self, frame: Message) -> bool {
        self.ws.send(frame).await.is_ok()
    }

    /// Connects to `/ws/{room}?{query}`.
    pub async fn connect(addr: &str, room: &str, query: &str) -> Self {
        let url = format!("ws://{addr}/ws/{room}?{query}");
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        Self { ws }
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

    /// Sends a protocol message.
    pub async fn send(&mut self, msg: &ClientMessage) {
        self.send_text(&msg.to_json()).await;
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// Sends a message; false when the connection is gone.
    pub async fn try_send(&mut self, msg: &ClientMessage) -> bool {
        self.ws.send(Message::text(msg.to_json())).await.is_ok()
    }

    /// The next protocol message, or how the connection ended, or `None`
    /// when nothing came within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Result<ServerMessage, End>> {
        loop {
            let frame = tokio::time::timeout(wait, self.ws.next()).await.ok()?;
            return Some(match frame {
                Some(Ok(Message::Text(t))) => Ok(serde_json::from_str(&t).expect("valid message")),
                Some(Ok(Message::Close(f))) => {
                    self.answer_close().await;
                    Err(End::Closed(f.map_or(1005, |f| f.code.into())))
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => Err(End::Dropped),
            });
        }
    }

    /// Sends the answer to the server's close frame (tungstenite queued it
    /// when the close arrived), as a well-behaved client does: the server
    /// waits a little for it before it lets go of the socket.
    async fn answer_close(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.ws.flush()).await;
    }

    /// Connects and reads `init`, or says why that failed.
    pub async fn try_join(
        addr: &str,
        room: &str,
        query: &str,
    ) -> Result<(Self, ServerMessage), String> {
        let url = format!("ws://{addr}/ws/{room}?{query}");
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| e.to_string())?;
        let mut c = Self { ws };
        match c.next(STEP).await {
            Some(Ok(init @ ServerMessage::Init { .. })) => Ok((c, init)),
            other => Err(format!("no init: {other:?}")),
        }
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
            match tokio::time::timeout(STEP, self.ws.next())
                .await
                .expect("end within timeout")
            {
                Some(Ok(Message::Text(t))) => {
                    seen.push(serde_json::from_str(&t).expect("valid message"))
                }
                Some(Ok(Message::Close(f))) => {
                    self.answer_close().await;
                    return (seen, End::Closed(f.map_or(1005, |f| f.code.into())));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return (seen, End::Dropped),
            }
        }
    }
}

/// A client that keeps a replica and obeys the protocol, for convergence tests.
pub struct Bot {
    /// The connection.
    pub client: Client,
    /// The local replica.
    pub replica: Replica,
    /// Revision of every `code_update`/`ack` received, in order, after init.
    pub revisions: Vec<u64>,
    /// The revision of `init`.
    pub init_revision: u64,
}

impl Bot {
    /// Joins `room` as a bot.
    pub async fn join(addr: &str, room: &str, query: &str) -> Self {
        let (client, init) = Client::join(addr, room, query).await;
        let ServerMessage::Init { revision, code, .. } = init else {
            unreachable!()
        };
        Self {
            client,
            replica: Replica::new(revision, &code),
            revisions: Vec::new(),
            init_revision: revision,
        }
    }

    /// Makes a local edit and sends it when due.
    pub async fn edit(&mut self, op: Operation) {
        if let Some(msg) = self.replica.edit(op).expect("local edit applies") {
            self.client.send(&msg).await;
        }
    }

    /// Handles one incoming message.
    pub async fn step(&mut self) {
        let msg = self.client.recv().await;
        self.handle(msg).await;
    }

    /// Handles a message already received.
    pub async fn handle(&mut self, msg: ServerMessage) {
        match &msg {
            ServerMessage::CodeUpdate(c) => self.revisions.push(c.revision),
            ServerMessage::Ack { revision, .. } => self.revisions.push(*revision),
            ServerMessage::Error { code, message, .. } => panic!("server error {code}: {message}"),
            _ => {}
        }
        if let Some(next) = self
            .replica
            .handle(&msg)
            .expect("server messages fit the replica")
        {
            self.client.send(&next).await;
        }
    }

    /// Reads until synchronized at `revision` or later.
    pub async fn settle(&mut self, revision: u64) {
        while !(self.replica.sync.is_synchronized() && self.replica.sync.revision() >= revision) {
            self.step().await;
        }
    }

    /// Asserts the revision invariant: init R0, then R0+1, R0+2, ... with no gap.
    pub fn assert_revisions_contiguous(&self) {
        for (i, r) in self.revisions.iter().enumerate() {
            assert_eq!(
                *r,
                self.init_revision + 1 + i as u64,
                "revision stream {:?}",
                self.revisions
            );
        }
    }
}

/// A random edit on a document of `len` chars, mixing multi-byte text.
pub fn random_edit(rng: &mut impl rand::Rng, len: usize) -> Operation {
    const PIECES: [&str; 8] = [
        "a",
        "xyz",
        "😀",
        "漢字",
        "e\u{301}",
        "\n",
        "\t",
        "fn main() {}",
    ];
    let start = rng.random_range(0..=len);
    let end = if rng.random_bool(0.3) {
        rng.random_range(start..=len.min(start + 5))
    } else {
        start
    };
    let text = if start == end || rng.random_bool(0.5) {
        PIECES[rng.random_range(0..PIECES.len())]
    } else {
        ""
    };
    Operation::replace(len, start, end, text).expect("range inside the document")
}

/// A private `redis-server` on a free port, stopped on drop. Never the
/// machine's shared Redis.
pub struct TestRedis {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
    dir: std::path::PathBuf,
    appendonly: bool,
}

impl TestRedis {
    /// Starts one that keeps nothing on disk.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Starts one; with `appendonly` it survives a restart.
    pub fn start_with(appendonly: bool) -> Self {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("collab-test-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = Self {
            child: None,
            port,
            dir,
            appendonly,
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let port = self.port.to_string();
        let aof = if self.appendonly { "yes" } else { "no" };
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                aof,
            ])
            .args(["--appendfsync", "always", "--dir"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server is installed (.ci/run installs it)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Wait until it answers (it may still be loading its append-only file).
        while redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not answer"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:port/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Stops it (SIGTERM: an append-only file is flushed).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and directory.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Kills it (SIGKILL: nothing is written on the way out) and starts it
    /// again on the same port and directory: it comes back with whatever
    /// its files hold, e.g. the RDB file of the last `SAVE`.
    pub fn crash_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.spawn();
    }

    /// A synchronous connection for inspecting keys.
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// Every key matching `pattern`.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        redis::cmd("KEYS")
            .arg(pattern)
            .query(&mut self.conn())
            .unwrap()
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestServer {
    /// A server on `redis`, with extra flags.
    pub fn with_redis(redis: &TestRedis, args: &[&str]) -> Self {
        Self::start(args, &[("REDIS_URL", &redis.url())])
    }
}

impl Bot {
    /// Takes over a new connection whose `init` answered a reconnect with
    /// `since`: catches up with `init.missed` (checking the result against
    /// `init.code`) and resends what is unacknowledged.
    pub async fn rejoined(&mut self, client: Client, init: ServerMessage) {
        let ServerMessage::Init {
            revision,
            code,
            missed,
            ..
        } = init
        else {
            panic!("expected init, got {init:?}")
        };
        let missed = missed.expect("the server keeps the history since our revision");
        let resync = self
            .replica
            .sync
            .resync(&missed)
            .expect("missed operations fit");
        for op in &resync.apply {
            op.apply(&mut self.replica.doc)
                .expect("rebased operation applies");
        }
        assert_eq!(self.replica.sync.revision(), revision);
        if self.replica.sync.is_synchronized() {
            assert_eq!(
                self.replica.text(),
                code,
                "caught-up replica matches init.code"
            );
        }
        self.client = client;
        self.init_revision = revision;
        self.revisions.clear();
        for msg in &resync.send {
            // A dead connection shows when reading; the edit is resent then.
            self.client.try_send(msg).await;
        }
    }
}

impl Client {
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
}

/// Issue 12, item 1: client `x`'s first connection stalls (it stops reading
/// while a typist's large inserts fill the server's send buffer towards
/// it), `x` reconnects with the same `client_id` and `since` on
/// `new_addr` (replacing the stalled connection, which lives on at the
/// TCP level), and then an edit `x` had sent on the old connection
/// arrives there. Nothing may come of the late copy: `x`'s resend of that
/// seq gets a fresh ack, `x` never receives its own operation as someone
/// else's, and everyone ends with the same text holding `x`'s edit once.
pub async fn late_edit_on_a_replaced_connection(old_addr: &str, new_addr: &str, http: &str) {
    let room = reqwest::Client::new()
        .post(format!("{http}/rooms"))
        .json(&json!({ "code": "", "language": "rust" }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["room_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (mut stalled, _) = Client::join_small_window(old_addr, &room, "client_id=x").await;
    let mut typist = Bot::join(old_addr, &room, "client_id=t").await;
    // About 6 MB towards the stalled connection: more than the server's
    // send buffer (4 MB at most) and its 4 KB receive window hold.
    let chunk = "y".repeat(60_000);
    for _ in 0..100 {
        let len = typist.replica.doc.len_chars();
        typist
            .edit(Operation::replace(len, len, len, &chunk).unwrap())
            .await;
        typist.settle(0).await;
    }
    // `x` typed "X1" on the old connection at revision 0 (seq 1); the
    // message left late. Meanwhile `x` reconnects, replacing it.
    let mut x = Replica::new(0, "");
    let sent = x
        .edit(serde_json::from_str(r#"["X1"]"#).unwrap())
        .unwrap()
        .unwrap();
    let (mut fresh, init) = Client::join(new_addr, &room, "client_id=x&since=0").await;
    let ServerMessage::Init {
        revision,
        missed,
        user_id: my_id,
        ..
    } = init
    else {
        unreachable!()
    };
    let resync = x.sync.resync(&missed.expect("history since 0")).unwrap();
    for op in &resync.apply {
        op.apply(&mut x.doc).unwrap();
    }
    assert_eq!(x.sync.revision(), revision);
    // Now the late copy arrives on the replaced connection.
    stalled.try_send(&sent).await;
    // Give it time to be (wrongly) committed: the room's revision moves.
    let rev_of = |body: Value| body["revision"].as_u64().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        let body = reqwest::get(format!("{http}/rooms/{room}"))
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        if rev_of(body) > revision {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for msg in resync.send {
        fresh.send(&msg).await;
    }
    while !x.sync.is_synchronized() {
        let msg = fresh.recv().await;
        if let ServerMessage::CodeUpdate(c) = &msg {
            assert_ne!(
                c.user_id, my_id,
                "x received its own operation as someone else's: {c:?}"
            );
        }
        if let ServerMessage::Ack { revision: r, .. } = &msg {
            assert!(
                *r > x.sync.revision(),
                "the resend was acked at revision {r}, which x already has"
            );
        }
        x.handle(&msg).expect("server messages fit x's replica");
    }
    typist.settle(x.sync.revision()).await;
    let body = reqwest::get(format!("{http}/rooms/{room}"))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let text = body["code"].as_str().unwrap();
    assert_eq!(text.matches("X1").count(), 1, "x's edit once");
    assert_eq!(x.text(), text, "x's replica");
    assert_eq!(typist.replica.text(), text, "the typist's replica");
    drop(stalled);
}

/// Issue 12, item 4: one client alternately inserts and deletes a block of
/// `block` chars (each frame under the 1 MiB message cap, the document
/// staying one char long), `rounds` times, while the server's resident
/// memory is sampled. Returns the largest sample, in KiB.
pub async fn insert_delete_run(server: &TestServer, block: usize, rounds: usize) -> u64 {
    let room = server.create_room("x").await;
    let (mut c, _) = Client::join(&server.addr, &room, "client_id=big").await;
    let text = "y".repeat(block);
    let insert: Operation = serde_json::from_value(json!([1, text])).unwrap();
    let delete: Operation = serde_json::from_value(json!([1, -(block as i64)])).unwrap();
    let mut peak = server.rss_kib();
    let mut seq = 0;
    for round in 0..rounds {
        for op in [&insert, &delete] {
            seq += 1;
            c.send(&ClientMessage::CodeUpdate {
                revision: seq - 1,
                seq,
                operation: op.clone(),
            })
            .await;
            assert_eq!(
                c.recv_doc().await,
                ServerMessage::Ack { revision: seq, seq }
            );
        }
        if round % 10 == 0 {
            peak = peak.max(server.rss_kib());
        }
    }
    assert_eq!(server.code(&room).await, "x");
    peak.max(server.rss_kib())
}
