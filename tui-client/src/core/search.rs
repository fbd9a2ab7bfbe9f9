//! Finding text: a query (plain or a regular expression, case-smart: any
//! capital makes it case-sensitive) matched line by line over the rope.
//! Matches never span lines, which keeps every search bounded by the lines
//! it looks at: the view asks only for the visible part of the visible
//! lines on each frame, and "next"/"previous" walk lines from the caret.
//! Nothing is stored between calls, so matches are always those of the
//! current text, however colleagues change it.

use std::borrow::Cow;
use std::ops::Range;

use regex::{Regex, RegexBuilder};
use ropey::Rope;

use super::text_layout as tl;

/// Chars on either side of a visible stretch searched too, so a match
/// crossing the screen's edge still shows.
const EDGE_CONTEXT: usize = 256;

/// A compiled query.
#[derive(Clone, Debug)]
pub struct Search {
    query: String,
    regex: bool,
    compiled: Result<Regex, String>,
}

impl Search {
    /// `query` as typed; a regular expression when `regex`.
    pub fn new(query: &str, regex: bool) -> Self {
        let pattern = if regex {
            query.to_owned()
        } else {
            regex::escape(query)
        };
        let compiled = RegexBuilder::new(&pattern)
            .case_insensitive(!has_capital(query, regex))
            .build()
            .map_err(|e| match e {
                regex::Error::Syntax(s) => s.lines().last().unwrap_or("").trim().to_owned(),
                other => other.to_string(),
            });
        Self {
            query: query.to_owned(),
            regex,
            compiled,
        }
    }

    /// The query as typed.
    pub fn query(&self) -> &str {
        &self.query
    }

    /// True for a regular expression.
    pub fn is_regex(&self) -> bool {
        self.regex
    }

    /// Why the regular expression does not compile.
    pub fn error(&self) -> Option<&str> {
        self.compiled.as_ref().err().map(String::as_str)
    }

    fn regex(&self) -> Option<&Regex> {
        if self.query.is_empty() {
            return None;
        }
        self.compiled.as_ref().ok()
    }

    /// The first match starting at or after char `from`, wrapping around
    /// the document's end; with whether it wrapped.
    pub fn next(&self, rope: &Rope, from: usize) -> Option<(Range<usize>, bool)> {
        let re = self.regex()?;
        let first = tl::line_of(rope, from);
        let lines = tl::line_count(rope);
        for (i, line) in (first..lines).chain(0..=first).enumerate() {
            let wrapped = i > lines - first - 1;
            let start = tl::line_start(rope, line);
            let found = line_matches(re, rope, line).find(|m| {
                let (s, e) = (start + m.start, start + m.end);
                match (line == first, wrapped) {
                    (true, false) => s >= from,
                    (true, true) => s < from || e <= from,
                    _ => true,
                }
            });
            if let Some(m) = found {
                return Some((start + m.start..start + m.end, wrapped));
            }
        }
        None
    }

    /// The last match starting before char `before`, wrapping around the
    /// document's start; with whether it wrapped.
    pub fn prev(&self, rope: &Rope, before: usize) -> Option<(Range<usize>, bool)> {
        let re = self.regex()?;
        let first = tl::line_of(rope, before);
        let lines = tl::line_count(rope);
        let order = (0..=first).rev().chain((first..lines).rev());
        for (i, line) in order.enumerate() {
            let wrapped = i > first;
            let start = tl::line_start(rope, line);
            let found = line_matches(re, rope, line).rev().find(|m| {
                let s = start + m.start;
                match (line == first, wrapped) {
                    (true, false) => s < before,
                    (true, true) => s >= before,
                    _ => true,
                }
            });
            if let Some(m) = found {
                return Some((start + m.start..start + m.end, wrapped));
            }
        }
        None
    }

    /// Every match overlapping the char ranges `visible` (each within one
    /// line, ascending), in order.
    pub fn matches_in(&self, rope: &Rope, visible: &[Range<usize>]) -> Vec<Range<usize>> {
        let Some(re) = self.regex() else {
            return Vec::new();
        };
        let mut out: Vec<Range<usize>> = Vec::new();
        for r in visible {
            let line = tl::line_of(rope, r.start);
            let line_start = tl::line_start(rope, line);
            let line_end = line_start + tl::line_len(rope, line);
            let from = r.start.saturating_sub(EDGE_CONTEXT).max(line_start);
            let to = (r.end + EDGE_CONTEXT).min(line_end);
            if from >= to {
                continue;
            }
            let text: Cow<str> = rope.slice(from..to).into();
            for m in chars_of(re, &text) {
                let m = from + m.start..from + m.end;
                if m.end > r.start && m.start < r.end && out.last().is_none_or(|l| l.end <= m.start)
                {
                    out.push(m);
                }
            }
        }
        out
    }

