//! Hierarchical Navigable Small World graph (Malkov & Yashunin, 2018) over the slots of the
//! vector arena. The graph stores only links: similarities come from a closure reading the
//! arena, so exact and approximate search share one copy of every vector.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::ops::Range;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize};

use parking_lot::Mutex;

use crate::embed::splitmix64;
use crate::index::growth::reserve_bounded;

mod snapshot;

/// Parameters of the HNSW graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HnswParams {
    /// Links per node on the upper layers (twice this on layer 0); 2..=128.
    pub m: usize,
    /// Candidate list size while inserting; larger builds a better graph, more slowly. The
    /// store's background linker uses a quarter of it on a backlog, and links those vectors
    /// again with the whole list once it has caught up.
    pub ef_construction: usize,
    /// Candidate list size while searching (raised to k when k is larger), for an index of up
    /// to `ef_search_len` vectors; see [`HnswParams::ef_for`].
    pub ef_search: usize,
    /// Size up to which `ef_search` holds; a larger index searches a list proportionally
    /// longer, so that recall does not fall as the graph grows (0: `ef_search` at every size).
    pub ef_search_len: usize,
    /// Below this many live vectors no graph is kept and approximate search scans exactly; the
    /// graph is built when the index grows to this size.
    pub min_len: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 100,
            ef_search: 64,
            ef_search_len: DEFAULT_EF_SEARCH_LEN,
            min_len: 1024,
        }
    }
}

/// Largest list an index of up to this many vectors searches with `ef_search` unscaled.
///
/// Measured with `examples/ef_sweep.rs` (the suite's generated 384-d vectors, m 16,
/// ef_construction 100; recall@10 against exact search): with ef 64, 0.995 at 100K, 0.962 at
/// 200K, 0.892 at 400K (0.83 at 1M in an earlier run); an ef growing with n (128 at 200K, 256 at
/// 400K) held 0.984 and 0.972, at about 1.3x and 2x the query time of ef 64. With halves and a
/// graph built from int8 link codes (the defaults since 2026-12-06) the scaled ef gives 0.989 /
/// 0.974 / 0.961 at 100K / 200K / 400K for a graph built one vector at a time, and 1.000 at 100K
/// for one linked quickly on a backlog and refined.
pub const DEFAULT_EF_SEARCH_LEN: usize = 100_000;

/// The longest list a scaled `ef` reaches: past it the search costs more than it finds.
pub const MAX_SCALED_EF: usize = 2_048;

impl HnswParams {
    /// The candidate list a search for the top `k` of `len` vectors walks: `ef_search`, scaled by
    /// `len / ef_search_len` past `ef_search_len` (up to `MAX_SCALED_EF`, 2,048), at least `k`.
    ///
    /// ```
    /// use memory_core::HnswParams;
    ///
    /// let p = HnswParams::default();
    /// assert_eq!(p.ef_for(10, 50_000), 64);
    /// assert_eq!(p.ef_for(10, 400_000), 256);
    /// assert_eq!(p.ef_for(100, 1_000), 100);
    /// ```
    pub fn ef_for(&self, k: usize, len: usize) -> usize {
        let ef = if self.ef_search_len > 0 && len > self.ef_search_len {
            let scaled =
                (self.ef_search as u128 * len as u128).div_ceil(self.ef_search_len as u128);
            usize::try_from(scaled)
                .unwrap_or(usize::MAX)
                .min(MAX_SCALED_EF.max(self.ef_search))
        } else {
            self.ef_search
        };
        ef.max(k)
    }
}

/// Levels above this are never drawn; with m = 16 the chance of reaching it is 16^-16.
const MAX_LEVEL: usize = 16;

/// A node with its similarity to the current query. `Ord` says "better": higher similarity, then
/// smaller node, so heaps and sorts are deterministic.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cand {
    pub sim: f32,
    pub node: u32,
}

impl PartialEq for Cand {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Cand {}

impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Cand {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sim
            .total_cmp(&other.sim)
            .then_with(|| other.node.cmp(&self.node))
    }
}

/// A visited set as a bitset over the graph's nodes, reused from search to search: a reset
/// clears only the words the last search marked (a search visits a few thousand nodes, while the
/// set spans every node: 125 KB at a million), so its cost does not grow with the graph.
#[derive(Clone, Debug, Default)]
pub(crate) struct Visited {
    bits: Vec<u64>,
    /// Words with a bit set since the last reset.
    touched: Vec<u32>,
}

thread_local! {
    /// Each searching thread's visited set (searches of one thread never overlap).
    static SEARCH_VISITED: std::cell::RefCell<Visited> = std::cell::RefCell::new(Visited::default());
}

impl Visited {
    /// Empties the set and makes it cover nodes `0..n`.
    fn reset(&mut self, n: usize) {
        for &w in &self.touched {
            self.bits[w as usize] = 0;
        }
        self.touched.clear();
        let words = n.div_ceil(64);
        if self.bits.len() < words {
            self.bits.resize(words, 0);
        }
    }

    /// Marks `i`; returns whether it was unmarked before (false for a node the set does not
    /// cover).
    #[inline]
    fn insert(&mut self, i: u32) -> bool {
        let (w, b) = ((i / 64) as usize, i % 64);
        match self.bits.get_mut(w) {
            Some(word) => {
                let fresh = *word & (1 << b) == 0;
                if *word == 0 {
                    self.touched.push(w as u32);
                }
                *word |= 1 << b;
                fresh
            }
            None => false,
        }
    }
}

