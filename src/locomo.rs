//! Conversation datasets in the LoCoMo JSON format: long multi-session conversations between two
//! speakers whose questions name their evidence turns by `dia_id`. Reading is tolerant (extra
//! fields are ignored, answers may be numbers, malformed evidence ids are counted, never fatal);
//! a file that cannot be read or is not this format at all is a [`DatasetError`] naming the path.
//!
//! The shape, per conversation ("sample"):
//!
//! ```json
//! {"sample_id": "conv-1",
//!  "conversation": {"speaker_a": "Ana", "speaker_b": "Ben",
//!                   "session_1_date_time": "1:56 pm on 8 May, 2023",
//!                   "session_1": [{"speaker": "Ana", "dia_id": "D1:1", "text": "..."}]},
//!  "qa": [{"question": "...", "answer": "...", "evidence": ["D1:1"], "category": 4}]}
//! ```
//!
//! A turn that shares a photo carries its generated caption as `blip_caption` (beside `img_url`
//! and `query`); the caption is part of the turn's memory ([`Turn::content`]), since questions
//! ask about what was in the photo.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

/// Why a dataset could not be read. Each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read dataset {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("dataset {path} is not valid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("dataset {path} is not in the LoCoMo format: {problem}")]
    Shape { path: PathBuf, problem: String },
}

/// A whole dataset: one or more conversations.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub conversations: Vec<Conversation>,
}

/// One conversation ("sample") with its questions.
#[derive(Clone, Debug, PartialEq)]
pub struct Conversation {
    /// Unique within the dataset (a repeated id gets a `#2`, `#3` suffix when read).
    pub sample_id: String,
    pub speaker_a: String,
    pub speaker_b: String,
    /// In session-number order.
    pub sessions: Vec<Session>,
    pub questions: Vec<Question>,
    /// Turns left out while reading (not an object, or without `dia_id` or `text`).
    pub skipped_turns: usize,
    /// Turns whose `dia_id` repeats an earlier one (kept as turns; evidence finds the first).
    pub duplicate_dia_ids: usize,
    /// Question items left out while reading (not an object, or without question text).
    pub skipped_questions: usize,
}

/// One session: a dated run of turns.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    /// `N` of `session_N`.
    pub number: u32,
    /// `session_N_date_time` as written, e.g. `1:56 pm on 8 May, 2023`.
    pub date_time: Option<String>,
    pub turns: Vec<Turn>,
}

/// One turn of a session.
#[derive(Clone, Debug, PartialEq)]
pub struct Turn {
    pub speaker: String,
    /// `D<session>:<turn>` in LoCoMo.
    pub dia_id: String,
    pub text: String,
    /// What a photo the speaker shared shows (LoCoMo's `blip_caption`, a generated caption of
    /// `img_url`): "a photo of a painting of a sunset". The turn's text often only says "here it
    /// is", so the caption is part of what the turn tells.
    pub image_caption: Option<String>,
}

impl Turn {
    /// The turn as a memory holds it: `Speaker: text`, and the shared photo's caption in
    /// brackets (`[image: a photo of a dog in a boat]`).
    pub fn content(&self) -> String {
        let mut out = format!("{}:", self.speaker);
        if !self.text.is_empty() {
            out.push(' ');
            out.push_str(&self.text);
        }
        if let Some(caption) = &self.image_caption {
            out.push_str(" [image: ");
            out.push_str(caption);
            out.push(']');
        }
        out
    }
}

/// One question and the turns that answer it.
#[derive(Clone, Debug, PartialEq)]
pub struct Question {
    pub question: String,
    /// `None` for adversarial questions, which carry `adversarial_answer` instead.
    pub answer: Option<String>,
    pub adversarial_answer: Option<String>,
    /// Evidence ids exactly as written (resolved against the turns by [`Conversation::resolve`]).
    pub evidence: Vec<Value>,
    /// The category as written: LoCoMo uses 1 multi-hop, 2 temporal, 3 open-domain,
    /// 4 single-hop, 5 adversarial; see [`category_name`].
    pub category: String,
}

/// LoCoMo's name of a category code (`"4"` → `"single-hop"`); other labels are their own name.
pub fn category_name(category: &str) -> &str {
    match category {
        "1" => "multi-hop",
        "2" => "temporal",
        "3" => "open-domain",
        "4" => "single-hop",
        "5" => "adversarial",
        other => other,
    }
}

impl Dataset {
    /// Reads a dataset file.
    pub fn load(path: &Path) -> Result<Dataset, DatasetError> {
        let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Dataset::parse(&text, path)
    }

