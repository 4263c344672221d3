//! `bench-gate.toml`: which kind each benchmark is (by id prefix), the allowed change per kind,
//! per-benchmark overrides, test settings and absolute SLO budgets. Unknown keys are errors so a
//! typo cannot silently loosen the gate.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::budget::{Budget, Slo, SloEntry};
use crate::error::{Error, Result};
use crate::kind::Kind;

/// File name looked up at the workspace root when `--config` is not given.
pub const FILE_NAME: &str = "bench-gate.toml";

/// Test settings of the `[gate]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Gate {
    /// Significance level of Welch's t-test; a change is significant when p < alpha.
    pub alpha: f64,
    /// Confidence level of the bootstrap interval of the change.
    pub confidence: f64,
    /// Bootstrap resamples per benchmark.
    pub resamples: usize,
    /// Seed of the bootstrap, so the same files always give the same verdict.
    pub seed: u64,
    /// Whether a benchmark present in BASE but absent from NEW fails the gate.
    pub fail_on_missing: bool,
    /// Kind of benchmarks that match no rule.
    pub default_kind: Kind,
    /// What one interleaved round contributes of a timed benchmark: the mean or the median
    /// of its samples (see [`RoundStatistic`]).
    pub round_statistic: RoundStatistic,
    /// Weight, in rounds' worth of degrees of freedom, of the noise level pooled across the
    /// timed benchmarks of one `compare --rounds` (0: each benchmark's interval rests on its own
    /// rounds alone). See [`crate::stats::NoisePrior`].
    pub pooled_noise_df: f64,
}

/// The per-round value that `compare --rounds` pairs across the two sides (instruction counts
/// and single-run comparisons are not affected).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoundStatistic {
    /// The mean of the round's samples.
    #[default]
    Mean,
    /// The median of the round's samples: a burst of load that slows a few samples of a round
    /// moves it little.
    Median,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            alpha: 0.05,
            confidence: 0.95,
            resamples: 10_000,
            seed: 0x5EED,
            fail_on_missing: false,
            default_kind: Kind::Latency,
            round_statistic: RoundStatistic::default(),
            pooled_noise_df: 0.0,
        }
    }
}

/// Allowed relative change per kind, in percent, signed in the direction that is worse.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Latency may grow by this many percent (positive).
    pub latency: f64,
    /// Throughput may fall by this many percent (negative).
    pub throughput: f64,
    /// Footprint may grow by this many percent (positive).
    pub footprint: f64,
    /// Instruction counts may grow by this many percent (positive). Counts are deterministic,
    /// so the threshold can be tight.
    pub instructions: f64,
    /// Quality figures may fall by this many points (negative; -2 allows 0.850 -> 0.830).
    pub quality: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            latency: 10.0,
            throughput: -10.0,
            footprint: 20.0,
            instructions: 2.0,
            quality: -2.0,
        }
    }
}

impl Thresholds {
    /// Threshold of `kind` in percent.
    pub fn of(&self, kind: Kind) -> f64 {
        match kind {
            Kind::Latency => self.latency,
            Kind::Throughput => self.throughput,
            Kind::Footprint => self.footprint,
            Kind::Instructions => self.instructions,
            Kind::Quality => self.quality,
        }
    }
}

/// `[[rule]]`: benchmarks whose id starts with `prefix` are of `kind`. The file's rules come
/// first (the longest matching prefix among them wins); an id none of them matches falls to the
/// built-in rules ([`default_rules`]), then to `gate.default_kind` (see [`Config::kind_of`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Id prefix, e.g. `throughput/`.
    pub prefix: String,
    /// Kind given to matching benchmarks.
    pub kind: Kind,
}

/// `[[override]]`: a per-benchmark threshold, by exact `id` or by `prefix`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// Exact benchmark id.
    #[serde(default)]
    pub id: Option<String>,
    /// Id prefix (longest wins; an exact `id` beats any prefix).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Threshold in percent, signed like the kind's default.
    pub threshold: f64,
}

/// `[[informational]]`: benchmarks (by exact `id`, or `prefix` with an optional `suffix`) that
/// are measured, compared and shown, but never fail the gate, with the reason the report shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Informational {
    /// Exact benchmark id.
    #[serde(default)]
    pub id: Option<String>,
    /// Id prefix.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Id suffix, with `prefix` only (`prefix = "tail/"`, `suffix = "/p99"`).
    #[serde(default)]
    pub suffix: Option<String>,
    /// Why these benchmarks do not decide (shown in reports).
    pub reason: String,
}

