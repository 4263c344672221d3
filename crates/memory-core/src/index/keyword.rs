//! Keyword retrieval with Okapi BM25: an in-memory inverted index for long-term memory, and a
//! one-shot ranker for the handful of entries in a short-term window.
//!
//! Queries use MaxScore dynamic pruning (Turtle & Flood, 1995): once the top-k is full, a
//! document that holds only "cheap" terms (common words, whose upper-bound score cannot lift it
//! into the top-k) is never visited through those terms' long posting lists, which is what keeps
//! the tail latency low on queries mixing rare and very common words.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};

use crate::entry::EntryId;
use crate::error::{Error, Result};
use crate::index::column::Column;
use crate::index::growth::reserve_bounded;
use crate::index::text::{for_each_token, Analyzer};
use crate::index::topk::TopK;

mod snapshot;

/// The tokens of `text`: case-folded words split on anything that is not a letter or a digit, in
/// order. The index reads the terms its [`Analyzer`] makes of them ([`Bm25Params::analyzer`]);
/// queries and documents are analyzed alike.
///
/// ```
/// assert_eq!(memory_core::index::keyword::tokenize("Straße, 東京!"), ["straße", "東京"]);
/// ```
pub fn tokenize(text: &str) -> Vec<String> {
    crate::index::text::tokenize(text)
}

/// How the keyword index reads text (its analyzer) and the two free parameters of BM25.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bm25Params {
    /// Term-frequency saturation: how fast repeated occurrences stop adding score (>= 0).
    pub k1: f32,
    /// Length normalization in [0, 1]: 0 ignores document length, 1 fully normalizes by it.
    pub b: f32,
    /// How text becomes terms (default: English stems).
    pub analyzer: Analyzer,
}

impl Default for Bm25Params {
    /// The customary k1 = 1.2, b = 0.75, and English stems.
    fn default() -> Self {
        Bm25Params {
            k1: 1.2,
            b: 0.75,
            analyzer: Analyzer::English,
        }
    }
}

impl Bm25Params {
    /// Checks that `k1` is finite and non-negative and `b` lies in [0, 1].
    pub fn validate(&self) -> Result<()> {
        if !self.k1.is_finite() || self.k1 < 0.0 {
            return Err(Error::InvalidConfig(format!(
                "BM25 k1 {} must be finite and >= 0",
                self.k1
            )));
        }
        if !(0.0..=1.0).contains(&self.b) {
            return Err(Error::InvalidConfig(format!(
                "BM25 b {} is outside [0, 1]",
                self.b
            )));
        }
        Ok(())
    }
}

/// Inverse document frequency as Lucene computes it: `ln(1 + (n - df + 0.5) / (df + 0.5))`. It
/// stays positive even for a term in every document, unlike the original Robertson-Spärck Jones
/// form.
pub fn idf(n: f32, df: f32) -> f32 {
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

/// The per-query constants of the BM25 term weight.
#[derive(Clone, Copy, Debug)]
struct Scorer {
    k1_plus_1: f32,
    /// k1 * (1 - b)
    len_base: f32,
    /// k1 * b / avgdl
    len_slope: f32,
}

impl Scorer {
    fn new(params: Bm25Params, avgdl: f32) -> Self {
        let avgdl = if avgdl > 0.0 { avgdl } else { 1.0 };
        Scorer {
            k1_plus_1: params.k1 + 1.0,
            len_base: params.k1 * (1.0 - params.b),
            len_slope: params.k1 * params.b / avgdl,
        }
    }

    /// `idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))`
    #[inline]
    fn weight(&self, idf: f32, tf: u32, dl: u32) -> f32 {
        let tf = tf as f32;
        idf * tf * self.k1_plus_1 / (tf + self.len_base + self.len_slope * dl as f32)
    }
}

/// One document's entry in a term's list. `repr(C)`: a loaded snapshot's lists are viewed in
/// place in the mapped file ([`MappedPostings`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
struct Posting {
    slot: u32,
    tf: u32,
}

#[derive(Clone, Debug, Default)]
struct Term {
    /// Sorted by slot; may include postings of removed documents until the next compaction.
    /// Without capacity while the term's list is still the one in the loaded snapshot (read
    /// through [`KeywordIndex::postings`]); copied here when the term is first written to.
    postings: Vec<Posting>,
    /// Live documents containing the term: exact at all times.
    df: u32,
    /// Largest tf and smallest document length over the postings; only ever loosened between
    /// compactions, so they always bound the term's best possible score from above.
    max_tf: u32,
    min_dl: u32,
    /// The same bound per block of [`BLOCK`] consecutive postings, so a query can skip whole
    /// blocks that cannot reach its current top-k threshold (block-max pruning, Ding & Suel 2011).
    /// `None` while the term fits in one block (most terms). Boxed so the field takes 8 bytes
    /// instead of a `Vec`'s 24 in every term, at one extra allocation in the few long terms.
    #[allow(clippy::box_collection)]
    blocks: Option<Box<Vec<BlockMax>>>,
    /// Postings of the batch being inserted not yet appended: counted first so that each list
    /// grows once per batch (see [`KeywordIndex::insert_many`]); zero between calls. It fills
    /// what would otherwise be padding.
    pending: u32,
}

/// Postings per block of the block-max bounds: small enough to be selective, large enough that
/// the bounds cost under 3% of the postings' memory.
const BLOCK: usize = 64;

/// Lists up to this long double when they grow (then by a quarter): a term met once per batch
/// would otherwise be reallocated on every batch while its list is short.
const SMALL_LIST: usize = 16;

#[derive(Clone, Copy, Debug)]
struct BlockMax {
    max_tf: u32,
    min_dl: u32,
}

impl Term {
    /// Makes room for `n` more postings, starting from exactly what is asked: most terms occur
    /// in one or two documents, and Vec's first allocation (four postings) would triple their
    /// size. A short list then doubles (up to [`SMALL_LIST`] postings), so that a term met in
    /// every batch is not reallocated in every batch, and a long one, most of the index, grows by
    /// a quarter and carries at most that unused.
    fn reserve(&mut self, n: usize) {
        let (len, cap) = (self.postings.len(), self.postings.capacity());
        if cap - len < n {
            self.postings
                .reserve_exact(n.max(len / 4).max(len.min(SMALL_LIST)));
        }
    }

    fn push(&mut self, slot: u32, tf: u32, dl: u32) {
        let len = self.postings.len();
        // A term within one block needs no block list: its own bound is the block's. Most terms
        // of a small index are such, and an empty Vec costs no allocation.
        if len >= BLOCK {
            let blocks = self.blocks.get_or_insert_with(|| {
                Box::new(vec![BlockMax {
                    max_tf: self.max_tf,
                    min_dl: self.min_dl,
                }])
            });
            if len.is_multiple_of(BLOCK) {
                blocks.push(BlockMax {
                    max_tf: tf,
                    min_dl: dl,
                });
            } else if let Some(b) = blocks.last_mut() {
                b.max_tf = b.max_tf.max(tf);
                b.min_dl = b.min_dl.min(dl);
            }
        }
        self.reserve(1);
        self.postings.push(Posting { slot, tf });
        self.max_tf = self.max_tf.max(tf);
        self.min_dl = self.min_dl.min(dl);
    }
}

/// The posting lists of a loaded snapshot, end to end in term order, viewed in the mapped file
/// (copied when the snapshot was not mapped). A term reads its list here until it is first
/// written to, so that a load copies none of them; a compaction rewrites every list and empties
/// this.
#[derive(Clone, Debug, Default)]
struct MappedPostings {
    /// Never pushed to (read with [`Column::as_loaded`]).
    all: Column<Posting>,
    /// `all[starts[t]..starts[t + 1]]` is term `t`'s list (terms added since have none here).
    starts: Vec<usize>,
}

impl MappedPostings {
    /// The list of `term`, term `t`: its own once it has one (capacity), else the loaded one.
    fn of<'a>(&'a self, t: usize, term: &'a Term) -> &'a [Posting] {
        if term.postings.capacity() == 0 {
            self.list(t)
        } else {
            &term.postings
        }
    }

    /// Term `t`'s list as loaded.
    fn list(&self, t: usize) -> &[Posting] {
        match (self.starts.get(t), self.starts.get(t + 1)) {
            (Some(&a), Some(&b)) => &self.all.as_loaded()[a..b],
            _ => &[],
        }
    }
}

/// The term dictionary: every term's text in one `String`, and a hash table of term ids that
/// hashes and compares through it. Per term this costs the text, one offset and about five bytes
/// of table, where a map of boxed strings costs some 60 bytes more: in a small index, where most
/// words occur once, the dictionary is most of the memory.
#[derive(Clone, Debug, Default)]
struct Vocab {
    table: HashTable<u32>,
    text: String,
    /// `text[starts[t]..starts[t + 1]]` is term `t`.
    starts: Vec<usize>,
}

impl Vocab {
    fn hash(term: &str) -> u64 {
        FxBuildHasher.hash_one(term)
    }

    fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    fn term(&self, t: u32) -> &str {
        let t = t as usize;
        match (self.starts.get(t), self.starts.get(t + 1)) {
            (Some(&a), Some(&b)) => &self.text[a..b],
            _ => "",
        }
    }

    fn get(&self, term: &str) -> Option<u32> {
        self.table
            .find(Self::hash(term), |&t| self.term(t) == term)
            .copied()
    }

    /// The id of `term`, added as the next id if it is new.
    fn get_or_insert(&mut self, term: &str) -> u32 {
        if let Some(t) = self.get(term) {
            return t;
        }
        if self.starts.is_empty() {
            self.starts.push(0);
        }
        let t = self.len() as u32;
        if self.text.capacity() - self.text.len() < term.len() {
            // Bounded growth, as for the other per-term arrays (see `reserve_bounded`).
            let grow = (self.text.len() / 8).max(term.len().saturating_mul(16));
            self.text.reserve_exact(grow);
        }
        self.text.push_str(term);
        reserve_bounded(&mut self.starts, 1);
        self.starts.push(self.text.len());
        let Vocab {
            table,
            text,
            starts,
        } = self;
        let rehash = |&t: &u32| {
            let t = t as usize;
            Self::hash(&text[starts[t]..starts[t + 1]])
        };
        table.insert_unique(Self::hash(term), t, rehash);
        t
    }

    fn heap_bytes(&self) -> usize {
        self.table.capacity() * (std::mem::size_of::<u32>() + 1)
            + self.text.capacity()
            + self.starts.capacity() * std::mem::size_of::<usize>()
    }
}

/// Words as written that the analyzer may change, each with its term: a word met before costs
/// one lookup of its written form on insert, instead of the stem cache and then the term
/// dictionary. A cache over the term dictionary: emptied when compaction renumbers the terms,
/// never saved in a snapshot.
#[derive(Clone, Debug, Default)]
struct Surfaces {
    forms: Vocab,
    /// The term of each form, by the form's id in `forms`.
    terms: Vec<u32>,
}

impl Surfaces {
    fn heap_bytes(&self) -> usize {
        self.forms.heap_bytes() + self.terms.capacity() * std::mem::size_of::<u32>()
    }
}

/// Document counts and average length, exact over the live documents.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KeywordStats {
    /// Live documents (N in the IDF).
    pub docs: usize,
    /// Total tokens over live documents.
    pub total_tokens: u64,
    /// Average document length in tokens (0 when empty).
    pub avg_doc_len: f32,
}

