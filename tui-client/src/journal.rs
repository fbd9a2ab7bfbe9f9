//! The journal of unacknowledged edits: what survives when `collab` itself
//! does not (the terminal closed, the laptop's battery died, `kill -9`).
//!
//! While edits wait for the server's acknowledgement, the editor (and
//! `collab append`) keep them on disk, with the revision they are based on,
//! the seq they were or will be sent with, the session's `client_id` and the
//! local text: `$XDG_STATE_HOME/collab/journal/ROOM/CLIENT_ID.json`, written
//! to a temporary file, fsynced and renamed over the old one, so a crash
//! leaves either the old journal or the new one. Once everything is
//! acknowledged the file is removed.
//!
//! The next `collab join` (or `append`) of the room takes the journal and
//! reconnects with its `client_id` and `since`: the server's `missed` entries
//! acknowledge what it had already committed, and the rest is resent with
//! its original seq, so every edit is applied exactly once.
//!
//! A project editor journals every document with unacknowledged edits: the
//! main document's at the top level as before (so `collab append` and older
//! versions read it), each other one in `others`, named by its id. Such a
//! journal has format 2, which older versions leave alone rather than
//! misread, and `collab append` leaves it to the editor. It also keeps the
//! next seq of every document the session used seqs in (`seqs`), edits
//! pending there or not: the next process continues under the same
//! `client_id`, so it must never number an edit with a seq used before.
//!
//! A running session holds a lock on `CLIENT_ID.lock` beside its journal
//! (released by the kernel however the process ends), so a second `collab`
//! on the same machine never takes over a journal that is still in use.

use std::fs::{self, File};

use tokio::sync::mpsc::UnboundedSender;

use crate::net::NetCommand;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use collab_protocol::{Operation, Pending};
use serde::{Deserialize, Serialize};

use crate::core::editor::Editor;
use crate::local_state::state_dir;
use collab_protocol::Unacknowledged;

/// The journal's format for the main document alone; a different one is
/// left alone, not misread.
const FORMAT: u32 = 1;
/// The format of a journal naming documents (a project editor's).
const FORMAT_DOCS: u32 = 2;

/// One journal file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// [`FORMAT`] or [`FORMAT_DOCS`].
    pub format: u32,
    /// The room.
    pub room: String,
    /// The session's client id: the server de-duplicates by it.
    pub client_id: String,
    /// The edits of the main document, or (when it has none) of `doc`.
    #[serde(flatten)]
    pub first: DocEdits,
    /// The other documents' edits (a project editor's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub others: Vec<DocEdits>,
    /// The seq the next edit gets in every document this client used seqs
    /// in, by id, edits unacknowledged or not (a project editor's): the
    /// next process continues under this `client_id`, and a seq used again
    /// would be taken for a resend.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seqs: Vec<(String, u64)>,
    /// When it was written, in milliseconds since the Unix epoch.
    pub written_at: u64,
}

/// One document's unacknowledged edits, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocEdits {
    /// The document (`None`: the main document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    /// The revision the edits are based on.
    pub revision: u64,
    /// The seq the next edit would be sent with.
    pub next_seq: u64,
    /// The seq of the edit in flight.
    pub in_flight_seq: u64,
    /// The edit in flight.
    pub in_flight: Operation,
    /// Later edits, composed, not yet sent.
    pub buffer: Option<Operation>,
    /// The local text (the server's at `revision` plus the edits).
    pub text: String,
}

impl DocEdits {
    /// `unacked` edits of `doc`.
    pub fn new(doc: Option<String>, unacked: Unacknowledged) -> Self {
        Self {
            doc,
            revision: unacked.revision,
            next_seq: unacked.next_seq,
            in_flight_seq: unacked.in_flight.seq,
            in_flight: unacked.in_flight.operation,
            buffer: unacked.buffer,
            text: unacked.text.to_string(),
        }
    }

