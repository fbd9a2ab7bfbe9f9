//! The rules a document's path in a project room follows (docs/protocol.md,
//! "The tree"). The server enforces them; clients check before they send.
//! A path names a file relative to the project's root, the same way on
//! every platform: `/`-separated, no `.` or `..`, nothing that a file
//! system would read differently from another.

/// Longest path, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;
/// Most components in a path (directories and the file name).
pub const MAX_DEPTH: usize = 32;

/// Why a path is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path is empty.
    #[error("the path is empty")]
    Empty,
    /// Longer than [`MAX_PATH_BYTES`].
    #[error("the path is {0} bytes long; the limit is {MAX_PATH_BYTES}")]
    TooLong(usize),
    /// Deeper than [`MAX_DEPTH`].
    #[error("the path has {0} components; the limit is {MAX_DEPTH}")]
    TooDeep(usize),
    /// Starts with `/`.
    #[error("the path is absolute; paths are relative to the project's root")]
    Absolute,
    /// `a//b` or a trailing `/`.
    #[error("the path has an empty component")]
    EmptyComponent,
    /// `.` or `..`.
    #[error("the path has a `{0}` component")]
    Dots(&'static str),
    /// A control character or a backslash.
    #[error("the path holds {0}, which paths may not")]
    BadChar(&'static str),
}

/// Checks `path` against the rules; `Ok` when a document may have it.
pub fn check(path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong(path.len()));
    }
    if path.starts_with('/') {
        return Err(PathError::Absolute);
    }
    if let Some(c) = path.chars().find(|c| c.is_control() || *c == '\\') {
        return Err(PathError::BadChar(if c == '\\' {
            "a backslash"
        } else {
            "a control character"
        }));
    }
    let mut depth = 0;
    for part in path.split('/') {
        depth += 1;
        match part {
            "" => return Err(PathError::EmptyComponent),
            "." => return Err(PathError::Dots(".")),
            ".." => return Err(PathError::Dots("..")),
            _ => {}
        }
    }
    if depth > MAX_DEPTH {
        return Err(PathError::TooDeep(depth));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_slash_separated_paths_pass() {
        for ok in [
            "main.rs",
            "src/lib.rs",
            "a b/ü/日本.md",
            ".github/ci.yml",
            "x..y",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn everything_else_is_refused_with_the_reason() {
        assert_eq!(check(""), Err(PathError::Empty));
        assert_eq!(check("/etc/passwd"), Err(PathError::Absolute));
        assert_eq!(check("a//b"), Err(PathError::EmptyComponent));
        assert_eq!(check("src/"), Err(PathError::EmptyComponent));
        assert_eq!(check("../x"), Err(PathError::Dots("..")));
        assert_eq!(check("a/./b"), Err(PathError::Dots(".")));
        assert!(matches!(check("a\\b"), Err(PathError::BadChar(_))));
        assert!(matches!(check("a\nb"), Err(PathError::BadChar(_))));
        assert_eq!(check("a/".repeat(32).trim_end_matches('/')), Ok(()));
        assert_eq!(check(&"a/".repeat(33)[..65]), Err(PathError::TooDeep(33)));
        assert_eq!(check(&"x".repeat(1025)), Err(PathError::TooLong(1025)));
    }
}
