//! The expiry of an access token that is a JWT (RFC 7519), for a token response without
//! `expires_in`.
//!
//! Only the payload is decoded, to read its `exp` claim (RFC 7519 §4.1.4). The signature is not
//! checked, and need not be: the client does not *trust* the token on the strength of this claim,
//! it only times its own refresh. The API that receives the token checks the signature; a token
//! that lies about its expiry makes the client refresh too early or too late, which the
//! rejection-and-replay path already survives.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::form::base64url_decode;
use crate::token::MAX_LIFETIME;

/// Longest payload decoded. Real ones are a few hundred bytes.
const MAX_PAYLOAD: usize = 16 * 1024;

/// The `exp` claim of `token`, when it is a JWS in compact form (three base64url parts: header,
/// payload, signature) whose payload is a JSON object with a numeric `exp` (seconds since the
/// epoch, fractions allowed). `None` for anything else: an opaque token, an encrypted JWT (five
/// parts), a malformed one, or an `exp` that is not a non-negative number.
pub(crate) fn exp(token: &str) -> Option<SystemTime> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.len() > MAX_PAYLOAD / 3 * 4 {
        return None;
    }
    let bytes = base64url_decode(payload)?;
    let Value::Object(claims) = serde_json::from_slice(&bytes).ok()? else {
        return None;
    };
    let secs = claims.get("exp")?.as_f64()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    // Beyond what a SystemTime holds on some platforms, and anyway absurd (see `lifetime`).
    UNIX_EPOCH.checked_add(Duration::try_from_secs_f64(secs).ok()?)
}

/// The time `token` has left by its `exp` claim, counted from `now` (when its response came).
///
/// `None` when there is no usable claim (see [`exp`]) and when the claim is absurd for a client's
/// timing: already passed at `now` (the server's clock or ours is off; trusting it would refresh
/// at once, every time) or further ahead than the ten years a [`Token`](crate::Token) holds (e.g.
/// an `exp` in milliseconds). The caller then falls back to the assumed lifetime.
pub(crate) fn lifetime(token: &str, now: SystemTime) -> Option<Duration> {
    let left = exp(token)?.duration_since(now).ok()?;
    (!left.is_zero() && left <= MAX_LIFETIME).then_some(left)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form::base64url;

    /// A compact JWS with `claims` as its payload (the signature is not looked at).
    fn jwt(claims: &str) -> String {
        format!(
            "{}.{}.c2lnbmF0dXJl",
            base64url(br#"{"alg":"RS256","typ":"JWT"}"#),
            base64url(claims.as_bytes())
        )
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn reads_exp_of_a_compact_jws() {
        // RFC 7519 §3.1's example token.
        let example = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.\
            eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.\
            dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(exp(example), Some(at(1_300_819_380)));
        assert_eq!(
            lifetime(example, at(1_300_819_380 - 600)),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            exp(&jwt(r#"{"sub":"me","exp":1700000000.5}"#)),
            Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_500))
        );
        // An unsigned JWT (`alg: none`) has an empty signature part; its exp still times the token.
        let unsigned = format!(
            "{}.{}.",
            base64url(br#"{"alg":"none"}"#),
            base64url(br#"{"exp":5}"#)
        );
        assert_eq!(exp(&unsigned), Some(at(5)));
    }

    #[test]
    fn anything_else_has_no_exp() {
        for token in [
            String::new(),
            "opaque-access-token".to_owned(),
            "a.b".to_owned(),
            "a.b.c.d.e".to_owned(),
            jwt(r#"{"sub":"me"}"#),
            jwt(r#"{"exp":"1700000000"}"#),
            jwt(r#"{"exp":-1}"#),
            jwt(r#"{"exp":null}"#),
            jwt(r#"{"exp":1e300}"#),
            jwt(r#"[1700000000]"#),
            jwt("not json"),
            format!("x.{}=.y", base64url(br#"{"exp":5}"#)),
            format!("x.{}.y", "A".repeat(MAX_PAYLOAD * 2)),
        ] {
            assert_eq!(exp(&token), None, "{token}");
        }
    }

    #[test]
    fn absurd_expiries_are_not_used() {
        let now = at(1_700_000_000);
        // Already passed, or exactly now: a skewed clock, not a lifetime.
        assert_eq!(lifetime(&jwt(r#"{"exp":1699999000}"#), now), None);
        assert_eq!(lifetime(&jwt(r#"{"exp":1700000000}"#), now), None);
        // Milliseconds instead of seconds: tens of thousands of years ahead.
        assert_eq!(lifetime(&jwt(r#"{"exp":1700000000000}"#), now), None);
        // Just inside the ten years a token holds, and just beyond.
        let ten_years = MAX_LIFETIME.as_secs();
        let inside = format!(r#"{{"exp":{}}}"#, 1_700_000_000 + ten_years);
        assert_eq!(lifetime(&jwt(&inside), now), Some(MAX_LIFETIME));
        let beyond = format!(r#"{{"exp":{}}}"#, 1_700_000_001 + ten_years);
        assert_eq!(lifetime(&jwt(&beyond), now), None);
        assert_eq!(
            lifetime(&jwt(r#"{"exp":1700003600}"#), now),
            Some(Duration::from_secs(3600))
        );
    }
}