    /// The edits, as the sync state machine resumes them.
    pub fn unacknowledged(&self) -> Unacknowledged {
        Unacknowledged {
            revision: self.revision,
            next_seq: self.next_seq,
            in_flight: Pending {
                seq: self.in_flight_seq,
                operation: self.in_flight.clone(),
            },
            buffer: self.buffer.clone(),
            text: ropey::Rope::from_str(&self.text),
        }
    }
}

impl Entry {
    /// The journal entry for `unacked` edits of `client_id` in `room`'s
    /// main document.
    pub fn new(room: &str, client_id: &str, unacked: Unacknowledged) -> Self {
        Self::for_docs(
            room,
            client_id,
            vec![DocEdits::new(None, unacked)],
            Vec::new(),
        )
        .expect("one document")
    }

    /// The journal entry for several documents' edits (the main one, named
    /// `None`, first if it has any), and every document's next seq; `None`
    /// when there are no edits.
    pub fn for_docs(
        room: &str,
        client_id: &str,
        mut docs: Vec<DocEdits>,
        seqs: Vec<(String, u64)>,
    ) -> Option<Self> {
        if docs.is_empty() {
            return None;
        }
        let first = docs.remove(0);
        let format = if first.doc.is_none() && docs.is_empty() {
            FORMAT
        } else {
            FORMAT_DOCS
        };
        Some(Self {
            format,
            room: room.to_owned(),
            client_id: client_id.to_owned(),
            first,
            others: docs,
            seqs,
            written_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        })
    }

    /// True when only the main document's edits are journaled (what
    /// `collab append` can continue).
    pub fn is_main_only(&self) -> bool {
        self.first.doc.is_none() && self.others.is_empty()
    }

    /// The main document's edits (for `collab append`: see
    /// [`Entry::is_main_only`]).
    pub fn unacknowledged(&self) -> Unacknowledged {
        self.first.unacknowledged()
    }

    /// Every document's edits.
    pub fn documents(&self) -> impl Iterator<Item = &DocEdits> {
        std::iter::once(&self.first).chain(&self.others)
    }

    /// `editor` continuing this journal: every document's edits resumed,
    /// and every document's seqs continued.
    pub fn resume(&self, mut editor: Editor) -> Editor {
        for edits in self.documents() {
            editor = match &edits.doc {
                None => editor.resume(&edits.unacknowledged()),
                Some(doc) => editor.resume_doc(doc, &edits.unacknowledged()),
            };
        }
        editor.with_seqs(self.seqs.iter().cloned())
    }
}

/// A session's journal, locked for as long as this value (or a clone) lives.
#[derive(Debug, Clone)]
pub struct Journal {
    path: PathBuf,
    lock: std::sync::Arc<File>,
}

/// The folder of `room`'s journals under `root` (the state directory).
fn room_dir(root: &Path, room: &str) -> PathBuf {
    root.join("journal").join(room)
}

impl Journal {
    /// The journal of session `client_id` in `room`, under the state
    /// directory, locked (`None` without a home to keep it in, or when
    /// another process holds it).
    pub fn for_session(room: &str, client_id: &str) -> Option<Self> {
        Self::claim(&state_dir()?, room, client_id)
    }

