//! The editor's state and every command it understands, with no I/O: the
//! terminal shell feeds it key events and server messages and carries out
//! the [`Effect`]s it asks for (send a message, write a file, quit). That
//! makes the whole editor testable without a terminal or a network.
//!
//! Every local edit is one [`Operation`] on the document's current length,
//! applied locally and handed to the protocol's `ClientSync`; remote
//! operations come back transformed and move the caret, the selection, the
//! colleagues' carets, the view and the undo history along with the text.
//!
//! This file holds the state, what the server says and where the view is
//! (and the parse tree highlighting follows); editing, moving, the commands
//! (save, quit, prompts) and search, replace and go-to-line live in the
//! submodules.

mod buffer;
mod chat;
mod commands;
mod completion;
mod edit;
mod find;
mod follow;
mod motion;
mod owner_menu;
mod picker;
mod project;

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use collab_protocol::{ClientMessage, Operation, ServerMessage, UserInfo};
use ropey::Rope;

use super::columns::ColumnIndex;
use super::doc_sync::{InitOutcome, SyncedDoc};
use super::presence::{parse_color, Presence};
use super::search::Search;
use super::syntax::{HighlightSpan, Lang, Syntax};
use super::text_layout as tl;
use super::undo::UndoHistory;
use collab_protocol::Unacknowledged;

pub use commands::{LineInput, PromptKey};
pub use completion::CompletionPopup;
pub use owner_menu::{OwnerItem, OwnerMenu};
pub use picker::{PickItem, Picker, PickerKind};
pub use project::{ClickArea, ClickTarget, FileMark};

/// Carets are sent at most this often; the latest position wins.
pub const CURSOR_THROTTLE: Duration = Duration::from_millis(50);

/// The one-line hint for a key that would edit a read-only room.
pub const READ_ONLY_HINT: &str =
    "Read-only: this link lets you watch, not edit (ask for the editing link)";

/// Something the shell must do for the editor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Send this on the current connection (dropped when offline: the
    /// sync state machine resends edits after reconnecting).
    Send(ClientMessage),
    /// Write the document to a local file, then call [`Editor::saved`],
    /// [`Editor::save_failed`] or [`Editor::save_conflict`].
    Save {
        /// Where.
        path: PathBuf,
        /// What.
        text: String,
        /// Write only if the file is still in this state (as last loaded or
        /// saved, or missing for a new file); `None` overwrites whatever is
        /// there (the user said so).
        expect: Option<FileState>,
    },
    /// Keep the local document in a recovery file and say why.
    SaveRecovery {
        /// The local document as it was.
        text: String,
        /// Why it is kept.
        why: Recovery,
    },
    /// The server's messages no longer fit the local state: reconnect
    /// without `since`, taking the server's document.
    ResyncFresh,
    /// The user is waiting for the link: try to reconnect now instead of at
    /// the end of the backoff.
    RetryNow,
    /// Put this text on the system clipboard (through the terminal).
    Copy(String),
    /// Leave the editor.
    Quit,
}

/// Why the editor keeps a copy of the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Someone deleted the file (this path) while it was open here.
    Deleted(String),
    /// A reconnect could not merge the unsent edits.
    Unmerged,
    /// The server's store went back to an older state: edits it had
    /// acknowledged may be gone from the room.
    HistoryReset,
}

/// A local file as the shell last saw it, to notice another program's
/// changes before overwriting them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileState {
    /// No file there.
    Missing,
    /// A file of this size, last modified then.
    Present {
        /// Bytes.
        len: u64,
        /// Modification time, where the file system keeps one.
        modified: Option<SystemTime>,
    },
}

/// The state of the link to the server, as the status bar shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnState {
    /// Connection in progress (the first, or one the user asked for).
    Connecting,
    /// Live.
    Connected,
    /// Dropped; the next attempt is at `retry_at`.
    Reconnecting {
        /// When the next attempt starts.
        retry_at: Instant,
        /// Why the link is down, e.g. "connection refused".
        reason: String,
    },
    /// Gone for good (e.g. the room no longer exists).
    Offline(String),
}

