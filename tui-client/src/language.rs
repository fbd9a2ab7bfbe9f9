//! The language hint a room is created with, guessed from a file name.

use std::path::Path;

/// The language for `path`'s name or extension; "plaintext" when unknown.
pub fn guess(path: &Path) -> &'static str {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if matches!(name, "Makefile" | "makefile" | "GNUmakefile") {
        return "makefile";
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "rs" => "rust",
        "py" => "python",
        "js" | "mjs" | "cjs" | "jsx" => "javascript",
        "ts" | "mts" | "cts" | "tsx" => "typescript",
        "go" => "go",
        "c" | "h" => "c",
        "cpp" | "cc" | "cxx" | "hpp" | "hh" | "hxx" => "cpp",
        "java" => "java",
        "md" => "markdown",
        "toml" => "toml",
        "json" => "json",
        "yaml" | "yml" => "yaml",
        "sh" | "bash" | "zsh" => "shell",
        "mk" => "makefile",
        _ => "plaintext",
    }
}

/// The usual file extension for `language` (a room's hint), for naming a
/// new file; "txt" when unknown.
pub fn extension(language: &str) -> &'static str {
    match language {
        "rust" => "rs",
        "python" => "py",
        "javascript" => "js",
        "typescript" => "ts",
        "go" => "go",
        "c" => "c",
        "cpp" => "cpp",
        "java" => "java",
        "markdown" => "md",
        "toml" => "toml",
        "json" => "json",
        "yaml" => "yaml",
        "shell" => "sh",
        "makefile" => "mk",
        _ => "txt",
    }
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
    }
}
