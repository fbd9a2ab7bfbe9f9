//! The room's chat as the editor keeps it: the conversation (numbered by
//! the server, so a message heard twice across a reconnect counts once),
//! what is unread, the pane and its input line, the message picked for a
//! jump, and who is typing. Pure: time comes in as arguments.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use collab_protocol::{ChatMessage, CHAT_KEPT};

use super::editor::LineInput;

/// How long a colleague counts as typing after their last `typing`.
pub const TYPING_SHOWN: Duration = Duration::from_secs(4);
/// How often this client says it is typing, at most.
pub const TYPING_EVERY: Duration = Duration::from_secs(2);

/// The chat pane's state; see the module docs.
#[derive(Debug, Default)]
pub struct Chat {
    messages: VecDeque<ChatMessage>,
    unread: usize,
    shown: bool,
    focused: bool,
    pub(crate) input: LineInput,
    /// The message picked with Up/Down (an index into `messages`).
    picked: Option<usize>,
    /// Colleagues typing in the chat, and since when they last said so.
    typing: HashMap<String, Instant>,
    /// Colleagues editing, the document (project rooms), and when.
    editing: HashMap<String, (Option<String>, Instant)>,
    typing_sent: Option<Instant>,
    /// A reference to jump to once its document is open: (doc, line).
    pub(crate) pending_jump: Option<(String, usize)>,
}

impl Chat {
    /// The conversation, oldest first.
    pub fn messages(&self) -> &VecDeque<ChatMessage> {
        &self.messages
    }

    /// Messages that arrived while the pane was not being read.
    pub fn unread(&self) -> usize {
        self.unread
    }

    /// The pane is on screen.
    pub fn shown(&self) -> bool {
        self.shown
    }

    /// Keys go to the chat's input line.
    pub fn focused(&self) -> bool {
        self.focused
    }

    /// The message picked for a jump.
    pub fn picked(&self) -> Option<usize> {
        self.picked
    }

    /// The conversation an `init` carries: what was not seen before (a
    /// reconnect brings the whole of it again) counts as unread.
    pub fn reset(&mut self, chat: Vec<ChatMessage>, mine: &str) {
        let seen = self.last_seq();
        for m in chat {
            if m.seq > seen {
                self.receive(m, mine);
            }
        }
    }

    fn last_seq(&self) -> u64 {
        self.messages.back().map_or(0, |m| m.seq)
    }

    /// A message from the server; one heard before is ignored. Someone
    /// else's counts as unread unless the pane has the keys.
    pub fn receive(&mut self, m: ChatMessage, mine: &str) {
        if m.seq != 0 && m.seq <= self.last_seq() {
            return;
        }
        if m.user_id != mine && !self.focused {
            self.unread += 1;
        }
        // Their message is what they were typing.
        self.typing.remove(&m.user_id);
        self.messages.push_back(m);
        if self.messages.len() > CHAT_KEPT {
            self.messages.pop_front();
            self.picked = self.picked.and_then(|p| p.checked_sub(1));
        }
    }

    /// Shows the pane with the keys in it, or (when it has them) hides it.
    pub fn toggle(&mut self) {
        if self.shown && self.focused {
            self.shown = false;
            self.focused = false;
            self.picked = None;
        } else {
            self.shown = true;
            self.focused = true;
            self.unread = 0;
        }
    }

    /// The keys go back to the text; the pane stays.
    pub fn unfocus(&mut self) {
        self.focused = false;
        self.picked = None;
    }

    /// Picks the previous (`up`) or next message; past the newest, none.
    pub fn pick(&mut self, up: bool) {
        let n = self.messages.len();
        if n == 0 {
            return;
        }
        self.picked = match (self.picked, up) {
            (None, true) => Some(n - 1),
            (None, false) => None,
            (Some(i), true) => Some(i.saturating_sub(1)),
            (Some(i), false) if i + 1 < n => Some(i + 1),
            (Some(_), false) => None,
        };
    }

