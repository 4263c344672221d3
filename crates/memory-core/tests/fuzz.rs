//! The public API, fuzzed: random sequences of insert / insert_batch / append / search /
//! build_context / forget / consolidate / reopen / time passing, with random and hostile inputs
//! (empty, huge and unicode texts; NaN, infinite, subnormal, huge and zero vectors; importance out
//! of range; metadata nested past any limit). After every step the store must hold exactly what
//! was acknowledged:
//!
//! - no operation panics; bad input is an `Err`, and an `Err` changes nothing;
//! - every acknowledged long-term write reads back unchanged, also after a reopen;
//! - `count` and `list` of each agent are exact;
//! - no search or prompt holds another agent's entry, no prompt is over its budget;
//! - the store always reopens, with nothing set aside.
//!
//! `PROPTEST_CASES` sets the number of sequences (default 48, what `.ci/run` runs; try 2000 for a
//! longer hunt). A failing sequence is shrunk and saved under `proptest-regressions/`, which is
//! committed: every case ever found runs again first.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use memory_core::{
    ContextQuery, EntryId, Error, ManualClock, Memory, MemoryConfig, NewEntry, Role, SearchMode,
    SearchQuery, Tiers, Timestamp,
};
use proptest::prelude::*;

const DIM: usize = 8;
const AGENTS: [&str; 3] = ["ada", "bob", "cyd"];

fn config() -> MemoryConfig {
    MemoryConfig {
        embedding_dim: DIM,
        stm_capacity: 4,
        stm_ttl: Duration::from_secs(3600),
        max_content_bytes: 4 * 1024,
        max_query_bytes: 4 * 1024,
        max_metadata_bytes: 1024,
        max_metadata_depth: 16,
        ..MemoryConfig::default()
    }
}

/// A text: ordinary words, unicode, control characters, blank, or over the size limit.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z]{1,8}( [a-z]{1,8}){0,12}",
        2 => "\\PC{0,40}",
        1 => Just(String::new()),
        1 => Just("  \n\t ".to_string()),
        1 => Just("nul\0byte and \u{202e}rtl\u{202c} and e\u{301} 🦀".to_string()),
        1 => (4_000usize..6_000).prop_map(|n| "x".repeat(n)),
    ]
}

fn float() -> impl Strategy<Value = f32> {
    prop_oneof![
        6 => -1.0f32..1.0,
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
        1 => Just(-f32::INFINITY),
        1 => Just(1e-45f32),
        1 => Just(f32::MAX),
        1 => Just(0.0f32),
        1 => Just(-f32::MIN_POSITIVE / 4.0),
    ]
}

/// A vector: none, random (maybe with hostile values), all zeros, or the wrong length.
fn vector() -> impl Strategy<Value = Option<Vec<f32>>> {
    prop_oneof![
        4 => Just(None),
        4 => prop::collection::vec(-1.0f32..1.0, DIM).prop_map(Some),
        2 => prop::collection::vec(float(), DIM).prop_map(Some),
        1 => Just(Some(vec![0.0; DIM])),
        1 => prop::collection::vec(-1.0f32..1.0, 0..12).prop_map(Some),
    ]
}

fn importance() -> impl Strategy<Value = f32> {
    prop_oneof![8 => 0.0f32..=1.0, 1 => Just(f32::NAN), 1 => Just(-0.5f32), 1 => Just(1.5f32)]
}

/// Metadata: none, a small object, or nested `depth` levels deep (past the limit of 16 too).
fn metadata() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        4 => Just(serde_json::Value::Null),
        3 => ("[a-z]{1,6}", "\\PC{0,20}").prop_map(|(k, v)| serde_json::json!({ k: v })),
        2 => (0usize..40).prop_map(|depth| {
            let mut v = serde_json::json!("leaf");
            for _ in 0..depth {
                v = serde_json::json!([v]);
            }
            v
        }),
        1 => Just(serde_json::json!({ "blob": "y".repeat(2_000) })),
    ]
}

