//! Rooms in Redis, shared by any number of server instances; the layout is
//! docs/redis.md. Everything that knows Redis is in this folder:
//!
//! - [`keys`]: key names, every room key hash-tagged with the room id;
//! - [`scripts`]: the Lua scripts that change several keys atomically (a
//!   commit checks the expected revision, appends, trims and publishes);
//! - [`wire`]: the compact forms published on a room's channel and logged;
//! - [`subscriber`]: the one pub/sub connection, routing events to rooms;
//! - [`presence`]: who is connected where, heartbeats, and reaping the
//!   users of instances that died.
//!
//! Pub/sub is only the fast path: a room that sees a gap in revisions, or
//! hears that the subscriber reconnected, reads the missed entries from the
//! log.

mod keys;
mod presence;
mod scripts;
mod subscriber;
mod wire;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;
use ropey::Rope;
use tokio::sync::mpsc;

use self::keys::{channel, k_ids, k_meta, k_snap, k_viewer, room_keys};
use self::scripts::Scripts;
use self::subscriber::SubRequest;
use self::wire::{mark_text, pairs_of, parse_entry, parse_mark, to_json};
use super::{CommitReply, CommitRequest, LoadedRoom, StoreError, StoreEvent, Tail, TURN};

pub use self::presence::{spawn_heartbeat, HEARTBEAT_EVERY, HEARTBEAT_TTL};

type Result<T> = std::result::Result<T, StoreError>;

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        StoreError::Unavailable(format!("redis: {e}"))
    }
}

/// The Redis side of the server: one multiplexed connection for commands,
/// one subscriber connection for every room's channel.
pub struct RedisStore {
    conn: ConnectionManager,
    /// This server instance's id (random per process).
    instance: String,
    ttl: Duration,
    history: usize,
    history_bytes: usize,
    scripts: Scripts,
    /// Channel -> the room that hears it.
    subscribers: Arc<Mutex<HashMap<String, mpsc::Sender<StoreEvent>>>>,
    sub_requests: mpsc::UnboundedSender<SubRequest>,
    /// Counts every failed request to Redis, whatever asked for it (a
    /// commit, a join, a REST lookup, a heartbeat, the subscriber).
    errors: Arc<AtomicU64>,
}

