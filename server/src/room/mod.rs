//! Rooms: one actor per live room, the room's single writer, and the
//! registry that finds, starts and forgets them.
//!
//! Every edit, caret move, join and leave of a room goes through its actor's
//! queue, so commits are totally ordered without locks, and fan-out happens
//! in commit order. The logic is in [`core`] (synchronous, no I/O); the
//! actor ([`actor`]) only moves messages between the connections, the core
//! and the store, and runs the store's side effects beside it ([`effects`]).

pub mod actor;
pub mod core;
mod effects;
mod handle;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use collab_protocol::FileInfo;
use ropey::Rope;

use self::core::lineage::{self, Mark};
use self::core::{CoreConfig, FileText, RoomCore};
use crate::config::Config;
use crate::ids::{self, short};
use crate::metrics::Metrics;
use crate::store::{LoadedDoc, NewDoc, Store, StoreError, MAIN_DOC};

pub use self::core::{ConnSink, JoinError, Joined, OwnerAct, Snapshot};
pub use self::handle::{Command, JoinRequest, RoomHandle};

/// What a room whose actor ended abnormally knew of its documents'
/// histories, for the next actor of the room on this instance: should the
/// store turn out to hold another history of one, the clients that
/// reconnect from this one must not be rebased onto it (see
/// `core::lineage`).
pub(crate) struct Prior {
    /// Per document held.
    pub(crate) docs: HashMap<String, PriorDoc>,
    /// When it ended (old records are dropped).
    pub(crate) at: Instant,
}

/// What a room knew of one document's history.
pub(crate) struct PriorDoc {
    /// The revision it had reached.
    pub(crate) revision: u64,
    /// The ids of the revisions it kept.
    pub(crate) marks: Vec<Mark>,
}

/// Checks that the store still holds the history of `doc` a previous
/// actor here applied, before any client reconnecting from it is rebased
/// onto what the store holds; when it does not, records (and notes in
/// `loaded`) where the histories part.
pub(crate) async fn check_prior(
    store: &Store,
    id: &str,
    doc: &str,
    prior: &PriorDoc,
    loaded: &mut LoadedDoc,
) -> Result<(), StoreError> {
    let theirs = core::loaded_marks(loaded);
    if lineage::parted(prior.revision, &prior.marks, &theirs, loaded.revision) {
        let fork = lineage::fork_point(&prior.marks, &theirs);
        let recorded = store.record_fork(id, doc, fork).await?;
        tracing::warn!(
            room = %short(id),
            %doc,
            revision = prior.revision,
            store_revision = loaded.revision,
            fork = ?recorded,
            "the document's history in the store parted from the one this instance applied \
             (restored from an older state?): continuing from what it holds"
        );
        loaded.fork = recorded.or(loaded.fork);
    }
    Ok(())
}

/// The room actors of this instance.
pub(crate) struct Registry<S> {
    rooms: HashMap<String, RoomHandle<S>>,
    /// What rooms whose actor ended abnormally knew of their history, until
    /// the next actor of the room here loads it.
    prior: HashMap<String, Prior>,
    /// Rooms whose own id no longer opens them (the owner replaced their
    /// links), as their actors here learned.
    retired: std::collections::HashSet<String>,
}

impl<S> Default for Registry<S> {
    fn default() -> Self {
        Self {
            rooms: HashMap::new(),
            prior: HashMap::new(),
            retired: Default::default(),
        }
    }
}

impl<S: Send + 'static> Registry<S> {
    /// Notes that room `id`'s own id no longer opens it.
    pub(crate) fn retire(&mut self, id: &str) {
        self.retired.insert(id.to_owned());
    }

    /// The room's actor ended: forget it (unless a newer one took its place
    /// already) and keep what it knew of its history, when it ended badly.
    pub(crate) fn ended(
        &mut self,
        id: &str,
        me: &RoomHandle<S>,
        prior: Option<Prior>,
        ttl: std::time::Duration,
    ) {
        if self.rooms.get(id).is_some_and(|h| h.same_room_as(me)) {
            self.rooms.remove(id);
            self.retired.remove(id);
        }
        if let Some(prior) = prior {
            self.prior.retain(|_, p| p.at.elapsed() < ttl);
            self.prior.insert(id.to_owned(), prior);
        }
    }
}

