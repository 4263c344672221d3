//! The embedder a long-term store's vectors were made with: the rule every backend's open
//! applies to the one it records ([`EmbedderCheck::apply`]), and re-embedding a store whose
//! vectors another embedder made ([`EmbedderCheck::reembed`]), which each backend runs inside its
//! open over its own rows ([`StoredVectors`]).
//!
//! A store records [`Embedder::id`](crate::Embedder::id). While it is being re-embedded it
//! records [`REEMBEDDING`] followed by the target's id instead, and how far the re-embedding
//! has come: an interrupted one is taken up where it stopped by the next open with that
//! embedder, and no open with another takes the half-done store for one embedder's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::embed::{checked_vectors, Embedder};
use crate::entry::EntryId;
use crate::error::{Error, Result};

/// What a store records, followed by the target embedder's id, while it is re-embedded.
pub(crate) const REEMBEDDING: &str = "reembedding:";

/// Rows re-embedded per batch (one embedder call, one transaction): big enough for a model's
/// batching, small enough that an interruption loses little.
const BATCH: usize = 256;

/// How often a long re-embedding reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The longest [`Embedder::id`](crate::Embedder::id) a store records, in bytes.
pub(crate) const MAX_ID_BYTES: usize = 1024;

/// Checks an embedder's id before a store records it or compares it with its record: not
/// empty, at most [`MAX_ID_BYTES`], no control characters (it is shown in errors and logs), and
/// not beginning with [`REEMBEDDING`], which would read as the mark of a re-embedding and take a
/// half re-embedded store for this embedder's.
pub(crate) fn check_id(id: &str) -> Result<()> {
    let problem = if id.is_empty() {
        "is empty".to_owned()
    } else if id.len() > MAX_ID_BYTES {
        format!("is longer than {MAX_ID_BYTES} bytes")
    } else if id.chars().any(char::is_control) {
        "holds a control character".to_owned()
    } else if id.starts_with(REEMBEDDING) {
        format!("begins with {REEMBEDDING:?}, which a store records while it is re-embedded")
    } else {
        return Ok(());
    };
    let shown: String = id.chars().take(80).collect();
    Err(Error::InvalidConfig(format!(
        "the embedder's id {shown:?} {problem}; Embedder::id must name what its vectors are \
         comparable with in printable text"
    )))
}

/// What an open does when the store's vectors are another embedder's
/// (`MemoryBuilder::accept_embedder_change`, `MemoryBuilder::reembed_on_embedder_change`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum OnEmbedderChange {
    /// Fails with [`Error::StoreEmbedderMismatch`] (the default).
    #[default]
    Refuse,
    /// Takes the stored vectors as this embedder's and records it.
    Accept,
    /// Recomputes every stored vector with this embedder before the store opens.
    Reembed,
}

/// The embedder a long-term store is opened with, checked by the backend's open against the
/// one the store recorded, before it loads anything.
#[derive(Clone)]
pub(crate) struct EmbedderCheck {
    pub embedder: Arc<dyn Embedder>,
    /// The store's configured `embedding_dim` (the embedder's, checked by the caller).
    pub dim: usize,
    /// [`Embedder::id`] of `embedder`.
    pub id: String,
    pub on_change: OnEmbedderChange,
}

impl std::fmt::Debug for EmbedderCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedderCheck")
            .field("id", &self.id)
            .field("on_change", &self.on_change)
            .finish_non_exhaustive()
    }
}

/// What a backend's open does after [`EmbedderCheck::apply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum EmbedderStep {
    /// The stored vectors are the embedder's: nothing to do.
    Ready,
    /// Record this (the embedder's id: a store that names none yet, or an accepted change).
    Record(String),
    /// Record this (the re-embedding mark) and forget any earlier re-embedding's progress, then
    /// re-embed.
    StartReembedding(String),
    /// Take up the interrupted re-embedding to this embedder where it stopped.
    ResumeReembedding,
}

impl EmbedderStep {
    /// What the store records now, in the transaction that read the record where the backend
    /// has one. A store that records it also forgets any re-embedding progress.
    pub fn record(&self) -> Option<&str> {
        match self {
            EmbedderStep::Record(value) | EmbedderStep::StartReembedding(value) => Some(value),
            EmbedderStep::Ready | EmbedderStep::ResumeReembedding => None,
        }
    }

    /// Whether the store is to be re-embedded before it opens.
    pub fn reembeds(&self) -> bool {
        matches!(
            self,
            EmbedderStep::StartReembedding(_) | EmbedderStep::ResumeReembedding
        )
    }
}

/// What re-embedding needs of a backend's rows. Each method is one transaction.
pub(crate) trait StoredVectors {
    /// The last id whose vector the running re-embedding has written (`None`: none yet).
    fn progress(&mut self) -> Result<Option<EntryId>>;

    /// The number of stored entries (for progress reports).
    fn count(&mut self) -> Result<u64>;

    /// Up to `limit` entries with ids above `after`, in id order: id and content. A row whose
    /// content cannot be read is left out (the open's own checks set it aside).
    fn contents_after(
        &mut self,
        after: Option<EntryId>,
        limit: usize,
    ) -> Result<Vec<(EntryId, String)>>;

