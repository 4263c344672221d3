//! Size profiles: how big the stores and how long the measurements are, chosen once per process by
//! `MEMBENCH_PROFILE` (quick | default | full). Criterion's `--test` mode shrinks everything so a
//! smoke run of the whole suite stays fast.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use criterion::Criterion;

/// The environment variable that picks a profile.
pub const PROFILE_VAR: &str = "MEMBENCH_PROFILE";

/// A named size profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Pull-request CI: stores up to 10,000 entries, short measurements.
    Quick,
    /// A plain `cargo bench`: stores up to 100,000 entries.
    Default,
    /// Adds 1,000,000-entry stores and longer measurements.
    Full,
}

impl Profile {
    /// Parses a profile name; an unset or empty variable means [`Profile::Default`].
    pub fn parse(value: Option<&str>) -> Result<Profile, ProfileError> {
        match value.map(str::trim) {
            None | Some("") | Some("default") => Ok(Profile::Default),
            Some("quick") => Ok(Profile::Quick),
            Some("full") => Ok(Profile::Full),
            Some(other) => Err(ProfileError(other.to_string())),
        }
    }

    /// The profile's lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Quick => "quick",
            Profile::Default => "default",
            Profile::Full => "full",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `MEMBENCH_PROFILE` held something that is not a profile name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileError(pub String);

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PROFILE_VAR}={:?} is not a profile; use quick, default or full",
            self.0
        )
    }
}

impl std::error::Error for ProfileError {}

/// The profile in force plus whether Criterion runs each benchmark only once (`--test`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub profile: Profile,
    /// Criterion's `--test` mode: every benchmark runs once, so fixtures are kept tiny.
    pub test_mode: bool,
}

impl Settings {
    /// Settings from a profile variable's value and the process arguments.
    pub fn from_parts<I, S>(profile_var: Option<&str>, args: I) -> Result<Settings, ProfileError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let profile = Profile::parse(profile_var)?;
        let test_mode = args.into_iter().any(|a| a.as_ref() == "--test");
        Ok(Settings { profile, test_mode })
    }

    /// Long-term store sizes of the scaling series and the quality table.
    pub fn ltm_sizes(&self) -> Vec<usize> {
        if self.test_mode {
            return vec![200, 1_000];
        }
        match self.profile {
            Profile::Quick => vec![1_000, 10_000],
            Profile::Default => vec![1_000, 10_000, 100_000],
            Profile::Full => vec![1_000, 10_000, 100_000, 1_000_000],
        }
    }

    /// Size of the long-term store the latency and throughput benchmarks run against.
    pub fn fixture_size(&self) -> usize {
        if self.test_mode {
            return 1_000;
        }
        match self.profile {
            Profile::Quick => 10_000,
            Profile::Default | Profile::Full => 100_000,
        }
    }

    /// Agent counts of the `scaling/agents` series.
    pub fn agent_counts(&self) -> Vec<usize> {
        if self.test_mode {
            vec![1, 10]
        } else {
            vec![1, 10, 100, 1_000]
        }
    }

    /// Entries per agent in the stores of the `scaling/agents` series: every agent holds as many,
    /// so the series shows what other agents' data costs one agent's search.
    pub fn entries_per_agent(&self) -> usize {
        if self.test_mode {
            return 10;
        }
        match self.profile {
            Profile::Quick => 10,
            Profile::Default => 20,
            Profile::Full => 100,
        }
    }

    /// Session counts of the `scaling/context_sessions` series.
    pub fn session_counts(&self) -> Vec<usize> {
        if self.test_mode {
            vec![1, 8]
        } else {
            vec![1, 8, 64, 512]
        }
    }

    /// Tool counts of the `scaling/context_tools` series.
    pub fn tool_counts(&self) -> Vec<usize> {
        if self.test_mode {
            vec![1, 8]
        } else {
            vec![1, 8, 32, 128]
        }
    }

    /// Concurrent workers of the throughput benchmarks.
    pub fn worker_counts(&self) -> Vec<usize> {
        if self.test_mode {
            vec![1, 2]
        } else {
            vec![1, 2, 4, 8]
        }
    }

    /// Entries a footprint measurement stores.
    pub fn footprint_entries(&self) -> usize {
        if self.test_mode {
            return 500;
        }
        match self.profile {
            Profile::Quick => 2_000,
            Profile::Default => 10_000,
            Profile::Full => 50_000,
        }
    }

    /// Distinct queries cycled through by the search benchmarks.
    pub fn query_count(&self) -> usize {
        if self.test_mode {
            16
        } else {
            256
        }
    }

    /// Queries per size whose top 10 is compared with exact search for the recall table.
    pub fn recall_queries(&self) -> usize {
        if self.test_mode {
            10
        } else {
            match self.profile {
                Profile::Quick => 100,
                Profile::Default | Profile::Full => 200,
            }
        }
    }

    /// Sample size, warm-up and measurement time of the profile.
    pub fn timing(&self) -> (usize, Duration, Duration) {
        match self.profile {
            Profile::Quick => (10, Duration::from_millis(300), Duration::from_secs(1)),
            Profile::Default => (15, Duration::from_millis(500), Duration::from_millis(1_500)),
            Profile::Full => (50, Duration::from_secs(2), Duration::from_secs(5)),
        }
    }

    /// A Criterion configured for the profile; command-line flags still override it.
    pub fn criterion(&self) -> Criterion {
        self.configure(Criterion::default())
    }

    /// Applies the profile's sample size, times and reporting to `c` (of any measurement), then
    /// the command-line flags.
    ///
    /// The quick profile skips the HTML plots and uses fewer bootstrap resamples: on a loaded
    /// 2-core machine drawing the plots costs more than measuring, and CI does not read them.
    pub fn configure<M: criterion::measurement::Measurement>(
        &self,
        c: Criterion<M>,
    ) -> Criterion<M> {
        let (samples, warm_up, measurement) = self.timing();
        let c = c
            .sample_size(samples)
            .warm_up_time(warm_up)
            .measurement_time(measurement);
        let c = match self.profile {
            Profile::Quick => c.without_plots().nresamples(10_000),
            Profile::Default | Profile::Full => c,
        };
        c.configure_from_args()
    }

    /// One line naming the profile, printed at the start of each bench binary.
    pub fn banner(&self) -> String {
        format!(
            "memory-bench: profile {}{}, fixture {} entries, LTM sizes {:?}",
            self.profile,
            if self.test_mode {
                " (--test: tiny sizes)"
            } else {
                ""
            },
            self.fixture_size(),
            self.ltm_sizes()
        )
    }
}

