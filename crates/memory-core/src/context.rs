//! The context builder: packs a system prompt, tool definitions, retrieved memories and the recent
//! conversation into one prompt that never exceeds a token budget, dropping or truncating the
//! least valuable material first and reporting everything it left out.
//!
//! # Packing policy
//!
//! 1. The system prompt is mandatory. If its section alone costs more than the budget, building
//!    fails with [`Error::BudgetTooSmall`].
//! 2. Tools come next, in the caller's order; when they do not all fit, whole tools are dropped
//!    from the end (a tool is never truncated: half a schema is useless).
//! 3. The rest is shared between retrieved memories and recent turns: memories get
//!    `memory_share` of it, turns the remainder, and whatever one side leaves unused spills over
//!    to the other. Concretely: turns are packed within their share, then memories within all
//!    that the turns left, then turns again within all that the memories left.
//! 4. Recent turns are taken newest first (the oldest are dropped first) and rendered oldest
//!    first; memories are taken best score first (the lowest-scored are dropped first; a NaN
//!    score ranks last). With dates shown, memories of one day share one date line (`[2023-05-08]`,
//!    paid by the first memory of that day to be packed) and are rendered by day, the day of the
//!    best memory first and best first within a day; without dates they are rendered best first.
//!    In each of the two, the first item that does not fit whole
//!    may be truncated to a prefix, cut on a char boundary and marked with [`TRUNCATION_MARKER`],
//!    if at least `min_truncation_tokens` of its text would remain; every item after it is
//!    dropped.
//! 5. An entry is never shown twice: a memory whose id is among the packed turns is left out,
//!    and a turn whose id is among the packed memories is left out (both reported as
//!    [`OmissionReason::Duplicate`]).
//!
//! # Budget invariant
//!
//! Headers, separators and `role: ` prefixes are part of the sections and are counted. For a
//! built [`Context`], both `counter.count(&ctx.render())` (= `ctx.total_tokens`) and the sum of
//! the sections' `tokens` are at most the budget. Packing estimates with the sum of per-item
//! counts; since a BPE counter is not exactly additive over concatenation, the builder measures
//! the rendered result and, in the rare case it is over, repacks with the excess taken off.
//!
//! Output is deterministic: the same request and counter give the same context, byte for byte.

use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::clock::Date;
use crate::entry::{EntryId, MemoryEntry};
use crate::error::{Error, Result};
use crate::query::{SearchHit, SearchQuery};
use crate::stages;
use crate::tokens::{longest_prefix_where, HeuristicCounter, TokenCounter};

/// Appended to an item that was cut short to fit the budget.
pub const TRUNCATION_MARKER: &str = " …[truncated]";

/// The share of the flexible budget that retrieved memories get by default (turns get the rest).
pub const DEFAULT_MEMORY_SHARE: f32 = 0.5;

/// An item is only truncated if at least this many tokens of its text would remain, by default.
pub const DEFAULT_MIN_TRUNCATION_TOKENS: usize = 8;

const TOOLS_HEADER: &str = "## Tools\n";
const MEMORIES_HEADER: &str = "## Relevant memories\n";
const TURNS_HEADER: &str = "## Recent conversation\n";
const SECTION_END: &str = "\n";

/// How deeply a tool's parameter schema may nest (as entry metadata may, by default).
pub const MAX_TOOL_SCHEMA_DEPTH: usize = crate::config::MAX_METADATA_DEPTH;

/// A tool the model may call: its name, what it does, and a JSON schema of its parameters.
///
/// Construction validates it, so a `ToolDefinition` is always usable.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolDefinition {
    name: String,
    description: String,
    parameters: serde_json::Value,
}

