//! The Lua scripts: every multi-key change of a room is one of these, so it
//! happens atomically (a commit checks the expected revision, appends,
//! trims and publishes in one step; a tree change checks the tree's
//! revision, changes the tree and the document's keys, logs and publishes).
//! The helpers at the top (`touch`, `trim`, `tip_at`) are prepended to the
//! scripts that use them.
//!
//! A document's scripts take its keys as `keys::doc_keys` orders them;
//! the room-wide ones (`LOAD`, `TOUCH_ROOM`, `EXPIRE_CLIENTS`) take
//! `keys::room_keys` and reach the other documents' keys through the tree
//! and `keys::doc_prefix` (all under the room's hash tag, on its slot).

use redis::Script;

/// Refreshes the TTL of a document's keys and the room's identities and
/// presence (KEYS[1..6]) to ARGV ttl_ms.
const TOUCH_LUA: &str = r#"
local function touch(ttl)
  for i = 1, 6 do
    if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end
"#;

/// The tip (`"REV:ID"`) of revision `rev` when the document (KEYS[3] its
/// log) is at `cur` with `meta.tip` = `tip`; nil when unknown (not in the
/// log, or written before ids existed).
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

/// KEYS: a document's keys. ARGV: expected revision, ttl ms, channel,
/// history to keep, this instance's id, turn length ms, history bytes to
/// keep, expected tip ("REV:ID" of the expected revision, or "" when
/// unknown), the batch's tip, the document's size after the batch, the
/// event's document field (`"d":"ID",`, or "" for the main document), then
/// (client id, "seq:rev", entry json) triples.
/// Returns {1, rev, {}, log bytes} committed, {0, rev, entries after the
/// expected revision, 0} conflict, {2, rev, {}, 0} yield (another instance
/// holds the turn), {3, rev, {}, 0} parted (Redis is behind the expected
/// revision or holds another operation there), {4, 0, {}, 0} the document
/// was deleted, {-1, 0, {}, 0} the room is gone.
const COMMIT_LUA: &str = r#"
local meta = redis.call('HMGET', KEYS[1], 'revision', 'turn', 'snap_rev', 'log_bytes', 'tip')
if not meta[1] then
  if redis.call('EXISTS', KEYS[7]) == 1 then return {4, 0, {}, 0} end
  return {-1, 0, {}, 0}
