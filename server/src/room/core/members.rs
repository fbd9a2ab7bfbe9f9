//! Who is in the room: joining (identity, color, role, what a reconnecting
//! client missed), leaving and being replaced by a newer connection of the
//! same client, users on other instances, and carets, which are state (the
//! newest per user), brought to the room's revision before they fan out.

use std::sync::Arc;
use std::time::Instant;

use collab_protocol::{close_code, error_code, Role, ServerMessage, UserInfo};

use super::chat::forget_user;
use super::doc::DocId;
use super::own_ops::OwnOps;
use super::{
    Conn, ConnId, ConnSink, JoinError, JoinRequest, Joined, Present, Publish, Remote, RoomCore,
};
use crate::ids;
use crate::store::PresenceCheck;

impl<S: ConnSink> RoomCore<S> {
    /// Refuses a join early, before anything is allocated for it: a `since`
    /// the room has not reached, or a full room.
    pub fn check_join(
        &self,
        since: Option<u64>,
        client_id: &str,
        project: bool,
    ) -> Result<(), JoinError> {
        if self.is_banned(client_id) {
            return Err(JoinError::Removed);
        }
        match self.tree.main() {
            None if !project => return Err(JoinError::NoMainDocument),
            // The actor reads the main document before a join; it was not
            // there (deleted just now: the tree's news is on its way).
            Some(main) if !self.docs.contains_key(&main) => {
                return Err(JoinError::Store(crate::store::StoreError::Unavailable(
                    "the main document could not be read".into(),
                )))
            }
            _ => {}
        }
        // (Without a main document, `since` names a revision of one that
        // is gone: the init says so, and the client drops it.)
        if let (Some(since), Some(_)) = (since, self.tree.main()) {
            let revision = self.revision();
            if since > revision {
                return Err(JoinError::FutureRevision { since, revision });
            }
        }
        // A client's newer connection replaces its older one: that one's
        // slot is the new one's.
        let replaced = self
            .conns
            .values()
            .filter(|c| *c.client_id == *client_id)
            .count();
        if self.conns.len() - replaced >= self.config.max_conns {
            return Err(JoinError::Full(self.config.max_conns));
        }
        Ok(())
    }

    /// The identity (user id, color) of `client_id`, or a fresh one to
    /// propose to the store (`Err`), which keeps the first proposal any
    /// instance made.
    pub fn identity(&self, client_id: &str) -> Result<(String, String), (String, String)> {
        match self.identities.get(client_id) {
            Some((u, c)) => Ok((u.to_string(), c.clone())),
            None => Err((
                ids::new_user_id(),
                ids::pick_color(
                    self.taken_colors().iter().map(String::as_str),
                    None,
                    self.identities.len(),
                ),
            )),
        }
    }

    /// The identity the store settled on for `client_id`.
    pub fn learn_identity(&mut self, client_id: &str, (user_id, color): (String, String)) {
        self.identities
            .insert(client_id.into(), (user_id.into(), color));
    }

    fn taken_colors(&self) -> Vec<String> {
        self.users
            .values()
            .map(|p| p.info.color.clone())
            .chain(self.remote.values().map(|r| r.info.color.clone()))
            .collect()
    }

