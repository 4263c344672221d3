//! Int8 codes of the vectors an f32 or half-precision index has not linked into its graph yet,
//! while there are many of them (an ingest faster than the linker, a reopen without snapshot).
//!
//! An approximate search scans those vectors exactly, so during a backlog every query reads the
//! whole unlinked tail: at 384 dimensions 1.5 KB per vector in f32 (768 bytes as halves), which
//! makes the scan bound by memory bandwidth. Over the codes (388 bytes per vector) the scan ranks
//! by the int8 similarity of the codes and the query's own codes (an integer kernel: at 60,000
//! vectors 1.35 ms against 4.9 ms in f32, 2.1 ms with an f32 query against codes, measured on
//! this project's 2-core machine), keeps the best `k + RESCORE_EXTRA` and scores only those again
//! from the arena's own rows, so what it returns carries the scores an exact search gives and
//! is ordered by them. The codes exist only while
//! a backlog does: they start once [`CODED_SCAN_MIN`] vectors wait, cover every later slot, and
//! are dropped as the linker catches up.
//!
//! Past the cache the int8 scan is bound by memory (about 25-35 ns per 384-d vector over 80,000
//! of them, 13 in cache), so each slot also keeps 4-bit codes (192 bytes at 384 dimensions), and
//! a scan of [`FIRST_PASS_MIN`] slots or more ranks them by those first (7-13 ns a vector in the
//! kernel), then only the best [`FIRST_PASS_FACTOR`] times as many as it keeps by the int8
//! codes: a query over an 80,000-vector backlog 2.75 -> 1.78 ms.

use std::collections::VecDeque;
use std::ops::Range;

use super::kernel;
use crate::entry::EntryId;
use crate::index::topk::TopK;

/// Unlinked vectors from which an index keeps codes of its newest slots: below it the scan of
/// the arena's rows costs little (512 384-d vectors: tens of microseconds), is exact, and needs
/// no codes. Every search scans the unlinked part, so this bounds what a search scans in the
/// arena's precision during a backlog; the codes cost 584 bytes per waiting vector (388 int8,
/// 196 4-bit) while the backlog lasts.
pub(super) const CODED_SCAN_MIN: usize = 512;

/// Candidates beyond `k` that a coded scan scores again from the arena's rows. Codes of the
/// query and of a 384-d unit vector move their similarity by a few thousandths (half a step of
/// `max |x| / 127` per dimension on each side), so a vector of the true top `k` would have to be
/// passed by this many others within that margin to be lost.
const RESCORE_EXTRA: usize = 32;

/// Scanned slots from which a scan ranks by the 4-bit codes first: below it the int8 codes of
/// the range (6 MB at 16K slots of 384 dimensions) mostly stay in the cache and the first pass
/// costs more than it saves. Per query over 384-d backlogs on this project's 2-core machine:
/// 5,000 slots 199 us int8 alone against 244 us with the pass, about even at 10,000-14,000,
/// 640 against 566 us at 20,000, 2.75 against 1.78 ms at 80,000.
pub(super) const FIRST_PASS_MIN: usize = 16_384;

/// How many times `k + RESCORE_EXTRA` candidates the 4-bit pass hands to the int8 one. A 4-bit
/// code moves a 384-d unit vector's similarity by about 0.01 (a step of `max |x| / 7` per
/// dimension), several times what int8 does, so the margin is wider: a vector of the int8
/// stage's list is lost only if more than `FIRST_PASS_FACTOR * (k + RESCORE_EXTRA)` others
/// pass it within that error (at 1 instead of 8, the test of it lost 9 of 800 of the exact top
/// 10 on clustered vectors; at 8 none, there and on the default embedder's sparse vectors).
const FIRST_PASS_FACTOR: usize = 8;

/// Slots per block of codes. Blocks are allocated whole and dropped whole, so neither growth nor
/// forgetting ever copies codes (both happen under the index's write lock, which searches wait
/// for: a `Vec` that doubled or drained its front moved tens of megabytes there).
const BLOCK: usize = 1_024;

/// The codes and scales of `BLOCK` consecutive slots (the last block of a tail may be partly
/// filled).
#[derive(Clone, Debug)]
struct Block {
    codes: Box<[i8]>,
    scales: Box<[f32]>,
    /// 4-bit codes, `dim.div_ceil(2)` bytes per slot (`kernel::pack_u4`), and their scales.
    nibbles: Box<[u8]>,
    nibble_scales: Box<[f32]>,
}

