//! Which key does what. Terminal events (crossterm's types, but no terminal
//! needed) become [`Action`]s, and actions become editor calls. The table
//! [`KEYS`] is what the help overlay and docs/tui.md show, kept next to the
//! mapping so they cannot drift apart unnoticed.

use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEventKind,
};

use std::time::Instant;

use super::editor::{Editor, PickerKind, PromptKey};

/// Everything a key can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Insert a char.
    Type(char),
    /// Line break keeping indentation.
    Newline,
    /// A tab (in files that use tabs), else spaces to the next tab stop;
    /// with a selection over several lines, indents them.
    Tab,
    /// Shift-Tab: one level of indentation less.
    Dedent,
    /// Delete backwards.
    Backspace,
    /// Delete forwards.
    Delete,
    /// Caret left (extend selection).
    Left(bool),
    /// Caret right.
    Right(bool),
    /// Caret up.
    Up(bool),
    /// Caret down.
    Down(bool),
    /// Line start (first non-blank, then column 0).
    Home(bool),
    /// Line end.
    End(bool),
    /// A screen up.
    PageUp(bool),
    /// A screen down.
    PageDown(bool),
    /// Start of the document.
    DocStart(bool),
    /// End of the document.
    DocEnd(bool),
    /// Select everything.
    SelectAll,
    /// Copy the selection.
    Copy,
    /// Cut the selection.
    Cut,
    /// Paste the internal clipboard.
    Paste,
    /// Undo own edit.
    Undo,
    /// Redo.
    Redo,
    /// Save to the local file.
    Save,
    /// Save to a file named now.
    SaveAs,
    /// Copy the command that joins this room.
    CopyShare,
    /// Show or hide the users panel.
    ToggleUsers,
    /// Quit.
    Quit,
    /// Help overlay.
    Help,
    /// Jump to the next colleague's caret.
    NextUser,
    /// Esc: close overlays, drop the selection, stop showing matches.
    Escape,
    /// Caret to the previous word's start.
    WordLeft(bool),
    /// Caret to the next word's end.
    WordRight(bool),
    /// Delete back to the previous word's start.
    DeleteWordBack,
    /// Delete up to the next word's end.
    DeleteWordForward,
    /// Open the search prompt.
    Find,
    /// Open the replace prompt.
    Replace,
    /// The next match of the last search.
    FindNext,
    /// The previous match of the last search.
    FindPrev,
    /// Ask for a line to go to.
    GoToLine,
    /// The file picker.
    OpenPicker,
    /// The list of open buffers.
    BufferList,
    /// The previous open buffer.
    PrevBuffer,
    /// The next open buffer.
    NextBuffer,
    /// Show or hide the file list.
    ToggleFiles,
    /// Create a file.
    NewFile,
    /// Rename (move) this file.
    RenameFile,
    /// Delete this file (asks).
    DeleteFile,
    /// Follow the next colleague.
    Follow,
    /// Show the chat pane with the keys in it; again: hide it.
    ToggleChat,
    /// The owner's menu in the users panel.
    OwnerMenu,
    /// Open the completion popup.
    Complete,
}

