//! The mirror's shell: runs the [`Core`] against the real world. It owns
//! a network task (a project client named "NAME (disk)" with its own
//! `client_id`, reconnecting with `since` like the editor), a `notify`
//! watch on each directory of the project the ignore rules keep, and two
//! timers: file system events are gathered for [`DISK_SETTLE`] so that a
//! rename's two halves arrive together, and room edits are written after [`WRITE_DELAY`] so a
//! colleague's typing costs a few writes a second, not one per key.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use notify::event::ModifyKind;
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, timeout, Instant};

use super::core::{Action, Core, Seen};
use crate::disk::scan::{self, disk_path, is_listed, never_shared, read_text, room_path};
use crate::disk::write;
use crate::net::{self, NetCommand, NetConfig, NetEvent};
use crate::server_api::ServerApi;

/// How long file system events are gathered before they are looked at.
pub const DISK_SETTLE: Duration = Duration::from_millis(50);
/// How long room edits wait before they are written to disk.
pub const WRITE_DELAY: Duration = Duration::from_millis(100);
/// How long stopping may wait for writes and acknowledgements.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Documents held open at most (the server allows 64 per connection).
pub const DEFAULT_MAX_OPEN: usize = 48;

/// Where the mirror says what it cannot do (stderr, or a log kept aside
/// while the editor has the terminal).
pub type Report = Arc<dyn Fn(&str) + Send + Sync>;

/// What to mirror where.
#[derive(Clone)]
pub struct MirrorConfig {
    /// The server.
    pub api: ServerApi,
    /// The room id.
    pub room: String,
    /// The user's display name ("NAME (disk)" is the mirror's).
    pub name: String,
    /// The directory.
    pub root: PathBuf,
    /// Larger files are not shared.
    pub max_file_bytes: u64,
    /// Documents held open at most.
    pub max_open: usize,
    /// The server's limit on one message (`--max-message-bytes`): bigger
    /// edits and new files are sent in pieces.
    pub max_message_bytes: usize,
    /// The files on disk when the mirror starts (room path -> text), as
    /// shared or as written from the room.
    pub on_disk: BTreeMap<String, String>,
}

/// The mirror's display name for a user called `name`.
pub fn mirror_name(name: &str) -> String {
    format!("{name} (disk)")
}

struct Shell {
    /// Watches each directory the ignore rules keep, one by one (a
    /// recursive watch would also watch `target/` or `node_modules/`,
    /// and a build there would flood the mirror with events).
    watcher: notify::RecommendedWatcher,
    watched: BTreeSet<PathBuf>,
    root: PathBuf,
    max_file_bytes: u64,
    core: Core,
    net: net::NetHandle,
    epoch: u64,
    joined: bool,
    changed: BTreeSet<PathBuf>,
    disk_due: Option<Instant>,
    write_due: Option<Instant>,
    /// The version of each file as last read.
    versions: BTreeMap<String, Option<write::Version>>,
    /// When the mirror started (the core's clock).
    started: Instant,
    /// `COLLAB_MIRROR_TRACE` set: report every action (for diagnosis).
    trace: bool,
    report: Report,
}

