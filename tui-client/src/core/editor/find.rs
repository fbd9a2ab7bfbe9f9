//! Search, replace and go-to-line: the prompts that move the caret by what
//! the text says. The current match is the selection, so a colleague's edit
//! moves it like any selection; the other matches are found again on each
//! frame for the visible lines only (`core::search`), so they are always
//! those of the current text.

use std::ops::Range;

use collab_protocol::Operation;

use super::{Editor, Prompt};
use crate::core::editor::commands::{LineInput, PromptKey};
use crate::core::search::Search;
use crate::core::text_layout as tl;
use crate::core::undo::EditKind;

/// Where the caret and the view were when a search started: Esc goes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    caret: usize,
    anchor: Option<usize>,
    top: usize,
    left: usize,
}

/// Selected text longer than this is not offered as the query.
const OFFER_CHARS: usize = 200;

impl Editor {
    /// Ctrl-F: opens the search prompt, offering the selection (one line)
    /// or the last query.
    pub fn find(&mut self) {
        self.open_find(false);
    }

    /// Ctrl-R: search, then what to put instead.
    pub fn find_replace(&mut self) {
        if self.refuse_read_only() {
            return;
        }
        self.open_find(true);
    }

    fn open_find(&mut self, replace: bool) {
        let offer = self
            .selection()
            .filter(|(s, e)| e - s <= OFFER_CHARS)
            .map(|(s, e)| self.doc.rope().slice(s..e).to_string())
            .filter(|t| !t.contains('\n'))
            .or_else(|| self.search.as_ref().map(|s| s.query().to_owned()))
            .unwrap_or_default();
        self.search_origin = Some(Origin {
            caret: self.caret,
            anchor: self.anchor,
            top: self.top,
            left: self.left,
        });
        self.search_status = None;
        self.search_shown = true;
        self.prompt = Some(Prompt::Find {
            input: LineInput::offered(&offer),
            replace,
        });
        self.search_changed(&offer);
    }

    /// The query changed: the first match from where the search started.
    fn search_changed(&mut self, query: &str) {
        let search = Search::new(query, self.search_regex);
        let from = self
            .search_origin
            .map_or(self.caret, |o| o.anchor.map_or(o.caret, |a| a.min(o.caret)));
        self.search_status = search.error().map(|e| format!("bad regex: {e}"));
        let found = search.next(self.doc.rope(), from);
        self.search = Some(search);
        match found {
            Some((m, wrapped)) => self.select_match(m, wrapped),
            None => {
                self.back_to_origin();
                if !query.is_empty() && self.search_status.is_none() {
                    self.search_status = Some("no match".into());
                }
            }
        }
    }

    fn select_match(&mut self, m: Range<usize>, wrapped: bool) {
        self.anchor = Some(m.start);
        self.caret = m.end;
        self.goal_col = None;
        self.follow_caret = true;
        self.history.break_group();
        self.search_status = wrapped.then(|| "wrapped around".into());
    }

    fn back_to_origin(&mut self) {
        if let Some(o) = self.search_origin {
            self.caret = o.caret.min(self.doc.rope().len_chars());
            self.anchor = o.anchor.map(|a| a.min(self.doc.rope().len_chars()));
            self.top = o.top;
            self.left = o.left;
        }
    }

    /// F3: the next match of the last search (opens the prompt when there
    /// was none).
    pub fn find_next(&mut self) {
        self.find_step(true);
    }

    /// Shift-F3: the previous match.
    pub fn find_prev(&mut self) {
        self.find_step(false);
    }

