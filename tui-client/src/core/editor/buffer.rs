//! One open document's editing state: its synced text, caret, selection,
//! view, undo history, search and highlighting. The editor edits one buffer
//! at a time, the *active* one, whose state lives in the editor's own
//! fields (so every command works on `self.doc`, `self.caret`, ...); the
//! other open buffers are parked here. Switching buffers, or handling a
//! server message for a parked one, swaps the fields, which costs a few
//! word copies and keeps a single code path for every document.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;

use ropey::Rope;

use super::{find, Editor, FileState};
use crate::core::columns::ColumnIndex;
use crate::core::doc_sync::SyncedDoc;
use crate::core::search::Search;
use crate::core::syntax::Syntax;
use crate::core::undo::UndoHistory;

/// A parked buffer (see the module docs); the fields mirror the editor's.
#[derive(Debug, Default)]
pub(crate) struct Buffer {
    pub(crate) doc_id: Option<String>,
    pub(crate) opening: bool,
    pub(crate) doc: SyncedDoc,
    version: u64,
    columns: RefCell<ColumnIndex>,
    syntax: RefCell<Option<Syntax>>,
    dirty_memo: Cell<Option<(u64, bool)>>,
    caret: usize,
    anchor: Option<usize>,
    goal_col: Option<usize>,
    top: usize,
    left: usize,
    follow_caret: bool,
    search: Option<Search>,
    search_shown: bool,
    search_origin: Option<find::Origin>,
    search_status: Option<String>,
    history: UndoHistory,
    language: String,
    saved: Option<Rope>,
    file: Option<PathBuf>,
    disk: Option<FileState>,
}

impl Buffer {
    /// A buffer for document `doc`, waiting for its `opened`; `next_seq`
    /// continues the seqs this client used in it before (1 if never).
    pub(crate) fn opening(doc: &str, language: &str, next_seq: u64) -> Self {
        Self {
            doc_id: Some(doc.to_owned()),
            opening: true,
            doc: SyncedDoc::continuing(next_seq),
            follow_caret: true,
            language: language.to_owned(),
            ..Self::default()
        }
    }

    /// An empty buffer for document `doc`, whose text comes with `init`.
    pub(crate) fn named(doc: &str) -> Self {
        Self {
            doc_id: Some(doc.to_owned()),
            follow_caret: true,
            ..Self::default()
        }
    }

    /// The text, as far as it arrived.
    pub(crate) fn text(&self) -> &Rope {
        self.doc.rope()
    }
}

impl Editor {
    /// Exchanges the active buffer's state with `other`'s.
    pub(crate) fn swap_buffer(&mut self, other: &mut Buffer) {
        use std::mem::swap;
        swap(&mut self.doc_id, &mut other.doc_id);
        swap(&mut self.opening, &mut other.opening);
        swap(&mut self.doc, &mut other.doc);
        swap(&mut self.version, &mut other.version);
        swap(&mut self.columns, &mut other.columns);
        swap(&mut self.syntax, &mut other.syntax);
        swap(&mut self.dirty_memo, &mut other.dirty_memo);
        swap(&mut self.caret, &mut other.caret);
        swap(&mut self.anchor, &mut other.anchor);
        swap(&mut self.goal_col, &mut other.goal_col);
        swap(&mut self.top, &mut other.top);
        swap(&mut self.left, &mut other.left);
        swap(&mut self.follow_caret, &mut other.follow_caret);
        swap(&mut self.search, &mut other.search);
        swap(&mut self.search_shown, &mut other.search_shown);
        swap(&mut self.search_origin, &mut other.search_origin);
        swap(&mut self.search_status, &mut other.search_status);
        swap(&mut self.history, &mut other.history);
        swap(&mut self.language, &mut other.language);
        swap(&mut self.saved, &mut other.saved);
        swap(&mut self.file, &mut other.file);
        swap(&mut self.disk, &mut other.disk);
    }

    /// Runs `f` with document `doc`'s buffer active, then puts the active
    /// one back; `None` when `doc` is not open here.
    pub(crate) fn with_doc<R>(&mut self, doc: &str, f: impl FnOnce(&mut Self) -> R) -> Option<R> {
        if self.doc_id.as_deref() == Some(doc) {
            return Some(f(self));
        }
        let i = self
            .parked
            .iter()
            .position(|b| b.doc_id.as_deref() == Some(doc))?;
        let mut b = std::mem::take(&mut self.parked[i]);
        self.swap_buffer(&mut b);
        let out = f(self);
        self.swap_buffer(&mut b);
        self.parked[i] = b;
        Some(out)
    }
}
