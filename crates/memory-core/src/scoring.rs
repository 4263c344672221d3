//! The importance score that decides what consolidation keeps: a weighted mix of importance,
//! retrieval frequency, recency and novelty; and the estimate of an entry's importance from its
//! text, for entries whose caller gave none.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::config::ConsolidationConfig;
use crate::entry::MemoryEntry;

/// An entry's score and its four parts, each in [0, 1].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportanceScore {
    /// Weighted mean of the parts, in [0, 1].
    pub total: f32,
    pub importance: f32,
    /// `ln(1 + accesses) / ln(1 + saturation)`, capped at 1.
    pub frequency: f32,
    /// `0.5 ^ (time since last access / half-life)`.
    pub recency: f32,
    /// `1 - highest cosine similarity to the agent's long-term memory`; `None` without an embedding
    /// (its weight is then left out and the others are renormalized).
    pub novelty: Option<f32>,
}

/// Scores entries with the configured weights and half-life.
#[derive(Clone, Debug)]
pub struct ImportanceScorer {
    config: ConsolidationConfig,
}

impl ImportanceScorer {
    pub fn new(config: ConsolidationConfig) -> Self {
        ImportanceScorer { config }
    }

    /// Estimates the importance of a text that came without one, in [0.1, 1], from how much
    /// information it carries: small talk ("Haha, totally!", "Thanks, see you soon") scores low,
    /// statements of fact ("My sister Ana moved to Porto in May 2021") high.
    ///
    /// It counts, ignoring a leading `Speaker:` label:
    /// - content words: words of three letters or more that are not among the few hundred most
    ///   frequent English words and conversational fillers (a language-wide prior of rarity:
    ///   "I", "really", "great", "thanks" carry little, "dentist", "Porto", "marathon" a lot);
    /// - specifics, counted again: numbers, dates (month and weekday names, yesterday, tomorrow)
    ///   and names (capitalized words not at the start of a sentence);
    /// - one more for a first-person statement (I, my, we, our) with content in it.
    ///
    /// The sum `x` maps to `0.1 + 0.9 * (1 - e^(-x / 2.5))`: 0 for pure small talk gives 0.1, one
    /// content word 0.40, two 0.60, four 0.82, six 0.92. Under the default consolidation weights
    /// (importance 0.4, recency 0.2, novelty 0.1, frequency 0.3) and threshold 0.5, an entry
    /// consolidated within hours of its turn is kept from about two content words on, so a
    /// statement with a fact in it is kept and a reaction is not. Measured on the quality
    /// benchmark's conversations: see the README's transition figures.
    ///
    /// Cost: one pass over the text, one hash lookup per word.
    pub fn estimate(text: &str) -> f32 {
        let x = information(text);
        0.1 + 0.9 * (1.0 - (-(x as f32) / 2.5).exp())
    }

    /// Recency in [0, 1] of something last touched at `at`, seen at `now`.
    pub fn recency(&self, at: Timestamp, now: Timestamp) -> f32 {
        let age = now.since(at).as_secs_f64();
        let half_life = self.config.recency_half_life.as_secs_f64();
        0.5f64.powf(age / half_life) as f32
    }

    /// Scores `entry` at time `now`. `max_similarity` is the highest cosine similarity of the
    /// entry's embedding to the agent's long-term memory, when known.
    pub fn score(
        &self,
        entry: &MemoryEntry,
        max_similarity: Option<f32>,
        now: Timestamp,
    ) -> ImportanceScore {
        let w = self.config.weights;
        let sat = self.config.frequency_saturation.max(1) as f32;
        let frequency = ((1.0 + entry.access_count as f32).ln() / (1.0 + sat).ln()).min(1.0);
        let last = entry.last_accessed_at.max(entry.created_at);
        let recency = self.recency(last, now);
        let importance = entry.importance.clamp(0.0, 1.0);
        let novelty = max_similarity
            .filter(|s| s.is_finite())
            .map(|s| (1.0 - s).clamp(0.0, 1.0));
        let (sum, weight) = [
            (importance, w.importance),
            (frequency, w.frequency),
            (recency, w.recency),
        ]
        .into_iter()
        .chain(novelty.map(|n| (n, w.novelty)))
        .fold((0.0, 0.0), |(s, ws), (x, wx)| (s + x * wx, ws + wx));
        let total = if weight > 0.0 {
            (sum / weight).clamp(0.0, 1.0)
        } else {
            0.0
        };
        ImportanceScore {
            total,
            importance,
            frequency,
            recency,
            novelty,
        }
    }
}