    /// Takes what was typed, leaving the input empty.
    pub fn take_input(&mut self) -> String {
        std::mem::take(&mut self.input).text().to_owned()
    }

    /// True when this client should say it is typing now (and notes it).
    pub fn typing_due(&mut self, now: Instant) -> bool {
        if self
            .typing_sent
            .is_some_and(|t| now.saturating_duration_since(t) < TYPING_EVERY)
        {
            return false;
        }
        self.typing_sent = Some(now);
        true
    }

    /// A colleague is typing in the chat (`editing` false) or editing
    /// (`doc` when the server names it).
    pub fn colleague_typing(
        &mut self,
        user_id: &str,
        editing: bool,
        doc: Option<String>,
        now: Instant,
    ) {
        if editing {
            self.editing.insert(user_id.to_owned(), (doc, now));
        } else {
            self.typing.insert(user_id.to_owned(), now);
        }
    }

    /// A colleague left: they type no more.
    pub fn forget(&mut self, user_id: &str) {
        self.typing.remove(user_id);
        self.editing.remove(user_id);
    }

    /// Who is typing in the chat now, sorted.
    pub fn typing_now(&self, now: Instant) -> Vec<&str> {
        let mut who: Vec<&str> = self
            .typing
            .iter()
            .filter(|(_, t)| now.saturating_duration_since(**t) < TYPING_SHOWN)
            .map(|(u, _)| u.as_str())
            .collect();
        who.sort_unstable();
        who
    }

    /// Whether a colleague is editing now, and which document if known.
    pub fn editing_now(&self, user_id: &str, now: Instant) -> Option<Option<&str>> {
        self.editing
            .get(user_id)
            .filter(|(_, t)| now.saturating_duration_since(*t) < TYPING_SHOWN)
            .map(|(d, _)| d.as_deref())
    }
}

/// A `path:line` reference in what is typed, for the message to carry:
/// the first word of the form `PATH:LINE` whose path `known` recognizes
/// (giving its document), or `:LINE` / `line LINE` for `here` (the active
/// document). Trailing punctuation is ignored.
pub fn find_reference(
    text: &str,
    here: Option<&str>,
    known: impl Fn(&str) -> Option<String>,
) -> Option<(Option<String>, u64)> {
    let words: Vec<&str> = text.split_whitespace().collect();
    for (i, word) in words.iter().enumerate() {
        let word = word.trim_end_matches(|c: char| ",.;!?)]'\"".contains(c));
        let word = word.trim_start_matches(|c: char| "([`'\"".contains(c));
        if let Some((path, line)) = word.rsplit_once(':') {
            let Ok(line) = line.parse::<u64>() else {
                continue;
            };
            if line == 0 {
                continue;
            }
            if path.is_empty() {
                return Some((here.map(str::to_owned), line));
            }
            if let Some(doc) = known(path) {
                return Some((Some(doc), line));
            }
        }
        if word.eq_ignore_ascii_case("line") {
            let next = words
                .get(i + 1)
                .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_digit()));
            if let Some(line) = next.and_then(|w| w.parse::<u64>().ok()).filter(|&l| l > 0) {
                return Some((here.map(str::to_owned), line));
            }
        }
    }
    None
}

