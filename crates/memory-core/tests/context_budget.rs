//! Property-style checks of the context builder over many generated inputs (seeded, so a failure
//! replays): the budget is never exceeded, multi-byte text is cut on char boundaries, and every
//! input item is either shown whole or reported as left out.

use std::collections::BTreeMap;
use std::sync::Arc;

use memory_core::context::{
    Context, ContextBuilder, ContextMaterial, OmissionReason, OmittedItem, SectionKind,
    ToolDefinition, TRUNCATION_MARKER,
};
use memory_core::tokens::{HeuristicCounter, TokenCounter};
use memory_core::{EntryId, Error, MemoryEntry, Role, ScoreComponents, SearchHit, Tier, Timestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PIECES: &[&str] = &[
    "the",
    "memory",
    "agent",
    "Lisbon",
    "42",
    "3.14159",
    "naïve",
    "café",
    "Grüße",
    "東京",
    "日本語の文章",
    "привет",
    "мир",
    "😀",
    "👩‍💻",
    "🇵🇹",
    "\n",
    "\n\n",
    "  ",
    "{",
    "}",
    "\"key\":",
    "x",
    "é",
    "ß",
    "中",
    "—",
    "…",
    "\t",
    "https://example.invalid/a?b=c",
];

fn text(rng: &mut StdRng, max_pieces: usize) -> String {
    let n = rng.random_range(1..=max_pieces);
    let mut s = String::new();
    for i in 0..n {
        if i > 0 && rng.random_bool(0.7) {
            s.push(' ');
        }
        s.push_str(PIECES[rng.random_range(0..PIECES.len())]);
    }
    if s.trim().is_empty() {
        s.push('x');
    }
    s
}

fn entry(id: u64, role: Role, content: String) -> MemoryEntry {
    MemoryEntry {
        id: EntryId(id),
        agent_id: Arc::from("a"),
        session_id: Arc::from("s"),
        role,
        content,
        embedding: None,
        importance: Some(0.5),
        created_at: Timestamp(0),
        last_accessed_at: Timestamp(0),
        access_count: 0,
        metadata: serde_json::Value::Null,
        tier: Tier::ShortTerm,
    }
}

struct Input {
    system: String,
    tools: Vec<ToolDefinition>,
    turns: Vec<MemoryEntry>,
    hits: Vec<SearchHit>,
    budget: usize,
    share: f32,
    min_trunc: usize,
}

fn generate(rng: &mut StdRng) -> Input {
    let system = if rng.random_bool(0.1) {
        String::new()
    } else {
        text(rng, 30)
    };
    let tools = (0..rng.random_range(0..4))
        .map(|i| {
            let schema = format!(
                r#"{{"type":"object","properties":{{"p{i}":{{"type":"string","description":{}}}}}}}"#,
                serde_json::to_string(&text(rng, 8)).unwrap()
            );
            ToolDefinition::from_json_schema(format!("tool_{i}"), text(rng, 10), &schema).unwrap()
        })
        .collect();
    // Ids overlap on purpose so that memories duplicate turns and each other.
    let turns = (0..rng.random_range(0..12))
        .map(|_| {
            let role = Role::ALL[rng.random_range(0..Role::ALL.len())];
            entry(rng.random_range(0..40), role, text(rng, 60))
        })
        .collect();
    let hits = (0..rng.random_range(0..12))
        .map(|_| SearchHit {
            entry: std::sync::Arc::new(entry(rng.random_range(0..40), Role::User, text(rng, 60))),
            score: if rng.random_bool(0.05) {
                f32::NAN
            } else {
                rng.random_range(0.0..1.0)
            },
            components: ScoreComponents::default(),
        })
        .collect();
    Input {
        system,
        tools,
        turns,
        hits,
        budget: rng.random_range(0..900),
        share: rng.random_range(0.0..=1.0),
        min_trunc: rng.random_range(0..20),
    }
}

/// Charges more for a long text than for its parts, so the builder's per-item estimate is too
/// low and only its measure-and-repack step keeps the budget.
struct SuperadditiveCounter;
impl TokenCounter for SuperadditiveCounter {
    fn count(&self, text: &str) -> usize {
        let n = text.chars().count();
        n + n * n / 4000
    }
}

/// Checks every invariant of one built context against its input.
fn check(ctx: &Context, input: &Input, counter: &dyn TokenCounter, case: usize) -> usize {
    let rendered = ctx.render();
    assert_eq!(ctx.total_tokens, counter.count(&rendered), "case {case}");
    assert!(
        ctx.total_tokens <= input.budget,
        "case {case}: rendered {} > budget {}",
        ctx.total_tokens,
        input.budget
    );
    let sum: usize = ctx.sections.iter().map(|s| s.tokens).sum();
    assert!(sum <= input.budget, "case {case}: sections sum {sum}");
    for s in &ctx.sections {
        assert_eq!(s.tokens, counter.count(&s.text), "case {case}");
    }

    // No entry shown twice anywhere.
    let mut shown = BTreeMap::new();
    for s in &ctx.sections {
        for id in &s.entries {
            assert!(
                shown.insert(*id, s.kind).is_none(),
                "case {case}: {id} twice"
            );
        }
    }

    // Every turn and memory is shown, or reported, and a truncated one is a char-boundary prefix
    // of its content that appears in the prompt with the marker.
    let omitted_turns: Vec<(EntryId, OmissionReason)> = ctx
        .omitted
        .iter()
        .filter_map(|o| match o.item {
            OmittedItem::Turn { id } => Some((id, o.reason)),
            _ => None,
        })
        .collect();
    let omitted_memories: Vec<(EntryId, OmissionReason)> = ctx
        .omitted
        .iter()
        .filter_map(|o| match o.item {
            OmittedItem::Memory { id, .. } => Some((id, o.reason)),
            _ => None,
        })
        .collect();
    let conv = ctx
        .section(SectionKind::Conversation)
        .map_or(0, |s| s.entries.len());
    let mems = ctx
        .section(SectionKind::Memories)
        .map_or(0, |s| s.entries.len());
    let truncated = |v: &[(EntryId, OmissionReason)]| {
        v.iter()
            .filter(|(_, r)| matches!(r, OmissionReason::Truncated { .. }))
            .count()
    };
    assert_eq!(
        conv + omitted_turns.len() - truncated(&omitted_turns),
        input.turns.len(),
        "case {case}: turns not accounted for"
    );
    assert_eq!(
        mems + omitted_memories.len() - truncated(&omitted_memories),
        input.hits.len(),
        "case {case}: memories not accounted for"
    );
    assert!(truncated(&omitted_turns) <= 1 && truncated(&omitted_memories) <= 1);
    let turn_sources = input.turns.iter().map(|t| (t.id, &t.content));
    let memory_sources = input.hits.iter().map(|h| (h.entry.id, &h.entry.content));
    for (omitted, sources) in [
        (&omitted_turns, turn_sources.collect::<Vec<_>>()),
        (&omitted_memories, memory_sources.collect()),
    ] {
        for (id, reason) in omitted.iter() {
            let OmissionReason::Truncated {
                kept_bytes,
                original_bytes,
            } = *reason
            else {
                continue;
            };
            assert!(
                shown.contains_key(id),
                "case {case}: truncated {id} not shown"
            );
            assert!(kept_bytes > 0 && kept_bytes < original_bytes, "case {case}");
            // Ids repeat in generated input; one source with this id and length must match.
            let found = sources.iter().any(|(sid, c)| {
                sid == id
                    && c.len() == original_bytes
                    && c.is_char_boundary(kept_bytes)
                    && rendered.contains(&format!("{}{TRUNCATION_MARKER}\n", &c[..kept_bytes]))
            });
            assert!(
                found,
                "case {case}: truncated {id} is not a prefix of its content"
            );
        }
    }
    let tool_sections = ctx.section(SectionKind::Tools);
    let shown_tools = input
        .tools
        .iter()
        .filter(|t| tool_sections.is_some_and(|s| s.text.contains(&format!("- {}", t.name()))))
        .count();
    let omitted_tools = ctx
        .omitted
        .iter()
        .filter(|o| matches!(o.item, OmittedItem::Tool { .. }))
        .count();
    assert_eq!(
        shown_tools + omitted_tools,
        input.tools.len(),
        "case {case}"
    );
    truncated(&omitted_turns) + truncated(&omitted_memories)
}

/// Builds `cases` generated requests; returns (built, rejected as too small, truncated items).
fn run(counter: Arc<dyn TokenCounter>, seed: u64, cases: usize) -> (usize, usize, usize) {
    let builder = ContextBuilder::new(Arc::clone(&counter));
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut built, mut too_small, mut truncations) = (0, 0, 0);
    for case in 0..cases {
        let input = generate(&mut rng);
        let req = ContextMaterial::new(&input.system, input.budget)
            .with_tools(&input.tools)
            .with_recent_turns(&input.turns)
            .with_memories(&input.hits)
            .with_memory_share(input.share)
            .with_min_truncation_tokens(input.min_trunc);
        match builder.build(&req) {
            Ok(ctx) => {
                truncations += check(&ctx, &input, &*counter, case);
                built += 1;
            }
            Err(Error::BudgetTooSmall { budget, needed }) => {
                assert_eq!(budget, input.budget);
                assert!(needed > budget, "case {case}");
                too_small += 1;
            }
            Err(e) => panic!("case {case}: unexpected error {e}"),
        }
    }
    (built, too_small, truncations)
}

#[test]
fn generated_contexts_never_exceed_the_budget_with_the_heuristic_counter() {
    let (built, too_small, truncations) = run(Arc::new(HeuristicCounter), 0x5eed_0001, 1500);
    // The generator must exercise every outcome, or this test checks less than it claims.
    assert!(
        built > 1000 && too_small > 10 && truncations > 200,
        "{built} built, {too_small} too small, {truncations} truncated"
    );
}

#[test]
fn generated_contexts_never_exceed_the_budget_with_a_superadditive_counter() {
    let (built, _, truncations) = run(Arc::new(SuperadditiveCounter), 0x5eed_0002, 800);
    assert!(
        built > 500 && truncations > 100,
        "{built} built, {truncations} truncated"
    );
}

#[cfg(feature = "cl100k")]
#[test]
fn generated_contexts_never_exceed_the_budget_with_the_cl100k_counter() {
    let counter = memory_core::tokens::Cl100kCounter::new().unwrap();
    let (built, _, truncations) = run(Arc::new(counter), 0x5eed_0003, 300);
    assert!(
        built > 200 && truncations > 30,
        "{built} built, {truncations} truncated"
    );
}