end
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
local n = (#ARGV - 11) / 3
local entries = {}
local len = 0
local bytes = tonumber(meta[4]) or 0
for i = 0, n - 1 do
  local e = ARGV[14 + i * 3]
  len = redis.call('RPUSH', KEYS[3], e)
  bytes = bytes + #e
  redis.call('HSET', KEYS[4], ARGV[12 + i * 3], ARGV[13 + i * 3])
  entries[#entries + 1] = e
end
local rev = cur + n
local created = len == n
len, bytes = trim(len, bytes, rev - tonumber(meta[3]), tonumber(ARGV[4]), tonumber(ARGV[7]))
redis.call('HSET', KEYS[1], 'revision', rev, 'log_bytes', bytes, 'tip', ARGV[9], 'size', ARGV[10])
-- Keys get their TTL when a commit creates them (the log holding just this
-- batch was created by it: the first commit, or the first after a snapshot
-- emptied the log; the dedup hash is created with the first); after that
-- the room task refreshes every key while users are connected, so a
-- keystroke does not pay for six PEXPIREs.
if created then touch(tonumber(ARGV[2])) end
local prev = ''
if base then prev = '"p":"' .. base .. '",' end
redis.call('PUBLISH', ARGV[3], '{"k":"ops","i":"' .. me .. '",' .. ARGV[11] .. '"n":' .. ARGV[10] .. ',' .. prev .. '"ops":[' .. table.concat(entries, ',') .. ']}')
return {1, rev, {}, bytes}
"#;

/// KEYS: a document's keys. ARGV: snapshot revision, text, history, ttl
/// ms, history bytes. Stores a newer snapshot and trims the log behind it.
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

/// KEYS: the room's keys. ARGV: the other documents' key prefix. Returns
/// everything a room task starts from: the room's settings, identities and
/// presence, its tree with each document's size, and the main document
/// (revision "" when it was deleted); false when the room does not exist.
const LOAD_LUA: &str = r#"
local meta = redis.call('HMGET', KEYS[1], 'revision', 'snap_rev', 'language', 'viewer', 'tip', 'fork', 'tree_rev', 'read_only', 'link')
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local tree = redis.call('HGETALL', KEYS[8])
local sizes = {}
for i = 1, #tree, 2 do
  local doc = tree[i]
  local size
  if doc == 'main' then size = redis.call('HGET', KEYS[1], 'size')
  else size = redis.call('HGET', ARGV[1] .. doc .. ':meta', 'size') end
  sizes[#sizes + 1] = doc
  sizes[#sizes + 1] = size or '0'
end
local snap, log, dedup = '', {}, {}
if meta[1] then
  snap = redis.call('GET', KEYS[2]) or ''
  log = redis.call('LRANGE', KEYS[3], 0, -1)
  dedup = redis.call('HGETALL', KEYS[4])
end
return {{meta[1] or '', meta[2] or '0', meta[3] or '', meta[4] or '', snap},
        {log, dedup, redis.call('HGETALL', KEYS[5]), redis.call('HGETALL', KEYS[6])},
        {meta[5] or '', meta[6] or '', tree, sizes, meta[7] or '', redis.call('LRANGE', KEYS[10], 0, -1),
         redis.call('SMEMBERS', KEYS[11]), meta[8] or '', meta[9] or ''}}
"#;

/// KEYS: a document's keys. Returns what a room starts the document from:
/// {revision, snapshot revision, snapshot, log, dedup, tip, fork}; false
/// when it does not exist.
const LOAD_DOC_LUA: &str = r#"
local meta = redis.call('HMGET', KEYS[1], 'revision', 'snap_rev', 'tip', 'fork')
if not meta[1] then return false end
return {meta[1], meta[2] or '0', redis.call('GET', KEYS[2]) or '', redis.call('LRANGE', KEYS[3], 0, -1),
        redis.call('HGETALL', KEYS[4]), meta[3] or '', meta[4] or ''}
"#;

/// KEYS: the room's keys. ARGV: ttl ms, the other documents' key prefix.
/// Refreshes the TTL of every key of the room: its own, the main
/// document's, and every document's in the tree.
const TOUCH_ROOM_LUA: &str = r#"
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ttl) end
end
for _, doc in ipairs(redis.call('HKEYS', KEYS[8])) do
  if doc ~= 'main' then
    for _, part in ipairs({':meta', ':snap', ':log', ':dedup'}) do
      local k = ARGV[2] .. doc .. part
      if redis.call('EXISTS', k) == 1 then redis.call('PEXPIRE', k, ttl) end
    end
  end
end
return 1
"#;

/// KEYS: the room's keys. ARGV: history to keep (operations), the other
/// documents' key prefix. Forgets, in every document, the de-duplication
/// records of clients whose last commit is older than any instance keeps
/// (a client only resends what was committed after the revision it
/// reconnected at, inside the kept history), then the identities of
/// clients with no such record in any document that are not present.
/// Returns how many records went.
const EXPIRE_CLIENTS_LUA: &str = r#"
local keep = tonumber(ARGV[1])
local removed = 0
local committed = {}
local function expire(meta, dedup)
  local cur = redis.call('HGET', meta, 'revision')
  if not cur then return end
  local oldest = tonumber(cur) - keep
  local records = redis.call('HGETALL', dedup)
  for i = 1, #records, 2 do
    local rev = tonumber(string.match(records[i + 1], ':(%d+)$'))
    if rev and rev <= oldest then
      redis.call('HDEL', dedup, records[i])
      removed = removed + 1
    else
      committed[records[i]] = true
    end
  end
end
expire(KEYS[1], KEYS[4])
for _, doc in ipairs(redis.call('HKEYS', KEYS[8])) do
  if doc ~= 'main' then expire(ARGV[2] .. doc .. ':meta', ARGV[2] .. doc .. ':dedup') end
end
local present = {}
for _, user in ipairs(redis.call('HKEYS', KEYS[6])) do present[user] = true end
local ids = redis.call('HGETALL', KEYS[5])
for i = 1, #ids, 2 do
  local user = string.match(ids[i + 1], '^([^|]*)|')
  if not present[user] and not committed[ids[i]] then
    redis.call('HDEL', KEYS[5], ids[i])
    removed = removed + 1
  end
end
return removed
"#;

/// KEYS: a document's keys. ARGV: after (revision). Returns {revision,
/// entries, tip of `after` or "", fork or ""}: the logged entries after
/// `after` (all of the log when it does not reach back that far; the caller
/// checks the first one); false when the document does not exist.
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

/// KEYS: a document's meta. ARGV: a revision. Records that the document's
/// history parted after that revision, keeping the earliest such revision
/// ever recorded; returns it (-1 when the document is gone).
const FORK_LUA: &str = r#"
if redis.call('HEXISTS', KEYS[1], 'revision') == 0 then return -1 end
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

/// KEYS: room meta, tree, tree log, then the changed document's meta,
/// snapshot, log and de-duplication. ARGV: expected tree revision, the
/// entry (json), its kind (create, rename, delete), the document, its tree
/// record (json; create and rename), its text and size (create), ttl ms,
/// channel, this instance's id, tree log length to keep.
/// Returns {1, rev, {}} committed, {0, rev, entries after the expected
/// revision} conflict, {-1, 0, {}} the room is gone. The instance checked
/// the change against the tree at the expected revision, so committing it
/// only when the tree is still there keeps paths unique.
const TREE_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0, {}} end
local cur = tonumber(redis.call('HGET', KEYS[1], 'tree_rev') or '0')
local expected = tonumber(ARGV[1])
if cur ~= expected then
  local missed = {}
  if cur > expected then missed = redis.call('LRANGE', KEYS[3], expected - cur, -1) end
  return {0, cur, missed}
end
local ttl = tonumber(ARGV[8])
local kind = ARGV[3]
if kind == 'create' then
  redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])
  redis.call('HSET', KEYS[4], 'revision', 0, 'snap_rev', 0, 'size', ARGV[7])
  redis.call('SET', KEYS[5], ARGV[6])
  redis.call('PEXPIRE', KEYS[4], ttl)
  redis.call('PEXPIRE', KEYS[5], ttl)
