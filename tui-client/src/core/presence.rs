//! Who else is in the room and where their carets are, in offsets of the
//! *local* document. Every operation applied locally (ours or theirs) moves
//! the stored carets with it, so a colleague's caret stays on the same text
//! while anyone types before it.

use collab_protocol::{Operation, Role, UserInfo};

/// A `#rrggbb` color as red, green, blue; grey for anything else.
pub fn parse_color(hex: &str) -> (u8, u8, u8) {
    let parse = || -> Option<(u8, u8, u8)> {
        let h = hex.strip_prefix('#')?;
        if h.len() != 6 || !h.is_ascii() {
            return None;
        }
        let c = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).ok();
        Some((c(0)?, c(2)?, c(4)?))
    };
    parse().unwrap_or((128, 128, 128))
}

/// Another user in the room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteUser {
    /// Stable id.
    pub user_id: String,
    /// Display name.
    pub name: String,
    /// Their color.
    pub rgb: (u8, u8, u8),
    /// Caret, a local document offset, once known.
    pub cursor: Option<usize>,
    /// Other end of their selection, if any.
    pub anchor: Option<usize>,
    /// Editor, viewer (read-only link) or watcher (a script).
    pub role: Role,
    /// The document they are in (project rooms; `None` until known, and
    /// in a one-document room); `cursor` and `anchor` are offsets in it.
    pub doc: Option<String>,
    /// Their caret as the server gave it, (revision, cursor, anchor), while
    /// their document is not open here: placed once it opens.
    pub unplaced: Option<(u64, u64, Option<u64>)>,
}

impl RemoteUser {
    /// True for the headless connection that mirrors a host's files to
    /// disk (named `"{name} (disk)"`): listed, but not followed or jumped
    /// to by default.
    pub fn is_disk_mirror(&self) -> bool {
        self.name.ends_with(" (disk)")
    }
}

/// The other users, in the order they joined.
#[derive(Clone, Debug, Default)]
pub struct Presence {
    users: Vec<RemoteUser>,
    /// This user's own name, which colleagues of the same name are told
    /// apart from.
    own_name: String,
}

impl Presence {
    /// Nobody.
    pub fn new() -> Self {
        Self::default()
    }

    /// The users, in join order.
    pub fn users(&self) -> &[RemoteUser] {
        &self.users
    }

    /// Adds (or refreshes) a user; `place` turns server offsets into local
    /// ones (`None` when they cannot be placed).
    pub fn join(&mut self, info: &UserInfo, place: impl Fn(u64) -> Option<usize>) {
        let user = RemoteUser {
            user_id: info.user_id.clone(),
            name: info.name.clone(),
            rgb: parse_color(&info.color),
            cursor: info.cursor.and_then(&place),
            anchor: info.anchor.and_then(&place),
            role: info.role,
            doc: info.doc.clone(),
            unplaced: None,
        };
        match self.users.iter_mut().find(|u| u.user_id == user.user_id) {
            Some(existing) => *existing = user,
            None => self.users.push(user),
        }
    }

    /// Replaces everyone (after an `init`).
    pub fn reset(&mut self, infos: &[UserInfo], place: impl Fn(u64) -> Option<usize>) {
        self.users.clear();
        for info in infos {
            self.join(info, &place);
        }
    }

    /// Sets this user's own name (from `init`).
    pub fn set_own_name(&mut self, name: &str) {
        name.clone_into(&mut self.own_name);
    }

    /// The name to show for `user_id`: a second `alice` in the room (this
    /// user counting first) is `alice (2)`, a third `alice (3)`.
    pub fn display_name(&self, user_id: &str) -> String {
        let Some(i) = self.users.iter().position(|u| u.user_id == user_id) else {
            return String::new();
        };
        let name = &self.users[i].name;
        let before = self.users[..i].iter().filter(|u| u.name == *name).count()
            + usize::from(self.own_name == *name);
        if before == 0 {
            name.clone()
        } else {
            format!("{name} ({})", before + 1)
        }
    }

