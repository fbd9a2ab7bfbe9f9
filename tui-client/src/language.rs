//! The language hint a room is created with, guessed from a file name.

use std::path::Path;

/// The language for `path`'s extension; "plaintext" when unknown.
pub fn guess(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "rs" => "rust",
        "py" => "python",
        "js" | "mjs" | "cjs" => "javascript",
        "ts" => "typescript",
        "go" => "go",
        "c" | "h" => "c",
        "cpp" | "cc" | "cxx" | "hpp" => "cpp",
        "java" => "java",
        "md" => "markdown",
        "toml" => "toml",
        "json" => "json",
        "sh" | "bash" => "shell",
        _ => "plaintext",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_by_extension() {
        assert_eq!(guess(Path::new("src/main.rs")), "rust");
        assert_eq!(guess(Path::new("a.PY")), "python");
        assert_eq!(guess(Path::new("Makefile")), "plaintext");
        assert_eq!(guess(Path::new("x.hpp")), "cpp");
    }
}