/// A question on the prompt line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prompt {
    /// "Save as:" with the path being typed.
    SaveAs(LineInput),
    /// "Quit without saving?"
    ConfirmQuit,
    /// The file changed on disk (or exists) since it was loaded or saved:
    /// overwrite it?
    ConfirmOverwrite {
        /// The file.
        path: PathBuf,
        /// True when the file did not exist as far as the editor knew.
        exists: bool,
    },
    /// "Find:" (Ctrl-F), or "Replace:" (Ctrl-R) before it asks for the
    /// replacement.
    Find {
        /// The query being typed.
        input: LineInput,
        /// Ctrl-R: Enter goes on to ask what to put instead.
        replace: bool,
    },
    /// "Replace with:" and the replacement being typed.
    ReplaceWith(LineInput),
    /// "Go to line:" (Ctrl-L), `line[:column]`.
    GoToLine(LineInput),
    /// "New file:" (Alt-N), the path being typed.
    NewFile(LineInput),
    /// "Rename to:" (Alt-M) for this document.
    RenameFile {
        /// The document.
        doc: String,
        /// The new path being typed.
        input: LineInput,
    },
    /// "Delete PATH?" (Alt-K).
    ConfirmDelete {
        /// The document.
        doc: String,
        /// Its path.
        path: String,
    },
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

/// Where the view was, in text terms, before a remote edit moved the text.
#[derive(Clone, Copy, Debug)]
struct ViewMark {
    /// The char offset the first visible line started at.
    top_start: usize,
    /// Whether the caret was on screen.
    caret_visible: bool,
}

/// The whole editor.
#[derive(Debug)]
pub struct Editor {
    room: String,
    requested_name: String,
    /// Appended to share commands: `" --server URL"` for a server other
    /// than the default, else empty.
    server_arg: String,
    /// The active buffer's document id (`None` until an `init` names one).
    pub(crate) doc_id: Option<String>,
    /// The active buffer's `open` is not answered yet: its edits wait.
    pub(crate) opening: bool,
    /// The other open buffers (see `buffer`'s module docs).
    pub(crate) parked: Vec<buffer::Buffer>,
    /// The room's files, the main document, recency and the project UI.
    pub(crate) project: project::Project,
    pub(crate) doc: SyncedDoc,
    /// Counts changes to the document (local, remote, a new `init`).
    version: u64,
    /// Columns on long lines, kept across frames (the view asks through
    /// `&self`, hence the cell).
    columns: RefCell<ColumnIndex>,
    /// The parse tree for highlighting, when the document's language has a
    /// grammar (the view asks through `&self`, hence the cell).
    syntax: RefCell<Option<Syntax>>,
    /// No syntax highlighting (the config file's `theme = "plain"`).
    plain: bool,
    /// Keys the config file binds to actions, looked at before the
    /// defaults.
    pub(crate) key_overrides: Vec<(super::keymap::KeyChord, super::keymap::Action)>,
    /// `is_dirty`'s answer and the version it was for.
    dirty_memo: Cell<Option<(u64, bool)>>,
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
    /// The last search (F3 repeats it), and whether its matches are shown.
    search: Option<Search>,
    search_shown: bool,
    /// Search for regular expressions (Alt-R in the prompt toggles).
    search_regex: bool,
    /// Where the open search started, for Esc.
    search_origin: Option<find::Origin>,
    /// "no match", "wrapped around", a regex error: for the prompt line.
    search_status: Option<String>,
    /// The last replacement typed.
    replace_with: String,
    /// The completion popup (Ctrl-Space).
    completion: completion::CompletionState,
    history: UndoHistory,
    /// When the key being handled arrived, as the shell said
    /// ([`Editor::handle_event_at`]); the core reads no clock.
    pub(crate) clock: Option<Instant>,
    presence: Presence,
    me: Option<Identity>,
    language: String,
    /// This connection may not edit (a viewer's link, or the owner made
    /// the room read-only).
    read_only: bool,
    /// This connection holds the room's owner token.
    pub(crate) owner: bool,
    /// The owner made the room read-only for everyone else (as the last
    /// `mode` said).
    room_read_only: bool,
    /// The owner's menu (Alt-O), while open.
    owner_menu: Option<OwnerMenu>,
    /// The room's read-only id, when the server told an editor.
    read_only_id: Option<String>,
    conn: ConnState,
    /// The text last loaded or saved, for the unsaved marker.
    saved: Option<Rope>,
    file: Option<PathBuf>,
    /// The file as it was when last loaded or saved.
    disk: Option<FileState>,
    prompt: Option<Prompt>,
    notice: Option<String>,
    help: bool,
    /// The help's page, and how many the view found it needs (the view
    /// tells through `&self`, hence the cell).
    help_page: usize,
    help_pages: Cell<usize>,
    users_panel: bool,
    /// The room's chat and its pane.
    pub(crate) chat: crate::core::chat::Chat,
    effects: Vec<Effect>,
    cursor_sent: Option<(Option<String>, u64, u64, Option<u64>)>,
    cursor_sent_at: Option<Instant>,
    followed: Option<String>,
    /// The left button went down in the text and is not up yet: whether it
    /// dragged since (a drag selects and keeps following; a plain click
    /// ends it, on the button's release).
    pub(crate) text_press: Option<bool>,
    /// See [`Editor::journal_mark`].
    sync_changes: u64,
}

