//! The one `TestServer`: a real collab-server on 127.0.0.1 and a port the
//! system picked, run one of two ways.
//!
//! - As a child process of a binary ([`TestServer::process`],
//!   [`TestServer::command`]): the server tests (flags, environment, logs,
//!   signals, a lowered open-file limit, a killed instance) and the bench
//!   (resident memory of the server alone). The caller names the binary:
//!   `env!("CARGO_BIN_EXE_collab-server")` in the server's tests, the one
//!   beside `collab-bench` in the bench.
//! - In-process ([`TestServer::in_process`]): `collab_server::run` on a
//!   runtime of its own, for the editor tests, which need no binary and
//!   shut it down gracefully ([`TestServer::shut_down`]) without signals.
//!
//! Both expose `addr`, `http()` and typed REST helpers (async; from
//! synchronous tests through [`TestServer::blocking`]). Dropped: stopped.

use std::ffi::{OsStr, OsString};
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use collab_protocol::rest::{CreatedRoom, RoomState};
use collab_server::{Config, RunError};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::redis::TestRedis;
use crate::rest::Rest;

/// A collab server on 127.0.0.1; stopped on drop.
pub struct TestServer {
    /// `127.0.0.1:port`, where it listens.
    pub addr: String,
    kind: Kind,
    /// The in-process server's runtime; for a process, made on first use by
    /// [`TestServer::runtime`].
    runtime: OnceLock<Runtime>,
}

enum Kind {
    Process(Child),
    InProcess {
        stop: Option<oneshot::Sender<()>>,
        task: Option<JoinHandle<Result<(), RunError>>>,
    },
}

/// How to start a server process: [`TestServer::command`], then
/// [`ServerCommand::start`] (or [`ServerCommand::spawn`] for an error
/// instead of a panic).
#[must_use]
pub struct ServerCommand {
    bin: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    log: Option<PathBuf>,
    file_limit: Option<u32>,
    rust_log: Option<String>,
}

impl ServerCommand {
    /// One more flag.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// More flags.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// One environment variable. The server starts without the
    /// `REDIS_URL`, `COLLAB_JWT_SECRET` and `CORS_ORIGINS` of the caller's
    /// environment; these set them.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// More environment variables.
    pub fn envs(self, vars: &[(&str, &str)]) -> Self {
        vars.iter().fold(self, |cmd, (k, v)| cmd.env(k, v))
    }

    /// Rooms in the Redis at `url`.
    pub fn redis(self, url: &str) -> Self {
        self.env("REDIS_URL", url)
    }

    /// Debug logs written to `path` (otherwise: warnings, to the caller's
    /// stderr).
    pub fn log_to(mut self, path: &Path) -> Self {
        self.log = Some(path.to_owned());
        self
    }

    /// The `RUST_LOG` filter (default: `debug` with [`Self::log_to`],
    /// `warn` without).
    pub fn rust_log(mut self, filter: impl Into<String>) -> Self {
        self.rust_log = Some(filter.into());
        self
    }

    /// The server's open-file limit lowered to `files`, for the server
    /// process only (`prlimit` execs it).
    pub fn file_limit(mut self, files: u32) -> Self {
        self.file_limit = Some(files);
        self
    }

    /// Starts it and waits for the address it prints; panics if it cannot.
    pub fn start(self) -> TestServer {
        self.spawn().unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Starts it and waits for the address it prints.
    pub fn spawn(self) -> Result<TestServer> {
        let mut cmd = match self.file_limit {
            Some(files) => {
                let mut cmd = Command::new("prlimit");
                cmd.arg(format!("--nofile={files}:{files}")).arg(&self.bin);
                cmd
            }
            None => Command::new(&self.bin),
        };
        let rust_log = self.rust_log.as_deref().unwrap_or(match self.log {
            Some(_) => "debug",
            None => "warn",
        });
        cmd.args(["--host", "127.0.0.1", "--port", "0"])
            .args(&self.args)
            .env_remove("REDIS_URL")
            .env_remove("COLLAB_JWT_SECRET")
            .env_remove("CORS_ORIGINS")
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::piped());
        match &self.log {
            Some(path) => cmd.stderr(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            ),
            None => cmd.stderr(Stdio::inherit()),
        };
        cmd.envs(self.env);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", self.bin.display()))?;
        let stdout = child.stdout.take().context("stdout piped")?;
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{} printed {line:?} ({read:?}) instead of its address",
                self.bin.display()
            );
        };
        Ok(TestServer {
            addr: addr.to_owned(),
            kind: Kind::Process(child),
            runtime: OnceLock::new(),
        })
    }
}

impl TestServer {
    /// A process of `bin`, to be configured and started.
    pub fn command(bin: impl AsRef<Path>) -> ServerCommand {
        ServerCommand {
            bin: bin.as_ref().to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            log: None,
            file_limit: None,
            rust_log: None,
        }
    }

    /// Starts `bin` with extra flags and environment; panics if it cannot.
    pub fn process(bin: impl AsRef<Path>, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::command(bin).args(args).envs(env).start()
    }

    /// Starts `bin` on `redis`, with extra flags; panics if it cannot.
    pub fn on_redis(bin: impl AsRef<Path>, redis: &TestRedis, args: &[&str]) -> Self {
        Self::command(bin).redis(&redis.url()).args(args).start()
    }

