//! The interactive editor's shell: owns the terminal, starts the network
//! task, and runs the loop that feeds terminal input and server messages to
//! the pure [`Editor`] and carries out its effects. Nothing in this loop
//! waits on the network: the network task is reached through channels.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use crossterm::event::Event;
use tokio::sync::{mpsc, watch};

use crate::core::editor::{ConnState, Editor, Effect};
use crate::local_state::{self, RoomFiles};
use crate::net::{self, NetCommand, NetConfig, NetEvent};
use crate::server_api::ServerApi;
use crate::terminal::Tui;
use crate::view;

/// How often the loop wakes without input (caret throttle, countdowns).
const TICK: Duration = Duration::from_millis(50);

/// Opens the editor on `room` until the user quits.
pub async fn run(
    api: ServerApi,
    room: String,
    name: String,
    file: Option<PathBuf>,
) -> anyhow::Result<()> {
    // Fail with a plain message before the terminal switches modes.
    api.room(&room).await?;
    let file = file.or_else(|| RoomFiles::default_location().and_then(|f| f.get(&room)));
    let mut tui = Tui::enter().context("cannot set up the terminal")?;
    let cfg = NetConfig {
        api,
        room: room.clone(),
        name: name.clone(),
        client_id: net::new_client_id(),
    };
    let mut editor = Editor::new(&room, &name, file);
    let result = event_loop(&mut tui, &mut editor, cfg).await;
    drop(tui);
    result
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

async fn event_loop(tui: &mut Tui, editor: &mut Editor, cfg: NetConfig) -> anyhow::Result<()> {
    let room = cfg.room.clone();
    let (since_tx, since_rx) = watch::channel(None);
    let mut net = net::spawn(cfg, since_rx);
    let mut net_alive = true;
    let mut epoch = 0;
    let mut input = spawn_input();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tui.terminal
            .draw(|frame| view::draw(frame, editor, std::time::Instant::now()))
            .context("cannot draw")?;
        tokio::select! {
            event = input.recv() => {
                let event = event
                    .context("the terminal input stopped")?
                    .context("cannot read the terminal")?;
                editor.handle_event(&event);
                // A burst of keys (typing fast, a paste without bracketed
                // paste) is handled before the next draw.
                while let Ok(Ok(event)) = input.try_recv() {
                    editor.handle_event(&event);
                }
            }
            event = net.events.recv(), if net_alive => match event {
                Some(event) => on_net_event(editor, event, &mut epoch),
                None => {
                    net_alive = false;
                    // Keep the reason a `Fatal` event already gave.
                    if !matches!(editor.conn(), ConnState::Offline(_)) {
                        editor.set_conn(ConnState::Offline("network task stopped".into()));
                    }
                }
            },
            _ = tick.tick() => {}
        }
        for effect in editor.take_effects() {
            match effect {
                Effect::Send(msg) => {
                    let _ = net.commands.send(NetCommand::Send { epoch, msg });
                }
                Effect::Save { path, text } => match std::fs::write(&path, &text) {
                    Ok(()) => {
                        if let Some(files) = RoomFiles::default_location() {
                            let _ = files.set(&room, &path);
                        }
                        editor.saved(path, &text);
                    }
                    Err(e) => editor.save_failed(&path, &e.to_string()),
                },
                Effect::SaveRecovery { text } => {
                    let notice = match local_state::save_recovery(&room, &text) {
                        Ok(path) => format!(
                            "Reconnected, but your unsent edits could not be merged; \
                             your version is saved in {}",
                            path.display()
                        ),
                        Err(e) => format!("Reconnected; your unsent edits were lost ({e:#})"),
                    };
                    editor.set_notice(notice);
                }
                Effect::ResyncFresh => {
                    let _ = net.commands.send(NetCommand::Reconnect { fresh: true });
                }
                Effect::Quit => return Ok(()),
            }
        }
        if let Some(msg) = editor.cursor_message(std::time::Instant::now()) {
            let _ = net.commands.send(NetCommand::Send { epoch, msg });
        }
        since_tx.send_if_modified(|since| {
            let now = editor.revision();
            std::mem::replace(since, now) != now
        });
    }
}

fn on_net_event(editor: &mut Editor, event: NetEvent, epoch: &mut u64) {
    match event {
        NetEvent::Connected { epoch: e, init } => {
            *epoch = e;
            editor.on_server(init);
        }
        NetEvent::Message { msg, .. } => editor.on_server(msg),
        NetEvent::Disconnected { retry_in, .. } => editor.set_conn(ConnState::Reconnecting {
            retry_at: std::time::Instant::now() + retry_in,
        }),
        NetEvent::Fatal(why) => {
            editor.set_notice(format!(
                "{why}. Your text stays here: Ctrl-S saves it, Ctrl-Q quits."
            ));
            editor.set_conn(ConnState::Offline(why));
        }
    }
}