/// `entry` when the graph has no node yet.
const NO_ENTRY: u64 = u64::MAX;

/// The graph. Node `i` is arena slot `i`.
///
/// Storage for every slot of the arena is allocated up front by [`Graph::reserve`] (which needs
/// `&mut`), and nodes `0..linked()` are linked. Linking the next node ([`Graph::link_next`])
/// takes only `&self`: links are atomic words, written by one linker at a time (a mutex inside
/// serializes linkers; the workers of one [`Graph::link_parallel`] batch share it, each link
/// list rewritten under its stripe lock) while any number of searches read them. A search may
/// see a link list halfway through an update; every word it can read names a node whose vector
/// is in the arena and whose own links were written before anything linked to it, so it only
/// ever routes through valid nodes. That keeps the expensive part of a write (linking, hundreds
/// of microseconds at 100K nodes) off every lock a search or an insert waits on.
#[derive(Debug)]
pub(crate) struct Graph {
    m: usize,
    m0: usize,
    ef_construction: usize,
    ml: f64,
    seed: u64,
    /// Per slot, its level (drawn deterministically from the slot number at reserve time).
    levels: Vec<u8>,
    /// Layer-0 links, fixed stride `m0 + 1`: a count, then up to `m0` neighbours.
    links0: Vec<AtomicU32>,
    /// Per slot, offset of its upper-layer blocks in `upper` (`u32::MAX` for level-0 slots).
    upper_offset: Vec<u32>,
    /// Blocks of stride `m + 1` (count, then links), one per layer 1..=level of each slot.
    upper: Vec<AtomicU32>,
    /// Nodes `0..linked` are linked; the next one to link is `linked`.
    linked: AtomicUsize,
    /// The entry point and the top level, packed as `level << 32 | node` (or [`NO_ENTRY`]), so a
    /// search reads both at once.
    entry: AtomicU64,
    /// The linker's visited set; holding it is what makes one linker at a time (one batch at a
    /// time for [`Graph::link_parallel`], whose workers bring their own sets).
    linker: Mutex<Visited>,
    /// Locks over nodes' link lists (node `n` under `stripes[n % STRIPES]`), held while a
    /// linker rewrites a list, so that two workers of a parallel batch never lose each other's
    /// back links. Searches do not take them.
    stripes: Box<[Mutex<()>]>,
    /// Nodes linked with a shorter candidate list than `ef_construction` (a quick batch, under
    /// a backlog), in the order they were linked, and nodes that lost links in a compaction
    /// ([`Graph::compacted`]): [`Graph::refine`] links them again with the full list.
    rough: Mutex<VecDeque<Range<u32>>>,
}

/// Lock stripes over the link lists.
const STRIPES: usize = 256;

fn stripes() -> Box<[Mutex<()>]> {
    (0..STRIPES).map(|_| Mutex::new(())).collect()
}

impl Clone for Graph {
    fn clone(&self) -> Self {
        let copy = |v: &[AtomicU32]| v.iter().map(|a| AtomicU32::new(a.load(Relaxed))).collect();
        Graph {
            m: self.m,
            m0: self.m0,
            ef_construction: self.ef_construction,
            ml: self.ml,
            seed: self.seed,
            levels: self.levels.clone(),
            links0: copy(&self.links0),
            upper_offset: self.upper_offset.clone(),
            upper: copy(&self.upper),
            linked: AtomicUsize::new(self.linked.load(Acquire)),
            entry: AtomicU64::new(self.entry.load(Acquire)),
            linker: Mutex::new(Visited::default()),
            stripes: stripes(),
            rough: Mutex::new(self.rough.lock().clone()),
        }
    }
}

impl Graph {
    pub fn new(params: &HnswParams, seed: u64) -> Self {
        Graph {
            m: params.m,
            m0: params.m * 2,
            ef_construction: params.ef_construction.max(params.m),
            ml: 1.0 / (params.m as f64).ln(),
            seed,
            levels: Vec::new(),
            links0: Vec::new(),
            upper_offset: Vec::new(),
            upper: Vec::new(),
            linked: AtomicUsize::new(0),
            entry: AtomicU64::new(NO_ENTRY),
            linker: Mutex::new(Visited::default()),
            stripes: stripes(),
            rough: Mutex::new(VecDeque::new()),
        }
    }

    /// An empty graph with this one's parameters and seed.
    fn empty_like(&self) -> Graph {
        let params = HnswParams {
            m: self.m,
            ef_construction: self.ef_construction,
            ..HnswParams::default()
        };
        Graph::new(&params, self.seed)
    }

    /// The shorter candidate list of a quick batch ([`Graph::link_parallel`] with `quick`):
    /// a quarter of `ef_construction`, at least `m`. Measured with `examples/ef_sweep.rs`
    /// (`EF_SWEEP_BUILD=backlog`, generated 384-d vectors, recall@10 at the default ef): half
    /// the list linked 1.6-2x faster than the whole; a quarter links 1.3-1.4x faster again
    /// (100K / 200K / 400K: 26,800 / 20,500 / 13,800 -> 38,000 / 27,000 / 18,300 vectors/s on 2
    /// cores) for a graph about as good before its refinement (0.930 / 0.960 / 0.957 -> 0.938 /
    /// 0.949 / 0.956) and after it (0.982 / 0.998 / 0.997 -> 0.989 / 0.990 / 0.998).
    fn quick_ef(&self) -> usize {
        (self.ef_construction / 4).max(self.m)
    }

