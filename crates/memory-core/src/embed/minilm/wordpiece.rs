//! BERT's WordPiece tokenizer, read from a model's `tokenizer.json` and run the way the Hugging
//! Face `tokenizers` crate runs that file (added tokens, `BertNormalizer`, `BertPreTokenizer`,
//! `WordPiece`, `[CLS] ... [SEP]`), so the model sees the ids it was trained on.
//!
//! Written here rather than taken from `tokenizers` because that crate cannot build without a
//! regex engine (onig or fancy-regex) and costs about ten times the build time of this whole
//! feature; the character classes come from the same two small crates it uses
//! (`unicode_categories`, and NFD from `unicode-normalization`). The tests compare the ids with
//! the reference tokenizer's.

use std::collections::HashMap;

use serde::Deserialize;
use unicode_categories::UnicodeCategories;
use unicode_normalization::UnicodeNormalization;

/// The parts of `tokenizer.json` this tokenizer reads; anything it would run differently is
/// rejected at load time instead of producing other ids than the reference.
#[derive(Deserialize)]
struct TokenizerFile {
    #[serde(default)]
    added_tokens: Vec<AddedToken>,
    normalizer: Option<NormalizerSpec>,
    pre_tokenizer: Option<TypeTag>,
    post_processor: Option<serde_json::Value>,
    model: ModelSpec,
}

#[derive(Deserialize)]
struct AddedToken {
    id: u32,
    content: String,
    #[serde(default)]
    single_word: bool,
    #[serde(default)]
    lstrip: bool,
    #[serde(default)]
    rstrip: bool,
    #[serde(default)]
    normalized: bool,
}

#[derive(Deserialize)]
struct NormalizerSpec {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    clean_text: bool,
    #[serde(default)]
    handle_chinese_chars: bool,
    strip_accents: Option<bool>,
    #[serde(default)]
    lowercase: bool,
}

#[derive(Deserialize)]
struct TypeTag {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct ModelSpec {
    #[serde(rename = "type")]
    kind: String,
    vocab: HashMap<String, u32>,
    unk_token: String,
    #[serde(default = "default_prefix")]
    continuing_subword_prefix: String,
    #[serde(default = "default_max_chars")]
    max_input_chars_per_word: usize,
}

fn default_prefix() -> String {
    "##".to_owned()
}

fn default_max_chars() -> usize {
    100
}

/// Which normalization steps `BertNormalizer` runs (all of them for uncased models).
#[derive(Clone, Copy, Debug)]
struct Normalization {
    clean_text: bool,
    handle_chinese_chars: bool,
    strip_accents: bool,
    lowercase: bool,
}

/// A loaded WordPiece tokenizer.
#[derive(Debug)]
pub(crate) struct WordPiece {
    vocab: HashMap<String, u32>,
    /// Added tokens matched literally in the raw text before normalization (the special tokens).
    added: Vec<(String, u32)>,
    normalization: Normalization,
    unk: u32,
    cls: u32,
    sep: u32,
    prefix: String,
    max_chars_per_word: usize,
}

impl WordPiece {
    /// Parses a `tokenizer.json`; the error says which part is missing or not supported.
    pub(crate) fn from_json(json: &str) -> Result<Self, String> {
        let file: TokenizerFile =
            serde_json::from_str(json).map_err(|e| format!("not a tokenizer.json: {e}"))?;
        if file.model.kind != "WordPiece" {
            return Err(format!(
                "model type {:?} is not supported (only WordPiece)",
                file.model.kind
            ));
        }
        let normalization = match file.normalizer {
            Some(n) if n.kind == "BertNormalizer" => Normalization {
                clean_text: n.clean_text,
                handle_chinese_chars: n.handle_chinese_chars,
                // `null` means "as lowercase", as in the tokenizers crate.
                strip_accents: n.strip_accents.unwrap_or(n.lowercase),
                lowercase: n.lowercase,
            },
            Some(n) => {
                return Err(format!(
                    "normalizer {:?} is not supported (only BertNormalizer)",
                    n.kind
                ))
            }
            None => return Err("no normalizer (BertNormalizer expected)".to_owned()),
        };
        match file.pre_tokenizer {
            Some(p) if p.kind == "BertPreTokenizer" => {}
            Some(p) => {
                return Err(format!(
                    "pre-tokenizer {:?} is not supported (only BertPreTokenizer)",
                    p.kind
                ))
            }
            None => return Err("no pre-tokenizer (BertPreTokenizer expected)".to_owned()),
        }
        let vocab = file.model.vocab;
        let lookup = |token: &str| {
            vocab
                .get(token)
                .copied()
                .ok_or_else(|| format!("token {token:?} is not in the vocabulary"))
        };
        let unk = lookup(&file.model.unk_token)?;
        let (cls, sep) = match &file.post_processor {
            Some(p) => single_sequence_specials(p)?,
            None => return Err("no post-processor ([CLS] ... [SEP] expected)".to_owned()),
        };
        let (cls, sep) = (lookup(&cls)?, lookup(&sep)?);
        let mut added = Vec::with_capacity(file.added_tokens.len());
        for t in file.added_tokens {
            if t.normalized || t.single_word || t.lstrip || t.rstrip || t.content.is_empty() {
                return Err(format!(
                    "added token {:?} uses matching options that are not supported \
                     (normalized, single_word, lstrip, rstrip)",
                    t.content
                ));
            }
            added.push((t.content, t.id));
        }
        Ok(WordPiece {
            vocab,
            added,
            normalization,
            unk,
            cls,
            sep,
            prefix: file.model.continuing_subword_prefix,
            max_chars_per_word: file.model.max_input_chars_per_word,
        })
    }