    /// Parses a dataset from JSON text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Dataset, DatasetError> {
        let value: Value = serde_json::from_str(text).map_err(|source| DatasetError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        let shape = |problem: String| DatasetError::Shape {
            path: path.to_path_buf(),
            problem,
        };
        // A list of samples; a single sample object is accepted too.
        let samples = match value {
            Value::Array(items) => items,
            Value::Object(map) if map.contains_key("conversation") => vec![Value::Object(map)],
            other => {
                return Err(shape(format!(
                    "the top level is {}, not a list of conversations",
                    kind(&other)
                )))
            }
        };
        let mut seen_ids: HashMap<String, usize> = HashMap::new();
        let mut conversations = Vec::with_capacity(samples.len());
        for (i, sample) in samples.into_iter().enumerate() {
            let mut conv = parse_sample(sample, i).map_err(shape)?;
            let n = seen_ids.entry(conv.sample_id.clone()).or_insert(0);
            *n += 1;
            if *n > 1 {
                conv.sample_id = format!("{}#{n}", conv.sample_id);
            }
            conversations.push(conv);
        }
        Ok(Dataset { conversations })
    }

    /// The dataset as LoCoMo JSON (what [`Dataset::parse`] reads back).
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.conversations
                .iter()
                .map(Conversation::to_json)
                .collect(),
        )
    }

    /// Turns in all conversations.
    pub fn turns(&self) -> usize {
        self.conversations.iter().map(Conversation::turns).sum()
    }

    /// Questions in all conversations.
    pub fn questions(&self) -> usize {
        self.conversations.iter().map(|c| c.questions.len()).sum()
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A string field, or a number written as one (answers and ids are sometimes numbers).
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn parse_sample(sample: Value, index: usize) -> Result<Conversation, String> {
    let Value::Object(mut sample) = sample else {
        return Err(format!(
            "item {index} of the list is {}, not a conversation object",
            kind(&sample)
        ));
    };
    let sample_id = sample
        .get("sample_id")
        .and_then(text_of)
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| format!("sample-{index}"));
    let conversation = match sample.remove("conversation") {
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(format!(
                "conversation {sample_id:?}: \"conversation\" is {}, not an object",
                kind(&other)
            ))
        }
        None => {
            return Err(format!(
                "conversation {sample_id:?} (item {index}) has no \"conversation\" field"
            ))
        }
    };
    let mut conv = parse_conversation(&sample_id, conversation)?;
    conv.questions = match sample.remove("qa") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let questions: Vec<Question> = items.iter().filter_map(parse_question).collect();
            conv.skipped_questions = items.len() - questions.len();
            questions
        }
        Some(other) => {
            return Err(format!(
                "conversation {sample_id:?}: \"qa\" is {}, not a list",
                kind(&other)
            ))
        }
    };
    Ok(conv)
}

fn parse_conversation(sample_id: &str, map: Map<String, Value>) -> Result<Conversation, String> {
    let speaker = |key: &str| map.get(key).and_then(text_of).unwrap_or_default();
    let (speaker_a, speaker_b) = (speaker("speaker_a"), speaker("speaker_b"));
    let mut sessions: BTreeMap<u32, Session> = BTreeMap::new();
    let mut skipped_turns = 0;
    for (key, value) in &map {
        let Some(rest) = key.strip_prefix("session_") else {
            continue;
        };
        if let Some(n) = rest.strip_suffix("_date_time") {
            if let Ok(n) = n.parse::<u32>() {
                session_mut(&mut sessions, n).date_time = text_of(value);
            }
            continue;
        }
        let Ok(n) = rest.parse::<u32>() else {
            continue; // session_N_summary, session_N_observation and the like
        };
        let Value::Array(items) = value else {
            return Err(format!(
                "conversation {sample_id:?}: {key} is {}, not a list of turns",
                kind(value)
            ));
        };
        let session = session_mut(&mut sessions, n);
        for item in items {
            match parse_turn(item) {
                Some(turn) => session.turns.push(turn),
                None => skipped_turns += 1,
            }
        }
    }
    let sessions: Vec<Session> = sessions
        .into_values()
        .filter(|s| !s.turns.is_empty())
        .collect();
    let mut seen = HashSet::new();
    let duplicate_dia_ids = sessions
        .iter()
        .flat_map(|s| &s.turns)
        .filter(|t| !seen.insert(t.dia_id.as_str()))
        .count();
    Ok(Conversation {
        sample_id: sample_id.to_string(),
        speaker_a,
        speaker_b,
        sessions,
        questions: Vec::new(),
        skipped_turns,
        duplicate_dia_ids,
        skipped_questions: 0,
    })
}

