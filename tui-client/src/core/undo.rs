//! Undo and redo of the user's own edits in a shared document.
//!
//! Each stack holds inverse operations that apply to the *current* document.
//! Whenever any other operation changes the document (a colleague's edit),
//! every stacked operation is transformed over it, top of the stack first,
//! as ot.js's UndoManager does; so undoing never removes a colleague's text,
//! it only takes back what this user did, wherever that text has moved to.
//!
//! Small edits of one kind in a row (typing, including spaces; deleting
//! backwards; deleting forwards) join one undo step, as editors do: the
//! group ends on a pause longer than [`GROUP_PAUSE`], a caret motion, or an
//! edit of another kind. A colleague's edit does not end it (their typing
//! elsewhere would otherwise cut yours into single chars); the group's
//! entry is transformed over it like every other entry.

use std::time::{Duration, Instant};

use collab_protocol::Operation;

/// Entries kept per stack; older ones are forgotten.
const MAX_ENTRIES: usize = 1000;

/// A pause between two keys at least this long starts a new undo step.
pub const GROUP_PAUSE: Duration = Duration::from_secs(1);

/// What kind of edit an undo entry came from, for grouping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditKind {
    /// One typed char (spaces too): a run of them is one undo step.
    Typing,
    /// Backspace over one glyph: a run is one step.
    DeleteBack,
    /// Delete of one glyph: a run is one step.
    DeleteForward,
    /// Anything else: its own undo step.
    Other,
}

/// The undo and redo stacks.
#[derive(Clone, Debug, Default)]
pub struct UndoHistory {
    undo: Vec<Operation>,
    redo: Vec<Operation>,
    /// The kind of the top undo entry while more of that kind may join it,
    /// and when it was last joined (`None`: the caller gave no time).
    open_group: Option<(EditKind, Option<Instant>)>,
}

impl UndoHistory {
    /// Empty stacks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a new edit by its inverse, made at `now` when the caller
    /// knows the time (without it, pauses never end a group). Clears redo
    /// (a new edit starts a new branch of history).
    pub fn record(&mut self, inverse: Operation, kind: EditKind, now: Option<Instant>) {
        self.redo.clear();
        let joins = self.open_group.is_some_and(|(open, last)| {
            let paused = last
                .zip(now)
                .is_some_and(|(last, now)| now.saturating_duration_since(last) >= GROUP_PAUSE);
            open == kind && !paused
        });
        if joins {
            self.open_group = Some((kind, now));
            if let Some(top) = self.undo.pop() {
                // Undo the new edit first, then the earlier ones.
                match inverse.compose(&top) {
                    Ok(joined) => {
                        self.undo.push(joined);
                        return;
                    }
                    Err(_) => {
                        self.undo.push(top);
                        self.open_group = None;
                    }
                }
            }
        }
        push_bounded(&mut self.undo, inverse);
        self.open_group = (kind != EditKind::Other).then_some((kind, now));
    }

    /// Ends the current group (the caret moved, a line break, a paste).
    pub fn break_group(&mut self) {
        self.open_group = None;
    }

    /// The operation that undoes the last edit, removed from the stack.
    pub fn pop_undo(&mut self) -> Option<Operation> {
        self.open_group = None;
        self.undo.pop()
    }

    /// The operation that redoes the last undone edit, removed from the stack.
    pub fn pop_redo(&mut self) -> Option<Operation> {
        self.open_group = None;
        self.redo.pop()
    }

    /// Records the inverse of an undo, so it can be redone.
    pub fn push_redo(&mut self, inverse: Operation) {
        push_bounded(&mut self.redo, inverse);
    }

    /// Records the inverse of a redo, so it can be undone again (keeps redo).
    pub fn push_undo(&mut self, inverse: Operation) {
        push_bounded(&mut self.undo, inverse);
    }

    /// Carries both stacks over `op`, an operation someone else applied to
    /// the current document. An entry that can no longer be transformed
    /// (which would mean a bug elsewhere) drops the history rather than
    /// risk undoing the wrong text.
    pub fn transform(&mut self, op: &Operation) {
        for stack in [&mut self.undo, &mut self.redo] {
            if transform_stack(stack, op).is_err() {
                stack.clear();
            }
        }
    }

    /// Forgets everything (the document was replaced wholesale).
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Number of undo steps available.
    pub fn undo_len(&self) -> usize {
        self.undo.len()
    }

    /// Number of redo steps available.
    pub fn redo_len(&self) -> usize {
        self.redo.len()
    }
}

fn push_bounded(stack: &mut Vec<Operation>, op: Operation) {
    if stack.len() >= MAX_ENTRIES {
        stack.remove(0);
    }
    stack.push(op);
}

