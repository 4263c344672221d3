//! The PostgreSQL + pgvector long-term store (feature `postgres`): entries, their vectors (HNSW)
//! and per-agent BM25 statistics in one database that many app instances share. The schema, its
//! migrations, the statements sent and the measured design choices are in `schema.sql`.
//!
//! The client is async (tokio-postgres behind a deadpool pool) and runs on the store's own
//! runtime ([`ServerRuntime`]); each trait method waits for its request. Requests that are safe
//! to repeat are retried on a fresh connection when the old one was lost: reads, and commits,
//! which are idempotent because entry ids are chosen before the write.

pub(crate) mod config;
mod migrate;

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};
use parking_lot::Mutex;
use pgvector::Vector;
use rustc_hash::FxHashMap;
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

use crate::clock::Timestamp;
use crate::config::MemoryConfig;
use crate::entry::{EntryId, MemoryEntry, Role, Tier};
use crate::error::{Error, Result, ServerProblem};
use crate::index::text::Analyzer;
use crate::index::topk::sort_ranking;
use crate::index::ListQuery;
use crate::query::DocFilter;
use crate::server::{backoff, connect_problem, server_error, ServerRuntime, RETRIES};
use crate::store::embedder::{EmbedderCheck, EmbedderStep, StoredVectors};
use crate::store::{AccessRecord, HybridCandidates, IntegrityReport, LongTermStore, Ranking};

use config::describe_url;
pub use config::PostgresConfig;
pub use migrate::LATEST_VERSION as POSTGRES_SCHEMA_VERSION;

impl PostgresConfig {
    /// Deletes the store: its schema and everything in it. Other schemas are untouched. For
    /// tests and tear-down; there is no undo.
    pub fn destroy_store(&self) -> Result<()> {
        migrate::check_schema_name(&self.schema)?;
        let runtime = ServerRuntime::new("postgres")?;
        let pool = pool(self, &[])?;
        let server = describe_url(&self.url);
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
        runtime.run(async move {
            let client = pool
                .get()
                .await
                .map_err(|e| pool_error(&server, e, Duration::ZERO))?;
            client
                .batch_execute(&sql)
                .await
                .map_err(|e| pg_error(&server, e))
        })
    }
}

/// The connection pool for `config`; `options` are run-time settings (`-c name=value`).
fn pool(config: &PostgresConfig, options: &[(&str, String)]) -> Result<Pool> {
    let mut pg: tokio_postgres::Config =
        config.url.parse().map_err(|e: tokio_postgres::Error| {
            // The parser's message may quote the string: say only what is wrong.
            let what = e.to_string();
            let what = if what.contains(&config.url) {
                "the URL does not parse".to_owned()
            } else {
                what
            };
            server_error(
                "PostgreSQL at an unparsable address",
                ServerProblem::BadAddress(what),
                None,
            )
        })?;
    pg.connect_timeout(config.connect_timeout);
    pg.application_name(config.application_name.clone());
    pg.keepalives(true);
    if !options.is_empty() {
        let opts: Vec<String> = options.iter().map(|(k, v)| format!("-c {k}={v}")).collect();
        pg.options(opts.join(" "));
    }
    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(config.pool_size.max(1))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(config.connect_timeout))
        .create_timeout(Some(config.connect_timeout))
        .build()
        .map_err(|e| Error::InvalidConfig(format!("PostgreSQL pool: {e}")))
}

/// Whether a failed request may be sent again on a new connection (the old one is gone, or the
/// server asked for a retry).
fn retryable(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let c = code.code();
        return c.starts_with("08")
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED;
    }
    io_source(e).is_some()
}

fn io_source<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut cur = e.source();
    while let Some(s) = cur {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        cur = s.source();
    }
    None
}

/// A typed error for a failed request to `server`.
fn pg_error(server: &str, e: tokio_postgres::Error) -> Error {
    let problem = if let Some(code) = e.code() {
        let c = code.code();
        if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            || *code == SqlState::INVALID_CATALOG_NAME
        {
            Some(ServerProblem::LoginRefused(
                e.as_db_error()
                    .map_or_else(|| e.to_string(), |d| d.message().to_owned()),
            ))
        } else if c.starts_with("08")
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
        {
            Some(ServerProblem::ConnectionLost(e.to_string()))
        } else {
            None
        }
    } else if e.is_closed() {
        Some(ServerProblem::ConnectionLost("the server closed it".into()))
    } else {
        io_source(&e).map(connect_problem)
    };
    match problem {
        Some(problem) => server_error(server, problem, Some(Box::new(e))),
        None => Error::Database {
            store: server.to_owned(),
            source: match e.as_db_error() {
                Some(db) => Box::new(ServerMessage {
                    text: server_message(db),
                    source: e,
                }),
                None => Box::new(e),
            },
        },
    }
}

/// What the server said, shown in full: `tokio_postgres::Error` shows only "db error" and
/// keeps the server's message in its source, which one-line error reports leave out.
#[derive(Debug)]
struct ServerMessage {
    text: String,
    source: tokio_postgres::Error,
}

impl std::fmt::Display for ServerMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for ServerMessage {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// `ERROR 42P01: relation "x" does not exist (detail; hint)`.
fn server_message(db: &tokio_postgres::error::DbError) -> String {
    let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    let notes: Vec<&str> = [db.detail(), db.hint()].into_iter().flatten().collect();
    if !notes.is_empty() {
        text.push_str(&format!(" ({})", notes.join("; ")));
    }
    text
}

fn pool_error(server: &str, e: PoolError, timeout: Duration) -> Error {
    match e {
        PoolError::Backend(e) => pg_error(server, e),
        PoolError::Timeout(_) => server_error(server, ServerProblem::Timeout(timeout), None),
        other => server_error(
            server,
            ServerProblem::Unreachable(other.to_string()),
            Some(Box::<dyn std::error::Error + Send + Sync>::from(
                other.to_string(),
            )),
        ),
    }
}

/// A failure inside one attempt: retried when the connection was lost.
enum Failure {
    Pool(PoolError),
    Query(tokio_postgres::Error),
    Engine(Error),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Failure::Query(e)
    }
}

impl Failure {
    fn retryable(&self) -> bool {
        match self {
            Failure::Pool(PoolError::Backend(e)) | Failure::Query(e) => retryable(e),
            _ => false,
        }
    }
}