    /// Runs `collab_server::run` with `config` on a runtime of its own (two
    /// worker threads), in this process.
    pub fn in_process(config: Config) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        std_listener.set_nonblocking(true).expect("non-blocking");
        let addr = std_listener.local_addr().expect("addr").to_string();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = {
            let _in_rt = rt.enter();
            let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
            rt.spawn(collab_server::run(listener, config, async move {
                let _ = stopped.await;
            }))
        };
        let runtime = OnceLock::new();
        let _ = runtime.set(rt);
        Self {
            addr,
            kind: Kind::InProcess {
                stop: Some(stop),
                task: Some(task),
            },
            runtime,
        }
    }

    /// `http://addr`.
    pub fn http(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its REST API, through a client of its own.
    pub fn rest(&self) -> Rest {
        Rest::new(&self.addr)
    }

    /// Creates a room holding `code`; returns its id.
    pub async fn create_room(&self, code: &str) -> String {
        self.create_room_answer(code).await.room_id
    }

    /// Creates a room holding `code`; returns `POST /rooms`' whole answer
    /// (both ids, the URLs).
    pub async fn create_room_answer(&self, code: &str) -> CreatedRoom {
        self.rest()
            .create_room(code)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// `GET /rooms/{id}`, or `None` on 404.
    pub async fn room(&self, id: &str) -> Option<RoomState> {
        self.rest()
            .room(id)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// The current document of a room that exists.
    pub async fn code(&self, id: &str) -> String {
        self.room(id)
            .await
            .unwrap_or_else(|| panic!("room {id} exists"))
            .code
    }

    /// `GET /metrics`' text.
    pub async fn metrics(&self) -> String {
        self.rest()
            .metrics()
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// `GET /metrics`' value of the series `name`, if the server has it.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        crate::rest::parse_metric(&self.metrics().await, name)
    }

    /// The runtime of an in-process server (for a process, a small one made
    /// on first use): where [`Self::block_on`] runs, and where a
    /// [`crate::Proxy`] in front of it can run.
    pub fn runtime(&self) -> &Runtime {
        self.runtime.get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
        })
    }

    /// Runs `future` to completion on [`Self::runtime`], from synchronous
    /// code (not from inside a runtime).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime().block_on(future)
    }

    /// The REST helpers for synchronous code.
    pub fn blocking(&self) -> Blocking<'_> {
        Blocking(self)
    }

    /// Shuts the server down as SIGTERM does (clients get close 1012) and
    /// waits until it has. From synchronous code.
    pub fn shut_down(&mut self) {
        let Kind::InProcess { stop, task } = &mut self.kind else {
            self.terminate();
            return;
        };
        if let Some(stop) = stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = task.take() {
            let _ = self.runtime().block_on(task);
        }
    }

    fn child(&mut self) -> &mut Child {
        match &mut self.kind {
            Kind::Process(child) => child,
            Kind::InProcess { .. } => panic!("an in-process server is no process"),
        }
    }

    /// The process id; `None` in process.
    pub fn pid(&self) -> Option<u32> {
        match &self.kind {
            Kind::Process(child) => Some(child.id()),
            Kind::InProcess { .. } => None,
        }
    }

    /// Sends SIGKILL and waits. Processes only.
    pub fn kill(&mut self) {
        let child = self.child();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Sends SIGTERM; returns the exit status once it exits. Processes only.
    pub fn terminate(&mut self) -> ExitStatus {
        let child = self.child();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().expect("server exits")
    }

    /// True while it runs.
    pub fn alive(&mut self) -> bool {
        match &mut self.kind {
            Kind::Process(child) => matches!(child.try_wait(), Ok(None)),
            Kind::InProcess { task, .. } => task.as_ref().is_some_and(|t| !t.is_finished()),
        }
    }

    /// The process's resident memory, in KiB (VmRSS). Processes only: an
    /// in-process server shares its memory with the caller.
    pub fn rss_kib(&self) -> Result<u64> {
        crate::procfs::rss_kib(self.own_pid()?)
    }

    /// The CPU time the process used so far, in seconds. Processes only.
    pub fn cpu_seconds(&self) -> Result<f64> {
        crate::procfs::cpu_seconds(self.own_pid()?)
    }

    fn own_pid(&self) -> Result<u32> {
        self.pid()
            .context("an in-process server shares the caller's process")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        match &mut self.kind {
            Kind::Process(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Kind::InProcess { stop, .. } => {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
            }
        }
        if let Some(rt) = self.runtime.take() {
            // Inside another runtime a runtime may not block to shut down.
            if tokio::runtime::Handle::try_current().is_ok() {
                rt.shutdown_background();
            }
        }
    }
}

/// [`TestServer`]'s REST helpers for synchronous code: each runs on the
/// server's runtime.
pub struct Blocking<'a>(&'a TestServer);

impl Blocking<'_> {
    /// [`TestServer::create_room`].
    pub fn create_room(&self, code: &str) -> String {
        self.0.block_on(self.0.create_room(code))
    }

    /// [`TestServer::create_room_answer`].
    pub fn create_room_answer(&self, code: &str) -> CreatedRoom {
        self.0.block_on(self.0.create_room_answer(code))
    }

    /// [`TestServer::room`].
    pub fn room(&self, id: &str) -> Option<RoomState> {
        self.0.block_on(self.0.room(id))
    }

    /// [`TestServer::code`].
    pub fn code(&self, id: &str) -> String {
        self.0.block_on(self.0.code(id))
    }

    /// [`TestServer::metric`].
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.0.block_on(self.0.metric(name))
    }
}