/// The key table shown by the help overlay (and README.md).
pub const KEYS: &[(&str, &str)] = &[
    ("Ctrl-S", "save to the local file (asks for a name once)"),
    ("F12, Alt-S", "save as another file"),
    (
        "Ctrl-Q",
        "quit (asks if unsaved or unsent work would be lost)",
    ),
    (
        "Ctrl-Z, Ctrl-Y",
        "undo, redo your own edits (a run of typing is one step)",
    ),
    (
        "Ctrl-C, Ctrl-X, Ctrl-V",
        "copy, cut (system clipboard too, OSC 52), paste",
    ),
    (
        "Ctrl-F",
        "find as you type (Alt-R: regex; Esc: back to where you were)",
    ),
    (
        "F3, Shift-F3",
        "next / previous match (Enter too, in the find prompt)",
    ),
    ("Ctrl-R", "replace: Enter one, Alt-A all (one undo step)"),
    ("Ctrl-L", "go to line (line or line:column)"),
    (
        "F2, Ctrl-N",
        "jump to the next colleague's caret, in any file",
    ),
    (
        "F1, Ctrl-G",
        "show this help (F1 again: next page), hide it",
    ),
    (
        "Arrows, Home, End",
        "move (Home: first non-blank, again: column 1)",
    ),
    (
        "Ctrl-Left, Ctrl-Right",
        "previous / next word (also Alt-Left/Right, Alt-B/F)",
    ),
    ("PageUp, PageDown", "move a screen"),
    ("Ctrl-Home, Ctrl-End", "start / end of the document"),
    ("Shift + movement", "select"),
    ("Ctrl-A", "select all"),
    ("Enter", "new line, keeping the indentation"),
    (
        "Tab, Shift-Tab",
        "indent (a tab where the file uses tabs), dedent",
    ),
    (
        "Ctrl-Backspace, Ctrl-Delete",
        "delete a word back / forward (also Ctrl-W, Alt-Backspace, Alt-D)",
    ),
    (
        "Ctrl-Space, Tab",
        "complete the word (Tab: after a word); Enter accepts",
    ),
    (
        "Ctrl-P",
        "open a file: type to filter (fuzzy), arrows, Enter",
    ),
    (
        "Ctrl-PgUp, Ctrl-PgDn",
        "previous / next open buffer (also Alt-Up, Alt-Down)",
    ),
    ("F5", "list the open buffers (Enter: switch)"),
    (
        "F4",
        "follow the next colleague (again: the one after; Esc, typing stop)",
    ),
    ("F7, Ctrl-T", "show / hide the file list"),
    (
        "Alt-N, Alt-M, Alt-K",
        "new file, rename this file, delete it (asks)",
    ),
    ("F8", "copy the join command (system clipboard too)"),
    ("F6, Ctrl-U", "show / hide the users panel"),
    (
        "Alt-O",
        "the owner's menu: read-only, new links, remove someone, end the room",
    ),
    (
        "F9, Ctrl-O",
        "chat: open (Enter sends; a path:line in it becomes a link), close",
    ),
    (
        "In the chat",
        "Up/Down pick a message, Enter on it: jump to its line; Esc: back",
    ),
    (
        "Mouse",
        "click: move caret, drag: select, wheel: scroll; panels: follow, open",
    ),
    (
        "Esc",
        "close help, drop the selection and the search's marks",
    ),
    ("Any key, offline", "reconnect now instead of waiting"),
];

/// A key with its modifiers, as a config file names it (`"ctrl-shift-z"`,
/// `"alt-q"`, `"f9"`), for the `[keys]` overrides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyChord {
    code: KeyCode,
    ctrl: bool,
    alt: bool,
    shift: bool,
}

