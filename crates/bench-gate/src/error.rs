//! Typed errors of the bench-gate library. Every variant names the file (or baseline) concerned
//! so the CLI can print one actionable line and exit 1 instead of panicking or passing silently.

use std::path::PathBuf;

/// Result alias used throughout bench-gate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong while reading, comparing or writing baselines.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    // The I/O error is part of the message rather than a `source()`, so the CLI's error chain
    // does not print it twice.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying I/O error.
        error: std::io::Error,
    },
    /// A JSON file is truncated, malformed or does not have the expected shape.
    #[error("{}: {}: {error}", path.display(), json_problem(error))]
    Json {
        /// The file concerned.
        path: PathBuf,
        /// The parser's complaint, with line and column.
        error: serde_json::Error,
    },
    /// The configuration file could not be parsed or holds an unknown key or bad value.
    #[error("{}: {message}", path.display())]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// No baseline of that name exists under the Criterion directory.
    #[error("baseline '{name}' not found under {} (baselines present: {present})", dir.display())]
    MissingBaseline {
        /// The requested baseline name.
        name: String,
        /// The Criterion directory searched.
        dir: PathBuf,
        /// Comma-separated list of the baselines that do exist.
        present: String,
    },
    /// A file was read but its content is unusable (zero samples, NaN, negative counts ...).
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The two sides of a comparison measure one benchmark in different units.
    #[error("benchmark '{id}': unit mismatch, {base_unit} in {} but {new_unit} in {}", base_source.display(), new_source.display())]
    UnitMismatch {
        /// The benchmark id.
        id: String,
        /// Unit recorded (or configured) on the BASE side.
        base_unit: String,
        /// Where BASE came from.
        base_source: PathBuf,
        /// Unit recorded (or configured) on the NEW side.
        new_unit: String,
        /// Where NEW came from.
        new_source: PathBuf,
    },
    /// A chart of an HTML page could not be drawn.
    #[error("drawing the chart of '{id}': {message}")]
    Chart {
        /// The benchmark whose chart failed.
        id: String,
        /// What the plotting library reported.
        message: String,
    },
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error,
        }
    }

    /// Shorthand for [`Error::Json`].
    pub fn json(path: impl Into<PathBuf>, error: serde_json::Error) -> Self {
        Error::Json {
            path: path.into(),
            error,
        }
    }
}

/// What kind of JSON problem `error` is, in the words a user would search for.
fn json_problem(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Eof => "truncated JSON",
        serde_json::error::Category::Syntax => "malformed JSON",
        serde_json::error::Category::Data => "unexpected JSON content",
        serde_json::error::Category::Io => "unreadable JSON",
    }
}
