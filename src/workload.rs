//! Deterministic synthetic workloads: a Zipf-distributed vocabulary, multi-session conversations
//! with realistic message lengths, clustered embeddings (so approximate search meets the structure
//! of real data rather than uniform noise), agents, queries and tool definitions.

use std::collections::HashSet;
use std::sync::Arc;

use memory_core::{NewEntry, Role};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

/// The seed every generator starts from unless told otherwise.
pub const DEFAULT_SEED: u64 = 0x6d65_6d62_656e_6368; // "membench"

/// Embedding dimension of the workloads (memory-core's default).
pub const DIM: usize = 384;

/// One standard normal sample (Box–Muller); rand 0.9 ships no normal distribution without the
/// extra `rand_distr` crate.
pub fn gaussian(rng: &mut StdRng) -> f32 {
    // 1 - u keeps the argument of ln in (0, 1].
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn unit(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Samples ranks 0..n with probability proportional to 1 / (rank + 1)^exponent.
#[derive(Clone, Debug)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// A Zipf law over `n` ranks (n >= 1).
    pub fn new(n: usize, exponent: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n.max(1));
        let mut total = 0.0;
        for r in 0..n.max(1) {
            total += 1.0 / ((r + 1) as f64).powf(exponent);
            cdf.push(total);
        }
        cdf.iter_mut().for_each(|c| *c /= total);
        Zipf { cdf }
    }

    /// One rank.
    pub fn sample(&self, rng: &mut StdRng) -> usize {
        let u: f64 = rng.random();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// Pronounceable pseudo-words, most frequent first.
#[derive(Clone, Debug)]
pub struct Vocabulary {
    words: Vec<Arc<str>>,
    zipf: Zipf,
}

const ONSETS: [&str; 20] = [
    "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "st",
    "tr", "pl",
];
const VOWELS: [&str; 8] = ["a", "e", "i", "o", "u", "ai", "ea", "ou"];
const CODAS: [&str; 6] = ["", "n", "r", "s", "l", "th"];

impl Vocabulary {
    /// `size` distinct words of 1 to 4 syllables; word at rank r is drawn with weight
    /// 1 / (r + 1)^exponent.
    pub fn new(size: usize, exponent: f64, seed: u64) -> Vocabulary {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut seen = HashSet::with_capacity(size);
        let mut words = Vec::with_capacity(size);
        // Collisions in a row; they grow as short words run out, and then longer ones are allowed.
        let mut misses = 0usize;
        while words.len() < size {
            // Frequent words are short, as in natural language.
            let by_rank = 1 + (words.len() * 4 / size.max(1)).min(3);
            let max_syllables = (by_rank + misses / 16).min(8);
            let syllables = rng.random_range(1..=max_syllables);
            let mut w = String::new();
            for _ in 0..syllables {
                w.push_str(ONSETS[rng.random_range(0..ONSETS.len())]);
                w.push_str(VOWELS[rng.random_range(0..VOWELS.len())]);
                w.push_str(CODAS[rng.random_range(0..CODAS.len())]);
            }
            if seen.insert(w.clone()) {
                words.push(Arc::from(w));
                misses = 0;
            } else {
                misses += 1;
            }
        }
        Vocabulary {
            words,
            zipf: Zipf::new(size, exponent),
        }
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether there are no words.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The word at frequency rank `rank`.
    pub fn word(&self, rank: usize) -> &str {
        &self.words[rank % self.words.len()]
    }

    /// A word's rank drawn from the Zipf law.
    pub fn sample_rank(&self, rng: &mut StdRng) -> usize {
        self.zipf.sample(rng)
    }
}

/// Unit vectors grouped around `clusters` random centres, each cluster with a few sub-centres,
/// the way sentence embeddings group by topic and sub-topic.
#[derive(Clone, Debug)]
pub struct EmbeddingSpace {
    dim: usize,
    centres: Vec<Vec<f32>>,
    sub_centres: Vec<Vec<Vec<f32>>>,
    /// Per-dimension standard deviation of the noise around a sub-centre.
    noise: f32,
}

impl EmbeddingSpace {
    /// A space of `clusters` topics in `dim` dimensions.
    pub fn new(dim: usize, clusters: usize, seed: u64) -> EmbeddingSpace {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_0e3b);
        let clusters = clusters.max(1);
        let mut centres = Vec::with_capacity(clusters);
        let mut sub_centres = Vec::with_capacity(clusters);
        for _ in 0..clusters {
            let mut c: Vec<f32> = (0..dim).map(|_| gaussian(&mut rng)).collect();
            unit(&mut c);
            let subs = (0..8)
                .map(|_| {
                    // A sub-topic sits at cosine ~0.8 from its topic.
                    let mut s: Vec<f32> = c
                        .iter()
                        .map(|x| x + 0.75 / (dim as f32).sqrt() * gaussian(&mut rng))
                        .collect();
                    unit(&mut s);
                    s
                })
                .collect();
            centres.push(c);
            sub_centres.push(subs);
        }
        EmbeddingSpace {
            dim,
            centres,
            sub_centres,
            // Noise of total norm ~0.9: a point sits at cosine ~0.75 from its sub-centre, so
            // neighbours are near but not trivially separable.
            noise: 0.9 / (dim as f32).sqrt(),
        }
    }

    /// The dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of topics.
    pub fn clusters(&self) -> usize {
        self.centres.len()
    }

    /// The unit centre of topic `cluster`.
    pub fn centre(&self, cluster: usize) -> &[f32] {
        &self.centres[cluster % self.centres.len()]
    }

    /// A unit vector in topic `cluster`.
    pub fn sample(&self, cluster: usize, rng: &mut StdRng) -> Vec<f32> {
        let subs = &self.sub_centres[cluster % self.sub_centres.len()];
        let base = &subs[rng.random_range(0..subs.len())];
        let mut v: Vec<f32> = base
            .iter()
            .map(|x| x + self.noise * gaussian(rng))
            .collect();
        unit(&mut v);
        v
    }
}

/// One generated message, before it becomes a [`NewEntry`].
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub agent: Arc<str>,
    pub session: Arc<str>,
    pub role: Role,
    pub text: String,
    pub topic: usize,
    pub embedding: Vec<f32>,
    pub importance: f32,
}

impl Message {
    /// The entry memory-core stores for this message.
    pub fn to_entry(&self) -> NewEntry {
        NewEntry::new(
            self.agent.clone(),
            self.session.clone(),
            self.role,
            self.text.clone(),
        )
        .with_embedding(self.embedding.clone())
        .with_importance(self.importance)
    }
}

/// A search the benchmarks issue: keywords plus the embedding of the same intent.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub text: String,
    pub topic: usize,
    pub vector: Vec<f32>,
}

