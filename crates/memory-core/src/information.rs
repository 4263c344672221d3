//! How much information a text carries, as an importance estimate for entries whose caller gave
//! none: content words beyond the most common ones, numbers, dates, names, first-person facts.
//! Documented on [`ImportanceScorer::estimate`](crate::ImportanceScorer::estimate), the public
//! name of [`importance_estimate`].

/// See [`ImportanceScorer::estimate`](crate::ImportanceScorer::estimate).
pub(crate) fn importance_estimate(text: &str) -> f32 {
    let x = information(text);
    0.1 + 0.9 * (1.0 - (-x / 2.5).exp())
}

/// The information count of [`importance_estimate`].
fn information(text: &str) -> f32 {
    let text = strip_speaker_label(text);
    // A sentence's counts go, once its end shows whether it is a question (the last one
    // without an end is a statement), to one of the kinds of [`Sentences`].
    let mut sentences = Sentences::default();
    let mut sentence = Sentence::default();
    let mut sentence_start = true;
    let mut after_greeting = false;
    let mut lower = String::new();
    let mut previous = String::new();
    for w in words(text) {
        std::mem::swap(&mut lower, &mut previous);
        lower.clear();
        lower.extend(w.text.chars().flat_map(char::to_lowercase));
        if is_first_person(&lower) {
            sentence.first_person = true;
            sentence.owns |=
                !matches!(lower.as_str(), "i" | "i'm" | "i've" | "i'll" | "i'd" | "me");
        }
        // "Thank you", and "you know" / "you see" as fillers, speak to no one in particular.
        if is_second_person(&lower) && previous != "thank" {
            sentence.second_person = sentence.second_person.saturating_add(1);
        } else if previous == "you" && matches!(lower.as_str(), "know" | "see") {
            sentence.second_person = sentence.second_person.saturating_sub(1);
        }
        let has_digit = w.text.bytes().any(|b| b.is_ascii_digit());
        let letters = w.text.chars().filter(|c| c.is_alphabetic()).count();
        let capitalized = w.text.chars().next().is_some_and(char::is_uppercase);
        let pronoun_i = lower == "i" || lower.starts_with("i'");
        // "Thanks, Caroline!", "Hey Mel", "That's great, Jon.": a name that addresses the
        // listener says nothing about anyone's life.
        let vocative = capitalized
            && !pronoun_i
            && !has_digit
            && (after_greeting
                || (w.after_comma && matches!(w.next, '!' | '?' | '.' | ',' | '\0')));
        if !vocative {
            if has_digit || (letters >= 3 && !common_words().contains(lower.as_str())) {
                sentence.counts.content = sentence.counts.content.saturating_add(1);
            }
            let name = capitalized && !sentence_start && !pronoun_i;
            if has_digit || name || date_words().contains(lower.as_str()) {
                sentence.counts.specific = sentence.counts.specific.saturating_add(1);
            }
        }
        after_greeting = is_greeting(&lower);
        sentence_start = w.ends_sentence.is_some();
        if let Some(end) = w.ends_sentence {
            sentences.add(std::mem::take(&mut sentence), end == '?');
            after_greeting = false;
            // "Thank. You..." is no "thank you".
            lower.clear();
        }
    }
    sentences.add(sentence, false);
    sentences.information()
}

/// What one sentence counts, and of whom it speaks.
#[derive(Default)]
struct Sentence {
    counts: Counts,
    /// The speaker speaks of themselves (I, my, we, our...).
    first_person: bool,
    /// ...with a word other than "I" and "me" (my, mine, we, us, our...): of what is theirs.
    owns: bool,
    /// Words by which it speaks to or of the listener (you, your...).
    second_person: u32,
}

/// A turn's sentences by what they tell: of the speaker, to the listener, or of the world.
#[derive(Default)]
struct Sentences {
    /// Whether any sentence speaks of the speaker.
    of_speaker: bool,
    /// Sentences in which the speaker speaks of themselves, statements or questions.
    speaker: Counts,
    /// Sentences to the listener, of the listener ("You deserve it", "How was your trip?").
    listener: Counts,
    /// Statements of neither (of the world, or elliptical: "Took the car to the Rockies").
    world: Counts,
    /// Questions of neither ("Guess who got promoted?").
    world_asked: Counts,
}

