//! The operation algebra that keeps every replica of a document identical.
//!
//! An [`Operation`] walks a document of Unicode scalar values (Rust `char`s)
//! from offset 0 and retains, inserts or deletes as it goes. Its wire form is a
//! JSON array: a positive integer retains that many chars, a non-empty string
//! inserts it, a negative integer deletes that many chars. The algebra follows
//! ot.js: `transform` puts the left argument's insert first when both insert at
//! the same offset, which is what makes the server's and the clients'
//! transformations agree.

use std::fmt;

use ropey::Rope;
use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One step of an [`Operation`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Component {
    /// Keep this many chars unchanged.
    Retain(usize),
    /// Insert this (non-empty) text.
    Insert(String),
    /// Remove this many chars.
    Delete(usize),
}

/// Why an operation could not be built, combined or applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// The operation's base length is not the length of the document or
    /// operation it was combined with.
    #[error("operation expects a document of {expected} chars, but it has {actual}")]
    LengthMismatch {
        /// The length the operation was built for.
        expected: usize,
        /// The length it met.
        actual: usize,
    },
    /// A component is zero, empty, or the lengths overflow.
    #[error("invalid operation component: {0}")]
    InvalidComponent(&'static str),
}

/// A sequence of retain/insert/delete components, kept in canonical form:
/// no empty components, no two adjacent components of the same kind, and an
/// insert always before an adjacent delete. Two operations with the same effect
/// therefore compare equal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Operation {
    components: Vec<Component>,
    base_len: usize,
    target_len: usize,
}

/// The number of `char`s in `s`; every length in this crate counts chars.
pub fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// The byte offset of char `n` in `s` (or `s.len()` when `n` is past the end).
fn byte_of_char(s: &str, n: usize) -> usize {
    s.char_indices().nth(n).map_or(s.len(), |(i, _)| i)
}

impl Operation {
    /// The empty operation on an empty document.
    pub fn new() -> Self {
        Self::default()
    }

    /// The identity operation on a document of `len` chars.
    pub fn identity(len: usize) -> Self {
        let mut op = Self::new();
        op.retain(len);
        op
    }

    /// The components, in canonical form.
    pub fn components(&self) -> &[Component] {
        &self.components
    }

    /// Length of the document this operation applies to.
    pub fn base_len(&self) -> usize {
        self.base_len
    }

    /// Length of the document this operation produces.
    pub fn target_len(&self) -> usize {
        self.target_len
    }

    /// True when applying the operation changes nothing.
    pub fn is_noop(&self) -> bool {
        self.components
            .iter()
            .all(|c| matches!(c, Component::Retain(_)))
    }

    /// Appends a retain of `n` chars (no-op for 0).
    pub fn retain(&mut self, n: usize) -> &mut Self {
        if n == 0 {
            return self;
        }
        self.base_len += n;
        self.target_len += n;
        if let Some(Component::Retain(last)) = self.components.last_mut() {
            *last += n;
        } else {
            self.components.push(Component::Retain(n));
        }
        self
    }

    /// Appends an insert of `text` (no-op for "").
    pub fn insert(&mut self, text: &str) -> &mut Self {
        if text.is_empty() {
            return self;
        }
        self.target_len += char_len(text);
        // Canonical order puts an insert before a delete it is adjacent to.
        let n = self.components.len();
        match self.components.as_mut_slice() {
            [.., Component::Insert(last)] => last.push_str(text),
            [.., Component::Insert(before), Component::Delete(_)] => before.push_str(text),
            [.., Component::Delete(_)] => {
                self.components
                    .insert(n - 1, Component::Insert(text.to_owned()));
            }
            _ => self.components.push(Component::Insert(text.to_owned())),
        }
        self
    }

    /// Appends a delete of `n` chars (no-op for 0).
    pub fn delete(&mut self, n: usize) -> &mut Self {
        if n == 0 {
            return self;
        }
        self.base_len += n;
        if let Some(Component::Delete(last)) = self.components.last_mut() {
            *last += n;
        } else {
            self.components.push(Component::Delete(n));
        }
        self
    }

    fn push(&mut self, c: Component) {
        match c {
            Component::Retain(n) => self.retain(n),
            Component::Insert(s) => self.insert(&s),
            Component::Delete(n) => self.delete(n),
        };
    }

