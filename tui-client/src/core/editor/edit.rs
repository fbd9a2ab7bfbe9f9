//! Changing the text: typing, line breaks, indenting, deleting, the
//! clipboard, and undo/redo of this user's own edits. Every change is one
//! operation, so it is one undo step and one message to the server.

use collab_protocol::{char_len, Component, Operation};

use super::{Editor, Effect};
use crate::core::text_layout::{self as tl, TAB_WIDTH};
use crate::core::undo::EditKind;
use crate::core::words;

/// Lines looked at to tell whether a document indents with tabs.
const INDENT_SAMPLE_LINES: usize = 1000;

impl Editor {
    /// True when the document can take an edit now; otherwise says why.
    fn can_edit(&mut self) -> bool {
        if self.refuse_read_only() {
            return false;
        }
        if !self.doc.is_ready() {
            self.notice = Some("Not connected yet: wait for the document to load".into());
            return false;
        }
        true
    }

    /// Replaces `start..end` with `text` as one operation; the caret goes
    /// after the new text.
    fn replace(&mut self, start: usize, end: usize, text: &str, kind: EditKind) {
        let len = self.doc.rope().len_chars();
        let Ok(op) = Operation::replace(len, start, end, text) else {
            return;
        };
        if self.edit(&op, kind) {
            self.caret = start + char_len(text);
            self.anchor = None;
        }
    }

    /// Applies `op` as this user's edit, recorded for undo; false when
    /// nothing changed.
    pub(super) fn edit(&mut self, op: &Operation, kind: EditKind) -> bool {
        if !self.can_edit() || op.is_noop() {
            return false;
        }
        let Ok(inverse) = op.invert(self.doc.rope()) else {
            return false;
        };
        if !self.apply_own(op) {
            return false;
        }
        self.history.record(inverse, kind, self.clock);
        self.goal_col = None;
        self.follow_caret = true;
        true
    }

    /// Applies an operation of this user's; false when it did not fit.
    fn apply_own(&mut self, op: &Operation) -> bool {
        let old = self.text_before_edit();
        self.sync_changes += 1;
        match self.doc.local(op) {
            Ok(msg) => {
                self.text_changed(op, old.as_ref());
                if let Some(msg) = msg {
                    self.send_edit(msg);
                }
                self.presence.transform(self.doc_id.as_deref(), op);
                true
            }
            Err(e) => {
                self.notice = Some(format!("Edit refused: {e}"));
                false
            }
        }
    }

    /// Replaces the selection (or inserts at the caret) with `text`.
    pub fn insert_text(&mut self, text: &str, kind: EditKind) {
        let (start, end) = self.selection().unwrap_or((self.caret, self.caret));
        self.replace(start, end, text, kind);
    }

    /// Types one char: a run of typing (spaces included) is one undo step;
    /// typing over a selection is a step of its own.
    pub fn type_char(&mut self, c: char) {
        let kind = if self.selection().is_none() {
            EditKind::Typing
        } else {
            EditKind::Other
        };
        self.insert_text(&c.to_string(), kind);
    }

    /// A line break that keeps the current line's indentation.
    pub fn newline(&mut self) {
        let rope = self.doc.rope();
        let (start, _) = self.selection().unwrap_or((self.caret, self.caret));
        let line = tl::line_of(rope, start);
        let mut indent = tl::indentation(rope, line);
        // With the caret inside the indentation, keep only what is before it.
        let before = start - tl::line_start(rope, line);
        if before < char_len(&indent) {
            indent = indent.chars().take(before).collect();
        }
        let eol = self.line_ending();
        self.insert_text(&format!("{eol}{indent}"), EditKind::Other);
    }