/// Runs `$body` (an async block using the pooled client `$client` and returning
/// `Result<T, Failure>`), on a new connection again when the connection was lost, up to
/// [`RETRIES`] times. Only for requests that are safe to repeat.
macro_rules! with_client {
    ($shared:expr, |$client:ident| $body:expr) => {{
        let shared: &Shared = &$shared;
        let mut attempt: u32 = 0;
        loop {
            let outcome = match shared.pool.get().await {
                #[allow(unused_mut)]
                Ok(mut $client) => $body.await,
                Err(e) => Err(Failure::Pool(e)),
            };
            match outcome {
                Ok(v) => break Ok(v),
                Err(f) if f.retryable() && attempt < RETRIES => {
                    attempt += 1;
                    tracing::debug!(store = %shared.location, attempt, "retrying on a new connection");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(f) => break Err(shared.error(f)),
            }
        }
    }};
}

/// The statements, with the store's schema in them.
#[derive(Debug)]
struct Statements {
    insert: String,
    delete: String,
    record_access: String,
    select_by_ids: String,
    list: String,
    count: String,
    count_all: String,
    generation: String,
    bm25_top_k: String,
    bm25_scores: String,
    bm25_filtered: String,
    /// BM25 of given entries (an id array), for the vector candidates of a hybrid search.
    bm25_of_ids: String,
    /// The three keyword statements above with each candidate's exact similarity to a query
    /// vector (the next parameter) added, for hybrid search.
    bm25_top_k_sim: String,
    bm25_scores_sim: String,
    bm25_filtered_sim: String,
    vector_hnsw: String,
    vector_exact: String,
    similarities: String,
    conflicts: String,
    id_block: String,
    id_blocks: String,
    integrity: String,
}

/// The columns [`entry_of`] reads, from `entries e` left-joined with its row of `access a`: the
/// retrieval counts are the base columns of `entries` (written at insert, and by versions before
/// migration 8) plus the counts written back since (`schema.sql`, migration 8 and the `entry`
/// query), the count at most `u32::MAX`.
const COLUMNS: &str = "e.id, e.agent_id, e.session_id, e.role, e.content, e.embedding, \
     e.importance, e.created_at, greatest(e.last_accessed_at, a.last_at), \
     least(e.access_count + coalesce(a.count, 0), 4294967295), e.metadata";

/// The filter of `DocFilter` on `e`, with its parameters from `$first` on.
fn filter_sql(first: usize) -> String {
    format!(
        "(${a}::text IS NULL OR e.session_id = ${a}) AND (${b}::smallint IS NULL OR e.role = ${b}) \
         AND (${c}::bigint IS NULL OR e.created_at >= ${c}) AND (${d}::bigint IS NULL OR e.created_at < ${d})",
        a = first,
        b = first + 1,
        c = first + 2,
        d = first + 3
    )
}

/// `keyword_sql` (a ranking of `entry_id, score` ordered by score) with each candidate's exact
/// cosine similarity to the query vector `$param` as a third column (NULL without a vector),
/// in the same order. A correlated subquery, not a join: the planner, expecting 1,000 rows of
/// a function, merge-joined them with the whole table in id order (9,864 rows read for 50 at
/// 10K entries, 8 ms); the subquery is one primary-key lookup per candidate.
fn with_similarity(schema: &str, keyword_sql: &str, param: usize) -> String {
    format!(
        "SELECT h.entry_id, h.score, \
           (SELECT (1 - (e.embedding <=> ${param}))::real FROM {schema}.entries e \
            WHERE e.id = h.entry_id) \
         FROM ({keyword_sql}) AS h ORDER BY h.score DESC, h.entry_id"
    )
}

impl Statements {
    fn new(schema: &str) -> Self {
        let s = schema;
        let bm25_top_k = format!("SELECT entry_id, score FROM {s}.bm25_top_k($1, $2, $3, $4, $5)");
        let bm25_scores = format!(
            "SELECT s.entry_id, s.score FROM {s}.bm25_scores($1, $2, $4, $5) AS s \
             ORDER BY s.score DESC, s.entry_id LIMIT $3"
        );
        let bm25_filtered = format!(
            "SELECT s.entry_id, s.score FROM {s}.bm25_scores($1, $2, $4, $5) AS s \
             JOIN {s}.entries e ON e.id = s.entry_id WHERE {} \
             ORDER BY s.score DESC, s.entry_id LIMIT $3",
            filter_sql(6)
        );
        Statements {
            bm25_top_k_sim: with_similarity(s, &bm25_top_k, 6),
            bm25_scores_sim: with_similarity(s, &bm25_scores, 6),
            bm25_filtered_sim: with_similarity(s, &bm25_filtered, 10),
            // bm25_scores is a SQL function the planner inlines, so the id condition reaches
            // the postings' primary key (agent, term, entry): a lookup per term and id.
            bm25_of_ids: format!(
                "SELECT s.entry_id, s.score FROM {s}.bm25_scores($1, $2, $3, $4) AS s \
                 WHERE s.entry_id = ANY ($5)"
            ),
            bm25_top_k,
            bm25_scores,
            bm25_filtered,
            // With the store's embedder, read under the embedder lock (`schema.sql`, migration 6).
            insert: format!(
                "SELECT {s}.embedder_for_write(), \
                 {s}.insert_entries($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            ),
            delete: format!("SELECT {s}.delete_entries($1, $2)"),
            // Applied once per token (`schema.sql`, migration 7), into the narrow `access` table
            // (migration 8).
            record_access: format!(
                "SELECT {s}.record_access_once($1, $2::bigint[], $3::bigint[], $4::bigint[])"
            ),
            select_by_ids: format!(
                "SELECT {COLUMNS} FROM {s}.entries e LEFT JOIN {s}.access a ON a.id = e.id \
                 WHERE e.agent_id = $1 AND e.id = ANY ($2)"
            ),
            list: format!(
                "SELECT {COLUMNS} FROM {s}.entries e LEFT JOIN {s}.access a ON a.id = e.id \
                 WHERE e.agent_id = $1 AND ($2::text IS NULL OR e.session_id = $2) \
                   AND ($3::bigint IS NULL OR e.created_at >= $3) AND ($4::bigint IS NULL OR e.created_at < $4) \
                 ORDER BY e.created_at DESC, e.id DESC LIMIT $5"
            ),
            count: format!("SELECT doc_count FROM {s}.agents WHERE agent_id = $1"),
            count_all: format!("SELECT coalesce(sum(doc_count), 0)::bigint FROM {s}.agents"),
            // One row: the store's, with the agent's where it has one.
            generation: format!(
                "SELECT g.generation, g.doc_count, s.embedder \
                 FROM {s}.store s LEFT JOIN {s}.agents g ON g.agent_id = $1"
            ),
            // pinned to the HNSW index inside the function (see `schema.sql`, migration 2)
            vector_hnsw: format!(
                "SELECT id, similarity FROM {s}.vector_top_k($1, $2, $3, $4, $5, $6, $7)"
            ),
            vector_exact: format!(
                "WITH mine AS MATERIALIZED ( \
                   SELECT e.id, e.embedding FROM {s}.entries e \
                   WHERE e.agent_id = $1 AND e.embedding IS NOT NULL AND {}) \
                 SELECT id, (1 - (embedding <=> $2))::real AS similarity FROM mine \
                 ORDER BY embedding <=> $2, id LIMIT $3",
                filter_sql(4)
            ),
            // `<=>` is pgvector's cosine distance, exact on the stored vectors (no index used).
            similarities: format!(
                "SELECT e.id, (1 - (e.embedding <=> $2))::real FROM {s}.entries e \
                 WHERE e.agent_id = $1 AND e.id = ANY ($3) AND e.embedding IS NOT NULL"
            ),
            conflicts: format!(
                "SELECT id, agent_id, content FROM {s}.entries WHERE id = ANY ($1)"
            ),
            // The shared lock first (its subquery is a fence: evaluated before the nextval),
            // so that a reservation of several consecutive blocks, which takes it exclusively,
            // is never split by a single one.
            id_block: format!(
                "SELECT nextval('{s}.entry_id_blocks'), pg_current_xact_id()::text \
                 FROM (SELECT pg_advisory_xact_lock_shared($1, 0) OFFSET 0) AS ordered"
            ),
            id_blocks: format!(
                "SELECT min(v), max(v) FROM (SELECT nextval('{s}.entry_id_blocks') AS v \
                 FROM generate_series(1, $1::bigint)) AS blocks"
            ),
            integrity: format!(
                "SELECT coalesce(g.agent_id, c.agent_id), coalesce(g.doc_count, 0), coalesce(c.n, 0) \
                 FROM {s}.agents g FULL JOIN ( \
                   SELECT agent_id, count(*) AS n FROM {s}.entries GROUP BY agent_id) AS c \
                 ON c.agent_id = g.agent_id \
                 WHERE coalesce(g.doc_count, 0) <> coalesce(c.n, 0)"
            ),
        }
    }
}

/// What the store's requests share (moved into each request's future).
struct Shared {
    pool: Pool,
    location: String,
    sql: Statements,
    bm25: (f64, f64),
    connect_timeout: Duration,
    /// [`Embedder::id`](crate::Embedder::id) of this instance's embedder: the one the store
    /// recorded when it opened.
    embedder: String,
}

impl Shared {
    fn error(&self, f: Failure) -> Error {
        match f {
            Failure::Pool(e) => pool_error(&self.location, e, self.connect_timeout),
            Failure::Query(e) => pg_error(&self.location, e),
            Failure::Engine(e) => e,
        }
    }

    /// Fails when the store records another embedder than this instance's: another instance
    /// changed it after this one opened (a re-embedding, or an accepted change), so this one's
    /// vectors, stored or searched, are of another space (`schema.sql`, migration 6).
    fn check_embedder(&self, recorded: Option<&str>) -> std::result::Result<(), Failure> {
        if recorded == Some(self.embedder.as_str()) {
            return Ok(());
        }
        let stored = match recorded {
            Some(r) => match r.strip_prefix(crate::store::embedder::REEMBEDDING) {
                Some(target) => format!("{target} (being re-embedded by another instance)"),
                None => format!("{r} (recorded by another instance since this one opened)"),
            },
            None => "none (the record was removed since this instance opened)".to_owned(),
        };
        Err(Failure::Engine(Error::StoreEmbedderMismatch {
            store: self.location.clone(),
            stored,
            configured: self.embedder.clone(),
        }))
    }
}

/// The token of one write of access counts, the same in each of its attempts.
fn access_token() -> i64 {
    crate::server::random_u64() as i64
}

/// The ids this handle reserved and has not handed out yet.
#[derive(Debug, Default)]
struct IdBlock {
    next: u64,
    end: u64,
}

/// Below this many entries an agent's vectors are compared exactly (recall 1; measured faster
/// than an HNSW scan that must skip other agents' entries, see `schema.sql`).
const EXACT_BELOW: u64 = 2_000;
/// From this many entries, `bm25_top_k` (pruned) beats the plain scan (see `schema.sql`).
const PRUNED_FROM: u64 = 4_096;
/// How long an agent's entry count is trusted for choosing a query plan.
const PLAN_TTL: Duration = Duration::from_secs(1);

/// The PostgreSQL long-term store.
pub(crate) struct PostgresStore {
    runtime: ServerRuntime,
    shared: Arc<Shared>,
    ids: Mutex<IdBlock>,
    id_block_size: u64,
    /// Entry counts per agent, read with the generation, for choosing query plans only.
    sizes: Mutex<FxHashMap<String, (u64, Instant)>>,
    exact_below: u64,
    /// How the store's terms are made (its `store.analyzer`, which may differ from the
    /// configuration for a store written before).
    analyzer: Analyzer,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.shared.location)
            .finish_non_exhaustive()
    }
}

fn role_number(role: Role) -> i16 {
    Role::ALL.iter().position(|r| *r == role).unwrap_or(0) as i16
}

fn id_i64(id: EntryId) -> i64 {
    i64::try_from(id.0).unwrap_or(i64::MAX)
}

/// An entry from a row of [`COLUMNS`].
fn entry_of(row: &Row) -> std::result::Result<MemoryEntry, Failure> {
    let corrupt = |detail: String| {
        Failure::Engine(Error::Corrupt {
            store: String::new(),
            detail,
        })
    };
    let id: i64 = row.try_get(0)?;
    let role: i16 = row.try_get(3)?;
    let role = *Role::ALL
        .get(usize::try_from(role).unwrap_or(usize::MAX))
        .ok_or_else(|| corrupt(format!("entry {id}: role {role}")))?;
    let embedding: Option<Vector> = row.try_get(5)?;
    let access_count: i64 = row.try_get(9)?;
    let metadata: Option<serde_json::Value> = row.try_get(10)?;
    Ok(MemoryEntry {
        id: EntryId(u64::try_from(id).map_err(|_| corrupt(format!("entry id {id}")))?),
        agent_id: Arc::from(unescape(row.try_get::<_, &str>(1)?)),
        session_id: Arc::from(unescape(row.try_get::<_, &str>(2)?)),
        role,
        content: unescape(row.try_get::<_, &str>(4)?),
        embedding: embedding.map(|v| Arc::from(v.to_vec())),
        importance: Some(row.try_get::<_, f32>(6)?),
        created_at: Timestamp(row.try_get(7)?),
        last_accessed_at: Timestamp(row.try_get(8)?),
        access_count: u32::try_from(access_count).unwrap_or(u32::MAX),
        metadata: metadata.map_or(serde_json::Value::Null, |m| map_json(m, &unescape)),
        tier: Tier::LongTerm,
    })
}

