//! The one error type of memory-core. Every variant says what was wrong and with which input, so
//! a caller can show it to a user or match on it; nothing a user passes in ever panics.

use std::path::PathBuf;

/// The source of a storage error, boxed so that no backend's error type is part of the API.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in memory-core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An embedding (stored or query) whose length is not the store's configured dimension.
    #[error("embedding has {actual} dimensions, but this store is configured for {expected}")]
    DimensionMismatch { expected: usize, actual: usize },

    /// An embedding (stored or query) holding NaN or an infinity.
    #[error("embedding value at index {index} is not finite ({value})")]
    NonFiniteEmbedding { index: usize, value: f32 },

    /// An embedding whose every component is zero: it has no direction to compare.
    #[error("embedding is all zeros; it cannot be normalized for cosine similarity")]
    ZeroEmbedding,

    /// An embedding whose normalized form is not unit length (kept as a safety net: every
    /// finite, non-zero vector normalizes).
    #[error("embedding could not be normalized (squared norm {squared_norm} after scaling)")]
    EmbeddingNotNormalizable { squared_norm: f32 },

    /// Importance must lie in [0, 1].
    #[error("importance {0} is outside [0, 1]")]
    ImportanceOutOfRange(f32),

    /// Agent ids and session ids must be non-empty.
    #[error("{field} must not be empty")]
    EmptyId { field: &'static str },

    /// An id longer than the store accepts.
    #[error("{field} is {len} bytes, over the limit of {limit} bytes")]
    IdTooLong {
        field: &'static str,
        len: usize,
        limit: usize,
    },

    /// An entry's own `created_at` ([`NewEntry::with_created_at`](crate::NewEntry::with_created_at))
    /// later than the store's clock allows: its time now plus
    /// [`MAX_CLOCK_SKEW`](crate::MAX_CLOCK_SKEW), one day. Nothing was written.
    #[error(
        "created_at {created_at} is more than MAX_CLOCK_SKEW (one day) after the store's clock, which reads {now}; nothing was written"
    )]
    CreatedAtInFuture {
        created_at: crate::Timestamp,
        now: crate::Timestamp,
    },

    /// Entry text must be non-empty (after trimming white space).
    #[error("content is empty")]
    EmptyContent,

    /// Entry text over the configured size limit.
    #[error("content is {len} bytes, over the limit of {limit} bytes")]
    ContentTooLarge { len: usize, limit: usize },

    /// Metadata nested deeper than `MemoryConfig::max_metadata_depth`.
    #[error("metadata is nested deeper than the limit of {limit} levels")]
    MetadataTooDeep { limit: usize },

    /// Metadata longer, as JSON text, than `MemoryConfig::max_metadata_bytes`.
    #[error("metadata is over {len} bytes as JSON, over the limit of {limit} bytes")]
    MetadataTooLarge { len: usize, limit: usize },

    /// Query text over `MemoryConfig::max_query_bytes`.
    #[error("query text is {len} bytes, over the limit of {limit} bytes")]
    QueryTooLarge { len: usize, limit: usize },

    /// A query that cannot be answered as asked (empty text, k = 0, NaN weights, ...).
    #[error("invalid query: {0}")]
    InvalidQuery(String),

    /// A configuration value out of its range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    /// A tool definition that cannot be used (empty name, schema that is not JSON).
    #[error("invalid tool definition {name:?}: {reason}")]
    InvalidTool { name: String, reason: String },

    /// The token budget cannot even hold the system prompt.
    #[error("token budget of {budget} cannot hold the system prompt, which needs {needed} tokens")]
    BudgetTooSmall { budget: usize, needed: usize },

    /// The long-term store (SQLite, or a server) reported an error. `store` is where it lives:
    /// a file path, or a server address without secrets.
    #[error("long-term store {store}: {source}")]
    Database {
        store: String,
        #[source]
        source: BoxError,
    },

    /// The long-term store is not a memory-core store, or its content is damaged.
    #[error("long-term store {store} is corrupt or not a memory-core store: {detail}")]
    Corrupt { store: String, detail: String },

    /// The store was written by a newer memory-core; opening it could lose data.
    #[error(
        "long-term store {store} has schema version {found}, newer than version {supported} that this build understands"
    )]
    SchemaTooNew {
        store: String,
        found: i64,
        supported: i64,
    },

    /// The store holds embeddings of another dimension than the configuration asks for.
    #[error(
        "long-term store {store} holds {stored}-dimensional embeddings, but embedding_dim is {configured}"
    )]
    StoreDimensionMismatch {
        store: String,
        stored: usize,
        configured: usize,
    },

    /// The store's vectors were made by another embedder than the one it is opened with
    /// ([`Embedder::id`](crate::Embedder::id)): new queries would be compared with them in
    /// another space. Open it with the embedder that wrote it, with
    /// `MemoryBuilder::reembed_on_embedder_change` to recompute its vectors with the new one,
    /// or, when the two make the same vectors, with `MemoryBuilder::accept_embedder_change`.
    #[error(
        "long-term store {store} holds vectors of embedder {stored}, but it is opened with embedder {configured}; open it with the embedder that wrote it, with MemoryBuilder::reembed_on_embedder_change to recompute its vectors with this one, or with MemoryBuilder::accept_embedder_change if the two make the same vectors"
    )]
    StoreEmbedderMismatch {
        store: String,
        stored: String,
        configured: String,
    },

    /// The store's file is open in another handle, in this process or another: one store file
    /// has one writer. Share one [`Memory`](crate::Memory) (it is `Clone`) instead of opening the
    /// file twice.
    #[error(
        "long-term store {store} is already open (its lock file {} is held by another handle or process); open it once and share the handle",
        lock_file.display()
    )]
    StoreLocked { store: String, lock_file: PathBuf },

    /// A new entry's id is already taken by another entry: the write is refused whole (this
    /// cannot happen with one handle per store file, which the lock file enforces).
    #[error("long-term store {store}: id {id} already holds another entry; nothing was written")]
    IdConflict { store: String, id: crate::EntryId },

    /// Every id a store can hand out is used (ids are positive 63-bit integers).
    #[error("long-term store {store} has no ids left to hand out")]
    IdsExhausted { store: String },

    /// A `Storage::File` path that cannot name a store file.
    #[error("{} cannot be a store file: {reason}", path.display())]
    InvalidPath { path: PathBuf, reason: String },

    /// A file-system error outside SQLite (creating the directory, the temporary store, ...).
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A server the store depends on (PostgreSQL, Redis) could not serve a request. `server`
    /// names it without secrets (never a password); `problem` says what went wrong, and
    /// `source` carries the client library's error where there is one. Requests that are safe to
    /// repeat (reads, idempotent writes) were retried before this was returned.
    #[error("{server}: {problem}")]
    Server {
        server: String,
        problem: ServerProblem,
        #[source]
        source: Option<BoxError>,
    },

    /// An embedding model directory that cannot be used: a missing directory or file, a file
    /// that does not parse, weights whose shapes disagree with the configuration, or a model
    /// that needs something the embedder does not implement. `path` names the file at fault.
    #[error("embedding model {path}: {detail}")]
    Model { path: PathBuf, detail: String },

    /// A blocking task of the async facade panicked or was cancelled.
    #[error("background task failed: {0}")]
    TaskFailed(String),

    /// The long-term write this request shared a transaction with panicked; nothing of the
    /// group was committed.
    #[error("the long-term write panicked and was rolled back: {0}")]
    CommitPanicked(String),
}

/// What went wrong with a server, in [`Error::Server`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServerProblem {
    /// The server address (URL) cannot be used.
    #[error("invalid server address: {0}")]
    BadAddress(String),
    /// Nothing accepts connections at the address: the server is down or elsewhere.
    #[error("connection refused (is the server running and listening there?)")]
    ConnectionRefused,
    /// The server cannot be reached (no route, unknown host, network error while connecting).
    #[error("server unreachable: {0}")]
    Unreachable(String),
    /// The server did not answer in time.
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The server refused the credentials or the database.
    #[error("login refused: {0}")]
    LoginRefused(String),
    /// The connection was closed during a request (server restart, network, admin action) and
    /// the request could not be completed on a new one.
    #[error("connection lost during a request: {0}")]
    ConnectionLost(String),
    /// The server lacks an extension the store needs (for PostgreSQL: pgvector, `vector`).
    #[error("the server has no {0} extension (install it, e.g. pgvector for PostgreSQL)")]
    MissingExtension(String),
    /// The server answered, but not as the store needs (unsupported version, wrong reply).
    #[error("unexpected server reply: {0}")]
    Protocol(String),
}

/// The result type of memory-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;