/// Keeps `cfg.root` and the room in sync until `stop` completes, then
/// writes what is pending and waits (briefly) for the room to acknowledge
/// what was sent.
pub async fn run(
    cfg: MirrorConfig,
    stop: impl Future<Output = ()>,
    report: Report,
) -> anyhow::Result<()> {
    let root = cfg
        .root
        .canonicalize()
        .with_context(|| format!("cannot open the directory {}", cfg.root.display()))?;
    let (fs_tx, mut fs_rx) = mpsc::unbounded_channel::<PathBuf>();
    let watch_report = report.clone();
    let mut watcher =
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            // Reading a file (the mirror's own reads included) and changing
            // only its metadata change no text: taking those as changes
            // would make every read cause another.
            Ok(event)
                if matches!(
                    event.kind,
                    EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_))
                ) => {}
            Ok(event) => {
                for path in event.paths {
                    let _ = fs_tx.send(path);
                }
            }
            Err(e) => watch_report(&format!("watching the directory: {e}")),
        })
        .context("cannot watch the directory")?;
    watcher
        .watch(&root, RecursiveMode::NonRecursive)
        .with_context(|| format!("cannot watch {}", root.display()))?;
    let (since_tx, since_rx) = watch::channel(None);
    let net = net::spawn(
        NetConfig {
            api: cfg.api.clone(),
            room: cfg.room.clone(),
            name: mirror_name(&cfg.name),
            client_id: net::new_client_id(),
            project: true,
            owner_token: None,
        },
        since_rx,
    );
    let mut shell = Shell {
        watcher,
        watched: BTreeSet::new(),
        root,
        max_file_bytes: cfg.max_file_bytes,
        core: {
            let mut core = Core::new(cfg.max_open, cfg.on_disk);
            core.set_max_message_bytes(cfg.max_message_bytes);
            core
        },
        net,
        epoch: 0,
        joined: false,
        changed: BTreeSet::new(),
        disk_due: None,
        write_due: None,
        versions: BTreeMap::new(),
        started: Instant::now(),
        trace: std::env::var_os("COLLAB_MIRROR_TRACE").is_some(),
        report,
    };
    let root = shell.root.clone();
    shell.watch_tree(&root);
    tokio::pin!(stop);
    let far = || Instant::now() + Duration::from_secs(3600);
    loop {
        let held_due = shell.held_due();
        tokio::select! {
            () = &mut stop => break,
            event = shell.net.events.recv() => {
                let Some(event) = event else { bail!("the network task stopped") };
                shell.net_event(event)?;
            }
            Some(path) = fs_rx.recv() => {
                shell.changed.insert(path);
                shell.disk_due.get_or_insert_with(|| Instant::now() + DISK_SETTLE);
            }
            () = sleep_until(shell.disk_due.unwrap_or_else(far)), if shell.disk_due.is_some() && shell.joined => {
                shell.look_at_disk();
            }
            () = sleep_until(shell.write_due.unwrap_or_else(far)), if shell.write_due.is_some() => {
                shell.write_due = None;
                shell.flush();
            }
            () = sleep_until(held_due.unwrap_or_else(far)), if held_due.is_some() => {
                shell.core.set_clock(shell.started.elapsed());
                let actions = shell.core.expire_held(false);
                shell.perform(actions);
            }
        }
        since_tx.send_replace(shell.core.main_revision());
        if shell.write_due.is_none() && !shell.core.dirty().is_empty() {
            shell.write_due = Some(Instant::now() + WRITE_DELAY);
        }
    }
    // Stopping: what is on disk goes to the room, what the room has goes to
    // disk, and the room acknowledges what was sent.
    while let Ok(path) = fs_rx.try_recv() {
        shell.changed.insert(path);
    }
    let deadline = Instant::now() + STOP_GRACE;
    loop {
        if shell.joined {
            shell.look_at_disk();
            // Nothing more will be found to pair a held file with.
            let actions = shell.core.expire_held(true);
            shell.perform(actions);
            shell.flush();
            since_tx.send_replace(shell.core.main_revision());
            if shell.core.is_idle() && shell.changed.is_empty() {
                break;
            }
        }
        match timeout(
            deadline.saturating_duration_since(Instant::now()),
            shell.net.events.recv(),
        )
        .await
        {
            Ok(Some(event)) => {
                if let Err(e) = shell.net_event(event) {
                    (shell.report)(&format!("{e:#}"));
                    break;
                }
            }
            _ => {
                (shell.report)("stopped before the room acknowledged every change");
                break;
            }
        }
    }
    let net::NetHandle { commands, task, .. } = shell.net;
    drop(commands);
    let _ = timeout(Duration::from_secs(2), task).await;
    Ok(())
}

impl Shell {
    /// When the oldest held file's hold ends, on tokio's clock.
    fn held_due(&self) -> Option<Instant> {
        self.core.held_due().map(|at| self.started + at)
    }

    fn net_event(&mut self, event: NetEvent) -> anyhow::Result<()> {
        self.core.set_clock(self.started.elapsed());
        let actions = match event {
            NetEvent::Connected { epoch, init } => {
                self.epoch = epoch;
                let first = !self.joined;
                self.joined = true;
                let actions = self.core.joined(init);
                self.perform(actions);
                if first {
                    self.look_at_everything();
                }
                Vec::new()
            }
            NetEvent::Message { epoch, msg } if epoch == self.epoch => self.core.received(msg),
            NetEvent::Message { .. } => Vec::new(),
            NetEvent::Disconnected {
                reason, retry_in, ..
            } => {
                (self.report)(&format!(
                    "{reason}; reconnecting in {:.0} s",
                    retry_in.as_secs_f64().ceil()
                ));
                Vec::new()
            }
            NetEvent::Fatal(why) => bail!("{why}"),
        };
        self.perform(actions);
        Ok(())
    }