/// Marks an escape in text stored in PostgreSQL: U+10FFFF, a noncharacter, never in real text.
const ESCAPE: char = '\u{10FFFF}';

/// `s` as PostgreSQL text, which cannot hold NUL: NUL becomes ESCAPE '0' and ESCAPE becomes
/// ESCAPE ESCAPE, so that [`unescape`] gives `s` back exactly. Text without either is unchanged.
fn escape(s: &str) -> String {
    if !s.contains(['\0', ESCAPE]) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\0' => {
                out.push(ESCAPE);
                out.push('0');
            }
            ESCAPE => {
                out.push(ESCAPE);
                out.push(ESCAPE);
            }
            c => out.push(c),
        }
    }
    out
}

/// The inverse of [`escape`].
fn unescape(s: &str) -> String {
    if !s.contains(ESCAPE) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == ESCAPE {
            match chars.next() {
                Some('0') => out.push('\0'),
                Some(other) => out.push(other),
                None => out.push(ESCAPE),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `v` with `f` applied to every string in it, keys included (jsonb cannot hold NUL either).
fn map_json(v: serde_json::Value, f: &dyn Fn(&str) -> String) -> serde_json::Value {
    use serde_json::Value;
    // Without recursion: metadata may nest as deep as the configured limit.
    enum Frame {
        Array(Vec<Value>, std::vec::IntoIter<Value>),
        Object(
            serde_json::Map<String, Value>,
            String,
            std::vec::IntoIter<(String, Value)>,
        ),
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut current = v;
    loop {
        // Descend into `current` (a frame is pushed), or turn it into a finished value.
        let mut fresh = false;
        let mut done = match current {
            Value::String(s) => Value::String(f(&s)),
            Value::Array(items) => {
                stack.push(Frame::Array(
                    Vec::with_capacity(items.len()),
                    items.into_iter(),
                ));
                fresh = true;
                Value::Null
            }
            Value::Object(map) => {
                let items: Vec<(String, Value)> = map.into_iter().collect();
                stack.push(Frame::Object(
                    serde_json::Map::new(),
                    String::new(),
                    items.into_iter(),
                ));
                fresh = true;
                Value::Null
            }
            other => other,
        };
        loop {
            let Some(top) = stack.last_mut() else {
                return done;
            };
            match top {
                Frame::Array(out, rest) => {
                    if !fresh {
                        out.push(std::mem::take(&mut done));
                    }
                    fresh = false;
                    if let Some(next) = rest.next() {
                        current = next;
                        break;
                    }
                }
                Frame::Object(out, key, rest) => {
                    if !fresh {
                        out.insert(f(key), std::mem::take(&mut done));
                    }
                    fresh = false;
                    if let Some((k, next)) = rest.next() {
                        *key = k;
                        current = next;
                        break;
                    }
                }
            }
            done = match stack.pop() {
                Some(Frame::Array(out, _)) => Value::Array(out),
                Some(Frame::Object(out, _, _)) => Value::Object(out),
                None => return done,
            };
        }
    }
}

/// The distinct terms of `text`, as the store's keyword postings hold them.
fn query_terms(analyzer: Analyzer, text: &str) -> Vec<String> {
    let mut terms = Vec::new();
    analyzer.for_each_term(text, |t| terms.push(t.to_owned()));
    terms.sort_unstable();
    terms.dedup();
    terms
}

/// The parameters of `insert_entries` for `entries`.
struct InsertParams {
    ids: Vec<i64>,
    agents: Vec<String>,
    sessions: Vec<String>,
    roles: Vec<i16>,
    contents: Vec<String>,
    embeddings: Vec<Option<Vector>>,
    importances: Vec<f32>,
    created: Vec<i64>,
    accessed: Vec<i64>,
    access_counts: Vec<i64>,
    metadata: Vec<Option<serde_json::Value>>,
    doc_lens: Vec<i32>,
    post_ids: Vec<i64>,
    post_terms: Vec<String>,
    post_tfs: Vec<i32>,
    access_ids: Vec<i64>,
    access_counts_add: Vec<i64>,
    access_at: Vec<i64>,
}

impl InsertParams {
    fn new(entries: &[MemoryEntry], accesses: &[AccessRecord], analyzer: Analyzer) -> Self {
        let mut p = InsertParams {
            ids: Vec::with_capacity(entries.len()),
            agents: Vec::with_capacity(entries.len()),
            sessions: Vec::with_capacity(entries.len()),
            roles: Vec::with_capacity(entries.len()),
            contents: Vec::with_capacity(entries.len()),
            embeddings: Vec::with_capacity(entries.len()),
            importances: Vec::with_capacity(entries.len()),
            created: Vec::with_capacity(entries.len()),
            accessed: Vec::with_capacity(entries.len()),
            access_counts: Vec::with_capacity(entries.len()),
            metadata: Vec::with_capacity(entries.len()),
            doc_lens: Vec::with_capacity(entries.len()),
            post_ids: Vec::new(),
            post_terms: Vec::new(),
            post_tfs: Vec::new(),
            access_ids: accesses.iter().map(|a| id_i64(a.id)).collect(),
            access_counts_add: accesses.iter().map(|a| i64::from(a.count)).collect(),
            access_at: accesses.iter().map(|a| a.at.0).collect(),
        };
        let mut tf: FxHashMap<String, i32> = FxHashMap::default();
        for e in entries {
            // The same terms and lengths as the embedded keyword index, so that BM25 agrees.
            tf.clear();
            let mut len: i32 = 0;
            analyzer.for_each_term(&e.content, |t| {
                len = len.saturating_add(1);
                match tf.get_mut(t) {
                    Some(n) => *n += 1,
                    None => {
                        tf.insert(t.to_owned(), 1);
                    }
                }
            });
            for (term, n) in tf.drain() {
                p.post_ids.push(id_i64(e.id));
                p.post_terms.push(term);
                p.post_tfs.push(n);
            }
            p.ids.push(id_i64(e.id));
            p.agents.push(escape(&e.agent_id));
            p.sessions.push(escape(&e.session_id));
            p.roles.push(role_number(e.role));
            p.contents.push(escape(&e.content));
            p.embeddings
                .push(e.embedding.as_deref().map(|v| Vector::from(v.to_vec())));
            p.importances.push(e.importance());
            p.created.push(e.created_at.0);
            p.accessed.push(e.last_accessed_at.0);
            p.access_counts.push(i64::from(e.access_count));
            p.metadata.push(match &e.metadata {
                serde_json::Value::Null => None,
                v => Some(map_json(v.clone(), &escape)),
            });
            p.doc_lens.push(len);
        }
        p
    }
}

/// Filter parameters in the order of [`filter_sql`].
fn filter_params(f: &DocFilter) -> FilterParams {
    (
        f.session.as_deref().map(escape),
        f.role.map(role_number),
        f.since.map(|t| t.0),
        f.until.map(|t| t.0),
    )
}

impl PostgresStore {
    /// Connects, creates or migrates the store's schema, and checks its embedding dimension.
    /// The embedder is checked in the migration's transaction (see [`EmbedderCheck`]), so two
    /// instances opening a new store at once cannot both record theirs.
    pub fn open(
        pg: &PostgresConfig,
        config: &MemoryConfig,
        embedder: &EmbedderCheck,
    ) -> Result<PostgresStore> {
        migrate::check_schema_name(&pg.schema)?;
        let runtime = ServerRuntime::new("postgres")?;
        let hnsw = &config.search.hnsw;
        let options = [
            // Agent-filtered HNSW scans go on until they have k rows of the agent (see
            // `schema.sql`: with iterative scan off, a small agent got 1.6 of 10 rows).
            ("hnsw.iterative_scan", "relaxed_order".to_owned()),
            ("hnsw.ef_search", hnsw.ef_search.clamp(1, 1000).to_string()),
            // BM25's aggregation of common words' postings must not spill to disk.
            ("work_mem", "16MB".to_owned()),
        ];
        let pool = pool(pg, &options)?;
        let location = format!("{} (schema {})", describe_url(&pg.url), pg.schema);
        let shared = Arc::new(Shared {
            pool,
            sql: Statements::new(&pg.schema),
            bm25: (
                f64::from(config.search.bm25.k1),
                f64::from(config.search.bm25.b),
            ),
            connect_timeout: pg.connect_timeout,
            location,
            embedder: embedder.id.clone(),
        });
        let configured = config.search.bm25.analyzer;
        let (id_block_size, analyzer, step) = {
            let s = shared.clone();
            let schema = pg.schema.clone();
            let dim = config.embedding_dim;
            let embedder = embedder.clone();
            runtime
                .run(async move { migrate_store(&s, &schema, dim, configured, &embedder).await })?
        };
        if analyzer != configured {
            tracing::warn!(
                store = %shared.location,
                store_analyzer = ?analyzer,
                configured = ?configured,
                "the store's keyword terms were made by another analyzer; searching with the \
                 store's (a new store, or a re-import, takes the configured one)"
            );
        }
        if step.reembeds() {
            reembed(&runtime, &shared, &pg.schema, embedder)?;
        }
        Ok(PostgresStore {
            runtime,
            shared,
            analyzer,
            ids: Mutex::new(IdBlock::default()),
            id_block_size,
            sizes: Mutex::new(FxHashMap::default()),
            exact_below: EXACT_BELOW.max(hnsw.min_len as u64),
        })
    }

    fn run<T: Send + 'static>(
        &self,
        f: impl std::future::Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        self.runtime.run(f)
    }

    /// The agent's entry count, from a recent read or read now (with the generation).
    fn agent_size(&self, agent: &str) -> Result<u64> {
        if let Some((n, at)) = self.sizes.lock().get(agent) {
            if at.elapsed() < PLAN_TTL {
                return Ok(*n);
            }
        }
        Ok(self.generation_and_size(agent)?.1)
    }

    fn generation_and_size(&self, agent: &str) -> Result<(u64, u64)> {
        let s = self.shared.clone();
        let a = escape(agent);
        let (generation, size) = self.run(async move {
            with_client!(s, |c| async {
                let st = c.prepare_cached(&s.sql.generation).await?;
                let row = c.query_one(&st, &[&a]).await?;
                s.check_embedder(row.get::<_, Option<&str>>(2))?;
                let generation: Option<i64> = row.get(0);
                let size: Option<i64> = row.get(1);
                Ok((generation.unwrap_or(0), size.unwrap_or(0)))
            })
        })?;
        let size = u64::try_from(size).unwrap_or(0);
        let mut sizes = self.sizes.lock();
        if sizes.len() > 10_000 {
            sizes.clear();
        }
        sizes.insert(agent.to_owned(), (size, Instant::now()));
        Ok((u64::try_from(generation).unwrap_or(0), size))
    }

    /// Reserves `blocks` consecutive id blocks; the first id. Runs in its own committed
    /// transaction with a transaction id, so the reservation is durable before any id is used
    /// (see `schema.sql`, query id_block). Several blocks are taken under an advisory lock that
    /// single reservations take shared, so that they are consecutive; and checked so, since an
    /// instance of an older release takes its single blocks without the lock: blocks that are
    /// not consecutive are left unused (a gap) and the reservation is made again.
    fn reserve_blocks(&self, blocks: u64) -> Result<u64> {
        const ATTEMPTS: usize = 16;
        let s = self.shared.clone();
        let span = blocks.saturating_sub(1).saturating_mul(self.id_block_size);
        let first: Option<i64> = self.run(async move {
            with_client!(s, |c| async {
                for _ in 0..ATTEMPTS {
                    let tx = c.transaction().await?;
                    if blocks == 1 {
                        let st = tx.prepare_cached(&s.sql.id_block).await?;
                        let first = tx
                            .query_one(&st, &[&migrate::LOCK_KEY])
                            .await?
                            .get::<_, i64>(0);
                        tx.commit().await?;
                        return Ok(Some(first));
                    }
                    tx.execute(
                        "SELECT pg_advisory_xact_lock($1, 0), pg_current_xact_id()",
                        &[&migrate::LOCK_KEY],
                    )
                    .await?;
                    let st = tx.prepare_cached(&s.sql.id_blocks).await?;
                    let n = i64::try_from(blocks).unwrap_or(i64::MAX);
                    let row = tx.query_one(&st, &[&n]).await?;
                    let (first, last) = (row.get::<_, i64>(0), row.get::<_, i64>(1));
                    tx.commit().await?;
                    if u64::try_from(last - first).ok() == Some(span) {
                        return Ok(Some(first));
                    }
                    tracing::debug!(
                        blocks,
                        first,
                        last,
                        "id blocks not consecutive (taken by an instance without the lock): reserving again"
                    );
                }
                Ok(None)
            })
        })?;
        let Some(first) = first else {
            return Err(Error::Database {
                store: self.shared.location.clone(),
                source: Box::new(std::io::Error::other(format!(
                    "could not reserve {blocks} consecutive id blocks in {ATTEMPTS} attempts: \
                     instances of an older release take single blocks without the lock"
                ))),
            });
        };
        u64::try_from(first).map_err(|_| Error::IdsExhausted {
            store: self.shared.location.clone(),
        })
    }
}

/// How often an instance waiting for another's re-embedding asks for its lock.
const REEMBED_POLL: Duration = Duration::from_millis(200);

/// Re-embeds the store (see [`crate::store::embedder`]), one instance at a time: the others that
/// open with re-embedding meanwhile wait for it (a tracing event says so), then find it done.
/// The lock is a session advisory lock on a connection taken out of the pool, so it goes with
/// the connection, also when this process dies.
fn reembed(
    runtime: &ServerRuntime,
    shared: &Arc<Shared>,
    schema: &str,
    embedder: &EmbedderCheck,
) -> Result<()> {
    let (s, store, key) = (
        shared.clone(),
        format!("{schema}.store"),
        format!("{schema}.reembed"),
    );
    let (lock, recorded) = runtime.run(async move {
        let e = |err: tokio_postgres::Error| s.error(Failure::Query(err));
        let pooled = s
            .pool
            .get()
            .await
            .map_err(|err| s.error(Failure::Pool(err)))?;
        let client = deadpool_postgres::Object::take(pooled);
        // Polled, not waited for in a statement: the holder's REINDEX CONCURRENTLY waits for
        // every transaction under way to end, a waiting statement included (a deadlock that
        // no server sees, as the holder releases its lock only after the REINDEX).
        let take = "SELECT pg_try_advisory_lock($1, hashtext($2))";
        let mut waiting = false;
        loop {
            let free: bool = client
                .query_one(take, &[&migrate::REEMBED_LOCK_KEY, &key])
                .await
                .map_err(e)?
                .get(0);
            if free {
                break;
            }
            if !waiting {
                waiting = true;
                tracing::info!(
                    store = %s.location,
                    "waiting for another instance's re-embedding of the store to end"
                );
            }
            tokio::time::sleep(REEMBED_POLL).await;
        }
        let read = format!("SELECT embedder FROM {store}");
        let recorded: Option<String> = client.query_one(&read, &[]).await.map_err(e)?.get(0);
        Ok((client, recorded))
    })?;
    // What the store records now: another instance may have finished (or begun another) while
    // this one waited.
    let step = embedder.apply(&shared.location, recorded.as_deref())?;
    let mut rows = ServerVectors {
        runtime,
        shared,
        schema,
    };
    if let Some(record) = step.record() {
        rows.record(record)?;
    }
    if step.reembeds() {
        embedder.reembed(&shared.location, &mut rows)?;
    }
    // Closing the connection releases the lock.
    drop(lock);
    Ok(())
}

/// Re-embedding over the server's rows (see [`crate::store::embedder`] and `schema.sql`,
/// migration 5), under the lock [`reembed`] holds.
struct ServerVectors<'a> {
    runtime: &'a ServerRuntime,
    shared: &'a Arc<Shared>,
    schema: &'a str,
}

impl StoredVectors for ServerVectors<'_> {
    fn progress(&mut self) -> Result<Option<EntryId>> {
        let (s, sql) = (
            self.shared.clone(),
            format!("SELECT reembedded_through FROM {}.store", self.schema),
        );
        let through: Option<i64> = self.runtime.run(async move {
            with_client!(s, |c| async { Ok(c.query_one(&sql, &[]).await?.get(0)) })
        })?;
        Ok(through.and_then(|t| u64::try_from(t).ok()).map(EntryId))
    }

    fn count(&mut self) -> Result<u64> {
        let s = self.shared.clone();
        let n: i64 = self.runtime.run(async move {
            with_client!(s, |c| async {
                let st = c.prepare_cached(&s.sql.count_all).await?;
                Ok(c.query_one(&st, &[]).await?.get(0))
            })
        })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn contents_after(
        &mut self,
        after: Option<EntryId>,
        limit: usize,
    ) -> Result<Vec<(EntryId, String)>> {
        let s = self.shared.clone();
        let sql = format!(
            "SELECT id, content FROM {}.entries WHERE id > $1 ORDER BY id LIMIT $2",
            self.schema
        );
        let after = after.map_or(-1, |id| id.0 as i64);
        let limit = limit as i64;
        let rows = self.runtime.run(async move {
            with_client!(s, |c| async { Ok(c.query(&sql, &[&after, &limit]).await?) })
        })?;
        Ok(rows
            .iter()
            .map(|r| (EntryId(r.get::<_, i64>(0) as u64), r.get::<_, String>(1)))
            .collect())
    }

    fn write_vectors(&mut self, rows: &[(EntryId, Option<Vec<f32>>)]) -> Result<()> {
        let s = self.shared.clone();
        let sql = format!("SELECT {}.set_embeddings($1, $2)", self.schema);
        let ids: Vec<i64> = rows.iter().map(|(id, _)| id.0 as i64).collect();
        let vectors: Vec<Option<Vector>> = rows
            .iter()
            .map(|(_, v)| v.clone().map(Vector::from))
            .collect();
        self.runtime.run(async move {
            with_client!(s, |c| async {
                c.execute(&sql, &[&ids, &vectors]).await?;
                Ok(())
            })
        })
    }

    /// Every row was updated, so the HNSW index holds a dead version of each beside the live
    /// one, which searches walk through until a vacuum: rebuilt from the live rows, then the
    /// table vacuumed, as pgvector advises for HNSW (a vacuum alone repairs the graph slowly).
    fn tidy(&mut self) -> Result<()> {
        tracing::info!(
            store = %self.shared.location,
            "rebuilding the store's vector index after the re-embedding"
        );
        let s = self.shared.clone();
        let schema = self.schema.to_owned();
        self.runtime.run(async move {
            with_client!(s, |c| async {
                c.batch_execute(&format!(
                    "REINDEX INDEX CONCURRENTLY {schema}.entries_embedding_hnsw"
                ))
                .await?;
                c.batch_execute(&format!("VACUUM (ANALYZE) {schema}.entries"))
                    .await?;
                Ok(())
            })
        })
    }

    fn record(&mut self, value: &str) -> Result<()> {
        let s = self.shared.clone();
        let (schema, value) = (self.schema.to_owned(), value.to_owned());
        self.runtime.run(async move {
            with_client!(s, |c| async {
                let tx = c.transaction().await?;
                record_embedder(&tx, &schema, &value).await?;
                tx.commit().await?;
                Ok(())
            })
        })
    }
}

/// Records `value` (the store's embedder, or a re-embedding's mark) and forgets any
/// re-embedding's progress, in `tx` (committed by the caller), under the embedder lock taken
/// exclusively: the writes under way end first, and those after see the new record
/// (`schema.sql`, migration 6).
async fn record_embedder(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &str,
    value: &str,
) -> std::result::Result<(), tokio_postgres::Error> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&migrate::EMBEDDER_LOCK_KEY, &schema],
    )
    .await?;
    tx.execute(
        &format!("UPDATE {schema}.store SET embedder = $1, reembedded_through = NULL"),
        &[&value],
    )
    .await?;
    Ok(())
}

