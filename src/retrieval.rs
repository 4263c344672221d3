//! Retrieval quality on conversations: every turn of a LoCoMo-format conversation stored as a
//! long-term entry, every question searched in each mode, and the evidence turns looked for in
//! the top 10 and in packed contexts; plus transition accuracy, the share of turns (and of
//! evidence turns) that streaming through short-term memory with consolidation keeps.
//!
//! Definitions (per question with at least one resolved evidence turn; means over questions):
//! - `r@k`: the share of the question's evidence turns found in the top k (a question with two
//!   evidence turns and one found scores 0.5). This is the recall LoCoMo-style retrieval
//!   evaluations report.
//! - `any@k`: 1 when at least one evidence turn is in the top k; `all@k`: 1 when all are.
//! - `mrr@10`: 1 / rank of the first evidence turn in the top 10, 0 when none is.
//! - `ctx@B`: 1 when [`Memory::build_context`] with a budget of B tokens, the question as the
//!   query and the same mode shows at least one evidence turn whole (a memory cut short to fit
//!   does not count).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use memory_core::context::{OmissionReason, OmittedItem};
use memory_core::{
    Clock, ContextQuery, Embedder, EntryId, HashingEmbedder, ManualClock, Memory, MemoryConfig,
    NewEntry, Role, SearchMode, SearchQuery, SectionKind, Storage, Tiers, Timestamp,
};
use serde::Serialize;
use serde_json::json;

use crate::locomo::{category_name, Conversation, ResolvedQuestion, SessionDate};

/// Hits per search.
pub const K: usize = 10;
/// Token budgets of the evidence-in-context check.
pub const CONTEXT_BUDGETS: [usize; 3] = [500, 1_000, 2_000];
/// Tokens per retrieved hit assumed when sizing a context's search. A rendered turn (`- Speaker:
/// text` and the line break, plus its day's date line when it is the first of its day) costs
/// 20-40 tokens with the default counter on conversation data, at least 7 for the shortest
/// possible turn, so `budget / 8` hits overfill the budget several times over and the budget,
/// not k, decides what fits (it would take 125 turns of one or two words each to fill 1,000
/// tokens with fewer).
pub const MIN_TOKENS_PER_HIT: usize = 8;

/// Hits a context build of `budget` tokens retrieves before packing.
pub fn context_search_k(budget: usize) -> usize {
    (budget / MIN_TOKENS_PER_HIT).max(K)
}
/// The context's system prompt (counted against the budget).
pub const SYSTEM_PROMPT: &str =
    "You are a helpful assistant. Answer the user's question from the memories below.";
/// Session id of the context builds (never opened, so contexts hold memories only).
const QUESTION_SESSION: &str = "quality-question";
/// Time between two streamed turns of a session.
const TURN_GAP: Duration = Duration::from_secs(30);

/// The search modes measured, with the names used in benchmark ids.
pub const MODES: [(&str, SearchMode); 4] = [
    ("keyword", SearchMode::Keyword),
    ("ann", SearchMode::Vector),
    ("exact_vector", SearchMode::ExactVector),
    ("hybrid", SearchMode::Hybrid),
];

/// The figures per question, in this order.
pub const METRICS: [&str; 11] = [
    "r@1", "r@5", "r@10", "any@5", "any@10", "all@5", "all@10", "mrr@10", "ctx@500", "ctx@1000",
    "ctx@2000",
];
const CTX_FIRST: usize = 8;

/// One question's figures, indexed like [`METRICS`].
pub type Scores = [f64; METRICS.len()];

/// Share of `evidence` found among the first `k` of `ranking` (0 for no evidence).
pub fn recall_at<T: PartialEq>(evidence: &[T], ranking: &[T], k: usize) -> f64 {
    if evidence.is_empty() {
        return 0.0;
    }
    let top = &ranking[..k.min(ranking.len())];
    evidence.iter().filter(|e| top.contains(e)).count() as f64 / evidence.len() as f64
}

/// 1 when any of `evidence` is among the first `k` of `ranking`, else 0.
pub fn any_at<T: PartialEq>(evidence: &[T], ranking: &[T], k: usize) -> f64 {
    let top = &ranking[..k.min(ranking.len())];
    f64::from(u8::from(evidence.iter().any(|e| top.contains(e))))
}

/// 1 when all of `evidence` (at least one) are among the first `k` of `ranking`, else 0.
pub fn all_at<T: PartialEq>(evidence: &[T], ranking: &[T], k: usize) -> f64 {
    let top = &ranking[..k.min(ranking.len())];
    f64::from(u8::from(
        !evidence.is_empty() && evidence.iter().all(|e| top.contains(e)),
    ))
}

/// 1 / (1-based rank of the first evidence item within the first `k`), 0 when none is there.
pub fn reciprocal_rank<T: PartialEq>(evidence: &[T], ranking: &[T], k: usize) -> f64 {
    ranking
        .iter()
        .take(k)
        .position(|r| evidence.contains(r))
        .map_or(0.0, |p| 1.0 / (p + 1) as f64)
}

