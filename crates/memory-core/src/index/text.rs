//! Tokenization shared by the keyword index and the hashing embedder, so that both see the same
//! words. A token is a maximal run of alphanumeric characters, case-folded; everything else
//! separates tokens (so "don't" gives "don" and "t"). The keyword index reads terms, not tokens:
//! an [`Analyzer`] reduces English word forms to one stem ("painted", "painting" -> "paint").

use std::cell::RefCell;

use rustc_hash::FxHashMap;

/// Calls `f` with every token of `text`, in order, without allocating per token.
///
/// Tokens that are already lowercase are passed as slices of `text`; only tokens that need case
/// folding are copied, into one buffer reused across the whole call. Pure-ASCII text takes a
/// byte-level path that never decodes UTF-8.
///
pub fn for_each_token(text: &str, mut f: impl FnMut(&str)) {
    let mut buf = String::new();
    if text.is_ascii() {
        for_each_ascii_token(text, &mut buf, &mut f);
    } else {
        for_each_unicode_token(text, &mut buf, &mut f);
    }
}

/// The tokens of `text`, case-folded, in order.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_token(text, |t| out.push(t.to_owned()));
    out
}

fn for_each_ascii_token(text: &str, buf: &mut String, f: &mut impl FnMut(&str)) {
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        while start < bytes.len() && !bytes[start].is_ascii_alphanumeric() {
            start += 1;
        }
        let mut end = start;
        let mut has_upper = false;
        while end < bytes.len() && bytes[end].is_ascii_alphanumeric() {
            has_upper |= bytes[end].is_ascii_uppercase();
            end += 1;
        }
        if end > start {
            // Slicing at ASCII boundaries of an ASCII string is always on a char boundary.
            let tok = &text[start..end];
            if has_upper {
                buf.clear();
                buf.push_str(tok);
                buf.make_ascii_lowercase();
                f(buf);
            } else {
                f(tok);
            }
        }
        start = end;
    }
}

fn for_each_unicode_token(text: &str, buf: &mut String, f: &mut impl FnMut(&str)) {
    let mut start: Option<usize> = None;
    let mut needs_fold = false;
    let mut emit = |s: usize, e: usize, fold: bool, buf: &mut String| {
        let tok = &text[s..e];
        if fold {
            buf.clear();
            for c in tok.chars() {
                buf.extend(c.to_lowercase());
            }
            f(buf);
        } else {
            f(tok);
        }
    };
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() {
            if start.is_none() {
                start = Some(i);
                needs_fold = false;
            }
            // A character folds to itself unless it has a lowercase mapping that differs; the
            // check is cheap for ASCII and keeps most tokens as borrowed slices.
            if !needs_fold {
                needs_fold = if c.is_ascii() {
                    c.is_ascii_uppercase()
                } else {
                    let mut lower = c.to_lowercase();
                    !(lower.next() == Some(c) && lower.next().is_none())
                };
            }
        } else if let Some(s) = start.take() {
            emit(s, i, needs_fold, buf);
        }
    }
    if let Some(s) = start {
        emit(s, text.len(), needs_fold, buf);
    }
}

/// How text becomes the terms of the keyword index (BM25), in every tier and store.
///
/// A conversation says "we painted the fence" and a question asks "what did they paint?": with
/// [`Analyzer::English`] both hold the term `paint`. Measured on the generated conversations of
/// the quality bench (330 questions), keyword R@5 0.303 -> 0.355 and R@10 0.338 -> 0.398.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Analyzer {
    /// Terms are the tokens as they are.
    Plain,
    /// Tokens of three or more ASCII letters are reduced to their English stem (Snowball's
    /// Porter2 algorithm); every other token (digits, other scripts) is kept as it is.
    #[default]
    English,
}

impl Analyzer {
    /// Calls `f` with every term of `text`, in order.
    pub fn for_each_term(self, text: &str, mut f: impl FnMut(&str)) {
        match self {
            Analyzer::Plain => for_each_token(text, f),
            Analyzer::English => {
                let mut stem = String::new();
                for_each_token(text, |tok| f(self.term_of(tok, &mut stem)));
            }
        }
    }

    /// Whether the term of `token` (a token as [`for_each_token`] gives it) may differ from the
    /// token itself.
    pub(crate) fn may_change(self, token: &str) -> bool {
        self == Analyzer::English && stemmable(token)
    }

    /// The term of one token (as [`for_each_token`] gives it): the token, or its stem written
    /// into `buf`.
    pub(crate) fn term_of<'a>(self, token: &'a str, buf: &'a mut String) -> &'a str {
        if !self.may_change(token) {
            return token;
        }
        // The cache is released before the term is used, so its user may analyze text too.
        if STEMS.with(|cache| cache.borrow_mut().stem(token, buf)) {
            buf
        } else {
            token
        }
    }

    /// The terms of `text`, in order.
    ///
    /// ```
    /// use memory_core::Analyzer;
    ///
    /// assert_eq!(Analyzer::English.terms("She painted 2 Paintings"), ["she", "paint", "2", "paint"]);
    /// assert_eq!(Analyzer::Plain.terms("She painted"), ["she", "painted"]);
    /// ```
    pub fn terms(self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.for_each_term(text, |t| out.push(t.to_owned()));
        out
    }

    /// The analyzer's number in stored formats (index snapshots, the PostgreSQL store's row).
    pub fn code(self) -> u8 {
        match self {
            Analyzer::Plain => 1,
            Analyzer::English => 2,
        }
    }

    /// The analyzer of a stored number, if this build knows it.
    pub fn from_code(code: u8) -> Option<Analyzer> {
        match code {
            1 => Some(Analyzer::Plain),
            2 => Some(Analyzer::English),
            _ => None,
        }
    }
}