/// An in-memory BM25 inverted index over documents keyed by [`EntryId`].
///
/// Terms are interned to `u32` ids; each posting list is a compact `Vec` of (document slot, term
/// frequency) sorted by slot. Removal is immediate for the statistics (N, average length and
/// document frequencies are exact after every call) and lazy for the storage: postings of removed
/// documents are skipped at query time and dropped when they make up a quarter of the slots.
///
/// ```
/// use memory_core::EntryId;
/// use memory_core::index::keyword::{Bm25Params, KeywordIndex};
///
/// let mut index = KeywordIndex::new(Bm25Params::default()).unwrap();
/// index.insert(EntryId(1), "I moved to Lisbon in May");
/// index.insert(EntryId(2), "My sister lives in Porto");
/// let hits = index.search("lisbon", 10, &|_| true);
/// assert_eq!(hits[0].0, EntryId(1));
/// ```
#[derive(Clone, Debug)]
pub struct KeywordIndex {
    params: Bm25Params,
    vocab: Vocab,
    surfaces: Surfaces,
    terms: Vec<Term>,
    mapped: MappedPostings,
    slot_ids: Vec<EntryId>,
    doc_len: Vec<u32>,
    /// Distinct term ids of each live document, to update document frequencies on removal.
    doc_terms: DocTerms,
    alive: Vec<bool>,
    by_id: FxHashMap<EntryId, u32>,
    live_len: u64,
    dead_slots: usize,
}

impl KeywordIndex {
    /// An empty index; fails if `params` are out of range.
    pub fn new(params: Bm25Params) -> Result<Self> {
        params.validate()?;
        Ok(KeywordIndex {
            params,
            vocab: Vocab::default(),
            surfaces: Surfaces::default(),
            terms: Vec::new(),
            mapped: MappedPostings::default(),
            slot_ids: Vec::new(),
            doc_len: Vec::new(),
            doc_terms: DocTerms::default(),
            alive: Vec::new(),
            by_id: FxHashMap::default(),
            live_len: 0,
            dead_slots: 0,
        })
    }

    /// The BM25 parameters in use.
    pub fn params(&self) -> Bm25Params {
        self.params
    }

    /// Number of live documents.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no document is indexed.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Whether `id` is indexed.
    pub fn contains(&self, id: EntryId) -> bool {
        self.by_id.contains_key(&id)
    }

    /// Exact collection statistics over the live documents.
    pub fn stats(&self) -> KeywordStats {
        let docs = self.len();
        KeywordStats {
            docs,
            total_tokens: self.live_len,
            avg_doc_len: if docs == 0 {
                0.0
            } else {
                (self.live_len as f64 / docs as f64) as f32
            },
        }
    }

