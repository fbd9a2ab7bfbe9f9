//! What a word is in code, for everything that steps over words or collects
//! them: the editor's word motions and the completion engine,
//! so Ctrl-Left and completion agree on where a word
//! starts. Words are cut by Unicode word boundaries (UAX #29, from
//! `unicode-segmentation`), and further at ASCII punctuation other than `_`,
//! as code editors want them: `self.value` and `a:b` are three pieces each,
//! not one as in prose. A word is a piece with a letter or digit in it; CJK
//! ideographs are a word each, and emoji are not words (word boundaries are
//! always grapheme boundaries).

use unicode_segmentation::UnicodeSegmentation;

/// The pieces of `text`, in order: (byte offset, piece), UAX #29 word
/// segments cut further at ASCII punctuation other than `_`. Together they
/// cover `text` exactly.
pub fn pieces(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    for (at, seg) in text.split_word_bound_indices() {
        let mut start = 0;
        for (i, c) in seg.char_indices() {
            if c.is_ascii_punctuation() && c != '_' {
                if i > start {
                    out.push((at + start, &seg[start..i]));
                }
                out.push((at + i, &seg[i..i + 1]));
                start = i + 1;
            }
        }
        if start < seg.len() {
            out.push((at + start, &seg[start..]));
        }
    }
    out
}

/// True when `piece` (one of [`pieces`]) is a word: it holds a letter or a
/// digit.
pub fn is_word(piece: &str) -> bool {
    piece.chars().any(char::is_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<&str> {
        pieces(text)
            .into_iter()
            .map(|(_, p)| p)
            .filter(|p| is_word(p))
            .collect()
    }

    #[test]
    fn code_is_cut_at_punctuation_but_not_at_underscores() {
        assert_eq!(words("self.value = a_b;"), ["self", "value", "a_b"]);
        assert_eq!(words("Vec::new()"), ["Vec", "new"]);
        assert_eq!(words("__name__ x1"), ["__name__", "x1"]);
        assert_eq!(words("漢字 👩\u{200D}💻 café"), ["漢", "字", "café"]);
    }

    #[test]
    fn pieces_cover_the_text() {
        let text = "a.b  c::d(é, 👍🏽)";
        let joined: String = pieces(text).into_iter().map(|(_, p)| p).collect();
        assert_eq!(joined, text);
        for (at, p) in pieces(text) {
            assert_eq!(&text[at..at + p.len()], p);
        }
    }
}