/// The ranking figures of one question (the `ctx@` slots left at 0).
pub fn ranking_scores<T: PartialEq>(evidence: &[T], ranking: &[T]) -> Scores {
    let mut s = [0.0; METRICS.len()];
    s[0] = recall_at(evidence, ranking, 1);
    s[1] = recall_at(evidence, ranking, 5);
    s[2] = recall_at(evidence, ranking, 10);
    s[3] = any_at(evidence, ranking, 5);
    s[4] = any_at(evidence, ranking, 10);
    s[5] = all_at(evidence, ranking, 5);
    s[6] = all_at(evidence, ranking, 10);
    s[7] = reciprocal_rank(evidence, ranking, 10);
    s
}

/// Sums of figures over questions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    pub questions: usize,
    sums: Scores,
}

impl Tally {
    /// Adds one question.
    pub fn add(&mut self, scores: &Scores) {
        self.questions += 1;
        for (sum, s) in self.sums.iter_mut().zip(scores) {
            *sum += s;
        }
    }

    /// The mean of every figure (all 0 over no questions).
    pub fn means(&self) -> Scores {
        let n = self.questions.max(1) as f64;
        self.sums.map(|s| s / n)
    }
}

/// An embedder with the name used in benchmark ids.
#[derive(Clone, Debug)]
pub struct NamedEmbedder {
    pub name: String,
    pub embedder: Arc<dyn Embedder>,
}

impl NamedEmbedder {
    /// memory-core's default: the feature-hashing embedder at the default dimension.
    pub fn hashing() -> NamedEmbedder {
        let dim = MemoryConfig::default().embedding_dim;
        // The default dimension is always valid for the hashing embedder.
        let embedder = HashingEmbedder::new(dim).unwrap_or_else(|e| unreachable!("{e}"));
        NamedEmbedder {
            name: "hashing".to_string(),
            embedder: Arc::new(embedder),
        }
    }

    /// all-MiniLM-L6-v2 from `$MEMORY_CORE_MINILM_DIR`, else `target/models/all-MiniLM-L6-v2`
    /// (`scripts/fetch-minilm.sh` puts it there). `Err` says why it is not there, for the
    /// caller to print as a skip.
    #[cfg(feature = "minilm")]
    pub fn minilm() -> Result<NamedEmbedder, String> {
        let dir = std::env::var_os("MEMORY_CORE_MINILM_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("target/models/all-MiniLM-L6-v2")
            });
        let model = memory_core::MiniLmEmbedder::load(&dir).map_err(|e| {
            format!(
                "MiniLM not loaded from {} ({e}); run scripts/fetch-minilm.sh",
                dir.display()
            )
        })?;
        Ok(NamedEmbedder {
            name: "minilm".to_string(),
            embedder: Arc::new(model),
        })
    }
}

/// Where the measured stores keep long-term memory. Short-term memory is memory-core's RAM tier
/// in both, so the figures compare the long-term backends alone.
#[derive(Clone, Debug, Default)]
pub enum Backend {
    /// memory-core's default: SQLite in a temporary file, indexes in RAM.
    #[default]
    Embedded,
    /// A PostgreSQL + pgvector long-term store at this URL; every store gets a schema of its
    /// own, dropped when the store is.
    #[cfg(feature = "postgres")]
    Postgres { url: String },
}

impl Backend {
    /// The name used in benchmark ids and tables.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            #[cfg(feature = "postgres")]
            Backend::Postgres { .. } => "postgres",
        }
    }
}

/// A store opened for one measurement; dropping it closes the store, then drops its
/// PostgreSQL schema (if it has one).
pub struct MeasuredStore {
    memory: Option<Memory>,
    #[cfg(feature = "postgres")]
    schema: Option<memory_core::PostgresConfig>,
}

impl std::ops::Deref for MeasuredStore {
    type Target = Memory;

