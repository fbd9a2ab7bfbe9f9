//! What this machine remembers between runs: which local file belongs to
//! which room (so `collab join` can default `--file`), the owner tokens of
//! the rooms it created, and recovery files for edits a reconnect could not
//! deliver. Kept under
//! `$XDG_STATE_HOME/collab` (default `~/.local/state/collab`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde::Serialize;

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

/// A JSON object in the state directory keyed by room id: what the maps
/// below share.
#[derive(Debug, Clone)]
struct RoomMap {
    path: PathBuf,
}

impl RoomMap {
    fn load<V: DeserializeOwned>(&self) -> BTreeMap<String, V> {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default()
    }

    fn get<V: DeserializeOwned>(&self, room: &str) -> Option<V> {
        self.load().remove(room)
    }

    /// Sets `room`'s entry; with `private`, the file is readable by this
    /// user only (also one made before by an older collab).
    fn set<V: Serialize + DeserializeOwned>(
        &self,
        room: &str,
        value: V,
        private: bool,
    ) -> anyhow::Result<()> {
        let mut map: BTreeMap<String, V> = self.load();
        map.insert(room.to_owned(), value);
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let json = serde_json::to_string_pretty(&map)?;
        let write = || -> std::io::Result<()> {
            if !private {
                return std::fs::write(&self.path, &json);
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut f = options.open(&self.path)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            }
            std::io::Write::write_all(&mut f, json.as_bytes())
        };
        write().with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// The room → file map in `dir/rooms.json`.
#[derive(Debug, Clone)]
pub struct RoomFiles(RoomMap);

impl RoomFiles {
    /// The map stored in `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self(RoomMap {
            path: dir.join("rooms.json"),
        })
    }

    /// The map in the default state directory.
    pub fn default_location() -> Option<Self> {
        state_dir().map(|d| Self::in_dir(&d))
    }

    /// The file remembered for `room`.
    pub fn get(&self, room: &str) -> Option<PathBuf> {
        self.0.get(room)
    }

    /// Remembers `file` (made absolute) for `room`.
    pub fn set(&self, room: &str, file: &Path) -> anyhow::Result<()> {
        let file = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
        self.0.set(room, file, false)
    }
}

/// The owner tokens of the rooms this machine created, in
/// `dir/owners.json` (readable by this user only): `collab create` and
/// `collab share` keep the token `POST /rooms` answered once, and the
/// editor joins with it, which gives it the owner's controls.
#[derive(Debug, Clone)]
pub struct OwnerTokens(RoomMap);

impl OwnerTokens {
    /// The tokens stored in `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self(RoomMap {
            path: dir.join("owners.json"),
        })
    }

    /// The tokens in the default state directory.
    pub fn default_location() -> Option<Self> {
        state_dir().map(|d| Self::in_dir(&d))
    }

    /// Where they are kept.
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// The owner token kept for `room`.
    pub fn get(&self, room: &str) -> Option<String> {
        self.0.get(room)
    }

    /// Keeps `token` for `room`, in a file only this user may read.
    pub fn set(&self, room: &str, token: &str) -> anyhow::Result<()> {
        self.0.set(room, token.to_owned(), true)
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
    fn keeps_owner_tokens_where_only_this_user_reads_them() {
        let dir = std::env::temp_dir().join(format!("collab-owner-test-{}", std::process::id()));
        let tokens = OwnerTokens::in_dir(&dir);
        assert_eq!(tokens.get("r1"), None);
        tokens.set("r1", "t1").unwrap();
        tokens.set("r2", "t2").unwrap();
        assert_eq!(tokens.get("r1").as_deref(), Some("t1"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(tokens.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

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