impl ToolDefinition {
    /// A tool whose parameter schema is already parsed. The name must be non-empty with no white
    /// space or control characters; the schema must be a JSON object nested at most
    /// [`MAX_TOOL_SCHEMA_DEPTH`] levels deep.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: serde_json::Value,
    ) -> Result<Self> {
        let name = name.into();
        let invalid = |reason: &str| Error::InvalidTool {
            name: name.clone(),
            reason: reason.to_string(),
        };
        if name.is_empty() {
            return Err(invalid("the tool name is empty"));
        }
        if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "the tool name contains white space or control characters",
            ));
        }
        if !parameters.is_object() {
            return Err(invalid("the parameter schema is not a JSON object"));
        }
        // Rendering serializes the schema recursively: a value built in code can be nested
        // deeper than the stack holds (JSON text cannot: its parser stops at 128 levels).
        if crate::entry::json_depth(&parameters, MAX_TOOL_SCHEMA_DEPTH) > MAX_TOOL_SCHEMA_DEPTH {
            // Taken apart here, without recursion: dropped by the caller, it would overflow too.
            crate::entry::dismantle(parameters);
            return Err(invalid(&format!(
                "the parameter schema is nested deeper than {MAX_TOOL_SCHEMA_DEPTH} levels"
            )));
        }
        Ok(ToolDefinition {
            name,
            description: description.into(),
            parameters,
        })
    }

    /// A tool whose parameter schema is given as JSON text.
    ///
    /// ```
    /// use memory_core::context::ToolDefinition;
    ///
    /// let tool = ToolDefinition::from_json_schema(
    ///     "get_weather",
    ///     "Current weather for a city",
    ///     r#"{"type": "object", "properties": {"city": {"type": "string"}}}"#,
    /// )?;
    /// assert_eq!(tool.name(), "get_weather");
    /// assert!(ToolDefinition::from_json_schema("broken", "", "{not json").is_err());
    /// # Ok::<(), memory_core::Error>(())
    /// ```
    pub fn from_json_schema(
        name: impl Into<String>,
        description: impl Into<String>,
        schema: &str,
    ) -> Result<Self> {
        let name = name.into();
        let parameters: serde_json::Value =
            serde_json::from_str(schema).map_err(|e| Error::InvalidTool {
                name: name.clone(),
                reason: format!("the parameter schema is not valid JSON: {e}"),
            })?;
        ToolDefinition::new(name, description, parameters)
    }

    /// The tool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the tool does.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The JSON schema of the tool's parameters.
    pub fn parameters(&self) -> &serde_json::Value {
        &self.parameters
    }

    /// The tool as rendered in the prompt (one item of the tools section).
    fn render(&self) -> String {
        let params = serde_json::to_string(&self.parameters).unwrap_or_default();
        let description = self.description.trim();
        if description.is_empty() {
            format!("- {}\n  parameters: {params}\n", self.name)
        } else {
            format!("- {}: {description}\n  parameters: {params}\n", self.name)
        }
    }
}

/// Everything a context is built from, and the budget it must fit.
#[derive(Clone, Copy, Debug)]
pub struct ContextMaterial<'a> {
    /// Mandatory instructions, rendered first; empty or white space only means no system section.
    pub system_prompt: &'a str,
    /// Tools, most important first.
    pub tools: &'a [ToolDefinition],
    /// The session's short-term window, oldest first.
    pub recent_turns: &'a [MemoryEntry],
    /// Retrieved memories for the current query (ranked by `score`, higher is better).
    pub memories: &'a [SearchHit],
    /// Most tokens the rendered prompt may cost.
    pub budget: usize,
    /// Share in [0, 1] of the budget left after system prompt and tools that memories get.
    pub memory_share: f32,
    /// An item is truncated only if at least this many tokens of its text would remain.
    pub min_truncation_tokens: usize,
    /// Whether memories show the day they were written (UTC): a memory out of an old session
    /// says "yesterday" or "last week", and only its date lets a model answer when something
    /// happened. Memories of one day are listed under one date line (`[2023-05-08]`), so the
    /// dates cost about 8 tokens a day shown rather than a memory. On by default.
    pub memory_dates: bool,
}

impl<'a> ContextMaterial<'a> {
    /// A request with no tools, turns or memories, and the default split.
    pub fn new(system_prompt: &'a str, budget: usize) -> Self {
        ContextMaterial {
            system_prompt,
            tools: &[],
            recent_turns: &[],
            memories: &[],
            budget,
            memory_share: DEFAULT_MEMORY_SHARE,
            min_truncation_tokens: DEFAULT_MIN_TRUNCATION_TOKENS,
            memory_dates: true,
        }
    }

