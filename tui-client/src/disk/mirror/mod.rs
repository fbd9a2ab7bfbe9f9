//! The mirror: one headless project client (its own connection and
//! `client_id`) that keeps a directory and a project room in sync both
//! ways. `core` decides everything (what to send, what to write where,
//! how a file changed on disk merges with the room's concurrent edits) and
//! is tested without sockets or files; `shell` moves messages, file system
//! events, timers and bytes.

pub mod core;
pub mod shell;

#[cfg(test)]
mod core_tests;

pub use self::core::{Action, Core, Seen};
pub use self::shell::{
    mirror_name, run, to_stderr, Background, MirrorConfig, Reports, DEFAULT_MAX_OPEN,
};