/// The top entry applies to the current document, each lower one to the
/// document after the entries above it were undone; so `op` is transformed
/// down the stack along with them.
fn transform_stack(
    stack: &mut [Operation],
    op: &Operation,
) -> Result<(), collab_protocol::OpError> {
    let mut op = op.clone();
    for entry in stack.iter_mut().rev() {
        let (entry2, op2) = Operation::transform(entry, &op)?;
        *entry = entry2;
        op = op2;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ropey::Rope;

    /// Inserts `text` at `at` as the user's own edit and records it.
    fn own(doc: &mut Rope, h: &mut UndoHistory, at: usize, text: &str, kind: EditKind) {
        let op = ins(doc, at, text);
        let inverse = op.invert(doc).unwrap();
        op.apply(doc).unwrap();
        h.record(inverse, kind, None);
    }

    fn ins(doc: &Rope, at: usize, text: &str) -> Operation {
        Operation::replace(doc.len_chars(), at, at, text).unwrap()
    }

    #[test]
    fn undo_skips_a_colleagues_text() {
        let mut doc = Rope::from_str("ab");
        let mut h = UndoHistory::new();
        own(&mut doc, &mut h, 2, "MINE", EditKind::Other);
        // A colleague types before and inside... well, around our text.
        let theirs = ins(&doc, 0, "theirs ");
        theirs.apply(&mut doc).unwrap();
        h.transform(&theirs);
        assert_eq!(doc.to_string(), "theirs abMINE");
        let undo = h.pop_undo().unwrap();
        let redo = undo.invert(&doc).unwrap();
        undo.apply(&mut doc).unwrap();
        h.push_redo(redo);
        assert_eq!(doc.to_string(), "theirs ab");
        let redo = h.pop_redo().unwrap();
        redo.apply(&mut doc).unwrap();
        assert_eq!(doc.to_string(), "theirs abMINE");
    }

    #[test]
    fn typing_groups_until_broken() {
        let mut doc = Rope::new();
        let mut h = UndoHistory::new();
        for c in ["a", "b"] {
            let end = doc.len_chars();
            own(&mut doc, &mut h, end, c, EditKind::Typing);
        }
        h.break_group();
        own(&mut doc, &mut h, 2, "c", EditKind::Typing);
        assert_eq!(h.undo_len(), 2);
        h.pop_undo().unwrap().apply(&mut doc).unwrap();
        assert_eq!(doc.to_string(), "ab");
        h.pop_undo().unwrap().apply(&mut doc).unwrap();
        assert_eq!(doc.to_string(), "");
    }

    /// Types `s` at the end, one char per `gap` from `start`.
    fn type_at(doc: &mut Rope, h: &mut UndoHistory, s: &str, start: Instant, gap: Duration) {
        for (i, c) in s.chars().enumerate() {
            let end = doc.len_chars();
            let op = ins(doc, end, &c.to_string());
            let inverse = op.invert(doc).unwrap();
            op.apply(doc).unwrap();
            h.record(inverse, EditKind::Typing, Some(start + gap * i as u32));
        }
    }

    #[test]
    fn a_run_of_typing_with_spaces_is_one_step_until_a_pause() {
        let mut doc = Rope::new();
        let mut h = UndoHistory::new();
        let t0 = Instant::now();
        type_at(
            &mut doc,
            &mut h,
            "let x = 1;",
            t0,
            Duration::from_millis(200),
        );
        assert_eq!(h.undo_len(), 1, "spaces do not split the run");
        // Two seconds later: a new step.
        type_at(
            &mut doc,
            &mut h,
            " y",
            t0 + Duration::from_secs(4),
            Duration::ZERO,
        );
        assert_eq!(h.undo_len(), 2);
        h.pop_undo().unwrap().apply(&mut doc).unwrap();
        assert_eq!(doc.to_string(), "let x = 1;");
    }

    #[test]
    fn a_change_of_kind_ends_the_group_and_a_colleague_does_not() {
        let mut doc = Rope::from_str("abc");
        let mut h = UndoHistory::new();
        own(&mut doc, &mut h, 3, "d", EditKind::Typing);
        // A colleague types at the start, between our two keys.
        let theirs = ins(&doc, 0, ">");
        theirs.apply(&mut doc).unwrap();
        h.transform(&theirs);
        own(&mut doc, &mut h, 5, "e", EditKind::Typing);
        assert_eq!(h.undo_len(), 1, "their edit left the group open");
        // Backspace is another kind.
        let op = Operation::replace(doc.len_chars(), 5, 6, "").unwrap();
        let inverse = op.invert(&doc).unwrap();
        op.apply(&mut doc).unwrap();
        h.record(inverse, EditKind::DeleteBack, None);
        assert_eq!(h.undo_len(), 2);
        h.pop_undo().unwrap().apply(&mut doc).unwrap();
        h.pop_undo().unwrap().apply(&mut doc).unwrap();
        assert_eq!(doc.to_string(), ">abc", "their text stays");
    }

    #[test]
    fn a_new_edit_clears_redo() {
        let mut doc = Rope::from_str("x");
        let mut h = UndoHistory::new();
        own(&mut doc, &mut h, 1, "y", EditKind::Other);
        let undo = h.pop_undo().unwrap();
        h.push_redo(undo.invert(&doc).unwrap());
        undo.apply(&mut doc).unwrap();
        assert_eq!(h.redo_len(), 1);
        own(&mut doc, &mut h, 0, "z", EditKind::Other);
        assert_eq!(h.redo_len(), 0);
    }
}
