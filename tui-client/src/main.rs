//! The `collab` binary: parses the command line, runs the subcommand, and
//! turns any error into one line on stderr and a non-zero exit (never a
//! panic trace). An editor ended by a signal exits with 128 + its number,
//! as shells expect.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use collab::app::{self, Outcome, Session};
use collab::cli::{display_name, room_id, server_arg, Cli, Command};
use collab::commands;
use collab::disk::mirror::Background;
use collab::server_api::ServerApi;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    let result = runtime
        .context("cannot start the async runtime")
        .and_then(|rt| rt.block_on(dispatch(cli)));
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

async fn dispatch(cli: Cli) -> anyhow::Result<Outcome> {
    let server = collab::cli::server_for(&cli.server, cli.command.room_arg());
    let api = ServerApi::with_ca(&server, cli.token.clone(), cli.ca_cert.as_deref())?;
    let name = display_name(cli.name.as_deref());
    let osc52 = collab::terminal::osc52_enabled(
        cli.no_osc52,
        std::env::var("COLLAB_OSC52").ok().as_deref(),
    );
    let session = |room: String, file| Session {
        join_commands: Vec::new(),
        disk_reports: None,
        osc52,
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
    }
    Ok(Outcome::Quit)
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