impl Sentences {
    fn add(&mut self, s: Sentence, question: bool) {
        let to_listener = s.second_person > 0;
        // "I'm so proud of you", "I admire your courage", "Can I ask you something?": the
        // speaker only as the one who feels or asks, about the listener. Not news of the
        // speaker's life: it counts as a remark of the world does (content words half), and the
        // turn is still one in which the speaker speaks.
        let reaction = s.first_person && !s.owns && to_listener;
        self.of_speaker |= s.first_person;
        let to = match (s.first_person, to_listener, question) {
            (true, true, _) if reaction => &mut self.world,
            (true, _, _) => &mut self.speaker,
            (false, true, _) => &mut self.listener,
            (false, false, true) => &mut self.world_asked,
            (false, false, false) => &mut self.world,
        };
        to.add(s.counts);
    }

    /// Summed in f32, which cannot overflow from u32 counts.
    fn information(&self) -> f32 {
        let speaker = self.speaker.content as f32 + self.speaker.specific as f32;
        // What a turn tells the listener of themselves they know already; only its names,
        // numbers and dates may be new.
        let listener = self.listener.specific as f32;
        let world = 0.5 * self.world.content as f32 + self.world.specific as f32;
        if self.of_speaker {
            // A question without anyone in it, in a turn where the speaker speaks of
            // themselves, is most often rhetorical ("Guess who got promoted? Me!").
            let asked = 0.5 * self.world_asked.content as f32 + self.world_asked.specific as f32;
            let content =
                self.speaker.content > 0 || self.world.content > 0 || self.world_asked.content > 0;
            let bonus = if content { 1.0 } else { 0.0 };
            speaker + listener + world + asked + bonus
        } else {
            listener + world
        }
    }
}

/// Content words and specifics counted in part of a text.
#[derive(Default)]
struct Counts {
    content: u32,
    specific: u32,
}

impl Counts {
    /// Saturating, as every count here: a text of billions of words (a caller's
    /// [`ImportanceScorer::estimate`](crate::ImportanceScorer::estimate) has no size limit)
    /// must not overflow them; the estimate has long reached 1 by then.
    fn add(&mut self, other: Counts) {
        self.content = self.content.saturating_add(other.content);
        self.specific = self.specific.saturating_add(other.specific);
    }
}

/// Whether a (lowercase) word is one by which a speaker speaks of themselves.
fn is_first_person(word: &str) -> bool {
    matches!(
        word,
        "i" | "i'm"
            | "i've"
            | "i'll"
            | "i'd"
            | "me"
            | "my"
            | "mine"
            | "myself"
            | "we"
            | "we're"
            | "we've"
            | "we'll"
            | "we'd"
            | "us"
            | "our"
            | "ours"
            | "ourselves"
    )
}

/// Whether a (lowercase) word is one by which a speaker speaks to or of the listener.
fn is_second_person(word: &str) -> bool {
    matches!(
        word,
        "you" | "you're" | "you've" | "you'll" | "you'd" | "your" | "yours" | "yourself"
    )
}

/// Whether a capitalized word right after this (lowercase) word addresses the listener ("Hey
/// Mel", "Thanks Jon").
fn is_greeting(word: &str) -> bool {
    matches!(
        word,
        "hey"
            | "hi"
            | "hello"
            | "thanks"
            | "thank"
            | "congrats"
            | "congratulations"
            | "bye"
            | "dear"
            | "yo"
            | "wow"
            | "oh"
            | "aw"
            | "aww"
            | "hiya"
            | "morning"
            | "evening"
            | "night"
            | "cheers"
    )
}