    /// The same under `root`.
    pub fn claim(root: &Path, room: &str, client_id: &str) -> Option<Self> {
        let dir = room_dir(root, room);
        fs::create_dir_all(&dir).ok()?;
        let lock = File::create(dir.join(format!("{client_id}.lock"))).ok()?;
        lock.try_lock().ok()?;
        Some(Self {
            path: dir.join(format!("{client_id}.json")),
            lock: std::sync::Arc::new(lock),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `entry` durably: a temporary file, fsynced, renamed over the
    /// journal, and the folder fsynced so the rename survives a crash too.
    pub fn write(&self, entry: &Entry) -> io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let tmp = self.path.with_extension("json.tmp");
        let mut file = File::create(&tmp)?;
        file.write_all(&serde_json::to_vec(entry).map_err(io::Error::other)?)?;
        file.sync_all()?;
        fs::rename(&tmp, &self.path)?;
        File::open(dir)?.sync_all()
    }

    /// Removes the journal: everything was acknowledged.
    pub fn remove(&self) -> io::Result<()> {
        let _ = &self.lock;
        match fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// The oldest journal left for `room` by a process that is gone, if any,
/// with the journal claimed for the caller's session (which continues it
/// under the same client id, and so overwrites or removes that file). A file
/// that cannot be read is renamed `*.unreadable` and skipped, never deleted.
pub fn take(room: &str) -> Option<(Entry, Journal)> {
    take_in(&state_dir()?, room, |_| true)
}

/// [`take`] of a journal of the main document alone (what `collab append`
/// can continue); a project editor's journal is left to the editor.
pub fn take_main_only(room: &str) -> Option<(Entry, Journal)> {
    take_in(&state_dir()?, room, Entry::is_main_only)
}

/// [`take`] under `root`, of the journals `wanted` accepts.
pub fn take_in(
    root: &Path,
    room: &str,
    wanted: impl Fn(&Entry) -> bool,
) -> Option<(Entry, Journal)> {
    let dir = room_dir(root, room);
    let mut found: Vec<(Entry, Journal)> = Vec::new();
    for item in fs::read_dir(&dir).ok()?.flatten() {
        let path = item.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let Some(client_id) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        // In use by a running session: not ours to take.
        let Some(journal) = Journal::claim(root, room, client_id) else {
            continue;
        };
        let parsed = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Entry>(&b).ok())
            .filter(|e| {
                matches!(e.format, FORMAT | FORMAT_DOCS)
                    && e.room == room
                    && e.client_id == client_id
            });
        match parsed {
            Some(entry) if wanted(&entry) => found.push((entry, journal)),
            // Someone else's to continue: unlocked again.
            Some(_) => {}
            None => {
                let _ = fs::rename(&path, path.with_extension("unreadable"));
            }
        }
    }
    found.sort_by_key(|(e, _)| e.written_at);
    found.into_iter().next()
}

/// What the writer thread is asked to do.
enum Job {
    Write(Vec<DocEdits>, Vec<(String, u64)>),
    Remove,
    /// Hand these to the network once everything asked before is on disk.
    Release(Vec<NetCommand>, UnboundedSender<NetCommand>),
}

/// Writes a session's journal on a thread of its own, so the editor never
/// waits for the disk: only the newest state matters, so writes that queue
/// up behind a slow disk are skipped for the last one. What the editor
/// sends goes through it too ([`Writer::release`]), out only once the
/// journal that holds it is on disk: a crash can then lose no edit the
/// server may have, nor the seq it took.
pub struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer of `journal`, for session `client_id` in `room`;
    /// `failed` hears the first error.
    pub fn spawn(
        journal: Journal,
        room: &str,
        client_id: &str,
        failed: impl Fn(String) + Send + 'static,
    ) -> Self {
        let (room, client_id) = (room.to_owned(), client_id.to_owned());
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::spawn(move || {
            let mut reported = false;
            while let Ok(first) = rx.recv() {
                // Everything queued meanwhile: the newest state is written
                // once, then every held message goes out, in order.
                let mut state = None;
                let mut releases = Vec::new();
                let mut next = Some(first);
                while let Some(job) = next {
                    match job {
                        Job::Release(msgs, to) => releases.push((msgs, to)),
                        job => state = Some(job),
                    }
                    next = rx.try_recv().ok();
                }
                let result = match state {
                    Some(Job::Write(docs, seqs)) => {
                        match Entry::for_docs(&room, &client_id, docs, seqs) {
                            Some(entry) => journal.write(&entry),
                            None => journal.remove(),
                        }
                    }
                    Some(Job::Remove) => journal.remove(),
                    _ => Ok(()),
                };
                if let Err(e) = result {
                    if !std::mem::replace(&mut reported, true) {
                        failed(format!(
                            "cannot write the journal {}: {e}",
                            journal.path().display()
                        ));
                    }
                }
                // Sent even when the write failed (the user was told): a
                // broken disk must not stop the editing.
                for (msgs, to) in releases {
                    for msg in msgs {
                        let _ = to.send(msg);
                    }
                }
            }
        });
        Self {
            jobs: Some(tx),
            thread: Some(thread),
        }
    }

    /// Journals `unacked` edits of the main document (replacing what is
    /// there).
    pub fn write(&self, unacked: Unacknowledged) {
        self.write_docs(vec![DocEdits::new(None, unacked)], Vec::new());
    }

    /// Journals these documents' edits and every document's next seq
    /// (replacing what is there; no edits: removes the journal).
    pub fn write_docs(&self, docs: Vec<DocEdits>, seqs: Vec<(String, u64)>) {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(Job::Write(docs, seqs));
        }
    }

    /// Hands `msgs` to `to` once every journal write asked for so far is
    /// on disk.
    pub fn release(&self, msgs: Vec<NetCommand>, to: &UnboundedSender<NetCommand>) {
        if msgs.is_empty() {
            return;
        }
        match &self.jobs {
            Some(jobs) => {
                if let Err(mpsc::SendError(Job::Release(msgs, to))) =
                    jobs.send(Job::Release(msgs, to.clone()))
                {
                    // The thread is gone: send them as they are.
                    for msg in msgs {
                        let _ = to.send(msg);
                    }
                }
            }
            None => {
                for msg in msgs {
                    let _ = to.send(msg);
                }
            }
        }
    }

    /// Removes the journal.
    pub fn remove(&self) {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(Job::Remove);
        }
    }

