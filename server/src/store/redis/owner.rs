//! The room owner's controls in Redis: the owner token's hash kept in the
//! room's meta, the room's read-only switch, replacing its share links,
//! ending a room (every instance told, every key deleted) and
//! removing a participant (their client ids refused from then on). Each is
//! one script, so the change and its announcement happen together.

use redis::AsyncCommands;

use super::keys::{channel, doc_prefix, k_banned, k_ids, k_link, k_meta, k_viewer, room_keys};
use super::{RedisStore, Result};
use crate::store::StoreError;

impl RedisStore {
    /// The hash of the room owner's token, if it has one.
    pub async fn owner(&self, id: &str) -> Result<Option<String>> {
        self.counted(async {
            let mut c = self.conn.get();
            Ok(c.hget(k_meta(id), "owner").await?)
        })
        .await
    }

    /// Sets the room's read-only mode and tells every instance.
    pub async fn set_read_only(&self, id: &str, read_only: bool) -> Result<bool> {
        self.counted(async {
            let mut c = self.conn.get();
            let done: i64 = self
                .scripts
                .mode
                .key(k_meta(id))
                .arg(if read_only { "1" } else { "0" })
                .arg(channel(id))
                .arg(self.instance())
                .invoke_async(&mut c)
                .await?;
            Ok(done == 1)
        })
        .await
    }

    /// Tells every instance the room ended and deletes all of it.
    pub async fn end_room(&self, id: &str) -> Result<bool> {
        self.counted(async {
            let mut c = self.conn.get();
            let mut inv = self.scripts.end.prepare_invoke();
            for k in room_keys(id) {
                inv.key(k);
            }
            inv.arg(doc_prefix(id))
                .arg(channel(id))
                .arg(self.instance());
            let old: Option<(String, String)> = inv.invoke_async(&mut c).await?;
            let Some((viewer, link)) = old else {
                return Ok(false);
            };
            drop_aliases(&mut c, &viewer, &link).await?;
            Ok(true)
        })
        .await
    }

    /// Replaces the room's share links: the new ones open it first, then
    /// the room records them and tells every instance, then the old ones go.
    pub async fn rotate_links(&self, id: &str, link: &str, viewer: &str) -> Result<bool> {
        self.counted(async {
            let mut c = self.conn.get();
            let ttl = self.ttl.as_secs().max(1);
            c.set_ex::<_, _, ()>(k_link(link), id, ttl).await?;
            c.set_ex::<_, _, ()>(k_viewer(viewer), id, ttl).await?;
            let old: Option<(String, String)> = self
                .scripts
                .links
                .key(k_meta(id))
                .arg(link)
                .arg(viewer)
                .arg(channel(id))
                .arg(self.instance())
                .invoke_async(&mut c)
                .await?;
            let Some((old_viewer, old_link)) = old else {
                drop_aliases(&mut c, viewer, link).await?;
                return Ok(false);
            };
            drop_aliases(&mut c, &old_viewer, &old_link).await?;
            Ok(true)
        })
        .await
    }

    /// Refuses the user's client ids from now on, replaces the room's
    /// links with `link` and `viewer` (the new ones open the room first,
    /// the old ones go last) and tells every instance; returns the client
    /// ids (none: no such user, nothing changed).
    pub async fn remove_user(
        &self,
        id: &str,
        user_id: &str,
        known: &[String],
        (link, viewer): (&str, &str),
    ) -> Result<Vec<String>> {
        self.counted(async {
            let mut c = self.conn.get();
            let ttl = self.ttl.as_secs().max(1);
            c.set_ex::<_, _, ()>(k_link(link), id, ttl).await?;
            c.set_ex::<_, _, ()>(k_viewer(viewer), id, ttl).await?;
            let mut inv = self.scripts.remove.prepare_invoke();
            inv.key(k_meta(id))
                .key(k_ids(id))
                .key(k_banned(id))
                .arg(user_id)
                .arg(self.ttl_ms())
                .arg(channel(id))
                .arg(self.instance())
                .arg(link)
                .arg(viewer);
            for k in known {
                inv.arg(k);
            }
            let answer: Option<redis::Value> = inv.invoke_async(&mut c).await?;
            let Some(answer) = answer else {
                drop_aliases(&mut c, viewer, link).await?;
                return Err(StoreError::Unavailable("the room is gone".into()));
            };
            let parsed: Option<(Vec<String>, String, String)> =
                redis::from_redis_value(answer).ok();
            let Some((banned, old_viewer, old_link)) = parsed else {
                // An unknown user: nothing changed.
                drop_aliases(&mut c, viewer, link).await?;
                return Ok(Vec::new());
            };
            drop_aliases(&mut c, &old_viewer, &old_link).await?;
            Ok(banned)
        })
        .await
    }
}

/// Deletes a room's read-only id and editing link keys (those not empty).
/// One request each: on a cluster they live on other slots than each
/// other.
async fn drop_aliases(c: &mut super::conn::Conn, viewer: &str, link: &str) -> Result<()> {
    for (id, key) in [(viewer, k_viewer(viewer)), (link, k_link(link))] {
        if !id.is_empty() {
            c.del::<_, ()>(key).await?;
        }
    }
    Ok(())
}
