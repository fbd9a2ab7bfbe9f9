//! Which files of a directory a project room shares, as ripgrep picks the
//! files it searches (the `ignore` crate): `.gitignore`, `.ignore` and git's
//! excludes are honoured (also outside a git repository), `.git` is never
//! entered, symbolic links are not followed. Hidden files are shared (a
//! project's `.gitignore` or CI files are part of it). A file is shared
//! only when it is UTF-8 text without NUL bytes, at most the size limit,
//! and its path is one a room accepts; everything else is listed as
//! skipped, with why, so the user knows what the guest will not see.

use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use ignore::WalkBuilder;

/// The server's default per-file limit (`--max-doc-bytes`).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// Marks the mirror's temporary files (never shared, never watched).
pub const TEMP_MARK: &str = ".collab-tmp.";

/// Marks the files where the mirror keeps a host's version the room did
/// not take (`PATH.collab-lost`; never shared, so kept only on the host).
pub const LOST_SUFFIX: &str = ".collab-lost";

/// A shared file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Its path in the room (relative, `/`-separated).
    pub path: String,
    /// Its text.
    pub text: String,
}

/// A file left out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Its path relative to the directory.
    pub path: String,
    /// Why.
    pub why: String,
}

/// What a directory shares.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    /// Shared files, sorted by path.
    pub files: Vec<Found>,
    /// Files left out, sorted by path.
    pub skipped: Vec<Skipped>,
}

/// Why a file's content cannot be shared.
#[derive(Debug, thiserror::Error)]
pub enum Unshareable {
    /// Holds a NUL byte or is not UTF-8.
    #[error("binary (not UTF-8 text)")]
    Binary,
    /// Over the limit.
    #[error("{size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Cannot be read.
    #[error("cannot read it: {0}")]
    Io(#[from] std::io::Error),
}

/// The walker every listing uses, so a scan and a later check of one new
/// file agree on what is ignored.
fn walker(dir: &Path) -> WalkBuilder {
    let mut walk = WalkBuilder::new(dir);
    walk.hidden(false)
        .require_git(false)
        .follow_links(false)
        .filter_entry(|e| e.file_name() != ".git");
    walk
}

/// The room path of `path` (a path under `root`), when it is one a room
/// accepts.
pub fn room_path(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?),
            _ => return None,
        }
    }
    let joined = parts.join("/");
    collab_protocol::paths::check(&joined).ok()?;
    Some(joined)
}

/// The file system path of room path `path` under `root`.
pub fn disk_path(root: &Path, path: &str) -> PathBuf {
    path.split('/')
        .fold(root.to_path_buf(), |p, part| p.join(part))
}

/// True for paths the mirror never shares whatever the ignore files say:
/// inside `.git`, its own temporary files and kept-aside copies, and other
/// editors' temporary files (see [`is_editor_temp`]).
pub fn never_shared(path: &str) -> bool {
    path.split('/')
        .any(|part| part == ".git" || part.contains(TEMP_MARK))
        || path
            .rsplit('/')
            .next()
            .is_some_and(|name| name.contains(LOST_SUFFIX) || is_editor_temp(name))
}

/// True for a file name other editors use for their temporary files:
/// vim's swap files (`.x.swp`, `.swo`, `.swx`) and its write probe
/// (`4913`), backups (`x~`), Emacs' auto-save (`#x#`) and lock (`.#x`)
/// files. They come and go every few seconds while someone edits; shared,
/// they would become room documents (or "binary" warnings) that nobody
/// meant to share.
pub fn is_editor_temp(name: &str) -> bool {
    name.ends_with(".swp")
        || name.ends_with(".swo")
        || name.ends_with(".swx")
        || name.ends_with('~')
        || (name.len() > 1 && name.starts_with('#') && name.ends_with('#'))
        || name.starts_with(".#")
        || name == "4913"
}

/// Reads `path` as shareable text.
pub fn read_text(path: &Path, max_bytes: u64) -> Result<String, Unshareable> {
    let mut file = fs::File::open(path)?;
    let size = file.metadata()?.len();
    if size > max_bytes {
        return Err(Unshareable::TooLarge {
            size,
            limit: max_bytes,
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(Unshareable::TooLarge {
            size: bytes.len() as u64,
            limit: max_bytes,
        });
    }
    if bytes.contains(&0) {
        return Err(Unshareable::Binary);
    }
    String::from_utf8(bytes).map_err(|_| Unshareable::Binary)
}

/// Every shareable file under `dir` (a directory under `root`, or `root`).
pub fn scan_under(root: &Path, dir: &Path, max_bytes: u64) -> Scan {
    let mut scan = Scan::default();
    for entry in walker(dir).build() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                scan.skipped.push(Skipped {
                    path: dir.display().to_string(),
                    why: e.to_string(),
                });
                continue;
            }
        };
        let Some(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            continue;
        }
        let shown = entry
            .path()
            .strip_prefix(root)
            .unwrap_or(entry.path())
            .display()
            .to_string();
        if kind.is_symlink() {
            scan.skipped.push(Skipped {
                path: shown,
                why: "a symbolic link".into(),
            });
            continue;
        }
        let Some(path) = room_path(root, entry.path()) else {
            scan.skipped.push(Skipped {
                path: shown,
                why: "its path is not one a room accepts".into(),
            });
            continue;
        };
        if never_shared(&path) {
            continue;
        }
        match read_text(entry.path(), max_bytes) {
            Ok(text) => scan.files.push(Found { path, text }),
            Err(e) => scan.skipped.push(Skipped {
                path,
                why: e.to_string(),
            }),
        }
    }
    scan.files.sort_by(|a, b| a.path.cmp(&b.path));
    scan.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    scan
}