/// A tool an agent can call, as the context builder renders it.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolDef {
    pub name: String,
    pub description: String,
    pub schema: serde_json::Value,
}

/// How a workload is shaped.
#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    pub seed: u64,
    pub vocabulary: usize,
    pub zipf_exponent: f64,
    pub topics: usize,
    pub dim: usize,
    /// Words of a message: log-normal around this median, clamped to [min_words, max_words].
    pub median_words: f64,
    pub min_words: usize,
    pub max_words: usize,
    /// Messages of one session: uniform in this range.
    pub session_len: (usize, usize),
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            seed: DEFAULT_SEED,
            vocabulary: 5_000,
            zipf_exponent: 1.1,
            topics: 64,
            dim: DIM,
            median_words: 18.0,
            min_words: 5,
            max_words: 80,
            session_len: (10, 60),
        }
    }
}

/// Words of each topic's own jargon; a message mixes them with the common vocabulary so keyword
/// queries about a topic find that topic's messages.
const TOPIC_WORDS: usize = 150;
/// Share of a message's words taken from its topic's jargon.
const TOPIC_SHARE: f64 = 0.35;

/// A deterministic generator of messages, queries and tools.
#[derive(Clone, Debug)]
pub struct Workload {
    config: WorkloadConfig,
    vocab: Vocabulary,
    space: EmbeddingSpace,
    topic_zipf: Zipf,
}

impl Workload {
    /// A workload of the given shape.
    pub fn new(config: WorkloadConfig) -> Workload {
        let vocab = Vocabulary::new(config.vocabulary, config.zipf_exponent, config.seed);
        let space = EmbeddingSpace::new(config.dim, config.topics, config.seed);
        Workload {
            topic_zipf: Zipf::new(TOPIC_WORDS, 1.0),
            config,
            vocab,
            space,
        }
    }

    /// The default shape: 5,000 words (Zipf 1.1), 64 topics, 384 dimensions.
    pub fn standard() -> Workload {
        Workload::new(WorkloadConfig::default())
    }