    /// Slots with storage (linked or not).
    pub fn capacity(&self) -> usize {
        self.levels.len()
    }

    /// Nodes linked so far: slots `0..linked()`.
    pub fn linked(&self) -> usize {
        self.linked.load(Acquire)
    }

    /// The level of `node`, drawn from -ln(U) * mL with U a hash of the seed and the node, so a
    /// given insertion order always builds the same graph.
    fn random_level(&self, node: u32) -> usize {
        let r = splitmix64(self.seed ^ u64::from(node).wrapping_mul(0xD1B5_4A32_D192_ED03));
        let u = ((r >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        ((-u.ln() * self.ml).floor() as usize).min(MAX_LEVEL)
    }

    /// Allocates storage for slots up to `slots` (unlinked until [`Graph::link_next`] reaches
    /// them).
    pub fn reserve(&mut self, slots: usize) {
        if slots <= self.capacity() {
            return;
        }
        let more = slots - self.capacity();
        reserve_bounded(&mut self.levels, more);
        reserve_bounded(&mut self.upper_offset, more);
        reserve_bounded(&mut self.links0, more * (self.m0 + 1));
        for node in self.capacity()..slots {
            let level = self.random_level(node as u32);
            self.levels.push(level as u8);
            self.links0.extend((0..=self.m0).map(|_| AtomicU32::new(0)));
            if level > 0 {
                self.upper_offset.push(self.upper.len() as u32);
                let words = level * (self.m + 1);
                reserve_bounded(&mut self.upper, words);
                self.upper.extend((0..words).map(|_| AtomicU32::new(0)));
            } else {
                self.upper_offset.push(u32::MAX);
            }
        }
    }

    #[inline]
    fn block(&self, node: u32, layer: usize) -> &[AtomicU32] {
        if layer == 0 {
            let at = node as usize * (self.m0 + 1);
            &self.links0[at..at + self.m0 + 1]
        } else {
            let at = self.upper_offset[node as usize] as usize + (layer - 1) * (self.m + 1);
            &self.upper[at..at + self.m + 1]
        }
    }

    /// The current links of `node` on `layer`, copied out (at most `m0` words).
    #[inline]
    fn links(&self, node: u32, layer: usize, out: &mut Vec<u32>) {
        let block = self.block(node, layer);
        let count = (block[0].load(Acquire) as usize).min(block.len() - 1);
        out.clear();
        out.extend(block[1..=count].iter().map(|w| w.load(Acquire)));
    }

    /// Replaces the links of `node` on `layer`: the words first, the count last.
    fn set_links(&self, node: u32, layer: usize, links: &[u32]) {
        let block = self.block(node, layer);
        for (w, &l) in block[1..].iter().zip(links) {
            w.store(l, Release);
        }
        block[0].store(links.len() as u32, Release);
    }

    /// Links the next unlinked slot, with `pair(a, b)` giving the similarity of two slots.
    /// Returns false when every slot with storage is linked.
    pub fn link_next(&self, pair: impl Fn(u32, u32) -> f32, prefetch: impl Fn(u32)) -> bool {
        let mut visited = self.linker.lock();
        let node = self.linked.load(Acquire);
        if node >= self.capacity() {
            return false;
        }
        let node = node as u32;
        if self.entry.load(Acquire) == NO_ENTRY {
            self.entry
                .store(pack(node, usize::from(self.levels[node as usize])), Release);
        } else {
            self.link_node(node, self.ef_construction, &pair, &prefetch, &mut visited);
        }
        self.linked.store(node as usize + 1, Release);
        true
    }

    /// Links up to `max` unlinked slots with `threads` threads (this one and `threads - 1`
    /// scoped workers, each taking the next slot of the batch until none is left), then marks
    /// the batch linked. Returns how many it linked; 0 when nothing waits or the graph has no
    /// node yet (then [`Graph::link_next`] starts it).
    ///
    /// While the batch is linked, searches may meet its nodes out of order: they count as not
    /// linked until the batch ends (the caller scans them exactly), and a node's own links are
    /// still written before anything links to it. A graph built this way depends on thread
    /// timing; [`Graph::link_next`] alone builds the same graph every time.
    ///
    /// With `quick`, the batch is linked with a candidate list a quarter as long (see
    /// `quick_ef`) and remembered for [`Graph::refine`]: the way to keep up with a backlog
    /// without building a worse graph for good.
    pub fn link_parallel(
        &self,
        threads: usize,
        max: usize,
        quick: bool,
        pair: impl Fn(u32, u32) -> f32 + Sync,
        prefetch: impl Fn(u32) + Sync,
    ) -> usize {
        let mut visited = self.linker.lock();
        let start = self.linked.load(Acquire);
        let end = self.capacity().min(start.saturating_add(max));
        if start >= end || self.entry.load(Acquire) == NO_ENTRY {
            return 0;
        }
        let ef = if quick {
            self.quick_ef()
        } else {
            self.ef_construction
        };
        let next = AtomicUsize::new(start);
        let work = |visited: &mut Visited| loop {
            let node = next.fetch_add(1, Relaxed);
            if node >= end {
                break;
            }
            self.link_node(node as u32, ef, &pair, &prefetch, visited);
        };
        in_parallel(threads, end - start, &mut visited, work);
        if ef < self.ef_construction {
            let mut rough = self.rough.lock();
            match rough.back_mut() {
                Some(last) if last.end == start as u32 => last.end = end as u32,
                _ => rough.push_back(start as u32..end as u32),
            }
        }
        self.linked.store(end, Release);
        end - start
    }

    /// Nodes a quick batch linked, or a compaction took links from, that [`Graph::refine`] has
    /// not linked again yet.
    pub fn rough(&self) -> usize {
        self.rough.lock().iter().map(|r| r.len()).sum()
    }

    /// Links up to `max` nodes of quick batches (or that lost links in a compaction) again,
    /// lowest first, with the full `ef_construction` and `threads` threads: each searches the
    /// graph as a new node would, and keeps the best spread of its old and newly found
    /// neighbours (up to the layer's cap, as a full list would have become through back links);
    /// new neighbours get a back link. Searches run beside it and always see whole, valid lists.
    /// Returns how many it refined.
    pub fn refine(
        &self,
        threads: usize,
        max: usize,
        pair: impl Fn(u32, u32) -> f32 + Sync,
        prefetch: impl Fn(u32) + Sync,
    ) -> usize {
        let mut visited = self.linker.lock();
        let nodes: Vec<u32> = {
            let mut rough = self.rough.lock();
            let mut nodes = Vec::new();
            while nodes.len() < max {
                let Some(range) = rough.front_mut() else {
                    break;
                };
                let take = (max - nodes.len()).min(range.len());
                nodes.extend(range.start..range.start + take as u32);
                range.start += take as u32;
                if range.start >= range.end {
                    rough.pop_front();
                }
            }
            nodes
        };
        let next = AtomicUsize::new(0);
        let work = |visited: &mut Visited| loop {
            let i = next.fetch_add(1, Relaxed);
            let Some(&node) = nodes.get(i) else {
                break;
            };
            self.refine_node(node, &pair, &prefetch, visited);
        };
        in_parallel(threads, nodes.len(), &mut visited, work);
        nodes.len()
    }

    /// Links a linked `node` again with the full candidate list (see [`Graph::refine`]).
    fn refine_node(
        &self,
        node: u32,
        pair: &impl Fn(u32, u32) -> f32,
        prefetch: &impl Fn(u32),
        visited: &mut Visited,
    ) {
        let level = usize::from(self.levels[node as usize]);
        let sim = |x: u32| pair(node, x);
        let mut scratch = Vec::with_capacity(self.m0);
        let (ep, max_level) = self.descend(&sim, level, &mut scratch);
        let mut eps = vec![ep];
        let others = |x: u32| x != node;
        for layer in (0..=level.min(max_level)).rev() {
            let found = self.search_layer(
                &sim,
                prefetch,
                &eps,
                self.ef_construction,
                layer,
                visited,
                &others,
            );
            let cap = if layer == 0 { self.m0 } else { self.m };
            // The neighbours a full list finds join the node's links, as back links do: only a
            // list that overflows is pruned by the heuristic (pruning a list that fits would
            // drop good back links and cost recall). It is read and rewritten under its lock,
            // so a back link another worker adds meanwhile is not lost.
            let chosen = select_neighbours(&found, self.m, pair);
            let added: Vec<u32> = {
                let _list = self.stripe(node).lock();
                self.links(node, layer, &mut scratch);
                let mut links = scratch.clone();
                links.extend(chosen.iter().filter(|x| !scratch.contains(x)));
                if links.len() > cap {
                    let mut cands: Vec<Cand> = links
                        .iter()
                        .map(|&x| Cand {
                            sim: sim(x),
                            node: x,
                        })
                        .collect();
                    cands.sort_unstable_by(|a, b| b.cmp(a));
                    links = select_neighbours(&cands, cap, pair);
                }
                self.set_links(node, layer, &links);
                links.retain(|x| !scratch.contains(x));
                links
            };
            for e in added {
                self.connect(e, node, layer, cap, pair, &mut scratch);
            }
            if !found.is_empty() {
                eps = found;
            }
        }
    }

    /// Links `node` into a graph that has an entry point, with a candidate list of `ef`: the
    /// search down the layers, its own links, then the back links, and the entry point if
    /// `node` reaches above it.
    fn link_node(
        &self,
        node: u32,
        ef: usize,
        pair: &impl Fn(u32, u32) -> f32,
        prefetch: &impl Fn(u32),
        visited: &mut Visited,
    ) {
        let level = usize::from(self.levels[node as usize]);
        let sim = |x: u32| pair(node, x);
        let mut scratch = Vec::with_capacity(self.m0);
        let (ep, max_level) = self.descend(&sim, level, &mut scratch);
        let mut eps = vec![ep];
        // A parallel batch-mate may link to `node` before `node` has links of its own: the
        // search can then reach `node` itself, which must not become its own neighbour (it
        // would also crowd out every other candidate in the selection).
        let others = |x: u32| x != node;
        for layer in (0..=level.min(max_level)).rev() {
            let found = self.search_layer(&sim, prefetch, &eps, ef, layer, visited, &others);
            let chosen = select_neighbours(&found, self.m, pair);
            let cap = if layer == 0 { self.m0 } else { self.m };
            // The node's own links are in place before any neighbour links to it, so a search
            // that reaches it can always go on from it. Back links a batch-mate already gave
            // it are kept beside the chosen ones (the selection decides when they are too many).
            {
                let _list = self.stripe(node).lock();
                self.links(node, layer, &mut scratch);
                let mut own = chosen.clone();
                own.extend(
                    scratch
                        .iter()
                        .filter(|&&x| x != node && !chosen.contains(&x)),
                );
                if own.len() > cap {
                    let mut cands: Vec<Cand> = own
                        .iter()
                        .map(|&x| Cand {
                            sim: pair(node, x),
                            node: x,
                        })
                        .collect();
                    cands.sort_unstable_by(|a, b| b.cmp(a));
                    own = select_neighbours(&cands, cap, pair);
                }
                self.set_links(node, layer, &own);
            }
            for &e in &chosen {
                self.connect(e, node, layer, cap, pair, &mut scratch);
            }
            eps = found;
        }
        // Raise the entry point if `node` reaches above it (a parallel worker may have raised it
        // meanwhile: only ever upwards).
        let mut current = self.entry.load(Acquire);
        while level > unpack(current).1 {
            match self
                .entry
                .compare_exchange(current, pack(node, level), AcqRel, Acquire)
            {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
    }

    /// The lock over `node`'s link lists.
    fn stripe(&self, node: u32) -> &Mutex<()> {
        &self.stripes[node as usize % STRIPES]
    }

    /// Adds the back link `e -> node`, re-running the selection heuristic over `e`'s links when
    /// they are full.
    fn connect(
        &self,
        e: u32,
        node: u32,
        layer: usize,
        cap: usize,
        pair: &impl Fn(u32, u32) -> f32,
        current: &mut Vec<u32>,
    ) {
        let _list = self.stripe(e).lock();
        self.links(e, layer, current);
        if current.len() < cap {
            let block = self.block(e, layer);
            block[1 + current.len()].store(node, Release);
            block[0].store(current.len() as u32 + 1, Release);
            return;
        }
        let mut cands: Vec<Cand> = current
            .iter()
            .chain(std::iter::once(&node))
            .map(|&x| Cand {
                sim: pair(e, x),
                node: x,
            })
            .collect();
        cands.sort_unstable_by(|a, b| b.cmp(a));
        let chosen = select_neighbours(&cands, cap, pair);
        self.set_links(e, layer, &chosen);
    }

    /// The greedy walk (ef = 1) from the entry point down to the layer above `level`: where a
    /// search of layers `level.min(top)` and below starts, and the graph's top level. The
    /// graph must have an entry point.
    fn descend(
        &self,
        sim: &impl Fn(u32) -> f32,
        level: usize,
        links: &mut Vec<u32>,
    ) -> (Cand, usize) {
        let (entry, max_level) = unpack(self.entry.load(Acquire));
        let mut ep = Cand {
            sim: sim(entry),
            node: entry,
        };
        for layer in (level + 1..=max_level).rev() {
            ep = self.greedy(sim, ep, layer, links);
        }
        (ep, max_level)
    }

    /// Greedy walk to the best node reachable on `layer` (search with ef = 1).
    fn greedy(
        &self,
        sim: &impl Fn(u32) -> f32,
        mut cur: Cand,
        layer: usize,
        links: &mut Vec<u32>,
    ) -> Cand {
        loop {
            let mut changed = false;
            self.links(cur.node, layer, links);
            for &e in links.iter() {
                let c = Cand {
                    sim: sim(e),
                    node: e,
                };
                if c > cur {
                    cur = c;
                    changed = true;
                }
            }
            if !changed {
                return cur;
            }
        }
    }

    /// Best-first search of one layer. Every node is traversed, but only nodes `accept` allows
    /// enter the results, so filtered-out and removed nodes still route. Returns up to `ef`
    /// accepted nodes, best first.
    #[allow(clippy::too_many_arguments)]
    fn search_layer(
        &self,
        sim: &impl Fn(u32) -> f32,
        prefetch: &impl Fn(u32),
        eps: &[Cand],
        ef: usize,
        layer: usize,
        visited: &mut Visited,
        accept: &impl Fn(u32) -> bool,
    ) -> Vec<Cand> {
        visited.reset(self.capacity());
        let mut candidates: BinaryHeap<Cand> = BinaryHeap::new();
        // Never more results than nodes: an `ef` of any size (usize::MAX for "all") is fine.
        let mut results: BinaryHeap<Reverse<Cand>> =
            BinaryHeap::with_capacity(ef.min(self.capacity()).saturating_add(1));
        for &ep in eps {
            if visited.insert(ep.node) {
                candidates.push(ep);
                if accept(ep.node) {
                    results.push(Reverse(ep));
                    if results.len() > ef {
                        results.pop();
                    }
                }
            }
        }
        // Unvisited neighbours are scored as a batch before any of them is processed: the
        // similarity computations are then independent, so the CPU overlaps their cache misses
        // on the arena instead of waiting for each in turn behind the heap updates.
        let mut links: Vec<u32> = Vec::with_capacity(self.m0);
        let mut batch: Vec<Cand> = Vec::with_capacity(self.m0);
        while let Some(c) = candidates.pop() {
            if results.len() >= ef {
                if let Some(worst) = results.peek() {
                    if c.sim < worst.0.sim {
                        break;
                    }
                }
            }
            batch.clear();
            self.links(c.node, layer, &mut links);
            for &e in &links {
                if visited.insert(e) {
                    prefetch(e);
                    batch.push(Cand { sim: 0.0, node: e });
                }
            }
            for b in batch.iter_mut() {
                b.sim = sim(b.node);
            }
            for &Cand { sim: s, node: e } in &batch {
                let worst = if results.len() >= ef {
                    results.peek().map_or(f32::NEG_INFINITY, |w| w.0.sim)
                } else {
                    f32::NEG_INFINITY
                };
                if s > worst {
                    let cand = Cand { sim: s, node: e };
                    candidates.push(cand);
                    if accept(e) {
                        results.push(Reverse(cand));
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                }
            }
        }
        let mut out: Vec<Cand> = results.into_iter().map(|r| r.0).collect();
        out.sort_unstable_by(|a, b| b.cmp(a));
        out
    }

    /// Up to `ef` accepted nodes nearest the query that `sim` scores, best first. Nodes being
    /// linked while the search runs may be among them.
    /// `prefetch(node)` is called for each node shortly before `sim(node)`, so the caller can
    /// start loading its vector while others are scored.
    pub fn search(
        &self,
        sim: impl Fn(u32) -> f32,
        prefetch: impl Fn(u32),
        ef: usize,
        accept: impl Fn(u32) -> bool,
    ) -> Vec<Cand> {
        let packed = self.entry.load(Acquire);
        if packed == NO_ENTRY {
            return Vec::new();
        }
        let (entry, max_level) = unpack(packed);
        let mut ep = Cand {
            sim: sim(entry),
            node: entry,
        };
        let mut links = Vec::with_capacity(self.m0);
        for layer in (1..=max_level).rev() {
            ep = self.greedy(&sim, ep, layer, &mut links);
        }
        SEARCH_VISITED.with(|visited| match visited.try_borrow_mut() {
            Ok(mut visited) => {
                self.search_layer(&sim, &prefetch, &[ep], ef, 0, &mut visited, &accept)
            }
            // Only if `sim` or `accept` searched a graph themselves, on this same thread.
            Err(_) => self.search_layer(
                &sim,
                &prefetch,
                &[ep],
                ef,
                0,
                &mut Visited::default(),
                &accept,
            ),
        })
    }

    /// The graph over the nodes `remap` keeps, built beside this one (which searches may go on
    /// walking meanwhile): `remap[node]` is a node's new number, in the same order, or
    /// `u32::MAX` for a removed one. Each kept node keeps its level and its links to kept nodes;
    /// links to removed nodes are dropped. A linked node that lost a link is queued for
    /// [`Graph::refine`] (beside the nodes still queued there), which searches its neighbourhood
    /// again with the full candidate list and links it back in, beside searches. If the entry
    /// point was removed, the kept linked node of the highest level (the first of them) takes
    /// its place. Links being made wait until the copy is made (a caller compacting an index
    /// keeps the linker out anyway).
    ///
    /// Measured with `examples/compact_beside_queries.rs` (100,000 of the suite's generated
    /// 384-d vectors, 35% forgotten): recall@10 0.99-1.00 before, 0.94-0.97 right after, 0.97-1.00
    /// once refined (`docs/measurements.md`). Filling the lost links from the removed nodes' own
    /// links here was tried: better recall right after, but a compaction 6-8x as long.
    pub fn compacted(&self, remap: &[u32]) -> Graph {
        let _no_linking = self.linker.lock();
        let mut g = self.empty_like();
        let slots = self.capacity().min(remap.len());
        let kept = remap[..slots].iter().filter(|&&n| n != u32::MAX).count();
        let upper_words: usize = (0..slots)
            .filter(|&node| remap[node] != u32::MAX)
            .map(|node| usize::from(self.levels[node]) * (self.m + 1))
            .sum();
        g.levels.reserve_exact(kept);
        g.upper_offset.reserve_exact(kept);
        g.links0.reserve_exact(kept * (self.m0 + 1));
        g.upper.reserve_exact(upper_words);
        let linked = self.linked();
        // Kept linked nodes that lost a link, by their new numbers (ascending).
        let mut lost: Vec<u32> = Vec::new();
        let mut links = Vec::with_capacity(self.m0);
        let mut kept_links = Vec::with_capacity(self.m0);
        for (node, &new) in remap[..slots].iter().enumerate() {
            if new == u32::MAX {
                continue;
            }
            debug_assert_eq!(new as usize, g.levels.len(), "remap keeps the order");
            let level = usize::from(self.levels[node]);
            g.levels.push(self.levels[node]);
            g.upper_offset.push(if level > 0 {
                g.upper.len() as u32
            } else {
                u32::MAX
            });
            let mut damaged = false;
            for layer in 0..=level {
                self.links(node as u32, layer, &mut links);
                let alive = |to: u32| remap.get(to as usize).is_some_and(|&n| n != u32::MAX);
                kept_links.clear();
                kept_links.extend(links.iter().copied().filter(|&to| alive(to)));
                let cap = if layer == 0 { self.m0 } else { self.m };
                damaged |= kept_links.len() < links.len();
                for to in kept_links.iter_mut() {
                    *to = remap[*to as usize];
                }
                let words = if layer == 0 {
                    &mut g.links0
                } else {
                    &mut g.upper
                };
                words.push(AtomicU32::new(kept_links.len() as u32));
                words.extend(kept_links.iter().map(|&to| AtomicU32::new(to)));
                words.extend((kept_links.len()..cap).map(|_| AtomicU32::new(0)));
            }
            if damaged && node < linked {
                lost.push(new);
            }
        }
        let new_linked = remap[..linked.min(slots)]
            .iter()
            .filter(|&&n| n != u32::MAX)
            .count();
        // The nodes still to refine, and those that lost links, as ascending ranges.
        let mut repair: Vec<u32> = self
            .rough
            .lock()
            .iter()
            .flat_map(|r| r.clone())
            .filter_map(|node| remap.get(node as usize).copied())
            .filter(|&n| n != u32::MAX)
            .collect();
        repair.extend(lost);
        repair.sort_unstable();
        repair.dedup();
        let rough = g.rough.get_mut();
        for node in repair {
            match rough.back_mut() {
                Some(last) if last.end == node => last.end = node + 1,
                _ => rough.push_back(node..node + 1),
            }
        }
        let entry = match self.entry.load(Acquire) {
            NO_ENTRY => NO_ENTRY,
            packed => {
                let (node, level) = unpack(packed);
                match remap.get(node as usize) {
                    Some(&new) if new != u32::MAX => pack(new, level),
                    // The highest kept linked node (the first of its level).
                    _ => (0..new_linked as u32)
                        .rev()
                        .max_by_key(|&n| g.levels[n as usize])
                        .map_or(NO_ENTRY, |n| pack(n, usize::from(g.levels[n as usize]))),
                }
            }
        };
        g.linked = AtomicUsize::new(new_linked);
        g.entry = AtomicU64::new(entry);
        g
    }

    /// Heap memory held by the graph, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.levels.capacity()
            + 4 * (self.links0.capacity() + self.upper_offset.capacity() + self.upper.capacity())
            + 8 * self.linker.lock().bits.capacity()
            + std::mem::size_of::<Range<u32>>() * self.rough.lock().capacity()
    }
}

/// Runs `work` on this thread (with the linker's visited set) and on up to `threads - 1`
/// scoped workers (with sets of their own), for `items` items; returns when all are done.
fn in_parallel(
    threads: usize,
    items: usize,
    visited: &mut Visited,
    work: impl Fn(&mut Visited) + Sync,
) {
    std::thread::scope(|scope| {
        for _ in 1..threads.clamp(1, items.max(1)) {
            // Workers inherit this thread's (background) priority.
            scope.spawn(|| work(&mut Visited::default()));
        }
        work(visited);
    });
}

fn pack(node: u32, level: usize) -> u64 {
    (level as u64) << 32 | u64::from(node)
}

fn unpack(packed: u64) -> (u32, usize) {
    (packed as u32, (packed >> 32) as usize)
}

/// The neighbour-selection heuristic (Algorithm 4 of the paper): walking candidates from the
/// nearest, keep one only if it is nearer to the base than to every neighbour kept so far. On
/// clustered data this keeps links pointing out of a cluster instead of spending them all on its
/// members. `cands` must be sorted best first.
fn select_neighbours(cands: &[Cand], m: usize, pair: &impl Fn(u32, u32) -> f32) -> Vec<u32> {
    let mut kept: Vec<u32> = Vec::with_capacity(m);
    for c in cands {
        if kept.len() >= m {
            break;
        }
        if kept.iter().all(|&r| pair(c.node, r) < c.sim) {
            kept.push(c.node);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visited_set_reports_first_visits_only() {
        let mut v = Visited::default();
        v.reset(130);
        assert!(v.insert(0));
        assert!(v.insert(129));
        assert!(!v.insert(129));
        assert!(!v.insert(500), "out of range is never a fresh visit");
        v.reset(130);
        assert!(v.insert(129));
        assert!(v.insert(0), "a reset clears every word marked before it");
        v.reset(64);
        assert!(
            v.insert(0) && v.insert(129),
            "a smaller reset keeps covering what it did"
        );
        v.reset(10_000);
        assert!((0..10_000).all(|i| v.insert(i)));
        assert!((0..10_000).all(|i| !v.insert(i)));
        v.reset(10_000);
        assert!((0..10_000).all(|i| v.insert(i)));
    }

    #[test]
    fn levels_are_deterministic_and_geometric() {
        let g = Graph::new(&HnswParams::default(), 7);
        let levels: Vec<usize> = (0..20_000).map(|i| g.random_level(i)).collect();
        let again: Vec<usize> = (0..20_000).map(|i| g.random_level(i)).collect();
        assert_eq!(levels, again);
        // P(level >= 1) = 1/16 with m = 16: expect 1,250 of 20,000.
        let upper = levels.iter().filter(|&&l| l >= 1).count();
        assert!((1_000..1_500).contains(&upper), "{upper}");
    }

    /// What a parallel batch-mate can do before a node is linked, played in one thread: link
    /// back to it (so a search can reach it) and give it a link of its own. Linking the node
    /// then neither makes it its own neighbour nor drops that link.
    #[test]
    fn a_node_reached_before_its_linking_links_to_others_and_keeps_its_back_links() {
        // Points on a line; similarity = -distance.
        let pos: Vec<f32> = (0..40).map(|i| i as f32).collect();
        let pair = |a: u32, b: u32| -(pos[a as usize] - pos[b as usize]).abs();
        let mut g = Graph::new(&HnswParams::default(), 3);
        g.reserve(pos.len());
        let node = 39;
        assert_eq!(g.levels[node as usize], 0, "pick a node of layer 0 only");
        while g.linked() < node as usize {
            g.link_next(pair, |_| {});
        }
        let mut current = Vec::new();
        // A batch-mate (38, its nearest) linked back to the node, and another (0, far) gave it
        // a link.
        g.connect(38, node, 0, g.m0, &pair, &mut current);
        g.connect(node, 0, 0, g.m0, &pair, &mut current);
        let mut visited = Visited::default();
        g.link_node(node, g.ef_construction, &pair, &|_| {}, &mut visited);
        let mut links = Vec::new();
        g.links(node, 0, &mut links);
        assert!(!links.contains(&node), "{links:?}");
        assert!(links.contains(&38), "{links:?}");
        assert!(links.contains(&0), "the back link was dropped: {links:?}");
    }

    #[test]
    fn a_compacted_graph_keeps_the_links_between_kept_nodes_and_queues_those_that_lost_some() {
        // Points on a line; similarity = -distance.
        let pos = |x: u32| x as f32;
        let pair = |a: u32, b: u32| -(pos(a) - pos(b)).abs();
        let params = HnswParams {
            m: 4,
            ..HnswParams::default()
        };
        let mut g = Graph::new(&params, 5);
        g.reserve(400);
        while g.linked() < 300 {
            g.link_next(pair, |_| {});
        }
        // Nodes 300.. stay unlinked. The entry point goes, and every third node.
        let (entry, top) = unpack(g.entry.load(Acquire));
        assert!(top > 0, "pick a seed whose entry point is above layer 0");
        let removed = |n: usize| n == entry as usize || n % 3 == 1;
        let mut remap = vec![u32::MAX; 400];
        let mut old_of = Vec::new();
        for n in (0..400).filter(|&n| !removed(n)) {
            remap[n] = old_of.len() as u32;
            old_of.push(n as u32);
        }
        let c = g.compacted(&remap);
        assert_eq!(c.capacity(), old_of.len());
        let linked = old_of.iter().filter(|&&n| n < 300).count();
        assert_eq!(c.linked(), linked);
        let (mut old_links, mut new_links) = (Vec::new(), Vec::new());
        let mut lost = Vec::new();
        for (new, &old) in old_of.iter().enumerate() {
            assert_eq!(c.levels[new], g.levels[old as usize]);
            let mut lost_some = false;
            for layer in 0..=usize::from(c.levels[new]) {
                g.links(old, layer, &mut old_links);
                c.links(new as u32, layer, &mut new_links);
                let kept: Vec<u32> = old_links
                    .iter()
                    .filter(|&&to| remap[to as usize] != u32::MAX)
                    .map(|&to| remap[to as usize])
                    .collect();
                assert_eq!(new_links, kept, "node {old}, layer {layer}");
                lost_some |= kept.len() < old_links.len();
            }
            if lost_some {
                lost.push(new as u32);
            }
        }
        assert!(!lost.is_empty() && lost.iter().all(|&n| (n as usize) < linked));
        assert_eq!(c.rough(), lost.len());
        // The new entry point: the first kept node of the highest level.
        let (entry, level) = unpack(c.entry.load(Acquire));
        let highest = (0..linked).map(|n| c.levels[n]).max().unwrap();
        assert_eq!(usize::from(highest), level);
        assert_eq!(
            entry as usize,
            (0..linked).position(|n| c.levels[n] == highest).unwrap()
        );
        // The repairs and the unlinked nodes use the new numbers.
        let new_pair = |a: u32, b: u32| pair(old_of[a as usize], old_of[b as usize]);
        while c.refine(1, 64, new_pair, |_| {}) > 0 {}
        assert_eq!(c.rough(), 0);
        while c.link_next(new_pair, |_| {}) {}
        assert_eq!(c.linked(), old_of.len());
        for q in [0.3f32, 77.7, 250.2, 380.9] {
            let sim = |n: u32| -(pos(old_of[n as usize]) - q).abs();
            let found = c.search(sim, |_| {}, 16, |_| true);
            let best = (0..old_of.len() as u32)
                .max_by(|&a, &b| sim(a).total_cmp(&sim(b)))
                .unwrap();
            assert_eq!(found[0].node, best, "query {q}");
        }
    }

    #[test]
    fn selection_heuristic_skips_candidates_closer_to_a_kept_neighbour() {
        // Points on a line: base at 0, candidates at 1, 1.1 and -2 (similarity = -distance).
        let pos = [0.0f32, 1.0, 1.1, -2.0];
        let pair = |a: u32, b: u32| -(pos[a as usize] - pos[b as usize]).abs();
        let mut cands: Vec<Cand> = (1..4)
            .map(|n| Cand {
                sim: pair(0, n),
                node: n,
            })
            .collect();
        cands.sort_unstable_by(|a, b| b.cmp(a));
        // 1.1 is nearer to 1 than to the base, so it is dropped; -2 lies the other way.
        assert_eq!(select_neighbours(&cands, 3, &pair), [1, 3]);
    }
}
