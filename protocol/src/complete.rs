//! Code completion, in one place for both of its users: the server's
//! `POST /rooms/autocomplete` ([`suggest`]) and the editor's popup
//! ([`Words::collect`] once when it opens, [`complete`] on every key).
//!
//! The **prefix** is the word that ends at the cursor, by the project's word
//! rules ([`crate::words`]); one that starts with a digit, or is longer than
//! [`MAX_PREFIX_CHARS`], is not completed. Candidates come from:
//!
//! - the words of the texts given ([`Words`]): the text being edited, around
//!   the cursor, and others (the editor's other open documents). The word
//!   being typed (the occurrence the cursor is in or at the end of) does not
//!   count, so a word is never suggested to itself; nor does a word equal to
//!   the prefix;
//! - the language's keywords and well-known names, and its snippets
//!   ([`vocab`]); a language without a vocabulary gets words only.
//!
//! They are matched against the prefix by the fuzzy matcher
//! ([`crate::fuzzy`]); a match must begin at the start of the candidate or
//! of a word in it (`_x`, camelCase). The ranking: candidates that start
//! with the prefix exactly come first, then those that start with it in
//! another case, then the other fuzzy matches; within each, the fuzzy score
//! plus a bonus for words near the cursor and for frequent words decides.
//! At most [`MAX_CANDIDATES`] are returned.
//!
//! After a snippet's trigger and a space (`def `), with no prefix, the rest
//! of that snippet is offered: that is how `def ` completes to
//! `name(args):\n    pass`.

pub mod vocab;

use std::collections::{HashMap, HashSet};

use crate::{fuzzy, words};

/// Candidates returned at most.
pub const MAX_CANDIDATES: usize = 50;
/// A longer prefix is not completed.
pub const MAX_PREFIX_CHARS: usize = 64;
/// Chars of the edited text read for words on each side of the cursor.
pub const NEAR_CHARS: usize = 50_000;
/// Chars read for words from the start of each other text.
pub const OTHER_CHARS: usize = 100_000;
/// Words shorter than this are not offered (in chars).
const MIN_WORD_CHARS: usize = 2;
/// Nor are longer ones (a hash, a base64 blob).
const MAX_WORD_CHARS: usize = 64;
/// Chars of the line before the cursor looked at for the prefix.
const LINE_CHARS: usize = 256;

/// What a candidate is (the popup marks it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A word of the text(s).
    Word,
    /// A keyword or a well-known name of the language.
    Keyword,
    /// A snippet: a statement or a call with its punctuation.
    Snippet,
}

impl Kind {
    /// `word`, `keyword` or `snippet`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Word => "word",
            Kind::Keyword => "keyword",
            Kind::Snippet => "snippet",
        }
    }
}

/// One completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// What it is.
    pub kind: Kind,
    /// What was matched and is shown: the word, or the snippet's trigger.
    pub label: String,
    /// For a snippet, its first line (with `…` when there are more).
    pub detail: String,
    /// What replaces the prefix; later lines carry the line's indentation.
    pub text: String,
    /// Where the caret goes in `text`, in chars.
    pub caret: usize,
    /// Chars after the caret to select (a snippet's placeholder; 0: none).
    pub select: usize,
    /// The chars of `label` the prefix matched.
    pub positions: Vec<usize>,
}

/// What [`complete`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Completion {
    /// The word before the cursor that the candidates replace (may be
    /// empty: after a snippet's trigger).
    pub prefix: String,
    /// Best first.
    pub candidates: Vec<Candidate>,
}

/// A text to collect words from.
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    /// The text.
    pub text: &'a str,
    /// The cursor in it, in chars, for the text being edited: words are
    /// read within [`NEAR_CHARS`] of it, nearer ones rank higher, and the
    /// word being typed is left out. `None` for other texts: their first
    /// [`OTHER_CHARS`] are read.
    pub cursor: Option<usize>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Stat {
    count: u32,
    /// Chars to the nearest occurrence from the cursor, in the edited text.
    distance: Option<usize>,
}

/// The words of some texts, with how often they occur and how near the
/// cursor: collected once, ranked against each prefix typed.
#[derive(Clone, Debug, Default)]
pub struct Words {
    stats: HashMap<String, Stat>,
}