impl KeyChord {
    /// Parses `ctrl-`, `alt-` and `shift-` prefixes (any order, any case)
    /// and a key: one char, `f1`..`f12`, `enter`, `tab`, `backspace`,
    /// `delete`, `insert`, `home`, `end`, `pageup`, `pagedown`, `left`,
    /// `right`, `up`, `down`, `esc`, `space`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let lower = spec.trim().to_ascii_lowercase();
        let mut rest = lower.as_str();
        let (mut ctrl, mut alt, mut shift) = (false, false, false);
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-") {
                ctrl = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-") {
                alt = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("shift-") {
                shift = true;
                rest = r;
            } else {
                break;
            }
        }
        let code = match rest {
            "enter" => KeyCode::Enter,
            "tab" => KeyCode::Tab,
            "backspace" => KeyCode::Backspace,
            "delete" => KeyCode::Delete,
            "insert" => KeyCode::Insert,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "esc" => KeyCode::Esc,
            "space" => KeyCode::Char(' '),
            f if f.len() > 1 && f.starts_with('f') => match f[1..].parse::<u8>() {
                Ok(n @ 1..=12) => KeyCode::F(n),
                _ => return Err(format!("{spec:?} is not a key")),
            },
            c if c.chars().count() == 1 => KeyCode::Char(c.chars().next().unwrap_or(' ')),
            _ => {
                return Err(format!(
                    "{spec:?} is not a key (write e.g. \"ctrl-shift-z\", \"alt-q\", \"f9\")"
                ))
            }
        };
        if matches!(code, KeyCode::Char(_)) && !ctrl && !alt {
            return Err(format!(
                "{spec:?} would take a key that types text; add ctrl- or alt-"
            ));
        }
        Ok(Self {
            code,
            ctrl,
            alt,
            shift,
        })
    }

    /// Whether `key` is this chord (a capital letter counts as Shift).
    pub fn matches(&self, key: &KeyEvent) -> bool {
        let mut shift = key.modifiers.contains(KeyModifiers::SHIFT);
        let code = match key.code {
            KeyCode::Char(c) if c.is_ascii_uppercase() => {
                shift = true;
                KeyCode::Char(c.to_ascii_lowercase())
            }
            KeyCode::BackTab => {
                shift = true;
                KeyCode::Tab
            }
            other => other,
        };
        code == self.code
            && key.modifiers.contains(KeyModifiers::CONTROL) == self.ctrl
            && key.modifiers.contains(KeyModifiers::ALT) == self.alt
            && shift == self.shift
    }
}

/// What a key does to a one-line input (a prompt's, the chat's): a char
/// typed (without Ctrl or Alt), a deletion or a cursor move; `None` for
/// any other key.
pub(crate) fn line_edit_key(key: &KeyEvent) -> Option<PromptKey> {
    let plain = !key
        .modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
    Some(match key.code {
        KeyCode::Char(c) if plain => PromptKey::Char(c),
        KeyCode::Backspace => PromptKey::Backspace,
        KeyCode::Delete => PromptKey::Delete,
        KeyCode::Left => PromptKey::Left,
        KeyCode::Right => PromptKey::Right,
        KeyCode::Home => PromptKey::Home,
        KeyCode::End => PromptKey::End,
        _ => return None,
    })
}