    /// Removes a user.
    pub fn leave(&mut self, user_id: &str) {
        self.users.retain(|u| u.user_id != user_id);
    }

    /// Moves a user's caret (local offsets).
    pub fn move_caret(&mut self, user_id: &str, cursor: usize, anchor: Option<usize>) {
        if let Some(u) = self.users.iter_mut().find(|u| u.user_id == user_id) {
            u.cursor = Some(cursor);
            u.anchor = anchor;
        }
    }

    /// Notes that a user's caret is in document `doc`, not open here, at
    /// these server offsets: shown in the lists, placed if it opens.
    pub fn move_elsewhere(&mut self, user_id: &str, doc: &str, at: (u64, u64, Option<u64>)) {
        if let Some(u) = self.users.iter_mut().find(|u| u.user_id == user_id) {
            u.doc = Some(doc.to_owned());
            u.cursor = None;
            u.anchor = None;
            u.unplaced = Some(at);
        }
    }

    /// Sets which document a user's caret is in (the caret follows).
    pub fn set_doc(&mut self, user_id: &str, doc: Option<&str>) {
        if let Some(u) = self.users.iter_mut().find(|u| u.user_id == user_id) {
            u.doc = doc.map(str::to_owned);
            u.unplaced = None;
        }
    }

    /// Places the carets of users in `doc` known only as server offsets,
    /// now that it is open: `place` maps (revision, offset) to the local
    /// document, or `None` to keep the raw offset clamped to `len`.
    pub fn place_unplaced(
        &mut self,
        doc: &str,
        len: usize,
        place: impl Fn(u64, u64) -> Option<usize>,
    ) {
        let at = |rev, o: u64| place(rev, o).unwrap_or((o as usize).min(len));
        for u in &mut self.users {
            if u.doc.as_deref() != Some(doc) {
                continue;
            }
            if let Some((rev, cursor, anchor)) = u.unplaced.take() {
                u.cursor = Some(at(rev, cursor));
                u.anchor = anchor.map(|a| at(rev, a));
            }
        }
    }

    /// Forgets the carets in `doc` (closed here: its offsets mean nothing
    /// any more); the users stay listed as being in it.
    pub fn unplace(&mut self, doc: &str) {
        for u in &mut self.users {
            if u.doc.as_deref() == Some(doc) {
                u.cursor = None;
                u.anchor = None;
            }
        }
    }

    /// Carries the carets in document `doc` (the one `op` was applied to)
    /// over it.
    pub fn transform(&mut self, doc: Option<&str>, op: &Operation) {
        for u in self.users.iter_mut().filter(|u| u.doc.as_deref() == doc) {
            u.cursor = u.cursor.map(|c| op.transform_index(c.min(op.base_len())));
            u.anchor = u.anchor.map(|a| op.transform_index(a.min(op.base_len())));
        }
    }

    /// Clamps every caret in document `doc` into `len` chars.
    pub fn clamp(&mut self, doc: Option<&str>, len: usize) {
        for u in self.users.iter_mut().filter(|u| u.doc.as_deref() == doc) {
            u.cursor = u.cursor.map(|c| c.min(len));
            u.anchor = u.anchor.map(|a| a.min(len));
        }
    }