    /// Watches `dir` and the directories under it the ignore rules keep.
    fn watch_tree(&mut self, dir: &Path) {
        for d in scan::listed_dirs(dir) {
            if self.watched.contains(&d) {
                continue;
            }
            match self.watcher.watch(&d, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.watched.insert(d);
                }
                Err(e) => (self.report)(&format!("cannot watch {}: {e}", d.display())),
            }
        }
    }

    /// What is at room path `path` on disk now (its version is kept: a
    /// write replaces only the version it was merged with).
    fn observe(&mut self, path: &str) -> Seen {
        let file = disk_path(&self.root, path);
        self.versions.insert(path.to_owned(), write::version(&file));
        match read_text(&file, self.max_file_bytes) {
            Ok(text) => Seen::Text(text),
            Err(scan::Unshareable::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                Seen::Missing
            }
            Err(e) => Seen::Unshareable(e.to_string()),
        }
    }

    /// Looks at every path events named since the last look.
    fn look_at_disk(&mut self) {
        self.core.set_clock(self.started.elapsed());
        self.disk_due = None;
        let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
        for path in std::mem::take(&mut self.changed) {
            let Some(rel) = room_path(&self.root, &path) else {
                continue;
            };
            if never_shared(&rel) {
                continue;
            }
            match fs::symlink_metadata(&path) {
                Err(_) => {
                    // A watched directory gone: watched again if it comes back.
                    self.watched.remove(&path);
                    seen.insert(rel.clone(), Seen::Missing);
                    // A directory gone: every file that was in it.
                    for sub in self.core.paths_under(&rel) {
                        let s = self.observe(&sub);
                        seen.insert(sub, s);
                    }
                }
                Ok(meta) if meta.is_dir() => {
                    // A directory appeared (moved in, checked out): its files,
                    // which may have come before its watch did; unless the
                    // ignore rules leave it out (a walk started inside an
                    // ignored directory would not know it is ignored).
                    if !is_listed(&self.root, &rel) {
                        continue;
                    }
                    // Watched before it is scanned, so nothing falls between.
                    self.watch_tree(&path);
                    let found = scan::scan_under(&self.root, &path, self.max_file_bytes);
                    for f in found.files {
                        seen.insert(f.path, Seen::Text(f.text));
                    }
                    for s in found.skipped {
                        if self.core.knows_path(&s.path) {
                            seen.insert(s.path, Seen::Unshareable(s.why));
                        }
                    }
                }
                Ok(meta) if meta.is_file() => {
                    if !self.core.knows_path(&rel) && !is_listed(&self.root, &rel) {
                        continue;
                    }
                    let s = self.observe(&rel);
                    seen.insert(rel, s);
                }
                Ok(_) => {}
            }
        }
        if !seen.is_empty() {
            let actions = self.core.disk_changed(seen.into_iter().collect());
            self.perform(actions);
        }
    }

    /// Looks at the whole directory once the watch is up and the room's
    /// tree is known: what changed between the share's scan (or the join's
    /// writes) and the start of the watch is taken in as one batch, so a
    /// rename in that moment is still a rename.
    fn look_at_everything(&mut self) {
        let mut seen: BTreeMap<String, Seen> = self
            .core
            .paths()
            .into_iter()
            .map(|p| (p, Seen::Missing))
            .collect();
        let found = scan::scan(&self.root, self.max_file_bytes);
        for f in found.files {
            seen.insert(f.path, Seen::Text(f.text));
        }
        for s in found.skipped {
            if self.core.knows_path(&s.path) {
                seen.insert(s.path, Seen::Unshareable(s.why));
            }
        }
        let actions = self.core.disk_changed(seen.into_iter().collect());
        self.perform(actions);
    }

    /// Writes every document whose file lacks room edits.
    fn flush(&mut self) {
        self.core.set_clock(self.started.elapsed());
        for (doc, path) in self.core.dirty() {
            let seen = self.observe(&path);
            let actions = self.core.flush(&doc, seen);
            self.perform(actions);
        }
    }

    fn perform(&mut self, actions: Vec<Action>) {
        for action in actions {
            if self.trace {
                (self.report)(&format!("mirror: {action:?}"));
            }
            // Room-to-disk changes stay inside the shared tree and out of
            // `.git`, whatever path a colleague gave the file.
            let touched: Vec<&str> = match &action {
                Action::Write { path, .. }
                | Action::Remove { path, .. }
                | Action::WriteAside { path, .. } => vec![path],
                Action::Rename { from, to } => vec![from, to],
                _ => vec![],
            };
            if let Some((path, e)) = touched
                .iter()
                .find_map(|p| write::check_writable(&self.root, p).err().map(|e| (p, e)))
            {
                (self.report)(&format!("not written to disk: {path}: {e}"));
                continue;
            }
            match action {
                Action::Send(msg) => {
                    let _ = self.net.commands.send(NetCommand::Send {
                        epoch: self.epoch,
                        msg,
                    });
                }
                Action::Write { path, text } => {
                    let seen = self.versions.get(&path).cloned().flatten();
                    let file = disk_path(&self.root, &path);
                    match write::write_unless_changed(&file, &text, |now| now == seen) {
                        Ok(true) => {
                            self.versions.insert(path, write::version(&file));
                        }
                        Ok(false) => {
                            let again = self.core.not_written(&path);
                            self.perform(again);
                        }
                        Err(e) => (self.report)(&format!("cannot write {path}: {e}")),
                    }
                }
                Action::Rename { from, to } => {
                    let (a, b) = (disk_path(&self.root, &from), disk_path(&self.root, &to));
                    if !a.exists() {
                        continue;
                    }
                    if let Err(e) = write::rename(&self.root, &a, &b) {
                        (self.report)(&format!("cannot move {from} to {to}: {e}"));
                    }
                }
                Action::Remove { path, expect } => {
                    let file = disk_path(&self.root, &path);
                    match self.observe(&path) {
                        Seen::Missing => {}
                        Seen::Text(t) if t == expect => {
                            if let Err(e) = write::remove(&self.root, &file) {
                                (self.report)(&format!("cannot remove {path}: {e}"));
                            }
                        }
                        _ => (self.report)(&format!(
                            "{path} was deleted in the room but changed on disk; kept on disk"
                        )),
                    }
                }
                Action::WriteAside { path, text } => {
                    // A free name: an earlier kept copy is never replaced.
                    let base = format!("{path}{}", scan::LOST_SUFFIX);
                    let aside = (1..)
                        .map(|n| {
                            if n == 1 {
                                base.clone()
                            } else {
                                format!("{base}.{n}")
                            }
                        })
                        .find(|p| !disk_path(&self.root, p).exists())
                        .unwrap_or(base);
                    if let Err(e) = write::write_atomic(&disk_path(&self.root, &aside), &text) {
                        (self.report)(&format!(
                            "cannot keep your version of {path} in {aside}: {e}"
                        ));
                    }
                }
                Action::Read(path) => {
                    self.changed.insert(disk_path(&self.root, &path));
                    self.disk_due = Some(Instant::now());
                }
                Action::Warn(what) => (self.report)(&what),
            }
        }
    }
}