#[derive(Clone, Debug)]
struct Input {
    agent: usize,
    session: usize,
    text: String,
    vector: Option<Vec<f32>>,
    importance: f32,
    metadata: serde_json::Value,
}

fn input() -> impl Strategy<Value = Input> {
    (
        0..AGENTS.len(),
        0..3usize,
        text(),
        vector(),
        importance(),
        metadata(),
    )
        .prop_map(
            |(agent, session, text, vector, importance, metadata)| Input {
                agent,
                session,
                text,
                vector,
                importance,
                metadata,
            },
        )
}

impl Input {
    fn entry(&self) -> NewEntry {
        let mut e = NewEntry::new(
            AGENTS[self.agent],
            format!("s{}", self.session),
            Role::User,
            self.text.clone(),
        )
        .with_importance(self.importance)
        .with_metadata(self.metadata.clone());
        if let Some(v) = &self.vector {
            e = e.with_embedding(v.clone());
        }
        e
    }
}

#[derive(Clone, Debug)]
enum Op {
    Insert(Input),
    InsertBatch(Vec<Input>),
    Append(Input),
    Search {
        agent: usize,
        text: String,
        vector: Option<Vec<f32>>,
        k: usize,
        mode: SearchMode,
        tiers: Tiers,
    },
    BuildContext {
        agent: usize,
        session: usize,
        text: String,
        budget: usize,
    },
    /// Forgets the `pick`-th acknowledged entry (mod their number), or a random id.
    Forget {
        agent: usize,
        pick: usize,
    },
    Consolidate,
    Reopen,
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let mode = prop_oneof![
        Just(SearchMode::Keyword),
        Just(SearchMode::Vector),
        Just(SearchMode::ExactVector),
        Just(SearchMode::Hybrid),
    ];
    let tiers = prop_oneof![
        Just(Tiers::Both),
        Just(Tiers::LongTerm),
        Just(Tiers::ShortTerm)
    ];
    prop_oneof![
        6 => input().prop_map(Op::Insert),
        2 => prop::collection::vec(input(), 0..12).prop_map(Op::InsertBatch),
        5 => input().prop_map(Op::Append),
        4 => (0..AGENTS.len(), text(), vector(), 0usize..30, mode, tiers).prop_map(
            |(agent, text, vector, k, mode, tiers)| Op::Search { agent, text, vector, k, mode, tiers }
        ),
        2 => (0..AGENTS.len(), 0..3usize, text(), 0usize..600).prop_map(
            |(agent, session, text, budget)| Op::BuildContext { agent, session, text, budget }
        ),
        2 => (0..AGENTS.len(), any::<usize>()).prop_map(|(agent, pick)| Op::Forget { agent, pick }),
        2 => Just(Op::Consolidate),
        1 => Just(Op::Reopen),
        1 => prop_oneof![Just(60u64), Just(4_000u64)].prop_map(Op::Wait),
    ]
}

/// What the test knows the store holds: every acknowledged long-term entry, and the short-term
/// entries that may still move to long-term memory.
#[derive(Default)]
struct Model {
    ltm: BTreeMap<EntryId, (usize, String)>,
    stm: BTreeMap<EntryId, (usize, String)>,
}

impl Model {
    fn count(&self, agent: usize) -> u64 {
        self.ltm.values().filter(|(a, _)| *a == agent).count() as u64
    }
}

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

