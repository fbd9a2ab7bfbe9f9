//! The in-memory store: nothing else is needed on a fresh machine. A room's
//! own state (document, history, who is present) lives in its room actor,
//! which is the authority; this store only knows which rooms exist, what a
//! new room starts with until its actor takes it, and the read-only ids.
//! Commits succeed at once and nobody else publishes anything.

use std::collections::HashMap;
use std::sync::Mutex;

use collab_protocol::UserInfo;
use ropey::Rope;
use tokio::sync::mpsc;

use super::{LoadedDoc, LoadedRoom, NewDoc, PresenceCheck, StoreError, StoreEvent, Tail, TreeTail};

/// The rooms of this process.
#[derive(Default)]
pub struct MemoryStore {
    rooms: Mutex<Rooms>,
}

#[derive(Default)]
struct Rooms {
    /// Room id -> its state until its actor loads it (then `None`: the
    /// actor is the authority from there on).
    rooms: HashMap<String, Option<LoadedRoom>>,
    /// Read-only id -> room id.
    viewers: HashMap<String, String>,
    /// Room id -> the hash of its owner's token.
    owners: HashMap<String, String>,
    /// Replaced editing link -> room id; and room id -> its current link.
    links: HashMap<String, String>,
    current_link: HashMap<String, String>,
}

type Result<T> = std::result::Result<T, StoreError>;

