//! Bounded top-k selection shared by the keyword and vector indexes. Every ranking in the crate
//! orders by score descending, then by id ascending, so results are deterministic under ties.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::entry::EntryId;

/// A scored id whose `Ord` says "better": higher score, or equal score and smaller id.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scored {
    pub score: f32,
    pub id: EntryId,
}

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Scored {}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.id.cmp(&self.id))
    }
}

/// Keeps the best `k` items seen; the worst kept item is at the top of a min-heap.
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<std::cmp::Reverse<Scored>>,
}

impl TopK {
    /// A selector for `k` items; `capacity_hint` bounds the allocation when `k` is huge.
    pub fn new(k: usize, capacity_hint: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.min(capacity_hint).saturating_add(1)),
        }
    }

    /// Whether `k` items are held, so that a newcomer must beat [`TopK::worst`].
    pub fn is_full(&self) -> bool {
        self.heap.len() >= self.k
    }

    /// Score of the worst kept item once full; negative infinity before, so anything enters.
    pub fn threshold(&self) -> f32 {
        if self.is_full() {
            self.heap.peek().map_or(f32::NEG_INFINITY, |w| w.0.score)
        } else {
            f32::NEG_INFINITY
        }
    }

    /// Whether an item with this score and id would be kept.
    pub fn would_accept(&self, score: f32, id: EntryId) -> bool {
        if self.k == 0 {
            return false;
        }
        if !self.is_full() {
            return true;
        }
        match self.heap.peek() {
            Some(worst) => Scored { score, id } > worst.0,
            None => true,
        }
    }

    /// Offers an item; keeps it if it is among the best `k` so far.
    pub fn push(&mut self, score: f32, id: EntryId) {
        if !self.would_accept(score, id) {
            return;
        }
        if self.is_full() {
            self.heap.pop();
        }
        self.heap.push(std::cmp::Reverse(Scored { score, id }));
    }

    /// The kept items, best first.
    pub fn into_sorted(self) -> Vec<(EntryId, f32)> {
        let mut v: Vec<Scored> = self.heap.into_iter().map(|r| r.0).collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v.into_iter().map(|s| (s.id, s.score)).collect()
    }
}

/// Sorts `(id, score)` pairs best first: score descending, then id ascending.
pub(crate) fn sort_ranking(v: &mut [(EntryId, f32)]) {
    v.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_the_best_and_breaks_ties_by_smaller_id() {
        let mut t = TopK::new(3, 100);
        for (id, s) in [(5, 1.0), (1, 2.0), (9, 3.0), (2, 1.0), (7, 0.5), (3, 1.0)] {
            t.push(s, EntryId(id));
        }
        assert_eq!(
            t.into_sorted(),
            vec![(EntryId(9), 3.0), (EntryId(1), 2.0), (EntryId(2), 1.0)]
        );
    }

    #[test]
    fn top_k_of_zero_keeps_nothing_and_huge_k_does_not_preallocate() {
        let mut t = TopK::new(0, 10);
        t.push(1.0, EntryId(1));
        assert!(t.into_sorted().is_empty());
        let mut t = TopK::new(usize::MAX, 4);
        t.push(1.0, EntryId(1));
        t.push(2.0, EntryId(2));
        assert_eq!(t.into_sorted().len(), 2);
    }
}