elseif kind == 'rename' then
  redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])
else
  redis.call('HDEL', KEYS[2], ARGV[4])
  if KEYS[4] == KEYS[1] then
    redis.call('HDEL', KEYS[1], 'revision', 'snap_rev', 'tip', 'fork', 'log_bytes', 'turn', 'size')
  else
    redis.call('DEL', KEYS[4])
  end
  redis.call('DEL', KEYS[5], KEYS[6], KEYS[7])
end
redis.call('RPUSH', KEYS[3], ARGV[2])
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[11]), -1)
redis.call('HSET', KEYS[1], 'tree_rev', cur + 1)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
redis.call('PUBLISH', ARGV[9], '{"k":"tree","i":"' .. ARGV[10] .. '","e":' .. ARGV[2] .. '}')
return {1, cur + 1, {}}
"#;

/// KEYS: room meta, chat. ARGV: the message (json, beginning `{"seq":0,`),
/// ttl ms, channel, this instance's id, messages to keep. Numbers the
/// message (the room's `chat_seq`), keeps it, trims the chat and publishes
/// it; returns its number, or -1 when the room is gone.
const CHAT_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local seq = redis.call('HINCRBY', KEYS[1], 'chat_seq', 1)
local m = '{"seq":' .. seq .. string.sub(ARGV[1], 9)
redis.call('RPUSH', KEYS[2], m)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[5]), -1)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]))
redis.call('PUBLISH', ARGV[3], '{"k":"chat","i":"' .. ARGV[4] .. '","m":' .. m .. '}')
return seq
"#;

/// KEYS: the room's keys. ARGV: the other documents' key prefix, channel,
/// this instance's id. Tells every instance the room ended, then deletes
/// every key of it (every document's too); returns its read-only id and
/// replaced link (their keys are on other slots: the caller deletes them),
/// false when it is gone.
const END_LUA: &str = r#"
if redis.call('EXISTS', KEYS[7]) == 0 then return false end
local old = redis.call('HMGET', KEYS[7], 'viewer', 'link')
redis.call('PUBLISH', ARGV[2], '{"k":"end","i":"' .. ARGV[3] .. '"}')
for _, doc in ipairs(redis.call('HKEYS', KEYS[8])) do
  if doc ~= 'main' then
    for _, part in ipairs({':meta', ':snap', ':log', ':dedup'}) do
      redis.call('DEL', ARGV[1] .. doc .. part)
    end
  end
end
for i = 1, #KEYS do redis.call('DEL', KEYS[i]) end
return {old[1] or '', old[2] or ''}
"#;

