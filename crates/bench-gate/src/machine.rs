//! Describes the machine a baseline was recorded on. Absolute times do not travel between
//! machines, so exports record this and a comparison warns when the two sides differ.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Where and when a baseline was measured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model name (from /proc/cpuinfo on Linux), or "unknown".
    pub cpu_model: String,
    /// Logical cores available to the process.
    pub cores: usize,
    /// Operating system and kernel.
    pub os: String,
    /// `rustc --version`, or "unknown".
    pub rustc: String,
    /// UTC date and time of the export, RFC 3339.
    pub date: String,
    /// `git rev-parse HEAD` of the working directory, if it is a git checkout.
    #[serde(default)]
    pub git_commit: Option<String>,
}

impl Machine {
    /// Describes the current machine. Missing information becomes "unknown", never an error:
    /// an export should not fail because `rustc` is not on PATH.
    pub fn current() -> Machine {
        Machine {
            cpu_model: cpu_model().unwrap_or_else(|| "unknown".into()),
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            os: os_description(),
            rustc: command_line("rustc", &["--version"]).unwrap_or_else(|| "unknown".into()),
            date: rfc3339_now(),
            git_commit: command_line("git", &["rev-parse", "HEAD"]),
        }
    }

    /// Human-readable differences that make absolute numbers incomparable.
    pub fn differences(&self, other: &Machine) -> Vec<String> {
        let mut out = Vec::new();
        if self.cpu_model != other.cpu_model {
            out.push(format!("CPU '{}' vs '{}'", self.cpu_model, other.cpu_model));
        }
        if self.cores != other.cores {
            out.push(format!("{} vs {} cores", self.cores, other.cores));
        }
        if self.os != other.os {
            out.push(format!("OS '{}' vs '{}'", self.os, other.os));
        }
        if self.rustc != other.rustc {
            out.push(format!("'{}' vs '{}'", self.rustc, other.rustc));
        }
        out
    }
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name") || l.starts_with("Model"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

fn os_description() -> String {
    let pretty = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string());
    let mut out = format!("{} {}", std::env::consts::OS, std::env::consts::ARCH);
    if let Some(p) = pretty {
        out.push_str(&format!(", {p}"));
    }
    if let Some(k) = kernel {
        out.push_str(&format!(", kernel {k}"));
    }
    out
}

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let line = text.lines().next()?.trim().to_string();
    (!line.is_empty()).then_some(line)
}

fn rfc3339_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    rfc3339(secs)
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm, avoiding a date-time dependency.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
    }

    #[test]
    fn identical_machines_have_no_differences() {
        let m = Machine::current();
        assert!(m.differences(&m.clone()).is_empty());
        let other = Machine {
            cores: m.cores + 1,
            ..m.clone()
        };
        assert_eq!(m.differences(&other).len(), 1);
    }
}
