//! The editor as a project client: the room's files (its tree, as heard),
//! which of them are open as buffers, opening and closing them (within the
//! server's limit per connection, closing the least recently used that lose
//! nothing), reopening them with `since` after a reconnect, the tree's
//! changes (created, renamed, deleted: a buffer deleted under the user
//! keeps its text in a recovery file), and the prompts that create, rename
//! and delete files.

use std::collections::{BTreeMap, HashMap};

use collab_protocol::{error_code, ClientMessage, CommittedOp, FileInfo};

use super::buffer::Buffer;
use super::{Editor, Effect, LineInput, Picker, Prompt, Recovery};
use crate::core::recent::Recent;
use crate::core::text_layout as tl;

/// Buffers kept open at most (the server allows 64 per connection by
/// default; buffers with unsent edits stay open past it).
pub const MAX_OPEN_BUFFERS: usize = 48;

/// The project's state besides the buffers.
#[derive(Debug)]
pub(crate) struct Project {
    /// Every document of the room, by id.
    pub(crate) files: BTreeMap<String, FileInfo>,
    /// The tree's revision as heard.
    pub(crate) tree_revision: u64,
    /// The main document (open from `init` on, never closed for the limit).
    pub(crate) main: Option<String>,
    /// The next seq of documents closed here: seqs only grow.
    pub(crate) seqs: HashMap<String, u64>,
    /// The open buffers, most recently used first.
    pub(crate) recent: Recent,
    /// Buffers kept open at most.
    pub(crate) max_open: usize,
    /// The file list panel is shown.
    pub(crate) files_panel: bool,
    /// The file picker or the buffer list, when open.
    pub(crate) picker: Option<Picker>,
    /// The colleague followed (user id).
    pub(crate) following: Option<String>,
    /// Commands that bring someone in, given by the shell (`collab share`).
    pub(crate) join_commands: Vec<String>,
    /// A disk mirror keeps the room's files in a folder (`collab share`,
    /// `join --dir`): Ctrl-S has nothing to do.
    pub(crate) mirrored: bool,
    /// Paths this user asked to create: opened once created.
    pub(crate) creating: Vec<String>,
    /// F2 chose a colleague in a file being opened: the caret goes to
    /// theirs once it is.
    pub(crate) jump_to: Option<String>,
    /// The panels' clickable lines, as last drawn.
    pub(crate) click_areas: Vec<ClickArea>,
}

impl Default for Project {
    fn default() -> Self {
        Self {
            files: BTreeMap::new(),
            tree_revision: 0,
            main: None,
            seqs: HashMap::new(),
            recent: Recent::default(),
            max_open: MAX_OPEN_BUFFERS,
            files_panel: false,
            picker: None,
            following: None,
            join_commands: Vec::new(),
            mirrored: false,
            creating: Vec::new(),
            jump_to: None,
            click_areas: Vec::new(),
        }
    }
}

/// What a click beside the text lands on (the view says where each is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClickTarget {
    /// A colleague in the users panel: follow them.
    User(String),
    /// A file in the file list: open it.
    File(String),
}

/// A clickable line of a panel: its first column, row and width.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClickArea {
    /// First column.
    pub x: u16,
    /// Row.
    pub y: u16,
    /// Columns.
    pub width: u16,
    /// What it is.
    pub target: ClickTarget,
}

/// A colleague in a file, as the file list and the picker mark them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMark {
    /// Their color.
    pub rgb: (u8, u8, u8),
    /// Their initial.
    pub initial: char,
}

impl Editor {
    // ----- what the view reads -----

    /// True once the server told of the room's files (a project client).
    pub fn is_project(&self) -> bool {
        !self.project.files.is_empty()
    }

    /// The room's files, sorted by path.
    pub fn files(&self) -> Vec<&FileInfo> {
        let mut files: Vec<&FileInfo> = self.project.files.values().collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files
    }

    /// The path of document `doc`, as the tree was heard.
    pub fn path_of(&self, doc: &str) -> Option<&str> {
        self.project.files.get(doc).map(|f| f.path.as_str())
    }

    /// The active buffer's document id.
    pub fn active_doc(&self) -> Option<&str> {
        self.doc_id.as_deref()
    }

