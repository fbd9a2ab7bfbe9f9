//! Syntax highlighting with tree-sitter, kept incremental so that every
//! edit, local or remote, costs what it changed and every frame what it
//! shows:
//!
//! - each operation becomes `InputEdit`s ([`input_edit`]) on the tree of
//!   the region it falls in ([`regions`]: the document is parsed as a row
//!   of independent regions, cut where the parser is back at the top
//!   level), and the next frame reparses that region with its edited tree,
//!   so tree-sitter reuses everything outside the changed part and never
//!   steps over the whole document; the parser reads the rope's chunks in
//!   place, never a `String` of the document;
//! - the highlight query runs only over the byte ranges the screen shows
//!   (`QueryCursor::set_byte_range`), and what it returns is flattened into
//!   non-overlapping [`HighlightSpan`]s in char offsets, the view's units.
//!
//! Which colors the classes get is the view's business (`view/theme.rs`).

pub mod input_edit;
pub mod languages;
pub mod regions;

use std::borrow::Cow;
use std::ops::Range;

use collab_protocol::Operation;
use ropey::Rope;
use streaming_iterator::StreamingIterator;
use tree_sitter::{Node, Parser, QueryCursor, TextProvider};

use languages::Config;
pub use languages::Lang;
use regions::{Regions, Sizes};

/// Visible ranges closer than this (in bytes) are queried as one: one query
/// over a screen of code is cheaper than one per row, but rows of a long
/// line far apart (the visible columns of a 200 KB line) are not.
const MERGE_GAP: usize = 4096;

/// What a stretch of code is, as far as colors go. A handful of classes,
/// not every capture name a query has: a theme with a few well-chosen
/// colors reads better than a rainbow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Highlight {
    /// Keywords (`fn`, `if`, `return`, …).
    Keyword,
    /// String and char literals, code blocks in Markdown.
    String,
    /// Escapes inside strings.
    Escape,
    /// Comments.
    Comment,
    /// Functions and methods, called or defined; macros.
    Function,
    /// Types, constructors, classes.
    Type,
    /// Numbers, booleans, constants.
    Constant,
    /// Fields, properties, attributes, labels, keys.
    Property,
    /// `self`, `this` and other built-in variables.
    Builtin,
    /// Markdown headings.
    Heading,
    /// Markdown links.
    Link,
}

impl Highlight {
    /// The class of a capture name of a highlight query (`keyword.return`,
    /// `string.special`, …); `None` for what stays plain.
    pub fn from_capture(name: &str) -> Option<Highlight> {
        let top = name.split('.').next().unwrap_or(name);
        Some(match (top, name) {
            (_, "string.escape" | "escape") => Highlight::Escape,
            (_, "string.special.key") => Highlight::Property,
            (_, "variable.builtin") => Highlight::Builtin,
            (_, "text.title") => Highlight::Heading,
            (_, "text.uri" | "text.reference") => Highlight::Link,
            (_, "text.literal") => Highlight::String,
            ("comment", _) => Highlight::Comment,
            ("string" | "character", _) => Highlight::String,
            ("keyword" | "conditional" | "repeat" | "include" | "exception", _) => {
                Highlight::Keyword
            }
            ("function" | "method", _) => Highlight::Function,
            ("type" | "constructor" | "tag", _) => Highlight::Type,
            ("number" | "float" | "boolean" | "constant", _) => Highlight::Constant,
            ("property" | "field" | "attribute" | "label", _) => Highlight::Property,
            _ => return None,
        })
    }
}

/// A stretch of the document in one class: chars `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HighlightSpan {
    /// First char.
    pub start: usize,
    /// Past the last char.
    pub end: usize,
    /// Its class.
    pub class: Highlight,
}

/// The parse of one document and what is needed to keep it current.
pub struct Syntax {
    lang: Lang,
    config: &'static Config,
    parser: Parser,
    /// The trees, region by region, edited to match the text.
    regions: Regions,
    cursor: QueryCursor,
}

impl std::fmt::Debug for Syntax {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syntax")
            .field("lang", &self.lang)
            .field("built", &self.regions.built_end())
            .finish_non_exhaustive()
    }
}