    /// Sets the tools.
    pub fn with_tools(mut self, tools: &'a [ToolDefinition]) -> Self {
        self.tools = tools;
        self
    }

    /// Sets the recent conversation (oldest first).
    pub fn with_recent_turns(mut self, turns: &'a [MemoryEntry]) -> Self {
        self.recent_turns = turns;
        self
    }

    /// Sets the retrieved memories.
    pub fn with_memories(mut self, memories: &'a [SearchHit]) -> Self {
        self.memories = memories;
        self
    }

    /// Sets the share of the flexible budget memories get; turns get the rest.
    pub fn with_memory_share(mut self, share: f32) -> Self {
        self.memory_share = share;
        self
    }

    /// Sets the least text, in tokens, worth keeping of a truncated item.
    pub fn with_min_truncation_tokens(mut self, tokens: usize) -> Self {
        self.min_truncation_tokens = tokens;
        self
    }

    /// Shows (the default) or hides the date of each memory.
    pub fn with_memory_dates(mut self, shown: bool) -> Self {
        self.memory_dates = shown;
        self
    }
}

/// What [`Memory::build_context`](crate::Memory::build_context) builds a prompt from.
#[derive(Clone, Debug)]
pub struct ContextQuery {
    /// The retrieval for the current turn (its agent is the context's agent).
    pub query: SearchQuery,
    /// The session whose recent window is included.
    pub session: String,
    pub system_prompt: String,
    pub tools: Vec<ToolDefinition>,
    /// Most tokens the prompt may cost.
    pub budget: usize,
    /// How many recent turns of the session to consider (default: all of the window).
    pub recent_turns: usize,
    /// Share of the flexible budget given to retrieved memories (default 0.5).
    pub memory_share: f32,
    /// Whether each memory shows the day it was written (default true; see
    /// [`ContextMaterial::memory_dates`]).
    pub memory_dates: bool,
}

impl ContextQuery {
    /// A prompt for `query`'s agent: the session's whole recent window, no tools, the default
    /// split between memories and turns.
    pub fn new(
        query: SearchQuery,
        session: impl Into<String>,
        system_prompt: impl Into<String>,
        budget: usize,
    ) -> Self {
        ContextQuery {
            query,
            session: session.into(),
            system_prompt: system_prompt.into(),
            tools: Vec::new(),
            budget,
            recent_turns: usize::MAX,
            memory_share: DEFAULT_MEMORY_SHARE,
            memory_dates: true,
        }
    }

    /// Sets the tools offered to the model, most important first.
    pub fn with_tools(mut self, tools: Vec<ToolDefinition>) -> Self {
        self.tools = tools;
        self
    }

    /// Sets how many recent turns of the session to consider.
    pub fn with_recent_turns(mut self, n: usize) -> Self {
        self.recent_turns = n;
        self
    }

    /// Sets the share in [0, 1] of the flexible budget that retrieved memories get.
    pub fn with_memory_share(mut self, share: f32) -> Self {
        self.memory_share = share;
        self
    }

    /// Shows (the default) or hides the date of each memory.
    pub fn with_memory_dates(mut self, shown: bool) -> Self {
        self.memory_dates = shown;
        self
    }
}

/// What a section of the prompt holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SectionKind {
    System,
    Tools,
    Memories,
    Conversation,
}

/// One section of a built context.
#[derive(Clone, Debug, PartialEq)]
pub struct ContextSection {
    pub kind: SectionKind,
    /// The rendered text, header and trailing blank line included.
    pub text: String,
    /// `counter.count(&text)`.
    pub tokens: usize,
    /// Entries shown in this section, in render order (empty for system and tools).
    pub entries: Vec<EntryId>,
}

/// An item the context left out, in whole or in part.
#[derive(Clone, Debug, PartialEq)]
pub enum OmittedItem {
    Tool { name: String },
    Memory { id: EntryId, score: f32 },
    Turn { id: EntryId },
}

