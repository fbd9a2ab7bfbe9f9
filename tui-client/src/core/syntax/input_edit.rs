//! Operations become tree-sitter `InputEdit`s. An [`Operation`] counts
//! Unicode scalar values over the whole old document; tree-sitter wants byte
//! offsets and (row, byte column) points. Each insert or delete becomes one
//! edit, in the coordinates of the text with the edits before it already
//! made (tree-sitter applies them one after another), so everything before
//! an edit is the same text in the old and the new document: positions are
//! measured in the new rope, deleted lengths in the old one. Every figure is
//! one of ropey's O(log n) conversions, never a walk over the text.

use collab_protocol::{char_len, Component, Operation};
use ropey::Rope;
use tree_sitter::{InputEdit, Point};

/// The edits that turn the tree of `old` into one of `new`, where
/// `new` is `old` with `op` applied.
pub fn input_edits(op: &Operation, old: &Rope, new: &Rope) -> Vec<InputEdit> {
    let mut edits = Vec::new();
    // `old_pos` walks the old document, `pos` the new one; text before
    // `pos` is already as it is in `new`.
    let (mut old_pos, mut pos) = (0, 0);
    for c in op.components() {
        match c {
            Component::Retain(n) => {
                old_pos += n;
                pos += n;
            }
            Component::Insert(s) => {
                let n = char_len(s);
                let (start_byte, start_position) = place(new, pos);
                let (new_end_byte, new_end_position) = place(new, pos + n);
                edits.push(InputEdit {
                    start_byte,
                    old_end_byte: start_byte,
                    new_end_byte,
                    start_position,
                    old_end_position: start_position,
                    new_end_position,
                });
                pos += n;
            }
            Component::Delete(n) => {
                let (start_byte, start_position) = place(new, pos);
                let (old_start, old_start_point) = place(old, old_pos);
                let (old_end, old_end_point) = place(old, old_pos + n);
                // The deleted text's extent, carried over to where it starts
                // in the new document.
                let rows = old_end_point.row - old_start_point.row;
                let old_end_position = if rows == 0 {
                    Point::new(
                        start_position.row,
                        start_position.column + old_end_point.column - old_start_point.column,
                    )
                } else {
                    Point::new(start_position.row + rows, old_end_point.column)
                };
                edits.push(InputEdit {
                    start_byte,
                    old_end_byte: start_byte + (old_end - old_start),
                    new_end_byte: start_byte,
                    start_position,
                    old_end_position,
                    new_end_position: start_position,
                });
                old_pos += n;
            }
        }
    }
    edits
}

/// Byte offset and (row, byte column) of char offset `pos`.
pub fn place(rope: &Rope, pos: usize) -> (usize, Point) {
    let pos = pos.min(rope.len_chars());
    let byte = rope.char_to_byte(pos);
    let row = rope.char_to_line(pos);
    let column = byte - rope.line_to_byte(row);
    (byte, Point::new(row, column))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies the edits to the points of `old`'s ends and checks they land
    /// where `new` has them.
    fn check(old: &str, start: usize, end: usize, text: &str) -> Vec<InputEdit> {
        let old = Rope::from_str(old);
        let op = Operation::replace(old.len_chars(), start, end, text).unwrap();
        let mut new = old.clone();
        op.apply(&mut new).unwrap();
        let edits = input_edits(&op, &old, &new);
        // The document's end moves as tree-sitter moves a point after an
        // edit.
        let (mut byte, mut point) = place(&old, old.len_chars());
        for e in &edits {
            assert!(byte >= e.old_end_byte);
            byte = e.new_end_byte + (byte - e.old_end_byte);
            point = if point.row == e.old_end_position.row {
                Point::new(
                    e.new_end_position.row,
                    e.new_end_position.column + point.column - e.old_end_position.column,
                )
            } else {
                Point::new(
                    e.new_end_position.row + point.row - e.old_end_position.row,
                    point.column,
                )
            };
        }
        assert_eq!((byte, point), place(&new, new.len_chars()));
        edits
    }

    #[test]
    fn an_insert_is_measured_in_bytes_and_rows() {
        let edits = check("aé\nb", 2, 2, "→\nxy");
        assert_eq!(edits.len(), 1);
        let e = edits[0];
        assert_eq!((e.start_byte, e.old_end_byte, e.new_end_byte), (3, 3, 9));
        assert_eq!(e.start_position, Point::new(0, 3));
        assert_eq!(e.new_end_position, Point::new(1, 2));
    }

    #[test]
    fn a_delete_over_lines_keeps_its_old_extent() {
        let edits = check("ab\ncdé\nef", 1, 6, "");
        let e = edits[0];
        assert_eq!((e.start_byte, e.old_end_byte, e.new_end_byte), (1, 7, 1));
        assert_eq!(e.old_end_position, Point::new(1, 4));
        assert_eq!(e.new_end_position, Point::new(0, 1));
    }

    #[test]
    fn a_replacement_is_two_edits_in_sequence() {
        let edits = check("x = \"one\ntwo\"\n", 5, 12, "é");
        assert_eq!(edits.len(), 2);
    }
}