/// The information count of [`ImportanceScorer::estimate`].
fn information(text: &str) -> u32 {
    let text = strip_speaker_label(text);
    let mut content = 0u32;
    let mut specific = 0u32;
    let mut first_person = false;
    let mut sentence_start = true;
    let mut lower = String::new();
    for (word, ends_sentence) in words(text) {
        lower.clear();
        lower.extend(word.chars().flat_map(char::to_lowercase));
        let common = common_words().contains(lower.as_str());
        first_person |= matches!(
            lower.as_str(),
            "i" | "my" | "we" | "our" | "me" | "us" | "i'm"
        );
        let has_digit = word.bytes().any(|b| b.is_ascii_digit());
        let letters = word.chars().filter(|c| c.is_alphabetic()).count();
        if has_digit || (!common && letters >= 3) {
            content += 1;
        }
        let capitalized = word.chars().next().is_some_and(char::is_uppercase);
        let name = capitalized && !sentence_start && lower != "i" && !lower.starts_with("i'");
        if has_digit || name || date_words().contains(lower.as_str()) {
            specific += 1;
        }
        sentence_start = ends_sentence;
    }
    content + specific + u32::from(first_person && content > 0)
}

/// `Name: text` -> `text` (a speaker label is who said it, not what was said).
fn strip_speaker_label(text: &str) -> &str {
    match text.split_once(": ") {
        Some((label, rest))
            if !label.is_empty()
                && label.len() <= 40
                && label.split_whitespace().count() <= 3
                && label.chars().next().is_some_and(char::is_uppercase) =>
        {
            rest
        }
        _ => text,
    }
}

/// The words of `text` (letters and digits, with inner apostrophes), each with whether a
/// sentence ends right after it.
fn words(text: &str) -> impl Iterator<Item = (&str, bool)> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let start = rest.find(|c: char| c.is_alphanumeric())?;
        rest = &rest[start..];
        let mut end = rest.len();
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c.is_alphanumeric() {
                continue;
            }
            let inner_apostrophe = matches!(c, '\'' | '\u{2019}')
                && chars.peek().is_some_and(|(_, n)| n.is_alphanumeric());
            if !inner_apostrophe {
                end = i;
                break;
            }
        }
        let word = &rest[..end];
        rest = &rest[end..];
        let after = rest.trim_start_matches(|c: char| c == '"' || c == ')' || c == '\'');
        let ends_sentence = after.starts_with(['.', '!', '?', '\n']);
        Some((word, ends_sentence))
    })
}

/// The most frequent English words and conversational fillers: words that carry little about
/// the speaker's life whatever the conversation (a prior for rarity, before any corpus).
fn common_words() -> &'static rustc_hash::FxHashSet<&'static str> {
    static SET: std::sync::OnceLock<rustc_hash::FxHashSet<&'static str>> =
        std::sync::OnceLock::new();
    SET.get_or_init(|| COMMON_WORDS.iter().copied().collect())
}

fn date_words() -> &'static rustc_hash::FxHashSet<&'static str> {
    static SET: std::sync::OnceLock<rustc_hash::FxHashSet<&'static str>> =
        std::sync::OnceLock::new();
    SET.get_or_init(|| DATE_WORDS.iter().copied().collect())
}

const DATE_WORDS: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "yesterday",
    "tomorrow",
    "tonight",
    "birthday",
    "anniversary",
];