/// The action for a key press, if any.
pub fn action_for(key: &KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    let shift = key.modifiers.contains(KeyModifiers::SHIFT);
    use Action::*;
    Some(match key.code {
        KeyCode::Char(c) if ctrl && !alt => match c.to_ascii_lowercase() {
            'a' => SelectAll,
            'c' => Copy,
            'x' => Cut,
            'v' => Paste,
            'z' => Undo,
            'y' => Redo,
            's' => Save,
            'q' => Quit,
            'g' => Help,
            'n' => NextUser,
            'u' => ToggleUsers,
            'f' => Find,
            'r' => Replace,
            'l' => GoToLine,
            'p' => OpenPicker,
            't' => ToggleFiles,
            'o' => ToggleChat,
            ' ' => Complete,
            // Ctrl-Backspace arrives as Ctrl-H (^H) in most terminals.
            'w' | 'h' => DeleteWordBack,
            _ => return None,
        },
        KeyCode::Char('s' | 'S') if alt && !ctrl => SaveAs,
        // Alt-B, Alt-F, Alt-D: what readline users (and macOS terminals'
        // Option-arrows) send.
        KeyCode::Char('b' | 'B') if alt && !ctrl => WordLeft(shift),
        KeyCode::Char('f' | 'F') if alt && !ctrl => WordRight(shift),
        KeyCode::Char('d') if alt && !ctrl => DeleteWordForward,
        KeyCode::Char('n' | 'N') if alt && !ctrl => NewFile,
        KeyCode::Char('m' | 'M') if alt && !ctrl => RenameFile,
        KeyCode::Char('k' | 'K') if alt && !ctrl => DeleteFile,
        KeyCode::Char('o' | 'O') if alt && !ctrl => OwnerMenu,
        // AltGr arrives as Ctrl+Alt on some terminals: it types a char.
        KeyCode::Char(c) if !alt || ctrl => Type(c),
        KeyCode::Enter => Newline,
        KeyCode::Tab if shift => Dedent,
        KeyCode::Tab => Tab,
        KeyCode::BackTab => Dedent,
        KeyCode::Backspace if ctrl || alt => DeleteWordBack,
        KeyCode::Backspace => Backspace,
        KeyCode::Delete if ctrl || alt => DeleteWordForward,
        KeyCode::Delete => Delete,
        KeyCode::Left if ctrl || alt => WordLeft(shift),
        KeyCode::Right if ctrl || alt => WordRight(shift),
        KeyCode::Left => Left(shift),
        KeyCode::Right => Right(shift),
        KeyCode::Up if alt && !ctrl => PrevBuffer,
        KeyCode::Down if alt && !ctrl => NextBuffer,
        KeyCode::Up => Up(shift),
        KeyCode::Down => Down(shift),
        KeyCode::Home if ctrl => DocStart(shift),
        KeyCode::End if ctrl => DocEnd(shift),
        KeyCode::Home => Home(shift),
        KeyCode::End => End(shift),
        KeyCode::PageUp if ctrl => PrevBuffer,
        KeyCode::PageDown if ctrl => NextBuffer,
        KeyCode::PageUp => PageUp(shift),
        KeyCode::PageDown => PageDown(shift),
        KeyCode::F(1) => Help,
        KeyCode::F(2) => NextUser,
        KeyCode::F(3) if shift => FindPrev,
        KeyCode::F(3) => FindNext,
        KeyCode::F(12) => SaveAs,
        KeyCode::F(4) => Follow,
        KeyCode::F(5) => BufferList,
        KeyCode::F(6) => ToggleUsers,
        KeyCode::F(7) => ToggleFiles,
        KeyCode::F(8) => CopyShare,
        KeyCode::F(9) => ToggleChat,
        KeyCode::Esc => Escape,
        // Ctrl-Space, as terminals that send it as NUL report it.
        KeyCode::Null => Complete,
        _ => return None,
    })
}

impl Editor {
    /// Handles one terminal event that arrived at `now` (which ends an undo
    /// group after a pause).
    pub fn handle_event_at(&mut self, event: &Event, now: Instant) {
        self.clock = Some(now);
        self.handle_event(event);
    }

    /// Handles one terminal event, at the time last given to
    /// [`Editor::handle_event_at`] (none: pauses end no undo group).
    pub fn handle_event(&mut self, event: &Event) {
        // A paste, a click or the wheel leaves the word; moving the mouse
        // does not.
        let leaves = match event {
            Event::Paste(_) => true,
            Event::Mouse(m) => !matches!(m.kind, MouseEventKind::Moved | MouseEventKind::Up(_)),
            _ => false,
        };
        if leaves {
            self.close_completion();
        }
        match event {
            Event::Key(key) => self.handle_key(key),
            Event::Paste(text) => {
                if self.picker().is_some() {
                    self.picker_paste(text);
                } else if self.prompt().is_some() {
                    for c in text.chars().filter(|c| !c.is_control()) {
                        self.prompt_key(PromptKey::Char(c));
                    }
                } else {
                    self.paste(text);
                }
            }
            Event::Mouse(m) => match m.kind {
                MouseEventKind::Down(MouseButton::Left) => {
                    if self.in_text_area(m.column, m.row) {
                        self.text_press = Some(false);
                        self.click(m.column, m.row, false);
                    } else {
                        self.text_press = None;
                        self.click_panel(m.column, m.row);
                    }
                }
                MouseEventKind::Drag(MouseButton::Left) => {
                    if let Some(dragged) = &mut self.text_press {
                        *dragged = true;
                    }
                    self.click(m.column, m.row, true);
                }
                MouseEventKind::Up(MouseButton::Left) => {
                    // A plain click into the text takes the view back; a
                    // drag only selected (selecting keeps following), so
                    // whether it was a click is known only now.
                    let plain_click = self.text_press.take() == Some(false);
                    if plain_click {
                        self.stop_following();
                    }
                }
                MouseEventKind::ScrollUp => self.scroll(-3),
                MouseEventKind::ScrollDown => self.scroll(3),
                _ => {}
            },
            // The view reads the new size at the next draw.
            _ => {}
        }
    }

