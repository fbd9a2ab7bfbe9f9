//! The open buffers in the order they were last used, and which of them to
//! close when more are open than the server allows a connection (64 by
//! default): the least recently used ones that lose nothing by closing
//! (fully synchronized, not being opened), never the active one.

/// Document ids, most recently used first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recent {
    ids: Vec<String>,
}

impl Recent {
    /// Marks `id` as just used.
    pub fn touch(&mut self, id: &str) {
        self.remove(id);
        self.ids.insert(0, id.to_owned());
    }

    /// Adds `id` as the least recently used, unless listed.
    pub fn touch_back(&mut self, id: &str) {
        if !self.ids.iter().any(|i| i == id) {
            self.ids.push(id.to_owned());
        }
    }

    /// Forgets `id` (closed or deleted).
    pub fn remove(&mut self, id: &str) {
        self.ids.retain(|i| i != id);
    }

    /// The ids, most recently used first.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// The ids to close so that at most `limit` stay open: least recently
    /// used first, only those `closable` allows.
    pub fn victims(&self, limit: usize, closable: impl Fn(&str) -> bool) -> Vec<String> {
        let excess = self.ids.len().saturating_sub(limit);
        self.ids
            .iter()
            .rev()
            .filter(|id| closable(id))
            .take(excess)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_closable_buffers_go_first() {
        let mut r = Recent::default();
        for id in ["a", "b", "c", "d"] {
            r.touch(id);
        }
        r.touch("a");
        assert_eq!(r.ids(), ["a", "d", "c", "b"]);
        assert_eq!(r.victims(2, |_| true), ["b", "c"]);
        // "b" has unsent edits: it stays, the next one goes.
        assert_eq!(r.victims(3, |id| id != "b"), ["c"]);
        assert!(r.victims(4, |_| true).is_empty());
        r.remove("d");
        r.touch_back("z");
        r.touch_back("a");
        assert_eq!(r.ids(), ["a", "c", "b", "z"]);
    }
}
