//! The `bench-gate` command line: compare, report, history, export, import, list and slo over
//! Criterion's saved baselines and callgrind's counts. Exit codes are part of the interface: 0
//! pass, 2 regression or broken budget, 1 error (including bad arguments), so CI can tell a slow
//! PR from a broken pipeline.

use std::ffi::OsStr;
use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use bench_gate::history::History;
use bench_gate::output::html::{comparison::ComparisonPage, history as history_page};
use bench_gate::{
    callgrind, config::Config, export, locate, machine::Machine, output, slo, source, verdict,
};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "bench-gate",
    version,
    about = "Regression verdicts from Criterion baselines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Markdown,
    Json,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum ExportFormat {
    Json,
    Bmf,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Compare NEW against BASE (baseline names, exported files, or sets of interleaved rounds).
    /// Exit 2 on a regression.
    Compare {
        /// Baseline name under the Criterion directory, path of an exported baseline, or
        /// `NAME-r*` for every round of NAME (quote it from the shell).
        base: String,
        /// Same as BASE.
        new: String,
        /// Compare rounds 1..=N of each side (baselines BASE-r1.., NEW-r1..) in pairs.
        #[arg(long, value_name = "N")]
        rounds: Option<usize>,
        /// A warning to print with the report (e.g. a measurement channel that was skipped);
        /// repeatable.
        #[arg(long = "warn", value_name = "TEXT")]
        warnings: Vec<String>,
        /// Criterion directory (default: $CRITERION_HOME, $CARGO_TARGET_DIR/criterion, target/criterion).
        #[arg(long)]
        criterion_dir: Option<PathBuf>,
        /// Configuration file (default: bench-gate.toml at the workspace root).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Write the comparison of NEW against BASE as one self-contained HTML page. Exit codes
    /// as `compare`: 0 pass, 2 regression, 1 error.
    Report {
        /// Baseline name under the Criterion directory, path of an exported baseline, or
        /// `NAME-r*` for every round of NAME (quote it from the shell).
        base: String,
        /// Same as BASE.
        new: String,
        /// Compare rounds 1..=N of each side (baselines BASE-r1.., NEW-r1..) in pairs.
        #[arg(long, value_name = "N")]
        rounds: Option<usize>,
        /// A warning to show on the page (e.g. a measurement channel that was skipped);
        /// repeatable.
        #[arg(long = "warn", value_name = "TEXT")]
        warnings: Vec<String>,
        /// The HTML file to write.
        #[arg(long, value_name = "FILE")]
        html: PathBuf,
        /// Criterion directory (default: $CRITERION_HOME, $CARGO_TARGET_DIR/criterion, target/criterion).
        #[arg(long)]
        criterion_dir: Option<PathBuf>,
        /// Configuration file (default: bench-gate.toml at the workspace root).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Write the history of exported baselines (ordered by commit date) as one HTML page.
    History {
        /// Exported baseline files, e.g. baselines/*.json, in any order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The HTML file to write.
        #[arg(long, value_name = "FILE")]
        html: PathBuf,
        /// Configuration file (default: bench-gate.toml at the workspace root).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Write one baseline as a single JSON file (a superset of critcmp's export), or in the
    /// Bencher Metric Format.
    Export {
        /// Baseline name under the Criterion directory (with its instruction counts).
        name: String,
        #[arg(long)]
        criterion_dir: Option<PathBuf>,
        /// Output file (default: standard output).
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
        /// Configuration file used to record each benchmark's unit.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Name recorded in the export, which critcmp keys baselines by (default:
        /// NAME@<short commit>, so exports of different commits stay apart).
        #[arg(long = "as", value_name = "EXPORT_NAME")]
        as_name: Option<String>,
        /// `json`: bench-gate's export (critcmp reads it); `bmf`: Bencher Metric Format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
        format: ExportFormat,
    },
    /// Restore an exported baseline into the Criterion directory.
    Import {
        /// Exported baseline file.
        file: PathBuf,
        #[arg(long)]
        criterion_dir: Option<PathBuf>,
        /// Baseline name to restore as (default: the name recorded in the file).
        #[arg(long = "as")]
        as_name: Option<String>,
    },
    /// List baselines present and their benchmark counts.
    List {
        #[arg(long)]
        criterion_dir: Option<PathBuf>,
    },
    /// Check absolute budgets ([[slo]] in the config) on one baseline. Exit 2 when one is broken.
    Slo {
        /// Baseline name under the Criterion directory, or path of an exported baseline.
        baseline: String,
        #[arg(long)]
        criterion_dir: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

fn colour() -> bool {
    colour_wanted(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

/// Colour only on a terminal, and not when `NO_COLOR` is set to a non-empty value
/// (<https://no-color.org>).
fn colour_wanted(stdout_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stdout_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// Writes `text` and a newline to standard output. A reader that has gone away (`| head -c 100`)
/// ends the output quietly and the command still exits with its own code: `println!` would
/// panic (exit 101), since Rust ignores SIGPIPE and the write fails with a broken pipe. Any
/// other failure to write is an error (exit 1).
fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => written.context("writing to standard output"),
    }
}

fn dir(explicit: Option<PathBuf>) -> PathBuf {
    explicit.unwrap_or_else(locate::criterion_dir)
}

/// Runs one command and returns its exit code (0 or 2); errors become exit 1 in `main`.
fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Compare {
            base,
            new,
            rounds,
            warnings,
            criterion_dir,
            config,
            format,
        } => compare_command(
            (&base, &new),
            rounds,
            warnings,
            dir(criterion_dir),
            config,
            format,
        ),
        Command::Report {
            base,
            new,
            rounds,
            warnings,
            html,
            criterion_dir,
            config,
        } => report_command(
            (&base, &new),
            rounds,
            warnings,
            &html,
            dir(criterion_dir),
            config,
        ),
        Command::History {
            files,
            html,
            config,
        } => history_command(&files, &html, config),
        Command::Export {
            name,
            criterion_dir,
            output,
            config,
            as_name,
            format,
        } => export_command(&name, dir(criterion_dir), output, config, as_name, format),
        Command::Import {
            file,
            criterion_dir,
            as_name,
        } => import_command(&file, dir(criterion_dir), as_name),
        Command::List { criterion_dir } => list_command(dir(criterion_dir)),
        Command::Slo {
            baseline,
            criterion_dir,
            config,
            format,
        } => slo_command(&baseline, dir(criterion_dir), config, format),
    }
}

fn compare_command(
    (base, new): (&str, &str),
    rounds: Option<usize>,
    warnings: Vec<String>,
    root: PathBuf,
    config: Option<PathBuf>,
    format: Format,
) -> anyhow::Result<u8> {
    let config = Config::discover(config.as_deref())?;
    let base = source::resolve_side(base, rounds, &root).context("reading BASE")?;
    let new = source::resolve_side(new, rounds, &root).context("reading NEW")?;
    let mut report = verdict::compare_sides(&base, &new, &config)?;
    report.warnings.extend(warnings);
    let text = match format {
        Format::Text => output::text::render(&report, colour()),
        Format::Markdown => output::markdown::render(&report),
        Format::Json => output::json::render(&report),
    };
    print(text.trim_end())?;
    // The text table prints its warnings itself; the other formats hold them inside.
    if format != Format::Text {
        for w in &report.warnings {
            eprintln!("bench-gate: warning: {w}");
        }
    }
    Ok(report.exit_code() as u8)
}

fn report_command(
    (base, new): (&str, &str),
    rounds: Option<usize>,
    warnings: Vec<String>,
    html: &Path,
    root: PathBuf,
    config: Option<PathBuf>,
) -> anyhow::Result<u8> {
    let config = Config::discover(config.as_deref())?;
    let base = source::resolve_side(base, rounds, &root).context("reading BASE")?;
    let new = source::resolve_side(new, rounds, &root).context("reading NEW")?;
    let mut report = verdict::compare_sides(&base, &new, &config)?;
    report.warnings.extend(warnings);
    let mut page = ComparisonPage::of_sides(&report, &base, &new)?;
    // Links to Criterion's pages are relative, so the page and the Criterion directory can move
    // together (a CI artifact holding both).
    if let (Ok(page_dir), Ok(root)) = (page_dir(html), root.canonicalize()) {
        page.link_criterion_pages(&root, &page_dir);
    }
    write_page(html, &page.render()?)?;
    let c = report.counts();
    eprintln!(
        "bench-gate: wrote {} ({} benchmarks: {} regressed, {} inconclusive, {} improved; {})",
        html.display(),
        report.rows.len(),
        c.regressed,
        c.inconclusive,
        c.improved,
        if report.passed() { "pass" } else { "FAIL" }
    );
    for w in &report.warnings {
        eprintln!("bench-gate: warning: {w}");
    }
    Ok(report.exit_code() as u8)
}

fn history_command(files: &[PathBuf], html: &Path, config: Option<PathBuf>) -> anyhow::Result<u8> {
    let config = Config::discover(config.as_deref())?;
    let exports = files
        .iter()
        .map(|f| export::read(f))
        .collect::<Result<Vec<_>, _>>()?;
    let history = History::build(exports, &config, &git_commit_time)?;
    write_page(html, &history_page::render(&history)?)?;
    let worse = history
        .series
        .iter()
        .filter(|s| s.worst_step().is_some())
        .count();
    eprintln!(
        "bench-gate: wrote {} ({} exports, {} benchmarks, {worse} with a step for the worse)",
        html.display(),
        history.exports.len(),
        history.series.len()
    );
    for w in &history.warnings {
        eprintln!("bench-gate: warning: {w}");
    }
    Ok(0)
}

/// The directory a page will be written to, absolute.
fn page_dir(html: &Path) -> std::io::Result<PathBuf> {
    match html.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.canonicalize(),
        _ => std::env::current_dir(),
    }
}

fn write_page(html: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(html, text).with_context(|| format!("writing {}", html.display()))
}

/// Unix time of a commit of the git repository around the current directory, if git knows it.
fn git_commit_time(commit: &str) -> Option<i64> {
    // Only a hash goes to git: never something it could read as an option or a revision range.
    let is_hash = (4..=64).contains(&commit.len()) && commit.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_hash {
        return None;
    }
    let output = std::process::Command::new("git")
        .args(["show", "-s", "--format=%ct", commit])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8(output.stdout).ok()?.trim().parse().ok()
}

fn export_command(
    name: &str,
    root: PathBuf,
    output: Option<PathBuf>,
    config: Option<PathBuf>,
    as_name: Option<String>,
    format: ExportFormat,
) -> anyhow::Result<u8> {
    let config = Config::discover(config.as_deref())?;
    let baseline = source::BaselineSource::Saved(name.to_string()).load(&root)?;
    let (json, count, what) = match format {
        ExportFormat::Json => {
            let mut file = export::to_export(&baseline, &config, Machine::current());
            if let Some(export_name) = as_name {
                export::validate_name(&export_name).map_err(anyhow::Error::msg)?;
                file = file.renamed(&export_name);
            }
            let what = format!("as '{}'", file.name);
            (export::to_json(&file), file.len(), what)
        }
        ExportFormat::Bmf => {
            let bmf = export::to_bmf(&baseline, &config)?;
            let json = serde_json::to_string_pretty(&bmf).context("serialising BMF")?;
            (json, bmf.len(), "in the Bencher Metric Format".to_string())
        }
    };
    match output {
        Some(path) => {
            std::fs::write(&path, json + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "bench-gate: exported {count} benchmark(s) of '{name}' {what} to {}",
                path.display()
            );
        }
        None => print(&json)?,
    }
    Ok(0)
}

fn import_command(file: &Path, root: PathBuf, as_name: Option<String>) -> anyhow::Result<u8> {
    let baseline = export::read(file)?;
    let name = as_name.unwrap_or_else(|| baseline.name.clone());
    let (n, counts) = export::import(&baseline, &root, &name)?;
    eprintln!(
        "bench-gate: imported {n} benchmark(s) as baseline '{name}' into {}",
        root.display()
    );
    if counts > 0 {
        eprintln!(
            "bench-gate: left out {counts} instruction count(s): they are not Criterion's to \
             hold (compare the export file itself to use them)"
        );
    }
    Ok(0)
}

fn list_command(root: PathBuf) -> anyhow::Result<u8> {
    let mut baselines = if root.is_dir() {
        locate::list(&root)?
    } else {
        Default::default()
    };
    for (name, n) in callgrind::list(&locate::instructions_dir(&root))? {
        *baselines.entry(name).or_insert(0) += n;
    }
    if baselines.is_empty() && !root.is_dir() {
        locate::list(&root)?;
    }
    if baselines.is_empty() {
        bail!("{}: no Criterion baselines found", root.display());
    }
    let width = baselines
        .keys()
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(0)
        .max("baseline".len());
    let mut text = format!("{:width$}  benchmarks", "baseline");
    for (name, count) in baselines {
        text.push_str(&format!("\n{name:width$}  {count}"));
    }
    print(&text)?;
    Ok(0)
}

fn slo_command(
    baseline: &str,
    root: PathBuf,
    config: Option<PathBuf>,
    format: Format,
) -> anyhow::Result<u8> {
    let config = Config::discover(config.as_deref())?;
    let baseline = source::resolve(baseline, &root)?;
    let report = slo::check(&baseline, &config)?;
    let text = match format {
        Format::Text => output::text::render_slo(&report, colour()),
        Format::Markdown => output::markdown::render_slo(&report),
        Format::Json => output::json::render_slo(&report),
    };
    print(text.trim_end())?;
    Ok(report.exit_code() as u8)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap exits 2 on usage errors, which would read as "regression"; keep 1 for errors.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("bench-gate: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some(OsStr::new(""))));
        assert!(!colour_wanted(true, Some(OsStr::new("1"))));
        assert!(!colour_wanted(false, None));
    }
}
