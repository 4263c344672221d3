//! A [`VectorIndex`] (arena, slot ids, tombstones, graph) and a [`VectorStaging`] buffer in a
//! snapshot file. Vectors are written as the arena holds them (f32, halves, or int8 codes and
//! scales), so a loaded index scores exactly as the saved one did; the int8 codes graph
//! construction compares follow them, when kept.

use std::io::Write;

use super::hnsw::Graph;
use super::{Arena, LinkCodes, Quantization, VectorIndex, VectorIndexConfig, VectorStaging};
use crate::entry::EntryId;
use crate::index::codec::{ensure, Decoded, Decoder, Encoder, SnapshotDefect};
use crate::index::column::{Column, Plain};
use crate::index::idmap::map_by_id;

impl Arena {
    fn encode<W: Write>(&self, enc: &mut Encoder<W>) -> std::io::Result<()> {
        match self {
            Arena::F32(data) => enc.column(data),
            Arena::F16(data) => enc.column(data),
            Arena::Int8 { codes, scales } => {
                enc.column(codes)?;
                enc.column(scales)
            }
        }
    }

    fn decode(dec: &mut Decoder<'_>, config: &VectorIndexConfig, slots: usize) -> Decoded<Arena> {
        let want = slots.saturating_mul(config.dim);
        let arena = match config.quantization {
            Quantization::None => Arena::F32(dec.column()?),
            Quantization::F16 => Arena::F16(dec.column()?),
            Quantization::Int8 => Arena::Int8 {
                codes: dec.column()?,
                scales: dec.column()?,
            },
        };
        let ok = match &arena {
            Arena::F32(d) => d.len() == want,
            Arena::F16(d) => d.len() == want,
            Arena::Int8 { codes, scales } => codes.len() == want && scales.len() == slots,
        };
        let dim = config.dim;
        ensure(ok, || {
            format!("the vector arena does not hold {slots} vectors of {dim} dimensions")
        })?;
        // Every number must be finite (a scan of every vector: a verifier thread does it when
        // the arena is viewed in a mapped file).
        match &arena {
            Arena::F32(d) => check_finite(dec, d, all_finite_in)?,
            Arena::F16(d) => check_finite(dec, d, all_finite_halves)?,
            Arena::Int8 { scales, .. } => check_finite(dec, scales, all_finite_in)?,
        }
        Ok(arena)
    }
}

/// Checks that `all_finite` holds for every number of `numbers`: now for its owned part, on the
/// verifier thread for a part viewed in a mapped file.
fn check_finite<T: Plain>(
    dec: &mut Decoder<'_>,
    numbers: &Column<T>,
    all_finite: fn(&[T]) -> bool,
) -> Decoded<()> {
    let (base, tail) = numbers.parts();
    ensure(all_finite(tail), not_finite)?;
    if dec.defers_checks() {
        // In blocks, so that both threads of the verification can take some.
        for start in (0..base.len()).step_by(FINITE_BLOCK) {
            let numbers = numbers.clone();
            let end = (start + FINITE_BLOCK).min(base.len());
            dec.check_later(Box::new(move || {
                ensure(all_finite(&numbers.parts().0[start..end]), not_finite)
            }))?;
        }
    } else {
        ensure(all_finite(base), not_finite)?;
    }
    Ok(())
}

/// Numbers per deferred finiteness check of a mapped arena (16 MB of f32).
const FINITE_BLOCK: usize = 4 << 20;

fn not_finite() -> String {
    "the vector arena holds a number that is not finite".into()
}

/// Whether every number of `xs` is finite, in blocks without an early exit per element (so the
/// loop vectorizes: this scans every vector of a reopened store).
fn all_finite_in(xs: &[f32]) -> bool {
    xs.chunks(4096)
        .all(|block| block.iter().fold(true, |ok, x| ok & x.is_finite()))
}

/// [`all_finite_in`] for half-precision bit patterns.
fn all_finite_halves(xs: &[u16]) -> bool {
    xs.chunks(4096).all(|block| {
        block
            .iter()
            .fold(true, |ok, &h| ok & super::quant::half_is_finite(h))
    })
}

