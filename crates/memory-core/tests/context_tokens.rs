//! Token counters: the heuristic against real cl100k counts (feature `cl100k`), and truncation
//! to a token limit on char boundaries.

use memory_core::tokens::{truncate_to_tokens, HeuristicCounter, TokenCounter};

/// A small corpus of the kinds of text an agent's prompt holds.
const SAMPLES: &[(&str, &str)] = &[
    ("english prose", "The memory engine keeps a short window of recent turns for every session and moves the important ones into a durable store. When the agent asks a question, it searches both tiers by keywords and by meaning, then packs the best material into a prompt that fits the model's budget."),
    ("chat turn", "user: hey, can you remind me what we decided about the Lisbon trip? I think it was May 12th-19th, flying TAP from Berlin, but I'm not 100% sure anymore..."),
    ("rust code", "fn main() {\n    let mut total: u64 = 0;\n    for (i, x) in values.iter().enumerate() {\n        if *x > threshold { total += i as u64 * 3; }\n    }\n    println!(\"{total:>8}\");\n}\n"),
    ("python code", "def pack(items, budget):\n    out = []\n    for item in sorted(items, key=lambda x: -x.score):\n        if item.tokens <= budget:\n            out.append(item)\n            budget -= item.tokens\n    return out\n"),
    ("json", r#"{"type":"object","properties":{"city":{"type":"string","description":"City name, e.g. Lisbon"},"units":{"type":"string","enum":["metric","imperial"]}},"required":["city"]}"#),
    ("numbers", "Order 4829103 shipped 2024-05-17T10:42:07Z; amount 1,299.95 EUR; tracking 00340434161234567890; ratio 0.318309886."),
    ("url and path", "See https://example.invalid/docs/memory-core/context?budget=4096&share=0.5#policy and /var/lib/memory/agent-7/ltm.sqlite3"),
    ("german", "Größere Übersetzungsprobleme entstehen häufig bei zusammengesetzten Wörtern wie Donaudampfschifffahrtsgesellschaft oder Straßenbahnhaltestelle."),
    ("russian", "Долговременная память агента хранится в одном файле SQLite, а кратковременная — в оперативной памяти с ограниченным временем жизни."),
    ("chinese", "长期记忆存储在一个 SQLite 文件中，短期记忆保存在内存里，并带有过期时间。检索同时使用关键词和向量相似度。"),
    ("japanese", "エージェントの記憶は短期と長期の二層に分かれています。重要な情報は長期記憶に移されます。"),
    ("emoji", "Great job 🎉🎉 see you at the café ☕️ tomorrow 👩‍💻🇵🇹 — ok? 😀👍"),
    ("whitespace and markdown", "## Heading\n\n- item one\n- item two\n\n    indented code block\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"),
    ("log lines", "2026-11-22 19:56:19.123 WARN memory_core::ltm: checkpoint took 183ms (wal=4096 pages)\n2026-11-22 19:56:19.311 INFO memory_core::stm: evicted 12 entries from session s-42\n"),
];

#[test]
fn heuristic_counts_are_positive_for_every_sample_and_truncation_respects_limits() {
    for (kind, text) in SAMPLES {
        let n = HeuristicCounter.count(text);
        assert!(n > 0, "{kind}");
        for limit in [0, 1, n / 3, n / 2, n - 1, n] {
            let cut = truncate_to_tokens(&HeuristicCounter, text, limit);
            assert!(HeuristicCounter.count(cut) <= limit, "{kind} at {limit}");
            assert!(text.is_char_boundary(cut.len()));
        }
        assert_eq!(truncate_to_tokens(&HeuristicCounter, text, n), *text);
    }
}

#[cfg(feature = "cl100k")]
mod cl100k {
    use super::*;
    use memory_core::tokens::Cl100kCounter;

    #[test]
    fn cl100k_counts_known_strings_exactly() {
        let c = Cl100kCounter::new().unwrap();
        assert_eq!(c.count(""), 0);
        assert_eq!(c.count("hello world"), 2);
        // OpenAI's cookbook example for cl100k_base.
        assert_eq!(c.count("tiktoken is great!"), 6);
        // Special-token text is ordinary text here, never a control token.
        assert!(c.count("<|endoftext|>") > 1);
        assert_eq!(c.name(), "cl100k");
    }

    #[test]
    fn heuristic_over_counts_cl100k_on_the_sample_corpus() {
        let real = Cl100kCounter::new().unwrap();
        let mut ratios = Vec::new();
        let mut under = Vec::new();
        println!(
            "{:<24} {:>8} {:>9} {:>7}",
            "sample", "cl100k", "heuristic", "ratio"
        );
        for (kind, text) in SAMPLES {
            let (r, h) = (real.count(text), HeuristicCounter.count(text));
            let ratio = h as f64 / r as f64;
            println!("{kind:<24} {r:>8} {h:>9} {ratio:>7.2}");
            if h < r {
                under.push(format!("{kind}: heuristic {h} < cl100k {r}"));
            }
            ratios.push(ratio);
        }
        let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
        let max = ratios.iter().cloned().fold(0.0, f64::max);
        println!("mean ratio {mean:.2}, max {max:.2}");
        assert!(under.is_empty(), "under-counted: {under:?}");
        // Over-counting wastes budget; keep the waste bounded on typical text.
        assert!(mean < 1.8, "mean over-count {mean:.2}");
    }

    /// The heuristic's word list says which words cl100k holds as one token, after a space
    /// (`1`), on their own (`2`) or both (`3`); every entry must be so.
    #[test]
    fn every_word_of_the_heuristics_list_is_one_cl100k_token_in_its_listed_forms() {
        let real = Cl100kCounter::new().unwrap();
        let list = include_str!("../src/cl100k_words.txt");
        let mut wrong = Vec::new();
        let mut words = 0;
        for line in list.lines() {
            let (word, forms) = line.split_once('\t').expect("word<TAB>forms");
            let forms: u8 = forms.parse().expect("forms 1-3");
            assert!((1..=3).contains(&forms), "{line:?}");
            if forms & 1 != 0 && real.count(&format!(" {word}")) != 1 {
                wrong.push(format!(" {word}"));
            }
            if forms & 2 != 0 && real.count(word) != 1 {
                wrong.push(word.to_string());
            }
            words += 1;
        }
        assert!(words > 50_000, "{words} words");
        assert!(
            wrong.is_empty(),
            "not one token: {:?}",
            &wrong[..wrong.len().min(10)]
        );
    }

    #[test]
    fn heuristic_rarely_under_counts_awkward_mixed_text() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        // Rare words and scripts cl100k splits finely, mixed with common material.
        const PIECES: &[&str] = &[
            "the",
            "memory",
            "Lisbon",
            "42",
            "3.14159",
            "naïve",
            "café",
            "Grüße",
            "東京",
            "日本語の文章",
            "привет",
            "😀",
            "👩‍💻",
            "🇵🇹",
            "\n",
            "\n\n",
            "  ",
            "{",
            "}",
            "\"key\":",
            "é",
            "ß",
            "—",
            "…",
            "\t",
            "https://example.invalid/a?b=c",
            "Donaudampfschifffahrt",
            "xqzvkj",
            "Übersetzung",
            "ÆØÅ",
            "ĳ",
            "συνάρτηση",
            "함수",
        ];
        let real = Cl100kCounter::new().unwrap();
        let mut rng = StdRng::seed_from_u64(12345);
        let (mut under, total) = (0, 2000);
        for _ in 0..total {
            let mut s = String::new();
            for _ in 0..rng.random_range(1..=40) {
                if rng.random_bool(0.7) {
                    s.push(' ');
                }
                s.push_str(PIECES[rng.random_range(0..PIECES.len())]);
            }
            if HeuristicCounter.count(&s) < real.count(&s) {
                under += 1;
            }
        }
        println!("under-counted {under} of {total}");
        assert!(under * 10 < total, "under-counted {under} of {total}");
    }

    #[test]
    fn cl100k_truncation_stays_within_the_limit_on_multi_byte_text() {
        let c = Cl100kCounter::new().unwrap();
        for (kind, text) in SAMPLES {
            let n = c.count(text);
            for limit in [1, n / 2, n - 1] {
                let cut = truncate_to_tokens(&c, text, limit);
                assert!(c.count(cut) <= limit, "{kind} at {limit}");
                assert!(text.starts_with(cut));
            }
        }
    }
}
