//! Rooms in Redis, shared by any number of server instances; the layout is
//! docs/redis.md. Everything that knows Redis is in this folder:
//!
//! - [`keys`]: key names, every room key hash-tagged with the room id;
//! - [`scripts`]: the Lua scripts that change several keys atomically (a
//!   commit checks the expected revision, appends, trims and publishes);
//! - [`wire`]: the compact forms published on a room's channel and logged;
//! - [`conn`]: the command connection, to one Redis or to a cluster;
//! - [`subscriber`]: the one pub/sub connection, routing events to rooms;
//! - [`shard_subscriber`]: on a cluster, sharded pub/sub instead (a room's
//!   events go only through the primary that owns its slot);
//! - [`chat`]: the room's chat and typing indicators;
//! - [`owner`]: the room owner's controls (ending the room, removing
//!   a participant);
//! - [`presence`]: who is connected where, heartbeats, and reaping the
//!   users of instances that died.
//!
//! Pub/sub is only the fast path: a room that sees a gap in revisions, or
//! hears that the subscriber reconnected, reads the missed entries from the
//! log.

mod chat;
mod conn;
mod keys;
mod owner;
mod presence;
mod scripts;
mod shard_subscriber;
mod subscriber;
mod wire;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use ropey::Rope;
use tokio::sync::mpsc;

use collab_protocol::FileInfo;

use self::conn::{Conn, SharedConn};
use self::keys::{
    channel, doc_keys, doc_prefix, k_doc, k_ids, k_link, k_meta, k_tree, k_treelog, k_viewer,
    room_keys,
};
use self::scripts::Scripts;
use self::subscriber::SubRequest;
use self::wire::{
    mark_text, pairs_of, parse_entry, parse_mark, parse_tree_entry, to_json, TreeRecord,
};
use super::{
    CommitReply, CommitRequest, LoadedDoc, LoadedRoom, NewDoc, StoreError, StoreEvent, Tail,
    TreeChange, TreeReply, TreeRequest, TreeTail, MAIN_DOC, TURN,
};

pub use self::presence::{spawn_heartbeat, HEARTBEAT_EVERY, HEARTBEAT_TTL};

type Result<T> = std::result::Result<T, StoreError>;

/// How many tree changes the tree log keeps: an instance further behind
/// than that (it missed them all) resets the room.
const TREE_LOG: u64 = 10_000;

/// What `TREE_SINCE` answers: the tree's revision, the logged changes,
/// (editing link, read-only id) and the last chat number.
type RawTreeTail = (u64, Vec<String>, (String, String), u64);

/// Stored log entries.
fn parse_log(log: &[String]) -> Result<Vec<crate::store::CommittedEntry>> {
    log.iter().map(|e| parse_entry(e)).collect()
}

/// True when a conflict's missed entries begin with `batch` itself (same
/// revisions, same operation ids): the script had run before for it.
fn is_own_batch(
    batch: &[crate::store::CommittedEntry],
    missed: &[crate::store::CommittedEntry],
) -> bool {
    !batch.is_empty()
        && missed.len() >= batch.len()
        && batch
            .iter()
            .zip(missed)
            .all(|(b, m)| b.id != 0 && b.id == m.id && b.revision == m.revision)
}

/// A number the store wrote.
fn number(text: &str) -> Result<u64> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("not a number: {text:?}")))
}

/// A stored de-duplication hash: client id -> "seq:revision".
fn parse_dedup(flat: &[String]) -> Result<Vec<(String, (u64, u64))>> {
    pairs_of(flat)
        .map(|(k, v)| {
            let (s, r) = v
                .split_once(':')
                .ok_or_else(|| StoreError::Corrupt(v.to_owned()))?;
            Ok((k.to_owned(), (number(s)?, number(r)?)))
        })
        .collect()
}

/// What a request that got no answer in time says (see [`timed_out`]).
const TIMED_OUT: &str = "redis: no answer in time";

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        if e.is_timeout() {
            return StoreError::Unavailable(TIMED_OUT.to_owned());
        }
        StoreError::Unavailable(format!("redis: {e}"))
    }
}

