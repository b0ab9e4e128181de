//! `tokengate status`: the profile and its session, read from the store without refreshing. Never
//! the token.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use tokengate::{Token, TokenStore};

use crate::commands::printable;
use crate::exit::Failure;
use crate::session::Session;

pub fn run(session: &Session) -> Result<(), Failure> {
    let p = &session.profile;
    let mut out = String::new();
    let mut line = |label: &str, value: &str| {
        let _ = writeln!(out, "{label:<15}{value}");
    };
    let config = session.config.path().display();
    line(
        "profile",
        &if session.exists {
            format!("{} ({config})", session.name)
        } else {
            format!("{} (not in {config})", session.name)
        },
    );
    if let Some(issuer) = &p.issuer {
        line("issuer", issuer);
    }
    if let Some(endpoint) = &p.token_endpoint {
        line("token endpoint", endpoint);
    }
    if let Some(id) = &p.client_id {
        let kind = if p.client_secret.is_some() {
            "confidential: secret in the config file"
        } else {
            "public"
        };
        line("client", &format!("{id} ({kind})"));
    }
    if let Some(flow) = p.flow {
        line("login flow", flow.as_str());
    }
    line("store", &session.store.describe(&session.name));

    let stored = session.open_store().and_then(|s| Ok(s.load()?));
    let verdict = match stored {
        Ok(Some(token)) => describe_token(&token, SystemTime::now(), &mut line),
        Ok(None) => {
            line("session", "none");
            Err(Failure::login_required(format!(
                "no session for profile `{}`: run `tokengate login`",
                session.name
            )))
        }
        Err(e) => {
            line("session", "unknown (the store cannot be read)");
            Err(e)
        }
    };
    print!("{out}");
    verdict
}

/// The session lines for a stored token; an error when it cannot be used any more.
fn describe_token(
    token: &Token,
    now: SystemTime,
    line: &mut impl FnMut(&str, &str),
) -> Result<(), Failure> {
    let refreshable = token.refresh_token().is_some();
    let expiry = token.expires_at_wall().map(|at| {
        let when = rfc3339(at);
        match at.duration_since(now) {
            Ok(left) => format!("expires in {} ({when})", human(left)),
            Err(e) => format!("expired {} ago ({when})", human(e.duration())),
        }
    });
    let expired = token.expires_at_wall().is_some_and(|at| at <= now);
    let state = match (expired, refreshable) {
        (false, _) => "active",
        (true, true) => "active (the access token is refreshed on next use)",
        (true, false) => "ended (expired, no refresh token)",
    };
    line("session", state);
    line(
        "access token",
        &expiry.unwrap_or_else(|| "no expiry given (used until the API rejects it)".into()),
    );
    line("refresh token", if refreshable { "yes" } else { "no" });
    if let Some(who) = who(token.access_token().secret()) {
        line("who", &printable(&who));
    }
    if let Some(scope) = token.scope() {
        line("scopes", &printable(scope));
    }
    if expired && !refreshable {
        return Err(Failure::login_required(
            "the session has ended: run `tokengate login`",
        ));
    }
    Ok(())
}

/// Who a JWT access token was issued to (its payload, not verified: for display only). `None`
/// for an opaque token.
fn who(access_token: &str) -> Option<String> {
    let mut parts = access_token.split('.');
    let (_, payload, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else {
        return None;
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let claim = |name: &str| claims.get(name).and_then(|v| v.as_str());
    let name = ["preferred_username", "email", "name"]
        .into_iter()
        .find_map(claim);
    match (name, claim("sub")) {
        (Some(name), Some(sub)) if name != sub => Some(format!("{name} (subject {sub})")),
        (Some(name), _) => Some(name.to_owned()),
        (None, Some(sub)) => Some(format!("subject {sub}")),
        (None, None) => None,
    }
}

/// `1h 5m`, `3m 20s`, `12s`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// `2026-01-31T12:00:00Z` (UTC, whole seconds).
fn rfc3339(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86400, secs % 86400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's `civil_from_days`).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let at = |s: u64| rfc3339(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_767_225_599), "2025-12-31T23:59:59Z");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00Z");
    }

    #[test]
    fn durations() {
        assert_eq!(human(Duration::from_secs(5)), "5s");
        assert_eq!(human(Duration::from_secs(200)), "3m 20s");
        assert_eq!(human(Duration::from_secs(3900)), "1h 5m");
        assert_eq!(human(Duration::from_secs(90000)), "1d 1h");
    }

    #[test]
    fn who_reads_a_jwt_payload_only() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let jwt = |payload: &str| format!("{}.{}.sig", b64("{\"alg\":\"RS256\"}"), b64(payload));
        assert_eq!(
            who(&jwt(r#"{"sub":"42","email":"a@example.com"}"#)).as_deref(),
            Some("a@example.com (subject 42)")
        );
        assert_eq!(who(&jwt(r#"{"sub":"42"}"#)).as_deref(), Some("subject 42"));
        assert_eq!(who(&jwt(r#"{"exp":1}"#)), None);
        assert_eq!(who("opaque-token"), None);
        assert_eq!(who("a.b.c.d"), None);
        assert_eq!(who("a.!!!.c"), None);
    }

    #[test]
    fn sessions() {
        let now = SystemTime::now();
        let lines = |token: &Token| {
            let mut seen = Vec::new();
            let verdict = describe_token(token, now, &mut |l: &str, v: &str| {
                seen.push(format!("{l}: {v}"));
            });
            (verdict.is_ok(), seen.join("\n"))
        };
        let (ok, text) = lines(
            &Token::new("SECRET-A")
                .with_expires_in(Duration::from_secs(3600))
                .with_refresh_token("SECRET-R")
                .with_scope("read write"),
        );
        assert!(ok);
        assert!(text.contains("session: active\n"), "{text}");
        assert!(
            text.contains("expires in 59m") || text.contains("expires in 1h"),
            "{text}"
        );
        assert!(text.contains("scopes: read write"), "{text}");
        assert!(!text.contains("SECRET"), "{text}");

        let expired = Token::new("A").with_expires_at_wall(now - Duration::from_secs(5));
        let (ok, text) = lines(&expired.clone().with_refresh_token("R"));
        assert!(ok, "{text}");
        assert!(text.contains("refreshed on next use"), "{text}");
        let (ok, text) = lines(&expired);
        assert!(!ok, "{text}");
    }
}