impl VectorIndex {
    /// Writes the index. The caller holds it behind a read lock; the graph keeps the linker out
    /// while its links are written.
    pub(crate) fn encode<W: Write>(&self, enc: &mut Encoder<W>) -> std::io::Result<()> {
        enc.len(self.ids.len())?;
        self.arena.encode(enc)?;
        // Link codes are left out (marker 0): made again from the arena after a load, in the
        // background, they cost less than reading them (a quarter of the file beside halves).
        // A file written with them (marker 1) is still read.
        enc.u8(0)?;
        enc.ids(&self.ids)?;
        enc.bools(&self.deleted)?;
        match &self.graph {
            Some(g) => {
                enc.u8(1)?;
                g.encode(enc)
            }
            None => enc.u8(0),
        }
    }

    pub(crate) fn decode(dec: &mut Decoder<'_>, config: VectorIndexConfig) -> Decoded<Self> {
        config
            .validate()
            .map_err(|e| SnapshotDefect(e.to_string()))?;
        let slots = dec.len(config.dim)?;
        let arena = Arena::decode(dec, &config, slots)?;
        let saved_codes = match dec.u8()? {
            0 => None,
            1 => {
                let codes = VectorIndexConfig {
                    quantization: Quantization::Int8,
                    ..config
                };
                Some(Arena::decode(dec, &codes, slots)?)
            }
            other => return Err(SnapshotDefect(format!("link code marker {other}"))),
        };
        // Codes saved but not wanted now are dropped; wanted but not saved, they are made from
        // the arena after the load (`VectorIndex::make_link_codes`).
        let link_codes = match saved_codes {
            _ if !VectorIndex::wants_link_codes(&config) => LinkCodes::Off,
            Some(saved) => LinkCodes::Ready(saved),
            None if slots == 0 => LinkCodes::Ready(Arena::new(Quantization::Int8)),
            None => LinkCodes::Making(parking_lot::Mutex::new(Arena::new(Quantization::Int8))),
        };
        let ids = dec.ids()?;
        let deleted = dec.bools()?;
        ensure(ids.len() == slots && deleted.len() == slots, || {
            "the slot arrays differ in length".into()
        })?;
        let dead = deleted.iter().filter(|&&gone| gone).count();
        let live_slots = (0..slots).filter(|&slot| !deleted[slot]);
        let by_id = map_by_id(live_slots.map(|slot| (ids[slot], slot as u32)).collect())
            .map_err(|id| SnapshotDefect(format!("entry {} has two vectors", id.0)))?;
        let graph = match dec.u8()? {
            0 => None,
            1 => Some(Graph::decode(dec, &config.hnsw, config.seed, slots)?),
            other => return Err(SnapshotDefect(format!("graph marker {other}"))),
        };
        let mut index = VectorIndex {
            config,
            arena,
            ids,
            deleted,
            by_id,
            dead,
            graph,
            tail: Default::default(),
            link_codes,
        };
        // Below `min_len` (as configured now) no graph is needed; above it one is made.
        index.reserve_graph();
        Ok(index)
    }
}

impl VectorStaging {
    /// Whether a vector of `id` is staged.
    pub(crate) fn contains(&self, id: EntryId) -> bool {
        self.ids().contains(&id)
    }

    /// Writes the staged vectors (those after the front: the ones before it are in the index).
    pub(crate) fn encode<W: Write>(&self, enc: &mut Encoder<W>) -> std::io::Result<()> {
        if self.start > 0 {
            // Mid-move (rare at a save): the staged rest is copied into a buffer of its own.
            let mut rest = VectorStaging {
                dim: self.dim,
                arena: Arena::new(self.arena.quantization()),
                ids: self.ids().to_vec(),
                start: 0,
            };
            rest.arena.reserve(self.dim, self.len());
            for i in self.start..self.ids.len() {
                rest.arena.push_slot(self.dim, &self.arena, i);
            }
            return rest.encode(enc);
        }
        enc.len(self.ids.len())?;
        self.arena.encode(enc)?;
        enc.ids(&self.ids)
    }