    /// Builds an operation from components, validating each one (no zero
    /// counts, no empty inserts, no length overflow) and canonicalizing.
    pub fn from_components(
        components: impl IntoIterator<Item = Component>,
    ) -> Result<Self, OpError> {
        let mut op = Self::new();
        for c in components {
            let grow = match &c {
                Component::Retain(0) => return Err(OpError::InvalidComponent("retain of 0")),
                Component::Delete(0) => return Err(OpError::InvalidComponent("delete of 0")),
                Component::Insert(s) if s.is_empty() => {
                    return Err(OpError::InvalidComponent("empty insert"))
                }
                Component::Retain(n) => (*n, *n),
                Component::Delete(n) => (*n, 0),
                Component::Insert(s) => (0, s.len()),
            };
            if op.base_len.checked_add(grow.0).is_none()
                || op.target_len.checked_add(grow.0.max(grow.1)).is_none()
            {
                return Err(OpError::InvalidComponent("length overflow"));
            }
            op.push(c);
        }
        Ok(op)
    }

    /// Applies the operation to `doc` in place.
    ///
    /// Costs O(components × log(document)), independent of the document's
    /// size otherwise. On error `doc` is left unchanged.
    pub fn apply(&self, doc: &mut Rope) -> Result<(), OpError> {
        let actual = doc.len_chars();
        if actual != self.base_len {
            return Err(OpError::LengthMismatch {
                expected: self.base_len,
                actual,
            });
        }
        let mut pos = 0;
        for c in &self.components {
            match c {
                Component::Retain(n) => pos += n,
                Component::Insert(s) => {
                    doc.insert(pos, s);
                    pos += char_len(s);
                }
                Component::Delete(n) => doc.remove(pos..pos + n),
            }
        }
        Ok(())
    }

    /// Applies the operation to a string, for tests and small documents.
    pub fn apply_str(&self, s: &str) -> Result<String, OpError> {
        let mut rope = Rope::from_str(s);
        self.apply(&mut rope)?;
        Ok(rope.to_string())
    }

    /// The operation that undoes `self`, given the document `self` applied to.
    pub fn invert(&self, before: &Rope) -> Result<Self, OpError> {
        if before.len_chars() != self.base_len {
            return Err(OpError::LengthMismatch {
                expected: self.base_len,
                actual: before.len_chars(),
            });
        }
        let mut inverse = Self::new();
        let mut pos = 0;
        for c in &self.components {
            match c {
                Component::Retain(n) => {
                    inverse.retain(*n);
                    pos += n;
                }
                Component::Insert(s) => {
                    inverse.delete(char_len(s));
                }
                Component::Delete(n) => {
                    let deleted: String = before.slice(pos..pos + n).into();
                    inverse.insert(&deleted);
                    pos += n;
                }
            }
        }
        Ok(inverse)
    }

