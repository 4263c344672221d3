//! Consolidation: scoring short-term entries and moving the ones worth keeping into long-term
//! memory, skipping near-duplicates, and dropping (and counting) expired low scorers.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::entry::{EntryId, MemoryEntry, Tier};
use crate::error::Result;
use crate::index::vector::kernel::dot;
use crate::stages;
use crate::state::State;
use crate::stm::{WindowItem, WindowKey};
use crate::write::WritePath;

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

/// What consolidation decided, before anything is written.
#[derive(Default)]
struct Plan {
    report: ConsolidationReport,
    to_store: Vec<MemoryEntry>,
    /// Entries of live windows to mark as settled (promoted or duplicates).
    settled: Vec<WindowKey>,
}

/// Runs one consolidation over the whole store. One at a time (the caller serializes).
pub(crate) fn consolidate(state: &State, writes: &WritePath) -> Result<ConsolidationReport> {
    let _span = tracing::debug_span!(stages::CONSOLIDATE).entered();
    let now = state.clock.now();
    let handoff = state.stm.sweep(now)?;
    let staying: Vec<WindowItem> = handoff
        .staying
        .into_iter()
        .map(|entry| WindowItem {
            entry,
            persisted: false,
        })
        .collect();
    // Until the write commits, the entries that left their windows exist only here: on any
    // failure they go back to the hand-off lists, so nothing is lost; on a panic too (a
    // caller's `Embedder` may panic in `decide`), which then goes on up to the caller.
    let written = panic::catch_unwind(AssertUnwindSafe(|| {
        decide(state, &handoff.leaving, &staying, now).and_then(|mut plan| {
            let to_store = std::mem::take(&mut plan.to_store);
            let promoted: Vec<(Arc<str>, EntryId)> = to_store
                .iter()
                .map(|e| (e.agent_id.clone(), e.id))
                .collect();
            let stored = writes.store_long_term(state, to_store)?;
            Ok((stored, promoted, plan))
        })
    }));
    let (stored, promoted, plan) = match written {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => {
            state.stm.hand_back(handoff.leaving)?;
            return Err(e);
        }
        Err(panicked) => {
            if let Err(e) = state.stm.hand_back(handoff.leaving) {
                tracing::error!(
                    error = %e,
                    "a consolidation panicked and its entries could not be handed back"
                );
            }
            panic::resume_unwind(panicked);
        }
    };
    let mut report = plan.report;
    report.expired_sessions = handoff.expired_sessions;
    report.promoted = stored;
    // An entry forgotten after the sweep took it was committed all the same: deleted again
    // before the batch is settled (if this fails, the batch stays to be taken over, and its
    // next commit looks again). A `forget` that marks an entry after this look deletes it
    // itself: its long-term delete comes after its mark, so after the commit.
    let forgotten = state.stm.forgotten(&promoted)?;
    for ((agent, id), _) in promoted.iter().zip(&forgotten).filter(|(_, &gone)| gone) {
        if state.ltm.delete(agent, *id)? {
            report.promoted = report.promoted.saturating_sub(1);
        }
        writes.changed(state, [&**agent]);
    }
    state.stm.settle(&plan.settled)?;
    // Expired sessions and dropped entries changed what short-term search sees.
    writes.changed(state, handoff.leaving.iter().map(|i| &*i.entry.agent_id));
    Ok(report)
}

fn decide(
    state: &State,
    leaving: &[WindowItem],
    staying: &[WindowItem],
    now: crate::clock::Timestamp,
) -> Result<Plan> {
    let mut plan = Plan::default();
    // Embeddings of entries promoted in this run, per agent, so that two near-identical entries
    // in one batch are not both stored.
    let mut batch: FxHashMap<Arc<str>, Vec<Arc<[f32]>>> = FxHashMap::default();
    let candidates: Vec<(&WindowItem, bool)> = leaving
        .iter()
        .map(|item| (item, true))
        .chain(staying.iter().map(|item| (item, false)))
        .filter(|(item, _)| !item.persisted) // already in long-term memory: nothing to lose
        .collect();
    for chunk in candidates.chunks(EMBED_CHUNK) {
        // The vectors the policy compares, made in one batch for the entries that have none
        // (and kept for the next run and for searches: staying entries are examined each run).
        let made = state.prepare_vectors(chunk.iter().map(|(item, _)| &item.entry));
        for &(item, is_leaving) in chunk {
            decide_one(state, item, is_leaving, &made, now, &mut batch, &mut plan)?;
        }
    }
    Ok(plan)
}

/// Candidates whose vectors a consolidation makes in one batch (bounding what it holds).
const EMBED_CHUNK: usize = 256;

/// [`decide`] for one candidate; `made` holds the vectors made for its chunk.
fn decide_one(
    state: &State,
    item: &WindowItem,
    is_leaving: bool,
    made: &FxHashMap<EntryId, Arc<[f32]>>,
    now: crate::clock::Timestamp,
    batch: &mut FxHashMap<Arc<str>, Vec<Arc<[f32]>>>,
    plan: &mut Plan,
) -> Result<()> {
    let threshold = state.config.consolidation.threshold;
    let dup = state.config.consolidation.duplicate_similarity;
    plan.report.examined += 1;
    let mut entry = item.entry.clone();
    if entry.embedding.is_none() {
        entry.embedding = made
            .get(&entry.id)
            .cloned()
            .or_else(|| state.vector_of(&entry));
    }
    let mut max_sim = match entry.embedding.as_deref() {
        Some(v) => state.ltm.max_similarity(&entry.agent_id, v)?,
        None => None,
    };
    if let (Some(v), Some(seen)) = (entry.embedding.as_deref(), batch.get(&entry.agent_id)) {
        let in_batch = seen.iter().map(|s| dot(s, v)).fold(f32::MIN, f32::max);
        max_sim = Some(max_sim.map_or(in_batch, |m| m.max(in_batch)));
    }
    let score = state.scorer.score(&entry, max_sim, now);
    // The estimate made for the score is the one stored (long-term entries carry one).
    entry.importance = Some(score.importance);
    let decision = if max_sim.is_some_and(|s| s >= dup) {
        Decision::Duplicate
    } else if score.total >= threshold || score.total.is_nan() {
        // A total that is not a number (which a checked configuration cannot give) keeps the
        // entry: dropping it would lose it silently.
        Decision::Promote
    } else {
        Decision::Below
    };
    match decision {
        Decision::Duplicate => plan.report.duplicates += 1,
        Decision::Promote => {
            if let Some(v) = &entry.embedding {
                batch
                    .entry(entry.agent_id.clone())
                    .or_default()
                    .push(v.clone());
            }
            entry.tier = Tier::LongTerm;
            plan.to_store.push(entry);
        }
        Decision::Below if is_leaving => plan.report.dropped += 1,
        Decision::Below => plan.report.kept_in_stm += 1,
    }
    if !is_leaving && !matches!(decision, Decision::Below) {
        let e = &item.entry;
        plan.settled
            .push((e.agent_id.clone(), e.session_id.clone(), e.id));
    }
    Ok(())
}