    /// The largest id the tokenizer can emit, to check it against the model's vocabulary size.
    pub(crate) fn max_id(&self) -> u32 {
        let added = self.added.iter().map(|&(_, id)| id);
        let specials = [self.unk, self.cls, self.sep];
        self.vocab
            .values()
            .copied()
            .chain(added)
            .chain(specials)
            .max()
            .unwrap_or(0)
    }

    /// The ids of `text`: `[CLS]`, at most `max_len - 2` word pieces (the rest is cut, as
    /// sentence-transformers truncates), `[SEP]`. `max_len` is at least 2.
    pub(crate) fn encode(&self, text: &str, max_len: usize) -> Vec<u32> {
        let budget = max_len.saturating_sub(2);
        let mut ids = Vec::with_capacity(64.min(max_len));
        ids.push(self.cls);
        let mut rest = text;
        while !rest.is_empty() && ids.len() <= budget {
            let (plain, special, after) = match self.next_added_token(rest) {
                Some((start, len, id)) => (&rest[..start], Some(id), &rest[start + len..]),
                None => (rest, None, ""),
            };
            self.encode_plain(plain, &mut ids, budget);
            ids.extend(special);
            rest = after;
        }
        ids.truncate(budget + 1);
        ids.push(self.sep);
        ids
    }

    /// The leftmost added token in `text`, the longest one where several start there.
    fn next_added_token(&self, text: &str) -> Option<(usize, usize, u32)> {
        let mut best: Option<(usize, usize, u32)> = None;
        for (token, id) in &self.added {
            if let Some(start) = text.find(token.as_str()) {
                let better =
                    best.is_none_or(|(s, l, _)| start < s || (start == s && token.len() > l));
                if better {
                    best = Some((start, token.len(), *id));
                }
            }
        }
        best
    }

    /// Normalizes, pre-tokenizes and word-pieces text that holds no added token.
    fn encode_plain(&self, text: &str, ids: &mut Vec<u32>, budget: usize) {
        let n = self.normalization;
        let mut cleaned = String::with_capacity(text.len());
        for c in text.chars() {
            if n.clean_text {
                if c == '\0' || c == '\u{fffd}' || is_control(c) {
                    continue;
                }
                if is_whitespace(c) {
                    cleaned.push(' ');
                    continue;
                }
            }
            if n.handle_chinese_chars && is_chinese_char(c) {
                cleaned.extend([' ', c, ' ']);
            } else {
                cleaned.push(c);
            }
        }
        let normalized: String = match (n.strip_accents, n.lowercase) {
            (true, true) => cleaned
                .nfd()
                .filter(|c| !c.is_mark_nonspacing())
                .flat_map(char::to_lowercase)
                .collect(),
            (true, false) => cleaned.nfd().filter(|c| !c.is_mark_nonspacing()).collect(),
            (false, true) => cleaned.chars().flat_map(char::to_lowercase).collect(),
            (false, false) => cleaned,
        };
        for word in normalized.split(char::is_whitespace) {
            // Punctuation splits a word and stands as a word of its own.
            let mut start = 0;
            for (i, c) in word.char_indices() {
                if is_punctuation(c) {
                    self.push_word(&word[start..i], ids);
                    self.push_word(&word[i..i + c.len_utf8()], ids);
                    start = i + c.len_utf8();
                }
            }
            self.push_word(&word[start..], ids);
            if ids.len() > budget {
                return;
            }
        }
    }

    /// Greedy longest-match-first WordPiece of one word; a word that cannot be covered by the
    /// vocabulary, or is over the length limit, becomes one `[UNK]`.
    fn push_word(&self, word: &str, ids: &mut Vec<u32>) {
        if word.is_empty() {
            return;
        }
        if word.chars().count() > self.max_chars_per_word {
            ids.push(self.unk);
            return;
        }
        let first_piece = ids.len();
        let mut piece = String::with_capacity(word.len() + self.prefix.len());
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len();
            let mut found = None;
            while start < end {
                piece.clear();
                if start > 0 {
                    piece.push_str(&self.prefix);
                }
                piece.push_str(&word[start..end]);
                if let Some(&id) = self.vocab.get(&piece) {
                    found = Some(id);
                    break;
                }
                end -= word[start..end]
                    .chars()
                    .next_back()
                    .map_or(1, char::len_utf8);
            }
            match found {
                Some(id) => {
                    ids.push(id);
                    start = end;
                }
                None => {
                    ids.truncate(first_piece);
                    ids.push(self.unk);
                    return;
                }
            }
        }
    }
}