    /// One operation with the effect of `self` followed by `next`.
    pub fn compose(&self, next: &Self) -> Result<Self, OpError> {
        if self.target_len != next.base_len {
            return Err(OpError::LengthMismatch {
                expected: next.base_len,
                actual: self.target_len,
            });
        }
        let mut out = Self::new();
        let mut a = Cursor::new(&self.components);
        let mut b = Cursor::new(&next.components);
        loop {
            match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(Component::Delete(n)), _) => {
                    out.delete(*n);
                    a.advance_whole();
                }
                (_, Some(Component::Insert(s))) => {
                    out.insert(s);
                    b.advance_whole();
                }
                (Some(ca), Some(cb)) => {
                    let len = a.remaining().min(b.remaining());
                    match (ca, cb) {
                        (Component::Retain(_), Component::Retain(_)) => {
                            out.retain(len);
                        }
                        (Component::Retain(_), Component::Delete(_)) => {
                            out.delete(len);
                        }
                        (Component::Insert(_), Component::Retain(_)) => {
                            out.insert(a.insert_part(len));
                        }
                        // An insert deleted right away leaves nothing behind.
                        (Component::Insert(_), Component::Delete(_)) => {}
                        _ => unreachable!("deletes of `self` and inserts of `next` handled above"),
                    }
                    a.take(len);
                    b.take(len);
                }
                // Lengths were checked, so both run out together.
                _ => unreachable!("compose: lengths checked, components exhausted unevenly"),
            }
        }
        Ok(out)
    }

    /// Transforms two concurrent operations on the same document into
    /// `(a', b')` such that `apply(apply(d, a), b') == apply(apply(d, b), a')`.
    ///
    /// When both insert at the same offset, `a`'s text comes first.
    pub fn transform(a: &Self, b: &Self) -> Result<(Self, Self), OpError> {
        if a.base_len != b.base_len {
            return Err(OpError::LengthMismatch {
                expected: a.base_len,
                actual: b.base_len,
            });
        }
        let mut a_prime = Self::new();
        let mut b_prime = Self::new();
        let mut ca = Cursor::new(&a.components);
        let mut cb = Cursor::new(&b.components);
        loop {
            match (ca.peek(), cb.peek()) {
                (None, None) => break,
                (Some(Component::Insert(s)), _) => {
                    a_prime.insert(s);
                    b_prime.retain(char_len(s));
                    ca.advance_whole();
                }
                (_, Some(Component::Insert(s))) => {
                    a_prime.retain(char_len(s));
                    b_prime.insert(s);
                    cb.advance_whole();
                }
                (Some(x), Some(y)) => {
                    let len = ca.remaining().min(cb.remaining());
                    match (x, y) {
                        (Component::Retain(_), Component::Retain(_)) => {
                            a_prime.retain(len);
                            b_prime.retain(len);
                        }
                        (Component::Delete(_), Component::Retain(_)) => {
                            a_prime.delete(len);
                        }
                        (Component::Retain(_), Component::Delete(_)) => {
                            b_prime.delete(len);
                        }
                        // Both deleted the same text: nothing left to do.
                        (Component::Delete(_), Component::Delete(_)) => {}
                        _ => unreachable!("inserts handled above"),
                    }
                    ca.take(len);
                    cb.take(len);
                }
                _ => unreachable!("transform: lengths checked, components exhausted unevenly"),
            }
        }
        Ok((a_prime, b_prime))
    }

    /// Where the char offset `index` of the base document lands in the target
    /// document. An insert exactly at `index` pushes it right, so a caret stays
    /// after text typed at its position by someone else.
    pub fn transform_index(&self, index: usize) -> usize {
        let mut old = index;
        let mut new = index;
        for c in &self.components {
            match c {
                Component::Retain(n) => {
                    if old < *n {
                        break;
                    }
                    old -= n;
                }
                Component::Insert(s) => new += char_len(s),
                Component::Delete(n) => {
                    let gone = old.min(*n);
                    new -= gone;
                    old -= gone;
                    if old == 0 && gone < *n {
                        break;
                    }
                }
            }
        }
        new.min(self.target_len)
    }

    /// An operation on a document of `len` chars that replaces the chars in
    /// `start..end` with `text`. The building block of every editor edit.
    pub fn replace(len: usize, start: usize, end: usize, text: &str) -> Result<Self, OpError> {
        if start > end || end > len {
            return Err(OpError::InvalidComponent("replace range outside document"));
        }
        let mut op = Self::new();
        op.retain(start)
            .insert(text)
            .delete(end - start)
            .retain(len - end);
        Ok(op)
    }
}

/// Walks a component list, able to consume part of a component.
struct Cursor<'a> {
    components: &'a [Component],
    index: usize,
    /// Chars of `components[index]` already consumed.
    offset: usize,
}

impl<'a> Cursor<'a> {
    fn new(components: &'a [Component]) -> Self {
        Self {
            components,
            index: 0,
            offset: 0,
        }
    }

    fn peek(&self) -> Option<&'a Component> {
        self.components.get(self.index)
    }

    fn len_of(c: &Component) -> usize {
        match c {
            Component::Retain(n) | Component::Delete(n) => *n,
            Component::Insert(s) => char_len(s),
        }
    }

    fn remaining(&self) -> usize {
        self.peek().map_or(0, |c| Self::len_of(c) - self.offset)
    }

    /// The next `len` chars of the current insert component.
    fn insert_part(&self, len: usize) -> &'a str {
        match self.peek() {
            Some(Component::Insert(s)) => {
                let from = byte_of_char(s, self.offset);
                let rest = &s[from..];
                &rest[..byte_of_char(rest, len)]
            }
            _ => "",
        }
    }

    fn take(&mut self, len: usize) {
        self.offset += len;
        if self.peek().is_some_and(|c| self.offset >= Self::len_of(c)) {
            self.advance_whole();
        }
    }

    fn advance_whole(&mut self) {
        self.index += 1;
        self.offset = 0;
    }
}

impl Serialize for Operation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.components.len()))?;
        for c in &self.components {
            match c {
                Component::Retain(n) => seq.serialize_element(&(*n as u64))?,
                Component::Insert(s) => seq.serialize_element(s)?,
                Component::Delete(n) => seq.serialize_element(&-(*n as i64))?,
            }
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Operation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(OperationVisitor)
    }
}

