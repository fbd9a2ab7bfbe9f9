//! The processes a benchmark run owns: a private `redis-server` and
//! `collab-server` instances. Each is a guard that kills its process on drop,
//! so a failed or interrupted run leaves nothing behind. Server memory is
//! read from `/proc/<pid>/status`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A port nothing listens on right now, on 127.0.0.1.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A private `redis-server` that keeps nothing on disk.
pub struct RedisProc {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl RedisProc {
    /// Starts one on a free port and waits until it answers PING.
    pub async fn start() -> Result<Self> {
        let port = free_port()?;
        let dir =
            std::env::temp_dir().join(format!("collab-bench-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start redis-server (is it installed?)")?;
        let me = Self { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if me.ping().await.is_ok() {
                return Ok(me);
            }
            if Instant::now() > deadline {
                bail!("redis-server did not answer on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn ping(&self) -> Result<()> {
        let client = redis::Client::open(self.url())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    /// `redis://127.0.0.1:port/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One `collab-server` process.
pub struct ServerProc {
    child: Child,
    /// `127.0.0.1:port`.
    pub addr: String,
}

impl ServerProc {
    /// Starts `bin` on a free port, on `redis_url` or in memory, with extra
    /// flags; waits for the address it prints.
    pub fn start(bin: &Path, redis_url: Option<&str>, args: &[&str]) -> Result<Self> {
        let mut cmd = Command::new(bin);
        cmd.args(["--host", "127.0.0.1", "--port", "0"])
            // The load comes from one address and types as fast as it can:
            // lift the per-client abuse limits, which are not what is measured.
            .args(["--rate-per-sec", "1000000", "--rate-burst", "1000000"])
            .args([
                "--max-conns-per-ip",
                "1000000",
                "--max-pending-per-ip",
                "1000000",
                "--max-conns-per-room",
                "1000000",
            ])
            .args(args)
            .env_remove("REDIS_URL")
            .env_remove("COLLAB_JWT_SECRET")
            .env_remove("CORS_ORIGINS")
            // COLLAB_BENCH_SERVER_LOG (a RUST_LOG filter) shows the servers' logs.
            .env(
                "RUST_LOG",
                std::env::var("COLLAB_BENCH_SERVER_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(url) = redis_url {
            cmd.env("REDIS_URL", url);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let stdout = child.stdout.take().context("stdout piped")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("collab-server printed {line:?} instead of its address");
        };
        Ok(Self {
            addr: addr.to_owned(),
            child,
        })
    }

    /// Resident memory of the server process, in KiB (VmRSS).
    pub fn rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in /proc/<pid>/status")
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
