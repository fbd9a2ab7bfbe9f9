//! The one private `redis-server`: started on a free port (never 6379) in a
//! directory of its own, keeping nothing on disk unless asked to (append-only
//! mode, for tests that restart it and expect their data back). The Redis
//! tests stop, restart and crash it; the bench only starts it. Synchronous:
//! starting a process and waiting for its PING is no work for a runtime.
//! Stopped (SIGKILL) and its directory removed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::ports::free_port;

/// How long `redis-server` may take to answer after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A private `redis-server` on a free port, stopped on drop. Never the
/// machine's shared Redis.
pub struct TestRedis {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
    dir: PathBuf,
    appendonly: bool,
    /// Speaks only TLS, with this certificate and the CA that signed it.
    tls: Option<(crate::tls::Issued, PathBuf)>,
}

impl TestRedis {
    /// Starts one that keeps nothing on disk; panics if it cannot.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Starts one; with `appendonly` it survives a restart. Panics if it
    /// cannot.
    pub fn start_with(appendonly: bool) -> Self {
        Self::try_start_with(appendonly).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Starts one that keeps nothing on disk, or says why it could not.
    pub fn try_start() -> Result<Self> {
        Self::try_start_with(false)
    }

    /// Starts one that speaks only TLS (`rediss://`), with a certificate
    /// `ca` signs for `localhost`; panics if it cannot.
    pub fn start_tls(ca: &mut crate::TestCa) -> Self {
        let issued = ca.issue();
        let mut r = Self::unstarted(false).unwrap_or_else(|e| panic!("{e:#}"));
        r.tls = Some((issued, ca.cert.clone()));
        r.spawn().unwrap_or_else(|e| panic!("{e:#}"));
        r
    }

    fn try_start_with(appendonly: bool) -> Result<Self> {
        let mut r = Self::unstarted(appendonly)?;
        r.spawn()?;
        Ok(r)
    }

    fn unstarted(appendonly: bool) -> Result<Self> {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("collab-test-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Self {
            child: None,
            port,
            dir,
            appendonly,
            tls: None,
        })
    }

    fn spawn(&mut self) -> Result<()> {
        let port = self.port.to_string();
        let aof = if self.appendonly { "yes" } else { "no" };
        let mut cmd = Command::new("redis-server");
        match &self.tls {
            None => cmd.args(["--port", &port]),
            Some((issued, ca)) => cmd
                .args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port,
                    "--tls-auth-clients",
                    "no",
                ])
                .arg("--tls-cert-file")
                .arg(&issued.cert)
                .arg("--tls-key-file")
                .arg(&issued.key)
                .arg("--tls-ca-cert-file")
                .arg(ca),
        };
        let child = cmd
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", aof])
            .args(["--appendfsync", "always", "--dir"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start redis-server (is it installed? .ci/run installs it)")?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                bail!("redis-server did not start on port {}", self.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.tls.is_some() {
            // Nothing on disk to load; the server under test checks TLS.
            return Ok(());
        }
        // Wait until it answers (it may still be loading its append-only file).
        while redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_err()
        {
            if Instant::now() > deadline {
                bail!("redis-server did not answer on port {}", self.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// The CPU time the running `redis-server` used so far, in seconds.
    pub fn cpu_seconds(&self) -> Result<f64> {
        let child = self.child.as_ref().context("redis-server is stopped")?;
        crate::procfs::cpu_seconds(child.id())
    }

    /// `redis://127.0.0.1:port/`, or `rediss://localhost:port/` over TLS.
    pub fn url(&self) -> String {
        match self.tls {
            None => format!("redis://127.0.0.1:{}/", self.port),
            Some(_) => format!("rediss://localhost:{}/", self.port),
        }
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
        self.spawn().unwrap_or_else(|e| panic!("{e:#}"));
    }

    /// Kills it (SIGKILL: nothing is written on the way out) and starts it
    /// again on the same port and directory: it comes back with whatever
    /// its files hold, e.g. the RDB file of the last `SAVE`.
    pub fn crash_and_restart(&mut self) {
        self.kill();
        self.spawn().unwrap_or_else(|e| panic!("{e:#}"));
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
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
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
