//! The room's chat and typing indicators in Redis: a chat message is
//! numbered, kept (the last `CHAT_KEPT`, with the room's TTL) and published
//! in one script, so every instance receives the messages in the order of
//! their numbers; typing is published only (ephemeral, like carets).

use collab_protocol::{ChatMessage, CHAT_KEPT};

use super::keys::{channel, k_chat, k_meta};
use super::wire::{to_json, WireEvent};
use super::{RedisStore, Result};
use crate::store::StoreError;

/// How a message's stored form begins before the script numbers it.
const UNNUMBERED: &str = r#"{"seq":0,"#;

impl RedisStore {
    /// Numbers, keeps and publishes a chat message (its `seq` is ignored).
    pub async fn chat(&self, id: &str, msg: &ChatMessage) -> Result<()> {
        let json = to_json(&ChatMessage {
            seq: 0,
            ..msg.clone()
        });
        debug_assert!(json.starts_with(UNNUMBERED), "{json}");
        self.counted(async {
            let mut c = self.conn.get();
            let seq: i64 = self
                .scripts
                .chat
                .key(k_meta(id))
                .key(k_chat(id))
                .arg(json)
                .arg(self.ttl_ms())
                .arg(channel(id))
                .arg(self.instance())
                .arg(CHAT_KEPT)
                .invoke_async(&mut c)
                .await?;
            if seq < 0 {
                return Err(StoreError::Unavailable("the room is gone".into()));
            }
            Ok(())
        })
        .await
    }

    /// The kept chat messages numbered after `after`, oldest first.
    pub async fn chat_since(&self, id: &str, after: u64) -> Result<Vec<ChatMessage>> {
        self.counted(async {
            let mut c = self.conn.get();
            let kept: Vec<String> = self
                .scripts
                .chat_since
                .key(k_meta(id))
                .key(k_chat(id))
                .arg(after)
                .arg(CHAT_KEPT)
                .invoke_async(&mut c)
                .await?;
            let mut chat = parse_chat(&kept);
            chat.retain(|m| m.seq > after);
            Ok(chat)
        })
        .await
    }

    /// Tells the other instances that a user is typing in the chat (`doc`
    /// `None`) or editing a document.
    pub async fn typing(&self, id: &str, user_id: &str, doc: Option<&str>) -> Result<()> {
        self.counted(async {
            let mut c = self.conn.get();
            let event = WireEvent::Typing {
                i: self.instance().to_owned(),
                u: user_id.to_owned(),
                d: doc.map(str::to_owned),
            };
            self.publish_event(&mut c, id, &event).await
        })
        .await
    }
}

/// Kept messages as read; an unreadable one is skipped (and logged), not
/// allowed to hide the rest of the conversation.
pub(super) fn parse_chat(kept: &[String]) -> Vec<ChatMessage> {
    kept.iter()
        .filter_map(|m| match serde_json::from_str(m) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(error = %e, "unreadable chat message in redis; skipped");
                None
            }
        })
        .collect()
}
