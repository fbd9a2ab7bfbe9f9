//! The completion popup: Ctrl-Space, or Tab right after a word, lists the
//! completions of the word before the caret near it, from the words of the
//! open documents and the language's keywords and snippets, ranked by the
//! engine the server's `POST /rooms/autocomplete` uses
//! ([`collab_protocol::complete`]). Up/Down (Ctrl-P/Ctrl-N) choose,
//! Enter or Tab accepts, Esc closes; typing narrows the list, and the popup
//! closes when nothing matches or the caret leaves the word (any other key
//! closes it and then does its job).
//!
//! Accepting replaces the word typed with the candidate as one edit, so one
//! undo brings the word back. A snippet's placeholder is selected, so
//! typing replaces it.

use collab_protocol::complete::{self, Candidate, Source, Words};
use collab_protocol::words;
use collab_protocol::Operation;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::Editor;
use crate::core::text_layout as tl;
use crate::core::undo::EditKind;

/// Chars of the caret's line before it that completion looks at.
const LINE_CHARS: usize = 4096;
/// Chars read from all the other open documents together (each gives at
/// most [`complete::OTHER_CHARS`]), so opening the popup stays quick with
/// many large buffers open.
const OTHERS_CHARS: usize = 1_000_000;

/// The open popup.
#[derive(Clone, Debug)]
pub struct CompletionPopup {
    /// The open documents' words, collected when the popup opened.
    words: Words,
    /// The word before the caret that a candidate replaces.
    pub prefix: String,
    /// Best first; never empty while the popup is open.
    pub candidates: Vec<Candidate>,
    /// The chosen candidate.
    pub selected: usize,
}

/// The popup and what Esc left behind.
#[derive(Clone, Debug, Default)]
pub(crate) struct CompletionState {
    popup: Option<CompletionPopup>,
    /// Esc closed a popup with the caret here and the text at this version:
    /// Tab there indents instead of opening it again.
    dismissed: Option<(usize, u64)>,
}

impl Editor {
    /// The open completion popup.
    pub fn completion(&self) -> Option<&CompletionPopup> {
        self.completion.popup.as_ref()
    }

    /// Ctrl-Space: opens the popup, or says there is nothing to complete.
    pub fn open_completion(&mut self) {
        if self.refuse_read_only() || !self.doc.is_ready() {
            return;
        }
        if !self.try_open_completion() {
            self.notice = Some("No completions here".into());
        }
    }

    /// Tab: opens the popup right after a word that has completions (true);
    /// false when Tab should indent as usual (a selection, no word before
    /// the caret, nothing to offer, or Esc closed the popup right here).
    pub(crate) fn tab_completes(&mut self) -> bool {
        if self.read_only || !self.doc.is_ready() || self.selection().is_some() {
            return false;
        }
        if self.completion.dismissed == Some((self.caret, self.version())) {
            return false;
        }
        // Right after a word by the rules completion and word motions share.
        let line = self.line_before_caret();
        let after_word = words::pieces(&line)
            .last()
            .is_some_and(|(_, p)| words::is_word(p));
        after_word && self.try_open_completion()
    }

    fn try_open_completion(&mut self) -> bool {
        let words = self.open_documents_words();
        let found = complete::complete(&self.language, &self.line_before_caret(), &words);
        if found.candidates.is_empty() {
            self.completion.popup = None;
            return false;
        }
        self.completion.popup = Some(CompletionPopup {
            words,
            prefix: found.prefix,
            candidates: found.candidates,
            selected: 0,
        });
        true
    }

    /// The words of the active document around the caret and of the other
    /// open ones.
    fn open_documents_words(&self) -> Words {
        let rope = self.doc.rope();
        let from = self.caret.saturating_sub(complete::NEAR_CHARS);
        let to = (self.caret + complete::NEAR_CHARS).min(rope.len_chars());
        let near = rope.slice(from..to).to_string();
        let mut budget = OTHERS_CHARS;
        let others: Vec<String> = self
            .parked
            .iter()
            .filter_map(|b| {
                let text = b.text();
                let n = text.len_chars().min(complete::OTHER_CHARS).min(budget);
                budget -= n;
                (n > 0).then(|| text.slice(..n).to_string())
            })
            .collect();
        let mut sources = vec![Source {
            text: &near,
            cursor: Some(self.caret - from),
        }];
        sources.extend(others.iter().map(|t| Source {
            text: t,
            cursor: None,
        }));
        Words::collect(&sources)
    }