/// The `@name` mentions in a message: byte ranges of each `@word`.
pub fn mentions(text: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut chars = text.char_indices().peekable();
    let mut prev: Option<char> = None;
    while let Some((i, c)) = chars.next() {
        let at_start = prev.is_none_or(|p| !(p.is_alphanumeric() || p == '_'));
        if c == '@' && at_start {
            let mut end = i + 1;
            while let Some(&(j, d)) = chars.peek() {
                if d.is_alphanumeric() || "_-.".contains(d) {
                    end = j + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            // A trailing dot ends a sentence, not a name.
            while text[i + 1..end].ends_with('.') {
                end -= 1;
            }
            if end > i + 1 {
                found.push((i, end));
            }
            prev = text[..end].chars().last();
            continue;
        }
        prev = Some(c);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(seq: u64, user: &str, text: &str) -> ChatMessage {
        ChatMessage {
            seq,
            user_id: user.into(),
            name: user.into(),
            text: text.into(),
            at: 0,
            doc: None,
            path: None,
            line: None,
        }
    }

    #[test]
    fn unread_counts_others_messages_once_across_reconnects() {
        let mut chat = Chat::default();
        chat.reset(vec![msg(1, "ada", "hi"), msg(2, "me", "yo")], "me");
        assert_eq!(chat.unread(), 1, "my own message is not unread");
        chat.receive(msg(3, "ada", "there?"), "me");
        // A reconnect's init brings everything again, and one more.
        chat.reset(
            vec![
                msg(1, "ada", "hi"),
                msg(2, "me", "yo"),
                msg(3, "ada", "there?"),
                msg(4, "bo", "!"),
            ],
            "me",
        );
        assert_eq!(chat.messages().len(), 4);
        assert_eq!(chat.unread(), 3);
        chat.toggle();
        assert_eq!(
            (chat.shown(), chat.focused(), chat.unread()),
            (true, true, 0)
        );
        chat.receive(msg(5, "ada", "ok"), "me");
        assert_eq!(chat.unread(), 0, "read as it arrives");
        chat.toggle();
        assert!(!chat.shown());
    }

    #[test]
    fn picking_walks_the_messages_from_the_newest() {
        let mut chat = Chat::default();
        chat.reset(vec![msg(1, "a", "1"), msg(2, "a", "2")], "me");
        chat.pick(true);
        assert_eq!(chat.picked(), Some(1));
        chat.pick(true);
        chat.pick(true);
        assert_eq!(chat.picked(), Some(0));
        chat.pick(false);
        chat.pick(false);
        assert_eq!(chat.picked(), None);
    }

    #[test]
    fn references_are_found_by_path_or_line() {
        let known = |p: &str| (p == "src/main.rs").then(|| "d1".to_owned());
        assert_eq!(
            find_reference("look at src/main.rs:40, please", Some("d0"), known),
            Some((Some("d1".into()), 40))
        );
        assert_eq!(
            find_reference("see :12", Some("d0"), known),
            Some((Some("d0".into()), 12))
        );
        assert_eq!(
            find_reference("Line 7 is odd", Some("d0"), known),
            Some((Some("d0".into()), 7))
        );
        assert_eq!(find_reference("at 10:30 then", Some("d0"), known), None);
        assert_eq!(find_reference("nope.rs:3 and :0", None, known), None);
    }

    #[test]
    fn typing_is_said_at_most_every_two_seconds_and_shown_for_four() {
        let mut chat = Chat::default();
        let t = Instant::now();
        assert!(chat.typing_due(t));
        assert!(!chat.typing_due(t + Duration::from_secs(1)));
        assert!(chat.typing_due(t + TYPING_EVERY));
        chat.colleague_typing("ada", false, None, t);
        chat.colleague_typing("bo", true, Some("d1".into()), t);
        assert_eq!(chat.typing_now(t + Duration::from_secs(3)), ["ada"]);
        assert_eq!(chat.editing_now("bo", t), Some(Some("d1")));
        assert!(chat.typing_now(t + TYPING_SHOWN).is_empty());
        chat.colleague_typing("ada", false, None, t);
        chat.receive(msg(1, "ada", "done"), "me");
        assert!(chat.typing_now(t).is_empty(), "a message ends the typing");
    }

    #[test]
    fn mentions_are_at_words() {
        let text = "@ada look, mail bo@x.org and @bo.";
        let found: Vec<&str> = mentions(text).iter().map(|&(s, e)| &text[s..e]).collect();
        assert_eq!(found, ["@ada", "@bo"]);
    }
}
