//! The subscriber of an instance on a Redis Cluster: sharded pub/sub
//! (`SSUBSCRIBE`), so a room's events travel only through the primary that
//! owns its slot, and this instance holds a subscriber connection only to
//! the shards its rooms live on.
//!
//! The cluster connection (RESP3, pushes on a channel) routes each
//! `SSUBSCRIBE` to the slot's primary and resubscribes by itself after a
//! reconnect or a new slot map. What it does not do, and this task does:
//! - when a slot moves, the old owner ends its sharded subscriptions (an
//!   `sunsubscribe` push); a room that still wants its channel subscribes
//!   again, to wherever the slot now lives;
//! - every (re)subscription, and every lost node connection, may have let
//!   events go by (pub/sub is at most once): the rooms concerned read the
//!   log (`Resync`), as after the single-node subscriber reconnects.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc;

use super::subscriber::{resync_all, route, Feeds, SubRequest};
use super::wire::own_prefixes;
use crate::store::StoreEvent;

/// Runs the subscriber until the store is dropped. `client` must be built
/// with RESP3 and with `pushes` as its push sender.
pub(super) async fn run(
    client: ClusterClient,
    mut pushes: mpsc::UnboundedReceiver<PushInfo>,
    subscribers: Feeds,
    mut requests: mpsc::UnboundedReceiver<SubRequest>,
    instance: String,
    errors: Arc<AtomicU64>,
) {
    let conn = client.get_pending_async_connection_with_config(super::conn::cluster_config());
    // (Re)subscriptions go through one worker, in order, so a room that
    // leaves right after joining ends unsubscribed; the push router asks it
    // to subscribe again after a slot moved.
    let (again, work) = mpsc::unbounded_channel();
    tokio::spawn(worker(conn, work, subscribers.clone(), errors.clone()));
    let own = own_prefixes(&instance);
    loop {
        tokio::select! {
            push = pushes.recv() => {
                let Some(push) = push else { return };
                on_push(push, &subscribers, &own, &instance, &again);
            }
            req = requests.recv() => {
                let Some(req) = req else { return };
                if again.send(req).is_err() {
                    return;
                }
            }
        }
    }
}

/// Handles one push from any node of the cluster.
fn on_push(
    push: PushInfo,
    subscribers: &Feeds,
    own: &[String],
    instance: &str,
    again: &mpsc::UnboundedSender<SubRequest>,
) {
    let text = |v: Option<&Value>| -> Option<String> {
        match v? {
            Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
            Value::SimpleString(s) => Some(s.clone()),
            _ => None,
        }
    };
    let channel = text(push.data.first());
    let wanted = |ch: &str| {
        subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(ch)
            .cloned()
    };
    match push.kind {
        PushKind::SMessage | PushKind::Message => {
            if let (Some(ch), Some(payload)) = (channel, text(push.data.get(1))) {
                route(subscribers, own, instance, &ch, &payload);
            }
        }
        PushKind::SSubscribe => {
            // First subscription or a resubscription after a reconnect, a
            // failover or a moved slot: either way, read what went by.
            if let Some(feed) = channel.as_deref().and_then(wanted) {
                let _ = feed.try_send(StoreEvent::Resync);
            }
        }
        PushKind::SUnsubscribe => {
            // Ours (the room left) or the server's (its slot moved away):
            // a room still here subscribes again.
            if let Some(ch) = channel.filter(|ch| wanted(ch).is_some()) {
                tracing::info!(room = %crate::ids::short(ch.trim_start_matches("collab:{")), "sharded subscription ended by redis (slot moved?); subscribing again");
                let _ = again.send(SubRequest::Subscribe(ch));
            }
        }
        PushKind::Disconnection => {
            tracing::warn!(
                "a redis cluster node connection of the subscriber dropped; rooms resynchronize"
            );
            resync_all(subscribers);
        }
        _ => {}
    }
}

/// Sends (un)subscriptions one at a time; a subscription that fails is
/// retried with backoff for as long as its room still wants it.
async fn worker(
    mut conn: ClusterConnection,
    mut work: mpsc::UnboundedReceiver<SubRequest>,
    subscribers: Feeds,
    errors: Arc<AtomicU64>,
) {
    let wanted = |ch: &str| {
        subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(ch)
    };
    while let Some(req) = work.recv().await {
        match req {
            SubRequest::Subscribe(ch) => {
                let mut backoff = Duration::from_millis(100);
                while wanted(&ch) {
                    match conn.ssubscribe(&ch).await {
                        Ok(()) => break,
                        Err(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(error = %e, "redis ssubscribe failed; retrying");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(2));
                        }
                    }
                }
            }
            SubRequest::Unsubscribe(ch) => {
                if !wanted(&ch) && conn.sunsubscribe(&ch).await.is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}
