//! The OAuth2 refresher's unit tests: token responses, the classification of answers, the
//! request's form and client authentication; no sockets.

use std::time::Duration;

use super::answer::*;
use super::oauth2::*;
use super::token_response::*;
use super::*;
use crate::form::base64;
use crate::token::RefreshToken;

#[test]
fn parses_rfc6749_example() {
    let r = TokenResponse::parse(
        br#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"example","expires_in":3600,
           "refresh_token":"tGzv3JOkF0XG5Qx2TlKWIA","example_parameter":"example_value"}"#,
    )
    .unwrap();
    assert_eq!(r.expires_in, Some(Duration::from_secs(3600)));
    assert_eq!(r.refresh_token.as_deref(), Some("tGzv3JOkF0XG5Qx2TlKWIA"));
    assert_eq!(r.extra["example_parameter"], "example_value");
    let dbg = format!("{r:?}");
    assert!(
        !dbg.contains("2YotnFZFEjr1zCsicMWpAA") && !dbg.contains("tGzv3"),
        "{dbg}"
    );
}

#[test]
fn expires_in_forms() {
    let p = |s: &str| TokenResponse::parse(s.as_bytes()).map(|r| r.expires_in);
    assert_eq!(
        p(r#"{"access_token":"a","expires_in":"60"}"#).unwrap(),
        Some(Duration::from_secs(60))
    );
    assert_eq!(
        p(r#"{"access_token":"a","expires_in":1.5}"#).unwrap(),
        Some(Duration::from_millis(1500))
    );
    assert_eq!(p(r#"{"access_token":"a"}"#).unwrap(), None);
    assert!(
        p(r#"{"access_token":"a","expires_in":1e300}"#)
            .unwrap()
            .is_some()
    );
    // Unusable values do not discard the response (it may carry a rotated refresh token):
    // no stated lifetime, the raw value kept in `extra`.
    for bad in ["0", "-5", "\"soon\"", "true", "\"NaN\"", "[]", "\"inf\""] {
        let body = format!(r#"{{"access_token":"a","refresh_token":"r2","expires_in":{bad}}}"#);
        let r = TokenResponse::parse(body.as_bytes()).unwrap();
        assert_eq!(r.expires_in, None, "{bad}");
        assert_eq!(r.extra["expires_in"].to_string(), bad, "{bad}");
        assert_eq!(r.refresh_token.as_deref(), Some("r2"));
    }
}

#[test]
fn invalid_bodies_are_typed_and_never_echo_tokens() {
    for body in [
        &b"<html>login</html>"[..],
        b"{\"access_token\": \"abc\", ",
        b"[]",
        b"{}",
        b"{\"access_token\":\"\"}",
        b"{\"access_token\":42}",
        b"",
    ] {
        let e = TokenResponse::parse(body).unwrap_err();
        assert_eq!(e.kind(), RefreshErrorKind::InvalidResponse);
        assert!(e.is_transient());
        assert!(!e.to_string().contains("abc"));
    }
    // A success body is never kept: one that is not JSON may hold the new tokens.
    for body in [
        &b"<html>login</html>"[..],
        b"access_token=abc&refresh_token=def",
    ] {
        assert_eq!(TokenResponse::parse(body).unwrap_err().body_excerpt(), None);
    }
}

#[test]
fn a_jwt_access_token_without_expires_in_expires_at_its_exp() {
    let exp = std::time::SystemTime::now() + Duration::from_secs(1800);
    let secs = exp.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let jwt = format!(
        "{}.{}.sig",
        crate::form::base64url(br#"{"alg":"RS256"}"#),
        crate::form::base64url(format!(r#"{{"sub":"me","exp":{secs}}}"#).as_bytes())
    );
    let body = format!(r#"{{"access_token":"{jwt}"}}"#);
    let token = TokenResponse::parse(body.as_bytes())
        .unwrap()
        .into_token(None);
    let left = token.remaining().unwrap();
    assert!(
        left > Duration::from_secs(1790) && left <= Duration::from_secs(1800),
        "{left:?}"
    );
    // `expires_in` wins when the server states it; an opaque token has no lifetime.
    let body = format!(r#"{{"access_token":"{jwt}","expires_in":60}}"#);
    let token = TokenResponse::parse(body.as_bytes())
        .unwrap()
        .into_token(None);
    assert_eq!(token.lifetime(), Some(Duration::from_secs(60)));
    let opaque = TokenResponse::parse(br#"{"access_token":"opaque"}"#).unwrap();
    assert_eq!(opaque.into_token(None).remaining(), None);
}

#[test]
fn keeps_previous_refresh_token_unless_rotated() {
    let old = RefreshToken::new("old");
    let kept = TokenResponse::parse(br#"{"access_token":"a"}"#)
        .unwrap()
        .into_token(Some(&old));
    assert_eq!(kept.refresh_token().unwrap().secret(), "old");
    let rotated = TokenResponse::parse(br#"{"access_token":"a","refresh_token":"new"}"#)
        .unwrap()
        .into_token(Some(&old));
    assert_eq!(rotated.refresh_token().unwrap().secret(), "new");
}

/// The class the table on `RefreshError` gives an answer.
fn class(status: u16, body: &str) -> Class {
    let e = error_response(status, body.as_bytes(), None, &Secrets::default());
    match (e.is_transient(), e.is_permanent(), e.is_configuration()) {
        (true, false, false) => Class::Transient,
        (false, true, false) => Class::Login,
        (false, false, true) => Class::Configuration,
        other => panic!("not exactly one class: {other:?}"),
    }
}

#[test]
fn invalid_grant_is_login_required_whatever_the_status() {
    for status in [400, 401, 200, 403, 500] {
        assert_eq!(
            class(status, r#"{"error":"invalid_grant"}"#),
            Class::Login,
            "{status}"
        );
    }
    let e = error_response(
        400,
        br#"{"error":"invalid_grant"}"#,
        None,
        &Secrets::default(),
    );
    assert_eq!(e.oauth_error().unwrap().error, "invalid_grant");
}

#[test]
fn client_errors_are_configuration_not_login() {
    for code in [
        "invalid_client",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "invalid_request",
    ] {
        for status in [400, 401, 200] {
            let body = format!(r#"{{"error":"{code}"}}"#);
            assert_eq!(
                class(status, &body),
                Class::Configuration,
                "{code} {status}"
            );
        }
    }
}

#[test]
fn unavailable_and_slow_down_are_transient_even_in_a_400() {
    for code in ["temporarily_unavailable", "slow_down", "server_error"] {
        for status in [400, 401, 200, 503] {
            let body = format!(r#"{{"error":"{code}"}}"#);
            assert_eq!(class(status, &body), Class::Transient, "{code} {status}");
        }
    }
}

#[test]
fn unknown_codes_and_bare_statuses_are_judged_by_status() {
    for status in [500, 502, 503, 504, 408, 425, 429] {
        assert_eq!(class(status, ""), Class::Transient, "{status}");
        assert_eq!(
            class(status, r#"{"error":"weird"}"#),
            Class::Transient,
            "{status}"
        );
    }
    for status in [301, 302, 400, 401, 403, 404, 405, 200] {
        assert_eq!(class(status, ""), Class::Configuration, "{status}");
        assert_eq!(
            class(status, r#"{"error":"weird"}"#),
            Class::Configuration,
            "{status}"
        );
    }
    let e = error_response(
        503,
        b"<html>down</html>",
        Some(Duration::from_secs(7)),
        &Secrets::default(),
    );
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(e.body_excerpt(), Some("<html>down</html>"));
}

#[test]
fn form_and_basic_auth() {
    let t = Token::new("a").with_refresh_token("r/1");
    let o = OAuth2::refresh_token("https://x/t")
        .client_id("app")
        .scope("a b");
    assert_eq!(
        o.form(Some(&t)).unwrap(),
        "grant_type=refresh_token&refresh_token=r%2F1&scope=a+b&client_id=app"
    );
    assert!(o.basic_auth().is_none());
    let o = o.client_secret("p:w");
    assert_eq!(
        o.basic_auth().unwrap(),
        format!("Basic {}", base64(b"app:p%3Aw"))
    );
    assert!(!o.form(Some(&t)).unwrap().contains("client_"));
    let o = o.client_auth(ClientAuth::RequestBody);
    assert!(
        o.form(Some(&t))
            .unwrap()
            .ends_with("client_id=app&client_secret=p%3Aw")
    );
    assert!(!format!("{o:?}").contains("p:w"));
    let e = OAuth2::refresh_token("https://x/t")
        .form(Some(&Token::new("a")))
        .unwrap_err();
    assert_eq!(e.kind(), RefreshErrorKind::NoRefreshToken);
    assert!(e.is_permanent());
}

#[test]
fn issue_12_server_text_never_keeps_a_known_secret() {
    let o = OAuth2::refresh_token("https://x/t")
        .client_id("app")
        .client_secret("p:w/s3cret");
    let current = Token::new("acc-old").with_refresh_token("ref/old");
    let basic = o.basic_auth().unwrap();
    let basic = basic.strip_prefix("Basic ").unwrap();
    let raw_basic = base64(b"app:p:w/s3cret");
    let echo = format!(
        "ref/old ref%2Fold acc-old p:w/s3cret p%3Aw%2Fs3cret app:p:w/s3cret {basic} \
         {raw_basic} acc-new ref-new"
    );
    let body = serde_json::json!({
        "error": format!("bad_{basic}"),
        "error_description": echo,
        "error_uri": "https://x/e?rt=ref/old",
        "access_token": "acc-new",
        "refresh_token": "ref-new",
    })
    .to_string();
    let secrets = o.secrets(Some(&current), Some(body.as_bytes()));
    let e = error_response(400, body.as_bytes(), None, &secrets);
    let oauth = e.oauth_error().unwrap();
    let kept = format!(
        "{e} {e:?} {} {} {:?}",
        oauth.error,
        oauth.error_uri.as_deref().unwrap(),
        oauth.error_description
    );
    for secret in [
        "ref/old",
        "ref%2Fold",
        "acc-old",
        "s3cret",
        "acc-new",
        "ref-new",
        basic,
        &raw_basic,
    ] {
        assert!(!kept.contains(secret), "{secret} in {kept}");
    }
    assert_eq!(oauth.error, "bad_[redacted]");
    assert!(kept.contains("[redacted]"));

    // A non-JSON error page: scrubbed before it is cut, so a secret straddling the cut goes too.
    let page = format!("{}ref/old tail", "x".repeat(EXCERPT_CHARS - 3));
    let e = error_response(502, page.as_bytes(), None, &secrets);
    let excerpt = e.body_excerpt().unwrap();
    assert!(!excerpt.contains("ref"), "{excerpt}");
    assert!(excerpt.ends_with("xxx[re"), "{excerpt}");

    // A form-encoded answer's tokens are recognised too.
    let form = b"error=x&access_token=acc-form&refresh_token=ref-form";
    let secrets = o.secrets(Some(&current), Some(form));
    let e = error_response(500, form, None, &secrets);
    assert!(!e.body_excerpt().unwrap().contains("-form"));

    // Never an excerpt of a 2xx, even one carrying an error code.
    let e = error_response(200, b"error=x&access_token=acc", None, &secrets);
    assert_eq!(e.body_excerpt(), None);
}

#[test]
fn insecure_token_urls_are_refused() {
    assert!(
        OAuth2::refresh_token("http://auth.example.com/t")
            .check()
            .is_err()
    );
    assert!(
        OAuth2::refresh_token("http://auth.example.com/t")
            .allow_insecure_http(true)
            .check()
            .is_ok()
    );
    assert!(
        OAuth2::refresh_token("http://127.0.0.1:9/t")
            .check()
            .is_ok()
    );
    assert!(
        OAuth2::refresh_token("https://auth.example.com/t")
            .check()
            .is_ok()
    );
    assert!(OAuth2::refresh_token("not a url").check().is_err());
}
