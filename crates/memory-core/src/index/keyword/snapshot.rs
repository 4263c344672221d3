//! A [`KeywordIndex`] in a snapshot file: the term dictionary, posting lists with their score
//! bounds, and the per-slot document data, as flat arrays. Decoding rebuilds the hash tables and
//! checks that the statistics agree with the postings (document frequencies, lengths).

use std::io::Write;

use super::{BlockMax, Bm25Params, DocTerms, KeywordIndex, Posting, Term, Vocab, BLOCK};
use crate::index::codec::{ensure, Decoded, Decoder, Encoder, SnapshotDefect};
use crate::index::idmap::map_by_id;

/// Words per term in the term table: df, max_tf, min_dl, postings, blocks (0 for none).
const TERM_WORDS: usize = 5;

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
            .flat_map(|t| {
                let blocks = t.blocks.as_ref().map_or(0, |b| b.len());
                [
                    t.df,
                    t.max_tf,
                    t.min_dl,
                    t.postings.len() as u32,
                    blocks as u32,
                ]
            })
            .collect();
        enc.u32s(&table)?;
        let postings: usize = self.terms.iter().map(|t| t.postings.len()).sum();
        enc.array(
            postings,
            self.terms.iter().flat_map(|t| {
                t.postings.iter().map(|p| {
                    let mut b = [0u8; 8];
                    b[..4].copy_from_slice(&p.slot.to_le_bytes());
                    b[4..].copy_from_slice(&p.tf.to_le_bytes());
                    b
                })
            }),
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
        enc.array(
            words,
            slots
                .filter(live)
                .flat_map(|s| self.doc_terms.get(s).iter().map(|t| t.to_le_bytes())),
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
        // Postings are converted straight into each term's list below.
        let flat_postings = dec.array_bytes(8)?;
        let n_postings = flat_postings.len() / 8;
        let flat_blocks = dec.array(|b: [u8; 8]| BlockMax {
            max_tf: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            min_dl: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        })?;
        let slot_ids = dec.ids()?;
        let doc_len = dec.u32s()?;
        let doc_term_lens = dec.u32s()?;
        let doc_term_words = dec.u32s()?;
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
        let (mut p_at, mut b_at) = (0usize, 0usize);
        for rec in table.chunks_exact(TERM_WORDS) {
            let (n_post, n_blocks) = (rec[3] as usize, rec[4] as usize);
            ensure(
                p_at + n_post <= n_postings && b_at + n_blocks <= flat_blocks.len(),
                || "a posting list runs past the postings".into(),
            )?;
            let mut postings = Vec::with_capacity(n_post);
            let mut next_slot = 0u64; // the least slot the next posting may name
            for b in flat_postings[p_at * 8..(p_at + n_post) * 8].chunks_exact(8) {
                let slot = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                ensure(
                    u64::from(slot) >= next_slot && (slot as usize) < slots,
                    || "a posting list is out of order or names no document".into(),
                )?;
                next_slot = u64::from(slot) + 1;
                postings.push(Posting {
                    slot,
                    tf: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
                });
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
                postings,
                df: rec[0],
                max_tf: rec[1],
                min_dl: rec[2],
                blocks,
                pending: 0,
            });
            p_at += n_post;
            b_at += n_blocks;
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

    #[test]
    fn a_decoded_index_ranks_exactly_like_the_original() {
        let mut ix = KeywordIndex::new(Bm25Params::default()).unwrap();
        let words = ["alpha", "beta", "gamma", "delta", "straße", "東京"];
        for i in 0..2_000u64 {
            let text: Vec<&str> = (0..(i % 9 + 1))
                .map(|k| words[((i * 7 + k * 3) % words.len() as u64) as usize])
                .collect();
            ix.insert(EntryId(i), &text.join(" "));
        }
        for i in (0..2_000u64).step_by(7) {
            ix.remove(EntryId(i));
        }
        let mut enc = Encoder::new(Vec::new());
        ix.encode(&mut enc).unwrap();
        let (bytes, _) = enc.finish().unwrap();
        let mut dec = Decoder::new(&bytes);
        let back = KeywordIndex::decode(&mut dec, Bm25Params::default()).unwrap();
        dec.finish().unwrap();
        assert_eq!(back.stats(), ix.stats());
        for q in ["alpha", "beta gamma", "straße 東京 delta", "nothing"] {
            assert_eq!(
                back.search(q, 10, &|_| true),
                ix.search(q, 10, &|_| true),
                "{q}"
            );
        }
    }
}