/// A report that prints each line on stderr, prefixed as the binary's
/// errors are.
pub fn to_stderr() -> Report {
    Arc::new(|line: &str| eprintln!("collab: {line}"))
}

/// A report kept in memory (while the editor has the terminal), printed
/// later with [`Kept::print`].
#[derive(Clone, Default)]
pub struct Kept(Arc<std::sync::Mutex<Vec<String>>>);

impl Kept {
    /// The report that keeps lines here.
    pub fn report(&self) -> Report {
        let kept = self.0.clone();
        Arc::new(move |line: &str| {
            if let Ok(mut lines) = kept.lock() {
                lines.push(line.to_owned());
            }
        })
    }

    /// Prints what was kept on stderr.
    pub fn print(&self) {
        if let Ok(lines) = self.0.lock() {
            for line in lines.iter() {
                eprintln!("collab: {line}");
            }
        }
    }
}

/// What the mirror reported since the last look, for an editor running
/// beside it to show while it has the terminal ([`Background::reports`]).
pub struct Reports {
    kept: Kept,
    next: usize,
}

impl Reports {
    /// The lines reported since the last call.
    pub fn take_new(&mut self) -> Vec<String> {
        let Ok(lines) = self.kept.0.lock() else {
            return Vec::new();
        };
        let new = lines.get(self.next..).unwrap_or_default().to_vec();
        self.next = lines.len();
        new
    }
}

/// True when `path` exists and holds files (for `join --dir`'s check).
pub fn is_nonempty_dir(path: &Path) -> bool {
    fs::read_dir(path).is_ok_and(|mut d| d.next().is_some())
}

/// A mirror running in the background beside the editor; its reports are
/// kept while the editor has the terminal and printed when it stops.
pub struct Background {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    kept: Kept,
}

impl Background {
    /// Starts mirroring `cfg`.
    pub fn spawn(cfg: MirrorConfig) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let kept = Kept::default();
        let report = kept.report();
        let task = tokio::spawn(run(
            cfg,
            async move {
                let _ = stopped.await;
            },
            report,
        ));
        Self { stop, task, kept }
    }

    /// Its reports as they come (all of them are still printed by
    /// [`Background::finish`]).
    pub fn reports(&self) -> Reports {
        Reports {
            kept: self.kept.clone(),
            next: 0,
        }
    }

    /// Stops it (writing what is pending) and prints what it reported.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let result = self.task.await;
        self.kept.print();
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("collab: the disk mirror stopped: {e:#}"),
            Err(e) => eprintln!("collab: the disk mirror failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_hand_out_each_line_once_and_keep_all_for_the_exit() {
        let kept = Kept::default();
        let report = kept.report();
        let mut reports = Reports {
            kept: kept.clone(),
            next: 0,
        };
        assert!(reports.take_new().is_empty());
        report("a.swp: not shared");
        report("b: kept");
        assert_eq!(reports.take_new(), ["a.swp: not shared", "b: kept"]);
        assert!(reports.take_new().is_empty());
        report("c");
        assert_eq!(reports.take_new(), ["c"]);
        assert_eq!(kept.0.lock().unwrap().len(), 3);
    }
}
