//! A [`Graph`] in a snapshot file: its levels and link words as they are in memory, written while
//! the linker's mutex is held so that no link changes meanwhile. Decoding checks every link
//! against the graph's size and the levels, so a search can never step outside the graph.

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::{unpack, Graph, HnswParams, Visited, MAX_LEVEL, NO_ENTRY};
use crate::index::codec::{ensure, Decoded, Decoder, Encoder};

impl Graph {
    /// Writes the graph; links being made wait until it is written.
    pub(crate) fn encode<W: Write>(&self, enc: &mut Encoder<W>) -> std::io::Result<()> {
        let _no_linking = self.linker.lock();
        enc.u64(self.linked.load(Ordering::Acquire) as u64)?;
        enc.u64(self.entry.load(Ordering::Acquire))?;
        enc.array(self.levels.len(), self.levels.iter().map(|&l| [l]))?;
        enc.u32s(&self.upper_offset)?;
        enc.atomics(&self.links0)?;
        enc.atomics(&self.upper)?;
        let rough: Vec<u32> = self
            .rough
            .lock()
            .iter()
            .flat_map(|r| [r.start, r.end])
            .collect();
        enc.u32s(&rough)
    }

    /// Reads a graph written with the same `params` and `seed` over `slots` slots.
    pub(crate) fn decode(
        dec: &mut Decoder<'_>,
        params: &HnswParams,
        seed: u64,
        slots: usize,
    ) -> Decoded<Graph> {
        let mut g = Graph::new(params, seed);
        let linked = dec.u64()? as usize;
        let entry = dec.u64()?;
        g.levels = dec.array(|[l]: [u8; 1]| l)?;
        g.upper_offset = dec.u32s()?;
        g.links0 = dec.atomics()?;
        g.upper = dec.atomics()?;
        let rough = dec.u32s()?;
        let cap = g.levels.len();
        ensure(cap == slots && g.upper_offset.len() == cap, || {
            format!("the graph covers {cap} slots of {slots}")
        })?;
        ensure(linked <= cap, || "more nodes linked than exist".into())?;
        ensure(g.links0.len() == cap * (g.m0 + 1), || {
            "layer 0 does not match the graph's size".into()
        })?;
        for node in 0..cap {
            let level = usize::from(g.levels[node]);
            ensure(level <= MAX_LEVEL, || {
                format!("node {node} has level {level}")
            })?;
            let off = g.upper_offset[node];
            if level == 0 {
                ensure(off == u32::MAX, || format!("node {node} has upper links"))?;
            } else {
                let end = off as usize + level * (g.m + 1);
                ensure(off != u32::MAX && end <= g.upper.len(), || {
                    format!("node {node}'s upper links lie outside the graph")
                })?;
            }
        }
        for node in 0..cap as u32 {
            for layer in 0..=usize::from(g.levels[node as usize]) {
                let block = g.block(node, layer);
                let count = block[0].load(Ordering::Relaxed) as usize;
                ensure(count < block.len(), || {
                    format!("node {node} has too many links")
                })?;
                for w in &block[1..=count] {
                    let to = w.load(Ordering::Relaxed) as usize;
                    ensure(to < cap && usize::from(g.levels[to]) >= layer, || {
                        format!("node {node} links to {to}, which is not on layer {layer}")
                    })?;
                }
            }
        }
        if entry != NO_ENTRY {
            let (node, level) = unpack(entry);
            ensure(
                (node as usize) < linked.max(1).min(cap)
                    && usize::from(g.levels[node as usize]) == level,
                || "the entry point is not a linked node of its level".into(),
            )?;
        } else {
            ensure(linked == 0, || "linked nodes but no entry point".into())?;
        }
        // Nodes a quick batch linked, still to refine: ascending, disjoint ranges of linked nodes.
        ensure(rough.len() % 2 == 0, || {
            "a node range without its end".into()
        })?;
        let mut after = 0;
        for pair in rough.chunks_exact(2) {
            let (start, end) = (pair[0], pair[1]);
            ensure(
                after <= start && start < end && end as usize <= linked,
                || format!("nodes {start}..{end} to refine are out of order or not linked"),
            )?;
            after = end;
            g.rough.get_mut().push_back(start..end);
        }
        g.linked = AtomicUsize::new(linked);
        g.entry = AtomicU64::new(entry);
        g.linker = Mutex::new(Visited::default());
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(n: u32) -> Graph {
        let params = HnswParams {
            min_len: 2,
            ..HnswParams::default()
        };
        let mut g = Graph::new(&params, 7);
        g.reserve(n as usize);
        let angle = |x: u32| x as f32 * 0.3;
        let pair = |a: u32, b: u32| (angle(a) - angle(b)).cos();
        while g.link_next(pair, |_| {}) {}
        g
    }

    fn encoded(g: &Graph) -> Vec<u8> {
        let mut enc = Encoder::new(Vec::new());
        g.encode(&mut enc).unwrap();
        enc.finish().unwrap().0
    }

    #[test]
    fn a_graph_round_trips_and_a_link_outside_it_is_a_defect() {
        let g = graph(10);
        let mut bytes = encoded(&g);
        let mut dec = Decoder::new(&bytes);
        let back = Graph::decode(&mut dec, &HnswParams::default(), 7, 10).unwrap();
        dec.finish().unwrap();
        assert_eq!(encoded(&back), bytes);
        // linked, entry, levels (length + 10), upper offsets (length + 40), layer 0's length,
        // node 0's count: then node 0's first link.
        let at = 8 + 8 + (8 + 10) + (8 + 40) + 8 + 4;
        bytes[at..at + 4].copy_from_slice(&1_000u32.to_le_bytes());
        let mut dec = Decoder::new(&bytes);
        let err = Graph::decode(&mut dec, &HnswParams::default(), 7, 10).unwrap_err();
        assert!(err.0.contains("links to 1000"), "{err}");
        let mut dec = Decoder::new(&bytes);
        let err = Graph::decode(&mut dec, &HnswParams::default(), 7, 11).unwrap_err();
        assert!(err.0.contains("covers 10 slots of 11"), "{err}");
    }

    #[test]
    fn nodes_still_to_refine_round_trip_and_must_be_linked_ones() {
        let mut g = Graph::new(&HnswParams::default(), 7);
        g.reserve(300);
        let angle = |x: u32| x as f32 * 0.3;
        let pair = |a: u32, b: u32| (angle(a) - angle(b)).cos();
        assert!(g.link_next(pair, |_| {}));
        assert_eq!(g.link_parallel(2, 100, true, pair, |_| {}), 100);
        assert_eq!(g.link_parallel(2, 50, true, pair, |_| {}), 50);
        assert_eq!(g.link_parallel(2, 50, false, pair, |_| {}), 50);
        assert_eq!(g.rough(), 150, "quick batches only, one range");
        assert_eq!(g.refine(2, 20, pair, |_| {}), 20);
        let mut bytes = encoded(&g);
        let back =
            Graph::decode(&mut Decoder::new(&bytes), &HnswParams::default(), 7, 300).unwrap();
        assert_eq!(back.rough(), 130);
        assert_eq!(encoded(&back), bytes);
        // The range is 21..151 now: an end past the linked nodes (201) is a defect.
        let end = 151u32.to_le_bytes();
        let at = bytes.windows(4).rposition(|w| w == end).unwrap();
        bytes[at..at + 4].copy_from_slice(&250u32.to_le_bytes());
        let Err(err) = Graph::decode(&mut Decoder::new(&bytes), &HnswParams::default(), 7, 300)
        else {
            panic!("a range of unlinked nodes to refine was accepted");
        };
        assert!(err.0.contains("to refine"), "{err}");
    }
}
