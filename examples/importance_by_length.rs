//! How the content-based importance estimate (`ImportanceScorer::estimate`, what the default
//! consolidation policy uses when a caller gives no importance) spreads over real turns, by turn
//! length: the share of turns whose estimate reaches a keep level, and of evidence turns.
//!
//! ```text
//! cargo run --release --example importance_by_length                     # the generated set
//! cargo run --release --example importance_by_length -- target/datasets/cri.json target/datasets/chitchat.json
//! IMPORTANCE_LEVEL=0.73 cargo run --release --example importance_by_length -- FILE.json
//! ```
//!
//! The level defaults to 0.60, the estimate of an information count of 2 (say one content word
//! and the first-person point): about what a turn consolidated within hours of its session
//! needs under the default weights and threshold (the novelty term moves it a little either
//! way), so the shares approximate what the quality benchmark's transition stores. Files are in
//! the LoCoMo format (`scripts/fetch-datasets.sh` converts CRI and chitchat into it).

use std::path::Path;

use memory_bench::conversations::{generate, ConversationConfig};
use memory_bench::locomo::Dataset;
use memory_core::ImportanceScorer;

/// Turn lengths in words: the lower bound of each bucket.
const BUCKETS: [usize; 5] = [0, 8, 15, 25, 40];

fn main() {
    let level = match std::env::var("IMPORTANCE_LEVEL") {
        Err(_) => 0.60,
        Ok(s) => match s.parse::<f32>() {
            Ok(v) if (0.0..=1.0).contains(&v) => v,
            _ => fail(&format!("IMPORTANCE_LEVEL={s:?} is not a number in [0, 1]")),
        },
    };
    let paths: Vec<String> = std::env::args().skip(1).collect();
    let datasets: Vec<(String, Dataset)> = if paths.is_empty() {
        vec![("generated".into(), generate(&ConversationConfig::default()))]
    } else {
        paths
            .iter()
            .map(|p| match Dataset::load(Path::new(p)) {
                Ok(d) => (p.clone(), d),
                Err(e) => fail(&e.to_string()),
            })
            .collect()
    };
    println!("estimate >= {level:.2}: share of turns (and of evidence turns) by length in words");
    for (name, dataset) in &datasets {
        // Per bucket: turns, turns at the level, evidence turns, evidence turns at the level.
        let mut counts = [[0usize; 4]; BUCKETS.len()];
        for conversation in &dataset.conversations {
            let (questions, _) = conversation.resolve();
            let mut evidence = vec![false; conversation.turns()];
            for q in &questions {
                for &t in &q.evidence {
                    evidence[t] = true;
                }
            }
            for (i, (_, turn)) in conversation.flat_turns().enumerate() {
                let content = turn.content();
                let words = content.split_whitespace().count().saturating_sub(1);
                let bucket = BUCKETS.iter().rposition(|&b| words >= b).unwrap_or(0);
                let kept = ImportanceScorer::estimate(&content) >= level;
                let c = &mut counts[bucket];
                c[0] += 1;
                c[1] += usize::from(kept);
                if evidence[i] {
                    c[2] += 1;
                    c[3] += usize::from(kept);
                }
            }
        }
        let total = counts.iter().fold([0; 4], |mut a, c| {
            for (x, y) in a.iter_mut().zip(c) {
                *x += y;
            }
            a
        });
        println!("{name}: {}", row(&total));
        for (i, c) in counts.iter().enumerate() {
            let range = match BUCKETS.get(i + 1) {
                Some(next) => format!("{}-{}", BUCKETS[i], next - 1),
                None => format!("{}+", BUCKETS[i]),
            };
            if c[0] > 0 {
                println!("  {range:>6} words: {}", row(c));
            }
        }
    }
}

/// `shares (n)` of one bucket's counts.
fn row(c: &[usize; 4]) -> String {
    let share = |a: usize, b: usize| {
        if b == 0 {
            "-".to_string()
        } else {
            format!("{:.3}", a as f64 / b as f64)
        }
    };
    format!(
        "turns {} of {}, evidence {} of {}",
        share(c[1], c[0]),
        c[0],
        share(c[3], c[2]),
        c[2]
    )
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2);
}