    /// The caret's line up to the caret (at most its last [`LINE_CHARS`]).
    fn line_before_caret(&self) -> String {
        let rope = self.doc.rope();
        let start = tl::line_start(rope, tl::line_of(rope, self.caret));
        let start = start.max(self.caret.saturating_sub(LINE_CHARS));
        rope.slice(start..self.caret).to_string()
    }

    /// Closes the popup, if open.
    pub(crate) fn close_completion(&mut self) {
        self.completion.popup = None;
    }

    /// A key while the popup is open: true when the popup took it. Typing
    /// and Backspace edit as usual and the popup follows
    /// ([`Editor::completion_follow`]); other keys close it and do their
    /// job.
    pub(crate) fn completion_key(&mut self, key: &KeyEvent) -> bool {
        let Some(popup) = self.completion.popup.as_mut() else {
            return false;
        };
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let last = popup.candidates.len().saturating_sub(1);
        match key.code {
            KeyCode::Up => popup.selected = popup.selected.saturating_sub(1),
            KeyCode::Down => popup.selected = (popup.selected + 1).min(last),
            KeyCode::Char('p' | 'P') if ctrl => popup.selected = popup.selected.saturating_sub(1),
            KeyCode::Char('n' | 'N') if ctrl => popup.selected = (popup.selected + 1).min(last),
            // Ctrl-Space again (some terminals send it as NUL).
            KeyCode::Char(' ') if ctrl => {}
            KeyCode::Null => {}
            KeyCode::Enter | KeyCode::Tab if !alt && !ctrl => self.accept_completion(),
            KeyCode::Esc => {
                self.completion.popup = None;
                self.completion.dismissed = Some((self.caret, self.version()));
            }
            KeyCode::Char(_) if !ctrl && !alt => return false,
            KeyCode::Backspace if !ctrl && !alt => return false,
            _ => {
                self.completion.popup = None;
                return false;
            }
        }
        true
    }

    /// After a key went to the text with the popup open: the candidates for
    /// the word now before the caret, or the popup closes when there is no
    /// word or nothing matches.
    pub(crate) fn completion_follow(&mut self) {
        let Some(popup) = self.completion.popup.take() else {
            return;
        };
        let found = complete::complete(&self.language, &self.line_before_caret(), &popup.words);
        if found.prefix.is_empty() || found.candidates.is_empty() {
            return;
        }
        self.completion.popup = Some(CompletionPopup {
            prefix: found.prefix,
            candidates: found.candidates,
            selected: 0,
            ..popup
        });
    }

    /// Replaces the word before the caret with the chosen candidate, as one
    /// edit (one undo step), and closes the popup.
    fn accept_completion(&mut self) {
        let Some(popup) = self.completion.popup.take() else {
            return;
        };
        let Some(chosen) = popup.candidates.get(popup.selected) else {
            return;
        };
        let rope = self.doc.rope();
        let prefix_len = popup.prefix.chars().count();
        // A colleague's edit may have changed the text since the last key.
        let start = self.caret.saturating_sub(prefix_len);
        if rope.slice(start..self.caret) != popup.prefix.as_str() {
            self.notice = Some("The word changed; completion closed".into());
            return;
        }
        // A CRLF file gets its own line ending in a snippet, as in a paste
        // (the caret's offset grows by the CRs before it).
        let text = self.in_line_ending(chosen.text.clone());
        let crs_before = if text.len() > chosen.text.len() {
            let before = chosen.text.chars().take(chosen.caret);
            before.filter(|c| *c == '\n').count()
        } else {
            0
        };
        let offset = chosen.caret + crs_before;
        let Ok(op) = Operation::replace(rope.len_chars(), start, self.caret, &text) else {
            return;
        };
        // The word typed stays a step of its own: one undo restores it.
        self.history.break_group();
        if self.edit(&op, EditKind::Other) {
            self.history.break_group();
            let caret = start + offset;
            if chosen.select > 0 {
                self.anchor = Some(caret);
                self.caret = caret + chosen.select;
            } else {
                self.caret = caret;
                self.anchor = None;
            }
        }
    }
}
