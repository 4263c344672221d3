//! A tour of memory-core on a generated conversation: three chat sessions over three days are
//! appended to short-term memory, consolidated into long-term memory, searched, and packed into
//! a prompt; then the per-stage timing report is printed.
//!
//! ```text
//! cargo run --release --example chat_memory
//! ```
//!
//! A Chrome trace of the run is written to `target/chat_memory.trace.json` (open it in
//! <https://ui.perfetto.dev>).

use std::sync::Arc;
use std::time::Duration;

use memory_core::{
    Clock, ContextQuery, ManualClock, Memory, MemoryConfig, NewEntry, Role, SearchMode,
    SearchQuery, StageLayer, Storage, Timestamp, ToolDefinition,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tracing_subscriber::layer::SubscriberExt;

const AGENT: &str = "travel-assistant";

/// Facts the user mentions (important) and small talk (not), from which sessions are drawn.
const FACTS: &[&str] = &[
    "I moved to Lisbon in May and I live near the river",
    "my sister Ana is visiting from Porto next month",
    "I am allergic to peanuts, please remember that for restaurants",
    "I prefer window seats on long flights",
    "my passport expires in March next year",
    "I work remotely for a design studio in Berlin",
    "my budget for the autumn trip is about two thousand euros",
    "I would love to see the northern lights in Norway",
];
const SMALL_TALK: &[&str] = &[
    "thanks, that helps",
    "hmm, let me think about it",
    "ok sounds good",
    "what time is it there now?",
    "nice, tell me more",
    "sorry, I got distracted",
];
const REPLIES: &[&str] = &[
    "Noted. I will keep that in mind.",
    "Here are a few options you might like.",
    "I can look up prices for those dates.",
    "That should be easy to arrange.",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stages = StageLayer::with_chrome_trace(100_000);
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(stages.clone()))?;

    // Time is simulated so that sessions can expire between "days".
    let clock = Arc::new(ManualClock::new(Timestamp(1_767_225_600_000_000)));
    let config = MemoryConfig {
        stm_capacity: 8,
        stm_ttl: Duration::from_secs(6 * 3600),
        ..MemoryConfig::default()
    };
    let memory = Memory::open_with_clock(Storage::Temporary, config, clock.clone())?;

    let mut rng = StdRng::seed_from_u64(7);
    for day in 0..3 {
        let session = format!("day-{day}");
        for turn in 0..14 {
            let (text, importance) = if rng.random_bool(0.35) {
                (FACTS[rng.random_range(0..FACTS.len())], 0.9)
            } else {
                (SMALL_TALK[rng.random_range(0..SMALL_TALK.len())], 0.1)
            };
            memory.append(
                NewEntry::new(AGENT, session.as_str(), Role::User, text)
                    .with_importance(importance),
            )?;
            let reply = REPLIES[(day * 14 + turn) % REPLIES.len()];
            memory.append(
                NewEntry::new(AGENT, session.as_str(), Role::Assistant, reply).with_importance(0.2),
            )?;
            clock.advance(Duration::from_secs(90));
        }
        let report = memory.consolidate()?;
        println!("day {day}: consolidated {report:?}");
        clock.advance(Duration::from_secs(24 * 3600)); // the session goes idle overnight
    }
    let report = memory.consolidate()?;
    println!("after the last night: {report:?}");
    let stats = memory.stats()?;
    println!(
        "long-term entries: {}, short-term entries: {}, file: {} bytes\n",
        stats.ltm_entries, stats.stm_entries, stats.disk_bytes
    );

    // Today's session starts; the user asks something that needs old memories.
    let today = "day-3";
    memory.append(NewEntry::new(
        AGENT,
        today,
        Role::User,
        "can you plan a dinner for when my sister comes?",
    ))?;
    let question = "sister visiting dinner restaurant allergy";
    for mode in [SearchMode::Keyword, SearchMode::Vector, SearchMode::Hybrid] {
        println!("{mode:?} search for {question:?}:");
        for hit in memory.search(&SearchQuery::new(AGENT, question).with_mode(mode).with_k(3))? {
            let c = hit.components;
            println!(
                "  {:.4} [{:?}] {}  (keyword rank {:?}, vector rank {:?}, recency {:.2})",
                hit.score,
                hit.entry.tier,
                hit.entry.content,
                c.keyword_rank,
                c.vector_rank,
                c.recency
            );
        }
    }

    let tools = vec![ToolDefinition::from_json_schema(
        "find_restaurants",
        "Search restaurants by city and dietary needs",
        r#"{"type":"object","properties":{"city":{"type":"string"},"avoid":{"type":"array","items":{"type":"string"}}},"required":["city"]}"#,
    )?];
    let request = ContextQuery::new(
        SearchQuery::new(AGENT, question).with_k(5),
        today,
        "You are a friendly travel assistant. Use what you remember about the user.",
        160,
    )
    .with_tools(tools);
    let context = memory.build_context(&request)?;
    println!(
        "\n--- prompt ({} of {} tokens) ---\n{}--- end of prompt ---",
        context.total_tokens,
        context.budget,
        context.render()
    );
    for omission in &context.omitted {
        println!(
            "left out: {:?} ({:?}, {} tokens)",
            omission.item, omission.reason, omission.tokens
        );
    }

    println!("\nstage timings:\n{}", stages.report());
    let trace = std::path::Path::new("target").join("chat_memory.trace.json");
    if std::fs::create_dir_all("target").is_ok() {
        stages.write_chrome_trace(&trace)?;
        println!("Chrome trace written to {}", trace.display());
    }
    println!("simulated time now: {}", clock.now());
    Ok(())
}