    /// The user after `current` (by id) whose caret is known (placed here,
    /// or in a known document), wrapping; disk mirrors are skipped.
    pub fn next_after(&self, current: Option<&str>) -> Option<&RemoteUser> {
        let placed: Vec<&RemoteUser> = self
            .users
            .iter()
            .filter(|u| (u.cursor.is_some() || u.doc.is_some()) && !u.is_disk_mirror())
            .collect();
        let at = current.and_then(|id| placed.iter().position(|u| u.user_id == id));
        match at {
            Some(i) => placed.get((i + 1) % placed.len()).copied(),
            None => placed.first().copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, cursor: Option<u64>) -> UserInfo {
        UserInfo {
            user_id: id.into(),
            name: id.to_uppercase(),
            color: "#e6194b".into(),
            cursor,
            anchor: None,
            role: collab_protocol::Role::Editor,
            doc: None,
        }
    }

    #[test]
    fn colors_parse_or_fall_back() {
        assert_eq!(parse_color("#e6194b"), (0xe6, 0x19, 0x4b));
        assert_eq!(parse_color("red"), (128, 128, 128));
        assert_eq!(parse_color("#é12345"), (128, 128, 128));
    }

    #[test]
    fn carets_move_with_text_inserted_before_them() {
        let mut p = Presence::new();
        p.join(&info("a", Some(3)), |o| Some(o as usize));
        p.join(&info("b", None), |o| Some(o as usize));
        let op = Operation::replace(5, 1, 1, "xyz").unwrap();
        p.transform(None, &op);
        assert_eq!(p.users()[0].cursor, Some(6));
        assert_eq!(p.users()[1].cursor, None);
        let del = Operation::replace(8, 0, 7, "").unwrap();
        p.transform(None, &del);
        assert_eq!(p.users()[0].cursor, Some(0));
    }

    #[test]
    fn next_user_cycles_through_placed_carets() {
        let mut p = Presence::new();
        for (id, c) in [("a", Some(1)), ("b", None), ("c", Some(2))] {
            p.join(&info(id, c), |o| Some(o as usize));
        }
        assert_eq!(p.next_after(None).unwrap().user_id, "a");
        assert_eq!(p.next_after(Some("a")).unwrap().user_id, "c");
        assert_eq!(p.next_after(Some("c")).unwrap().user_id, "a");
        p.leave("a");
        assert_eq!(p.next_after(Some("a")).unwrap().user_id, "c");
    }

    #[test]
    fn carets_move_only_with_edits_of_their_document() {
        let mut p = Presence::new();
        let mut a = info("a", Some(3));
        a.doc = Some("d1".into());
        let mut b = info("b", Some(3));
        b.doc = Some("d2".into());
        p.join(&a, |o| Some(o as usize));
        p.join(&b, |o| Some(o as usize));
        p.transform(Some("d1"), &Operation::replace(5, 0, 0, "xy").unwrap());
        assert_eq!(p.users()[0].cursor, Some(5));
        assert_eq!(p.users()[1].cursor, Some(3));
        // Moved into a document not open here: placed once it opens.
        p.move_elsewhere("a", "d3", (7, 4, None));
        assert_eq!(p.users()[0].cursor, None);
        p.place_unplaced("d3", 2, |_, _| None);
        assert_eq!(p.users()[0].cursor, Some(2));
    }

    #[test]
    fn disk_mirrors_are_not_jumped_to() {
        let mut p = Presence::new();
        let mut disk = info("disk", Some(1));
        disk.name = "alice (disk)".into();
        p.join(&disk, |o| Some(o as usize));
        assert!(p.next_after(None).is_none());
        p.join(&info("bob", Some(2)), |o| Some(o as usize));
        assert_eq!(p.next_after(None).unwrap().user_id, "bob");
    }

    #[test]
    fn same_names_are_told_apart() {
        let mut p = Presence::new();
        p.set_own_name("ALICE");
        for id in ["alice", "bob", "alice2"] {
            let mut i = info(id, None);
            i.name = if id == "bob" { "BOB" } else { "ALICE" }.into();
            p.join(&i, |o| Some(o as usize));
        }
        assert_eq!(p.display_name("alice"), "ALICE (2)");
        assert_eq!(p.display_name("bob"), "BOB");
        assert_eq!(p.display_name("alice2"), "ALICE (3)");
        p.set_own_name("carol");
        assert_eq!(p.display_name("alice"), "ALICE");
        assert_eq!(p.display_name("alice2"), "ALICE (2)");
    }
}
