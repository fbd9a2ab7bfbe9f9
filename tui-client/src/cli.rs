//! The command line: `collab share | create | join | cat | append | watch`,
//! and `config | completions | man`. The server, name, token and the rest
//! come from flags, the environment or the config file (see `settings`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::server_api::{is_valid_room_id, ApiError};

/// The server used when neither `--server` nor `COLLAB_SERVER` is given.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8000";

/// collab: edit code together, in the terminal, in real time.
#[derive(Debug, Parser)]
#[command(
    name = "collab",
    version = crate::VERSION,
    about = "Edit code together, in the terminal, in real time.",
    long_about = "Edit code together, in the terminal, in real time.\n\n\
        `collab share DIR` makes a room of a directory and keeps the files \
        on disk in sync with it; `collab create main.rs` makes a room seeded with main.rs and prints the \
        `collab join ...` command to share; whoever runs it edits the same \
        document, seeing everyone's caret in their color. `cat`, `append` and \
        `watch` reach a room from scripts."
)]
pub struct Cli {
    /// The collab server's base URL [default: the config file's `server`,
    /// else http://127.0.0.1:8000].
    #[arg(long, global = true, env = "COLLAB_SERVER")]
    pub server: Option<String>,

    /// Your display name in rooms [default: the config file's `name`, else
    /// $USER, else "anonymous"].
    #[arg(long, global = true, env = "COLLAB_NAME")]
    pub name: Option<String>,

    /// Sent as `Authorization: Bearer <token>` to the server (REST and
    /// WebSocket), for servers that require it [default: the output of the
    /// config file's `token-command`].
    #[arg(long, global = true, env = "COLLAB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// A PEM file of the CA certificate(s) to trust for an https:// server
    /// (a private CA, a self-signed server) instead of the system's roots.
    #[arg(long, global = true, env = "COLLAB_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,

    /// In the editor, do not put copies on the system clipboard through the
    /// terminal (OSC 52); `COLLAB_OSC52=0` does the same.
    #[arg(long = "no-osc52", global = true)]
    pub no_osc52: bool,

    /// Colours: `auto` follows NO_COLOR and what the terminal shows,
    /// `always` colours even with NO_COLOR set, `never` uses none (bold,
    /// reverse and underline still mark carets and selections).
    #[arg(
        long,
        global = true,
        env = "COLLAB_COLOR",
        value_enum,
        value_name = "WHEN"
    )]
    pub color: Option<ColorChoice>,

    /// The config file [default: $XDG_CONFIG_HOME/collab/config.toml, else
    /// ~/.config/collab/config.toml]; `collab config` shows what it sets.
    #[arg(long, global = true, env = "COLLAB_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// When to use colours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ColorChoice {
    /// Follow NO_COLOR and the terminal.
    #[default]
    Auto,
    /// Always, even with NO_COLOR set.
    Always,
    /// Never.
    Never,
}