/// The settings of this process, read once. An unknown profile name ends the process with a clear
/// message and exit status 2, rather than silently measuring something else.
pub fn settings() -> &'static Settings {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let var = std::env::var(PROFILE_VAR).ok();
        match Settings::from_parts(var.as_deref(), std::env::args()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(2);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_or_empty_profile_means_default() {
        assert_eq!(Profile::parse(None), Ok(Profile::Default));
        assert_eq!(Profile::parse(Some(" ")), Ok(Profile::Default));
        assert_eq!(Profile::parse(Some("quick")), Ok(Profile::Quick));
        assert_eq!(Profile::parse(Some("full")), Ok(Profile::Full));
    }

    #[test]
    fn unknown_profile_is_an_error_naming_the_value() {
        let err = Profile::parse(Some("fast")).unwrap_err();
        assert!(err.to_string().contains("\"fast\""), "{err}");
        assert!(err.to_string().contains("quick, default or full"));
    }

    #[test]
    fn test_flag_shrinks_every_size_below_the_quick_profile() {
        let quick = Settings::from_parts(Some("quick"), ["bench"]).unwrap();
        let test = Settings::from_parts(Some("full"), ["bench", "--test"]).unwrap();
        assert!(test.test_mode && !quick.test_mode);
        assert!(test.fixture_size() < quick.fixture_size());
        assert!(test.ltm_sizes().iter().max() < quick.ltm_sizes().iter().max());
        assert!(test.footprint_entries() < quick.footprint_entries());
    }

    #[test]
    fn only_the_full_profile_reaches_a_million_entries() {
        let sizes = |p| Settings::from_parts(Some(p), ["b"]).unwrap().ltm_sizes();
        assert_eq!(sizes("full").last(), Some(&1_000_000));
        assert_eq!(sizes("default").last(), Some(&100_000));
        assert_eq!(sizes("quick").last(), Some(&10_000));
    }
}
