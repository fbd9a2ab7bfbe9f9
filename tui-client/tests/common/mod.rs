//! What only the editor's tests share: the real `collab` binary, scratch
//! directories for its state, and polling. The server (in-process), the
//! proxy that cuts connections and the rest are `collab-testkit`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

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
        // No config file of the user's: one may be written into `state`.
        .env("XDG_CONFIG_HOME", state)
        .env_remove("COLLAB_CONFIG")
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
