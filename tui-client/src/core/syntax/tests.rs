//! Highlighting on real grammars: classes at exact offsets, and an edited
//! tree that reparses to what a fresh parse gives.

use collab_protocol::Operation;
use ropey::Rope;

use super::{Highlight, HighlightSpan, Lang, Syntax};

fn class_at(spans: &[HighlightSpan], pos: usize) -> Option<Highlight> {
    spans
        .iter()
        .find(|s| s.start <= pos && pos < s.end)
        .map(|s| s.class)
}

fn all(rope: &Rope) -> Vec<std::ops::Range<usize>> {
    let whole = 0..rope.len_chars();
    vec![whole]
}

/// Applies `start..end → text` to the rope and to the tree.
fn edit(syntax: &mut Syntax, rope: &mut Rope, start: usize, end: usize, text: &str) {
    let op = Operation::replace(rope.len_chars(), start, end, text).unwrap();
    let old = rope.clone();
    op.apply(rope).unwrap();
    syntax.edit(&op, &old, rope);
}

/// The trees of every region, as S-expressions.
fn sexp(syntax: &mut Syntax, rope: &Rope) -> String {
    syntax.parse_all(rope);
    let trees: Vec<String> = syntax
        .regions()
        .map(|r| r.tree.root_node().to_sexp())
        .collect();
    trees.join("\n")
}

fn fresh_sexp(lang: Lang, rope: &Rope) -> String {
    sexp(&mut Syntax::new(lang).unwrap(), rope)
}

#[test]
fn rust_classes_land_on_the_right_chars() {
    let code =
        "fn main() {\n    let s = \"é\\n\"; // hi\n    Some(42)\n}\nconst MAX: u8 = s.len();\n";
    let rope = Rope::from_str(code);
    let mut syntax = Syntax::new(Lang::Rust).unwrap();
    let spans = syntax.highlights(&rope, &all(&rope));
    let at = |needle: &str| code[..code.find(needle).unwrap()].chars().count();
    assert_eq!(class_at(&spans, at("fn")), Some(Highlight::Keyword));
    assert_eq!(class_at(&spans, at("main")), Some(Highlight::Function));
    assert_eq!(class_at(&spans, at("let")), Some(Highlight::Keyword));
    assert_eq!(class_at(&spans, at("\"é")), Some(Highlight::String));
    // Char offsets, not bytes: "é" is two bytes.
    assert_eq!(class_at(&spans, at("\\n")), Some(Highlight::Escape));
    assert_eq!(class_at(&spans, at("// hi")), Some(Highlight::Comment));
    assert_eq!(class_at(&spans, at("Some")), Some(Highlight::Type));
    assert_eq!(class_at(&spans, at("42")), Some(Highlight::Constant));
    assert_eq!(class_at(&spans, at("s =")), None, "variables stay plain");
    // The more specific pattern wins: a method call, not a field (the
    // query lists `(field_identifier) @property` first).
    assert_eq!(class_at(&spans, at("len")), Some(Highlight::Function));
    // Spans are ordered and disjoint.
    assert!(spans.windows(2).all(|w| w[0].end <= w[1].start));
}

#[test]
fn the_more_specific_pattern_wins() {
    // Python's query lists `^[A-Z]` (a constructor) before `^[A-Z][A-Z_]*$`
    // (a constant): the longer, more specific pattern wins.
    let code = "MAX_SIZE = Point\n";
    let rope = Rope::from_str(code);
    let spans = Syntax::new(Lang::Python)
        .unwrap()
        .highlights(&rope, &all(&rope));
    assert_eq!(class_at(&spans, 0), Some(Highlight::Constant));
    assert_eq!(class_at(&spans, 11), Some(Highlight::Type));
}

#[test]
fn only_the_asked_ranges_are_returned() {
    let code = "// one\nlet a = 1;\n// three\n";
    let rope = Rope::from_str(code);
    let mut syntax = Syntax::new(Lang::Rust).unwrap();
    let asked = 7..17;
    let spans = syntax.highlights(&rope, std::slice::from_ref(&asked));
    assert!(
        spans.iter().all(|s| s.start >= 7 && s.end <= 17),
        "{spans:?}"
    );
    assert_eq!(class_at(&spans, 7), Some(Highlight::Keyword));
}

