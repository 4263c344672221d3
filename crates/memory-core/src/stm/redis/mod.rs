//! The short-term tier in Redis (feature `redis`): session windows that every app instance
//! sharing the server and key prefix sees, which outlive an app crash, and a hand-off to
//! consolidation that survives one too.
//!
//! Keys, under the prefix `P` (agent and session ids are length-prefixed, `<len>:<id>`, so no id
//! can forge another's key):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:agents` | set | agents with windows or hand-offs |
//! | `P:s:<agent>` | hash | session -> last activity (the engine's clock, microseconds) |
//! | `P:w:<agent><session>` | list | the window, oldest first, capped at `stm_capacity` |
//! | `P:h:<agent>` | list | entries that left a window, waiting for consolidation |
//! | `P:g:<agent>` | counter | generation, bumped by every change search can see |
//! | `P:inflight` | sorted set | consolidation batches taken by a sweep -> wall-clock ms |
//! | `P:f:<batch>` | list | the entries of one batch until consolidation settles them, each after its agent (`<len>:<agent>`) |
//! | `P:forgotten` | sorted set | `<len>:<agent><id>` of entries `forget` removed -> wall-clock ms, kept for [`FORGOTTEN_KEPT`] at least |
//!
//! Each change is one server-side script, so it is atomic. Redis runs nothing else while a
//! script runs, so a sweep, which may meet thousands of windows, is many bounded requests: it
//! lists an agent's sessions with HSCAN and sweeps them a chunk per script (at most
//! [`SWEEP_ITEMS`] window items each), then the agent's hand-off list a chunk per script; each
//! script is atomic, and what changes between them is neither lost nor taken twice (see
//! `RedisShortTerm::sweep_step`). Expiry follows the engine's clock
//! (the TTL is checked against a session's last activity, as in the RAM tier), never Redis key
//! expiry: nothing is dropped by the tier itself. A sweep moves what leaves into a batch of its
//! own instead of deleting it; a batch whose consolidator crashed is taken over by the next sweep
//! (of any instance) once its lease has passed, so the hand-off survives an app crash. Until a
//! batch is settled, searches (of any instance) find its entries, and `forget` removes them. Redis
//! Cluster is not supported (scripts touch keys they compute).

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};

use crate::clock::Timestamp;
use crate::entry::{EntryId, MemoryEntry};
use crate::error::{Error, Result, ServerProblem};
use crate::server::{backoff, connect_problem, random_u64, server_error, ServerRuntime, RETRIES};
use crate::stm::{ShortTermStore, StmHandOff, StmStats, WindowItem, WindowKey};

pub(crate) mod config;

use config::describe_url;
pub use config::RedisConfig;

impl RedisConfig {
    /// Deletes every key of this tier's prefix. For tests and tear-down; there is no undo.
    pub fn destroy(&self) -> Result<()> {
        let runtime = ServerRuntime::new("redis")?;
        let config = self.clone();
        runtime.run(async move {
            let (mut con, server) = connect(&config).await?;
            let pattern = format!("{}:*", escape_glob(&config.prefix));
            let own = Keys {
                prefix: config.prefix.clone(),
            };
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut con)
                    .await
                    .map_err(|e| redis_error(&server, e))?;
                // The pattern also matches the keys of a tier whose prefix extends this one
                // (`P:x`): only the keys this tier names are deleted.
                let keys: Vec<String> = keys.into_iter().filter(|key| own.owns(key)).collect();
                if !keys.is_empty() {
                    redis::cmd("DEL")
                        .arg(&keys)
                        .query_async::<()>(&mut con)
                        .await
                        .map_err(|e| redis_error(&server, e))?;
                }
                if next == 0 {
                    return Ok(());
                }
                cursor = next;
            }
        })
    }
}

fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A typed error for a failed request to `server`.
fn redis_error(server: &str, e: RedisError) -> Error {
    let problem = if e.is_connection_refusal() {
        ServerProblem::ConnectionRefused
    } else if e.is_timeout() {
        ServerProblem::Timeout(Duration::ZERO)
    } else if e.kind() == redis::ErrorKind::AuthenticationFailed {
        ServerProblem::LoginRefused(e.to_string())
    } else if e.is_connection_dropped() {
        ServerProblem::ConnectionLost(e.to_string())
    } else if e.is_io_error() {
        match std::error::Error::source(&e).and_then(|s| s.downcast_ref::<std::io::Error>()) {
            Some(io) => connect_problem(io),
            None => ServerProblem::ConnectionLost(e.to_string()),
        }
    } else {
        ServerProblem::Protocol(e.to_string())
    };
    server_error(server, problem, Some(Box::new(e)))
}

/// Whether a failed request may be sent again (the connection was lost; the manager
/// reconnects).
fn retryable(e: &RedisError) -> bool {
    e.is_connection_dropped() || e.is_io_error() || e.is_timeout()
}

async fn connect(config: &RedisConfig) -> Result<(ConnectionManager, String)> {
    let server = describe_url(&config.url);
    let client = redis::Client::open(config.url.as_str()).map_err(|_| {
        server_error(
            &server,
            ServerProblem::BadAddress("not a redis:// URL".into()),
            None,
        )
    })?;
    let manager_config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.timeout))
        .set_response_timeout(Some(config.timeout))
        .set_number_of_retries(2);
    let con = client
        .get_connection_manager_with_config(manager_config)
        .await
        .map_err(|e| redis_error(&server, e))?;
    Ok((con, server))
}

/// `<len>:<id>`: an id in a key, unambiguous whatever it contains.
fn enc(id: &str) -> String {
    format!("{}:{id}", id.len())
}

/// How long the marks of forgotten entries are kept at least: past any consolidation that may
/// have taken one before it was forgotten (four hand-off leases, when longer).
const FORGOTTEN_KEPT: Duration = Duration::from_secs(3_600);

/// The key names of one prefix.
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    fn agents(&self) -> String {
        format!("{}:agents", self.prefix)
    }
    fn sessions(&self, agent: &str) -> String {
        format!("{}:s:{}", self.prefix, enc(agent))
    }
    /// The window keys of `agent` start with this; the session's `<len>:<id>` follows.
    fn window_prefix(&self, agent: &str) -> String {
        format!("{}:w:{}", self.prefix, enc(agent))
    }
    fn window(&self, agent: &str, session: &str) -> String {
        format!("{}{}", self.window_prefix(agent), enc(session))
    }
    fn handoff(&self, agent: &str) -> String {
        format!("{}:h:{}", self.prefix, enc(agent))
    }
    fn generation(&self, agent: &str) -> String {
        format!("{}{}", self.generation_prefix(), enc(agent))
    }
    fn inflight(&self) -> String {
        format!("{}:inflight", self.prefix)
    }
    fn forgotten(&self) -> String {
        format!("{}:forgotten", self.prefix)
    }
    fn batch_prefix(&self) -> String {
        format!("{}:f:", self.prefix)
    }
    /// What the generation keys start with; the agent's `<len>:<id>` follows.
    fn generation_prefix(&self) -> String {
        format!("{}:g:", self.prefix)
    }

    /// Whether `key` is one of the names above, under this prefix exactly: a tier whose prefix
    /// extends this one (`P:x`) has keys that begin with `P:` too.
    fn owns(&self, key: &str) -> bool {
        let Some(rest) = key
            .strip_prefix(self.prefix.as_str())
            .and_then(|r| r.strip_prefix(':'))
        else {
            return false;
        };
        /// The id after a `<len>:` at the start of `s`, and what follows it.
        fn id(s: &str) -> Option<&str> {
            let (len, rest) = s.split_once(':')?;
            if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            rest.get(len.parse::<usize>().ok()?..)
        }
        match rest.split_once(':') {
            None => rest == "agents" || rest == "inflight" || rest == "forgotten",
            Some(("s" | "h" | "g", ids)) => id(ids) == Some(""),
            Some(("w", ids)) => id(ids).and_then(id) == Some(""),
            Some(("f", batch)) => {
                !batch.is_empty() && batch.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit())
            }
            Some(_) => false,
        }
    }
}

