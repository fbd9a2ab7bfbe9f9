//! The subcommands, one file each. The interactive editor is in `app`.

pub mod append;
pub mod append_path;
pub mod cat;
pub mod create;
pub mod share;
pub mod watch;