    /// The vocabulary.
    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocab
    }

    /// The embedding space.
    pub fn space(&self) -> &EmbeddingSpace {
        &self.space
    }

    /// The shape.
    pub fn config(&self) -> &WorkloadConfig {
        &self.config
    }

    fn topic_word(&self, topic: usize, rng: &mut StdRng) -> &str {
        // Skip the 100 most common words so jargon is distinctive; spread topics over the rest.
        let span = self.vocab.len().saturating_sub(100).max(1);
        let r = self.topic_zipf.sample(rng);
        let rank = 100 + (topic * 7919 + r * 104_729) % span;
        self.vocab.word(rank)
    }

    fn message_len(&self, rng: &mut StdRng) -> usize {
        let c = &self.config;
        let words = (c.median_words.ln() + 0.7 * gaussian(rng) as f64).exp();
        (words.round() as usize).clamp(c.min_words, c.max_words)
    }

    fn text(&self, topic: usize, words: usize, rng: &mut StdRng) -> String {
        let mut text = String::with_capacity(words * 7);
        for i in 0..words {
            if i > 0 {
                text.push(' ');
            }
            if rng.random_bool(TOPIC_SHARE) {
                text.push_str(self.topic_word(topic, rng));
            } else {
                text.push_str(self.vocab.word(self.vocab.sample_rank(rng)));
            }
        }
        text
    }

    /// `total` messages for `agents` agents: conversations of alternating user and assistant
    /// turns, one topic per session, sessions dealt round-robin over the agents. Agent `i` is
    /// named `agent-i`; its sessions `agent-i/s-j`. The same stream for the same seed and `salt`.
    pub fn messages(&self, total: usize, agents: usize, salt: u64) -> Vec<Message> {
        let mut rng = StdRng::seed_from_u64(self.config.seed ^ salt.wrapping_mul(0x9e37_79b9));
        let agents = agents.max(1);
        let agent_names: Vec<Arc<str>> = (0..agents).map(|i| agent_name(i).into()).collect();
        let mut sessions_of = vec![0usize; agents];
        let mut out = Vec::with_capacity(total);
        let mut next_agent = 0;
        while out.len() < total {
            let a = next_agent;
            next_agent = (next_agent + 1) % agents;
            let session: Arc<str> = format!("{}/s-{}", agent_names[a], sessions_of[a]).into();
            sessions_of[a] += 1;
            let topic = rng.random_range(0..self.space.clusters());
            let (lo, hi) = self.config.session_len;
            let len = rng.random_range(lo..=hi.max(lo)).min(total - out.len());
            for turn in 0..len {
                let role = if turn % 2 == 0 {
                    Role::User
                } else {
                    Role::Assistant
                };
                let words = self.message_len(&mut rng);
                out.push(Message {
                    agent: agent_names[a].clone(),
                    session: session.clone(),
                    role,
                    text: self.text(topic, words, &mut rng),
                    topic,
                    embedding: self.space.sample(topic, &mut rng),
                    importance: (rng.random::<f32>() * 100.0).round() / 100.0,
                });
            }
        }
        out
    }

    /// `n` queries: two to four words of one topic's jargon and common words, with a vector in
    /// the same topic.
    pub fn queries(&self, n: usize, salt: u64) -> Vec<Query> {
        let mut rng = StdRng::seed_from_u64(self.config.seed ^ 0x7175_6572 ^ salt);
        (0..n)
            .map(|_| {
                let topic = rng.random_range(0..self.space.clusters());
                let words = rng.random_range(2..=4);
                let mut parts: Vec<&str> = Vec::with_capacity(words);
                for i in 0..words {
                    if i % 2 == 0 {
                        parts.push(self.topic_word(topic, &mut rng));
                    } else {
                        // Mid-frequency common words: stop-word-like heads would match everything.
                        let rank = 20 + self.vocab.sample_rank(&mut rng) % 500;
                        parts.push(self.vocab.word(rank));
                    }
                }
                Query {
                    text: parts.join(" "),
                    topic,
                    vector: self.space.sample(topic, &mut rng),
                }
            })
            .collect()
    }

    /// `n` tool definitions with a name, a description and a JSON schema of 1 to 5 parameters.
    pub fn tools(&self, n: usize, salt: u64) -> Vec<ToolDef> {
        let mut rng = StdRng::seed_from_u64(self.config.seed ^ 0x746f_6f6c ^ salt);
        (0..n)
            .map(|i| {
                let verb = self.vocab.word(rng.random_range(0..200));
                let noun = self.vocab.word(rng.random_range(200..1_000));
                let name = format!("{verb}_{noun}_{i}");
                let description = format!(
                    "{} {}.",
                    capitalise(verb),
                    self.text(rng.random_range(0..self.space.clusters()), 12, &mut rng)
                );
                let params = rng.random_range(1..=5);
                let mut properties = serde_json::Map::new();
                let mut required = Vec::new();
                for p in 0..params {
                    let pname = format!("{}_{p}", self.vocab.word(rng.random_range(0..300)));
                    let ty = ["string", "integer", "boolean", "number"][rng.random_range(0..4)];
                    properties.insert(
                        pname.clone(),
                        json!({"type": ty, "description": self.text(0, 6, &mut rng)}),
                    );
                    if rng.random_bool(0.6) {
                        required.push(pname);
                    }
                }
                ToolDef {
                    name,
                    description,
                    schema: json!({"type": "object", "properties": properties, "required": required}),
                }
            })
            .collect()
    }
}

/// The name of agent number `i`.
pub fn agent_name(i: usize) -> String {
    format!("agent-{i}")
}

