//! The editor's state and every command it understands, with no I/O: the
//! terminal shell feeds it key events and server messages and carries out
//! the [`Effect`]s it asks for (send a message, write a file, quit). That
//! makes the whole editor testable without a terminal or a network.
//!
//! Every local edit is one [`Operation::replace`] on the document's current
//! length, applied locally and handed to the protocol's `ClientSync`; remote
//! operations come back transformed and move the caret, the selection, the
//! colleagues' carets and the undo history along with the text.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use collab_protocol::{char_len, ClientMessage, Component, Operation, ServerMessage, UserInfo};
use ropey::Rope;

use super::doc_sync::{InitOutcome, SyncedDoc};
use super::presence::{parse_color, Presence};
use super::text_layout::{self as tl, TAB_WIDTH};
use super::undo::{EditKind, UndoHistory};

/// Carets are sent at most this often; the latest position wins.
pub const CURSOR_THROTTLE: Duration = Duration::from_millis(50);

/// Something the shell must do for the editor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Send this on the current connection (dropped when offline: the
    /// sync state machine resends edits after reconnecting).
    Send(ClientMessage),
    /// Write the document to the local file, then call
    /// [`Editor::saved`] or [`Editor::save_failed`].
    Save {
        /// Where.
        path: PathBuf,
        /// What.
        text: String,
    },
    /// Keep edits the server could not take back after a reconnect.
    SaveRecovery {
        /// The local document as it was, with the unsent edits.
        text: String,
    },
    /// The server's messages no longer fit the local state: reconnect
    /// without `since`, taking the server's document.
    ResyncFresh,
    /// Leave the editor.
    Quit,
}

/// The state of the link to the server, as the status bar shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnState {
    /// First connection in progress.
    Connecting,
    /// Live.
    Connected,
    /// Dropped; the next attempt is at `retry_at`.
    Reconnecting {
        /// When the next attempt starts.
        retry_at: Instant,
    },
    /// Gone for good (e.g. the room no longer exists).
    Offline(String),
}

/// A question on the prompt line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prompt {
    /// "Save as:" with the path typed so far.
    SaveAs(String),
    /// "Quit without saving?"
    ConfirmQuit,
}

/// This user as the server knows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Stable id.
    pub user_id: String,
    /// Display name (as the server cleaned it).
    pub name: String,
    /// Assigned color.
    pub rgb: (u8, u8, u8),
}

/// The text area's place on screen, set by the view on every draw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Viewport {
    /// Screen column of the first text cell.
    pub x: u16,
    /// Screen row of the first text line.
    pub y: u16,
    /// Text cells per row.
    pub width: u16,
    /// Text rows.
    pub height: u16,
}

/// The whole editor.
#[derive(Debug)]
pub struct Editor {
    room: String,
    requested_name: String,
    pub(crate) doc: SyncedDoc,
    caret: usize,
    anchor: Option<usize>,
    /// Column up/down movement aims for (kept across short lines).
    goal_col: Option<usize>,
    /// First visible line.
    pub(crate) top: usize,
    /// First visible display column.
    pub(crate) left: usize,
    /// Scroll so the caret is visible at the next draw.
    follow_caret: bool,
    viewport: Viewport,
    clipboard: String,
    history: UndoHistory,
    presence: Presence,
    me: Option<Identity>,
    language: String,
    conn: ConnState,
    /// The text last loaded or saved, for the unsaved marker.
    saved: Option<Rope>,
    file: Option<PathBuf>,
    prompt: Option<Prompt>,
    notice: Option<String>,
    help: bool,
    effects: Vec<Effect>,
    cursor_sent: Option<(u64, u64, Option<u64>)>,
    cursor_sent_at: Option<Instant>,
    followed: Option<String>,
}

impl Editor {
    /// An editor for `room`, writing to `file` on save when given.
    pub fn new(room: &str, name: &str, file: Option<PathBuf>) -> Self {
        Self {
            room: room.to_owned(),
            requested_name: name.to_owned(),
            doc: SyncedDoc::new(),
            caret: 0,
            anchor: None,
            goal_col: None,
            top: 0,
            left: 0,
            follow_caret: true,
            viewport: Viewport::default(),
            clipboard: String::new(),
            history: UndoHistory::new(),
            presence: Presence::new(),
            me: None,
            language: String::new(),
            conn: ConnState::Connecting,
            saved: None,
            file,
            prompt: None,
            notice: None,
            help: false,
            effects: Vec::new(),
            cursor_sent: None,
            cursor_sent_at: None,
            followed: None,
        }
    }

