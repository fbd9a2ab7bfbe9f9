//! The room's chat and typing indicators. Chat messages are events with a
//! total order: every connection, on every instance, receives each message
//! once, in the order of its `seq`. In memory the room numbers them itself;
//! with a shared store the store numbers them and every instance (the
//! author's too) hears them back and delivers them in number order, reading
//! what it missed from the store on a gap. The last
//! [`CHAT_KEPT`] are kept and given to joiners in `init`.
//!
//! Typing is state, not events: who is typing in the chat, who is editing
//! which document. It travels like carets (the newest per user, never
//! queued behind edits) and is sent at most every [`TYPING_EVERY`] per user.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use collab_protocol::{error_code, ChatMessage, ServerMessage, CHAT_KEPT, CHAT_MAX_CHARS};

use super::doc::DocId;
use super::tree::Refusal;
use super::{Action, ConnId, ConnSink, Publish, RoomCore};
use crate::store::StoreError;

/// Chat messages a connection may send at once…
const CHAT_BURST: f64 = 5.0;
/// …and per second after that.
const CHAT_PER_SEC: f64 = 1.0;
/// A user's typing is passed on at most this often (per kind).
pub(crate) const TYPING_EVERY: Duration = Duration::from_secs(1);

/// The room's chat: what is kept, and the messages heard ahead of a gap.
#[derive(Default)]
pub(super) struct Chat {
    kept: VecDeque<ChatMessage>,
    /// The number of the last message delivered.
    last: u64,
    /// Messages numbered past `last + 1`, waiting for the gap to fill.
    stash: BTreeMap<u64, ChatMessage>,
    /// A read of the store's chat is under way.
    catching_up: bool,
}

impl Chat {
    /// The chat as the store kept it.
    pub(super) fn loaded(kept: Vec<ChatMessage>) -> Self {
        let mut chat = Self::default();
        for m in kept {
            chat.keep(m);
        }
        chat
    }

    fn keep(&mut self, m: ChatMessage) {
        self.last = self.last.max(m.seq);
        self.kept.push_back(m);
        while self.kept.len() > CHAT_KEPT {
            self.kept.pop_front();
        }
    }

    /// The number of the last message delivered.
    pub(super) fn last(&self) -> u64 {
        self.last
    }

    /// The kept messages, as a connection sees them.
    pub(super) fn for_conn(&self, project: bool) -> Vec<ChatMessage> {
        self.kept.iter().map(|m| view(m, project)).collect()
    }
}

/// A connection's chat allowance (a token bucket) and when it last told
/// the room it was typing.
pub(super) struct ChatLimits {
    tokens: f64,
    refilled: Option<Instant>,
    typed: Option<Instant>,
    edited: Option<(DocId, Instant)>,
}

impl Default for ChatLimits {
    fn default() -> Self {
        Self {
            tokens: CHAT_BURST,
            refilled: None,
            typed: None,
            edited: None,
        }
    }
}

