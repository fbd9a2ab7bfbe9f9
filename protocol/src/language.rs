//! Language hints: the name a document's language goes by on the wire,
//! guessed from a file's name, and the usual extension back. The server
//! guesses for files created without a hint; clients guess for the files
//! they share.

/// The language for the last component of `path`; "plaintext" when unknown.
pub fn guess(path: &str) -> &'static str {
    let name = path.rsplit(['/', '\\']).next().unwrap_or("");
    if matches!(name, "Makefile" | "makefile" | "GNUmakefile") {
        return "makefile";
    }
    if matches!(name, "Dockerfile" | "Containerfile") {
        return "dockerfile";
    }
    let ext = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => String::new(),
    };
    match ext.as_str() {
        "rs" => "rust",
        "py" | "pyi" => "python",
        "js" | "mjs" | "cjs" | "jsx" => "javascript",
        "ts" | "mts" | "cts" => "typescript",
        "tsx" => "tsx",
        "go" => "go",
        "c" | "h" => "c",
        "cpp" | "cc" | "cxx" | "hpp" | "hh" | "hxx" => "cpp",
        "java" => "java",
        "md" | "markdown" => "markdown",
        "toml" => "toml",
        "json" => "json",
        "yaml" | "yml" => "yaml",
        "sh" | "bash" | "zsh" => "shell",
        "mk" => "makefile",
        _ => "plaintext",
    }
}

/// The usual file extension for `language`, for naming a new file; "txt"
/// when unknown.
pub fn extension(language: &str) -> &'static str {
    match language {
        "rust" => "rs",
        "python" => "py",
        "javascript" => "js",
        "typescript" => "ts",
        "tsx" => "tsx",
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
    fn guesses_by_name_and_extension() {
        assert_eq!(guess("src/main.rs"), "rust");
        assert_eq!(guess("a.PY"), "python");
        assert_eq!(guess("dir/Makefile"), "makefile");
        assert_eq!(guess("notes"), "plaintext");
        assert_eq!(guess(".bashrc"), "plaintext", "a dot file has no extension");
        assert_eq!(guess("x.hpp"), "cpp");
        assert_eq!(guess("ci/config.yml"), "yaml");
        assert_eq!(extension(guess("x.py")), "py");
        assert_eq!(extension("cobol"), "txt");
    }
}