    /// Replaces the vectors of `rows` (`None`: the text has nothing to embed), and records the
    /// last id as the progress, in one transaction.
    fn write_vectors(&mut self, rows: &[(EntryId, Option<Vec<f32>>)]) -> Result<()>;

    /// Tidies what replacing every vector left behind, before the re-embedding is recorded as
    /// done (a server's vector index full of old versions); nothing by default.
    fn tidy(&mut self) -> Result<()> {
        Ok(())
    }

    /// Records `value` (the store's embedder, or the mark of a re-embedding begun) and forgets
    /// the progress, in one transaction.
    fn record(&mut self, value: &str) -> Result<()>;
}

impl EmbedderCheck {
    /// Checks `recorded` (what the store at `location` names, `None` before its first record)
    /// against this embedder, under the caller's [`OnEmbedderChange`].
    pub fn apply(&self, location: &str, recorded: Option<&str>) -> Result<EmbedderStep> {
        let Some(stored) = recorded else {
            // A new store, or one written before embedders were recorded: nothing tells
            // which embedder wrote it, so it takes this one.
            return Ok(EmbedderStep::Record(self.id.clone()));
        };
        if stored == self.id {
            return Ok(EmbedderStep::Ready);
        }
        let target = stored.strip_prefix(REEMBEDDING);
        if target == Some(self.id.as_str()) {
            tracing::info!(
                store = %location,
                embedder = %self.id,
                "the store's vectors are being re-embedded with this embedder (the record says \
                 so): going on from its last committed batch"
            );
            return Ok(EmbedderStep::ResumeReembedding);
        }
        match (self.on_change, target) {
            // A store part way through a re-embedding holds two embedders' vectors: no
            // embedder's, whatever the caller says of two that make the same vectors.
            (OnEmbedderChange::Refuse, _) | (OnEmbedderChange::Accept, Some(_)) => {
                Err(Error::StoreEmbedderMismatch {
                    store: location.to_string(),
                    stored: match target {
                        Some(target) => format!(
                            "{target} in part and the earlier embedder's in the rest (a \
                             re-embedding with that embedder is under way in another instance, \
                             or was interrupted; opening the store with that embedder finishes \
                             it, and reembed_on_embedder_change moves it to this one)"
                        ),
                        None => stored.to_string(),
                    },
                    configured: self.id.clone(),
                })
            }
            (OnEmbedderChange::Accept, None) => {
                tracing::warn!(
                    store = %location,
                    %stored,
                    configured = %self.id,
                    "opening the store with another embedder than the one that wrote its \
                     vectors, as asked (accept_embedder_change)"
                );
                Ok(EmbedderStep::Record(self.id.clone()))
            }
            (OnEmbedderChange::Reembed, _) => {
                tracing::info!(
                    store = %location,
                    %stored,
                    configured = %self.id,
                    "re-embedding the store's vectors with the configured embedder, as asked \
                     (reembed_on_embedder_change)"
                );
                Ok(EmbedderStep::StartReembedding(format!(
                    "{REEMBEDDING}{}",
                    self.id
                )))
            }
        }
    }

    /// Recomputes the vector of every entry of `rows` after its recorded progress, in id order
    /// and in committed batches, then records this embedder. Reports its progress in tracing
    /// events; an interruption loses at most the batch under way.
    pub fn reembed(&self, location: &str, rows: &mut dyn StoredVectors) -> Result<()> {
        let began = Instant::now();
        let total = rows.count()?;
        let mut after = rows.progress()?;
        let mut done = 0u64;
        let mut reported = Instant::now();
        tracing::info!(
            store = %location,
            embedder = %self.id,
            entries = total,
            resumed_after = after.map(|id| id.0),
            "re-embedding the store's vectors"
        );
        loop {
            let batch = rows.contents_after(after, BATCH)?;
            let Some(&(last, _)) = batch.last() else {
                break;
            };
            let texts: Vec<&str> = batch.iter().map(|(_, text)| text.as_str()).collect();
            let vectors = checked_vectors(self.embedder.as_ref(), self.dim, &texts);
            let written: Vec<(EntryId, Option<Vec<f32>>)> =
                batch.iter().map(|(id, _)| *id).zip(vectors).collect();
            rows.write_vectors(&written)?;
            after = Some(last);
            done += written.len() as u64;
            if reported.elapsed() >= PROGRESS_EVERY {
                reported = Instant::now();
                tracing::info!(
                    store = %location,
                    done,
                    entries = total,
                    per_second = (done as f64 / began.elapsed().as_secs_f64()) as u64,
                    "re-embedding the store's vectors"
                );
            }
        }
        rows.tidy()?;
        rows.record(&self.id)?;
        tracing::info!(
            store = %location,
            embedder = %self.id,
            reembedded = done,
            seconds = began.elapsed().as_secs_f64(),
            "the store's vectors are re-embedded"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_a_store_could_misread_are_refused() {
        for good in ["hashing-v1/384", "bert-mean/384/1a2b3c4d", "x"] {
            assert!(check_id(good).is_ok(), "{good}");
        }
        let long = "a".repeat(MAX_ID_BYTES + 1);
        for bad in [
            "",
            "reembedding:hashing-v1/384",
            "two\nlines",
            long.as_str(),
        ] {
            let e = check_id(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidConfig(_)), "{bad:?}: {e}");
        }
        assert!(check_id(&"a".repeat(MAX_ID_BYTES)).is_ok());
    }
}