    /// Number of live documents containing `token` (a term as the index's analyzer gives it,
    /// i.e. case-folded and, with [`Analyzer::English`], stemmed).
    pub fn doc_freq(&self, token: &str) -> usize {
        self.vocab
            .get(token)
            .and_then(|t| self.terms.get(t as usize))
            .map_or(0, |t| t.df as usize)
    }

    /// Indexes `text` under `id`, replacing what `id` held before. A text without tokens still
    /// counts as a (zero-length) document in N and the average length.
    pub fn insert(&mut self, id: EntryId, text: &str) {
        self.insert_many([(id, text)]);
    }

    /// Indexes several documents, as [`KeywordIndex::insert`] of each in turn would (a later
    /// document with the same id replaces an earlier one), but faster: the batch's postings are
    /// counted per term while the documents are tokenized, so each term's list grows once per
    /// batch, and then appended in document order (slots grow with it, so every list stays
    /// sorted by slot without sorting anything).
    pub fn insert_many<'a>(&mut self, docs: impl IntoIterator<Item = (EntryId, &'a str)>) {
        let docs: Vec<(EntryId, &str)> = docs.into_iter().collect();
        // Replaced documents go first: a removal may compact and renumber slots, which must not
        // happen while this batch's postings wait to be appended.
        for &(id, _) in &docs {
            self.remove(id);
        }
        let mut last = FxHashMap::default();
        if docs.len() > 1 {
            last.reserve(docs.len());
            for (i, &(id, _)) in docs.iter().enumerate() {
                last.insert(id, i);
            }
        }
        let first_slot = self.slot_ids.len();
        self.by_id.reserve(docs.len());
        reserve_bounded(&mut self.slot_ids, docs.len());
        reserve_bounded(&mut self.doc_len, docs.len());
        reserve_bounded(&mut self.doc_terms.ends, docs.len());
        reserve_bounded(&mut self.alive, docs.len());
        let mut tokens: Vec<u32> = Vec::new();
        let mut stem = String::new();
        // Term frequencies of the batch's documents, in the order of each one's `doc_terms`.
        let mut tfs: Vec<u32> = Vec::new();
        for (i, &(id, text)) in docs.iter().enumerate() {
            if last.get(&id).is_some_and(|&j| j != i) {
                continue; // a later document in this batch has the same id
            }
            tokens.clear();
            for_each_token(text, |tok| tokens.push(self.term_id(tok, &mut stem)));
            let dl = u32::try_from(tokens.len()).unwrap_or(u32::MAX);
            tokens.sort_unstable();
            let slot = self.slot_ids.len() as u32;
            let words = &mut self.doc_terms.words;
            words.reserve_bounded(tokens.len());
            for run in tokens.chunk_by(|a, b| a == b) {
                tfs.push(run.len() as u32);
                self.terms[run[0] as usize].pending += 1;
                words.push(run[0]);
            }
            self.doc_terms.ends.push(words.len() as u64);
            self.slot_ids.push(id);
            self.doc_len.push(dl);
            self.alive.push(true);
            self.by_id.insert(id, slot);
            self.live_len += u64::from(dl);
        }
        let mut at = 0;
        for slot in first_slot..self.slot_ids.len() {
            let dl = self.doc_len[slot];
            let n = self.doc_terms.get(slot).len();
            for (&t, &tf) in self.doc_terms.get(slot).iter().zip(&tfs[at..at + n]) {
                let term = &mut self.terms[t as usize];
                if term.pending > 0 {
                    if term.postings.capacity() == 0 {
                        let loaded = self.mapped.list(t as usize);
                        if !loaded.is_empty() {
                            term.postings =
                                Vec::with_capacity(loaded.len() + term.pending as usize);
                            term.postings.extend_from_slice(loaded);
                        }
                    }
                    term.reserve(term.pending as usize);
                    term.pending = 0;
                }
                term.push(slot as u32, tf, dl);
                term.df += 1;
            }
            at += n;
        }
    }

    /// The id of the term of `token` (a token of [`for_each_token`]), added if new: the same term
    /// as [`Analyzer::for_each_term`] gives, found through [`Surfaces`] when the analyzer may
    /// change the token.
    fn term_id(&mut self, token: &str, stem: &mut String) -> u32 {
        let analyzer = self.params.analyzer;
        let t = if analyzer.may_change(token) {
            if let Some(f) = self.surfaces.forms.get(token) {
                return self.surfaces.terms[f as usize];
            }
            let t = self.vocab.get_or_insert(analyzer.term_of(token, stem));
            let f = self.surfaces.forms.get_or_insert(token);
            debug_assert_eq!(f as usize, self.surfaces.terms.len());
            reserve_bounded(&mut self.surfaces.terms, 1);
            self.surfaces.terms.push(t);
            t
        } else {
            self.vocab.get_or_insert(token)
        };
        if t as usize == self.terms.len() {
            reserve_bounded(&mut self.terms, 1);
            self.terms.push(Term {
                min_dl: u32::MAX,
                ..Term::default()
            });
        }
        t
    }

    /// Removes `id`; returns whether it was indexed. Statistics are exact at once; storage is
    /// reclaimed when removed documents reach a quarter of all slots.
    pub fn remove(&mut self, id: EntryId) -> bool {
        let held = self.tombstone(id);
        if self.wants_compaction() {
            self.compact();
        }
        held
    }

    /// Removes `id` as [`KeywordIndex::remove`] does, without compacting: the caller checks
    /// [`KeywordIndex::wants_compaction`] and compacts beside searches (`AgentIndex::remove`).
    pub(crate) fn tombstone(&mut self, id: EntryId) -> bool {
        let Some(slot) = self.by_id.remove(&id) else {
            return false;
        };
        let slot = slot as usize;
        self.alive[slot] = false;
        for &t in self.doc_terms.get(slot) {
            self.terms[t as usize].df -= 1;
        }
        self.live_len -= u64::from(self.doc_len[slot]);
        self.dead_slots += 1;
        true
    }

    /// Whether removed documents are over a quarter of the slots.
    pub(crate) fn wants_compaction(&self) -> bool {
        self.dead_slots * 4 > self.slot_ids.len()
    }

    /// Drops removed documents and unused terms from storage and tightens the score bounds.
    pub fn compact(&mut self) {
        if self.dead_slots > 0 {
            *self = self.compacted();
        }
    }

    /// This index without its removed documents and unused terms, with tightened score bounds,
    /// built beside it: it takes `&self`, so searches can go on reading the index while the
    /// copy is made (the caller keeps writers out and swaps the copy in: `AgentIndex::remove`).
    /// Slots keep their order; terms are renumbered, so the copy starts without [`Surfaces`].
    pub(crate) fn compacted(&self) -> KeywordIndex {
        let mut remap = vec![u32::MAX; self.slot_ids.len()];
        let mut next = 0u32;
        for (slot, &alive) in self.alive.iter().enumerate() {
            if alive {
                remap[slot] = next;
                next += 1;
            }
        }
        let mut term_remap = vec![u32::MAX; self.terms.len()];
        let mut terms = Vec::with_capacity(self.terms.len());
        let mut vocab = Vocab::default();
        for (t, term) in self.terms.iter().enumerate() {
            if term.df == 0 {
                continue;
            }
            let mut fresh = Term {
                postings: Vec::with_capacity(term.df as usize),
                df: term.df,
                max_tf: 0,
                min_dl: u32::MAX,
                blocks: None,
                pending: 0,
            };
            for p in self.mapped.of(t, term) {
                let new_slot = remap[p.slot as usize];
                if new_slot != u32::MAX {
                    fresh.push(new_slot, p.tf, self.doc_len[p.slot as usize]);
                }
            }
            term_remap[t] = vocab.get_or_insert(self.vocab.term(t as u32));
            terms.push(fresh);
        }
        let mut by_id = self.by_id.clone();
        for slot in by_id.values_mut() {
            *slot = remap[*slot as usize];
        }
        KeywordIndex {
            params: self.params,
            vocab,
            // The forms point at the old term ids.
            surfaces: Surfaces::default(),
            terms,
            mapped: MappedPostings::default(),
            slot_ids: keep_live(&self.slot_ids, &remap),
            doc_len: keep_live(&self.doc_len, &remap),
            doc_terms: self.doc_terms.live(&self.alive, &term_remap),
            alive: vec![true; next as usize],
            by_id,
            live_len: self.live_len,
            dead_slots: 0,
        }
    }

    /// The `k` best documents for `query` that `filter` accepts, by BM25 score descending, ties
    /// by id ascending. Empty when the query has no tokens or none is indexed. Repeated query
    /// words count once. `filter` is called only for documents that would enter the top `k`.
    pub fn search(
        &self,
        query: &str,
        k: usize,
        filter: &dyn Fn(EntryId) -> bool,
    ) -> Vec<(EntryId, f32)> {
        let live = self.len();
        if k == 0 || live == 0 {
            return Vec::new();
        }
        let qterms = self.query_terms(query);
        if qterms.is_empty() {
            return Vec::new();
        }
        let scorer = Scorer::new(self.params, self.stats().avg_doc_len);
        MaxScore::new(self, &qterms, scorer).run(TopK::new(k, live), filter)
    }

    /// The BM25 score for `query` of each live document of `ids` that holds a query term, in
    /// `ids` order (the others are left out): the score [`search`](Self::search) gives that
    /// document, to the bit, for fusing it with a ranking of another signal that found it
    /// where this one's top k did not. A document's own term list says which query terms it
    /// holds; only those are looked up in their postings (a binary search each).
    pub fn scores(&self, query: &str, ids: &[EntryId]) -> Vec<(EntryId, f32)> {
        if ids.is_empty() || self.is_empty() {
            return Vec::new();
        }
        let qterms = self.query_terms(query);
        if qterms.is_empty() {
            return Vec::new();
        }
        let scorer = Scorer::new(self.params, self.stats().avg_doc_len);
        let n = self.len() as f32;
        // The terms in the order MaxScore sums them (ascending bound), so that the sums agree.
        let mut terms: Vec<(u32, f32, f32)> = qterms
            .iter()
            .map(|&t| {
                let term = &self.terms[t as usize];
                let idf = idf(n, term.df as f32);
                (
                    t,
                    idf,
                    MaxScore::bound(&scorer, idf, term.max_tf, term.min_dl),
                )
            })
            .collect();
        terms.sort_by(|a, b| a.2.total_cmp(&b.2));
        // Term id -> its place in `terms`, sorted by term id for lookups.
        let mut place: Vec<(u32, usize)> =
            terms.iter().enumerate().map(|(i, t)| (t.0, i)).collect();
        place.sort_unstable();
        let mut contrib = vec![0.0f32; terms.len()];
        ids.iter()
            .filter_map(|&id| {
                let slot = *self.by_id.get(&id)?;
                if !self.alive[slot as usize] {
                    return None;
                }
                let dl = self.doc_len[slot as usize];
                contrib.iter_mut().for_each(|c| *c = 0.0);
                let mut held = false;
                for t in self.doc_terms.get(slot as usize) {
                    let Ok(p) = place.binary_search_by_key(t, |&(t, _)| t) else {
                        continue;
                    };
                    let i = place[p].1;
                    let postings = self.postings(*t);
                    if let Ok(at) = postings.binary_search_by_key(&slot, |p| p.slot) {
                        held = true;
                        contrib[i] = scorer.weight(terms[i].1, postings[at].tf, dl);
                    }
                }
                held.then(|| (id, contrib.iter().sum()))
            })
            .collect()
    }

    /// Term `t`'s posting list, wherever it is held.
    fn postings(&self, t: u32) -> &[Posting] {
        self.mapped.of(t as usize, &self.terms[t as usize])
    }

    /// The distinct indexed terms of `query` that some live document holds, in term order.
    fn query_terms(&self, query: &str) -> Vec<u32> {
        let mut qterms: Vec<u32> = Vec::new();
        self.params.analyzer.for_each_term(query, |tok| {
            if let Some(t) = self.vocab.get(tok) {
                if self.terms[t as usize].df > 0 {
                    qterms.push(t);
                }
            }
        });
        qterms.sort_unstable();
        qterms.dedup();
        qterms
    }

    /// Estimated heap memory held by the index, in bytes.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        // A hashbrown table holds one control byte per bucket beside each (key, value).
        let map_bytes = |cap: usize, entry: usize| cap * (entry + 1);
        let vocab = self.vocab.heap_bytes() + self.surfaces.heap_bytes();
        let terms = self.terms.capacity() * size_of::<Term>()
            + self.mapped.starts.capacity() * size_of::<usize>()
            + self
                .terms
                .iter()
                .map(|t| {
                    t.postings.capacity() * size_of::<Posting>()
                        + t.blocks.as_ref().map_or(0, |b| {
                            size_of::<Vec<BlockMax>>() + b.capacity() * size_of::<BlockMax>()
                        })
                })
                .sum::<usize>();
        let docs = self.slot_ids.capacity() * size_of::<EntryId>()
            + self.doc_len.capacity() * size_of::<u32>()
            + self.doc_terms.heap_bytes()
            + self.alive.capacity()
            + map_bytes(self.by_id.capacity(), size_of::<(EntryId, u32)>());
        vocab + terms + docs
    }
}