/// True when `e` is a request to Redis that got no answer in time.
fn timed_out(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable(m) if m == TIMED_OUT)
}

/// Where Redis is and how to use it.
#[derive(Clone, Debug)]
pub struct RedisSetup {
    /// A `redis://` or `rediss://` URL; on a cluster, one or more seed
    /// nodes, comma-separated.
    pub url: String,
    /// The URL names a Redis Cluster: sharded pub/sub, cluster routing.
    pub cluster: bool,
    /// Replicas that must have a commit (`WAIT`) before it is acknowledged;
    /// 0 acknowledges as soon as the primary has it.
    pub wait_replicas: usize,
}

/// How long a commit waits for `wait_replicas` replicas before it is
/// acknowledged anyway (and the shortfall counted as a Redis error).
const WAIT_REPLICAS_MS: u64 = 200;
/// After a `WAIT` that came back short, how long commits are acknowledged
/// without waiting. `WAIT` blocks the whole connection to that primary (every
/// room on it, not only the one committing), so waiting out the timeout on
/// every commit while a primary has no replica (right after a failover,
/// before the old primary comes back as a replica) would slow every room on
/// it to a few commits a second.
const WAIT_PAUSE: Duration = Duration::from_secs(5);

/// The Redis side of the server: one multiplexed connection for commands,
/// one subscriber connection for every room's channel (on a cluster, one per
/// shard its rooms live on).
pub struct RedisStore {
    conn: SharedConn,
    /// `PUBLISH`, or `SPUBLISH` on a cluster.
    publish: &'static str,
    wait_replicas: usize,
    /// Until when commits are acknowledged without `WAIT` (see
    /// [`WAIT_PAUSE`]).
    wait_paused: std::sync::Mutex<Option<tokio::time::Instant>>,
    /// This server instance's id (random per process).
    instance: String,
    ttl: Duration,
    history: usize,
    history_bytes: usize,
    scripts: Scripts,
    /// Channel -> the room that hears it.
    subscribers: subscriber::Feeds,
    sub_requests: mpsc::UnboundedSender<SubRequest>,
    /// Counts every failed request to Redis, whatever asked for it (a
    /// commit, a join, a REST lookup, a heartbeat, the subscriber).
    errors: Arc<AtomicU64>,
}

