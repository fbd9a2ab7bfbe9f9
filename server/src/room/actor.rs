//! The room actor: one task per live room, moving messages between the
//! connections, the room's [`RoomCore`] and the store. It decides nothing:
//! commands and the store's events go into the core, the core's
//! [`Action`]s go to the store (commits are polled here, at most one per
//! document and one of the tree at a time; reads are awaited in line; side
//! effects go to the [`Effects`] runner), and when the core stops, the
//! actor carries out what its [`Stop`] says and leaves the registry.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use collab_protocol::{close_code, error_code};
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::core::doc::DocId;
use super::core::{lineage, Action, ConnSink, JoinError, Joined, OwnerAct, RoomCore, Stop};
use super::effects::Effects;
use super::handle::{Command, JoinRequest, RoomHandle};
use super::{check_prior, Acted, Prior, PriorDoc, Registry};
use crate::ids::short;
use crate::metrics::Metrics;
use crate::store::{
    CommitReply, PresenceCheck, Store, StoreError, StoreEvent, TreeFuture, MAIN_DOC,
};

/// A document's commit on its way, answering with the document's id.
type DocCommit = Pin<Box<dyn Future<Output = (DocId, Result<CommitReply, StoreError>)> + Send>>;

/// Commands handled back to back before the writers are woken: bounds how
/// long the first connection of a burst waits for the rest of it.
const BURST: usize = 64;

/// A join and where its answer goes.
type JoinWaiting<S> = (JoinRequest<S>, oneshot::Sender<Result<Joined, JoinError>>);
/// How often a shared room checks for operations and presence its events
/// missed.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// One room's actor; see the module docs.
pub struct RoomActor<S: ConnSink> {
    core: RoomCore<S>,
    store: Store,
    commands: mpsc::Receiver<Command<S>>,
    me: RoomHandle<S>,
    registry: Arc<Mutex<Registry<S>>>,
    metrics: Arc<Metrics>,
    room_ttl: Duration,
    /// The commits in flight (one per document at most), polled by the
    /// actor itself (not spawned: a spawned task costs two more wake-ups
    /// per keystroke).
    commits: FuturesUnordered<DocCommit>,
    /// The tree change in flight.
    tree_commit: Option<TreeFuture>,
    /// What this room's previous actor here knew of its documents'
    /// histories, checked as each is read (see [`Prior`]).
    prior: HashMap<String, PriorDoc>,
    draining: Option<oneshot::Sender<()>>,
}

