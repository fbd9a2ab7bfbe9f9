//! The language hint a room is created with, guessed from a file name:
//! the protocol's table (the server guesses with the same one), read from
//! a local path.

use std::path::Path;

pub use collab_protocol::language::extension;

/// The language for `path`'s name or extension; "plaintext" when unknown.
pub fn guess(path: &Path) -> &'static str {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    collab_protocol::language::guess(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_by_extension() {
        assert_eq!(guess(Path::new("src/main.rs")), "rust");
        assert_eq!(guess(Path::new("a.PY")), "python");
        assert_eq!(guess(Path::new("Makefile")), "makefile");
        assert_eq!(guess(Path::new("notes")), "plaintext");
        assert_eq!(extension(guess(Path::new("x.py"))), "py");
        assert_eq!(extension("cobol"), "txt");
        assert_eq!(guess(Path::new("x.hpp")), "cpp");
        assert_eq!(guess(Path::new("x.tsx")), "tsx");
        assert_eq!(guess(Path::new("~/.zshrc.zsh")), "shell");
    }
}
