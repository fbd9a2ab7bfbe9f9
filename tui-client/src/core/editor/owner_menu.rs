//! The room owner's menu (Alt-O), drawn in the users panel: make the room
//! read-only for everyone else (or editable again), give it new share
//! links, remove a participant, end the room (asked twice). Each item
//! sends the owner's message on this connection, which joined with the
//! owner token; the server answers everyone (`mode`, `links`, closes).

use collab_protocol::ClientMessage;
use crossterm::event::{KeyCode, KeyEvent};

use super::{Editor, Effect};

/// The open menu: the chosen line, and whether "end the room" was chosen
/// once already (Enter again confirms).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnerMenu {
    /// The chosen line.
    pub selected: usize,
    /// "End the room" asks once more.
    pub confirm_end: bool,
}

/// What a line of the menu does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnerItem {
    /// Read-only for everyone but the owner (`true`), or editable again.
    ReadOnly(bool),
    /// New share links.
    Rotate,
    /// Remove this user.
    Remove(String),
    /// End the room.
    End,
}

impl Editor {
    /// Alt-O: opens (or closes) the owner's menu; only the owner has one.
    pub fn toggle_owner_menu(&mut self) {
        if self.owner_menu.take().is_some() {
            return;
        }
        if !self.owner {
            self.notice = Some(
                "Only the room's owner has these controls: open the editor from the \
                 `collab create` or `collab share` that made the room"
                    .into(),
            );
            return;
        }
        self.owner_menu = Some(OwnerMenu::default());
    }

    /// The owner's menu, while open.
    pub fn owner_menu(&self) -> Option<&OwnerMenu> {
        self.owner_menu.as_ref()
    }

    /// The menu's lines: what each does and how it reads.
    pub fn owner_items(&self) -> Vec<(OwnerItem, String)> {
        let mut items = vec![
            if self.room_read_only {
                (
                    OwnerItem::ReadOnly(false),
                    "Let everyone edit again".to_owned(),
                )
            } else {
                (
                    OwnerItem::ReadOnly(true),
                    "Make read-only for the others".to_owned(),
                )
            },
            (
                OwnerItem::Rotate,
                "New share links (old ones stop)".to_owned(),
            ),
        ];
        for u in self.presence().users() {
            let name = self.presence().display_name(&u.user_id);
            items.push((
                OwnerItem::Remove(u.user_id.clone()),
                format!("Remove {name}"),
            ));
        }
        let end = match self.owner_menu.as_ref().is_some_and(|m| m.confirm_end) {
            true => "End the room? Enter: yes",
            false => "End the room…",
        };
        items.push((OwnerItem::End, end.to_owned()));
        items
    }

    /// A key while the menu is open: Up/Down choose, Enter does it, Esc
    /// (or any other key) closes the menu. Returns false when it is closed.
    pub(crate) fn owner_menu_key(&mut self, key: &KeyEvent) -> bool {
        let Some(menu) = self.owner_menu.clone() else {
            return false;
        };
        let count = self.owner_items().len();
        match key.code {
            KeyCode::Up => self.set_owner_menu(menu.selected.saturating_sub(1), false),
            KeyCode::Down => self.set_owner_menu((menu.selected + 1).min(count - 1), false),
            KeyCode::Enter => {
                let items = self.owner_items();
                let Some((item, _)) = items.get(menu.selected).cloned() else {
                    return true;
                };
                self.owner_do(item, menu.confirm_end);
            }
            _ => self.owner_menu = None,
        }
        true
    }

    fn set_owner_menu(&mut self, selected: usize, confirm_end: bool) {
        self.owner_menu = Some(OwnerMenu {
            selected,
            confirm_end,
        });
    }

    /// Carries out a line of the menu.
    fn owner_do(&mut self, item: OwnerItem, confirmed: bool) {
        let (msg, notice) = match item {
            OwnerItem::End if !confirmed => {
                let selected = self.owner_menu.as_ref().map_or(0, |m| m.selected);
                self.set_owner_menu(selected, true);
                return;
            }
            OwnerItem::End => (
                ClientMessage::EndRoom,
                "Ending the room: everyone is disconnected, its text and chat deleted".to_owned(),
            ),
            OwnerItem::ReadOnly(read_only) => (
                ClientMessage::SetReadOnly { read_only },
                match read_only {
                    true => "The room is read-only for everyone but you".to_owned(),
                    false => "Everyone may edit again".to_owned(),
                },
            ),
            OwnerItem::Rotate => (
                ClientMessage::RotateLinks,
                "New share links asked for: F8 copies the new join command".to_owned(),
            ),
            OwnerItem::Remove(user_id) => {
                let name = self.presence().display_name(&user_id);
                (
                    ClientMessage::RemoveUser { user_id },
                    format!("{name} removed; the share links are new (F8 copies the join command)"),
                )
            }
        };
        self.owner_menu = None;
        self.effects.push(Effect::Send(msg));
        self.notice = Some(notice);
    }
}
