//! One task per live room: the room's single writer.
//!
//! Every edit, caret move, join and leave of a room goes through its task's
//! queue, so commits are totally ordered without locks, and fan-out happens in
//! commit order. Connections talk to the task through a [`RoomHandle`]; the
//! task talks back through each connection's [`Outbox`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use collab_protocol::{close_code, error_code, CommittedOp, Operation, ServerMessage, UserInfo};
use ropey::Rope;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

use crate::config::Config;
use crate::ids;

/// What a connection's writer is told besides the ordered message queue:
/// the newest caret of each other user (state, not events, so a slow reader
/// gets the latest position instead of a backlog) and a request to close.
#[derive(Default)]
pub struct ConnSignals {
    cursors: Mutex<HashMap<Arc<str>, Utf8Bytes>>,
    close: Mutex<Option<(u16, String)>>,
    /// Woken whenever `cursors` or `close` changes.
    pub notify: Notify,
}

impl ConnSignals {
    /// Takes the pending caret messages.
    pub fn take_cursors(&self) -> Vec<Utf8Bytes> {
        let mut map = self.cursors.lock().unwrap_or_else(|e| e.into_inner());
        map.drain().map(|(_, m)| m).collect()
    }

    /// Takes the close request, if any.
    pub fn take_close(&self) -> Option<(u16, String)> {
        self.close.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn set_cursor(&self, user_id: Arc<str>, msg: Utf8Bytes) {
        self.cursors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(user_id, msg);
        self.notify.notify_one();
    }

    fn drop_cursor(&self, user_id: &str) {
        self.cursors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(user_id);
    }
}

/// The sending side of one connection, held by the room task.
#[derive(Clone)]
pub struct Outbox {
    /// Ordered messages: inits, edits, acks, presence, errors.
    pub queue: mpsc::Sender<Utf8Bytes>,
    /// Carets and close requests.
    pub signals: Arc<ConnSignals>,
}

impl Outbox {
    /// Queues a message; false when the queue is full (the reader lags).
    pub fn push(&self, msg: Utf8Bytes) -> bool {
        self.queue.try_send(msg).is_ok()
    }

    /// Asks the writer to send what is queued, then close with `code`.
    pub fn close(&self, code: u16, reason: &str) {
        *self.signals.close.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((code, reason.to_owned()));
        self.signals.notify.notify_one();
    }

    /// Asks for a normal close unless another close is already requested.
    pub fn close_unless_closing(&self, code: u16, reason: &str) {
        let mut close = self.signals.close.lock().unwrap_or_else(|e| e.into_inner());
        if close.is_none() {
            *close = Some((code, reason.to_owned()));
        }
        drop(close);
        self.signals.notify.notify_one();
    }

    /// Sends an `error` message, then closes with `close`.
    pub fn fail(&self, code: &str, message: &str, close: u16) {
        self.push(ServerMessage::error(code, message).to_json().into());
        self.close(close, code);
    }
}

/// A connection asking to join a room.
pub struct JoinRequest {
    /// The client's id (kept across its reconnects).
    pub client_id: String,
    /// Cleaned display name.
    pub name: String,
    /// The revision a reconnecting client last saw.
    pub since: Option<u64>,
    /// Where the room sends this connection's messages.
    pub outbox: Outbox,
}

/// What a joining connection needs for its `init`.
pub struct Joined {
    /// Identifies the connection to the room task.
    pub conn_id: u64,
    /// The `init` message, with the document at the revision the connection
    /// starts from; everything after it arrives through the outbox queue.
    pub init: ServerMessage,
}

/// Why a join was refused.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// `since` names a revision the room has not reached.
    #[error("since={since} is ahead of the room's revision {revision}")]
    FutureRevision {
        /// Asked for.
        since: u64,
        /// The room's.
        revision: u64,
    },
    /// The room was removed while joining.
    #[error("room not found")]
    Gone,
}

