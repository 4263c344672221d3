//! The context builder's packing policy, rendering and bad-input errors.

use std::sync::Arc;

use memory_core::context::{
    ContextBuilder, ContextMaterial, OmissionReason, OmittedItem, SectionKind, ToolDefinition,
    TRUNCATION_MARKER,
};
use memory_core::tokens::{HeuristicCounter, TokenCounter};
use memory_core::{EntryId, Error, MemoryEntry, Role, ScoreComponents, SearchHit, Tier, Timestamp};

fn entry(id: u64, role: Role, content: &str) -> MemoryEntry {
    MemoryEntry {
        id: EntryId(id),
        agent_id: Arc::from("agent"),
        session_id: Arc::from("session"),
        role,
        content: content.to_string(),
        embedding: None,
        importance: Some(0.5),
        created_at: Timestamp(id as i64),
        last_accessed_at: Timestamp(id as i64),
        access_count: 0,
        metadata: serde_json::Value::Null,
        tier: Tier::ShortTerm,
    }
}

fn hit(id: u64, score: f32, content: &str) -> SearchHit {
    let mut e = entry(id, Role::User, content);
    e.tier = Tier::LongTerm;
    SearchHit {
        entry: std::sync::Arc::new(e),
        score,
        components: ScoreComponents::default(),
    }
}

fn tool(name: &str) -> ToolDefinition {
    ToolDefinition::from_json_schema(
        name,
        "does a thing",
        r#"{"type":"object","properties":{"q":{"type":"string"}}}"#,
    )
    .unwrap()
}

/// Counts one token per byte: easy to reason about exact budgets in tests.
struct ByteCounter;
impl TokenCounter for ByteCounter {
    fn count(&self, text: &str) -> usize {
        text.len()
    }
}

#[test]
fn everything_fits_in_a_generous_budget_in_the_documented_order() {
    let tools = [tool("search"), tool("calc")];
    let turns = [
        entry(1, Role::User, "hello"),
        entry(2, Role::Assistant, "hi, how can I help?"),
    ];
    let hits = [
        hit(10, 0.9, "the user lives in Lisbon"),
        hit(11, 0.5, "likes tea"),
    ];
    let req = ContextMaterial::new("You are helpful.", 10_000)
        .with_tools(&tools)
        .with_recent_turns(&turns)
        .with_memories(&hits);
    let ctx = ContextBuilder::default().build(&req).unwrap();
    let kinds: Vec<SectionKind> = ctx.sections.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            SectionKind::System,
            SectionKind::Tools,
            SectionKind::Memories,
            SectionKind::Conversation
        ]
    );
    assert!(ctx.omitted.is_empty());
    let prompt = ctx.render();
    assert!(prompt.starts_with("You are helpful.\n\n## Tools\n- search: does a thing\n"));
    assert!(prompt.contains("user: hello\nassistant: hi, how can I help?\n"));
    // Memories best first, conversation oldest first.
    assert_eq!(
        ctx.section(SectionKind::Memories).unwrap().entries,
        [EntryId(10), EntryId(11)]
    );
    assert_eq!(
        ctx.section(SectionKind::Conversation).unwrap().entries,
        [EntryId(1), EntryId(2)]
    );
    assert_eq!(ctx.total_tokens, HeuristicCounter.count(&prompt));
    for s in &ctx.sections {
        assert_eq!(s.tokens, HeuristicCounter.count(&s.text));
    }
}

#[test]
fn budget_below_the_system_prompt_is_a_typed_error() {
    let req = ContextMaterial::new("You are a very careful assistant.", 3);
    match ContextBuilder::default().build(&req) {
        Err(Error::BudgetTooSmall { budget: 3, needed }) => assert!(needed > 3),
        other => panic!("expected BudgetTooSmall, got {other:?}"),
    }
}