impl RedisStore {
    /// Connects lazily: the server starts even while Redis is down, and the
    /// connection reconnects by itself. Every failed request adds one to
    /// `errors`.
    pub fn connect(
        setup: &RedisSetup,
        instance: String,
        ttl: Duration,
        history: usize,
        history_bytes: usize,
        errors: Arc<AtomicU64>,
    ) -> Result<Arc<Self>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let conn;
        let mut cluster_sub = None;
        let mut single_sub = None;
        if setup.cluster {
            let seeds: Vec<&str> = setup
                .url
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .collect();
            if seeds.is_empty() {
                return Err(StoreError::Unavailable(
                    "redis cluster: no seed node URL given".into(),
                ));
            }
            conn = SharedConn::cluster(&seeds)?;
            let (push_tx, push_rx) = mpsc::unbounded_channel();
            let sub_client = conn::cluster_builder(&seeds)
                .use_protocol(redis::ProtocolVersion::RESP3)
                .push_sender(push_tx)
                .build()?;
            cluster_sub = Some((sub_client, push_rx));
        } else {
            let client = redis::Client::open(setup.url.as_str())?;
            conn = SharedConn::single(client.clone())?;
            single_sub = Some(client);
        }
        let store = Arc::new(Self {
            conn,
            publish: if setup.cluster { "SPUBLISH" } else { "PUBLISH" },
            wait_replicas: setup.wait_replicas,
            wait_paused: std::sync::Mutex::new(None),
            instance,
            ttl,
            history,
            history_bytes,
            scripts: Scripts::new(setup.cluster),
            subscribers: Arc::default(),
            sub_requests: tx,
            errors: errors.clone(),
        });
        let feeds = store.subscribers.clone();
        let me = store.instance.clone();
        if let Some((client, pushes)) = cluster_sub {
            tokio::spawn(shard_subscriber::run(client, pushes, feeds, rx, me, errors));
        } else if let Some(client) = single_sub {
            tokio::spawn(subscriber::run(client, feeds, rx, me, errors));
        }
        Ok(store)
    }

    /// This instance's id.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Runs one request to Redis, counting it when it fails.
    async fn counted<T>(&self, request: impl Future<Output = Result<T>>) -> Result<T> {
        let result = request.await;
        if let Err(e) = &result {
            self.errors.fetch_add(1, Ordering::Relaxed);
            self.conn.failed(timed_out(e));
        }
        result
    }

    fn ttl_ms(&self) -> u64 {
        self.ttl.as_millis() as u64
    }

    /// True when Redis answers a PING.
    pub async fn healthy(&self) -> bool {
        let mut c = self.conn.get();
        self.counted(async { Ok(redis::cmd("PING").query_async::<String>(&mut c).await?) })
            .await
            .is_ok()
    }

    /// Stores a new room holding `docs`, each at revision 0, in one
    /// transaction (the read-only id, on another slot, just before).
    pub async fn create_room(
        &self,
        id: &str,
        viewer: &str,
        owner: &str,
        docs: &[NewDoc],
    ) -> Result<()> {
        self.counted(async {
            let mut c = self.conn.get();
            let ttl = self.ttl_ms() as i64;
            c.set_ex::<_, _, ()>(k_viewer(viewer), id, self.ttl.as_secs().max(1))
                .await?;
            let room = LoadedRoom::new(docs);
            let mut pipe = redis::pipe();
            pipe.atomic().hset_multiple(
                k_meta(id),
                &[
                    ("language", room.language.as_str()),
                    ("viewer", viewer),
                    ("owner", owner),
                    ("tree_rev", "0"),
                ],
            );
            for d in docs {
                let record = TreeRecord {
                    path: d.file.path.clone(),
                    language: d.file.language.clone(),
                };
                pipe.hset(k_tree(id), &d.file.doc, to_json(&record))
                    .hset_multiple(
                        k_doc(id, &d.file.doc, "meta"),
                        &[("revision", 0), ("snap_rev", 0), ("size", d.file.size)],
                    )
                    .pexpire(k_doc(id, &d.file.doc, "meta"), ttl)
                    .set(k_doc(id, &d.file.doc, "snap"), &d.code)
                    .pexpire(k_doc(id, &d.file.doc, "snap"), ttl);
            }
            pipe.pexpire(k_meta(id), ttl).pexpire(k_tree(id), ttl);
            pipe.query_async::<()>(&mut c).await?;
            Ok(())
        })
        .await
    }

    /// Publishes an event on the room's channel (sharded on a cluster).
    async fn publish_event(&self, c: &mut Conn, id: &str, event: &wire::WireEvent) -> Result<()> {
        redis::cmd(self.publish)
            .arg(channel(id))
            .arg(to_json(event))
            .query_async::<()>(c)
            .await?;
        Ok(())
    }

    /// True when the room exists and its own id opens it (its links were
    /// never replaced).
    pub async fn exists(&self, id: &str) -> Result<bool> {
        self.counted(async {
            let mut c = self.conn.get();
            let (language, link): (Option<String>, Option<String>) = redis::cmd("HMGET")
                .arg(k_meta(id))
                .arg("language")
                .arg("link")
                .query_async(&mut c)
                .await?;
            Ok(language.is_some() && link.is_none())
        })
        .await
    }

    /// The room a replaced editing link opens, if any.
    pub async fn link_room(&self, link: &str) -> Result<Option<String>> {
        self.counted(async {
            let mut c = self.conn.get();
            Ok(c.get(k_link(link)).await?)
        })
        .await
    }

    /// The room a read-only id opens, if any.
    pub async fn viewer_room(&self, viewer: &str) -> Result<Option<String>> {
        self.counted(async {
            let mut c = self.conn.get();
            Ok(c.get(k_viewer(viewer)).await?)
        })
        .await
    }

    /// Reads a room: its tree and its main document, or `None` when it does
    /// not exist. A room stored before rooms held several documents gets
    /// its tree written now (its one document, as the main one).
    pub async fn load(&self, id: &str) -> Result<Option<LoadedRoom>> {
        self.counted(async {
            let mut c = self.conn.get();
            let mut inv = self.scripts.load.prepare_invoke();
            for k in room_keys(id) {
                inv.key(k);
            }
            inv.arg(doc_prefix(id));
            type Raw = Option<(
                (String, u64, String, String, String),
                (Vec<String>, Vec<String>, Vec<String>, Vec<String>),
                (
                    String,
                    String,
                    Vec<String>,
                    Vec<String>,
                    String,
                    Vec<String>,
                    Vec<String>,
                    String,
                    String,
                ),
            )>;
            let raw: Raw = inv.invoke_async(&mut c).await?;
            let Some((
                (revision, snapshot_revision, language, viewer, snapshot),
                (log, dedup, ids, presence),
                (tip, fork, tree, sizes, tree_rev, chat, banned, read_only, link),
            )) = raw
            else {
                return Ok(None);
            };
            let main = if revision.is_empty() {
                None
            } else {
                Some(LoadedDoc {
                    revision: number(&revision)?,
                    snapshot_revision,
                    snapshot,
                    log: parse_log(&log)?,
                    dedup: parse_dedup(&dedup)?,
                    tip: parse_mark(&tip),
                    fork: fork.parse().ok(),
                })
            };
            let sizes: HashMap<&str, u64> = pairs_of(&sizes)
                .map(|(d, n)| (d, n.parse().unwrap_or(0)))
                .collect();
            let mut files: Vec<FileInfo> = pairs_of(&tree)
                .map(|(doc, record)| {
                    let r: TreeRecord = serde_json::from_str(record)
                        .map_err(|e| StoreError::Corrupt(format!("tree record: {e}")))?;
                    Ok(FileInfo {
                        doc: doc.to_owned(),
                        path: r.path,
                        size: sizes.get(doc).copied().unwrap_or(0),
                        language: r.language,
                    })
                })
                .collect::<Result<_>>()?;
            if tree_rev.is_empty() && main.is_some() {
                files = vec![self.adopt_single(id, &language).await?];
            }
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
                language,
                identities,
                presence,
                viewer: Some(viewer).filter(|v| !v.is_empty()),
                tree_revision: tree_rev.parse().unwrap_or(0),
                files,
                docs: main.map(|m| (MAIN_DOC.to_owned(), m)).into_iter().collect(),
                chat: chat::parse_chat(&chat),
                banned,
                read_only: read_only == "1",
                link: Some(link).filter(|l| !l.is_empty()),
            }))
        })
        .await
    }

    /// Writes the tree of a room stored before rooms held several
    /// documents: its one document is the main one, at `main.EXT`. Written
    /// only if absent, so instances loading it at once agree.
    async fn adopt_single(&self, id: &str, language: &str) -> Result<FileInfo> {
        let mut c = self.conn.get();
        let (_, docs) = LoadedRoom::single("", language, None);
        let record = TreeRecord {
            path: docs[0].file.path.clone(),
            language: language.to_owned(),
        };
        let ((), (), stored): ((), (), String) = redis::pipe()
            .atomic()
            .hset_nx(k_tree(id), MAIN_DOC, to_json(&record))
            .hset_nx(k_meta(id), "tree_rev", 0)
            .hget(k_tree(id), MAIN_DOC)
            .query_async(&mut c)
            .await?;
        let record: TreeRecord = serde_json::from_str(&stored)
            .map_err(|e| StoreError::Corrupt(format!("tree record: {e}")))?;
        // Its size is the loaded text's (the room counts it once it has
        // rebuilt the document).
        Ok(FileInfo {
            doc: MAIN_DOC.to_owned(),
            path: record.path,
            size: 0,
            language: record.language,
        })
    }

    /// Reads one document, or `None` when it does not exist.
    pub async fn load_doc(&self, id: &str, doc: &str) -> Result<Option<LoadedDoc>> {
        self.counted(async {
            let mut c = self.conn.get();
            let mut inv = self.scripts.load_doc.prepare_invoke();
            for k in doc_keys(id, doc) {
                inv.key(k);
            }
            type Raw = Option<(u64, u64, String, Vec<String>, Vec<String>, String, String)>;
            let raw: Raw = inv.invoke_async(&mut c).await?;
            let Some((revision, snapshot_revision, snapshot, log, dedup, tip, fork)) = raw else {
                return Ok(None);
            };
            Ok(Some(LoadedDoc {
                revision,
                snapshot_revision,
                snapshot,
                log: parse_log(&log)?,
                dedup: parse_dedup(&dedup)?,
                tip: parse_mark(&tip),
                fork: fork.parse().ok(),
            }))
        })
        .await
    }

    /// Appends the request's entries to a document if it is still at its
    /// expected revision (holding the expected operation there), and
    /// publishes them, atomically.
    pub async fn commit(&self, id: &str, doc: &str, req: CommitRequest) -> Result<CommitReply> {
        self.counted(async {
            let mut c = self.conn.get();
            let mut inv = self.scripts.commit.prepare_invoke();
            for k in doc_keys(id, doc) {
                inv.key(k);
            }
            let new_tip = req
                .entries
                .last()
                .map(|e| mark_text((e.revision, e.id)))
                .unwrap_or_default();
            let doc_field = if doc == MAIN_DOC {
                String::new()
            } else {
                format!(r#""d":{},"#, to_json(&doc))
            };
            inv.arg(req.expected)
                .arg(self.ttl_ms())
                .arg(channel(id))
                .arg(self.history)
                .arg(&self.instance)
                .arg(TURN.as_millis() as u64)
                .arg(self.history_bytes)
                .arg(req.expected_tip.map(mark_text).unwrap_or_default())
                .arg(new_tip)
                .arg(req.size)
                .arg(doc_field);
            for e in &req.entries {
                inv.arg(&*e.client_id)
                    .arg(format!("{}:{}", e.seq, e.revision))
                    .arg(to_json(e));
            }
            let (status, revision, missed, log_bytes): (i64, u64, Vec<String>, u64) =
                inv.invoke_async(&mut c).await?;
            if status == 1 {
                self.replicated(&mut c, &k_doc(id, doc, "meta")).await;
            }
            Ok(match status {
                1 => CommitReply::Committed {
                    revision,
                    log_bytes,
                },
                0 => {
                    let missed = parse_log(&missed)?;
                    if is_own_batch(&req.entries, &missed) {
                        // This very batch, committed by an earlier attempt
                        // whose answer was lost (a cluster connection that
                        // dropped and sent the script again).
                        CommitReply::Committed {
                            revision: req.entries.last().map_or(revision, |e| e.revision),
                            log_bytes: 0,
                        }
                    } else {
                        CommitReply::Conflict { revision, missed }
                    }
                }
                2 => CommitReply::Yield { revision },
                3 => CommitReply::Parted { revision },
                4 => CommitReply::Deleted,
                _ => CommitReply::Gone,
            })
        })
        .await
    }

    /// Waits (up to [`WAIT_REPLICAS_MS`]) until `wait_replicas` replicas of
    /// the primary holding `key` have every write made so far on this
    /// connection, so that a commit acknowledged to a client survives that
    /// primary being killed and a replica promoted. The `EXISTS` only
    /// routes the pipeline to that primary (on a cluster, one connection per
    /// node carries every command, so `WAIT` covers the commit). A shortfall
    /// is logged and counted, not failed (the primary has the commit), and
    /// pauses waiting for [`WAIT_PAUSE`].
    async fn replicated(&self, c: &mut Conn, key: &str) {
        if self.wait_replicas == 0 {
            return;
        }
        let now = tokio::time::Instant::now();
        let paused = *self.wait_paused.lock().unwrap_or_else(|e| e.into_inner());
        if paused.is_some_and(|until| now < until) {
            return;
        }
        let acked: redis::RedisResult<(bool, usize)> = redis::pipe()
            .exists(key)
            .cmd("WAIT")
            .arg(self.wait_replicas)
            .arg(WAIT_REPLICAS_MS)
            .query_async(c)
            .await;
        match acked {
            Ok((_, n)) if n >= self.wait_replicas => {}
            Ok((_, n)) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                *self.wait_paused.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(now + WAIT_PAUSE);
                tracing::warn!(replicas = n, wanted = self.wait_replicas, pause = ?WAIT_PAUSE, "a commit reached fewer replicas than --redis-wait-replicas (a primary without replicas?); acknowledging without waiting for a while");
            }
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                self.conn.failed(e.is_timeout());
                tracing::warn!(error = %e, "waiting for replicas failed");
            }
        }
    }

    /// Commits a tree change if the tree is still at the revision before
    /// it, with what it does to the document's keys, and publishes it,
    /// atomically.
    pub async fn commit_tree(&self, id: &str, req: TreeRequest) -> Result<TreeReply> {
        self.counted(async {
            let mut c = self.conn.get();
            let doc = req.entry.change.doc().to_owned();
            let mut inv = self.scripts.tree.prepare_invoke();
            inv.key(k_meta(id)).key(k_tree(id)).key(k_treelog(id));
            for part in ["meta", "snap", "log", "dedup"] {
                inv.key(k_doc(id, &doc, part));
            }
            let (kind, record, size) = match &req.entry.change {
                TreeChange::Create { file } => {
                    ("create", Some((&file.path, &file.language)), file.size)
                }
                TreeChange::Rename { path, language, .. } => ("rename", Some((path, language)), 0),
                TreeChange::Delete { .. } => ("delete", None, 0),
            };
            let record = record
                .map(|(path, language)| {
                    to_json(&TreeRecord {
                        path: path.clone(),
                        language: language.clone(),
                    })
                })
                .unwrap_or_default();
            inv.arg(req.entry.revision - 1)
                .arg(to_json(&req.entry))
                .arg(kind)
                .arg(&doc)
                .arg(record)
                .arg(&req.code)
                .arg(size)
                .arg(self.ttl_ms())
                .arg(channel(id))
                .arg(&self.instance)
                .arg(TREE_LOG);
            let (status, revision, missed): (i64, u64, Vec<String>) =
                inv.invoke_async(&mut c).await?;
            if status == 1 {
                self.replicated(&mut c, &k_meta(id)).await;
            }
            Ok(match status {
                1 => TreeReply::Committed,
                0 => TreeReply::Conflict {
                    revision,
                    missed: missed
                        .iter()
                        .map(|e| parse_tree_entry(e))
                        .collect::<Result<_>>()?,
                },
                _ => TreeReply::Gone,
            })
        })
        .await
    }

    /// The logged operations of a document after revision `after`:
    /// `Ok(None)` when the room or the document is gone; a trimmed log is
    /// not an error (the reader checks that the first entry is `after + 1`).
    pub async fn entries_since(&self, id: &str, doc: &str, after: u64) -> Result<Option<Tail>> {
        self.counted(async {
            let mut c = self.conn.get();
            let mut inv = self.scripts.since.prepare_invoke();
            for k in doc_keys(id, doc) {
                inv.key(k);
            }
            inv.arg(after);
            let raw: Option<(u64, Vec<String>, String, String)> = inv.invoke_async(&mut c).await?;
            let Some((revision, log, base, fork)) = raw else {
                return Ok(None);
            };
            Ok(Some(Tail {
                revision,
                entries: parse_log(&log)?,
                base: parse_mark(&base),
                fork: fork.parse().ok(),
            }))
        })
        .await
    }

    /// The logged tree changes after tree revision `after`; `Ok(None)` when
    /// the room is gone.
    pub async fn tree_since(&self, id: &str, after: u64) -> Result<Option<TreeTail>> {
        self.counted(async {
            let mut c = self.conn.get();
            let raw: Option<RawTreeTail> = self
                .scripts
                .tree_since
                .key(k_meta(id))
                .key(k_treelog(id))
                .arg(after)
                .invoke_async(&mut c)
                .await?;
            let Some((revision, log, (link, viewer), chat_seq)) = raw else {
                return Ok(None);
            };
            Ok(Some(TreeTail {
                revision,
                entries: log
                    .iter()
                    .map(|e| parse_tree_entry(e))
                    .collect::<Result<_>>()?,
                links: (!link.is_empty()).then_some((link, viewer)),
                chat_seq,
            }))
        })
        .await
    }

    /// Records that a document's history parted after revision `at`
    /// (keeping the earliest such revision); returns the recorded one,
    /// `None` when the document is gone.
    pub async fn record_fork(&self, id: &str, doc: &str, at: u64) -> Result<Option<u64>> {
        self.counted(async {
            let mut c = self.conn.get();
            let fork: i64 = self
                .scripts
                .fork
                .key(k_doc(id, doc, "meta"))
                .arg(at)
                .invoke_async(&mut c)
                .await?;
            Ok(u64::try_from(fork).ok())
        })
        .await
    }

    /// The revision after which a document's history parted, if it ever did.
    pub async fn fork(&self, id: &str, doc: &str) -> Result<Option<u64>> {
        self.counted(async {
            let mut c = self.conn.get();
            let fork: Option<u64> = c.hget(k_doc(id, doc, "meta"), "fork").await?;
            Ok(fork)
        })
        .await
    }

    /// Stores a document at `revision` as its snapshot and trims its log.
    pub async fn write_snapshot(
        &self,
        id: &str,
        doc: &str,
        revision: u64,
        text: Rope,
    ) -> Result<()> {
        self.counted(async {
            let mut c = self.conn.get();
            let mut inv = self.scripts.snapshot.prepare_invoke();
            for k in doc_keys(id, doc) {
                inv.key(k);
            }
            inv.arg(revision)
                .arg(text.to_string())
                .arg(self.history)
                .arg(self.ttl_ms())
                .arg(self.history_bytes);
            inv.invoke_async::<i64>(&mut c).await?;
            Ok(())
        })
        .await
    }

    /// Refreshes the TTL of every key of a room (every document's too) and
    /// of its read-only id.
    pub async fn touch(&self, id: &str, viewer: Option<&str>, link: Option<&str>) -> Result<()> {
        self.counted(async {
            let mut c = self.conn.get();
            let mut inv = self.scripts.touch_room.prepare_invoke();
            for k in room_keys(id) {
                inv.key(k);
            }
            inv.arg(self.ttl_ms()).arg(doc_prefix(id));
            inv.invoke_async::<i64>(&mut c).await?;
            if let Some(v) = viewer {
                c.pexpire::<_, ()>(k_viewer(v), self.ttl_ms() as i64)
                    .await?;
            }
            if let Some(l) = link {
                c.pexpire::<_, ()>(k_link(l), self.ttl_ms() as i64).await?;
            }
            Ok(())
        })
        .await
    }

    /// Forgets stale client records of a room: de-duplication records older
    /// than the kept history (in every document), identities of absent
    /// clients without one.
    pub async fn expire_clients(&self, id: &str) -> Result<()> {
        self.counted(async {
            let mut c = self.conn.get();
            let mut inv = self.scripts.expire_clients.prepare_invoke();
            for k in room_keys(id) {
                inv.key(k);
            }
            inv.arg(self.history).arg(doc_prefix(id));
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
            let mut c = self.conn.get();
            let stored: String = self
                .scripts
                .identity
                .key(k_meta(id))
                .key(k_ids(id))
                .arg(client_id)
                .arg(format!("{}|{}", fresh.0, fresh.1))
                .arg(self.ttl_ms())
                .arg(&crate::ids::PALETTE[..])
                .invoke_async(&mut c)
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
