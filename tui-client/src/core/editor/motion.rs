//! Moving the caret and the view: arrows, Home/End, pages, the document's
//! ends, mouse clicks and the wheel, and jumping to a colleague's caret.
//! Columns come from the editor's column index, so moving on a long line
//! costs what the move covers, not the line.

use collab_protocol::char_len;

use super::Editor;
use crate::core::text_layout as tl;
use crate::core::words;

impl Editor {
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

    /// Ctrl-Left: the start of the previous word.
    pub fn word_left(&mut self, extend: bool) {
        let pos = words::prev_word_start(self.doc.rope(), self.caret);
        self.goal_col = None;
        self.move_to(pos, extend);
    }

    /// Ctrl-Right: the end of the next word.
    pub fn word_right(&mut self, extend: bool) {
        let pos = words::next_word_end(self.doc.rope(), self.caret);
        self.goal_col = None;
        self.move_to(pos, extend);
    }

    /// Up (negative) or down by `lines`, aiming at the goal column.
    pub fn vertical(&mut self, lines: isize, extend: bool) {
        let rope = self.doc.rope();
        let line = tl::line_of(rope, self.caret);
        let last = tl::line_count(rope).saturating_sub(1);
        let len = rope.len_chars();
        let goal = self.goal_col.unwrap_or_else(|| self.column_of(self.caret));
        let target = line.saturating_add_signed(lines).min(last);
        let pos = if lines < 0 && line == 0 {
            0
        } else if lines > 0 && line == last {
            len
        } else {
            self.offset_at_column(target, goal)
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
        if !self.in_text_area(column, row) {
            return;
        }
        let v = self.viewport;
        let rope = self.doc.rope();
        let line = self.top + usize::from(row - v.y);
        let pos = if line >= tl::line_count(rope) {
            rope.len_chars()
        } else {
            let col = self.left + usize::from(column.saturating_sub(v.x));
            self.offset_at_column(line, col)
        };
        self.goal_col = None;
        self.move_to(pos, extend);
    }

    /// True when a click at this cell lands in the text (or its gutter),
    /// not in a panel beside it.
    pub fn in_text_area(&self, column: u16, row: u16) -> bool {
        let v = self.viewport;
        row >= v.y && row < v.y + v.height && column < v.x + v.width
    }

    /// Scrolls the view by `lines` without moving the caret.
    pub fn scroll(&mut self, lines: isize) {
        let max = tl::line_count(self.doc.rope()).saturating_sub(1);
        self.top = self.top.saturating_add_signed(lines).min(max);
    }
}