#[test]
fn system_prompt_that_exactly_fits_is_accepted_and_nothing_else_is_added() {
    let system = "Be brief.";
    let turns = [entry(1, Role::User, "hello there")];
    let cost = HeuristicCounter.count(&format!("{system}\n\n"));
    let req = ContextMaterial::new(system, cost).with_recent_turns(&turns);
    let ctx = ContextBuilder::default().build(&req).unwrap();
    assert_eq!(ctx.total_tokens, cost);
    assert_eq!(ctx.sections.len(), 1);
    assert_eq!(ctx.omitted[0].item, OmittedItem::Turn { id: EntryId(1) });
    assert_eq!(ctx.omitted[0].reason, OmissionReason::OverBudget);
}

#[test]
fn bad_tool_definitions_are_rejected_with_invalid_tool() {
    assert!(matches!(
        ToolDefinition::from_json_schema("x", "d", "{\"type\": "),
        Err(Error::InvalidTool { .. })
    ));
    assert!(matches!(
        ToolDefinition::from_json_schema("", "d", "{}"),
        Err(Error::InvalidTool { .. })
    ));
    assert!(matches!(
        ToolDefinition::from_json_schema("two words", "d", "{}"),
        Err(Error::InvalidTool { .. })
    ));
    assert!(matches!(
        ToolDefinition::from_json_schema("arr", "d", "[1, 2]"),
        Err(Error::InvalidTool { .. })
    ));
    // A schema built in code, nested deeper than any stack: refused (and taken apart) at
    // construction, where rendering it would have overflowed the stack.
    // (`json!` would copy the inner value recursively at each step.)
    let nest = |inner: serde_json::Value| {
        serde_json::Value::Object(serde_json::Map::from_iter([("p".to_owned(), inner)]))
    };
    let mut deep = serde_json::json!({});
    for _ in 0..200_000 {
        deep = nest(deep);
    }
    assert!(matches!(
        ToolDefinition::new("deep", "d", deep),
        Err(Error::InvalidTool { reason, .. }) if reason.contains("nested deeper")
    ));
    let mut at_limit = serde_json::json!({});
    for _ in 0..memory_core::context::MAX_TOOL_SCHEMA_DEPTH - 1 {
        at_limit = nest(at_limit);
    }
    let tools = [ToolDefinition::new("at_limit", "d", at_limit).unwrap()];
    ContextBuilder::default()
        .build(&ContextMaterial::new("s", 1_000_000).with_tools(&tools))
        .unwrap();
    let tools = [tool("same"), tool("same")];
    let req = ContextMaterial::new("s", 1000).with_tools(&tools);
    assert!(matches!(
        ContextBuilder::default().build(&req),
        Err(Error::InvalidTool { name, .. }) if name == "same"
    ));
}

#[test]
fn memory_share_outside_the_unit_interval_is_rejected() {
    for share in [-0.1, 1.5, f32::NAN] {
        let req = ContextMaterial::new("s", 1000).with_memory_share(share);
        assert!(matches!(
            ContextBuilder::default().build(&req),
            Err(Error::InvalidQuery(_))
        ));
    }
}

#[test]
fn tools_are_dropped_whole_from_the_end() {
    let tools = [tool("first"), tool("second"), tool("third")];
    let builder = ContextBuilder::new(Arc::new(ByteCounter));
    let system = "sys";
    let one_tool = tools[0].name().len();
    // Room for the system section, the tools frame and about two tools, not three.
    let full = builder
        .build(&ContextMaterial::new(system, 100_000).with_tools(&tools))
        .unwrap();
    let tools_len = full.section(SectionKind::Tools).unwrap().tokens;
    let budget = 5 + tools_len - 10 - one_tool;
    let ctx = builder
        .build(&ContextMaterial::new(system, budget).with_tools(&tools))
        .unwrap();
    let text = &ctx.section(SectionKind::Tools).unwrap().text;
    assert!(text.contains("- first:") && text.contains("- second:"));
    assert!(!text.contains("third"));
    assert_eq!(
        ctx.omitted.iter().map(|o| &o.item).collect::<Vec<_>>(),
        [&OmittedItem::Tool {
            name: "third".into()
        }]
    );
    assert!(!ctx.render().contains(TRUNCATION_MARKER));
}