/// Why an item was left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OmissionReason {
    /// It did not fit in the budget.
    OverBudget,
    /// Only a prefix of its text fits; the rest was cut.
    Truncated {
        kept_bytes: usize,
        original_bytes: usize,
    },
    /// The same entry is already shown in another section (or earlier in this one).
    Duplicate,
}

/// One item left out, with the tokens it would have cost in full.
#[derive(Clone, Debug, PartialEq)]
pub struct Omission {
    pub item: OmittedItem,
    pub reason: OmissionReason,
    /// What the item costs rendered whole.
    pub tokens: usize,
}

/// A packed prompt: sections in render order, their costs, and what was left out.
#[derive(Clone, Debug, PartialEq)]
pub struct Context {
    /// Non-empty sections in render order: system, tools, memories, conversation.
    pub sections: Vec<ContextSection>,
    /// `counter.count(&self.render())`; never above `budget`.
    pub total_tokens: usize,
    pub budget: usize,
    /// Everything left out or cut: tools, then memories (best first), then turns (newest first).
    pub omitted: Vec<Omission>,
}

impl Context {
    /// The prompt: the sections' texts concatenated.
    pub fn render(&self) -> String {
        let len = self.sections.iter().map(|s| s.text.len()).sum();
        let mut out = String::with_capacity(len);
        for s in &self.sections {
            out.push_str(&s.text);
        }
        out
    }

    /// The section of one kind, if the context has it.
    pub fn section(&self, kind: SectionKind) -> Option<&ContextSection> {
        self.sections.iter().find(|s| s.kind == kind)
    }
}

/// Builds contexts with one token counter.
#[derive(Clone)]
pub struct ContextBuilder {
    counter: Arc<dyn TokenCounter>,
}

impl Default for ContextBuilder {
    /// A builder with the fast [`HeuristicCounter`].
    fn default() -> Self {
        ContextBuilder::new(Arc::new(HeuristicCounter))
    }
}

impl std::fmt::Debug for ContextBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextBuilder")
            .field("counter", &self.counter.name())
            .finish()
    }
}

/// One item that may go into a section.
struct Candidate<'a> {
    /// The part kept even when truncated (`- `, `user: `).
    prefix: String,
    /// The truncatable text; `None` for items that are all-or-nothing (tools).
    content: Option<&'a str>,
    /// The group whose header line this item is listed under (a memory's day), an index into
    /// the pool's groups.
    group: Option<usize>,
    /// The item rendered whole.
    full: String,
    /// `counter.count(&full)`.
    cost: usize,
    item: OmittedItem,
    id: Option<EntryId>,
}

/// A header line that items of a section share (a memory's day), paid for once by the first of
/// them to be placed.
struct Group {
    header: String,
    /// `counter.count(&header)`.
    cost: usize,
}

/// One item placed in a section: a candidate index and, when cut, its truncated rendering.
struct Placed {
    index: usize,
    truncated: Option<(String, usize)>,
}

/// The result of packing one pool of candidates.
#[derive(Default)]
struct Packed {
    placed: Vec<Placed>,
    /// Estimated cost: frame plus the items' individual counts.
    used: usize,
}

impl Packed {
    fn ids<'c>(&'c self, cands: &'c [Candidate<'_>]) -> impl Iterator<Item = EntryId> + 'c {
        self.placed.iter().filter_map(|p| cands[p.index].id)
    }
}

impl ContextBuilder {
    /// A builder counting tokens with `counter`.
    pub fn new(counter: Arc<dyn TokenCounter>) -> Self {
        ContextBuilder { counter }
    }

    /// The builder's token counter.
    pub fn counter(&self) -> &dyn TokenCounter {
        &*self.counter
    }

