//! [`TokenResponse`]: a token endpoint's success answer (RFC 6749 §5.1), parsed and checked.

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{Class, RefreshError, RefreshErrorKind};
use crate::token::{RefreshToken, Token};

/// A successful token response (RFC 6749 §5.1), parsed and checked.
///
/// Unknown fields are kept in [`extra`](TokenResponse::extra). `Debug` redacts the tokens.
///
/// ```
/// use tokengate::TokenResponse;
///
/// let r = TokenResponse::parse(br#"{"access_token":"a","token_type":"bearer","expires_in":"3600","id_token":"x"}"#)?;
/// assert_eq!(r.expires_in, Some(std::time::Duration::from_secs(3600)));
/// assert!(r.extra.contains_key("id_token"));
/// # Ok::<_, tokengate::RefreshError>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct TokenResponse {
    /// `access_token` (RFC 6749 §5.1): required, non-empty.
    pub access_token: String,
    /// `token_type` (RFC 6749 §5.1, §7.1). Required by the RFC; `Bearer` is assumed when a server
    /// leaves it out or sends something that is not a non-empty string (that value is kept in
    /// [`extra`](TokenResponse::extra)): refusing the response would throw away a rotated refresh
    /// token.
    pub token_type: String,
    /// `expires_in` (RFC 6749 §5.1), accepted as a JSON number or a numeric string. Only RECOMMENDED:
    /// `None` when absent, and also when unusable (zero, negative, not a number): such a value is kept
    /// in [`extra`](TokenResponse::extra) and the token is treated as one without a stated lifetime
    /// (see [`GateBuilder::assumed_lifetime`](crate::GateBuilder::assumed_lifetime)), because
    /// rejecting the whole response would throw away a rotated refresh token the server has already
    /// swapped for the old one. [`into_token`](TokenResponse::into_token) clamps lifetimes beyond
    /// ten years, and without `expires_in` reads a JWT access token's `exp` claim.
    pub expires_in: Option<Duration>,
    /// `refresh_token` (RFC 6749 §5.1, §6): present when the server issues or rotates one.
    pub refresh_token: Option<String>,
    /// `scope` (RFC 6749 §5.1, §3.3).
    pub scope: Option<String>,
    /// Every other field of the response (e.g. `id_token`), as sent.
    pub extra: Map<String, Value>,
}

impl TokenResponse {
    /// Parses a token endpoint's success body.
    ///
    /// # Errors
    ///
    /// A transient [`RefreshError`] of kind [`InvalidResponse`](RefreshErrorKind::InvalidResponse)
    /// when the body is not a JSON object, `access_token` is missing, empty or not a string, or
    /// `token_type` or `refresh_token` has the wrong type. An unusable `expires_in` is not an error
    /// (see [`expires_in`](TokenResponse::expires_in)). The message names the field, never its
    /// value, and no part of the body is kept: a success body that is not JSON (form-encoded, cut
    /// short) may hold the new tokens.
    pub fn parse(body: &[u8]) -> Result<TokenResponse, RefreshError> {
        let invalid = |msg: &str| {
            RefreshError::new(
                RefreshErrorKind::InvalidResponse,
                Class::Transient,
                format!("invalid token response: {msg}"),
            )
        };
        let value: Value = serde_json::from_slice(body).map_err(|_| invalid("not JSON"))?;
        let Value::Object(mut map) = value else {
            return Err(invalid("not a JSON object"));
        };
        let access_token = match map.remove("access_token") {
            Some(Value::String(s)) if !s.is_empty() => s,
            Some(Value::String(_)) => return Err(invalid("access_token is empty")),
            Some(_) => return Err(invalid("access_token is not a string")),
            None => return Err(invalid("access_token is missing")),
        };
        // An odd token_type or refresh_token must not cost the rotated refresh token (or the
        // new access token) the rest of the response carries: assume the usual, keep the odd
        // value in `extra`.
        let token_type = match map.remove("token_type") {
            Some(Value::String(s)) if !s.is_empty() => s,
            None | Some(Value::Null) => "Bearer".to_owned(),
            Some(odd) => {
                map.insert("token_type".to_owned(), odd);
                "Bearer".to_owned()
            }
        };
        let expires_in = match map.remove("expires_in") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let lifetime = parse_expires_in(&v);
                if lifetime.is_none() {
                    // Unusable: keep it for the caller to see, use the token without a stated
                    // lifetime. Failing here would throw away a rotated refresh token.
                    map.insert("expires_in".to_owned(), v);
                }
                lifetime
            }
        };
        let refresh_token = match map.remove("refresh_token") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            // No usable new refresh token: the old one is kept (see `into_token`).
            Some(odd) => {
                map.insert("refresh_token".to_owned(), odd);
                None
            }
        };
        let scope = match map.remove("scope") {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        Ok(TokenResponse {
            access_token,
            token_type,
            expires_in,
            refresh_token,
            scope,
            extra: map,
        })
    }

    /// Turns the response into a [`Token`]. When the response has no refresh token, `previous` is kept
    /// (RFC 6749 §6: the server MAY issue a new one; when it does not, the old one stays valid).
    ///
    /// Without a usable `expires_in`, an access token that is a JWT (RFC 7519) gets its lifetime
    /// from its `exp` claim, counted from now (the moment the response is turned into a token):
    /// only the payload is decoded, and its signature is not checked. That is enough for the
    /// client's own timing (when to refresh); the API that receives the token checks the
    /// signature. An `exp` already passed, or more than ten years ahead (e.g. in milliseconds), is
    /// not used. An opaque token keeps no stated lifetime (the gate's
    /// [`assumed_lifetime`](crate::GateBuilder::assumed_lifetime) applies).
    pub fn into_token(self, previous: Option<&RefreshToken>) -> Token {
        let lifetime = self
            .expires_in
            .or_else(|| crate::jwt::lifetime(&self.access_token, std::time::SystemTime::now()));
        let mut token = Token::new(self.access_token).with_token_type(self.token_type);
        if let Some(lifetime) = lifetime {
            token = token.with_expires_in(lifetime);
        }
        if let Some(scope) = self.scope {
            token = token.with_scope(scope);
        }
        match self.refresh_token {
            Some(r) => token.with_refresh_token(r),
            None => token.replace_refresh(previous.cloned()),
        }
    }
}

/// `expires_in` as a number (integer or fraction) or numeric string; must be positive.
fn parse_expires_in(v: &Value) -> Option<Duration> {
    let secs = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !secs.is_finite() || secs <= 0.0 {
        return None;
    }
    // Clamped far below u64 range; Token::with_expires_in clamps further to its own maximum.
    Some(Duration::from_secs_f64(secs.min(1e15)))
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("scope", &self.scope)
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}