impl Words {
    /// The words of `sources` (see [`Source`]).
    pub fn collect(sources: &[Source<'_>]) -> Self {
        let mut stats: HashMap<String, Stat> = HashMap::new();
        for source in sources {
            let (text, cursor) = match source.cursor {
                Some(cursor) => {
                    let from = cursor.saturating_sub(NEAR_CHARS);
                    let text = char_slice(source.text, from, cursor.saturating_add(NEAR_CHARS));
                    (text, Some(cursor - from))
                }
                None => (char_slice(source.text, 0, OTHER_CHARS), None),
            };
            let mut at = 0;
            for (_, piece) in words::pieces(text) {
                let start = at;
                let len = piece.chars().count();
                at += len;
                if !offered(piece, len) {
                    continue;
                }
                let end = start + len;
                if cursor.is_some_and(|c| start < c && c <= end) {
                    // The word being typed.
                    continue;
                }
                let stat = stats.entry(piece.to_owned()).or_default();
                stat.count = stat.count.saturating_add(1);
                if let Some(c) = cursor {
                    let d = if end < c { c - end } else { start - c };
                    stat.distance = Some(stat.distance.map_or(d, |old| old.min(d)));
                }
            }
        }
        Words { stats }
    }

    /// How many distinct words.
    pub fn len(&self) -> usize {
        self.stats.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.stats.is_empty()
    }
}

/// True for a word piece completion offers: not a number, not one char,
/// not a blob.
fn offered(piece: &str, chars: usize) -> bool {
    (MIN_WORD_CHARS..=MAX_WORD_CHARS).contains(&chars)
        && words::is_word(piece)
        && !piece.starts_with(|c: char| c.is_numeric())
}

/// `text`'s chars `from..to` (clamped to its length).
fn char_slice(text: &str, from: usize, to: usize) -> &str {
    let byte = |n: usize| text.char_indices().nth(n).map_or(text.len(), |(b, _)| b);
    let start = byte(from);
    let end = start
        + text[start..]
            .char_indices()
            .nth(to - from)
            .map_or(text.len() - start, |(b, _)| b);
    &text[start..end]
}

/// The completions for the cursor at the end of `line_before` (its line up
/// to the cursor) in a document of `language`, from `words`.
pub fn complete(language: &str, line_before: &str, words: &Words) -> Completion {
    let vocab = vocab::for_language(language);
    let indent: String = line_before
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect();
    let tail_len = line_before.chars().count().min(LINE_CHARS);
    let tail = char_slice(
        line_before,
        line_before.chars().count() - tail_len,
        usize::MAX,
    );
    let pieces = words::pieces(tail);
    let prefix = match pieces.last() {
        Some((_, p)) if words::is_word(p) => *p,
        _ => "",
    };
    if prefix.is_empty() {
        let candidates = vocab
            .map(|v| after_trigger(v, &pieces, &indent))
            .unwrap_or_default();
        return Completion {
            prefix: String::new(),
            candidates,
        };
    }
    if prefix.starts_with(|c: char| c.is_numeric()) || prefix.chars().count() > MAX_PREFIX_CHARS {
        return Completion::default();
    }
    let mut ranked: Vec<(Rank, Candidate)> = Vec::new();
    let mut consider = |kind: Kind, label: &str, stat: Stat, snippet: Option<&str>| {
        if snippet.is_none() && label == prefix {
            return;
        }
        let Some((tier, m)) = matches(prefix, label) else {
            return;
        };
        let score = m.score + near_bonus(stat.distance) + frequency_bonus(stat.count);
        let (text, caret, select, detail) = match snippet {
            Some(body) => {
                let (text, caret, select) = expand(body, &indent);
                (text, caret, select, first_line(body))
            }
            None => {
                let n = label.chars().count();
                (label.to_owned(), n, 0, String::new())
            }
        };
        ranked.push((
            Rank {
                tier,
                score,
                kind,
                len: label.chars().count(),
            },
            Candidate {
                kind,
                label: label.to_owned(),
                detail,
                text,
                caret,
                select,
                positions: m.positions,
            },
        ));
    };
    let stat_of = |w: &str| words.stats.get(w).copied().unwrap_or_default();
    let mut known: HashSet<&str> = HashSet::new();
    if let Some(v) = vocab {
        for &k in v.keywords.iter().chain(v.names) {
            if known.insert(k) {
                consider(Kind::Keyword, k, stat_of(k), None);
            }
        }
        for &(trigger, body) in v.snippets {
            consider(Kind::Snippet, trigger, Stat::default(), Some(body));
        }
    }
    for (word, stat) in &words.stats {
        if !known.contains(word.as_str()) {
            consider(Kind::Word, word, *stat, None);
        }
    }
    ranked.sort_by(|(a, ca), (b, cb)| {
        a.tier
            .cmp(&b.tier)
            .then(b.score.cmp(&a.score))
            .then(a.kind.cmp(&b.kind))
            .then(a.len.cmp(&b.len))
            .then(ca.label.cmp(&cb.label))
            .then(ca.text.cmp(&cb.text))
    });
    ranked.truncate(MAX_CANDIDATES);
    Completion {
        prefix: prefix.to_owned(),
        candidates: ranked.into_iter().map(|(_, c)| c).collect(),
    }
}

/// How a candidate ranks (see the module docs).
#[derive(Clone, Copy, Debug)]
struct Rank {
    /// 0: starts with the prefix, 1: in another case, 2: fuzzy.
    tier: u8,
    score: i64,
    kind: Kind,
    len: usize,
}

/// The tier and the fuzzy match of `label` for `prefix`, if it matches.
fn matches(prefix: &str, label: &str) -> Option<(u8, fuzzy::Match)> {
    let m = fuzzy::score(prefix, label)?;
    let tier = if label.starts_with(prefix) {
        0
    } else if label.to_lowercase().starts_with(&prefix.to_lowercase()) {
        1
    } else {
        2
    };
    if tier == 2 {
        let chars: Vec<char> = label.chars().collect();
        let first = *m.positions.first()?;
        let word_start = first == 0
            || !chars[first - 1].is_alphanumeric()
            || (chars[first - 1].is_lowercase() && chars[first].is_uppercase());
        if !word_start {
            return None;
        }
    }
    Some((tier, m))
}

/// Up to 24 for a word right at the cursor, falling with the log of the
/// distance to 0 at about 4,000 chars (and for other texts).
fn near_bonus(distance: Option<usize>) -> i64 {
    distance.map_or(0, |d| (24 - 2 * i64::from((d + 1).ilog2())).max(0))
}

/// Up to 12, with the log of how often the word occurs.
fn frequency_bonus(count: u32) -> i64 {
    if count == 0 {
        return 0;
    }
    (3 * i64::from(count.ilog2())).min(12)
}

/// A snippet's text without its marks, with `indent` after each line
/// break, and where its caret goes and how much it selects.
fn expand(body: &str, indent: &str) -> (String, usize, usize) {
    let mut text = String::new();
    let (mut caret, mut select) = (None, 0);
    let mut chars = 0;
    let mut open: Option<usize> = None;
    for c in body.chars() {
        match c {
            '⟨' => open = Some(chars),
            '⟩' => {
                if let (Some(start), None) = (open.take(), caret) {
                    caret = Some(start);
                    select = chars - start;
                }
            }
            '\n' => {
                text.push('\n');
                text.push_str(indent);
                chars += 1 + indent.chars().count();
            }
            c => {
                text.push(c);
                chars += 1;
            }
        }
    }
    (text, caret.unwrap_or(chars), select)
}

/// A snippet's first line without marks, `…` after it when there are more.
fn first_line(body: &str) -> String {
    let clean: String = body.chars().filter(|c| !matches!(c, '⟨' | '⟩')).collect();
    match clean.split_once('\n') {
        Some((first, _)) => format!("{first} …"),
        None => clean,
    }
}

/// With no prefix: the rest of each snippet whose trigger (and a space) the
/// line ends with, as in `def `.
fn after_trigger(vocab: &vocab::Vocab, pieces: &[(usize, &str)], indent: &str) -> Vec<Candidate> {
    let mut rev = pieces.iter().rev();
    let Some((_, space)) = rev.next() else {
        return Vec::new();
    };
    if space.is_empty() || !space.chars().all(|c| c == ' ' || c == '\t') {
        return Vec::new();
    }
    let Some((_, word)) = rev.next() else {
        return Vec::new();
    };
    vocab
        .snippets
        .iter()
        .filter(|(trigger, body)| {
            trigger == word
                && body
                    .strip_prefix(trigger)
                    .is_some_and(|r| r.starts_with(' '))
        })
        .map(|&(trigger, body)| {
            let rest = &body[trigger.len() + 1..];
            let (text, caret, select) = expand(rest, indent);
            Candidate {
                kind: Kind::Snippet,
                label: trigger.to_owned(),
                detail: first_line(body),
                text,
                caret,
                select,
                positions: Vec::new(),
            }
        })
        .collect()
}

/// Why [`suggest`] cannot answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SuggestError {
    /// The cursor is past the end of the code.
    #[error("cursor_position {cursor} is beyond the code's {len} chars")]
    CursorBeyond {
        /// The cursor given.
        cursor: u64,
        /// The code's length in chars.
        len: usize,
    },
}