/// Every shareable file of the directory `root`.
pub fn scan(root: &Path, max_bytes: u64) -> Scan {
    scan_under(root, root, max_bytes)
}

/// `dir` and every directory under it that the ignore rules do not leave
/// out (the ones worth watching: a build directory is not).
pub fn listed_dirs(dir: &Path) -> Vec<PathBuf> {
    walker(dir)
        .build()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_some_and(|t| t.is_dir()))
        .map(ignore::DirEntry::into_path)
        .collect()
}

/// True when the ignore rules let the file at room path `path` be shared
/// (its directory is listed as a scan would list it).
pub fn is_listed(root: &Path, path: &str) -> bool {
    if never_shared(path) {
        return false;
    }
    let file = disk_path(root, path);
    let Some(dir) = file.parent() else {
        return false;
    };
    // The directories above must be listed too: a file in an ignored
    // directory is ignored.
    if dir != root {
        let Some(parent) = room_path(root, dir) else {
            return false;
        };
        if !is_listed(root, &parent) {
            return false;
        }
    }
    walker(dir)
        .max_depth(Some(1))
        .build()
        .filter_map(Result::ok)
        .any(|e| e.path() == file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &[u8])]) -> tempfile_dir::Dir {
        let dir = tempfile_dir::Dir::new();
        for (path, bytes) in files {
            let p = disk_path(dir.path(), path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, bytes).unwrap();
        }
        dir
    }

    /// A temporary directory removed on drop (no crate needed for it).
    mod tempfile_dir {
        use std::path::{Path, PathBuf};
        pub struct Dir(PathBuf);
        impl Dir {
            pub fn new() -> Self {
                let p = std::env::temp_dir().join(format!(
                    "collab-scan-{}-{}",
                    std::process::id(),
                    crate::net::new_client_id()
                ));
                std::fs::create_dir_all(&p).unwrap();
                Self(p)
            }
            pub fn path(&self) -> &Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn ignore_rules_binary_and_size_decide_what_is_shared() {
        let dir = tree(&[
            (".gitignore", b"target/\n*.log\n"),
            ("src/main.rs", b"fn main() {}\n"),
            ("target/debug/x.rs", b"built\n"),
            ("run.log", b"noise\n"),
            (".ignore", b"secret.txt\n"),
            ("secret.txt", b"psst\n"),
            (".git/config", b"[core]\n"),
            ("logo.png", b"\x89PNG\r\n\x1a\n\0\0"),
            ("latin1.txt", b"caf\xe9\n"),
            ("big.txt", &[b'x'; 100]),
            ("crlf.txt", b"a\r\nb\r\n"),
            ("a.collab-tmp.x", b"temp"),
        ]);
        let scan = scan(dir.path(), 50);
        let shared: Vec<&str> = scan.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(shared, [".gitignore", ".ignore", "crlf.txt", "src/main.rs"]);
        assert_eq!(scan.files[2].text, "a\r\nb\r\n");
        let skipped: Vec<(&str, &str)> = scan
            .skipped
            .iter()
            .map(|s| (s.path.as_str(), s.why.as_str()))
            .collect();
        assert_eq!(
            skipped,
            [
                ("big.txt", "100 bytes, over the 50-byte limit"),
                ("latin1.txt", "binary (not UTF-8 text)"),
                ("logo.png", "binary (not UTF-8 text)"),
            ]
        );
        assert!(is_listed(dir.path(), "src/main.rs"));
        assert!(is_listed(dir.path(), "crlf.txt"));
        assert!(!is_listed(dir.path(), "target/debug/x.rs"));
        assert!(!is_listed(dir.path(), "run.log"));
        assert!(!is_listed(dir.path(), "secret.txt"));
        assert!(!is_listed(dir.path(), ".git/config"));
        assert!(!is_listed(dir.path(), "a.collab-tmp.x"));
        let dirs: Vec<String> = listed_dirs(dir.path())
            .iter()
            .filter_map(|d| room_path(dir.path(), d))
            .collect();
        assert_eq!(
            dirs,
            ["src"],
            "the root (no room path), src; not target or .git"
        );
    }

    #[test]
    fn room_paths_are_relative_and_slashed() {
        let root = Path::new("/p");
        assert_eq!(
            room_path(root, Path::new("/p/a/b.rs")).as_deref(),
            Some("a/b.rs")
        );
        assert_eq!(room_path(root, Path::new("/q/a.rs")), None);
        assert_eq!(room_path(root, root), None);
        assert_eq!(disk_path(root, "a/b.rs"), Path::new("/p/a/b.rs"));
        assert!(never_shared(".git/HEAD"));
        assert!(never_shared("src/.main.rs.collab-tmp.ab"));
        assert!(!never_shared("src/git.rs"));
        // Other editors' temporary files and the mirror's kept copies.
        for p in [
            "src/.main.rs.swp",
            ".a.swo",
            "b.swx",
            "src/main.rs~",
            "#notes.txt#",
            "src/.#lib.rs",
            "4913",
            "a.txt.collab-lost",
            "a.txt.collab-lost.2",
        ] {
            assert!(never_shared(p), "{p}");
        }
        assert!(!never_shared("#"));
        assert!(!never_shared("src/swp.rs"));
    }
}
