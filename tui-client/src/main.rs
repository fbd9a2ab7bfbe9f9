//! The `collab` binary: parses the command line, runs the subcommand, and
//! turns any error into one line on stderr and a non-zero exit (never a
//! panic trace).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use collab::cli::{display_name, room_id, Cli, Command};
use collab::server_api::ServerApi;
use collab::{app, commands};

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
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("collab: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let api = ServerApi::new(&cli.server, cli.token.clone())?;
    let name = display_name(cli.name.as_deref());
    match cli.command {
        Command::Create(args) => {
            let room = commands::create::run(&api, &args).await?;
            if args.join {
                app::run(api, room, name, args.file.clone()).await?;
            }
        }
        Command::Join(args) => app::run(api, room_id(&args.room), name, args.file).await?,
        Command::Cat { room } => commands::cat::run(&api, &room_id(&room)).await?,
        Command::Append {
            room,
            text,
            delay_ms,
        } => {
            let delay = Duration::from_millis(delay_ms);
            commands::append::run(&api, &room_id(&room), &name, &text, delay).await?;
        }
        Command::Watch { room } => commands::watch::run(&api, &room_id(&room), &name).await?,
    }
    Ok(())
}