/// The distinct term ids of every slot's document, end to end in one array (not an allocation
/// per document): slot `s` holds `words[ends[s - 1]..ends[s]]`. A removed document's ids stay
/// until the next compaction (they are not read: its slot is dead).
#[derive(Clone, Debug, Default)]
pub(crate) struct DocTerms {
    /// The lists of a loaded snapshot's documents are viewed in the mapped file; those of
    /// documents added since follow on the heap (no list straddles the two).
    words: Column<u32>,
    ends: Vec<u64>,
}

impl DocTerms {
    /// The term ids of slot `slot`.
    #[inline]
    pub fn get(&self, slot: usize) -> &[u32] {
        let start = if slot == 0 { 0 } else { self.ends[slot - 1] } as usize;
        let end = self.ends[slot] as usize;
        let (loaded, added) = self.words.parts();
        if end <= loaded.len() {
            &loaded[start..end]
        } else {
            &added[start - loaded.len()..end - loaded.len()]
        }
    }

    /// Slots held.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// The lists as they are stored: every id end to end, and where each slot's list ends.
    pub fn from_parts(words: Column<u32>, ends: Vec<u64>) -> Option<DocTerms> {
        let ok = ends.windows(2).all(|w| w[0] <= w[1])
            && ends
                .last()
                .map_or(words.len() == 0, |&e| e == words.len() as u64);
        ok.then_some(DocTerms { words, ends })
    }