impl std::fmt::Display for ColorChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ColorChoice::Auto => "auto",
            ColorChoice::Always => "always",
            ColorChoice::Never => "never",
        })
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Share a directory as a project room, kept in sync on disk.
    ///
    /// Prints how to join it, opens the editor on it, and keeps the files on
    /// disk in sync with the room both ways: colleagues' edits are written
    /// to disk, changes made on disk by any tool reach the room.
    Share(ShareArgs),
    /// Create a room (seeded with FILE when given) and print how to join it.
    Create(CreateArgs),
    /// Open the editor on a room.
    Join(JoinArgs),
    /// Print a room's document exactly as it is (no newline added); in a
    /// project room, the file at PATH.
    Cat {
        /// The room id (or a URL ending in it).
        room: String,
        /// A file of a project room (as `collab share` named it, e.g.
        /// `src/main.rs`) [default: the main document].
        path: Option<String>,
    },
    /// Append TEXT to a room's document as an edit; exits once the server
    /// acknowledged every part of it. Edits an earlier `collab` left
    /// unacknowledged in this room (killed, crashed) go first, so
    /// `collab append ROOM ""` just delivers those.
    Append {
        /// The room id (or a URL ending in it).
        room: String,
        /// The text to append (use $'...' in a shell for line breaks).
        text: String,
        /// Type TEXT one char at a time, waiting this long between chars,
        /// so watchers see it typed.
        #[arg(long, value_name = "N", default_value_t = 0)]
        delay_ms: u64,
        /// In a project room, append to the file at PATH (and show the
        /// caret there) [default: the main document].
        #[arg(long, value_name = "PATH")]
        path: Option<String>,
    },
    /// Print every protocol message the room sends, one JSON object per
    /// line, as a watcher (others see a script; it cannot edit). Reconnects
    /// like the editor when the link drops, saying so on stderr; exits 0 when
    /// interrupted or stdout closes, 1 when the room is gone or the server
    /// refuses it for good. Of a project room it opens the files colleagues
    /// are in, then the others (up to 48), and each new file, so edits in
    /// any file are printed.
    Watch {
        /// The room id (or a URL ending in it).
        room: String,
    },
    /// Print the settings in force and where each came from (flag,
    /// environment, config file, default); the token is never shown.
    Config,
    /// Print the shell completion script for SHELL on stdout.
    ///
    /// bash: `collab completions bash >
    /// ~/.local/share/bash-completion/completions/collab`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout, or with --dir write collab.1
    /// and one page per subcommand into DIR.
    Man {
        /// The directory to write the pages into (made if missing), e.g.
        /// ~/.local/share/man/man1.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// `collab create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// A file whose contents seed the room; Ctrl-S in `collab join` writes
    /// back to it on this machine.
    pub file: Option<PathBuf>,
    /// The language hint [default: guessed from FILE's extension].
    #[arg(long, short)]
    pub language: Option<String>,
    /// Open the editor on the new room right away.
    #[arg(long)]
    pub join: bool,
    /// Print only the room id (for scripts).
    #[arg(long, short)]
    pub quiet: bool,
}

/// `collab share`.
#[derive(Debug, Args)]
pub struct ShareArgs {
    /// The directory to share. `.gitignore`/`.ignore` are honoured and
    /// `.git` skipped (as ripgrep does; hidden files are shared); binary
    /// files and files over --max-file-bytes are skipped and listed.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Do not open the editor: keep DIR in sync (edit it with any editor)
    /// until Ctrl-C or SIGTERM, which write what is pending first.
    #[arg(long)]
    pub no_editor: bool,
    /// Print only the room id (first line), for scripts.
    #[arg(long, short)]
    pub quiet: bool,
    /// Files larger than this are not shared (the server's per-file limit).
    #[arg(long, value_name = "N", default_value_t = crate::disk::scan::DEFAULT_MAX_FILE_BYTES)]
    pub max_file_bytes: u64,
    /// The server's limit on one message (its --max-message-bytes): bigger
    /// changes and new files are sent in pieces under it.
    #[arg(long, value_name = "N", default_value_t = crate::disk::mirror::core::DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,
}

/// `collab join`.
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The room id, or a URL ending in it (`https://host/rooms/ID`, the
    /// `join_url` a colleague sent): a URL also names the server when
    /// --server is not given.
    pub room: String,
    /// The local file Ctrl-S writes [default: the FILE given to `collab
    /// create` for this room on this machine; else Ctrl-S asks].
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Mirror the room's files into DIR and keep them in sync both ways
    /// (to run your own tools on them); DIR must be new, empty, or hold
    /// the same files.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// A room argument may be a bare id or any URL ending in it (`join_url`,
/// `ws_url`): take the last path segment, which must be a room id.
pub fn room_id(arg: &str) -> Result<String, ApiError> {
    let path = arg.split(['?', '#']).next().unwrap_or(arg);
    let id = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path);
    if is_valid_room_id(id) {
        Ok(id.to_owned())
    } else {
        Err(ApiError::InvalidRoomId(arg.to_owned()))
    }
}

/// The server a pasted URL names (`https://host/r/ROOM`, a `join_url` like
/// `https://host/rooms/ROOM`, a `ws_url`): its scheme (ws -> http, wss ->
/// https), host and any path before the room's part; `None` for a bare id.
pub fn server_of(arg: &str) -> Option<String> {
    let (scheme, rest) = arg.split_once("://")?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => "http",
        "https" | "wss" => "https",
        _ => return None,
    };
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() {
        return None;
    }
    let path = format!("/{}", path.trim_end_matches('/'));
    let prefix = ["/rooms/", "/ws/", "/r/"]
        .iter()
        .filter_map(|marker| path.rfind(marker))
        .max()
        .map(|at| &path[..at])
        .unwrap_or_else(|| path.rsplit_once('/').map_or("", |(p, _)| p));
    Some(format!("{scheme}://{host}{prefix}"))
}

