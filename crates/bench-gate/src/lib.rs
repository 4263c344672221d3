//! bench-gate: turns Criterion's saved baselines into a pass/fail regression verdict.
//! It reads Criterion's files only (never the benchmarked code), recomputes significance from the
//! raw samples, and classifies each benchmark against per-kind thresholds from `bench-gate.toml`.

pub mod config;
pub mod criterion;
pub mod error;
pub mod export;
pub mod machine;
pub mod output;
pub mod slo;
pub mod stats;
pub mod verdict;

pub use config::{Config, Kind};
pub use criterion::{Baseline, Benchmark, Unit};
pub use error::{Error, Result};
pub use verdict::{compare, Report, Row, Verdict};