impl<S: ConnSink + Send + 'static> RoomActor<S>
where
    S::Msg: Send,
{
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        core: RoomCore<S>,
        store: Store,
        commands: mpsc::Receiver<Command<S>>,
        me: RoomHandle<S>,
        registry: Arc<Mutex<Registry<S>>>,
        metrics: Arc<Metrics>,
        room_ttl: Duration,
        prior: HashMap<String, PriorDoc>,
    ) -> Self {
        Self {
            core,
            store,
            commands,
            me,
            registry,
            metrics,
            room_ttl,
            commits: FuturesUnordered::new(),
            tree_commit: None,
            prior,
            draining: None,
        }
    }

    /// Runs the room until its core stops. `stale`: users whose presence
    /// records a previous actor of this room here left behind.
    pub(super) async fn run(mut self, stale: Vec<String>) {
        self.metrics.rooms.fetch_add(1, Ordering::Relaxed);
        let id = self.core.id().to_owned();
        for u in stale {
            let _ = self.store.leave(&id, &u).await;
        }
        let (events_tx, mut events) = mpsc::channel::<StoreEvent>(4096);
        let (checks_tx, mut checks) = mpsc::unbounded_channel::<PresenceCheck>();
        self.store.subscribe(&id, events_tx.clone());
        let effects = Effects::spawn(
            self.store.clone(),
            id.clone(),
            self.core.viewer_id().map(str::to_owned),
            self.core.link().map(str::to_owned),
            events_tx,
            checks_tx,
        );
        let tick = (self.room_ttl / 4).clamp(Duration::from_millis(50), CHECK_EVERY);
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A timer of its own: checking "2 s since the last check?" on the
        // expiry tick missed by a hair every other time.
        let mut checker = tokio::time::interval_at(Instant::now() + CHECK_EVERY, CHECK_EVERY);
        checker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shared = self.core.is_shared();
        let mut retired = false;
        if self.core.link().is_some() {
            retired = true;
            self.registry
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retire(&id);
        }
        self.carry_out(&effects).await;
        while self.core.stop().is_none() {
            let hold = self.core.hold_until().map(Instant::from_std);
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => {
                        // A burst: handle what else is queued before waking
                        // the writers, so each writes the burst at once.
                        let mut burst = vec![cmd];
                        while burst.len() < BURST {
                            let Ok(cmd) = self.commands.try_recv() else { break };
                            burst.push(cmd);
                        }
                        self.handle_burst(burst, &effects).await;
                    }
                    None => break,
                },
                Some(event) = events.recv() => self.core.store_event(event, now()),
                Some(check) = checks.recv() => self.core.presence_checked(check),
                Some((doc, reply)) = self.commits.next(), if !self.commits.is_empty() => {
                    self.core.committed(&doc, reply, now());
                }
                reply = async { self.tree_commit.as_mut().expect("guarded by the condition").await }, if self.tree_commit.is_some() => {
                    self.tree_commit = None;
                    self.core.tree_committed(reply, now());
                }
                _ = tokio::time::sleep_until(hold.unwrap_or_else(Instant::now)), if hold.is_some() => {
                    self.core.turn_over(now());
                }
                _ = ticker.tick() => self.core.tick(now()),
                _ = checker.tick(), if shared => self.core.check_due(),
            }
            self.carry_out(&effects).await;
            self.core.wake_writers();
            if !retired && self.core.link().is_some() {
                // The room's own id no longer opens it: this instance's
                // shortcut to its live actor must not either.
                retired = true;
                self.registry
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .retire(&id);
            }
        }
        self.metrics.rooms.fetch_sub(1, Ordering::Relaxed);
        self.finish(effects).await;
    }

    /// Carries out what the core asked of the store, until it asks nothing
    /// more (an answer may lead to more).
    async fn carry_out(&mut self, effects: &Effects) {
        loop {
            let actions = self.core.take_actions();
            if actions.is_empty() {
                return;
            }
            for action in actions {
                let id = self.core.id().to_owned();
                match action {
                    Action::Commit(doc, req) => {
                        let mut commit = self.store.commit(&id, &doc, req);
                        // In memory the answer is ready: take it now.
                        match (&mut commit).now_or_never() {
                            Some(reply) => self.core.committed(&doc, reply, now()),
                            None => self
                                .commits
                                .push(Box::pin(commit.map(move |reply| (doc, reply)))),
                        }
                    }
                    Action::CommitTree(req) => {
                        let mut commit = self.store.commit_tree(&id, req);
                        match (&mut commit).now_or_never() {
                            Some(reply) => self.core.tree_committed(reply, now()),
                            None => self.tree_commit = Some(commit),
                        }
                    }
                    Action::CatchUp(doc) => {
                        let Some(revision) = self.core.revision_of(&doc) else {
                            continue;
                        };
                        let tail = self.store.entries_since(&id, &doc, revision).await;
                        self.core.caught_up(&doc, tail, now());
                    }
                    Action::Load(doc) => {
                        let loaded = self.load_doc(&doc).await;
                        self.core.doc_loaded(&doc, loaded);
                    }
                    Action::Owner(conn_id, act) => {
                        if let Err(e) = self.owner_act(act).await {
                            tracing::warn!(room = %short(&id), error = %e, "an owner's control did not reach the store");
                            self.core.owner_failed(conn_id, &e);
                        }
                    }
                    Action::CatchUpChat(after) => {
                        let read = self.store.chat_since(&id, after).await;
                        self.core.chat_caught_up(read);
                    }
                    Action::CatchUpTree => {
                        let tail = self.store.tree_since(&id, self.core.tree_revision()).await;
                        self.core.tree_caught_up(tail, now());
                    }
                    Action::Publish(p) => effects.publish(p),
                }
            }
        }
    }

    /// Carries out an owner's control, from the owner's connection or
    /// through REST: the store first (it tells the other instances), then
    /// this room at once (its own event comes back too; each control is
    /// idempotent). On an error nothing changed here.
    async fn owner_act(&mut self, act: OwnerAct) -> Result<Acted, StoreError> {
        let id = self.core.id().to_owned();
        Ok(match act {
            OwnerAct::ReadOnly(read_only) => {
                let found = self.store.set_read_only(&id, read_only).await?;
                if found {
                    self.core.set_read_only(read_only);
                }
                Acted::Found(found)
            }
            OwnerAct::Remove(user_id) => Acted::Removed(self.remove(&user_id).await?),
            OwnerAct::Rotate => Acted::Links(self.rotate(&id).await?),
            OwnerAct::End => {
                self.store.end_room(&id).await?;
                // This room ends whatever the store held: it was live here.
                self.core.end();
                Acted::Found(true)
            }
        })
    }

    /// Removes a user: in the store first (its client ids refused and the
    /// room's links replaced in one step, one event to every instance),
    /// then here: its connections closed and out of the room before the
    /// others hear the new links. Returns the client ids refused (none: no
    /// such user, nothing changed).
    async fn remove(&mut self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let id = self.core.id().to_owned();
        let (link, viewer) = (crate::ids::new_room_id(), crate::ids::new_room_id());
        let known = self.core.client_ids_of(user_id);
        let banned = self
            .store
            .remove_user(&id, user_id, &known, (&link, &viewer))
            .await?;
        if banned.is_empty() {
            return Ok(banned);
        }
        self.registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retire(&id);
        let banned = self.core.remove_user(user_id, banned, now());
        self.core.set_links(link, viewer);
        Ok(banned)
    }

    /// Replaces the room's share links (the store tells the other
    /// instances; this room learns at once); the new ones, `None` when the
    /// store has no such room.
    async fn rotate(&mut self, id: &str) -> Result<Option<(String, String)>, StoreError> {
        let (link, viewer) = (crate::ids::new_room_id(), crate::ids::new_room_id());
        if !self.store.rotate_links(id, &link, &viewer).await? {
            return Ok(None);
        }
        // The room's own id stops opening it through this instance's
        // shortcut to its live actor too.
        self.registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retire(id);
        self.core.set_links(link.clone(), viewer.clone());
        Ok(Some((link, viewer)))
    }

    /// Reads a document from the store, first making sure the store still
    /// holds the history this room's previous actor here applied to it.
    async fn load_doc(&mut self, doc: &str) -> Result<Option<crate::store::LoadedDoc>, StoreError> {
        let id = self.core.id().to_owned();
        let Some(mut loaded) = self.store.load_doc(&id, doc).await? else {
            return Ok(None);
        };
        if let Some(prior) = self.prior.remove(doc) {
            if let Err(e) = check_prior(&self.store, &id, doc, &prior, &mut loaded).await {
                self.prior.insert(doc.to_owned(), prior);
                return Err(e);
            }
        }
        Ok(Some(loaded))
    }

    /// Handles queued commands in order; joins that follow one another
    /// share one look at the store (many users arriving at once, as when
    /// an instance drains, would otherwise each wait for their own).
    async fn handle_burst(&mut self, burst: Vec<Command<S>>, effects: &Effects) {
        let mut joins = Vec::new();
        for cmd in burst {
            if self.core.stop().is_some() {
                // What is left is dropped: its joins hear the room is gone
                // (their reply channel closes) and retry.
                return;
            }
            match cmd {
                Command::Join(req, reply) => joins.push((req, reply)),
                other => {
                    self.joins(std::mem::take(&mut joins), effects).await;
                    self.handle(other, effects).await;
                }
            }
        }
        self.joins(joins, effects).await;
    }

    /// Joins these connections: one catch-up for all of them, then each.
    async fn joins(&mut self, joins: Vec<JoinWaiting<S>>, effects: &Effects) {
        if joins.is_empty() {
            return;
        }
        let any_since = joins.iter().any(|(req, _)| req.since.is_some());
        let ready = self.prepare_joins(any_since, effects).await;
        for (req, reply) in joins {
            let result = match &ready {
                Ok(()) => self.join(req).await,
                Err(e) => Err(e.clone()),
            };
            if let Err(Ok(joined)) = reply.send(result) {
                self.core.leave(joined.conn_id, now());
            }
        }
    }

    async fn handle(&mut self, cmd: Command<S>, effects: &Effects) {
        let at = now();
        match cmd {
            Command::Join(req, reply) => self.joins(vec![(req, reply)], effects).await,
            Command::Leave { conn_id } => self.core.leave(conn_id, at),
            Command::Edit {
                conn_id,
                doc,
                revision,
                seq,
                operation,
            } => self
                .core
                .edit(conn_id, doc.as_deref(), revision, seq, operation, at),
            Command::Cursor {
                conn_id,
                doc,
                revision,
                cursor,
                anchor,
            } => self
                .core
                .cursor(conn_id, doc.as_deref(), revision, cursor, anchor),
            Command::Open {
                conn_id,
                doc,
                since,
            } => self.core.open(conn_id, &doc, since),
            Command::Close { conn_id, doc } => self.core.close(conn_id, &doc),
            Command::CreateFile {
                conn_id,
                path,
                code,
                language,
            } => self.core.create_file(conn_id, path, code, language, at),
            Command::RenameFile { conn_id, doc, path } => {
                self.core.rename_file(conn_id, doc, path, at)
            }
            Command::DeleteFile { conn_id, doc } => self.core.delete_file(conn_id, doc, at),
            Command::Chat {
                conn_id,
                text,
                doc,
                line,
            } => self
                .core
                .chat(conn_id, text, doc.as_deref(), line, at, wall_ms()),
            Command::Typing { conn_id } => self.core.typing(conn_id, at),
            Command::Owner { conn_id, act } => self.core.owner_act(conn_id, act),
            Command::Snapshot(reply) => {
                let _ = reply.send(self.core.snapshot());
            }
            Command::Files(reply) => {
                let _ = reply.send(self.core.files());
            }
            Command::FileText(path, reply) => {
                let _ = reply.send(self.core.file_text(&path));
            }
            Command::Act { act, reply } => {
                let _ = reply.send(self.owner_act(act).await);
            }
            Command::Drain(done) => {
                self.draining = Some(done);
                self.core.drain(at);
            }
        }
        self.carry_out(effects).await;
    }

    /// Before joins: the store is asked what the core needs first (the
    /// main document, read or caught up; the tree's changes; where the
    /// history parted, when a join reconnects with `since`).
    async fn prepare_joins(&mut self, any_since: bool, effects: &Effects) -> Result<(), JoinError> {
        let id = self.core.id().to_owned();
        if self.core.is_shared() {
            // The tree first: which documents there are now.
            let tail = self.store.tree_since(&id, self.core.tree_revision()).await;
            self.core.tree_caught_up(tail, now());
            self.carry_out(effects).await;
            match self.core.main_id() {
                Some((main, true)) => {
                    // Catch up first, so a reconnecting client's resend
                    // meets an up-to-date de-duplication record. (With a
                    // commit in flight, what is read waits for its answer.)
                    if let Some(revision) = self.core.revision_of(&main) {
                        let tail = self.store.entries_since(&id, &main, revision).await;
                        self.core.caught_up(&main, tail, now());
                        self.carry_out(effects).await;
                    }
                }
                Some((main, false)) => {
                    let loaded = self.load_doc(&main).await?;
                    self.core.doc_loaded(&main, Ok(loaded));
                    self.carry_out(effects).await;
                }
                None => {}
            }
            if self.core.stop().is_some() {
                return Err(JoinError::Gone);
            }
            if any_since {
                // Whether the main document's history parted, as of now:
                // another instance may have found out since it was read.
                self.core
                    .note_fork(MAIN_DOC, self.store.fork(&id, MAIN_DOC).await?);
            }
        }
        Ok(())
    }

    /// A join, once [`Self::prepare_joins`] did: the client's identity (from
    /// the store when this room does not know it), then the core decides.
    async fn join(&mut self, req: JoinRequest<S>) -> Result<Joined, JoinError> {
        let id = self.core.id().to_owned();
        self.core
            .check_join(req.since, &req.client_id, req.project)?;
        if let Err(fresh) = self.core.identity(&req.client_id) {
            let settled = self.store.identity(&id, &req.client_id, fresh).await?;
            self.core.learn_identity(&req.client_id, settled);
        }
        self.core.join(req, now())
    }

    /// The core stopped: leave the registry (no join reaches this actor any
    /// more), then do what the stop asks.
    async fn finish(mut self, effects: Effects) {
        let id = self.core.id().to_owned();
        // Stop taking commands first: a join sent now fails at once, and
        // the registry below no longer hands this actor out.
        self.commands.close();
        let stop = self.core.stop().cloned();
        let prior = (self.core.is_shared()
            && matches!(stop, Some(Stop::Reset { .. } | Stop::Parted(..))))
        .then(|| Prior {
            docs: self
                .core
                .marks()
                .into_iter()
                .map(|(doc, (revision, marks))| (doc.to_string(), PriorDoc { revision, marks }))
                .collect(),
            at: std::time::Instant::now(),
        });
        self.registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ended(&id, &self.me, prior, self.room_ttl);
        self.store.unsubscribe(&id);
        drop(effects);
        match stop {
            Some(Stop::Reset {
                code,
                reason,
                detail,
            }) => {
                tracing::warn!(room = %short(&id), %detail, "room reset; clients reconnect");
                self.core.close_all(reason, &detail, code);
                self.leave_all().await;
            }
            Some(Stop::Parted(doc, detail)) => {
                let mine = self
                    .core
                    .marks()
                    .remove(&doc)
                    .map(|(_, marks)| marks)
                    .unwrap_or_default();
                let fork = record_parting(&self.store, &id, &doc, &mine).await;
                tracing::warn!(
                    room = %short(&id),
                    %doc,
                    %detail,
                    ?fork,
                    "the room's history in the store parted from this instance's (restored \
                     from an older state?): resynchronizing to what it holds; clients \
                     reconnect, and those past the fork keep their unacknowledged edits aside"
                );
                let msg = match fork {
                    Some(f) => format!(
                        "the room's store went back to an older state; the room continues from \
                         what it holds, which shares revisions up to {f} of document {doc} with \
                         yours. Reconnect: edits after that cannot be merged automatically"
                    ),
                    None => "the room's store went back to an older state; reconnect".to_owned(),
                };
                self.core
                    .close_all(error_code::HISTORY_RESET, &msg, close_code::RESTARTING);
                self.leave_all().await;
            }
            Some(Stop::Drained) => {
                // Connections close with 1012 and reconnect elsewhere: their
                // presence here ends now, not when a heartbeat expires.
                self.leave_all().await;
                if let Some(done) = self.draining.take() {
                    let _ = done.send(());
                }
            }
            Some(Stop::Ended) => {
                // Its keys are gone; nothing is written back (no leaves).
                tracing::info!(room = %short(&id), "room ended by its owner");
                self.core.close_all(
                    error_code::ROOM_ENDED,
                    "the room's owner ended this room; its text and chat are deleted",
                    close_code::ROOM_ENDED,
                );
            }
            Some(Stop::Expired) | None => tracing::info!(room = %short(&id), "room ended"),
        }
        // In memory the room is gone with its actor; a stored one lives on.
        self.store.room_ended(&id, self.core.viewer_id());
        // A commit still in flight is dropped: it happened in the store or
        // not, and its clients resend anything unacknowledged to a fresh room.
    }

    /// Removes this instance's presence records of the room's users.
    async fn leave_all(&mut self) {
        for u in self.core.local_users() {
            let _ = self.store.leave(self.core.id(), &u).await;
        }
    }
}

fn now() -> std::time::Instant {
    std::time::Instant::now()
}

/// Records in the store where a document's history parted from `mine`
/// (the marks of a history this instance applied): the last revision both
/// share. Retries a little while the store is unreachable; `None` when it
/// could not.
async fn record_parting(store: &Store, id: &str, doc: &str, mine: &[lineage::Mark]) -> Option<u64> {
    for attempt in 0..5u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200) * attempt).await;
        }
        let loaded = match store.load_doc(id, doc).await {
            Ok(Some(loaded)) => loaded,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(room = %short(id), error = %e, "cannot read the room to record where its history parted");
                continue;
            }
        };
        let fork = lineage::fork_point(mine, &super::core::loaded_marks(&loaded));
        match store.record_fork(id, doc, fork).await {
            Ok(recorded) => return recorded,
            Err(e) => {
                tracing::warn!(room = %short(id), error = %e, "cannot record where the room's history parted")
            }
        }
    }
    None
}

/// The wall clock in milliseconds since the Unix epoch (when a chat
/// message was received).
fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
