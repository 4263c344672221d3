//! Writes the quality benchmark's generated conversation dataset as LoCoMo JSON, to inspect it or
//! to run other tools on the same data: `cargo run --release --example generate_conversations --
//! OUT.json [--small] [--seed N]`.

use std::path::PathBuf;

use memory_bench::conversations::{generate, ConversationConfig};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut out: Option<PathBuf> = None;
    let mut config = ConversationConfig::default();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--small" => {
                config = ConversationConfig {
                    seed: config.seed,
                    ..ConversationConfig::small()
                }
            }
            "--seed" => match args.next().and_then(|s| s.parse().ok()) {
                Some(seed) => config.seed = seed,
                None => fail("--seed needs a number"),
            },
            path if out.is_none() && !path.starts_with('-') => out = Some(PathBuf::from(path)),
            other => fail(&format!("unexpected argument {other:?}")),
        }
    }
    let Some(out) = out else {
        fail("usage: generate_conversations OUT.json [--small] [--seed N]");
    };
    let dataset = generate(&config);
    let text = serde_json::to_string_pretty(&dataset.to_json()).unwrap_or_default();
    if let Err(e) = std::fs::write(&out, text) {
        fail(&format!("cannot write {}: {e}", out.display()));
    }
    println!(
        "{} conversations, {} turns, {} questions -> {}",
        dataset.conversations.len(),
        dataset.turns(),
        dataset.questions(),
        out.display()
    );
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2);
}