    /// Joins a connection whose client's identity is known
    /// ([`Self::learn_identity`]).
    pub fn join(&mut self, req: JoinRequest<S>, now: Instant) -> Result<Joined, JoinError> {
        self.check_join(req.since, &req.client_id, req.project)?;
        // The id it came by must still open the room: links the owner
        // replaced do not, even if they were resolved just before.
        let current = match (&req.viewer_id, &req.link) {
            (Some(v), _) => self.viewer_id.as_ref() == Some(v),
            (None, Some(l)) => self.link.as_ref() == Some(l),
            (None, None) => self.link.is_none(),
        };
        if !current {
            return Err(JoinError::StaleLink);
        }
        let main = self.tree.main();
        let replaced: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| *c.client_id == *req.client_id)
            .map(|(id, _)| *id)
            .collect();
        self.last_activity = now;
        let role = if req.watcher {
            Role::Watcher
        } else if req.viewer_id.is_some() {
            Role::Viewer
        } else {
            Role::Editor
        };
        let client_id: Arc<str> = req.client_id.into();
        let taken = self.taken_colors();
        let (user_id, color) = match self.identities.get(&client_id) {
            Some((u, c)) => (u.clone(), c.clone()),
            None => {
                // Not learned from the store (it keeps nothing): this one.
                let (u, c) = self.identity(&client_id).unwrap_or_else(|fresh| fresh);
                let u: Arc<str> = u.into();
                self.identities
                    .insert(client_id.clone(), (u.clone(), c.clone()));
                (u, c)
            }
        };
        let color = match self.users.get_mut(&user_id) {
            Some(p) => {
                p.conns += 1;
                p.info.name = req.name.clone();
                p.info.color.clone()
            }
            None => {
                // A returning client keeps its color while nobody else holds it.
                let color = ids::pick_color(
                    taken.iter().map(String::as_str),
                    Some(&color),
                    self.identities.len(),
                );
                if let Some(entry) = self.identities.get_mut(&client_id) {
                    entry.1 = color.clone();
                }
                let info = UserInfo {
                    user_id: user_id.to_string(),
                    name: req.name.clone(),
                    color: color.clone(),
                    cursor: None,
                    anchor: None,
                    role,
                    // A single-document client is in the main document.
                    doc: (!req.project)
                        .then(|| main.as_deref().map(str::to_owned))
                        .flatten(),
                };
                if !self.remote.contains_key(&user_id) {
                    self.announce_join(&info);
                }
                self.publish(Publish::Join(info.clone()));
                self.users
                    .insert(user_id.clone(), Present { info, conns: 1 });
                color
            }
        };
        let (revision, code, missed) = match main.as_ref().and_then(|m| self.docs.get(m)) {
            Some(d) => (
                d.revision,
                d.text.to_string(),
                d.missed(
                    req.since,
                    &client_id,
                    req.project.then_some(crate::store::MAIN_DOC),
                ),
            ),
            None => (0, String::new(), None),
        };
        let own = if missed.is_some() {
            OwnOps::rebasing(revision)
        } else {
            OwnOps::fresh(revision)
        };
        let conn_id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            conn_id,
            Conn {
                sink: req.sink,
                user_id: user_id.clone(),
                client_id,
                lagging: false,
                dirty: false,
                role,
                project: req.project,
                typing: req.typing,
                owner: req.owner,
                open: main.iter().map(|m| (m.clone(), own)).collect(),
                chat: Default::default(),
            },
        );
        for id in replaced {
            self.replace(id, now);
        }
        if self.read_only {
            // Everyone hears the room's mode, the owner too (whose init
            // cannot say it).
            if let Some(conn) = self.conns.get_mut(&conn_id) {
                super::enqueue(
                    conn,
                    &S::message(ServerMessage::Mode { read_only: true }.to_json()),
                );
            }
        }
        let users = self
            .all_users()
            .into_iter()
            .filter(|u| *u.user_id != *user_id)
            .map(|u| match req.project {
                true => u,
                false => super::single_doc_view(u, main.as_deref()),
            })
            .collect();
        let (doc, tree_revision, files) = match req.project {
            true => (
                main.as_ref().map(|m| m.to_string()),
                Some(self.tree.revision()),
                Some(self.tree.list()),
            ),
            false => (None, None, None),
        };
        Ok(Joined {
            conn_id,
            init: ServerMessage::Init {
                // A viewer never learns the editing id; after the owner
                // replaced the links, editors join by the new one.
                room_id: req
                    .viewer_id
                    .or_else(|| self.link.clone())
                    .unwrap_or_else(|| self.id.clone()),
                user_id: user_id.to_string(),
                name: req.name,
                color,
                revision,
                code,
                language: main
                    .as_ref()
                    .and_then(|m| self.tree.get(m))
                    .map_or_else(|| self.language.clone(), |f| f.language.clone()),
                users,
                missed,
                read_only: role.is_read_only() || (self.read_only && !req.owner),
                owner: req.owner,
                read_only_id: (role == Role::Editor)
                    .then(|| self.viewer_id.clone())
                    .flatten(),
                doc,
                tree_revision,
                files,
                chat: self.chat.for_conn(req.project),
            },
        })
    }

    /// Tells every connection that `user` joined (single-document clients
    /// without the document it is in).
    fn announce_join(&mut self, user: &UserInfo) {
        let main = self.tree.main();
        self.fan_out(
            |_, _| true,
            |project| ServerMessage::UserJoined {
                user: match project {
                    true => user.clone(),
                    false => super::single_doc_view(user.clone(), main.as_deref()),
                },
            },
        );
    }

    /// Closes a connection another one of the same client replaced (4005)
    /// and takes it out of the room at once. Its socket may live on for a
    /// while (a stalled client's writer waits on a full send buffer, and
    /// its reader keeps reading), but nothing it sends from now on is
    /// applied: edits and carets from a connection not in the room are
    /// dropped. Its user stays present through the new connection.
    fn replace(&mut self, conn_id: ConnId, now: Instant) {
        if let Some(c) = self.conns.get(&conn_id) {
            let msg = "another connection with the same client_id replaced this one";
            c.sink.fail(error_code::REPLACED, msg, close_code::REPLACED);
        }
        self.leave(conn_id, now);
    }

    /// A connection left (closed, dropped, or never got its `init`).
    pub fn leave(&mut self, conn_id: ConnId, now: Instant) {
        let Some(conn) = self.conns.remove(&conn_id) else {
            return;
        };
        self.last_activity = now;
        for doc in conn.open.keys() {
            self.release_if_unused(doc);
        }
        let Some(p) = self.users.get_mut(&conn.user_id) else {
            return;
        };
        p.conns -= 1;
        if p.conns > 0 {
            return;
        }
        self.users.remove(&conn.user_id);
        self.publish(Publish::Leave(conn.user_id.to_string()));
        if self.conns.is_empty() {
            // The room's keys (and its read-only id) expire together from
            // now; stale client records go (here and in the store).
            self.publish(Publish::Touch);
            self.publish(Publish::ExpireClients);
            self.expire_identities();
        }
        for c in self.conns.values() {
            forget_user(&c.sink, &conn.user_id);
        }
        if !self.remote.contains_key(&conn.user_id) {
            let user_id = conn.user_id.to_string();
            self.fan_out(
                |_, _| true,
                |_| ServerMessage::UserLeft {
                    user_id: user_id.clone(),
                },
            );
        }
    }

    /// A presence event about `user` arrived: older news of the user (a
    /// presence check asked for before it) must not undo it.
    pub(super) fn presence_news(&mut self, user: &str) {
        self.presence_seq += 1;
        self.touched.insert(user.into(), self.presence_seq);
    }

    /// A user joined on another instance.
    pub(super) fn remote_joined(&mut self, user: UserInfo, now: Instant) {
        self.presence_news(&user.user_id);
        let id: Arc<str> = user.user_id.as_str().into();
        let known = self.users.contains_key(&id) || self.remote.contains_key(&id);
        self.remote
            .insert(id.clone(), Remote { info: user.clone() });
        if !known {
            self.announce_join(&user);
        }
        // One live connection per client across instances too: the client
        // (a user id is one client's) reconnected elsewhere, so its
        // connections here are replaced. Its user stays present, now as a
        // remote one.
        let stale: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.user_id == id)
            .map(|(id, _)| *id)
            .collect();
        for conn_id in stale {
            self.replace(conn_id, now);
        }
    }

    /// A user of another instance is gone: tell the local connections,
    /// unless the same user is also connected here.
    pub(super) fn remote_left(&mut self, id: &str) {
        if self.remote.remove(id).is_some() && !self.users.contains_key(id) {
            for c in self.conns.values() {
                forget_user(&c.sink, id);
            }
            self.fan_out(
                |_, _| true,
                |_| ServerMessage::UserLeft {
                    user_id: id.to_owned(),
                },
            );
        }
    }

    /// The answer to the presence part of [`Publish::Check`]: users of dead
    /// instances the check removed leave; users present on live instances
    /// that this room missed (their join was published before it listened)
    /// join. News newer than the check wins.
    pub fn presence_checked(&mut self, check: PresenceCheck) {
        let from = self.check_from.take().unwrap_or(self.presence_seq);
        let newer = |touched: &std::collections::HashMap<Arc<str>, u64>, u: &str| {
            touched.get(u).is_some_and(|&seq| seq > from)
        };
        for u in check.left {
            if !newer(&self.touched, &u) {
                self.remote_left(&u);
            }
        }
        for r in check.present {
            let id = r.user.user_id.as_str();
            let known = self.users.contains_key(id) || self.remote.contains_key(id);
            if !known && !newer(&self.touched, id) {
                self.remote.insert(
                    id.into(),
                    Remote {
                        info: r.user.clone(),
                    },
                );
                self.announce_join(&r.user);
            }
        }
        // What happened before the check is in it: those marks can go.
        self.touched.retain(|_, seq| *seq > from);
    }

    /// A caret of a user of another instance in document `doc`, at
    /// `revision`: placed at the document's revision when it is held here,
    /// passed on as it came otherwise (only connections that have the
    /// document open use the offsets, and then it is held here).
    pub(super) fn remote_cursor(
        &mut self,
        user_id: String,
        doc: &str,
        revision: u64,
        cursor: u64,
        anchor: Option<u64>,
    ) {
        let Some(id) = self.tree.id(doc) else {
            return;
        };
        let (revision, cursor, anchor) = match self.docs.get(&id) {
            Some(d) if revision > d.revision || revision < d.oldest_base() => return,
            Some(d) => {
                let (cursor, anchor) = d.place(revision, cursor, anchor);
                (d.revision, cursor, anchor)
            }
            None => (revision, cursor, anchor),
        };
        let user: Arc<str> = user_id.into();
        if let Some(remote) = self.remote.get_mut(&user) {
            remote.info.cursor = Some(cursor);
            remote.info.anchor = anchor;
            remote.info.doc = Some(id.to_string());
        }
        self.fan_cursor(&user, &id, revision, cursor, anchor);
    }

    /// A caret from connection `conn_id` in document `doc` (`None`: the
    /// main one), at `base`.
    pub fn cursor(
        &mut self,
        conn_id: ConnId,
        doc: Option<&str>,
        base: u64,
        cursor: u64,
        anchor: Option<u64>,
    ) {
        let Some(id) = self.open_doc(conn_id, doc, None) else {
            return;
        };
        let Some(d) = self.docs.get(&id) else {
            return; // Still opening: the client's next move will do.
        };
        let revision = d.revision;
        if base > revision {
            let msg = format!("revision {base} is ahead of the document's revision {revision}");
            self.fail(
                conn_id,
                error_code::FUTURE_REVISION,
                &msg,
                close_code::MALFORMED,
            );
            return;
        }
        if base < d.oldest_base() {
            return; // Too old to place; the client's next move will do.
        }
        let (cursor, anchor) = d.place(base, cursor, anchor);
        let Some(user_id) = self.conns.get(&conn_id).map(|c| c.user_id.clone()) else {
            return;
        };
        if let Some(p) = self.users.get_mut(&user_id) {
            p.info.cursor = Some(cursor);
            p.info.anchor = anchor;
            p.info.doc = Some(id.to_string());
        }
        self.fan_cursor(&user_id, &id, revision, cursor, anchor);
        if self.shared {
            let caret = (revision, cursor, anchor);
            self.publish(Publish::Caret(user_id.to_string(), id, caret));
        }
    }

    /// Sets a user's caret on every other connection that may see it: every
    /// project client (each knows who is in which document), and the
    /// single-document clients when it is in the main document.
    fn fan_cursor(
        &mut self,
        user_id: &Arc<str>,
        doc: &DocId,
        revision: u64,
        cursor: u64,
        anchor: Option<u64>,
    ) {
        let in_main = self.tree.main().as_ref() == Some(doc);
        let mut built: [Option<S::Msg>; 2] = [None, None];
        for c in self.conns.values_mut() {
            if c.user_id == *user_id || c.lagging || (!c.project && !in_main) {
                continue;
            }
            let project = c.project;
            let msg = built[project as usize].get_or_insert_with(|| {
                S::message(
                    ServerMessage::CursorMove {
                        user_id: user_id.to_string(),
                        revision,
                        cursor,
                        anchor,
                        doc: project.then(|| doc.to_string()),
                    }
                    .to_json(),
                )
            });
            c.sink.set_caret(user_id, msg);
            c.dirty = true;
        }
        self.dirty = true;
    }
}
