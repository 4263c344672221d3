//! Embedding latency of all-MiniLM-L6-v2: one sentence per call, and batches of 32 through
//! `embed_batch`, in wall time and process CPU time (the CPU figure holds up better on a shared
//! machine). Used to choose the implementation in `src/embed/minilm.rs`; Criterion ids for the
//! suite live in the benches.
//!
//! ```sh
//! scripts/fetch-minilm.sh
//! cargo run --release -p memory-core --features minilm --example embed_speed [-- LINES_FILE]
//! ```
//!
//! The model directory is `$MEMORY_CORE_MINILM_DIR`, else `target/models/all-MiniLM-L6-v2` under
//! the workspace root. `LINES_FILE` (one text per line) replaces the built-in chat turns.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use memory_core::{Embedder, MiniLmEmbedder};

/// Chat turns of the lengths a memory store sees (4 to 60 words).
const TURNS: &[&str] = &[
    "hi!",
    "I moved to Lisbon in May and I'm still looking for a flat near the river.",
    "My sister Ana lives in Porto with her two cats, Miso and Tofu.",
    "Can you remind me what I said about the dentist appointment last week?",
    "ok thanks",
    "The quarterly report is due on Friday; Tom wants the revenue figures split by region.",
    "What was the name of that Italian place we talked about, the one with the wood oven?",
    "I'm allergic to peanuts and shellfish, so please keep that in mind for recipes.",
    "Let's plan the trip: fly to Madrid on the 12th, then the train to Seville, back on the 20th.",
    "sure",
    "My manager said the migration to the new database has to finish before the holidays, \
     which means we will probably work through the weekend again unless the vendor ships the \
     fix they promised on Monday.",
    "Do you know if the library is open on Sundays?",
    "I started learning the cello in January; my teacher says my bowing is getting better.",
    "Remember that my daughter's birthday is on March 3rd and she wants a telescope.",
    "The car makes a rattling noise when I brake downhill, it started after the last service.",
    "How many kilometres did I run in total last month?",
    "good morning",
    "I prefer window seats, vegetarian meals and flights that leave after 9 am.",
    "Can you summarise the three options for the kitchen renovation and their costs?",
    "My password manager locked me out again, I think the recovery email is my old work address.",
    "We adopted a dog from the shelter on Saturday, a three-year-old beagle called Pepper.",
    "Please stop suggesting podcasts about productivity, I find them exhausting.",
    "what time is it in Tokyo right now?",
    "I booked the venue for the workshop: 40 people, projector, coffee at 10:30 and lunch at 1.",
    "The doctor changed my blood pressure medication to a lower dose starting this week.",
    "no, the other one",
    "When I was a kid we spent every summer at my grandparents' farm near Évora, picking figs \
     and swimming in the reservoir, and I still think of it whenever it gets really hot.",
    "Book club this month is reading a novel about a lighthouse keeper; meeting on the 18th.",
    "I need a polite way to decline the wedding invitation without offending my cousin.",
    "Did I already pay the electricity bill for October?",
    "My favourite band is playing in Barcelona in June, tickets go on sale tomorrow at noon.",
    "thanks, that's perfect",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::var_os("MEMORY_CORE_MINILM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/models/all-MiniLM-L6-v2")
        });
    let owned: Vec<String> = match std::env::args_os().nth(1) {
        Some(file) => std::fs::read_to_string(&file)?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect(),
        None => TURNS.iter().map(|s| s.to_string()).collect(),
    };
    if owned.is_empty() {
        return Err("no texts to embed".into());
    }
    let texts: Vec<&str> = owned.iter().map(String::as_str).collect();

    let started = Instant::now();
    let embedder = MiniLmEmbedder::load(&dir)?;
    println!("loaded {} in {:.0?}", dir.display(), started.elapsed());
    let tokens: usize = texts.iter().map(|t| embedder.token_ids(t).len()).sum();
    println!(
        "{} texts, {:.1} word pieces each on average ([CLS] and [SEP] included)",
        texts.len(),
        tokens as f64 / texts.len() as f64
    );

    // Warm-up: page in the weights, let the CPU clock settle.
    embedder.embed_batch(&texts);

    let rounds = 3;
    let mut per_call = Vec::with_capacity(rounds * texts.len());
    let cpu = cpu_time();
    let wall = Instant::now();
    for _ in 0..rounds {
        for text in &texts {
            let t = Instant::now();
            std::hint::black_box(embedder.embed(text));
            per_call.push(t.elapsed());
        }
    }
    let calls = per_call.len() as f64;
    report(
        "one sentence per call",
        wall.elapsed().as_secs_f64() / calls,
        cpu_since(cpu).map(|c| c / calls),
    );
    per_call.sort();
    println!(
        "  wall per call: median {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        ms(per_call[per_call.len() / 2]),
        ms(per_call[per_call.len() * 95 / 100]),
        ms(per_call[per_call.len() - 1])
    );

    let batch: Vec<&str> = texts.iter().cycle().take(32).copied().collect();
    let rounds = 10;
    let cpu = cpu_time();
    let wall = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(embedder.embed_batch(&batch));
    }
    let per_batch = wall.elapsed().as_secs_f64() / rounds as f64;
    let cpu_per_batch = cpu_since(cpu).map(|c| c / rounds as f64);
    report("batch of 32 (embed_batch)", per_batch, cpu_per_batch);
    println!(
        "  per sentence in the batch: {:.2} ms wall{}",
        per_batch * 1e3 / 32.0,
        cpu_per_batch
            .map(|c| format!(", {:.2} ms CPU", c * 1e3 / 32.0))
            .unwrap_or_default()
    );
    Ok(())
}

fn report(what: &str, wall_secs: f64, cpu_secs: Option<f64>) {
    match cpu_secs {
        Some(cpu) => println!(
            "{what}: {:.2} ms wall, {:.2} ms CPU",
            wall_secs * 1e3,
            cpu * 1e3
        ),
        None => println!("{what}: {:.2} ms wall", wall_secs * 1e3),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// CPU time of the whole process, in seconds (Linux only).
#[cfg(target_os = "linux")]
fn cpu_time() -> Option<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    (rc == 0).then_some(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9)
}

#[cfg(not(target_os = "linux"))]
fn cpu_time() -> Option<f64> {
    None
}

fn cpu_since(start: Option<f64>) -> Option<f64> {
    Some(cpu_time()? - start?)
}