    /// The active buffer's path (in a project).
    pub fn active_path(&self) -> Option<&str> {
        self.path_of(self.doc_id.as_deref()?)
    }

    /// True when `doc` is open here (the active buffer or a parked one).
    pub fn is_open(&self, doc: &str) -> bool {
        self.doc_id.as_deref() == Some(doc)
            || self.parked.iter().any(|b| b.doc_id.as_deref() == Some(doc))
    }

    /// The open buffers' documents, sorted by path (the quick switch's
    /// order).
    pub fn open_docs(&self) -> Vec<String> {
        let mut docs: Vec<String> = std::iter::once(self.doc_id.clone())
            .chain(self.parked.iter().map(|b| b.doc_id.clone()))
            .flatten()
            .collect();
        docs.sort_by_key(|d| self.path_of(d).unwrap_or_default().to_owned());
        docs
    }

    /// The open buffers' documents, most recently used first.
    pub fn recent_docs(&self) -> &[String] {
        self.project.recent.ids()
    }

    /// The colleagues in `doc` (disk mirrors included), for marks.
    pub fn marks_for(&self, doc: &str) -> Vec<FileMark> {
        self.presence
            .users()
            .iter()
            .filter(|u| u.doc.as_deref() == Some(doc))
            .map(|u| FileMark {
                rgb: u.rgb,
                initial: u.name.chars().next().unwrap_or('?'),
            })
            .collect()
    }

    /// A colleague's place: their file's path and (when that file is open
    /// here and their caret known) their 1-based line.
    pub fn place_of(&self, user_id: &str) -> Option<(String, Option<usize>)> {
        let u = self
            .presence
            .users()
            .iter()
            .find(|u| u.user_id == user_id)?;
        let doc = u.doc.as_deref()?;
        let path = self.path_of(doc)?.to_owned();
        let text = if self.doc_id.as_deref() == Some(doc) {
            Some(self.doc.rope())
        } else {
            self.parked
                .iter()
                .find(|b| b.doc_id.as_deref() == Some(doc))
                .map(Buffer::text)
        };
        let line = match (text, u.cursor) {
            (Some(t), Some(c)) => Some(tl::line_of(t, c.min(t.len_chars())) + 1),
            _ => None,
        };
        Some((path, line))
    }

    /// The join commands the shell gave (shown in the help).
    pub fn join_commands(&self) -> &[String] {
        &self.project.join_commands
    }

    /// Sets the join commands the help shows (from `collab share`).
    pub fn with_join_commands(mut self, commands: Vec<String>) -> Self {
        self.project.join_commands = commands;
        self
    }

    /// The seq the next edit in each document gets, for every document
    /// this client has used seqs in (open or closed), by id: the journal
    /// keeps them all, since the next process continues under the same
    /// `client_id` and a seq used again would be taken for a resend.
    pub fn next_seqs(&self) -> Vec<(String, u64)> {
        let mut seqs: BTreeMap<String, u64> = self
            .project
            .seqs
            .iter()
            .map(|(d, n)| (d.clone(), *n))
            .collect();
        let buffers = std::iter::once((self.doc_id.as_deref(), &self.doc))
            .chain(self.parked.iter().map(|b| (b.doc_id.as_deref(), &b.doc)));
        for (doc, sync) in buffers {
            let (Some(doc), next) = (doc, sync.next_seq()) else {
                continue;
            };
            if next > 1 {
                let at = seqs.entry(doc.to_owned()).or_default();
                *at = (*at).max(next);
            }
        }
        seqs.into_iter().filter(|(_, n)| *n > 1).collect()
    }

    /// Continues the seqs an earlier process of this `client_id` used (its
    /// journal's [`Editor::next_seqs`]).
    pub fn with_seqs(mut self, seqs: impl IntoIterator<Item = (String, u64)>) -> Self {
        for (doc, next) in seqs {
            let at = self.project.seqs.entry(doc).or_default();
            *at = (*at).max(next);
        }
        self
    }

    /// Says a disk mirror keeps the room's files (the shell runs one):
    /// Ctrl-S then saves nothing.
    pub fn with_disk_mirror(mut self, mirrored: bool) -> Self {
        self.project.mirrored = mirrored;
        self
    }

