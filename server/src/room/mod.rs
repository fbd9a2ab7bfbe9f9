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

use self::core::lineage::{self, Mark};
use self::core::{CoreConfig, RoomCore};
use crate::config::Config;
use crate::ids::{self, short};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

pub use self::core::{ConnSink, JoinError, Joined, Snapshot};
pub use self::handle::{Command, JoinRequest, RoomHandle};

/// What a room whose actor ended abnormally knew of its history, for the
/// next actor of the room on this instance: should the store turn out to
/// hold another history, the clients that reconnect from this one must not
/// be rebased onto it (see `core::lineage`).
pub(crate) struct Prior {
    /// The revision the room had reached.
    pub(crate) revision: u64,
    /// The ids of the revisions it kept.
    pub(crate) marks: Vec<Mark>,
    /// When it ended (old records are dropped).
    pub(crate) at: Instant,
}

/// The room actors of this instance.
pub(crate) struct Registry<S> {
    rooms: HashMap<String, RoomHandle<S>>,
    /// What rooms whose actor ended abnormally knew of their history, until
    /// the next actor of the room here loads it.
    prior: HashMap<String, Prior>,
}

impl<S> Default for Registry<S> {
    fn default() -> Self {
        Self {
            rooms: HashMap::new(),
            prior: HashMap::new(),
        }
    }
}

impl<S: Send + 'static> Registry<S> {
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

    /// Creates a room holding `code`; returns its id and its read-only id.
    /// An in-memory room lives in its actor, which starts at once; a stored
    /// one's actor starts when someone joins, on whichever instance.
    pub async fn create(&self, code: &str, language: &str) -> Result<(String, String), StoreError> {
        let id = ids::new_room_id();
        let viewer = ids::new_room_id();
        self.store.create_room(&id, &viewer, code, language).await?;
        if !self.store.is_shared() {
            self.get(&id).await?;
        }
        Ok((id, viewer))
    }

    /// Which room an id opens, and whether read-only; `None` when none.
    pub async fn resolve(&self, id: &str) -> Result<Option<Access>, StoreError> {
        if !ids::is_valid_room_id(id) {
            return Ok(None);
        }
        let editor = Access {
            room_id: id.to_owned(),
            viewer_id: None,
        };
        if self.local(id).is_some() || self.store.exists(id).await? {
            return Ok(Some(editor));
        }
        Ok(self.store.viewer_room(id).await?.map(|room_id| Access {
            room_id,
            viewer_id: Some(id.to_owned()),
        }))
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
        // still holds the history it applied, before any client reconnecting
        // from it is rebased onto what the store holds.
        let prior = self.lock().prior.remove(id);
        if let Some(prior) = prior {
            let theirs = core::loaded_marks(&loaded);
            if lineage::parted(prior.revision, &prior.marks, &theirs, loaded.revision) {
                let fork = lineage::fork_point(&prior.marks, &theirs);
                match self.store.record_fork(id, fork).await {
                    Ok(recorded) => {
                        tracing::warn!(
                            room = %short(id),
                            revision = prior.revision,
                            store_revision = loaded.revision,
                            fork = ?recorded,
                            "the room's history in the store parted from the one this instance \
                             applied (restored from an older state?): continuing from what it holds"
                        );
                        loaded.fork = recorded.or(loaded.fork);
                    }
                    Err(e) => {
                        self.lock().prior.insert(id.to_owned(), prior);
                        return Err(e);
                    }
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
        Ok(Some(self.start(core, stale)))
    }

    /// Starts an actor for `core` unless a live one for the room exists
    /// (another connection may have loaded it meanwhile): check and insert
    /// under one lock, so a room never has two actors on one instance.
    fn start(&self, core: RoomCore<S>, stale: Vec<String>) -> RoomHandle<S> {
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

    /// The room's current state, from its actor or straight from the store.
    pub async fn snapshot(&self, id: &str) -> Result<Option<Snapshot>, StoreError> {
        if !ids::is_valid_room_id(id) {
            return Ok(None);
        }
        if let Some(h) = self.local(id) {
            if let Some(s) = h.snapshot().await {
                return Ok(Some(s));
            }
        }
        // In memory a room without an actor is gone; a stored one is read.
        if !self.store.is_shared() {
            return Ok(None);
        }
        self.store
            .load(id)
            .await?
            .map(core::snapshot_of)
            .transpose()
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