    fn deref(&self) -> &Memory {
        // Taken only in `drop`.
        self.memory.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for MeasuredStore {
    fn drop(&mut self) {
        drop(self.memory.take());
        #[cfg(feature = "postgres")]
        if let Some(pg) = self.schema.take() {
            if let Err(e) = pg.destroy_store() {
                eprintln!("warning: cannot drop the quality bench's schema {pg:?}: {e}");
            }
        }
    }
}

fn open_store(
    backend: &Backend,
    embedder: &NamedEmbedder,
    clock: Arc<ManualClock>,
) -> memory_core::Result<MeasuredStore> {
    let config = MemoryConfig {
        embedding_dim: embedder.embedder.dimension(),
        ..MemoryConfig::default()
    };
    #[cfg(feature = "postgres")]
    let mut schema = None;
    let storage = match backend {
        Backend::Embedded => Storage::Temporary,
        #[cfg(feature = "postgres")]
        Backend::Postgres { url } => {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static STORES: AtomicUsize = AtomicUsize::new(0);
            let pg = memory_core::PostgresConfig::new(url.as_str())
                .with_schema(format!(
                    "membench_quality_{}_{}",
                    std::process::id(),
                    STORES.fetch_add(1, Ordering::Relaxed)
                ))
                .with_application_name("memory-bench quality");
            // A schema left by a killed run of the same pid would mix two stores.
            pg.destroy_store()?;
            schema = Some(pg.clone());
            Storage::Postgres(pg)
        }
    };
    let memory = Memory::builder(storage)
        .with_config(config)
        .with_embedder(embedder.embedder.clone())
        .with_clock(clock)
        .open()?;
    Ok(MeasuredStore {
        memory: Some(memory),
        #[cfg(feature = "postgres")]
        schema,
    })
}

/// Each session's time: its parsed date, kept strictly after the previous session's (undated
/// or out-of-order sessions are placed a day after the previous one).
pub fn session_times(conv: &Conversation) -> Vec<Timestamp> {
    // 1 January 2023, for a conversation whose first session has no date.
    const FALLBACK_START: i64 = 1_672_531_200_000_000;
    const DAY: i64 = 86_400_000_000;
    let mut out: Vec<Timestamp> = Vec::with_capacity(conv.sessions.len());
    for s in &conv.sessions {
        let parsed = s
            .date_time
            .as_deref()
            .and_then(SessionDate::parse)
            .map(|d| d.unix_micros());
        let t = match (out.last(), parsed) {
            (None, p) => p.unwrap_or(FALLBACK_START),
            (Some(prev), Some(p)) if p > prev.0 => p,
            (Some(prev), _) => prev.0 + DAY,
        };
        out.push(Timestamp(t));
    }
    out
}

/// Whether the store refused an entry for what it holds (empty or oversized text, ids or metadata
/// over the limits): the turn is left out and counted. Any other error (a server, the disk) ends
/// the run, so that a failure never passes for lower scores.
fn refused(e: &memory_core::Error) -> bool {
    use memory_core::Error as E;
    matches!(
        e,
        E::EmptyContent
            | E::ContentTooLarge { .. }
            | E::EmptyId { .. }
            | E::IdTooLong { .. }
            | E::MetadataTooDeep { .. }
            | E::MetadataTooLarge { .. }
            | E::DimensionMismatch { .. }
            | E::NonFiniteEmbedding { .. }
            | E::ZeroEmbedding
            | E::ImportanceOutOfRange(_)
            | E::CreatedAtInFuture { .. }
    )
}

/// `result` of writing one turn: its id, `None` when the store refused the turn.
fn turn_written(result: memory_core::Result<EntryId>) -> memory_core::Result<Option<EntryId>> {
    match result {
        Ok(id) => Ok(Some(id)),
        Err(e) if refused(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

fn role_of(conv: &Conversation, speaker: &str) -> Role {
    if speaker == conv.speaker_b {
        Role::Assistant
    } else {
        Role::User
    }
}

fn entry_for(
    conv: &Conversation,
    session: u32,
    date: Option<&str>,
    turn: &crate::locomo::Turn,
) -> NewEntry {
    NewEntry::new(
        conv.sample_id.as_str(),
        format!("session_{session}"),
        role_of(conv, &turn.speaker),
        turn.content(),
    )
    .with_metadata(json!({"dia_id": turn.dia_id, "session": session, "date": date}))
}

/// What one conversation gave in one mode for one question.
#[derive(Clone, Debug, PartialEq)]
pub struct QuestionOutcome {
    /// Index into [`MODES`].
    pub mode: usize,
    pub category: String,
    pub scores: Scores,
}

/// The retrieval part of one conversation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RetrievalOutcome {
    pub questions: Vec<QuestionOutcome>,
    /// Turns the store refused (oversized or empty text); evidence among them cannot be found
    /// and counts as missed.
    pub rejected_turns: usize,
    /// Evidence references (of scored questions) to refused turns.
    pub rejected_evidence: usize,
    /// Questions the engine refused to search in at least one mode (`Error::InvalidQuery`, e.g.
    /// no words to embed); they score 0 there.
    pub unsearchable: usize,
}

/// Stores every turn of `conv` as a long-term entry (session by session, the store's clock at
/// each session's date) and scores every question with evidence in every mode.
pub fn evaluate_retrieval(
    conv: &Conversation,
    resolved: &[ResolvedQuestion],
    embedder: &NamedEmbedder,
    backend: &Backend,
) -> memory_core::Result<RetrievalOutcome> {
    let times = session_times(conv);
    let clock = Arc::new(ManualClock::new(times.first().copied().unwrap_or_default()));
    let memory = open_store(backend, embedder, clock.clone())?;
    let agent = conv.sample_id.as_str();
    let mut turn_ids: Vec<Option<EntryId>> = Vec::with_capacity(conv.turns());
    let mut rejected_turns = 0;
    for (session, time) in conv.sessions.iter().zip(&times) {
        clock.set(*time);
        let entries: Vec<NewEntry> = session
            .turns
            .iter()
            .map(|t| entry_for(conv, session.number, session.date_time.as_deref(), t))
            .collect();
        match memory.insert_batch(entries.clone()) {
            Ok(ids) => turn_ids.extend(ids.into_iter().map(Some)),
            // One bad turn fails the whole batch: store the others one by one.
            Err(e) if refused(&e) => {
                for e in entries {
                    let id = turn_written(memory.insert(e))?;
                    rejected_turns += usize::from(id.is_none());
                    turn_ids.push(id);
                }
            }
            Err(e) => return Err(e),
        }
        // Linked session by session, each backlog below the size the linker links in parallel
        // (whose graph depends on thread timing): the same graph, so the same figures, on every
        // run.
        memory.wait_for_indexing();
    }

    let mut questions = Vec::new();
    let mut unsearchable = 0;
    let mut rejected_evidence = 0;
    for r in resolved {
        if r.evidence.is_empty() {
            continue;
        }
        // A refused evidence turn cannot be found: it stays in the question's evidence as a
        // miss (`None` is in no ranking).
        let evidence: Vec<Option<EntryId>> = r.evidence.iter().map(|&i| turn_ids[i]).collect();
        rejected_evidence += evidence.iter().filter(|e| e.is_none()).count();
        let q = &conv.questions[r.index];
        let mut refused = false;
        for (mode_index, (_, mode)) in MODES.iter().enumerate() {
            let query = SearchQuery::new(agent, q.question.as_str())
                .with_mode(*mode)
                .with_tiers(Tiers::LongTerm)
                .without_cache();
            // A question the engine cannot search (no words it can use) finds nothing.
            let hits = match memory.search(&query.clone().with_k(K)) {
                Err(memory_core::Error::InvalidQuery(_)) => {
                    refused = true;
                    Vec::new()
                }
                other => other?,
            };
            let ranking: Vec<Option<EntryId>> = hits.iter().map(|h| Some(h.entry.id)).collect();
            let mut scores = ranking_scores(&evidence, &ranking);
            for (b, budget) in CONTEXT_BUDGETS.iter().enumerate() {
                let request = ContextQuery::new(
                    query.clone().with_k(context_search_k(*budget)),
                    QUESTION_SESSION,
                    SYSTEM_PROMPT,
                    *budget,
                );
                let context = match memory.build_context(&request) {
                    Err(memory_core::Error::InvalidQuery(_)) => continue,
                    other => other?,
                };
                let cut: HashSet<EntryId> = context
                    .omitted
                    .iter()
                    .filter(|o| matches!(o.reason, OmissionReason::Truncated { .. }))
                    .filter_map(|o| match o.item {
                        OmittedItem::Memory { id, .. } | OmittedItem::Turn { id } => Some(id),
                        OmittedItem::Tool { .. } => None,
                    })
                    .collect();
                let shown = context
                    .sections
                    .iter()
                    .filter(|s| matches!(s.kind, SectionKind::Memories | SectionKind::Conversation))
                    .flat_map(|s| &s.entries)
                    .any(|id| evidence.contains(&Some(*id)) && !cut.contains(id));
                scores[CTX_FIRST + b] = f64::from(u8::from(shown));
            }
            questions.push(QuestionOutcome {
                mode: mode_index,
                category: q.category.clone(),
                scores,
            });
        }
        unsearchable += usize::from(refused);
    }
    Ok(RetrievalOutcome {
        questions,
        rejected_turns,
        rejected_evidence,
        unsearchable,
    })
}

/// What streaming a conversation through short-term memory kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TransitionOutcome {
    pub turns: usize,
    /// Turns found in long-term memory at the end.
    pub stored: usize,
    /// Distinct evidence turns of the questions.
    pub evidence_turns: usize,
    pub evidence_stored: usize,
    /// Entries still in short-term memory at the end (should be 0: every session expired).
    pub left_in_stm: usize,
    /// Turns the store refused.
    pub rejected_turns: usize,
}

impl TransitionOutcome {
    /// Adds another conversation's counts.
    pub fn merge(&mut self, o: &TransitionOutcome) {
        self.turns += o.turns;
        self.stored += o.stored;
        self.evidence_turns += o.evidence_turns;
        self.evidence_stored += o.evidence_stored;
        self.left_in_stm += o.left_in_stm;
        self.rejected_turns += o.rejected_turns;
    }

    /// Share of evidence turns kept (0 with none).
    pub fn evidence_kept(&self) -> f64 {
        self.evidence_stored as f64 / self.evidence_turns.max(1) as f64
    }

    /// Share of all turns kept (0 with none).
    pub fn turns_kept(&self) -> f64 {
        self.stored as f64 / self.turns.max(1) as f64
    }
}

/// Streams `conv` through the short-term tier the way an agent would: `append` every turn (the
/// clock at the session's date, 30 s between turns), `consolidate()` after each session and once
/// more past the short-term time-to-live at the end, all under the default policy; then counts
/// which turns (by entry id) reached long-term memory. A turn that repeats one stored before
/// (consolidation keeps one of two near-duplicates) counts as not kept, though its content is
/// there; a refused turn counts as not kept too.
pub fn stream_transition(
    conv: &Conversation,
    resolved: &[ResolvedQuestion],
    embedder: &NamedEmbedder,
    backend: &Backend,
) -> memory_core::Result<TransitionOutcome> {
    let times = session_times(conv);
    let clock = Arc::new(ManualClock::new(times.first().copied().unwrap_or_default()));
    let memory = open_store(backend, embedder, clock.clone())?;
    let agent = conv.sample_id.as_str();
    let mut turn_ids: Vec<Option<EntryId>> = Vec::with_capacity(conv.turns());
    let mut out = TransitionOutcome::default();
    for (session, time) in conv.sessions.iter().zip(&times) {
        // Never back in time: a long session may run past the next one's start.
        if *time > clock.now() {
            clock.set(*time);
        }
        for t in &session.turns {
            let id = turn_written(memory.append(entry_for(
                conv,
                session.number,
                session.date_time.as_deref(),
                t,
            )))?;
            out.rejected_turns += usize::from(id.is_none());
            turn_ids.push(id);
            clock.advance(TURN_GAP);
        }
        memory.consolidate()?;
    }
    clock.advance(memory.config().stm_ttl + Duration::from_secs(60));
    memory.consolidate()?;
    out.left_in_stm = memory.stats()?.stm_entries;

    let mut stored = vec![false; turn_ids.len()];
    for (i, id) in turn_ids.iter().enumerate() {
        if let Some(id) = id {
            stored[i] = memory.get(agent, *id)?.is_some();
        }
    }
    let evidence: HashSet<usize> = resolved
        .iter()
        .flat_map(|r| r.evidence.iter().copied())
        .collect();
    out.turns = turn_ids.len();
    out.stored = stored.iter().filter(|s| **s).count();
    out.evidence_turns = evidence.len();
    out.evidence_stored = evidence.iter().filter(|&&i| stored[i]).count();
    Ok(out)
}

/// One line of the quality table: a dataset, embedder, mode and category (`all` for every
/// question).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QualityRow {
    pub dataset: String,
    pub embedder: String,
    /// The long-term backend ([`Backend::name`]).
    pub backend: String,
    pub mode: String,
    pub category: String,
    pub questions: usize,
    /// Metric name → mean.
    pub metrics: BTreeMap<String, f64>,
}

/// One line of the transition table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TransitionRow {
    pub dataset: String,
    pub embedder: String,
    pub backend: String,
    #[serde(flatten)]
    pub outcome: TransitionOutcome,
    pub evidence_kept: f64,
    pub turns_kept: f64,
}

/// Groups question outcomes into rows: per mode, `all` first, then each category.
pub fn rows(
    dataset: &str,
    embedder: &str,
    backend: &str,
    outcomes: &[QuestionOutcome],
) -> Vec<QualityRow> {
    let mut tallies: BTreeMap<(usize, String), Tally> = BTreeMap::new();
    for o in outcomes {
        tallies
            .entry((o.mode, "all".into()))
            .or_default()
            .add(&o.scores);
        tallies
            .entry((o.mode, o.category.clone()))
            .or_default()
            .add(&o.scores);
    }
    let mut out = Vec::new();
    for (mode_index, (mode, _)) in MODES.iter().enumerate() {
        let mut mine: Vec<(&String, &Tally)> = tallies
            .iter()
            .filter(|((m, _), _)| *m == mode_index)
            .map(|((_, c), t)| (c, t))
            .collect();
        // "all" first, then categories in order.
        mine.sort_by_key(|(c, _)| (c.as_str() != "all", c.to_string()));
        for (category, tally) in mine {
            out.push(QualityRow {
                dataset: dataset.to_string(),
                embedder: embedder.to_string(),
                backend: backend.to_string(),
                mode: mode.to_string(),
                category: category.clone(),
                questions: tally.questions,
                metrics: METRICS
                    .iter()
                    .zip(tally.means())
                    .map(|(m, v)| (m.to_string(), v))
                    .collect(),
            });
        }
    }
    out
}

/// The quality table as text.
pub fn format_table(rows: &[QualityRow], transitions: &[TransitionRow]) -> String {
    let mut out = String::new();
    let shown = [
        "r@1", "r@5", "r@10", "any@10", "all@10", "mrr@10", "ctx@500", "ctx@1000", "ctx@2000",
    ];
    let _ = write!(
        out,
        "{:<12} {:<10} {:<9} {:<12} {:<16} {:>5}",
        "dataset", "embedder", "store", "mode", "category", "n"
    );
    for m in shown {
        let _ = write!(out, " {m:>8}");
    }
    out.push('\n');
    for r in rows {
        let name = category_name(&r.category);
        let category = if name == r.category {
            name.to_string()
        } else {
            format!("{} {name}", r.category)
        };
        let _ = write!(
            out,
            "{:<12} {:<10} {:<9} {:<12} {:<16} {:>5}",
            r.dataset, r.embedder, r.backend, r.mode, category, r.questions
        );
        for m in shown {
            let _ = write!(out, " {:>8.3}", r.metrics.get(m).copied().unwrap_or(0.0));
        }
        out.push('\n');
    }
    if !transitions.is_empty() {
        out.push_str("\ntransition (append, consolidate after each session and past the TTL):\n");
        for t in transitions {
            let o = &t.outcome;
            let _ = writeln!(
                out,
                "{:<12} {:<10} {:<9} evidence kept {:.3} ({} of {}), turns kept {:.3} ({} of {}), left in STM {}",
                t.dataset,
                t.embedder,
                t.backend,
                t.evidence_kept,
                o.evidence_stored,
                o.evidence_turns,
                t.turns_kept,
                o.stored,
                o.turns,
                o.left_in_stm
            );
        }
    }
    out
}

/// Each backend's overall figures beside the embedded default's, per dataset, embedder and
/// mode: the side-by-side parity table of the quality bench.
pub fn format_parity(rows: &[QualityRow]) -> String {
    const SHOWN: [&str; 4] = ["r@5", "r@10", "mrr@10", "ctx@1000"];
    let embedded = Backend::Embedded.name();
    let base: BTreeMap<(&str, &str, &str), &QualityRow> = rows
        .iter()
        .filter(|r| r.category == "all" && r.backend == embedded)
        .map(|r| {
            (
                (r.dataset.as_str(), r.embedder.as_str(), r.mode.as_str()),
                r,
            )
        })
        .collect();
    let mut out = String::new();
    let _ = write!(
        out,
        "{:<12} {:<10} {:<9} {:<12}",
        "dataset", "embedder", "store", "mode"
    );
    for m in SHOWN {
        let _ = write!(out, " {:>16}", format!("{m} (vs {embedded})"));
    }
    out.push('\n');
    for r in rows
        .iter()
        .filter(|r| r.category == "all" && r.backend != embedded)
    {
        let Some(b) = base.get(&(r.dataset.as_str(), r.embedder.as_str(), r.mode.as_str())) else {
            continue;
        };
        let _ = write!(
            out,
            "{:<12} {:<10} {:<9} {:<12}",
            r.dataset, r.embedder, r.backend, r.mode
        );
        for m in SHOWN {
            let mine = r.metrics.get(m).copied().unwrap_or(0.0);
            let theirs = b.metrics.get(m).copied().unwrap_or(0.0);
            let _ = write!(out, " {:>16}", format!("{mine:.3} ({:+.3})", mine - theirs));
        }
        out.push('\n');
    }
    out
}

/// Writes the tables and the evidence reports as JSON to `path`, creating its directory.
pub fn write_json(
    path: &Path,
    rows: &[QualityRow],
    transitions: &[TransitionRow],
    datasets: &[serde_json::Value],
) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let doc = json!({
        "description": "retrieval quality on LoCoMo-format conversations: recall of evidence \
            turns in the top k per search mode, MRR, evidence inside packed contexts, and \
            transition accuracy through short-term memory",
        "k": K,
        "context_budgets": CONTEXT_BUDGETS,
        "context_search_k": CONTEXT_BUDGETS.map(context_search_k),
        "datasets": datasets,
        "rows": rows,
        "transition": transitions,
    });
    let text = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?;
    std::fs::write(path, text)
}

