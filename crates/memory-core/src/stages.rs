//! Per-stage timings of memory operations. Code marks its stages with `tracing` spans named by the
//! constants below; [`StageLayer`], a `tracing_subscriber` layer, sums each stage's busy time and
//! call count by its path of parent stages, and can record a Chrome trace viewable in Perfetto.
//!
//! Spans are created at DEBUG level (`tracing::debug_span!`), so a level filter at INFO or above
//! turns them off. With no subscriber installed a disabled span costs a few nanoseconds (an atomic
//! load of the global max level), so instrumented code pays next to nothing unless someone is
//! watching.
//!
//! ```
//! use memory_core::stages::{self, StageLayer};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let layer = StageLayer::new();
//! let subscriber = tracing_subscriber::registry().with(layer.clone());
//! tracing::subscriber::with_default(subscriber, || {
//!     let _search = tracing::debug_span!(stages::SEARCH).entered();
//!     let _keyword = tracing::debug_span!(stages::KEYWORD).entered();
//! });
//! let report = layer.report();
//! assert_eq!(report.get("search/keyword").map(|r| r.calls), Some(1));
//! println!("{report}");
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap;
use tracing::span::{Attributes, Id};
use tracing::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::error::{Error, Result};

/// A whole search across tiers.
pub const SEARCH: &str = "search";
/// Embedding the query text.
pub const EMBED: &str = "embed";
/// Keyword (BM25) retrieval.
pub const KEYWORD: &str = "keyword";
/// Vector-similarity retrieval.
pub const VECTOR: &str = "vector";
/// Fusing the keyword and vector rankings.
pub const FUSE: &str = "fuse";
/// Looking a result up in (or storing it into) a cache.
pub const CACHE: &str = "cache";
/// Fetching full entries for the ranked ids.
pub const FETCH: &str = "fetch";
/// Gathering and ranking the agent's short-term candidates of a search.
pub const STM: &str = "stm";
/// A whole `build_context`: the recent window, the search, and packing.
pub const CONTEXT: &str = "context";
/// Adding entries to memory (an append, an insert or a batch): checks, commit, indexing.
pub const REMEMBER: &str = "remember";
/// Moving entries from short-term to long-term memory.
pub const CONSOLIDATE: &str = "consolidate";
/// Building a prompt context under a token budget (the context builder's root stage).
pub const PACK: &str = "pack";
/// Packing tool definitions.
pub const PACK_TOOLS: &str = "tools";
/// Packing retrieved memories.
pub const PACK_MEMORIES: &str = "memories";
/// Packing recent conversation turns.
pub const PACK_TURNS: &str = "turns";
/// Cutting one item to fit the remaining budget.
pub const TRUNCATE: &str = "truncate";
/// Rendering the packed sections and checking the total count.
pub const RENDER: &str = "render";

/// Aggregated timings of one stage path.
#[derive(Clone, Debug)]
struct StageStats {
    name: &'static str,
    parent: Option<Arc<str>>,
    calls: u64,
    total: Duration,
    min: Duration,
    max: Duration,
}

/// Distinct stage paths a layer tracks; spans of further paths are ignored, which bounds memory
/// when spans recurse without limit.
pub const MAX_STAGES: usize = 4096;

/// Running totals of one stage, indexed by its interned id.
#[derive(Clone, Copy, Debug, Default)]
struct Totals {
    calls: u64,
    total: Duration,
    min: Duration,
    max: Duration,
}

/// One finished span, as a Chrome trace "complete" event.
#[derive(Clone, Copy, Debug)]
struct TraceEvent {
    stage: u32,
    start: Duration,
    dur: Duration,
    tid: u64,
}

/// A stage path, interned so that a new span costs a hash lookup rather than a string build.
struct PathInfo {
    path: Arc<str>,
    name: &'static str,
    parent: Option<u32>,
}

