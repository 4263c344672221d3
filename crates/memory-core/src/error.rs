//! The one error type of memory-core. Every variant says what was wrong and with which input, so
//! a caller can show it to a user or match on it; nothing a user passes in ever panics.

use std::path::PathBuf;

use crate::entry::EntryId;

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

    /// Entry text must be non-empty (after trimming white space).
    #[error("content is empty")]
    EmptyContent,

    /// Entry text over the configured size limit.
    #[error("content is {len} bytes, over the limit of {limit} bytes")]
    ContentTooLarge { len: usize, limit: usize },

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

    /// An entry id that does not exist for this agent.
    #[error("no entry {0} for this agent")]
    NotFound(EntryId),

    /// SQLite reported an error on the long-term store.
    #[error("long-term store {path}: {source}")]
    Database {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    /// The long-term store file is not a memory-core database, or its content is damaged.
    #[error("long-term store {path} is corrupt or not a memory-core database: {detail}")]
    Corrupt { path: PathBuf, detail: String },

    /// The file was written by a newer memory-core; opening it could lose data.
    #[error(
        "long-term store {path} has schema version {found}, newer than version {supported} that this build understands"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    /// A file-system error outside SQLite (creating the directory, the temporary store, ...).
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An embedding model directory that cannot be used: a missing directory or file, a file
    /// that does not parse, weights whose shapes disagree with the configuration, or a model
    /// that needs something the embedder does not implement. `path` names the file at fault.
    #[error("embedding model {path}: {detail}")]
    Model { path: PathBuf, detail: String },

    /// A blocking task of the async facade panicked or was cancelled.
    #[error("background task failed: {0}")]
    TaskFailed(String),
}

/// The result type of memory-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;
