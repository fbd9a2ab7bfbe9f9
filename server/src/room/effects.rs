//! The store's side effects of one room, run in order beside its actor so
//! the actor never waits on them: presence, carets, snapshots, TTL
//! refreshes, and the periodic check. Carets and snapshots are handed over
//! as state, not queued (the newest caret per user, the newest snapshot),
//! and a periodic check is not queued while one is pending, so a slow or
//! unreachable store cannot make them pile up. What a check finds goes back
//! to the actor as the store's events and a presence check.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ropey::Rope;
use tokio::sync::mpsc;

use super::core::Publish;
use crate::ids::short;
use crate::store::{PresenceCheck, Store, StoreEvent};

/// A caret to publish: (revision, cursor, anchor).
type Caret = (u64, u64, Option<u64>);

/// What waits as state rather than in the queue.
#[derive(Default)]
struct Waiting {
    carets: Mutex<HashMap<String, Caret>>,
    snapshot: Mutex<Option<(u64, Rope)>>,
    checking: AtomicBool,
}

/// One queued effect.
enum Job {
    Publish(Publish),
    /// Publish the carets waiting.
    Carets,
    /// Write the snapshot waiting.
    Snapshot,
}

/// The actor's end of the runner.
pub(super) struct Effects {
    jobs: mpsc::UnboundedSender<Job>,
    waiting: Arc<Waiting>,
}

impl Effects {
    /// Starts the runner for room `id`: what the store says back goes to
    /// `events` and `checks`.
    pub(super) fn spawn(
        store: Store,
        id: String,
        viewer: Option<String>,
        events: mpsc::Sender<StoreEvent>,
        checks: mpsc::UnboundedSender<PresenceCheck>,
    ) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        let waiting = Arc::new(Waiting::default());
        tokio::spawn(run(store, id, viewer, rx, events, checks, waiting.clone()));
        Self { jobs, waiting }
    }

    /// Hands one effect over.
    pub(super) fn publish(&self, p: Publish) {
        let job = match p {
            Publish::Caret(user, caret) => {
                let mut carets = self
                    .waiting
                    .carets
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let first = carets.is_empty();
                carets.insert(user, caret);
                if !first {
                    return;
                }
                Job::Carets
            }
            Publish::Snapshot(revision, doc) => {
                let waiting = self
                    .waiting
                    .snapshot
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .replace((revision, doc));
                if waiting.is_some() {
                    return;
                }
                Job::Snapshot
            }
            // Not while the last one is still queued (the store is slow).
            Publish::Check(_) if self.waiting.checking.swap(true, Ordering::Relaxed) => return,
            p => Job::Publish(p),
        };
        let _ = self.jobs.send(job);
    }
}

async fn run(
    store: Store,
    id: String,
    viewer: Option<String>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    events: mpsc::Sender<StoreEvent>,
    checks: mpsc::UnboundedSender<PresenceCheck>,
    waiting: Arc<Waiting>,
) {
    while let Some(job) = jobs.recv().await {
        let result = match job {
            Job::Publish(Publish::Join(user)) => store.join(&id, &user).await,
            Job::Publish(Publish::Leave(user_id)) => store.leave(&id, &user_id).await,
            Job::Publish(Publish::Touch) => store.touch(&id, viewer.as_deref()).await,
            Job::Publish(Publish::ExpireClients) => store.expire_clients(&id).await,
            Job::Publish(Publish::Check(after)) => {
                check(&store, &id, after, &events, &checks).await;
                waiting.checking.store(false, Ordering::Relaxed);
                Ok(())
            }
            // Handed over as state (above), never queued as themselves.
            Job::Publish(Publish::Caret(..) | Publish::Snapshot(..)) => Ok(()),
            Job::Carets => {
                let carets: Vec<_> = waiting
                    .carets
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .drain()
                    .collect();
                let mut result = Ok(());
                for (user_id, caret) in carets {
                    if let Err(e) = store.cursor(&id, &user_id, caret).await {
                        result = Err(e);
                    }
                }
                result
            }
            Job::Snapshot => {
                let newest = waiting
                    .snapshot
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                match newest {
                    Some((revision, doc)) => store.write_snapshot(&id, revision, doc).await,
                    None => Ok(()),
                }
            }
        };
        if let Err(e) = result {
            // (The store counted the failure.)
            tracing::warn!(room = %short(&id), error = %e, "store side effect failed");
        }
    }
}

/// The periodic check: operations the store's events lost (read as if they
/// had been published), and presence.
async fn check(
    store: &Store,
    id: &str,
    after: u64,
    events: &mpsc::Sender<StoreEvent>,
    checks: &mpsc::UnboundedSender<PresenceCheck>,
) {
    if let Ok(tail) = store.entries_since(id, after).await {
        let news = match tail {
            // The store went back: the room reads it again and finds out.
            Some(tail) if tail.revision < after => Some(StoreEvent::Resync),
            // Nothing new, and nothing to check our history against.
            Some(tail) if tail.entries.is_empty() && tail.base.is_none() => None,
            // Entries the room already has are ignored; a gap makes it read
            // the log itself. `base` lets it check that they follow its own
            // revision `after`.
            Some(tail) => Some(StoreEvent::Ops {
                base: tail.base,
                entries: tail.entries,
            }),
            None => Some(StoreEvent::Resync), // Gone: the room finds out and ends.
        };
        if let Some(news) = news {
            if let Err(mpsc::error::TrySendError::Full(_)) = events.try_send(news) {
                let _ = events.try_send(StoreEvent::Resync);
            }
        }
    }
    if let Ok(found) = store.presence_check(id).await {
        let _ = checks.send(found);
    }
}
