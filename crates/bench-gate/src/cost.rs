//! A benchmark's samples as the values it is judged on: per-iteration costs (nanoseconds or bytes
//! per iteration, nanoseconds per element for throughput, so sides with different element counts
//! stay comparable) and the unit their mean is shown in. Both the relative gate and the budgets
//! read benchmarks through here.

use crate::config::RoundStatistic;
use crate::criterion::Benchmark;
use crate::error::{Error, Result};
use crate::kind::{DisplayUnit, Kind};
use crate::stats;

/// Per-iteration costs of one benchmark judged as one kind.
#[derive(Clone, Debug, PartialEq)]
pub struct Costs {
    /// One cost per sample.
    pub values: Vec<f64>,
    /// The unit the mean cost is shown in (a rate for throughput).
    pub unit: DisplayUnit,
}

impl Costs {
    /// Reads `bench`'s samples as a benchmark of `kind`. A throughput benchmark needs Criterion's
    /// throughput setting, which also decides its rate (ops/s, B/s or bit/s).
    pub fn of(bench: &Benchmark, kind: Kind) -> Result<Costs> {
        let values = bench.sample.per_iteration();
        if kind != Kind::Throughput {
            return Ok(Costs {
                values,
                unit: kind.display_unit(),
            });
        }
        let (amount, unit) = bench.info.throughput.map(|t| t.amount()).ok_or_else(|| {
            Error::invalid(
                &bench.source,
                format!(
                    "benchmark '{}' is judged in ops/s (throughput) but Criterion recorded no \
                     throughput setting for it",
                    bench.info.full_id
                ),
            )
        })?;
        if amount == 0 {
            return Err(Error::invalid(
                &bench.source,
                format!(
                    "benchmark '{}' has a throughput of zero",
                    bench.info.full_id
                ),
            ));
        }
        Ok(Costs {
            values: values.into_iter().map(|v| v / amount as f64).collect(),
            unit,
        })
    }

    /// Mean cost per iteration (or per element).
    pub fn mean(&self) -> f64 {
        stats::mean(&self.values)
    }

    /// Median cost per iteration (or per element): the middle sample, or the mean of the two
    /// middle ones.
    pub fn median(&self) -> f64 {
        stats::median(&self.values)
    }

    /// The round's value of `statistic`.
    pub fn location(&self, statistic: RoundStatistic) -> f64 {
        match statistic {
            RoundStatistic::Mean => self.mean(),
            RoundStatistic::Median => self.median(),
        }
    }

    /// The mean as shown: the cost itself, or a rate per second.
    pub fn shown_mean(&self) -> f64 {
        self.unit.from_cost(self.mean())
    }
}
