//! Saving and loading [`Indexes`] as a whole, agent by agent (the encoding: `codec.rs`; the
//! files, stamps and replay of later changes: `store/snapshot.rs`).

use std::sync::Arc;

use crate::entry::EntryId;
use crate::index::agent::{AgentIndex, SharedIndex};
use crate::index::codec::{Decoded, Decoder};
use crate::index::Indexes;

/// A row of the database as the snapshot loader replays it: what [`Indexes::reconcile`] needs.
pub(crate) struct ReplayedRow<'a> {
    pub agent: &'a str,
    pub session: &'a str,
    pub role: crate::entry::Role,
    pub created_at: crate::clock::Timestamp,
    pub content: &'a str,
    pub embedding: Option<&'a [f32]>,
}

impl Indexes {
    /// Every agent's index, by name, in name order (the order snapshot files are written in).
    pub fn agents_for_snapshot(&self) -> Vec<(Arc<str>, SharedIndex)> {
        let mut agents: Vec<(Arc<str>, SharedIndex)> = self
            .agents
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        agents.sort_by(|a, b| a.0.cmp(&b.0));
        agents
    }

    /// Decodes one agent's index from a snapshot file's payload.
    pub fn decode_agent(&self, dec: &mut Decoder<'_>) -> Decoded<AgentIndex> {
        AgentIndex::decode(dec, self.bm25, &self.vector_config)
    }

    /// Adds an agent's index read from a snapshot (replacing any of that name).
    pub fn insert_loaded(&self, agent: &str, index: AgentIndex) {
        self.agents
            .write()
            .insert(Arc::from(agent), Arc::new(index));
    }

    /// Brings entry `id` in line with the database: `row` is its row (`None`: it is gone). The
    /// snapshot loader calls this for every id changed after the snapshot's stamp, whatever
    /// state the snapshot caught it in.
    pub fn reconcile(&self, id: EntryId, row: Option<ReplayedRow<'_>>) -> crate::error::Result<()> {
        match row {
            Some(row) => {
                let shared = self.agent_or_create(row.agent)?;
                if !shared.holds_whole(id, row.embedding.is_some()) {
                    shared.remove_everywhere(id);
                    shared.add_stored(
                        id,
                        (row.session, row.role, row.created_at),
                        row.content,
                        row.embedding,
                    )?;
                }
            }
            None => {
                let agents: Vec<SharedIndex> = self.agents.read().values().cloned().collect();
                for shared in agents {
                    shared.remove_everywhere(id);
                }
            }
        }
        Ok(())
    }

    /// Hands every agent with vectors to link to the linker (after a load).
    pub fn schedule_all(&self) {
        for (_, shared) in self.agents_for_snapshot() {
            if shared.has_link_work() {
                self.linker.schedule(&shared);
            }
        }
    }

    /// Vectors over all agents that a backlog linked with the short candidate list and that
    /// are not refined yet (after a load: the refinement the closed store had not finished).
    pub fn unrefined(&self) -> usize {
        self.agents_for_snapshot()
            .iter()
            .map(|(_, a)| a.unrefined())
            .sum()
    }

    /// Live entries over all agents.
    pub fn total_count(&self) -> u64 {
        self.agents_for_snapshot()
            .iter()
            .map(|(_, a)| a.count())
            .sum()
    }
}
