//! StageLayer with a real `tracing` subscriber: nesting, counts, shares, reset, the Chrome trace
//! file, and the context builder's own `pack` stages.

use std::sync::Arc;

use memory_core::context::{ContextBuilder, ContextMaterial};
use memory_core::stages::{self, StageLayer};
use memory_core::{EntryId, MemoryEntry, Role, Tier, Timestamp};
use tracing_subscriber::layer::SubscriberExt;

fn search_once(with_vector: bool) {
    let _search = tracing::debug_span!(stages::SEARCH).entered();
    {
        let _k = tracing::debug_span!(stages::KEYWORD).entered();
        std::hint::black_box((0..1000u64).sum::<u64>());
    }
    if with_vector {
        let _v = tracing::debug_span!(stages::VECTOR).entered();
        let _e = tracing::debug_span!(stages::EMBED).entered();
    }
    let _f = tracing::debug_span!(stages::FUSE).entered();
}

#[test]
fn report_nests_stages_under_their_parents_and_counts_calls() {
    let layer = StageLayer::new();
    let subscriber = tracing_subscriber::registry().with(layer.clone());
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..5 {
            search_once(i % 2 == 0);
        }
        let _other = tracing::debug_span!(stages::REMEMBER).entered();
    });
    let report = layer.report();
    let calls = |p: &str| report.get(p).map(|r| r.calls);
    assert_eq!(calls("search"), Some(5));
    assert_eq!(calls("search/keyword"), Some(5));
    assert_eq!(calls("search/vector"), Some(3));
    assert_eq!(calls("search/vector/embed"), Some(3));
    assert_eq!(calls("search/fuse"), Some(5));
    assert_eq!(calls("remember"), Some(1));
    // A child name alone is not a top-level stage.
    assert_eq!(calls("keyword"), None);

    let rows = report.rows();
    assert_eq!(rows.len(), 6);
    // Depth-first: every child row follows its parent, with depth one more.
    for (i, row) in rows.iter().enumerate() {
        match row.path.rsplit_once('/') {
            None => assert_eq!(row.depth, 0),
            Some((parent, _)) => {
                let p = rows[..i]
                    .iter()
                    .rposition(|r| r.path == parent)
                    .expect("parent row comes before its child");
                assert_eq!(rows[p].depth + 1, row.depth);
                assert!(
                    rows[p].total >= row.total,
                    "{} outlasts its parent",
                    row.path
                );
            }
        }
    }
    let search = report.get("search").unwrap();
    let children: std::time::Duration = rows
        .iter()
        .filter(|r| r.depth == 1 && r.path.starts_with("search/"))
        .map(|r| r.total)
        .sum();
    assert_eq!(search.self_time, search.total - children);
    assert_eq!(search.mean, search.total / 5);
    let kw = report.get("search/keyword").unwrap();
    assert!(kw.share > 0.0 && kw.share <= 1.0);
    let root_shares: f64 = rows.iter().filter(|r| r.depth == 0).map(|r| r.share).sum();
    assert!((root_shares - 1.0).abs() < 1e-9, "{root_shares}");

    let top = report.top(2);
    assert_eq!(top.len(), 2);
    assert!(top[0].total >= top[1].total);
    assert!(report.rows().iter().all(|r| r.total <= top[0].total));

    let table = report.to_string();
    assert!(table.starts_with("stage"));
    assert!(table.contains("\n  keyword "));
    assert!(table.contains("\n    embed "));
    // Aligned: every line has the calls column ending at the same place.
    let header_end = table.lines().next().unwrap().find("calls").unwrap() + "calls".len();
    for line in table.lines().skip(1) {
        let prefix: String = line.chars().take(header_end).collect();
        assert!(prefix.ends_with(|c: char| c.is_ascii_digit()), "{line:?}");
    }
}

#[test]
fn reset_forgets_what_was_recorded() {
    let layer = StageLayer::new();
    let subscriber = tracing_subscriber::registry().with(layer.clone());
    tracing::subscriber::with_default(subscriber, || {
        search_once(true);
        assert!(!layer.report().is_empty());
        layer.reset();
        assert!(layer.report().is_empty());
        search_once(false);
    });
    let report = layer.report();
    assert_eq!(report.get("search").map(|r| r.calls), Some(1));
    assert!(report.get("search/vector").is_none());
}