#[test]
fn an_edited_tree_reparses_to_what_a_fresh_parse_gives() {
    let mut rope = Rope::from_str("/* a\n   b */\nfn f() { let x = \"s\ntr\"; }\n");
    let mut syntax = Syntax::new(Lang::Rust).unwrap();
    syntax.refresh(&rope);
    let steps: [(usize, usize, &str); 5] = [
        (3, 3, "*/"),     // closes the comment early: `b */` becomes code
        (0, 2, ""),       // and no comment at all
        (20, 20, "é\n→"), // inside the string, multi-byte and a line
        (5, 9, "x\ny"),   // a replacement across rows
        (0, 0, "fn g(){}\n"),
    ];
    for (start, end, text) in steps {
        let end = end.min(rope.len_chars());
        edit(&mut syntax, &mut rope, start, end, text);
        syntax.refresh(&rope);
        assert_eq!(
            sexp(&mut syntax, &rope),
            fresh_sexp(Lang::Rust, &rope),
            "after {start}..{end} → {text:?}: {rope}"
        );
    }
}

#[test]
fn a_string_opened_above_repaints_the_lines_below() {
    let mut rope = Rope::from_str("x = 1\ny = 2\n");
    let mut syntax = Syntax::new(Lang::Python).unwrap();
    let before = syntax.highlights(&rope, &all(&rope));
    assert_eq!(class_at(&before, 4), Some(Highlight::Constant));
    // Lines 1 and 2 become a triple-quoted string, two edits apart.
    edit(&mut syntax, &mut rope, 0, 0, "\"\"\"\n");
    edit(&mut syntax, &mut rope, 10, 10, "\"\"\"\n");
    assert_eq!(rope.to_string(), "\"\"\"\nx = 1\n\"\"\"\ny = 2\n");
    let after = syntax.highlights(&rope, &all(&rope));
    assert_eq!(class_at(&after, 8), Some(Highlight::String), "{after:?}");
    assert_eq!(class_at(&after, 18), Some(Highlight::Constant));
}

/// Small regions, so a short document has many.
fn small_regions(lang: Lang) -> Syntax {
    let sizes = super::regions::Sizes {
        window: 300,
        max: 900,
    };
    Syntax::with_sizes(lang, sizes).unwrap()
}

/// Highlights of the whole document from `syntax`, and from a fresh parse
/// in one region: they must agree.
fn agrees_with_a_fresh_parse(syntax: &mut Syntax, rope: &Rope, lang: Lang, what: &str) {
    let incremental = syntax.highlights(rope, &all(rope));
    let fresh = Syntax::new(lang).unwrap().highlights(rope, &all(rope));
    if incremental != fresh {
        let first = incremental
            .iter()
            .zip(&fresh)
            .find(|(a, b)| a != b)
            .map(|(a, b)| (a.start, a.class, b.start, b.class));
        panic!("after {what}: first difference {first:?}\n{rope}");
    }
}