/// Codes of the slots `start..start + len` of one index (empty: no backlog).
#[derive(Clone, Debug, Default)]
pub(super) struct TailCodes {
    start: usize,
    len: usize,
    blocks: VecDeque<Block>,
}

impl TailCodes {
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// First slot with a code.
    pub fn start(&self) -> usize {
        self.start
    }

    /// One past the last slot with a code.
    pub fn end(&self) -> usize {
        self.start + self.len
    }

    /// Appends the code of slot `self.end()`, vector `v`.
    pub fn push(&mut self, v: &[f32]) {
        let (block, i) = self.next_slot(v.len());
        let dim = v.len();
        let scale = kernel::quantize_i8(v, &mut block.codes[i * dim..(i + 1) * dim]);
        Self::finish_slot(block, i, dim, scale);
        self.len += 1;
    }

    /// Appends the code of slot `self.end()` as [`TailCodes::push`] would make it: `codes` and
    /// `scale` from [`kernel::quantize_i8`] of the slot's vector (the index's link codes).
    pub fn push_coded(&mut self, codes: &[i8], scale: f32) {
        let dim = codes.len();
        let (block, i) = self.next_slot(dim);
        block.codes[i * dim..(i + 1) * dim].copy_from_slice(codes);
        Self::finish_slot(block, i, dim, scale);
        self.len += 1;
    }

    /// The block and index within it of slot `self.end()`, the block allocated if new.
    fn next_slot(&mut self, dim: usize) -> (&mut Block, usize) {
        let (b, i) = (self.len / BLOCK, self.len % BLOCK);
        if b == self.blocks.len() {
            let half = dim.div_ceil(2);
            self.blocks.push_back(Block {
                codes: vec![0; BLOCK * dim].into_boxed_slice(),
                scales: vec![0.0; BLOCK].into_boxed_slice(),
                nibbles: vec![0; BLOCK * half].into_boxed_slice(),
                nibble_scales: vec![0.0; BLOCK].into_boxed_slice(),
            });
        }
        (&mut self.blocks[b], i)
    }

    /// Stores the scale of slot `i` of `block`, whose int8 codes are in place, and its 4-bit
    /// codes.
    fn finish_slot(block: &mut Block, i: usize, dim: usize, scale: f32) {
        let half = dim.div_ceil(2);
        block.scales[i] = scale;
        kernel::pack_u4(
            &block.codes[i * dim..(i + 1) * dim],
            &mut block.nibbles[i * half..(i + 1) * half],
        );
        block.nibble_scales[i] = scale * (127.0 / 7.0);
    }

    /// Drops every code; the next [`TailCodes::push`] is for slot `slot`.
    pub fn restart_at(&mut self, slot: usize) {
        self.blocks = VecDeque::new();
        self.len = 0;
        self.start = slot;
    }

    /// Drops the codes of the slots before `slot` (linked by now), a whole block at a time.
    pub fn forget_before(&mut self, slot: usize) {
        if slot >= self.end() {
            self.restart_at(self.end());
            return;
        }
        while self.len > BLOCK && self.start + BLOCK <= slot {
            self.blocks.pop_front();
            self.start += BLOCK;
            self.len -= BLOCK;
        }
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.blocks
            .iter()
            .map(|b| {
                b.codes.len()
                    + b.nibbles.len()
                    + (b.scales.len() + b.nibble_scales.len()) * std::mem::size_of::<f32>()
            })
            .sum::<usize>()
            + self.blocks.capacity() * std::mem::size_of::<Block>()
    }

    /// The codes and scale of `slot`.
    #[inline]
    fn row(&self, dim: usize, slot: usize) -> (&[i8], f32) {
        let offset = slot - self.start;
        let block = &self.blocks[offset / BLOCK];
        let i = offset % BLOCK;
        (&block.codes[i * dim..(i + 1) * dim], block.scales[i])
    }

    /// The 4-bit codes and scale of `slot`.
    #[inline]
    fn nibble_row(&self, dim: usize, slot: usize) -> (&[u8], f32) {
        let half = dim.div_ceil(2);
        let offset = slot - self.start;
        let block = &self.blocks[offset / BLOCK];
        let i = offset % BLOCK;
        (
            &block.nibbles[i * half..(i + 1) * half],
            block.nibble_scales[i],
        )
    }

