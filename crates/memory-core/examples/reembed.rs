//! What moving a store to another embedder costs: a file store of N entries written with the
//! built-in hashing embedder is reopened with all-MiniLM-L6-v2 and
//! `MemoryBuilder::reembed_on_embedder_change`, against writing the same entries into a new
//! store with MiniLM (what a re-import would cost). Prints wall times and entries per second.
//!
//! ```sh
//! scripts/fetch-minilm.sh
//! cargo run --release -p memory-core --features minilm --example reembed [-- ENTRIES]
//! ```
//!
//! `ENTRIES` defaults to 5,000. The model directory is `$MEMORY_CORE_MINILM_DIR`, else
//! `target/models/all-MiniLM-L6-v2` under the workspace root. `RUST_LOG`-style progress is not
//! printed; the figures are.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use memory_core::{
    Memory, MemoryConfig, MiniLmEmbedder, NewEntry, Role, SearchMode, SearchQuery, Storage, Tiers,
};

/// Chat turns, varied by a number so that every entry is its own text.
const TURNS: &[&str] = &[
    "I moved to Lisbon in May and I'm still looking for a flat near the river.",
    "My sister Ana lives in Porto with her two cats, Miso and Tofu.",
    "The quarterly report is due on Friday; Tom wants the revenue figures split by region.",
    "I'm allergic to peanuts and shellfish, so please keep that in mind for recipes.",
    "I started learning the cello in January; my teacher says my bowing is getting better.",
    "The car makes a rattling noise when I brake downhill, it started after the last service.",
    "We adopted a dog from the shelter on Saturday, a three-year-old beagle called Pepper.",
    "Book club this month is reading a novel about a lighthouse keeper; meeting on the 18th.",
];

fn entries(n: usize) -> Vec<NewEntry> {
    (0..n)
        .map(|i| {
            let text = format!("{} (note {i})", TURNS[i % TURNS.len()]);
            NewEntry::new(format!("agent-{}", i % 10), "s", Role::User, text)
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 5_000,
    };
    let dir = std::env::var_os("MEMORY_CORE_MINILM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/models/all-MiniLM-L6-v2")
        });
    let minilm = Arc::new(MiniLmEmbedder::load(&dir)?);
    let config = MemoryConfig {
        embedding_dim: 384,
        ..MemoryConfig::default()
    };
    let work = tempfile_dir()?;

    let moved = work.join("moved.db");
    {
        let m = Memory::open(Storage::File(moved.clone()), config.clone())?;
        for chunk in entries(n).chunks(1_000) {
            m.insert_batch(chunk.to_vec())?;
        }
        m.wait_for_indexing();
    }
    let began = Instant::now();
    let m = Memory::builder(Storage::File(moved))
        .with_config(config.clone())
        .with_embedder(minilm.clone())
        .reembed_on_embedder_change()
        .open()?;
    let reembed = began.elapsed().as_secs_f64();
    m.wait_for_indexing();
    let indexed = began.elapsed().as_secs_f64();
    let hits = m.search(
        &SearchQuery::new("agent-6", "what pet did we get from the animal shelter?")
            .with_mode(SearchMode::Vector)
            .with_tiers(Tiers::LongTerm)
            .with_k(1),
    )?;
    println!(
        "re-embedded {n} entries at open: {reembed:.1} s ({:.0} entries/s), indexes linked after \
         {indexed:.1} s; nearest to a paraphrase: {:?}",
        n as f64 / reembed,
        hits.first().map(|h| h.entry.content.as_str())
    );
    drop(m);

    let fresh = work.join("fresh.db");
    let m = Memory::builder(Storage::File(fresh))
        .with_config(config)
        .with_embedder(minilm)
        .open()?;
    let began = Instant::now();
    for chunk in entries(n).chunks(256) {
        m.insert_batch(chunk.to_vec())?;
    }
    let insert = began.elapsed().as_secs_f64();
    println!(
        "the same {n} entries written anew with MiniLM (insert_batch of 256): {insert:.1} s \
         ({:.0} entries/s)",
        n as f64 / insert
    );
    drop(m);
    std::fs::remove_dir_all(&work)?;
    Ok(())
}

/// A fresh directory under the system's temporary directory.
fn tempfile_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("memory-core-reembed-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