#[derive(Default)]
struct Paths {
    ids: FxHashMap<(Option<u32>, &'static str), u32>,
    info: Vec<PathInfo>,
}

#[derive(Default)]
struct State {
    totals: Vec<Totals>,
    events: Vec<TraceEvent>,
    dropped_events: u64,
}

struct Inner {
    epoch: Instant,
    max_events: usize,
    paths: RwLock<Paths>,
    state: Mutex<State>,
}

/// What the layer keeps in each live span's extensions.
struct SpanTiming {
    stage: u32,
    // A span may be entered on several threads at once; busy time counts while any holds it.
    active: u32,
    since: Option<Instant>,
    busy: Duration,
    first_enter: Option<Instant>,
    last_exit: Option<Instant>,
    tid: u64,
}

fn thread_number() -> u64 {
    // Chrome traces want small integer thread ids; std's ThreadId has no stable integer form.
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static TID: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TID.with(|t| *t)
}

/// A `tracing_subscriber` layer that aggregates span busy time per stage path.
///
/// Clones share one record, so keep a clone to read the [`report`](StageLayer::report) after
/// handing the layer to a subscriber. A stage's path is its span name prefixed by the names of
/// its parent spans (`search/keyword`); its time is the span's busy time (while entered), summed
/// over calls and counted when the span closes.
#[derive(Clone)]
pub struct StageLayer {
    inner: Arc<Inner>,
}

impl Default for StageLayer {
    fn default() -> Self {
        StageLayer::new()
    }
}

impl fmt::Debug for StageLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StageLayer")
            .field("max_events", &self.inner.max_events)
            .finish_non_exhaustive()
    }
}

impl StageLayer {
    /// A layer that aggregates timings and records no trace events.
    pub fn new() -> Self {
        StageLayer::with_chrome_trace(0)
    }