/// Creates or migrates the schema and checks the dimension; returns the id block size.
async fn migrate_store(
    s: &Shared,
    schema: &str,
    dim: usize,
    configured: Analyzer,
    embedder: &EmbedderCheck,
) -> Result<(u64, Analyzer, EmbedderStep)> {
    let mut client = s.pool.get().await.map_err(|e| s.error(Failure::Pool(e)))?;
    let e = |err: tokio_postgres::Error| s.error(Failure::Query(err));
    let installed = client
        .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'vector'", &[])
        .await
        .map_err(e)?
        .is_some();
    if !installed {
        let available = client
            .query_opt(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'",
                &[],
            )
            .await
            .map_err(e)?
            .is_some();
        if !available {
            return Err(server_error(
                &s.location,
                ServerProblem::MissingExtension("pgvector (vector)".into()),
                None,
            ));
        }
    }
    let tx = client.transaction().await.map_err(e)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&migrate::LOCK_KEY, &schema],
    )
    .await
    .map_err(e)?;
    let exists: bool = tx
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("{schema}.migrations")],
        )
        .await
        .map_err(e)?
        .get(0);
    let version: i64 = if exists {
        tx.query_one(
            &format!("SELECT coalesce(max(version), 0)::bigint FROM {schema}.migrations"),
            &[],
        )
        .await
        .map_err(e)?
        .get(0)
    } else {
        0
    };
    if version > migrate::LATEST_VERSION {
        return Err(Error::SchemaTooNew {
            store: s.location.clone(),
            found: version,
            supported: migrate::LATEST_VERSION,
        });
    }
    if version == 0 {
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, 0)",
            &[&migrate::EXTENSION_LOCK_KEY],
        )
        .await
        .map_err(e)?;
    }
    for m in migrate::pending(version, schema, dim) {
        tracing::info!(store = %s.location, version = m.version, "migrating");
        tx.batch_execute(&m.sql).await.map_err(e)?;
    }
    let stored: i32 = tx
        .query_one(&format!("SELECT embedding_dim FROM {schema}.store"), &[])
        .await
        .map_err(e)?
        .get(0);
    if usize::try_from(stored).ok() != Some(dim) {
        return Err(Error::StoreDimensionMismatch {
            store: s.location.clone(),
            stored: usize::try_from(stored).unwrap_or(0),
            configured: dim,
        });
    }
    let recorded: Option<String> = tx
        .query_one(&format!("SELECT embedder FROM {schema}.store"), &[])
        .await
        .map_err(e)?
        .get(0);
    let step = embedder.apply(&s.location, recorded.as_deref())?;
    // A re-embedding's mark is recorded by `reembed`, under the re-embedding lock: recorded
    // here, it would replace the mark of a re-embedding under way in another instance, whose
    // next batch would then count as this one's progress.
    if let EmbedderStep::Record(record) = &step {
        record_embedder(&tx, schema, record).await.map_err(e)?;
    }
    let block: i64 = tx
        .query_one(
            "SELECT increment_by FROM pg_sequences WHERE schemaname = $1 AND sequencename = 'entry_id_blocks'",
            &[&schema],
        )
        .await
        .map_err(e)?
        .get(0);
    let code = i16::from(configured.code());
    tx.execute(
        &format!(
            "UPDATE {schema}.store SET analyzer = $1 \
             WHERE analyzer <> $1 AND NOT EXISTS (SELECT 1 FROM {schema}.entries)"
        ),
        &[&code],
    )
    .await
    .map_err(e)?;
    let stored: i16 = tx
        .query_one(&format!("SELECT analyzer FROM {schema}.store"), &[])
        .await
        .map_err(e)?
        .get(0);
    tx.commit().await.map_err(e)?;
    let analyzer = u8::try_from(stored)
        .ok()
        .and_then(Analyzer::from_code)
        .ok_or_else(|| Error::Corrupt {
            store: s.location.clone(),
            detail: format!("keyword analyzer {stored}, unknown to this build"),
        })?;
    let block = u64::try_from(block)
        .ok()
        .filter(|b| *b > 0)
        .ok_or_else(|| Error::Corrupt {
            store: s.location.clone(),
            detail: format!("id block size {block}"),
        })?;
    Ok((block, analyzer, step))
}

