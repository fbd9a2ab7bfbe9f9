//! Redis key names. Every key of a room carries the room id as a hash tag
//! (`{id}`), so a Redis Cluster keeps a room on one slot and the scripts
//! may touch all of them at once; the read-only id's key deliberately does
//! not (it must not reveal the room id). The layout is docs/redis.md.

pub(super) fn k_meta(id: &str) -> String {
    format!("collab:{{{id}}}:meta")
}
pub(super) fn k_snap(id: &str) -> String {
    format!("collab:{{{id}}}:snap")
}
pub(super) fn k_log(id: &str) -> String {
    format!("collab:{{{id}}}:log")
}
pub(super) fn k_dedup(id: &str) -> String {
    format!("collab:{{{id}}}:dedup")
}
pub(super) fn k_ids(id: &str) -> String {
    format!("collab:{{{id}}}:ids")
}
pub(super) fn k_presence(id: &str) -> String {
    format!("collab:{{{id}}}:presence")
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
pub(super) fn k_instance(instance: &str) -> String {
    format!("collab:instance:{instance}")
}
/// Every key of a room, in the order the scripts take them.
pub(super) fn room_keys(id: &str) -> [String; 6] {
    [
        k_meta(id),
        k_snap(id),
        k_log(id),
        k_dedup(id),
        k_ids(id),
        k_presence(id),
    ]
}