/// `Name: text` -> `text` (a speaker label is who said it, not what was said). A label is up to
/// three words, the first capitalized, in which no sentence ends: in "I'm pregnant! Due: March"
/// the text before ": " is speech, not a label. A period may only end a title or an initial
/// ("Dr. Smith: ...", "J. Smith: ..."); any other period, `!`, `?` or line break rules a label out.
fn strip_speaker_label(text: &str) -> &str {
    match text.split_once(": ") {
        Some((label, rest))
            if !label.is_empty()
                && label.len() <= 40
                && label.split_whitespace().count() <= 3
                && label.chars().next().is_some_and(char::is_uppercase)
                && !label.contains(['!', '?', '\n', '\r'])
                && label
                    .split_whitespace()
                    .all(|w| !w.contains('.') || is_abbreviation(w)) =>
        {
            rest
        }
        _ => text,
    }
}

/// Whether a word of a speaker label is a title or an initial with its period ("Dr.", "J."),
/// whose period ends no sentence.
fn is_abbreviation(word: &str) -> bool {
    let Some(stem) = word.strip_suffix('.') else {
        return false;
    };
    let mut chars = stem.chars();
    let initial = chars.next().is_some_and(char::is_uppercase) && chars.next().is_none();
    initial
        || matches!(
            stem,
            "Dr" | "Mr"
                | "Mrs"
                | "Ms"
                | "Mx"
                | "Prof"
                | "St"
                | "Jr"
                | "Sr"
                | "Rev"
                | "Fr"
                | "Capt"
                | "Col"
                | "Gen"
                | "Lt"
                | "Sgt"
                | "Hon"
                | "Gov"
                | "Sen"
                | "Rep"
                | "Pres"
        )
}

/// One word of a text and what surrounds it.
struct Word<'a> {
    text: &'a str,
    /// The punctuation that ends a sentence right after the word, if one does.
    ends_sentence: Option<char>,
    /// Whether a comma stands between the previous word and this one.
    after_comma: bool,
    /// The character right after the word (closing quotes skipped); `'\0'` at the end.
    next: char,
}

/// The words of `text` (letters and digits, with inner apostrophes).
fn words(text: &str) -> impl Iterator<Item = Word<'_>> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let start = rest.find(|c: char| c.is_alphanumeric())?;
        let after_comma = rest[..start].contains(',');
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
        let after = rest.trim_start_matches(['"', ')', '\'']);
        let next = after.chars().next().unwrap_or('\0');
        Some(Word {
            text: word,
            ends_sentence: matches!(next, '.' | '!' | '?' | '\n').then_some(next),
            after_comma,
            next,
        })
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
    use super::*;

    #[test]
    fn only_a_label_in_which_no_sentence_ends_is_stripped() {
        let stripped = [
            (
                "Caroline: I went to a support group.",
                "I went to a support group.",
            ),
            ("Dr. Smith: Take two a day.", "Take two a day."),
            ("Mrs. Ana Lopes: Hi!", "Hi!"),
            (
                "J. R. Tolkien: Not all who wander are lost.",
                "Not all who wander are lost.",
            ),
            ("Sammy Davis Jr.: I have a dream.", "I have a dream."),
        ];
        for (text, rest) in stripped {
            assert_eq!(strip_speaker_label(text), rest, "{text:?}");
        }
        let kept = [
            "I'm pregnant! Due: March",
            "Really? Good: I hoped so",
            "Ok. Note: bring the keys",
            "Dr. Who. Me: no",
            "Yes\nNote: call Ana",
            "this is: lowercase",
        ];
        for text in kept {
            assert_eq!(strip_speaker_label(text), text, "{text:?}");
        }
        // Speech before the colon counts as the turn's own.
        assert!(importance_estimate("I'm pregnant! Due: March") > importance_estimate("March"));
    }

    #[test]
    fn counts_saturate_instead_of_overflowing() {
        let mut counts = Counts {
            content: u32::MAX - 1,
            specific: u32::MAX,
        };
        counts.add(Counts {
            content: 5,
            specific: 1,
        });
        assert_eq!((counts.content, counts.specific), (u32::MAX, u32::MAX));
        let mut sentences = Sentences::default();
        for _ in 0..2 {
            sentences.add(
                Sentence {
                    counts: Counts {
                        content: u32::MAX,
                        specific: u32::MAX,
                    },
                    first_person: true,
                    ..Sentence::default()
                },
                false,
            );
        }
        let x = sentences.information();
        assert!(x.is_finite() && x > 0.0, "{x}");
    }
}
