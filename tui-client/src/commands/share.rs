//! `collab share [DIR]`: makes a project room from a directory (the files
//! `disk::scan` picks; what it leaves out is listed on stderr with why),
//! prints how to join it, and keeps the directory in sync with the room
//! through the disk mirror: beside the editor, or alone with
//! `--no-editor` until Ctrl-C or SIGTERM.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use collab_protocol::rest::NewFile;

use crate::cli::{join_command, ShareArgs};
use crate::disk::mirror::{self, Background, MirrorConfig, DEFAULT_MAX_OPEN};
use crate::disk::scan;
use crate::server_api::ServerApi;

/// The commands that join a shared room: to edit, and (when the server
/// gave a read-only id) to watch. The editor's F1 help shows these.
pub fn join_lines(base: &str, room: &str, read_only_id: Option<&str>) -> Vec<String> {
    let mut lines = vec![join_command(base, room)];
    if let Some(viewer) = read_only_id {
        lines.push(format!("{} (read-only)", join_command(base, viewer)));
    }
    lines
}

/// A shared directory, for the editor to open beside its mirror.
pub struct Shared {
    /// The room.
    pub room: String,
    /// The join commands printed (F1 help shows them).
    pub join_lines: Vec<String>,
    /// The mirror, running in the background.
    pub mirror: Background,
}

/// Shares `args.dir`. With `--no-editor`, mirrors it until interrupted and
/// returns `None`; else returns the room, its join commands and the mirror
/// running in the background, for the editor to open beside it.
pub async fn run(api: &ServerApi, args: &ShareArgs, name: &str) -> anyhow::Result<Option<Shared>> {
    let dir = &args.dir;
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let found = scan::scan(dir, args.max_file_bytes);
    for s in &found.skipped {
        eprintln!("collab: not shared: {}: {}", s.path, s.why);
    }
    if found.files.is_empty() {
        bail!(
            "{} holds no text file to share (see what was skipped above)",
            dir.display()
        );
    }
    let mut found = found;
    main_first(&mut found.files);
    let files: Vec<NewFile> = found
        .files
        .iter()
        .map(|f| NewFile {
            path: f.path.clone(),
            code: f.text.clone(),
            language: None,
        })
        .collect();
    let count = files.len();
    let created = api
        .create_project(files)
        .await
        .context("cannot create the room")?;
    let room = created.room_id.clone();
    // The server as the room's own URLs name it (`--public-url` on the
    // server), so a colleague on another machine can paste the command.
    let base = crate::cli::server_of(&created.join_url).unwrap_or_else(|| api.base());
    let lines = join_lines(&base, &room, created.read_only_id.as_deref());
    let kept = crate::commands::keep_owner_token(&room, created.owner_token.as_deref());
    if args.quiet {
        println!("{room}");
    } else {
        println!(
            "Sharing {} as room {room} ({count} file{}).",
            dir.display(),
            if count == 1 { "" } else { "s" }
        );
        println!("Share this command to edit together:");
        println!();
        println!("    {}", lines[0]);
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
    let on_disk: BTreeMap<String, String> =
        found.files.into_iter().map(|f| (f.path, f.text)).collect();
    let cfg = MirrorConfig {
        api: api.clone(),
        room: room.clone(),
        name: name.to_owned(),
        root: dir.clone(),
        max_file_bytes: args.max_file_bytes,
        max_open: DEFAULT_MAX_OPEN,
        max_message_bytes: args.max_message_bytes,
        on_disk,
    };
    if args.no_editor {
        if !args.quiet {
            eprintln!(
                "collab: keeping {} in sync with the room; Ctrl-C stops",
                dir.display()
            );
        }
        mirror::run(cfg, interrupted(), mirror::to_stderr()).await?;
        return Ok(None);
    }
    Ok(Some(Shared {
        room,
        join_lines: lines,
        mirror: Background::spawn(cfg),
    }))
}

/// Puts the file that should be the room's main document (the one a
/// one-file client sees) first: the top-level README, else the first path.
fn main_first(files: &mut [scan::Found]) {
    let readme = files
        .iter()
        .position(|f| f.path.eq_ignore_ascii_case("README.md") || f.path == "README");
    if let Some(i) = readme {
        files[..=i].rotate_right(1);
    }
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
pub async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Mirrors room `room` into `dir` for `collab join --dir`: writes every
/// file (refusing, before writing anything, when `dir` holds a different
/// file at one of their paths, or a file the room does not have), then
/// starts the mirror in the background.
pub async fn join_dir(
    api: &ServerApi,
    room: &str,
    dir: &Path,
    name: &str,
) -> anyhow::Result<Background> {
    let listing = api.files(room).await?;
    let mut texts = BTreeMap::new();
    for f in &listing.files {
        // Deleted between the listing and now: the mirror hears of it.
        if let Some(text) = api.file(room, &f.path).await? {
            texts.insert(f.path.clone(), text);
        }
    }
    let differ: Vec<&str> = texts
        .iter()
        .filter(|(path, text)| {
            let p = scan::disk_path(dir, path);
            p.exists() && std::fs::read(&p).ok().as_deref() != Some(text.as_bytes())
        })
        .map(|(path, _)| path.as_str())
        .collect();
    // Files the room does not have would be shared into it by the mirror:
    // only a directory that is new, empty (but for ignored files) or a copy
    // of the room is taken.
    let extra: Vec<String> = if dir.is_dir() {
        scan::scan(dir, scan::DEFAULT_MAX_FILE_BYTES)
            .files
            .into_iter()
            .map(|f| f.path)
            .filter(|p| !texts.contains_key(p))
            .collect()
    } else {
        Vec::new()
    };
    if !extra.is_empty() {
        bail!(
            "{} holds files the room does not have ({}); join into an empty or new directory",
            dir.display(),
            extra.join(", ")
        );
    }
    if !differ.is_empty() {
        bail!(
            "{} already holds different files at {}; join into an empty or new directory",
            dir.display(),
            differ.join(", ")
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (path, text) in &texts {
        let p = scan::disk_path(dir, path);
        crate::disk::write::write_atomic(&p, text)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(Background::spawn(MirrorConfig {
        api: api.clone(),
        room: room.to_owned(),
        name: name.to_owned(),
        root: dir.to_path_buf(),
        max_file_bytes: scan::DEFAULT_MAX_FILE_BYTES,
        max_open: DEFAULT_MAX_OPEN,
        max_message_bytes: crate::disk::mirror::core::DEFAULT_MAX_MESSAGE_BYTES,
        on_disk: texts,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_is_the_main_document_and_join_lines_name_both_ids() {
        let found = |p: &str| scan::Found {
            path: p.into(),
            text: String::new(),
        };
        let mut files = vec![
            found(".gitignore"),
            found("README.md"),
            found("src/main.rs"),
        ];
        main_first(&mut files);
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["README.md", ".gitignore", "src/main.rs"]);
        let mut files = vec![found("a.rs"), found("docs/README.md")];
        main_first(&mut files);
        assert_eq!(files[0].path, "a.rs");
        assert_eq!(
            join_lines("http://h:9", "r1", Some("v1")),
            [
                "collab join r1 --server http://h:9",
                "collab join v1 --server http://h:9 (read-only)"
            ]
        );
    }
}
