//! Writing the room's files into a directory without ever leaving a file
//! half-written: the text goes to a temporary file beside the target, is
//! flushed to disk, takes the target's permissions, and replaces it by a
//! rename (atomic on one file system). Tools watching the directory see the
//! old file or the new one, never a mix. Removing and moving files prune
//! the directories they leave empty.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use crate::disk::scan::TEMP_MARK;

/// What identifies one version of a file without reading it: a rename
/// over it (what `sed -i` and most editors do) changes its inode, a write
/// in place its size or modification time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

/// The version of the file at `path`; `None` when there is none.
pub fn version(path: &Path) -> Option<Version> {
    let meta = fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Version {
        len: meta.len(),
        modified: meta.modified().ok(),
        inode,
    })
}

/// Writes `text` to `path` atomically, keeping its permissions when it
/// exists and creating its directories when they do not.
pub fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    write_unless_changed(path, text, |_| true).map(|_| ())
}

/// [`write_atomic`], but only if `unchanged` holds for the file's version
/// just before the rename (checked after the slow part, the write and the
/// flush, so a change by another program in that time is not replaced);
/// false when it was not written.
pub fn write_unless_changed(
    path: &Path,
    text: &str,
    unchanged: impl FnOnce(Option<Version>) -> bool,
) -> io::Result<bool> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("a file path has a directory"))?;
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::other("a file path has a name"))?;
    let temp = dir.join(format!(".{name}{TEMP_MARK}{}", crate::net::new_client_id()));
    let result = (|| {
        let mut file = fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        if let Ok(meta) = fs::metadata(path) {
            fs::set_permissions(&temp, meta.permissions())?;
        }
        if !unchanged(version(path)) {
            return Ok(false);
        }
        fs::rename(&temp, path).map(|()| true)
    })();
    if !matches!(result, Ok(true)) {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Refuses a room path the mirror must not write, move or remove: one
/// inside `.git` (the repository's own files), or one whose existing part
/// under `root` passes through a symbolic link (the write would land
/// outside the shared tree). The scan never shares either, but a
/// colleague can create or rename a file at any path the room accepts.
pub fn check_writable(root: &Path, path: &str) -> io::Result<()> {
    let parts: Vec<&str> = path.split('/').collect();
    if parts.contains(&".git") {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "it is inside .git, which the mirror never touches",
        ));
    }
    let mut at = root.to_path_buf();
    for part in parts {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{} is a symbolic link, which the mirror never follows",
                        at.strip_prefix(root).unwrap_or(&at).display()
                    ),
                ));
            }
            Ok(_) => {}
            // Nothing further down exists, so nothing there is a link.
            Err(e) if e.kind() == io::ErrorKind::NotFound => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes the directories from `dir` up to (not including) `root` that are
/// empty.
pub fn prune_empty_dirs(root: &Path, dir: &Path) {
    let mut dir = dir.to_path_buf();
    while dir.starts_with(root) && dir != root {
        // Fails (and stops) on the first directory that is not empty.
        if fs::remove_dir(&dir).is_err() {
            break;
        }
        if !dir.pop() {
            break;
        }
    }
}

/// Removes the file at `path` and the directories it leaves empty.
pub fn remove(root: &Path, path: &Path) -> io::Result<()> {
    fs::remove_file(path)?;
    if let Some(dir) = path.parent() {
        prune_empty_dirs(root, dir);
    }
    Ok(())
}

/// Moves `from` to `to` (creating `to`'s directories; refusing to replace
/// a file at `to`) and prunes the directories `from` leaves empty.
pub fn rename(root: &Path, from: &Path, to: &Path) -> io::Result<()> {
    if to.exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists", to.display()),
        ));
    }
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::rename(from, to)?;
    if let Some(dir) = from.parent() {
        prune_empty_dirs(root, dir);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn writes_keep_bytes_and_permissions_and_leave_no_temp_file() {
        use std::os::unix::fs::PermissionsExt;
        let root =
            std::env::temp_dir().join(format!("collab-write-{}", crate::net::new_client_id()));
        let file = root.join("a/b/run.sh");
        write_atomic(&file, "#!/bin/sh\r\necho hé\n").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o751)).unwrap();
        write_atomic(&file, "#!/bin/sh\r\necho hé!\n").unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"#!/bin/sh\r\necho h\xc3\xa9!\n");
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o751
        );
        assert_eq!(fs::read_dir(root.join("a/b")).unwrap().count(), 1);
        let moved = root.join("c/run.sh");
        rename(&root, &file, &moved).unwrap();
        assert!(!root.join("a").exists(), "empty directories are pruned");
        assert!(
            rename(&root, &moved, &moved).is_err(),
            "never replaces a file"
        );
        remove(&root, &moved).unwrap();
        assert!(root.exists() && !root.join("c").exists());
        fs::remove_dir_all(&root).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn paths_inside_git_or_through_a_symbolic_link_are_refused() {
        let root =
            std::env::temp_dir().join(format!("collab-guard-{}", crate::net::new_client_id()));
        let outside = root.join("outside");
        fs::create_dir_all(root.join("tree/src")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        let tree = root.join("tree");
        std::os::unix::fs::symlink(&outside, tree.join("link")).unwrap();
        assert!(check_writable(&tree, "src/a.rs").is_ok());
        assert!(check_writable(&tree, "new/dir/a.rs").is_ok());
        assert!(check_writable(&tree, ".git/hooks/pre-commit").is_err());
        assert!(check_writable(&tree, "sub/.git/config").is_err());
        let err = check_writable(&tree, "link/a.rs").unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(check_writable(&tree, "link").is_err());
        fs::remove_dir_all(&root).unwrap();
    }
}