/// The special tokens around a single sequence: `TemplateProcessing` with
/// `[Special, Sequence A, Special]`, or `BertProcessing`.
fn single_sequence_specials(post: &serde_json::Value) -> Result<(String, String), String> {
    let unsupported = || {
        format!(
            "post-processor {} is not supported (a [CLS] A [SEP] template expected)",
            post.get("type").unwrap_or(&serde_json::Value::Null)
        )
    };
    match post.get("type").and_then(|t| t.as_str()) {
        Some("TemplateProcessing") => {
            let single = post
                .get("single")
                .and_then(|s| s.as_array())
                .ok_or_else(unsupported)?;
            let special = |v: &serde_json::Value| {
                v.get("SpecialToken")
                    .and_then(|s| s.get("id"))
                    .and_then(|id| id.as_str())
                    .map(str::to_owned)
            };
            match single.as_slice() {
                [first, sequence, last] if sequence.get("Sequence").is_some() => {
                    match (special(first), special(last)) {
                        (Some(cls), Some(sep)) => Ok((cls, sep)),
                        _ => Err(unsupported()),
                    }
                }
                _ => Err(unsupported()),
            }
        }
        Some("BertProcessing") => {
            let name = |key: &str| {
                post.get(key)
                    .and_then(|v| v.get(0))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            match (name("cls"), name("sep")) {
                (Some(cls), Some(sep)) => Ok((cls, sep)),
                _ => Err(unsupported()),
            }
        }
        _ => Err(unsupported()),
    }
}

/// White space as BERT counts it: tab, newline and carriage return are control characters in
/// Unicode but separate words here.
fn is_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

/// Characters that clean-up drops: Unicode's "other" categories (Cc, Cf, Cn, Co), except the
/// three that count as white space.
fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && c.is_other()
}

/// BERT splits on ASCII punctuation (which includes `$`, `+`, `^`, ... that Unicode files as
/// symbols) and on every Unicode punctuation category.
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || c.is_punctuation()
}

/// The CJK ideograph blocks that BERT surrounds with spaces, so each ideograph is a word.
fn is_chinese_char(c: char) -> bool {
    matches!(
        c as u32,
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x20000..=0x2A6DF
            | 0x2A700..=0x2B73F
            | 0x2B740..=0x2B81F
            | 0x2B920..=0x2CEAF
            | 0xF900..=0xFAFF
            | 0x2F800..=0x2FA1F
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tokenizer.json in the layout of the real one, with a toy vocabulary.
    fn toy() -> WordPiece {
        let vocab = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "cafe", ",",
            "!", "hello", "world", "東", "京",
        ];
        let vocab: serde_json::Map<String, serde_json::Value> = vocab
            .iter()
            .enumerate()
            .map(|(i, t)| (t.to_string(), serde_json::json!(i)))
            .collect();
        let json = serde_json::json!({
            "added_tokens": [
                {"id": 0, "content": "[PAD]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
                {"id": 4, "content": "[MASK]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
            ],
            "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}]},
            "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vocab}
        });
        WordPiece::from_json(&json.to_string()).unwrap()
    }

    #[test]
    fn wordpiece_splits_words_greedily_and_wraps_them_in_cls_and_sep() {
        let t = toy();
        assert_eq!(t.encode("unaffable", 256), vec![2, 5, 6, 7, 3]);
        assert_eq!(t.encode("Hello, WORLD!", 256), vec![2, 11, 9, 12, 10, 3]);
    }

    #[test]
    fn wordpiece_strips_accents_lowercases_and_splits_ideographs() {
        let t = toy();
        assert_eq!(t.encode("CAFÉ\tcafe\u{0301}", 256), vec![2, 8, 8, 3]);
        assert_eq!(t.encode("東京", 256), vec![2, 13, 14, 3]);
    }

    #[test]
    fn wordpiece_maps_uncoverable_words_to_unk_and_keeps_special_tokens() {
        let t = toy();
        assert_eq!(t.encode("unzzz hello", 256), vec![2, 1, 11, 3]);
        assert_eq!(t.encode("hello[MASK]world", 256), vec![2, 11, 4, 12, 3]);
        // Special tokens match the raw text only: lower case is ordinary text.
        assert_eq!(t.encode("[mask]", 256), vec![2, 1, 1, 1, 3]);
    }

    #[test]
    fn wordpiece_truncates_to_the_length_limit_including_cls_and_sep() {
        let t = toy();
        let ids = t.encode(&"hello ".repeat(50), 8);
        assert_eq!(ids, vec![2, 11, 11, 11, 11, 11, 11, 3]);
        assert_eq!(t.encode("", 8), vec![2, 3]);
        assert_eq!(t.encode(" \u{0} \u{200b} ", 8), vec![2, 3]);
    }

    #[test]
    fn wordpiece_rejects_tokenizers_it_would_run_differently() {
        let bpe = r#"{"model": {"type": "BPE", "vocab": {}, "unk_token": "[UNK]"}}"#;
        assert!(WordPiece::from_json(bpe).unwrap_err().contains("BPE"));
        assert!(WordPiece::from_json("{")
            .unwrap_err()
            .contains("not a tokenizer.json"));
    }
}
