//! The one subscriber connection of this instance on a single Redis: (re)connects with
//! backoff, (re)subscribes every room's channel, routes each event to its
//! room, and tells every room to read the log after a reconnect (pub/sub is
//! at most once: what was published meanwhile is lost).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::wire::{own_prefixes, WireEvent};
use crate::store::StoreEvent;

/// The subscribers' routing table: channel -> the room that hears it.
pub(super) type Feeds = Arc<Mutex<HashMap<String, mpsc::Sender<StoreEvent>>>>;

/// Hands one published event to the room of its channel (events this
/// instance published itself are skipped: applied when they returned).
pub(super) fn route(subscribers: &Feeds, own: &[String], instance: &str, ch: &str, payload: &str) {
    let feed = subscribers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(ch)
        .cloned();
    let Some(feed) = feed else { return };
    if own.iter().any(|p| payload.starts_with(p.as_str())) {
        return;
    }
    match serde_json::from_str::<WireEvent>(payload) {
        Ok(ev) => {
            let Some(ev) = ev.into_event(instance) else {
                return;
            };
            // A full feed means the room is far behind: it reads the log
            // instead.
            if feed.try_send(ev).is_err() {
                let _ = feed.try_send(StoreEvent::Resync);
            }
        }
        // The channel name holds the room id: log only its prefix.
        Err(e) => {
            tracing::warn!(error = %e, room = %crate::ids::short(ch.trim_start_matches("collab:{")), "unreadable event")
        }
    }
}

/// Tells every room to read what it may have missed.
pub(super) fn resync_all(subscribers: &Feeds) {
    let feeds: Vec<_> = subscribers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .cloned()
        .collect();
    for f in feeds {
        let _ = f.try_send(StoreEvent::Resync);
    }
}

/// What a room asks of the subscriber.
pub(super) enum SubRequest {
    Subscribe(String),
    Unsubscribe(String),
}

/// How long a (un)subscribe may take before the subscriber reconnects.
const SUB_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the subscriber until the store is dropped.
pub(super) async fn run(
    client: redis::Client,
    subscribers: Feeds,
    mut requests: mpsc::UnboundedReceiver<SubRequest>,
    instance: String,
    errors: Arc<AtomicU64>,
) {
    let own = own_prefixes(&instance);
    let failed = || {
        errors.fetch_add(1, Ordering::Relaxed);
    };
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    loop {
        let pubsub = match client.get_async_pubsub().await {
            Ok(p) => p,
            Err(e) => {
                failed();
                tracing::warn!(error = %e, "redis subscriber cannot connect; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        let wanted: Vec<String> = subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        let mut ok = true;
        for ch in &wanted {
            if !matches!(
                tokio::time::timeout(SUB_TIMEOUT, sink.subscribe(ch)).await,
                Ok(Ok(()))
            ) {
                ok = false;
                break;
            }
        }
        if !ok {
            failed();
            tokio::time::sleep(backoff).await;
            continue;
        }
        backoff = Duration::from_millis(100);
        if !first {
            tracing::info!("redis subscriber reconnected; rooms resynchronize");
            resync_all(&subscribers);
        }
        first = false;
        loop {
            tokio::select! {
                msg = stream.next() => {
                    let Some(msg) = msg else { break };
                    let Ok(payload) = msg.get_payload::<String>() else { continue };
                    route(&subscribers, &own, &instance, msg.get_channel_name(), &payload);
                }
                req = requests.recv() => {
                    let Some(req) = req else { return };
                    // A half-open link must not hang us: time out and reconnect.
                    let result = match req {
                        SubRequest::Subscribe(ch) => tokio::time::timeout(SUB_TIMEOUT, sink.subscribe(&ch)).await,
                        SubRequest::Unsubscribe(ch) => tokio::time::timeout(SUB_TIMEOUT, sink.unsubscribe(&ch)).await,
                    };
                    if !matches!(result, Ok(Ok(()))) {
                        failed();
                        break;
                    }
                }
            }
        }
        tracing::warn!("redis subscriber disconnected; reconnecting");
    }
}