/// A BM25 request, its parameters ready to move into a future.
struct KeywordRequest {
    agent: String,
    terms: Vec<String>,
    k: i32,
    plan: KeywordPlan,
}

/// Which BM25 statement answers a request.
enum KeywordPlan {
    /// `bm25_scores`: every entry holding a query term, for a small agent.
    Scan,
    /// `bm25_top_k`: pruned by the rarer terms, for a large agent.
    Pruned,
    /// `bm25_filtered`, with the filter's parameters.
    Filtered(FilterParams),
}

/// A `DocFilter` as statement parameters: session, role, since, until.
type FilterParams = (Option<String>, Option<i16>, Option<i64>, Option<i64>);

impl KeywordRequest {
    /// The ranking, best first, with each candidate's similarity to `qv` when given (`None`
    /// for one without a vector, and for every candidate without `qv`).
    async fn run(
        &self,
        s: &Shared,
        qv: Option<&Vector>,
    ) -> Result<Vec<(EntryId, f32, Option<f32>)>> {
        type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);
        let (k1, b) = s.bm25;
        let k = self.k;
        // bm25_top_k takes k as an integer, the scans' LIMIT a bigint.
        let limit = i64::from(k);
        let rows = with_client!(s, |c| async {
            let sql = &s.sql;
            let (statement, with_sim) = match &self.plan {
                KeywordPlan::Scan => (&sql.bm25_scores, &sql.bm25_scores_sim),
                KeywordPlan::Pruned => (&sql.bm25_top_k, &sql.bm25_top_k_sim),
                KeywordPlan::Filtered(_) => (&sql.bm25_filtered, &sql.bm25_filtered_sim),
            };
            let st = c
                .prepare_cached(if qv.is_some() { with_sim } else { statement })
                .await?;
            let k: Param = match self.plan {
                KeywordPlan::Pruned => &k,
                _ => &limit,
            };
            let mut params: Vec<Param> = vec![&self.agent, &self.terms, k, &k1, &b];
            if let KeywordPlan::Filtered(f) = &self.plan {
                params.extend([&f.0 as Param, &f.1, &f.2, &f.3]);
            }
            if let Some(qv) = qv {
                params.push(qv);
            }
            let rows = c.query(&st, &params).await?;
            Ok(rows
                .iter()
                .map(|r| {
                    let sim: Option<f32> = if qv.is_some() { r.get(2) } else { None };
                    (r.get::<_, i64>(0), r.get::<_, f64>(1), sim)
                })
                .collect::<Vec<_>>())
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, score, sim)| (EntryId(u64::try_from(id).unwrap_or(0)), score as f32, sim))
            .collect())
    }
}

/// A cosine request, its parameters ready to move into a future.
struct VectorRequest {
    agent: String,
    qv: Vector,
    k: i64,
    exact: bool,
    filter: FilterParams,
}

impl VectorRequest {
    /// The ranking, best first.
    async fn run(&self, s: &Shared) -> Result<Ranking> {
        let f = &self.filter;
        let rows: Vec<(i64, f32)> = with_client!(s, |c| async {
            let sql = if self.exact {
                &s.sql.vector_exact
            } else {
                &s.sql.vector_hnsw
            };
            let st = c.prepare_cached(sql).await?;
            let rows = c
                .query(
                    &st,
                    &[&self.agent, &self.qv, &self.k, &f.0, &f.1, &f.2, &f.3],
                )
                .await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })?;
        let mut ranking: Ranking = rows
            .into_iter()
            .map(|(id, sim)| (EntryId(u64::try_from(id).unwrap_or(0)), sim))
            .collect();
        sort_ranking(&mut ranking);
        Ok(ranking)
    }
}

impl PostgresStore {
    /// The BM25 request for `text`; `None` when it has no terms or `k` is 0.
    fn keyword_request(
        &self,
        agent: &str,
        text: &str,
        k: usize,
        filter: &DocFilter,
    ) -> Result<Option<KeywordRequest>> {
        let terms = query_terms(self.analyzer, text);
        if terms.is_empty() || k == 0 {
            return Ok(None);
        }
        let plan = if !filter.is_empty() {
            KeywordPlan::Filtered(filter_params(filter))
        } else if self.agent_size(agent)? >= PRUNED_FROM {
            KeywordPlan::Pruned
        } else {
            KeywordPlan::Scan
        };
        Ok(Some(KeywordRequest {
            agent: escape(agent),
            terms,
            k: i32::try_from(k).unwrap_or(i32::MAX),
            plan,
        }))
    }

