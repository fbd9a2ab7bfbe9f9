//! The pure core: editor state, key handling, document synchronization and
//! reconnect policy. Nothing here touches a terminal, a socket or a file,
//! so all of it runs in unit tests.

pub mod chat;
pub mod columns;
pub mod doc_sync;
pub mod editor;
pub mod keymap;
pub mod presence;
pub mod recent;
pub mod search;
pub mod syntax;
pub mod text_layout;
pub mod undo;
pub mod words;

#[cfg(test)]
pub(crate) mod editor_tests;
#[cfg(test)]
mod find_tests;
#[cfg(test)]
pub(crate) mod project_tests;
#[cfg(test)]
mod workflow_tests;