impl ChatLimits {
    fn take(&mut self, now: Instant) -> bool {
        if let Some(then) = self.refilled {
            let refill = now.saturating_duration_since(then).as_secs_f64() * CHAT_PER_SEC;
            self.tokens = (self.tokens + refill).min(CHAT_BURST);
        }
        self.refilled = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// True when `last` is unset or at least [`TYPING_EVERY`] before `now`.
fn due(last: Option<Instant>, now: Instant) -> bool {
    last.is_none_or(|t| now.saturating_duration_since(t) >= TYPING_EVERY)
}

/// A message as a connection sees it: single-document clients hear of no
/// document by id (the path and line still say where).
fn view(m: &ChatMessage, project: bool) -> ChatMessage {
    let mut m = m.clone();
    if !project {
        m.doc = None;
    }
    m
}

/// The key of a user's typing state among the connection's carets.
fn typing_key(user_id: &str, editing: bool) -> Arc<str> {
    let kind = if editing { "edit" } else { "chat" };
    format!("{user_id}\t{kind}").into()
}

/// Forgets a user's caret and typing state on a connection (the user left).
pub(super) fn forget_user<S: ConnSink>(sink: &S, user_id: &str) {
    sink.drop_caret(user_id);
    for editing in [false, true] {
        sink.drop_caret(&typing_key(user_id, editing));
    }
}

impl<S: ConnSink> RoomCore<S> {
    /// A chat message from a connection, about `line` of `doc` if given.
    /// `at`: the wall clock now, in milliseconds since the Unix epoch.
    pub fn chat(
        &mut self,
        conn_id: ConnId,
        text: String,
        doc: Option<&str>,
        line: Option<u64>,
        now: Instant,
        at: u64,
    ) {
        let Some(conn) = self.conns.get(&conn_id) else {
            return;
        };
        let user_id = conn.user_id.clone();
        // Control characters would drive the readers' terminals.
        let text: String = text
            .chars()
            .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
            .collect();
        let chars = text.chars().count();
        let problem = if text.trim().is_empty() {
            Some("a chat message needs some text".to_owned())
        } else if chars > CHAT_MAX_CHARS {
            Some(format!(
                "a chat message holds at most {CHAT_MAX_CHARS} chars (this one {chars})"
            ))
        } else if line == Some(0) {
            Some("lines are numbered from 1".to_owned())
        } else {
            None
        };
        if let Some(message) = problem {
            return self.refuse(conn_id, Refusal::plain(error_code::BAD_CHAT, message), None);
        }
        // A reference names a document by id (project clients) or means
        // the main one; it is resolved to its path now, so the message
        // still says where after a rename, even to clients without ids.
        let (doc, path) = match (doc, line) {
            (None, None) => (None, None),
            (named, _) => {
                let id = match named {
                    Some(d) => self.tree.id(d),
                    None => self.tree.main(),
                };
                let Some(id) = id else {
                    let named = named.unwrap_or(crate::store::MAIN_DOC);
                    let deleted = self.deleted.contains(named);
                    return self.refuse(conn_id, Refusal::no_doc(named, deleted), None);
                };
                let path = self.tree.get(&id).map(|f| f.path.clone());
                (Some(id.to_string()), path)
            }
        };
        let within = self
            .conns
            .get_mut(&conn_id)
            .is_some_and(|c| c.chat.take(now));
        if !within {
            let message = format!(
                "more than {CHAT_BURST} chat messages at once or {CHAT_PER_SEC} per second; \
                 this one was not sent"
            );
            return self.refuse(
                conn_id,
                Refusal::plain(error_code::CHAT_RATE_LIMITED, message),
                None,
            );
        }
        let name = self
            .users
            .get(&user_id)
            .map_or_else(String::new, |p| p.info.name.clone());
        let msg = ChatMessage {
            seq: 0,
            user_id: user_id.to_string(),
            name,
            text,
            at,
            doc,
            path,
            line,
        };
        self.last_activity = now;
        if self.shared {
            // Numbered by the store; delivered when it comes back.
            self.publish(Publish::Chat(msg));
        } else {
            let seq = self.chat.last + 1;
            self.deliver_chat(ChatMessage { seq, ..msg });
        }
    }

    /// A chat message the store numbered: delivered in number order; a gap
    /// is read from the store.
    pub(super) fn chat_event(&mut self, msg: ChatMessage) {
        if msg.seq <= self.chat.last {
            return; // Delivered already (heard again, or read back).
        }
        self.chat.stash.insert(msg.seq, msg);
        self.deliver_stashed();
        if !self.chat.stash.is_empty() {
            self.need_chat();
        }
    }

    /// Reads the store's chat after the last message delivered, unless a
    /// read is under way.
    pub(super) fn need_chat(&mut self) {
        if self.shared && !std::mem::replace(&mut self.chat.catching_up, true) {
            self.actions.push(Action::CatchUpChat(self.chat.last));
        }
    }

    /// What the store's chat held after the last message delivered. A gap
    /// that remains (messages the store trimmed before this instance heard
    /// them) is skipped: nobody can read them any more.
    pub fn chat_caught_up(&mut self, read: Result<Vec<ChatMessage>, StoreError>) {
        self.chat.catching_up = false;
        let Ok(read) = read else {
            return; // The next check tries again.
        };
        for m in read {
            if m.seq > self.chat.last {
                self.chat.stash.insert(m.seq, m);
            }
        }
        if let Some((&first, _)) = self.chat.stash.first_key_value() {
            if first > self.chat.last + 1 && !self.chat.catching_up {
                self.chat.last = first - 1;
            }
        }
        self.deliver_stashed();
    }

    fn deliver_stashed(&mut self) {
        while let Some(m) = self.chat.stash.remove(&(self.chat.last + 1)) {
            self.deliver_chat(m);
        }
    }

    /// Keeps a numbered message and sends it to every connection.
    fn deliver_chat(&mut self, msg: ChatMessage) {
        let out = msg.clone();
        self.chat.keep(msg);
        self.fan_out(
            |_, _| true,
            |project| ServerMessage::Chat(view(&out, project)),
        );
    }

    /// The connection's user is typing in the chat.
    pub fn typing(&mut self, conn_id: ConnId, now: Instant) {
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return;
        };
        if !due(conn.chat.typed, now) {
            return;
        }
        conn.chat.typed = Some(now);
        let user = conn.user_id.clone();
        self.fan_typing(&user, None);
        if self.shared {
            self.publish(Publish::Typing(user.to_string(), None));
        }
    }

    /// The connection's user edited `doc` (called for every accepted edit;
    /// passed on at most every [`TYPING_EVERY`]).
    pub(super) fn editing(&mut self, conn_id: ConnId, doc: &DocId, now: Instant) {
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return;
        };
        let last = conn.chat.edited.as_ref().filter(|(d, _)| d == doc);
        if !due(last.map(|(_, t)| *t), now) {
            return;
        }
        conn.chat.edited = Some((doc.clone(), now));
        let user = conn.user_id.clone();
        self.fan_typing(&user, Some(doc));
        if self.shared {
            self.publish(Publish::Typing(user.to_string(), Some(doc.clone())));
        }
    }