#[test]
fn regions_follow_edits_as_one_parse_would() {
    let mut code = String::new();
    for i in 0..60 {
        code.push_str(&format!(
            "/// Doc {i}.\nfn f{i}(x: u32) -> u32 {{\n    let s = \"s{i}\"; // c\n    x + {i}\n}}\n\n"
        ));
    }
    let mut rope = Rope::from_str(&code);
    let mut syntax = small_regions(Lang::Rust);
    syntax.parse_all(&rope);
    assert!(syntax.regions().count() > 10, "many regions");
    agrees_with_a_fresh_parse(&mut syntax, &rope, Lang::Rust, "the first parse");
    let find = |rope: &Rope, needle: &str| {
        let text = rope.to_string();
        text[..text.find(needle).unwrap()].chars().count()
    };
    // Typing inside an item; an unfinished item; an unclosed block comment
    // that runs over many regions, then closed again; an unclosed string;
    // a deletion across regions; a large paste.
    let steps = [
        ("typing", "x + 30", 0, "y"),
        ("unfinished item", "fn f20", 0, "fn g("),
        ("fix it", "fn g(", 5, ""),
        ("open comment", "fn f10", 0, "/* "),
        ("close comment", "fn f40", 0, "*/ "),
        ("open string", "fn f45", 0, "\""),
        ("remove the comment's start", "/* ", 3, ""),
        ("and the string's", "\"fn f45", 1, ""),
    ];
    for (what, needle, del, text) in steps {
        let at = find(&rope, needle);
        edit(&mut syntax, &mut rope, at, at + del, text);
        agrees_with_a_fresh_parse(&mut syntax, &rope, Lang::Rust, what);
    }
    let from = find(&rope, "fn f12");
    let to = find(&rope, "fn f33");
    edit(&mut syntax, &mut rope, from, to, "");
    agrees_with_a_fresh_parse(&mut syntax, &rope, Lang::Rust, "a deletion over regions");
    let at = find(&rope, "fn f50");
    // Whole items (a region grown past its maximum splits). Within broken
    // code, error recovery may guess differently region by region than
    // over the whole file: both are guesses, so the pastes are whole.
    let paste = code[..code.find("/// Doc 12.").unwrap()].to_owned();
    edit(&mut syntax, &mut rope, at, at, &paste);
    agrees_with_a_fresh_parse(&mut syntax, &rope, Lang::Rust, "a paste");
}

#[test]
fn python_regions_keep_indentation_and_triple_quotes() {
    let mut code = String::new();
    for i in 0..40 {
        code.push_str(&format!(
            "def f{i}(x):\n    if x:\n        return \"{i}\"  # c\n    return None\n\n"
        ));
    }
    let mut rope = Rope::from_str(&code);
    let mut syntax = small_regions(Lang::Python);
    syntax.parse_all(&rope);
    agrees_with_a_fresh_parse(&mut syntax, &rope, Lang::Python, "the first parse");
    let text = rope.to_string();
    let at = text[..text.find("def f7").unwrap()].chars().count();
    edit(&mut syntax, &mut rope, at, at, "x = \"\"\"\n");
    agrees_with_a_fresh_parse(&mut syntax, &rope, Lang::Python, "an open docstring");
    let text = rope.to_string();
    let at = text[..text.find("def f30").unwrap()].chars().count();
    edit(&mut syntax, &mut rope, at, at, "\"\"\"\n");
    agrees_with_a_fresh_parse(&mut syntax, &rope, Lang::Python, "closed further down");
}

#[test]
fn random_edits_keep_the_regions_whole() {
    // Edits of every kind, broken code included (where error recovery may
    // differ from a whole-file parse, so only the bookkeeping is checked):
    // the regions tile the parsed text, and spans stay ordered and inside it.
    let mut code = String::new();
    for i in 0..40 {
        code.push_str(&format!("fn f{i}() {{ let s = \"é{i}\"; }} // c\n\n"));
    }
    let mut rope = Rope::from_str(&code);
    let mut syntax = small_regions(Lang::Rust);
    let snippets = ["\"", "/*", "*/", "{", "}", "fn g() {}\n\n", "é→", "\n", "x"];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for step in 0..300 {
        let len = rope.len_chars();
        let at = next(len + 1);
        let del = if next(3) == 0 {
            next(60).min(len - at)
        } else {
            0
        };
        let text = snippets[next(snippets.len())];
        edit(&mut syntax, &mut rope, at, at + del, text);
        if step % 3 == 0 {
            let spans = syntax.highlights(&rope, &all(&rope));
            assert!(
                spans.windows(2).all(|w| w[0].end <= w[1].start),
                "step {step}"
            );
            assert!(spans
                .iter()
                .all(|s| s.start < s.end && s.end <= rope.len_chars()));
            let mut at = 0;
            for r in syntax.regions() {
                assert_eq!(r.start, at, "step {step}: regions tile the text");
                at += r.len;
            }
            assert_eq!(at, rope.len_bytes(), "step {step}: all of it");
        }
    }
}
