//! Where a baseline comes from: a command-line argument names either a baseline saved under the
//! Criterion directory or an exported file. [`BaselineSource`] says which, and loads it through
//! [`crate::criterion`] or [`crate::export`].

use std::path::{Path, PathBuf};

use crate::criterion::{self, Baseline};
use crate::error::Result;
use crate::export;

/// A baseline as named on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaselineSource {
    /// A baseline saved by Criterion (`--save-baseline NAME`, or its own `base`/`new`).
    Saved(String),
    /// An exported baseline file (`bench-gate export`).
    Exported(PathBuf),
}

impl BaselineSource {
    /// Reads a command-line argument: an existing file, or anything ending in `.json`, is an
    /// export (so a mistyped file name gets "file not found", not "no such baseline"); anything
    /// else is a baseline name.
    pub fn parse(arg: &str) -> BaselineSource {
        let path = Path::new(arg);
        if path.is_file() || arg.ends_with(".json") {
            BaselineSource::Exported(path.to_path_buf())
        } else {
            BaselineSource::Saved(arg.to_string())
        }
    }

    /// Loads the baseline; `criterion_dir` is where saved baselines are looked up.
    pub fn load(&self, criterion_dir: &Path) -> Result<Baseline> {
        match self {
            BaselineSource::Saved(name) => criterion::load(criterion_dir, name),
            BaselineSource::Exported(path) => export::read(path),
        }
    }
}

/// Loads the baseline a command-line argument names (see [`BaselineSource::parse`]).
pub fn resolve(arg: &str, criterion_dir: &Path) -> Result<Baseline> {
    BaselineSource::parse(arg).load(criterion_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_name_is_a_file_and_anything_else_a_saved_baseline() {
        assert_eq!(
            BaselineSource::parse("baselines/missing.json"),
            BaselineSource::Exported("baselines/missing.json".into())
        );
        assert_eq!(
            BaselineSource::parse("main"),
            BaselineSource::Saved("main".into())
        );
        let file = tempfile::NamedTempFile::new().unwrap();
        let arg = file.path().to_str().unwrap();
        assert_eq!(
            BaselineSource::parse(arg),
            BaselineSource::Exported(file.path().to_path_buf())
        );
    }
}
