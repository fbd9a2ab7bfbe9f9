//! A project room's tree: which documents it holds, at which paths, and
//! the rules a change must follow (paths valid and unique, limits kept).
//! Changes are checked here against the tree they would apply to and then
//! applied in the tree log's order, the same on every instance, so that
//! instances agree on the tree and the first of two racing changes wins.

use std::collections::{BTreeMap, HashMap};

use collab_protocol::{error_code, paths, FileInfo};

use super::doc::DocId;
use crate::store::{TreeChange, MAIN_DOC};

/// The limits a room's tree keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeLimits {
    /// Documents per room.
    pub max_docs: usize,
    /// Bytes per document.
    pub max_doc_bytes: u64,
    /// Bytes of all documents of a room.
    pub max_room_bytes: u64,
}

/// Why a change was refused: the `error` its author gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The `error.code`.
    pub code: &'static str,
    /// What is wrong, for a person.
    pub message: String,
    /// The document it concerns.
    pub doc: Option<String>,
    /// The path it concerns.
    pub path: Option<String>,
}

impl Refusal {
    /// A refusal that names neither a document nor a path.
    pub fn plain(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            doc: None,
            path: None,
        }
    }

    fn path(code: &'static str, path: &str, message: String) -> Self {
        Self {
            code,
            message,
            doc: None,
            path: Some(path.to_owned()),
        }
    }

    /// No document has the id `doc`.
    pub fn no_doc(doc: &str, deleted: bool) -> Self {
        let (code, message) = if deleted {
            (
                error_code::DOCUMENT_DELETED,
                format!("document {doc} was deleted"),
            )
        } else {
            (
                error_code::DOCUMENT_NOT_FOUND,
                format!("no document has the id {doc}"),
            )
        };
        Self {
            code,
            message,
            doc: Some(doc.to_owned()),
            path: None,
        }
    }
}

/// The tree; see the module docs.
#[derive(Debug, Default)]
pub struct Tree {
    revision: u64,
    files: HashMap<DocId, FileInfo>,
    paths: BTreeMap<String, DocId>,
    /// The sum of the documents' sizes.
    bytes: u64,
}

impl Tree {
    /// The tree at `revision` holding `files`.
    pub fn new(revision: u64, files: Vec<FileInfo>) -> Self {
        let mut tree = Self {
            revision,
            ..Self::default()
        };
        for f in files {
            tree.insert(f);
        }
        tree
    }

    fn insert(&mut self, f: FileInfo) {
        let id: DocId = f.doc.as_str().into();
        self.bytes += f.size;
        self.paths.insert(f.path.clone(), id.clone());
        self.files.insert(id, f);
    }

    /// How many changes the tree has had.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The document with id `doc`, if the tree holds it.
    pub fn get(&self, doc: &str) -> Option<&FileInfo> {
        self.files.get(doc)
    }

    /// The id the tree holds for `doc` (shared, not copied).
    pub fn id(&self, doc: &str) -> Option<DocId> {
        self.files.get_key_value(doc).map(|(k, _)| k.clone())
    }

    /// The main document's id, while it exists.
    pub fn main(&self) -> Option<DocId> {
        self.id(MAIN_DOC)
    }

    /// The document at `path`.
    pub fn at(&self, path: &str) -> Option<&DocId> {
        self.paths.get(path)
    }

    /// How many documents it holds.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Every document, sorted by path.
    pub fn list(&self) -> Vec<FileInfo> {
        self.paths
            .values()
            .filter_map(|id| self.files.get(id).cloned())
            .collect()
    }

    /// A document's size changed (an edit).
    pub fn set_size(&mut self, doc: &str, size: u64) {
        if let Some(f) = self.files.get_mut(doc) {
            self.bytes = self.bytes - f.size + size;
            f.size = size;
        }
    }

    /// The sum of the documents' sizes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Checks `change` against this tree and `limits`: `Ok` when it may be
    /// committed as the next change.
    pub fn check(&self, change: &TreeChange, limits: &TreeLimits) -> Result<(), Refusal> {
        match change {
            TreeChange::Create { file } => {
                self.check_path(&file.path)?;
                if self.files.len() >= limits.max_docs {
                    return Err(Refusal::path(
                        error_code::TOO_MANY_FILES,
                        &file.path,
                        format!("the room holds {} documents, its limit", limits.max_docs),
                    ));
                }
                check_size(&file.path, file.size, self.bytes, limits)
            }
            TreeChange::Rename { doc, path, .. } => {
                if !self.files.contains_key(doc.as_str()) {
                    return Err(Refusal::no_doc(doc, false));
                }
                if self.paths.get(path).is_some_and(|d| **d == **doc) {
                    return Ok(()); // Already there: a change that changes nothing.
                }
                self.check_path(path)
            }
            TreeChange::Delete { doc, .. } => match self.files.contains_key(doc.as_str()) {
                true => Ok(()),
                false => Err(Refusal::no_doc(doc, false)),
            },
        }
    }

    /// A valid path no document has.
    fn check_path(&self, path: &str) -> Result<(), Refusal> {
        if let Err(e) = paths::check(path) {
            return Err(Refusal::path(
                error_code::BAD_PATH,
                path,
                format!("{path:?}: {e}"),
            ));
        }
        if self.paths.contains_key(path) {
            return Err(Refusal::path(
                error_code::PATH_TAKEN,
                path,
                format!("another document is at {path}"),
            ));
        }
        Ok(())
    }

