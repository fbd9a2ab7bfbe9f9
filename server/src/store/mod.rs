//! Where rooms live. In memory (the default: the room task itself is the
//! authority and nothing else is needed) or in Redis (`REDIS_URL`), where
//! several server instances share rooms; all Redis specifics are in
//! [`redis`].

pub mod redis;

use std::sync::Arc;

pub use self::redis::{RedisStore, StoreError};

/// The storage behind the rooms of this server.
#[derive(Clone)]
pub enum Backend {
    /// Rooms live only in this process.
    Memory,
    /// Rooms live in Redis, shared with other instances.
    Redis(Arc<RedisStore>),
}

impl Backend {
    /// The Redis store, if that is the backend.
    pub fn redis(&self) -> Option<&Arc<RedisStore>> {
        match self {
            Backend::Memory => None,
            Backend::Redis(r) => Some(r),
        }
    }

    /// True when the store can be reached.
    pub async fn healthy(&self) -> bool {
        match self {
            Backend::Memory => true,
            Backend::Redis(r) => r.healthy().await,
        }
    }
}