struct OperationVisitor;

/// One element of the wire array, before validation.
enum WireComponent {
    Count(i64),
    Text(String),
}

/// By hand rather than `#[serde(untagged)]`: untagged buffers every element
/// and builds an error for each variant it tries first, which made reading
/// operations a visible cost for a client receiving thousands a second.
impl<'de> Deserialize<'de> for WireComponent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ComponentVisitor;
        impl Visitor<'_> for ComponentVisitor {
            type Value = WireComponent;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a non-zero integer or a non-empty string")
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<WireComponent, E> {
                Ok(WireComponent::Count(n))
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<WireComponent, E> {
                i64::try_from(n)
                    .map(WireComponent::Count)
                    .map_err(|_| E::custom(format!("operation component {n} is too large")))
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<WireComponent, E> {
                Ok(WireComponent::Text(s.to_owned()))
            }

            fn visit_string<E: de::Error>(self, s: String) -> Result<WireComponent, E> {
                Ok(WireComponent::Text(s))
            }
        }
        d.deserialize_any(ComponentVisitor)
    }
}

impl<'de> Visitor<'de> for OperationVisitor {
    type Value = Operation;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of non-zero integers and non-empty strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Operation, A::Error> {
        let mut components = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(element) = seq.next_element::<WireComponent>()? {
            components.push(match element {
                WireComponent::Count(n) if n > 0 => Component::Retain(n as usize),
                WireComponent::Count(n) if n < 0 => Component::Delete(n.unsigned_abs() as usize),
                WireComponent::Count(_) => {
                    return Err(de::Error::custom("operation component 0 is not allowed"))
                }
                WireComponent::Text(s) => Component::Insert(s),
            });
        }
        Operation::from_components(components).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(json: &str) -> Operation {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn wire_form_round_trips_and_is_canonical() {
        let o = op(r#"[2, "ab", -1, 3]"#);
        assert_eq!(serde_json::to_string(&o).unwrap(), r#"[2,"ab",-1,3]"#);
        assert_eq!((o.base_len(), o.target_len()), (6, 7));
        // Delete-then-insert canonicalizes to insert-then-delete, adjacent runs merge.
        let o = op(r#"[1, 1, -1, "x", "y"]"#);
        assert_eq!(serde_json::to_string(&o).unwrap(), r#"[2,"xy",-1]"#);
    }

    #[test]
    fn wire_form_rejects_zero_empty_and_other_types() {
        for bad in [
            "[0]",
            r#"[""]"#,
            "[1.5]",
            "[true]",
            "{}",
            "[null]",
            "[99999999999999999999]",
            "[9223372036854775808]",
            r#"[["a"]]"#,
        ] {
            assert!(serde_json::from_str::<Operation>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn apply_counts_chars_not_bytes() {
        let o = op(r#"[1, -1, "界", 1]"#);
        assert_eq!(o.apply_str("a😀b").unwrap(), "a界b");
        assert_eq!(
            o.apply_str("ab"),
            Err(OpError::LengthMismatch {
                expected: 3,
                actual: 2
            })
        );
    }

    #[test]
    fn concurrent_inserts_at_one_offset_put_left_first() {
        let a = op(r#"[1, "A", 1]"#);
        let b = op(r#"[1, "B", 1]"#);
        let (a2, b2) = Operation::transform(&a, &b).unwrap();
        let via_a = b2.apply_str(&a.apply_str("xy").unwrap()).unwrap();
        let via_b = a2.apply_str(&b.apply_str("xy").unwrap()).unwrap();
        assert_eq!(via_a, "xABy");
        assert_eq!(via_b, "xABy");
    }

    #[test]
    fn transform_index_moves_with_edits() {
        let o = op(r#"[2, "abc", -2, 3]"#); // on 7 chars
        assert_eq!(o.transform_index(0), 0);
        assert_eq!(o.transform_index(2), 5); // insert at the caret pushes it
        assert_eq!(o.transform_index(3), 5); // inside the deleted range
        assert_eq!(o.transform_index(4), 5);
        assert_eq!(o.transform_index(7), 8);
    }

    #[test]
    fn invert_restores_deleted_text() {
        let before = Rope::from_str("héllo wörld");
        let o = op(r#"[1, -4, "ey", 6]"#);
        let mut doc = before.clone();
        o.apply(&mut doc).unwrap();
        assert_eq!(doc.to_string(), "hey wörld");
        o.invert(&before).unwrap().apply(&mut doc).unwrap();
        assert_eq!(doc, before);
    }
}
