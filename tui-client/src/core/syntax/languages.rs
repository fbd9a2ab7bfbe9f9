//! The languages collab highlights: each grammar with the highlight query
//! its crate ships, compiled once per process (a query takes milliseconds to
//! compile, far too long to repeat per room or per frame), and what each of
//! its capture names means as a [`Highlight`].

use std::path::Path;
use std::sync::OnceLock;

use tree_sitter::{Language, Query};

use super::Highlight;

/// A language collab can highlight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lang {
    /// Rust.
    Rust,
    /// Python.
    Python,
    /// JavaScript (and JSX).
    JavaScript,
    /// TypeScript.
    TypeScript,
    /// TSX.
    Tsx,
    /// Go.
    Go,
    /// C.
    C,
    /// C++.
    Cpp,
    /// Java.
    Java,
    /// JSON.
    Json,
    /// TOML.
    Toml,
    /// YAML.
    Yaml,
    /// Markdown (block structure: headings, code blocks, lists, links).
    Markdown,
    /// Bash and POSIX shell.
    Bash,
}

impl Lang {
    /// Every language, in the order of [`Lang::index`].
    pub const ALL: [Lang; 14] = [
        Lang::Rust,
        Lang::Python,
        Lang::JavaScript,
        Lang::TypeScript,
        Lang::Tsx,
        Lang::Go,
        Lang::C,
        Lang::Cpp,
        Lang::Java,
        Lang::Json,
        Lang::Toml,
        Lang::Yaml,
        Lang::Markdown,
        Lang::Bash,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The language a room's hint names ("rust", "python", …, as
    /// `collab create` guesses them; a few common aliases too).
    pub fn from_name(name: &str) -> Option<Lang> {
        Some(match name.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Lang::Rust,
            "python" | "py" => Lang::Python,
            "javascript" | "js" | "jsx" => Lang::JavaScript,
            "typescript" | "ts" => Lang::TypeScript,
            "tsx" => Lang::Tsx,
            "go" | "golang" => Lang::Go,
            "c" => Lang::C,
            "cpp" | "c++" | "cxx" => Lang::Cpp,
            "java" => Lang::Java,
            "json" => Lang::Json,
            "toml" => Lang::Toml,
            "yaml" | "yml" => Lang::Yaml,
            "markdown" | "md" => Lang::Markdown,
            "shell" | "bash" | "sh" | "zsh" => Lang::Bash,
            _ => return None,
        })
    }

    /// The language of a file, by its name.
    pub fn from_path(path: &Path) -> Option<Lang> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext.eq_ignore_ascii_case("tsx") {
            return Some(Lang::Tsx);
        }
        Lang::from_name(crate::language::guess(path))
    }

    /// The language to highlight a document in: the local file's name
    /// when it tells, else the room's hint.
    pub fn detect(room_hint: &str, file: Option<&Path>) -> Option<Lang> {
        file.and_then(Lang::from_path)
            .or_else(|| Lang::from_name(room_hint))
    }

    fn grammar(self) -> (Language, String) {
        let js = tree_sitter_javascript::HIGHLIGHT_QUERY;
        let ts = tree_sitter_typescript::HIGHLIGHTS_QUERY;
        let c = tree_sitter_c::HIGHLIGHT_QUERY;
        // TypeScript's and C++'s queries only add to those of the language
        // they extend (their tree-sitter.json lists both, the base first).
        let (language, query): (Language, String) = match self {
            Lang::Rust => (
                tree_sitter_rust::LANGUAGE.into(),
                tree_sitter_rust::HIGHLIGHTS_QUERY.into(),
            ),
            Lang::Python => (
                tree_sitter_python::LANGUAGE.into(),
                tree_sitter_python::HIGHLIGHTS_QUERY.into(),
            ),
            Lang::JavaScript => (
                tree_sitter_javascript::LANGUAGE.into(),
                format!("{js}\n{}", tree_sitter_javascript::JSX_HIGHLIGHT_QUERY),
            ),
            Lang::TypeScript => (
                tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
                format!("{js}\n{ts}"),
            ),
            Lang::Tsx => (
                tree_sitter_typescript::LANGUAGE_TSX.into(),
                format!(
                    "{js}\n{}\n{ts}",
                    tree_sitter_javascript::JSX_HIGHLIGHT_QUERY
                ),
            ),
            Lang::Go => (
                tree_sitter_go::LANGUAGE.into(),
                tree_sitter_go::HIGHLIGHTS_QUERY.into(),
            ),
            Lang::C => (tree_sitter_c::LANGUAGE.into(), c.into()),
            Lang::Cpp => (
                tree_sitter_cpp::LANGUAGE.into(),
                format!("{c}\n{}", tree_sitter_cpp::HIGHLIGHT_QUERY),
            ),
            Lang::Java => (
                tree_sitter_java::LANGUAGE.into(),
                tree_sitter_java::HIGHLIGHTS_QUERY.into(),
            ),
            Lang::Json => (
                tree_sitter_json::LANGUAGE.into(),
                tree_sitter_json::HIGHLIGHTS_QUERY.into(),
            ),
            Lang::Toml => (
                tree_sitter_toml_ng::LANGUAGE.into(),
                tree_sitter_toml_ng::HIGHLIGHTS_QUERY.into(),
            ),
            Lang::Yaml => (
                tree_sitter_yaml::LANGUAGE.into(),
                tree_sitter_yaml::HIGHLIGHTS_QUERY.into(),
            ),
            Lang::Markdown => (
                tree_sitter_md::LANGUAGE.into(),
                tree_sitter_md::HIGHLIGHT_QUERY_BLOCK.into(),
            ),
            Lang::Bash => (
                tree_sitter_bash::LANGUAGE.into(),
                tree_sitter_bash::HIGHLIGHT_QUERY.into(),
            ),
        };
        (language, query)
    }
}

