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
pub mod clock;
mod commit;
pub mod config;
pub mod consolidate;
pub mod context;
pub mod embed;
pub mod entry;
pub mod error;
pub mod fusion;
mod index;
pub mod keyword;
pub mod ltm;
mod memory;
pub mod scoring;
pub mod search;
pub mod stages;
mod stm;
pub mod text;
pub mod tokens;
mod topk;
pub mod vector;

pub use async_api::AsyncMemory;
pub use cache::CacheStats;
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use config::{ConsolidationConfig, Durability, MemoryConfig, ScoreWeights, SearchConfig};
pub use consolidate::ConsolidationReport;
pub use context::{
    Context, ContextBuilder, ContextRequest, ContextSection, SectionKind, ToolDefinition,
};
pub use embed::{Embedder, HashingEmbedder};
pub use entry::{EntryId, MemoryEntry, NewEntry, Role, Tier};
pub use error::{Error, Result};
pub use fusion::FusionWeights;
pub use ltm::{ListQuery, Storage, SCHEMA_VERSION};
pub use memory::{ContextQuery, Memory, MemoryBuilder, StoreStats};
pub use scoring::{ImportanceScore, ImportanceScorer};
pub use search::{ScoreComponents, SearchHit, SearchMode, SearchQuery, Tiers};
pub use stages::{StageLayer, StageReport};
pub use tokens::{HeuristicCounter, TokenCounter};