impl Syntax {
    /// Highlighting for `lang`, with no tree yet (the first
    /// [`Syntax::refresh`] parses the whole document); `None` when the
    /// grammar cannot be used.
    pub fn new(lang: Lang) -> Option<Self> {
        Self::with_sizes(lang, Sizes::default())
    }

    /// [`Syntax::new`] with regions of other sizes (tests use small ones).
    pub fn with_sizes(lang: Lang, sizes: Sizes) -> Option<Self> {
        let config = languages::config(lang)?;
        let mut parser = Parser::new();
        parser.set_language(&config.language).ok()?;
        Some(Self {
            lang,
            config,
            parser,
            regions: Regions::new(sizes),
            cursor: QueryCursor::new(),
        })
    }

    /// The language.
    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// The regions parsed so far.
    pub fn regions(&self) -> impl Iterator<Item = &regions::Region> {
        self.regions.iter()
    }

    /// Nodes in all the trees (for the benchmark's memory figure).
    pub fn node_count(&self) -> usize {
        self.regions
            .iter()
            .map(|r| r.tree.root_node().descendant_count())
            .sum()
    }

    /// Follows `op`, which turned `old` into `new`: the trees are edited now
    /// and reparsed at the next [`Syntax::refresh`].
    pub fn edit(&mut self, op: &Operation, old: &Rope, new: &Rope) {
        for edit in input_edit::input_edits(op, old, new) {
            self.regions.edit(&edit, new);
        }
    }

    /// The document was replaced wholesale: it is parsed again from
    /// scratch, as far as it is shown.
    pub fn reset(&mut self) {
        self.regions.clear();
    }

    /// Reparses what changed since the last parse, each edited region with
    /// its edited tree.
    pub fn refresh(&mut self, rope: &Rope) {
        self.regions.refresh(&mut self.parser, rope);
    }

    /// Parses the whole document now (regions are otherwise built only as
    /// far as the screen shows).
    pub fn parse_all(&mut self, rope: &Rope) {
        self.refresh(rope);
        self.regions
            .build_to(rope.len_bytes(), &mut self.parser, rope);
    }

    /// The highlighted stretches within the char ranges `visible` of `rope`
    /// (ascending, not overlapping), clipped to them and in order. Parses
    /// first if the text changed.
    pub fn highlights(&mut self, rope: &Rope, visible: &[Range<usize>]) -> Vec<HighlightSpan> {
        self.refresh(rope);
        let ranges = merged_byte_ranges(rope, visible);
        let Some(want) = ranges.last().map(|r| r.end) else {
            return Vec::new();
        };
        self.regions.build_to(want, &mut self.parser, rope);
        let mut out = Vec::new();
        for bytes in ranges {
            let mut captures = Vec::new();
            for region in self.regions.iter() {
                let r = region.range();
                let (from, to) = (bytes.start.max(r.start), bytes.end.min(r.end));
                if from >= to {
                    continue;
                }
                // Region-local offsets for the query, document ones out.
                self.cursor.set_byte_range(from - r.start..to - r.start);
                let text = RopeText {
                    rope,
                    offset: r.start,
                };
                let root = region.tree.root_node();
                let mut matches = self.cursor.matches(&self.config.query, root, text);
                while let Some(m) = matches.next() {
                    for c in m.captures {
                        let Some(class) = self.config.classes[c.index as usize] else {
                            continue;
                        };
                        let node = c.node.byte_range();
                        let node = node.start + r.start..node.end + r.start;
                        if node.start < to && node.end > from && !node.is_empty() {
                            captures.push(Capture {
                                node,
                                pattern: m.pattern_index,
                                specificity: self.config.specificity[m.pattern_index],
                                class,
                            });
                        }
                    }
                }
            }
            let segments = flatten(&mut captures, bytes.clone());
            to_chars(rope, bytes, &segments, &mut out);
        }
        out
    }
}

/// Lets query predicates (`#match?`, `#eq?`) read node text from the rope,
/// for the nodes of a region starting at byte `offset`.
struct RopeText<'a> {
    rope: &'a Rope,
    offset: usize,
}

