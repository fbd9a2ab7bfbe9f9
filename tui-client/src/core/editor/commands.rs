//! The editor's commands around the text: saving (with "save as", and a
//! question before overwriting a file another program changed), quitting,
//! the prompts that ask, help, the share commands, the users panel and
//! retrying the connection.

use std::path::{Path, PathBuf};

use super::{ConnState, Editor, Effect, FileState, Prompt};
use crate::core::text_layout as tl;
use crate::language;

/// A line of text being typed into a prompt, with its cursor. An offered
/// text (a default file name) starts selected: typing replaces it, the
/// arrows keep it to edit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineInput {
    text: String,
    /// The cursor, in chars.
    cursor: usize,
    /// The whole text is selected (offered, not yet touched).
    selected: bool,
}

impl LineInput {
    /// `text` with the cursor at its end.
    pub fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            cursor: text.chars().count(),
            selected: false,
        }
    }

    /// `text` offered: selected, so the first char typed replaces it.
    pub fn offered(text: &str) -> Self {
        Self {
            selected: !text.is_empty(),
            ..Self::new(text)
        }
    }

    /// What was typed.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The cursor, in chars from the start.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Moves the cursor (tests build expected prompts with it).
    #[cfg(test)]
    pub(crate) fn set_cursor_for_tests(&mut self, cursor: usize) {
        self.cursor = cursor;
    }

    /// True while the offered text is selected.
    pub fn is_selected(&self) -> bool {
        self.selected
    }

    fn byte_at(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map_or(self.text.len(), |(i, _)| i)
    }

    pub(crate) fn key(&mut self, key: PromptKey) {
        if std::mem::take(&mut self.selected) {
            match key {
                // Typing or deleting replaces the offer.
                PromptKey::Char(_) | PromptKey::Backspace | PromptKey::Delete => {
                    self.text.clear();
                    self.cursor = 0;
                    if !matches!(key, PromptKey::Char(_)) {
                        return;
                    }
                }
                // Moving keeps it, to be edited.
                _ => {}
            }
        }
        let len = self.text.chars().count();
        match key {
            PromptKey::Char(c) if !c.is_control() => {
                let at = self.byte_at(self.cursor);
                self.text.insert(at, c);
                self.cursor += 1;
            }
            PromptKey::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                let at = self.byte_at(self.cursor);
                self.text.remove(at);
            }
            PromptKey::Delete if self.cursor < len => {
                let at = self.byte_at(self.cursor);
                self.text.remove(at);
            }
            PromptKey::Left => self.cursor = self.cursor.saturating_sub(1),
            PromptKey::Right => self.cursor = (self.cursor + 1).min(len),
            PromptKey::Home => self.cursor = 0,
            PromptKey::End => self.cursor = len,
            _ => {}
        }
    }
}

/// What a key means while a prompt is open. Nothing typed while a prompt is
/// open ever reaches the document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptKey {
    /// A typed char.
    Char(char),
    /// Backspace.
    Backspace,
    /// Delete.
    Delete,
    /// Cursor left.
    Left,
    /// Cursor right.
    Right,
    /// Cursor to the start.
    Home,
    /// Cursor to the end.
    End,
    /// Enter.
    Enter,
    /// Esc, Ctrl-C.
    Cancel,
    /// The prompt's own key pressed again (Ctrl-Q at "quit?").
    Confirm,
    /// F3: the next match.
    Next,
    /// Shift-F3: the previous match.
    Prev,
    /// Alt-R: regular expression or plain text.
    ToggleRegex,
    /// Alt-A: replace every match.
    ReplaceAll,
    /// Ctrl-F again: close the search where it is.
    Accept,
}

impl Editor {
    /// Ctrl-S: save to the file, or ask for one.
    pub fn save(&mut self) {
        if self.refuse_mirrored_save() {
            return;
        }
        match self.file.clone() {
            Some(path) => {
                let expect = self.disk.clone();
                self.request_save(path, expect);
            }
            None => self.save_as(),
        }
    }

