//! The subcommands, one file each. The interactive editor is in `app`.

pub mod append;
pub mod append_path;
pub mod cat;
pub mod create;
pub mod share;
pub mod watch;

/// Keeps the owner token `POST /rooms` answered for `room` (servers before
/// owners existed answer none) in the local state directory; returns what
/// to tell the user about it. The token itself is never printed.
pub fn keep_owner_token(room: &str, token: Option<&str>) -> Option<String> {
    let token = token?;
    let Some(tokens) = crate::local_state::OwnerTokens::default_location() else {
        eprintln!("collab: warning: no state directory (no HOME): the owner token is not kept");
        return None;
    };
    match tokens.set(room, token) {
        Ok(()) => Some(format!(
            "You own this room: its owner token is kept in {} (readable by you only). \
             The editor started from here has the owner's controls (Alt-O).",
            tokens.path().display()
        )),
        Err(e) => {
            eprintln!("collab: warning: the owner token is not kept: {e:#}");
            None
        }
    }
}