    /// Packs `req` into a context under its budget, following the module's policy.
    ///
    /// Errors: [`Error::BudgetTooSmall`] when the system prompt alone does not fit,
    /// [`Error::InvalidQuery`] for a `memory_share` outside [0, 1], [`Error::InvalidTool`] when
    /// two tools share a name.
    pub fn build(&self, req: &ContextMaterial<'_>) -> Result<Context> {
        let _pack = tracing::debug_span!(stages::PACK, budget = req.budget).entered();
        let counter = &*self.counter;
        let system = self.system_section(req)?;
        let pools = Pools::new(counter, req);
        let mut effective = req.budget;
        loop {
            let packing = pools.pack(counter, req, effective.saturating_sub(system.tokens));
            let mut ctx = {
                let _render = tracing::debug_span!(stages::RENDER).entered();
                render(counter, req.budget, &system, &pools, &packing)
            };
            let sum: usize = ctx.sections.iter().map(|s| s.tokens).sum();
            let worst = ctx.total_tokens.max(sum);
            if worst > req.budget && effective > system.tokens {
                // The counter is not additive here; take the excess off and pack again. Each
                // round lowers `effective`, and with only the system prompt left it fits.
                effective = effective
                    .saturating_sub(worst - req.budget)
                    .max(system.tokens);
                tracing::debug!(effective, "context over budget after rendering; repacking");
                continue;
            }
            ctx.omitted = omissions(
                &[
                    (&pools.tools[..], &packing.tools, &FxHashSet::default()),
                    (&pools.memories[..], &packing.memories, &packing.shown_turns),
                    (&pools.turns[..], &packing.turns, &packing.shown_memories),
                ][..],
            );
            return Ok(ctx);
        }
    }
}

impl ContextBuilder {
    /// Everything [`build`](Self::build) refuses, checked without the turns and memories (which
    /// no check looks at): `Memory::build_context` asks before it retrieves them, since a
    /// retrieval records accesses.
    pub(crate) fn check(&self, req: &ContextMaterial<'_>) -> Result<()> {
        self.system_section(req).map(drop)
    }

    /// The system section of `req`, once the request is checked and the section fits its budget.
    fn system_section(&self, req: &ContextMaterial<'_>) -> Result<SystemSection> {
        check_material(req)?;
        let system = SystemSection::new(&*self.counter, req.system_prompt);
        if system.tokens > req.budget {
            return Err(Error::BudgetTooSmall {
                budget: req.budget,
                needed: system.tokens,
            });
        }
        Ok(system)
    }
}

/// Rejects material the builder cannot pack as asked.
fn check_material(req: &ContextMaterial<'_>) -> Result<()> {
    if !(0.0..=1.0).contains(&req.memory_share) {
        // A field of the request, like the query's own.
        return Err(Error::InvalidQuery(format!(
            "memory_share {} is outside [0, 1]",
            req.memory_share
        )));
    }
    let mut names = FxHashSet::default();
    for t in req.tools {
        if !names.insert(t.name()) {
            return Err(Error::InvalidTool {
                name: t.name().to_string(),
                reason: "two tools have this name".to_string(),
            });
        }
    }
    Ok(())
}

/// The system prompt as rendered, and its cost.
struct SystemSection {
    text: String,
    tokens: usize,
}

impl SystemSection {
    fn new(counter: &dyn TokenCounter, prompt: &str) -> Self {
        let text = if prompt.trim().is_empty() {
            String::new()
        } else {
            format!("{}\n{SECTION_END}", prompt.trim_end())
        };
        SystemSection {
            tokens: counter.count(&text),
            text,
        }
    }
}

/// The candidates of each section, each counted once (repacking only re-adds these numbers),
/// and the cost of each section's frame.
struct Pools<'a> {
    tools: Vec<Candidate<'a>>,
    /// Best score first.
    memories: Vec<Candidate<'a>>,
    /// The date lines the memories are listed under (none when dates are hidden).
    memory_groups: Vec<Group>,
    /// Newest first.
    turns: Vec<Candidate<'a>>,
    tools_frame: usize,
    memories_frame: usize,
    turns_frame: usize,
}

/// What one packing round placed, and the entries shown in each section (for deduplication
/// across them).
struct Packing {
    tools: Packed,
    memories: Packed,
    turns: Packed,
    shown_turns: FxHashSet<EntryId>,
    shown_memories: FxHashSet<EntryId>,
}

