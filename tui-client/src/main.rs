//! The `collab` binary: parses the command line, runs the subcommand, and
//! turns any error into one line on stderr and a non-zero exit (never a
//! panic trace). An editor ended by a signal exits with 128 + its number,
//! as shells expect.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use collab::app::{self, Outcome, Session};
use collab::cli::{room_id, server_arg, Cli, ColorChoice, Command};
use collab::commands;
use collab::disk::mirror::Background;
use collab::server_api::ServerApi;
use collab::settings::{Settings, Source, Theme};

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // clap's own help and errors follow --color too (it reads NO_COLOR
    // itself).
    let clap_color = match early_color(&argv) {
        Some(ColorChoice::Never) => clap::ColorChoice::Never,
        Some(ColorChoice::Always) => clap::ColorChoice::Always,
        _ => clap::ColorChoice::Auto,
    };
    let matches = Cli::command().color(clap_color).get_matches_from(&argv);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    let result = runtime
        .context("cannot start the async runtime")
        .and_then(|rt| rt.block_on(dispatch(cli, &matches)));
    match result {
        Ok(Outcome::Quit) => ExitCode::SUCCESS,
        Ok(Outcome::Signal { number, unsent }) => {
            app::report_signal(unsent);
            ExitCode::from(128 + number as u8)
        }
        Err(e) => {
            eprintln!("collab: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--color`'s value as far as it can be told before parsing (for clap's
/// own output): the flag, else `COLLAB_COLOR`.
fn early_color(argv: &[std::ffi::OsString]) -> Option<ColorChoice> {
    let value = argv
        .iter()
        .zip(argv.iter().skip(1))
        .find_map(|(a, b)| (a == "--color").then(|| b.to_string_lossy().into_owned()))
        .or_else(|| {
            argv.iter().find_map(|a| {
                a.to_str()
                    .and_then(|a| a.strip_prefix("--color="))
                    .map(str::to_owned)
            })
        })
        .or_else(|| std::env::var("COLLAB_COLOR").ok())?;
    <ColorChoice as clap::ValueEnum>::from_str(&value, true).ok()
}

async fn dispatch(cli: Cli, matches: &ArgMatches) -> anyhow::Result<Outcome> {
    // These need no settings, so a broken config file cannot stop them.
    match &cli.command {
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(*shell, &mut cmd, "collab", &mut std::io::stdout());
            return Ok(Outcome::Quit);
        }
        Command::Man { dir } => {
            man(dir.as_deref())?;
            return Ok(Outcome::Quit);
        }
        _ => {}
    }
    let settings = Settings::resolve(&cli, matches, |k| std::env::var(k).ok())?;
    if let Command::Config = cli.command {
        print!("{}", settings.report());
        return Ok(Outcome::Quit);
    }
    let explicit = matches!(settings.server.source, Source::Flag(_) | Source::Env(_));
    let server = collab::cli::server_for(&settings.server.value, explicit, cli.command.room_arg());
    let api = ServerApi::with_ca(
        &server,
        settings.token()?,
        settings.ca_cert.value.as_deref(),
    )?;
    let name = settings.name.value.clone();
    let osc52 = settings.osc52.value;
    let depth = collab::terminal::color_depth_for(settings.color.value, |k| std::env::var(k).ok());
    let plain = settings.theme.value == Theme::Plain;
    let key_overrides = settings.key_overrides();
    let session = |room: String, file| Session {
        join_commands: Vec::new(),
        disk_reports: None,
        osc52,
        depth,
        plain,
        key_overrides: key_overrides.clone(),
        server_arg: server_arg(&api.base()).map(str::to_owned),
        api: api.clone(),
        room,
        name: name.clone(),
        file,
    };
    match cli.command {
        Command::Share(args) => {
            if let Some(shared) = commands::share::run(&api, &args, &name).await? {
                let session = Session {
                    join_commands: shared.join_lines,
                    ..session(shared.room, None)
                };
                return editor(session, Some(shared.mirror)).await;
            }
        }
        Command::Create(args) => {
            let room = commands::create::run(&api, &args).await?;
            if args.join {
                return editor(session(room, args.file.clone()), None).await;
            }
        }
        Command::Join(args) => {
            let room = room_id(&args.room)?;
            let mirror = match &args.dir {
                Some(dir) => Some(commands::share::join_dir(&api, &room, dir, &name).await?),
                None => None,
            };
            return editor(session(room, args.file), mirror).await;
        }
        Command::Cat { room, path } => {
            commands::cat::run(&api, &room_id(&room)?, path.as_deref()).await?
        }
        Command::Append {
            room,
            text,
            delay_ms,
            path,
        } => {
            let delay = Duration::from_millis(delay_ms);
            let room = room_id(&room)?;
            match path {
                Some(path) => {
                    commands::append_path::run(&api, &room, &path, &name, &text, delay).await?
                }
                None => commands::append::run(&api, &room, &name, &text, delay).await?,
            }
        }
        Command::Watch { room } => commands::watch::run(&api, &room_id(&room)?, &name).await?,
        Command::Config | Command::Completions { .. } | Command::Man { .. } => {}
    }
    Ok(Outcome::Quit)
}

/// `collab man`: the page on stdout, or every page into `dir`.
fn man(dir: Option<&std::path::Path>) -> anyhow::Result<()> {
    let cmd = Cli::command();
    match dir {
        None => clap_mangen::Man::new(cmd)
            .render(&mut std::io::stdout())
            .context("cannot write the man page"),
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(cmd, dir))
            .with_context(|| format!("cannot write the man pages into {}", dir.display())),
    }
}

/// The editor on `session`, with a disk mirror running beside it when the
/// room's files are kept on disk (stopped, its writes done, after it).
async fn editor(mut session: Session, mirror: Option<Background>) -> anyhow::Result<Outcome> {
    session.disk_reports = mirror.as_ref().map(Background::reports);
    let outcome = app::run(session).await;
    if let Some(mirror) = mirror {
        mirror.finish().await;
    }
    outcome
}
