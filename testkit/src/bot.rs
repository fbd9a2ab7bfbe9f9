//! The one bot: a [`Client`] driving a `collab_protocol::Replica`, so it
//! obeys the protocol (one operation in flight, later edits composed, remote
//! operations transformed) and its text can be compared with the server's.
//! It checks the revision stream as it goes (every `code_update` and `ack`
//! after `init` carries the next revision: no gap, no repeat), and rejoins a
//! room through `Replica::reconnected`, as the editor does.
//!
//! Tests use the convenient, panicking side (`join`, `edit`, `step`,
//! `settle`, `handle`). The bench writes its own loop on the low-level side
//! ([`Client::read`], [`Bot::take`], [`Client::send_message`]) and connects
//! with [`BotOptions::lean`]: small buffers, nothing kept per message.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use collab_protocol::{ClientMessage, Operation, Reconnected, Replica, ServerMessage};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::client::{Client, STEP};

/// How a bot connects.
#[derive(Clone, Copy, Debug)]
pub struct BotOptions {
    /// The WebSocket's buffers and limits.
    pub ws: WebSocketConfig,
    /// Nagle's algorithm off.
    pub nodelay: bool,
    /// How long it waits for `init`.
    pub init_timeout: Duration,
}

impl Default for BotOptions {
    /// The test client's settings: the library's buffers, [`STEP`] for
    /// `init`.
    fn default() -> Self {
        Self {
            ws: WebSocketConfig::default(),
            nodelay: false,
            init_timeout: STEP,
        }
    }
}

impl BotOptions {
    /// For thousands of bots in one process (the bench): small buffers, no
    /// Nagle delay, and 30 s for `init` on a loaded machine.
    pub fn lean() -> Self {
        // Small buffers: tungstenite zeroes the free part of the read
        // buffer before every read (16 KiB made that memset a visible
        // share of the bench's CPU). Larger frames still grow it as they
        // arrive.
        Self {
            ws: WebSocketConfig::default()
                .read_buffer_size(4 * 1024)
                .write_buffer_size(0),
            nodelay: true,
            init_timeout: Duration::from_secs(30),
        }
    }
}

/// The revisions of one connection's `code_update`s and `ack`s after its
/// `init`: each must be the next one. Kept as a count and the first
/// misfit, so a long run allocates nothing for it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RevisionStream {
    init: u64,
    seen: u64,
    /// (index after init, revision) of the first that was not the next.
    first_misfit: Option<(u64, u64)>,
}

impl RevisionStream {
    pub(crate) fn new(init: u64) -> Self {
        Self {
            init,
            seen: 0,
            first_misfit: None,
        }
    }

    pub(crate) fn saw(&mut self, revision: u64) {
        if self.first_misfit.is_none() && revision != self.init + 1 + self.seen {
            self.first_misfit = Some((self.seen, revision));
        }
        self.seen += 1;
    }
}

impl RevisionStream {
    /// Panics, naming `what`, unless the stream had no gap and no repeat.
    pub(crate) fn assert_contiguous(&self, what: &str) {
        if let Some((i, revision)) = self.first_misfit {
            assert_eq!(
                revision,
                self.init + 1 + i,
                "{what}'s revision stream after init {}: message {i} of {}",
                self.init,
                self.seen
            );
        }
    }
}

/// A client that keeps a replica and obeys the protocol.
pub struct Bot {
    /// The connection.
    pub client: Client,
    /// The local replica.
    pub replica: Replica,
    /// The revision of the connection's `init`.
    pub init_revision: u64,
    /// From connecting to `init` (zero for a bot made from a joined client).
    pub init_time: Duration,
    revisions: RevisionStream,
}

