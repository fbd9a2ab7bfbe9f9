//! The smallest edit between two texts, as an [`Operation`]: what a file
//! changed on disk (by `sed -i`, `git checkout`, another editor) becomes in
//! the room. It is computed per Unicode scalar value (operations count
//! chars), so a colleague typing elsewhere in the file is untouched, never
//! a whole-file replacement.

use std::time::{Duration, Instant};

use collab_protocol::Operation;
use similar::{capture_diff_slices_deadline, Algorithm, DiffOp};

/// How long one diff may search for the smallest edit before settling for
/// a larger but still correct one (huge rewrites of huge files).
const DIFF_DEADLINE: Duration = Duration::from_millis(300);

/// The operation that turns `old` into `new`.
pub fn edit_between(old: &str, new: &str) -> Operation {
    let a: Vec<char> = old.chars().collect();
    let b: Vec<char> = new.chars().collect();
    let mut op = Operation::new();
    if a == b {
        op.retain(a.len());
        return op;
    }
    let deadline = Some(Instant::now() + DIFF_DEADLINE);
    for d in capture_diff_slices_deadline(Algorithm::Myers, &a, &b, deadline) {
        match d {
            DiffOp::Equal { len, .. } => {
                op.retain(len);
            }
            DiffOp::Delete { old_len, .. } => {
                op.delete(old_len);
            }
            DiffOp::Insert {
                new_index, new_len, ..
            } => {
                op.insert(&b[new_index..new_index + new_len].iter().collect::<String>());
            }
            DiffOp::Replace {
                old_len,
                new_index,
                new_len,
                ..
            } => {
                op.delete(old_len);
                op.insert(&b[new_index..new_index + new_len].iter().collect::<String>());
            }
        }
    }
    op
}

/// How many bytes `c` takes inside a JSON string.
fn json_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// What one component costs in a message besides inserted text (a number
/// and a comma).
const COMPONENT_BYTES: usize = 24;

/// `op` as a sequence of operations, each taking about `budget` bytes or
/// less in a message, that applied one after the other (each to the text
/// the previous made) do what `op` does. The server refuses (and closes
/// the connection on) a message over its limit, so a huge edit (a file
/// checked out anew, a big file filled in) travels in pieces.
pub fn split_edit(op: &Operation, budget: usize) -> Vec<Operation> {
    let budget = budget.max(4 * COMPONENT_BYTES);
    let total_in = op.base_len();
    let mut chunks = Vec::new();
    let mut cur = Operation::new();
    let (mut used, mut inp, mut outp) = (0usize, 0usize, 0usize);
    // Closes the chunk being built: the rest of the text is kept; the next
    // starts after what all chunks so far produced.
    let finish = |cur: &mut Operation, used: &mut usize, chunks: &mut Vec<Operation>, inp, outp| {
        cur.retain(total_in - inp);
        chunks.push(std::mem::replace(cur, Operation::new()));
        cur.retain(outp);
        *used = COMPONENT_BYTES;
    };
    for c in op.components() {
        match c {
            collab_protocol::Component::Retain(k) => {
                cur.retain(*k);
                inp += k;
                outp += k;
                used += COMPONENT_BYTES;
            }
            collab_protocol::Component::Delete(k) => {
                cur.delete(*k);
                inp += k;
                used += COMPONENT_BYTES;
            }
            collab_protocol::Component::Insert(text) => {
                let mut piece = String::new();
                used += COMPONENT_BYTES;
                for ch in text.chars() {
                    let w = json_len(ch);
                    if used + w > budget && !piece.is_empty() {
                        outp += piece.chars().count();
                        cur.insert(&std::mem::take(&mut piece));
                        finish(&mut cur, &mut used, &mut chunks, inp, outp);
                        used += COMPONENT_BYTES;
                    }
                    piece.push(ch);
                    used += w;
                }
                outp += piece.chars().count();
                cur.insert(&piece);
            }
        }
        if used > budget {
            finish(&mut cur, &mut used, &mut chunks, inp, outp);
        }
    }
    cur.retain(total_in - inp);
    chunks.push(cur);
    chunks.retain(|c| !c.is_noop());
    if chunks.is_empty() {
        chunks.push(op.clone());
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(old: &str, new: &str) -> Operation {
        let op = edit_between(old, new);
        assert_eq!(op.base_len(), old.chars().count());
        assert_eq!(op.apply_str(old).unwrap(), new, "{old:?} -> {new:?}");
        op
    }

    #[test]
    fn edits_are_minimal_and_count_chars() {
        let op = check("fn main() {}\n", "fn main() { x }\n");
        // Only the inserted text travels, not the file.
        let inserted: usize = op
            .components()
            .iter()
            .map(|c| match c {
                collab_protocol::Component::Insert(s) => s.chars().count(),
                _ => 0,
            })
            .sum();
        assert_eq!(inserted, 3, "only \" x \"");
        check("héllo wörld\r\n", "héllo, wörld 🎉\r\n");
        check("", "new\n");
        check("gone\n", "");
        check("same", "same");
        assert!(edit_between("same", "same").is_noop());
        check("a\r\nb\r\n", "a\nb\n");
    }

    #[test]
    fn a_big_edit_splits_into_pieces_that_compose_to_it() {
        let old = "a\"b\nc".repeat(50);
        let new = format!("x{}y{}z", "é\"\n".repeat(300), old.replace('b', "BB"));
        let op = edit_between(&old, &new);
        let chunks = split_edit(&op, 200);
        assert!(chunks.len() > 5, "{}", chunks.len());
        let mut text = old.clone();
        for c in &chunks {
            let msg = serde_json::to_string(c).unwrap();
            assert!(msg.len() <= 260, "{} bytes", msg.len());
            text = c.apply_str(&text).unwrap();
        }
        assert_eq!(text, new);
        assert_eq!(split_edit(&op, 1 << 20), vec![op]);
    }
}
