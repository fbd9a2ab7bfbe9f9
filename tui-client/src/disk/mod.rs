//! A project directory on disk kept in step with a project room: which
//! files of a directory are shared (`scan`), the edit that turns one text
//! into another (`diff`), atomic writes that keep a file's permissions
//! (`write`), and the mirror, a headless project client that keeps the
//! directory and the room in sync both ways (`mirror`: a pure core that
//! decides, and an async shell that moves bytes, events and messages).

pub mod diff;
pub mod mirror;
pub mod scan;
pub mod write;
