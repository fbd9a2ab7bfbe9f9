//! The script-friendly commands, run as the real `collab` binary against the
//! real server: create, cat, append, watch, and the error exits.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use collab_protocol::Role;
use collab_testkit::{Proxy, TestServer};
use common::{collab, poll, scratch};

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn create_quiet_prints_the_id_and_seeds_the_room() {
    let server = TestServer::in_process(Default::default());
    let dir = scratch("create");
    let file = dir.join("main.rs");
    std::fs::write(&file, "fn main() {}\n").unwrap();
    let out = collab(&server.http(), &dir)
        .args(["create", "-q"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let room = stdout.trim_end_matches('\n');
    assert_eq!(room.len(), 22, "only the id: {stdout:?}");
    assert!(room.chars().all(|c| c.is_ascii_alphanumeric()));
    let state = server.blocking().room(room).expect("the room");
    assert_eq!(state.code, "fn main() {}\n");
    assert_eq!(state.language, "rust");
    // The file is remembered for `join --file`'s default.
    let remembered = std::fs::read_to_string(dir.join("collab/rooms.json")).unwrap();
    assert!(remembered.contains(room) && remembered.contains("main.rs"));
}

#[test]
fn create_prints_the_command_to_share() {
    let server = TestServer::in_process(Default::default());
    let dir = scratch("share");
    let out = collab(&server.http(), &dir)
        .args(["create", "--language", "python"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout
        .lines()
        .find(|l| l.contains("collab join"))
        .expect("a join command");
    let expected_tail = format!("--server {}", server.http());
    assert!(line.trim_end().ends_with(&expected_tail), "{line}");
    let room = line.split_whitespace().nth(2).unwrap();
    let language = |id: &str| server.blocking().room(id).expect("the room").language;
    assert_eq!(language(room), "python");
    // The second command joins read-only: another id, the same room.
    let joins: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("collab join"))
        .collect();
    assert_eq!(joins.len(), 2, "{stdout}");
    assert!(stdout.contains("watch without editing"), "{stdout}");
    let viewer = joins[1].split_whitespace().nth(2).unwrap();
    assert_ne!(viewer, room);
    assert_eq!(language(viewer), "python");
}

#[test]
fn cat_is_byte_exact() {
    let server = TestServer::in_process(Default::default());
    let dir = scratch("cat");
    let text = "héllo 世界\r\n\te\u{301} 😀 no newline at the end";
    let room = server.blocking().create_room(text);
    let out = collab(&server.http(), &dir)
        .args(["cat", &room])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, text.as_bytes());
}

#[test]
fn append_round_trips_multibyte_text() {
    let server = TestServer::in_process(Default::default());
    let dir = scratch("append");
    let room = server.blocking().create_room("start ");
    let out = collab(&server.http(), &dir)
        .args(["append", &room, "ünï 界 😀\nend"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(server.blocking().code(&room), "start ünï 界 😀\nend");
    let cat = collab(&server.http(), &dir)
        .args(["cat", &room])
        .output()
        .unwrap();
    assert_eq!(cat.stdout, "start ünï 界 😀\nend".as_bytes());
}

#[test]
fn append_with_delay_types_each_char() {
    let server = TestServer::in_process(Default::default());
    let dir = scratch("delay");
    let room = server.blocking().create_room("");
    let started = std::time::Instant::now();
    let out = collab(&server.http(), &dir)
        .args(["append", &room, "a界c😀", "--delay-ms", "40"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        started.elapsed() >= Duration::from_millis(120),
        "it waited between chars"
    );
    assert_eq!(server.blocking().code(&room), "a界c😀");
    // One revision per char (nothing was sent at once).
    assert_eq!(server.blocking().room(&room).expect("the room").revision, 4);
}

#[test]
fn concurrent_appends_all_land() {
    let server = TestServer::in_process(Default::default());
    let dir = scratch("concurrent");
    let room = server.blocking().create_room("");
    let children: Vec<_> = ["xxxx", "yyyy"]
        .iter()
        .map(|t| {
            collab(&server.http(), &dir)
                .args(["append", &room, t, "--delay-ms", "15"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let code = server.blocking().code(&room);
    assert_eq!(code.len(), 8, "{code}");
    assert_eq!(code.matches('x').count(), 4);
    assert_eq!(code.matches('y').count(), 4);
}

/// Starts `collab watch ROOM` against `url`; returns it and its stdout lines.
fn watch(
    url: &str,
    room: &str,
    dir: &std::path::Path,
) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut watcher = collab(url, dir)
        .args(["watch", room])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = watcher.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (watcher, rx)
}

/// Kills `child`; its status and stderr.
fn stopped(mut child: std::process::Child) -> (std::process::ExitStatus, String) {
    let _ = child.kill();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status, err)
}

#[test]
fn watch_prints_another_clients_edit_as_json_lines() {
    let server = TestServer::in_process(Default::default());
    let dir = scratch("watch");
    let room = server.blocking().create_room("abc");
    let (mut watcher, rx) = watch(&server.http(), &room, &dir);
    let first = rx.recv_timeout(Duration::from_secs(10)).expect("init line");
    let init: serde_json::Value = serde_json::from_str(&first).expect("one JSON object per line");
    assert_eq!(init["type"], "init");
    assert_eq!(init["code"], "abc");

    let out = collab(&server.http(), &dir)
        .args(["append", &room, "!"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let update = poll(Duration::from_secs(10), || {
        let line = rx.recv_timeout(Duration::from_millis(100)).ok()?;
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
        (v["type"] == "code_update").then_some(v)
    })
    .expect("the edit is printed");
    assert_eq!(update["operation"], serde_json::json!([3, "!"]));
    let _ = watcher.kill();
    let _ = watcher.wait();
}

#[test]
fn watch_reconnects_when_the_link_drops_and_says_so() {
    let mut server = TestServer::in_process(Default::default());
    let proxy = Proxy::in_front_of(&server);
    let dir = scratch("watch-ends");
    let room = server.blocking().create_room("abc");

    // The connection drops without a close frame: watch says so on stderr,
    // reconnects, and prints the new connection's init.
    let (child, rx) = watch(&proxy.http(), &room, &dir);
    let init = rx.recv_timeout(Duration::from_secs(10)).expect("init line");
    assert!(init.contains(r#""type":"init""#), "{init}");
    proxy.cut();
    let again = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a second init");
    assert!(again.contains(r#""type":"init""#), "{again}");

    // The server shuts down (close 1012): watch keeps trying, as the
    // editor does, until it is interrupted.
    server.shut_down();
    std::thread::sleep(Duration::from_millis(500));
    let (status, err) = stopped(child);
    assert!(!status.success(), "it was still watching");
    assert!(err.contains("connection lost; reconnecting in"), "{err}");
    assert!(
        err.contains("restarting (close 1012); reconnecting"),
        "{err}"
    );
}

#[test]
fn unreachable_server_is_a_one_line_error() {
    // A port that was just free: nothing listens there.
    let port = collab_testkit::free_port();
    let dir = scratch("unreachable");
    for args in [
        vec!["cat", "abc"],
        vec!["append", "abc", "x"],
        vec!["create"],
        vec!["join", "abc"],
        vec!["watch", "abc"],
    ] {
        let out = collab(&format!("http://127.0.0.1:{port}"), &dir)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = stderr_of(&out);
        assert!(
            err.contains("cannot reach the collab server"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}

#[test]
fn unknown_room_exits_non_zero() {
    let server = TestServer::in_process(Default::default());
    let dir = scratch("unknown");
    for args in [
        vec!["cat", "NoSuchRoom"],
        vec!["append", "NoSuchRoom", "x"],
        vec!["join", "NoSuchRoom"],
        vec!["watch", "NoSuchRoom"],
    ] {
        let out = collab(&server.http(), &dir)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = stderr_of(&out);
        assert!(err.contains("room NoSuchRoom not found"), "{args:?}: {err}");
    }
}

#[test]
fn unreadable_file_is_reported() {
    let server = TestServer::in_process(Default::default());
    let dir = scratch("unreadable");
    let out = collab(&server.http(), &dir)
        .args(["create", "/no/such/file.rs"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.starts_with("collab: cannot read /no/such/file.rs"),
        "{err}"
    );
}

#[test]
fn an_invalid_room_id_says_so_and_a_bare_address_is_http() {
    let server = TestServer::in_process(Default::default());
    let dir = scratch("bad-id");
    for args in [
        vec!["join", "bad id!"],
        vec!["cat", "bad id!"],
        vec!["watch", "bad.id"],
    ] {
        let out = collab(&server.http(), &dir)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = stderr_of(&out);
        assert!(err.contains("invalid room id"), "{args:?}: {err}");
        assert!(!err.contains("not found"), "{err}");
    }
    // `--server 127.0.0.1:PORT` is the server at http://127.0.0.1:PORT.
    let room = server.blocking().create_room("hi");
    let out = collab(&server.addr, &dir)
        .args(["cat", &room])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi");
}

#[test]
fn watch_joins_as_a_watcher_that_others_see_as_such() {
    let server = TestServer::in_process(Default::default());
    let dir = scratch("watcher");
    let room = server.blocking().create_room("abc");
    let (mut watcher, rx) = watch(&server.http(), &room, &dir);
    rx.recv_timeout(Duration::from_secs(10)).expect("init line");
    let users = server.blocking().room(&room).expect("the room").users;
    assert_eq!(users[0].role, Role::Watcher, "{users:?}");
    let _ = watcher.kill();
    let _ = watcher.wait();
}

#[test]
fn version_names_the_commit_in_a_checkout() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_collab"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let version = String::from_utf8(out.stdout).unwrap();
    let expected = format!("collab {}", env!("CARGO_PKG_VERSION"));
    assert!(version.starts_with(&expected), "{version:?}");
    // Built from this checkout (as tests are, whenever git is here): the
    // commit is in parentheses, "-dirty" after it with local changes.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success());
    if let Some(head) = head {
        let head = String::from_utf8(head.stdout).unwrap();
        assert!(
            version.contains(&format!("({}", head.trim())),
            "{version:?} does not name {head:?}"
        );
    }
}