    /// The lists of the slots `alive` marks, their terms renumbered by `term_remap`.
    fn live(&self, alive: &[bool], term_remap: &[u32]) -> DocTerms {
        let mut words = Vec::new();
        let mut ends = Vec::with_capacity(alive.iter().filter(|&&a| a).count());
        for (slot, _) in alive.iter().enumerate().filter(|(_, &a)| a) {
            words.extend(self.get(slot).iter().map(|&t| term_remap[t as usize]));
            ends.push(words.len() as u64);
        }
        words.shrink_to_fit();
        DocTerms {
            words: Column::from(words),
            ends,
        }
    }

    fn heap_bytes(&self) -> usize {
        self.words.heap_bytes() + self.ends.capacity() * 8
    }
}

/// The elements of `v` whose slot `remap` keeps (order preserved).
fn keep_live<T: Copy>(v: &[T], remap: &[u32]) -> Vec<T> {
    v.iter()
        .zip(remap)
        .filter(|&(_, &to)| to != u32::MAX)
        .map(|(&x, _)| x)
        .collect()
}

/// One query term's position in its postings during a MaxScore pass, with the bounds that let
/// whole stretches of postings be skipped.
struct Cursor<'a> {
    postings: &'a [Posting],
    blocks: &'a [BlockMax],
    pos: usize,
    idf: f32,
    /// Upper bound of this term's contribution to any document.
    bound: f32,
    /// The block whose bound is cached in `block_bound`, to compute each block's bound once per
    /// query rather than once per candidate.
    block: usize,
    block_bound: f32,
}

impl Cursor<'_> {
    /// The slot this cursor is at, if any is left.
    fn slot(&self) -> Option<u32> {
        self.postings.get(self.pos).map(|p| p.slot)
    }
}

/// One MaxScore (Turtle and Flood, 1995) pass with block-max skipping over a query's postings.
/// Terms are sorted by their bound; once the top-k threshold exceeds the sum of the bounds of a
/// prefix of them, those terms are "non-essential": no document matching only them can enter,
/// so candidates come from the essential terms alone and the others are looked up (by galloping)
/// only for candidates that can still make it.
struct MaxScore<'a> {
    index: &'a KeywordIndex,
    scorer: Scorer,
    /// Ascending by bound.
    cursors: Vec<Cursor<'a>>,
    /// `cum[i]`: sum of the bounds of cursors `0..=i`.
    cum: Vec<f32>,
    /// Cursors before this one are non-essential.
    first_essential: usize,
    /// Per cursor, its contribution to the current candidate's score.
    contrib: Vec<f32>,
}

impl<'a> MaxScore<'a> {
    fn new(index: &'a KeywordIndex, qterms: &[u32], scorer: Scorer) -> Self {
        let n = index.len() as f32;
        let mut cursors: Vec<Cursor<'a>> = qterms
            .iter()
            .map(|&t| {
                let term = &index.terms[t as usize];
                let idf = idf(n, term.df as f32);
                Cursor {
                    postings: index.postings(t),
                    blocks: term.blocks.as_deref().map_or(&[], Vec::as_slice),
                    pos: 0,
                    idf,
                    bound: Self::bound(&scorer, idf, term.max_tf, term.min_dl),
                    block: usize::MAX,
                    block_bound: 0.0,
                }
            })
            .collect();
        // Ascending bounds: a prefix of cheap terms becomes "non-essential" as the threshold rises.
        cursors.sort_by(|a, b| a.bound.total_cmp(&b.bound));
        let cum = cursors
            .iter()
            .scan(0.0f32, |acc, c| {
                *acc += c.bound;
                Some(*acc)
            })
            .collect();
        let contrib = vec![0.0f32; cursors.len()];
        MaxScore {
            index,
            scorer,
            cursors,
            cum,
            first_essential: 0,
            contrib,
        }
    }

    /// An upper bound of a term's weight in documents with at most `tf` occurrences and at least
    /// `dl` length, inflated a little so float rounding in a document's own score can never
    /// exceed it and get the document wrongly pruned.
    fn bound(scorer: &Scorer, idf: f32, tf: u32, dl: u32) -> f32 {
        scorer.weight(idf, tf, dl) * (1.0 + 1e-4) + 1e-6
    }

    fn run(mut self, mut top: TopK, filter: &dyn Fn(EntryId) -> bool) -> Vec<(EntryId, f32)> {
        while let Some(cand) = self.next_candidate() {
            let threshold = top.threshold();
            if threshold > f32::NEG_INFINITY && self.skip_blocks_below(cand, threshold) {
                continue;
            }
            let slot = cand as usize;
            let dl = self.index.doc_len[slot];
            let alive = self.index.alive[slot];
            let partial = self.score_essential(cand, dl, alive);
            if !alive || !self.add_non_essential(cand, dl, partial, top.threshold()) {
                continue;
            }
            // Summed again in a fixed term order: the partial sums above follow the changing
            // essential/non-essential split, and identical documents must get identical scores
            // for ties to fall to the id order.
            let score: f32 = self.contrib.iter().sum();
            let id = self.index.slot_ids[slot];
            if top.would_accept(score, id) && filter(id) {
                top.push(score, id);
                let threshold = top.threshold();
                while self.first_essential < self.cum.len()
                    && self.cum[self.first_essential] < threshold
                {
                    self.first_essential += 1;
                }
            }
        }
        top.into_sorted()
    }

    /// The smallest current slot among the essential terms: the next candidate.
    fn next_candidate(&self) -> Option<u32> {
        self.cursors[self.first_essential..]
            .iter()
            .filter_map(Cursor::slot)
            .min()
    }

    /// Block-max check: bounds every document from `cand` up to the first block boundary of the
    /// essential cursors by their current blocks plus all non-essential terms. Up to that
    /// boundary no essential term leaves its current block and none that is not at `cand` can
    /// match, so if the bound is below `threshold` the whole range is skipped (returns true).
    fn skip_blocks_below(&mut self, cand: u32, threshold: f32) -> bool {
        let mut ub = self
            .first_essential
            .checked_sub(1)
            .map_or(0.0, |i| self.cum[i]);
        let mut boundary = u32::MAX;
        for c in &mut self.cursors[self.first_essential..] {
            match c.postings.get(c.pos) {
                Some(p) if p.slot == cand => {
                    let b = c.pos / BLOCK;
                    if b != c.block {
                        c.block = b;
                        c.block_bound = c.blocks.get(b).map_or(c.bound, |bm| {
                            Self::bound(&self.scorer, c.idf, bm.max_tf, bm.min_dl)
                        });
                    }
                    ub += c.block_bound;
                    let end = ((b + 1) * BLOCK).min(c.postings.len());
                    boundary = boundary.min(c.postings.get(end).map_or(u32::MAX, |p| p.slot));
                }
                Some(p) => boundary = boundary.min(p.slot),
                None => {}
            }
        }
        if ub >= threshold {
            return false;
        }
        for c in &mut self.cursors[self.first_essential..] {
            c.pos = gallop(c.postings, c.pos, boundary);
        }
        true
    }

