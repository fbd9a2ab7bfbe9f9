//! The subcommands, one file each. The interactive editor is in `app`.

pub mod append;
pub mod cat;
pub mod create;
pub mod watch;
