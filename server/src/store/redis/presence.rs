//! Who is connected where, across instances: presence records (a hash per
//! room: user -> user info and instance), joins and leaves announced on the
//! room's channel, carets published, and instance heartbeats. An instance
//! killed without draining stops beating; the others then remove its users'
//! records (only the instance whose removal succeeded announces the leave,
//! so a ghost is announced once) and report them to their rooms.

use std::sync::Arc;
use std::time::Duration;

use collab_protocol::UserInfo;
use redis::AsyncCommands;

use super::keys::{channel, k_instance, k_meta, k_presence};
use super::wire::{to_json, WireEvent};
use super::{RedisStore, Result};
use crate::store::{PresenceCheck, PresenceRecord, StoreError};

/// How often an instance tells Redis it is alive, and how long that lasts.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(3);
/// How long a heartbeat keeps an instance alive.
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(10);

/// Beats for this instance for as long as the process runs.
pub fn spawn_heartbeat(store: Arc<RedisStore>) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = store.heartbeat(HEARTBEAT_TTL).await {
                tracing::warn!(error = %e, "redis heartbeat failed");
            }
            tokio::time::sleep(HEARTBEAT_EVERY).await;
        }
    });
}

impl RedisStore {
    /// Records a user as present on this instance and announces it.
    pub async fn join(&self, id: &str, user: &UserInfo) -> Result<()> {
        self.counted(async {
            let mut c = self.conn.get();
            let record = PresenceRecord {
                user: user.clone(),
                instance: self.instance.clone(),
            };
            let event = WireEvent::Join {
                i: self.instance.clone(),
                user: user.clone(),
            };
            // A script, so that a join racing the room's end writes
            // nothing back.
            self.scripts
                .join
                .key(k_meta(id))
                .key(k_presence(id))
                .arg(&user.user_id)
                .arg(to_json(&record))
                .arg(self.ttl_ms())
                .arg(channel(id))
                .arg(to_json(&event))
                .invoke_async::<i64>(&mut c)
                .await?;
            Ok(())
        })
        .await
    }

    /// Removes this instance's presence record of a user and announces the
    /// departure; a record another instance wrote meanwhile stays.
    pub async fn leave(&self, id: &str, user_id: &str) -> Result<()> {
        self.leave_if(id, user_id, &self.instance).await.map(|_| ())
    }

    /// Removes a user's presence record if it still names `instance`, and
    /// then announces the departure, in one step: a reaped ghost is
    /// announced exactly once, and a user who moved is not removed.
    async fn leave_if(&self, id: &str, user_id: &str, instance: &str) -> Result<bool> {
        self.counted(async {
            let mut c = self.conn.get();
            let event = WireEvent::Leave {
                i: self.instance.clone(),
                u: user_id.to_owned(),
            };
            let owner =
                serde_json::to_string(instance).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let removed: i64 = self
                .scripts
                .leave
                .key(k_presence(id))
                .arg(user_id)
                .arg(format!("\"instance\":{owner}"))
                .arg(channel(id))
                .arg(to_json(&event))
                .invoke_async(&mut c)
                .await?;
            Ok(removed == 1)
        })
        .await
    }

    /// Publishes a caret in a document: (revision, cursor, anchor).
    pub async fn cursor(
        &self,
        id: &str,
        user_id: &str,
        doc: &str,
        (revision, cursor, anchor): (u64, u64, Option<u64>),
    ) -> Result<()> {
        self.counted(async {
            let mut c = self.conn.get();
            let event = WireEvent::Cursor {
                i: self.instance.clone(),
                u: user_id.to_owned(),
                d: doc.to_owned(),
                r: revision,
                c: cursor,
                a: anchor,
            };
            self.publish_event(&mut c, id, &event).await
        })
        .await
    }

    /// Marks this instance alive for `ttl`; instances that stop doing this
    /// have their users reaped by the others.
    pub async fn heartbeat(&self, ttl: Duration) -> Result<()> {
        self.counted(async {
            let mut c = self.conn.get();
            c.set_ex::<_, _, ()>(k_instance(&self.instance), "1", ttl.as_secs().max(1))
                .await?;
            Ok(())
        })
        .await
    }

    /// Which of these instances are alive.
    async fn alive(&self, instances: &[String]) -> Result<Vec<bool>> {
        self.counted(async {
            if instances.is_empty() {
                return Ok(Vec::new());
            }
            // One request each: on a cluster the heartbeat keys live on
            // different slots, and a pipeline may not cross slots.
            let mut c = self.conn.get();
            let mut alive = Vec::with_capacity(instances.len());
            for i in instances {
                alive.push(c.exists(k_instance(i)).await?);
            }
            Ok(alive)
        })
        .await
    }

    /// Presence records of a room.
    async fn presence(&self, id: &str) -> Result<Vec<PresenceRecord>> {
        self.counted(async {
            let mut c = self.conn.get();
            let raw: std::collections::HashMap<String, String> = c.hgetall(k_presence(id)).await?;
            Ok(raw
                .values()
                .filter_map(|v| serde_json::from_str(v).ok())
                .collect())
        })
        .await
    }

    /// The users of other instances present in the room, after removing
    /// those of instances that stopped beating (killed, not drained): the
    /// ones this call removed are in `left`, the live ones in `present`.
    pub async fn presence_check(&self, id: &str) -> Result<PresenceCheck> {
        let records = self.presence(id).await?;
        let mut instances: Vec<String> = records
            .iter()
            .map(|r| r.instance.clone())
            .filter(|i| *i != self.instance)
            .collect();
        instances.sort();
        instances.dedup();
        let alive = self.alive(&instances).await?;
        let dead: Vec<&String> = instances
            .iter()
            .zip(alive)
            .filter(|(_, a)| !a)
            .map(|(i, _)| i)
            .collect();
        let mut check = PresenceCheck::default();
        for r in records {
            if r.instance == self.instance {
                continue;
            }
            if !dead.contains(&&r.instance) {
                check.present.push(r);
                continue;
            }
            tracing::info!(room = %crate::ids::short(id), user = %r.user.user_id, "reaping a user of a dead instance");
            // Only if the record still names the dead instance: the user may
            // have reconnected elsewhere meanwhile.
            if self.leave_if(id, &r.user.user_id, &r.instance).await? {
                check.left.push(r.user.user_id);
            }
        }
        Ok(check)
    }
}
