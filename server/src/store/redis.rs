//! Everything that knows Redis: key names, Lua scripts, the pub/sub
//! subscriber. The room tasks see only the methods here (through
//! [`crate::store::Backend`]). The layout is documented in docs/redis.md.
//!
//! Every key of a room carries the room id as a hash tag (`{id}`) so a Redis
//! Cluster keeps a room on one slot. Commits go through one Lua script that
//! checks the expected revision, appends, and publishes in one atomic step;
//! pub/sub is only the fast path: a task that sees a gap in revisions (or a
//! subscriber reconnect) reads the missed operations from the log.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use collab_protocol::{Operation, UserInfo};
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// A Redis failure, as the rest of the server sees it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis could not be reached or answered an error.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis held data this server cannot read.
    #[error("corrupt room data: {0}")]
    Corrupt(String),
}

type Result<T> = std::result::Result<T, StoreError>;

/// One committed operation as stored in the log list and published.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireEntry {
    /// The revision it produced. (Written first: the scripts read it with
    /// a pattern anchored at the start.)
    pub r: u64,
    /// Its id, 16 hex digits (room/lineage.rs); absent in entries written
    /// before ids existed. Written before the operation, so the scripts find
    /// it without scanning the inserted text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h: Option<String>,
    /// The operation.
    pub o: Operation,
    /// Author's user id.
    pub u: String,
    /// Author's client id (for de-duplication).
    pub c: String,
    /// Author's seq.
    pub s: u64,
}

/// What travels on a room's channel besides operations.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Event {
    /// Committed operations, in revision order.
    Ops {
        /// Publishing instance (its own subscriber skips the event unread:
        /// the instance applied these entries when its commit returned).
        #[serde(default)]
        i: String,
        /// The tip (`"REV:ID"`) the entries were committed on, when known:
        /// a receiver whose own tip differs is on another history.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        p: Option<String>,
        /// The entries.
        ops: Vec<WireEntry>,
    },
    /// A user's caret at revision `r`.
    Cursor {
        /// Publishing instance.
        i: String,
        /// The user.
        u: String,
        /// Revision of the offsets.
        r: u64,
        /// Caret.
        c: u64,
        /// Selection anchor.
        a: Option<u64>,
    },
    /// A user joined on instance `i`.
    Join {
        /// Publishing instance.
        i: String,
        /// Who.
        user: UserInfo,
    },
    /// A user left (or was reaped).
    Leave {
        /// Publishing instance.
        i: String,
        /// Who.
        u: String,
    },
}

/// A user present in a room, as kept in the presence hash.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PresenceRecord {
    /// The user.
    pub user: UserInfo,
    /// The instance holding its connection.
    pub instance: String,
}

/// Everything needed to start a room task, read in one atomic step.
pub struct LoadedRoom {
    /// Current revision.
    pub revision: u64,
    /// Language hint.
    pub language: String,
    /// Revision of `snapshot`.
    pub snapshot_revision: u64,
    /// The document at `snapshot_revision`.
    pub snapshot: String,
    /// Logged operations, oldest first, ending at `revision`.
    pub log: Vec<WireEntry>,
    /// client id -> (seq, revision) of its last commit.
    pub dedup: HashMap<String, (u64, u64)>,
    /// client id -> (user id, color).
    pub identities: HashMap<String, (String, String)>,
    /// Users present on any instance.
    pub presence: Vec<PresenceRecord>,
    /// The room's read-only id.
    pub viewer: Option<String>,
    /// `"REV:ID"` of the room's latest revision, when known.
    pub tip: Option<String>,
    /// Set once instances found that the room's history parted (Redis
    /// restored from an older state): clients reconnecting with a `since`
    /// after this revision cannot be rebased.
    pub fork: Option<u64>,
}

/// The log after a revision, as [`RedisStore::entries_since`] reads it.
#[derive(Debug)]
pub struct Tail {
    /// The room's revision.
    pub revision: u64,
    /// The logged entries after the revision asked for (as far as the log
    /// reaches back).
    pub entries: Vec<WireEntry>,
    /// `"REV:ID"` of the revision asked for, when Redis knows it.
    pub base: Option<String>,
    /// The revision after which the room's history parted, if it did.
    pub fork: Option<u64>,
}

