//! The `collab` binary against a server that speaks TLS itself, with a CA
//! made in the test: `create` prints a command with the https server,
//! `append` edits over wss:// and `cat` reads over https (from a pasted
//! URL alone, no `--server`); a client trusting another CA gets one clear
//! line; a server with a public URL gets it into the printed command.

mod common;

use std::process::Command;
use std::time::Duration;

use collab_server::tls::TlsFiles;
use collab_server::Config;
use collab_testkit::{TestCa, TestServer};
use common::{collab, scratch};

const SECRET: &str = "tls-client-test-secret-0123456789";

fn tls_server(ca: &mut TestCa, public_url: Option<String>) -> TestServer {
    let issued = ca.issue();
    TestServer::in_process(Config {
        tls: Some(TlsFiles {
            cert: issued.cert,
            key: issued.key,
        }),
        public_url,
        jwt_secret: Some(SECRET.into()),
        ..Config::default()
    })
}

fn https(server: &TestServer) -> String {
    let port = server.addr.rsplit(':').next().unwrap();
    format!("https://localhost:{port}")
}

fn token() -> String {
    collab_server::auth::Auth::new(SECRET).mint("ann", Duration::from_secs(600))
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn collab_edits_over_wss_and_reads_over_https_with_a_private_ca() {
    let mut ca = TestCa::new("client");
    let server = tls_server(&mut ca, None);
    let base = https(&server);
    let dir = scratch("tls");
    let with_ca = |cmd: &mut Command| {
        cmd.arg("--ca-cert")
            .arg(&ca.cert)
            .env("COLLAB_TOKEN", token());
    };

    let mut create = collab(&base, &dir);
    with_ca(create.arg("create"));
    let (ok, out, err) = run(&mut create);
    assert!(ok, "{err}");
    let share = out
        .lines()
        .find(|l| l.trim_start().starts_with("collab join"))
        .expect("a share command")
        .trim()
        .to_owned();
    assert!(share.ends_with(&format!("--server {base}")), "{share}");
    let room = share.split_whitespace().nth(2).unwrap().to_owned();

    for text in ["hello", " over TLS"] {
        let mut append = collab(&base, &dir);
        with_ca(append.args(["append", &room, text]));
        let (ok, _, err) = run(&mut append);
        assert!(ok, "{err}");
    }
    // A pasted URL names the server: no --server needed.
    let mut cat = Command::new(env!("CARGO_BIN_EXE_collab"));
    cat.env("XDG_STATE_HOME", &dir).env_remove("COLLAB_SERVER");
    with_ca(cat.args(["cat", &format!("{base}/rooms/{room}")]));
    let (ok, out, err) = run(&mut cat);
    assert!(ok, "{err}");
    assert_eq!(out, "hello over TLS");

    // Another CA: refused, in one line that says what to do.
    let other = TestCa::new("other");
    let mut cat = collab(&base, &dir);
    cat.arg("--ca-cert")
        .arg(&other.cert)
        .env("COLLAB_TOKEN", token())
        .args(["cat", &room]);
    let (ok, _, err) = run(&mut cat);
    assert!(!ok);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("certificate does not verify"), "{err}");
    assert!(err.contains("--ca-cert"), "{err}");
    // The system's roots do not know the test CA either.
    let mut cat = collab(&base, &dir);
    cat.env("COLLAB_TOKEN", token()).args(["cat", &room]);
    let (ok, _, err) = run(&mut cat);
    assert!(!ok && err.contains("certificate does not verify"), "{err}");
}

#[test]
fn the_share_command_names_the_public_url() {
    let mut ca = TestCa::new("public");
    let server = tls_server(&mut ca, Some("https://collab.example.com".into()));
    let dir = scratch("public");
    let mut create = collab(&https(&server), &dir);
    create
        .arg("--ca-cert")
        .arg(&ca.cert)
        .env("COLLAB_TOKEN", token())
        .arg("create");
    let (ok, out, err) = run(&mut create);
    assert!(ok, "{err}");
    assert!(
        out.contains("--server https://collab.example.com\n"),
        "{out}"
    );
}