/// A grammar, its highlight query and what each capture means.
#[derive(Debug)]
pub struct Config {
    /// The grammar.
    pub language: Language,
    /// The highlight query.
    pub query: Query,
    /// By capture index: the class it paints, `None` for captures that
    /// paint nothing (variables, punctuation, operators).
    pub classes: Vec<Option<Highlight>>,
    /// By pattern index: how specific the pattern is (the length of its
    /// text: a node's context and predicates make it longer). Where two
    /// patterns paint the same node, the more specific one wins, so
    /// `text.len()` shows as a method call rather than as a field, and
    /// `MAX` as a constant rather than as a type, whichever order the
    /// grammar's query lists them in (the bundled queries differ on it).
    pub specificity: Vec<usize>,
}

/// The grammar and compiled query of `lang`, built on first use; `None`
/// when its query does not compile (a grammar crate out of step with
/// tree-sitter: the document is then shown plain).
pub fn config(lang: Lang) -> Option<&'static Config> {
    static CONFIGS: [OnceLock<Option<Config>>; Lang::ALL.len()] =
        [const { OnceLock::new() }; Lang::ALL.len()];
    CONFIGS[lang.index()]
        .get_or_init(|| {
            let (language, source) = lang.grammar();
            let query = Query::new(&language, &source).ok()?;
            let classes = query
                .capture_names()
                .iter()
                .map(|n| Highlight::from_capture(n))
                .collect();
            let specificity = (0..query.pattern_count())
                .map(|i| query.end_byte_for_pattern(i) - query.start_byte_for_pattern(i))
                .collect();
            Some(Config {
                language,
                query,
                classes,
                specificity,
            })
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_grammar_loads_and_its_query_compiles() {
        for lang in Lang::ALL {
            assert_eq!(Lang::ALL[lang.index()], lang);
            let (language, source) = lang.grammar();
            if let Err(e) = Query::new(&language, &source) {
                panic!("{lang:?}: {e}");
            }
            let config = config(lang).unwrap();
            assert!(config.classes.iter().any(Option::is_some), "{lang:?}");
        }
    }

    #[test]
    fn the_file_name_wins_over_the_rooms_hint() {
        assert_eq!(Lang::detect("python", None), Some(Lang::Python));
        assert_eq!(
            Lang::detect("python", Some(Path::new("x/main.rs"))),
            Some(Lang::Rust)
        );
        assert_eq!(
            Lang::detect("rust", Some(Path::new("notes"))),
            Some(Lang::Rust),
            "a name that tells nothing keeps the hint"
        );
        assert_eq!(Lang::detect("plaintext", None), None);
        assert_eq!(Lang::detect("", Some(Path::new("a.yml"))), Some(Lang::Yaml));
        assert_eq!(Lang::detect("", Some(Path::new("a.tsx"))), Some(Lang::Tsx));
    }
}
