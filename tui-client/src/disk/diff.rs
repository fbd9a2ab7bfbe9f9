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
}
