//! Maps keyed by entry id, built in one go as the snapshot loader builds them.
//!
//! Inserting a million ids one at a time into a hash table writes a million random places of a
//! table of some 16-32 MB, a cache miss each: 100-200 ms at 1M entries for each of the loader's
//! three maps (keyword slots, vector slots, attributes), measured as the largest single cost of
//! a reopen after the graph. Inserted in the order of the buckets their hashes start probing
//! at, the same keys fill the table from one end to the other, and each insert finds the lines
//! it touches already in cache from the ones before it. The map is the same either way; only
//! the order of the inserts changes.

use std::hash::BuildHasher;

use rustc_hash::FxHashMap;

use crate::entry::EntryId;

/// Below this many keys the table fits in the caches and plain inserts are as fast as sorted
/// ones.
const SORT_FROM: usize = 1 << 14;

/// Keys per group of the counting sort: the keys of a group land in a stretch of some
/// 600 buckets (about 10-16 KB of table), and the sort's write cursors, one per group, stay
/// within the second-level cache (2,048 of them at 1M keys).
const KEYS_PER_GROUP: usize = 512;

/// The map of `pairs`, or the first key found twice (in the order of insertion, which is not
/// the order of `pairs`).
pub(crate) fn map_by_id<V: Copy>(
    pairs: Vec<(EntryId, V)>,
) -> Result<FxHashMap<EntryId, V>, EntryId> {
    let n = pairs.len();
    let mut map = FxHashMap::with_capacity_and_hasher(n, Default::default());
    let insert_all = |map: &mut FxHashMap<EntryId, V>, pairs: Vec<(EntryId, V)>| {
        for (id, v) in pairs {
            if map.insert(id, v).is_some() {
                return Err(id);
            }
        }
        Ok(())
    };
    if n < SORT_FROM {
        insert_all(&mut map, pairs)?;
        return Ok(map);
    }
    // The table's number of buckets: a power of two of which seven eighths are usable (the
    // layout of hashbrown, behind std's map). A key's probe starts at bucket `hash & (buckets
    // - 1)` and its group is the top bits of that bucket. Were the layout ever different, the
    // order would only be less helpful, never wrong.
    let cap = map.capacity();
    let buckets = (cap + cap / 7).next_power_of_two();
    let groups = (n / KEYS_PER_GROUP).next_power_of_two().min(buckets);
    let shift = buckets.trailing_zeros() - groups.trailing_zeros();
    let hasher = *map.hasher();
    let group_of: Vec<u32> = pairs
        .iter()
        .map(|(id, _)| ((hasher.hash_one(id) as usize & (buckets - 1)) >> shift) as u32)
        .collect();
    let mut next = vec![0usize; groups + 1];
    for &g in &group_of {
        next[g as usize + 1] += 1;
    }
    for g in 0..groups {
        next[g + 1] += next[g];
    }
    let mut sorted = pairs.clone();
    for (&pair, &g) in pairs.iter().zip(&group_of) {
        let at = &mut next[g as usize];
        sorted[*at] = pair;
        *at += 1;
    }
    drop(pairs);
    insert_all(&mut map, sorted)?;
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive<V: Copy>(pairs: &[(EntryId, V)]) -> Result<FxHashMap<EntryId, V>, EntryId> {
        let mut map = FxHashMap::default();
        for &(id, v) in pairs {
            if map.insert(id, v).is_some() {
                return Err(id);
            }
        }
        Ok(map)
    }

    /// Ids as a store hands them out (ascending from 1, some gone) and scattered ones.
    fn ids(n: usize, scattered: bool) -> Vec<EntryId> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..n as u64)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                EntryId(if scattered { x } else { 1 + i * 3 / 2 })
            })
            .collect()
    }

    #[test]
    fn maps_equal_one_insert_at_a_time_at_every_size() {
        for n in [0, 1, 7, SORT_FROM - 1, SORT_FROM, 100_003] {
            for scattered in [false, true] {
                let pairs: Vec<(EntryId, u32)> = ids(n, scattered)
                    .into_iter()
                    .enumerate()
                    .map(|(slot, id)| (id, slot as u32))
                    .collect();
                let map = map_by_id(pairs.clone()).unwrap();
                assert_eq!(
                    map,
                    naive(&pairs).unwrap(),
                    "{n} ids, scattered {scattered}"
                );
                assert_eq!(map.len(), n);
            }
        }
    }

    #[test]
    fn a_key_given_twice_is_named_at_every_size() {
        for n in [2, 100, SORT_FROM, 70_000] {
            let mut pairs: Vec<(EntryId, u64)> =
                ids(n, true).into_iter().map(|id| (id, id.0)).collect();
            let twice = pairs[n / 3].0;
            pairs[n - 1].0 = twice;
            assert_eq!(map_by_id(pairs), Err(twice), "{n} ids");
        }
    }
}