fn session_mut(sessions: &mut BTreeMap<u32, Session>, n: u32) -> &mut Session {
    sessions.entry(n).or_insert_with(|| Session {
        number: n,
        date_time: None,
        turns: Vec::new(),
    })
}

/// A turn item; `None` (skipped) without a `dia_id`, or with neither text nor a photo caption.
fn parse_turn(item: &Value) -> Option<Turn> {
    let dia_id = item.get("dia_id").and_then(text_of)?;
    let image_caption = item
        .get("blip_caption")
        .and_then(text_of)
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    let text = match item.get("text").and_then(text_of) {
        Some(text) => text,
        None if image_caption.is_some() => String::new(),
        None => return None,
    };
    let speaker = item.get("speaker").and_then(text_of).unwrap_or_default();
    Some(Turn {
        speaker,
        dia_id,
        text,
        image_caption,
    })
}

/// A question item; `None` (skipped) when it has no question text.
fn parse_question(item: &Value) -> Option<Question> {
    let question = item
        .get("question")
        .and_then(text_of)
        .filter(|q| !q.trim().is_empty())?;
    let evidence = match item.get("evidence") {
        Some(Value::Array(ids)) => ids.clone(),
        None | Some(Value::Null) => Vec::new(),
        Some(single) => vec![single.clone()],
    };
    Some(Question {
        question,
        answer: item.get("answer").and_then(text_of),
        adversarial_answer: item.get("adversarial_answer").and_then(text_of),
        evidence,
        category: item
            .get("category")
            .and_then(text_of)
            .unwrap_or_else(|| "none".to_string()),
    })
}

impl Conversation {
    /// Turns in all sessions.
    pub fn turns(&self) -> usize {
        self.sessions.iter().map(|s| s.turns.len()).sum()
    }

    /// Every turn with its session, in conversation order; a turn's position here is its index
    /// in [`ResolvedQuestion::evidence`].
    pub fn flat_turns(&self) -> impl Iterator<Item = (&Session, &Turn)> {
        self.sessions
            .iter()
            .flat_map(|s| s.turns.iter().map(move |t| (s, t)))
    }

    /// Resolves every question's evidence ids to turn positions (see [`Conversation::flat_turns`]),
    /// counting what could not be resolved.
    ///
    /// An id resolves when it equals a turn's `dia_id` (a number is read as its text, as a
    /// turn's numeric `dia_id` is). Failing that it is repaired when it is several ids in one
    /// string separated by `;`, `,` or blanks (`D9:1 D4:4`, each part resolved on its own, empty
    /// parts ignored), or `D<session>:<turn>` with leading zeros or a stray colon (`D:11:26`)
    /// that names a turn written canonically. Anything else is `unknown` (well formed, no such
    /// turn) or `malformed` (not `D<number>:<number>`, such as `D1:3:5` or `D 1:3`, or neither a
    /// string nor a number).
    pub fn resolve(&self) -> (Vec<ResolvedQuestion>, EvidenceReport) {
        let mut exact: HashMap<&str, usize> = HashMap::new();
        let mut canonical: HashMap<(u64, u64), usize> = HashMap::new();
        for (i, (_, turn)) in self.flat_turns().enumerate() {
            exact.entry(turn.dia_id.as_str()).or_insert(i);
            if let Some(key) = parse_dia_id(&turn.dia_id) {
                canonical.entry(key).or_insert(i);
            }
        }
        let mut report = EvidenceReport {
            sample_id: self.sample_id.clone(),
            turns: self.turns(),
            questions: self.questions.len(),
            skipped_turns: self.skipped_turns,
            skipped_questions: self.skipped_questions,
            duplicate_dia_ids: self.duplicate_dia_ids,
            ..EvidenceReport::default()
        };
        let mut resolved = Vec::with_capacity(self.questions.len());
        for (qi, q) in self.questions.iter().enumerate() {
            let mut evidence = Vec::new();
            for raw in &q.evidence {
                report.references += 1;
                let id = match raw {
                    Value::String(id) => id.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => {
                        report.bad(EvidenceProblem::Malformed, raw.to_string());
                        continue;
                    }
                };
                if let Some(&i) = exact.get(id.as_str()) {
                    report.resolved += 1;
                    evidence.push(i);
                    continue;
                }
                let parts: Vec<&str> = id
                    .split(|c: char| c == ';' || c == ',' || c.is_whitespace())
                    .filter(|p| !p.is_empty())
                    .collect();
                let mut found = Vec::new();
                // An empty id (or only separators) names nothing.
                let mut problem = parts.is_empty().then_some(EvidenceProblem::Malformed);
                for part in &parts {
                    let key = parse_dia_id(part).or_else(|| {
                        // `D:11:26`: a stray colon after the D.
                        part.strip_prefix("D:")
                            .and_then(|rest| parse_dia_id(&format!("D{rest}")))
                    });
                    let hit = exact
                        .get(part)
                        .copied()
                        .or_else(|| key.and_then(|k| canonical.get(&k).copied()));
                    match (hit, key) {
                        (Some(i), _) => found.push(i),
                        (None, Some(_)) => problem = problem.or(Some(EvidenceProblem::Unknown)),
                        (None, None) => problem = Some(EvidenceProblem::Malformed),
                    }
                }
                match problem {
                    None => {
                        report.repaired += 1;
                        evidence.extend(found);
                    }
                    Some(p) => {
                        // The resolvable parts of a broken list still count as evidence.
                        evidence.extend(found);
                        report.bad(p, id.clone());
                    }
                }
            }
            evidence.sort_unstable();
            evidence.dedup();
            if evidence.is_empty() {
                report.without_evidence += 1;
            }
            resolved.push(ResolvedQuestion {
                index: qi,
                evidence,
            });
        }
        (resolved, report)
    }

