//! The interactive editor's shell: owns the terminal, starts the network
//! task, and runs the loop that feeds terminal input, server messages and
//! signals to the pure [`Editor`] and carries out its effects. Nothing in
//! this loop waits on the network: the network task is reached through
//! channels. It draws only when something changed (input, a message, a
//! countdown that ticked), so an idle editor costs nothing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use crossterm::event::Event;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use crate::core::editor::{ConnState, Editor, Effect, FileState, Recovery};
use crate::journal::{self, DocEdits, Journal, Writer};
use crate::local_state::{self, OwnerTokens, RoomFiles};
use crate::net::{self, NetCommand, NetConfig, NetEvent};
use crate::server_api::ServerApi;
use crate::terminal::{self, Tui};
use crate::view::{self, ColorDepth};

/// How often the loop wakes without input (caret throttle, countdowns).
const TICK: Duration = Duration::from_millis(50);

/// How the editor ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The user quit.
    Quit,
    /// A signal (SIGTERM, SIGHUP, SIGINT) ended it; the process should exit
    /// with 128 + `number`, as shells expect.
    Signal {
        /// The signal's number.
        number: i32,
        /// Edits the server had not acknowledged were lost.
        unsent: bool,
    },
}

/// What the editor needs to know besides the room.
pub struct Session {
    /// The server.
    pub api: ServerApi,
    /// The room id (editing or read-only).
    pub room: String,
    /// Display name.
    pub name: String,
    /// The local file Ctrl-S writes, if known.
    pub file: Option<PathBuf>,
    /// `--server` as share commands should repeat it (`None`: the default).
    pub server_arg: Option<String>,
    /// Copies also go to the system clipboard (OSC 52).
    pub osc52: bool,
    /// The colours the terminal gets (`--color`, NO_COLOR, the terminal).
    pub depth: ColorDepth,
    /// No syntax highlighting (`theme = "plain"`).
    pub plain: bool,
    /// Keys the config file binds to actions.
    pub key_overrides: Vec<(crate::core::keymap::KeyChord, crate::core::keymap::Action)>,
    /// Commands that bring someone into the room (`collab share` prints
    /// them): the help shows them, F8 copies the first.
    pub join_commands: Vec<String>,
    /// The reports of the disk mirror that keeps the room's files in a
    /// folder beside the editor (`collab share`, `join --dir`), shown in the
    /// message line as they come; with a mirror, Ctrl-S saves nothing.
    pub disk_reports: Option<crate::disk::mirror::Reports>,
}

/// Opens the editor on the session's room until the user quits or a signal
/// ends it.
pub async fn run(session: Session) -> anyhow::Result<Outcome> {
    let Session {
        api,
        room,
        name,
        file,
        server_arg,
        osc52,
        depth,
        plain,
        key_overrides,
        join_commands,
        disk_reports,
    } = session;
    // Fail with a plain message before the terminal switches modes.
    api.room(&room).await?;
    let file = file.or_else(|| RoomFiles::default_location().and_then(|f| f.get(&room)));
    let disk = file.as_deref().map(file_state);
    // Edits an earlier collab left unacknowledged: this session continues
    // them, under their client id.
    let (resumed, journal) = match journal::take(&room) {
        Some((entry, journal)) => (Some(entry), Some(journal)),
        None => (None, None),
    };
    let client_id = resumed
        .as_ref()
        .map_or_else(net::new_client_id, |e| e.client_id.clone());
    let journal = journal.or_else(|| Journal::for_session(&room, &client_id));
    let mut editor = Editor::new(&room, &name, file)
        .with_server(server_arg.as_deref())
        .with_disk_state(disk)
        .with_join_commands(join_commands)
        .with_disk_mirror(disk_reports.is_some())
        .with_plain_text(plain)
        .with_key_overrides(key_overrides);
    if let Some(entry) = &resumed {
        editor = entry.resume(editor);
    }
    let (journal_errors, journal_failed) = std::sync::mpsc::channel();
    let writer = journal.map(|j| {
        Writer::spawn(j, &room, &client_id, move |e| {
            let _ = journal_errors.send(e);
        })
    });
    let mut tui = Tui::enter().context("cannot set up the terminal")?;
    let owners = OwnerTokens::default_location();
    let cfg = NetConfig {
        api,
        room: room.clone(),
        name: name.clone(),
        client_id,
        project: true,
        owner_token: owners.as_ref().and_then(|o| o.get(&room)),
    };
    let look = Look { depth, osc52 };
    let result = event_loop(
        &mut tui,
        &mut editor,
        cfg,
        look,
        writer.as_ref(),
        &journal_failed,
        disk_reports,
    )
    .await;
    drop(tui);
    // Whatever is unacknowledged is on disk before the process ends.
    if let Some(writer) = writer {
        writer.finish();
    }
    result
}

