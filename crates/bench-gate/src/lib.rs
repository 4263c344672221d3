//! bench-gate: turns Criterion's saved baselines into a pass/fail regression verdict.
//! It reads Criterion's files only (never the benchmarked code), recomputes significance from the
//! raw samples, and classifies each benchmark against per-kind thresholds from `bench-gate.toml`.
//!
//! Find the files ([`locate`], [`source`]), parse them into types ([`criterion`], [`export`],
//! [`config`]), decide on types ([`verdict`], [`slo`], [`history`]), print last ([`output`]:
//! text, Markdown, JSON, HTML pages); the `bench-gate` binary only wires these together.
//!
//! ```
//! use std::path::Path;
//! use bench_gate::{criterion, Config, Verdict};
//!
//! // Real Criterion output of the crate's fixture bench; `slow25` slows one benchmark by 25%.
//! let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/criterion");
//! let base = criterion::load(&dir, "base")?;
//! let new = criterion::load(&dir, "slow25")?;
//! let report = bench_gate::compare(&base, &new, &Config::default())?;
//! let regressed: Vec<&str> = report
//!     .rows
//!     .iter()
//!     .filter(|r| r.verdict == Verdict::Regressed)
//!     .map(|r| r.id.as_str())
//!     .collect();
//! assert_eq!(regressed, ["latency/fixture/spin_small"]);
//! assert_eq!(report.exit_code(), 2);
//! # Ok::<(), bench_gate::Error>(())
//! ```

pub mod budget;
pub mod config;
pub mod cost;
pub mod criterion;
pub mod error;
pub mod export;
pub mod history;
pub mod kind;
pub mod locate;
pub mod machine;
pub mod output;
pub mod slo;
pub mod source;
pub mod stats;
pub mod verdict;

pub use config::Config;
pub use criterion::{Baseline, Benchmark};
pub use error::{Error, Result};
pub use kind::{DisplayUnit, Kind, Unit};
pub use verdict::{compare, Report, Row, Verdict};