    /// The conversation as LoCoMo JSON.
    pub fn to_json(&self) -> Value {
        let mut conv = Map::new();
        conv.insert("speaker_a".into(), json!(self.speaker_a));
        conv.insert("speaker_b".into(), json!(self.speaker_b));
        for s in &self.sessions {
            if let Some(d) = &s.date_time {
                conv.insert(format!("session_{}_date_time", s.number), json!(d));
            }
            let turns: Vec<Value> = s
                .turns
                .iter()
                .map(|t| {
                    let mut turn =
                        json!({"speaker": t.speaker, "dia_id": t.dia_id, "text": t.text});
                    if let Some(c) = &t.image_caption {
                        turn["blip_caption"] = json!(c);
                    }
                    turn
                })
                .collect();
            conv.insert(format!("session_{}", s.number), Value::Array(turns));
        }
        let qa: Vec<Value> = self
            .questions
            .iter()
            .map(|q| {
                let mut item = Map::new();
                item.insert("question".into(), json!(q.question));
                if let Some(a) = &q.answer {
                    item.insert("answer".into(), json!(a));
                }
                if let Some(a) = &q.adversarial_answer {
                    item.insert("adversarial_answer".into(), json!(a));
                }
                item.insert("evidence".into(), Value::Array(q.evidence.clone()));
                let category = q
                    .category
                    .parse::<u64>()
                    .map_or_else(|_| json!(q.category), |n| json!(n));
                item.insert("category".into(), category);
                Value::Object(item)
            })
            .collect();
        json!({"sample_id": self.sample_id, "conversation": conv, "qa": qa})
    }
}

/// `(session, turn)` of a `D<session>:<turn>` id (blanks around it and leading zeros allowed).
pub fn parse_dia_id(id: &str) -> Option<(u64, u64)> {
    let rest = id.trim().strip_prefix('D')?;
    let (session, turn) = rest.split_once(':')?;
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    Some((number(session)?, number(turn)?))
}

/// A question's evidence as turn positions in [`Conversation::flat_turns`] order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedQuestion {
    /// Position of the question in [`Conversation::questions`].
    pub index: usize,
    /// Sorted, without repeats; empty when no evidence id resolved (such a question is not
    /// scored).
    pub evidence: Vec<usize>,
}

/// What was wrong with an evidence id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvidenceProblem {
    /// Well formed (`D<n>:<n>`) but no turn has it.
    Unknown,
    /// Not of the form `D<n>:<n>`.
    Malformed,
}

/// How a conversation's evidence ids resolved, for the run's report.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EvidenceReport {
    pub sample_id: String,
    pub turns: usize,
    pub questions: usize,
    /// Evidence ids listed by all questions.
    pub references: usize,
    /// Ids equal to a turn's `dia_id`.
    pub resolved: usize,
    /// Ids resolved after splitting a list or normalizing blanks and leading zeros.
    pub repaired: usize,
    /// Well-formed ids of no turn.
    pub unknown: usize,
    /// Ids not of the form `D<n>:<n>`.
    pub malformed: usize,
    /// Questions left without any evidence turn (not scored).
    pub without_evidence: usize,
    pub skipped_turns: usize,
    /// Question items not read (not an object, or without question text).
    pub skipped_questions: usize,
    pub duplicate_dia_ids: usize,
    /// The first few bad ids, as written.
    pub examples: Vec<String>,
}