    /// The cosine request for `q`, exact for a small agent; `None` when `k` is 0.
    fn vector_request(
        &self,
        agent: &str,
        q: &[f32],
        k: usize,
        exact: bool,
        filter: &DocFilter,
    ) -> Result<Option<VectorRequest>> {
        if k == 0 {
            return Ok(None);
        }
        // Read also for an exact request: the read checks the store's embedder (at most a
        // second old), which a search that skips the query cache reads nowhere else.
        let small = self.agent_size(agent)? < self.exact_below;
        Ok(Some(VectorRequest {
            exact: exact || small,
            agent: escape(agent),
            qv: Vector::from(q.to_vec()),
            k: i64::try_from(k).unwrap_or(i64::MAX),
            filter: filter_params(filter),
        }))
    }
}

impl LongTermStore for PostgresStore {
    fn location(&self) -> &str {
        &self.shared.location
    }

    fn ids_at_hand(&self, n: u64) -> bool {
        let ids = self.ids.lock();
        ids.end - ids.next >= n
    }

    fn allocate_ids(&self, n: u64) -> Result<u64> {
        let mut ids = self.ids.lock();
        if ids.end - ids.next >= n {
            let first = ids.next;
            ids.next += n;
            return Ok(first);
        }
        let blocks = n.div_ceil(self.id_block_size).max(1);
        let first = self.reserve_blocks(blocks)?;
        let end = first
            .checked_add(blocks * self.id_block_size)
            .filter(|e| *e <= i64::MAX as u64)
            .ok_or_else(|| Error::IdsExhausted {
                store: self.shared.location.clone(),
            })?;
        *ids = IdBlock {
            next: first + n,
            end,
        };
        Ok(first)
    }

    fn insert(&self, entries: &[MemoryEntry], accesses: &[AccessRecord]) -> Result<Vec<bool>> {
        if entries.is_empty() && accesses.is_empty() {
            return Ok(Vec::new());
        }
        let s = self.shared.clone();
        let params = InsertParams::new(entries, accesses, self.analyzer);
        let asked: Vec<(i64, String, String)> = entries
            .iter()
            .map(|e| (id_i64(e.id), escape(&e.agent_id), escape(&e.content)))
            .collect();
        // The access counts riding along are applied once whatever the attempts (migration 7).
        let token = access_token();
        self.run(async move {
            // Safe to repeat: an entry whose first commit went through is skipped by id, and
            // the access counts by the token.
            let inserted: Vec<i64> = with_client!(s, |c| async {
                let p = &params;
                let tx = c.transaction().await?;
                let st = tx.prepare_cached(&s.sql.insert).await?;
                // The store's embedder, read under the embedder lock, which is held until the
                // commit: a refused write is rolled back with `tx`.
                let row = tx
                    .query_one(
                        &st,
                        &[
                            &p.ids,
                            &p.agents,
                            &p.sessions,
                            &p.roles,
                            &p.contents,
                            &p.embeddings,
                            &p.importances,
                            &p.created,
                            &p.accessed,
                            &p.access_counts,
                            &p.metadata,
                            &p.doc_lens,
                            &p.post_ids,
                            &p.post_terms,
                            &p.post_tfs,
                        ],
                    )
                    .await?;
                s.check_embedder(row.get::<_, Option<&str>>(0))?;
                if !p.access_ids.is_empty() {
                    let st = tx.prepare_cached(&s.sql.record_access).await?;
                    tx.execute(
                        &st,
                        &[&token, &p.access_ids, &p.access_counts_add, &p.access_at],
                    )
                    .await?;
                }
                tx.commit().await?;
                Ok(row.get::<_, Vec<i64>>(1))
            })?;
            let inserted: rustc_hash::FxHashSet<i64> = inserted.into_iter().collect();
            let flags: Vec<bool> = asked
                .iter()
                .map(|(id, _, _)| inserted.contains(id))
                .collect();
            // Ids not inserted are stored already: the same entry (a retried write) is fine,
            // another entry under the id is a conflict.
            let skipped: Vec<i64> = asked
                .iter()
                .filter(|(id, _, _)| !inserted.contains(id))
                .map(|(id, _, _)| *id)
                .collect();
            if !skipped.is_empty() {
                let stored: Vec<(i64, String, String)> = with_client!(s, |c| async {
                    let st = c.prepare_cached(&s.sql.conflicts).await?;
                    let rows = c.query(&st, &[&skipped]).await?;
                    Ok(rows
                        .iter()
                        .map(|r| (r.get(0), r.get(1), r.get(2)))
                        .collect())
                })?;
                for (id, agent, content) in stored {
                    let same = asked
                        .iter()
                        .any(|(i, a, c)| *i == id && *a == agent && *c == content);
                    if !same {
                        return Err(Error::IdConflict {
                            store: s.location.clone(),
                            id: EntryId(u64::try_from(id).unwrap_or(0)),
                        });
                    }
                }
            }
            Ok(flags)
        })
    }

    fn record_access(&self, accesses: &[AccessRecord]) -> Result<()> {
        if accesses.is_empty() {
            return Ok(());
        }
        let s = self.shared.clone();
        let ids: Vec<i64> = accesses.iter().map(|a| id_i64(a.id)).collect();
        let counts: Vec<i64> = accesses.iter().map(|a| i64::from(a.count)).collect();
        let at: Vec<i64> = accesses.iter().map(|a| a.at.0).collect();
        // Safe to repeat after a lost connection: a repeat of a write that went through finds
        // its token claimed and adds nothing (migration 7).
        let token = access_token();
        self.run(async move {
            with_client!(s, |c| async {
                let st = c.prepare_cached(&s.sql.record_access).await?;
                c.execute(&st, &[&token, &ids, &counts, &at]).await?;
                Ok(())
            })
        })
    }

    fn delete(&self, agent: &str, id: EntryId) -> Result<bool> {
        let s = self.shared.clone();
        let agent = escape(agent);
        let ids = vec![id_i64(id)];
        self.run(async move {
            // Safe to repeat; a repeat after a lost connection whose first attempt committed
            // reports the entry as already gone.
            let deleted: Vec<i64> = with_client!(s, |c| async {
                let st = c.prepare_cached(&s.sql.delete).await?;
                Ok(c.query_one(&st, &[&agent, &ids]).await?.get(0))
            })?;
            Ok(!deleted.is_empty())
        })
    }

    fn get(&self, agent: &str, id: EntryId) -> Result<Option<MemoryEntry>> {
        Ok(self.get_many(agent, &[id])?.into_iter().next())
    }