/// How a file looks on disk now.
pub fn file_state(path: &Path) -> FileState {
    match std::fs::metadata(path) {
        Ok(m) => FileState::Present {
            len: m.len(),
            modified: m.modified().ok(),
        },
        Err(_) => FileState::Missing,
    }
}

/// Reads terminal events on a thread of its own (crossterm's reader blocks).
fn spawn_input() -> mpsc::UnboundedReceiver<std::io::Result<Event>> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || loop {
        let event = crossterm::event::read();
        let failed = event.is_err();
        if tx.send(event).is_err() || failed {
            break;
        }
    });
    rx
}

/// How the terminal wants to be talked to, found out once at start.
#[derive(Clone, Copy, Debug)]
struct Look {
    depth: ColorDepth,
    osc52: bool,
}

async fn event_loop(
    tui: &mut Tui,
    editor: &mut Editor,
    cfg: NetConfig,
    look: Look,
    journal: Option<&Writer>,
    journal_failed: &std::sync::mpsc::Receiver<String>,
    mut disk_reports: Option<crate::disk::mirror::Reports>,
) -> anyhow::Result<Outcome> {
    let room = cfg.room.clone();
    // A resumed session reconnects with `since`, so `missed` can rebase.
    let (since_tx, since_rx) = watch::channel(editor.main_revision());
    let mut journaled = (u64::MAX, false);
    let mut net = net::spawn(cfg, since_rx);
    let mut net_alive = true;
    let mut epoch = 0;
    let mut input = spawn_input();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut hangup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut redraw = true;
    // What the last frame showed that changes with time alone.
    let mut drawn_countdown = String::new();
    loop {
        if redraw {
            let now = Instant::now();
            tui.terminal
                .draw(|frame| view::draw_with(frame, editor, now, look.depth))
                .context("cannot draw")?;
            drawn_countdown = view::status::connection_label(editor.conn(), now).0;
        }
        tokio::select! {
            event = input.recv() => {
                let event = event
                    .context("the terminal input stopped")?
                    .context("cannot read the terminal")?;
                editor.handle_event_at(&event, Instant::now());
                // A burst of keys (typing fast, a paste without bracketed
                // paste) is handled before the next draw.
                while let Ok(Ok(event)) = input.try_recv() {
                    editor.handle_event_at(&event, Instant::now());
                }
                redraw = true;
            }
            event = net.events.recv(), if net_alive => {
                match event {
                    Some(event) => on_net_event(editor, event, &mut epoch),
                    None => {
                        net_alive = false;
                        // Keep the reason a `Fatal` event already gave.
                        if !matches!(editor.conn(), ConnState::Offline(_)) {
                            editor.set_conn(ConnState::Offline("network task stopped".into()));
                        }
                    }
                }
                redraw = true;
            }
            _ = tick.tick() => {
                let countdown = view::status::connection_label(editor.conn(), Instant::now()).0;
                redraw = countdown != drawn_countdown;
                // What the disk mirror could not do, while it matters (the
                // newest line; all of them are printed again on exit).
                if let Some(line) = disk_reports.as_mut().and_then(|r| r.take_new().pop()) {
                    editor.set_notice(format!("disk: {line}"));
                    redraw = true;
                }
            }
            _ = term.recv() => return Ok(signalled(editor, libc_signal::TERM)),
            _ = hangup.recv() => return Ok(signalled(editor, libc_signal::HUP)),
            _ = interrupt.recv() => return Ok(signalled(editor, libc_signal::INT)),
        }
        // What goes to the server leaves once the journal holding it is on
        // disk (see `Writer::release`).
        let mut outgoing = Vec::new();
        for effect in editor.take_effects() {
            redraw = true;
            match effect {
                Effect::Send(msg) => outgoing.push(NetCommand::Send { epoch, msg }),
                Effect::Save { path, text, expect } => save(editor, &room, path, &text, expect),
                Effect::SaveRecovery { text, why } => {
                    let saved = local_state::save_recovery(&room, &text);
                    let notice = match (why, saved) {
                        (Recovery::Unmerged, Ok(path)) => format!(
                            "Reconnected, but your unsent edits could not be merged; \
                             your version is saved in {}",
                            path.display()
                        ),
                        (Recovery::Unmerged, Err(e)) => {
                            format!("Reconnected; your unsent edits were lost ({e:#})")
                        }
                        (Recovery::HistoryReset, Ok(path)) => format!(
                            "The server lost recent history (its store was restored); \
                             your copy of the document is saved in {}",
                            path.display()
                        ),
                        (Recovery::Deleted(path), Ok(saved)) => format!(
                            "{path} was deleted from the room; your copy is saved in {}",
                            saved.display()
                        ),
                        (Recovery::Deleted(path), Err(e)) => format!(
                            "{path} was deleted from the room, and your copy could not be saved ({e:#})"
                        ),
                        (Recovery::HistoryReset, Err(e)) => format!(
                            "The server lost recent history, and your copy could not be saved ({e:#})"
                        ),
                    };
                    editor.set_notice(notice);
                }
                // In order with the messages before them.
                Effect::ResyncFresh => outgoing.push(NetCommand::Reconnect { fresh: true }),
                Effect::RetryNow => outgoing.push(NetCommand::RetryNow),
                Effect::Copy(text) => {
                    copy_to_system_clipboard(editor, tui.terminal.backend_mut(), look.osc52, &text)
                }
                Effect::Quit => {
                    send_after_journal(journal, outgoing, &net.commands);
                    return Ok(Outcome::Quit);
                }
            }
        }
        if let Some(msg) = editor.cursor_message(Instant::now()) {
            outgoing.push(NetCommand::Send { epoch, msg });
        }
        since_tx.send_if_modified(|since| {
            let now = editor.main_revision();
            std::mem::replace(since, now) != now
        });
        if let Some(writer) = journal {
            journal_changes(editor, writer, &mut journaled);
        }
        send_after_journal(journal, outgoing, &net.commands);
        if let Ok(why) = journal_failed.try_recv() {
            editor.set_notice(why);
            redraw = true;
        }
    }
}