/// One suggestion for the cursor at char `cursor` of `code`, as
/// `POST /rooms/autocomplete` answers it: the best candidate that extends
/// the prefix as typed (so inserting it at the cursor completes the word),
/// without the prefix; `""` when there is none.
pub fn suggest(code: &str, cursor: u64, language: &str) -> Result<String, SuggestError> {
    let len = code.chars().count();
    let at = usize::try_from(cursor)
        .ok()
        .filter(|c| *c <= len)
        .ok_or(SuggestError::CursorBeyond { cursor, len })?;
    let byte = code.char_indices().nth(at).map_or(code.len(), |(b, _)| b);
    let line_start = code[..byte].rfind('\n').map_or(0, |i| i + 1);
    let words = Words::collect(&[Source {
        text: code,
        cursor: Some(at),
    }]);
    let completion = complete(language, &code[line_start..byte], &words);
    Ok(completion
        .candidates
        .iter()
        .find_map(|c| c.text.strip_prefix(completion.prefix.as_str()))
        .unwrap_or_default()
        .to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Completions at the `|` in `text`.
    fn at(language: &str, text: &str) -> Completion {
        let cursor = text.find('|').expect("a | marks the cursor");
        let code = text.replacen('|', "", 1);
        let chars = code[..cursor].chars().count();
        let line_start = code[..cursor].rfind('\n').map_or(0, |i| i + 1);
        let words = Words::collect(&[Source {
            text: &code,
            cursor: Some(chars),
        }]);
        complete(language, &code[line_start..cursor], &words)
    }

    fn labels(c: &Completion) -> Vec<&str> {
        c.candidates.iter().map(|c| c.label.as_str()).collect()
    }

    #[test]
    fn the_prefix_is_the_word_before_the_cursor() {
        assert_eq!(at("", "self.val|").prefix, "val");
        assert_eq!(at("", "Vec::ne|").prefix, "ne");
        assert_eq!(at("", "a_b|").prefix, "a_b");
        assert_eq!(at("", "x = |").prefix, "");
        assert_eq!(at("", "|").prefix, "");
        // A number is not completed.
        let c = at("", "12345 12|");
        assert!(c.candidates.is_empty(), "{c:?}");
    }

    #[test]
    fn exact_prefixes_rank_above_fuzzy_matches() {
        // "pxrxixnt" matches "pri" fuzzily, and is nearer; "print_all"
        // starts with it.
        let c = at("", "print_all pxrxixnt pri|");
        assert_eq!(labels(&c), ["print_all", "pxrxixnt"]);
        // Another case comes between.
        let c = at("", "primary Private pxrxixnt pri|");
        assert_eq!(labels(&c), ["primary", "Private", "pxrxixnt"]);
        // A fuzzy match must begin at a word start: "sprint" does not match
        // "pri", "my_print" does.
        let c = at("", "sprint my_print pri|");
        assert_eq!(labels(&c), ["my_print"]);
    }

    #[test]
    fn the_word_being_typed_is_not_suggested_to_itself() {
        let c = at("", "foobar\nfoo|");
        assert_eq!(labels(&c), ["foobar"]);
        // In the middle of a word, that word is the one being typed.
        let c = at("", "fooba|r");
        assert!(c.candidates.is_empty(), "{c:?}");
        // Nor a word equal to the prefix, elsewhere.
        let c = at("", "foo foobar foo|");
        assert_eq!(labels(&c), ["foobar"]);
    }

    #[test]
    fn nearer_and_more_frequent_words_rank_higher() {
        let far = format!("value_far {} value_near val|", "x ".repeat(3000));
        assert_eq!(labels(&at("", &far)), ["value_near", "value_far"]);
        let far = format!("value_near {} value_far val|", "x ".repeat(3000));
        assert_eq!(labels(&at("", &far)), ["value_far", "value_near"]);
        // Equally far (other texts), the frequent one wins.
        let words = Words::collect(&[Source {
            text: "count_b count_a count_b count_b count_b",
            cursor: None,
        }]);
        let c = complete("", "cou", &words);
        assert_eq!(labels(&c), ["count_b", "count_a"]);
    }

    #[test]
    fn keywords_and_snippets_come_with_the_language() {
        // Words only without a known language.
        assert!(at("cobol", "fn main() { pri|").candidates.is_empty());
        let c = at("rust", "fn main() {\n    pri|");
        assert_eq!(c.candidates[0].kind, Kind::Snippet);
        assert_eq!(c.candidates[0].label, "println");
        assert_eq!(c.candidates[0].text, "println!(\"{value}\");");
        // The placeholder is selected.
        assert_eq!((c.candidates[0].caret, c.candidates[0].select), (11, 5));
        let c = at("rust", "imp|");
        assert_eq!(labels(&c)[..2], ["impl", "impl"]);
        assert_eq!(c.candidates[0].kind, Kind::Keyword);
        assert_eq!(c.candidates[1].kind, Kind::Snippet);
        assert_eq!(c.candidates[1].detail, "impl Type { …");
        let c = at("rust", "let v = Vec::ne|");
        assert_eq!(labels(&c)[0], "new");
        // A word of the text that is a keyword is offered once, as one.
        let c = at("python", "def f(self): sel|");
        assert_eq!(labels(&c), ["self"]);
        assert_eq!(c.candidates[0].kind, Kind::Keyword);
    }

    #[test]
    fn snippets_keep_the_lines_indentation() {
        let snippet = |c: &Completion| {
            c.candidates
                .iter()
                .find(|c| c.kind == Kind::Snippet)
                .cloned()
                .unwrap()
        };
        let c = at("python", "class A:\n    de|");
        let def = snippet(&c);
        assert_eq!(def.label, "def");
        assert_eq!(def.text, "def name(args):\n        pass");
        assert_eq!((def.caret, def.select), (4, 4));
        let c = at("go", "\tfun|");
        assert_eq!(snippet(&c).text, "func name() {\n\t\t\n\t}");
    }

    #[test]
    fn after_a_trigger_and_a_space_the_rest_of_its_snippet() {
        let c = at("python", "def |");
        assert_eq!(c.prefix, "");
        assert_eq!(c.candidates.len(), 1);
        assert_eq!(c.candidates[0].text, "name(args):\n    pass");
        assert_eq!((c.candidates[0].caret, c.candidates[0].select), (0, 4));
        let c = at("rust", "    pub fn |");
        assert_eq!(c.candidates[0].text, "name() {\n        \n    }");
        // Not after a word that is no trigger, nor without the space.
        assert!(at("python", "x = |").candidates.is_empty());
        assert!(at("python", "x.pass |").candidates.is_empty());
    }

    #[test]
    fn at_most_max_candidates() {
        let text: String = (0..200).map(|i| format!("word{i} ")).collect();
        let c = at("", &format!("{text}wo|"));
        assert_eq!(c.candidates.len(), MAX_CANDIDATES);
    }

    #[test]
    fn suggest_inserts_at_the_cursor() {
        assert_eq!(
            suggest("def ", 4, "python").unwrap(),
            "name(args):\n    pass"
        );
        assert_eq!(
            suggest("fn main() {\n    let v = Vec::ne", 31, "rust").unwrap(),
            "w"
        );
        assert_eq!(
            suggest("fn main() {\n    pri", 19, "rust").unwrap(),
            "ntln!(\"{value}\");"
        );
        assert_eq!(suggest("imp", 3, "rust").unwrap(), "l");
        // Only a candidate that extends the prefix as typed: "Vec" does not
        // extend "vec", the vec! snippet does.
        assert_eq!(suggest("Vec vec", 7, "rust").unwrap(), "![]");
        assert_eq!(suggest("", 0, "rust").unwrap(), "");
        assert_eq!(suggest("zzz", 3, "").unwrap(), "");
        // Chars, not bytes.
        assert_eq!(suggest("é_long é_l", 10, "").unwrap(), "ong");
        assert_eq!(
            suggest("abc", 4, "").unwrap_err().to_string(),
            "cursor_position 4 is beyond the code's 3 chars"
        );
    }
}