/// Bad ids kept as examples per conversation.
const EXAMPLES: usize = 5;

impl EvidenceReport {
    fn bad(&mut self, problem: EvidenceProblem, id: String) {
        match problem {
            EvidenceProblem::Unknown => self.unknown += 1,
            EvidenceProblem::Malformed => self.malformed += 1,
        }
        if self.examples.len() < EXAMPLES {
            self.examples.push(id);
        }
    }

    /// Whether anything was unusual.
    pub fn has_problems(&self) -> bool {
        self.unknown + self.malformed + self.without_evidence + self.skipped_turns > 0
            || self.skipped_questions > 0
            || self.duplicate_dia_ids > 0
    }
}

impl fmt::Display for EvidenceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} turns, {} questions, {} evidence ids: {} resolved, {} repaired, {} unknown, \
             {} malformed; {} questions without evidence",
            self.sample_id,
            self.turns,
            self.questions,
            self.references,
            self.resolved,
            self.repaired,
            self.unknown,
            self.malformed,
            self.without_evidence
        )?;
        if self.skipped_turns > 0 {
            write!(f, "; {} unreadable turns skipped", self.skipped_turns)?;
        }
        if self.skipped_questions > 0 {
            write!(
                f,
                "; {} unreadable questions skipped",
                self.skipped_questions
            )?;
        }
        if self.duplicate_dia_ids > 0 {
            write!(f, "; {} repeated dia_ids", self.duplicate_dia_ids)?;
        }
        if !self.examples.is_empty() {
            write!(f, " (e.g. {:?})", self.examples)?;
        }
        Ok(())
    }
}

/// A session date as LoCoMo writes it: `1:56 pm on 8 May, 2023` (also `8 May 2023`, month names
/// full or abbreviated, 24-hour `13:56`), or ISO `2023-05-08T13:56:00`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SessionDate {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    /// Minutes after midnight.
    pub minute_of_day: u32,
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

impl SessionDate {
    /// Parses a session date; `None` when it is not one of the accepted forms.
    pub fn parse(s: &str) -> Option<SessionDate> {
        let s = s.trim();
        if let Some(d) = SessionDate::parse_iso(s) {
            return Some(d);
        }
        let lower = s.to_ascii_lowercase();
        let (time, date) = match lower.split_once(" on ") {
            Some((t, d)) => (Some(t.trim()), d.trim()),
            None => (None, lower.as_str()),
        };
        let minute_of_day = match time {
            Some(t) => parse_clock(t)?,
            None => 0,
        };
        let words: Vec<&str> = date
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
            .collect();
        let [day, month, year] = words.as_slice() else {
            return None;
        };
        let day: u32 = day.parse().ok()?;
        let month = MONTHS
            .iter()
            .position(|m| *m == *month || (month.len() >= 3 && m.starts_with(*month)))?
            as u32
            + 1;
        let year: i32 = year.parse().ok()?;
        SessionDate::checked(year, month, day, minute_of_day)
    }

    fn parse_iso(s: &str) -> Option<SessionDate> {
        let (date, time) = s.split_once('T').unwrap_or((s, "00:00"));
        let mut parts = date.splitn(3, '-');
        let year: i32 = parts.next()?.parse().ok()?;
        let month: u32 = parts.next()?.parse().ok()?;
        let day: u32 = parts.next()?.parse().ok()?;
        let mut hm = time.split(':');
        let hour: u32 = hm.next()?.parse().ok()?;
        let minute: u32 = hm.next()?.get(..2)?.parse().ok()?;
        if hour > 23 || minute > 59 {
            return None;
        }
        SessionDate::checked(year, month, day, hour * 60 + minute)
    }