impl Bot {
    /// Joins `room` (`query` as in [`Client::connect`]); panics if it cannot.
    pub async fn join(addr: &str, room: &str, query: &str) -> Self {
        Self::connect(addr, room, query, BotOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Connects with `options` and waits for `init`.
    pub async fn connect(addr: &str, room: &str, query: &str, options: BotOptions) -> Result<Self> {
        let start = Instant::now();
        let mut client = Client::open(addr, room, query, Some(options.ws), options.nodelay)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        let init = tokio::time::timeout(options.init_timeout, client.read())
            .await
            .context("no init in time")?
            .map_err(|end| anyhow!("the connection ended before init: {end:?}"))?;
        let mut bot = Self::from_init(client, init)?;
        bot.init_time = start.elapsed();
        Ok(bot)
    }

    /// A bot on `client`, whose `init` was `init`.
    pub fn from_init(client: Client, init: ServerMessage) -> Result<Self> {
        let ServerMessage::Init { revision, code, .. } = init else {
            bail!("first message was not init: {init:?}");
        };
        Ok(Self {
            client,
            replica: Replica::new(revision, &code),
            init_revision: revision,
            init_time: Duration::ZERO,
            revisions: RevisionStream::new(revision),
        })
    }

    /// Takes in one server message: checks its revision, applies it to the
    /// replica, and returns what to send in answer (the buffered edit, once
    /// the one in flight is acknowledged). An `error` from the server, or a
    /// message that does not fit the replica, is an error.
    pub fn take(&mut self, msg: &ServerMessage) -> Result<Option<ClientMessage>> {
        match msg {
            ServerMessage::CodeUpdate(c) => self.revisions.saw(c.revision),
            ServerMessage::Ack { revision, .. } => self.revisions.saw(*revision),
            ServerMessage::Error { code, message, .. } => bail!("server error {code}: {message}"),
            _ => {}
        }
        self.replica
            .handle(msg)
            .context("server messages fit the replica")
    }

    /// Handles a message already received: [`Bot::take`], then sends the
    /// answer. Panics on an error.
    pub async fn handle(&mut self, msg: ServerMessage) {
        if let Some(next) = self.take(&msg).unwrap_or_else(|e| panic!("{e:#}")) {
            self.client.send(&next).await;
        }
    }

    /// Makes a local edit and sends it when due.
    pub async fn edit(&mut self, op: Operation) {
        if let Some(msg) = self.replica.edit(op).expect("local edit applies") {
            self.client.send(&msg).await;
        }
    }

    /// Receives and handles one message.
    pub async fn step(&mut self) {
        let msg = self.client.recv().await;
        self.handle(msg).await;
    }

    /// Reads until synchronized at `revision` or later.
    pub async fn settle(&mut self, revision: u64) {
        while !(self.replica.sync.is_synchronized() && self.replica.sync.revision() >= revision) {
            self.step().await;
        }
    }

    /// Asserts the revision invariant: init R0, then R0+1, R0+2, ... with no
    /// gap, on the current connection.
    pub fn assert_revisions_contiguous(&self) {
        self.revisions.assert_contiguous("the document");
    }

    /// Takes over a new connection whose `init` answered a reconnect with
    /// `since = replica.sync.revision()`: the replica catches up through
    /// `Replica::reconnected` and what it must resend goes out (a dead
    /// connection shows when reading; the edit is resent then). When the
    /// server sent `missed`, the rebase must work and, once nothing is
    /// unacknowledged, give `init.code`; without `missed` the replica takes
    /// the room's document (what was unacknowledged is in `lost`).
    pub async fn rejoin(&mut self, client: Client, init: ServerMessage) -> Reconnected {
        let ServerMessage::Init {
            revision,
            code,
            missed,
            ..
        } = init
        else {
            panic!("expected init, got {init:?}")
        };
        let had_missed = missed.is_some();
        let outcome = self.replica.reconnected(revision, &code, missed.as_deref());
        self.client = client;
        self.init_revision = revision;
        self.revisions = RevisionStream::new(revision);
        match &outcome {
            Reconnected::Rebased { send, .. } => {
                if self.replica.sync.is_synchronized() {
                    assert_eq!(
                        self.replica.text(),
                        code,
                        "caught-up replica matches init.code"
                    );
                }
                for msg in send {
                    self.client.try_send(msg).await;
                }
            }
            Reconnected::Replaced { .. } => assert!(
                !had_missed,
                "init's missed operations (up to revision {revision}) do not fit the replica"
            ),
        }
        outcome
    }

    /// [`Bot::rejoin`] where the server must keep the history since our
    /// revision: it must send `missed`.
    pub async fn rejoined(&mut self, client: Client, init: ServerMessage) {
        let outcome = self.rejoin(client, init).await;
        assert!(
            matches!(outcome, Reconnected::Rebased { .. }),
            "the server keeps the history since our revision"
        );
    }

    /// Closes the connection politely.
    pub async fn close(mut self) {
        self.client.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::RevisionStream;

    #[test]
    fn the_revision_stream_keeps_its_first_misfit() {
        let mut stream = RevisionStream::new(5);
        stream.saw(6);
        stream.saw(7);
        assert_eq!(stream.first_misfit, None);
        stream.saw(9); // 8 is missing
        stream.saw(10);
        stream.saw(10);
        assert_eq!(stream.first_misfit, Some((2, 9)));
        assert_eq!(stream.seen, 5);
    }
}