    /// Keeps at most `limit` buffers open (tests use small limits).
    pub fn with_max_open(mut self, limit: usize) -> Self {
        self.project.max_open = limit.max(1);
        self
    }

    /// True while the file list is shown.
    pub fn files_panel_visible(&self) -> bool {
        self.project.files_panel && self.is_project()
    }

    /// Shows or hides the file list.
    pub fn toggle_files_panel(&mut self) {
        self.project.files_panel = !self.project.files_panel;
        if !self.is_project() {
            self.notice = Some("This room has no file list yet".into());
        }
    }

    /// The view tells where the panels' clickable lines are.
    pub fn set_click_areas(&mut self, areas: Vec<ClickArea>) {
        self.project.click_areas = areas;
    }

    /// A click beside the text: follows the colleague or opens the file
    /// clicked; false when it landed on nothing.
    pub fn click_panel(&mut self, column: u16, row: u16) -> bool {
        let hit = self
            .project
            .click_areas
            .iter()
            .find(|a| a.y == row && column >= a.x && column < a.x + a.width)
            .map(|a| a.target.clone());
        match hit {
            Some(ClickTarget::User(id)) => self.follow(&id),
            Some(ClickTarget::File(doc)) => {
                self.stop_following();
                self.open_doc(&doc);
            }
            None => return false,
        }
        true
    }

    // ----- opening and switching -----

    /// Makes `doc`'s buffer the active one, opening it first if needed.
    pub fn open_doc(&mut self, doc: &str) {
        if !self.project.files.contains_key(doc) {
            self.notice = Some("That file no longer exists".into());
            return;
        }
        if !self.is_open(doc) {
            let language = self.project.files[doc].language.clone();
            let next = self.project.seqs.get(doc).copied().unwrap_or(1);
            self.parked.push(Buffer::opening(doc, &language, next));
            self.effects.push(Effect::Send(ClientMessage::Open {
                doc: doc.to_owned(),
                since: None,
            }));
        }
        self.activate(doc);
        self.close_excess();
    }

    /// Swaps `doc`'s parked buffer in (it must be open).
    fn activate(&mut self, doc: &str) {
        if self.doc_id.as_deref() != Some(doc) {
            let Some(i) = self
                .parked
                .iter()
                .position(|b| b.doc_id.as_deref() == Some(doc))
            else {
                return;
            };
            let mut b = std::mem::take(&mut self.parked[i]);
            self.swap_buffer(&mut b);
            if b.doc_id.is_some() || b.doc.is_ready() {
                self.parked[i] = b;
            } else {
                // The placeholder before any document: nothing to keep.
                self.parked.remove(i);
            }
            // The server learns where this user is with the next caret.
            self.cursor_sent = None;
            self.follow_caret = true;
        }
        self.project.recent.touch(doc);
    }

    /// Ctrl-PageDown / Ctrl-PageUp: the next or previous open buffer, by
    /// path.
    pub fn switch_buffer(&mut self, forward: bool) {
        let docs = self.open_docs();
        if docs.len() < 2 {
            self.notice = Some("No other buffer open · Ctrl-P opens a file".into());
            return;
        }
        let at = self
            .doc_id
            .as_ref()
            .and_then(|d| docs.iter().position(|x| x == d))
            .unwrap_or(0);
        let next = if forward {
            (at + 1) % docs.len()
        } else {
            (at + docs.len() - 1) % docs.len()
        };
        self.stop_following();
        self.activate(&docs[next].clone());
    }

    /// Closes the least recently used buffers beyond the limit that lose
    /// nothing by closing.
    fn close_excess(&mut self) {
        let active = self.doc_id.clone();
        let main = self.project.main.clone();
        let parked = &self.parked;
        let closable = |id: &str| {
            Some(id) != active.as_deref()
                && Some(id) != main.as_deref()
                && parked.iter().any(|b| {
                    b.doc_id.as_deref() == Some(id) && !b.opening && b.doc.is_synchronized()
                })
        };
        for doc in self.project.recent.victims(self.project.max_open, closable) {
            if let Some(b) = self.take_parked(&doc) {
                self.project.seqs.insert(doc.clone(), b.doc.next_seq());
            }
            self.presence.unplace(&doc);
            self.effects
                .push(Effect::Send(ClientMessage::Close { doc }));
        }
    }

