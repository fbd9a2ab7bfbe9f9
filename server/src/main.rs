//! `collab-server`: parses the command line (with its `--config` file, see
//! `collab_server::config_file`), sets up logging, and runs the server
//! library until SIGINT or SIGTERM. The subcommands print a token, shell
//! completions, man pages or README's settings table.

use std::process::ExitCode;

use anyhow::Context;
use collab_server::auth::Auth;
use collab_server::cli::{self, Cmd, LogFormat};
use collab_server::config_file::{self, ParseError};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let args = match config_file::parse_from(std::env::args_os()) {
        Ok(args) => args,
        Err(ParseError::Clap(e)) => e.exit(),
        Err(e) => {
            eprintln!("collab-server: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match args.command {
        Some(cmd) => other(cmd),
        None => serve(args.serve),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("collab-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The subcommands: each prints something and exits.
fn other(cmd: Cmd) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match cmd {
        Cmd::Token {
            sub,
            ttl,
            jwt_secret,
        } => writeln!(out, "{}", Auth::new(&jwt_secret).mint(&sub, ttl))?,
        Cmd::Completions { shell } => out.write_all(&cli::completions(cli::command(), shell))?,
        Cmd::Man { dir } => {
            cli::man(cli::command(), dir.as_deref(), &mut out).with_context(|| match &dir {
                Some(dir) => format!("cannot write the man pages into {}", dir.display()),
                None => "cannot write the man page".to_owned(),
            })?
        }
        Cmd::Openapi => {
            let doc = collab_server::openapi_description()
                .to_pretty_json()
                .context("cannot render the OpenAPI description")?;
            writeln!(out, "{doc}")?
        }
        Cmd::SettingsTable => out.write_all(cli::settings_table().as_bytes())?,
    }
    Ok(())
}

#[tokio::main]
async fn serve(a: cli::ServeArgs) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colours = a.color.colours(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        std::env::var("NO_COLOR").ok().as_deref(),
    );
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colours)
        .with_writer(std::io::stderr);
    match a.log_format {
        LogFormat::Human => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let config = a.to_config()?;
    let addr = a.addr();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().context("listener has no address")?;
    let auth = if config.jwt_secret.is_some() {
        "on"
    } else {
        "off"
    };
    tracing::info!(%local, auth, "collab-server listening");
    println!("listening on {local}");
    collab_server::run(listener, config, shutdown_signal())
        .await
        .context("server failed")
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