    pub(crate) fn decode(dec: &mut Decoder<'_>, config: &VectorIndexConfig) -> Decoded<Self> {
        let n = dec.len(config.dim)?;
        let arena = Arena::decode(dec, config, n)?;
        let ids = dec.ids()?;
        ensure(ids.len() == n, || {
            "staged ids and vectors differ in number".into()
        })?;
        Ok(VectorStaging {
            dim: config.dim,
            arena,
            ids,
            start: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(ix: &VectorIndex) -> VectorIndex {
        let mut enc = Encoder::new(Vec::new());
        ix.encode(&mut enc).unwrap();
        let (bytes, _) = enc.finish().unwrap();
        let mut dec = Decoder::new(&bytes);
        let back = VectorIndex::decode(&mut dec, *ix.config()).unwrap();
        dec.finish().unwrap();
        back
    }

    #[test]
    fn a_staging_buffer_saved_mid_move_holds_only_the_vectors_not_moved_yet() {
        for quantization in [Quantization::None, Quantization::F16, Quantization::Int8] {
            let mut c = VectorIndexConfig::new(8);
            c.quantization = quantization;
            let mut staging = VectorStaging::new(&c);
            let mut ix = VectorIndex::new(c).unwrap();
            for i in 0..10u64 {
                staging.push(EntryId(i), &unit(i)).unwrap();
            }
            assert_eq!(ix.absorb(&mut staging, 3), 3);
            let mut enc = Encoder::new(Vec::new());
            staging.encode(&mut enc).unwrap();
            let (bytes, _) = enc.finish().unwrap();
            let mut dec = Decoder::new(&bytes);
            let back = VectorStaging::decode(&mut dec, &c).unwrap();
            dec.finish().unwrap();
            assert_eq!(back.ids(), (3..10).map(EntryId).collect::<Vec<_>>());
            for i in 3..10u64 {
                let q = unit(i);
                assert_eq!(
                    back.similarity(EntryId(i), &q),
                    staging.similarity(EntryId(i), &q),
                    "{quantization:?}: vector {i}"
                );
            }
        }
    }

    #[test]
    fn a_non_finite_number_behind_a_valid_checksum_is_refused_mapped_or_not() {
        let f32_nan = f32::NAN.to_le_bytes().to_vec();
        let f16_infinity = 0x7c00u16.to_le_bytes().to_vec();
        for (quantization, one, bad) in [
            (Quantization::None, 1.0f32.to_le_bytes().to_vec(), f32_nan),
            (
                Quantization::F16,
                0x3c00u16.to_le_bytes().to_vec(),
                f16_infinity,
            ),
        ] {
            let mut c = VectorIndexConfig::new(4);
            c.quantization = quantization;
            let mut ix = VectorIndex::new(c).unwrap();
            ix.insert(EntryId(1), &[1.0, 0.0, 0.0, 0.0]).unwrap();
            ix.insert(EntryId(2), &[0.0, 1.0, 0.0, 0.0]).unwrap();
            let mut enc = Encoder::new(Vec::new());
            ix.encode(&mut enc).unwrap();
            let (mut bytes, _) = enc.finish().unwrap();
            // The slot count, the arena's length, padding to 64 bytes: the first number is at 64.
            let first = 64..64 + one.len();
            assert_eq!(&bytes[first.clone()], &one[..], "{quantization:?}");
            bytes[first].copy_from_slice(&bad);
            let body = bytes.len() - 4;
            let crc = crc32fast::hash(&bytes[..body]);
            bytes[body..].copy_from_slice(&crc.to_le_bytes());

            let err = VectorIndex::decode(&mut Decoder::new(&bytes), *ix.config()).unwrap_err();
            assert!(err.0.contains("not finite"), "{err}");

            let mut f = tempfile::tempfile().unwrap();
            std::io::Write::write_all(&mut f, &bytes).unwrap();
            // SAFETY: a private temporary file nobody else writes.
            let map = std::sync::Arc::new(unsafe { memmap2::Mmap::map(&f) }.unwrap());
            let (to, checks) = std::sync::mpsc::channel::<crate::index::codec::Check>();
            let mut dec = Decoder::mapped(&map);
            dec.defer_checks_to(to);
            let back = VectorIndex::decode(&mut dec, *ix.config());
            assert!(back.is_ok(), "the scan is left to the verifier");
            drop(dec);
            let verdicts: Vec<_> = checks.into_iter().map(|check| check()).collect();
            // The arena's scan (link codes are not saved: nothing of theirs to scan).
            assert_eq!(verdicts.len(), 1);
            let errors: Vec<_> = verdicts.iter().filter_map(|v| v.as_ref().err()).collect();
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(errors[0].0.contains("not finite"), "{}", errors[0]);
        }
    }

    /// The link codes of `ix` when they cover every slot (an empty list otherwise).
    fn codes_of(ix: &VectorIndex) -> (Vec<i8>, Vec<f32>) {
        match &ix.link_codes {
            LinkCodes::Ready(Arena::Int8 { codes, scales }) => {
                let dim = ix.config.dim;
                let slots = ix.ids.len();
                (
                    (0..slots)
                        .flat_map(|i| codes.row(i, dim).to_vec())
                        .collect(),
                    (0..slots).map(|i| scales.get(i)).collect(),
                )
            }
            _ => (Vec::new(), Vec::new()),
        }
    }

    /// A unit vector of 8 numbers, different for every `i`.
    fn unit(i: u64) -> Vec<f32> {
        let v: Vec<f32> = (0..8).map(|d| ((i * 17 + d * 5) as f32).sin()).collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    /// `v` as a half arena holds it.
    fn half_rounded(v: &[f32]) -> Vec<f32> {
        v.iter()
            .map(|&x| super::super::quant::half_to_f32(super::super::quant::half_from_f32(x)))
            .collect()
    }

    /// `ix` saved and loaded with `link_with_codes` as given.
    fn decode_as(ix: &VectorIndex, link_with_codes: bool) -> VectorIndex {
        let mut enc = Encoder::new(Vec::new());
        ix.encode(&mut enc).unwrap();
        let (bytes, _) = enc.finish().unwrap();
        let config = VectorIndexConfig {
            link_with_codes,
            ..*ix.config()
        };
        let mut dec = Decoder::new(&bytes);
        let back = VectorIndex::decode(&mut dec, config).unwrap();
        dec.finish().unwrap();
        back
    }

    #[test]
    fn link_codes_are_left_out_of_snapshots_and_made_again_after_a_load() {
        let make = |link_with_codes: bool, n: u64| {
            let mut c = VectorIndexConfig::new(8);
            c.link_with_codes = link_with_codes;
            c.hnsw.min_len = 16;
            let mut ix = VectorIndex::new(c).unwrap();
            for i in 0..n {
                ix.insert_unlinked(EntryId(i), &unit(i)).unwrap();
            }
            ix.link_pending(300);
            ix
        };
        let with = make(true, 20_000);
        let without = make(false, 20_000);
        assert_eq!(codes_of(&with).1.len(), 20_000);
        assert!(codes_of(&without).0.is_empty());
        // Saved without them, wanted or not.
        assert!(matches!(decode_as(&with, false).link_codes, LinkCodes::Off));
        for ix in [&with, &without] {
            let mut back = decode_as(ix, true);
            assert!(back.link_codes_missing());
            // A chunk per step; what a step cannot see yet (slots added since) is made when
            // they are put to use.
            assert!(back.make_link_codes());
            back.insert_unlinked(EntryId(20_000), &unit(20_000))
                .unwrap();
            while back.make_link_codes() {}
            back.insert_unlinked(EntryId(20_001), &unit(20_001))
                .unwrap();
            back.install_link_codes();
            assert!(!back.link_codes_missing());
            let mut fresh = make(true, 20_002);
            fresh.link_pending(usize::MAX);
            assert_eq!(codes_of(&back), codes_of(&fresh));
        }
        // A compaction while they are made starts them again under the new slot numbers.
        let mut back = decode_as(&with, true);
        assert!(back.make_link_codes());
        for i in 0..8_000u64 {
            back.remove(EntryId(i));
        }
        assert!(back.tombstones() < 8_000, "compacted on the way");
        while back.make_link_codes() {}
        back.install_link_codes();
        super::super::tests::assert_link_codes(&back, true);
        let moved = back.by_id[&EntryId(19_999)] as usize;
        assert_eq!(back.arena.vector(8, moved), half_rounded(&unit(19_999)));
    }

    #[test]
    fn link_codes_saved_by_an_earlier_build_are_read() {
        let mut c = VectorIndexConfig::new(8);
        c.hnsw.min_len = 16;
        let mut ix = VectorIndex::new(c).unwrap();
        for i in 0..500u64 {
            ix.insert(EntryId(i), &unit(i)).unwrap();
        }
        // The layout of `VectorIndex::encode` with the codes written after the arena (marker 1).
        let LinkCodes::Ready(codes) = &ix.link_codes else {
            panic!("codes wanted by default")
        };
        let mut enc = Encoder::new(Vec::new());
        enc.len(ix.ids.len()).unwrap();
        ix.arena.encode(&mut enc).unwrap();
        enc.u8(1).unwrap();
        codes.encode(&mut enc).unwrap();
        enc.ids(&ix.ids).unwrap();
        enc.bools(&ix.deleted).unwrap();
        enc.u8(1).unwrap();
        ix.graph.as_ref().unwrap().encode(&mut enc).unwrap();
        let (bytes, _) = enc.finish().unwrap();
        let mut dec = Decoder::new(&bytes);
        let back = VectorIndex::decode(&mut dec, *ix.config()).unwrap();
        dec.finish().unwrap();
        assert!(!back.link_codes_missing());
        assert_eq!(codes_of(&back), codes_of(&ix));
    }

    #[test]
    fn a_compacted_index_round_trips_with_the_nodes_it_has_to_repair() {
        let mut c = VectorIndexConfig::new(8);
        c.hnsw.min_len = 16;
        // Link codes are made again after a load: until then the loaded copy would link with
        // other similarities.
        c.link_with_codes = false;
        let unit = |seed: u64| {
            let v: Vec<f32> = (0..8)
                .map(|d| ((seed * 31 + d * 7) as f32 * 0.37).sin())
                .collect();
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter().map(|x| x / n).collect::<Vec<f32>>()
        };
        let mut ix = VectorIndex::new(c).unwrap();
        for i in 0..600u64 {
            ix.insert_unlinked(EntryId(i), &unit(i)).unwrap();
        }
        ix.link_pending(usize::MAX);
        // The 181st removal compacts; those after it are tombstones again.
        for i in (0..600u64).step_by(3) {
            ix.remove(EntryId(i));
        }
        assert!(ix.has_graph() && ix.unrefined() > 0 && ix.tombstones() == 19);
        let mut back = round_trip(&ix);
        assert_eq!(back.unrefined(), ix.unrefined());
        let queries: Vec<Vec<f32>> = (0..20u64).map(|q| unit(q * 1_001 + 5)).collect();
        let answers = |ix: &VectorIndex| {
            queries
                .iter()
                .map(|q| ix.search_approx(q, 10, &|_| true).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(answers(&back), answers(&ix));
        // The repairs go on after the load as they would have (one thread: the same links).
        while ix.refine(1, 64) > 0 {}
        while back.refine(1, 64) > 0 {}
        assert_eq!(back.unrefined(), 0);
        assert_eq!(answers(&back), answers(&ix));
        back.remove(EntryId(1));
        assert_eq!(back.tombstones(), 20);
    }

    #[test]
    fn a_decoded_index_answers_exactly_like_the_original_in_every_mode() {
        for quantization in [Quantization::None, Quantization::F16, Quantization::Int8] {
            let mut c = VectorIndexConfig::new(8);
            c.quantization = quantization;
            c.hnsw.min_len = 16;
            let mut ix = VectorIndex::new(c).unwrap();
            for i in 0..600u64 {
                let v: Vec<f32> = (0..8)
                    .map(|d| ((i * 31 + d * 7) as f32 * 0.37).sin())
                    .collect();
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                let v: Vec<f32> = v.iter().map(|x| x / n).collect();
                ix.insert_unlinked(EntryId(i), &v).unwrap();
            }
            ix.link_pending(400); // a tail left unlinked
            ix.remove(EntryId(3));
            let back = round_trip(&ix);
            assert_eq!(back.len(), ix.len());
            assert_eq!(back.pending_links(), ix.pending_links());
            for q in 0..20u64 {
                let v: Vec<f32> = (0..8).map(|d| ((q * 13 + d) as f32).cos()).collect();
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                let v: Vec<f32> = v.iter().map(|x| x / n).collect();
                assert_eq!(
                    back.search_approx(&v, 10, &|_| true).unwrap(),
                    ix.search_approx(&v, 10, &|_| true).unwrap()
                );
            }
        }
    }
}