impl<'a> Pools<'a> {
    fn new(counter: &dyn TokenCounter, req: &ContextMaterial<'a>) -> Self {
        let tools = req
            .tools
            .iter()
            .map(|t| {
                let full = t.render();
                Candidate {
                    prefix: String::new(),
                    content: None,
                    group: None,
                    cost: counter.count(&full),
                    full,
                    item: OmittedItem::Tool {
                        name: t.name().to_string(),
                    },
                    id: None,
                }
            })
            .collect();
        let mut ranked: Vec<&SearchHit> = req.memories.iter().collect();
        // Stable, so equal scores keep the caller's order; NaN ranks last.
        let key = |h: &SearchHit| {
            if h.score.is_nan() {
                f32::NEG_INFINITY
            } else {
                h.score
            }
        };
        ranked.sort_by(|a, b| key(b).total_cmp(&key(a)));
        let mut memory_groups: Vec<Group> = Vec::new();
        let mut day_groups: FxHashMap<Date, usize> = FxHashMap::default();
        let memories = ranked
            .iter()
            .map(|h| {
                let mut c = entry_candidate(counter, "- ".to_string(), &h.entry, Some(h.score));
                if req.memory_dates {
                    let day = h.entry.created_at.date();
                    let next = memory_groups.len();
                    let g = *day_groups.entry(day).or_insert(next);
                    if g == next {
                        let header = format!("[{day}]\n");
                        memory_groups.push(Group {
                            cost: counter.count(&header),
                            header,
                        });
                    }
                    c.group = Some(g);
                }
                c
            })
            .collect();
        let turns = req
            .recent_turns
            .iter()
            .rev()
            .map(|e| entry_candidate(counter, format!("{}: ", e.role), e, None))
            .collect();
        let frame = |header: &str| counter.count(header) + counter.count(SECTION_END);
        Pools {
            tools,
            memories,
            memory_groups,
            turns,
            tools_frame: frame(TOOLS_HEADER),
            memories_frame: frame(MEMORIES_HEADER),
            turns_frame: frame(TURNS_HEADER),
        }
    }

    /// Packs tools, then turns within their share, memories within what the turns left, and
    /// turns again within what the memories left (see the module's packing policy), into
    /// `extra` tokens beyond the system prompt.
    fn pack(&self, counter: &dyn TokenCounter, req: &ContextMaterial<'_>, extra: usize) -> Packing {
        let all_tools: Vec<usize> = (0..self.tools.len()).collect();
        let tools = {
            let _s = tracing::debug_span!(stages::PACK_TOOLS).entered();
            pack(
                counter,
                &self.tools,
                &[],
                &all_tools,
                self.tools_frame,
                extra,
                None,
            )
        };
        let flexible = extra.saturating_sub(tools.used);
        // Truncation toward zero keeps memories within their share.
        let memory_share = (flexible as f64 * f64::from(req.memory_share)) as usize;
        let turn_share = flexible - memory_share.min(flexible);
        let trunc = Some(req.min_truncation_tokens);
        let pack_turns = |eligible: &[usize], avail: usize| {
            let _s = tracing::debug_span!(stages::PACK_TURNS).entered();
            pack(
                counter,
                &self.turns,
                &[],
                eligible,
                self.turns_frame,
                avail,
                trunc,
            )
        };

        let first_turns = pack_turns(
            &unique_indices(&self.turns, &FxHashSet::default()),
            turn_share,
        );
        let shown_turns: FxHashSet<EntryId> = first_turns.ids(&self.turns).collect();
        let memories = {
            let _s = tracing::debug_span!(stages::PACK_MEMORIES).entered();
            pack(
                counter,
                &self.memories,
                &self.memory_groups,
                &unique_indices(&self.memories, &shown_turns),
                self.memories_frame,
                flexible.saturating_sub(first_turns.used),
                trunc,
            )
        };
        let shown_memories: FxHashSet<EntryId> = memories.ids(&self.memories).collect();
        let turns = pack_turns(
            &unique_indices(&self.turns, &shown_memories),
            flexible.saturating_sub(memories.used),
        );
        Packing {
            tools,
            memories,
            turns,
            shown_turns,
            shown_memories,
        }
    }
}

