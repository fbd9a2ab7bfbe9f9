//! The store's side effects of one room, run in order beside its actor so
//! the actor never waits on them: presence, carets, chat and typing,
//! snapshots, TTL refreshes, and the periodic check. Carets and snapshots are handed over
//! as state, not queued (the newest caret per user, the newest snapshot),
//! and a periodic check is not queued while one is pending, so a slow or
//! unreachable store cannot make them pile up. What a check finds goes back
//! to the actor as the store's events and a presence check.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ropey::Rope;
use tokio::sync::mpsc;

use super::core::doc::DocId;
use super::core::Publish;
use crate::ids::short;
use crate::store::{PresenceCheck, Store, StoreEvent};

/// A caret to publish: its document and (revision, cursor, anchor).
type Caret = (DocId, (u64, u64, Option<u64>));

/// What waits as state rather than in the queue.
#[derive(Default)]
struct Waiting {
    /// The newest caret of each user.
    carets: Mutex<HashMap<String, Caret>>,
    /// The newest snapshot of each document.
    snapshots: Mutex<HashMap<DocId, (u64, Rope)>>,
    checking: AtomicBool,
    /// The room's read-only id and replaced editing link, whose keys a
    /// TTL refresh keeps alive with the room's.
    aliases: Mutex<(Option<String>, Option<String>)>,
}

/// One queued effect.
enum Job {
    Publish(Publish),
    /// Publish the carets waiting.
    Carets,
    /// Write the snapshots waiting.
    Snapshots,
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
        link: Option<String>,
        events: mpsc::Sender<StoreEvent>,
        checks: mpsc::UnboundedSender<PresenceCheck>,
    ) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        let waiting = Arc::new(Waiting {
            aliases: Mutex::new((viewer, link)),
            ..Waiting::default()
        });
        tokio::spawn(run(store, id, rx, events, checks, waiting.clone()));
        Self { jobs, waiting }
    }

    /// Hands one effect over.
    pub(super) fn publish(&self, p: Publish) {
        let job = match p {
            Publish::Caret(user, doc, caret) => {
                let mut carets = self
                    .waiting
                    .carets
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let first = carets.is_empty();
                carets.insert(user, (doc, caret));
                if !first {
                    return;
                }
                Job::Carets
            }
            Publish::Snapshot(doc, revision, text) => {
                let mut snapshots = self
                    .waiting
                    .snapshots
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let first = snapshots.is_empty();
                snapshots.insert(doc, (revision, text));
                if !first {
                    return;
                }
                Job::Snapshots
            }
            Publish::Aliases(viewer, link) => {
                *self
                    .waiting
                    .aliases
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = (viewer, link);
                return;
            }
            // Not while the last one is still queued (the store is slow).
            Publish::Check { .. } if self.waiting.checking.swap(true, Ordering::Relaxed) => return,
            p => Job::Publish(p),
        };
        let _ = self.jobs.send(job);
    }
}

async fn run(
    store: Store,
    id: String,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    events: mpsc::Sender<StoreEvent>,
    checks: mpsc::UnboundedSender<PresenceCheck>,
    waiting: Arc<Waiting>,
) {
    while let Some(job) = jobs.recv().await {
        let result = match job {
            Job::Publish(Publish::Join(user)) => store.join(&id, &user).await,
            Job::Publish(Publish::Leave(user_id)) => store.leave(&id, &user_id).await,
            Job::Publish(Publish::Touch) => {
                let (viewer, link) = waiting
                    .aliases
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                store.touch(&id, viewer.as_deref(), link.as_deref()).await
            }
            Job::Publish(Publish::ExpireClients) => store.expire_clients(&id).await,
            Job::Publish(Publish::Chat(msg)) => store.chat(&id, &msg).await,
            Job::Publish(Publish::Typing(user_id, doc)) => {
                store.typing(&id, &user_id, doc.as_deref()).await
            }
            Job::Publish(Publish::Check { docs, tree, chat }) => {
                check(&store, &id, &docs, tree, chat, &events, &checks).await;
                waiting.checking.store(false, Ordering::Relaxed);
                Ok(())
            }
            // Handed over as state (above), never queued as themselves.
            Job::Publish(Publish::Caret(..) | Publish::Snapshot(..) | Publish::Aliases(..)) => {
                Ok(())
            }
            Job::Carets => {
                let carets: Vec<_> = waiting
                    .carets
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .drain()
                    .collect();
                let mut result = Ok(());
                for (user_id, (doc, caret)) in carets {
                    if let Err(e) = store.cursor(&id, &user_id, &doc, caret).await {
                        result = Err(e);
                    }
                }
                result
            }
            Job::Snapshots => {
                let newest: Vec<_> = waiting
                    .snapshots
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .drain()
                    .collect();
                let mut result = Ok(());
                for (doc, (revision, text)) in newest {
                    if let Err(e) = store.write_snapshot(&id, &doc, revision, text).await {
                        result = Err(e);
                    }
                }
                result
            }
        };
        if let Err(e) = result {
            // (The store counted the failure.)
            tracing::warn!(room = %short(&id), error = %e, "store side effect failed");
        }
    }
}

/// The periodic check: operations and tree changes the store's events
/// lost (read as if they had been published), and presence.
async fn check(
    store: &Store,
    id: &str,
    docs: &[(DocId, u64)],
    tree: u64,
    chat: u64,
    events: &mpsc::Sender<StoreEvent>,
    checks: &mpsc::UnboundedSender<PresenceCheck>,
) {
    let deliver = |news: StoreEvent| {
        if let Err(mpsc::error::TrySendError::Full(_)) = events.try_send(news) {
            let _ = events.try_send(StoreEvent::Resync);
        }
    };
    // The chat is read only when the tree read says it grew (or could not
    // say): most checks find nothing new and cost one round trip less.
    let mut chat_grew = true;
    if let Ok(tail) = store.tree_since(id, tree).await {
        chat_grew = tail.as_ref().is_some_and(|t| t.chat_seq > chat);
        match tail {
            // The store went back, or the room is gone: the room reads it
            // again and finds out.
            Some(tail) if tail.revision < tree => deliver(StoreEvent::Resync),
            None => deliver(StoreEvent::Resync),
            Some(tail) => {
                for e in tail.entries {
                    deliver(StoreEvent::Tree(e));
                }
                if let Some((link, viewer)) = tail.links {
                    deliver(StoreEvent::Links { link, viewer });
                }
            }
        }
    }
    for (doc, after) in docs {
        let Ok(tail) = store.entries_since(id, doc, *after).await else {
            continue;
        };
        let news = match tail {
            Some(tail) if tail.revision < *after => Some(StoreEvent::Resync),
            // Nothing new, and nothing to check our history against.
            Some(tail) if tail.entries.is_empty() && tail.base.is_none() => None,
            // Entries the room already has are ignored; a gap makes it read
            // the log itself. `base` lets it check that they follow its own
            // revision `after`.
            Some(tail) => Some(StoreEvent::Ops {
                doc: doc.to_string(),
                size: None,
                base: tail.base,
                entries: tail.entries,
            }),
            // Deleted: the tree change tells the room.
            None => None,
        };
        if let Some(news) = news {
            deliver(news);
        }
    }
    if chat_grew {
        if let Ok(missed) = store.chat_since(id, chat).await {
            for m in missed {
                deliver(StoreEvent::Chat(m));
            }
        }
    }
    if let Ok(found) = store.presence_check(id).await {
        let _ = checks.send(found);
    }
}