    /// Save as: asks for a path, offering the current file or a new name
    /// with the room's language's extension.
    pub fn save_as(&mut self) {
        if self.refuse_mirrored_save() {
            return;
        }
        let offer = match &self.file {
            Some(f) => f.display().to_string(),
            None => format!("untitled.{}", language::extension(&self.language)),
        };
        self.prompt = Some(Prompt::SaveAs(LineInput::offered(&offer)));
    }

    /// True when a disk mirror keeps the room's files (`collab share`,
    /// `join --dir`): says so instead of saving. A file saved into the
    /// shared folder would be shared by the mirror as a new one.
    fn refuse_mirrored_save(&mut self) -> bool {
        if self.project.mirrored {
            self.notice = Some(
                "The files are kept on disk by the disk mirror: every change is written there already"
                    .into(),
            );
        }
        self.project.mirrored
    }

    fn request_save(&mut self, path: PathBuf, expect: Option<FileState>) {
        self.effects.push(Effect::Save {
            path,
            text: self.doc.rope().to_string(),
            expect,
        });
    }

    /// The file was written (it now looks like `state` on disk): it is the
    /// new baseline for the unsaved marker and the file Ctrl-S writes.
    pub fn saved(&mut self, path: PathBuf, text: &str, state: FileState) {
        let rope = ropey::Rope::from_str(text);
        self.notice = Some(format!(
            "Saved {} lines to {}",
            tl::line_count(&rope),
            path.display()
        ));
        self.saved = Some(rope);
        self.dirty_memo.set(None);
        self.file = Some(path);
        self.disk = Some(state);
        self.sync_language();
    }

    /// Writing the file failed: nothing changes but the question comes back,
    /// with the path to correct.
    pub fn save_failed(&mut self, path: &Path, error: &str) {
        self.notice = Some(format!("Cannot save {}: {error}", path.display()));
        self.prompt = Some(Prompt::SaveAs(LineInput::new(&path.display().to_string())));
    }

    /// The file is not as the editor left it (another program changed it,
    /// or a new path names an existing file): ask before overwriting.
    pub fn save_conflict(&mut self, path: PathBuf, expected: Option<&FileState>) {
        let exists = matches!(expected, Some(FileState::Missing));
        self.prompt = Some(Prompt::ConfirmOverwrite { path, exists });
    }

    /// Ctrl-Q: quit, asking first when something would be lost: changes not
    /// saved to the local file, or edits the server has not acknowledged.
    pub fn quit(&mut self) {
        if self.is_dirty() || self.has_unsent() {
            self.prompt = Some(Prompt::ConfirmQuit);
        } else {
            self.effects.push(Effect::Quit);
        }
    }

    /// F1: shows the help overlay, its next page when it has more than
    /// fits, then hides it.
    pub fn toggle_help(&mut self) {
        if !self.help {
            self.help = true;
            self.help_page = 0;
        } else if self.help_page + 1 < self.help_pages.get() {
            self.help_page += 1;
        } else {
            self.help = false;
        }
    }

    /// Hides the help overlay.
    pub fn hide_help(&mut self) {
        self.help = false;
    }

    /// Shows or hides the users panel.
    pub fn toggle_users_panel(&mut self) {
        self.users_panel = !self.users_panel;
    }

    /// Clears the message line.
    pub fn clear_notice(&mut self) {
        self.notice = None;
    }

    /// The commands that bring someone into this room, as (what it allows,
    /// command): editing first, then watching, as far as this user knows
    /// them (a viewer only knows the watching one).
    pub fn share_commands(&self) -> Vec<(&'static str, String)> {
        let cmd = |id: &str| format!("collab join {id}{}", self.server_arg);
        let mut out = Vec::new();
        if self.read_only {
            out.push(("watch", cmd(&self.room)));
        } else {
            out.push(("edit", cmd(&self.room)));
            if let Some(view) = &self.read_only_id {
                out.push(("watch", cmd(view)));
            }
        }
        out
    }