/// Every acknowledged long-term entry reads back unchanged, and counts and lists are exact.
fn check_store(m: &Memory, model: &Model, when: &str) -> Result<(), TestCaseError> {
    for (id, (agent, content)) in &model.ltm {
        let got = m
            .get(AGENTS[*agent], *id)
            .map_err(|e| fail(format!("{when}: get {id}: {e}")))?;
        match got {
            Some(e) if e.content == *content => {}
            other => return Err(fail(format!("{when}: entry {id} reads back as {other:?}"))),
        }
        for (other, name) in AGENTS.iter().enumerate() {
            if other != *agent && m.get(name, *id).map_err(|e| fail(e.to_string()))?.is_some() {
                return Err(fail(format!("{when}: {name} sees {id}")));
            }
        }
    }
    for (a, name) in AGENTS.iter().enumerate() {
        let count = m.count(name).map_err(|e| fail(e.to_string()))?;
        let listed = m
            .list(name, &Default::default())
            .map_err(|e| fail(e.to_string()))?
            .len() as u64;
        let expected = model.count(a);
        if count != expected || listed != expected {
            return Err(fail(format!(
                "{when}: {name} has count {count}, list {listed}, expected {expected}"
            )));
        }
    }
    Ok(())
}

/// Short-term entries that consolidation wrote to long-term memory become acknowledged there.
fn settle_promoted(m: &Memory, model: &mut Model) -> Result<(), TestCaseError> {
    let stm: Vec<(EntryId, (usize, String))> =
        model.stm.iter().map(|(k, v)| (*k, v.clone())).collect();
    for (id, (agent, content)) in stm {
        if let Some(e) = m.get(AGENTS[agent], id).map_err(|e| fail(e.to_string()))? {
            if e.content != content {
                return Err(fail(format!("promoted {id} reads back as {:?}", e.content)));
            }
            model.stm.remove(&id);
            model.ltm.insert(id, (agent, content));
        }
    }
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    for backend in common::backends() {
        let store = backend.fresh_store();
        let clock = Arc::new(ManualClock::new(Timestamp(1_700_000_000_000_000)));
        let open = |store: &common::TestStore| {
            store
                .open_with_clock(config(), clock.clone())
                .map_err(|e| fail(format!("{}: open: {e}", store.label())))
        };
        let mut m = open(&store)?;
        let mut model = Model::default();
        for (step, op) in ops.iter().enumerate() {
            let when = format!("{} step {step} ({op:?})", store.label());
            let when: String = if when.chars().count() > 300 {
                when.chars().take(300).chain(['…']).collect()
            } else {
                when
            };
            match op {
                Op::Insert(input) => {
                    if let Ok(id) = m.insert(input.entry()) {
                        model.ltm.insert(id, (input.agent, input.text.clone()));
                    }
                }
                Op::InsertBatch(inputs) => {
                    let batch = inputs.iter().map(Input::entry).collect();
                    if let Ok(ids) = m.insert_batch(batch) {
                        if ids.len() != inputs.len() {
                            return Err(fail(format!("{when}: {} ids", ids.len())));
                        }
                        for (id, input) in ids.into_iter().zip(inputs) {
                            model.ltm.insert(id, (input.agent, input.text.clone()));
                        }
                    }
                }
                Op::Append(input) => {
                    if let Ok(id) = m.append(input.entry()) {
                        model.stm.insert(id, (input.agent, input.text.clone()));
                    }
                }
                Op::Search {
                    agent,
                    text,
                    vector,
                    k,
                    mode,
                    tiers,
                } => {
                    let mut q = SearchQuery::new(AGENTS[*agent], text.clone())
                        .with_k(*k)
                        .with_mode(*mode)
                        .with_tiers(*tiers);
                    if let Some(v) = vector {
                        q = q.with_vector(v.clone());
                    }
                    if let Ok(hits) = m.search(&q) {
                        if hits.len() > *k {
                            return Err(fail(format!("{when}: {} hits for k {k}", hits.len())));
                        }
                        if let Some(h) = hits.iter().find(|h| &*h.entry.agent_id != AGENTS[*agent])
                        {
                            return Err(fail(format!("{when}: foreign hit {:?}", h.entry.id)));
                        }
                    }
                }
                Op::BuildContext {
                    agent,
                    session,
                    text,
                    budget,
                } => {
                    let q = ContextQuery::new(
                        SearchQuery::new(AGENTS[*agent], text.clone()),
                        format!("s{session}"),
                        "You are helpful.",
                        *budget,
                    );
                    if let Ok(ctx) = m.build_context(&q) {
                        if ctx.total_tokens > *budget {
                            return Err(fail(format!("{when}: {} tokens", ctx.total_tokens)));
                        }
                        let ids = ctx.sections.iter().flat_map(|s| s.entries.iter());
                        for id in ids {
                            let foreign = model
                                .ltm
                                .get(id)
                                .or_else(|| model.stm.get(id))
                                .is_some_and(|(a, _)| a != agent);
                            if foreign {
                                return Err(fail(format!("{when}: foreign entry {id} in prompt")));
                            }
                        }
                    }
                }
                Op::Forget { agent, pick } => {
                    let mine: Vec<EntryId> = model
                        .ltm
                        .iter()
                        .filter(|(_, (a, _))| a == agent)
                        .map(|(id, _)| *id)
                        .collect();
                    let id = if mine.is_empty() {
                        EntryId(*pick as u64)
                    } else {
                        mine[pick % mine.len()]
                    };
                    match m.forget(AGENTS[*agent], id) {
                        Ok(existed) => {
                            if existed != model.ltm.contains_key(&id) {
                                return Err(fail(format!("{when}: forget said {existed}")));
                            }
                            model.ltm.remove(&id);
                        }
                        Err(e) => return Err(fail(format!("{when}: {e}"))),
                    }
                }
                Op::Consolidate => {
                    m.consolidate()
                        .map_err(|e| fail(format!("{when}: consolidate: {e}")))?;
                    settle_promoted(&m, &mut model)?;
                }
                Op::Reopen => {
                    m.flush().map_err(|e| fail(format!("{when}: flush: {e}")))?;
                    drop(m);
                    m = open(&store)?;
                    // Short-term memory in RAM is gone with the handle; in Redis it stays.
                    if !store.backend.short_term_survives_reopen() {
                        model.stm.clear();
                    }
                    let report = m.check_integrity().map_err(|e| fail(e.to_string()))?;
                    if !report.quarantined.is_empty() {
                        return Err(fail(format!("{when}: set aside {report:?}")));
                    }
                }
                Op::Wait(secs) => clock.advance(Duration::from_secs(*secs)),
            }
            check_store(&m, &model, &when)?;
        }
        drop(m);
        let m = open(&store)?;
        check_store(
            &m,
            &model,
            &format!("{} after the final reopen", store.label()),
        )?;
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_operation_sequences_keep_every_acknowledged_write(
        ops in prop::collection::vec(op(), 1..40)
    ) {
        run(ops)?;
    }
}

/// Inputs the issue names, each once, outside the random search.
#[test]
fn hostile_inputs_named_in_the_issue_are_errors_or_stored_and_read_back() {
    let tiny = Input {
        agent: 0,
        session: 0,
        text: "subnormal".into(),
        vector: Some(vec![1e-45, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        importance: 1.0,
        metadata: serde_json::Value::Null,
    };
    let deep = Input {
        metadata: {
            let mut v = serde_json::json!(1);
            for _ in 0..128 {
                v = serde_json::json!([v]);
            }
            v
        },
        text: "deep".into(),
        vector: None,
        ..tiny.clone()
    };
    run(vec![
        Op::Insert(tiny.clone()),
        Op::Append(tiny),
        Op::Insert(deep.clone()),
        Op::Append(deep),
        Op::Wait(4_000),
        Op::Consolidate,
        Op::Reopen,
        Op::Consolidate,
    ])
    .unwrap();
    let store = common::Backend::Embedded.fresh_store();
    let m = store.open(config()).unwrap();
    let err = m
        .insert(NewEntry::new("a", "s", Role::User, "x").with_embedding(vec![f32::NAN; DIM]))
        .unwrap_err();
    assert!(matches!(err, Error::NonFiniteEmbedding { .. }), "{err}");
}