    /// Scans `slots` (within the coded ones) for `q`: every slot that `skip` passes is ranked by
    /// its int8 similarity, the best `k + RESCORE_EXTRA` that `filter` accepts (called only for
    /// those that would enter that list) are scored again by `exact` and offered to `top`. From
    /// [`FIRST_PASS_MIN`] slots on, the slots are ranked by their 4-bit codes first and only the
    /// best `FIRST_PASS_FACTOR` times as many (that `filter` accepts) by their int8 codes.
    /// Returns how many slots entered the first list: at least `min(k, slots filter accepts)`,
    /// which is what the caller's fallback to an exact search needs to know.
    #[allow(clippy::too_many_arguments)]
    pub fn scan(
        &self,
        dim: usize,
        q: &[f32],
        slots: Range<usize>,
        k: usize,
        mut skip: impl FnMut(usize) -> bool,
        id_of: impl Fn(usize) -> EntryId,
        filter: &dyn Fn(EntryId) -> bool,
        exact: impl Fn(usize) -> f32,
        top: &mut TopK,
    ) -> usize {
        debug_assert!(self.start <= slots.start && slots.end <= self.end());
        let want = k.saturating_add(RESCORE_EXTRA);
        let mut q_codes = vec![0i8; dim];
        let q_scale = kernel::quantize_i8(q, &mut q_codes);
        let int8 = |slot: usize| {
            let (codes, scale) = self.row(dim, slot);
            kernel::dot_i8(&q_codes, codes) as f32 * (q_scale * scale)
        };
        // Ranked by slot on ties (not by id): the order among near-equal candidates only decides
        // which are scored again, never the result's order.
        let mut rough = TopK::new(want, slots.len());
        let accepted = if slots.len() >= FIRST_PASS_MIN {
            // The query's int8 codes against the 4-bit ones: sum q * (code - 8).
            let offset = 8 * q_codes.iter().map(|&c| i32::from(c)).sum::<i32>();
            let u4 = |slot: usize| {
                let (nibbles, scale) = self.nibble_row(dim, slot);
                (kernel::dot_i8_u4(&q_codes, nibbles) - offset) as f32 * (q_scale * scale)
            };
            let mut coarse = TopK::new(want.saturating_mul(FIRST_PASS_FACTOR), slots.len());
            let accepted = rank(slots, &mut skip, u4, &id_of, filter, &mut coarse);
            for (key, _) in coarse.into_sorted() {
                rough.push(int8(key.0 as usize), key);
            }
            accepted
        } else {
            rank(slots, &mut skip, int8, &id_of, filter, &mut rough)
        };
        for (key, _) in rough.into_sorted() {
            let slot = key.0 as usize;
            top.push(exact(slot), id_of(slot));
        }
        accepted
    }
}

/// Offers every slot of `slots` that `skip` passes to `list` by `score`, asking `filter` only
/// for those the list would take (ranked by slot on ties); returns how many it took.
fn rank(
    slots: Range<usize>,
    skip: &mut impl FnMut(usize) -> bool,
    score: impl Fn(usize) -> f32,
    id_of: &impl Fn(usize) -> EntryId,
    filter: &dyn Fn(EntryId) -> bool,
    list: &mut TopK,
) -> usize {
    let mut taken = 0;
    for slot in slots {
        if skip(slot) {
            continue;
        }
        let (s, key) = (score(slot), EntryId(slot as u64));
        if list.would_accept(s, key) && filter(id_of(slot)) {
            list.push(s, key);
            taken += 1;
        }
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_handed_in_equal_the_codes_made_from_the_vector() {
        let dim = 37; // odd: the last 4-bit code holds one number
        let (mut made, mut handed) = (TailCodes::default(), TailCodes::default());
        made.restart_at(5);
        handed.restart_at(5);
        for slot in 0..BLOCK + 3 {
            let v: Vec<f32> = (0..dim)
                .map(|d| ((slot * 31 + d * 7) as f32 * 0.13).sin())
                .collect();
            made.push(&v);
            let mut codes = vec![0i8; dim];
            let scale = kernel::quantize_i8(&v, &mut codes);
            handed.push_coded(&codes, scale);
        }
        assert_eq!((made.start(), made.end()), (handed.start(), handed.end()));
        assert_eq!(made.blocks.len(), 2);
        for (a, b) in made.blocks.iter().zip(&handed.blocks) {
            assert_eq!(a.codes, b.codes);
            assert_eq!(a.scales, b.scales);
            assert_eq!(a.nibbles, b.nibbles);
            assert_eq!(a.nibble_scales, b.nibble_scales);
        }
    }
}