/// Renders the packed sections: system, tools, memories (best first, by day when dated),
/// conversation (oldest first), each counted as rendered, and the whole prompt counted once more.
fn render(
    counter: &dyn TokenCounter,
    budget: usize,
    system: &SystemSection,
    pools: &Pools<'_>,
    packing: &Packing,
) -> Context {
    let mut sections = Vec::with_capacity(4);
    if !system.text.is_empty() {
        sections.push(ContextSection {
            kind: SectionKind::System,
            text: system.text.clone(),
            tokens: system.tokens,
            entries: Vec::new(),
        });
    }
    let mut turn_order = packing.turns.placed.iter().collect::<Vec<_>>();
    // Selected newest first, shown oldest first.
    turn_order.reverse();
    for (kind, header, cands, placed) in [
        (
            SectionKind::Tools,
            TOOLS_HEADER,
            &pools.tools,
            packing.tools.placed.iter().collect::<Vec<_>>(),
        ),
        (
            SectionKind::Memories,
            MEMORIES_HEADER,
            &pools.memories,
            packing.memories.placed.iter().collect(),
        ),
        (
            SectionKind::Conversation,
            TURNS_HEADER,
            &pools.turns,
            turn_order,
        ),
    ] {
        if placed.is_empty() {
            continue;
        }
        let placed = if kind == SectionKind::Memories {
            by_group(cands, placed)
        } else {
            placed
        };
        let mut text = String::from(header);
        let mut group = None;
        for p in &placed {
            let c = &cands[p.index];
            if c.group.is_some() && c.group != group {
                group = c.group;
                if let Some(g) = group {
                    text.push_str(&pools.memory_groups[g].header);
                }
            }
            match &p.truncated {
                Some((line, _)) => text.push_str(line),
                None => text.push_str(&c.full),
            }
        }
        text.push_str(SECTION_END);
        sections.push(ContextSection {
            kind,
            tokens: counter.count(&text),
            text,
            entries: placed.iter().filter_map(|p| cands[p.index].id).collect(),
        });
    }
    let mut ctx = Context {
        sections,
        total_tokens: 0,
        budget,
        omitted: Vec::new(),
    };
    ctx.total_tokens = counter.count(&ctx.render());
    ctx
}

/// `placed` (in packing order) with each group's items moved up behind the first of that group,
/// so groups come in the order of their first item and keep their items' order.
fn by_group<'p>(cands: &[Candidate<'_>], placed: Vec<&'p Placed>) -> Vec<&'p Placed> {
    let mut rank: FxHashMap<usize, usize> = FxHashMap::default();
    let mut keyed: Vec<(usize, &Placed)> = placed
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let key = match cands[p.index].group {
                Some(g) => *rank.entry(g).or_insert(i),
                None => i,
            };
            (key, p)
        })
        .collect();
    // Stable: a group's items keep their packing order.
    keyed.sort_by_key(|&(key, _)| key);
    keyed.into_iter().map(|(_, p)| p).collect()
}

/// A memory or turn as a candidate: `prefix` then its content on one item.
fn entry_candidate<'a>(
    counter: &dyn TokenCounter,
    prefix: String,
    entry: &'a MemoryEntry,
    score: Option<f32>,
) -> Candidate<'a> {
    let full = format!("{prefix}{}\n", entry.content);
    Candidate {
        cost: counter.count(&full),
        full,
        prefix,
        content: Some(&entry.content),
        item: match score {
            Some(score) => OmittedItem::Memory {
                id: entry.id,
                score,
            },
            None => OmittedItem::Turn { id: entry.id },
        },
        group: None,
        id: Some(entry.id),
    }
}