    fn take_parked(&mut self, doc: &str) -> Option<Buffer> {
        let i = self
            .parked
            .iter()
            .position(|b| b.doc_id.as_deref() == Some(doc))?;
        self.project.recent.remove(doc);
        Some(self.parked.remove(i))
    }

    /// Takes `doc`'s buffer out, whether active (the most recently used
    /// other buffer, or an empty one, takes its place) or parked.
    fn remove_buffer(&mut self, doc: &str) -> Option<Buffer> {
        if self.doc_id.as_deref() != Some(doc) {
            return self.take_parked(doc);
        }
        self.project.recent.remove(doc);
        let next = self.project.recent.ids().first().cloned();
        let mut out = Buffer::default();
        match next.and_then(|n| {
            self.parked
                .iter()
                .position(|b| b.doc_id.as_deref() == Some(n.as_str()))
        }) {
            Some(i) => {
                out = self.parked.remove(i);
                self.swap_buffer(&mut out);
            }
            None => self.swap_buffer(&mut out),
        }
        self.cursor_sent = None;
        self.follow_caret = true;
        Some(out)
    }

    // ----- what the server says -----

    /// Takes the tree of an `init`.
    pub(super) fn take_tree(&mut self, files: Vec<FileInfo>, revision: u64, main: Option<String>) {
        self.project.files = files.into_iter().map(|f| (f.doc.clone(), f)).collect();
        self.project.tree_revision = revision;
        self.project.main = main;
    }

    /// After an `init`: opens every other open buffer again with `since`,
    /// and keeps the text of those deleted meanwhile.
    pub(super) fn reopen_buffers(&mut self, main: Option<&str>) {
        let open: Vec<String> = std::iter::once(self.doc_id.clone())
            .chain(self.parked.iter().map(|b| b.doc_id.clone()))
            .flatten()
            .filter(|d| Some(d.as_str()) != main)
            .collect();
        for doc in open {
            if !self.project.files.contains_key(&doc) {
                self.buffer_deleted(&doc, "a file deleted while offline", None);
                continue;
            }
            self.with_doc(&doc, |ed| {
                ed.opening = true;
                ed.effects.push(Effect::Send(ClientMessage::Open {
                    doc: doc.clone(),
                    since: ed.doc.revision(),
                }));
            });
        }
        if self.doc_id.is_none() && !self.doc.is_ready() {
            // No main document (deleted): open the first file, if any.
            if let Some(first) = self.files().first().map(|f| f.doc.clone()) {
                self.open_doc(&first);
            }
        }
    }

    /// Opens the active buffer's document `doc` again without `since`,
    /// taking the server's text (what was unsent goes to a recovery file
    /// when its `opened` comes: the `Replaced` path).
    pub(super) fn reopen_fresh(&mut self, doc: &str) {
        self.opening = true;
        self.effects.push(Effect::Send(ClientMessage::Close {
            doc: doc.to_owned(),
        }));
        self.effects.push(Effect::Send(ClientMessage::Open {
            doc: doc.to_owned(),
            since: None,
        }));
    }

    /// Places carets known only as server offsets in every open buffer.
    pub(super) fn place_in_open_buffers(&mut self) {
        for doc in self.open_docs() {
            self.with_doc(&doc, |ed| ed.place_here());
        }
    }

    /// Places the carets of users in the active buffer's document.
    fn place_here(&mut self) {
        let Some(doc) = self.doc_id.clone() else {
            return;
        };
        let len = self.doc.rope().len_chars();
        let sync = &self.doc;
        self.presence
            .place_unplaced(&doc, len, |rev, o| sync.from_server_offset(rev, o));
    }

    /// The answer to `open`.
    pub(super) fn opened(
        &mut self,
        doc: &str,
        revision: u64,
        code: &str,
        language: &str,
        missed: Option<&[CommittedOp]>,
    ) {
        self.with_doc(doc, |ed| {
            if !ed.opening {
                return;
            }
            ed.opening = false;
            if !ed.doc.is_ready() {
                language.clone_into(&mut ed.language);
                ed.sync_language();
            }
            ed.on_init(revision, code, missed);
            ed.place_here();
        });
        self.follow_into(doc);
    }