impl Informational {
    /// Whether benchmark `id` is covered.
    pub fn matches(&self, id: &str) -> bool {
        self.id.as_deref() == Some(id)
            || self.prefix.as_deref().is_some_and(|p| {
                id.starts_with(p) && self.suffix.as_deref().is_none_or(|s| id.ends_with(s))
            })
    }
}

/// The whole configuration; its default is the built-in one (no rules of its own, so the
/// built-in rules decide every kind).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Config {
    /// Test settings.
    pub gate: Gate,
    /// Per-kind thresholds.
    pub thresholds: Thresholds,
    /// The file's own kind rules (empty for the built-in defaults); the built-in rules apply to
    /// the ids none of them matches.
    #[serde(rename = "rule")]
    pub rules: Vec<Rule>,
    /// Per-benchmark thresholds.
    #[serde(rename = "override")]
    pub overrides: Vec<Override>,
    /// Benchmarks shown but never deciding.
    pub informational: Vec<Informational>,
    /// Absolute budgets for `bench-gate slo`.
    #[serde(rename = "slo")]
    pub slos: Vec<Slo>,
    /// File the configuration came from (`None` for built-in defaults).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// `bench-gate.toml` as written. [`Config::parse`] checks it into a [`Config`]; the budgets, in
/// particular, become typed only after the settings are checked, so errors come in file order.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    gate: Gate,
    #[serde(default)]
    thresholds: Thresholds,
    #[serde(default, rename = "rule")]
    rules: Vec<Rule>,
    #[serde(default, rename = "override")]
    overrides: Vec<Override>,
    #[serde(default)]
    informational: Vec<Informational>,
    #[serde(default, rename = "slo")]
    slos: Vec<SloEntry>,
}

/// The benchmark-id conventions of the memory-bench suite: the kind of every id that no rule of
/// the configuration file matches. A file's `[[rule]]`s add to them rather than replace them,
/// so a rule for one prefix cannot make `quality/` ids (higher is better, in points) or
/// `footprint/` ids (bytes) fall to `gate.default_kind` and be judged as times.
pub fn default_rules() -> Vec<Rule> {
    [
        ("latency/", Kind::Latency),
        ("tail/", Kind::Latency),
        ("scaling/", Kind::Latency),
        ("throughput/", Kind::Throughput),
        ("footprint/", Kind::Footprint),
        ("instructions/", Kind::Instructions),
        ("quality/", Kind::Quality),
    ]
    .into_iter()
    .map(|(prefix, kind)| Rule {
        prefix: prefix.to_string(),
        kind,
    })
    .collect()
}

/// One line for a TOML error: `line L, column C: message` (toml's own rendering spans several
/// lines with a source excerpt, which does not fit the CLI's one-line errors).
fn toml_problem(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end();
    let Some(before) = error.span().and_then(|span| text.get(..span.start)) else {
        return message.to_string();
    };
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}: {message}")
}

