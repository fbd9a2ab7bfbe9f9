//! The project bot: a [`Client`] joined with `project=1`, keeping one
//! `collab_protocol::Replica` per open document (each checked for a
//! contiguous revision stream, as the [`crate::Bot`] checks its one) and
//! the room's tree as it hears it. Tree changes, opening and closing are
//! sent and followed; refusals that leave the connection open
//! (`path_taken`, `document_deleted`, ...) are kept in `refusals` for the
//! test to look at. A document deleted under it keeps its text in
//! `deleted`, as the editor keeps the user's text.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context, Result};
use collab_protocol::{ClientMessage, FileInfo, Operation, Reconnected, Replica, ServerMessage};

use crate::bot::RevisionStream;
use crate::client::Client;

/// One open document.
pub struct OpenDoc {
    /// Its replica.
    pub replica: Replica,
    revisions: RevisionStream,
}

/// A project client; see the module docs.
pub struct ProjectBot {
    /// The connection.
    pub client: Client,
    /// Its own user id.
    pub user_id: String,
    /// The open documents, by id.
    pub docs: BTreeMap<String, OpenDoc>,
    /// The tree as heard: document id -> its file.
    pub tree: BTreeMap<String, FileInfo>,
    /// The tree's revision as heard.
    pub tree_revision: u64,
    /// Refusals heard (the connection stayed open).
    pub refusals: Vec<ServerMessage>,
    /// Documents deleted while open here, with the text they had here.
    pub deleted: BTreeMap<String, String>,
    /// Opens sent and not answered yet (edits of them wait for the answer).
    opening: BTreeSet<String>,
    /// Each document's next seq: a client's seqs in a document only grow.
    seqs: BTreeMap<String, u64>,
}