    /// A project `init` without a main document (deleted): the buffers
    /// keep their text. Only the placeholder resumed from a journal (the
    /// main document's edits, before any `init` named it) has no document
    /// left to go to: its text goes to a recovery file.
    pub(super) fn main_gone_while_away(&mut self) {
        if self.doc_id.is_some() || !self.doc.is_ready() {
            return;
        }
        let mut gone = Buffer::default();
        self.swap_buffer(&mut gone);
        self.effects.push(Effect::SaveRecovery {
            text: gone.text().to_string(),
            why: Recovery::Deleted("the main document".into()),
        });
    }

    /// `file_created`.
    pub(super) fn file_created(&mut self, file: FileInfo, user_id: &str, revision: u64) {
        self.project.tree_revision = revision;
        let doc = file.doc.clone();
        let path = file.path.clone();
        self.project.files.insert(doc.clone(), file);
        let mine = self.me.as_ref().is_some_and(|m| m.user_id == user_id);
        if let Some(i) = self.project.creating.iter().position(|p| *p == path) {
            if mine {
                self.project.creating.remove(i);
                self.stop_following();
                self.open_doc(&doc);
                self.notice = Some(format!("Created {path}"));
            }
        }
    }

    /// `file_renamed`.
    pub(super) fn file_renamed(
        &mut self,
        doc: &str,
        path: &str,
        old_path: &str,
        user_id: &str,
        revision: u64,
    ) {
        self.project.tree_revision = revision;
        if let Some(f) = self.project.files.get_mut(doc) {
            path.clone_into(&mut f.path);
        }
        let who = self.who(user_id);
        let open = self
            .with_doc(doc, |ed| {
                collab_protocol::language::guess(path).clone_into(&mut ed.language);
                ed.sync_language();
            })
            .is_some();
        if open {
            self.notice = Some(format!("{who} renamed {old_path} to {path}"));
        }
    }

    /// `file_deleted`.
    pub(super) fn file_deleted(&mut self, doc: &str, path: &str, user_id: &str, revision: u64) {
        self.project.tree_revision = revision;
        self.project.files.remove(doc);
        if self.project.main.as_deref() == Some(doc) {
            self.project.main = None;
        }
        let who = self.who(user_id);
        self.buffer_deleted(doc, path, Some(who));
    }

    /// A document open here is gone: its buffer closes and its text goes to
    /// a recovery file (the shell says where).
    fn buffer_deleted(&mut self, doc: &str, path: &str, who: Option<String>) {
        self.project.seqs.remove(doc);
        self.presence.unplace(doc);
        let Some(b) = self.remove_buffer(doc) else {
            return;
        };
        if b.doc.is_ready() {
            self.effects.push(Effect::SaveRecovery {
                text: b.text().to_string(),
                why: Recovery::Deleted(path.to_owned()),
            });
        }
        if let Some(who) = who {
            self.notice = Some(format!("{who} deleted {path}"));
        }
        if self.doc_id.is_none() && !self.doc.is_ready() {
            if let Some(first) = self.files().first().map(|f| f.doc.clone()) {
                self.open_doc(&first);
            }
        }
    }

    /// "you" or a colleague's name.
    fn who(&self, user_id: &str) -> String {
        if self.me.as_ref().is_some_and(|m| m.user_id == user_id) {
            "You".to_owned()
        } else {
            match self.presence.display_name(user_id) {
                n if n.is_empty() => "Someone".to_owned(),
                n => n,
            }
        }
    }