/// The answer to a commit.
#[derive(Debug)]
pub enum CommitReply {
    /// Appended; the room is now at revision `rev`, and its log (trimmed)
    /// holds `log_bytes` bytes.
    Committed {
        /// The room's revision.
        rev: u64,
        /// The bytes the room's log holds: more than the budget means the
        /// entries after the snapshot are over it, and a snapshot is due.
        log_bytes: u64,
    },
    /// Someone committed first; the room is at this revision, and these are
    /// the logged entries after the expected one (all the log holds of them).
    Conflict(u64, Vec<WireEntry>),
    /// Another instance lost a race and holds the next turn: retry after it
    /// committed (or after the turn lapses). The room was at this revision.
    Yield(u64),
    /// Redis holds another history than the one the commit builds on (it
    /// is behind the expected revision, or holds another operation there):
    /// it was restored from an older state. The room is at this revision.
    Parted(u64),
    /// The room no longer exists (expired).
    Gone,
}

fn k_meta(id: &str) -> String {
    format!("collab:{{{id}}}:meta")
}
fn k_snap(id: &str) -> String {
    format!("collab:{{{id}}}:snap")
}
fn k_log(id: &str) -> String {
    format!("collab:{{{id}}}:log")
}
fn k_dedup(id: &str) -> String {
    format!("collab:{{{id}}}:dedup")
}
fn k_ids(id: &str) -> String {
    format!("collab:{{{id}}}:ids")
}
fn k_presence(id: &str) -> String {
    format!("collab:{{{id}}}:presence")
}
/// The room's pub/sub channel.
pub fn channel(id: &str) -> String {
    format!("collab:{{{id}}}:events")
}
/// Read-only id -> room id. Outside the room's slot on purpose: the
/// read-only id must not reveal the room id.
fn k_viewer(viewer: &str) -> String {
    format!("collab:viewer:{viewer}")
}
fn k_instance(instance: &str) -> String {
    format!("collab:instance:{instance}")
}
/// Every key of a room, in the order the scripts take them.
fn room_keys(id: &str) -> [String; 6] {
    [
        k_meta(id),
        k_snap(id),
        k_log(id),
        k_dedup(id),
        k_ids(id),
        k_presence(id),
    ]
}

/// Refreshes the TTL of every key of a room (KEYS[1..6]) to ARGV ttl_ms.
const TOUCH_LUA: &str = r#"
local function touch(ttl)
  for i = 1, 6 do
    if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end
"#;

/// The tip (`"REV:ID"`) of revision `rev` when the room (KEYS[3] its log)
/// is at `cur` with `meta.tip` = `tip`; nil when unknown (not in the log,
/// or written before ids existed).
const TIP_LUA: &str = r#"
local function tip_at(rev, cur, tip)
  if rev == cur then
    if tip and tonumber(string.match(tip, '^(%d+):')) == cur then return tip end
    return nil
  end
  if rev > cur or rev <= 0 then return nil end
  local e = redis.call('LINDEX', KEYS[3], rev - cur - 1)
  if not e or tonumber(string.match(e, '^{"r":(%d+)')) ~= rev then return nil end
  local h = string.match(e, '"h":"(%x+)"')
  if not h then return nil end
  return rev .. ':' .. h
end
"#;

/// Drops the log's oldest entries (KEYS[3]) while it holds more than
/// `max_ops` entries or `max_bytes` bytes, but never one after the snapshot
/// (the document is rebuilt from them). `len` and `bytes` are the log's;
/// returns them after trimming. `meta.log_bytes` keeps the byte count (a
/// room written before it existed starts from 0: its older entries are only
/// trimmed by count).
const TRIM_LUA: &str = r#"
local function trim(len, bytes, after_snap, max_ops, max_bytes)
  while len > after_snap and (len > max_ops or bytes > max_bytes) do
    local old = redis.call('LPOP', KEYS[3])
    if not old then break end
    len = len - 1
    bytes = bytes - #old
  end
  if bytes < 0 then bytes = 0 end
  return len, bytes
