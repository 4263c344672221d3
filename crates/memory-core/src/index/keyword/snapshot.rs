//! A [`KeywordIndex`] in a snapshot file: the term dictionary, posting lists with their score
//! bounds, and the per-slot document data, as flat arrays. Decoding rebuilds the hash tables and
//! checks that the statistics agree with the postings (document frequencies, lengths).

use std::io::Write;

use super::{
    BlockMax, Bm25Params, DocTerms, KeywordIndex, MappedPostings, Posting, Term, Vocab, BLOCK,
};
use crate::index::codec::{ensure, Decoded, Decoder, Encoder, SnapshotDefect};
use crate::index::column::{Column, Plain};
use crate::index::idmap::map_by_id;

/// Words per term in the term table: df, max_tf, min_dl, postings, blocks (0 for none).
const TERM_WORDS: usize = 5;

// SAFETY: two `u32`s in a `repr(C)` struct: eight bytes, no padding, every bit pattern a
// value; little-endian, its bytes are the slot's and then the frequency's, as written.
unsafe impl Plain for Posting {
    #[inline]
    fn from_le(b: &[u8]) -> Self {
        Posting {
            slot: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            tf: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    #[inline]
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.slot.to_le_bytes());
        out.extend_from_slice(&self.tf.to_le_bytes());
    }
}

impl KeywordIndex {
    pub(crate) fn encode<W: Write>(&self, enc: &mut Encoder<W>) -> std::io::Result<()> {
        enc.str(&self.vocab.text)?;
        enc.u64s(
            &self
                .vocab
                .starts
                .iter()
                .map(|&s| s as u64)
                .collect::<Vec<_>>(),
        )?;
        let table: Vec<u32> = self
            .terms
            .iter()
            .enumerate()
            .flat_map(|(i, t)| {
                let blocks = t.blocks.as_ref().map_or(0, |b| b.len());
                [
                    t.df,
                    t.max_tf,
                    t.min_dl,
                    self.postings(i as u32).len() as u32,
                    blocks as u32,
                ]
            })
            .collect();
        enc.u32s(&table)?;
        // A column, so that a loader views the lists in place.
        let terms = 0..self.terms.len() as u32;
        let postings: usize = terms.clone().map(|t| self.postings(t).len()).sum();
        enc.column_of(
            postings,
            terms.flat_map(|t| self.postings(t).iter().copied()),
        )?;
        let blocks: usize = self
            .terms
            .iter()
            .map(|t| t.blocks.as_ref().map_or(0, |b| b.len()))
            .sum();
        enc.array(
            blocks,
            self.terms.iter().flat_map(|t| {
                t.blocks.iter().flat_map(|b| b.iter()).map(|b| {
                    let mut out = [0u8; 8];
                    out[..4].copy_from_slice(&b.max_tf.to_le_bytes());
                    out[4..].copy_from_slice(&b.min_dl.to_le_bytes());
                    out
                })
            }),
        )?;
        enc.ids(&self.slot_ids)?;
        enc.u32s(&self.doc_len)?;
        // A removed document's list is still stored until compaction: written empty.
        let live = |slot: &usize| self.alive[*slot];
        let slots = 0..self.doc_terms.len();
        enc.u32s(
            &slots
                .clone()
                .map(|s| {
                    if live(&s) {
                        self.doc_terms.get(s).len() as u32
                    } else {
                        0
                    }
                })
                .collect::<Vec<_>>(),
        )?;
        let words: usize = slots
            .clone()
            .filter(live)
            .map(|s| self.doc_terms.get(s).len())
            .sum();
        enc.column_of(
            words,
            slots
                .filter(live)
                .flat_map(|s| self.doc_terms.get(s).iter().copied()),
        )?;
        enc.bools(&self.alive)?;
        enc.u64(self.live_len)?;
        enc.u64(self.dead_slots as u64)
    }