impl Editor {
    /// An editor for `room`, writing to `file` on save when given.
    pub fn new(room: &str, name: &str, file: Option<PathBuf>) -> Self {
        let mut editor = Self {
            room: room.to_owned(),
            requested_name: name.to_owned(),
            server_arg: String::new(),
            doc_id: None,
            opening: false,
            parked: Vec::new(),
            project: project::Project::default(),
            doc: SyncedDoc::new(),
            version: 0,
            columns: RefCell::new(ColumnIndex::new()),
            syntax: RefCell::new(None),
            plain: false,
            key_overrides: Vec::new(),
            dirty_memo: Cell::new(None),
            caret: 0,
            anchor: None,
            goal_col: None,
            top: 0,
            left: 0,
            follow_caret: true,
            viewport: Viewport::default(),
            clipboard: String::new(),
            search: None,
            search_shown: false,
            search_regex: false,
            search_origin: None,
            search_status: None,
            replace_with: String::new(),
            completion: Default::default(),
            history: UndoHistory::new(),
            clock: None,
            presence: Presence::new(),
            me: None,
            language: String::new(),
            read_only: false,
            owner: false,
            room_read_only: false,
            owner_menu: None,
            read_only_id: None,
            conn: ConnState::Connecting,
            saved: None,
            file,
            disk: None,
            prompt: None,
            notice: None,
            help: false,
            help_page: 0,
            help_pages: Cell::new(1),
            users_panel: true,
            chat: Default::default(),
            effects: Vec::new(),
            cursor_sent: None,
            cursor_sent_at: None,
            followed: None,
            text_press: None,
            sync_changes: 0,
        };
        editor.sync_language();
        editor
    }

    /// The language highlighting follows: the local file's name when it
    /// tells, else the room's hint.
    pub fn highlight_language(&self) -> Option<Lang> {
        self.syntax.borrow().as_ref().map(Syntax::lang)
    }

    /// True when the view has something to mark in the text: syntax colors
    /// or search matches.
    pub fn marks_text(&self) -> bool {
        self.syntax.borrow().is_some() || self.search_shown
    }

    /// Highlighted stretches within the char ranges `visible` (ascending),
    /// for the view; reparses first if the text changed.
    pub fn highlights(&self, visible: &[std::ops::Range<usize>]) -> Vec<HighlightSpan> {
        if self.plain {
            return Vec::new();
        }
        match self.syntax.borrow_mut().as_mut() {
            Some(syntax) => syntax.highlights(self.doc.rope(), visible),
            None => Vec::new(),
        }
    }

    /// Brings the parse tree up to date with the text now (the view would at
    /// the next frame); benchmarks measure a reparse with it.
    pub fn refresh_syntax(&self) {
        if let Some(syntax) = self.syntax.borrow_mut().as_mut() {
            syntax.refresh(self.doc.rope());
        }
    }

    /// Parses the whole document now (the view parses only as far as it
    /// shows); returns the number of nodes in its trees (0 without a
    /// grammar). For the benchmark's memory figure.
    pub fn parse_all_syntax(&self) -> usize {
        match self.syntax.borrow_mut().as_mut() {
            Some(syntax) => {
                syntax.parse_all(self.doc.rope());
                syntax.node_count()
            }
            None => 0,
        }
    }

    /// Picks the grammar for the room's hint and the file's name, when it
    /// changed (a new `init`, a save under another name).
    pub(crate) fn sync_language(&mut self) {
        let lang = Lang::detect(&self.language, self.file.as_deref());
        if self.highlight_language() != lang {
            *self.syntax.get_mut() = lang.and_then(Syntax::new);
        }
    }

