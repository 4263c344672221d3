//! Tokenization shared by the keyword index and the hashing embedder, so that both see the same
//! words. A token is a maximal run of alphanumeric characters, case-folded; everything else
//! separates tokens (so "don't" gives "don" and "t").

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

#[cfg(test)]
mod tests {
    use super::*;

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
