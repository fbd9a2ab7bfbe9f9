//! Following a colleague (F4): the view goes wherever they are, opening
//! their file and keeping their caret on screen as they move. Selecting and
//! scrolling keep following (the next move of theirs brings the view back);
//! typing, clicking into the text, switching files oneself or Esc end it.
//! F2 jumps once to the next colleague, in whatever file they are.

use super::Editor;
use crate::core::text_layout as tl;

impl Editor {
    /// The colleague followed (user id).
    pub fn following(&self) -> Option<&str> {
        self.project.following.as_deref()
    }

    /// The followed colleague's name, for the status bar.
    pub fn following_name(&self) -> Option<String> {
        let id = self.project.following.as_deref()?;
        Some(self.presence.display_name(id))
    }

    /// F4: follows the next colleague who edits (not a disk mirror),
    /// cycling; one whose caret is not known yet is followed from their
    /// first move.
    pub fn follow_next(&mut self) {
        let candidates: Vec<&str> = self
            .presence
            .users()
            .iter()
            .filter(|u| !u.is_disk_mirror() && !u.role.is_read_only())
            .map(|u| u.user_id.as_str())
            .collect();
        let at = self
            .project
            .following
            .as_deref()
            .and_then(|f| candidates.iter().position(|c| *c == f));
        let next = match at {
            Some(i) => candidates.get((i + 1) % candidates.len()),
            None => candidates.first(),
        }
        .map(|id| (*id).to_owned());
        match next {
            Some(id) => self.follow(&id),
            None => self.notice = Some("No colleague to follow".into()),
        }
    }

    /// Follows `user_id`.
    pub fn follow(&mut self, user_id: &str) {
        self.project.following = Some(user_id.to_owned());
        let name = self.presence.display_name(user_id);
        self.notice = Some(format!("Following {name} · Esc or typing stops"));
        self.follow_jump();
    }

    /// Stops following, saying so.
    pub fn stop_following(&mut self) {
        if let Some(id) = self.project.following.take() {
            let name = self.presence.display_name(&id);
            self.notice = Some(format!("Stopped following {name}"));
        }
    }

    /// A colleague's caret moved: the view follows when it is theirs.
    pub(super) fn colleague_moved(&mut self, user_id: &str) {
        if self.project.following.as_deref() == Some(user_id) {
            self.follow_jump();
        }
    }

    /// A colleague left: following them ends.
    pub(super) fn colleague_left(&mut self, user_id: &str) {
        if self.project.following.as_deref() == Some(user_id) {
            self.project.following = None;
            self.notice = Some("The colleague you followed left".into());
        }
    }

    /// `doc` just opened: show the followed colleague in it.
    pub(super) fn follow_into(&mut self, doc: &str) {
        if self.doc_id.as_deref() != Some(doc) {
            return;
        }
        self.land_pending_jump();
        if let Some(id) = self.project.jump_to.take() {
            self.jump_to_user(&id);
        }
        if self.project.following.is_some() {
            self.follow_jump();
        }
    }

    /// Brings the view to the followed colleague: their file, their caret.
    fn follow_jump(&mut self) {
        let Some(id) = self.project.following.clone() else {
            return;
        };
        let Some(u) = self.presence.users().iter().find(|u| u.user_id == id) else {
            return;
        };
        let (doc, cursor) = (u.doc.clone(), u.cursor);
        if let Some(doc) = doc.filter(|d| self.doc_id.as_deref() != Some(d.as_str())) {
            // Their file: opened (their caret is shown once it arrives).
            self.open_doc(&doc);
            if !self.opening {
                self.follow_jump_here(cursor_in(self, &id));
            }
            return;
        }
        self.follow_jump_here(cursor);
    }

    fn follow_jump_here(&mut self, cursor: Option<usize>) {
        if let Some(c) = cursor {
            self.reveal(c);
        }
    }

    /// Scrolls so char offset `pos` is on screen (a third down when the
    /// view has to move), without moving this user's caret.
    pub(crate) fn reveal(&mut self, pos: usize) {
        let rope = self.doc.rope();
        let pos = pos.min(rope.len_chars());
        let height = usize::from(self.viewport.height.max(1));
        let width = usize::from(self.viewport.width.max(1));
        let line = tl::line_of(rope, pos);
        if line < self.top || line >= self.top + height {
            self.top = line.saturating_sub(height / 3);
        }
        let col = self.column_of(pos);
        if col < self.left || col >= self.left + width {
            self.left = col.saturating_sub(width / 2);
        }
        // The next draw must not scroll back to this user's own caret.
        self.follow_caret = false;
    }

    /// F2: the next colleague's caret, in whatever file they are (opened
    /// when needed; the caret moves there once it arrives).
    pub fn jump_to_next_user(&mut self) {
        let next = self
            .presence
            .next_after(self.followed.as_deref())
            .map(|u| (u.user_id.clone(), u.doc.clone()));
        let Some((id, doc)) = next else {
            self.notice = Some("No colleague's caret to jump to".into());
            return;
        };
        self.followed = Some(id.clone());
        if let Some(doc) = doc.filter(|d| self.doc_id.as_deref() != Some(d.as_str())) {
            self.stop_following();
            self.open_doc(&doc);
            if self.opening {
                self.project.jump_to = Some(id);
                return;
            }
        }
        self.jump_to_user(&id);
    }

    fn jump_to_user(&mut self, id: &str) {
        let name = self.presence.display_name(id);
        match cursor_in(self, id) {
            Some(cursor) => {
                self.goal_col = None;
                self.move_to(cursor, false);
                self.notice = Some(format!("At {name}'s caret"));
            }
            None => self.notice = Some(format!("{name}'s caret is not known yet")),
        }
    }
}

/// A colleague's caret, when it is in the active buffer.
fn cursor_in(ed: &Editor, id: &str) -> Option<usize> {
    let u = ed.presence.users().iter().find(|u| u.user_id == id)?;
    let here = u.doc.is_none() || u.doc.as_deref() == ed.doc_id.as_deref();
    u.cursor.filter(|_| here)
}
