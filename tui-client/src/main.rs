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
        osc52,
        server_arg: server_arg(&api.base()).map(str::to_owned),
        api: api.clone(),
        room,
        name: name.clone(),
        file,
    };
    match cli.command {
        Command::Create(args) => {
            let room = commands::create::run(&api, &args).await?;
            if args.join {
                return app::run(session(room, args.file.clone())).await;
            }
        }
        Command::Join(args) => return app::run(session(room_id(&args.room)?, args.file)).await,
        Command::Cat { room } => commands::cat::run(&api, &room_id(&room)?).await?,
        Command::Append {
            room,
            text,
            delay_ms,
        } => {
            let delay = Duration::from_millis(delay_ms);
            commands::append::run(&api, &room_id(&room)?, &name, &text, delay).await?;
        }
        Command::Watch { room } => commands::watch::run(&api, &room_id(&room)?, &name).await?,
    }
    Ok(Outcome::Quit)
}
