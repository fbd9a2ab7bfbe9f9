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
    vec![0..rope.len_chars()]
}

/// Applies `start..end → text` to the rope and to the tree.
fn edit(syntax: &mut Syntax, rope: &mut Rope, start: usize, end: usize, text: &str) {
    let op = Operation::replace(rope.len_chars(), start, end, text).unwrap();
    let old = rope.clone();
    op.apply(rope).unwrap();
    syntax.edit(&op, &old, rope);
}

fn fresh_sexp(lang: Lang, rope: &Rope) -> String {
    let mut s = Syntax::new(lang).unwrap();
    s.refresh(rope);
    s.tree().unwrap().root_node().to_sexp()
}

#[test]
fn rust_classes_land_on_the_right_chars() {
    let code = "fn main() {\n    let s = \"é\\n\"; // hi\n    Some(42)\n}\n";
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
    // Spans are ordered and disjoint.
    assert!(spans.windows(2).all(|w| w[0].end <= w[1].start));
}

#[test]
fn only_the_asked_ranges_are_returned() {
    let code = "// one\nlet a = 1;\n// three\n";
    let rope = Rope::from_str(code);
    let mut syntax = Syntax::new(Lang::Rust).unwrap();
    let spans = syntax.highlights(&rope, &[7..17]);
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
            syntax.tree().unwrap().root_node().to_sexp(),
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