    // ----- what the view and the shell read -----

    /// The document.
    pub fn text(&self) -> &Rope {
        self.doc.rope()
    }

    /// The room id.
    pub fn room(&self) -> &str {
        &self.room
    }

    /// Caret offset.
    pub fn caret(&self) -> usize {
        self.caret
    }

    /// The selection as an ordered non-empty range, if any.
    pub fn selection(&self) -> Option<(usize, usize)> {
        let anchor = self.anchor?;
        (anchor != self.caret).then(|| (anchor.min(self.caret), anchor.max(self.caret)))
    }

    /// The other users.
    pub fn presence(&self) -> &Presence {
        &self.presence
    }

    /// This user, once the server said who it is.
    pub fn me(&self) -> Option<&Identity> {
        self.me.as_ref()
    }

    /// The name asked for on the command line.
    pub fn requested_name(&self) -> &str {
        &self.requested_name
    }

    /// The room's language hint.
    pub fn language(&self) -> &str {
        &self.language
    }

    /// Connection state.
    pub fn conn(&self) -> &ConnState {
        &self.conn
    }

    /// The server revision, once connected.
    pub fn revision(&self) -> Option<u64> {
        self.doc.revision()
    }

    /// True when the document differs from what was last loaded or saved.
    pub fn is_dirty(&self) -> bool {
        self.saved.as_ref().is_some_and(|s| s != self.doc.rope())
    }

    /// True when edits wait for the server's acknowledgement.
    pub fn has_unsent(&self) -> bool {
        !self.doc.is_synchronized()
    }

    /// The local file Ctrl-S writes.
    pub fn file(&self) -> Option<&PathBuf> {
        self.file.as_ref()
    }

    /// The open prompt.
    pub fn prompt(&self) -> Option<&Prompt> {
        self.prompt.as_ref()
    }

    /// The last notice for the message line.
    pub fn notice(&self) -> Option<&str> {
        self.notice.as_deref()
    }

    /// True while the help overlay is shown.
    pub fn help_visible(&self) -> bool {
        self.help
    }

    /// 1-based line and column (display column) of the caret.
    pub fn line_col(&self) -> (usize, usize) {
        let rope = self.doc.rope();
        (
            tl::line_of(rope, self.caret) + 1,
            tl::column_of(rope, self.caret) + 1,
        )
    }

    /// Where the text area was last drawn.
    pub fn viewport(&self) -> Viewport {
        self.viewport
    }

    /// Removes and returns the pending effects, in order.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    // ----- what the shell tells the editor -----

    /// Records where the text area is and scrolls to the caret if it moved.
    pub fn set_viewport(&mut self, viewport: Viewport) {
        self.viewport = viewport;
        let lines = tl::line_count(self.doc.rope());
        self.top = self.top.min(lines.saturating_sub(1));
        if self.follow_caret {
            self.scroll_to_caret();
            self.follow_caret = false;
        }
    }

    fn scroll_to_caret(&mut self) {
        let rope = self.doc.rope();
        let height = usize::from(self.viewport.height.max(1));
        let width = usize::from(self.viewport.width.max(1));
        let line = tl::line_of(rope, self.caret);
        if line < self.top {
            self.top = line;
        } else if line >= self.top + height {
            self.top = line + 1 - height;
        }
        let col = tl::column_of(rope, self.caret);
        // The cell under the caret (two for a wide char) must be visible.
        let glyph_width = tl::layout_line(tl::line_content(rope, line))
            .iter()
            .find(|g| g.col == col)
            .map_or(1, |g| g.width);
        if col < self.left {
            self.left = col;
        } else if col + glyph_width > self.left + width {
            self.left = col + glyph_width - width;
        }
    }

    /// Sets the connection state.
    pub fn set_conn(&mut self, conn: ConnState) {
        self.conn = conn;
    }

    /// Shows a message on the message line.
    pub fn set_notice(&mut self, notice: impl Into<String>) {
        self.notice = Some(notice.into());
    }

