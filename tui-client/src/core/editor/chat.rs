//! The editor's side of the chat: keys while the chat pane has them,
//! sending a message (with the `path:line` it mentions as its reference),
//! saying "typing", and jumping to a message's reference.

use collab_protocol::{ChatMessage, ClientMessage};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::{Editor, Effect, PromptKey};
use crate::core::chat::find_reference;

impl Editor {
    /// Shows the chat pane and gives it the keys; again: hides it.
    pub fn toggle_chat(&mut self) {
        self.chat.toggle();
    }

    /// The chat pane's state.
    pub fn chat(&self) -> &crate::core::chat::Chat {
        &self.chat
    }

    /// A key while the chat pane has the keys: the input line edits,
    /// Enter sends (or, with nothing typed and a message picked, jumps to
    /// its reference), Up/Down pick a message, Esc gives the keys back to
    /// the text. Returns false for a key the chat does not take (the
    /// editor handles it: F-keys, Ctrl-Q).
    pub(crate) fn chat_key(&mut self, key: &KeyEvent) -> bool {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if let Some(k) = crate::core::keymap::line_edit_key(key) {
            let typed = matches!(k, PromptKey::Char(_));
            self.chat.input.key(k);
            if typed {
                let now = self.clock.unwrap_or_else(std::time::Instant::now);
                if self.chat.typing_due(now) {
                    self.effects.push(Effect::Send(ClientMessage::Typing));
                }
            }
            return true;
        }
        match key.code {
            KeyCode::Enter => {
                if self.chat.input.text().trim().is_empty() {
                    self.jump_to_picked();
                } else {
                    self.send_chat();
                }
            }
            KeyCode::Esc => self.chat.unfocus(),
            KeyCode::Up => self.chat.pick(true),
            KeyCode::Down => self.chat.pick(false),
            // Ctrl-C would copy in the text; here it leaves the chat.
            KeyCode::Char('c') if ctrl => self.chat.unfocus(),
            _ => return false,
        }
        true
    }

    /// Sends what is typed, with the first `path:line` (or `:line`,
    /// `line N`, meaning the file in view) it mentions as its reference.
    fn send_chat(&mut self) {
        if self.conn != super::ConnState::Connected {
            self.notice = Some("Offline: the message stays in the chat's input".into());
            return;
        }
        let text = self.chat.take_input();
        let here = self.doc_id.clone();
        let files = &self.project.files;
        let reference = find_reference(&text, here.as_deref(), |path| {
            files
                .iter()
                .find(|(_, f)| f.path == path)
                .map(|(doc, _)| doc.clone())
        });
        let (doc, line) = match reference {
            // A single-document client names no document: the server reads
            // a bare line as the main document's.
            Some((doc, line)) => (doc.filter(|_| !files.is_empty()), Some(line)),
            None => (None, None),
        };
        self.effects
            .push(Effect::Send(ClientMessage::Chat { text, doc, line }));
    }

    /// Jumps to the picked message's reference, if it has one.
    fn jump_to_picked(&mut self) {
        let Some(m) = self.chat.picked().and_then(|i| self.chat.messages().get(i)) else {
            return;
        };
        let m = m.clone();
        self.jump_to_reference(&m);
    }

    /// Opens the document a message refers to and puts the caret on its
    /// line (once the document is open, if it has to be opened first).
    pub fn jump_to_reference(&mut self, m: &ChatMessage) {
        let Some(line) = m.line else {
            self.notice = Some("That message names no line".into());
            return;
        };
        let line = usize::try_from(line).unwrap_or(usize::MAX);
        self.chat.unfocus();
        match m.doc.as_deref() {
            Some(doc) if self.doc_id.as_deref() != Some(doc) => {
                self.open_doc(doc);
                if self.doc_id.as_deref() != Some(doc) {
                    return; // Gone: open_doc said so.
                }
                if self.opening {
                    self.chat.pending_jump = Some((doc.to_owned(), line));
                    return;
                }
                self.go_to(line, 1);
            }
            _ => self.go_to(line, 1),
        }
    }

    /// The active document was just opened: a jump waiting for it lands.
    pub(super) fn land_pending_jump(&mut self) {
        let Some((doc, line)) = self.chat.pending_jump.take() else {
            return;
        };
        if self.doc_id.as_deref() == Some(doc.as_str()) {
            self.go_to(line, 1);
        } else {
            self.chat.pending_jump = Some((doc, line));
        }
    }

    /// A chat message arrived: kept, counted unread unless being read, and
    /// (when the pane is closed) shown on the message line.
    pub(super) fn chat_arrived(&mut self, m: ChatMessage) {
        let mine = self.me.as_ref().map_or("", |me| me.user_id.as_str());
        let from_me = m.user_id == mine;
        if !self.chat.focused() && !from_me {
            let first_line = m.text.lines().next().unwrap_or_default();
            self.notice = Some(format!("{}: {first_line}  (F9: chat)", m.name));
        }
        let mine = mine.to_owned();
        self.chat.receive(m, &mine);
    }
}
