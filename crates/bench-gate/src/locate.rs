//! Where Criterion writes: the Criterion directory (one definition, shared by the gate's CLI and
//! the benches that read their own results back), the workspace root, the directory of one
//! benchmark, and the saved baselines found under a Criterion directory.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The Criterion directory: `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else
/// `target/criterion` of the outermost Cargo workspace enclosing the current directory (or of
/// the current directory itself, outside any workspace).
///
/// An environment variable set to the empty string counts as unset. (Criterion would take an
/// empty `CRITERION_HOME` as the current directory, and Cargo refuses an empty
/// `CARGO_TARGET_DIR`; neither is a place anyone means.) `cargo bench` runs the benches in the
/// package's directory, so from a bench this is the directory its Criterion writes to, unless
/// the target directory is moved by a Cargo config file, which only `$CARGO_TARGET_DIR` or
/// `$CRITERION_HOME` can tell us.
pub fn criterion_dir() -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    criterion_dir_from(|name| std::env::var_os(name), &cwd)
}

/// [`criterion_dir`] with the environment and the current directory given, for tests.
pub fn criterion_dir_from(env: impl Fn(&str) -> Option<OsString>, cwd: &Path) -> PathBuf {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    if let Some(home) = set("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = set("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    workspace_root(cwd)
        .unwrap_or_else(|| cwd.to_path_buf())
        .join("target")
        .join("criterion")
}

/// Where instruction counts are read from: `$GUNGRAUN_HOME` (gungraun's own variable), else
/// `gungraun/` beside the Criterion directory (gungraun writes to `$CARGO_TARGET_DIR/gungraun`,
/// the sibling of `target/criterion`).
pub fn instructions_dir(criterion_dir: &Path) -> PathBuf {
    instructions_dir_from(|name| std::env::var_os(name), criterion_dir)
}

/// [`instructions_dir`] with the environment given, for tests.
pub fn instructions_dir_from(
    env: impl Fn(&str) -> Option<OsString>,
    criterion_dir: &Path,
) -> PathBuf {
    if let Some(home) = env("GUNGRAUN_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home);
    }
    criterion_dir
        .parent()
        .unwrap_or(Path::new("."))
        .join("gungraun")
}

/// The outermost ancestor of `start` holding a `Cargo.toml` with a `[workspace]` table.
pub fn workspace_root(start: &Path) -> Option<PathBuf> {
    let mut found = None;
    for dir in start.ancestors() {
        let manifest = dir.join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&manifest) {
            if text.lines().any(|l| l.trim() == "[workspace]") {
                found = Some(dir.to_path_buf());
            }
        }
    }
    found
}

/// Longest directory-name component Criterion writes (it truncates longer ones).
const MAX_DIRECTORY_NAME_LEN: usize = 64;

/// Criterion's directory for the benchmark of group `group` with function and/or parameter
/// `parts` (e.g. `("scaling/ltm_keyword", ["1000"])` -> `<root>/scaling_ltm_keyword/1000`): each
/// part made file-name safe as Criterion 0.8 does. (Criterion appends `_2`, `_3` ... to a name
/// two ids would share; the `directory_name` of `benchmark.json` is authoritative.)
pub fn benchmark_dir(root: &Path, group: &str, parts: &[&str]) -> PathBuf {
    let mut dir = root.join(filename_safe(group));
    for part in parts {
        dir.push(filename_safe(part));
    }
    dir
}

fn filename_safe(s: &str) -> String {
    let mut safe: String = s
        .chars()
        .map(|c| match c {
            '?' | '"' | '/' | '\\' | '*' | '<' | '>' | ':' | '|' | '^' => '_',
            c => c,
        })
        .collect();
    let mut end = safe.len().min(MAX_DIRECTORY_NAME_LEN);
    while !safe.is_char_boundary(end) {
        end -= 1;
    }
    safe.truncate(end);
    if cfg!(windows) {
        safe = safe.trim_end().to_lowercase();
    }
    safe
}