    /// Scores `cand` on the essential terms (all zero for a removed document) and moves their
    /// cursors past it; returns the partial score.
    fn score_essential(&mut self, cand: u32, dl: u32, alive: bool) -> f32 {
        let mut score = 0.0f32;
        self.contrib.iter_mut().for_each(|x| *x = 0.0);
        for (i, c) in self
            .cursors
            .iter_mut()
            .enumerate()
            .skip(self.first_essential)
        {
            if let Some(p) = c.postings.get(c.pos) {
                if p.slot == cand {
                    if alive {
                        self.contrib[i] = self.scorer.weight(c.idf, p.tf, dl);
                        score += self.contrib[i];
                    }
                    c.pos += 1;
                }
            }
        }
        score
    }

    /// Adds the non-essential terms' contributions to `cand`, from the largest bound down,
    /// stopping as soon as the score cannot reach `threshold` any more (returns false then).
    fn add_non_essential(&mut self, cand: u32, dl: u32, mut score: f32, threshold: f32) -> bool {
        for i in (0..self.first_essential).rev() {
            if score + self.cum[i] < threshold {
                return false;
            }
            let c = &mut self.cursors[i];
            c.pos = gallop(c.postings, c.pos, cand);
            if let Some(p) = c.postings.get(c.pos) {
                if p.slot == cand {
                    self.contrib[i] = self.scorer.weight(c.idf, p.tf, dl);
                    score += self.contrib[i];
                }
            }
        }
        true
    }
}

/// First position at or after `from` whose slot is >= `target`, by exponential then binary
/// search: cheap both for the next posting and for long jumps.
fn gallop(postings: &[Posting], from: usize, target: u32) -> usize {
    let len = postings.len();
    if from >= len || postings[from].slot >= target {
        return from;
    }
    let mut step = 1;
    let mut lo = from; // postings[lo].slot < target
    while lo + step < len && postings[lo + step].slot < target {
        lo += step;
        step *= 2;
    }
    let hi = (lo + step).min(len);
    lo + 1 + postings[lo + 1..hi].partition_point(|p| p.slot < target)
}