end
"#;

/// KEYS: the 6 room keys. ARGV: expected revision, ttl ms, channel,
/// history to keep, this instance's id, turn length ms, history bytes to
/// keep, expected tip ("REV:ID" of the expected revision, or "" when
/// unknown), the batch's tip, then (client id, "seq:rev", entry json)
/// triples.
/// Returns {1, rev, {}, log bytes} committed, {0, rev, entries after the
/// expected revision, 0} conflict, {2, rev, {}, 0} yield (another instance
/// holds the turn), {3, rev, {}, 0} parted (Redis is behind the expected
/// revision or holds another operation there), {-1, 0, {}, 0} gone.
const COMMIT_LUA: &str = r#"
local meta = redis.call('HMGET', KEYS[1], 'revision', 'turn', 'snap_rev', 'log_bytes', 'tip')
if not meta[1] then return {-1, 0, {}, 0} end
local cur = tonumber(meta[1])
local expected = tonumber(ARGV[1])
if cur < expected then return {3, cur, {}, 0} end
local base = tip_at(expected, cur, meta[5])
if ARGV[8] ~= '' and base and base ~= ARGV[8] then return {3, cur, {}, 0} end
local me = ARGV[5]
local turn = meta[2]
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local owner, now = nil, nil
if turn then
  local bar = string.find(turn, '|', 1, true)
  owner, now = string.sub(turn, 1, bar - 1), clock()
  if now - tonumber(string.sub(turn, bar + 1)) > tonumber(ARGV[6]) then owner = nil end
end
if cur ~= expected then
  -- Hand back what the caller missed, so it can retry at once, and give it
  -- the next turn: under contention instances alternate instead of the
  -- fastest one committing forever while the other keeps losing the race.
  if not owner then redis.call('HSET', KEYS[1], 'turn', me .. '|' .. (now or clock())) end
  local missed = {}
  if cur > expected then missed = redis.call('LRANGE', KEYS[3], expected - cur, -1) end
  return {0, cur, missed, 0}
