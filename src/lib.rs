//! # memory-bench
//!
//! Workloads and measurement machinery for the Criterion benchmarks of `memory-core`:
//! deterministic generators, size profiles, tail-latency histograms, a byte-counting allocator and
//! measurement, scaling exponents, search-quality figures, shared store fixtures, and the targets
//! printed beside the results (from `bench-gate.toml`). The bench targets in `benches/` use this
//! library; memory-core knows nothing of it, and bench-gate (which it uses to read Criterion's
//! files and the budgets) knows nothing of memory-core.

pub mod conversations;
pub mod fixture;
pub mod ingest;
pub mod locomo;
pub mod measure;
pub mod profile;
pub mod quality;
pub mod queries;
pub mod ratio;
pub mod retrieval;
pub mod servers;
pub mod stats;
pub mod tail;
pub mod targets;
pub mod workload;

pub use profile::{settings, Profile, Settings};