type ChunkBytes<'a> = std::iter::Map<ropey::iter::Chunks<'a>, fn(&'a str) -> &'a [u8]>;

impl<'a> TextProvider<&'a [u8]> for RopeText<'a> {
    type I = ChunkBytes<'a>;

    fn text(&mut self, node: Node) -> Self::I {
        let range = node.byte_range();
        let end = (range.end + self.offset).min(self.rope.len_bytes());
        let start = (range.start + self.offset).min(end);
        self.rope
            .byte_slice(start..end)
            .chunks()
            .map(str::as_bytes as fn(&'a str) -> &'a [u8])
    }
}

/// One capture that paints: the node's bytes, the pattern that matched and
/// how specific it is.
#[derive(Clone, Debug)]
struct Capture {
    node: Range<usize>,
    pattern: usize,
    specificity: usize,
    class: Highlight,
}

/// The char ranges as byte ranges, neighbours closer than [`MERGE_GAP`]
/// joined.
fn merged_byte_ranges(rope: &Rope, visible: &[Range<usize>]) -> Vec<Range<usize>> {
    let len = rope.len_chars();
    let mut out: Vec<Range<usize>> = Vec::new();
    for r in visible {
        let (start, end) = (r.start.min(len), r.end.min(len));
        if start >= end {
            continue;
        }
        let bytes = rope.char_to_byte(start)..rope.char_to_byte(end);
        match out.last_mut() {
            Some(last) if bytes.start <= last.end + MERGE_GAP => {
                last.end = last.end.max(bytes.end);
            }
            _ => out.push(bytes),
        }
    }
    out
}

/// Non-overlapping (bytes, class) segments of `range`: where captures
/// nest, the innermost node wins; for the same node, the most specific
/// pattern ([`languages::Config::specificity`]), then the one that comes
/// first in the query.
fn flatten(captures: &mut [Capture], range: Range<usize>) -> Vec<(Range<usize>, Highlight)> {
    let mut bounds: Vec<usize> = Vec::with_capacity(captures.len() * 2 + 2);
    for c in captures.iter() {
        bounds.push(c.node.start.max(range.start));
        bounds.push(c.node.end.min(range.end));
    }
    bounds.sort_unstable();
    bounds.dedup();
    captures.sort_by_key(|c| c.node.start);
    let mut out: Vec<(Range<usize>, Highlight)> = Vec::new();
    let mut active: Vec<&Capture> = Vec::new();
    let mut next = 0;
    for w in bounds.windows(2) {
        let (a, b) = (w[0], w[1]);
        active.retain(|c| c.node.end > a);
        while next < captures.len() && captures[next].node.start.max(range.start) <= a {
            if captures[next].node.end > a {
                active.push(&captures[next]);
            }
            next += 1;
        }
        let best = active.iter().min_by_key(|c| {
            (
                std::cmp::Reverse(c.node.start),
                c.node.end,
                std::cmp::Reverse(c.specificity),
                c.pattern,
            )
        });
        if let Some(c) = best {
            match out.last_mut() {
                Some((r, class)) if r.end == a && *class == c.class => r.end = b,
                _ => out.push((a..b, c.class)),
            }
        }
    }
    out
}

/// Appends `segments` (bytes within `range`) to `out` as char spans,
/// counting chars through the range's text once.
fn to_chars(
    rope: &Rope,
    range: Range<usize>,
    segments: &[(Range<usize>, Highlight)],
    out: &mut Vec<HighlightSpan>,
) {
    let text: Cow<str> = rope.byte_slice(range.clone()).into();
    let bytes = text.as_bytes();
    let mut at_byte = range.start;
    let mut at_char = rope.byte_to_char(range.start);
    let mut char_of = |byte: usize| {
        let from = at_byte - range.start;
        let to = byte - range.start;
        at_char += bytes[from..to]
            .iter()
            .filter(|b| (**b & 0xC0) != 0x80)
            .count();
        at_byte = byte;
        at_char
    };
    for (r, class) in segments {
        let start = char_of(r.start);
        let end = char_of(r.end);
        out.push(HighlightSpan {
            start,
            end,
            class: *class,
        });
    }
}

#[cfg(test)]
mod tests;