/// Carries out [`Effect::Copy`] on the terminal backend `out`: OSC 52 when
/// enabled, and a word on the message line when the text is too long for
/// the terminal's clipboard.
fn copy_to_system_clipboard(editor: &mut Editor, out: &mut impl Write, osc52: bool, text: &str) {
    if !osc52 {
        return;
    }
    if let Ok(false) = terminal::copy_to_clipboard(out, text) {
        editor.set_notice(format!(
            "Copied {} chars inside collab only: too long for the terminal's clipboard",
            text.chars().count()
        ));
    }
}

/// Hands `cmds` to the network task: through the journal's writer when
/// there is one, so they leave once the journal holding them is on disk.
fn send_after_journal(
    journal: Option<&Writer>,
    cmds: Vec<NetCommand>,
    net: &mpsc::UnboundedSender<NetCommand>,
) {
    match journal {
        Some(writer) => writer.release(cmds, net),
        None => {
            for cmd in cmds {
                let _ = net.send(cmd);
            }
        }
    }
}

/// Hands the writer every buffer's unacknowledged edits whenever they may have
/// changed (a local edit, a message from the server: a remote edit they were
/// rebased over, an ack), and has the journal removed once nothing is
/// unacknowledged.
fn journal_changes(editor: &Editor, writer: &Writer, last: &mut (u64, bool)) {
    let now = (editor.journal_mark(), editor.has_unsent());
    if now == *last {
        return;
    }
    let docs = editor.unacknowledged_docs();
    if !docs.is_empty() {
        let docs = docs
            .into_iter()
            .map(|(doc, unacked)| DocEdits::new(doc, unacked))
            .collect();
        writer.write_docs(docs, editor.next_seqs());
    } else if last.1 || last.0 == u64::MAX {
        writer.remove();
    }
    *last = now;
}

fn signalled(editor: &Editor, number: i32) -> Outcome {
    Outcome::Signal {
        number,
        unsent: editor.has_unsent(),
    }
}