    /// Applies a committed change as the next revision.
    pub fn apply(&mut self, change: &TreeChange) {
        self.revision += 1;
        match change {
            TreeChange::Create { file } => self.insert(file.clone()),
            TreeChange::Rename {
                doc,
                path,
                language,
                ..
            } => {
                let Some(f) = self.files.get_mut(doc.as_str()) else {
                    return;
                };
                self.paths.remove(&f.path);
                f.path = path.clone();
                f.language = language.clone();
                let id = self.id(doc).expect("present");
                self.paths.insert(path.clone(), id);
            }
            TreeChange::Delete { doc, .. } => {
                if let Some(f) = self.files.remove(doc.as_str()) {
                    self.paths.remove(&f.path);
                    self.bytes -= f.size;
                }
            }
        }
    }
}

/// Checks a new document of `size` bytes against the limits, with `room`
/// bytes already in the room.
pub fn check_size(path: &str, size: u64, room: u64, limits: &TreeLimits) -> Result<(), Refusal> {
    if size > limits.max_doc_bytes {
        return Err(Refusal::path(
            error_code::DOCUMENT_TOO_LARGE,
            path,
            format!(
                "{path} is {size} bytes; a document may hold {} bytes",
                limits.max_doc_bytes
            ),
        ));
    }
    if room + size > limits.max_room_bytes {
        return Err(Refusal::path(
            error_code::DOCUMENT_TOO_LARGE,
            path,
            format!(
                "{path} ({size} bytes) would take the room past its {} bytes",
                limits.max_room_bytes
            ),
        ));
    }
    Ok(())
}

/// The language of a document moved to `path`: guessed from the new path
/// when the old language was the old path's guess (a rename from `a.txt`
/// to `a.rs` is Rust now), else kept (a hint someone chose).
pub fn language_after_move(old_path: &str, language: &str, path: &str) -> String {
    use collab_protocol::language::guess;
    if guess(old_path) == language {
        guess(path).to_owned()
    } else {
        language.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(doc: &str, path: &str, size: u64) -> FileInfo {
        FileInfo {
            doc: doc.into(),
            path: path.into(),
            size,
            language: "plaintext".into(),
        }
    }

    const LIMITS: TreeLimits = TreeLimits {
        max_docs: 3,
        max_doc_bytes: 100,
        max_room_bytes: 150,
    };

    fn create(doc: &str, path: &str, size: u64) -> TreeChange {
        TreeChange::Create {
            file: file(doc, path, size),
        }
    }

    #[test]
    fn paths_stay_unique_and_valid() {
        let mut tree = Tree::new(0, vec![file("main", "src/main.rs", 10)]);
        let refused = tree
            .check(&create("d1", "src/main.rs", 1), &LIMITS)
            .unwrap_err();
        assert_eq!(
            (refused.code, refused.path.as_deref()),
            ("path_taken", Some("src/main.rs"))
        );
        let refused = tree.check(&create("d1", "../x", 1), &LIMITS).unwrap_err();
        assert_eq!(refused.code, "bad_path");
        tree.apply(&create("d1", "src/lib.rs", 5));
        let rename = |path: &str| TreeChange::Rename {
            doc: "d1".into(),
            path: path.into(),
            old_path: "src/lib.rs".into(),
            language: "rust".into(),
        };
        assert_eq!(
            tree.check(&rename("src/main.rs"), &LIMITS)
                .unwrap_err()
                .code,
            "path_taken"
        );
        assert!(
            tree.check(&rename("src/lib.rs"), &LIMITS).is_ok(),
            "onto itself"
        );
        tree.apply(&rename("lib.rs"));
        assert_eq!(
            tree.list()
                .iter()
                .map(|f| f.path.as_str())
                .collect::<Vec<_>>(),
            ["lib.rs", "src/main.rs"]
        );
        assert_eq!(tree.at("lib.rs").map(|d| &**d), Some("d1"));
        assert!(tree.at("src/lib.rs").is_none());
        tree.apply(&TreeChange::Delete {
            doc: "main".into(),
            path: "src/main.rs".into(),
        });
        assert_eq!((tree.revision(), tree.len(), tree.bytes()), (3, 1, 5));
        assert_eq!(tree.main(), None);
        let refused = tree
            .check(
                &TreeChange::Delete {
                    doc: "main".into(),
                    path: String::new(),
                },
                &LIMITS,
            )
            .unwrap_err();
        assert_eq!(refused.code, "document_not_found");
    }

    #[test]
    fn limits_name_the_path() {
        let mut tree = Tree::new(0, vec![file("main", "a", 100)]);
        let refused = tree.check(&create("d1", "big", 101), &LIMITS).unwrap_err();
        assert_eq!(
            (refused.code, refused.path.as_deref()),
            ("document_too_large", Some("big"))
        );
        let refused = tree.check(&create("d1", "b", 60), &LIMITS).unwrap_err();
        assert!(refused.message.contains("150"), "{}", refused.message);
        tree.apply(&create("d1", "b", 10));
        tree.apply(&create("d2", "c", 10));
        assert_eq!(
            tree.check(&create("d3", "d", 1), &LIMITS).unwrap_err().code,
            "too_many_files"
        );
        tree.set_size("main", 50);
        assert_eq!(tree.bytes(), 70);
    }

    #[test]
    fn a_move_changes_a_guessed_language_only() {
        assert_eq!(language_after_move("a.txt", "plaintext", "a.rs"), "rust");
        assert_eq!(language_after_move("a.txt", "python", "a.rs"), "python");
    }
}