    /// The document's line ending, as its first line break has it: "\r\n"
    /// for a CRLF file (Enter and paste keep it one), else "\n".
    pub(crate) fn line_ending(&self) -> &'static str {
        let rope = self.doc.rope();
        if rope.len_lines() < 2 {
            return "\n";
        }
        // The first line's end: where the second line starts.
        let end = rope.line_to_char(1);
        let crlf = end >= 2 && rope.char(end - 1) == '\n' && rope.char(end - 2) == '\r';
        if crlf {
            "\r\n"
        } else {
            "\n"
        }
    }

    /// `text` (its line breaks `\n`) with the document's line ending: a
    /// CRLF file gets its own for every break (pastes, snippets).
    pub(crate) fn in_line_ending(&self, text: String) -> String {
        if self.line_ending() == "\r\n" {
            text.replace('\n', "\r\n")
        } else {
            text
        }
    }

    /// True when Tab should insert a tab character: in files whose format
    /// wants tabs (Makefiles, Go) and documents already indented with tabs.
    pub fn indents_with_tabs(&self) -> bool {
        if matches!(self.language.as_str(), "go" | "makefile") {
            return true;
        }
        let named_make = self
            .file
            .as_ref()
            .and_then(|f| f.file_name())
            .and_then(|n| n.to_str())
            .is_some_and(|n| {
                matches!(n, "Makefile" | "makefile" | "GNUmakefile") || n.ends_with(".mk")
            });
        if named_make {
            return true;
        }
        let rope = self.doc.rope();
        let (mut tabs, mut spaces) = (0, 0);
        for line in 0..tl::line_count(rope).min(INDENT_SAMPLE_LINES) {
            match tl::line_content(rope, line).chars().next() {
                Some('\t') => tabs += 1,
                Some(' ') => spaces += 1,
                _ => {}
            }
        }
        tabs > spaces
    }

    /// Tab: with a selection over several lines, indents them all;
    /// otherwise inserts a tab in documents that use tabs, else spaces up
    /// to the next tab stop.
    pub fn tab(&mut self) {
        if self.selection_spans_lines() {
            return self.indent_lines(true);
        }
        let text = if self.indents_with_tabs() {
            "\t".to_owned()
        } else {
            let (start, _) = self.selection().unwrap_or((self.caret, self.caret));
            let col = self.column_of(start);
            " ".repeat(TAB_WIDTH - col % TAB_WIDTH)
        };
        self.insert_text(&text, EditKind::Other);
        self.history.break_group();
    }

    /// Shift-Tab: removes one level of indentation from the caret's line or
    /// every selected line.
    pub fn dedent(&mut self) {
        self.indent_lines(false);
    }

    fn selection_spans_lines(&self) -> bool {
        self.selection().is_some_and(|(s, e)| {
            let rope = self.doc.rope();
            tl::line_of(rope, s) != tl::line_of(rope, e)
        })
    }

    /// Adds (or removes) one indentation level at the start of each line the
    /// selection touches (or the caret's line), as one edit.
    fn indent_lines(&mut self, add: bool) {
        let rope = self.doc.rope();
        let (start, end) = self.selection().unwrap_or((self.caret, self.caret));
        let first = tl::line_of(rope, start);
        let mut last = tl::line_of(rope, end);
        // A selection ending at a line's start does not take that line.
        if last > first && end == tl::line_start(rope, last) {
            last -= 1;
        }
        let unit = if self.indents_with_tabs() {
            "\t".to_owned()
        } else {
            " ".repeat(TAB_WIDTH)
        };
        let mut op = Operation::new();
        let mut at = 0;
        for line in first..=last {
            let line_start = tl::line_start(rope, line);
            let remove = if add {
                0
            } else {
                let content = tl::line_content(rope, line);
                match content.chars().next() {
                    Some('\t') => 1,
                    _ => content
                        .chars()
                        .take(TAB_WIDTH)
                        .take_while(|c| *c == ' ')
                        .count(),
                }
            };
            if add && tl::line_len(rope, line) == 0 && first != last {
                continue; // blank lines stay blank
            }
            op.retain(line_start - at);
            if add {
                op.insert(&unit);
            } else {
                op.delete(remove);
            }
            at = line_start + remove;
        }
        op.retain(rope.len_chars() - at);
        // Where the caret and the selection's end were, by line: one at a
        // line's start stays there, so an indented selection still covers
        // whole lines (the line numbers do not change).
        let at_line_start = |p: usize| {
            let line = tl::line_of(rope, p);
            (p == tl::line_start(rope, line)).then_some(line)
        };
        let (caret, anchor) = (self.caret, self.anchor);
        let marks = (at_line_start(caret), anchor.map(at_line_start));
        if self.edit(&op, EditKind::Other) {
            self.history.break_group();
            let rope = self.doc.rope();
            let place = |p: usize, start_line: Option<usize>| match start_line {
                Some(line) => tl::line_start(rope, line),
                None => op.transform_index(p),
            };
            self.caret = place(caret, marks.0);
            self.anchor = anchor.map(|a| place(a, marks.1.flatten()));
        }
    }

    /// Backspace: the selection, or the glyph before the caret (a run of
    /// them is one undo step).
    pub fn backspace(&mut self) {
        if let Some((start, end)) = self.selection() {
            return self.replace(start, end, "", EditKind::Other);
        }
        if self.caret > 0 {
            let start = tl::prev_boundary(self.doc.rope(), self.caret);
            self.replace(start, self.caret, "", EditKind::DeleteBack);
        }
    }

    /// Delete: the selection, or the glyph after the caret (a run of them
    /// is one undo step).
    pub fn delete(&mut self) {
        if let Some((start, end)) = self.selection() {
            return self.replace(start, end, "", EditKind::Other);
        }
        let end = tl::next_boundary(self.doc.rope(), self.caret);
        if end > self.caret {
            self.replace(self.caret, end, "", EditKind::DeleteForward);
        }
    }

    /// Ctrl-Backspace: the selection, or back to the previous word's start.
    pub fn delete_word_back(&mut self) {
        if let Some((start, end)) = self.selection() {
            return self.replace(start, end, "", EditKind::Other);
        }
        let start = words::prev_word_start(self.doc.rope(), self.caret);
        if start < self.caret {
            self.replace(start, self.caret, "", EditKind::Other);
        }
    }

    /// Ctrl-Delete: the selection, or up to the next word's end.
    pub fn delete_word_forward(&mut self) {
        if let Some((start, end)) = self.selection() {
            return self.replace(start, end, "", EditKind::Other);
        }
        let end = words::next_word_end(self.doc.rope(), self.caret);
        if end > self.caret {
            self.replace(self.caret, end, "", EditKind::Other);
        }
    }

    /// Pasted text (bracketed paste or the internal clipboard) as one edit.
    pub fn paste(&mut self, text: &str) {
        // Terminals send line breaks in pastes as CR.
        let text = self.in_line_ending(text.replace("\r\n", "\n").replace('\r', "\n"));
        if !text.is_empty() {
            self.insert_text(&text, EditKind::Other);
        }
        self.history.break_group();
    }

    /// Copies the selection to the internal clipboard and, through the
    /// terminal, the system's.
    pub fn copy(&mut self) {
        match self.selection() {
            Some((start, end)) => {
                self.clipboard = self.doc.rope().slice(start..end).to_string();
                self.effects.push(Effect::Copy(self.clipboard.clone()));
                self.notice = Some(format!("Copied {} chars", end - start));
            }
            None => self.notice = Some("Nothing selected (Shift+arrows select)".into()),
        }
    }

    /// Cuts the selection to the internal clipboard and, through the
    /// terminal, the system's.
    pub fn cut(&mut self) {
        if let Some((start, end)) = self.selection() {
            if self.refuse_read_only() {
                return;
            }
            self.clipboard = self.doc.rope().slice(start..end).to_string();
            self.effects.push(Effect::Copy(self.clipboard.clone()));
            self.replace(start, end, "", EditKind::Other);
        } else {
            self.notice = Some("Nothing selected (Shift+arrows select)".into());
        }
    }

    /// Pastes the internal clipboard.
    pub fn paste_clipboard(&mut self) {
        let text = self.clipboard.clone();
        self.paste(&text);
    }

    /// Undoes this user's last edit (never a colleague's).
    pub fn undo(&mut self) {
        if self.refuse_read_only() {
            return;
        }
        let Some(op) = self.history.pop_undo() else {
            self.notice = Some("Nothing to undo".into());
            return;
        };
        let Ok(redo) = op.invert(self.doc.rope()) else {
            self.history.clear();
            return;
        };
        if self.apply_own(&op) {
            self.history.push_redo(redo);
            self.place_after_change(&op);
        }
    }

    /// Redoes the last undone edit.
    pub fn redo(&mut self) {
        if self.refuse_read_only() {
            return;
        }
        let Some(op) = self.history.pop_redo() else {
            self.notice = Some("Nothing to redo".into());
            return;
        };
        let Ok(undo) = op.invert(self.doc.rope()) else {
            self.history.clear();
            return;
        };
        if self.apply_own(&op) {
            self.history.push_undo(undo);
            self.place_after_change(&op);
        }
    }

    /// Puts the caret at the end of the last change `op` made.
    fn place_after_change(&mut self, op: &Operation) {
        let mut pos = 0;
        let mut mark = None;
        for c in op.components() {
            match c {
                Component::Retain(n) => pos += n,
                Component::Insert(s) => {
                    pos += char_len(s);
                    mark = Some(pos);
                }
                Component::Delete(_) => mark = Some(pos),
            }
        }
        self.caret = mark.unwrap_or_else(|| op.transform_index(self.caret));
        self.anchor = None;
        self.goal_col = None;
        self.follow_caret = true;
    }
}
