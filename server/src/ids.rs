//! Identifiers and colors handed out by the server.

use rand::distr::{Alphanumeric, SampleString};

/// Length of a room id: 22 alphanumeric chars carry about 131 bits.
const ROOM_ID_LEN: usize = 22;

/// A new room id: 22 chars of `[A-Za-z0-9]` from the thread-local CSPRNG
/// (ChaCha, seeded by the OS), so ids cannot be guessed or enumerated.
pub fn new_room_id() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), ROOM_ID_LEN)
}

/// A room owner's token: 44 chars from a CSPRNG (about 262 bits).
pub fn new_owner_token() -> String {
    format!("{}{}", new_room_id(), new_room_id())
}

/// How an owner token is kept: its SHA-256 in hex, so that reading the
/// store (a Redis dump) does not give anyone the owner's powers.
pub fn owner_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new user id, unique within a room.
pub fn new_user_id() -> String {
    format!("u{}", Alphanumeric.sample_string(&mut rand::rng(), 10))
}

/// A new document id: 10 chars of `[A-Za-z0-9]`, unique within a room
/// (never `main`, which names a room's main document).
pub fn new_doc_id(rng: &mut impl rand::Rng) -> String {
    Alphanumeric.sample_string(rng, 10)
}

/// A client id for a connection that did not bring one.
pub fn new_client_id() -> String {
    format!("anon-{}", Alphanumeric.sample_string(&mut rand::rng(), 16))
}

/// True for ids that may name a room in a URL: 1 to 64 chars of `[A-Za-z0-9_-]`.
pub fn is_valid_room_id(id: &str) -> bool {
    collab_protocol::is_valid_client_id(id)
}

/// Colors for users' carets, chosen to stay apart on dark and light terminals.
pub const PALETTE: [&str; 12] = [
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
    "#fabed4", "#469990", "#dcbeff", "#ffe119",
];

/// The first palette color not in `taken`, preferring `preferred` (a
/// returning user's old color) when it is free. When every color is taken,
/// colors repeat, spread by `salt`.
pub fn pick_color<'a>(
    taken: impl Iterator<Item = &'a str> + Clone,
    preferred: Option<&str>,
    salt: usize,
) -> String {
    if let Some(p) = preferred {
        if !taken.clone().any(|t| t == p) {
            return p.to_owned();
        }
    }
    PALETTE
        .iter()
        .find(|c| !taken.clone().any(|t| t == **c))
        .unwrap_or(&PALETTE[salt % PALETTE.len()])
        .to_string()
}

/// A room id shortened for logs: ids are capabilities, never logged whole.
pub fn short(id: &str) -> &str {
    &id[..id.len().min(6)]
}

/// A display name made safe to show: control characters dropped, trimmed,
/// at most 32 chars; "anonymous" when nothing is left.
pub fn clean_name(name: Option<&str>) -> String {
    let cleaned: String = name
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(32)
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        "anonymous".to_owned()
    } else {
        cleaned.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_are_long_and_url_safe() {
        let a = new_room_id();
        assert_eq!(a.len(), ROOM_ID_LEN);
        assert!(is_valid_room_id(&a));
        assert_ne!(a, new_room_id());
    }

    #[test]
    fn colors_stay_distinct_while_the_palette_lasts() {
        let mut taken: Vec<String> = Vec::new();
        for i in 0..PALETTE.len() {
            let c = pick_color(taken.iter().map(String::as_str), None, i);
            assert!(!taken.contains(&c));
            taken.push(c);
        }
        let again = pick_color(taken.iter().map(String::as_str), Some("#e6194b"), 0);
        assert!(PALETTE.contains(&again.as_str()));
    }

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name(Some("  ada\u{1b}[31m ")), "ada[31m");
        assert_eq!(clean_name(None), "anonymous");
        assert_eq!(clean_name(Some(&"x".repeat(100))).len(), 32);
    }
}