/// Indices of candidates whose id is neither in `exclude` nor seen earlier in the list.
fn unique_indices(cands: &[Candidate<'_>], exclude: &FxHashSet<EntryId>) -> Vec<usize> {
    let mut seen = FxHashSet::default();
    cands
        .iter()
        .enumerate()
        .filter(|(_, c)| match c.id {
            Some(id) => !exclude.contains(&id) && seen.insert(id),
            None => true,
        })
        .map(|(i, _)| i)
        .collect()
}

/// Takes `eligible` candidates in order while they fit in `avail` (the section frame is paid
/// with the first item, a group's header with the first item of its group); the first that does
/// not fit is truncated when `min_truncation` allows, and it and all after it are otherwise left
/// out.
fn pack(
    counter: &dyn TokenCounter,
    cands: &[Candidate<'_>],
    groups: &[Group],
    eligible: &[usize],
    frame: usize,
    avail: usize,
    min_truncation: Option<usize>,
) -> Packed {
    let mut out = Packed::default();
    if avail == 0 {
        return out;
    }
    let mut opened = vec![false; groups.len()];
    for &i in eligible {
        let c = &cands[i];
        let mut frame_cost = if out.placed.is_empty() { frame } else { 0 };
        if let Some(g) = c.group.filter(|&g| !opened[g]) {
            frame_cost += groups[g].cost;
        }
        if out.used + frame_cost + c.cost <= avail {
            if let Some(g) = c.group {
                opened[g] = true;
            }
            out.used += frame_cost + c.cost;
            out.placed.push(Placed {
                index: i,
                truncated: None,
            });
            continue;
        }
        let room = avail.saturating_sub(out.used + frame_cost);
        if let (Some(min), Some(content)) = (min_truncation, c.content) {
            if room > 0 {
                if let Some((line, cost, kept)) = truncate(counter, &c.prefix, content, room, min) {
                    if let Some(g) = c.group {
                        opened[g] = true;
                    }
                    out.used += frame_cost + cost;
                    out.placed.push(Placed {
                        index: i,
                        truncated: Some((line, kept)),
                    });
                }
            }
        }
        break;
    }
    out
}

/// `prefix` + the longest prefix of `content` + marker that costs at most `room`, with its cost
/// and the bytes of content kept; `None` when less than `min_tokens` of text would remain.
fn truncate(
    counter: &dyn TokenCounter,
    prefix: &str,
    content: &str,
    room: usize,
    min_tokens: usize,
) -> Option<(String, usize, usize)> {
    let _s = tracing::debug_span!(stages::TRUNCATE).entered();
    let mut line =
        String::with_capacity(prefix.len() + content.len() + TRUNCATION_MARKER.len() + 1);
    let mut render = |kept: &str| {
        line.clear();
        line.push_str(prefix);
        line.push_str(kept);
        line.push_str(TRUNCATION_MARKER);
        line.push('\n');
        counter.count(&line)
    };
    let bare = render("");
    if room < bare.saturating_add(min_tokens) {
        return None;
    }
    let kept = longest_prefix_where(content, |p| render(p) <= room)?;
    if content[..kept].trim().is_empty() || counter.count(&content[..kept]) < min_tokens {
        return None;
    }
    let cost = render(&content[..kept]);
    Some((line, cost, kept))
}

/// Everything not placed whole, in pool order: truncations, duplicates, and the rest as over
/// budget. `shown_elsewhere` holds the ids placed in another section.
fn omissions(pools: &[(&[Candidate<'_>], &Packed, &FxHashSet<EntryId>)]) -> Vec<Omission> {
    let mut out = Vec::new();
    for (cands, packed, shown_elsewhere) in pools {
        let mut placement: Vec<Option<&Placed>> = vec![None; cands.len()];
        for p in &packed.placed {
            placement[p.index] = Some(p);
        }
        let mut seen = FxHashSet::default();
        for (c, placed) in cands.iter().zip(placement) {
            let reason = match placed {
                Some(p) => {
                    if let Some(id) = c.id {
                        seen.insert(id);
                    }
                    match &p.truncated {
                        None => continue,
                        Some((_, kept)) => OmissionReason::Truncated {
                            kept_bytes: *kept,
                            original_bytes: c.content.map_or(0, str::len),
                        },
                    }
                }
                None => match c.id {
                    Some(id) if shown_elsewhere.contains(&id) || seen.contains(&id) => {
                        OmissionReason::Duplicate
                    }
                    _ => OmissionReason::OverBudget,
                },
            };
            out.push(Omission {
                item: c.item.clone(),
                reason,
                tokens: c.cost,
            });
        }
    }
    out
}
