//! Word motions by the project's word rules ([`collab_protocol::words`]:
//! Unicode word boundaries, also cut at ASCII punctuation other than `_`,
//! so `self.value` and `a:b` are three words), which completion shares.
//! CJK ideographs are a word each, and emoji are not words, so Ctrl-Right
//! passes over them whole.
//!
//! A motion looks at most [`WINDOW`] chars of its line, so a word motion on
//! a 200 KB minified line costs what a screen of it does.

use std::borrow::Cow;

use collab_protocol::words::{is_word, pieces};
use ropey::Rope;

use super::text_layout as tl;

/// Chars a word motion looks at, at most.
pub const WINDOW: usize = 512;

/// Where Ctrl-Right goes from `pos`: the end of the next word on the line
/// (at the line's end: the next line's start).
pub fn next_word_end(doc: &Rope, pos: usize) -> usize {
    let line = tl::line_of(doc, pos);
    let end = tl::line_end(doc, line);
    if pos >= end {
        return tl::next_boundary(doc, pos);
    }
    let stop = end.min(pos + WINDOW);
    let text: Cow<str> = doc.slice(pos..stop).into();
    pieces(&text)
        .into_iter()
        .find(|(_, p)| is_word(p))
        .map_or(stop, |(at, p)| pos + text[..at + p.len()].chars().count())
}

/// Where Ctrl-Left goes from `pos`: the start of the previous word on the
/// line (at the line's start: the previous line's end).
pub fn prev_word_start(doc: &Rope, pos: usize) -> usize {
    let line = tl::line_of(doc, pos);
    let start = tl::line_start(doc, line);
    if pos <= start {
        return tl::prev_boundary(doc, pos);
    }
    let from = start.max(pos.saturating_sub(WINDOW));
    let text: Cow<str> = doc.slice(from..pos).into();
    pieces(&text)
        .into_iter()
        .rev()
        .find(|(_, p)| is_word(p))
        .map_or(from, |(at, _)| from + text[..at].chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stops(s: &str, forward: bool) -> Vec<usize> {
        let doc = Rope::from_str(s);
        let mut pos = if forward { 0 } else { doc.len_chars() };
        let mut out = vec![];
        loop {
            let next = if forward {
                next_word_end(&doc, pos)
            } else {
                prev_word_start(&doc, pos)
            };
            if next == pos {
                return out;
            }
            pos = next;
            out.push(pos);
        }
    }

    #[test]
    fn code_words_stop_at_punctuation() {
        assert_eq!(stops("self.value = a_b;", true), vec![4, 10, 16, 17]);
        assert_eq!(stops("self.value = a_b;", false), vec![13, 5, 0]);
    }

    #[test]
    fn cjk_and_emoji() {
        // Each ideograph is a word; the emoji (a ZWJ sequence) is passed
        // over whole, never split.
        let s = "漢字 👩\u{200D}💻 café";
        assert_eq!(stops(s, true), vec![1, 2, 11]);
        assert_eq!(stops(s, false), vec![7, 1, 0]);
    }

    #[test]
    fn line_ends_are_one_step() {
        assert_eq!(stops("ab\ncd", true), vec![2, 3, 5]);
        assert_eq!(stops("ab\ncd", false), vec![3, 2, 0]);
    }
}
