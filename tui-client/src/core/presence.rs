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

    /// Carries every caret over an operation applied to the local document.
    pub fn transform(&mut self, op: &Operation) {
        for u in &mut self.users {
            u.cursor = u.cursor.map(|c| op.transform_index(c.min(op.base_len())));
            u.anchor = u.anchor.map(|a| op.transform_index(a.min(op.base_len())));
        }
    }

    /// Clamps every caret into a document of `len` chars.
    pub fn clamp(&mut self, len: usize) {
        for u in &mut self.users {
            u.cursor = u.cursor.map(|c| c.min(len));
            u.anchor = u.anchor.map(|a| a.min(len));
        }
    }

    /// The user after `current` (by id) whose caret is known, wrapping.
    pub fn next_after(&self, current: Option<&str>) -> Option<&RemoteUser> {
        let placed: Vec<&RemoteUser> = self.users.iter().filter(|u| u.cursor.is_some()).collect();
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
        p.transform(&op);
        assert_eq!(p.users()[0].cursor, Some(6));
        assert_eq!(p.users()[1].cursor, None);
        let del = Operation::replace(8, 0, 7, "").unwrap();
        p.transform(&del);
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
