//! How close the default token counter ([`HeuristicCounter`]) comes to real cl100k counts on
//! conversation turns: every turn of LoCoMo-format files, rendered as the context builder lists a
//! memory (`- Speaker: text`), counted both ways.
//!
//! ```sh
//! scripts/fetch-datasets.sh      # target/datasets/{cri,chitchat}.json
//! cargo run --release -p memory-core --features cl100k --example token_ratio -- \
//!     target/datasets/cri.json target/datasets/chitchat.json
//! ```
//!
//! Prints per file the ratio of the totals, the per-turn ratio at the 10th / 50th / 90th
//! percentile, and how many turns the heuristic counts below cl100k (with the worst ratio).

use memory_core::tokens::{Cl100kCounter, HeuristicCounter, TokenCounter};
use serde_json::Value;

fn main() {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: token_ratio FILE.json... (LoCoMo-format conversations)");
        std::process::exit(2);
    }
    let exact = match Cl100kCounter::new() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    for path in paths {
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str::<Value>(&text).map_err(|e| e.to_string()));
        let data = match parsed {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{path}: {e}");
                std::process::exit(1);
            }
        };
        let (mut heuristic, mut real, mut under, mut worst) = (0usize, 0usize, 0usize, 1.0f64);
        let mut ratios = Vec::new();
        for line in turn_lines(&data) {
            let (h, r) = (HeuristicCounter.count(&line), exact.count(&line));
            heuristic += h;
            real += r;
            if h < r {
                under += 1;
                worst = worst.max(r as f64 / h.max(1) as f64);
            }
            ratios.push(h as f64 / r.max(1) as f64);
        }
        if ratios.is_empty() {
            println!("{path}: no turns");
            continue;
        }
        ratios.sort_by(f64::total_cmp);
        let at = |q: usize| ratios[(ratios.len() - 1) * q / 100];
        println!(
            "{path}: {} turns, heuristic {heuristic} / cl100k {real} = {:.3}; per turn p10 {:.2} \
             p50 {:.2} p90 {:.2}; counted below cl100k: {under} (cl100k up to {worst:.2}x)",
            ratios.len(),
            heuristic as f64 / real.max(1) as f64,
            at(10),
            at(50),
            at(90),
        );
    }
}

/// Every turn of every conversation, as `- Speaker: text`.
fn turn_lines(data: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for sample in data.as_array().into_iter().flatten() {
        let Some(conversation) = sample.get("conversation").and_then(Value::as_object) else {
            continue;
        };
        for (key, turns) in conversation {
            if !key.starts_with("session_") || key.ends_with("date_time") {
                continue;
            }
            for turn in turns.as_array().into_iter().flatten() {
                let field = |name: &str| turn.get(name).and_then(Value::as_str).unwrap_or("");
                out.push(format!("- {}: {}", field("speaker"), field("text")));
            }
        }
    }
    out
}
