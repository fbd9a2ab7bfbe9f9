//! `collab create [FILE]`: makes a room and tells how to share it.

use anyhow::Context;

use crate::cli::{join_command, CreateArgs};
use crate::language;
use crate::local_state::RoomFiles;
use crate::server_api::ServerApi;

/// Creates the room; returns its id.
pub async fn run(api: &ServerApi, args: &CreateArgs) -> anyhow::Result<String> {
    let code = match &args.file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => String::new(),
    };
    let language = args
        .language
        .clone()
        .or_else(|| args.file.as_deref().map(|f| language::guess(f).to_owned()))
        .unwrap_or_else(|| "plaintext".into());
    // The file's name is its path in the room (a project of one file).
    let name = args
        .file
        .as_deref()
        .and_then(|f| f.file_name())
        .and_then(|n| n.to_str())
        .filter(|n| collab_protocol::paths::check(n).is_ok());
    let created = api.create_room(&code, &language, name).await?;
    // The server's public address (its --public-url) when it has one: the
    // command must work for a colleague on another machine.
    let base = crate::cli::server_of(&created.join_url).unwrap_or_else(|| api.base());
    let room = created.room_id;
    let kept = crate::commands::keep_owner_token(&room, created.owner_token.as_deref());
    if let (Some(file), Some(files)) = (&args.file, RoomFiles::default_location()) {
        // Not fatal: only `join`'s default for --file depends on it.
        if let Err(e) = files.set(&room, file) {
            eprintln!("collab: warning: {e:#}");
        }
    }
    if args.quiet {
        println!("{room}");
    } else {
        println!("Created room {room} ({language}).");
        println!("Share this command to edit together:");
        println!();
        println!("    {}", join_command(&base, &room));
        println!();
        if let Some(viewer) = &created.read_only_id {
            println!("Or, to let someone watch without editing:");
            println!();
            println!("    {}", join_command(&base, viewer));
            println!();
        }
        if let Some(note) = kept {
            println!("{note}");
        }
    }
    Ok(room)
}