    /// Waits until everything asked for is on disk.
    pub fn finish(mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(json: &str) -> Operation {
        serde_json::from_str(json).unwrap()
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "collab-journal-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn entry(room: &str, client: &str, at: u64) -> Entry {
        let mut e = Entry::new(
            room,
            client,
            Unacknowledged {
                revision: 4,
                next_seq: 3,
                in_flight: Pending {
                    seq: 2,
                    operation: op(r#"[3, "x"]"#),
                },
                buffer: Some(op(r#"[4, "y"]"#)),
                text: ropey::Rope::from_str("abcxy"),
            },
        );
        e.written_at = at;
        e
    }

    #[test]
    fn a_written_journal_is_taken_back_whole_once() {
        let root = scratch("roundtrip");
        let j = Journal::claim(&root, "room1", "c1").unwrap();
        j.write(&entry("room1", "c1", 5)).unwrap();
        assert!(
            take_in(&root, "room1", |_| true).is_none(),
            "in use by its session"
        );
        drop(j);
        let (got, journal) = take_in(&root, "room1", |_| true).expect("journal");
        assert_eq!(got, entry("room1", "c1", 5));
        assert_eq!(got.unacknowledged().in_flight.seq, 2);
        assert!(
            take_in(&root, "room1", |_| true).is_none(),
            "taken: locked by its new owner"
        );
        journal.remove().unwrap();
        drop(journal);
        assert!(
            take_in(&root, "room1", |_| true).is_none(),
            "gone once acknowledged"
        );
        assert!(take_in(&root, "other", |_| true).is_none());
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn what_is_sent_leaves_only_after_the_journal_holding_it_is_written() {
        let root = scratch("release");
        let j = Journal::claim(&root, "r", "w").unwrap();
        let path = j.path().to_owned();
        let writer = Writer::spawn(j, "r", "w", |e| panic!("{e}"));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let msg = |seq| NetCommand::Send {
            epoch: 0,
            msg: collab_protocol::ClientMessage::CodeUpdate {
                revision: 0,
                seq,
                operation: op(r#"["x"]"#),
                doc: None,
            },
        };
        for round in 1..=20u64 {
            let mut unacked = entry("r", "w", 0).unacknowledged();
            unacked.revision = 100 + round;
            writer.write(unacked);
            writer.release(vec![msg(round)], &tx);
            let got = rx.blocking_recv().expect("released");
            let NetCommand::Send { msg, .. } = got else {
                panic!("not a send")
            };
            let collab_protocol::ClientMessage::CodeUpdate { seq, .. } = msg else {
                panic!("not an edit")
            };
            assert_eq!(seq, round, "in order");
            // By the time it is out, the journal written before it is on
            // disk.
            let text = fs::read_to_string(&path).unwrap();
            let on_disk: Entry = serde_json::from_str(&text).unwrap();
            assert_eq!(on_disk.unacknowledged().revision, 100 + round);
        }
        writer.finish();
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn the_oldest_goes_first_and_garbage_is_set_aside() {
        let root = scratch("oldest");
        for (client, at) in [("new", 9), ("old", 1)] {
            let j = Journal::claim(&root, "r", client).unwrap();
            j.write(&entry("r", client, at)).unwrap();
        }
        fs::write(room_dir(&root, "r").join("junk.json"), "{not json").unwrap();
        let (first, _held) = take_in(&root, "r", |_| true).unwrap();
        assert_eq!(first.client_id, "old");
        assert_eq!(take_in(&root, "r", |_| true).unwrap().0.client_id, "new");
        assert!(room_dir(&root, "r").join("junk.unreadable").exists());
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn a_project_journal_keeps_every_document_and_append_leaves_it() {
        let root = scratch("docs");
        let j = Journal::claim(&root, "r", "p").unwrap();
        let unacked = entry("r", "p", 0).unacknowledged();
        let docs = vec![
            DocEdits::new(Some("d2".into()), unacked.clone()),
            DocEdits::new(Some("d3".into()), unacked),
        ];
        let seqs = vec![("d2".to_owned(), 3), ("d9".to_owned(), 12)];
        j.write(&Entry::for_docs("r", "p", docs, seqs.clone()).unwrap())
            .unwrap();
        drop(j);
        let text = fs::read_to_string(room_dir(&root, "r").join("p.json")).unwrap();
        assert!(
            text.contains(r#""format":2"#) && text.contains(r#""doc":"d2""#),
            "{text}"
        );
        assert!(take_in(&root, "r", Entry::is_main_only).is_none());
        let (got, _held) = take_in(&root, "r", |_| true).unwrap();
        let docs: Vec<_> = got.documents().map(|d| d.doc.clone()).collect();
        assert_eq!(docs, [Some("d2".into()), Some("d3".into())]);
        assert_eq!(got.documents().nth(1).unwrap().unacknowledged().next_seq, 3);
        // The seqs of a document without unacknowledged edits survive too.
        assert_eq!(got.seqs, seqs);
        let ed = got.resume(Editor::new("r", "me", None));
        assert!(ed.is_open("d2") && ed.is_open("d3"));
        assert!(ed.next_seqs().contains(&("d9".to_owned(), 12)));
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn the_writer_keeps_the_newest_and_removes_when_asked() {
        let root = scratch("writer");
        let j = Journal::claim(&root, "r", "c").unwrap();
        let w = Writer::spawn(j.clone(), "r", "c", |e| panic!("{e}"));
        for next_seq in 3..50 {
            let mut unacked = entry("r", "c", 0).unacknowledged();
            unacked.next_seq = next_seq;
            w.write(unacked);
        }
        w.finish();
        let saved: Entry = serde_json::from_slice(&fs::read(j.path()).unwrap()).unwrap();
        assert_eq!(
            (saved.first.next_seq, saved.first.text.as_str()),
            (49, "abcxy")
        );
        let w = Writer::spawn(j.clone(), "r", "c", |e| panic!("{e}"));
        w.remove();
        w.finish();
        assert!(!j.path().exists());
        let _ = fs::remove_dir_all(&root);
    }
}