fn capitalise(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Workload {
        Workload::new(WorkloadConfig {
            vocabulary: 1_000,
            topics: 8,
            dim: 32,
            ..WorkloadConfig::default()
        })
    }

    #[test]
    fn same_seed_gives_the_same_messages_queries_and_tools() {
        let (a, b) = (small(), small());
        assert_eq!(a.messages(300, 3, 1), b.messages(300, 3, 1));
        assert_eq!(a.queries(20, 0), b.queries(20, 0));
        assert_eq!(a.tools(5, 0), b.tools(5, 0));
        assert_ne!(a.messages(50, 3, 1), a.messages(50, 3, 2));
    }

    #[test]
    fn messages_have_the_requested_count_agents_and_alternating_roles() {
        let w = small();
        let msgs = w.messages(500, 4, 0);
        assert_eq!(msgs.len(), 500);
        let agents: HashSet<&str> = msgs.iter().map(|m| &*m.agent).collect();
        assert_eq!(agents.len(), 4);
        for pair in msgs.windows(2) {
            if pair[0].session == pair[1].session {
                assert_ne!(pair[0].role, pair[1].role, "turns alternate in a session");
            }
        }
        for m in &msgs {
            let words = m.text.split(' ').count();
            assert!((5..=80).contains(&words), "{words} words");
            assert_eq!(m.embedding.len(), 32);
            let norm: f32 = m.embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4);
            assert!(m.session.starts_with(&*m.agent));
            assert!((0.0..=1.0).contains(&m.importance));
        }
    }

    #[test]
    fn vocabulary_is_zipf_skewed() {
        let w = Workload::standard();
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = vec![0usize; w.vocabulary().len()];
        for _ in 0..100_000 {
            counts[w.vocabulary().sample_rank(&mut rng)] += 1;
        }
        // Under Zipf(1.1) over 5,000 words the top 10 carry ~1/3 of the mass, the bottom
        // half only a few percent.
        let top10: usize = counts[..10].iter().sum();
        let bottom_half: usize = counts[2_500..].iter().sum();
        assert!(top10 > 25_000, "top 10 words drew {top10}");
        assert!(bottom_half < 10_000, "bottom half drew {bottom_half}");
        assert!(counts[0] > counts[1] && counts[1] > counts[9]);
    }

    #[test]
    fn vocabulary_words_are_distinct_and_alphabetic() {
        let v = Vocabulary::new(2_000, 1.1, 3);
        let set: HashSet<&str> = (0..v.len()).map(|r| v.word(r)).collect();
        assert_eq!(set.len(), 2_000);
        assert!(set
            .iter()
            .all(|w| w.chars().all(|c| c.is_ascii_lowercase())));
    }

    #[test]
    fn embeddings_cluster_by_topic() {
        let w = small();
        let mut rng = StdRng::seed_from_u64(1);
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        let (mut same, mut other) = (0.0, 0.0);
        for _ in 0..200 {
            let a = w.space().sample(0, &mut rng);
            let b = w.space().sample(0, &mut rng);
            let c = w.space().sample(1, &mut rng);
            same += dot(&a, &b);
            other += dot(&a, &c);
        }
        assert!(
            same / 200.0 > other / 200.0 + 0.2,
            "same topic {same}, other {other}"
        );
    }

    #[test]
    fn queries_use_their_topics_jargon() {
        let w = small();
        let msgs = w.messages(3_000, 1, 0);
        // Summed over many queries: how often a query's lead word appears in messages of the
        // query's topic versus messages of other topics (per message).
        let (mut in_rate, mut off_rate) = (0.0, 0.0);
        for q in w.queries(40, 0) {
            let first = q.text.split(' ').next().unwrap_or_default().to_string();
            let has = |m: &&&Message| m.text.split(' ').any(|t| t == first);
            let topic: Vec<&Message> = msgs.iter().filter(|m| m.topic == q.topic).collect();
            let other: Vec<&Message> = msgs.iter().filter(|m| m.topic != q.topic).collect();
            in_rate += topic.iter().filter(has).count() as f64 / topic.len().max(1) as f64;
            off_rate += other.iter().filter(has).count() as f64 / other.len().max(1) as f64;
        }
        assert!(
            in_rate > 3.0 * off_rate,
            "in-topic rate {in_rate} vs off-topic {off_rate}"
        );
    }

    #[test]
    fn tools_have_object_schemas_with_properties() {
        let tools = small().tools(10, 0);
        assert_eq!(tools.len(), 10);
        let names: HashSet<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names.len(), 10);
        for t in &tools {
            assert_eq!(t.schema["type"], "object");
            assert!(!t.schema["properties"].as_object().unwrap().is_empty());
            assert!(!t.description.is_empty());
        }
    }
}
