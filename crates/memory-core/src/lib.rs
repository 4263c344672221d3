//! # memory-core
//!
//! A tiered memory engine for LLM agents. Each (agent, session) keeps a short-term window of its
//! most recent entries in RAM, with a time-to-live; important or old entries are consolidated into
//! a durable long-term store in one SQLite file. Retrieval searches both tiers by keywords and by
//! vector similarity, and a context builder packs the best material into a prompt under a token
//! budget.
//!
//! This crate knows nothing of benchmarks: the `memory-bench` package measures it from outside.

pub mod clock;
pub mod config;
pub mod embed;
pub mod entry;
pub mod error;
pub mod fusion;
pub mod keyword;
pub mod search;
pub mod text;
mod topk;
pub mod vector;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use config::{ConsolidationConfig, Durability, MemoryConfig, ScoreWeights};
pub use entry::{EntryId, MemoryEntry, NewEntry, Role, Tier};
pub use error::{Error, Result};
pub use search::{ScoreComponents, SearchHit};
