//! Optional authentication: HS256 JWTs with `sub` (the user's name) and
//! `exp`, on when the server has a secret. Tokens are never logged.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// What a token says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user's name.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

/// Why a request is not authenticated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No token was presented.
    #[error(
        "a token is required: send `Authorization: Bearer <token>` (or `?token=` on the WebSocket)"
    )]
    Missing,
    /// The token has expired.
    #[error("the token has expired")]
    Expired,
    /// The token is malformed or its signature is wrong.
    #[error("the token is not valid")]
    Invalid,
}

/// Signs and checks tokens with one shared secret.
#[derive(Clone)]
pub struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Auth {
    /// Tokens signed with `secret`.
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// A token for `sub`, valid for `ttl`.
    pub fn mint(&self, sub: &str, ttl: Duration) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let claims = Claims {
            sub: sub.to_owned(),
            exp: (now + ttl).as_secs(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with a byte secret cannot fail")
    }

    /// Checks a token.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            })
    }

    /// Checks the bearer token of a request, or `query_token` when the
    /// request has no `Authorization` header.
    pub fn check(
        &self,
        headers: &HeaderMap,
        query_token: Option<&str>,
    ) -> Result<Claims, AuthError> {
        let token = bearer(headers).or(query_token).ok_or(AuthError::Missing)?;
        self.verify(token)
    }
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Parses durations like `30d`, `12h`, `45m`, `90s` or plain seconds.
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 30d, 12h, 45m or 90s"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("unknown unit in `{s}`: use s, m, h or d")),
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_are_checked() {
        let auth = Auth::new("s3cret");
        let t = auth.mint("ada", Duration::from_secs(60));
        assert_eq!(auth.verify(&t).unwrap().sub, "ada");
        assert_eq!(Auth::new("other").verify(&t), Err(AuthError::Invalid));
        assert_eq!(auth.verify("garbage"), Err(AuthError::Invalid));
        let expired = encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                sub: "ada".into(),
                exp: 1,
            },
            &EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap();
        assert_eq!(auth.verify(&expired), Err(AuthError::Expired));
    }

    #[test]
    fn ttls_parse() {
        assert_eq!(parse_ttl("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse_ttl("90").unwrap(), Duration::from_secs(90));
        assert!(parse_ttl("3w").is_err());
        assert!(parse_ttl("").is_err());
    }
}
