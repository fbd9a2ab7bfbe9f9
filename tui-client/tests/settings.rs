//! The real `collab` binary's settings and the conventions around them:
//! `collab config` with a flag, a variable, the config file and the default
//! each deciding one setting (and the same setting given by all four), the
//! token command reaching a server that wants a token, and the shell
//! completions and man pages.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use collab_server::Config;
use collab_testkit::TestServer;
use common::scratch;

/// `collab` with nothing from the environment that could decide a setting,
/// its config file looked for under `dir`.
fn bare(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_collab"));
    cmd.env("XDG_CONFIG_HOME", dir)
        .env("XDG_STATE_HOME", dir)
        .env("USER", "os-user");
    for var in [
        "COLLAB_SERVER",
        "COLLAB_NAME",
        "COLLAB_TOKEN",
        "COLLAB_CA_CERT",
        "COLLAB_COLOR",
        "COLLAB_CONFIG",
        "COLLAB_OSC52",
        "NO_COLOR",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("collab").join("config.toml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn stdout(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `setting`'s value and source in `collab config`'s output.
fn row<'a>(report: &'a str, setting: &str) -> (&'a str, &'a str) {
    let line = report
        .lines()
        .find(|l| l.split_whitespace().next() == Some(setting))
        .unwrap_or_else(|| panic!("no {setting} in\n{report}"));
    let rest = line[setting.len()..].trim_start();
    let (value, source) = rest.split_once("  ").expect("value and source");
    (value.trim(), source.trim())
}

#[test]
fn config_shows_each_setting_and_its_source() {
    let dir = scratch("config-sources");
    let file = write_config(
        &dir,
        "server = \"http://from-file:1\"\nname = \"file-name\"\n\
         token-command = \"printf '%s-%s' very secret\"\ntheme = \"plain\"\n\
         [keys]\nredo = \"ctrl-shift-z\"\n",
    );
    let report = stdout(
        bare(&dir)
            .args(["config", "--server", "http://from-flag:2"])
            .env("COLLAB_NAME", "env-name"),
    );
    let in_file = format!("file {}", file.display());
    assert_eq!(
        row(&report, "config-file"),
        (file.to_str().unwrap(), "default location")
    );
    assert_eq!(
        row(&report, "server"),
        ("http://from-flag:2", "flag --server")
    );
    assert_eq!(row(&report, "name"), ("env-name", "env COLLAB_NAME"));
    assert_eq!(row(&report, "theme"), ("plain", in_file.as_str()));
    assert_eq!(
        row(&report, "keys.redo"),
        ("ctrl-shift-z", in_file.as_str())
    );
    assert_eq!(row(&report, "color"), ("auto", "default"));
    assert_eq!(row(&report, "osc52"), ("true", "default"));
    let (token, source) = row(&report, "token");
    assert!(token.starts_with("(redacted"), "{token}");
    assert_eq!(source, in_file);
    assert!(
        !report.contains("very-secret"),
        "the command is not run: {report}"
    );
    // A token given by a variable is not shown either.
    let report = stdout(
        bare(&dir)
            .arg("config")
            .env("COLLAB_TOKEN", "env-secret-123"),
    );
    assert_eq!(row(&report, "token"), ("(redacted)", "env COLLAB_TOKEN"));
    assert!(!report.contains("env-secret-123"), "{report}");
}

#[test]
fn flag_beats_environment_beats_file_beats_default() {
    let dir = scratch("config-precedence");
    let file = write_config(&dir, "server = \"http://from-file:1\"\ncolor = \"never\"\n");
    let in_file = format!("file {}", file.display());
    let server = |cmd: &mut Command| {
        let report = stdout(cmd.arg("config"));
        let (value, source) = row(&report, "server");
        (value.to_owned(), source.to_owned())
    };
    // All four.
    let got = server(
        bare(&dir)
            .args(["--server", "http://from-flag:2"])
            .env("COLLAB_SERVER", "http://from-env:3"),
    );
    assert_eq!(got, ("http://from-flag:2".into(), "flag --server".into()));
    // Environment, file, default.
    let got = server(bare(&dir).env("COLLAB_SERVER", "http://from-env:3"));
    assert_eq!(
        got,
        ("http://from-env:3".into(), "env COLLAB_SERVER".into())
    );
    // File, default.
    let got = server(&mut bare(&dir));
    assert_eq!(got, ("http://from-file:1".into(), in_file.clone()));
    // Default only.
    std::fs::remove_file(&file).unwrap();
    let got = server(&mut bare(&dir));
    assert_eq!(got, ("http://127.0.0.1:8000".into(), "default".into()));

    // The same for --color / COLLAB_COLOR, and the name's default is $USER.
    write_config(&dir, "color = \"never\"\n");
    let report = stdout(
        bare(&dir)
            .args(["--color", "always", "config"])
            .env("COLLAB_COLOR", "auto"),
    );
    assert_eq!(row(&report, "color"), ("always", "flag --color"));
    let report = stdout(bare(&dir).arg("config").env("COLLAB_COLOR", "auto"));
    assert_eq!(row(&report, "color"), ("auto", "env COLLAB_COLOR"));
    let report = stdout(bare(&dir).arg("config"));
    assert_eq!(row(&report, "color"), ("never", in_file.as_str()));
    // A path in the file may start at the home directory.
    write_config(&dir, "ca-cert = \"~/ca.pem\"\n");
    let report = stdout(bare(&dir).arg("config").env("HOME", "/home/ann"));
    assert_eq!(
        row(&report, "ca-cert"),
        ("/home/ann/ca.pem", in_file.as_str())
    );
    assert_eq!(row(&report, "name"), ("os-user", "default ($USER)"));
}

#[test]
fn a_bad_config_file_is_one_clear_error() {
    let dir = scratch("config-bad");
    let file = write_config(&dir, "server = \"http://h:1\"\ntoken = \"secret\"\n");
    let out = bare(&dir).arg("config").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(file.to_str().unwrap()), "{err}");
    assert!(
        err.contains("line 2") && err.contains("unknown field `token`"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // A file named with --config must exist.
    let out = bare(&dir)
        .args(["--config", "/nonexistent/collab.toml", "config"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/collab.toml"));
}

#[test]
fn the_token_command_feeds_a_server_that_wants_a_token() {
    const SECRET: &str = "settings-test-secret-0123456789abc";
    let server = TestServer::in_process(Config {
        jwt_secret: Some(SECRET.into()),
        ..Config::default()
    });
    let token = collab_server::auth::Auth::new(SECRET).mint("ann", Duration::from_secs(600));
    let dir = scratch("config-token");
    let token_file = dir.join("token");
    std::fs::write(&token_file, &token).unwrap();
    write_config(
        &dir,
        &format!(
            "server = \"{}\"\ntoken-command = \"cat '{}'\"\n",
            server.http(),
            token_file.display()
        ),
    );
    let room = stdout(bare(&dir).args(["create", "-q"]));
    let room = room.trim();
    stdout(bare(&dir).args(["append", room, "from the room\n"]));
    let text = stdout(bare(&dir).args(["cat", room]));
    assert_eq!(text, "from the room\n");

    // Without the token: refused, as before.
    write_config(&dir, &format!("server = \"{}\"\n", server.http()));
    let out = bare(&dir).args(["cat", room]).output().unwrap();
    assert!(!out.status.success());

    // A failing token command says which and where.
    write_config(
        &dir,
        &format!(
            "server = \"{}\"\ntoken-command = \"false\"\n",
            server.http()
        ),
    );
    let out = bare(&dir).args(["cat", room]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("token-command `false`"), "{err}");
}

#[test]
fn completions_for_every_shell_name_every_subcommand() {
    use clap::CommandFactory;
    let subcommands: Vec<String> = collab::cli::Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    for expected in [
        "share",
        "create",
        "join",
        "cat",
        "append",
        "watch",
        "config",
        "completions",
        "man",
    ] {
        assert!(subcommands.iter().any(|s| s == expected), "{expected}");
    }
    let dir = scratch("completions");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = stdout(bare(&dir).args(["completions", shell]));
        for sub in &subcommands {
            assert!(script.contains(sub.as_str()), "{shell}: no {sub}");
        }
        assert!(script.contains("no-osc52"), "{shell}: no flags");
    }
    // A broken config file does not stop them.
    write_config(&dir, "nonsense = 1\n");
    stdout(bare(&dir).args(["completions", "bash"]));
}

#[test]
fn man_pages_go_to_stdout_or_a_directory() {
    let dir = scratch("man");
    let page = stdout(bare(&dir).arg("man"));
    assert!(
        page.starts_with(".ie") || page.contains(".TH collab 1"),
        "{page}"
    );
    assert!(page.contains(".TH collab 1"));
    assert!(page.contains("share"), "the subcommands are listed");
    let pages = dir.join("man1");
    stdout(bare(&dir).args(["man", "--dir"]).arg(&pages));
    for page in [
        "collab.1",
        "collab-share.1",
        "collab-join.1",
        "collab-config.1",
    ] {
        assert!(pages.join(page).is_file(), "{page} missing");
    }
}
