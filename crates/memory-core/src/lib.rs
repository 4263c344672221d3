//! # memory-core
//!
//! A tiered memory engine for LLM agents. Each (agent, session) keeps a short-term window of its
//! most recent entries in RAM, with a time-to-live; important or old entries are consolidated into
//! a durable long-term store in one SQLite file. Retrieval searches both tiers by keywords and by
//! vector similarity, and a context builder packs the best material into a prompt under a token
//! budget.
//!
//! This crate knows nothing of benchmarks: the `memory-bench` package measures it from outside.

mod async_api;
pub mod clock;
pub mod config;
pub mod consolidate;
pub mod context;
pub mod entry;
pub mod error;
mod index;
pub mod ltm;
mod memory;
pub mod scoring;
pub mod search;
pub mod stages;
mod stm;
pub mod tokens;

pub use async_api::AsyncMemory;
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use config::{ConsolidationConfig, Durability, MemoryConfig, ScoreWeights};
pub use consolidate::ConsolidationReport;
pub use context::{
    Context, ContextBuilder, ContextRequest, ContextSection, SectionKind, ToolDefinition,
};
pub use entry::{EntryId, MemoryEntry, NewEntry, Role, Tier};
pub use error::{Error, Result};
pub use ltm::{ListQuery, Storage, SCHEMA_VERSION};
pub use memory::{Memory, StoreStats};
pub use scoring::{ImportanceScore, ImportanceScorer};
pub use search::{ScoreComponents, SearchHit};
pub use stages::{StageLayer, StageReport};
pub use tokens::{HeuristicCounter, TokenCounter};
