//! The importance score that decides what consolidation keeps: a weighted mix of importance,
//! retrieval frequency, recency and novelty; and the estimate of an entry's importance from its
//! text, for entries whose caller gave none.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::config::ConsolidationConfig;
use crate::entry::MemoryEntry;
use crate::error::Result;

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
    /// A scorer with `config`'s weights, half-life and saturation, checked first
    /// ([`ConsolidationConfig::validate`]: a zero half-life would make every recency 0.5^(0/0),
    /// NaN): an invalid one is `Error::InvalidConfig`.
    ///
    /// ```
    /// use memory_core::{ConsolidationConfig, ImportanceScorer};
    /// use std::time::Duration;
    ///
    /// let scorer = ImportanceScorer::new(ConsolidationConfig::default())?;
    /// let no_decay = ConsolidationConfig {
    ///     recency_half_life: Duration::ZERO,
    ///     ..ConsolidationConfig::default()
    /// };
    /// assert!(ImportanceScorer::new(no_decay).is_err());
    /// # Ok::<(), memory_core::Error>(())
    /// ```
    pub fn new(config: ConsolidationConfig) -> Result<Self> {
        config.validate()?;
        Ok(ImportanceScorer { config })
    }

    /// Estimates the importance of a text that came without one, in [0.1, 1], from how much
    /// information it carries: small talk ("Haha, totally!", "Thanks, see you soon") scores low,
    /// statements of fact ("My sister Ana moved to Porto in May 2021") high.
    ///
    /// It counts, ignoring a leading `Speaker:` label (up to three words, the first capitalized,
    /// in which no sentence ends: "Dr. Smith:" is one, the "I'm pregnant! Due:" of "I'm
    /// pregnant! Due: March" is not):
    /// - content words: words of three letters or more that are not among the few hundred most
    ///   frequent English words and conversational fillers (a language-wide prior of rarity:
    ///   "I", "really", "great", "thanks" carry little, "dentist", "Porto", "marathon" a lot);
    /// - specifics, counted again: numbers, dates (month and weekday names, yesterday, tomorrow)
    ///   and names (capitalized words not at the start of a sentence), except a name that
    ///   addresses the listener ("Thanks, Caroline!", "Hey Mel");
    /// - one more for a turn in which the speaker speaks of themselves (I, my, we, our...), with
    ///   content in it.
    ///
    /// Each sentence counts by whom it speaks of. One in which the speaker speaks of themselves
    /// counts in full. One that speaks to or of the listener (you, your...) and not of the speaker
    /// ("You deserve it after all that work", "How did you handle it?") tells the listener what
    /// they know: only its names, numbers and dates count ("thank you" and the fillers "you know",
    /// "you see" do not make a sentence one to the listener). One of both in which the speaker is
    /// only the one who feels or asks ("I'm so proud of you", "I admire your courage": I or me, no
    /// my, our, we...) is a reaction: its content words count half. One of neither tells of the
    /// world or of others ("Being outdoors does wonders"): its content words count half, its names,
    /// numbers and dates in full; a question of neither counts so only in a turn where the speaker
    /// also speaks of themselves (there it is most often rhetorical: "Guess who got promoted?
    /// Me!"), and nothing in a turn without them (it asks rather than tells).
    ///
    /// The sum `x` maps to `0.1 + 0.9 * (1 - e^(-x / 2.5))`: 0 for pure small talk gives 0.1, one
    /// content word 0.40, two 0.60, four 0.82, six 0.92. Under the default consolidation weights
    /// (importance 0.4, recency 0.2, novelty 0.1, frequency 0.3) and threshold 0.5, an entry
    /// consolidated within hours of its turn is kept from about two content words on, so a
    /// statement with a fact in it is kept and a reaction is not. Measured on the quality
    /// benchmark's conversations: see the README's transition figures
    /// (`examples/importance_by_length.rs` shows the estimate by turn length).
    ///
    /// Cost: one pass over the text, a few hash lookups per word.
    pub fn estimate(text: &str) -> f32 {
        crate::information::importance_estimate(text)
    }

    /// Recency in [0, 1] of something last touched at `at`, seen at `now`.
    pub fn recency(&self, at: Timestamp, now: Timestamp) -> f32 {
        let age = now.since(at).as_secs_f64();
        let half_life = self.config.recency_half_life.as_secs_f64();
        0.5f64.powf(age / half_life) as f32
    }

    /// Scores `entry` at time `now`. `max_similarity` is the highest cosine similarity of the
    /// entry's embedding to the agent's long-term memory, when known. The entry's importance is
    /// [`MemoryEntry::importance`] (one that is not a finite number counts as none given),
    /// clamped to [0, 1].
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
        let importance = entry.importance().clamp(0.0, 1.0);
        let novelty = max_similarity
            .filter(|s| s.is_finite())
            .map(|s| (1.0 - s).clamp(0.0, 1.0));
        // In f64: weights near f32::MAX would overflow an f32 sum (inf / inf is NaN), and
        // weights near f32::MIN_POSITIVE lose their precision in f32 products.
        let (sum, weight) = [
            (importance, w.importance),
            (frequency, w.frequency),
            (recency, w.recency),
        ]
        .into_iter()
        .chain(novelty.map(|n| (n, w.novelty)))
        .fold((0.0f64, 0.0f64), |(s, ws), (x, wx)| {
            let wx = f64::from(wx);
            (s + f64::from(x) * wx, ws + wx)
        });
        let total = if weight > 0.0 {
            (sum / weight).clamp(0.0, 1.0) as f32
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
    fn what_a_turn_says_of_its_speaker_counts_more_than_what_it_asks_or_tells_the_listener() {
        let est = ImportanceScorer::estimate;
        // A name that addresses the listener is not a fact: the same reaction with and without.
        assert_eq!(
            est("Wow, that's so cool, Caroline!"),
            est("Wow, that's so cool!")
        );
        assert_eq!(
            est("Hey Mel! Good to see you!"),
            est("Hey! Good to see you!")
        );
        assert!(est("Thanks, Caroline! See you soon.") < 0.45);
        // Reactions and questions to the listener, long as they are, stay below two content
        // words' worth; the speaker's own news does not.
        let to_the_listener = [
            "Melanie: Wow, that's awesome, Caroline! What happened that was so powerful? Did you hear any inspiring stories?",
            "So cool you found such a helpful group. What's it done for you?",
            "That painting looks amazing, you must have worked on it for weeks!",
        ];
        for text in to_the_listener {
            assert!(est(text) < 0.6, "{text:?} estimated {}", est(text));
        }
        let about_the_speaker = [
            "Caroline: I went to a LGBTQ support group yesterday and it was so powerful.",
            "Guess who got promoted to team lead last week? Me!",
            "We took the kids camping at the beach last weekend.",
            "Is it weird that I still miss my old apartment in Lisbon?",
        ];
        for text in about_the_speaker {
            assert!(est(text) > 0.7, "{text:?} estimated {}", est(text));
        }
        // Facts about others still count through their names, numbers and dates.
        assert!(est("Ana moved to Porto in May 2021.") > 0.8);
    }

    #[test]
    fn each_sentence_counts_by_whom_it_speaks_of() {
        let est = ImportanceScorer::estimate;
        // What a turn tells the listener of themselves adds nothing to the speaker's news...
        assert_eq!(
            est("I went to the dentist. You must be so busy with the new job!"),
            est("I went to the dentist.")
        );
        // ...so a warm reaction with a first-person word in it is still a reaction,
        assert!(
            est("I'm so happy for you! You deserve it after all the hard work you've put in. How are you planning to celebrate?") < 0.45
        );
        // The speaker feeling or asking about the listener is not news of the speaker's life:
        // its content counts half, unless the speaker speaks of what is theirs in it.
        assert!(est("I'm so proud of you.") < 0.55);
        assert!(est("I'm so proud of my son.") > 0.65);
        assert!(est("I told you my sister moved to Porto.") > 0.85);
        // except for the names, numbers and dates it holds.
        assert!(est("Good luck with your interview at Google on Friday!") > 0.55);
        assert!(est("Good luck with your interview!") < 0.2);
        // "Thank you" and the filler "you know" address no one's life.
        assert_eq!(
            est("You know, the new puppy is settling in well."),
            est("The new puppy is settling in well.")
        );
        assert!(est("Thank you for the recipe, the cake turned out great.") > 0.45);
        assert!(est("Thank you for the recipe, you are the best cook.") < 0.2);
        // A remark about the world in a speaker's turn counts half; of the speaker, in full.
        assert!(
            est("I went to the dentist. Teeth are weird.")
                < est("I went to the dentist. My teeth are weird.")
        );
        assert!(est("I went to the dentist. Teeth are weird.") > est("I went to the dentist."));
    }

    #[test]
    fn the_estimate_follows_the_documented_curve() {
        assert!((ImportanceScorer::estimate("ok") - 0.1).abs() < 1e-6);
        // One content word ("dentist") in a turn without the speaker counts half:
        // 0.1 + 0.9 * (1 - e^(-0.5/2.5)) = 0.2632
        assert!((ImportanceScorer::estimate("the dentist") - 0.2632).abs() < 1e-3);
        // With "I" it counts in full, plus the first-person point: x = 2 -> 0.5956
        assert!((ImportanceScorer::estimate("I dentist") - 0.5956).abs() < 1e-3);
        // A name counts in full either way ("Porto": content 1/2 + name 1): x = 1.5 -> 0.5061
        assert!((ImportanceScorer::estimate("to Porto") - 0.5061).abs() < 1e-3);
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
            importance: Some(importance),
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
        .unwrap()
    }

    #[test]
    fn a_scorer_is_made_only_of_a_valid_configuration() {
        let bad = [
            ConsolidationConfig {
                recency_half_life: Duration::ZERO,
                ..ConsolidationConfig::default()
            },
            ConsolidationConfig {
                threshold: f32::NAN,
                ..ConsolidationConfig::default()
            },
            ConsolidationConfig {
                weights: ScoreWeights {
                    importance: 0.0,
                    frequency: 0.0,
                    recency: 0.0,
                    novelty: 0.0,
                },
                ..ConsolidationConfig::default()
            },
        ];
        for config in bad {
            assert!(
                matches!(
                    ImportanceScorer::new(config.clone()),
                    Err(crate::Error::InvalidConfig(_))
                ),
                "{config:?}"
            );
        }
    }

    #[test]
    fn an_importance_that_is_not_a_number_counts_as_none_given() {
        let s = scorer();
        let now = Timestamp(0).plus(Duration::from_secs(3600));
        let mut none = entry(0.0, 3, Timestamp(0));
        none.content = "My sister Ana moved to Porto in May 2021.".into();
        none.importance = None;
        let want = s.score(&none, Some(0.25), now);
        assert!(want.importance > 0.8, "{want:?}");
        for odd in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let e = MemoryEntry {
                importance: Some(odd),
                ..none.clone()
            };
            assert_eq!(e.importance(), want.importance, "{odd}");
            let got = s.score(&e, Some(0.25), now);
            assert_eq!(got, want, "{odd}");
        }
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
    fn extreme_weights_give_the_same_score_as_their_proportions() {
        let now = Timestamp(0).plus(Duration::from_secs(3600));
        let e = entry(0.8, 10, Timestamp(0));
        let with = |w: f32| ImportanceScorer {
            config: ConsolidationConfig {
                weights: ScoreWeights {
                    importance: w,
                    frequency: w,
                    recency: w,
                    novelty: w,
                },
                ..scorer().config
            },
        };
        let want = with(1.0).score(&e, Some(0.25), now).total;
        // importance 0.8, frequency 1.0, recency 0.5, novelty 0.75, weighted equally
        assert!((want - 0.7625).abs() < 1e-6, "{want}");
        // f32::MAX is a checked configuration's weight only alone, but the scorer takes any.
        for w in [f32::MAX, 1e38, f32::MIN_POSITIVE, 1e-45] {
            let got = with(w).score(&e, Some(0.25), now).total;
            assert!((got - want).abs() < 1e-6, "weights {w:e}: {got}");
        }
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
        let s = ImportanceScorer::new(cfg).unwrap();
        let now = Timestamp(0).plus(Duration::from_secs(86_400));
        let old_important = entry(1.0, 0, Timestamp(0));
        let new_unimportant = entry(0.0, 0, now);
        assert!(
            s.score(&new_unimportant, None, now).total > s.score(&old_important, None, now).total
        );
    }
}