    /// Handles one key.
    pub fn handle_key(&mut self, key: &KeyEvent) {
        if key.kind == KeyEventKind::Release {
            return;
        }
        self.clear_notice();
        self.retry_if_waiting();
        if self.picker().is_some() {
            self.picker_key(key);
            return;
        }
        if self.owner_menu_key(key) {
            return;
        }
        if self.chat.focused() && self.prompt().is_none() && self.chat_key(key) {
            return;
        }
        if self.prompt().is_some() {
            let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
            let alt = key.modifiers.contains(KeyModifiers::ALT);
            let shift = key.modifiers.contains(KeyModifiers::SHIFT);
            let pk = match key.code {
                KeyCode::Char('q') if ctrl => Some(PromptKey::Confirm),
                KeyCode::Char('c') if ctrl => Some(PromptKey::Cancel),
                KeyCode::Char('f') if ctrl => Some(PromptKey::Accept),
                KeyCode::Char('r' | 'R') if alt && !ctrl => Some(PromptKey::ToggleRegex),
                KeyCode::Char('a' | 'A') if alt && !ctrl => Some(PromptKey::ReplaceAll),
                KeyCode::Enter => Some(PromptKey::Enter),
                KeyCode::Esc => Some(PromptKey::Cancel),
                KeyCode::F(3) if shift => Some(PromptKey::Prev),
                KeyCode::F(3) => Some(PromptKey::Next),
                _ => line_edit_key(key),
            };
            match pk {
                Some(pk) => {
                    self.prompt_key(pk);
                    return;
                }
                // Any other key ends a search where it is, then does its
                // job (an arrow moves from the match, Ctrl-C copies it).
                None if self.in_search_prompt() => self.prompt_key(PromptKey::Accept),
                None => return,
            };
        }
        if self.completion_key(key) {
            return;
        }
        // Typing with the popup open narrows it.
        let narrowing = self.completion().is_some();
        let overridden = self
            .key_overrides
            .iter()
            .find(|(chord, _)| chord.matches(key))
            .map(|(_, action)| *action);
        match overridden.or_else(|| action_for(key)) {
            Some(action) => self.apply(action),
            None => {
                if let Some(name) = key_name(key) {
                    self.set_notice(format!("{name} does nothing here · F1 lists the keys"));
                }
            }
        }
        if narrowing {
            self.completion_follow();
        }
    }

