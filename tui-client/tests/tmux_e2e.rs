//! End to end: two real `collab join` processes in tmux panes against the
//! real server. Text typed in one appears in the other, each shows the
//! other's caret in the other's color (checked in tmux's escape-coded
//! capture), and Ctrl-Q quits. Requires tmux: without it this test fails
//! (CI installs it) rather than skipping silently.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use collab_testkit::{Proxy, TestServer};
use common::{poll, scratch};

/// How long any one thing may take to show up on screen.
const DEADLINE: Duration = Duration::from_secs(10);

/// A private tmux server (its own socket), killed on drop even when the
/// test fails.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Self {
        match Command::new("tmux").arg("-V").output() {
            Ok(out) if out.status.success() => {}
            _ => panic!(
                "tmux is required for the end-to-end test but was not found; \
                 install it (e.g. `apt-get install tmux`; CI's .ci/run does)"
            ),
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Self {
            socket: format!("collab-e2e-{}-{nanos}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .env("TERM", "xterm-256color")
            .output()
            .expect("tmux runs")
    }

    /// A detached 120x30 session running `argv`.
    fn session(&self, name: &str, argv: &[&str]) {
        let mut args = vec!["new-session", "-d", "-s", name, "-x", "120", "-y", "30"];
        args.extend_from_slice(argv);
        let out = self.run(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn keys(&self, target: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", target];
        args.extend_from_slice(keys);
        assert!(self.run(&args).status.success());
    }

    fn type_text(&self, target: &str, text: &str) {
        assert!(self
            .run(&["send-keys", "-t", target, "-l", text])
            .status
            .success());
    }

    /// The pane's text; with `escapes`, including color escape sequences.
    fn capture(&self, target: &str, escapes: bool) -> String {
        let mut args = vec!["capture-pane", "-p", "-t", target];
        if escapes {
            args.push("-e");
        }
        String::from_utf8_lossy(&self.run(&args).stdout).into_owned()
    }

    /// Polls the pane until `pred` holds; panics with the screen if not.
    fn wait_for(
        &self,
        target: &str,
        escapes: bool,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        poll(DEADLINE, || {
            let screen = self.capture(target, escapes);
            pred(&screen).then_some(screen)
        })
        .unwrap_or_else(|| {
            panic!(
                "{target}: timed out waiting for {what}; screen:\n{}",
                self.capture(target, false)
            )
        })
    }

    /// A tmux format (`#{...}`) evaluated for the pane.
    fn display(&self, target: &str, format: &str) -> String {
        let out = self.run(&["display-message", "-p", "-t", target, format]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn has_session(&self, name: &str) -> bool {
        self.run(&["has-session", "-t", name]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let socket = self.run(&["display-message", "-p", "#{socket_path}"]);
        let _ = self.run(&["kill-server"]);
        // tmux may leave its socket file behind.
        let path = String::from_utf8_lossy(&socket.stdout).trim().to_owned();
        if path.contains(&self.socket) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Waits until process `pid` has exited (a journal's lock goes with it).
fn wait_gone(pid: &str) {
    poll(DEADLINE, || {
        let alive = Command::new("kill")
            .args(["-0", pid])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        (!alive).then_some(())
    })
    .unwrap_or_else(|| panic!("process {pid} did not exit"));
}

/// `48;2;R;G;B` for a `#rrggbb` color: how tmux writes it as a background.
fn background_escape(hex: &str) -> String {
    let c = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex color");
    format!("48;2;{};{};{}", c(1), c(3), c(5))
}

#[test]
fn two_editors_see_each_others_text_and_colored_carets() {
    let tmux = Tmux::new();
    let server = TestServer::in_process(Default::default());
    let state = scratch("tmux");
    let room = server
        .blocking()
        .create_room("fn main() {\n    println!(\"hello\");\n}\n");
    let url = server.http();
    let bin = env!("CARGO_BIN_EXE_collab");
    let state_env = format!("XDG_STATE_HOME={}", state.display());
    let start = |name: &str| {
        let name_env = format!("COLLAB_NAME={name}");
        tmux.session(
            name,
            &[
                "env", &name_env, &state_env, bin, "--server", &url, "join", &room,
            ],
        );
    };

    start("alice");
    tmux.wait_for("alice", false, "the document", |s| {
        s.contains("fn main() {") && s.contains("connected")
    });
    start("bob");
    tmux.wait_for("bob", false, "alice in the users panel", |s| {
        s.contains("connected") && s.contains("alice")
    });
    tmux.wait_for("alice", false, "bob in the users panel", |s| {
        s.contains("bob")
    });

    // Alice types at the end of line 2; Bob sees it.
    tmux.keys("alice", &["Down", "End"]);
    tmux.type_text("alice", " // hi from alice");
    tmux.wait_for("bob", false, "alice's text", |s| {
        s.contains("println!(\"hello\"); // hi from alice")
    });

    // Bob's screen shows alice's caret as a block in alice's color.
    let users = server.blocking().room(&room).expect("the room").users;
    let color_of = |name: &str| {
        users
            .iter()
            .find(|u| u.name == name)
            .map(|u| u.color.clone())
            .unwrap_or_else(|| panic!("{name} in {users:?}"))
    };
    let alice_bg = background_escape(&color_of("alice"));
    tmux.wait_for("bob", true, "alice's colored caret", |s| {
        s.contains(&alice_bg)
    });

    // Bob types on the last line; Alice sees it and Bob's caret color.
    tmux.keys("bob", &["C-End"]);
    tmux.type_text("bob", "// bob was here");
    tmux.wait_for("alice", false, "bob's text", |s| {
        s.contains("// bob was here")
    });
    let bob_bg = background_escape(&color_of("bob"));
    tmux.wait_for("alice", true, "bob's colored caret", |s| {
        s.contains(&bob_bg)
    });
    let expected = "fn main() {\n    println!(\"hello\"); // hi from alice\n}\n// bob was here";
    poll(DEADLINE, || {
        (server.blocking().code(&room) == expected).then_some(())
    })
    .unwrap_or_else(|| panic!("server has {:?}", server.blocking().code(&room)));

    // A plain-text screenshot for docs/tui.md.
    let shot = tmux.capture("bob", false);
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("tmux-e2e-bob.txt");
    let _ = std::fs::write(out, &shot);

    // Alice has no local file and the server has her edits: nothing to
    // lose, so Ctrl-Q leaves at once.
    tmux.keys("alice", &["C-q"]);
    poll(DEADLINE, || (!tmux.has_session("alice")).then_some(())).expect("alice's editor exited");
    tmux.wait_for("bob", false, "alice gone from the panel", |s| {
        !s.contains("alice (") && !s.contains("■ alice")
    });
}

/// `env NAME=... STATE=... collab --server URL join ROOM` as argv.
fn join_argv(name: &str, state: &std::path::Path, url: &str, room: &str) -> Vec<String> {
    vec![
        "env".into(),
        format!("COLLAB_NAME={name}"),
        format!("XDG_STATE_HOME={}", state.display()),
        env!("CARGO_BIN_EXE_collab").into(),
        "--server".into(),
        url.into(),
        "join".into(),
        room.into(),
    ]
}

fn start_pane(tmux: &Tmux, name: &str, argv: &[String]) {
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    tmux.session(name, &argv);
}

#[test]
fn a_read_only_link_watches_without_editing_or_reconnecting() {
    let tmux = Tmux::new();
    let server = TestServer::in_process(Default::default());
    let state = scratch("tmux-viewer");
    let created = server.blocking().create_room_answer("fn main() {}\n");
    let (room, viewer) = (
        created.room_id,
        created.read_only_id.expect("a read-only id"),
    );
    let url = server.http();
    start_pane(&tmux, "vera", &join_argv("vera", &state, &url, &viewer));
    tmux.wait_for("vera", false, "the document, read-only", |s| {
        s.contains("fn main() {}") && s.contains("connected") && s.contains("read-only")
    });
    start_pane(&tmux, "ed", &join_argv("ed", &state, &url, &room));
    tmux.wait_for("ed", false, "vera marked as a viewer", |s| {
        s.contains("vera (views)")
    });

    // Typing in the viewer: a hint, and nothing reaches the text.
    tmux.type_text("vera", "hello");
    tmux.keys("vera", &["Enter"]);
    tmux.wait_for("vera", false, "the read-only hint", |s| {
        s.contains("Read-only: this link lets you watch")
    });
    // The editor's edit still shows in the viewer, live.
    tmux.keys("ed", &["C-End"]);
    tmux.type_text("ed", "// from ed");
    tmux.wait_for("vera", false, "the editor's text", |s| {
        s.contains("// from ed")
    });
    let screen = tmux.capture("vera", false);
    assert!(!screen.contains("hello"), "{screen}");
    assert!(!screen.contains("unsent"), "{screen}");
    assert_eq!(server.blocking().code(&room), "fn main() {}\n// from ed");
    // Nothing was sent, so nothing was refused, and the link stays up.
    assert_eq!(
        server
            .blocking()
            .metric("collab_rejected_total{reason=\"read_only\"}"),
        Some(0.0)
    );
    std::thread::sleep(Duration::from_millis(1500));
    let screen = tmux.capture("vera", false);
    assert!(
        screen.contains("● connected") && !screen.contains("reconnecting"),
        "{screen}"
    );
    // Quitting asks nothing: there is nothing to lose.
    tmux.keys("vera", &["C-q"]);
    poll(DEADLINE, || (!tmux.has_session("vera")).then_some(())).expect("the viewer quit");
}

#[test]
fn sigterm_restores_the_terminal_and_exits_143() {
    let tmux = Tmux::new();
    let server = TestServer::in_process(Default::default());
    let state = scratch("tmux-sigterm");
    let room = server.blocking().create_room("abc\n");
    let url = server.http();
    for (signal, status) in [("TERM", "143"), ("HUP", "129"), ("INT", "130")] {
        let pane = format!("sig{signal}");
        // A shell runs the editor and writes its exit status down (tmux's
        // own record of it is not reliable), then keeps the pane open so
        // the terminal's state can be read after the editor is gone.
        let status_file = state.join(format!("status-{signal}"));
        let argv = join_argv("sig", &state, &url, &room).join(" ");
        let script = format!("{argv}; echo $? > {}; sleep 60", status_file.display());
        tmux.session(&pane, &["bash", "-c", &script]);
        tmux.wait_for(&pane, false, "the editor", |s| s.contains("connected"));
        assert_eq!(tmux.display(&pane, "#{alternate_on}"), "1");
        assert_eq!(tmux.display(&pane, "#{mouse_any_flag}"), "1");
        let shell = tmux.display(&pane, "#{pane_pid}");
        let out = Command::new("pgrep")
            .args(["-P", &shell])
            .output()
            .expect("pgrep");
        let pid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(!pid.is_empty(), "the editor's pid");
        let kill = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("kill");
        assert!(kill.success());
        let written = poll(DEADLINE, || std::fs::read_to_string(&status_file).ok())
            .unwrap_or_else(|| panic!("SIG{signal} did not end the editor"));
        assert_eq!(written.trim(), status, "SIG{signal}");
        assert_eq!(
            tmux.display(&pane, "#{alternate_on}"),
            "0",
            "SIG{signal} left the alternate screen on"
        );
        assert_eq!(
            tmux.display(&pane, "#{mouse_any_flag}"),
            "0",
            "SIG{signal} left mouse reporting on"
        );
    }
}

#[test]
fn an_editor_killed_with_unacknowledged_edits_loses_none() {
    let tmux = Tmux::new();
    let server = TestServer::in_process(Default::default());
    let proxy = Proxy::in_front_of(&server);
    let state = scratch("tmux-journal");
    let room = server.blocking().create_room("abc\n");
    start_pane(
        &tmux,
        "kim",
        &join_argv("kim", &state, &proxy.http(), &room),
    );
    tmux.wait_for("kim", false, "the editor", |s| s.contains("connected"));
    // The server's answers stop arriving: edits stay unacknowledged.
    proxy.deafen(true);
    tmux.keys("kim", &["C-End"]);
    tmux.type_text("kim", "typed while deaf");
    tmux.wait_for("kim", false, "the edits unsent", |s| {
        s.contains("typed while deaf") && s.contains("unsent")
    });
    let journal = state.join("collab/journal").join(&room);
    poll(DEADLINE, || {
        std::fs::read_dir(&journal).ok()?.flatten().find_map(|e| {
            let text = std::fs::read_to_string(e.path()).ok()?;
            text.contains("typed while deaf").then_some(())
        })
    })
    .expect("the journal holds the edits");
    let pid = tmux.display("kim", "#{pane_pid}");
    assert!(Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap()
        .success());
    // Gone, and its lock on the journal with it.
    wait_gone(&pid);

    // Whatever runs next in this room on this machine sends them.
    let out = common::collab(&server.http(), &state)
        .args(["append", &room, ""])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.blocking().code(&room), "abc\ntyped while deaf");
}

/// A project shared from disk in two editors: the host runs `collab share`
/// on a directory of three files, the guest joins, opens the second file
/// with the picker (Ctrl-P) and types; the host sees it in the same file
/// and the file on the host's disk changes; the guest follows the host
/// (F4) into the third file.
#[test]
fn a_shared_directory_in_two_editors_opens_files_types_to_disk_and_follows() {
    let tmux = Tmux::new();
    let server = TestServer::in_process(Default::default());
    let state = scratch("tmux-project");
    let dir = scratch("tmux-project-dir");
    for (path, text) in [
        ("src/main.rs", "fn main() {}\n"),
        ("src/lib.rs", "pub fn lib() {}\n"),
        ("notes/todo.md", "# Todo\n- ship it\n"),
    ] {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let url = server.http();
    let mut share = join_argv("host", &state, &url, "");
    share.truncate(share.len() - 2);
    share.extend(["share".into(), dir.display().to_string()]);
    start_pane(&tmux, "host", &share);
    tmux.wait_for("host", false, "the editor on the shared project", |s| {
        s.contains("connected") && s.contains("Users (2)")
    });
    // The room's id, from the join commands F1 shows.
    tmux.keys("host", &["F1"]);
    let help = tmux.wait_for("host", false, "the join command in F1 help", |s| {
        s.contains("collab join ")
    });
    let room = help
        .split("collab join ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a room id after `collab join`")
        .to_owned();
    tmux.keys("host", &["Escape"]);
    start_pane(&tmux, "guest", &join_argv("guest", &state, &url, &room));
    tmux.wait_for("guest", false, "the host in the users panel", |s| {
        s.contains("connected") && s.contains("Users (3)")
    });

    // The guest picks the second file and types at its start.
    tmux.keys("guest", &["C-p"]);
    tmux.wait_for("guest", false, "the picker", |s| {
        s.contains("Open file (3 of 3)")
    });
    tmux.type_text("guest", "lib");
    tmux.wait_for("guest", false, "the picker filtered", |s| {
        s.contains("Open file (1 of 3)")
    });
    tmux.keys("guest", &["Enter"]);
    tmux.wait_for("guest", false, "src/lib.rs open", |s| {
        s.contains("pub fn lib() {}") && s.contains("│ src/lib.rs │")
    });
    tmux.type_text("guest", "// guest");
    tmux.keys("guest", &["Enter"]);
    // The host's file on disk changes (through the share's disk mirror).
    let on_disk = dir.join("src/lib.rs");
    poll(DEADLINE, || {
        let text = std::fs::read(&on_disk).ok()?;
        (text == b"// guest\npub fn lib() {}\n").then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the host's src/lib.rs holds {:?}; the guest's screen:\n{}",
            std::fs::read_to_string(&on_disk),
            tmux.capture("guest", false)
        )
    });

    // The host sees where the guest is, opens the file and sees the text.
    tmux.wait_for("host", false, "the guest in lib.rs", |s| {
        s.contains("guest lib.rs")
    });
    tmux.keys("host", &["C-p"]);
    tmux.type_text("host", "lib");
    tmux.keys("host", &["Enter"]);
    tmux.wait_for("host", false, "the guest's text", |s| {
        s.contains("// guest") && s.contains("pub fn lib() {}")
    });

    // The guest follows the host (not the host's disk mirror), who goes to
    // the third file.
    tmux.keys("guest", &["F4"]);
    tmux.wait_for("guest", false, "following the host", |s| {
        s.contains("following host")
    });
    tmux.keys("host", &["C-p"]);
    tmux.type_text("host", "todo");
    tmux.keys("host", &["Enter"]);
    tmux.wait_for("host", false, "notes/todo.md open", |s| {
        s.contains("- ship it")
    });
    tmux.keys("host", &["Down"]);
    tmux.wait_for("guest", false, "the guest's view in the third file", |s| {
        s.contains("- ship it") && s.contains("│ notes/todo.md │") && s.contains("following host")
    });
    // Esc ends following.
    tmux.keys("guest", &["Escape"]);
    tmux.wait_for("guest", false, "following stopped", |s| {
        s.contains("Stopped following host")
    });
}

/// Unsent edits in a second file survive the editor: typed while the link
/// is down (a proxy cut it and refuses new connections), kept in the
/// journal when the terminal closes, and sent by the next `collab join`.
#[test]
fn unsent_edits_in_a_second_file_survive_the_editor() {
    let tmux = Tmux::new();
    let server = TestServer::in_process(Default::default());
    let proxy = Proxy::in_front_of(&server);
    let state = scratch("tmux-project-journal");
    let created = server
        .block_on(
            server
                .rest()
                .create_project(&[("main.txt", "main\n"), ("second.txt", "second\n")]),
        )
        .expect("a project room");
    let room = created.room_id;
    start_pane(&tmux, "ed", &join_argv("ed", &state, &proxy.http(), &room));
    tmux.wait_for("ed", false, "the main file", |s| {
        s.contains("main") && s.contains("connected")
    });
    tmux.keys("ed", &["C-p"]);
    tmux.type_text("ed", "second");
    tmux.keys("ed", &["Enter"]);
    tmux.wait_for("ed", false, "second.txt open", |s| {
        s.contains("│ second.txt │") && s.contains("second")
    });
    proxy.refuse(true);
    proxy.cut();
    tmux.wait_for("ed", false, "the link down", |s| s.contains("retry in"));
    tmux.type_text("ed", "kept ");
    let journal_dir = state.join("collab/journal").join(&room);
    let journals = || -> Vec<String> {
        std::fs::read_dir(&journal_dir)
            .map(|dir| {
                dir.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    poll(DEADLINE, || {
        journals()
            .iter()
            .any(|t| t.contains("kept second") && t.contains(r#""doc":"#))
            .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the journal does not name second.txt with the text typed: {:?}; screen:\n{}",
            journals(),
            tmux.capture("ed", false)
        )
    });
    // The terminal closes (SIGHUP): the journal stays.
    let pid = tmux.display("ed", "#{pane_pid}");
    assert!(tmux.run(&["kill-session", "-t", "ed"]).status.success());
    wait_gone(&pid);
    assert_eq!(
        server
            .block_on(server.rest().file_text(&room, "second.txt"))
            .unwrap(),
        Some(b"second\n".to_vec()),
        "nothing reached the server before"
    );
    // The next editor of the room sends what was kept, exactly once.
    start_pane(
        &tmux,
        "again",
        &join_argv("ed", &state, &server.http(), &room),
    );
    poll(DEADLINE, || {
        let text = server
            .block_on(server.rest().file_text(&room, "second.txt"))
            .ok()??;
        (text == b"kept second\n").then_some(())
    })
    .unwrap_or_else(|| {
        let text = server.block_on(server.rest().file_text(&room, "second.txt"));
        panic!(
            "the server has {text:?}; screen:\n{}",
            tmux.capture("again", false)
        )
    });
}