/// How a client reaches a room: through its id (editor) or its read-only id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The room's (editing) id.
    pub room_id: String,
    /// The read-only id used, when joining as a viewer.
    pub viewer_id: Option<String>,
    /// The editing link used, when the owner replaced the room's links
    /// (`None`: the room's own id).
    pub link: Option<String>,
}

/// What an owner's control did (the REST endpoints answer with it; the
/// owner's connection hears the outcome as everyone in the room does).
#[derive(Debug)]
pub enum Acted {
    /// Read-only switched, or the room ended; false when the store has no
    /// such room.
    Found(bool),
    /// The client ids now refused (none: no such user, nothing changed).
    Removed(Vec<String>),
    /// The new (editing link, read-only id); `None` when the store has no
    /// such room.
    Links(Option<(String, String)>),
}

impl Acted {
    /// Whether the room was there.
    pub fn found(self) -> bool {
        match self {
            Acted::Found(found) => found,
            Acted::Removed(ids) => !ids.is_empty(),
            Acted::Links(links) => links.is_some(),
        }
    }

    /// The client ids a removal refused.
    pub fn into_removed(self) -> Vec<String> {
        match self {
            Acted::Removed(ids) => ids,
            _ => Vec::new(),
        }
    }

    /// The links a rotation made.
    pub fn into_links(self) -> Option<(String, String)> {
        match self {
            Acted::Links(links) => links,
            _ => None,
        }
    }
}

/// Every room this server holds an actor for, by id, and the store that
/// keeps them. `S` is where a connection's messages go (the connection's
/// outbox): rooms only write into it.
pub struct Rooms<S> {
    registry: Arc<Mutex<Registry<S>>>,
    config: Config,
    store: Store,
    metrics: Arc<Metrics>,
}