#[test]
fn oldest_turns_are_dropped_first_and_the_boundary_turn_is_truncated() {
    let long = "word ".repeat(40);
    let turns = [
        entry(1, Role::User, "oldest message that should go"),
        entry(2, Role::User, &long),
        entry(3, Role::Assistant, "newest reply"),
    ];
    let builder = ContextBuilder::new(Arc::new(ByteCounter));
    let header = "## Recent conversation\n".len() + 1;
    let newest = "assistant: newest reply\n".len();
    let budget = header + newest + 60;
    let ctx = builder
        .build(
            &ContextMaterial::new("", budget)
                .with_recent_turns(&turns)
                .with_memory_share(0.0),
        )
        .unwrap();
    let conv = ctx.section(SectionKind::Conversation).unwrap();
    assert_eq!(conv.entries, [EntryId(2), EntryId(3)]);
    assert!(
        conv.text.contains(&format!("word{TRUNCATION_MARKER}\n"))
            || conv.text.contains(TRUNCATION_MARKER)
    );
    assert!(conv.text.ends_with("assistant: newest reply\n\n"));
    assert!(ctx.total_tokens <= budget);
    // The truncated turn uses the remainder: nothing more than one char short of the budget.
    assert!(
        budget - ctx.total_tokens < 6,
        "left {} unused",
        budget - ctx.total_tokens
    );
    let reasons: Vec<_> = ctx.omitted.iter().map(|o| (&o.item, o.reason)).collect();
    assert!(matches!(
        reasons[0],
        (OmittedItem::Turn { id: EntryId(2) }, OmissionReason::Truncated { kept_bytes, original_bytes: 200 }) if kept_bytes > 0 && kept_bytes < 200
    ));
    assert_eq!(
        reasons[1],
        (
            &OmittedItem::Turn { id: EntryId(1) },
            OmissionReason::OverBudget
        )
    );
}

#[test]
fn memories_show_the_day_they_were_written_unless_told_not_to() {
    let mut h = hit(1, 0.5, "we adopted a dog");
    Arc::make_mut(&mut h.entry).created_at =
        memory_core::Timestamp(1_683_504_000_000_000 + 3_600_000_000);
    let hits = [h];
    let builder = ContextBuilder::new(Arc::new(ByteCounter));
    let dated = builder
        .build(&ContextMaterial::new("", 10_000).with_memories(&hits))
        .unwrap();
    let text = &dated.section(SectionKind::Memories).unwrap().text;
    assert!(
        text.contains("[2023-05-08]\n- we adopted a dog\n"),
        "{text}"
    );
    let plain = builder
        .build(
            &ContextMaterial::new("", 10_000)
                .with_memories(&hits)
                .with_memory_dates(false),
        )
        .unwrap();
    let text = &plain.section(SectionKind::Memories).unwrap().text;
    assert!(text.contains("- we adopted a dog\n"), "{text}");
}

const DAY: i64 = 86_400_000_000;

fn dated_hit(id: u64, score: f32, day: i64, content: &str) -> SearchHit {
    let mut h = hit(id, score, content);
    Arc::make_mut(&mut h.entry).created_at = Timestamp(1_683_504_000_000_000 + day * DAY);
    h
}

#[test]
fn memories_of_one_day_share_its_date_line_and_days_follow_their_best_memory() {
    let hits = [
        dated_hit(1, 0.9, 0, "best"),
        dated_hit(2, 0.8, 1, "second"),
        dated_hit(3, 0.7, 0, "third"),
        dated_hit(4, 0.6, 1, "fourth"),
    ];
    let builder = ContextBuilder::new(Arc::new(ByteCounter));
    let ctx = builder
        .build(&ContextMaterial::new("", 10_000).with_memories(&hits))
        .unwrap();
    let section = ctx.section(SectionKind::Memories).unwrap();
    assert_eq!(
        section.text,
        "## Relevant memories\n[2023-05-08]\n- best\n- third\n[2023-05-09]\n- second\n- fourth\n\n"
    );
    assert_eq!(
        section.entries,
        [EntryId(1), EntryId(3), EntryId(2), EntryId(4)]
    );
}