/// What asking this store for a room's history gets: rooms are their own
/// authority here (the core never asks).
fn authority() -> StoreError {
    StoreError::Unavailable(
        "the in-memory store keeps no log: rooms are their own authority".into(),
    )
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rooms> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets a room: its actor ended, and nothing else holds it.
    pub fn forget(&self, id: &str, viewer: Option<&str>) {
        let mut rooms = self.lock();
        rooms.rooms.remove(id);
        rooms.owners.remove(id);
        if let Some(link) = rooms.current_link.remove(id) {
            rooms.links.remove(&link);
        }
        if let Some(v) = viewer {
            rooms.viewers.remove(v);
        }
    }

    pub(super) fn instance(&self) -> &str {
        "memory"
    }

    pub(super) async fn healthy(&self) -> bool {
        true
    }

    pub(super) async fn create_room(
        &self,
        id: &str,
        viewer: &str,
        owner: &str,
        docs: &[NewDoc],
    ) -> Result<()> {
        let room = LoadedRoom {
            viewer: Some(viewer.to_owned()),
            ..LoadedRoom::new(docs)
        };
        let mut rooms = self.lock();
        rooms.rooms.insert(id.to_owned(), Some(room));
        rooms.viewers.insert(viewer.to_owned(), id.to_owned());
        rooms.owners.insert(id.to_owned(), owner.to_owned());
        Ok(())
    }

    pub(super) async fn owner(&self, id: &str) -> Result<Option<String>> {
        Ok(self.lock().owners.get(id).cloned())
    }

    /// The room's actor is told by the caller (nobody else holds it).
    pub(super) async fn set_read_only(&self, id: &str, _: bool) -> Result<bool> {
        Ok(self.lock().rooms.contains_key(id))
    }

    /// The room's actor is told by the caller (nobody else holds it);
    /// forgetting happens when that actor ends.
    pub(super) async fn end_room(&self, id: &str) -> Result<bool> {
        Ok(self.lock().rooms.contains_key(id))
    }

    /// The room's actor keeps its bans (the caller tells it, and passes
    /// the client ids it knows); the new links are recorded here.
    pub(super) async fn remove_user(
        &self,
        id: &str,
        _: &str,
        known: &[String],
        (link, viewer): (&str, &str),
    ) -> Result<Vec<String>> {
        if !known.is_empty() {
            self.rotate_links(id, link, viewer).await?;
        }
        Ok(known.to_vec())
    }

    pub(super) async fn exists(&self, id: &str) -> Result<bool> {
        let rooms = self.lock();
        Ok(rooms.rooms.contains_key(id) && !rooms.current_link.contains_key(id))
    }

    pub(super) async fn link_room(&self, link: &str) -> Result<Option<String>> {
        Ok(self.lock().links.get(link).cloned())
    }

    /// The actor learns of the new links from the caller.
    pub(super) async fn rotate_links(&self, id: &str, link: &str, viewer: &str) -> Result<bool> {
        let mut rooms = self.lock();
        if !rooms.rooms.contains_key(id) {
            return Ok(false);
        }
        if let Some(old) = rooms.current_link.insert(id.to_owned(), link.to_owned()) {
            rooms.links.remove(&old);
        }
        rooms.links.insert(link.to_owned(), id.to_owned());
        rooms.viewers.retain(|_, room| room != id);
        rooms.viewers.insert(viewer.to_owned(), id.to_owned());
        Ok(true)
    }

    pub(super) async fn viewer_room(&self, viewer: &str) -> Result<Option<String>> {
        Ok(self.lock().viewers.get(viewer).cloned())
    }

    /// A new room's state, once: after that its actor holds it.
    pub(super) async fn load(&self, id: &str) -> Result<Option<LoadedRoom>> {
        Ok(self.lock().rooms.get_mut(id).and_then(Option::take))
    }

    /// Every document was handed over with the room: none is read alone.
    pub(super) async fn load_doc(&self, _: &str, _: &str) -> Result<Option<LoadedDoc>> {
        Err(authority())
    }

    pub(super) async fn entries_since(&self, _: &str, _: &str, _: u64) -> Result<Option<Tail>> {
        Err(authority())
    }

    pub(super) async fn tree_since(&self, _: &str, _: u64) -> Result<Option<TreeTail>> {
        Err(authority())
    }

    pub(super) async fn record_fork(&self, _: &str, _: &str, at: u64) -> Result<Option<u64>> {
        Ok(Some(at))
    }

    pub(super) async fn fork(&self, _: &str, _: &str) -> Result<Option<u64>> {
        Ok(None)
    }

    pub(super) async fn write_snapshot(&self, _: &str, _: &str, _: u64, _: Rope) -> Result<()> {
        Ok(())
    }

    pub(super) async fn touch(&self, _: &str, _: Option<&str>, _: Option<&str>) -> Result<()> {
        Ok(())
    }

    pub(super) async fn expire_clients(&self, _: &str) -> Result<()> {
        Ok(())
    }

    pub(super) async fn identity(
        &self,
        _: &str,
        _: &str,
        fresh: (String, String),
    ) -> Result<(String, String)> {
        Ok(fresh)
    }

    pub(super) async fn join(&self, _: &str, _: &UserInfo) -> Result<()> {
        Ok(())
    }

    pub(super) async fn leave(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }

    pub(super) async fn cursor(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: (u64, u64, Option<u64>),
    ) -> Result<()> {
        Ok(())
    }

    pub(super) async fn presence_check(&self, _: &str) -> Result<PresenceCheck> {
        Ok(PresenceCheck::default())
    }

    pub(super) fn subscribe(&self, _: &str, _: mpsc::Sender<StoreEvent>) {}

    pub(super) fn unsubscribe(&self, _: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_room_is_handed_over_once_and_lives_until_forgotten() {
        let store = MemoryStore::new();
        let (_, docs) = LoadedRoom::single("code", "rust", None);
        store.create_room("r1", "v1", "hash", &docs).await.unwrap();
        assert_eq!(
            store.viewer_room("v1").await.unwrap().as_deref(),
            Some("r1")
        );
        let loaded = store.load("r1").await.unwrap().expect("a new room");
        let main = loaded.main().expect("the main document");
        assert_eq!((main.snapshot.as_str(), main.revision), ("code", 0));
        assert_eq!(loaded.files[0].path, "main.rs");
        assert!(
            store.load("r1").await.unwrap().is_none(),
            "its actor holds it now"
        );
        assert!(store.exists("r1").await.unwrap());
        store.forget("r1", Some("v1"));
        assert!(!store.exists("r1").await.unwrap());
        assert_eq!(store.viewer_room("v1").await.unwrap(), None);
    }
}