impl RedisStore {
    /// Connects lazily: the server starts even while Redis is down, and the
    /// connection manager reconnects by itself. Every failed request adds
    /// one to `errors`.
    pub fn connect(
        url: &str,
        instance: String,
        ttl: Duration,
        history: usize,
        history_bytes: usize,
        errors: Arc<AtomicU64>,
    ) -> Result<Arc<Self>> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(3)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let store = Arc::new(Self {
            conn,
            instance,
            ttl,
            history,
            history_bytes,
            scripts: Scripts::new(),
            subscribers: Arc::default(),
            sub_requests: tx,
            errors: errors.clone(),
        });
        tokio::spawn(subscriber::run(
            client,
            store.subscribers.clone(),
            rx,
            store.instance.clone(),
            errors,
        ));
        Ok(store)
    }

    /// This instance's id.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Runs one request to Redis, counting it when it fails.
    async fn counted<T>(&self, request: impl Future<Output = Result<T>>) -> Result<T> {
        let result = request.await;
        if result.is_err() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn ttl_ms(&self) -> u64 {
        self.ttl.as_millis() as u64
    }

    /// True when Redis answers a PING.
    pub async fn healthy(&self) -> bool {
        let mut c = self.conn.clone();
        self.counted(async { Ok(redis::cmd("PING").query_async::<String>(&mut c).await?) })
            .await
            .is_ok()
    }

    /// Stores a new room at revision 0.
    pub async fn create_room(
        &self,
        id: &str,
        viewer: &str,
        code: &str,
        language: &str,
    ) -> Result<()> {
        self.counted(async {
            let mut c = self.conn.clone();
            let ttl = self.ttl_ms();
            // The read-only id lives on another cluster slot: its own command.
            c.set_ex::<_, _, ()>(k_viewer(viewer), id, self.ttl.as_secs().max(1))
                .await?;
            redis::pipe()
                .atomic()
                .hset_multiple(
                    k_meta(id),
                    &[
                        ("revision", "0"),
                        ("snap_rev", "0"),
                        ("language", language),
                        ("viewer", viewer),
                    ],
                )
                .pexpire(k_meta(id), ttl as i64)
                .set(k_snap(id), code)
                .pexpire(k_snap(id), ttl as i64)
                .query_async::<()>(&mut c)
                .await?;
            Ok(())
        })
        .await
    }

    /// True when the room exists.
    pub async fn exists(&self, id: &str) -> Result<bool> {
        self.counted(async {
            let mut c = self.conn.clone();
            Ok(c.exists(k_meta(id)).await?)
        })
        .await
    }

    /// The room a read-only id opens, if any.
    pub async fn viewer_room(&self, viewer: &str) -> Result<Option<String>> {
        self.counted(async {
            let mut c = self.conn.clone();
            Ok(c.get(k_viewer(viewer)).await?)
        })
        .await
    }

    /// Reads a room whole, or `None` when it does not exist.
    pub async fn load(&self, id: &str) -> Result<Option<LoadedRoom>> {
        self.counted(async {
            let mut c = self.conn.clone();
            let mut inv = self.scripts.load.prepare_invoke();
            for k in room_keys(id) {
                inv.key(k);
            }
            type Raw = Option<(
                u64,
                u64,
                String,
                String,
                String,
                Vec<String>,
                Vec<String>,
                Vec<String>,
                Vec<String>,
                String,
                String,
            )>;
            let raw: Raw = inv.invoke_async(&mut c).await?;
            let Some((
                revision,
                snapshot_revision,
                language,
                viewer,
                snapshot,
                log,
                dedup,
                ids,
                presence,
                tip,
                fork,
            )) = raw
            else {
                return Ok(None);
            };
            let log = log
                .iter()
                .map(|e| parse_entry(e))
                .collect::<Result<Vec<_>>>()?;
            let dedup = pairs_of(&dedup)
                .map(|(k, v)| {
                    let (s, r) = v
                        .split_once(':')
                        .ok_or_else(|| StoreError::Corrupt(v.to_owned()))?;
                    let num = |x: &str| {
                        x.parse::<u64>()
                            .map_err(|_| StoreError::Corrupt(v.to_owned()))
                    };
                    Ok((k.to_owned(), (num(s)?, num(r)?)))
                })
                .collect::<Result<_>>()?;
            let identities = pairs_of(&ids)
                .filter_map(|(k, v)| {
                    v.split_once('|')
                        .map(|(u, c)| (k.to_owned(), (u.to_owned(), c.to_owned())))
                })
                .collect();
            let presence = pairs_of(&presence)
                .filter_map(|(_, v)| serde_json::from_str(v).ok())
                .collect();
            Ok(Some(LoadedRoom {
                revision,
                language,
                snapshot_revision,
                snapshot,
                log,
                dedup,
                identities,
                presence,
                viewer: Some(viewer).filter(|v| !v.is_empty()),
                tip: parse_mark(&tip),
                fork: fork.parse().ok(),
            }))
        })
        .await
    }

    /// Appends the request's entries if the room is still at its expected
    /// revision (holding the expected operation there), and publishes them,
    /// atomically.
    pub async fn commit(&self, id: &str, req: CommitRequest) -> Result<CommitReply> {
        self.counted(async {
            let mut c = self.conn.clone();
            let mut inv = self.scripts.commit.prepare_invoke();
            for k in room_keys(id) {
                inv.key(k);
            }
            let new_tip = req
                .entries
                .last()
                .map(|e| mark_text((e.revision, e.id)))
                .unwrap_or_default();
            inv.arg(req.expected)
                .arg(self.ttl_ms())
                .arg(channel(id))
                .arg(self.history)
                .arg(&self.instance)
                .arg(TURN.as_millis() as u64)
                .arg(self.history_bytes)
                .arg(req.expected_tip.map(mark_text).unwrap_or_default())
                .arg(new_tip);
            for e in &req.entries {
                inv.arg(&*e.client_id)
                    .arg(format!("{}:{}", e.seq, e.revision))
                    .arg(to_json(e));
            }
            let (status, revision, missed, log_bytes): (i64, u64, Vec<String>, u64) =
                inv.invoke_async(&mut c).await?;
            Ok(match status {
                1 => CommitReply::Committed {
                    revision,
                    log_bytes,
                },
                0 => CommitReply::Conflict {
                    revision,
                    missed: missed
                        .iter()
                        .map(|e| parse_entry(e))
                        .collect::<Result<Vec<_>>>()?,
                },
                2 => CommitReply::Yield { revision },
                3 => CommitReply::Parted { revision },
                _ => CommitReply::Gone,
            })
        })
        .await
    }

    /// The logged operations after revision `after`: `Ok(None)` when the
    /// room is gone; a trimmed log is not an error (the reader checks that
    /// the first entry is `after + 1`).
    pub async fn entries_since(&self, id: &str, after: u64) -> Result<Option<Tail>> {
        self.counted(async {
            let mut c = self.conn.clone();
            let mut inv = self.scripts.since.prepare_invoke();
            for k in room_keys(id) {
                inv.key(k);
            }
            inv.arg(after);
            let raw: Option<(u64, Vec<String>, String, String)> = inv.invoke_async(&mut c).await?;
            let Some((revision, log, base, fork)) = raw else {
                return Ok(None);
            };
            let entries = log
                .iter()
                .map(|e| parse_entry(e))
                .collect::<Result<Vec<_>>>()?;
            Ok(Some(Tail {
                revision,
                entries,
                base: parse_mark(&base),
                fork: fork.parse().ok(),
            }))
        })
        .await
    }

    /// Records that the room's history parted after revision `at` (keeping
    /// the earliest such revision); returns the recorded one, `None` when
    /// the room is gone.
    pub async fn record_fork(&self, id: &str, at: u64) -> Result<Option<u64>> {
        self.counted(async {
            let mut c = self.conn.clone();
            let fork: i64 = self
                .scripts
                .fork
                .key(k_meta(id))
                .arg(at)
                .invoke_async(&mut c)
                .await?;
            Ok(u64::try_from(fork).ok())
        })
        .await
    }

    /// The revision after which the room's history parted, if it ever did.
    pub async fn fork(&self, id: &str) -> Result<Option<u64>> {
        self.counted(async {
            let mut c = self.conn.clone();
            let fork: Option<u64> = c.hget(k_meta(id), "fork").await?;
            Ok(fork)
        })
        .await
    }

    /// Stores the document at `revision` as the snapshot and trims the log.
    pub async fn write_snapshot(&self, id: &str, revision: u64, doc: Rope) -> Result<()> {
        self.counted(async {
            let mut c = self.conn.clone();
            let mut inv = self.scripts.snapshot.prepare_invoke();
            for k in room_keys(id) {
                inv.key(k);
            }
            inv.arg(revision)
                .arg(doc.to_string())
                .arg(self.history)
                .arg(self.ttl_ms())
                .arg(self.history_bytes);
            inv.invoke_async::<i64>(&mut c).await?;
            Ok(())
        })
        .await
    }

    /// Refreshes the TTL of every key of a room and of its read-only id.
    pub async fn touch(&self, id: &str, viewer: Option<&str>) -> Result<()> {
        self.counted(async {
            let mut c = self.conn.clone();
            let mut inv = self.scripts.touch.prepare_invoke();
            for k in room_keys(id) {
                inv.key(k);
            }
            inv.arg(self.ttl_ms());
            inv.invoke_async::<i64>(&mut c).await?;
            if let Some(v) = viewer {
                c.pexpire::<_, ()>(k_viewer(v), self.ttl_ms() as i64)
                    .await?;
            }
            Ok(())
        })
        .await
    }

    /// Forgets stale client records of a room: de-duplication records older
    /// than the kept history, identities of absent clients without one.
    pub async fn expire_clients(&self, id: &str) -> Result<()> {
        self.counted(async {
            let mut c = self.conn.clone();
            let mut inv = self.scripts.expire_clients.prepare_invoke();
            for k in room_keys(id) {
                inv.key(k);
            }
            inv.arg(self.history);
            let removed: i64 = inv.invoke_async(&mut c).await?;
            if removed > 0 {
                tracing::debug!(room = %crate::ids::short(id), removed, "expired client records");
            }
            Ok(())
        })
        .await
    }

    /// The identity of `client_id` in a room: the stored one, or `fresh` if
    /// none was stored (first writer wins across instances).
    pub async fn identity(
        &self,
        id: &str,
        client_id: &str,
        fresh: (String, String),
    ) -> Result<(String, String)> {
        self.counted(async {
            let mut c = self.conn.clone();
            let key = k_ids(id);
            let (_, stored, _): (bool, String, ()) = redis::pipe()
                .atomic()
                .hset_nx(&key, client_id, format!("{}|{}", fresh.0, fresh.1))
                .hget(&key, client_id)
                .pexpire(&key, self.ttl_ms() as i64)
                .query_async(&mut c)
                .await?;
            let (u, col) = stored
                .split_once('|')
                .ok_or_else(|| StoreError::Corrupt(stored.clone()))?;
            Ok((u.to_owned(), col.to_owned()))
        })
        .await
    }

    /// Starts delivering the room's channel to `feed`.
    pub fn subscribe(&self, id: &str, feed: mpsc::Sender<StoreEvent>) {
        let ch = channel(id);
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ch.clone(), feed);
        let _ = self.sub_requests.send(SubRequest::Subscribe(ch));
    }

    /// Stops delivering the room's channel.
    pub fn unsubscribe(&self, id: &str) {
        let ch = channel(id);
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ch);
        let _ = self.sub_requests.send(SubRequest::Unsubscribe(ch));
    }
}