#[test]
fn a_date_line_is_paid_once_by_the_first_memory_of_its_day() {
    let hits = [
        dated_hit(1, 0.9, 0, "best"),
        dated_hit(2, 0.8, 1, "second"),
        dated_hit(3, 0.7, 0, "third"),
    ];
    let builder = ContextBuilder::new(Arc::new(ByteCounter));
    let frame = "## Relevant memories\n".len() + 1;
    let day = "[2023-05-08]\n".len();
    // Room for the first day's line and both of its memories: the second memory does not fit
    // (its day's line would be one more line to pay), and packing stops there, though the third
    // would have fit.
    let budget = frame + day + "- best\n".len() + "- third\n".len();
    let material = ContextMaterial::new("", budget)
        .with_memories(&hits)
        .with_memory_share(1.0)
        .with_min_truncation_tokens(1000);
    let ctx = builder.build(&material).unwrap();
    assert_eq!(
        ctx.section(SectionKind::Memories).unwrap().entries,
        [EntryId(1)],
        "packing stops at the first memory that does not fit"
    );
    assert_eq!(ctx.omitted.len(), 2);
    // With one byte less than what the second day needs, it still does not fit; with exactly
    // that, it does.
    let need = frame + day + "- best\n".len() + day + "- second\n".len();
    let ctx = builder
        .build(
            &ContextMaterial::new("", need)
                .with_memories(&hits)
                .with_memory_share(1.0),
        )
        .unwrap();
    assert_eq!(
        ctx.section(SectionKind::Memories).unwrap().entries,
        [EntryId(1), EntryId(2)]
    );
    assert_eq!(ctx.total_tokens, need);
    let ctx = builder
        .build(
            &ContextMaterial::new("", need - 1)
                .with_memories(&hits)
                .with_memory_share(1.0)
                .with_min_truncation_tokens(1000),
        )
        .unwrap();
    assert_eq!(
        ctx.section(SectionKind::Memories).unwrap().entries,
        [EntryId(1)]
    );
}

#[test]
fn lowest_scored_memories_are_dropped_first_even_when_given_out_of_order() {
    let hits = [
        hit(1, 0.2, "low score memory"),
        hit(2, 0.9, "best memory"),
        hit(3, f32::NAN, "nan memory"),
        hit(4, 0.5, "middle memory"),
    ];
    let builder = ContextBuilder::new(Arc::new(ByteCounter));
    let frame = "## Relevant memories\n".len() + 1;
    let budget = frame + "- best memory\n".len() + "- middle memory\n".len();
    let ctx = builder
        .build(
            &ContextMaterial::new("", budget)
                .with_memories(&hits)
                .with_memory_share(1.0)
                .with_min_truncation_tokens(1000)
                .with_memory_dates(false),
        )
        .unwrap();
    assert_eq!(
        ctx.section(SectionKind::Memories).unwrap().entries,
        [EntryId(2), EntryId(4)]
    );
    let dropped: Vec<EntryId> = ctx
        .omitted
        .iter()
        .map(|o| match o.item {
            OmittedItem::Memory { id, .. } => id,
            ref other => panic!("unexpected omission {other:?}"),
        })
        .collect();
    assert_eq!(dropped, [EntryId(1), EntryId(3)]);
    assert_eq!(ctx.total_tokens, budget);
}

#[test]
fn a_memory_already_in_the_recent_window_is_not_shown_twice() {
    let turns = [
        entry(1, Role::User, "I moved to Lisbon"),
        entry(2, Role::Assistant, "Nice!"),
    ];
    let hits = [hit(1, 0.9, "I moved to Lisbon"), hit(7, 0.4, "likes tea")];
    let ctx = ContextBuilder::default()
        .build(
            &ContextMaterial::new("sys", 10_000)
                .with_recent_turns(&turns)
                .with_memories(&hits),
        )
        .unwrap();
    assert_eq!(ctx.render().matches("I moved to Lisbon").count(), 1);
    assert_eq!(
        ctx.section(SectionKind::Memories).unwrap().entries,
        [EntryId(7)]
    );
    assert_eq!(ctx.omitted.len(), 1);
    assert_eq!(ctx.omitted[0].reason, OmissionReason::Duplicate);
}