    /// The file was written: it is the new baseline for the unsaved marker.
    pub fn saved(&mut self, path: PathBuf, text: &str) {
        self.saved = Some(Rope::from_str(text));
        self.notice = Some(format!(
            "Saved {} lines to {}",
            tl::line_count(&Rope::from_str(text)),
            path.display()
        ));
        self.file = Some(path);
    }

    /// Writing the file failed.
    pub fn save_failed(&mut self, path: &std::path::Path, error: &str) {
        self.notice = Some(format!("Cannot save {}: {error}", path.display()));
    }

    /// The caret to announce, if it changed since last sent and the
    /// throttle allows; at most one every [`CURSOR_THROTTLE`].
    ///
    /// The protocol wants offsets in the server's document at the revision
    /// sent. The local document is that document plus the unacknowledged
    /// edits, so the offsets are mapped back through those edits (a caret
    /// inside text the server has not seen yet goes to where that text is
    /// being inserted). The server then carries them to its newest revision.
    pub fn cursor_message(&mut self, now: Instant) -> Option<ClientMessage> {
        if self.conn != ConnState::Connected {
            return None;
        }
        let revision = self.doc.revision()?;
        let to_server = |pos: usize| self.doc.to_server_offset(pos) as u64;
        let cursor = to_server(self.caret);
        let anchor = self.selection().and(self.anchor).map(to_server);
        let key = (revision, cursor, anchor);
        if self.cursor_sent == Some(key) {
            return None;
        }
        if self
            .cursor_sent_at
            .is_some_and(|at| now.duration_since(at) < CURSOR_THROTTLE)
        {
            return None;
        }
        self.cursor_sent = Some(key);
        self.cursor_sent_at = Some(now);
        Some(ClientMessage::CursorMove {
            revision,
            cursor,
            anchor,
        })
    }

    /// Handles a message from the server.
    pub fn on_server(&mut self, msg: ServerMessage) {
        match msg {
            ServerMessage::Init {
                user_id,
                name,
                color,
                revision,
                code,
                language,
                users,
                missed,
                ..
            } => {
                self.me = Some(Identity {
                    user_id,
                    name,
                    rgb: parse_color(&color),
                });
                self.language = language;
                self.on_init(revision, &code, missed.as_deref(), &users);
            }
            ServerMessage::CodeUpdate(c) => match self.doc.remote(c.revision, &c.operation) {
                Ok(local) => self.after_foreign(&local),
                Err(e) => self.lost_step(&e.to_string()),
            },
            ServerMessage::Ack { revision, seq } => match self.doc.ack(revision, seq) {
                Ok(Some(next)) => self.effects.push(Effect::Send(next)),
                Ok(None) => {}
                Err(e) => self.lost_step(&e.to_string()),
            },
            ServerMessage::CursorMove {
                user_id,
                revision,
                cursor,
                anchor,
            } => {
                if let Some(cursor) = self.doc.from_server_offset(revision, cursor) {
                    let anchor = anchor.and_then(|a| self.doc.from_server_offset(revision, a));
                    self.presence.move_caret(&user_id, cursor, anchor);
                }
            }
            ServerMessage::UserJoined { user } => {
                let revision = self.doc.revision().unwrap_or_default();
                let doc = &self.doc;
                self.presence
                    .join(&user, |o| doc.from_server_offset(revision, o));
            }
            ServerMessage::UserLeft { user_id } => self.presence.leave(&user_id),
            ServerMessage::Error { code, message, seq } => {
                self.notice = Some(format!("Server: {message} ({code})"));
                if code == collab_protocol::error_code::DOCUMENT_TOO_LARGE && seq.is_some() {
                    // The refused edit will never be acknowledged: take the
                    // server's document again; what was unsent goes to a
                    // recovery file (the `Replaced` path of a fresh init).
                    self.effects.push(Effect::ResyncFresh);
                }
            }
            ServerMessage::Pong => {}
        }
    }