    /// Copies the first share command to the clipboards (this editor's and,
    /// through the terminal, the system's).
    pub fn copy_share_command(&mut self) {
        // The shell's join commands (`collab share`) come first.
        let given = self.project.join_commands.first().cloned();
        let Some(command) = given.or_else(|| self.share_commands().into_iter().next().map(|c| c.1))
        else {
            return;
        };
        self.clipboard = command.clone();
        self.notice = Some(format!("Copied: {command}"));
        self.effects.push(Effect::Copy(command));
    }

    /// A key was pressed while the link is down and waiting to retry: the
    /// user is waiting, so retry now.
    pub fn retry_if_waiting(&mut self) {
        if matches!(self.conn, ConnState::Reconnecting { .. }) {
            self.conn = ConnState::Connecting;
            self.effects.push(Effect::RetryNow);
        }
    }

    /// Handles a key while a prompt is open; returns false when none is.
    pub fn prompt_key(&mut self, key: PromptKey) -> bool {
        let Some(prompt) = self.prompt.take() else {
            return false;
        };
        if matches!(prompt, Prompt::Find { .. } | Prompt::ReplaceWith(_)) {
            self.prompt = self.find_prompt_key(prompt, key);
            return true;
        }
        if let Prompt::GoToLine(input) = prompt {
            self.prompt = self.go_to_line_key(input, key);
            return true;
        }
        self.prompt = match (prompt, key) {
            (_, PromptKey::Cancel) => None,
            (Prompt::SaveAs(input), PromptKey::Enter) => {
                let path = input.text().trim();
                if path.is_empty() {
                    Some(Prompt::SaveAs(input))
                } else {
                    let path = PathBuf::from(path);
                    // The bound file must be as it was; a new one must not
                    // exist yet (else: ask).
                    let expect = if self.file.as_ref() == Some(&path) {
                        self.disk.clone()
                    } else {
                        Some(FileState::Missing)
                    };
                    self.request_save(path, expect);
                    None
                }
            }
            (Prompt::SaveAs(mut input), key) => {
                input.key(key);
                Some(Prompt::SaveAs(input))
            }
            (Prompt::NewFile(input), PromptKey::Enter) => {
                (!self.create_file(input.text())).then_some(Prompt::NewFile(input))
            }
            (Prompt::NewFile(mut input), key) => {
                input.key(key);
                Some(Prompt::NewFile(input))
            }
            (Prompt::RenameFile { doc, input }, PromptKey::Enter) => {
                (!self.rename_file(&doc, input.text())).then_some(Prompt::RenameFile { doc, input })
            }
            (Prompt::RenameFile { doc, mut input }, key) => {
                input.key(key);
                Some(Prompt::RenameFile { doc, input })
            }
            (Prompt::ConfirmDelete { doc, .. }, PromptKey::Char('y' | 'Y')) => {
                self.delete_file(&doc);
                None
            }
            (Prompt::ConfirmDelete { .. }, PromptKey::Char('n' | 'N')) => None,
            (Prompt::ConfirmQuit, PromptKey::Char('y' | 'Y') | PromptKey::Confirm) => {
                self.effects.push(Effect::Quit);
                None
            }
            (Prompt::ConfirmQuit, PromptKey::Char('n' | 'N')) => None,
            (Prompt::ConfirmOverwrite { path, .. }, PromptKey::Char('y' | 'Y')) => {
                self.request_save(path, None);
                None
            }
            (Prompt::ConfirmOverwrite { path, .. }, PromptKey::Char('n' | 'N')) => {
                self.notice = Some(format!("Not saved: {} left as it is", path.display()));
                None
            }
            (p, _) => Some(p),
        };
        true
    }
}