    /// Every match in the document, in order (for replacing them all).
    pub fn all(&self, rope: &Rope) -> Vec<Range<usize>> {
        let Some(re) = self.regex() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for line in 0..tl::line_count(rope) {
            let start = tl::line_start(rope, line);
            out.extend(line_matches(re, rope, line).map(|m| start + m.start..start + m.end));
        }
        out
    }

    /// What replaces the match at `range` (chars, within one line): the
    /// text itself, or with a regular expression its `$1`/`${name}` groups
    /// filled in.
    pub fn replacement(&self, rope: &Rope, range: Range<usize>, with: &str) -> String {
        let Some(re) = self.regex().filter(|_| self.regex) else {
            return with.to_owned();
        };
        let text: String = rope.slice(range).into();
        match re.captures(&text) {
            Some(caps) => {
                let mut out = String::new();
                caps.expand(with, &mut out);
                out
            }
            None => with.to_owned(),
        }
    }
}

/// Smart case: a capital letter in what was typed (not in a regex escape
/// such as `\S`) asks for exact case.
fn has_capital(query: &str, regex: bool) -> bool {
    let mut chars = query.chars();
    while let Some(c) = chars.next() {
        if regex && c == '\\' {
            chars.next();
        } else if c.is_uppercase() {
            return true;
        }
    }
    false
}

/// The non-empty matches in `line`'s content, as char ranges within it.
fn line_matches<'a>(
    re: &'a Regex,
    rope: &'a Rope,
    line: usize,
) -> std::vec::IntoIter<Range<usize>> {
    let text: Cow<str> = tl::line_content(rope, line).into();
    chars_of(re, &text).collect::<Vec<_>>().into_iter()
}

/// The non-empty matches of `re` in `text`, as char ranges.
fn chars_of<'a>(re: &'a Regex, text: &'a str) -> impl Iterator<Item = Range<usize>> + 'a {
    let mut at = (0, 0); // (byte, char)
    re.find_iter(text).filter(|m| !m.is_empty()).map(move |m| {
        let start = at.1 + text[at.0..m.start()].chars().count();
        let end = start + m.as_str().chars().count();
        at = (m.end(), end);
        start..end
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_queries_are_case_smart_and_literal() {
        let rope = Rope::from_str("Foo foo f.o\nFOO");
        let s = Search::new("foo", false);
        assert_eq!(s.all(&rope), vec![0..3, 4..7, 12..15]);
        let s = Search::new("Foo", false);
        assert_eq!(s.all(&rope), vec![0..3]);
        assert_eq!(Search::new("f.o", false).all(&rope), vec![8..11]);
        assert_eq!(Search::new("f.o", true).all(&rope).len(), 4);
        assert!(Search::new("(", true).error().is_some());
        assert!(Search::new("(", false).all(&rope).is_empty());
    }

    #[test]
    fn next_and_prev_wrap_around() {
        let rope = Rope::from_str("ab\nxab ab\n");
        let s = Search::new("ab", false);
        assert_eq!(s.next(&rope, 0), Some((0..2, false)));
        assert_eq!(s.next(&rope, 1), Some((4..6, false)));
        assert_eq!(s.next(&rope, 7), Some((7..9, false)));
        assert_eq!(s.next(&rope, 9), Some((0..2, true)));
        assert_eq!(s.prev(&rope, 7), Some((4..6, false)));
        assert_eq!(s.prev(&rope, 0), Some((7..9, true)));
        assert_eq!(Search::new("zz", false).next(&rope, 0), None);
    }

    #[test]
    fn offsets_are_chars_and_groups_fill_replacements() {
        let rope = Rope::from_str("é→ key=value");
        let s = Search::new(r"(\w+)=(\w+)", true);
        assert_eq!(s.all(&rope), vec![3..12]);
        assert_eq!(s.replacement(&rope, 3..12, "$2=$1"), "value=key");
        // Only the visible part is searched, with some context.
        let visible = |r: Range<usize>| vec![r];
        assert_eq!(s.matches_in(&rope, &visible(10..12)), visible(3..12));
        assert!(s.matches_in(&rope, &visible(0..2)).is_empty());
    }
}