    fn get_many(&self, agent: &str, ids: &[EntryId]) -> Result<Vec<MemoryEntry>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let s = self.shared.clone();
        let agent = escape(agent);
        let asked: Vec<i64> = ids.iter().map(|&i| id_i64(i)).collect();
        self.run(async move {
            let rows = with_client!(s, |c| async {
                let st = c.prepare_cached(&s.sql.select_by_ids).await?;
                let rows = c.query(&st, &[&agent, &asked]).await?;
                rows.iter()
                    .map(entry_of)
                    .collect::<std::result::Result<Vec<_>, _>>()
            })
            .map_err(|e| locate(e, &s.location))?;
            let mut by_id: FxHashMap<i64, MemoryEntry> =
                rows.into_iter().map(|e| (id_i64(e.id), e)).collect();
            Ok(asked.iter().filter_map(|id| by_id.remove(id)).collect())
        })
    }

    fn list(&self, agent: &str, query: &ListQuery) -> Result<Vec<MemoryEntry>> {
        let s = self.shared.clone();
        let agent = escape(agent);
        let q = query.clone();
        self.run(async move {
            with_client!(s, |c| async {
                let st = c.prepare_cached(&s.sql.list).await?;
                let limit = q
                    .limit
                    .map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
                let rows = c
                    .query(
                        &st,
                        &[
                            &agent,
                            &q.session.as_deref().map(escape),
                            &q.since.map(|t| t.0),
                            &q.until.map(|t| t.0),
                            &limit,
                        ],
                    )
                    .await?;
                rows.iter()
                    .map(entry_of)
                    .collect::<std::result::Result<Vec<_>, _>>()
            })
            .map_err(|e| locate(e, &s.location))
        })
    }

    fn count(&self, agent: &str) -> Result<u64> {
        let s = self.shared.clone();
        let agent = escape(agent);
        let n: i64 = self.run(async move {
            with_client!(s, |c| async {
                let st = c.prepare_cached(&s.sql.count).await?;
                Ok(c.query_opt(&st, &[&agent]).await?.map_or(0, |r| r.get(0)))
            })
        })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn count_all(&self) -> Result<u64> {
        let s = self.shared.clone();
        let n: i64 = self.run(async move {
            with_client!(s, |c| async {
                let st = c.prepare_cached(&s.sql.count_all).await?;
                Ok(c.query_one(&st, &[]).await?.get(0))
            })
        })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn keyword(&self, agent: &str, text: &str, k: usize, filter: &DocFilter) -> Result<Ranking> {
        let Some(request) = self.keyword_request(agent, text, k, filter)? else {
            return Ok(Vec::new());
        };
        let s = self.shared.clone();
        let rows = self.run(async move { request.run(&s, None).await })?;
        Ok(rows.into_iter().map(|(id, score, _)| (id, score)).collect())
    }

    fn vector(
        &self,
        agent: &str,
        q: &[f32],
        k: usize,
        exact: bool,
        filter: &DocFilter,
    ) -> Result<Ranking> {
        let Some(request) = self.vector_request(agent, q, k, exact, filter)? else {
            return Ok(Vec::new());
        };
        let s = self.shared.clone();
        self.run(async move { request.run(&s).await })
    }

    /// The keyword and vector requests on two connections at once, the keyword one bringing
    /// its candidates' similarities: one round trip's wait instead of three.
    fn hybrid_candidates(
        &self,
        agent: &str,
        text: &str,
        q: &[f32],
        k: usize,
        filter: &DocFilter,
    ) -> Result<HybridCandidates> {
        let keyword = self.keyword_request(agent, text, k, filter)?;
        let vector = self.vector_request(agent, q, k, false, filter)?;
        let s = self.shared.clone();
        let (keyword, vector) = self.run(async move {
            let keyword = async {
                match (&keyword, &vector) {
                    // The query vector of the vector request (there is one whenever k > 0).
                    (Some(r), Some(v)) => r.run(&s, Some(&v.qv)).await,
                    (Some(r), None) => r.run(&s, None).await,
                    (None, _) => Ok(Vec::new()),
                }
            };
            let vector = async {
                match &vector {
                    Some(r) => r.run(&s).await,
                    None => Ok(Vec::new()),
                }
            };
            tokio::try_join!(keyword, vector)
        })?;
        let keyword_similarities = keyword
            .iter()
            .filter_map(|&(id, _, sim)| Some((id, sim?)))
            .collect();
        Ok(HybridCandidates {
            keyword: keyword
                .into_iter()
                .map(|(id, score, _)| (id, score))
                .collect(),
            vector,
            keyword_similarities: Some(keyword_similarities),
        })
    }

    fn keyword_scores(&self, agent: &str, text: &str, ids: &[EntryId]) -> Result<Ranking> {
        let terms = query_terms(self.analyzer, text);
        if ids.is_empty() || terms.is_empty() {
            return Ok(Vec::new());
        }
        let s = self.shared.clone();
        let agent = escape(agent);
        let ids: Vec<i64> = ids.iter().map(|&i| id_i64(i)).collect();
        let rows: Vec<(i64, f64)> = self.run(async move {
            let (k1, b) = s.bm25;
            with_client!(s, |c| async {
                let st = c.prepare_cached(&s.sql.bm25_of_ids).await?;
                let rows = c.query(&st, &[&agent, &terms, &k1, &b, &ids]).await?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            })
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, score)| (EntryId(u64::try_from(id).unwrap_or(0)), score as f32))
            .collect())
    }

    fn similarities(&self, agent: &str, q: &[f32], ids: &[EntryId]) -> Result<Ranking> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let s = self.shared.clone();
        let agent = escape(agent);
        let qv = Vector::from(q.to_vec());
        let ids: Vec<i64> = ids.iter().map(|&i| id_i64(i)).collect();
        let rows: Vec<(i64, f32)> = self.run(async move {
            with_client!(s, |c| async {
                let st = c.prepare_cached(&s.sql.similarities).await?;
                let rows = c.query(&st, &[&agent, &qv, &ids]).await?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            })
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, sim)| (EntryId(u64::try_from(id).unwrap_or(0)), sim))
            .collect())
    }

    fn max_similarity(&self, agent: &str, v: &[f32]) -> Result<Option<f32>> {
        Ok(self
            .vector(agent, v, 1, false, &DocFilter::default())?
            .first()
            .map(|h| h.1))
    }

    fn generation(&self, agent: &str) -> Result<Option<u64>> {
        Ok(Some(self.generation_and_size(agent)?.0))
    }

    fn check_integrity(&self) -> Result<IntegrityReport> {
        let s = self.shared.clone();
        let bad: Vec<(String, i64, i64)> = self.run(async move {
            with_client!(s, |c| async {
                let rows = c.query(&s.sql.integrity, &[]).await?;
                Ok(rows
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2)))
                    .collect())
            })
        })?;
        if let Some((agent, counted, stored)) = bad.first() {
            return Err(Error::Corrupt {
                store: self.shared.location.clone(),
                detail: format!(
                    "agent {agent:?} is recorded with {counted} entries but {stored} are stored \
                     ({} agents differ)",
                    bad.len()
                ),
            });
        }
        Ok(IntegrityReport::default())
    }

    fn disk_bytes(&self) -> u64 {
        0
    }

    fn checkpoint(&self) -> Result<()> {
        Ok(())
    }

    fn wait_for_indexing(&self) {}

    fn pending_index_links(&self) -> usize {
        0
    }

    fn index_heap_bytes(&self) -> usize {
        0
    }
}