    /// An `error` that left the connection open (or precedes its close).
    pub(super) fn server_error(
        &mut self,
        code: &str,
        message: &str,
        seq: Option<u64>,
        doc: Option<&str>,
        path: Option<&str>,
    ) {
        self.notice = Some(format!("Server: {message} ({code})"));
        if let Some(path) = path {
            self.project.creating.retain(|p| p != path);
        }
        match (code, doc) {
            (error_code::HISTORY_RESET, _) if self.doc.is_ready() => {
                // What the room holds may lack edits it had acknowledged:
                // this copy still has them.
                self.effects.push(Effect::SaveRecovery {
                    text: self.doc.rope().to_string(),
                    why: Recovery::HistoryReset,
                });
            }
            (error_code::DOCUMENT_TOO_LARGE | error_code::ROOM_READ_ONLY, Some(doc))
                if seq.is_some() && self.project.main.as_deref() != Some(doc) =>
            {
                // The refused edit will never be acknowledged: open the
                // document again without `since` (the `Replaced` path
                // keeps what was unsent in a recovery file).
                self.with_doc(doc, |ed| ed.reopen_fresh(doc));
            }
            (error_code::DOCUMENT_TOO_LARGE | error_code::ROOM_READ_ONLY, _) if seq.is_some() => {
                // The same for the main document: a fresh start.
                self.effects.push(Effect::ResyncFresh);
            }
            ("document_deleted", Some(doc)) => {
                let path = self.path_of(doc).unwrap_or("a deleted file").to_owned();
                self.buffer_deleted(doc, &path, None);
            }
            ("too_many_open", Some(doc))
                if self.with_doc(doc, |ed| ed.opening && !ed.doc.is_ready()) == Some(true) =>
            {
                self.remove_buffer(doc);
                self.notice =
                    Some("The server refused to open more files: close some first".into());
            }
            _ => {}
        }
    }

    // ----- create, rename, delete -----

    /// Alt-N: asks for a new file's path (starting in the active file's
    /// folder).
    pub fn new_file_prompt(&mut self) {
        if self.refuse_read_only() || !self.needs_project() {
            return;
        }
        let dir = self
            .active_path()
            .and_then(|p| p.rsplit_once('/'))
            .map_or(String::new(), |(d, _)| format!("{d}/"));
        self.prompt = Some(Prompt::NewFile(LineInput::new(&dir)));
    }

    /// Alt-M: asks for the active file's new path.
    pub fn rename_prompt(&mut self) {
        if self.refuse_read_only() || !self.needs_project() {
            return;
        }
        let (Some(doc), Some(path)) = (self.doc_id.clone(), self.active_path()) else {
            return;
        };
        let input = LineInput::new(path);
        self.prompt = Some(Prompt::RenameFile { doc, input });
    }

    /// Alt-K: asks before deleting the active file.
    pub fn delete_prompt(&mut self) {
        if self.refuse_read_only() || !self.needs_project() {
            return;
        }
        let (Some(doc), Some(path)) = (self.doc_id.clone(), self.active_path()) else {
            return;
        };
        let path = path.to_owned();
        self.prompt = Some(Prompt::ConfirmDelete { doc, path });
    }

    fn needs_project(&mut self) -> bool {
        if !self.is_project() {
            self.notice = Some("Not connected yet: the room's files are not known".into());
        }
        self.is_project()
    }

    /// A path typed for a new or renamed file, checked as the server
    /// would; says why not otherwise.
    fn checked_path(&mut self, typed: &str) -> Option<String> {
        let path = typed.trim();
        if let Err(e) = collab_protocol::paths::check(path) {
            self.notice = Some(format!("Not a valid path: {e}"));
            return None;
        }
        if self.project.files.values().any(|f| f.path == path) {
            self.notice = Some(format!("{path} exists already"));
            return None;
        }
        Some(path.to_owned())
    }

    /// Enter at "New file:".
    pub(super) fn create_file(&mut self, typed: &str) -> bool {
        let Some(path) = self.checked_path(typed) else {
            return false;
        };
        self.project.creating.push(path.clone());
        self.effects.push(Effect::Send(ClientMessage::CreateFile {
            path,
            code: None,
            language: None,
        }));
        true
    }

    /// Enter at "Rename to:".
    pub(super) fn rename_file(&mut self, doc: &str, typed: &str) -> bool {
        if self.path_of(doc) == Some(typed.trim()) {
            return true;
        }
        let Some(path) = self.checked_path(typed) else {
            return false;
        };
        self.effects.push(Effect::Send(ClientMessage::RenameFile {
            doc: doc.to_owned(),
            path,
        }));
        true
    }

    /// "y" at "Delete?".
    pub(super) fn delete_file(&mut self, doc: &str) {
        self.effects.push(Effect::Send(ClientMessage::DeleteFile {
            doc: doc.to_owned(),
        }));
    }
}
