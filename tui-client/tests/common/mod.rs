//! Test harness: the real collab server running in-process on a free port,
//! the real `collab` binary, and a TCP proxy that can cut connections.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

/// A collab server on 127.0.0.1:<free port>, stopped on drop.
pub struct Server {
    /// Runs the server (and the tests' async helpers).
    pub rt: Runtime,
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), collab_server::RunError>>>,
}

impl Server {
    /// Starts a server with default settings.
    pub fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = rt.spawn(collab_server::run(
            listener,
            collab_server::Config::default(),
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            rt,
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Shuts the server down as SIGTERM does (clients get close 1012) and
    /// waits until it has.
    pub fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = self.rt.block_on(task);
        }
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates a room with `code`; returns its id.
    pub fn create_room(&self, code: &str) -> String {
        self.create_room_ids(code).0
    }

    /// Creates a room with `code`; returns its id and its read-only id.
    pub fn create_room_ids(&self, code: &str) -> (String, String) {
        let url = format!("{}/rooms", self.url());
        self.rt.block_on(async {
            let resp = reqwest::Client::new()
                .post(url)
                .json(&json!({ "code": code, "language": "rust" }))
                .send()
                .await
                .expect("POST /rooms");
            assert_eq!(resp.status(), 201);
            let body: Value = resp.json().await.expect("json");
            let id = |k: &str| body[k].as_str().expect("ids").to_owned();
            (id("room_id"), id("read_only_id"))
        })
    }

    /// `GET /metrics`' value of the series `name`, if the server has it.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let url = format!("{}/metrics", self.url());
        let text = self.rt.block_on(async {
            reqwest::get(url)
                .await
                .expect("GET /metrics")
                .text()
                .await
                .expect("text")
        });
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
    }

    /// `GET /rooms/{id}`.
    pub fn room(&self, room: &str) -> Value {
        let url = format!("{}/rooms/{room}", self.url());
        self.rt.block_on(async {
            let resp = reqwest::get(url).await.expect("GET room");
            assert_eq!(resp.status(), 200, "room {room} exists");
            resp.json().await.expect("json")
        })
    }

    /// The room's document.
    pub fn code(&self, room: &str) -> String {
        self.room(room)["code"].as_str().expect("code").to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A scratch directory unique to this test process and `name`.
pub fn scratch(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("collab-test-{}-{name}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The `collab` binary aimed at `server`, with its state kept in `state`.
pub fn collab(server_url: &str, state: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_collab"));
    cmd.arg("--server")
        .arg(server_url)
        .env("XDG_STATE_HOME", state)
        .env("COLLAB_NAME", "tester")
        .env_remove("COLLAB_SERVER")
        .env_remove("COLLAB_TOKEN");
    cmd
}

/// Polls `check` until it returns `Some` or `deadline` passes.
pub fn poll<T>(deadline: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A TCP proxy in front of the server that can cut every connection,
/// refuse new ones, or stop passing the server's bytes to the client.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    state: Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    conns: Mutex<Vec<AbortHandle>>,
    refusing: AtomicBool,
    deaf: AtomicBool,
}

impl Proxy {
    /// Starts a proxy to `target` on `rt`.
    pub fn start(rt: &Runtime, target: SocketAddr) -> Self {
        let listener = rt
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(ProxyState::default());
        let st = state.clone();
        rt.spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if st.refusing.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let Ok(outbound) = TcpStream::connect(target).await else {
                    continue;
                };
                let (mut in_r, mut in_w) = inbound.into_split();
                let (mut out_r, mut out_w) = outbound.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut in_r, &mut out_w).await;
                });
                let st2 = st.clone();
                let down = tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match out_r.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        // While deaf, the client hears nothing (acks get lost).
                        if st2.deaf.load(Ordering::SeqCst) {
                            continue;
                        }
                        if in_w.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                let mut conns = st.conns.lock().expect("lock");
                conns.push(up.abort_handle());
                conns.push(down.abort_handle());
            }
        });
        Self { addr, state }
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Drops every open connection (both directions).
    pub fn cut(&self) {
        for c in self.state.conns.lock().expect("lock").drain(..) {
            c.abort();
        }
    }

    /// While true, new connections are closed at once.
    pub fn refuse(&self, on: bool) {
        self.state.refusing.store(on, Ordering::SeqCst);
    }

    /// While true, the server's bytes are swallowed.
    pub fn deafen(&self, on: bool) {
        self.state.deaf.store(on, Ordering::SeqCst);
    }
}
