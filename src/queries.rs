//! The requests the benchmarks send: long-term searches with the cache bypassed, and context
//! requests, built the same way in every bench target.

use memory_core::{SearchMode, SearchQuery, Tiers};

use crate::workload::Query;

/// The long-term search the benchmarks issue for `q` as `agent`, bypassing the query cache so each
/// call does the full work.
pub fn search_query(agent: &str, q: &Query, mode: SearchMode) -> SearchQuery {
    SearchQuery::new(agent, q.text.as_str())
        .k(10)
        .mode(mode)
        .tiers(Tiers::LongTerm)
        .vector(q.vector.clone())
        .no_cache()
}