end
if owner and owner ~= me then return {2, cur, {}, 0} end
if turn then redis.call('HDEL', KEYS[1], 'turn') end
local n = (#ARGV - 9) / 3
local entries = {}
local len = 0
local bytes = tonumber(meta[4]) or 0
for i = 0, n - 1 do
  local e = ARGV[12 + i * 3]
  len = redis.call('RPUSH', KEYS[3], e)
  bytes = bytes + #e
  redis.call('HSET', KEYS[4], ARGV[10 + i * 3], ARGV[11 + i * 3])
  entries[#entries + 1] = e
end
local rev = cur + n
local created = len == n
len, bytes = trim(len, bytes, rev - tonumber(meta[3]), tonumber(ARGV[4]), tonumber(ARGV[7]))
redis.call('HSET', KEYS[1], 'revision', rev, 'log_bytes', bytes, 'tip', ARGV[9])
-- Keys get their TTL when a commit creates them (the log holding just this
-- batch was created by it: the first commit, or the first after a snapshot
-- emptied the log; the dedup hash is created with the first); after that
-- the room task refreshes every key while users are connected, so a
-- keystroke does not pay for six PEXPIREs.
if created then touch(tonumber(ARGV[2])) end
local prev = ''
if base then prev = '"p":"' .. base .. '",' end
redis.call('PUBLISH', ARGV[3], '{"k":"ops","i":"' .. me .. '",' .. prev .. '"ops":[' .. table.concat(entries, ',') .. ']}')
return {1, rev, {}, bytes}
"#;

/// KEYS: the 6 room keys. ARGV: snapshot revision, text, history, ttl ms,
/// history bytes. Stores a newer snapshot and trims the log behind it.
const SNAPSHOT_LUA: &str = r#"
local meta = redis.call('HMGET', KEYS[1], 'revision', 'snap_rev', 'log_bytes')
if not meta[1] then return 0 end
local cur = tonumber(meta[1])
local at = tonumber(ARGV[1])
if at <= tonumber(meta[2]) or at > cur then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
local len, bytes = trim(redis.call('LLEN', KEYS[3]), tonumber(meta[3]) or 0, cur - at,
  tonumber(ARGV[3]), tonumber(ARGV[5]))
redis.call('HSET', KEYS[1], 'snap_rev', at, 'log_bytes', bytes)
touch(tonumber(ARGV[4]))
return 1
"#;

/// KEYS: the 6 room keys. Returns everything a room task starts from.
const LOAD_LUA: &str = r#"
local meta = redis.call('HMGET', KEYS[1], 'revision', 'snap_rev', 'language', 'viewer', 'tip', 'fork')
if not meta[1] then return false end
return {meta[1], meta[2], meta[3], meta[4] or '', redis.call('GET', KEYS[2]) or '',redis.call('LRANGE', KEYS[3], 0, -1), redis.call('HGETALL', KEYS[4]),
        redis.call('HGETALL', KEYS[5]), redis.call('HGETALL', KEYS[6]), meta[5] or '', meta[6] or ''}
"#;

/// KEYS: the 6 room keys. ARGV: ttl ms.
const TOUCH_ONLY_LUA: &str = "touch(tonumber(ARGV[1])) return 1";

/// KEYS: the 6 room keys. ARGV: history to keep (operations). Forgets the
/// de-duplication records of clients whose last commit is older than any
/// instance keeps (a client only resends what was committed after the
/// revision it reconnected at, inside the kept history), then the
/// identities of clients with no such record that are not present.
/// Returns how many records went.
const EXPIRE_CLIENTS_LUA: &str = r#"
local cur = redis.call('HGET', KEYS[1], 'revision')
if not cur then return 0 end
local oldest = tonumber(cur) - tonumber(ARGV[1])
local removed = 0
local dedup = redis.call('HGETALL', KEYS[4])
for i = 1, #dedup, 2 do
  local rev = tonumber(string.match(dedup[i + 1], ':(%d+)$'))
  if rev and rev <= oldest then
    redis.call('HDEL', KEYS[4], dedup[i])
    removed = removed + 1
  end
end
local present = {}
for _, user in ipairs(redis.call('HKEYS', KEYS[6])) do present[user] = true end
local ids = redis.call('HGETALL', KEYS[5])
for i = 1, #ids, 2 do
  local user = string.match(ids[i + 1], '^([^|]*)|')
  if not present[user] and redis.call('HEXISTS', KEYS[4], ids[i]) == 0 then
    redis.call('HDEL', KEYS[5], ids[i])
    removed = removed + 1
  end
end
return removed
"#;

/// KEYS: the 6 room keys. ARGV: after (revision). Returns {revision,
/// entries, tip of `after` or "", fork or ""}: the logged entries after
/// `after` (all of the log when it does not reach back that far; the caller
/// checks the first one).
const SINCE_LUA: &str = r#"
local meta = redis.call('HMGET', KEYS[1], 'revision', 'tip', 'fork')
if not meta[1] then return false end
local cur = tonumber(meta[1])
local after = tonumber(ARGV[1])
local base = tip_at(after, cur, meta[2]) or ''
local n = cur - after
if n <= 0 then return {meta[1], {}, base, meta[3] or ''} end
return {meta[1], redis.call('LRANGE', KEYS[3], -n, -1), base, meta[3] or ''}
"#;

/// KEYS: meta. ARGV: a revision. Records that the room's history parted
/// after that revision, keeping the earliest such revision ever recorded;
/// returns it.
const FORK_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local fork = tonumber(redis.call('HGET', KEYS[1], 'fork'))
local at = tonumber(ARGV[1])
if not fork or at < fork then
  redis.call('HSET', KEYS[1], 'fork', at)
  fork = at
end
return fork
"#;

/// KEYS: presence. ARGV: user id, `"instance":"id"` the record must hold,
/// channel, leave event. Deletes and publishes only if the record matches.
const LEAVE_LUA: &str = r#"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v or not string.find(v, ARGV[2], 1, true) then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"#;

/// The Redis side of the server: one multiplexed connection for commands,
/// one subscriber connection for every room's channel.
pub struct RedisStore {
    conn: ConnectionManager,
    client: redis::Client,
    /// This server instance's id (random per process).
    pub instance: String,
    ttl: Duration,
    history: usize,
    history_bytes: usize,
    commit: Script,
    snapshot: Script,
    load: Script,
    touch: Script,
    fork: Script,
    expire_clients: Script,
    since: Script,
    leave: Script,
    subscribers: Arc<Mutex<HashMap<String, mpsc::Sender<Feed>>>>,
    sub_requests: mpsc::UnboundedSender<SubRequest>,
    /// Counts every failed request to Redis, whatever asked for it (a
    /// commit, a join, a REST lookup, a heartbeat, the subscriber).
    errors: Arc<AtomicU64>,
}

/// What a room task receives from the subscriber.
#[derive(Debug)]
pub enum Feed {
    /// An event published on the room's channel.
    Event(Event),
    /// The subscriber reconnected: events may have been missed.
    Resync,
}

enum SubRequest {
    Subscribe(String),
    Unsubscribe(String),
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
        let script =
            |body: &str| Script::new(&format!("{TOUCH_LUA}\n{TRIM_LUA}\n{TIP_LUA}\n{body}"));
        let (tx, rx) = mpsc::unbounded_channel();
        let store = Arc::new(Self {
            conn,
            client: client.clone(),
            instance,
            ttl,
            history,
            history_bytes,
            commit: script(COMMIT_LUA),
            snapshot: script(SNAPSHOT_LUA),
            load: script(LOAD_LUA),
            touch: script(TOUCH_ONLY_LUA),
            fork: Script::new(FORK_LUA),
            expire_clients: Script::new(EXPIRE_CLIENTS_LUA),
            since: script(SINCE_LUA),
            leave: Script::new(LEAVE_LUA),
            subscribers: Arc::default(),
            sub_requests: tx,
            errors: errors.clone(),
        });
        tokio::spawn(subscriber(
            client,
            store.subscribers.clone(),
            rx,
            own_ops_prefix(&store.instance),
            errors,
        ));
        Ok(store)
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
            let mut inv = self.load.prepare_invoke();
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
            let dedup = pairs(&dedup)
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
            let identities = pairs(&ids)
                .filter_map(|(k, v)| {
                    v.split_once('|')
                        .map(|(u, c)| (k.to_owned(), (u.to_owned(), c.to_owned())))
                })
                .collect();
            let presence = pairs(&presence)
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
                tip: Some(tip).filter(|t| !t.is_empty()),
                fork: fork.parse().ok(),
            }))
        })
        .await
    }

    /// Appends `entries` (revisions `expected+1 ..`) if the room is still at
    /// `expected`, and publishes them, atomically. `expected_tip` names the
    /// expected revision's operation when known (`"REV:ID"`): Redis holding
    /// another one there answers [`CommitReply::Parted`]; `new_tip` names the
    /// batch's last entry.
    pub async fn commit(
        &self,
        id: &str,
        expected: u64,
        expected_tip: Option<&str>,
        new_tip: &str,
        entries: &[WireEntry],
    ) -> Result<CommitReply> {
        self.counted(async {
            let mut c = self.conn.clone();
            let mut inv = self.commit.prepare_invoke();
            for k in room_keys(id) {
                inv.key(k);
            }
            inv.arg(expected)
                .arg(self.ttl_ms())
                .arg(channel(id))
                .arg(self.history)
                .arg(&self.instance)
                .arg(TURN.as_millis() as u64)
                .arg(self.history_bytes)
                .arg(expected_tip.unwrap_or(""))
                .arg(new_tip);
            for e in entries {
                let json =
                    serde_json::to_string(e).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                inv.arg(&e.c).arg(format!("{}:{}", e.s, e.r)).arg(json);
            }
            let (status, rev, missed, log_bytes): (i64, u64, Vec<String>, u64) =
                inv.invoke_async(&mut c).await?;
            Ok(match status {
                1 => CommitReply::Committed { rev, log_bytes },
                0 => CommitReply::Conflict(
                    rev,
                    missed
                        .iter()
                        .map(|e| parse_entry(e))
                        .collect::<Result<Vec<_>>>()?,
                ),
                2 => CommitReply::Yield(rev),
                3 => CommitReply::Parted(rev),
                _ => CommitReply::Gone,
            })
        })
        .await
    }

    /// The logged operations after revision `after`: `Ok(None)` when the
    /// room is gone, `Err(Corrupt)` never for a trimmed log: the caller checks
    /// that the first entry is `after + 1`.
    pub async fn entries_since(&self, id: &str, after: u64) -> Result<Option<Tail>> {
        self.counted(async {
            let mut c = self.conn.clone();
            let mut inv = self.since.prepare_invoke();
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
                base: Some(base).filter(|b| !b.is_empty()),
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
    pub async fn write_snapshot(&self, id: &str, revision: u64, text: String) -> Result<()> {
        self.counted(async {
            let mut c = self.conn.clone();
            let mut inv = self.snapshot.prepare_invoke();
            for k in room_keys(id) {
                inv.key(k);
            }
            inv.arg(revision)
                .arg(text)
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
            let mut inv = self.touch.prepare_invoke();
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
            let mut inv = self.expire_clients.prepare_invoke();
            for k in room_keys(id) {
                inv.key(k);
            }
            inv.arg(self.history);
            let removed: i64 = inv.invoke_async(&mut c).await?;
            if removed > 0 {
                tracing::debug!(room = %crate::room::short(id), removed, "expired client records");
            }
            Ok(())
        })
        .await
    }

    /// The identity of `client_id` in a room: the stored one, or the given
    /// new one if none was stored (first writer wins across instances).
    pub async fn identity(
        &self,
        id: &str,
        client_id: &str,
        user_id: &str,
        color: &str,
    ) -> Result<(String, String)> {
        self.counted(async {
            let mut c = self.conn.clone();
            let key = k_ids(id);
            let (_, stored, _): (bool, String, ()) = redis::pipe()
                .atomic()
                .hset_nx(&key, client_id, format!("{user_id}|{color}"))
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

    /// Records a user as present on this instance and announces it.
    pub async fn join(&self, id: &str, user: &UserInfo) -> Result<()> {
        self.counted(async {
            let mut c = self.conn.clone();
            let record = PresenceRecord {
                user: user.clone(),
                instance: self.instance.clone(),
            };
            let event = Event::Join {
                i: self.instance.clone(),
                user: user.clone(),
            };
            redis::pipe()
                .hset(k_presence(id), &user.user_id, to_json(&record))
                .pexpire(k_presence(id), self.ttl_ms() as i64)
                .publish(channel(id), to_json(&event))
                .query_async::<()>(&mut c)
                .await?;
            Ok(())
        })
        .await
    }

    /// Removes this instance's presence record of a user and announces the
    /// departure; a record another instance wrote meanwhile stays.
    pub async fn leave(&self, id: &str, user_id: &str) -> Result<bool> {
        self.leave_if(id, user_id, &self.instance).await
    }

    /// Removes a user's presence record if it still names `instance`, and
    /// then announces the departure, in one step: a reaped ghost is
    /// announced exactly once, and a user who moved is not removed.
    pub async fn leave_if(&self, id: &str, user_id: &str, instance: &str) -> Result<bool> {
        self.counted(async {
            let mut c = self.conn.clone();
            let event = Event::Leave {
                i: self.instance.clone(),
                u: user_id.to_owned(),
            };
            let owner =
                serde_json::to_string(instance).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let removed: i64 = self
                .leave
                .key(k_presence(id))
                .arg(user_id)
                .arg(format!("\"instance\":{owner}"))
                .arg(channel(id))
                .arg(to_json(&event))
                .invoke_async(&mut c)
                .await?;
            Ok(removed == 1)
        })
        .await
    }

    /// Publishes a caret.
    pub async fn cursor(
        &self,
        id: &str,
        user_id: &str,
        revision: u64,
        cursor: u64,
        anchor: Option<u64>,
    ) -> Result<()> {
        self.counted(async {
            let mut c = self.conn.clone();
            let event = Event::Cursor {
                i: self.instance.clone(),
                u: user_id.to_owned(),
                r: revision,
                c: cursor,
                a: anchor,
            };
            c.publish::<_, _, ()>(channel(id), to_json(&event)).await?;
            Ok(())
        })
        .await
    }

    /// Marks this instance alive for `ttl`; instances that stop doing this
    /// have their users reaped by the others.
    pub async fn heartbeat(&self, ttl: Duration) -> Result<()> {
        self.counted(async {
            let mut c = self.conn.clone();
            c.set_ex::<_, _, ()>(k_instance(&self.instance), "1", ttl.as_secs().max(1))
                .await?;
            Ok(())
        })
        .await
    }

    /// Which of these instances are alive.
    pub async fn alive(&self, instances: &[String]) -> Result<Vec<bool>> {
        self.counted(async {
            if instances.is_empty() {
                return Ok(Vec::new());
            }
            let mut c = self.conn.clone();
            let mut pipe = redis::pipe();
            for i in instances {
                pipe.exists(k_instance(i));
            }
            Ok(pipe.query_async(&mut c).await?)
        })
        .await
    }

    /// Presence records of a room, from Redis.
    pub async fn presence(&self, id: &str) -> Result<Vec<PresenceRecord>> {
        self.counted(async {
            let mut c = self.conn.clone();
            let raw: HashMap<String, String> = c.hgetall(k_presence(id)).await?;
            Ok(raw
                .values()
                .filter_map(|v| serde_json::from_str(v).ok())
                .collect())
        })
        .await
    }

    /// Starts delivering the room's channel to `feed`.
    pub fn subscribe(&self, id: &str, feed: mpsc::Sender<Feed>) {
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

    /// Direct access for tests and tools that inspect keys.
    pub fn client(&self) -> &redis::Client {
        &self.client
    }
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("store records serialize")
}

fn parse_entry(s: &str) -> Result<WireEntry> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("log entry: {e}")))
}

fn pairs(flat: &[String]) -> impl Iterator<Item = (&str, &str)> {
    flat.chunks_exact(2).map(|p| (p[0].as_str(), p[1].as_str()))
}

/// How long the instance that lost a commit race keeps the next turn.
pub const TURN: Duration = Duration::from_millis(50);

/// How an `ops` event this instance published begins (the commit script
/// writes it exactly so).
fn own_ops_prefix(instance: &str) -> String {
    format!(r#"{{"k":"ops","i":"{instance}","#)
}

/// How long a (un)subscribe may take before the subscriber reconnects.
const SUB_TIMEOUT: Duration = Duration::from_secs(5);

/// The one subscriber connection of this instance: (re)connects with
/// backoff, (re)subscribes every wanted channel, routes messages to room
/// tasks, and tells every task to resync after a reconnect.
async fn subscriber(
    client: redis::Client,
    subscribers: Arc<Mutex<HashMap<String, mpsc::Sender<Feed>>>>,
    mut requests: mpsc::UnboundedReceiver<SubRequest>,
    own_ops: String,
    errors: Arc<AtomicU64>,
) {
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
            let feeds: Vec<_> = subscribers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .cloned()
                .collect();
            for f in feeds {
                let _ = f.try_send(Feed::Resync);
            }
        }
        first = false;
        loop {
            tokio::select! {
                msg = stream.next() => {
                    let Some(msg) = msg else { break };
                    let ch = msg.get_channel_name().to_owned();
                    let feed = subscribers.lock().unwrap_or_else(|e| e.into_inner()).get(&ch).cloned();
                    let Some(feed) = feed else { continue };
                    let payload: String = match msg.get_payload() {
                        Ok(p) => p,
                        Err(_) => continue,
                    };
                    if payload.starts_with(&own_ops) {
                        continue; // Our own commit, applied when it returned.
                    }
                    match serde_json::from_str::<Event>(&payload) {
                        // A full feed means the task is far behind: it will
                        // see the gap and read the log instead.
                        Ok(ev) => {
                            if feed.try_send(Feed::Event(ev)).is_err() {
                                let _ = feed.try_send(Feed::Resync);
                            }
                        }
                        // The channel name holds the room id: log only its prefix.
                        Err(e) => tracing::warn!(error = %e, room = %crate::room::short(ch.trim_start_matches("collab:{")), "unreadable event"),}
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
