//! The project's targets as the benches print them beside their results, read from the
//! `[[slo]]` budgets of `bench-gate.toml` through bench-gate's configuration: the gate checks and
//! the tables show the same numbers. Without the file the tables print without targets and say so.

use std::path::{Path, PathBuf};

use bench_gate::budget::Budget;
use bench_gate::config::{Config, FILE_NAME};
use bench_gate::Kind;

/// The budgets of `bench-gate.toml`, or why there are none to show.
#[derive(Clone, Debug)]
pub struct Targets {
    config: Option<Config>,
    source: Result<PathBuf, String>,
}

impl Targets {
    /// Finds `bench-gate.toml` as `bench-gate` does (the workspace root, else the nearest
    /// ancestor of the current directory holding one). A missing or unreadable file is not an
    /// error here: the tables are printed without targets and [`Targets::note`] says why.
    pub fn load() -> Targets {
        match Config::discover(None) {
            Ok(config) => Targets::from_config(config),
            Err(e) => Targets {
                config: None,
                source: Err(format!("{FILE_NAME} could not be read ({e})")),
            },
        }
    }

    /// The targets of a configuration already read.
    pub fn from_config(config: Config) -> Targets {
        let source = match &config.source {
            Some(path) => Ok(path.clone()),
            None => Err(format!(
                "no {FILE_NAME} found from {}",
                std::env::current_dir()
                    .unwrap_or_else(|_| PathBuf::from("."))
                    .display()
            )),
        };
        Targets {
            config: Some(config),
            source,
        }
    }

    /// The budget of benchmark `id` when it is read as `kind`: of several, the one that binds
    /// (the lowest ceiling, the highest floor).
    pub fn budget(&self, id: &str, kind: Kind) -> Option<Budget> {
        self.config
            .as_ref()?
            .budgets_of(id)
            .into_iter()
            .filter(|b| b.kind() == kind)
            .reduce(Budget::tighter)
    }

    /// Where the targets come from (`targets: bench-gate.toml`), or why none are shown.
    pub fn note(&self) -> String {
        match &self.source {
            Ok(path) => format!(
                "targets: [[slo]] of {}",
                path.file_name().map_or(path.as_path(), Path::new).display()
            ),
            Err(why) => format!("{why}: targets not shown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(toml: &str) -> Targets {
        Targets::from_config(Config::parse(toml, Path::new("bench-gate.toml")).unwrap())
    }

    #[test]
    fn the_binding_budget_of_an_id_is_the_tightest_of_its_kind() {
        let t = targets(
            "[[slo]]\nid = \"tail/keyword/p99\"\nmax_ns = 1e6\n\
             [[slo]]\nprefix = \"tail/\"\nsuffix = \"/p99\"\nmax_ns = 5e6\n\
             [[slo]]\nprefix = \"latency/ltm/insert_batch/\"\nmin_ops_per_sec = 2e5\n",
        );
        assert_eq!(
            t.budget("tail/keyword/p99", Kind::Latency),
            Some(Budget::MaxNs(1e6))
        );
        assert_eq!(
            t.budget("tail/ltm_get/p99", Kind::Latency),
            Some(Budget::MaxNs(5e6))
        );
        assert_eq!(t.budget("tail/keyword/p50", Kind::Latency), None);
        assert_eq!(
            t.budget("latency/ltm/insert_batch/100", Kind::Throughput),
            Some(Budget::MinOpsPerSec(2e5))
        );
        assert_eq!(
            t.budget("latency/ltm/insert_batch/100", Kind::Latency),
            None
        );
        assert_eq!(t.note(), "targets: [[slo]] of bench-gate.toml");
    }

    #[test]
    fn without_a_file_there_are_no_targets_and_the_note_says_so() {
        let t = Targets::from_config(Config::default());
        assert_eq!(t.budget("tail/keyword/p99", Kind::Latency), None);
        assert!(
            t.note().contains("no bench-gate.toml found"),
            "{}",
            t.note()
        );
        assert!(t.note().ends_with("targets not shown"));
    }

    /// The repository's own file is read (the benches run in the workspace root).
    #[test]
    fn the_repositorys_budgets_reach_the_tables() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(FILE_NAME);
        let t = Targets::from_config(Config::load(&path).unwrap());
        assert!(matches!(
            t.budget("tail/stm_append/p99", Kind::Latency),
            Some(Budget::MaxNs(_))
        ));
        assert!(matches!(
            t.budget("footprint/heap/ltm_per_1000/10000", Kind::Footprint),
            Some(Budget::MaxBytes(_))
        ));
    }
}
