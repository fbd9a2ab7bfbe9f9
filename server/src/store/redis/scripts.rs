//! The Lua scripts: every multi-key change of a room is one of these, so it
//! happens atomically (a commit checks the expected revision, appends,
//! trims and publishes in one step). The helpers at the top (`touch`,
//! `trim`, `tip_at`) are prepended to the scripts that use them.

use redis::Script;

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

/// The scripts, ready to run (each with the helpers it uses prepended).
pub(super) struct Scripts {
    pub(super) commit: Script,
    pub(super) snapshot: Script,
    pub(super) load: Script,
    pub(super) touch: Script,
    pub(super) fork: Script,
    pub(super) expire_clients: Script,
    pub(super) since: Script,
    pub(super) leave: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        let with_helpers =
            |body: &str| Script::new(&format!("{TOUCH_LUA}\n{TRIM_LUA}\n{TIP_LUA}\n{body}"));
        Self {
            commit: with_helpers(COMMIT_LUA),
            snapshot: with_helpers(SNAPSHOT_LUA),
            load: with_helpers(LOAD_LUA),
            touch: with_helpers(TOUCH_ONLY_LUA),
            fork: Script::new(FORK_LUA),
            expire_clients: Script::new(EXPIRE_CLIENTS_LUA),
            since: with_helpers(SINCE_LUA),
            leave: Script::new(LEAVE_LUA),
        }
    }
}