/// Why `prefix` cannot name a tier: empty, or its keys could be another tier's. A prefix with
/// a part that reads as a key kind and an id length (`app:s:12`) makes names that the tier with
/// the shorter prefix (`app`) uses for an agent's keys.
fn prefix_problem(prefix: &str) -> Option<String> {
    if prefix.is_empty() {
        return Some("the Redis key prefix is empty".into());
    }
    let parts: Vec<&str> = prefix.split(':').collect();
    parts.windows(2).skip(1).find_map(|pair| {
        let kind = matches!(pair[0], "s" | "h" | "g" | "w");
        let length = !pair[1].is_empty() && pair[1].bytes().all(|b| b.is_ascii_digit());
        (kind && length).then(|| {
            format!(
                "the Redis key prefix {prefix:?} has the part `:{}:{}`, which the tier of the \
                 prefix before it uses in its own key names; choose another",
                pair[0], pair[1]
            )
        })
    })
}

/// An item as stored: `<id>|<persisted 0/1>|<access count>|<last access>|<entry as JSON>`. The
/// fields scripts change lead, so that scripts never parse JSON (and never round ids through
/// Lua's doubles).
fn encode(item: &WindowItem) -> Result<String> {
    let json = serde_json::to_string(&item.entry).map_err(|e| Error::Database {
        store: "redis".into(),
        source: Box::new(e),
    })?;
    Ok(format!(
        "{}|{}|{}|{}|{json}",
        item.entry.id.0,
        u8::from(item.persisted),
        item.entry.access_count,
        item.entry.last_accessed_at.0
    ))
}

/// An item of a consolidation batch without the agent tag in front of it (`<len>:<agent>`, as
/// in key names, so that scripts find an agent's items without reading JSON). Other items, and
/// those a batch of an older release holds, begin with their id and `|`: they are left whole.
fn untag(raw: &str) -> &str {
    let digits = raw.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || raw.as_bytes().get(digits) != Some(&b':') {
        return raw;
    }
    raw[..digits]
        .parse::<usize>()
        .ok()
        .and_then(|len| len.checked_add(digits + 1))
        .and_then(|start| raw.get(start..))
        .unwrap_or(raw)
}

fn decode(raw: &str, server: &str) -> Result<WindowItem> {
    let raw = untag(raw);
    let corrupt = |what: &str| Error::Corrupt {
        store: server.to_owned(),
        detail: format!(
            "short-term item {what}: {}",
            raw.chars().take(80).collect::<String>()
        ),
    };
    let mut parts = raw.splitn(5, '|');
    let mut field = || parts.next().ok_or_else(|| corrupt("has too few fields"));
    let id: u64 = field()?.parse().map_err(|_| corrupt("id"))?;
    let persisted = field()? == "1";
    let count: u32 = field()?.parse().map_err(|_| corrupt("access count"))?;
    let last: i64 = field()?.parse().map_err(|_| corrupt("access time"))?;
    let mut entry: MemoryEntry = serde_json::from_str(field()?).map_err(|_| corrupt("JSON"))?;
    if entry.id.0 != id {
        return Err(corrupt("id differs from its JSON"));
    }
    entry.access_count = count;
    entry.last_accessed_at = Timestamp(last);
    Ok(WindowItem { entry, persisted })
}

/// Lua: `match(item)` gives id, persisted, count, last, rest.
const ITEM: &str =
    "local function match(it) return string.match(it, '^(%d+)|(%d)|(%d+)|(%-?%d+)|(.*)$') end
local function expired(last, now, ttl) return last and (now - tonumber(last) > ttl) end
local function move_all(from, to) local items = redis.call('LRANGE', from, 0, -1)
  for _, it in ipairs(items) do redis.call('RPUSH', to, it) end
  redis.call('DEL', from) return items end
local function move_tagged(from, to, tag) local items = redis.call('LRANGE', from, 0, -1)
  for _, it in ipairs(items) do redis.call('RPUSH', to, tag .. it) end
  redis.call('DEL', from) return items end
local function in_flight(set, prefix, tag, each)
  for _, batch in ipairs(redis.call('ZRANGE', set, 0, -1)) do
    local list = prefix .. batch
    for _, raw in ipairs(redis.call('LRANGE', list, 0, -1)) do
      if string.sub(raw, 1, #tag) == tag then each(list, raw, string.sub(raw, #tag + 1)) end
    end
  end
end
";

/// KEYS: sessions, window, hand-off, agents, generation.
/// ARGV: session, now, ttl, capacity, item, agent, id.
const APPEND: &str = "
local now, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
if expired(redis.call('HGET', KEYS[1], ARGV[1]), now, ttl) then move_all(KEYS[2], KEYS[3]) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[6])
-- A retried append whose first attempt went through finds its item: once only.
for _, it in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  if match(it) == ARGV[7] then return 0 end
end
redis.call('RPUSH', KEYS[2], ARGV[5])
local cap = tonumber(ARGV[4])
while redis.call('LLEN', KEYS[2]) > cap do redis.call('RPUSH', KEYS[3], redis.call('LPOP', KEYS[2])) end
redis.call('INCR', KEYS[5])
return 1";

/// KEYS: sessions, window, hand-off, agents, generation. ARGV: session, now, ttl, agent.
const OPEN_SESSION: &str = "
local now, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
if expired(redis.call('HGET', KEYS[1], ARGV[1]), now, ttl) then
  if #move_all(KEYS[2], KEYS[3]) > 0 then redis.call('INCR', KEYS[5]) end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[4])
return 1";

/// KEYS: sessions, window. ARGV: session, now, ttl, n.
const RECENT: &str = "
local last = redis.call('HGET', KEYS[1], ARGV[1])
local n = tonumber(ARGV[4])
if not last or expired(last, tonumber(ARGV[2]), tonumber(ARGV[3])) or n == 0 then return {} end
return redis.call('LRANGE', KEYS[2], -n, -1)";