const COMMON_WORDS: &[&str] = &[
    // function words
    "the",
    "and",
    "for",
    "are",
    "but",
    "not",
    "you",
    "all",
    "any",
    "can",
    "had",
    "her",
    "was",
    "one",
    "our",
    "out",
    "has",
    "him",
    "his",
    "how",
    "its",
    "may",
    "new",
    "now",
    "old",
    "see",
    "two",
    "way",
    "who",
    "did",
    "get",
    "got",
    "let",
    "put",
    "say",
    "she",
    "too",
    "use",
    "yes",
    "yet",
    "own",
    "off",
    "why",
    "ago",
    "also",
    "been",
    "from",
    "have",
    "into",
    "just",
    "like",
    "made",
    "make",
    "many",
    "more",
    "most",
    "much",
    "must",
    "only",
    "over",
    "some",
    "such",
    "than",
    "that",
    "them",
    "then",
    "they",
    "this",
    "very",
    "were",
    "what",
    "when",
    "will",
    "with",
    "your",
    "about",
    "after",
    "again",
    "being",
    "could",
    "every",
    "first",
    "other",
    "their",
    "there",
    "these",
    "thing",
    "things",
    "think",
    "those",
    "three",
    "under",
    "until",
    "where",
    "which",
    "while",
    "would",
    "should",
    "because",
    "before",
    "between",
    "during",
    "through",
    "without",
    "whether",
    "though",
    "although",
    "either",
    "neither",
    "since",
    "still",
    "even",
    "ever",
    "never",
    "always",
    "often",
    "sometimes",
    "usually",
    "maybe",
    "perhaps",
    "already",
    "almost",
    "enough",
    "quite",
    "rather",
    "really",
    "actually",
    "probably",
    "definitely",
    "totally",
    "honestly",
    "literally",
    "basically",
    "seriously",
    "exactly",
    "especially",
    "anyway",
    "anyways",
    "anything",
    "something",
    "nothing",
    "everything",
    "someone",
    "anyone",
    "everyone",
    "somebody",
    "anybody",
    "everybody",
    "nobody",
    "somewhere",
    "anywhere",
    "everywhere",
    "here",
    "each",
    "both",
    "few",
    "less",
    "least",
    "same",
    "another",
    "else",
    "well",
    "back",
    "down",
    "away",
    "around",
    "upon",
    "onto",
    "within",
    "across",
    "along",
    "behind",
    "above",
    "below",
    "near",
    "far",
    "soon",
    "later",
    "once",
    "twice",
    "today",
    "tonight",
    "now",
    "then",
    "lately",
    "recently",
    "finally",
    "instead",
    "though",
    "whatever",
    "whenever",
    "wherever",
    "however",
    "i'm",
    "i've",
    "i'll",
    "i'd",
    "you're",
    "you've",
    "you'll",
    "you'd",
    "he's",
    "she's",
    "it's",
    "we're",
    "we've",
    "we'll",
    "they're",
    "they've",
    "that's",
    "there's",
    "what's",
    "let's",
    "don't",
    "doesn't",
    "didn't",
    "can't",
    "couldn't",
    "won't",
    "wouldn't",
    "isn't",
    "aren't",
    "wasn't",
    "weren't",
    "haven't",
    "hasn't",
    "hadn't",
    "shouldn't",
    "mine",
    "yours",
    "ours",
    "theirs",
    "myself",
    "yourself",
    "ourselves",
    "itself",
    "himself",
    "herself",
    "themselves",
    // everyday verbs
    "was",
    "is",
    "am",
    "be",
    "do",
    "does",
    "doing",
    "done",
    "go",
    "goes",
    "going",
    "went",
    "gone",
    "gets",
    "getting",
    "gotten",
    "makes",
    "making",
    "know",
    "knows",
    "knew",
    "known",
    "thinks",
    "thought",
    "feel",
    "feels",
    "felt",
    "feeling",
    "likes",
    "liked",
    "love",
    "loves",
    "loved",
    "want",
    "wants",
    "wanted",
    "need",
    "needs",
    "needed",
    "see",
    "sees",
    "saw",
    "seen",
    "look",
    "looks",
    "looked",
    "looking",
    "says",
    "said",
    "tell",
    "tells",
    "told",
    "come",
    "comes",
    "came",
    "coming",
    "take",
    "takes",
    "took",
    "taken",
    "give",
    "gives",
    "gave",
    "given",
    "keep",
    "keeps",
    "kept",
    "try",
    "tries",
    "tried",
    "trying",
    "hope",
    "hoped",
    "hoping",
    "guess",
    "mean",
    "means",
    "meant",
    "seem",
    "seems",
    "seemed",
    "sound",
    "sounds",
    "sounded",
    "hear",
    "heard",
    "hearing",
    "talk",
    "talked",
    "talking",
    "call",
    "called",
    "wait",
    "waiting",
    "start",
    "started",
    "happen",
    "happened",
    "happens",
    "glad",
    "sure",
    "wish",
    "bet",
    "hang",
    "catch",
    // conversational fillers and reactions
    "yeah",
    "yep",
    "yup",
    "nope",
    "okay",
    "ok",
    "oh",
    "ooh",
    "ah",
    "aw",
    "aww",
    "hmm",
    "um",
    "uh",
    "haha",
    "hahaha",
    "hehe",
    "lol",
    "lmao",
    "omg",
    "wow",
    "whoa",
    "yay",
    "ugh",
    "hey",
    "hi",
    "hello",
    "bye",
    "thanks",
    "thank",
    "please",
    "sorry",
    "cool",
    "nice",
    "great",
    "awesome",
    "amazing",
    "fantastic",
    "wonderful",
    "lovely",
    "good",
    "bad",
    "fine",
    "fun",
    "funny",
    "hilarious",
    "crazy",
    "interesting",
    "exciting",
    "excited",
    "happy",
    "sad",
    "busy",
    "tired",
    "true",
    "right",
    "wrong",
    "agree",
    "absolutely",
    "indeed",
    "course",
    "kind",
    "sort",
    "lot",
    "lots",
    "bit",
    "little",
    "big",
    "stuff",
    "things",
    "way",
    "time",
    "times",
    "day",
    "days",
    "week",
    "weeks",
    "month",
    "months",
    "year",
    "years",
    "morning",
    "night",
    "evening",
    "life",
    "people",
    "guys",
    "friend",
    "friends",
    "idea",
    "point",
    "part",
    "place",
    "minute",
    "moment",
    "while",
    "long",
    "best",
    "better",
    "worse",
    "worst",
    "sounds",
    "super",
    "pretty",
    "nice",
    "cute",
    "sweet",
    "dear",
    "buddy",
    "man",
    "dude",
    "gosh",
    "congrats",
    "congratulations",
    "cheers",
    "welcome",
    "chat",
    "soon",
    "care",
    "miss",
    "catch",
    "totally",
];

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn small_talk_is_estimated_low_and_statements_of_fact_high() {
        let low = [
            "Haha, totally!",
            "Thanks, see you soon!",
            "Caroline: Wow, that's so cool!",
            "Oh no, I'm so sorry to hear that.",
            "Yeah, same here. It's been one of those weeks.",
            "",
            "🙂🙂",
        ];
        let high = [
            "My sister Ana moved to Porto in May 2021.",
            "Melanie: I ran a charity marathon last Sunday for the children's hospital.",
            "We adopted a rescue puppy and named her Biscuit.",
            "I'm allergic to peanuts and shellfish, so no sushi for me.",
            "My dentist appointment is on 14 March at 9:30.",
        ];
        for text in low {
            let e = ImportanceScorer::estimate(text);
            assert!(e < 0.45, "{text:?} estimated {e}");
        }
        for text in high {
            let e = ImportanceScorer::estimate(text);
            assert!(e > 0.8, "{text:?} estimated {e}");
        }
    }

    #[test]
    fn the_estimate_follows_the_documented_curve() {
        assert!((ImportanceScorer::estimate("ok") - 0.1).abs() < 1e-6);
        // One content word ("dentist"): 0.1 + 0.9 * (1 - e^(-1/2.5)) = 0.3967
        assert!((ImportanceScorer::estimate("the dentist") - 0.3967).abs() < 1e-3);
        // "I" with it adds the first-person point: x = 2 -> 0.5956
        assert!((ImportanceScorer::estimate("I dentist") - 0.5956).abs() < 1e-3);
        for text in ["x".repeat(10_000), "Zürich Ålesund 東京 ".repeat(50)] {
            let e = ImportanceScorer::estimate(&text);
            assert!((0.1..=1.0).contains(&e), "{e}");
        }
    }

    use crate::config::ScoreWeights;
    use crate::entry::{EntryId, Role, Tier};

    fn entry(importance: f32, accesses: u32, at: Timestamp) -> MemoryEntry {
        MemoryEntry {
            id: EntryId(1),
            agent_id: Arc::from("a"),
            session_id: Arc::from("s"),
            role: Role::User,
            content: "x".into(),
            embedding: None,
            importance,
            created_at: at,
            last_accessed_at: at,
            access_count: accesses,
            metadata: serde_json::Value::Null,
            tier: Tier::ShortTerm,
        }
    }

    fn scorer() -> ImportanceScorer {
        ImportanceScorer::new(ConsolidationConfig {
            recency_half_life: Duration::from_secs(3600),
            frequency_saturation: 10,
            ..ConsolidationConfig::default()
        })
    }

    #[test]
    fn recency_halves_every_half_life() {
        let s = scorer();
        let t0 = Timestamp(0);
        assert_eq!(s.recency(t0, t0), 1.0);
        assert!((s.recency(t0, t0.plus(Duration::from_secs(3600))) - 0.5).abs() < 1e-6);
        assert!((s.recency(t0, t0.plus(Duration::from_secs(7200))) - 0.25).abs() < 1e-6);
    }

    #[test]
    fn score_is_the_weighted_mean_of_its_parts() {
        let s = scorer();
        let now = Timestamp(0).plus(Duration::from_secs(3600));
        let e = entry(0.8, 10, Timestamp(0));
        let got = s.score(&e, Some(0.25), now);
        // importance 0.8, frequency 1.0 (saturated), recency 0.5, novelty 0.75
        let want = 0.4 * 0.8 + 0.3 * 1.0 + 0.2 * 0.5 + 0.1 * 0.75;
        assert!((got.total - want).abs() < 1e-6, "{got:?}");
        assert_eq!(got.novelty, Some(0.75));
    }

    #[test]
    fn without_an_embedding_novelty_weight_is_left_out() {
        let s = scorer();
        let e = entry(1.0, 0, Timestamp(0));
        let got = s.score(&e, None, Timestamp(0));
        // (0.4 * 1 + 0.3 * 0 + 0.2 * 1) / 0.9
        assert!((got.total - 0.6 / 0.9).abs() < 1e-6, "{got:?}");
    }

    #[test]
    fn frequency_grows_with_accesses_and_saturates() {
        let s = scorer();
        let f = |n| {
            s.score(&entry(0.5, n, Timestamp(0)), None, Timestamp(0))
                .frequency
        };
        assert_eq!(f(0), 0.0);
        assert!(f(1) < f(3) && f(3) < f(10));
        assert_eq!(f(10), 1.0);
        assert_eq!(f(1000), 1.0);
    }

    #[test]
    fn weights_change_the_ranking() {
        let cfg = ConsolidationConfig {
            weights: ScoreWeights {
                importance: 0.0,
                frequency: 0.0,
                recency: 1.0,
                novelty: 0.0,
            },
            ..ConsolidationConfig::default()
        };
        let s = ImportanceScorer::new(cfg);
        let now = Timestamp(0).plus(Duration::from_secs(86_400));
        let old_important = entry(1.0, 0, Timestamp(0));
        let new_unimportant = entry(0.0, 0, now);
        assert!(
            s.score(&new_unimportant, None, now).total > s.score(&old_important, None, now).total
        );
    }
}