    fn find_step(&mut self, forward: bool) {
        let Some(search) = self.search.as_ref().filter(|s| !s.query().is_empty()) else {
            return self.find();
        };
        let (start, end) = self.selection().unwrap_or((self.caret, self.caret));
        let rope = self.doc.rope();
        let found = if forward {
            search.next(rope, end)
        } else {
            search.prev(rope, start)
        };
        self.search_shown = true;
        match found {
            Some((m, wrapped)) => {
                self.select_match(m, wrapped);
                if wrapped && self.prompt.is_none() {
                    self.notice = Some("Search wrapped around".into());
                }
            }
            None => {
                let why = format!("No match for {}", search.query());
                self.search_status = Some("no match".into());
                if self.prompt.is_none() {
                    self.notice = Some(why);
                }
            }
        }
    }

    /// Esc outside a prompt: the matches stop being shown.
    pub fn hide_search(&mut self) {
        self.search_shown = false;
    }

    /// The search's state for the prompt line: regex or not, and what went
    /// wrong or happened ("no match", "wrapped around").
    pub fn search_info(&self) -> (bool, Option<&str>) {
        (self.search_regex, self.search_status.as_deref())
    }

    /// Matches of the shown search within the visible char ranges (each
    /// within one line), for the view.
    pub fn search_matches(&self, visible: &[Range<usize>]) -> Vec<Range<usize>> {
        match &self.search {
            Some(s) if self.search_shown => s.matches_in(self.doc.rope(), visible),
            _ => Vec::new(),
        }
    }

    /// True while the prompt is a search's (keys it does not know end the
    /// search where it is and then do their job).
    pub fn in_search_prompt(&self) -> bool {
        matches!(
            self.prompt,
            Some(Prompt::Find { .. } | Prompt::ReplaceWith(_))
        )
    }

    /// Handles a key of the search and replace prompts.
    pub(crate) fn find_prompt_key(&mut self, prompt: Prompt, key: PromptKey) -> Option<Prompt> {
        match (prompt, key) {
            (Prompt::Find { .. }, PromptKey::Cancel) => {
                self.back_to_origin();
                self.search_shown = false;
                self.follow_caret = true;
                None
            }
            (Prompt::ReplaceWith(_), PromptKey::Cancel) | (_, PromptKey::Accept) => None,
            (p, PromptKey::Next) => {
                self.find_next();
                Some(p)
            }
            (p, PromptKey::Prev) => {
                self.find_prev();
                Some(p)
            }
            (Prompt::Find { input, replace }, PromptKey::ToggleRegex) => {
                self.search_regex = !self.search_regex;
                self.search_changed(input.text());
                Some(Prompt::Find { input, replace })
            }
            (
                Prompt::Find {
                    input,
                    replace: false,
                },
                PromptKey::Enter,
            ) => {
                self.find_next();
                Some(Prompt::Find {
                    input,
                    replace: false,
                })
            }
            (
                Prompt::Find {
                    input,
                    replace: true,
                },
                PromptKey::Enter,
            ) => {
                if input.text().is_empty() {
                    return Some(Prompt::Find {
                        input,
                        replace: true,
                    });
                }
                self.search_status = None;
                Some(Prompt::ReplaceWith(LineInput::offered(&self.replace_with)))
            }
            (Prompt::Find { mut input, replace }, key) => {
                let before = input.text().to_owned();
                input.key(key);
                if input.text() != before {
                    let query = input.text().to_owned();
                    self.search_changed(&query);
                }
                Some(Prompt::Find { input, replace })
            }
            (Prompt::ReplaceWith(input), PromptKey::Enter) => {
                self.replace_with = input.text().to_owned();
                self.replace_one();
                Some(Prompt::ReplaceWith(input))
            }
            (Prompt::ReplaceWith(input), PromptKey::ReplaceAll) => {
                self.replace_with = input.text().to_owned();
                self.replace_all();
                None
            }
            (Prompt::ReplaceWith(mut input), key) => {
                input.key(key);
                Some(Prompt::ReplaceWith(input))
            }
            (p, _) => Some(p),
        }
    }

