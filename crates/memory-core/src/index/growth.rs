//! How the indexes' big arrays grow: one rule for the vector arena, the HNSW graph and the
//! keyword postings.

/// Makes room for `additional` more elements, growing by a sixteenth of the length (and at least
/// by `additional`, and by 16 elements) instead of doubling: the vector arena and the graph are
/// most of an agent's memory, and doubling would leave up to half of them unused (a sixteenth
/// leaves at most 6%). Growth stays geometric, so pushes remain amortized O(1); a large
/// reallocation is a page remap, not a copy, with glibc.
pub(crate) fn reserve_bounded<T>(v: &mut Vec<T>, additional: usize) {
    if v.capacity() - v.len() < additional {
        v.reserve_exact(additional.max(v.len() / 16).max(16));
    }
}