/// A point-in-time view of a room, for REST.
pub struct Snapshot {
    /// Current revision.
    pub revision: u64,
    /// Document at that revision (cheap clone of the rope).
    pub doc: Rope,
    /// Language hint.
    pub language: String,
    /// Users present.
    pub users: Vec<UserInfo>,
}

enum Command {
    Join(JoinRequest, oneshot::Sender<Result<Joined, JoinError>>),
    Leave {
        conn_id: u64,
    },
    Edit {
        conn_id: u64,
        revision: u64,
        seq: u64,
        operation: Operation,
    },
    Cursor {
        conn_id: u64,
        revision: u64,
        cursor: u64,
        anchor: Option<u64>,
    },
    Snapshot(oneshot::Sender<Snapshot>),
}

/// How connections and the REST layer reach a room's task.
#[derive(Clone)]
pub struct RoomHandle {
    tx: mpsc::Sender<Command>,
}

impl RoomHandle {
    /// Joins the room. Errors when the room refused or went away.
    pub async fn join(&self, req: JoinRequest) -> Result<Joined, JoinError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Join(req, tx))
            .await
            .map_err(|_| JoinError::Gone)?;
        rx.await.map_err(|_| JoinError::Gone)?
    }

    /// Leaves the room; safe to call from `Drop`.
    pub fn leave(&self, conn_id: u64) {
        if let Err(mpsc::error::TrySendError::Full(cmd)) =
            self.tx.try_send(Command::Leave { conn_id })
        {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(cmd).await;
            });
        }
    }

    /// Submits an edit; false when the room is gone.
    pub async fn edit(&self, conn_id: u64, revision: u64, seq: u64, operation: Operation) -> bool {
        self.tx
            .send(Command::Edit {
                conn_id,
                revision,
                seq,
                operation,
            })
            .await
            .is_ok()
    }

    /// Submits a caret move; false when the room is gone.
    pub async fn cursor(
        &self,
        conn_id: u64,
        revision: u64,
        cursor: u64,
        anchor: Option<u64>,
    ) -> bool {
        self.tx
            .send(Command::Cursor {
                conn_id,
                revision,
                cursor,
                anchor,
            })
            .await
            .is_ok()
    }

    /// The room's current state, or `None` when it is gone.
    pub async fn snapshot(&self) -> Option<Snapshot> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Command::Snapshot(tx)).await.ok()?;
        rx.await.ok()
    }
}

/// Every room this server holds, by id.
pub struct Rooms {
    map: Arc<Mutex<HashMap<String, RoomHandle>>>,
    config: Config,
}

impl Rooms {
    /// An empty registry.
    pub fn new(config: Config) -> Self {
        Self {
            map: Arc::default(),
            config,
        }
    }

    /// Creates a room holding `code`; returns its id.
    pub fn create(&self, code: &str, language: &str) -> String {
        let id = ids::new_room_id();
        let (tx, rx) = mpsc::channel(1024);
        let handle = RoomHandle { tx };
        let room = RoomTask::new(id.clone(), code, language, self.config.clone());
        self.lock().insert(id.clone(), handle.clone());
        tokio::spawn(room.run(rx, handle, self.map.clone()));
        id
    }

    /// The room with this id, if it exists.
    pub fn get(&self, id: &str) -> Option<RoomHandle> {
        self.lock().get(id).cloned()
    }

    /// How many rooms exist.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no room exists.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, RoomHandle>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct LogEntry {
    revision: u64,
    operation: Operation,
    user_id: Arc<str>,
    client_id: Arc<str>,
    seq: u64,
}

struct Conn {
    user_id: Arc<str>,
    client_id: Arc<str>,
    outbox: Outbox,
    /// Set once its queue overflowed; it is being closed.
    lagging: bool,
}

struct Presence {
    info: UserInfo,
    conns: usize,
}

/// A returning client keeps its user id, and its color when still free.
struct Identity {
    user_id: Arc<str>,
    color: String,
}

