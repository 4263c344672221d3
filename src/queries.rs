//! The requests the benchmarks send: long-term searches with the cache bypassed, and context
//! requests, built the same way in every bench target.

use memory_core::context::ToolDefinition;
use memory_core::{ContextQuery, Result, SearchMode, SearchQuery, Tiers};

use crate::workload::{Query, ToolDef};

/// The long-term search the benchmarks issue for `q` as `agent`, bypassing the query cache so each
/// call does the full work.
pub fn search_query(agent: &str, q: &Query, mode: SearchMode) -> SearchQuery {
    SearchQuery::new(agent, q.text.as_str())
        .with_k(10)
        .with_mode(mode)
        .with_tiers(Tiers::LongTerm)
        .with_vector(q.vector.clone())
        .without_cache()
}

/// The system prompt of every context benchmark (a realistic few hundred characters).
pub const SYSTEM_PROMPT: &str = "You are a helpful assistant with a long-term memory. Use the \
    memories below when they are relevant to the user's question, cite the session they come \
    from, and say so plainly when you do not know. Prefer recent turns over old memories when \
    they disagree. Call a tool only when the user's request needs it.";

/// memory-core's tool definitions for generated tools.
pub fn tool_definitions(tools: &[ToolDef]) -> Result<Vec<ToolDefinition>> {
    tools
        .iter()
        .map(|t| ToolDefinition::new(t.name.as_str(), t.description.as_str(), t.schema.clone()))
        .collect()
}

/// A context build for `agent`'s `session` answering `q`: hybrid retrieval over both tiers (cache
/// bypassed), the given tools, under `budget` tokens.
pub fn context_query(
    agent: &str,
    session: &str,
    q: &Query,
    tools: &[ToolDefinition],
    budget: usize,
) -> ContextQuery {
    let query = search_query(agent, q, SearchMode::Hybrid).with_tiers(Tiers::Both);
    ContextQuery::new(query, session, SYSTEM_PROMPT, budget).with_tools(tools.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Workload;

    #[test]
    fn generated_tools_are_valid_memory_core_tools() {
        let tools = Workload::standard().tools(20, 1);
        let defs = tool_definitions(&tools).unwrap();
        assert_eq!(defs.len(), 20);
        assert_eq!(defs[3].name(), tools[3].name);
    }

    #[test]
    fn context_query_searches_both_tiers_without_the_cache() {
        let q = &Workload::standard().queries(1, 0)[0];
        let cq = context_query("a", "s", q, &[], 1_000);
        assert_eq!(cq.session, "s");
        assert_eq!(cq.budget, 1_000);
        assert_eq!(cq.query.tiers, Tiers::Both);
        assert!(!cq.query.use_cache);
    }
}