    /// A cheap copy of the text before an edit, when highlighting needs
    /// the old text to describe the edit to the parser.
    pub(crate) fn text_before_edit(&mut self) -> Option<Rope> {
        self.syntax
            .get_mut()
            .is_some()
            .then(|| self.doc.rope().clone())
    }

    /// Without syntax highlighting (`theme = "plain"`).
    pub fn with_plain_text(mut self, plain: bool) -> Self {
        self.plain = plain;
        self
    }

    /// Keys bound to actions by the config file's `[keys]`, before the
    /// defaults.
    pub fn with_key_overrides(
        mut self,
        overrides: Vec<(super::keymap::KeyChord, super::keymap::Action)>,
    ) -> Self {
        self.key_overrides = overrides;
        self
    }

    /// The server the share commands name (`None`: the default server).
    pub fn with_server(mut self, server: Option<&str>) -> Self {
        self.server_arg = server.map_or_else(String::new, |s| format!(" --server {s}"));
        self
    }

    /// How the local file looked when the editor started (the shell stats
    /// it): Ctrl-S asks before overwriting a file changed since.
    pub fn with_disk_state(mut self, state: Option<FileState>) -> Self {
        self.disk = state;
        self
    }

    /// Picks up edits an earlier process left unacknowledged (its
    /// journal): editable at once, rebased by the first `init`.
    pub fn resume(mut self, saved: &Unacknowledged) -> Self {
        self.doc = SyncedDoc::resume(saved);
        self.version += 1;
        self.notice =
            Some("Resumed edits a previous collab had not sent; they go out once connected".into());
        self
    }

    /// Picks up edits an earlier process left unacknowledged in another
    /// document of the project: a buffer of its own, editable at once,
    /// opened again with `since` after the first `init` (which rebases and
    /// resends them).
    pub fn resume_doc(mut self, doc: &str, saved: &Unacknowledged) -> Self {
        let mut b = buffer::Buffer::named(doc);
        b.doc = SyncedDoc::resume(saved);
        self.parked.push(b);
        self.project.recent.touch_back(doc);
        self.notice =
            Some("Resumed edits a previous collab had not sent; they go out once connected".into());
        self
    }

    // ----- what the view and the shell read -----

    /// Counts changes to the active document.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Counts everything that may change what is unacknowledged, in any
    /// buffer (an edit, a message from the server): the shell journals when
    /// it moved.
    pub fn journal_mark(&self) -> u64 {
        self.sync_changes
    }

    /// Every buffer's unacknowledged edits, for the journal: the main
    /// document's first, named `None` (as a one-document client names
    /// it), then the others by id.
    pub fn unacknowledged_docs(&self) -> Vec<(Option<String>, Unacknowledged)> {
        let main = self.project.main.as_deref();
        let mut out: Vec<(Option<String>, Unacknowledged)> =
            std::iter::once((self.doc_id.as_deref(), &self.doc))
                .chain(self.parked.iter().map(|b| (b.doc_id.as_deref(), &b.doc)))
                .filter_map(|(id, doc)| {
                    let unacked = doc.unacknowledged()?;
                    let name = id.filter(|id| Some(*id) != main).map(str::to_owned);
                    Some((name, unacked))
                })
                .collect();
        out.sort_by_key(|(name, _)| name.is_some());
        out
    }

    /// The main document's unacknowledged edits.
    pub fn unacknowledged(&self) -> Option<Unacknowledged> {
        match self.project.main.as_deref() {
            Some(main) if self.doc_id.as_deref() != Some(main) => self
                .parked
                .iter()
                .find(|b| b.doc_id.as_deref() == Some(main))
                .and_then(|b| b.doc.unacknowledged()),
            _ => self.doc.unacknowledged(),
        }
    }

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

    /// True when this connection may only watch.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Connection state.
    pub fn conn(&self) -> &ConnState {
        &self.conn
    }

    /// The active buffer's server revision, once it arrived.
    pub fn revision(&self) -> Option<u64> {
        self.doc.revision()
    }

    /// The main document's revision: what a reconnect passes as `since`
    /// (the other open documents are reopened with theirs).
    pub fn main_revision(&self) -> Option<u64> {
        match self.project.main.clone() {
            Some(main) if self.doc_id.as_deref() != Some(main.as_str()) => self
                .parked
                .iter()
                .find(|b| b.doc_id.as_deref() == Some(main.as_str()))
                .and_then(|b| b.doc.revision()),
            _ => self.doc.revision(),
        }
    }