/// KEYS: sessions, hand-off, in-flight set. ARGV: window prefix, batch key prefix, agent tag.
/// Every window's items (an expired one's wait for consolidation, as the hand-off's do), the
/// hand-off's, then those of the batches consolidations have taken and not settled.
const OF_AGENT: &str = "
local out = {}
for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
  for _, it in ipairs(redis.call('LRANGE', ARGV[1] .. string.len(name) .. ':' .. name, 0, -1)) do out[#out + 1] = it end
end
for _, it in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do out[#out + 1] = it end
in_flight(KEYS[3], ARGV[2], ARGV[3], function(_, _, it) out[#out + 1] = it end)
return out";

/// ARGV: now, then pairs of (window key, id). Counts a retrieval of each.
const RECORD_ACCESS: &str = "
for p = 2, #ARGV, 2 do
  local items = redis.call('LRANGE', ARGV[p], 0, -1)
  for i, it in ipairs(items) do
    local id, persisted, count, last, rest = match(it)
    if id == ARGV[p + 1] then
      local c = math.min(tonumber(count) + 1, 4294967295)
      redis.call('LSET', ARGV[p], i - 1, id .. '|' .. persisted .. '|' .. string.format('%d', c) .. '|' .. ARGV[1] .. '|' .. rest)
      break
    end
  end
end
return 1";

/// KEYS: sessions, hand-off, generation, in-flight set, forgotten set. ARGV: window prefix, id,
/// batch key prefix, agent tag, wall ms now, ms to keep marks. Removes the entry from the agent's
/// windows, hand-off list and unsettled batches, and marks it forgotten (dropping marks past
/// their time); how many copies it removed.
const FORGET: &str = "
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[4] .. ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', tonumber(ARGV[5]) - tonumber(ARGV[6]))
local removed = 0
local function drop(list)
  for _, it in ipairs(redis.call('LRANGE', list, 0, -1)) do
    if match(it) == ARGV[2] then removed = removed + redis.call('LREM', list, 0, it) end
  end
end
for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do drop(ARGV[1] .. string.len(name) .. ':' .. name) end
drop(KEYS[2])
in_flight(KEYS[4], ARGV[3], ARGV[4], function(list, raw, it)
  if match(it) == ARGV[2] then removed = removed + redis.call('LREM', list, 0, raw) end
end)
if removed > 0 then redis.call('INCR', KEYS[3]) end
return removed";

/// ARGV: pairs of (window key, id). Marks each as written to long-term memory.
const MARK_PERSISTED: &str = "
for p = 1, #ARGV, 2 do
  local items = redis.call('LRANGE', ARGV[p], 0, -1)
  for i, it in ipairs(items) do
    local id, persisted, count, last, rest = match(it)
    if id == ARGV[p + 1] then
      redis.call('LSET', ARGV[p], i - 1, id .. '|1|' .. count .. '|' .. last .. '|' .. rest)
      break
    end
  end
end
return 1";

/// KEYS: in-flight set, this batch's list. ARGV: batch key prefix, wall ms now, lease ms.
/// Takes over the batches of consolidations that did not finish within the lease. Returns how
/// many batches it took over.
const RECLAIM: &str = "
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[3]))
for _, batch in ipairs(stale) do
  move_all(ARGV[1] .. batch, KEYS[2])
  redis.call('ZREM', KEYS[1], batch)
end
return #stale";

/// KEYS: sessions, this batch's list, generation. ARGV: window prefix, now, ttl, agent tag, then
/// the names of at most [`SWEEP_ITEMS`] / capacity sessions (a chunk of what HSCAN returned).
/// Moves the windows of the expired ones into the batch, each item after the agent tag; returns
/// {expired sessions, unpersisted items of the live ones}. HSCAN may name a session twice, or one
/// that an earlier chunk moved: each session's time is read here, so a moved one (gone from the
/// hash, no window left) is skipped, and one that came back since (an append) counts as live.
/// A live one named twice returns its items twice: the caller keeps each id once.
const SWEEP_SESSIONS: &str = "
local now, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local moved, staying, expired_n = 0, {}, 0
for a = 5, #ARGV do
  local name = ARGV[a]
  local last = redis.call('HGET', KEYS[1], name)
  if last then
    local w = ARGV[1] .. string.len(name) .. ':' .. name
    if expired(last, now, ttl) then
      expired_n = expired_n + 1
      moved = moved + #move_tagged(w, KEYS[2], ARGV[4])
      redis.call('HDEL', KEYS[1], name)
    else
      for _, it in ipairs(redis.call('LRANGE', w, 0, -1)) do
        -- Only the flag: matching the whole item would copy its JSON once more.
        if string.match(it, '^%d+|(%d)|') == '0' then staying[#staying + 1] = it end
      end
    end
  end
end
if moved > 0 then redis.call('INCR', KEYS[3]) end
return {expired_n, staying}";

/// KEYS: sessions, hand-off, this batch's list, agents, generation. ARGV: agent, agent tag, n.
/// Moves the first `n` items of the hand-off list into the batch (each after the agent tag);
/// returns how many are left. Once the list is empty and the agent has no session left, the
/// agent leaves the set, in the same script that found both empty (an append or a hand-back
/// after it adds the agent again).
const SWEEP_HANDOFF: &str = "
local items = redis.call('LRANGE', KEYS[2], 0, tonumber(ARGV[3]) - 1)
for _, it in ipairs(items) do redis.call('RPUSH', KEYS[3], ARGV[2] .. it) end
if #items > 0 then
  redis.call('LTRIM', KEYS[2], #items, -1)
  redis.call('INCR', KEYS[5])
end
local left = redis.call('LLEN', KEYS[2])
if left == 0 and redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[4], ARGV[1]) end
return left";

/// KEYS: forgotten set. ARGV: `<len>:<agent><id>` of entries. Whether each is marked forgotten.
const FORGOTTEN: &str = "
local out = {}
for i, member in ipairs(ARGV) do
  out[i] = redis.call('ZSCORE', KEYS[1], member) and 1 or 0
end
return out";

/// KEYS: in-flight set, this batch's list. ARGV: batch, generation key prefix, then the tags
/// (`<len>:<agent>`) of the agents whose entries the sweep read in the batch. Deletes a settled
/// batch; searches of its agents found its entries, so their generations change. The agents come
/// from the caller, which read the batch whole: reading it here again (50,000 items of 5 KB, say)
/// held the server for seconds. Nothing is added to a batch after its sweep; an agent whose
/// entries `forget` removed meanwhile changes generation once more, which costs a cached answer.
/// UNLINK frees the list's memory beside the server's work.
const SETTLE: &str = "
for a = 3, #ARGV do redis.call('INCR', ARGV[2] .. ARGV[a]) end
redis.call('UNLINK', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1";

/// KEYS: agents. ARGV: key prefix. Returns {sessions, entries}.
const STATS: &str = "
local sessions, entries = 0, 0
for _, a in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local ea = string.len(a) .. ':' .. a
  local s = redis.call('HKEYS', ARGV[1] .. ':s:' .. ea)
  sessions = sessions + #s
  for _, name in ipairs(s) do
    entries = entries + redis.call('LLEN', ARGV[1] .. ':w:' .. ea .. string.len(name) .. ':' .. name)
  end
  entries = entries + redis.call('LLEN', ARGV[1] .. ':h:' .. ea)
end
return {sessions, entries}";

/// The scripts, loaded once per handle (sent by hash, by body when the server lacks it).
struct Scripts {
    append: Script,
    open_session: Script,
    recent: Script,
    of_agent: Script,
    record_access: Script,
    forget: Script,
    mark_persisted: Script,
    reclaim: Script,
    sweep_sessions: Script,
    sweep_handoff: Script,
    settle: Script,
    forgotten: Script,
    stats: Script,
}

impl Scripts {
    fn new() -> Self {
        let s = |body: &str| Script::new(&format!("{ITEM}{body}"));
        Scripts {
            append: s(APPEND),
            open_session: s(OPEN_SESSION),
            recent: s(RECENT),
            of_agent: s(OF_AGENT),
            record_access: s(RECORD_ACCESS),
            forget: s(FORGET),
            mark_persisted: s(MARK_PERSISTED),
            reclaim: s(RECLAIM),
            sweep_sessions: s(SWEEP_SESSIONS),
            sweep_handoff: s(SWEEP_HANDOFF),
            settle: s(SETTLE),
            forgotten: s(FORGOTTEN),
            stats: s(STATS),
        }
    }
}

/// What requests share (moved into each request's future).
struct Shared {
    con: ConnectionManager,
    server: String,
    keys: Keys,
    scripts: Scripts,
    capacity: usize,
    ttl_micros: i64,
    lease: Duration,
}

/// Runs `$body` (an async block using the connection `$con`, giving `RedisResult<T>`), again
/// after a lost connection, up to [`RETRIES`] times. Only for requests safe to repeat.
macro_rules! retrying {
    ($shared:expr, |$con:ident| $body:expr) => {{
        let shared: &Shared = &$shared;
        let mut attempt: u32 = 0;
        loop {
            let mut $con = shared.con.clone();
            match $body.await {
                Ok(v) => break Ok(v),
                Err(e) if retryable(&e) && attempt < RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => break Err(redis_error(&shared.server, e)),
            }
        }
    }};
}

/// Window or hand-off items one script of a sweep moves or reads at most: whole sessions (as
/// many as hold this many items when full, at least one) or a chunk of the hand-off list.
/// Redis runs nothing else while a script runs, and the sweep used to be one script per agent.
///
/// Measured with `examples/redis_sweep_beside_clients.rs` (one agent, 5,000 sessions x 20 items
/// with 384-d vectors, about 5 KB an item, half the sessions expired; Redis 7.0 on the 2 shared
/// cores at load average 3.1-3.9; the server's slow log): the old sweep's one script ran
/// 3.2-6.2 s, and a PING beside it waited as long. In chunks of 256 items (12 sessions) the
/// longest script ran 14.8 ms; of 128 (6 sessions), about 840 scripts, the longest 2.7-7.2 ms,
/// 1.5-1.8 s in all. The round trips this adds (one a chunk, a fraction of a millisecond) are
/// small beside the scripts' own work.
const SWEEP_ITEMS: usize = 128;

/// HSCAN's COUNT when a sweep lists an agent's sessions: names and times only, no windows; a
/// hash of up to 128 fields (Redis's `hash-max-listpack-entries`) comes whole in one reply.
const SWEEP_SCAN: usize = 256;

/// What one request of a sweep takes at most; smaller in tests.
#[derive(Clone, Copy, Debug)]
struct SweepChunks {
    /// [`SWEEP_ITEMS`].
    items: usize,
    /// [`SWEEP_SCAN`].
    scan: usize,
}

/// The Redis short-term tier.
pub(crate) struct RedisShortTerm {
    runtime: ServerRuntime,
    shared: Arc<Shared>,
    chunks: SweepChunks,
    /// The batch of the consolidation in progress (one at a time per handle), and the tags of
    /// the agents whose entries its sweep read in it.
    batch: Mutex<Option<(String, Vec<String>)>>,
}

impl std::fmt::Debug for RedisShortTerm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisShortTerm")
            .field("server", &self.shared.server)
            .field("prefix", &self.shared.keys.prefix)
            .finish_non_exhaustive()
    }
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl RedisShortTerm {
    /// Connects (checking the server answers).
    pub fn open(config: &RedisConfig, capacity: usize, ttl: Duration) -> Result<Self> {
        if let Some(problem) = prefix_problem(&config.prefix) {
            return Err(Error::InvalidConfig(problem));
        }
        let runtime = ServerRuntime::new("redis")?;
        let cfg = config.clone();
        let (con, server) = runtime.run(async move {
            let (mut con, server) = connect(&cfg).await?;
            redis::cmd("PING")
                .query_async::<()>(&mut con)
                .await
                .map_err(|e| redis_error(&server, e))?;
            Ok((con, server))
        })?;
        Ok(RedisShortTerm {
            runtime,
            shared: Arc::new(Shared {
                con,
                server,
                keys: Keys {
                    prefix: config.prefix.clone(),
                },
                scripts: Scripts::new(),
                capacity,
                ttl_micros: i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX),
                lease: config.handoff_lease,
            }),
            batch: Mutex::new(None),
            chunks: SweepChunks {
                items: SWEEP_ITEMS,
                scan: SWEEP_SCAN,
            },
        })
    }

    fn run<T: Send + 'static>(
        &self,
        f: impl std::future::Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        self.runtime.run(f)
    }

    fn decode_all(&self, raw: &[String]) -> Result<Vec<WindowItem>> {
        raw.iter().map(|r| decode(r, &self.shared.server)).collect()
    }
}

/// A sweep under way, taken one bounded request at a time ([`RedisShortTerm::sweep_step`]).
struct Sweep {
    now: Timestamp,
    batch_key: String,
    /// The agents not yet begun, and the one being swept.
    agents: std::vec::IntoIter<String>,
    agent: Option<AgentSweep>,
    expired_sessions: usize,
    /// Unpersisted items of live windows, raw, each id once per agent.
    staying: Vec<String>,
}

/// Where the sweep of one agent is: its sessions (HSCAN, then chunks of the names it returned),
/// then its hand-off list.
struct AgentSweep {
    name: String,
    /// HSCAN's cursor; `None` once the scan came back to 0.
    cursor: Option<String>,
    /// Sessions HSCAN named that no chunk has swept yet.
    pending: Vec<String>,
    /// Calls left for the hand-off list, set by its first call (`None` before).
    handoff_calls: Option<usize>,
    /// Ids of the staying items returned so far: HSCAN may name a live session twice.
    seen: std::collections::HashSet<u64>,
}

/// The id an item begins with (`<id>|...`), without reading its JSON.
fn item_id(raw: &str) -> Option<u64> {
    raw.split_once('|').and_then(|(id, _)| id.parse().ok())
}

impl RedisShortTerm {
    /// Sessions swept by one script: as many as hold [`SWEEP_ITEMS`] items when full, at least one.
    fn sessions_per_call(&self) -> usize {
        (self.chunks.items / self.shared.capacity.max(1)).max(1)
    }

    /// Names this sweep's batch (in flight from now on), takes over the batches whose lease
    /// passed, and lists the agents.
    fn sweep_begin(&self, now: Timestamp) -> Result<Sweep> {
        let s = self.shared.clone();
        let batch = format!(
            "{:x}-{:x}-{:x}",
            std::process::id(),
            wall_ms(),
            random_u64()
        );
        *self.batch.lock() = Some((batch.clone(), Vec::new()));
        let batch_key = format!("{}{batch}", s.keys.batch_prefix());
        let key = batch_key.clone();
        let agents = self.run(async move {
            let k = &s.keys;
            let lease_ms = i64::try_from(s.lease.as_millis()).unwrap_or(i64::MAX);
            let mut con = s.con.clone();
            redis::cmd("ZADD")
                .arg(k.inflight())
                .arg(wall_ms())
                .arg(&batch)
                .query_async::<()>(&mut con)
                .await
                .map_err(|e| redis_error(&s.server, e))?;
            // The scripts move what leaves into this sweep's own batch list, which is read
            // whole at the end: a script repeated after a lost reply finds its entries moved
            // already, and they are in the list all the same (its reply is not what counts).
            retrying!(s, |con| s
                .scripts
                .reclaim
                .key(k.inflight())
                .key(&key)
                .arg(k.batch_prefix())
                .arg(wall_ms())
                .arg(lease_ms)
                .invoke_async::<i64>(&mut con))?;
            retrying!(s, |con| redis::cmd("SMEMBERS")
                .arg(k.agents())
                .query_async::<Vec<String>>(&mut con))
        })?;
        Ok(Sweep {
            now,
            batch_key,
            agents: agents.into_iter(),
            agent: None,
            expired_sessions: 0,
            staying: Vec::new(),
        })
    }

    /// One request of the sweep: an HSCAN of an agent's sessions, a script sweeping a chunk of
    /// them, or one moving a chunk of its hand-off list. `false` when nothing is left to do.
    ///
    /// Redis runs nothing else while a script runs, so no script here does more than a chunk:
    /// [`SWEEP_ITEMS`] window items (whole sessions, at least one) or hand-off items. The scan
    /// and the chunks interleave with other clients' changes: HSCAN names every session present
    /// from its start to its end at least once, and the scripts make a second naming harmless.
    /// A session created after the scan passed its place, or an item appended to a window
    /// already swept, waits for the next sweep, as it would have had it come after a whole
    /// sweep; an append to an expired window not yet swept moves that window to the hand-off
    /// list, which is swept last.
    fn sweep_step(&self, sweep: &mut Sweep) -> Result<bool> {
        if sweep.agent.is_none() {
            let Some(name) = sweep.agents.next() else {
                return Ok(false);
            };
            sweep.agent = Some(AgentSweep {
                name,
                cursor: Some("0".into()),
                pending: Vec::new(),
                handoff_calls: None,
                seen: Default::default(),
            });
        }
        let Some(agent) = sweep.agent.as_mut() else {
            return Ok(false);
        };
        let s = self.shared.clone();
        let name = agent.name.clone();
        if !agent.pending.is_empty() {
            let take = agent.pending.len().min(self.sessions_per_call());
            let chunk: Vec<String> = agent.pending.drain(..take).collect();
            let (batch_key, now) = (sweep.batch_key.clone(), sweep.now);
            let (expired, staying): (i64, Vec<String>) = self.run(async move {
                let k = &s.keys;
                retrying!(s, |con| s
                    .scripts
                    .sweep_sessions
                    .key(k.sessions(&name))
                    .key(&batch_key)
                    .key(k.generation(&name))
                    .arg(k.window_prefix(&name))
                    .arg(now.0)
                    .arg(s.ttl_micros)
                    .arg(enc(&name))
                    .arg(&chunk)
                    .invoke_async::<(i64, Vec<String>)>(&mut con))
            })?;
            sweep.expired_sessions += usize::try_from(expired).unwrap_or(0);
            for raw in staying {
                // An item whose id does not read is kept: decoding it says what is wrong.
                if item_id(&raw).is_none_or(|id| agent.seen.insert(id)) {
                    sweep.staying.push(raw);
                }
            }
        } else if let Some(cursor) = agent.cursor.take() {
            let count = self.chunks.scan;
            let (next, fields): (String, Vec<String>) = self.run(async move {
                let k = &s.keys;
                retrying!(s, |con| redis::cmd("HSCAN")
                    .arg(k.sessions(&name))
                    .arg(&cursor)
                    .arg("COUNT")
                    .arg(count)
                    .query_async::<(String, Vec<String>)>(&mut con))
            })?;
            // Field, value, field, value: the names only (each chunk reads the times itself).
            agent.pending = fields.into_iter().step_by(2).collect();
            agent.cursor = (next != "0").then_some(next);
        } else {
            let (batch_key, n) = (sweep.batch_key.clone(), self.chunks.items);
            let left: i64 = self.run(async move {
                let k = &s.keys;
                retrying!(s, |con| s
                    .scripts
                    .sweep_handoff
                    .key(k.sessions(&name))
                    .key(k.handoff(&name))
                    .key(&batch_key)
                    .key(k.agents())
                    .key(k.generation(&name))
                    .arg(&name)
                    .arg(enc(&name))
                    .arg(n)
                    .invoke_async::<i64>(&mut con))
            })?;
            let left = usize::try_from(left).unwrap_or(0);
            // Appends that keep filling the list do not hold the sweep: it moves what the list
            // held at its first call (and a chunk more), the rest waits for the next sweep.
            let calls = agent.handoff_calls.get_or_insert(left.div_ceil(n) + 1);
            *calls = calls.saturating_sub(1);
            if left == 0 || *calls == 0 {
                sweep.agent = None;
            }
        }
        Ok(true)
    }

    /// Reads the batch whole (what the scripts moved, also those whose reply was lost).
    fn sweep_finish(&self, sweep: Sweep) -> Result<StmHandOff> {
        let s = self.shared.clone();
        let key = sweep.batch_key;
        let leaving: Vec<String> = self.run(async move {
            retrying!(s, |con| redis::cmd("LRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query_async::<Vec<String>>(&mut con))
        })?;
        let leaving = self.decode_all(&leaving)?;
        let mut agents: Vec<String> = leaving.iter().map(|i| enc(&i.entry.agent_id)).collect();
        agents.sort_unstable();
        agents.dedup();
        if let Some((_, tags)) = self.batch.lock().as_mut() {
            *tags = agents;
        }
        Ok(StmHandOff {
            leaving,
            staying: self
                .decode_all(&sweep.staying)?
                .into_iter()
                .map(|i| i.entry)
                .collect(),
            expired_sessions: sweep.expired_sessions,
        })
    }
}

impl ShortTermStore for RedisShortTerm {
    fn open_session(&self, agent: &Arc<str>, session: &Arc<str>, now: Timestamp) -> Result<()> {
        let s = self.shared.clone();
        let (agent, session) = (agent.to_string(), session.to_string());
        self.run(async move {
            let k = &s.keys;
            retrying!(s, |con| s
                .scripts
                .open_session
                .key(k.sessions(&agent))
                .key(k.window(&agent, &session))
                .key(k.handoff(&agent))
                .key(k.agents())
                .key(k.generation(&agent))
                .arg(&session)
                .arg(now.0)
                .arg(s.ttl_micros)
                .arg(&agent)
                .invoke_async::<i64>(&mut con))?;
            Ok(())
        })
    }

    fn append(&self, entry: MemoryEntry, now: Timestamp) -> Result<()> {
        let s = self.shared.clone();
        let item = encode(&WindowItem {
            entry: entry.clone(),
            persisted: false,
        })?;
        self.run(async move {
            let k = &s.keys;
            let (agent, session) = (&*entry.agent_id, &*entry.session_id);
            retrying!(s, |con| s
                .scripts
                .append
                .key(k.sessions(agent))
                .key(k.window(agent, session))
                .key(k.handoff(agent))
                .key(k.agents())
                .key(k.generation(agent))
                .arg(session)
                .arg(now.0)
                .arg(s.ttl_micros)
                .arg(s.capacity)
                .arg(&item)
                .arg(agent)
                .arg(entry.id.0.to_string())
                .invoke_async::<i64>(&mut con))?;
            Ok(())
        })
    }

    fn recent(
        &self,
        agent: &str,
        session: &str,
        n: usize,
        now: Timestamp,
    ) -> Result<Vec<MemoryEntry>> {
        let s = self.shared.clone();
        let (agent, session) = (agent.to_owned(), session.to_owned());
        let raw: Vec<String> = self.run(async move {
            let k = &s.keys;
            retrying!(s, |con| s
                .scripts
                .recent
                .key(k.sessions(&agent))
                .key(k.window(&agent, &session))
                .arg(&session)
                .arg(now.0)
                .arg(s.ttl_micros)
                .arg(n.min(s.capacity).min(1 << 30))
                .invoke_async::<Vec<String>>(&mut con))
        })?;
        Ok(self
            .decode_all(&raw)?
            .into_iter()
            .map(|i| i.entry)
            .collect())
    }

    fn for_each_of_agent(
        &self,
        agent: &str,
        _now: Timestamp,
        visit: &mut dyn FnMut(&MemoryEntry),
    ) -> Result<()> {
        let s = self.shared.clone();
        let agent = agent.to_owned();
        let raw: Vec<String> = self.run(async move {
            let k = &s.keys;
            retrying!(s, |con| s
                .scripts
                .of_agent
                .key(k.sessions(&agent))
                .key(k.handoff(&agent))
                .key(k.inflight())
                .arg(k.window_prefix(&agent))
                .arg(k.batch_prefix())
                .arg(enc(&agent))
                .invoke_async::<Vec<String>>(&mut con))
        })?;
        for item in self.decode_all(&raw)? {
            visit(&item.entry);
        }
        Ok(())
    }

    fn forget(&self, agent: &str, id: EntryId) -> Result<bool> {
        let s = self.shared.clone();
        let agent = agent.to_owned();
        let keep_ms = FORGOTTEN_KEPT.max(s.lease.saturating_mul(4)).as_millis();
        let keep_ms = i64::try_from(keep_ms).unwrap_or(i64::MAX);
        // Safe to repeat: a repeat after a lost reply finds nothing left to remove.
        let removed: i64 = self.run(async move {
            let k = &s.keys;
            retrying!(s, |con| s
                .scripts
                .forget
                .key(k.sessions(&agent))
                .key(k.handoff(&agent))
                .key(k.generation(&agent))
                .key(k.inflight())
                .key(k.forgotten())
                .arg(k.window_prefix(&agent))
                .arg(id.0.to_string())
                .arg(k.batch_prefix())
                .arg(enc(&agent))
                .arg(wall_ms())
                .arg(keep_ms)
                .invoke_async::<i64>(&mut con))
        })?;
        Ok(removed > 0)
    }

    fn forgotten(&self, entries: &[(Arc<str>, EntryId)]) -> Result<Vec<bool>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let s = self.shared.clone();
        let members: Vec<String> = entries
            .iter()
            .map(|(agent, id)| format!("{}{}", enc(agent), id.0))
            .collect();
        let marked: Vec<i64> = self.run(async move {
            let k = &s.keys;
            retrying!(s, |con| s
                .scripts
                .forgotten
                .key(k.forgotten())
                .arg(&members)
                .invoke_async::<Vec<i64>>(&mut con))
        })?;
        Ok(marked.into_iter().map(|m| m == 1).collect())
    }

    fn record_access(
        &self,
        agent: &str,
        ids: &[(Arc<str>, EntryId)],
        now: Timestamp,
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let s = self.shared.clone();
        let pairs: Vec<String> = ids
            .iter()
            .flat_map(|(session, id)| [s.keys.window(agent, session), id.0.to_string()])
            .collect();
        // Not repeated after a lost connection: a retrieval could be counted twice.
        self.run(async move {
            let mut con = s.con.clone();
            s.scripts
                .record_access
                .arg(now.0)
                .arg(&pairs)
                .invoke_async::<i64>(&mut con)
                .await
                .map_err(|e| redis_error(&s.server, e))?;
            Ok(())
        })
    }

    fn sweep(&self, now: Timestamp) -> Result<StmHandOff> {
        let mut sweep = self.sweep_begin(now)?;
        while self.sweep_step(&mut sweep)? {}
        self.sweep_finish(sweep)
    }

    fn settle(&self, settled: &[WindowKey]) -> Result<()> {
        let s = self.shared.clone();
        let batch = self.batch.lock().take();
        let pairs: Vec<String> = settled
            .iter()
            .flat_map(|(agent, session, id)| [s.keys.window(agent, session), id.0.to_string()])
            .collect();
        self.run(async move {
            let k = &s.keys;
            if !pairs.is_empty() {
                retrying!(s, |con| s
                    .scripts
                    .mark_persisted
                    .arg(&pairs)
                    .invoke_async::<i64>(&mut con))?;
            }
            if let Some((batch, agents)) = batch {
                retrying!(s, |con| s
                    .scripts
                    .settle
                    .key(k.inflight())
                    .key(format!("{}{batch}", k.batch_prefix()))
                    .arg(&batch)
                    .arg(k.generation_prefix())
                    .arg(&agents)
                    .invoke_async::<i64>(&mut con))?;
            }
            Ok(())
        })
    }

    /// What was forgotten meanwhile does not come back.
    fn hand_back(&self, leaving: Vec<WindowItem>) -> Result<()> {
        let keys: Vec<(Arc<str>, EntryId)> = leaving
            .iter()
            .map(|i| (i.entry.agent_id.clone(), i.entry.id))
            .collect();
        let forgotten = self.forgotten(&keys)?;
        let s = self.shared.clone();
        let batch = self.batch.lock().take().map(|(batch, _)| batch);
        let items: Vec<(Arc<str>, String)> = leaving
            .iter()
            .zip(&forgotten)
            .filter(|(_, &gone)| !gone)
            .map(|(i, _)| Ok((i.entry.agent_id.clone(), encode(i)?)))
            .collect::<Result<_>>()?;
        self.run(async move {
            let k = &s.keys;
            let mut pipe = redis::pipe();
            pipe.atomic();
            for (agent, item) in &items {
                pipe.rpush(k.handoff(agent), item)
                    .sadd(k.agents(), &**agent)
                    .incr(k.generation(agent), 1);
            }
            if let Some(batch) = &batch {
                pipe.del(format!("{}{batch}", k.batch_prefix()))
                    .zrem(k.inflight(), batch);
            }
            // Repeating after a lost reply may put an entry twice in a hand-off list;
            // consolidation writes by id, so it is stored once.
            retrying!(s, |con| pipe.query_async::<()>(&mut con))
        })
    }

    fn stats(&self) -> Result<StmStats> {
        let s = self.shared.clone();
        let (sessions, entries): (i64, i64) = self.run(async move {
            let k = &s.keys;
            retrying!(s, |con| s
                .scripts
                .stats
                .key(k.agents())
                .arg(&k.prefix)
                .invoke_async::<(i64, i64)>(&mut con))
        })?;
        Ok(StmStats {
            sessions: usize::try_from(sessions).unwrap_or(0),
            entries: usize::try_from(entries).unwrap_or(0),
        })
    }

    fn generation(&self, agent: &str) -> Result<Option<u64>> {
        let s = self.shared.clone();
        let key = s.keys.generation(agent);
        let g: Option<u64> = self.run(async move {
            retrying!(s, |con| redis::cmd("GET")
                .arg(&key)
                .query_async::<Option<u64>>(&mut con))
        })?;
        Ok(Some(g.unwrap_or(0)))
    }

    fn waits_on_server(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip_with_their_leading_fields() {
        let mut entry = MemoryEntry {
            id: EntryId(u64::MAX >> 1),
            agent_id: Arc::from("a|b"),
            session_id: Arc::from("s"),
            role: crate::entry::Role::User,
            content: "x | y\nz".into(),
            embedding: None,
            // Short-term entries carry no importance until consolidation scores them.
            importance: None,
            created_at: Timestamp(1),
            last_accessed_at: Timestamp(2),
            access_count: 3,
            metadata: serde_json::json!({"k": "v|w"}),
            tier: crate::entry::Tier::ShortTerm,
        };
        let raw = encode(&WindowItem {
            entry: entry.clone(),
            persisted: true,
        })
        .unwrap();
        let back = decode(&raw, "r").unwrap();
        assert!(back.persisted);
        assert_eq!(back.entry, entry);
        // The leading fields win over the JSON (scripts change only them).
        let changed = raw.replacen("|3|2|", "|4|9|", 1);
        entry.access_count = 4;
        entry.last_accessed_at = Timestamp(9);
        assert_eq!(decode(&changed, "r").unwrap().entry, entry);
        assert!(decode("12|0|x", "r").is_err());
    }

    #[test]
    fn batch_items_lose_their_agent_tag_and_other_items_stay_whole() {
        let item = "12|0|3|4|{}";
        assert_eq!(untag(item), item);
        assert_eq!(untag(&format!("{}{item}", enc("a:b|c"))), item);
        assert_eq!(untag(&format!("{}{item}", enc(""))), item);
        // Not a tag: kept whole, and refused by `decode` as any malformed item is.
        for odd in ["", ":x", "99:short", "18446744073709551616:x"] {
            assert_eq!(untag(odd), odd);
        }
        assert_eq!(untag("2:é"), "");
        assert_eq!(untag("1:é"), "1:é");
    }

    #[test]
    fn ids_in_keys_cannot_forge_another_key() {
        let k = Keys { prefix: "p".into() };
        assert_ne!(k.window("a", "1:bc"), k.window("a1:b", "c"));
        assert_ne!(k.window("ab", "c"), k.window("a", "bc"));
    }

    #[test]
    fn a_tier_owns_its_own_key_names_and_no_longer_prefix_s() {
        let k = Keys { prefix: "p".into() };
        let batch = format!("{:x}-{:x}-{:x}", 42, wall_ms(), random_u64());
        for key in [
            k.agents(),
            k.sessions("a:b"),
            k.window("a", "s|1"),
            k.handoff(""),
            k.generation("é"),
            k.inflight(),
            format!("{}{batch}", k.batch_prefix()),
        ] {
            assert!(k.owns(&key), "{key}");
        }
        let nested = Keys {
            prefix: "p:x".into(),
        };
        for key in [
            nested.agents(),
            nested.sessions("a"),
            nested.window("a", "s"),
            nested.inflight(),
            format!("{}{batch}", nested.batch_prefix()),
        ] {
            assert!(nested.owns(&key) && !k.owns(&key), "{key}");
        }
        for key in [
            "p",
            "p:",
            "p:agentsx",
            "p:s:3:ab",
            "p:w:1:a",
            "p:f:",
            "p:f:x",
            "q:agents",
        ] {
            assert!(!k.owns(key), "{key}");
        }
    }

    #[test]
    fn prefixes_whose_keys_could_be_another_tiers_are_refused() {
        for ok in [
            "memory_core",
            "test:case",
            "tenant:42",
            "a:s",
            "s:1",
            "app:w:x",
        ] {
            assert_eq!(prefix_problem(ok), None, "{ok}");
        }
        for bad in ["", "app:s:12", "a:b:w:3", "x:h:0:y", "x:g:7"] {
            assert!(prefix_problem(bad).is_some(), "{bad:?}");
        }
        // What the refusal prevents: `app`'s sessions key of the agent `agents` is the agents
        // key of `app:s:6`.
        let (outer, inner) = (
            Keys {
                prefix: "app".into(),
            },
            Keys {
                prefix: "app:s:6".into(),
            },
        );
        assert_eq!(outer.sessions("agents"), inner.agents());
    }

    /// The server of the tests below, from `MEMORY_CORE_REDIS_URL`; `None` (said on stderr)
    /// when it is unset, unless `MEMORY_CORE_REQUIRE_SERVERS=1` makes that a failure.
    fn server_url(test: &str) -> Option<String> {
        let url = std::env::var("MEMORY_CORE_REDIS_URL")
            .ok()
            .filter(|u| !u.trim().is_empty());
        if url.is_none() {
            assert!(
                std::env::var("MEMORY_CORE_REQUIRE_SERVERS").as_deref() != Ok("1"),
                "MEMORY_CORE_REQUIRE_SERVERS=1 but MEMORY_CORE_REDIS_URL is unset"
            );
            eprintln!("note: {test} skipped: MEMORY_CORE_REDIS_URL unset");
        }
        url
    }

    const TTL: Duration = Duration::from_secs(10);
    const T0: Timestamp = Timestamp(1_000_000_000_000);

    fn later(t: Timestamp, by: Duration) -> Timestamp {
        Timestamp(t.0 + i64::try_from(by.as_micros()).unwrap())
    }

    /// A tier of its own prefix (deleted by the caller with `destroy`), sweeping `items` window
    /// items per script and listing `scan` sessions per HSCAN.
    fn tier(
        url: &str,
        capacity: usize,
        items: usize,
        scan: usize,
    ) -> (RedisShortTerm, RedisConfig) {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let config = RedisConfig::new(url).with_prefix(format!(
            "test:sweep:{}:{nanos:x}:{:x}",
            std::process::id(),
            random_u64()
        ));
        let mut t = RedisShortTerm::open(&config, capacity, TTL).unwrap();
        t.chunks = SweepChunks { items, scan };
        (t, config)
    }

    fn entry(agent: &str, session: usize, id: u64) -> MemoryEntry {
        MemoryEntry {
            id: EntryId(id),
            agent_id: Arc::from(agent),
            session_id: Arc::from(format!("session-{session}").as_str()),
            role: crate::entry::Role::User,
            content: format!("turn {id}"),
            embedding: None,
            importance: None,
            created_at: T0,
            last_accessed_at: T0,
            access_count: 0,
            metadata: serde_json::Value::Null,
            tier: crate::entry::Tier::ShortTerm,
        }
    }

    /// A plain command's integer reply (HLEN, SISMEMBER, LLEN).
    fn int(t: &RedisShortTerm, cmd: &str, key: String, arg: Option<&str>) -> i64 {
        let s = t.shared.clone();
        let (cmd, arg) = (cmd.to_owned(), arg.map(str::to_owned));
        t.run(async move {
            let mut con = s.con.clone();
            let mut c = redis::cmd(&cmd);
            c.arg(&key);
            if let Some(arg) = &arg {
                c.arg(arg);
            }
            c.query_async::<i64>(&mut con)
                .await
                .map_err(|e| redis_error(&s.server, e))
        })
        .unwrap()
    }

    /// How often each id occurs.
    fn counts(ids: impl IntoIterator<Item = u64>) -> std::collections::BTreeMap<u64, usize> {
        let mut out = std::collections::BTreeMap::new();
        for id in ids {
            *out.entry(id).or_insert(0) += 1;
        }
        out
    }

    fn once(ids: impl IntoIterator<Item = u64>) -> std::collections::BTreeMap<u64, usize> {
        ids.into_iter().map(|id| (id, 1)).collect()
    }

    /// 300 sessions (more than Redis keeps in a compact hash, so HSCAN's COUNT applies) swept
    /// 2 sessions per script. The old sweep was one script per agent: after its first script no
    /// expired session was left, which the first assertion refutes (the old code has no steps to
    /// call; this test cannot be built against it).
    #[test]
    fn a_sweep_in_chunks_hands_each_entry_off_once_and_returns_each_staying_one_once() {
        let Some(url) = server_url("a_sweep_in_chunks_hands_each_entry_off_once") else {
            return;
        };
        let (t, config) = tier(&url, 2, 4, 16);
        assert_eq!(t.sessions_per_call(), 2);
        let k = t.shared.keys.clone();
        let t1 = later(T0, TTL * 2);
        let (mut expired, mut handed, mut live) = (Vec::new(), Vec::new(), Vec::new());
        let mut id = 0;
        for session in 0..300 {
            let (at, list) = if session < 150 {
                (T0, &mut expired)
            } else {
                (t1, &mut live)
            };
            // Three turns in a window of two: the first goes to the hand-off list.
            for turn in 0..3 {
                id += 1;
                t.append(entry("a", session, id), at).unwrap();
                if turn == 0 {
                    handed.push(id)
                } else {
                    list.push(id)
                }
            }
        }
        assert_eq!(int(&t, "HLEN", k.sessions("a"), None), 300);
        let mut sweep = t.sweep_begin(t1).unwrap();
        // Begin the agent and list its first sessions, then one chunk: two sessions at most.
        while sweep.agent.as_ref().is_none_or(|a| a.pending.is_empty()) {
            assert!(t.sweep_step(&mut sweep).unwrap());
        }
        assert!(t.sweep_step(&mut sweep).unwrap());
        assert!(int(&t, "HLEN", k.sessions("a"), None) >= 298);
        let mut steps = 0;
        while t.sweep_step(&mut sweep).unwrap() {
            steps += 1;
        }
        // 150 chunks of expired and live sessions each, the scans and the hand-off's chunks.
        assert!(steps >= 150, "{steps}");
        let out = t.sweep_finish(sweep).unwrap();
        assert_eq!(out.expired_sessions, 150);
        assert_eq!(
            counts(out.leaving.iter().map(|i| i.entry.id.0)),
            once(expired.iter().chain(&handed).copied())
        );
        assert_eq!(
            counts(out.staying.iter().map(|e| e.id.0)),
            once(live.iter().copied())
        );
        assert_eq!(int(&t, "HLEN", k.sessions("a"), None), 150);
        assert_eq!(int(&t, "LLEN", k.handoff("a"), None), 0);
        assert_eq!(int(&t, "SISMEMBER", k.agents(), Some("a")), 1);
        // Searches of any instance found the batch's entries: settling it changes the agent's
        // generation (their cached answers), and deletes the batch.
        let generation = t.generation("a").unwrap();
        let batch = t.batch.lock().as_ref().unwrap().0.clone();
        t.settle(&[]).unwrap();
        assert_ne!(t.generation("a").unwrap(), generation);
        assert_eq!(
            int(&t, "EXISTS", format!("{}{batch}", k.batch_prefix()), None),
            0
        );
        // Later every window has expired: the rest leaves, and the agent with it.
        let out = t.sweep(later(t1, TTL * 2)).unwrap();
        assert_eq!(out.expired_sessions, 150);
        assert_eq!(
            counts(out.leaving.iter().map(|i| i.entry.id.0)),
            once(live.iter().copied())
        );
        assert!(out.staying.is_empty());
        assert_eq!(int(&t, "HLEN", k.sessions("a"), None), 0);
        assert_eq!(int(&t, "SISMEMBER", k.agents(), Some("a")), 0);
        t.settle(&[]).unwrap();
        config.destroy().unwrap();
    }

    /// Windows changed between the chunks of a sweep: appends to live sessions swept already and
    /// not yet, to expired ones moved already and not yet, a new session, and sessions HSCAN
    /// names twice (forced here). Nothing is lost, nothing comes twice. Not built against the
    /// old code, which has no chunks: its one script per agent let nothing in between.
    #[test]
    fn windows_changed_between_chunks_are_neither_lost_nor_duplicated() {
        let Some(url) =
            server_url("windows_changed_between_chunks_are_neither_lost_nor_duplicated")
        else {
            return;
        };
        // One session per script, 8 named per HSCAN.
        let (t, config) = tier(&url, 4, 4, 8);
        let t1 = later(T0, TTL * 2);
        let mut all: Vec<u64> = Vec::new();
        let mut id = 0;
        let mut append = |session: usize, at: Timestamp| {
            id += 1;
            t.append(entry("a", session, id), at).unwrap();
            all.push(id);
            id
        };
        for session in 0..200 {
            for _ in 0..2 {
                append(session, if session % 2 == 0 { T0 } else { t1 });
            }
        }
        let name = |session: usize| format!("session-{session}");
        let number = |name: &str| name["session-".len()..].parse::<usize>().unwrap();
        let mut sweep = t.sweep_begin(t1).unwrap();
        while sweep.agent.as_ref().is_none_or(|a| a.pending.len() < 4) {
            assert!(t.sweep_step(&mut sweep).unwrap());
        }
        // Two chunks, then the changes. HSCAN names a pending live and a pending expired session
        // twice (again right after themselves), and a swept one again.
        let pending: Vec<usize> = sweep
            .agent
            .as_ref()
            .unwrap()
            .pending
            .iter()
            .map(|n| number(n))
            .collect();
        assert!(t.sweep_step(&mut sweep).unwrap());
        assert!(t.sweep_step(&mut sweep).unwrap());
        let (swept, waiting) = (&pending[..2], &pending[2..]);
        // Waiting in this chunk of names, or named here (HSCAN names it later, or named it
        // before: the duplicate is what is tested).
        let pick = |odd: usize| {
            let mut all = waiting.iter().copied().chain(0..200);
            all.find(|s| s % 2 == odd && !swept.contains(s)).unwrap()
        };
        let (live_waiting, expired_waiting) = (pick(1), pick(0));
        {
            let agent = sweep.agent.as_mut().unwrap();
            agent.pending.insert(0, name(live_waiting));
            agent.pending.insert(0, name(expired_waiting));
            agent.pending.extend(swept.iter().map(|s| name(*s)));
        }
        let mut this_sweep = Vec::new();
        for &session in swept {
            // Swept already: a live window keeps the new turn for the next sweep; an expired
            // one, moved already, comes back live with it.
            append(session, t1);
        }
        this_sweep.push(append(live_waiting, t1));
        // An expired window not yet swept: the append moves its old turns to the hand-off list
        // (swept after the sessions), and the session lives on with the new turn.
        this_sweep.push(append(expired_waiting, t1));
        append(1000, t1);
        while t.sweep_step(&mut sweep).unwrap() {}
        let first = t.sweep_finish(sweep).unwrap();
        t.settle(&[]).unwrap();
        let staying = counts(first.staying.iter().map(|e| e.id.0));
        assert!(staying.values().all(|&n| n == 1), "{staying:?}");
        for id in &this_sweep {
            assert_eq!(staying.get(id), Some(&1), "{id}");
        }
        // Every live window's turns present at the sweep's start.
        let before: Vec<u64> = (0..200)
            .filter(|s| s % 2 == 1)
            .flat_map(|s| {
                let first = u64::try_from(2 * s + 1).unwrap();
                [first, first + 1]
            })
            .collect();
        assert!(before.iter().all(|id| staying.contains_key(id)));
        // Expired sessions counted once each, also the one named twice and the one that came
        // back (the one appended to before its chunk came was live by then).
        assert_eq!(first.expired_sessions, 99);
        // Later everything expires: across both sweeps, every turn left exactly once.
        let second = t.sweep(later(t1, TTL * 2)).unwrap();
        t.settle(&[]).unwrap();
        assert_eq!(
            counts(
                first
                    .leaving
                    .iter()
                    .chain(&second.leaving)
                    .map(|i| i.entry.id.0)
            ),
            once(all.iter().copied())
        );
        config.destroy().unwrap();
    }

    #[test]
    fn printed_configs_and_addresses_hide_passwords() {
        let c = RedisConfig::new("redis://user:hunter2@127.0.0.1:6390/3");
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("127.0.0.1:6390"), "{shown}");
    }
}