impl<S: ConnSink + Send + 'static> Rooms<S>
where
    S::Msg: Send,
{
    /// No rooms yet, over `store`.
    pub fn new(config: Config, store: Store, metrics: Arc<Metrics>) -> Self {
        Self {
            registry: Arc::default(),
            config,
            store,
            metrics,
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Creates a room holding `docs`; returns its id and its read-only id.
    /// An in-memory room lives in its actor, which starts at once; a stored
    /// one's actor starts when someone joins, on whichever instance.
    /// Returns the room's id, its read-only id and its owner's token (the
    /// store keeps only the token's hash).
    pub async fn create(&self, docs: &[NewDoc]) -> Result<(String, String, String), StoreError> {
        let id = ids::new_room_id();
        let viewer = ids::new_room_id();
        let owner = ids::new_owner_token();
        self.store
            .create_room(&id, &viewer, &ids::owner_hash(&owner), docs)
            .await?;
        if !self.store.is_shared() {
            self.get(&id).await?;
        }
        Ok((id, viewer, owner))
    }

    /// True when `token` is the owner token of room `id` (a room created
    /// before owners existed has none: nobody owns it).
    pub async fn is_owner(&self, id: &str, token: &str) -> Result<bool, StoreError> {
        if !ids::is_valid_room_id(id) {
            return Ok(false);
        }
        let stored = self.store.owner(id).await?;
        Ok(stored.is_some_and(|h| h == ids::owner_hash(token)))
    }

    /// Carries out an owner's control in room `id`'s actor, when this
    /// instance runs one (the same way as on the owner's connection);
    /// `None` when it does not, or the actor stopped meanwhile.
    async fn act(&self, id: &str, act: OwnerAct) -> Option<Result<Acted, StoreError>> {
        let h = self.local(id)?;
        h.ask(|reply| Command::Act { act, reply }).await
    }

    /// Ends room `id`: every instance closes its connections (4007) and
    /// every trace of it in the store is deleted. False when there was no
    /// such room.
    pub async fn end(&self, id: &str) -> Result<bool, StoreError> {
        match self.act(id, OwnerAct::End).await {
            Some(acted) => acted.map(|a| a.found()),
            // Through Redis every instance hears of it.
            None => self.store.end_room(id).await,
        }
    }

    /// Switches room `id` to read-only for everyone but its owner (or
    /// back); false when there is no such room.
    pub async fn set_read_only(&self, id: &str, read_only: bool) -> Result<bool, StoreError> {
        match self.act(id, OwnerAct::ReadOnly(read_only)).await {
            Some(acted) => acted.map(|a| a.found()),
            None => self.store.set_read_only(id, read_only).await,
        }
    }

    /// Removes user `user_id` from room `id` (their client ids refused, the
    /// room's links replaced); returns the client ids now refused (empty:
    /// no such user).
    pub async fn remove(&self, id: &str, user_id: &str) -> Result<Vec<String>, StoreError> {
        if let Some(acted) = self.act(id, OwnerAct::Remove(user_id.to_owned())).await {
            return acted.map(Acted::into_removed);
        }
        if !self.store.is_shared() {
            return Ok(Vec::new());
        }
        // No actor here: the store knows the user's client ids, and every
        // instance hears of it.
        let (link, viewer) = (ids::new_room_id(), ids::new_room_id());
        self.store
            .remove_user(id, user_id, &[], (&link, &viewer))
            .await
    }

    /// Which room an id opens (its own id until the owner replaces its
    /// links, then the new editing link), and whether read-only; `None`
    /// when none.
    pub async fn resolve(&self, id: &str) -> Result<Option<Access>, StoreError> {
        if !ids::is_valid_room_id(id) {
            return Ok(None);
        }
        let editor = Access {
            room_id: id.to_owned(),
            viewer_id: None,
            link: None,
        };
        let live_here = self.local(id).is_some() && !self.lock().retired.contains(id);
        if live_here || self.store.exists(id).await? {
            return Ok(Some(editor));
        }
        if let Some(room_id) = self.store.link_room(id).await? {
            return Ok(Some(Access {
                room_id,
                viewer_id: None,
                link: Some(id.to_owned()),
            }));
        }
        Ok(self.store.viewer_room(id).await?.map(|room_id| Access {
            room_id,
            viewer_id: Some(id.to_owned()),
            link: None,
        }))
    }

    /// Replaces room `id`'s share links; returns the new editing link and
    /// read-only id, `None` when there is no such room.
    pub async fn rotate(&self, id: &str) -> Result<Option<(String, String)>, StoreError> {
        if let Some(acted) = self.act(id, OwnerAct::Rotate).await {
            return acted.map(Acted::into_links);
        }
        let (link, viewer) = (ids::new_room_id(), ids::new_room_id());
        let found = self.store.rotate_links(id, &link, &viewer).await?;
        Ok(found.then_some((link, viewer)))
    }

    /// The actor of the room with this id, started from the store when this
    /// instance has none yet; `None` when the room does not exist.
    pub async fn get(&self, id: &str) -> Result<Option<RoomHandle<S>>, StoreError> {
        if !ids::is_valid_room_id(id) {
            return Ok(None);
        }
        if let Some(h) = self.local(id) {
            return Ok(Some(h));
        }
        let Some(mut loaded) = self.store.load(id).await? else {
            // In memory, a room without an actor is gone (or being
            // created by another call, whose actor is about to register).
            return Ok(self.local(id));
        };
        // The room's last actor here ended abnormally: make sure the store
        // still holds the histories it applied (the main document's now,
        // the others' as they are read).
        let mut prior = self
            .lock()
            .prior
            .remove(id)
            .map(|p| p.docs)
            .unwrap_or_default();
        if let Some(main) = prior.remove(MAIN_DOC) {
            let loaded_main = loaded.docs.iter_mut().find(|(d, _)| d == MAIN_DOC);
            if let Some((_, doc)) = loaded_main {
                if let Err(e) = check_prior(&self.store, id, MAIN_DOC, &main, doc).await {
                    prior.insert(MAIN_DOC.to_owned(), main);
                    self.lock().prior.insert(
                        id.to_owned(),
                        Prior {
                            docs: prior,
                            at: Instant::now(),
                        },
                    );
                    return Err(e);
                }
            }
        }
        // Presence records this instance wrote before (a previous actor
        // here ended without removing them) are stale.
        let instance = self.store.instance().to_owned();
        let (stale, live): (Vec<_>, Vec<_>) = loaded
            .presence
            .into_iter()
            .partition(|r| r.instance == instance);
        loaded.presence = live;
        let core = RoomCore::load(
            id.to_owned(),
            loaded,
            CoreConfig::from_config(&self.config),
            self.store.is_shared(),
            self.metrics.clone(),
            Instant::now(),
        )?;
        let stale = stale.into_iter().map(|r| r.user.user_id).collect();
        Ok(Some(self.start(core, stale, prior)))
    }

    /// Starts an actor for `core` unless a live one for the room exists
    /// (another connection may have loaded it meanwhile): check and insert
    /// under one lock, so a room never has two actors on one instance.
    fn start(
        &self,
        core: RoomCore<S>,
        stale: Vec<String>,
        prior: HashMap<String, PriorDoc>,
    ) -> RoomHandle<S> {
        let mut reg = self.lock();
        let id = core.id().to_owned();
        if let Some(h) = reg.rooms.get(&id).filter(|h| !h.is_closed()) {
            return h.clone();
        }
        let (tx, rx) = mpsc::channel(1024);
        let handle = RoomHandle::new(tx);
        reg.rooms.insert(id, handle.clone());
        let actor = actor::RoomActor::new(
            core,
            self.store.clone(),
            rx,
            handle.clone(),
            self.registry.clone(),
            self.metrics.clone(),
            self.config.room_ttl,
            prior,
        );
        tokio::spawn(actor.run(stale));
        handle
    }

    fn local(&self, id: &str) -> Option<RoomHandle<S>> {
        self.lock()
            .rooms
            .get(id)
            .filter(|h| !h.is_closed())
            .cloned()
    }

    /// The room's main document and who is in it, from its actor or
    /// straight from the store.
    pub async fn snapshot(&self, id: &str) -> Result<Option<Snapshot>, StoreError> {
        if !ids::is_valid_room_id(id) {
            return Ok(None);
        }
        let mut users = None;
        if let Some(h) = self.local(id) {
            match h.ask(Command::Snapshot).await {
                Some(Ok(s)) => return Ok(Some(s)),
                // Not held by the actor: the store has it; the actor knows
                // who is present.
                Some(Err(present)) => users = Some(present),
                None => {}
            }
        }
        // In memory a room without an actor is gone; a stored one is read.
        if !self.store.is_shared() {
            return Ok(None);
        }
        let Some(loaded) = self.store.load(id).await? else {
            return Ok(None);
        };
        let mut snap = core::snapshot_of(loaded)?;
        if let Some(users) = users {
            snap.users = users;
        }
        Ok(Some(snap))
    }

    /// The room's tree: its revision and every document, sorted by path.
    pub async fn files(&self, id: &str) -> Result<Option<(u64, Vec<FileInfo>)>, StoreError> {
        if !ids::is_valid_room_id(id) {
            return Ok(None);
        }
        if let Some(h) = self.local(id) {
            if let Some(files) = h.ask(Command::Files).await {
                return Ok(Some(files));
            }
        }
        if !self.store.is_shared() {
            return Ok(None);
        }
        Ok(self.store.load(id).await?.map(|l| {
            let mut files = l.files;
            files.sort_by(|a, b| a.path.cmp(&b.path));
            (l.tree_revision, files)
        }))
    }

    /// The text of the room's document at `path`: `Ok(None)` when the room
    /// or the document does not exist.
    pub async fn file_text(&self, id: &str, path: &str) -> Result<Option<Rope>, StoreError> {
        if !ids::is_valid_room_id(id) {
            return Ok(None);
        }
        let mut found = None;
        if let Some(h) = self.local(id) {
            match h
                .ask(|reply| Command::FileText(path.to_owned(), reply))
                .await
            {
                Some(FileText::Text(text)) => return Ok(Some(text)),
                Some(FileText::NotFound) => return Ok(None),
                Some(FileText::Stored(doc)) => found = Some(doc.to_string()),
                None => {}
            }
        }
        if !self.store.is_shared() {
            return Ok(None);
        }
        let doc = match found {
            Some(doc) => doc,
            None => {
                let Some(loaded) = self.store.load(id).await? else {
                    return Ok(None);
                };
                match loaded.files.into_iter().find(|f| f.path == path) {
                    Some(f) => f.doc,
                    None => return Ok(None),
                }
            }
        };
        match self.store.load_doc(id, &doc).await? {
            Some(loaded) => Ok(Some(core::text_of(&loaded)?)),
            None => Ok(None),
        }
    }

    /// How many rooms have an actor on this instance.
    pub fn active(&self) -> usize {
        self.lock().rooms.len()
    }

    /// Asks every room to commit what it has queued and close its
    /// connections with 1012; returns when all did.
    pub async fn drain_all(&self) {
        let handles: Vec<RoomHandle<S>> = self.lock().rooms.values().cloned().collect();
        let mut waits = Vec::new();
        for h in handles {
            let (tx, rx) = oneshot::channel();
            if h.send(Command::Drain(tx)).await {
                waits.push(rx);
            }
        }
        for w in waits {
            let _ = w.await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry<S>> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }
}
