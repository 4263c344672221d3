//! The in-RAM retrieval indexes of long-term memory, one set per agent, rebuilt from SQLite on open
//! and kept in step with every committed write.

use std::sync::Arc;

use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use crate::entry::{EntryId, MemoryEntry};

/// Dot product of two equal-length vectors (cosine similarity of unit vectors).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[derive(Debug, Default)]
struct AgentIndex {
    vectors: Vec<(EntryId, Arc<[f32]>)>,
}

/// Per-agent indexes.
#[derive(Debug, Default)]
pub(crate) struct Indexes {
    agents: RwLock<FxHashMap<Arc<str>, Arc<RwLock<AgentIndex>>>>,
}

impl Indexes {
    fn agent(&self, agent: &str) -> Option<Arc<RwLock<AgentIndex>>> {
        self.agents.read().get(agent).cloned()
    }

    fn agent_or_create(&self, agent: &Arc<str>) -> Arc<RwLock<AgentIndex>> {
        if let Some(a) = self.agent(agent) {
            return a;
        }
        self.agents
            .write()
            .entry(agent.clone())
            .or_default()
            .clone()
    }

    /// Indexes one committed entry.
    pub fn add(&self, entry: &MemoryEntry) {
        let idx = self.agent_or_create(&entry.agent_id);
        if let Some(v) = &entry.embedding {
            idx.write().vectors.push((entry.id, v.clone()));
        }
    }

    /// Indexes one entry read back from disk on open.
    pub fn add_raw(&self, agent: &str, id: EntryId, _content: &str, embedding: Option<Vec<f32>>) {
        let idx = self.agent_or_create(&Arc::from(agent));
        if let Some(v) = embedding {
            idx.write().vectors.push((id, Arc::from(v)));
        }
    }

    /// Removes a deleted entry.
    pub fn remove(&self, agent: &str, id: EntryId) {
        if let Some(idx) = self.agent(agent) {
            idx.write().vectors.retain(|(i, _)| *i != id);
        }
    }

    /// Highest cosine similarity of `v` to the agent's long-term entries.
    pub fn max_similarity(&self, agent: &str, v: &[f32]) -> Option<f32> {
        let idx = self.agent(agent)?;
        let idx = idx.read();
        idx.vectors
            .iter()
            .map(|(_, w)| dot(w, v))
            .fold(None, |m: Option<f32>, s| Some(m.map_or(s, |m| m.max(s))))
    }
}