    fn on_init(
        &mut self,
        revision: u64,
        code: &str,
        missed: Option<&[collab_protocol::CommittedOp]>,
        users: &[UserInfo],
    ) {
        match self.doc.on_init(revision, code, missed) {
            InitOutcome::Fresh => {
                self.saved = Some(self.doc.rope().clone());
                self.caret = 0;
                self.anchor = None;
                self.follow_caret = true;
            }
            InitOutcome::Rebased { applied, send } => {
                for op in &applied {
                    self.after_foreign(op);
                }
                self.effects.extend(send.into_iter().map(Effect::Send));
            }
            InitOutcome::Replaced { lost } => {
                self.history.clear();
                let len = self.doc.rope().len_chars();
                self.caret = tl::snap(self.doc.rope(), self.caret.min(len), false);
                self.anchor = self.anchor.map(|a| a.min(len));
                if let Some(text) = lost {
                    self.effects.push(Effect::SaveRecovery { text });
                }
            }
        }
        let doc = &self.doc;
        self.presence
            .reset(users, |o| doc.from_server_offset(revision, o));
        self.conn = ConnState::Connected;
        // A new connection has not heard our caret yet.
        self.cursor_sent = None;
    }

    /// The server sent something that does not fit: start over from its
    /// document (unsent edits are saved by the `Replaced` path).
    fn lost_step(&mut self, why: &str) {
        self.notice = Some(format!(
            "Out of step with the server ({why}); resynchronizing"
        ));
        self.effects.push(Effect::ResyncFresh);
    }

    /// Moves everything that points into the document over an operation
    /// applied by someone else.
    fn after_foreign(&mut self, op: &Operation) {
        let rope = self.doc.rope();
        self.caret = tl::snap(rope, op.transform_index(self.caret), false);
        self.anchor = self.anchor.map(|a| op.transform_index(a));
        self.presence.transform(op);
        self.history.transform(op);
    }

    // ----- editing -----

    /// Replaces `start..end` with `text` as one operation; the caret goes
    /// after the new text.
    fn replace(&mut self, start: usize, end: usize, text: &str, kind: EditKind) {
        if !self.doc.is_ready() {
            self.notice = Some("Not connected yet: wait for the document to load".into());
            return;
        }
        let rope = self.doc.rope();
        let Ok(op) = Operation::replace(rope.len_chars(), start, end, text) else {
            return;
        };
        if op.is_noop() {
            return;
        }
        let Ok(inverse) = op.invert(rope) else {
            return;
        };
        if !self.apply_own(&op) {
            return;
        }
        self.history.record(inverse, kind);
        self.caret = start + char_len(text);
        self.anchor = None;
        self.goal_col = None;
        self.follow_caret = true;
    }

