//! What this machine remembers between runs: which local file belongs to
//! which room (so `collab join` can default `--file`), and recovery files
//! for edits a reconnect could not deliver. Kept under
//! `$XDG_STATE_HOME/collab` (default `~/.local/state/collab`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The state directory, if a home can be found.
pub fn state_dir() -> Option<PathBuf> {
    let from_env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    from_env("XDG_STATE_HOME")
        .or_else(|| from_env("HOME").map(|h| h.join(".local").join("state")))
        .map(|d| d.join("collab"))
}

/// The room → file map in `dir/rooms.json`.
#[derive(Debug, Clone)]
pub struct RoomFiles {
    path: PathBuf,
}

impl RoomFiles {
    /// The map stored in `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            path: dir.join("rooms.json"),
        }
    }

    /// The map in the default state directory.
    pub fn default_location() -> Option<Self> {
        state_dir().map(|d| Self::in_dir(&d))
    }

    fn load(&self) -> BTreeMap<String, PathBuf> {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default()
    }

    /// The file remembered for `room`.
    pub fn get(&self, room: &str) -> Option<PathBuf> {
        self.load().remove(room)
    }

    /// Remembers `file` (made absolute) for `room`.
    pub fn set(&self, room: &str, file: &Path) -> anyhow::Result<()> {
        let file = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
        let mut map = self.load();
        map.insert(room.to_owned(), file);
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let json = serde_json::to_string_pretty(&map)?;
        std::fs::write(&self.path, json)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// Writes `text` to a new recovery file for `room`; returns its path.
pub fn save_recovery(room: &str, text: &str) -> anyhow::Result<PathBuf> {
    let dir = state_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("recovered");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let path = dir.join(format!("{room}-{stamp}.txt"));
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_files_per_room() {
        let dir = std::env::temp_dir().join(format!("collab-state-test-{}", std::process::id()));
        let files = RoomFiles::in_dir(&dir);
        assert_eq!(files.get("r1"), None);
        files.set("r1", Path::new("/tmp/a.rs")).unwrap();
        files.set("r2", Path::new("/tmp/b.rs")).unwrap();
        assert_eq!(files.get("r1"), Some(PathBuf::from("/tmp/a.rs")));
        assert_eq!(files.get("r2"), Some(PathBuf::from("/tmp/b.rs")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