    /// True when there is a local file and the document differs from what
    /// was last loaded from or saved to it. Compares the texts at most once
    /// per change, and not at all when their lengths differ.
    pub fn is_dirty(&self) -> bool {
        if self.file.is_none() {
            return false;
        }
        if let Some((version, dirty)) = self.dirty_memo.get() {
            if version == self.version {
                return dirty;
            }
        }
        let rope = self.doc.rope();
        let dirty = self
            .saved
            .as_ref()
            .is_some_and(|s| s.len_chars() != rope.len_chars() || s != rope);
        self.dirty_memo.set(Some((self.version, dirty)));
        dirty
    }

    /// True when edits wait for the server's acknowledgement, in any buffer.
    pub fn has_unsent(&self) -> bool {
        !self.doc.is_synchronized() || self.parked.iter().any(|b| !b.doc.is_synchronized())
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

    /// The help page shown (0-based).
    pub fn help_page(&self) -> usize {
        self.help_page
    }

    /// The view says how many pages the help takes at the current size.
    pub fn set_help_pages(&self, pages: usize) {
        self.help_pages.set(pages.max(1));
    }

    /// True while the users panel is wanted (the view hides it on narrow
    /// terminals anyway).
    pub fn users_panel_visible(&self) -> bool {
        self.users_panel || self.owner_menu.is_some()
    }

    /// 1-based line and column (display column) of the caret.
    pub fn line_col(&self) -> (usize, usize) {
        let rope = self.doc.rope();
        (
            tl::line_of(rope, self.caret) + 1,
            self.column_of(self.caret) + 1,
        )
    }

    /// Display column of char offset `pos` within its line.
    pub fn column_of(&self, pos: usize) -> usize {
        self.columns.borrow_mut().column_of(self.doc.rope(), pos)
    }

    /// The glyph of `line` covering display column `col`: its char offset
    /// within the line and its column (past the end: the line's length and
    /// width).
    pub fn glyph_at_column(&self, line: usize, col: usize) -> (usize, usize) {
        self.columns
            .borrow_mut()
            .glyph_at_column(self.doc.rope(), line, col)
    }

    fn offset_at_column(&self, line: usize, col: usize) -> usize {
        self.columns
            .borrow_mut()
            .offset_at_column(self.doc.rope(), line, col)
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
        let col = self.column_of(self.caret);
        // The cell under the caret (two for a wide char) must be visible.
        let offset = self.caret - tl::line_start(rope, line);
        let glyph_width = tl::Glyphs::new(tl::line_content(rope, line), offset, col)
            .next()
            .map_or(1, |g| g.width);
        if col < self.left {
            self.left = col;
        } else if col + glyph_width > self.left + width {
            self.left = col + glyph_width - width;
        }
    }

    /// True when the caret is on screen: its line, and its column.
    fn caret_visible(&self) -> bool {
        let line = tl::line_of(self.doc.rope(), self.caret);
        let col = self.column_of(self.caret);
        line >= self.top
            && line < self.top + usize::from(self.viewport.height.max(1))
            && col >= self.left
            && col < self.left + usize::from(self.viewport.width.max(1))
    }

    /// Sets the connection state.
    pub fn set_conn(&mut self, conn: ConnState) {
        self.conn = conn;
    }

    /// Shows a message on the message line.
    pub fn set_notice(&mut self, notice: impl Into<String>) {
        self.notice = Some(notice.into());
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
        if self.conn != ConnState::Connected || self.opening {
            return None;
        }
        let revision = self.doc.revision()?;
        let to_server = |pos: usize| self.doc.to_server_offset(pos) as u64;
        let cursor = to_server(self.caret);
        let anchor = self.selection().and(self.anchor).map(to_server);
        let key = (self.doc_id.clone(), revision, cursor, anchor);
        if self.cursor_sent.as_ref() == Some(&key) {
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
            doc: self.doc_id.clone(),
        })
    }

    /// Handles a message from the server that arrived at `now` (typing
    /// indicators last a while from then).
    pub fn on_server_at(&mut self, msg: ServerMessage, now: Instant) {
        self.clock = Some(now);
        self.on_server(msg);
    }