    /// Replaces the selected match (one undo step) and selects the next.
    fn replace_one(&mut self) {
        let Some(search) = self.search.clone() else {
            return;
        };
        let rope = self.doc.rope();
        let is_match = self
            .selection()
            .is_some_and(|(s, e)| search.next(rope, s).is_some_and(|(m, _)| m == (s..e)));
        if is_match {
            let (s, e) = self.selection().unwrap_or_default();
            let with = search.replacement(rope, s..e, &self.replace_with);
            self.insert_text(&with, EditKind::Other);
            self.history.break_group();
        }
        self.find_next();
    }

    /// Replaces every match in the document as one operation: one message
    /// to the server, one undo step.
    fn replace_all(&mut self) {
        let Some(search) = self.search.clone() else {
            return;
        };
        let rope = self.doc.rope();
        let matches = search.all(rope);
        if matches.is_empty() {
            self.notice = Some(format!("No match for {}", search.query()));
            return;
        }
        let mut op = Operation::new();
        let mut at = 0;
        for m in &matches {
            let with = search.replacement(rope, m.clone(), &self.replace_with);
            op.retain(m.start - at);
            op.delete(m.end - m.start);
            op.insert(&with);
            at = m.end;
        }
        op.retain(rope.len_chars() - at);
        let caret = self.caret;
        if self.edit(&op, EditKind::Other) {
            self.history.break_group();
            self.caret = op.transform_index(caret);
            self.anchor = None;
            self.notice = Some(format!(
                "Replaced {} match{}",
                matches.len(),
                if matches.len() == 1 { "" } else { "es" }
            ));
        }
    }

    /// Ctrl-L: asks for `line[:column]`.
    pub fn go_to_line_prompt(&mut self) {
        self.prompt = Some(Prompt::GoToLine(LineInput::new("")));
    }

    /// Handles a key of the go-to-line prompt.
    pub(crate) fn go_to_line_key(&mut self, input: LineInput, key: PromptKey) -> Option<Prompt> {
        match key {
            PromptKey::Cancel => None,
            PromptKey::Enter => {
                match parse_line_col(input.text()) {
                    Some((line, col)) => self.go_to(line, col),
                    None => {
                        self.notice = Some(format!(
                            "Not a line number: {:?} (line or line:column)",
                            input.text()
                        ))
                    }
                }
                None
            }
            PromptKey::Char(c) if !(c.is_ascii_digit() || c == ':') => {
                Some(Prompt::GoToLine(input))
            }
            key => {
                let mut input = input;
                input.key(key);
                Some(Prompt::GoToLine(input))
            }
        }
    }

    /// Moves the caret to 1-based `line` and display column `col`, clamped
    /// to the document; the line is shown in the middle of the screen when
    /// it was off it.
    pub fn go_to(&mut self, line: usize, col: usize) {
        let rope = self.doc.rope();
        let line = line.clamp(1, tl::line_count(rope)) - 1;
        let pos = self.offset_at_column(line, col.max(1) - 1);
        self.goal_col = None;
        self.move_to(pos, false);
        let height = usize::from(self.viewport.height.max(1));
        if line < self.top || line >= self.top + height {
            self.top = line.saturating_sub(height / 2);
        }
    }
}

/// `line` or `line:column`, 1-based.
fn parse_line_col(text: &str) -> Option<(usize, usize)> {
    let mut parts = text.trim().splitn(2, ':');
    let line = parts.next()?.trim().parse().ok()?;
    let col = match parts.next() {
        Some(c) if !c.trim().is_empty() => c.trim().parse().ok()?,
        _ => 1,
    };
    Some((line, col))
}

#[cfg(test)]
mod tests {
    #[test]
    fn line_and_column_parse() {
        use super::parse_line_col as p;
        assert_eq!(p("12"), Some((12, 1)));
        assert_eq!(p(" 3:7 "), Some((3, 7)));
        assert_eq!(p("3:"), Some((3, 1)));
        assert_eq!(p("x"), None);
        assert_eq!(p(""), None);
    }
}
