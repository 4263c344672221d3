//! Consolidation: scoring short-term entries and moving the ones worth keeping into long-term
//! memory, skipping near-duplicates, and dropping (and counting) expired low scorers.

use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::entry::{EntryId, MemoryEntry, Tier};
use crate::error::Result;
use crate::index::dot;
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

/// What consolidation decided, before anything is written.
#[derive(Default)]
struct Plan {
    report: ConsolidationReport,
    to_store: Vec<MemoryEntry>,
    /// Entries of live windows to mark as settled (promoted or duplicates).
    settled: Vec<(Arc<str>, Arc<str>, EntryId)>,
}

/// Runs one consolidation over the whole store. One at a time (callers hold `inner.consolidating`).
pub(crate) fn consolidate(inner: &Inner) -> Result<ConsolidationReport> {
    let now = inner.clock.now();
    let handoff = inner.stm.sweep(now);
    let staying: Vec<WindowItem> = handoff
        .staying
        .into_iter()
        .map(|entry| WindowItem {
            entry,
            persisted: false,
        })
        .collect();
    // Until the write commits, the entries that left their windows exist only here: on any
    // failure they go back to the hand-off lists, so nothing is lost.
    let plan = match decide(inner, &handoff.leaving, &staying, now) {
        Ok(plan) => plan,
        Err(e) => {
            inner.stm.hand_back(handoff.leaving);
            return Err(e);
        }
    };
    let mut report = plan.report;
    report.expired_sessions = handoff.expired_sessions;
    match inner.store_long_term(plan.to_store) {
        Ok(stored) => report.promoted = stored,
        Err(e) => {
            inner.stm.hand_back(handoff.leaving);
            return Err(e);
        }
    }
    inner.stm.mark_persisted(&plan.settled);
    // Expired sessions and dropped entries changed what short-term search sees.
    let mut agents: Vec<&str> = handoff.leaving.iter().map(|i| &*i.entry.agent_id).collect();
    agents.sort_unstable();
    agents.dedup();
    for agent in agents {
        inner.cache.invalidate(agent);
    }
    Ok(report)
}

fn decide(
    inner: &Inner,
    leaving: &[WindowItem],
    staying: &[WindowItem],
    now: crate::clock::Timestamp,
) -> Result<Plan> {
    let threshold = inner.config.consolidation.threshold;
    let dup = inner.config.consolidation.duplicate_similarity;
    let mut plan = Plan::default();
    // Embeddings of entries promoted in this run, per agent, so that two near-identical entries
    // in one batch are not both stored.
    let mut batch: FxHashMap<Arc<str>, Vec<Arc<[f32]>>> = FxHashMap::default();
    let candidates = leaving
        .iter()
        .map(|item| (item, true))
        .chain(staying.iter().map(|item| (item, false)));
    for (item, is_leaving) in candidates {
        if item.persisted {
            continue; // already in long-term memory; leaving the window loses nothing
        }
        plan.report.examined += 1;
        let mut entry = item.entry.clone();
        if entry.embedding.is_none() {
            entry.embedding = inner.embed(&entry.content).map(Arc::from);
        }
        let mut max_sim = match entry.embedding.as_deref() {
            Some(v) => inner.indexes.max_similarity(&entry.agent_id, v)?,
            None => None,
        };
        if let (Some(v), Some(seen)) = (entry.embedding.as_deref(), batch.get(&entry.agent_id)) {
            let in_batch = seen.iter().map(|s| dot(s, v)).fold(f32::MIN, f32::max);
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
    }
    Ok(plan)
}
