//! The file picker (Ctrl-P) and the buffer list (F5): a query typed on the
//! message line, the matching files below it ranked by the fuzzy scorer,
//! Up/Down to choose, Enter to open, Esc to go back. Each file shows which
//! colleagues are in it.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::{Editor, FileMark, LineInput, PromptKey};
use collab_protocol::fuzzy;

/// What the picker lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PickerKind {
    /// Every file of the room.
    Files,
    /// The open buffers, most recently used first.
    Buffers,
}

/// The picker's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Picker {
    /// What it lists.
    pub kind: PickerKind,
    /// The query.
    pub input: LineInput,
    /// The chosen line among the matches.
    pub selected: usize,
}

/// One line of the picker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PickItem {
    /// The document.
    pub doc: String,
    /// Its path.
    pub path: String,
    /// The chars of the path the query matched.
    pub positions: Vec<usize>,
    /// Colleagues in it.
    pub marks: Vec<FileMark>,
    /// Open here as a buffer.
    pub open: bool,
}

impl Editor {
    /// Opens the file picker or the buffer list.
    pub fn open_picker(&mut self, kind: PickerKind) {
        if !self.is_project() {
            self.notice = Some("Not connected yet: the room's files are not known".into());
            return;
        }
        self.prompt = None;
        self.project.picker = Some(Picker {
            kind,
            input: LineInput::default(),
            // The buffer list starts on the previous buffer (a quick
            // back-and-forth is F5, Enter).
            selected: usize::from(kind == PickerKind::Buffers),
        });
    }

    /// The open picker.
    pub fn picker(&self) -> Option<&Picker> {
        self.project.picker.as_ref()
    }

    /// The picker's matches, best first.
    pub fn picker_items(&self) -> Vec<PickItem> {
        let Some(picker) = &self.project.picker else {
            return Vec::new();
        };
        let docs: Vec<(String, String)> = match picker.kind {
            PickerKind::Files => self
                .files()
                .into_iter()
                .map(|f| (f.doc.clone(), f.path.clone()))
                .collect(),
            PickerKind::Buffers => self
                .recent_docs()
                .iter()
                .filter_map(|d| Some((d.clone(), self.path_of(d)?.to_owned())))
                .collect(),
        };
        let query = picker.input.text();
        let ranked: Vec<(usize, fuzzy::Match)> =
            if picker.kind == PickerKind::Buffers && query.is_empty() {
                // Most recent first, as listed.
                (0..docs.len())
                    .map(|i| {
                        (
                            i,
                            fuzzy::Match {
                                score: 0,
                                positions: Vec::new(),
                            },
                        )
                    })
                    .collect()
            } else {
                fuzzy::rank(query, docs.iter().map(|(_, p)| p.as_str()))
            };
        ranked
            .into_iter()
            .map(|(i, m)| {
                let (doc, path) = &docs[i];
                PickItem {
                    doc: doc.clone(),
                    path: path.clone(),
                    positions: m.positions,
                    marks: self.marks_for(doc),
                    open: self.is_open(doc),
                }
            })
            .collect()
    }

    /// A key while the picker is open.
    pub(crate) fn picker_key(&mut self, key: &KeyEvent) {
        let Some(mut picker) = self.project.picker.take() else {
            return;
        };
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let count = self.with_picker(&picker, |ed| ed.picker_items().len());
        match key.code {
            KeyCode::Esc => return,
            KeyCode::Char('c') if ctrl => return,
            KeyCode::Enter => {
                let items = self.with_picker(&picker, Self::picker_items);
                match items.get(picker.selected.min(items.len().saturating_sub(1))) {
                    Some(item) => {
                        self.stop_following();
                        self.open_doc(&item.doc);
                    }
                    None => self.notice = Some("No file matches".into()),
                }
                return;
            }
            KeyCode::Up => picker.selected = picker.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Tab => {
                picker.selected = (picker.selected + 1).min(count.saturating_sub(1));
            }
            KeyCode::Char('p' | 'k') if ctrl => picker.selected = picker.selected.saturating_sub(1),
            KeyCode::Char('n' | 'j') if ctrl => {
                picker.selected = (picker.selected + 1).min(count.saturating_sub(1));
            }
            KeyCode::PageUp => picker.selected = picker.selected.saturating_sub(10),
            KeyCode::PageDown => {
                picker.selected = (picker.selected + 10).min(count.saturating_sub(1))
            }
            code => {
                let pk = match code {
                    KeyCode::Char(c) if !ctrl => Some(PromptKey::Char(c)),
                    KeyCode::Backspace => Some(PromptKey::Backspace),
                    KeyCode::Delete => Some(PromptKey::Delete),
                    KeyCode::Left => Some(PromptKey::Left),
                    KeyCode::Right => Some(PromptKey::Right),
                    KeyCode::Home => Some(PromptKey::Home),
                    KeyCode::End => Some(PromptKey::End),
                    _ => None,
                };
                if let Some(pk) = pk {
                    picker.input.key(pk);
                    picker.selected = 0;
                }
            }
        }
        self.project.picker = Some(picker);
    }

    /// Pastes into the picker's query.
    pub(crate) fn picker_paste(&mut self, text: &str) {
        if let Some(p) = &mut self.project.picker {
            for c in text.chars().filter(|c| !c.is_control()) {
                p.input.key(PromptKey::Char(c));
            }
            p.selected = 0;
        }
    }

    fn with_picker<R>(&mut self, picker: &Picker, f: impl FnOnce(&Self) -> R) -> R {
        self.project.picker = Some(picker.clone());
        let out = f(self);
        self.project.picker = None;
        out
    }
}