/// A name usable in a benchmark id: lowercase letters, digits, `-` and `_` (others become `_`).
pub fn id_part(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "dataset".to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversations::{generate, ConversationConfig};
    use crate::locomo::Dataset;

    #[test]
    fn recall_counts_the_share_of_evidence_in_the_top_k() {
        let ranking = [7, 3, 9, 1, 4, 8];
        assert_eq!(recall_at(&[3], &ranking, 1), 0.0);
        assert_eq!(recall_at(&[3], &ranking, 2), 1.0);
        assert_eq!(recall_at(&[3, 4], &ranking, 2), 0.5);
        assert_eq!(recall_at(&[3, 4], &ranking, 5), 1.0);
        assert_eq!(
            recall_at(&[3, 42], &ranking, 10),
            0.5,
            "k beyond the ranking"
        );
        assert_eq!(recall_at::<i32>(&[], &ranking, 5), 0.0);
    }

    #[test]
    fn any_and_all_evidence_differ_on_multi_turn_evidence() {
        let ranking = [7, 3, 9, 1, 4];
        assert_eq!(any_at(&[3, 42], &ranking, 5), 1.0);
        assert_eq!(all_at(&[3, 42], &ranking, 5), 0.0);
        assert_eq!(all_at(&[3, 4], &ranking, 5), 1.0);
        assert_eq!(all_at(&[3, 4], &ranking, 4), 0.0);
        assert_eq!(any_at(&[42], &ranking, 5), 0.0);
        assert_eq!(all_at::<i32>(&[], &ranking, 5), 0.0);
    }

    #[test]
    fn reciprocal_rank_is_that_of_the_first_evidence_within_k() {
        let ranking = [7, 3, 9, 1, 4];
        assert_eq!(reciprocal_rank(&[7], &ranking, 10), 1.0);
        assert_eq!(reciprocal_rank(&[9, 4], &ranking, 10), 1.0 / 3.0);
        assert_eq!(reciprocal_rank(&[4], &ranking, 4), 0.0);
        assert_eq!(reciprocal_rank(&[42], &ranking, 10), 0.0);
    }

    #[test]
    fn tallies_average_per_question() {
        let mut t = Tally::default();
        t.add(&ranking_scores(&[1], &[1, 2, 3]));
        t.add(&ranking_scores(&[3, 9], &[1, 2, 3]));
        let m = t.means();
        assert_eq!(t.questions, 2);
        assert_eq!(m[0], 0.5, "r@1");
        assert_eq!(m[2], 0.75, "r@10: 1 and 0.5");
        assert_eq!(m[4], 1.0, "any@10");
        assert_eq!(m[6], 0.5, "all@10");
        assert_eq!(m[7], (1.0 + 1.0 / 3.0) / 2.0, "mrr@10");
    }

    #[test]
    fn rows_put_all_first_then_each_category_per_mode() {
        let mk = |mode, cat: &str, r1| QuestionOutcome {
            mode,
            category: cat.into(),
            scores: {
                let mut s = [0.0; METRICS.len()];
                s[0] = r1;
                s
            },
        };
        let outcomes = [mk(0, "4", 1.0), mk(0, "2", 0.0), mk(3, "4", 1.0)];
        let r = rows("d", "e", "embedded", &outcomes);
        let keys: Vec<(&str, &str, usize)> = r
            .iter()
            .map(|r| (r.mode.as_str(), r.category.as_str(), r.questions))
            .collect();
        assert_eq!(
            keys,
            [
                ("keyword", "all", 2),
                ("keyword", "2", 1),
                ("keyword", "4", 1),
                ("hybrid", "all", 1),
                ("hybrid", "4", 1)
            ]
        );
        assert_eq!(r[0].metrics["r@1"], 0.5);
        let table = format_table(&r, &[]);
        assert!(
            table.contains("2 temporal") && table.contains("4 single-hop"),
            "{table}"
        );
    }

    #[test]
    fn the_parity_table_sets_each_backend_beside_the_embedded_store() {
        let row = |backend: &str, mode: &str, r10: f64| QualityRow {
            dataset: "d".into(),
            embedder: "hashing".into(),
            backend: backend.into(),
            mode: mode.into(),
            category: "all".into(),
            questions: 3,
            metrics: [("r@10".to_string(), r10)].into_iter().collect(),
        };
        let rows = [
            row("embedded", "keyword", 0.5),
            row("embedded", "hybrid", 0.6),
            row("postgres", "keyword", 0.5),
            row("postgres", "hybrid", 0.55),
        ];
        let table = format_parity(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(
            lines[1].contains("postgres") && lines[1].contains("0.500 (+0.000)"),
            "{table}"
        );
        assert!(
            lines[2].contains("hybrid") && lines[2].contains("0.550 (-0.050)"),
            "{table}"
        );
    }

    #[test]
    fn ids_are_made_safe() {
        assert_eq!(id_part("LoCoMo 10.v2"), "locomo_10_v2");
        assert_eq!(id_part(""), "dataset");
    }

    #[test]
    fn session_times_are_strictly_increasing_even_when_dates_are_missing_or_repeat() {
        let text = r#"[{"sample_id": "s", "conversation": {
            "session_1_date_time": "1:00 pm on 8 May, 2023", "session_1": [{"speaker": "A", "dia_id": "D1:1", "text": "a"}],
            "session_2": [{"speaker": "A", "dia_id": "D2:1", "text": "b"}],
            "session_3_date_time": "1:00 pm on 8 May, 2023", "session_3": [{"speaker": "A", "dia_id": "D3:1", "text": "c"}],
            "session_4_date_time": "9:00 am on 1 June, 2023", "session_4": [{"speaker": "A", "dia_id": "D4:1", "text": "d"}]}}]"#;
        let d = Dataset::parse(text, Path::new("t")).unwrap();
        let t = session_times(&d.conversations[0]);
        let day = 86_400_000_000;
        assert_eq!(t[0].0, 1_683_550_800_000_000);
        assert_eq!(t[1].0, t[0].0 + day);
        assert_eq!(t[2].0, t[1].0 + day);
        assert_eq!(
            t[3].0,
            SessionDate::parse("9:00 am on 1 June, 2023")
                .unwrap()
                .unix_micros()
        );
    }

    /// `run` (retrieval or transition) on the first conversation of `d`, with the hashing
    /// embedder and the embedded store.
    fn on_the_first_conversation<T>(
        d: &Dataset,
        run: fn(
            &Conversation,
            &[ResolvedQuestion],
            &NamedEmbedder,
            &Backend,
        ) -> memory_core::Result<T>,
    ) -> T {
        let conv = &d.conversations[0];
        let (resolved, _) = conv.resolve();
        run(
            conv,
            &resolved,
            &NamedEmbedder::hashing(),
            &Backend::Embedded,
        )
        .unwrap()
    }

    #[test]
    fn a_question_quoting_its_evidence_is_found_first_by_keyword_search() {
        let text = r#"[{"sample_id": "s", "conversation": {"speaker_a": "Ana", "speaker_b": "Ben",
            "session_1_date_time": "1:00 pm on 8 May, 2023", "session_1": [
              {"speaker": "Ana", "dia_id": "D1:1", "text": "Hello there"},
              {"speaker": "Ben", "dia_id": "D1:2", "text": "My zebra Quintus eats marmalade"},
              {"speaker": "Ana", "dia_id": "D1:3", "text": "The weather is grey"}]},
            "qa": [{"question": "zebra Quintus marmalade", "answer": "x", "evidence": ["D1:2"], "category": 4}]}]"#;
        let d = Dataset::parse(text, Path::new("t")).unwrap();
        let out = on_the_first_conversation(&d, evaluate_retrieval);
        assert_eq!(out.questions.len(), MODES.len());
        let keyword = &out.questions[0];
        assert_eq!(keyword.scores[0], 1.0, "r@1");
        assert_eq!(keyword.scores[7], 1.0, "mrr@10");
        assert_eq!(keyword.scores[CTX_FIRST], 1.0, "in a 500-token context");
    }

    /// A turn the store refuses (oversized text) cannot be found: as evidence it counts as a
    /// miss, also when it is a question's only evidence, rather than leaving the question or
    /// its share of the evidence out of the figures.
    #[test]
    fn refused_evidence_turns_count_as_missed() {
        let huge = "zebra ".repeat(20_000);
        let text = format!(
            r#"[{{"sample_id": "s", "conversation": {{"speaker_a": "Ana", "speaker_b": "Ben",
            "session_1_date_time": "1:00 pm on 8 May, 2023", "session_1": [
              {{"speaker": "Ana", "dia_id": "D1:1", "text": "My zebra Quintus eats marmalade"}},
              {{"speaker": "Ben", "dia_id": "D1:2", "text": "{huge}"}}]}},
            "qa": [{{"question": "zebra Quintus marmalade", "evidence": ["D1:1", "D1:2"], "category": 1}},
                   {{"question": "zebra", "evidence": ["D1:2"], "category": 2}}]}}]"#
        );
        let d = Dataset::parse(&text, Path::new("t")).unwrap();
        let out = on_the_first_conversation(&d, evaluate_retrieval);
        assert_eq!((out.rejected_turns, out.rejected_evidence), (1, 2));
        assert_eq!(
            out.questions.len(),
            2 * MODES.len(),
            "both questions scored"
        );
        let keyword = &out.questions[0];
        assert_eq!(
            keyword.scores[2], 0.5,
            "r@10: one of two evidence turns found"
        );
        for only_refused in &out.questions[MODES.len()..] {
            assert_eq!(only_refused.scores, [0.0; METRICS.len()]);
        }
        let streamed = on_the_first_conversation(&d, stream_transition);
        assert_eq!(streamed.rejected_turns, 1);
        assert_eq!(streamed.turns, 2);
    }

    #[test]
    fn the_default_policy_streams_a_small_conversation_without_losing_track_of_it() {
        let d = generate(&ConversationConfig::small());
        let out = on_the_first_conversation(&d, stream_transition);
        assert_eq!(out.turns, d.conversations[0].turns());
        assert_eq!(out.rejected_turns, 0);
        assert_eq!(
            out.left_in_stm, 0,
            "every session expired and was consolidated"
        );
        assert!(out.evidence_turns > 0);
        assert!(out.stored <= out.turns && out.evidence_stored <= out.evidence_turns);
    }

    #[test]
    fn the_generated_dataset_is_not_solved_by_keywords_alone() {
        let d = generate(&ConversationConfig::small());
        let mut outcomes = Vec::new();
        for conv in &d.conversations {
            let (resolved, _) = conv.resolve();
            outcomes.extend(
                evaluate_retrieval(
                    conv,
                    &resolved,
                    &NamedEmbedder::hashing(),
                    &Backend::Embedded,
                )
                .unwrap()
                .questions,
            );
        }
        let r = rows("g", "hashing", "embedded", &outcomes);
        let keyword = &r[0];
        assert_eq!(
            (keyword.mode.as_str(), keyword.category.as_str()),
            ("keyword", "all")
        );
        let r10 = keyword.metrics["r@10"];
        assert!(r10 > 0.1 && r10 < 0.95, "keyword r@10 {r10}");
    }
}
