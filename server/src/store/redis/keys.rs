//! Redis key names. Every key of a room carries the room id as a hash tag
//! (`{id}`), so a Redis Cluster keeps a room on one slot and the scripts
//! may touch all of them at once; the read-only id's key deliberately does
//! not (it must not reveal the room id). The main document keeps the keys a
//! room had before rooms held several documents (`meta`, `snap`, `log`,
//! `dedup`), so rooms stored then still load; every other document has its
//! own under `d:{doc}:`. The layout is docs/redis.md.

use crate::store::MAIN_DOC;

pub(super) fn k_meta(id: &str) -> String {
    format!("collab:{{{id}}}:meta")
}
pub(super) fn k_ids(id: &str) -> String {
    format!("collab:{{{id}}}:ids")
}
pub(super) fn k_presence(id: &str) -> String {
    format!("collab:{{{id}}}:presence")
}
/// Document id -> its path and language.
pub(super) fn k_tree(id: &str) -> String {
    format!("collab:{{{id}}}:tree")
}
/// The tree's changes, oldest first.
pub(super) fn k_treelog(id: &str) -> String {
    format!("collab:{{{id}}}:treelog")
}
/// What the keys of a document other than the main one start with; the
/// scripts that walk the tree build those keys from it.
pub(super) fn doc_prefix(id: &str) -> String {
    format!("collab:{{{id}}}:d:")
}
/// One of a document's keys: `meta`, `snap`, `log` or `dedup`.
pub(super) fn k_doc(id: &str, doc: &str, part: &str) -> String {
    if doc == MAIN_DOC {
        format!("collab:{{{id}}}:{part}")
    } else {
        format!("collab:{{{id}}}:d:{doc}:{part}")
    }
}
/// The room's chat, oldest first (its last `CHAT_KEPT` messages).
pub(super) fn k_chat(id: &str) -> String {
    format!("collab:{{{id}}}:chat")
}
/// The client ids the owner removed (refused when they come back).
pub(super) fn k_banned(id: &str) -> String {
    format!("collab:{{{id}}}:banned")
}
/// The room's pub/sub channel.
pub(super) fn channel(id: &str) -> String {
    format!("collab:{{{id}}}:events")
}
/// Read-only id -> room id. Outside the room's slot on purpose: the
/// read-only id must not reveal the room id.
pub(super) fn k_viewer(viewer: &str) -> String {
    format!("collab:viewer:{viewer}")
}
/// A replaced editing link -> room id; outside the room's slot, like the
/// read-only id's key.
pub(super) fn k_link(link: &str) -> String {
    format!("collab:link:{link}")
}
pub(super) fn k_instance(instance: &str) -> String {
    format!("collab:instance:{instance}")
}
/// The keys a document's scripts take, in their order: the document's
/// meta, snapshot, log and de-duplication, then the room's identities,
/// presence, meta and tree. (For the main document the first and the
/// seventh are the same key.)
pub(super) fn doc_keys(id: &str, doc: &str) -> [String; 8] {
    [
        k_doc(id, doc, "meta"),
        k_doc(id, doc, "snap"),
        k_doc(id, doc, "log"),
        k_doc(id, doc, "dedup"),
        k_ids(id),
        k_presence(id),
        k_meta(id),
        k_tree(id),
    ]
}
/// The keys the room-wide scripts take: the main document's and the
/// room's, then the tree log, the chat and the removed clients.
pub(super) fn room_keys(id: &str) -> [String; 11] {
    let [meta, snap, log, dedup, ids, presence, room, tree] = doc_keys(id, MAIN_DOC);
    [
        meta,
        snap,
        log,
        dedup,
        ids,
        presence,
        room,
        tree,
        k_treelog(id),
        k_chat(id),
        k_banned(id),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_room_shares_its_hash_tag() {
        for key in room_keys("abc").iter().chain(&doc_keys("abc", "d1")) {
            assert!(key.contains("{abc}"), "{key}");
        }
        assert_eq!(k_doc("abc", "main", "log"), "collab:{abc}:log");
        assert_eq!(k_doc("abc", "x9", "log"), "collab:{abc}:d:x9:log");
        assert!(k_doc("abc", "x9", "meta").starts_with(&doc_prefix("abc")));
        assert!(!k_viewer("v").contains('{'));
    }
}
