//! The writing half of a connection: drains what the room queued in the
//! outbox (and the newest carets) each time it is woken, one flush per
//! wake, until a close is requested or the socket fails.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use collab_protocol::close_code;
use futures_util::stream::SplitSink;
use futures_util::SinkExt;

use super::outbox::{ConnSignals, Queued};
use crate::metrics::{Metrics, Reject};

/// A writer keeps the buffer of its last burst for the next one unless it
/// grew past this many messages.
const SPARE_SLOTS: usize = 64;

/// Aborts a task when dropped.
pub(super) struct AbortOnDrop(pub(super) tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Writes what the room queued (and the coalesced carets) each time it is
/// woken, one flush per wake, until a close is requested or the socket fails.
pub(super) async fn write_half(
    mut sink: SplitSink<WebSocket, Message>,
    signals: Arc<ConnSignals>,
    metrics: Arc<Metrics>,
) {
    let mut batch = VecDeque::new();
    loop {
        signals.notify.notified().await;
        let cursors = signals.take(&mut batch);
        let Ok(sent) = feed_batch(&mut sink, &mut batch).await else {
            return;
        };
        if batch.capacity() > SPARE_SLOTS {
            // A burst is over: give its memory back.
            batch = VecDeque::new();
        }
        for m in cursors {
            if sink.feed(Message::Text(m)).await.is_err() {
                return;
            }
        }
        if signals.take_ping() && sink.feed(Message::Ping(Default::default())).await.is_err() {
            return;
        }
        if let Some((code, reason)) = signals.take_close() {
            // What was queued before the close was asked for (the error
            // that explains it) goes first.
            signals.take_queue(&mut batch);
            if feed_batch(&mut sink, &mut batch).await.is_err() {
                return;
            }
            if code == close_code::LAGGING {
                metrics.reject(Reject::Lagging);
            }
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            let _ = sink.send(Message::Close(Some(frame))).await;
            return;
        }
        if sink.flush().await.is_err() {
            return;
        }
        signals.written(sent);
        if let Some(wait) = signals.take_queue_wait() {
            metrics.fanout_latency.observe(wait);
        }
    }
}

/// Feeds a batch the room queued to the sink (without flushing it);
/// returns how many messages it held.
async fn feed_batch(
    sink: &mut SplitSink<WebSocket, Message>,
    batch: &mut VecDeque<Queued>,
) -> Result<usize, axum::Error> {
    let n = batch.len();
    for m in batch.drain(..) {
        sink.feed(Message::Text(Utf8Bytes::clone(&m))).await?;
    }
    Ok(n)
}
