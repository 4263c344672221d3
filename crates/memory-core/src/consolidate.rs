//! Consolidation: scoring short-term entries and moving the ones worth keeping into long-term
//! memory, skipping near-duplicates, and dropping (and counting) expired low scorers.

use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::entry::{EntryId, MemoryEntry, Tier};
use crate::error::Result;
use crate::memory::Inner;
use crate::stm::WindowItem;

/// What one consolidation did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsolidationReport {
    /// Short-term entries scored.
    pub examined: usize,
    /// Entries written to long-term memory.
    pub promoted: usize,
    /// Entries not written because long-term memory already holds a near-duplicate.
    pub duplicates: usize,
    /// Entries that left short-term memory (evicted or expired) scoring below the threshold, and
    /// were therefore dropped.
    pub dropped: usize,
    /// Entries below the threshold that stay in their live window and are looked at again later.
    pub kept_in_stm: usize,
    /// Sessions that expired and were removed from short-term memory.
    pub expired_sessions: usize,
}

enum Decision {
    Promote,
    Duplicate,
    Below,
}

/// Runs one consolidation over the whole store. One at a time (callers hold `inner.consolidating`).
pub(crate) fn consolidate(inner: &Inner) -> Result<ConsolidationReport> {
    let now = inner.clock.now();
    let handoff = inner.stm.sweep(now);
    let mut report = ConsolidationReport {
        expired_sessions: handoff.expired_sessions,
        ..ConsolidationReport::default()
    };
    let threshold = inner.config.consolidation.threshold;
    let dup = inner.config.consolidation.duplicate_similarity;

    // Embeddings of entries promoted in this run, per agent, so that two near-identical entries
    // in one batch are not both stored.
    let mut batch: FxHashMap<Arc<str>, Vec<Arc<[f32]>>> = FxHashMap::default();
    let mut to_store: Vec<MemoryEntry> = Vec::new();
    let mut settled: Vec<(Arc<str>, Arc<str>, EntryId)> = Vec::new();
    let mut leaving_unsaved: Vec<WindowItem> = Vec::new();

    let candidates = handoff.leaving.into_iter().map(|item| (item, true)).chain(
        handoff.staying.into_iter().map(|entry| {
            let item = WindowItem {
                entry,
                persisted: false,
            };
            (item, false)
        }),
    );
    for (item, leaving) in candidates {
        if item.persisted {
            continue; // already in long-term memory; leaving the window loses nothing
        }
        report.examined += 1;
        let mut entry = item.entry.clone();
        if entry.embedding.is_none() {
            entry.embedding = inner.embed(&entry.content).map(Arc::from);
        }
        let mut max_sim = entry
            .embedding
            .as_deref()
            .and_then(|v| inner.indexes.max_similarity(&entry.agent_id, v));
        if let (Some(v), Some(seen)) = (entry.embedding.as_deref(), batch.get(&entry.agent_id)) {
            let in_batch = seen
                .iter()
                .map(|s| crate::index::dot(s, v))
                .fold(f32::MIN, f32::max);
            max_sim = Some(max_sim.map_or(in_batch, |m| m.max(in_batch)));
        }
        let score = inner.scorer.score(&entry, max_sim, now);
        let decision = if max_sim.is_some_and(|s| s >= dup) {
            Decision::Duplicate
        } else if score.total >= threshold {
            Decision::Promote
        } else {
            Decision::Below
        };
        match decision {
            Decision::Duplicate => report.duplicates += 1,
            Decision::Promote => {
                if let Some(v) = &entry.embedding {
                    batch
                        .entry(entry.agent_id.clone())
                        .or_default()
                        .push(v.clone());
                }
                entry.tier = Tier::LongTerm;
                to_store.push(entry);
            }
            Decision::Below if leaving => report.dropped += 1,
            Decision::Below => report.kept_in_stm += 1,
        }
        if leaving {
            if matches!(decision, Decision::Promote) {
                leaving_unsaved.push(item);
            }
        } else if !matches!(decision, Decision::Below) {
            let e = &item.entry;
            settled.push((e.agent_id.clone(), e.session_id.clone(), e.id));
        }
    }

    match inner.store_long_term(to_store) {
        Ok(stored) => report.promoted = stored,
        Err(e) => {
            // Nothing is lost: entries that had left their window go back to the hand-off lists.
            inner.stm.hand_back(leaving_unsaved);
            return Err(e);
        }
    }
    inner.stm.mark_persisted(&settled);
    Ok(report)
}