impl ProjectBot {
    /// Joins `room` as a project client (`query` as in [`Client::connect`],
    /// without `project=1`, which is added); panics if it cannot.
    pub async fn join(addr: &str, room: &str, query: &str) -> Self {
        let (client, init) = Client::join(addr, room, &project_query(query)).await;
        Self::from_init(client, init).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// A bot on `client`, whose `init` (of a project client) was `init`.
    pub fn from_init(client: Client, init: ServerMessage) -> Result<Self> {
        let mut bot = Self {
            client,
            user_id: String::new(),
            docs: BTreeMap::new(),
            tree: BTreeMap::new(),
            tree_revision: 0,
            refusals: Vec::new(),
            deleted: BTreeMap::new(),
            opening: BTreeSet::new(),
            seqs: BTreeMap::new(),
        };
        bot.init(init)?;
        Ok(bot)
    }

    fn init(&mut self, init: ServerMessage) -> Result<()> {
        let ServerMessage::Init {
            user_id,
            revision,
            code,
            doc,
            tree_revision,
            files,
            ..
        } = init
        else {
            bail!("first message was not init: {init:?}");
        };
        self.user_id = user_id;
        self.tree_revision = tree_revision.context("a project init has tree_revision")?;
        self.tree = files
            .context("a project init has files")?
            .into_iter()
            .map(|f| (f.doc.clone(), f))
            .collect();
        if let Some(main) = doc {
            self.start(&main, revision, &code);
        }
        Ok(())
    }

    fn start(&mut self, doc: &str, revision: u64, code: &str) {
        let next = self.seqs.get(doc).copied().unwrap_or(1);
        let open = OpenDoc {
            replica: Replica::continuing(revision, code, next),
            revisions: RevisionStream::new(revision),
        };
        self.docs.insert(doc.to_owned(), open);
    }

    fn forget(&mut self, doc: &str) -> Option<OpenDoc> {
        let open = self.docs.remove(doc)?;
        self.seqs
            .insert(doc.to_owned(), open.replica.sync.next_seq());
        Some(open)
    }

    /// The id of the document at `path`, as the tree was heard.
    pub fn doc_at(&self, path: &str) -> Option<String> {
        self.tree
            .values()
            .find(|f| f.path == path)
            .map(|f| f.doc.clone())
    }

    /// An open document's text.
    pub fn text(&self, doc: &str) -> String {
        self.docs[doc].replica.text()
    }

    /// True when nothing of any open document is unacknowledged.
    pub fn is_synchronized(&self) -> bool {
        self.opening.is_empty() && self.docs.values().all(|d| d.replica.sync.is_synchronized())
    }

    /// Sends `open` for `doc` (with `since` when it is open here: a
    /// reopen after a reconnect).
    pub async fn send_open(&mut self, doc: &str) {
        let since = self.docs.get(doc).map(|d| d.replica.sync.revision());
        self.opening.insert(doc.to_owned());
        let msg = ClientMessage::Open {
            doc: doc.to_owned(),
            since,
        };
        self.client.try_send(&msg).await;
    }

    /// Opens `doc` and waits for its `opened`.
    pub async fn open(&mut self, doc: &str) {
        self.send_open(doc).await;
        while self.opening.contains(doc) {
            self.step().await;
        }
    }

    /// Closes `doc` (which must have nothing unacknowledged).
    pub async fn close(&mut self, doc: &str) {
        self.forget(doc);
        let msg = ClientMessage::Close {
            doc: doc.to_owned(),
        };
        self.client.send(&msg).await;
    }

    /// Makes a local edit of an open document and sends it when due (not
    /// while it is being opened again: its `opened` sends it).
    pub async fn edit(&mut self, doc: &str, op: Operation) {
        let open = self.docs.get_mut(doc).expect("the document is open");
        if let Some(msg) = open.replica.edit(op).expect("local edit applies") {
            self.send_edit(doc, msg).await;
        }
    }

    async fn send_edit(&mut self, doc: &str, msg: ClientMessage) {
        if self.opening.contains(doc) {
            return;
        }
        let msg = msg.for_doc(Some(doc));
        // A dead connection shows when reading; the edit is resent then.
        self.client.try_send(&msg).await;
    }

    /// Asks to create a document.
    pub async fn create(&mut self, path: &str, code: &str) {
        let msg = ClientMessage::CreateFile {
            path: path.to_owned(),
            code: Some(code.to_owned()),
            language: None,
        };
        self.client.send(&msg).await;
    }

    /// Asks to move a document.
    pub async fn rename(&mut self, doc: &str, path: &str) {
        let msg = ClientMessage::RenameFile {
            doc: doc.to_owned(),
            path: path.to_owned(),
        };
        self.client.send(&msg).await;
    }

    /// Asks to delete a document.
    pub async fn delete(&mut self, doc: &str) {
        let msg = ClientMessage::DeleteFile {
            doc: doc.to_owned(),
        };
        self.client.send(&msg).await;
    }

    /// Takes in one server message; returns what to send in answer (a
    /// document and its message). An error that closes the connection, or
    /// a message that does not fit, is an error.
    pub fn take(&mut self, msg: ServerMessage) -> Result<Vec<(String, ClientMessage)>> {
        let named = |doc: &Option<String>| {
            doc.clone()
                .context("a project client's message names its document")
        };
        let mut send = Vec::new();
        match &msg {
            ServerMessage::CodeUpdate(c) => {
                let doc = named(&c.doc)?;
                let open = self
                    .docs
                    .get_mut(&doc)
                    .with_context(|| format!("{msg:?} for a document not open"))?;
                open.revisions.saw(c.revision);
                send.extend(open.replica.handle(&msg)?.map(|m| (doc, m)));
            }
            ServerMessage::Ack { revision, doc, .. } => {
                let doc = named(doc)?;
                let open = self
                    .docs
                    .get_mut(&doc)
                    .with_context(|| format!("{msg:?} for a document not open"))?;
                open.revisions.saw(*revision);
                send.extend(open.replica.handle(&msg)?.map(|m| (doc, m)));
            }
            ServerMessage::Opened {
                doc,
                revision,
                code,
                missed,
                ..
            } => {
                if !self.opening.remove(doc) {
                    bail!("opened {doc}, which was not asked for");
                }
                match self.docs.get_mut(doc) {
                    Some(open) => {
                        match open.replica.reconnected(*revision, code, missed.as_deref()) {
                            Reconnected::Rebased { send: resend, .. } => {
                                send.extend(resend.into_iter().map(|m| (doc.clone(), m)));
                            }
                            Reconnected::Replaced { lost: None } => {}
                            Reconnected::Replaced { lost: Some(lost) } => {
                                bail!("{doc}: reopening lost unacknowledged text {lost:?}")
                            }
                        }
                        open.revisions = RevisionStream::new(*revision);
                    }
                    None => self.start(doc, *revision, code),
                }
            }
            ServerMessage::FileCreated {
                file,
                tree_revision,
                ..
            } => {
                self.saw_tree(*tree_revision)?;
                self.tree.insert(file.doc.clone(), file.clone());
            }
            ServerMessage::FileRenamed {
                doc,
                path,
                tree_revision,
                ..
            } => {
                self.saw_tree(*tree_revision)?;
                if let Some(f) = self.tree.get_mut(doc) {
                    f.path = path.clone();
                }
            }
            ServerMessage::FileDeleted {
                doc, tree_revision, ..
            } => {
                self.saw_tree(*tree_revision)?;
                self.tree.remove(doc);
                self.opening.remove(doc);
                if let Some(open) = self.forget(doc) {
                    self.deleted.insert(doc.clone(), open.replica.text());
                }
            }
            ServerMessage::Error { code, doc, .. } => {
                if code == "document_deleted" {
                    if let Some(open) = doc.as_deref().and_then(|d| self.forget(d)) {
                        self.deleted
                            .insert(doc.clone().unwrap_or_default(), open.replica.text());
                    }
                }
                if doc.is_none()
                    && !matches!(
                        code.as_str(),
                        "path_taken" | "bad_path" | "too_many_files" | "document_too_large"
                    )
                {
                    bail!("server error: {msg:?}");
                }
                self.refusals.push(msg);
            }
            _ => {}
        }
        Ok(send)
    }

    fn saw_tree(&mut self, revision: u64) -> Result<()> {
        if revision != self.tree_revision + 1 {
            bail!("tree revision {revision} after {}", self.tree_revision);
        }
        self.tree_revision = revision;
        Ok(())
    }

    /// Handles a message already received; panics on an error.
    pub async fn handle(&mut self, msg: ServerMessage) {
        let send = self.take(msg).unwrap_or_else(|e| panic!("{e:#}"));
        for (doc, m) in send {
            self.send_edit(&doc, m).await;
        }
    }

    /// Receives and handles one message.
    pub async fn step(&mut self) {
        let msg = self.client.recv().await;
        self.handle(msg).await;
    }

    /// Reads until nothing is unacknowledged and `doc` (if open) is at
    /// `revision` or later.
    pub async fn settle(&mut self, doc: &str, revision: u64) {
        while !(self.is_synchronized()
            && self
                .docs
                .get(doc)
                .is_none_or(|d| d.replica.sync.revision() >= revision))
        {
            self.step().await;
        }
    }

    /// Reads until the tree is at `revision` or later.
    pub async fn settle_tree(&mut self, revision: u64) {
        while self.tree_revision < revision {
            self.step().await;
        }
    }

    /// Asserts every open document's revision stream had no gap.
    pub fn assert_revisions_contiguous(&self) {
        for (doc, open) in &self.docs {
            open.revisions.assert_contiguous(doc);
        }
    }

    /// Takes over a new connection after a reconnect (joined with `since`
    /// of the main document, when open): rebases the main document, takes
    /// the tree, and opens every other open document again with `since`.
    pub async fn rejoin(&mut self, client: Client, init: ServerMessage) -> Result<()> {
        self.client = client;
        self.opening.clear();
        let ServerMessage::Init {
            revision,
            code,
            missed,
            doc,
            tree_revision,
            files,
            ..
        } = init
        else {
            bail!("expected init, got {init:?}");
        };
        self.tree_revision = tree_revision.context("tree_revision")?;
        self.tree = files
            .context("files")?
            .into_iter()
            .map(|f| (f.doc.clone(), f))
            .collect();
        match (doc, self.docs.get_mut("main")) {
            (Some(_), Some(open)) => {
                match open.replica.reconnected(revision, &code, missed.as_deref()) {
                    Reconnected::Rebased { send, .. } => {
                        open.revisions = RevisionStream::new(revision);
                        for m in send {
                            self.send_edit("main", m).await;
                        }
                    }
                    Reconnected::Replaced { lost: None } => {
                        open.revisions = RevisionStream::new(revision);
                    }
                    Reconnected::Replaced { lost } => bail!("main: rejoining lost {lost:?}"),
                }
            }
            (Some(main), None) => self.start(&main, revision, &code),
            (None, _) => {
                if let Some(open) = self.forget("main") {
                    self.deleted.insert("main".into(), open.replica.text());
                }
            }
        }
        let others: Vec<String> = self.docs.keys().filter(|d| *d != "main").cloned().collect();
        for doc in others {
            if self.tree.contains_key(&doc) {
                self.send_open(&doc).await;
            } else if let Some(open) = self.forget(&doc) {
                self.deleted.insert(doc, open.replica.text());
            }
        }
        Ok(())
    }

    /// The query of a reconnect: `since` of the main document, when open.
    pub fn since_query(&self) -> String {
        match self.docs.get("main") {
            Some(open) => format!("since={}", open.replica.sync.revision()),
            None => String::new(),
        }
    }
}

/// `query` with `project=1`.
pub fn project_query(query: &str) -> String {
    if query.is_empty() {
        "project=1".to_owned()
    } else {
        format!("{query}&project=1")
    }
}