/// Ranks a small ad-hoc corpus (a short-term window) by BM25 against `query`, with N, average
/// length and document frequencies taken from `docs` itself. Returns at most `k` documents with a
/// positive score, score descending, ties by id ascending. Duplicate ids are ranked as given.
pub fn rank_documents(
    query: &str,
    docs: &[(EntryId, &str)],
    params: Bm25Params,
    k: usize,
) -> Result<Vec<(EntryId, f32)>> {
    params.validate()?;
    if k == 0 || docs.is_empty() {
        return Ok(Vec::new());
    }
    let mut qindex: FxHashMap<String, usize> = FxHashMap::default();
    params.analyzer.for_each_term(query, |tok| {
        let next = qindex.len();
        qindex.entry(tok.to_owned()).or_insert(next);
    });
    let nq = qindex.len();
    if nq == 0 {
        return Ok(Vec::new());
    }
    let mut tf = vec![0u32; docs.len() * nq];
    let mut dl = vec![0u32; docs.len()];
    let mut total: u64 = 0;
    for (d, (_, text)) in docs.iter().enumerate() {
        let row = &mut tf[d * nq..(d + 1) * nq];
        let mut len = 0u32;
        params.analyzer.for_each_term(text, |tok| {
            len = len.saturating_add(1);
            if let Some(&q) = qindex.get(tok) {
                row[q] += 1;
            }
        });
        dl[d] = len;
        total += u64::from(len);
    }
    let n = docs.len() as f32;
    let mut idfs = vec![0.0f32; nq];
    for (q, v) in idfs.iter_mut().enumerate() {
        let df = (0..docs.len()).filter(|&d| tf[d * nq + q] > 0).count();
        *v = idf(n, df as f32);
    }
    let scorer = Scorer::new(params, (total as f64 / docs.len() as f64) as f32);
    let mut top = TopK::new(k, docs.len());
    for (d, (id, _)) in docs.iter().enumerate() {
        let row = &tf[d * nq..(d + 1) * nq];
        if row.iter().all(|&x| x == 0) {
            continue;
        }
        let score: f32 = row
            .iter()
            .zip(&idfs)
            .filter(|(&t, _)| t > 0)
            .map(|(&t, &idf)| scorer.weight(idf, t, dl[d]))
            .sum();
        top.push(score, *id);
    }
    Ok(top.into_sorted())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default parameters with terms as plain tokens, for the hand-computed BM25 values
    /// below (where "cats" and "cat" are different terms).
    fn plain() -> Bm25Params {
        Bm25Params {
            analyzer: Analyzer::Plain,
            ..Bm25Params::default()
        }
    }

    fn index(docs: &[(u64, &str)]) -> KeywordIndex {
        let mut ix = KeywordIndex::new(plain()).unwrap();
        for &(id, text) in docs {
            ix.insert(EntryId(id), text);
        }
        ix
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-4
    }

    const CORPUS: [(u64, &str); 4] = [
        (1, "the cat sat on the mat"),
        (2, "the dog chased the cat"),
        (3, "dogs and cats living together"),
        (4, "a bird"),
    ];

    #[test]
    fn bm25_scores_match_hand_computed_values() {
        let ix = index(&CORPUS);
        // N = 4, lengths 6, 5, 5, 2 -> avgdl = 18 / 4 = 4.5. k1 = 1.2, b = 0.75.
        // "cat" is in docs 1 and 2 (tf 1 each): idf = ln(1 + (4 - 2 + 0.5) / (2 + 0.5)) = ln 2.
        // doc 1: norm = 1.2 * (0.25 + 0.75 * 6 / 4.5) = 1.2 * 1.25 = 1.5
        //        score = ln2 * 1 * 2.2 / (1 + 1.5) = 0.693147 * 0.88 = 0.609970
        // doc 2: norm = 1.2 * (0.25 + 0.75 * 5 / 4.5) = 1.2 * 1.083333 = 1.3
        //        score = ln2 * 2.2 / 2.3 = 0.663011
        let hits = ix.search("cat", 10, &|_| true);
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].0, EntryId(2));
        assert!(close(hits[0].1, 0.663011), "{hits:?}");
        assert_eq!(hits[1].0, EntryId(1));
        assert!(close(hits[1].1, 0.609970), "{hits:?}");

        // "the" is in docs 1 and 2 with tf 2: idf = ln 2 again.
        // doc 1: ln2 * 2 * 2.2 / (2 + 1.5) = 0.693147 * 1.257143 = 0.871385
        // doc 2: ln2 * 4.4 / 3.3 = 0.924196
        // "the cat" on doc 2 = 0.924196 + 0.663011 = 1.587207; doc 1 = 0.871385 + 0.609970 = 1.481355
        let hits = ix.search("The CAT", 10, &|_| true);
        assert_eq!(hits.len(), 2);
        assert!(close(hits[0].1, 1.587207), "{hits:?}");
        assert!(close(hits[1].1, 1.481355), "{hits:?}");

        // "bird": df = 1, idf = ln(1 + 3.5 / 1.5) = ln(3.333333) = 1.203973.
        // doc 4: norm = 1.2 * (0.25 + 0.75 * 2 / 4.5) = 1.2 * 0.583333 = 0.7
        //        score = 1.203973 * 2.2 / 1.7 = 1.558083
        let hits = ix.search("bird", 10, &|_| true);
        assert_eq!(hits.len(), 1);
        assert!(close(hits[0].1, 1.558083), "{hits:?}");
    }

    #[test]
    fn removal_keeps_bm25_statistics_exact() {
        let mut ix = index(&CORPUS);
        assert!(ix.remove(EntryId(1)));
        assert!(!ix.remove(EntryId(1)));
        // Same as a fresh index without doc 1: N = 3, avgdl = 12 / 3 = 4, df(cat) = 1.
        let fresh = index(&CORPUS[1..]);
        assert_eq!(ix.stats(), fresh.stats());
        assert_eq!(ix.stats().docs, 3);
        assert!(close(ix.stats().avg_doc_len, 4.0));
        assert_eq!(ix.doc_freq("cat"), 1);
        assert_eq!(ix.doc_freq("mat"), 0);
        for q in ["cat", "the dog", "bird cats", "mat"] {
            assert_eq!(ix.search(q, 10, &|_| true), fresh.search(q, 10, &|_| true));
        }
        // Doc 2 alone: idf(cat) = ln(1 + 2.5 / 1.5) = 0.980829; norm = 1.2 * (0.25 + 0.75 * 5 / 4)
        // = 1.425; score = 0.980829 * 2.2 / 2.425 = 0.889825.
        let hits = ix.search("cat", 10, &|_| true);
        assert!(close(hits[0].1, 0.889825), "{hits:?}");
    }

    #[test]
    fn compaction_preserves_results_and_reinsertion_replaces_text() {
        let mut ix = index(&CORPUS);
        ix.remove(EntryId(3));
        ix.compact();
        let fresh = index(&[CORPUS[0], CORPUS[1], CORPUS[3]]);
        assert_eq!(
            ix.search("the cat", 10, &|_| true),
            fresh.search("the cat", 10, &|_| true)
        );
        ix.insert(EntryId(1), "a bird on a wire");
        assert_eq!(ix.len(), 3);
        assert_eq!(ix.doc_freq("mat"), 0);
        assert_eq!(ix.doc_freq("bird"), 2);
    }

    #[test]
    fn search_honours_the_filter_and_edge_values_of_k() {
        let ix = index(&CORPUS);
        let hits = ix.search("cat", 10, &|id| id != EntryId(2));
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [EntryId(1)]);
        assert!(ix.search("cat", 0, &|_| true).is_empty());
        assert_eq!(ix.search("the cat bird", usize::MAX, &|_| true).len(), 3);
        assert!(ix.search("", 10, &|_| true).is_empty());
        assert!(ix.search(" ,.! ", 10, &|_| true).is_empty());
        assert!(ix.search("unknownword", 10, &|_| true).is_empty());
    }

    #[test]
    fn ties_are_broken_by_ascending_id() {
        let ix = index(&[(9, "alpha beta"), (3, "alpha beta"), (5, "alpha beta")]);
        let ids: Vec<_> = ix
            .search("alpha", 2, &|_| true)
            .iter()
            .map(|h| h.0)
            .collect();
        assert_eq!(ids, [EntryId(3), EntryId(5)]);
    }

    #[test]
    fn batches_index_like_one_document_at_a_time() {
        // Batches of 37 over 400 documents: lists that grow across many batches and past a
        // score block, ids repeated within a batch (the later text wins) and across batches
        // (replacing the earlier text).
        let words = [
            "alpha", "beta", "gamma", "delta", "echo", "fox", "golf", "hotel",
        ];
        let docs: Vec<(u64, String)> = (0..400u64)
            .map(|i| {
                let id = if i % 53 == 0 { i / 2 } else { i };
                let text = (0..(3 + i % 9))
                    .map(|j| words[((i * 7 + j * j) % 8) as usize])
                    .chain((i % 13 == 0).then_some("rare"))
                    .collect::<Vec<_>>()
                    .join(" ");
                (id, text)
            })
            .collect();
        let mut one_by_one = KeywordIndex::new(Bm25Params::default()).unwrap();
        for (id, text) in &docs {
            one_by_one.insert(EntryId(*id), text);
        }
        let mut batched = KeywordIndex::new(Bm25Params::default()).unwrap();
        for chunk in docs.chunks(37) {
            batched.insert_many(chunk.iter().map(|(id, t)| (EntryId(*id), t.as_str())));
        }
        assert_eq!(batched.len(), one_by_one.len());
        assert_eq!(
            batched.stats().total_tokens,
            one_by_one.stats().total_tokens
        );
        for w in words.iter().chain(&["rare"]) {
            assert_eq!(batched.doc_freq(w), one_by_one.doc_freq(w), "{w}");
            let want = one_by_one.search(w, 1000, &|_| true);
            let got = batched.search(w, 1000, &|_| true);
            assert_eq!(got.len(), want.len(), "{w}");
            for (g, o) in got.iter().zip(&want) {
                assert_eq!(g.0, o.0, "{w}");
                assert!(close(g.1, o.1), "{w}");
            }
        }
    }

    #[test]
    fn pruned_search_equals_exhaustive_scoring() {
        // Many documents share a common word; a few hold a rare one. The pruned top-k must equal
        // scoring every document.
        let mut docs = Vec::new();
        for i in 0..500u64 {
            let mut t = String::from("common words everywhere");
            if i % 7 == 0 {
                t.push_str(" seven");
            }
            if i % 50 == 0 {
                t.push_str(" rare rare");
            }
            for _ in 0..(i % 5) {
                t.push_str(" filler");
            }
            docs.push((i, t));
        }
        let refs: Vec<(u64, &str)> = docs.iter().map(|(i, t)| (*i, t.as_str())).collect();
        let mut ix = index(&refs);
        for i in (0..500).step_by(11) {
            ix.remove(EntryId(i));
        }
        let live: Vec<(EntryId, &str)> = refs
            .iter()
            .filter(|(i, _)| i % 11 != 0)
            .map(|(i, t)| (EntryId(*i), *t))
            .collect();
        for q in [
            "common rare",
            "seven common",
            "rare",
            "everywhere filler seven rare",
        ] {
            for k in [1, 5, 40, 1000] {
                let want = rank_documents(q, &live, plain(), k).unwrap();
                let got = ix.search(q, k, &|_| true);
                assert_eq!(got.len(), want.len(), "{q} {k}");
                for (g, w) in got.iter().zip(&want) {
                    assert_eq!(g.0, w.0, "{q} {k}");
                    assert!(close(g.1, w.1));
                }
            }
        }
    }

    #[test]
    fn scores_of_given_documents_equal_their_search_scores() {
        let mut docs = Vec::new();
        for i in 0..300u64 {
            let mut t = String::from("common words");
            if i % 7 == 0 {
                t.push_str(" seven");
            }
            if i % 30 == 0 {
                t.push_str(" rare rare");
            }
            for _ in 0..(i % 4) {
                t.push_str(" filler");
            }
            if i % 13 == 0 {
                t = String::from("nothing shared here");
            }
            docs.push((i, t));
        }
        let refs: Vec<(u64, &str)> = docs.iter().map(|(i, t)| (*i, t.as_str())).collect();
        let mut ix = index(&refs);
        ix.remove(EntryId(14));
        // Every id, a removed one (14), one never indexed (999) and a repeat (7).
        let mut ids: Vec<EntryId> = (0..300).map(EntryId).collect();
        ids.extend([EntryId(999), EntryId(7)]);
        for (q, compacted) in [
            ("common rare", false),
            ("seven filler", false),
            ("rare", false),
            ("absent", false),
            ("common rare", true),
            ("seven filler", true),
        ] {
            if compacted {
                // Slots renumbered and term lists remapped.
                ix.compact();
            }
            let all = ix.search(q, 1000, &|_| true);
            let got = ix.scores(q, &ids);
            // The documents holding a query term, each with its search score to the bit, in
            // the order asked; a repeated id is answered twice.
            let mut want: Vec<(EntryId, f32)> = ids
                .iter()
                .filter_map(|id| all.iter().find(|h| h.0 == *id).copied())
                .collect();
            assert_eq!(got, want, "{q}");
            want.retain(|h| h.0 == EntryId(14) || h.0 == EntryId(999) || h.0 == EntryId(13));
            assert!(
                want.is_empty(),
                "removed, unknown and term-less documents get no score"
            );
        }
        assert!(ix.scores("rare", &[]).is_empty());
    }

    #[test]
    fn the_english_analyzer_matches_word_forms_in_the_index_and_in_a_scan() {
        let mut ix = KeywordIndex::new(Bm25Params::default()).unwrap();
        for &(id, text) in &CORPUS {
            ix.insert(EntryId(id), text);
        }
        // "cats" and "cat" are one term: docs 1, 2 and 3 hold it.
        let hits = ix.search("Cats", 10, &|_| true);
        let mut ids: Vec<u64> = hits.iter().map(|h| h.0 .0).collect();
        ids.sort_unstable();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(ix.doc_freq("cat"), 3);
        assert_eq!(
            ix.doc_freq("cats"),
            0,
            "the index holds stems, not word forms"
        );
        let docs: Vec<(EntryId, &str)> = CORPUS.iter().map(|(i, t)| (EntryId(*i), *t)).collect();
        let scanned = rank_documents("lived with a dog", &docs, Bm25Params::default(), 10).unwrap();
        assert_eq!(scanned, ix.search("lived with a dog", 10, &|_| true));
        assert_eq!(scanned[0].0, EntryId(3), "dogs and living");
        // The plain analyzer keeps word forms apart.
        let plain_hits = index(&CORPUS).search("Cats", 10, &|_| true);
        assert_eq!(
            plain_hits.iter().map(|h| h.0).collect::<Vec<_>>(),
            [EntryId(3)]
        );
    }

    #[test]
    fn word_forms_met_before_keep_their_terms_across_compaction() {
        let english = || KeywordIndex::new(Bm25Params::default()).unwrap();
        let mut ix = english();
        ix.insert(EntryId(1), "Zebras painted fences");
        ix.insert(EntryId(2), "walking and talking");
        ix.insert(EntryId(3), "She painted walls");
        // Each removal compacts (a quarter of the slots is dead): `zebra`, `fenc` and then
        // `paint` go, the other terms get new ids, and the written forms met so far must not
        // keep the old ones.
        ix.remove(EntryId(1));
        ix.remove(EntryId(3));
        ix.insert(EntryId(4), "walking zebras painted talking");
        ix.insert(EntryId(5), "Fences WALKING");
        let mut fresh = english();
        fresh.insert(EntryId(2), "walking and talking");
        fresh.insert(EntryId(4), "walking zebras painted talking");
        fresh.insert(EntryId(5), "Fences WALKING");
        assert_eq!(ix.stats(), fresh.stats());
        for term in ["walk", "talk", "zebra", "paint", "fenc", "and", "walking"] {
            assert_eq!(ix.doc_freq(term), fresh.doc_freq(term), "{term}");
        }
        for q in ["walked", "zebra painting", "fence", "talks and walks"] {
            assert_eq!(
                ix.search(q, 10, &|_| true),
                fresh.search(q, 10, &|_| true),
                "{q}"
            );
        }
        // The batch path reads the forms the same way.
        let mut batched = english();
        batched.insert_many([
            (EntryId(2), "walking and talking"),
            (EntryId(4), "walking zebras painted talking"),
            (EntryId(5), "Fences WALKING"),
        ]);
        assert_eq!(
            batched.search("walks", 10, &|_| true),
            fresh.search("walks", 10, &|_| true)
        );
    }

    #[test]
    fn rank_documents_scores_like_the_index() {
        let docs: Vec<(EntryId, &str)> = CORPUS.iter().map(|(i, t)| (EntryId(*i), *t)).collect();
        let ranked = rank_documents("the cat", &docs, plain(), 10).unwrap();
        assert_eq!(ranked.len(), 2);
        assert!(close(ranked[0].1, 1.587207));
        assert!(close(ranked[1].1, 1.481355));
        assert!(rank_documents("cat", &docs, Bm25Params::default(), 0)
            .unwrap()
            .is_empty());
        assert!(rank_documents("?", &docs, Bm25Params::default(), 3)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        for p in [
            Bm25Params {
                k1: -1.0,
                ..Bm25Params::default()
            },
            Bm25Params {
                k1: f32::NAN,
                ..Bm25Params::default()
            },
            Bm25Params {
                b: 1.5,
                ..Bm25Params::default()
            },
        ] {
            assert!(matches!(KeywordIndex::new(p), Err(Error::InvalidConfig(_))));
            assert!(rank_documents("x", &[], p, 1).is_err());
        }
    }

    #[test]
    fn gallop_finds_the_first_posting_at_or_after_target() {
        let p: Vec<Posting> = [1, 3, 5, 7, 9, 11, 13]
            .iter()
            .map(|&slot| Posting { slot, tf: 1 })
            .collect();
        assert_eq!(gallop(&p, 0, 0), 0);
        assert_eq!(gallop(&p, 0, 4), 2);
        assert_eq!(gallop(&p, 2, 5), 2);
        assert_eq!(gallop(&p, 1, 13), 6);
        assert_eq!(gallop(&p, 0, 14), 7);
        assert_eq!(gallop(&p, 7, 1), 7);
    }
}