/// KEYS: room meta. ARGV: the new editing link, the new read-only id,
/// channel, this instance's id. Records the room's new links and tells
/// every instance; returns the old read-only id and link (their keys are
/// on other slots: the caller deletes them), false when the room is gone.
const LINKS_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local old = redis.call('HMGET', KEYS[1], 'viewer', 'link')
redis.call('HSET', KEYS[1], 'link', ARGV[1], 'viewer', ARGV[2])
redis.call('PUBLISH', ARGV[3], '{"k":"links","i":"' .. ARGV[4] .. '","e":"' .. ARGV[1] .. '","v":"' .. ARGV[2] .. '"}')
return {old[1] or '', old[2] or ''}
"#;

/// KEYS: room meta. ARGV: "1" (read-only for everyone but the owner) or
/// "0", channel, this instance's id. Sets the room's mode and tells every
/// instance; 0 when the room is gone.
const MODE_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'read_only', ARGV[1])
redis.call('PUBLISH', ARGV[2], '{"k":"mode","i":"' .. ARGV[3] .. '","r":' .. (ARGV[1] == '1' and 'true' or 'false') .. '}')
return 1
"#;

/// KEYS: room meta, identities, removed clients. ARGV: user id, ttl ms,
/// channel, this instance's id, the new editing link, the new read-only id,
/// then client ids known to be the user's. Refuses, from now on, every
/// client id of the user (those the identities hold, and the known ones),
/// records the room's new links (so the link the user had stops working)
/// and tells every instance, in one event: each closes the user's
/// connections before it passes the new links on. Returns {the client
/// ids, the old read-only id, the old link} ({} when the user is unknown:
/// nothing changed), false when the room is gone.
const REMOVE_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local ids = redis.call('HGETALL', KEYS[2])
local seen, out = {}, {}
local function ban(c)
  if not seen[c] then seen[c] = true; out[#out + 1] = c end
end
local prefix = ARGV[1] .. '|'
for i = 1, #ids, 2 do
  if string.sub(ids[i + 1], 1, #prefix) == prefix then ban(ids[i]) end
end
for i = 7, #ARGV do ban(ARGV[i]) end
if #out == 0 then return {} end
redis.call('SADD', KEYS[3], unpack(out))
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[2]))
local old = redis.call('HMGET', KEYS[1], 'viewer', 'link')
redis.call('HSET', KEYS[1], 'link', ARGV[5], 'viewer', ARGV[6])
redis.call('PUBLISH', ARGV[3], '{"k":"remove","i":"' .. ARGV[4] .. '","u":"' .. ARGV[1] .. '","c":["' .. table.concat(out, '","') .. '"],"e":"' .. ARGV[5] .. '","v":"' .. ARGV[6] .. '"}')
return {out, old[1] or '', old[2] or ''}
"#;

/// KEYS: room meta, chat. ARGV: after (a chat number), messages kept.
/// Returns the kept messages numbered after `after` (nothing read when
/// there are none: the periodic check asks every couple of seconds).
const CHAT_SINCE_LUA: &str = r#"
local n = tonumber(redis.call('HGET', KEYS[1], 'chat_seq') or '0') - tonumber(ARGV[1])
if n <= 0 then return {} end
if n > tonumber(ARGV[2]) then n = tonumber(ARGV[2]) end
return redis.call('LRANGE', KEYS[2], -n, -1)
"#;

/// KEYS: room meta, identities. ARGV: client id, "user|color" to record,
/// ttl ms, then the palette. The client's stored identity, recording this
/// one if it has none; an ended room gets nothing written back. A color
/// another identity holds is replaced by the first palette color none
/// holds (while any is left): two users joining at once on two instances
/// each chose theirs before hearing of the other (presence crosses
/// instances off the rooms' path), but their identities are recorded here
/// one after the other, before either join is answered.
const IDENTITY_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return ARGV[2] end
local v = redis.call('HGET', KEYS[2], ARGV[1])
if not v then
  local bar = string.find(ARGV[2], '|', 1, true)
  local user, color = string.sub(ARGV[2], 1, bar - 1), string.sub(ARGV[2], bar + 1)
  local taken = {}
  for _, other in ipairs(redis.call('HVALS', KEYS[2])) do
    local b = string.find(other, '|', 1, true)
    if b then taken[string.sub(other, b + 1)] = true end
  end
  if taken[color] then
    for i = 4, #ARGV do
      if not taken[ARGV[i]] then
        color = ARGV[i]
        break
      end
    end
  end
  v = user .. '|' .. color
  redis.call('HSET', KEYS[2], ARGV[1], v)