#[test]
fn a_stage_entered_across_threads_is_counted_per_span() {
    let layer = StageLayer::new();
    let subscriber = tracing_subscriber::registry().with(layer.clone());
    let dispatch = tracing::Dispatch::new(subscriber);
    std::thread::scope(|s| {
        for _ in 0..4 {
            let d = dispatch.clone();
            s.spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for _ in 0..10 {
                        search_once(false);
                    }
                })
            });
        }
    });
    assert_eq!(
        layer.report().get("search/keyword").map(|r| r.calls),
        Some(40)
    );
}

#[test]
fn chrome_trace_file_is_valid_json_with_one_complete_event_per_span() {
    let layer = StageLayer::with_chrome_trace(100);
    let subscriber = tracing_subscriber::registry().with(layer.clone());
    tracing::subscriber::with_default(subscriber, || {
        search_once(true);
        search_once(false);
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.json");
    layer.write_chrome_trace(&path).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let events = json["traceEvents"].as_array().unwrap();
    // 2 searches x (search, keyword, fuse) + one vector + one embed.
    assert_eq!(events.len(), 8);
    let pid = u64::from(std::process::id());
    let mut last_ts = 0.0;
    for e in events {
        assert_eq!(e["ph"], "X");
        assert_eq!(e["pid"].as_u64(), Some(pid));
        assert!(e["tid"].as_u64().is_some());
        let ts = e["ts"].as_f64().unwrap();
        assert!(ts >= last_ts, "events sorted by start");
        last_ts = ts;
        assert!(e["dur"].as_f64().unwrap() >= 0.0);
    }
    let names: Vec<&str> = events.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names.iter().filter(|n| **n == "search").count(), 2);
    assert_eq!(names.iter().filter(|n| **n == "embed").count(), 1);
    let embed = events.iter().find(|e| e["name"] == "embed").unwrap();
    assert_eq!(embed["args"]["path"], "search/vector/embed");
    // A child lies within its parent in time.
    let vector = events.iter().find(|e| e["name"] == "vector").unwrap();
    let (vt, vd) = (
        vector["ts"].as_f64().unwrap(),
        vector["dur"].as_f64().unwrap(),
    );
    let (et, ed) = (
        embed["ts"].as_f64().unwrap(),
        embed["dur"].as_f64().unwrap(),
    );
    assert!(et >= vt && et + ed <= vt + vd + 1e-3);
}

#[test]
fn chrome_trace_keeps_at_most_max_events_and_counts_the_rest() {
    let layer = StageLayer::with_chrome_trace(3);
    let subscriber = tracing_subscriber::registry().with(layer.clone());
    tracing::subscriber::with_default(subscriber, || {
        for _ in 0..4 {
            search_once(false);
        }
    });
    assert_eq!(
        layer.chrome_trace_json()["traceEvents"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    assert_eq!(layer.dropped_events(), 9);
    // Aggregates are not bounded by the trace limit.
    assert_eq!(layer.report().get("search").map(|r| r.calls), Some(4));
}

#[test]
fn writing_a_trace_to_a_missing_directory_is_an_io_error() {
    let layer = StageLayer::with_chrome_trace(10);
    let dir = tempfile::tempdir().unwrap();
    let err = layer
        .write_chrome_trace(dir.path().join("no/such/dir/trace.json"))
        .unwrap_err();
    assert!(matches!(err, memory_core::Error::Io { .. }), "{err}");
}

#[test]
fn the_context_builder_reports_its_pack_stages() {
    let turns: Vec<MemoryEntry> = (0..50)
        .map(|i| MemoryEntry {
            id: EntryId(i),
            agent_id: Arc::from("a"),
            session_id: Arc::from("s"),
            role: Role::User,
            content: format!("turn number {i} with a few words in it"),
            embedding: None,
            importance: Some(0.5),
            created_at: Timestamp(0),
            last_accessed_at: Timestamp(0),
            access_count: 0,
            metadata: serde_json::Value::Null,
            tier: Tier::ShortTerm,
        })
        .collect();
    let layer = StageLayer::new();
    let subscriber = tracing_subscriber::registry().with(layer.clone());
    tracing::subscriber::with_default(subscriber, || {
        let req = ContextMaterial::new("system", 120).with_recent_turns(&turns);
        ContextBuilder::default().build(&req).unwrap();
    });
    let report = layer.report();
    assert_eq!(report.get("pack").map(|r| r.calls), Some(1));
    for stage in ["pack/tools", "pack/memories", "pack/render"] {
        assert_eq!(report.get(stage).map(|r| r.calls), Some(1), "{stage}");
    }
    // Turns are packed twice: within their share, then with what memories left.
    assert_eq!(report.get("pack/turns").map(|r| r.calls), Some(2));
    assert!(report.get("pack/turns/truncate").is_some());
}