    fn checked(year: i32, month: u32, day: u32, minute_of_day: u32) -> Option<SessionDate> {
        let ok = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month);
        ok.then_some(SessionDate {
            year,
            month,
            day,
            minute_of_day,
        })
    }

    /// Days since 1970-01-01 of the date (the civil calendar, proleptic Gregorian).
    pub fn days_since_epoch(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day)
    }

    /// Microseconds since the Unix epoch (UTC), as memory-core's `Timestamp` counts.
    pub fn unix_micros(&self) -> i64 {
        (self.days_since_epoch() * 86_400 + self.minute_of_day as i64 * 60) * 1_000_000
    }

    /// The date `days` later (earlier when negative), same time of day.
    pub fn plus_days(&self, days: i64) -> SessionDate {
        let (year, month, day) = civil_from_days(self.days_since_epoch() + days);
        SessionDate {
            year,
            month,
            day,
            minute_of_day: self.minute_of_day,
        }
    }

    /// LoCoMo's form: `1:56 pm on 8 May, 2023`.
    pub fn locomo(&self) -> String {
        let (h, m) = (self.minute_of_day / 60, self.minute_of_day % 60);
        let (h12, half) = match h {
            0 => (12, "am"),
            1..=11 => (h, "am"),
            12 => (12, "pm"),
            _ => (h - 12, "pm"),
        };
        format!("{h12}:{m:02} {half} on {}", self.day_month_year())
    }

    /// `8 May, 2023`.
    pub fn day_month_year(&self) -> String {
        let name = MONTHS[(self.month - 1) as usize];
        let mut month = name.to_string();
        month[..1].make_ascii_uppercase();
        format!("{} {month}, {}", self.day, self.year)
    }

    /// `May 2023`.
    pub fn month_year(&self) -> String {
        let name = MONTHS[(self.month - 1) as usize];
        let mut month = name.to_string();
        month[..1].make_ascii_uppercase();
        format!("{month} {}", self.year)
    }

    /// 0 = Monday .. 6 = Sunday.
    pub fn weekday(&self) -> u32 {
        // 1970-01-01 was a Thursday (3).
        ((self.days_since_epoch() + 3).rem_euclid(7)) as u32
    }
}