    /// Carries out an action.
    pub fn apply(&mut self, action: Action) {
        use Action::*;
        if self.help_visible() && !matches!(action, Help | Quit) {
            // Any key closes the help first, like a pager.
            self.hide_help();
            if action == Escape {
                return;
            }
        }
        let edits = matches!(
            action,
            Type(_)
                | Newline
                | Tab
                | Dedent
                | Backspace
                | Delete
                | Cut
                | Paste
                | Undo
                | Redo
                | DeleteWordBack
                | DeleteWordForward
        );
        if edits || action == Escape {
            // Typing takes the view back; selecting and scrolling do not.
            self.stop_following();
        }
        match action {
            Type(c) => self.type_char(c),
            Newline => self.newline(),
            Tab => {
                if !self.tab_completes() {
                    self.tab();
                }
            }
            Dedent => self.dedent(),
            Backspace => self.backspace(),
            Delete => self.delete(),
            Left(s) => self.left(s),
            Right(s) => self.right(s),
            Up(s) => self.vertical(-1, s),
            Down(s) => self.vertical(1, s),
            Home(s) => self.home(s),
            End(s) => self.end(s),
            PageUp(s) => self.page(false, s),
            PageDown(s) => self.page(true, s),
            DocStart(s) => self.doc_edge(false, s),
            DocEnd(s) => self.doc_edge(true, s),
            SelectAll => self.select_all(),
            Copy => self.copy(),
            Cut => self.cut(),
            Paste => self.paste_clipboard(),
            Undo => self.undo(),
            Redo => self.redo(),
            Save => self.save(),
            SaveAs => self.save_as(),
            CopyShare => self.copy_share_command(),
            ToggleUsers => self.toggle_users_panel(),
            Quit => self.quit(),
            Help => self.toggle_help(),
            NextUser => self.jump_to_next_user(),
            Escape => {
                self.clear_selection();
                self.hide_search();
            }
            WordLeft(s) => self.word_left(s),
            WordRight(s) => self.word_right(s),
            DeleteWordBack => self.delete_word_back(),
            DeleteWordForward => self.delete_word_forward(),
            Find => self.find(),
            Replace => self.find_replace(),
            FindNext => self.find_next(),
            FindPrev => self.find_prev(),
            GoToLine => self.go_to_line_prompt(),
            OpenPicker => self.open_picker(PickerKind::Files),
            BufferList => self.open_picker(PickerKind::Buffers),
            PrevBuffer => self.switch_buffer(false),
            NextBuffer => self.switch_buffer(true),
            ToggleFiles => self.toggle_files_panel(),
            NewFile => self.new_file_prompt(),
            RenameFile => self.rename_prompt(),
            DeleteFile => self.delete_prompt(),
            Follow => self.follow_next(),
            ToggleChat => self.toggle_chat(),
            OwnerMenu => self.toggle_owner_menu(),
            Complete => self.open_completion(),
        }
    }
}

/// How the hint for a key without an action names it; `None` for keys that
/// never get one (modifiers alone, lock and media keys).
fn key_name(key: &KeyEvent) -> Option<String> {
    let base = match key.code {
        KeyCode::Char(' ') => "Space".to_owned(),
        KeyCode::Char(c) => c.to_uppercase().to_string(),
        KeyCode::F(n) => format!("F{n}"),
        KeyCode::Insert => "Insert".into(),
        KeyCode::Null => "Ctrl-Space".into(),
        KeyCode::Menu => "Menu".into(),
        KeyCode::KeypadBegin => "Keypad 5".into(),
        KeyCode::Up => "Up".into(),
        KeyCode::Down => "Down".into(),
        KeyCode::Left => "Left".into(),
        KeyCode::Right => "Right".into(),
        KeyCode::Home => "Home".into(),
        KeyCode::End => "End".into(),
        KeyCode::PageUp => "PageUp".into(),
        KeyCode::PageDown => "PageDown".into(),
        KeyCode::Tab | KeyCode::BackTab => "Tab".into(),
        KeyCode::Enter => "Enter".into(),
        KeyCode::Esc => "Esc".into(),
        KeyCode::Backspace => "Backspace".into(),
        KeyCode::Delete => "Delete".into(),
        _ => return None,
    };
    let mut name = String::new();
    for (m, label) in [
        (KeyModifiers::CONTROL, "Ctrl-"),
        (KeyModifiers::ALT, "Alt-"),
        (KeyModifiers::SHIFT, "Shift-"),
        (KeyModifiers::SUPER, "Super-"),
    ] {
        if key.modifiers.contains(m) {
            name.push_str(label);
        }
    }
    name.push_str(&base);
    Some(name)
}
