//! # memory-core
//!
//! A tiered memory engine for LLM agents. Each (agent, session) keeps a short-term window of its
//! most recent entries in RAM, with a time-to-live; important or old entries are consolidated into
//! a durable long-term store in one SQLite file. Retrieval searches both tiers by keywords and by
//! vector similarity, and a context builder packs the best material into a prompt under a token
//! budget.
//!
//! This crate knows nothing of benchmarks: the `memory-bench` package measures it from outside.

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

mod async_api;
mod background;
mod cache;
mod clock;
mod config;
mod consolidate;
pub mod context;
mod embed;
mod entry;
mod error;
pub mod index;
mod information;
mod memory;
#[cfg(membench_planted)]
mod planted;
mod query;
mod scoring;
mod search;
#[cfg(any(feature = "postgres", feature = "redis"))]
mod server;
pub mod stages;
mod state;
mod stm;
mod store;
pub mod tokens;
mod write;

pub use async_api::AsyncMemory;
pub use cache::CacheStats;
pub use clock::{Clock, Date, ManualClock, SystemClock, Timestamp};
pub use config::{
    ConsolidationConfig, Durability, MemoryConfig, ScoreWeights, SearchConfig,
    CALLER_VECTOR_WEIGHT, DEFAULT_CANDIDATES,
};
pub use consolidate::ConsolidationReport;
pub use context::{
    Context, ContextBuilder, ContextMaterial, ContextQuery, ContextSection, SectionKind,
    ToolDefinition,
};
#[cfg(feature = "minilm")]
pub use embed::minilm::MiniLmEmbedder;
pub use embed::{Embedder, HashingEmbedder};
pub use entry::{EntryId, MemoryEntry, NewEntry, Role, Tier, MAX_CLOCK_SKEW, MAX_ID_BYTES};
pub use error::{BoxError, Error, Result, ServerProblem};
pub use index::fusion::Fusion;
pub use index::keyword::Bm25Params;
pub use index::text::Analyzer;
pub use index::vector::{HnswParams, Quantization};
pub use index::ListQuery;
pub use memory::{Memory, MemoryBuilder, StoreStats};
pub use query::{
    FusionWeights, ScoreComponents, SearchHit, SearchMode, SearchQuery, Tiers, RELEVANCE_ONLY,
};
pub use scoring::{ImportanceScore, ImportanceScorer};
pub use stages::{StageLayer, StageReport};
#[cfg(feature = "redis")]
pub use stm::redis::RedisConfig;
pub use stm::ShortTermStorage;
#[cfg(feature = "postgres")]
pub use store::postgres::{PostgresConfig, POSTGRES_SCHEMA_VERSION};
pub use store::sqlite::SCHEMA_VERSION;
pub use store::{IntegrityReport, QuarantinedEntry, Storage};
pub use tokens::{HeuristicCounter, TokenCounter};