/// Signal numbers, named (POSIX fixes these three on every Unix).
mod libc_signal {
    pub const HUP: i32 = 1;
    pub const INT: i32 = 2;
    pub const TERM: i32 = 15;
}

/// Writes the document, unless the file is not as the editor expects (then
/// the editor asks first).
fn save(editor: &mut Editor, room: &str, path: PathBuf, text: &str, expect: Option<FileState>) {
    if let Some(expected) = &expect {
        if file_state(&path) != *expected {
            editor.save_conflict(path, Some(expected));
            return;
        }
    }
    match std::fs::write(&path, text) {
        Ok(()) => {
            if let Some(files) = RoomFiles::default_location() {
                let _ = files.set(room, &path);
            }
            let state = file_state(&path);
            editor.saved(path, text, state);
        }
        Err(e) => editor.save_failed(&path, &e.to_string()),
    }
}

fn on_net_event(editor: &mut Editor, event: NetEvent, epoch: &mut u64) {
    match event {
        NetEvent::Connected { epoch: e, init } => {
            *epoch = e;
            editor.on_server(init);
        }
        NetEvent::Message { msg, .. } => {
            if let collab_protocol::ServerMessage::Links { room_id, .. } = &msg {
                // The owner token follows the room to its new id (a later
                // `collab join NEW` finds it).
                let owners = OwnerTokens::default_location();
                if let Some((owners, token)) = owners
                    .as_ref()
                    .and_then(|o| o.get(editor.room()).map(|t| (o, t)))
                {
                    let _ = owners.set(room_id, &token);
                }
            }
            editor.on_server_at(msg, Instant::now());
        }
        NetEvent::Disconnected {
            retry_in, reason, ..
        } => editor.set_conn(ConnState::Reconnecting {
            retry_at: Instant::now() + retry_in,
            reason,
        }),
        NetEvent::Fatal(why) => {
            let keep = if editor.is_read_only() {
                "Ctrl-Q quits."
            } else {
                "Your text stays here: Ctrl-S saves it, Ctrl-Q quits."
            };
            editor.set_notice(format!("{why}. {keep}"));
            editor.set_conn(ConnState::Offline(why));
        }
    }
}

/// Writes whatever a signal's exit must say on stderr (the terminal is back
/// to normal by then).
pub fn report_signal(unsent: bool) {
    if unsent {
        let _ = writeln!(
            std::io::stderr(),
            "collab: edits the server had not acknowledged yet were lost"
        );
    }
}

#[cfg(test)]
mod tests {
    use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
    use ratatui::backend::CrosstermBackend;

    use super::*;
    use crate::core::editor_tests::ready;

    /// What the terminal backend receives when the user copies: the OSC 52
    /// sequence with the selection in base64, and nothing when turned off.
    #[test]
    fn copy_and_cut_write_osc52_to_the_terminal_backend() {
        let mut ed = ready("hello world");
        let key = |code, m| Event::Key(KeyEvent::new(code, m));
        for _ in 0..5 {
            ed.handle_event(&key(KeyCode::Right, KeyModifiers::SHIFT));
        }
        ed.handle_event(&key(KeyCode::Char('c'), KeyModifiers::CONTROL));
        // What the editor's terminal backend (crossterm's, on any writer)
        // is sent.
        let mut written = Vec::new();
        let mut backend = CrosstermBackend::new(&mut written);
        for effect in ed.take_effects() {
            if let Effect::Copy(text) = effect {
                copy_to_system_clipboard(&mut ed, &mut backend, true, &text);
            }
        }
        assert_eq!(written, b"\x1b]52;c;aGVsbG8=\x07");

        ed.handle_event(&key(KeyCode::Char('x'), KeyModifiers::CONTROL));
        let (mut off, mut on) = (Vec::new(), Vec::new());
        for effect in ed.take_effects() {
            if let Effect::Copy(text) = effect {
                let mut backend = CrosstermBackend::new(&mut off);
                copy_to_system_clipboard(&mut ed, &mut backend, false, &text);
                let mut backend = CrosstermBackend::new(&mut on);
                copy_to_system_clipboard(&mut ed, &mut backend, true, &text);
            }
        }
        assert_eq!(ed.text().to_string(), " world", "cut");
        assert!(off.is_empty(), "COLLAB_OSC52=0 writes nothing");
        assert_eq!(on, b"\x1b]52;c;aGVsbG8=\x07");
    }
}