/// Puts the store's location into a corrupt-row error raised while decoding.
fn locate(e: Error, location: &str) -> Error {
    match e {
        Error::Corrupt { store, detail } if store.is_empty() => Error::Corrupt {
            store: location.to_owned(),
            detail,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_with_nul_and_the_escape_character_round_trips() {
        for s in [
            "",
            "plain",
            "nul\0byte",
            "\0",
            "\u{10FFFF}",
            "a\u{10FFFF}0b\0\u{10FFFF}\u{10FFFF}",
        ] {
            let e = escape(s);
            assert!(!e.contains('\0'), "{s:?}");
            assert_eq!(unescape(&e), s);
        }
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn json_strings_are_mapped_everywhere_and_the_shape_is_kept() {
        let v = serde_json::json!({"a\0": ["x\0", null, 1, {"k": "v\0"}, []], "n": null, "e": {}});
        let escaped = map_json(v.clone(), &escape);
        assert!(!escaped.to_string().contains("\\u0000"), "{escaped}");
        assert_eq!(map_json(escaped, &unescape), v);
        let deep = (0..64).fold(serde_json::json!("\0"), |acc, _| serde_json::json!([acc]));
        assert_eq!(map_json(map_json(deep.clone(), &escape), &unescape), deep);
    }

    /// The server of the tests below, from `MEMORY_CORE_POSTGRES_URL`; `None` (said on stderr)
    /// when it is unset, unless `MEMORY_CORE_REQUIRE_SERVERS=1` makes that a failure.
    fn server_url(test: &str) -> Option<String> {
        let url = std::env::var("MEMORY_CORE_POSTGRES_URL")
            .ok()
            .filter(|u| !u.trim().is_empty());
        if url.is_none() {
            assert!(
                std::env::var("MEMORY_CORE_REQUIRE_SERVERS").as_deref() != Ok("1"),
                "MEMORY_CORE_REQUIRE_SERVERS=1 but MEMORY_CORE_POSTGRES_URL is unset"
            );
            eprintln!("note: {test} skipped: MEMORY_CORE_POSTGRES_URL unset");
        }
        url
    }

    #[test]
    fn single_and_multi_block_id_reservations_at_once_never_overlap() {
        let Some(url) = server_url("single_and_multi_block_id_reservations_at_once_never_overlap")
        else {
            return;
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let pg =
            PostgresConfig::new(url).with_schema(format!("t_ids_{}_{nanos:x}", std::process::id()));
        let config = MemoryConfig {
            embedding_dim: 8,
            ..MemoryConfig::default()
        };
        use crate::embed::Embedder;
        use crate::store::embedder::OnEmbedderChange;
        let embedder = Arc::new(crate::HashingEmbedder::new(8).unwrap());
        let check = EmbedderCheck {
            id: embedder.id(),
            embedder,
            dim: 8,
            on_change: OnEmbedderChange::Refuse,
        };
        let (a, b, old) = (
            PostgresStore::open(&pg, &config, &check).unwrap(),
            PostgresStore::open(&pg, &config, &check).unwrap(),
            PostgresStore::open(&pg, &config, &check).unwrap(),
        );
        let size = a.id_block_size;
        // Three instances: one takes eight blocks at a time, one a block at a time, and one
        // of an older release a block at a time without the lock, as fast as they can; every
        // range must be its taker's alone.
        let unlocked = format!("SELECT nextval('{}.entry_id_blocks')", pg.schema);
        let take_unlocked = || -> u64 {
            let (s, sql) = (old.shared.clone(), unlocked.clone());
            let first: i64 = old
                .run(async move {
                    with_client!(s, |c| async {
                        Ok(c.query_one(&sql, &[]).await?.get::<_, i64>(0))
                    })
                })
                .unwrap();
            u64::try_from(first).unwrap()
        };
        let done = std::sync::atomic::AtomicBool::new(false);
        let mut ranges: Vec<(u64, u64)> = std::thread::scope(|s| {
            let many = s.spawn(|| {
                let out: Vec<_> = (0..2000)
                    .map(|_| {
                        let first = a.reserve_blocks(8).unwrap();
                        (first, first + 8 * size)
                    })
                    .collect();
                done.store(true, std::sync::atomic::Ordering::Relaxed);
                out
            });
            let one = s.spawn(|| {
                let mut out = Vec::new();
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let first = b.reserve_blocks(1).unwrap();
                    out.push((first, first + size));
                }
                out
            });
            let unlocked = s.spawn(|| {
                let mut out = Vec::new();
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let first = take_unlocked();
                    out.push((first, first + size));
                }
                out
            });
            let mut all = one.join().unwrap();
            all.extend(unlocked.join().unwrap());
            all.extend(many.join().unwrap());
            all
        });
        drop((a, b, old));
        pg.destroy_store().unwrap();
        ranges.sort_unstable();
        for pair in ranges.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "id ranges {:?} and {:?} overlap",
                pair[0],
                pair[1]
            );
        }
    }

    /// A connection of its own to `url`, outside any store's pool, with a runtime of its own:
    /// for statements and transactions the tests hold open beside the store.
    struct Raw {
        runtime: tokio::runtime::Runtime,
        client: tokio_postgres::Client,
    }

    impl Raw {
        fn connect(url: &str) -> Raw {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let client = runtime.block_on(async {
                let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                client
            });
            Raw { runtime, client }
        }

        fn exec(&self, sql: &str) {
            self.runtime
                .block_on(self.client.batch_execute(sql))
                .unwrap_or_else(|e| panic!("{sql}: {}", server_message_of(&e)));
        }

        fn rows(&self, sql: &str) -> Vec<Row> {
            self.runtime
                .block_on(self.client.query(sql, &[]))
                .unwrap_or_else(|e| panic!("{sql}: {}", server_message_of(&e)))
        }

        /// (id, count, last access) of each row of the schema's `access` table.
        fn access_rows(&self, schema: &str) -> Vec<(i64, i64, i64)> {
            self.rows(&format!(
                "SELECT id, count, last_at FROM {schema}.access ORDER BY id"
            ))
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
        }
    }

    fn server_message_of(e: &tokio_postgres::Error) -> String {
        e.as_db_error()
            .map_or_else(|| e.to_string(), server_message)
    }

    /// A schema name no other test (or test process) uses.
    fn unique_schema(prefix: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        format!("{prefix}_{}_{nanos:x}", std::process::id())
    }

    /// Opens the store of `pg` with 8-dimensional vectors and the hashing embedder.
    fn open_store(pg: &PostgresConfig) -> PostgresStore {
        use crate::embed::Embedder;
        use crate::store::embedder::OnEmbedderChange;
        let config = MemoryConfig {
            embedding_dim: 8,
            ..MemoryConfig::default()
        };
        let embedder = Arc::new(crate::HashingEmbedder::new(8).unwrap());
        let check = EmbedderCheck {
            id: embedder.id(),
            embedder,
            dim: 8,
            on_change: OnEmbedderChange::Refuse,
        };
        PostgresStore::open(pg, &config, &check).unwrap()
    }

    fn access(id: u64, count: u32, at: i64) -> AccessRecord {
        AccessRecord {
            id: EntryId(id),
            count,
            at: Timestamp(at),
        }
    }

    /// (retrieval count, last access) of entry `id` of agent `a`, by `get` and by `list`.
    fn counts(store: &PostgresStore, id: u64) -> (u32, i64) {
        let e = store.get("a", EntryId(id)).unwrap().unwrap();
        let listed = store.list("a", &ListQuery::default()).unwrap();
        let l = listed.iter().find(|l| l.id == EntryId(id)).unwrap();
        assert_eq!(
            (l.access_count, l.last_accessed_at),
            (e.access_count, e.last_accessed_at),
            "list and get disagree"
        );
        (e.access_count, e.last_accessed_at.0)
    }

    /// A store written by version 7 kept its retrieval counts in the entries' rows; migrated to
    /// version 8, they stay there as the base, and counts recorded afterwards go to the narrow
    /// `access` table and add to them, also after a reopen.
    #[test]
    fn counts_of_a_version_7_store_stay_and_those_recorded_after_migrating_add_to_them() {
        let Some(url) = server_url(
            "counts_of_a_version_7_store_stay_and_those_recorded_after_migrating_add_to_them",
        ) else {
            return;
        };
        let schema = unique_schema("t_v7");
        let raw = Raw::connect(&url);
        // The schema as a build of version 7 made it, with two entries, one retrieved twice.
        let mut v7 = String::from("BEGIN;\n");
        for m in migrate::pending(0, &schema, 8) {
            if m.version <= 7 {
                v7.push_str(&m.sql);
            }
        }
        v7.push_str(&format!(
            "SELECT {schema}.insert_entries(ARRAY[1, 2]::bigint[], ARRAY['a', 'a'], \
               ARRAY['s', 's'], ARRAY[0, 0]::smallint[], ARRAY['older entry', 'plain entry'], \
               ARRAY[NULL, NULL]::vector[], ARRAY[0.5, 0.5]::real[], ARRAY[10, 10]::bigint[], \
               ARRAY[10, 10]::bigint[], ARRAY[0, 0]::bigint[], ARRAY[NULL, NULL]::jsonb[], \
               ARRAY[2, 2], ARRAY[1, 1, 2, 2]::bigint[], \
               ARRAY['older', 'entry', 'plain', 'entry'], ARRAY[1, 1, 1, 1]);
             SELECT {schema}.record_access_once(7, ARRAY[1]::bigint[], ARRAY[2]::bigint[], \
               ARRAY[100]::bigint[]);
             COMMIT;"
        ));
        raw.exec(&v7);
        let pg = PostgresConfig::new(url.clone()).with_schema(schema.clone());
        let store = open_store(&pg);
        let versions: Vec<i32> = raw
            .rows(&format!(
                "SELECT version FROM {schema}.migrations ORDER BY version"
            ))
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(versions, (1..=8).collect::<Vec<_>>());
        assert_eq!(counts(&store, 1), (2, 100), "version 7's counts are kept");
        assert_eq!(counts(&store, 2), (0, 10));
        // An earlier time than the base's does not go back.
        store
            .record_access(&[access(1, 1, 200), access(2, 3, 5)])
            .unwrap();
        assert_eq!(counts(&store, 1), (3, 200));
        assert_eq!(counts(&store, 2), (3, 10));
        let base: Vec<(i64, i64)> = raw
            .rows(&format!(
                "SELECT access_count, last_accessed_at FROM {schema}.entries ORDER BY id"
            ))
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(
            base,
            [(2, 100), (0, 10)],
            "the base columns are not written"
        );
        assert_eq!(raw.access_rows(&schema), [(1, 1, 200), (2, 3, 5)]);
        drop(store);
        let store = open_store(&pg);
        assert_eq!(counts(&store, 1), (3, 200));
        // Riding along with an insert as well; the sum stops at u32::MAX.
        let mut third = MemoryEntry::for_test(3, "third entry", None);
        third.access_count = u32::MAX - 1;
        store
            .insert(&[third], &[access(1, 1, 300), access(3, 5, 300)])
            .unwrap();
        assert_eq!(counts(&store, 1), (4, 300));
        assert_eq!(counts(&store, 3), (u32::MAX, 300));
        drop(store);
        pg.destroy_store().unwrap();
    }

    /// A write-back that counts an entry and a delete of that entry, at the same time: whichever
    /// goes first, no row of `access` is left for the deleted id (a row left behind would be
    /// read by nothing, and take space forever).
    #[test]
    fn a_write_back_beside_a_delete_of_its_entry_leaves_no_counts_behind_in_either_order() {
        let Some(url) = server_url(
            "a_write_back_beside_a_delete_of_its_entry_leaves_no_counts_behind_in_either_order",
        ) else {
            return;
        };
        let schema = unique_schema("t_acc");
        let pg = PostgresConfig::new(url.clone()).with_schema(schema.clone());
        let store = open_store(&pg);
        let entries: Vec<MemoryEntry> = (1..=4)
            .map(|i| MemoryEntry::for_test(i, &format!("entry {i}"), None))
            .collect();
        store.insert(&entries, &[]).unwrap();
        // Entry 3 has a row already (its next count updates it), the others have none.
        store.record_access(&[access(3, 1, 10)]).unwrap();
        let (a, b) = (Raw::connect(&url), Raw::connect(&url));
        let record = |token: i64, id: i64| {
            format!(
                "SELECT {schema}.record_access_once({token}, ARRAY[{id}]::bigint[], \
                 ARRAY[1]::bigint[], ARRAY[20]::bigint[])"
            )
        };
        let delete =
            |id: i64| format!("SELECT {schema}.delete_entries('a', ARRAY[{id}]::bigint[])");
        // `first` runs `held` in a transaction left open; `second` runs `waiting` meanwhile,
        // which must wait for that transaction, and ends once it commits.
        let race = |first: &Raw, held: String, second: &Raw, waiting: String| {
            first.exec(&format!("BEGIN; {held}"));
            std::thread::scope(|s| {
                let (tx, rx) = std::sync::mpsc::channel();
                s.spawn(move || {
                    second.exec(&waiting);
                    tx.send(()).unwrap();
                });
                assert!(
                    rx.recv_timeout(Duration::from_millis(300)).is_err(),
                    "the second statement did not wait for the first transaction"
                );
                first.exec("COMMIT");
                rx.recv_timeout(Duration::from_secs(10)).unwrap();
            });
        };
        // The write-back first: it made entry 1's row and holds the entry; the delete waits
        // for its commit, then takes the row along.
        race(&a, record(101, 1), &b, delete(1));
        // The delete first: the write-back waits for its commit, then finds entry 2 gone.
        race(&b, delete(2), &a, record(102, 2));
        // Entry 3's row updated by the write-back: the delete of the row waits for it.
        race(&a, record(103, 3), &b, delete(3));
        assert_eq!(raw_ids(&a, &schema), [4], "entries left");
        assert_eq!(a.access_rows(&schema), [], "rows of deleted entries");
        // Counts for the deleted ids, or for an id never stored, make no row.
        store
            .record_access(&[access(1, 1, 30), access(3, 1, 30), access(99, 1, 30)])
            .unwrap();
        store.record_access(&[access(4, 2, 30)]).unwrap();
        assert_eq!(a.access_rows(&schema), [(4, 2, 30)]);
        drop(store);
        pg.destroy_store().unwrap();
    }

    fn raw_ids(raw: &Raw, schema: &str) -> Vec<i64> {
        raw.rows(&format!("SELECT id FROM {schema}.entries ORDER BY id"))
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    #[test]
    fn printed_configs_hide_passwords() {
        let c = PostgresConfig::new("postgres://app:hunter2@db.example:6543/mem");
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("app@db.example:6543/mem"), "{shown}");
        let kv = PostgresConfig::new("host=h port=1 user=u password=hunter2 dbname=d");
        assert!(!format!("{kv:?}").contains("hunter2"));
    }
}