    /// A layer that also keeps up to `max_events` finished spans for a Chrome trace; spans past
    /// that bound are counted in [`dropped_events`](StageLayer::dropped_events), so a long run
    /// cannot exhaust memory.
    pub fn with_chrome_trace(max_events: usize) -> Self {
        StageLayer {
            inner: Arc::new(Inner {
                epoch: Instant::now(),
                max_events,
                paths: RwLock::new(Paths::default()),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// A snapshot of the stages recorded since creation or the last [`reset`](StageLayer::reset).
    pub fn report(&self) -> StageReport {
        let totals = self.inner.state.lock().totals.clone();
        let paths = self.inner.paths.read();
        let stats: BTreeMap<Arc<str>, StageStats> = totals
            .iter()
            .enumerate()
            .filter(|(_, t)| t.calls > 0)
            .filter_map(|(id, t)| {
                let info = paths.info.get(id)?;
                let parent = info
                    .parent
                    .and_then(|p| paths.info.get(p as usize))
                    .map(|p| Arc::clone(&p.path));
                let stats = StageStats {
                    name: info.name,
                    parent,
                    calls: t.calls,
                    total: t.total,
                    min: t.min,
                    max: t.max,
                };
                Some((Arc::clone(&info.path), stats))
            })
            .collect();
        StageReport::from_stats(&stats)
    }

    /// The id of the stage `name` under `parent`, interning it on first sight; `None` once
    /// [`MAX_STAGES`] paths exist (only unbounded span recursion gets there).
    fn intern(&self, parent: Option<u32>, name: &'static str) -> Option<u32> {
        if let Some(&id) = self.inner.paths.read().ids.get(&(parent, name)) {
            return Some(id);
        }
        let mut paths = self.inner.paths.write();
        if let Some(&id) = paths.ids.get(&(parent, name)) {
            return Some(id);
        }
        if paths.info.len() >= MAX_STAGES {
            return None;
        }
        let path: Arc<str> = match parent.and_then(|p| paths.info.get(p as usize)) {
            Some(p) => format!("{}/{name}", p.path).into(),
            None => name.into(),
        };
        let id = u32::try_from(paths.info.len()).ok()?;
        paths.info.push(PathInfo { path, name, parent });
        paths.ids.insert((parent, name), id);
        Some(id)
    }

    /// Forgets every recorded timing and trace event. Spans still open keep counting and are
    /// recorded when they close.
    pub fn reset(&self) {
        let mut state = self.inner.state.lock();
        state.totals.clear();
        state.events.clear();
        state.dropped_events = 0;
    }

    /// Finished spans not kept for the trace because `max_events` was reached.
    pub fn dropped_events(&self) -> u64 {
        self.inner.state.lock().dropped_events
    }

    /// The recorded spans in Chrome's trace event format: "X" (complete) events with `ts` and
    /// `dur` in microseconds since the layer was created, sorted by start time.
    pub fn chrome_trace_json(&self) -> serde_json::Value {
        let mut events = self.inner.state.lock().events.clone();
        events.sort_by(|a, b| a.start.cmp(&b.start).then(b.dur.cmp(&a.dur)));
        let pid = std::process::id();
        let paths = self.inner.paths.read();
        let events: Vec<serde_json::Value> = events
            .iter()
            .filter_map(|e| {
                let info = paths.info.get(e.stage as usize)?;
                Some(serde_json::json!({
                    "name": info.name,
                    "cat": "stage",
                    "ph": "X",
                    "ts": e.start.as_secs_f64() * 1e6,
                    "dur": e.dur.as_secs_f64() * 1e6,
                    "pid": pid,
                    "tid": e.tid,
                    "args": { "path": &*info.path },
                }))
            })
            .collect();
        serde_json::json!({ "traceEvents": events, "displayTimeUnit": "ms" })
    }

    /// Writes [`chrome_trace_json`](StageLayer::chrome_trace_json) to `path`; open the file in
    /// <https://ui.perfetto.dev> or `chrome://tracing`.
    pub fn write_chrome_trace(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let json = self.chrome_trace_json();
        let io_err = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::create(path).map_err(io_err)?;
        let mut out = std::io::BufWriter::new(file);
        serde_json::to_writer(&mut out, &json).map_err(|e| io_err(e.into()))?;
        std::io::Write::flush(&mut out).map_err(io_err)
    }

    fn record(&self, t: &SpanTiming) {
        let mut state = self.inner.state.lock();
        let index = t.stage as usize;
        if state.totals.len() <= index {
            state.totals.resize(index + 1, Totals::default());
        }
        let s = &mut state.totals[index];
        if s.calls == 0 {
            s.min = t.busy;
            s.max = t.busy;
        } else {
            s.min = s.min.min(t.busy);
            s.max = s.max.max(t.busy);
        }
        s.calls += 1;
        s.total += t.busy;
        if self.inner.max_events == 0 {
            return;
        }
        let (Some(first), Some(last)) = (t.first_enter, t.last_exit) else {
            return;
        };
        if state.events.len() >= self.inner.max_events {
            state.dropped_events += 1;
            return;
        }
        state.events.push(TraceEvent {
            stage: t.stage,
            start: first.saturating_duration_since(self.inner.epoch),
            dur: last.saturating_duration_since(first),
            tid: t.tid,
        });
    }
}

impl<S> Layer<S> for StageLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, _attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<SpanTiming>().map(|t| t.stage));
        let Some(stage) = self.intern(parent, span.name()) else {
            return;
        };
        span.extensions_mut().insert(SpanTiming {
            stage,
            active: 0,
            since: None,
            busy: Duration::ZERO,
            first_enter: None,
            last_exit: None,
            tid: 0,
        });
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut ext = span.extensions_mut();
        if let Some(t) = ext.get_mut::<SpanTiming>() {
            let now = Instant::now();
            if t.active == 0 {
                t.since = Some(now);
            }
            if t.first_enter.is_none() {
                t.first_enter = Some(now);
                t.tid = thread_number();
            }
            t.active += 1;
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut ext = span.extensions_mut();
        if let Some(t) = ext.get_mut::<SpanTiming>() {
            let now = Instant::now();
            t.active = t.active.saturating_sub(1);
            if t.active == 0 {
                if let Some(since) = t.since.take() {
                    t.busy += now.saturating_duration_since(since);
                }
            }
            t.last_exit = Some(now);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let ext = span.extensions();
        if let Some(t) = ext.get::<SpanTiming>() {
            self.record(t);
        }
    }
}

/// One stage of a [`StageReport`].
#[derive(Clone, Debug, PartialEq)]
pub struct StageRow {
    /// Span names from the top-level stage down, joined by `/`.
    pub path: String,
    /// The span name of this stage.
    pub name: String,
    /// 0 for a top-level stage, 1 for its children, ...
    pub depth: usize,
    /// Spans of this path that closed.
    pub calls: u64,
    /// Busy time summed over calls.
    pub total: Duration,
    /// `total` minus the children's totals: time spent in this stage outside any sub-stage.
    pub self_time: Duration,
    /// `total / calls`.
    pub mean: Duration,
    pub min: Duration,
    pub max: Duration,
    /// Share in [0, 1] of the top-level stage this one belongs to; for a top-level stage, its
    /// share of all top-level stages' time.
    pub share: f64,
}

/// Recorded stage timings, as a tree flattened depth-first: each top-level stage followed by its
/// sub-stages, siblings ordered by total time (largest first, ties by path).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StageReport {
    rows: Vec<StageRow>,
}

impl StageReport {
    fn from_stats(stats: &BTreeMap<Arc<str>, StageStats>) -> StageReport {
        // A stage whose parent has not closed yet (or was recorded before a reset) is shown as
        // top-level rather than lost.
        let mut children: BTreeMap<Option<&str>, Vec<&str>> = BTreeMap::new();
        for (path, s) in stats {
            let parent = s.parent.as_deref().filter(|p| stats.contains_key(*p));
            children.entry(parent).or_default().push(path);
        }
        for list in children.values_mut() {
            list.sort_by(|a, b| stats[*b].total.cmp(&stats[*a].total).then(a.cmp(b)));
        }
        let roots = children.get(&None).cloned().unwrap_or_default();
        let all_roots: Duration = roots.iter().map(|p| stats[*p].total).sum();
        let mut rows = Vec::with_capacity(stats.len());
        // Depth-first, explicit stack of (path, depth, root total).
        let mut stack: Vec<(&str, usize, Duration)> =
            roots.iter().rev().map(|p| (*p, 0, all_roots)).collect();
        while let Some((path, depth, base)) = stack.pop() {
            let s = &stats[path];
            let kids = children.get(&Some(path)).map(Vec::as_slice).unwrap_or(&[]);
            let kids_total: Duration = kids.iter().map(|k| stats[*k].total).sum();
            let root_total = if depth == 0 { s.total } else { base };
            rows.push(StageRow {
                path: path.to_string(),
                name: s.name.to_string(),
                depth,
                calls: s.calls,
                total: s.total,
                self_time: s.total.saturating_sub(kids_total),
                mean: s.total / u32::try_from(s.calls.max(1)).unwrap_or(u32::MAX),
                min: s.min,
                max: s.max,
                share: ratio(s.total, base),
            });
            for k in kids.iter().rev() {
                stack.push((k, depth + 1, root_total));
            }
        }
        StageReport { rows }
    }

    /// All rows, depth-first.
    pub fn rows(&self) -> &[StageRow] {
        &self.rows
    }

    /// The row of one stage path, e.g. `"search/keyword"`.
    pub fn get(&self, path: &str) -> Option<&StageRow> {
        self.rows.iter().find(|r| r.path == path)
    }

    /// The `n` stages with the largest total time, at any depth.
    pub fn top(&self, n: usize) -> Vec<&StageRow> {
        let mut rows: Vec<&StageRow> = self.rows.iter().collect();
        rows.sort_by(|a, b| b.total.cmp(&a.total).then(a.path.cmp(&b.path)));
        rows.truncate(n);
        rows
    }

    /// True when no stage has been recorded.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

fn ratio(part: Duration, whole: Duration) -> f64 {
    if whole.is_zero() {
        0.0
    } else {
        part.as_secs_f64() / whole.as_secs_f64()
    }
}

/// A duration with a unit chosen for 3-4 significant digits.
fn human(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        format!("{:.2}µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2}ms", ns as f64 / 1e6)
    } else {
        format!("{:.3}s", ns as f64 / 1e9)
    }
}

impl fmt::Display for StageReport {
    /// An aligned table, sub-stages indented under their parent.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<String> = self
            .rows
            .iter()
            .map(|r| format!("{}{}", "  ".repeat(r.depth), r.name))
            .collect();
        let width = labels
            .iter()
            .map(|l| l.chars().count())
            .chain(std::iter::once("stage".len()))
            .max()
            .unwrap_or(5);
        writeln!(
            f,
            "{:<width$}  {:>8}  {:>10}  {:>10}  {:>10}  {:>6}",
            "stage", "calls", "total", "self", "mean", "share"
        )?;
        for (row, label) in self.rows.iter().zip(&labels) {
            // Pad by chars, not bytes, so non-ASCII names stay aligned.
            let pad = width - label.chars().count();
            writeln!(
                f,
                "{label}{:pad$}  {:>8}  {:>10}  {:>10}  {:>10}  {:>5.1}%",
                "",
                row.calls,
                human(row.total),
                human(row.self_time),
                human(row.mean),
                row.share * 100.0
            )?;
        }
        Ok(())
    }
}
