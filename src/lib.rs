//! # memory-bench
//!
//! Workloads and measurement machinery for the Criterion benchmarks of `memory-core`:
//! deterministic generators, size profiles, tail-latency histograms, a byte-counting allocator and
//! measurement, scaling exponents, search-quality figures and shared store fixtures. The bench
//! targets in `benches/` use this library; memory-core itself knows nothing of it.

pub mod conversations;
pub mod fixture;
pub mod locomo;
pub mod measure;
pub mod profile;
pub mod quality;
pub mod queries;
pub mod ratio;
pub mod retrieval;
pub mod stats;
pub mod tail;
pub mod workload;

pub use profile::{settings, Profile, Settings};