    /// Applies an operation of this user's; false when it did not fit.
    fn apply_own(&mut self, op: &Operation) -> bool {
        match self.doc.local(op) {
            Ok(msg) => {
                self.effects.extend(msg.map(Effect::Send));
                self.presence.transform(op);
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

    /// Types one char.
    pub fn type_char(&mut self, c: char) {
        let typing = !c.is_whitespace() && self.selection().is_none();
        let kind = if typing {
            EditKind::Typing
        } else {
            EditKind::Other
        };
        self.insert_text(&c.to_string(), kind);
        if !typing {
            self.history.break_group();
        }
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
        self.insert_text(&format!("\n{indent}"), EditKind::Other);
    }

    /// Tab: spaces up to the next tab stop (the document keeps tabs it
    /// already has; typing never adds new ones, so code indents the same for
    /// everyone whatever their tab settings).
    pub fn tab(&mut self) {
        let (start, _) = self.selection().unwrap_or((self.caret, self.caret));
        let col = tl::column_of(self.doc.rope(), start);
        let spaces = " ".repeat(TAB_WIDTH - col % TAB_WIDTH);
        self.insert_text(&spaces, EditKind::Other);
    }

    /// Backspace: the selection, or the glyph before the caret.
    pub fn backspace(&mut self) {
        if let Some((start, end)) = self.selection() {
            return self.replace(start, end, "", EditKind::Other);
        }
        if self.caret > 0 {
            let start = tl::prev_boundary(self.doc.rope(), self.caret);
            self.replace(start, self.caret, "", EditKind::Other);
        }
    }

    /// Delete: the selection, or the glyph after the caret.
    pub fn delete(&mut self) {
        if let Some((start, end)) = self.selection() {
            return self.replace(start, end, "", EditKind::Other);
        }
        let end = tl::next_boundary(self.doc.rope(), self.caret);
        if end > self.caret {
            self.replace(self.caret, end, "", EditKind::Other);
        }
    }

    /// Pasted text (bracketed paste or the internal clipboard) as one edit.
    pub fn paste(&mut self, text: &str) {
        // Terminals send line breaks in pastes as CR.
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        if !text.is_empty() {
            self.insert_text(&text, EditKind::Other);
        }
        self.history.break_group();
    }

    /// Copies the selection to the internal clipboard.
    pub fn copy(&mut self) {
        match self.selection() {
            Some((start, end)) => {
                self.clipboard = self.doc.rope().slice(start..end).to_string();
                self.notice = Some(format!("Copied {} chars", end - start));
            }
            None => self.notice = Some("Nothing selected (Shift+arrows select)".into()),
        }
    }

    /// Cuts the selection to the internal clipboard.
    pub fn cut(&mut self) {
        if let Some((start, end)) = self.selection() {
            self.clipboard = self.doc.rope().slice(start..end).to_string();
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

    // ----- moving -----

    /// Moves the caret to `pos`, extending the selection or dropping it.
    pub fn move_to(&mut self, pos: usize, extend: bool) {
        let pos = pos.min(self.doc.rope().len_chars());
        if extend {
            self.anchor.get_or_insert(self.caret);
        } else {
            self.anchor = None;
        }
        self.caret = pos;
        self.history.break_group();
        self.follow_caret = true;
    }

    fn move_horizontally(&mut self, pos: usize, collapse_to: Option<usize>, extend: bool) {
        self.goal_col = None;
        match (extend, collapse_to) {
            (false, Some(edge)) => self.move_to(edge, false),
            _ => self.move_to(pos, extend),
        }
    }

    /// Left arrow.
    pub fn left(&mut self, extend: bool) {
        let pos = tl::prev_boundary(self.doc.rope(), self.caret);
        let edge = self.selection().map(|s| s.0);
        self.move_horizontally(pos, edge, extend);
    }

    /// Right arrow.
    pub fn right(&mut self, extend: bool) {
        let pos = tl::next_boundary(self.doc.rope(), self.caret);
        let edge = self.selection().map(|s| s.1);
        self.move_horizontally(pos, edge, extend);
    }

    /// Up (negative) or down by `lines`, aiming at the goal column.
    pub fn vertical(&mut self, lines: isize, extend: bool) {
        let rope = self.doc.rope();
        let line = tl::line_of(rope, self.caret);
        let last = tl::line_count(rope).saturating_sub(1);
        let goal = self
            .goal_col
            .unwrap_or_else(|| tl::column_of(rope, self.caret));
        let target = line.saturating_add_signed(lines).min(last);
        let pos = if lines < 0 && line == 0 {
            0
        } else if lines > 0 && line == last {
            rope.len_chars()
        } else {
            tl::offset_at_column(rope, target, goal)
        };
        self.move_to(pos, extend);
        self.goal_col = Some(goal);
    }

    /// Page up/down: a screenful, and the view with it.
    pub fn page(&mut self, down: bool, extend: bool) {
        let page = usize::from(self.viewport.height.max(2)) - 1;
        let lines = tl::line_count(self.doc.rope());
        if down {
            self.top = (self.top + page).min(lines.saturating_sub(1));
            self.vertical(page as isize, extend);
        } else {
            self.top = self.top.saturating_sub(page);
            self.vertical(-(page as isize), extend);
        }
    }

    /// Home: the first non-blank of the line, or column 0 when already there.
    pub fn home(&mut self, extend: bool) {
        let rope = self.doc.rope();
        let line = tl::line_of(rope, self.caret);
        let start = tl::line_start(rope, line);
        let first_text = start + char_len(&tl::indentation(rope, line));
        let pos = if self.caret == first_text {
            start
        } else {
            first_text
        };
        self.goal_col = None;
        self.move_to(pos, extend);
    }

    /// End: the end of the line.
    pub fn end(&mut self, extend: bool) {
        let rope = self.doc.rope();
        let pos = tl::line_end(rope, tl::line_of(rope, self.caret));
        self.goal_col = None;
        self.move_to(pos, extend);
    }

    /// Ctrl-Home / Ctrl-End.
    pub fn doc_edge(&mut self, end: bool, extend: bool) {
        let pos = if end { self.doc.rope().len_chars() } else { 0 };
        self.goal_col = None;
        self.move_to(pos, extend);
    }

    /// Ctrl-A.
    pub fn select_all(&mut self) {
        self.anchor = Some(0);
        self.caret = self.doc.rope().len_chars();
        self.follow_caret = true;
    }

    /// Drops the selection.
    pub fn clear_selection(&mut self) {
        self.anchor = None;
    }

    /// The caret to the screen cell (`column`, `row`), e.g. a mouse click.
    pub fn click(&mut self, column: u16, row: u16, extend: bool) {
        let v = self.viewport;
        if row < v.y || row >= v.y + v.height {
            return;
        }
        let rope = self.doc.rope();
        let line = self.top + usize::from(row - v.y);
        let pos = if line >= tl::line_count(rope) {
            rope.len_chars()
        } else {
            let col = self.left + usize::from(column.saturating_sub(v.x));
            tl::offset_at_column(rope, line, col)
        };
        self.goal_col = None;
        self.move_to(pos, extend);
    }

    /// Scrolls the view by `lines` without moving the caret.
    pub fn scroll(&mut self, lines: isize) {
        let max = tl::line_count(self.doc.rope()).saturating_sub(1);
        self.top = self.top.saturating_add_signed(lines).min(max);
    }

    /// Moves the caret to the next colleague's caret (cycling).
    pub fn jump_to_next_user(&mut self) {
        let next = self
            .presence
            .next_after(self.followed.as_deref())
            .map(|u| (u.user_id.clone(), u.name.clone(), u.cursor));
        match next {
            Some((id, name, Some(cursor))) => {
                self.followed = Some(id);
                self.goal_col = None;
                self.move_to(cursor, false);
                self.notice = Some(format!("At {name}'s caret"));
            }
            _ => self.notice = Some("No colleague's caret to jump to".into()),
        }
    }

    // ----- commands -----

    /// Ctrl-S: save to the file, or ask for one.
    pub fn save(&mut self) {
        match &self.file {
            Some(path) => self.effects.push(Effect::Save {
                path: path.clone(),
                text: self.doc.rope().to_string(),
            }),
            None => self.prompt = Some(Prompt::SaveAs(String::new())),
        }
    }

    /// Ctrl-Q: quit, asking first when something would be lost.
    pub fn quit(&mut self) {
        if self.is_dirty() || self.has_unsent() {
            self.prompt = Some(Prompt::ConfirmQuit);
        } else {
            self.effects.push(Effect::Quit);
        }
    }

    /// F1: shows or hides the help overlay.
    pub fn toggle_help(&mut self) {
        self.help = !self.help;
    }

    /// Hides the help overlay.
    pub fn hide_help(&mut self) {
        self.help = false;
    }

    /// Clears the message line.
    pub fn clear_notice(&mut self) {
        self.notice = None;
    }

    /// Types into the open prompt; returns false when no prompt is open.
    pub fn prompt_key(&mut self, key: PromptKey) -> bool {
        let Some(prompt) = self.prompt.take() else {
            return false;
        };
        self.prompt = match (prompt, key) {
            (_, PromptKey::Cancel) => None,
            (Prompt::SaveAs(mut s), PromptKey::Char(c)) => {
                s.push(c);
                Some(Prompt::SaveAs(s))
            }
            (Prompt::SaveAs(mut s), PromptKey::Backspace) => {
                s.pop();
                Some(Prompt::SaveAs(s))
            }
            (Prompt::SaveAs(s), PromptKey::Enter) => {
                let path = s.trim();
                if !path.is_empty() {
                    self.file = Some(PathBuf::from(path));
                    self.save();
                }
                None
            }
            (Prompt::ConfirmQuit, PromptKey::Char('y' | 'Y') | PromptKey::Confirm) => {
                self.effects.push(Effect::Quit);
                None
            }
            (Prompt::ConfirmQuit, PromptKey::Char('n' | 'N')) => None,
            (p, _) => Some(p),
        };
        true
    }
}

/// What a key means while a prompt is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptKey {
    /// A typed char.
    Char(char),
    /// Backspace.
    Backspace,
    /// Enter.
    Enter,
    /// Esc, Ctrl-C.
    Cancel,
    /// The prompt's own key pressed again (Ctrl-Q at "quit?").
    Confirm,
}