/// The server to use: `--server`/`COLLAB_SERVER` when given (`explicit`),
/// else the one a pasted room URL names, else `setting` (the config file's
/// or the default).
pub fn server_for(setting: &str, explicit: bool, room_arg: Option<&str>) -> String {
    match room_arg.and_then(server_of) {
        Some(server) if !explicit => server,
        _ => setting.to_owned(),
    }
}

impl Command {
    /// The room argument, for the commands that take one.
    pub fn room_arg(&self) -> Option<&str> {
        match self {
            Command::Create(_)
            | Command::Share(_)
            | Command::Config
            | Command::Completions { .. }
            | Command::Man { .. } => None,
            Command::Join(a) => Some(&a.room),
            Command::Cat { room, .. } | Command::Append { room, .. } | Command::Watch { room } => {
                Some(room)
            }
        }
    }
}

/// The command that joins `room` on the server at `base`: `--server` only
/// when it is not the default.
pub fn join_command(base: &str, room: &str) -> String {
    match server_arg(base) {
        None => format!("collab join {room}"),
        Some(server) => format!("collab join {room} --server {server}"),
    }
}

/// The server as a share command should name it; `None` for the default.
pub fn server_arg(base: &str) -> Option<&str> {
    (base != DEFAULT_SERVER).then_some(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn room_ids_come_from_ids_or_urls() {
        assert_eq!(room_id("abc").unwrap(), "abc");
        assert_eq!(room_id("http://h:1/rooms/abc").unwrap(), "abc");
        assert_eq!(room_id("ws://h:1/ws/abc/?x=1").unwrap(), "abc");
        let bad = room_id("bad id!").unwrap_err().to_string();
        assert!(bad.starts_with("invalid room id \"bad id!\""), "{bad}");
        assert!(room_id("").is_err());
    }

    #[test]
    fn pasted_urls_name_their_server() {
        assert_eq!(
            server_of("https://collab.example.com/r/abc").as_deref(),
            Some("https://collab.example.com")
        );
        assert_eq!(
            server_of("https://h:8443/collab/rooms/abc").as_deref(),
            Some("https://h:8443/collab")
        );
        assert_eq!(
            server_of("wss://h/ws/abc?x=1").as_deref(),
            Some("https://h")
        );
        assert_eq!(server_of("http://h:1/abc").as_deref(), Some("http://h:1"));
        assert_eq!(server_of("abc"), None);
        assert_eq!(
            server_for(DEFAULT_SERVER, false, Some("https://h/r/abc")),
            "https://h"
        );
        assert_eq!(
            server_for("http://file:1", false, Some("https://h/r/abc")),
            "https://h",
            "a pasted URL beats the config file"
        );
        assert_eq!(
            server_for("http://mine:1", true, Some("https://h/r/abc")),
            "http://mine:1"
        );
        assert_eq!(
            server_for(DEFAULT_SERVER, false, Some("abc")),
            DEFAULT_SERVER
        );
        assert_eq!(room_id("https://h/r/abc").unwrap(), "abc");
    }

    #[test]
    fn share_commands_name_the_server_unless_default() {
        assert_eq!(join_command(DEFAULT_SERVER, "r1"), "collab join r1");
        assert_eq!(
            join_command("http://h:9", "r1"),
            "collab join r1 --server http://h:9"
        );
    }

    #[test]
    fn parses_append_with_delay() {
        let cli = Cli::try_parse_from(["collab", "append", "r1", "hi", "--delay-ms", "5"]).unwrap();
        assert!(matches!(cli.command, Command::Append { delay_ms: 5, .. }));
    }

    #[test]
    fn parses_share_and_paths() {
        let cli = Cli::try_parse_from(["collab", "share", "--no-editor", "-q"]).unwrap();
        let Command::Share(args) = cli.command else {
            panic!("share")
        };
        assert_eq!(args.dir, PathBuf::from("."));
        assert!(args.no_editor && args.quiet);
        let cli = Cli::try_parse_from(["collab", "append", "r1", "--path", "a/b.rs", "x"]).unwrap();
        assert!(matches!(cli.command, Command::Append { path: Some(p), .. } if p == "a/b.rs"));
        let cli = Cli::try_parse_from(["collab", "cat", "r1", "a/b.rs"]).unwrap();
        assert!(matches!(cli.command, Command::Cat { path: Some(_), .. }));
    }
}