/// Whether the English stemmer may change `token`: three or more ASCII lowercase letters (shorter
/// words have no suffix to strip; digits and other scripts are not English words).
fn stemmable(token: &str) -> bool {
    token.len() >= 3 && token.bytes().all(|b| b.is_ascii_lowercase())
}

/// Most recently stemmed words of this thread. Stemming costs some 150-300 ns a word and the
/// words of a conversation repeat, so a bounded table of them (cleared when full) takes the cost
/// off most tokens of an insert and of a scan of the short-term window.
struct StemCache {
    stemmer: rust_stemmers::Stemmer,
    /// Word -> its stem, or `None` when the stem is the word itself.
    stems: FxHashMap<Box<str>, Option<Box<str>>>,
}

/// Words the cache holds at most (a few hundred KB).
const STEM_CACHE_WORDS: usize = 8_192;

thread_local! {
    static STEMS: RefCell<StemCache> = RefCell::new(StemCache {
        stemmer: rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English),
        stems: FxHashMap::default(),
    });
}

impl StemCache {
    /// Writes the stem of `word` into `out` and returns true, or returns false when the stem is
    /// `word` itself.
    fn stem(&mut self, word: &str, out: &mut String) -> bool {
        let stem = match self.stems.get(word) {
            Some(known) => known.as_deref(),
            None => {
                if self.stems.len() >= STEM_CACHE_WORDS {
                    self.stems.clear();
                }
                let stemmed = self.stemmer.stem(word);
                let stem = (stemmed != word).then(|| Box::<str>::from(stemmed.as_ref()));
                self.stems.entry(word.into()).or_insert(stem).as_deref()
            }
        };
        match stem {
            Some(s) => {
                out.clear();
                out.push_str(s);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_english_analyzer_stems_ascii_words_and_keeps_other_tokens() {
        let terms = Analyzer::English
            .terms("Caroline researched adoption agencies in 2023, Straße 東京 running");
        assert_eq!(
            terms,
            ["carolin", "research", "adopt", "agenc", "in", "2023", "straße", "東京", "run"]
        );
        assert_eq!(
            Analyzer::English.terms("paints painted painting"),
            ["paint"; 3]
        );
        assert!(Analyzer::English.terms(" ,.;").is_empty());
    }

    #[test]
    fn the_plain_analyzer_gives_the_tokens() {
        let text = "The QUICK brown Foxes, 2 jumps — Ünïcode";
        assert_eq!(Analyzer::Plain.terms(text), tokenize(text));
    }

    #[test]
    fn stems_are_the_same_from_the_cache_and_after_it_is_cleared() {
        let first = Analyzer::English.terms("walking walked walks");
        // More distinct words than the cache holds, so it is cleared at least once.
        let many: String = (0..STEM_CACHE_WORDS + 10)
            .map(|i| format!("word{}ing ", to_letters(i)))
            .collect();
        let n = Analyzer::English.terms(&many).len();
        assert_eq!(n, STEM_CACHE_WORDS + 10);
        assert_eq!(Analyzer::English.terms("walking walked walks"), first);
        assert_eq!(first, ["walk"; 3]);
    }

    /// `i` written with the letters a-j, so the words stay stemmable.
    fn to_letters(mut i: usize) -> String {
        let mut s = String::new();
        loop {
            s.push((b'a' + (i % 10) as u8) as char);
            i /= 10;
            if i == 0 {
                return s;
            }
        }
    }

    #[test]
    fn analyzer_codes_round_trip_and_unknown_codes_are_none() {
        for a in [Analyzer::Plain, Analyzer::English] {
            assert_eq!(Analyzer::from_code(a.code()), Some(a));
        }
        assert_eq!(Analyzer::from_code(0), None);
        assert_eq!(Analyzer::from_code(9), None);
    }

    #[test]
    fn tokenizer_folds_case_and_splits_unicode_text_on_non_alphanumerics() {
        assert_eq!(
            tokenize("Straße Ünïcode 東京 don't"),
            ["straße", "ünïcode", "東京", "don", "t"]
        );
    }

    #[test]
    fn tokenizer_handles_ascii_punctuation_digits_and_empty_input() {
        assert_eq!(
            tokenize("  Hello,world!! 42x -- A_b "),
            ["hello", "world", "42x", "a", "b"]
        );
        assert!(tokenize("").is_empty());
        assert!(tokenize(" ,.;-- ").is_empty());
        assert_eq!(tokenize("one two, three").len(), 3);
    }

    #[test]
    fn ascii_and_unicode_paths_agree_on_ascii_words() {
        // The same words followed by a non-ASCII separator force the Unicode path.
        let ascii = tokenize("The QUICK brown Fox, 2 jumps");
        let unicode = tokenize("The QUICK brown Fox, 2 jumps —");
        assert_eq!(ascii, unicode);
    }

    #[test]
    fn tokenizer_folds_characters_whose_lowercase_is_longer() {
        // 'İ' (U+0130) lowercases to "i̇" (two chars); Greek capitals fold to lowercase.
        assert_eq!(tokenize("İstanbul ΑΘΗΝΑ"), ["i\u{307}stanbul", "αθηνα"]);
    }

    #[test]
    fn for_each_token_lends_borrowed_and_folded_tokens_in_order() {
        let mut seen = Vec::new();
        for_each_token("Hello, WORLD!", |t| seen.push(t.to_string()));
        assert_eq!(seen, ["hello", "world"]);
        let mut got = Vec::new();
        for_each_token("ab CD ef Éé", |t| got.push(t.to_owned()));
        assert_eq!(got, ["ab", "cd", "ef", "éé"]);
    }
}