end
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]))
return v
"#;

/// KEYS: room meta, presence. ARGV: user id, record, ttl ms, channel,
/// join event. Records the user as present and announces it; an ended
/// room gets nothing written back.
const JOIN_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]))
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
"#;

/// KEYS: room meta, tree log. ARGV: after (tree revision). Returns
/// {revision, entries after `after` (as far as the log reaches back),
/// {editing link, read-only id}, the last chat number}, false when the
/// room is gone.
const TREE_SINCE_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local meta = redis.call('HMGET', KEYS[1], 'tree_rev', 'link', 'viewer', 'chat_seq')
local cur = tonumber(meta[1] or '0')
local n = cur - tonumber(ARGV[1])
local links = {meta[2] or '', meta[3] or ''}
local chat = tonumber(meta[4] or '0')
if n <= 0 then return {cur, {}, links, chat} end
return {cur, redis.call('LRANGE', KEYS[2], -n, -1), links, chat}
"#;

/// The scripts, ready to run (each with the helpers it uses prepended).
pub(super) struct Scripts {
    pub(super) commit: Script,
    pub(super) snapshot: Script,
    pub(super) load: Script,
    pub(super) load_doc: Script,
    pub(super) touch_room: Script,
    pub(super) fork: Script,
    pub(super) expire_clients: Script,
    pub(super) since: Script,
    pub(super) leave: Script,
    pub(super) tree: Script,
    pub(super) tree_since: Script,
    pub(super) chat: Script,
    pub(super) end: Script,
    pub(super) remove: Script,
    pub(super) mode: Script,
    pub(super) links: Script,
    pub(super) chat_since: Script,
    pub(super) identity: Script,
    pub(super) join: Script,
}

impl Scripts {
    /// On a cluster (`sharded`) the scripts publish with `SPUBLISH`: the
    /// room's channel carries its hash tag, so the event goes out from the
    /// primary that owns the room's slot and reaches only the instances
    /// subscribed there.
    pub(super) fn new(sharded: bool) -> Self {
        let publish = |body: &str| {
            if sharded {
                body.replace("redis.call('PUBLISH'", "redis.call('SPUBLISH'")
            } else {
                body.to_owned()
            }
        };
        let with_helpers = |body: &str| {
            Script::new(&format!(
                "{TOUCH_LUA}\n{TRIM_LUA}\n{TIP_LUA}\n{}",
                publish(body)
            ))
        };
        Self {
            commit: with_helpers(COMMIT_LUA),
            snapshot: with_helpers(SNAPSHOT_LUA),
            load: Script::new(LOAD_LUA),
            load_doc: Script::new(LOAD_DOC_LUA),
            touch_room: Script::new(TOUCH_ROOM_LUA),
            fork: Script::new(FORK_LUA),
            expire_clients: Script::new(EXPIRE_CLIENTS_LUA),
            since: with_helpers(SINCE_LUA),
            leave: Script::new(&publish(LEAVE_LUA)),
            tree: Script::new(&publish(TREE_LUA)),
            tree_since: Script::new(TREE_SINCE_LUA),
            chat: Script::new(&publish(CHAT_LUA)),
            end: Script::new(&publish(END_LUA)),
            remove: Script::new(&publish(REMOVE_LUA)),
            mode: Script::new(&publish(MODE_LUA)),
            links: Script::new(&publish(LINKS_LUA)),
            chat_since: Script::new(CHAT_SINCE_LUA),
            identity: Script::new(IDENTITY_LUA),
            join: Script::new(&publish(JOIN_LUA)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_publishing_script_publishes_sharded_on_a_cluster() {
        for body in [
            COMMIT_LUA, LEAVE_LUA, TREE_LUA, CHAT_LUA, END_LUA, REMOVE_LUA, MODE_LUA, LINKS_LUA,
            JOIN_LUA,
        ] {
            assert!(body.contains("redis.call('PUBLISH'"), "{body}");
        }
        let sharded = Scripts::new(true);
        let plain = Scripts::new(false);
        assert_ne!(sharded.commit.get_hash(), plain.commit.get_hash());
        assert_ne!(sharded.leave.get_hash(), plain.leave.get_hash());
        assert_ne!(sharded.tree.get_hash(), plain.tree.get_hash());
        assert_ne!(sharded.chat.get_hash(), plain.chat.get_hash());
        assert_eq!(sharded.load.get_hash(), plain.load.get_hash());
    }
}