struct RoomTask {
    id: String,
    language: String,
    config: Config,
    doc: Rope,
    revision: u64,
    log: VecDeque<LogEntry>,
    /// Per client id: the last committed seq and its revision.
    dedup: HashMap<Arc<str>, (u64, u64)>,
    identities: HashMap<Arc<str>, Identity>,
    users: HashMap<Arc<str>, Presence>,
    conns: HashMap<u64, Conn>,
    next_conn: u64,
    last_activity: Instant,
}

impl RoomTask {
    fn new(id: String, code: &str, language: &str, config: Config) -> Self {
        Self {
            id,
            language: language.to_owned(),
            config,
            doc: Rope::from_str(code),
            revision: 0,
            log: VecDeque::new(),
            dedup: HashMap::new(),
            identities: HashMap::new(),
            users: HashMap::new(),
            conns: HashMap::new(),
            next_conn: 1,
            last_activity: Instant::now(),
        }
    }

    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Command>,
        me: RoomHandle,
        registry: Arc<Mutex<HashMap<String, RoomHandle>>>,
    ) {
        let tick =
            (self.config.room_ttl / 4).clamp(Duration::from_millis(10), Duration::from_secs(30));
        let mut ticker = tokio::time::interval(tick);
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd),
                    None => break,
                },
                _ = ticker.tick() => {
                    if self.conns.is_empty() && self.last_activity.elapsed() >= self.config.room_ttl {
                        let mut map = registry.lock().unwrap_or_else(|e| e.into_inner());
                        if map.get(&self.id).is_some_and(|h| h.tx.same_channel(&me.tx)) {
                            map.remove(&self.id);
                        }
                        tracing::info!(room = %short(&self.id), "room expired");
                        break;
                    }
                }
            }
        }
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Join(req, reply) => {
                let result = self.join(req);
                if let Err(Ok(joined)) = reply.send(result) {
                    // The connection went away while joining.
                    self.leave(joined.conn_id);
                }
            }
            Command::Leave { conn_id } => self.leave(conn_id),
            Command::Edit {
                conn_id,
                revision,
                seq,
                operation,
            } => self.edit(conn_id, revision, seq, operation),
            Command::Cursor {
                conn_id,
                revision,
                cursor,
                anchor,
            } => self.cursor(conn_id, revision, cursor, anchor),
            Command::Snapshot(reply) => {
                let _ = reply.send(Snapshot {
                    revision: self.revision,
                    doc: self.doc.clone(),
                    language: self.language.clone(),
                    users: self.users.values().map(|p| p.info.clone()).collect(),
                });
            }
        }
    }

    /// The oldest revision an edit or a reconnect may be based on.
    fn oldest_base(&self) -> u64 {
        self.revision - self.log.len() as u64
    }

    fn join(&mut self, req: JoinRequest) -> Result<Joined, JoinError> {
        if let Some(since) = req.since {
            if since > self.revision {
                return Err(JoinError::FutureRevision {
                    since,
                    revision: self.revision,
                });
            }
        }
        self.last_activity = Instant::now();
        let client_id: Arc<str> = req.client_id.into();
        let present_colors: Vec<String> =
            self.users.values().map(|p| p.info.color.clone()).collect();
        let salt = self.identities.len();
        let identity = self
            .identities
            .entry(client_id.clone())
            .or_insert_with(|| Identity {
                user_id: ids::new_user_id().into(),
                color: String::new(),
            });
        let user_id = identity.user_id.clone();
        let already_here = self.users.get_mut(&user_id);
        let color = match already_here {
            Some(p) => {
                p.conns += 1;
                p.info.name = req.name.clone();
                p.info.color.clone()
            }
            None => {
                let color = ids::pick_color(
                    present_colors.iter().map(String::as_str),
                    Some(identity.color.as_str()).filter(|c| !c.is_empty()),
                    salt,
                );
                if let Some(id) = self.identities.get_mut(&client_id) {
                    id.color = color.clone();
                }
                let info = UserInfo {
                    user_id: user_id.to_string(),
                    name: req.name.clone(),
                    color: color.clone(),
                    cursor: None,
                    anchor: None,
                };
                let joined = ServerMessage::UserJoined { user: info.clone() }.to_json();
                self.broadcast(&Utf8Bytes::from(joined), None);
                self.users
                    .insert(user_id.clone(), Presence { info, conns: 1 });
                color
            }
        };
        let missed = req.since.and_then(|since| {
            (since >= self.oldest_base()).then(|| {
                self.log
                    .iter()
                    .filter(|e| e.revision > since)
                    .map(|e| CommittedOp {
                        revision: e.revision,
                        operation: e.operation.clone(),
                        user_id: e.user_id.to_string(),
                        seq: (e.client_id == client_id).then_some(e.seq),
                    })
                    .collect()
            })
        });
        let conn_id = self.next_conn;
        self.next_conn += 1;
        // Carets of the others go through the coalescing slots like any later move.
        self.conns.insert(
            conn_id,
            Conn {
                user_id: user_id.clone(),
                client_id,
                outbox: req.outbox,
                lagging: false,
            },
        );
        let users = self
            .users
            .values()
            .filter(|p| *p.info.user_id != *user_id)
            .map(|p| p.info.clone())
            .collect();
        tracing::debug!(room = %short(&self.id), user = %user_id, "joined");
        Ok(Joined {
            conn_id,
            init: ServerMessage::Init {
                room_id: self.id.clone(),
                user_id: user_id.to_string(),
                name: req.name,
                color,
                revision: self.revision,
                code: self.doc.to_string(),
                language: self.language.clone(),
                users,
                missed,
            },
        })
    }

    fn leave(&mut self, conn_id: u64) {
        let Some(conn) = self.conns.remove(&conn_id) else {
            return;
        };
        self.last_activity = Instant::now();
        let Some(p) = self.users.get_mut(&conn.user_id) else {
            return;
        };
        p.conns -= 1;
        if p.conns == 0 {
            self.users.remove(&conn.user_id);
            for c in self.conns.values() {
                c.outbox.signals.drop_cursor(&conn.user_id);
            }
            let msg = ServerMessage::UserLeft {
                user_id: conn.user_id.to_string(),
            }
            .to_json();
            self.broadcast(&msg.into(), None);
        }
    }

    /// Queues `msg` for every connection except `except`'s user; a connection
    /// whose queue is full is closed as lagging rather than buffered without bound.
    fn broadcast(&mut self, msg: &Utf8Bytes, except: Option<&str>) {
        for conn in self.conns.values_mut() {
            if conn.lagging || except.is_some_and(|u| *conn.user_id == *u) {
                continue;
            }
            if !conn.outbox.push(msg.clone()) {
                lag(conn);
            }
        }
    }

    fn edit(&mut self, conn_id: u64, base: u64, seq: u64, operation: Operation) {
        let Some(conn) = self.conns.get(&conn_id) else {
            return;
        };
        let outbox = conn.outbox.clone();
        let client_id = conn.client_id.clone();
        let user_id = conn.user_id.clone();
        if let Some(&(last_seq, last_rev)) = self.dedup.get(&client_id) {
            if seq <= last_seq {
                // Already committed (a resend after a reconnect): ack again, never reapply.
                let revision = self
                    .log
                    .iter()
                    .find(|e| e.client_id == client_id && e.seq == seq)
                    .map_or(last_rev, |e| e.revision);
                outbox.push(ServerMessage::Ack { revision, seq }.to_json().into());
                return;
            }
        }
        if base > self.revision {
            let msg = format!(
                "revision {base} is ahead of the room's revision {}",
                self.revision
            );
            outbox.fail(error_code::FUTURE_REVISION, &msg, close_code::MALFORMED);
            return;
        }
        if base < self.oldest_base() {
            let msg = format!(
                "revision {base} is older than the {} operations this server keeps; reconnect to resynchronize",
                self.log.len()
            );
            outbox.fail(error_code::REVISION_TOO_OLD, &msg, close_code::MALFORMED);
            return;
        }
        let mut op = operation;
        let skip = (base - self.oldest_base()) as usize;
        for entry in self.log.iter().skip(skip) {
            match Operation::transform(&op, &entry.operation) {
                Ok((transformed, _)) => op = transformed,
                Err(e) => {
                    let msg = format!("operation does not fit revision {base}: {e}");
                    outbox.fail(error_code::INVALID_OPERATION, &msg, close_code::MALFORMED);
                    return;
                }
            }
        }
        if let Err(e) = op.apply(&mut self.doc) {
            let msg = format!("operation does not fit revision {base}: {e}");
            outbox.fail(error_code::INVALID_OPERATION, &msg, close_code::MALFORMED);
            return;
        }
        self.revision += 1;
        self.last_activity = Instant::now();
        let revision = self.revision;
        self.dedup.insert(client_id.clone(), (seq, revision));
        for p in self.users.values_mut() {
            if let Some(c) = p.info.cursor {
                p.info.cursor = Some(op.transform_index(c as usize) as u64);
            }
            if let Some(a) = p.info.anchor {
                p.info.anchor = Some(op.transform_index(a as usize) as u64);
            }
        }
        let update = Utf8Bytes::from(
            ServerMessage::CodeUpdate(CommittedOp {
                revision,
                operation: op.clone(),
                user_id: user_id.to_string(),
                seq: None,
            })
            .to_json(),
        );
        let ack = Utf8Bytes::from(ServerMessage::Ack { revision, seq }.to_json());
        for (id, conn) in self.conns.iter_mut() {
            if conn.lagging {
                continue;
            }
            let msg = if *id == conn_id { &ack } else { &update };
            if !conn.outbox.push(msg.clone()) {
                lag(conn);
            }
        }
        self.log.push_back(LogEntry {
            revision,
            operation: op,
            user_id,
            client_id,
            seq,
        });
        while self.log.len() > self.config.history_ops {
            self.log.pop_front();
        }
    }

    fn cursor(&mut self, conn_id: u64, base: u64, cursor: u64, anchor: Option<u64>) {
        let Some(conn) = self.conns.get(&conn_id) else {
            return;
        };
        if base > self.revision {
            let msg = format!(
                "revision {base} is ahead of the room's revision {}",
                self.revision
            );
            conn.outbox
                .fail(error_code::FUTURE_REVISION, &msg, close_code::MALFORMED);
            return;
        }
        if base < self.oldest_base() {
            return; // Too old to place; the client's next move will do.
        }
        let user_id = conn.user_id.clone();
        let skip = (base - self.oldest_base()) as usize;
        let len_at_base = self
            .log
            .get(skip)
            .map_or(self.doc.len_chars(), |e| e.operation.base_len());
        let mut place = |pos: u64| {
            let mut p = (pos as usize).min(len_at_base);
            for e in self.log.iter().skip(skip) {
                p = e.operation.transform_index(p);
            }
            p as u64
        };
        let cursor = place(cursor);
        let anchor = anchor.map(&mut place);
        if let Some(p) = self.users.get_mut(&user_id) {
            p.info.cursor = Some(cursor);
            p.info.anchor = anchor;
        }
        let msg = Utf8Bytes::from(
            ServerMessage::CursorMove {
                user_id: user_id.to_string(),
                revision: self.revision,
                cursor,
                anchor,
            }
            .to_json(),
        );
        for c in self.conns.values() {
            if c.user_id != user_id && !c.lagging {
                c.outbox.signals.set_cursor(user_id.clone(), msg.clone());
            }
        }
    }
}

fn lag(conn: &mut Conn) {
    conn.lagging = true;
    tracing::warn!(user = %conn.user_id, "connection lagging; closing it");
    conn.outbox.close(close_code::LAGGING, error_code::LAGGING);
}

/// A room id shortened for logs: ids are capabilities, never logged whole.
pub fn short(id: &str) -> &str {
    &id[..id.len().min(6)]
}