    /// Handles a message from the server: the connection's `init`, and
    /// everything else routed to the buffer of the document it names.
    pub fn on_server(&mut self, msg: ServerMessage) {
        self.sync_changes += 1;
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
                read_only,
                read_only_id,
                doc,
                tree_revision,
                files,
                chat,
                owner,
                ..
            } => {
                self.presence.set_own_name(&name);
                self.me = Some(Identity {
                    user_id,
                    name,
                    rgb: parse_color(&color),
                });
                self.read_only = read_only;
                self.owner = owner;
                self.read_only_id = read_only_id;
                let mine = self
                    .me
                    .as_ref()
                    .map_or("", |me| me.user_id.as_str())
                    .to_owned();
                self.chat.reset(chat, &mine);
                let files_given = files.is_some();
                if let Some(files) = files {
                    self.take_tree(files, tree_revision.unwrap_or_default(), doc.clone());
                }
                let project = files_given;
                let main = doc;
                let init_main = |ed: &mut Self| {
                    ed.language.clone_from(&language);
                    ed.sync_language();
                    ed.on_init(revision, &code, missed.as_deref());
                };
                match &main {
                    Some(main) => {
                        if self.doc_id.is_none() {
                            // The first init: the placeholder is the main
                            // document, also when it is ready already
                            // (resumed from a journal: its edits are the
                            // main document's, rebased by this init).
                            self.doc_id = Some(main.clone());
                        }
                        if !self.is_open(main) {
                            self.parked.push(buffer::Buffer::named(main));
                        }
                        let next_seq = self.project.seqs.get(main).copied();
                        self.with_doc(main, |ed| {
                            if let Some(next) = next_seq {
                                // Seqs this client used in it before (a
                                // resumed journal's): they only grow.
                                ed.doc.continue_seqs(next);
                            }
                            init_main(ed);
                        });
                        self.project.recent.touch_back(main);
                    }
                    // A project without a main document (it was deleted):
                    // the buffers stay as they are (the others are reopened
                    // with `since` below), except a main document resumed
                    // from a journal, whose text is kept aside.
                    None if project => self.main_gone_while_away(),
                    None => init_main(self),
                }
                self.reset_users(&users, main.as_deref(), revision);
                self.conn = ConnState::Connected;
                // A new connection has not heard our caret yet.
                self.cursor_sent = None;
                self.reopen_buffers(main.as_deref());
            }
            ServerMessage::CodeUpdate(c) => {
                let doc = c.doc.clone();
                self.route(doc.as_deref(), |ed| {
                    let mark = ed.view_mark();
                    let old = ed.text_before_edit();
                    match ed.doc.remote(c.revision, &c.operation) {
                        Ok(local) => ed.after_foreign(&[local], mark, old.as_ref()),
                        Err(e) => ed.lost_step(&e.to_string()),
                    }
                });
            }
            ServerMessage::Ack { revision, seq, doc } => {
                self.route(doc.as_deref(), |ed| match ed.doc.ack(revision, seq) {
                    Ok(Some(next)) => ed.send_edit(next),
                    Ok(None) => {}
                    Err(e) => ed.lost_step(&e.to_string()),
                });
            }
            ServerMessage::CursorMove {
                user_id,
                revision,
                cursor,
                anchor,
                doc,
            } => {
                let placed = self.route(doc.as_deref(), |ed| {
                    ed.presence.set_doc(&user_id, ed.doc_id.clone().as_deref());
                    if let Some(cursor) = ed.doc.from_server_offset(revision, cursor) {
                        let anchor = anchor.and_then(|a| ed.doc.from_server_offset(revision, a));
                        ed.presence.move_caret(&user_id, cursor, anchor);
                    }
                });
                if let (None, Some(doc)) = (placed, doc.as_deref()) {
                    self.presence
                        .move_elsewhere(&user_id, doc, (revision, cursor, anchor));
                }
                self.colleague_moved(&user_id);
            }
            ServerMessage::UserJoined { user } => self.user_joined(&user),
            ServerMessage::Chat(m) => self.chat_arrived(m),
            ServerMessage::Links {
                room_id,
                read_only_id,
            } => {
                self.room = room_id;
                if read_only_id.is_some() {
                    self.read_only_id = read_only_id;
                }
                // The share commands printed at start name the old link.
                self.project.join_commands.clear();
                self.notice = Some(if self.owner {
                    "New share links: the old ones no longer work (F8 copies the new join command)"
                        .into()
                } else {
                    "The room's owner replaced its links: the old ones no longer work \
                     (F8 copies the new join command)"
                        .into()
                });
            }
            ServerMessage::Mode { read_only } => {
                self.room_read_only = read_only;
                if !self.owner {
                    self.read_only = read_only;
                    self.notice = Some(if read_only {
                        "The room's owner made the room read-only".into()
                    } else {
                        "The room's owner made the room editable again".into()
                    });
                }
            }
            ServerMessage::Typing {
                user_id,
                editing,
                doc,
                ..
            } => {
                let now = self.clock.unwrap_or_else(Instant::now);
                self.chat.colleague_typing(&user_id, editing, doc, now);
            }
            ServerMessage::UserLeft { user_id } => {
                self.presence.leave(&user_id);
                self.chat.forget(&user_id);
                self.colleague_left(&user_id);
            }
            ServerMessage::Opened {
                doc,
                revision,
                code,
                language,
                missed,
            } => self.opened(&doc, revision, &code, &language, missed.as_deref()),
            ServerMessage::FileCreated {
                file,
                user_id,
                tree_revision,
            } => {
                self.file_created(file, &user_id, tree_revision);
            }
            ServerMessage::FileRenamed {
                doc,
                path,
                old_path,
                user_id,
                tree_revision,
            } => self.file_renamed(&doc, &path, &old_path, &user_id, tree_revision),
            ServerMessage::FileDeleted {
                doc,
                path,
                user_id,
                tree_revision,
            } => self.file_deleted(&doc, &path, &user_id, tree_revision),
            ServerMessage::Error {
                code,
                message,
                seq,
                doc,
                path,
            } => self.server_error(&code, &message, seq, doc.as_deref(), path.as_deref()),
            ServerMessage::Pong => {}
        }
    }

    /// Runs `f` on the buffer of `doc` (the active one when no document is
    /// named: a one-document room); `None` when `doc` is not open here.
    fn route<R>(&mut self, doc: Option<&str>, f: impl FnOnce(&mut Self) -> R) -> Option<R> {
        match doc {
            Some(doc) => self.with_doc(doc, f),
            None => Some(f(self)),
        }
    }

    /// Hands an edit message of the active buffer to the shell, naming its
    /// document; held back while the document is being opened again (its
    /// `opened` rebases and resends it).
    pub(crate) fn send_edit(&mut self, msg: ClientMessage) {
        if self.opening {
            return;
        }
        let msg = msg.for_doc(self.doc_id.as_deref());
        self.effects.push(Effect::Send(msg));
    }

    /// Takes the users of an `init`: carets in the main document (or the
    /// only one) are placed, the others wait for their document to open.
    fn reset_users(&mut self, users: &[UserInfo], main: Option<&str>, revision: u64) {
        let in_main = |u: &UserInfo| u.doc.is_none() || u.doc.as_deref() == main;
        let placed = |ed: &mut Self| {
            let doc = &ed.doc;
            ed.presence
                .reset(users, |o| doc.from_server_offset(revision, o));
        };
        match main {
            Some(main) => {
                self.with_doc(main, placed);
            }
            None => placed(self),
        }
        for u in users.iter().filter(|u| !in_main(u)) {
            if let (Some(doc), Some(cursor)) = (u.doc.as_deref(), u.cursor) {
                self.presence
                    .move_elsewhere(&u.user_id, doc, (u64::MAX, cursor, u.anchor));
            }
        }
        self.place_in_open_buffers();
    }

    /// Someone joined: placed when in an open document.
    fn user_joined(&mut self, user: &UserInfo) {
        let place = |ed: &mut Self| {
            let revision = ed.doc.revision().unwrap_or_default();
            let doc = &ed.doc;
            ed.presence
                .join(user, |o| doc.from_server_offset(revision, o));
        };
        if self.route(user.doc.as_deref(), place).is_none() {
            self.presence.join(user, |_| None);
            if let (Some(doc), Some(cursor)) = (user.doc.as_deref(), user.cursor) {
                self.presence
                    .move_elsewhere(&user.user_id, doc, (u64::MAX, cursor, user.anchor));
            }
        }
    }

    /// Applies an `init` (or an `opened`) to the active buffer's document.
    fn on_init(
        &mut self,
        revision: u64,
        code: &str,
        missed: Option<&[collab_protocol::CommittedOp]>,
    ) {
        let mark = self.view_mark();
        match self.doc.on_init(revision, code, missed) {
            InitOutcome::Fresh => {
                self.document_replaced();
                self.saved = Some(self.doc.rope().clone());
                self.caret = 0;
                self.anchor = None;
                self.follow_caret = true;
            }
            InitOutcome::Rebased { applied, send } => {
                // The replayed operations are in the text already: the
                // tree is rebuilt (a reconnect; rare).
                self.after_foreign(&applied, mark, None);
                for msg in send {
                    self.send_edit(msg);
                }
            }
            InitOutcome::Replaced { lost } => {
                self.document_replaced();
                self.history.clear();
                let len = self.doc.rope().len_chars();
                self.caret = tl::snap(self.doc.rope(), self.caret.min(len), false);
                self.anchor = self.anchor.map(|a| a.min(len));
                self.follow_caret = true;
                let doc = self.doc_id.clone();
                self.presence.clamp(doc.as_deref(), len);
                if let Some(text) = lost {
                    self.effects.push(Effect::SaveRecovery {
                        text,
                        why: Recovery::Unmerged,
                    });
                }
            }
        }
    }

    /// The server sent something that does not fit: start over from its
    /// document (unsent edits are saved by the `Replaced` path).
    fn lost_step(&mut self, why: &str) {
        self.notice = Some(format!(
            "Out of step with the server ({why}); resynchronizing"
        ));
        match self.doc_id.clone() {
            // Another document of a project: only it is opened afresh.
            Some(doc) if self.project.main.as_deref() != Some(doc.as_str()) => {
                self.reopen_fresh(&doc);
            }
            _ => self.effects.push(Effect::ResyncFresh),
        }
    }

    /// The whole document changed at once (a fresh `init`).
    fn document_replaced(&mut self) {
        self.version += 1;
        self.columns.get_mut().clear();
        if let Some(syntax) = self.syntax.get_mut() {
            syntax.reset();
        }
        let lines = tl::line_count(self.doc.rope());
        self.top = self.top.min(lines.saturating_sub(1));
    }

    /// Everything derived from the text follows `op`, just applied to it
    /// (the document holds nothing newer); `old` is the text before it, when
    /// highlighting asked for it ([`Editor::text_before_edit`]).
    fn text_changed(&mut self, op: &Operation, old: Option<&Rope>) {
        self.version += 1;
        self.columns.get_mut().edit(op, self.doc.rope());
        if let Some(syntax) = self.syntax.get_mut() {
            match old {
                Some(old) => syntax.edit(op, old, self.doc.rope()),
                None => syntax.reset(),
            }
        }
    }

    /// Where the view is in the text, taken before someone else's edit.
    fn view_mark(&self) -> ViewMark {
        ViewMark {
            top_start: tl::line_start(self.doc.rope(), self.top),
            caret_visible: self.caret_visible(),
        }
    }

    /// Moves everything that points into the document over operations
    /// applied by someone else (in order; the document already holds them).
    /// The text under the user's eyes stays put: lines inserted or removed
    /// above the view move the view with them, and a caret that was on
    /// screen stays on screen.
    fn after_foreign(&mut self, ops: &[Operation], mark: ViewMark, old: Option<&Rope>) {
        let mut top_start = mark.top_start;
        if ops.len() > 1 {
            // The document already holds them all: the column index and the
            // parse tree cannot follow one at a time (a reconnect's replay;
            // rare).
            self.version += 1;
            self.columns.get_mut().clear();
            if let Some(syntax) = self.syntax.get_mut() {
                syntax.reset();
            }
        }
        for op in ops {
            if ops.len() == 1 {
                self.text_changed(op, old);
            }
            top_start = op.transform_index(top_start);
            self.caret = op.transform_index(self.caret);
            self.anchor = self.anchor.map(|a| op.transform_index(a));
            self.presence.transform(self.doc_id.as_deref(), op);
            self.history.transform(op);
        }
        let rope = self.doc.rope();
        self.top = tl::line_of(rope, top_start);
        self.caret = tl::snap(rope, self.caret, false);
        if mark.caret_visible && !self.caret_visible() {
            self.follow_caret = true;
        }
    }

    /// True when a read-only editor would lose the key: says why instead.
    fn refuse_read_only(&mut self) -> bool {
        if self.read_only {
            self.notice = Some(if self.room_read_only {
                "Read-only: the room's owner made the room read-only for now".into()
            } else {
                READ_ONLY_HINT.into()
            });
        }
        self.read_only
    }
}
