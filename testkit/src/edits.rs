//! Random edits for convergence tests: inserts, deletes and replacements at
//! random places, with multi-byte text (emoji, CJK, combining marks, tabs
//! and newlines), so char/byte confusions and OT corner cases show up.

use collab_protocol::Operation;

/// A random edit on a document of `len` chars, mixing multi-byte text.
pub fn random_edit(rng: &mut impl rand::Rng, len: usize) -> Operation {
    const PIECES: [&str; 8] = [
        "a",
        "xyz",
        "😀",
        "漢字",
        "e\u{301}",
        "\n",
        "\t",
        "fn main() {}",
    ];
    let start = rng.random_range(0..=len);
    let end = if rng.random_bool(0.3) {
        rng.random_range(start..=len.min(start + 5))
    } else {
        start
    };
    let text = if start == end || rng.random_bool(0.5) {
        PIECES[rng.random_range(0..PIECES.len())]
    } else {
        ""
    };
    Operation::replace(len, start, end, text).expect("range inside the document")
}