fn parse_clock(t: &str) -> Option<u32> {
    let (clock, half) = if let Some(c) = t.strip_suffix("am") {
        (c.trim(), Some(false))
    } else if let Some(c) = t.strip_suffix("pm") {
        (c.trim(), Some(true))
    } else {
        (t, None)
    };
    let (h, m) = clock.split_once(':')?;
    let (h, m): (u32, u32) = (h.trim().parse().ok()?, m.trim().parse().ok()?);
    if m > 59 {
        return None;
    }
    let h = match half {
        Some(pm) if (1..=12).contains(&h) => h % 12 + if pm { 12 } else { 0 },
        Some(_) => return None,
        None if h <= 23 => h,
        None => return None,
    };
    Some(h * 60 + m)
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days.
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((y + i64::from(m <= 2)) as i32, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Dataset, DatasetError> {
        Dataset::parse(text, Path::new("fixture.json"))
    }

    const FIXTURE: &str = r#"[
      {"sample_id": "conv-1",
       "conversation": {
         "speaker_a": "Ana", "speaker_b": "Ben",
         "session_1_date_time": "1:56 pm on 8 May, 2023",
         "session_1": [
           {"speaker": "Ana", "dia_id": "D1:1", "text": "I adopted a beagle.", "img_url": ["x"]},
           {"speaker": "Ben", "dia_id": "D1:2", "text": "Lovely! Here is mine.",
            "img_url": ["y"], "blip_caption": "a photo of a cat on a red sofa", "query": "cat sofa"},
           {"speaker": "Ben", "text": "no id"}
         ],
         "session_2_date_time": "10:04 am on 19 June, 2023",
         "session_2": [
           {"speaker": "Ana", "dia_id": "D2:1", "text": "We moved to Porto."},
           {"speaker": "Ben", "dia_id": "D2:2", "text": 42}
         ],
         "session_2_summary": "ignored"
       },
       "qa": [
         {"question": "What dog?", "answer": "a beagle", "evidence": ["D1:1"], "category": 4},
         {"question": "Year?", "answer": 2023, "evidence": ["D1:1", "D2:1"], "category": 2},
         {"question": "Bad ids", "answer": "x",
          "evidence": ["D1:3:5", "D 1:3", "D9:9", "D02:01", "D1:2; D2:1", 7], "category": 1},
         {"question": "Adversarial", "adversarial_answer": "Porto", "evidence": ["D2:1"],
          "category": 5},
         {"question": "No evidence", "answer": "?", "category": 3},
         {"answer": "a qa item without a question is skipped"},
         {"question": "  ", "answer": "and so is one with a blank question"}
       ],
       "event_summary": {"ignored": true}}
    ]"#;

    #[test]
    fn reads_sessions_turns_and_questions_ignoring_extra_fields() {
        let d = parse(FIXTURE).unwrap();
        assert_eq!(d.conversations.len(), 1);
        let c = &d.conversations[0];
        assert_eq!((c.speaker_a.as_str(), c.speaker_b.as_str()), ("Ana", "Ben"));
        assert_eq!(c.sessions.len(), 2);
        assert_eq!(
            c.sessions[0].date_time.as_deref(),
            Some("1:56 pm on 8 May, 2023")
        );
        assert_eq!(c.turns(), 4);
        assert_eq!(c.skipped_turns, 1, "the turn without dia_id");
        assert_eq!(c.sessions[1].turns[1].text, "42", "numbers read as text");
        assert_eq!(c.questions.len(), 5);
        assert_eq!(c.questions[1].answer.as_deref(), Some("2023"));
        assert_eq!(c.questions[3].answer, None);
        assert_eq!(c.questions[3].adversarial_answer.as_deref(), Some("Porto"));
        assert_eq!(c.questions[0].category, "4");
        assert_eq!(category_name(&c.questions[0].category), "single-hop");
    }

    #[test]
    fn a_shared_photos_caption_is_part_of_the_turn() {
        let d = parse(FIXTURE).unwrap();
        let turns = &d.conversations[0].sessions[0].turns;
        assert_eq!(turns[0].image_caption, None);
        assert_eq!(turns[0].content(), "Ana: I adopted a beagle.");
        assert_eq!(
            turns[1].content(),
            "Ben: Lovely! Here is mine. [image: a photo of a cat on a red sofa]"
        );
        // A photo without words is still a turn; a blank caption is no caption.
        let d = parse(
            r#"[{"sample_id": "c", "conversation": {"session_1": [
                {"speaker": "A", "dia_id": "D1:1", "blip_caption": "a photo of a lake"},
                {"speaker": "B", "dia_id": "D1:2", "text": "Nice", "blip_caption": "  "}]}}]"#,
        )
        .unwrap();
        let turns = &d.conversations[0].sessions[0].turns;
        assert_eq!(turns.len(), 2);
        assert_eq!(turns[0].content(), "A: [image: a photo of a lake]");
        assert_eq!(turns[1].image_caption, None);
    }

    #[test]
    fn malformed_and_unknown_evidence_ids_are_counted_not_fatal() {
        let d = parse(FIXTURE).unwrap();
        let (resolved, report) = d.conversations[0].resolve();
        assert_eq!(resolved[0].evidence, vec![0]);
        assert_eq!(resolved[1].evidence, vec![0, 2]);
        // "D02:01" and "D1:2; D2:1" are repaired; "D9:9" is unknown; "D1:3:5", "D 1:3" and 7
        // are malformed.
        assert_eq!(resolved[2].evidence, vec![1, 2]);
        assert_eq!(report.references, 1 + 2 + 6 + 1);
        assert_eq!(report.resolved, 4);
        assert_eq!(report.repaired, 2);
        assert_eq!(report.unknown, 1);
        assert_eq!(report.malformed, 3);
        assert_eq!(
            report.without_evidence, 1,
            "the question with no evidence field"
        );
        assert!(resolved[4].evidence.is_empty());
        assert!(report.has_problems());
        assert!(report.examples.contains(&"D1:3:5".to_string()));
        let line = report.to_string();
        assert!(
            line.contains("3 malformed") && line.contains("1 unknown"),
            "{line}"
        );
    }

    #[test]
    fn a_broken_list_keeps_its_good_parts() {
        let text = r#"[{"sample_id": "s", "conversation": {"session_1": [
            {"speaker": "A", "dia_id": "D1:1", "text": "a"}]},
            "qa": [{"question": "q", "evidence": ["D1:1; D1:9"], "category": 1}]}]"#;
        let (resolved, report) = parse(text).unwrap().conversations[0].resolve();
        assert_eq!(resolved[0].evidence, vec![0]);
        assert_eq!((report.unknown, report.repaired), (1, 0));
    }

    /// Forms the released LoCoMo file holds: several ids in one string separated by blanks, a
    /// stray colon after the D, a trailing separator; and a turn numbered as a JSON number.
    #[test]
    fn evidence_lists_with_blanks_stray_colons_and_numbers_resolve() {
        let text = r#"[{"sample_id": "s", "conversation": {"session_1": [
            {"speaker": "A", "dia_id": "D1:1", "text": "a"},
            {"speaker": "B", "dia_id": "D1:2", "text": "b"},
            {"speaker": "A", "dia_id": 7, "text": "c"}]},
            "qa": [{"question": "q", "evidence": ["D1:2 D1:1"], "category": 1},
                   {"question": "q", "evidence": ["D:1:2"], "category": 1},
                   {"question": "q", "evidence": ["D1:1;", " "], "category": 1},
                   {"question": "q", "evidence": [7], "category": 1},
                   "not a question", {"answer": "no question text"}]}]"#;
        let c = &parse(text).unwrap().conversations[0];
        let (resolved, report) = c.resolve();
        let evidence: Vec<&[usize]> = resolved.iter().map(|r| r.evidence.as_slice()).collect();
        assert_eq!(evidence, [&[0, 1][..], &[1], &[0], &[2]]);
        assert_eq!(report.references, 5);
        assert_eq!((report.resolved, report.repaired), (1, 3));
        assert_eq!((report.unknown, report.malformed), (0, 1), "the blank id");
        assert_eq!(report.skipped_questions, 2);
        assert!(
            report.to_string().contains("2 unreadable questions"),
            "{report}"
        );
    }

    #[test]
    fn missing_fields_take_defaults() {
        // No sample_id, no speakers, no dates, no qa.
        let d = parse(
            r#"[{"conversation": {"session_1": [{"speaker": "A", "dia_id": "D1:1", "text": "hi"}]}}]"#,
        )
        .unwrap();
        let c = &d.conversations[0];
        assert_eq!(c.sample_id, "sample-0");
        assert_eq!(c.speaker_a, "");
        assert_eq!(c.sessions[0].date_time, None);
        assert!(c.questions.is_empty());
    }

    #[test]
    fn repeated_sample_ids_are_made_unique() {
        let one = r#"{"sample_id": "x", "conversation": {}}"#;
        let d = parse(&format!("[{one}, {one}]")).unwrap();
        assert_eq!(d.conversations[1].sample_id, "x#2");
    }

    #[test]
    fn unreadable_files_are_errors_naming_the_path_and_problem() {
        let err = Dataset::load(Path::new("/nonexistent/locomo.json")).unwrap_err();
        assert!(matches!(err, DatasetError::Read { .. }));
        assert!(
            err.to_string().contains("/nonexistent/locomo.json"),
            "{err}"
        );

        let err = parse("[{\"sample_id\": ").unwrap_err();
        assert!(matches!(err, DatasetError::Json { .. }));
        assert!(err.to_string().contains("fixture.json"), "{err}");

        let err = parse(r#"{"samples": []}"#).unwrap_err();
        assert!(
            err.to_string().contains("not a list of conversations"),
            "{err}"
        );

        let err = parse(r#"[{"sample_id": "c", "qa": []}]"#).unwrap_err();
        assert!(
            err.to_string().contains("no \"conversation\" field"),
            "{err}"
        );

        let err = parse(r#"[{"sample_id": "c", "conversation": {"session_1": "x"}}]"#).unwrap_err();
        assert!(err.to_string().contains("session_1 is a string"), "{err}");

        let err = parse(r#"[3]"#).unwrap_err();
        assert!(err.to_string().contains("item 0"), "{err}");
    }

    #[test]
    fn round_trips_through_json() {
        let d = parse(FIXTURE).unwrap();
        let again = parse(&d.to_json().to_string()).unwrap();
        assert_eq!(again.conversations[0].sessions, d.conversations[0].sessions);
        assert_eq!(
            again.conversations[0].questions,
            d.conversations[0].questions
        );
    }

    #[test]
    fn session_dates_parse_in_locomo_and_iso_forms() {
        let d = SessionDate::parse("1:56 pm on 8 May, 2023").unwrap();
        assert_eq!(
            (d.year, d.month, d.day, d.minute_of_day),
            (2023, 5, 8, 13 * 60 + 56)
        );
        assert_eq!(d.locomo(), "1:56 pm on 8 May, 2023");
        let midnight = SessionDate::parse("12:05 am on 1 Jan, 2024").unwrap();
        assert_eq!((midnight.month, midnight.minute_of_day), (1, 5));
        let iso = SessionDate::parse("2025-05-15T09:12:00").unwrap();
        assert_eq!(
            (iso.year, iso.month, iso.day, iso.minute_of_day),
            (2025, 5, 15, 552)
        );
        assert_eq!(SessionDate::parse("8 May 2023").unwrap().minute_of_day, 0);
        assert_eq!(SessionDate::parse("31 February, 2023"), None);
        assert_eq!(SessionDate::parse("13:00 pm on 8 May, 2023"), None);
        assert_eq!(SessionDate::parse("sometime in spring"), None);
    }

    #[test]
    fn calendar_arithmetic_matches_known_dates() {
        let d = SessionDate::parse("8 May, 2023").unwrap();
        assert_eq!(d.unix_micros(), 1_683_504_000 * 1_000_000);
        assert_eq!(d.weekday(), 0, "8 May 2023 was a Monday");
        assert_eq!(d.plus_days(-8).day_month_year(), "30 April, 2023");
        assert_eq!(d.plus_days(300).day_month_year(), "3 March, 2024");
        let leap = SessionDate::parse("28 Feb, 2024").unwrap().plus_days(1);
        assert_eq!((leap.month, leap.day), (2, 29));
    }
}