    /// Another instance's user is typing.
    pub(super) fn remote_typing(&mut self, user_id: String, doc: Option<&str>) {
        let doc = match doc {
            Some(d) => match self.tree.id(d) {
                Some(id) => Some(id),
                None => return,
            },
            None => None,
        };
        self.fan_typing(&user_id.into(), doc.as_ref());
    }

    /// Sets a user's typing state on every other connection that asked for
    /// typing (`typing=1`: clients written before it existed may not expect
    /// a message on every colleague's keystroke) and may see it
    /// (single-document clients only hear of the main document).
    fn fan_typing(&mut self, user_id: &Arc<str>, doc: Option<&DocId>) {
        let main = self.tree.main();
        let in_main = doc.is_some() && doc == main.as_ref();
        let key = typing_key(user_id, doc.is_some());
        let mut built: [Option<S::Msg>; 2] = [None, None];
        for c in self.conns.values_mut() {
            let hidden = doc.is_some() && !c.project && !in_main;
            if !c.typing || c.user_id == *user_id || c.lagging || hidden {
                continue;
            }
            let project = c.project;
            let msg = built[project as usize].get_or_insert_with(|| {
                S::message(
                    ServerMessage::Typing {
                        user_id: user_id.to_string(),
                        chat: doc.is_none(),
                        editing: doc.is_some(),
                        doc: doc.filter(|_| project).map(|d| d.to_string()),
                    }
                    .to_json(),
                )
            });
            c.sink.set_caret(&key, msg);
            c.dirty = true;
        }
        self.dirty = true;
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use collab_protocol::{error_code, ChatMessage, ServerMessage};

    use super::super::tests::{join, join_as, op, room, Recorder};
    use super::super::{Action, ConnId, JoinRequest, Publish, RoomCore};

    fn chats(heard: Vec<ServerMessage>) -> Vec<ChatMessage> {
        heard
            .into_iter()
            .filter_map(|m| match m {
                ServerMessage::Chat(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    fn error_codes(heard: Vec<ServerMessage>) -> Vec<String> {
        heard
            .into_iter()
            .filter_map(|m| match m {
                ServerMessage::Error { code, .. } => Some(code),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_message_reaches_everyone_numbered_and_joiners_get_the_history() {
        let mut core = room("one\ntwo\nthree\n", false);
        let (a, heard_a, _) = join(&mut core, "a", None);
        let (_, heard_b, _) = join_as(&mut core, "b", None, true);
        let now = Instant::now();
        core.chat(a, "look at line 2".into(), None, Some(2), now, 1234);
        core.chat(a, "hi\u{1b}[2J there".into(), None, None, now, 1235);
        let to_a = chats(heard_a.take());
        let to_b = chats(heard_b.take());
        assert_eq!(to_a.len(), 2, "the author hears its own messages");
        assert_eq!(
            (
                to_a[0].seq,
                to_a[0].path.as_deref(),
                to_a[0].line,
                to_a[0].at
            ),
            (1, Some("main.rs"), Some(2), 1234)
        );
        assert_eq!(to_a[0].doc, None, "single-document clients get no id");
        assert_eq!(to_b[0].doc.as_deref(), Some("main"), "project clients do");
        assert_eq!(to_a[1].text, "hi[2J there", "control characters dropped");
        assert_eq!(to_a[1].seq, 2);
        let (_, _, init) = join(&mut core, "c", None);
        let ServerMessage::Init { chat, .. } = init else {
            unreachable!()
        };
        assert_eq!(chat, to_a, "a late joiner reads the conversation");
    }

    #[test]
    fn bad_and_too_fast_messages_are_refused_and_the_connection_stays() {
        let mut core = room("x", false);
        let (a, heard, _) = join(&mut core, "a", None);
        let now = Instant::now();
        core.chat(a, "  \n".into(), None, None, now, 0);
        core.chat(a, "x".repeat(2001), None, None, now, 0);
        core.chat(a, "line 0?".into(), None, Some(0), now, 0);
        core.chat(a, "where?".into(), Some("nope"), Some(1), now, 0);
        assert_eq!(
            error_codes(heard.take()),
            [
                error_code::BAD_CHAT,
                error_code::BAD_CHAT,
                error_code::BAD_CHAT,
                error_code::DOCUMENT_NOT_FOUND
            ]
        );
        for i in 0..6 {
            core.chat(a, format!("{i}"), None, None, now, 0);
        }
        let heard = heard.take();
        assert_eq!(chats(heard.clone()).len(), 5, "a burst of five");
        assert_eq!(error_codes(heard), [error_code::CHAT_RATE_LIMITED]);
        core.chat(
            a,
            "later".into(),
            None,
            None,
            now + Duration::from_secs(1),
            0,
        );
        assert_eq!(chats(heard_of(&core, a)).len(), 1, "then one a second");
        assert!(core.conns.contains_key(&a));
    }

    fn heard_of(core: &RoomCore<Recorder>, conn: ConnId) -> Vec<ServerMessage> {
        core.conns[&conn].sink.take()
    }

    /// Joins a single-document client through the read-only id (`viewer`)
    /// or not, asking for typing or not.
    fn join_with(
        core: &mut RoomCore<Recorder>,
        client: &str,
        viewer: bool,
        typing: bool,
    ) -> ConnId {
        let request = JoinRequest {
            client_id: client.into(),
            name: client.into(),
            since: None,
            viewer_id: viewer.then(|| "viewer".into()),
            link: None,
            watcher: false,
            project: false,
            typing,
            owner: false,
            sink: Recorder::default(),
        };
        core.join(request, Instant::now()).expect("joins").conn_id
    }

    #[test]
    fn viewers_may_chat() {
        let mut core = room("x", false);
        let (_, heard_a, _) = join(&mut core, "a", None);
        let v = join_with(&mut core, "v", true, false);
        core.chat(v, "nice".into(), None, None, Instant::now(), 0);
        assert_eq!(chats(heard_a.take())[0].text, "nice");
    }

    #[test]
    fn a_shared_room_delivers_in_the_stores_order_and_reads_gaps() {
        let mut core = room("x", true);
        let (a, heard, _) = join(&mut core, "a", None);
        core.take_actions();
        core.chat(a, "mine".into(), None, None, Instant::now(), 7);
        let actions = core.take_actions();
        let Some(Action::Publish(Publish::Chat(sent))) = actions.first() else {
            panic!("the store numbers it: {actions:?}")
        };
        assert!(
            chats(heard.take()).is_empty(),
            "not before the store numbered it"
        );
        let numbered = |seq: u64, text: &str| ChatMessage {
            seq,
            text: text.into(),
            ..sent.clone()
        };
        // Message 2 arrives before 1: held, and the gap is read.
        core.store_event(
            crate::store::StoreEvent::Chat(numbered(2, "two")),
            Instant::now(),
        );
        assert_eq!(core.take_actions(), [Action::CatchUpChat(0)]);
        assert!(chats(heard.take()).is_empty());
        core.chat_caught_up(Ok(vec![numbered(1, "one"), numbered(2, "two")]));
        core.store_event(
            crate::store::StoreEvent::Chat(numbered(1, "one")),
            Instant::now(),
        );
        let texts: Vec<String> = chats(heard.take()).into_iter().map(|m| m.text).collect();
        assert_eq!(texts, ["one", "two"], "once each, in order");
    }

    #[test]
    fn typing_goes_only_to_clients_that_asked_and_at_most_once_a_second() {
        let mut core = room("abc", false);
        let (a, _, _) = join(&mut core, "a", None);
        let (_, heard_b, _) = join(&mut core, "b", None);
        let old = join_with(&mut core, "old", false, false);
        let now = Instant::now();
        core.typing(a, now);
        let typing = |r: &super::super::tests::Recorder| r.0.borrow().typing.clone();
        let b_typing = typing(&heard_b);
        assert_eq!(b_typing.len(), 1);
        assert!(matches!(
            b_typing.values().next(),
            Some(ServerMessage::Typing {
                chat: true,
                editing: false,
                ..
            })
        ));
        core.edit(a, None, 0, 1, op(r#"[3, "!"]"#), now);
        assert!(typing(&heard_b).values().any(|m| matches!(
            m,
            ServerMessage::Typing {
                editing: true,
                doc: None,
                ..
            }
        )));
        heard_b.0.borrow_mut().typing.clear();
        core.typing(a, now + Duration::from_millis(500));
        assert!(typing(&heard_b).is_empty(), "throttled");
        core.typing(a, now + Duration::from_secs(1));
        assert_eq!(typing(&heard_b).len(), 1);
        let old = &core.conns[&old].sink;
        assert!(
            typing(old).is_empty(),
            "a client that did not ask hears none"
        );
        assert!(old
            .take()
            .iter()
            .all(|m| !matches!(m, ServerMessage::Typing { .. })));
    }
}