/// Directories holding a saved Criterion benchmark (`benchmark.json` inside), with the baseline
/// name (the directory's own name). `change/` holds Criterion's comparison, not a baseline.
pub(crate) fn baseline_dirs(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let path = entry.path();
            let is_dir = entry.file_type().map_err(|e| Error::io(&path, e))?.is_dir();
            if !is_dir {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if dir == root && name == "report" {
                continue;
            }
            if name != "change" && path.join("benchmark.json").is_file() {
                out.push((name, path));
            } else {
                stack.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Fails with a message naming `root` unless it is an existing directory.
pub(crate) fn check_dir(root: &Path) -> Result<()> {
    if root.is_dir() {
        return Ok(());
    }
    let problem = if root.exists() {
        "not a directory, so it cannot be the Criterion directory"
    } else {
        "the Criterion directory does not exist"
    };
    Err(Error::invalid(
        root,
        format!(
            "{problem} (run the benchmarks first, or point --criterion-dir or CRITERION_HOME \
             at it)"
        ),
    ))
}

/// Baselines present under `root` and how many benchmarks each holds.
pub fn list(root: &Path) -> Result<BTreeMap<String, usize>> {
    check_dir(root)?;
    let mut counts = BTreeMap::new();
    for (name, _) in baseline_dirs(root)? {
        *counts.entry(name).or_insert(0) += 1;
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn criterion_home_beats_cargo_target_dir_which_beats_the_workspace() {
        let cwd = Path::new("/nonexistent/project");
        let both = [("CRITERION_HOME", "/c"), ("CARGO_TARGET_DIR", "/t")];
        assert_eq!(criterion_dir_from(env(&both), cwd), Path::new("/c"));
        let target = [("CARGO_TARGET_DIR", "/t")];
        assert_eq!(
            criterion_dir_from(env(&target), cwd),
            Path::new("/t/criterion")
        );
        assert_eq!(
            criterion_dir_from(env(&[]), cwd),
            Path::new("/nonexistent/project/target/criterion")
        );
    }

    #[test]
    fn an_empty_environment_variable_counts_as_unset() {
        let cwd = Path::new("/nonexistent/project");
        let empty = [("CRITERION_HOME", ""), ("CARGO_TARGET_DIR", "/t")];
        assert_eq!(
            criterion_dir_from(env(&empty), cwd),
            Path::new("/t/criterion")
        );
        let both_empty = [("CRITERION_HOME", ""), ("CARGO_TARGET_DIR", "")];
        assert_eq!(
            criterion_dir_from(env(&both_empty), cwd),
            Path::new("/nonexistent/project/target/criterion")
        );
    }

    #[test]
    fn instruction_counts_live_beside_the_criterion_directory_unless_gungraun_home_says() {
        let crit = Path::new("/t/criterion");
        assert_eq!(
            instructions_dir_from(env(&[]), crit),
            Path::new("/t/gungraun")
        );
        let home = [("GUNGRAUN_HOME", "/g")];
        assert_eq!(instructions_dir_from(env(&home), crit), Path::new("/g"));
        let empty = [("GUNGRAUN_HOME", "")];
        assert_eq!(
            instructions_dir_from(env(&empty), crit),
            Path::new("/t/gungraun")
        );
    }

    #[test]
    fn the_fallback_is_the_target_of_the_outermost_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let member = dir.path().join("crates/member/src");
        std::fs::create_dir_all(&member).unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "[workspace]\n").unwrap();
        std::fs::write(
            dir.path().join("crates/member/Cargo.toml"),
            "[package]\nname = \"member\"\n",
        )
        .unwrap();
        assert_eq!(
            criterion_dir_from(env(&[]), &member),
            dir.path().join("target/criterion")
        );
    }

    /// Every benchmark of the fixture (real Criterion output) lives where `benchmark_dir` says.
    #[test]
    fn benchmark_dir_names_directories_as_criterion_does() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/criterion");
        let dirs = baseline_dirs(&root).unwrap();
        assert!(!dirs.is_empty());
        for (_, dir) in dirs {
            let text = std::fs::read_to_string(dir.join("benchmark.json")).unwrap();
            let info: serde_json::Value = serde_json::from_str(&text).unwrap();
            let field = |name: &str| info[name].as_str();
            let parts: Vec<&str> = [field("function_id"), field("value_str")]
                .into_iter()
                .flatten()
                .collect();
            assert_eq!(
                benchmark_dir(&root, field("group_id").unwrap(), &parts),
                root.join(field("directory_name").unwrap()),
                "{info}"
            );
        }
    }

    #[test]
    fn long_names_are_cut_like_criterion_cuts_them() {
        let long = "é".repeat(40); // 80 bytes; the cut must fall on a character boundary
        let dir = benchmark_dir(Path::new("/r"), "g/x", &[&long]);
        let last = dir.file_name().unwrap().to_str().unwrap();
        assert_eq!(last.len(), MAX_DIRECTORY_NAME_LEN);
        assert!(dir.starts_with("/r/g_x"));
    }
}
