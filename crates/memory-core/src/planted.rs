//! A slowdown planted on purpose, to measure how often the regression gate catches one. Compiled
//! only with `RUSTFLAGS="--cfg membench_planted"` (bench-gate's `scripts/accuracy.sh` builds it
//! so); the normal build has no trace of it. Set by the environment, read once per process:
//!
//! - `MEMBENCH_PLANTED=get=5,search=3`: the named operation spins for that percentage of its own
//!   elapsed time (the timing channel: a slowdown proportional to the operation's cost);
//! - `MEMBENCH_PLANTED_WORK=get=12000`: the named operation runs that many iterations of a fixed
//!   loop (the instruction channel, where the amount must not depend on time; the accuracy
//!   script calibrates it to a percentage of the operation's counted instructions).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Operations that carry the hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// `Memory::get`.
    Get,
    /// `Memory::search` (every mode; the cache lookup included).
    Search,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Search => "search",
        }
    }
}

#[derive(Default)]
struct Plan {
    /// (operation, percent of own time).
    percent: Vec<(String, f64)>,
    /// (operation, loop iterations).
    work: Vec<(String, u64)>,
}

fn parse<T: std::str::FromStr>(var: &str) -> Vec<(String, T)> {
    let Ok(value) = std::env::var(var) else {
        return Vec::new();
    };
    value
        .split(',')
        .filter_map(|item| {
            let (op, amount) = item.split_once('=')?;
            Some((op.trim().to_string(), amount.trim().parse().ok()?))
        })
        .collect()
}

fn plan() -> &'static Plan {
    static PLAN: OnceLock<Plan> = OnceLock::new();
    PLAN.get_or_init(|| Plan {
        percent: parse("MEMBENCH_PLANTED"),
        work: parse("MEMBENCH_PLANTED_WORK"),
    })
}

/// Held for the duration of a planted operation; the extra cost is paid when it drops.
pub(crate) struct Planted {
    op: Op,
    start: Instant,
}

impl Planted {
    /// Starts timing `op`.
    pub(crate) fn start(op: Op) -> Planted {
        Planted {
            op,
            start: Instant::now(),
        }
    }
}

impl Drop for Planted {
    fn drop(&mut self) {
        let plan = plan();
        let name = self.op.name();
        if let Some((_, pct)) = plan.percent.iter().find(|(op, _)| op == name) {
            let extra = self.start.elapsed().mul_f64(pct / 100.0);
            spin_for(extra);
        }
        if let Some((_, n)) = plan.work.iter().find(|(op, _)| op == name) {
            fixed_work(*n);
        }
    }
}

/// Busy-waits (a slower CPU, not a sleep) for `d`.
fn spin_for(d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// `n` iterations of a loop the compiler cannot remove: the same instructions every run.
fn fixed_work(n: u64) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..n {
        x = std::hint::black_box(x.rotate_left(7) ^ i);
    }
    std::hint::black_box(x);
}