impl Config {
    /// Parses a configuration from TOML text; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: toml_problem(text, &e),
        })?;
        let mut config = Config {
            gate: file.gate,
            thresholds: file.thresholds,
            rules: file.rules,
            overrides: file.overrides,
            informational: file.informational,
            slos: Vec::new(),
            source: Some(path.to_path_buf()),
        };
        config.validate()?;
        config.slos = file
            .slos
            .into_iter()
            .map(Slo::try_from)
            .collect::<std::result::Result<_, String>>()
            .map_err(|message| config.error(message))?;
        Ok(config)
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Config::parse(&text, path)
    }

    /// `explicit` if given, else `bench-gate.toml` at the workspace root (or the nearest
    /// ancestor of the current directory holding one), else the built-in defaults.
    pub fn discover(explicit: Option<&Path>) -> Result<Config> {
        if let Some(path) = explicit {
            return Config::load(path);
        }
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        if let Some(root) = crate::locate::workspace_root(&cwd) {
            let candidate = root.join(FILE_NAME);
            if candidate.is_file() {
                return Config::load(&candidate);
            }
        }
        for dir in cwd.ancestors() {
            let candidate = dir.join(FILE_NAME);
            if candidate.is_file() {
                return Config::load(&candidate);
            }
        }
        Ok(Config::default())
    }

    fn path(&self) -> PathBuf {
        self.source
            .clone()
            .unwrap_or_else(|| PathBuf::from("<built-in defaults>"))
    }

    /// An error about this configuration, naming its file.
    pub(crate) fn error(&self, message: String) -> Error {
        Error::Config {
            path: self.path(),
            message,
        }
    }

    fn validate(&self) -> Result<()> {
        let g = &self.gate;
        if !(g.alpha > 0.0 && g.alpha < 1.0) {
            return Err(self.error(format!("gate.alpha = {} must be in (0, 1)", g.alpha)));
        }
        if !(g.confidence > 0.0 && g.confidence < 1.0) {
            return Err(self.error(format!(
                "gate.confidence = {} must be in (0, 1)",
                g.confidence
            )));
        }
        if !(g.pooled_noise_df.is_finite() && (0.0..=1000.0).contains(&g.pooled_noise_df)) {
            return Err(self.error(format!(
                "gate.pooled_noise_df = {} must be between 0 and 1000",
                g.pooled_noise_df
            )));
        }
        if !(100..=1_000_000).contains(&g.resamples) {
            return Err(self.error(format!(
                "gate.resamples = {} must be between 100 and 1000000",
                g.resamples
            )));
        }
        for kind in Kind::ALL {
            self.check_sign(kind, self.thresholds.of(kind), "thresholds")?;
        }
        for rule in &self.rules {
            if rule.prefix.is_empty() {
                return Err(self.error("a [[rule]] has an empty prefix".into()));
            }
        }
        for o in &self.overrides {
            if o.id.is_some() == o.prefix.is_some() {
                return Err(
                    self.error("each [[override]] needs exactly one of `id` or `prefix`".into())
                );
            }
            if !o.threshold.is_finite() || o.threshold == 0.0 {
                return Err(self.error(format!(
                    "[[override]] {}: threshold must be a non-zero number of percent",
                    o.id.as_deref().or(o.prefix.as_deref()).unwrap_or("")
                )));
            }
        }
        for i in &self.informational {
            if i.id.is_some() == i.prefix.is_some() {
                return Err(self
                    .error("each [[informational]] needs exactly one of `id` or `prefix`".into()));
            }
            if i.suffix.is_some() && i.id.is_some() {
                return Err(self.error(format!(
                    "[[informational]] {}: `suffix` goes with `prefix`, not with an exact `id`",
                    i.id.as_deref().unwrap_or("")
                )));
            }
            if i.reason.trim().is_empty() {
                return Err(self.error(format!(
                    "[[informational]] {}: give the `reason` the report shows",
                    i.id.as_deref().or(i.prefix.as_deref()).unwrap_or("")
                )));
            }
        }
        Ok(())
    }

    /// The reason benchmark `id` is informational (shown, never failing the gate), if it is:
    /// the first matching `[[informational]]` entry.
    pub fn informational_reason(&self, id: &str) -> Option<&str> {
        self.informational
            .iter()
            .find(|i| i.matches(id))
            .map(|i| i.reason.as_str())
    }

    fn check_sign(&self, kind: Kind, value: f64, what: &str) -> Result<()> {
        let ok = value.is_finite()
            && if kind.higher_is_better() {
                value < 0.0
            } else {
                value > 0.0
            };
        if ok {
            Ok(())
        } else {
            let want = if kind.higher_is_better() {
                "negative (the allowed drop)"
            } else {
                "positive (the allowed growth)"
            };
            Err(self.error(format!(
                "{what}: threshold {value} for a {} benchmark must be {want}",
                kind.name()
            )))
        }
    }

    /// The budgets of every `[[slo]]` covering benchmark `id`, in file order.
    pub fn budgets_of(&self, id: &str) -> Vec<Budget> {
        self.slos
            .iter()
            .filter(|s| s.matches(id))
            .map(|s| s.budget)
            .collect()
    }

    /// Kind of benchmark `id`: the longest matching prefix of the file's rules, else of the
    /// built-in rules, else `gate.default_kind`. A file's rule wins wherever it matches (even
    /// over a longer built-in prefix); the built-in rules only fill in where none does.
    pub fn kind_of(&self, id: &str) -> Kind {
        let longest = |rules: &[Rule]| {
            rules
                .iter()
                .filter(|r| id.starts_with(&r.prefix))
                .max_by_key(|r| r.prefix.len())
                .map(|r| r.kind)
        };
        longest(&self.rules)
            .or_else(|| longest(&default_rules()))
            .unwrap_or(self.gate.default_kind)
    }

    /// Threshold of benchmark `id` in percent: an exact-id override, else the longest prefix
    /// override, else the kind's default. An override whose sign contradicts the kind is an error.
    pub fn threshold_of(&self, id: &str, kind: Kind) -> Result<f64> {
        let exact = self.overrides.iter().find(|o| o.id.as_deref() == Some(id));
        let by_prefix = || {
            self.overrides
                .iter()
                .filter_map(|o| o.prefix.as_deref().map(|p| (p, o)))
                .filter(|(p, _)| id.starts_with(p))
                .max_by_key(|(p, _)| p.len())
                .map(|(_, o)| o)
        };
        match exact.or_else(by_prefix) {
            Some(o) => {
                self.check_sign(kind, o.threshold, &format!("[[override]] for '{id}'"))?;
                Ok(o.threshold)
            }
            None => Ok(self.thresholds.of(kind)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn empty_file_gives_the_built_in_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.kind_of("throughput/mixed/4"), Kind::Throughput);
        assert_eq!(c.kind_of("footprint/ltm/1000"), Kind::Footprint);
        assert_eq!(c.kind_of("tail/search/p99"), Kind::Latency);
        assert_eq!(c.kind_of("something/else"), Kind::Latency);
        assert_eq!(c.kind_of("instructions/ltm/get"), Kind::Instructions);
        assert_eq!(
            c.kind_of("quality/generated/hashing/ann/r@10"),
            Kind::Quality
        );
        assert_eq!(
            c.threshold_of("quality/x", Kind::Quality).unwrap(),
            -2.0,
            "points, in the worse direction"
        );
        assert_eq!(
            c.threshold_of("instructions/x", Kind::Instructions)
                .unwrap(),
            2.0
        );
        assert_eq!(c.threshold_of("latency/x", Kind::Latency).unwrap(), 10.0);
        assert_eq!(
            c.threshold_of("throughput/x", Kind::Throughput).unwrap(),
            -10.0
        );
    }

    #[test]
    fn a_files_rules_come_first_and_the_built_in_rules_fill_in() {
        let c = parse(
            "[gate]\ndefault_kind = \"footprint\"\n\
             [[rule]]\nprefix = \"scaling/\"\nkind = \"throughput\"\n\
             [[rule]]\nprefix = \"qual\"\nkind = \"latency\"\n",
        )
        .unwrap();
        assert_eq!(c.kind_of("scaling/ltm/1000"), Kind::Throughput);
        // The file's shorter prefix wins over the built-in `quality/`.
        assert_eq!(c.kind_of("quality/x/r@10"), Kind::Latency);
        // Ids no rule of the file matches keep their built-in kinds, not the default kind.
        assert_eq!(c.kind_of("footprint/heap/1000"), Kind::Footprint);
        assert_eq!(c.kind_of("instructions/ltm/get"), Kind::Instructions);
        assert_eq!(c.kind_of("latency/ltm/get"), Kind::Latency);
        assert_eq!(c.kind_of("something/else"), Kind::Footprint);
    }

    #[test]
    fn the_pooled_noise_weight_is_zero_by_default_and_checked() {
        assert_eq!(parse("").unwrap().gate.pooled_noise_df, 0.0);
        let c = parse("[gate]\npooled_noise_df = 4\n").unwrap();
        assert_eq!(c.gate.pooled_noise_df, 4.0);
        for bad in ["-1", "1e9", "nan"] {
            let err = parse(&format!("[gate]\npooled_noise_df = {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("gate.pooled_noise_df"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_round_statistic_is_mean_or_median() {
        assert_eq!(
            parse("").unwrap().gate.round_statistic,
            RoundStatistic::default()
        );
        let c = parse("[gate]\nround_statistic = \"median\"\n").unwrap();
        assert_eq!(c.gate.round_statistic, RoundStatistic::Median);
        let c = parse("[gate]\nround_statistic = \"mean\"\n").unwrap();
        assert_eq!(c.gate.round_statistic, RoundStatistic::Mean);
        let err = parse("[gate]\nround_statistic = \"mode\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant `mode`"), "{err}");
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_key() {
        let err = parse("[gate]\nalpah = 0.01\n").unwrap_err().to_string();
        assert!(err.starts_with("test.toml: line 2, column 1: "), "{err}");
        assert!(
            err.contains("unknown field `alpah`") && !err.contains('\n'),
            "{err}"
        );
    }

    #[test]
    fn exact_override_beats_longer_prefix_and_longest_prefix_wins() {
        let c = parse(
            "[[override]]\nprefix = \"latency/\"\nthreshold = 30\n\
             [[override]]\nprefix = \"latency/stm/\"\nthreshold = 20\n\
             [[override]]\nid = \"latency/stm/get\"\nthreshold = 5\n",
        )
        .unwrap();
        assert_eq!(
            c.threshold_of("latency/stm/get", Kind::Latency).unwrap(),
            5.0
        );
        assert_eq!(
            c.threshold_of("latency/stm/put", Kind::Latency).unwrap(),
            20.0
        );
        assert_eq!(
            c.threshold_of("latency/ltm/put", Kind::Latency).unwrap(),
            30.0
        );
    }

    #[test]
    fn threshold_with_the_wrong_sign_is_rejected() {
        assert!(parse("[thresholds]\nthroughput = 10\n").is_err());
        let c = parse("[[override]]\nid = \"throughput/a\"\nthreshold = 5\n").unwrap();
        assert!(c.threshold_of("throughput/a", Kind::Throughput).is_err());
    }

    #[test]
    fn informational_entries_need_one_selector_and_a_reason() {
        let c = parse("[[informational]]\nprefix = \"tail/\"\nreason = \"one sample's p99\"\n")
            .unwrap();
        assert_eq!(
            c.informational_reason("tail/get/p99"),
            Some("one sample's p99")
        );
        assert_eq!(c.informational_reason("latency/get"), None);
        assert!(parse("[[informational]]\nprefix = \"tail/\"\nreason = \"\"\n").is_err());
        assert!(parse("[[informational]]\nreason = \"x\"\n").is_err());
        let c = parse(
            "[[informational]]\nprefix = \"tail/\"\nsuffix = \"/p99\"\nreason = \"preemption\"\n",
        )
        .unwrap();
        assert_eq!(c.informational_reason("tail/get/p99"), Some("preemption"));
        assert_eq!(c.informational_reason("tail/get/p50"), None);
        assert_eq!(c.informational_reason("latency/get/p99"), None);
        assert!(parse(
            "[[informational]]\nid = \"tail/get/p99\"\nsuffix = \"/p99\"\nreason = \"x\"\n"
        )
        .is_err());
    }

    #[test]
    fn slo_needs_exactly_one_budget() {
        assert!(parse("[[slo]]\nid = \"a\"\n").is_err());
        assert!(parse("[[slo]]\nid = \"a\"\nmax_ns = 1\nmax_bytes = 2\n").is_err());
        let c = parse("[[slo]]\nprefix = \"tail/\"\nsuffix = \"/p99\"\nmax_ns = 1e6\n").unwrap();
        assert!(c.slos[0].matches("tail/search/p99"));
        assert!(!c.slos[0].matches("tail/search/p50"));
    }

    #[test]
    fn budgets_of_an_id_are_every_matching_slo_in_file_order() {
        let c = parse(
            "[[slo]]\nid = \"tail/get/p99\"\nmax_ns = 2e4\n\
             [[slo]]\nprefix = \"tail/\"\nsuffix = \"/p99\"\nmax_ns = 5e6\n",
        )
        .unwrap();
        assert_eq!(
            c.budgets_of("tail/get/p99"),
            [Budget::MaxNs(2e4), Budget::MaxNs(5e6)]
        );
        assert_eq!(c.budgets_of("tail/get/p50"), []);
    }

    #[test]
    fn a_settings_error_is_reported_before_a_budget_error() {
        let err = parse("[gate]\nalpha = 2\n[[slo]]\nid = \"a\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("gate.alpha"), "{err}");
    }
}