    pub(crate) fn decode(dec: &mut Decoder<'_>, params: Bm25Params) -> Decoded<Self> {
        let text = dec.str()?;
        let starts: Vec<usize> = dec.u64s()?.into_iter().map(|s| s as usize).collect();
        let ok_starts = starts.first().is_none_or(|&s| s == 0)
            && starts.windows(2).all(|w| w[0] <= w[1])
            && starts.last().is_none_or(|&s| s == text.len())
            && starts.iter().all(|&s| text.is_char_boundary(s));
        ensure(ok_starts, || {
            "the term dictionary's offsets are out of order".into()
        })?;
        let mut vocab = Vocab {
            table: Default::default(),
            text,
            starts,
        };
        let n_terms = vocab.len();
        for t in 0..n_terms as u32 {
            let Vocab {
                table,
                text,
                starts,
            } = &mut vocab;
            let term = &text[starts[t as usize]..starts[t as usize + 1]];
            let rehash = |&x: &u32| Vocab::hash(&text[starts[x as usize]..starts[x as usize + 1]]);
            table.insert_unique(Vocab::hash(term), t, rehash);
        }

        let table = dec.u32s()?;
        ensure(table.len() == n_terms * TERM_WORDS, || {
            format!(
                "{} term records for {n_terms} terms",
                table.len() / TERM_WORDS
            )
        })?;
        // Viewed in place: each term reads its list there until it is written to.
        let all: Column<Posting> = dec.column()?;
        let n_postings = all.len();
        let flat_blocks = dec.array(|b: [u8; 8]| BlockMax {
            max_tf: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            min_dl: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        })?;
        let slot_ids = dec.ids()?;
        let doc_len = dec.u32s()?;
        let doc_term_lens = dec.u32s()?;
        let doc_term_words: Column<u32> = dec.column()?;
        let alive = dec.bools()?;
        let live_len = dec.u64()?;
        let dead_slots = dec.u64()? as usize;

        let slots = slot_ids.len();
        ensure(
            doc_len.len() == slots && doc_term_lens.len() == slots && alive.len() == slots,
            || "the per-document arrays differ in length".into(),
        )?;
        ensure(
            doc_term_lens.iter().map(|&n| n as u64).sum::<u64>() == doc_term_words.len() as u64,
            || "the documents' term lists do not add up".into(),
        )?;

        let mut terms = Vec::with_capacity(n_terms);
        let mut starts = Vec::with_capacity(n_terms + 1);
        starts.push(0);
        let flat_postings = all.as_loaded();
        let (mut p_at, mut b_at) = (0usize, 0usize);
        for rec in table.chunks_exact(TERM_WORDS) {
            let (n_post, n_blocks) = (rec[3] as usize, rec[4] as usize);
            ensure(
                p_at + n_post <= n_postings && b_at + n_blocks <= flat_blocks.len(),
                || "a posting list runs past the postings".into(),
            )?;
            let mut next_slot = 0u64; // the least slot the next posting may name
            for p in &flat_postings[p_at..p_at + n_post] {
                ensure(
                    u64::from(p.slot) >= next_slot && (p.slot as usize) < slots,
                    || "a posting list is out of order or names no document".into(),
                )?;
                next_slot = u64::from(p.slot) + 1;
            }
            let want_blocks = if n_post > BLOCK {
                n_post.div_ceil(BLOCK)
            } else {
                0
            };
            ensure(n_blocks == want_blocks, || {
                format!("{n_blocks} score blocks for {n_post} postings")
            })?;
            let blocks =
                (n_blocks > 0).then(|| Box::new(flat_blocks[b_at..b_at + n_blocks].to_vec()));
            terms.push(Term {
                postings: Vec::new(),
                df: rec[0],
                max_tf: rec[1],
                min_dl: rec[2],
                blocks,
                pending: 0,
            });
            p_at += n_post;
            b_at += n_blocks;
            starts.push(p_at);
        }
        ensure(p_at == n_postings && b_at == flat_blocks.len(), || {
            "postings left over after the last term".into()
        })?;

        let mut end = 0u64;
        let ends: Vec<u64> = doc_term_lens
            .iter()
            .map(|&n| {
                end += u64::from(n);
                end
            })
            .collect();
        let doc_terms = DocTerms::from_parts(doc_term_words, ends)
            .ok_or_else(|| SnapshotDefect("the documents' term lists do not add up".into()))?;
        let mut df = vec![0u32; n_terms];
        let (mut live_tokens, mut dead) = (0u64, 0usize);
        for slot in 0..slots {
            let d = doc_terms.get(slot);
            ensure(d.iter().all(|&t| (t as usize) < n_terms), || {
                "a document names a term that does not exist".into()
            })?;
            if alive[slot] {
                for &t in d {
                    df[t as usize] += 1;
                }
                live_tokens += u64::from(doc_len[slot]);
            } else {
                dead += 1;
            }
        }
        ensure(terms.iter().zip(&df).all(|(t, &d)| t.df == d), || {
            "document frequencies disagree with the documents".into()
        })?;
        ensure(live_tokens == live_len && dead == dead_slots, || {
            "the collection statistics disagree with the documents".into()
        })?;
        let live_slots = (0..slots).filter(|&slot| alive[slot]);
        let by_id = map_by_id(
            live_slots
                .map(|slot| (slot_ids[slot], slot as u32))
                .collect(),
        )
        .map_err(|id| SnapshotDefect(format!("entry {} is indexed twice", id.0)))?;
        params
            .validate()
            .map_err(|e| SnapshotDefect(format!("BM25 parameters: {e}")))?;
        Ok(KeywordIndex {
            params,
            vocab,
            surfaces: Default::default(),
            terms,
            mapped: MappedPostings { all, starts },
            slot_ids,
            doc_len,
            doc_terms,
            alive,
            by_id,
            live_len,
            dead_slots,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::EntryId;

    const WORDS: [&str; 6] = ["alpha", "beta", "gamma", "delta", "straße", "東京"];

    /// 2,000 documents of the six words, every seventh removed.
    fn sample() -> KeywordIndex {
        let mut ix = KeywordIndex::new(Bm25Params::default()).unwrap();
        for i in 0..2_000u64 {
            let text: Vec<&str> = (0..(i % 9 + 1))
                .map(|k| WORDS[((i * 7 + k * 3) % WORDS.len() as u64) as usize])
                .collect();
            ix.insert(EntryId(i), &text.join(" "));
        }
        for i in (0..2_000u64).step_by(7) {
            ix.remove(EntryId(i));
        }
        ix
    }

    fn same_rankings(a: &KeywordIndex, b: &KeywordIndex) {
        assert_eq!(a.stats(), b.stats());
        for q in [
            "alpha",
            "beta gamma",
            "straße 東京 delta",
            "epsilon alpha",
            "nothing",
        ] {
            assert_eq!(
                a.search(q, 10, &|_| true),
                b.search(q, 10, &|_| true),
                "{q}"
            );
            let ids: Vec<EntryId> = (0..3_000u64).step_by(13).map(EntryId).collect();
            assert_eq!(a.scores(q, &ids), b.scores(q, &ids), "{q}");
        }
    }

    #[test]
    fn a_mapped_index_copies_a_posting_list_only_when_written_and_ranks_like_the_original() {
        let mut ix = sample();
        let mut enc = Encoder::new(Vec::new());
        ix.encode(&mut enc).unwrap();
        let (bytes, _) = enc.finish().unwrap();
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, &bytes).unwrap();
        // SAFETY: a private temporary file nobody else writes.
        let map = std::sync::Arc::new(unsafe { memmap2::Mmap::map(&f) }.unwrap());
        let mut dec = Decoder::mapped(&map);
        let mut back = KeywordIndex::decode(&mut dec, Bm25Params::default()).unwrap();
        dec.finish().unwrap();
        assert!(back.mapped.all.mapped_len() > 0, "viewed in the file");
        assert!(back.doc_terms.words.mapped_len() > 0, "term lists too");
        assert!(back.terms.iter().all(|t| t.postings.capacity() == 0));
        same_rankings(&back, &ix);

        // Written terms get their own lists; the others stay in the file.
        for i in 2_000..2_300u64 {
            let text = if i % 2 == 0 {
                "alpha epsilon"
            } else {
                "beta alpha"
            };
            ix.insert(EntryId(i), text);
            back.insert(EntryId(i), text);
        }
        let owned = |ix: &KeywordIndex, w: &str| {
            ix.terms[ix.vocab.get(w).unwrap() as usize]
                .postings
                .capacity()
                > 0
        };
        assert!(owned(&back, "alpha") && owned(&back, "beta") && owned(&back, "epsilon"));
        assert!(!owned(&back, "gamma") && !owned(&back, "東京"));
        same_rankings(&back, &ix);

        // Saved again from lists in both places, and read back unmapped.
        let mut enc = Encoder::new(Vec::new());
        back.encode(&mut enc).unwrap();
        let (again, _) = enc.finish().unwrap();
        let mut dec = Decoder::new(&again);
        let copy = KeywordIndex::decode(&mut dec, Bm25Params::default()).unwrap();
        dec.finish().unwrap();
        assert_eq!(
            copy.mapped.all.mapped_len(),
            0,
            "copied: the bytes are not mapped"
        );
        same_rankings(&copy, &ix);

        // A compaction rewrites every list, from the file or not.
        for i in (0..2_300u64).filter(|i| i % 3 == 0) {
            ix.remove(EntryId(i));
            back.remove(EntryId(i));
        }
        ix.compact();
        back.compact();
        assert!(back.mapped.starts.is_empty());
        assert!(back.terms.iter().all(|t| t.postings.capacity() > 0));
        same_rankings(&back, &ix);
    }

    #[test]
    fn a_decoded_index_ranks_exactly_like_the_original() {
        let ix = sample();
        let mut enc = Encoder::new(Vec::new());
        ix.encode(&mut enc).unwrap();
        let (bytes, _) = enc.finish().unwrap();
        let mut dec = Decoder::new(&bytes);
        let back = KeywordIndex::decode(&mut dec, Bm25Params::default()).unwrap();
        dec.finish().unwrap();
        same_rankings(&back, &ix);
    }
}
