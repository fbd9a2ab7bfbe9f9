//! `collab`: the terminal editor and script-friendly commands of the collab
//! collaborative editor. `core` and `view` are pure (state, keys, rendering:
//! testable without a terminal or a network); `app`, `net`, `terminal`,
//! `server_api`, `local_state` and `commands` are the imperative shell
//! around them.

pub mod app;
pub mod cli;
pub mod commands;
pub mod core;
pub mod disk;
pub mod journal;
pub mod language;
pub mod local_state;
pub mod net;
pub mod server_api;
pub mod settings;
pub mod terminal;
pub mod tls;
pub mod view;

/// `collab --version`: the crate's version and, when built from a git
/// checkout, its commit (`0.1.0 (a035380)`; see build.rs).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), env!("COLLAB_GIT_SUFFIX"));