#[test]
fn unused_share_spills_over_to_the_other_side() {
    // Only memories, and a share that gives them a tenth: they still get the whole rest.
    let hits: Vec<SearchHit> = (0..5)
        .map(|i| {
            hit(
                i,
                1.0 - i as f32 / 10.0,
                "a memory of forty bytes, more or less!!",
            )
        })
        .collect();
    let builder = ContextBuilder::new(Arc::new(ByteCounter));
    let budget = 400;
    let ctx = builder
        .build(
            &ContextMaterial::new("", budget)
                .with_memories(&hits)
                .with_memory_share(0.1),
        )
        .unwrap();
    assert_eq!(ctx.section(SectionKind::Memories).unwrap().entries.len(), 5);

    // Only turns, and a share that gives memories everything: turns still get it all.
    let turns: Vec<MemoryEntry> = (0..5)
        .map(|i| entry(i, Role::User, "a turn of some thirty bytes!"))
        .collect();
    let ctx = builder
        .build(
            &ContextMaterial::new("", budget)
                .with_recent_turns(&turns)
                .with_memory_share(1.0),
        )
        .unwrap();
    assert_eq!(
        ctx.section(SectionKind::Conversation)
            .unwrap()
            .entries
            .len(),
        5
    );
}

#[test]
fn the_split_limits_each_side_when_both_compete() {
    let hits: Vec<SearchHit> = (0..20)
        .map(|i| {
            hit(
                100 + i,
                1.0 - i as f32 / 100.0,
                "memory text of thirty bytes..",
            )
        })
        .collect();
    let turns: Vec<MemoryEntry> = (0..20)
        .map(|i| entry(i, Role::User, "turn text of about thirty b"))
        .collect();
    let builder = ContextBuilder::new(Arc::new(ByteCounter));
    let build = |share: f32| {
        builder
            .build(
                &ContextMaterial::new("", 600)
                    .with_recent_turns(&turns)
                    .with_memories(&hits)
                    .with_memory_share(share)
                    .with_min_truncation_tokens(1000),
            )
            .unwrap()
    };
    let mem_tokens = |share| {
        build(share)
            .section(SectionKind::Memories)
            .map_or(0, |s| s.tokens)
    };
    let (low, mid, high) = (mem_tokens(0.2), mem_tokens(0.5), mem_tokens(0.8));
    assert!(low < mid && mid < high, "{low} {mid} {high}");
    // Each side may exceed its share only by what the other side's last item left unused.
    let item = "- memory text of thirty bytes..\n".len();
    assert!(
        low <= 120 + item && mid <= 300 + item && high <= 480 + item,
        "{low} {mid} {high}"
    );
    assert!(
        low >= 120 - item && mid >= 300 - item && high >= 480 - item,
        "{low} {mid} {high}"
    );
    assert!(build(0.5).total_tokens <= 600);
}

#[test]
fn building_twice_gives_the_same_prompt() {
    let tools = [tool("b"), tool("a")];
    let turns: Vec<MemoryEntry> = (0..30)
        .map(|i| {
            entry(
                i,
                Role::ALL[i as usize % 5],
                &format!("turn {i} with some text"),
            )
        })
        .collect();
    let hits: Vec<SearchHit> = (0..30)
        .map(|i| hit(1000 + i, (i % 7) as f32, &format!("memory {i}")))
        .collect();
    let req = ContextMaterial::new("system", 300)
        .with_tools(&tools)
        .with_recent_turns(&turns)
        .with_memories(&hits);
    let b = ContextBuilder::default();
    let first = b.build(&req).unwrap();
    for _ in 0..5 {
        assert_eq!(b.build(&req).unwrap(), first);
    }
}
