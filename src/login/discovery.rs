//! [`Metadata`]: an authorization server's endpoints from its issuer URL (RFC 8414, OpenID Connect
//! Discovery 1.0).

use std::fmt;

use serde_json::{Map, Value};

use super::get_json;
use crate::error::{LoginError, LoginErrorKind};
use crate::net::Network;
use crate::origin::Origin;

/// Largest metadata document read. Real ones are a few KiB.
const MAX_METADATA: u64 = 256 * 1024;

/// An authorization server's metadata: its endpoints and what it supports, read from its issuer
/// URL by [`discover`](Metadata::discover).
///
/// [`DeviceLogin::from_metadata`](crate::login::DeviceLogin::from_metadata) and
/// [`BrowserLogin::from_metadata`](crate::login::BrowserLogin::from_metadata) take their endpoints
/// (and the network settings the metadata was read with) from it; give
/// [`token_endpoint`](Metadata::token_endpoint) and
/// [`revocation_endpoint`](Metadata::revocation_endpoint) to the [`OAuth2`](crate::OAuth2)
/// refresher.
///
/// ```no_run
/// use tokengate::{Network, OAuth2};
/// use tokengate::login::Metadata;
///
/// let meta = Metadata::discover("https://login.example.com/tenant-1", &Network::new())?;
/// let mut refresher = OAuth2::client_credentials(meta.token_endpoint()).client_id("my-cli");
/// if let Some(url) = meta.revocation_endpoint() {
///     refresher = refresher.revocation_url(url);
/// }
/// # Ok::<_, tokengate::LoginError>(())
/// ```
#[derive(Clone)]
pub struct Metadata {
    issuer: String,
    token_endpoint: String,
    authorization_endpoint: Option<String>,
    device_authorization_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    iss_parameter_supported: bool,
    code_challenge_methods: Option<Vec<String>>,
    network: Network,
}

impl Metadata {
    /// Reads the metadata of the authorization server `issuer` (an `https` URL, or plain `http` on
    /// loopback), through `network` (trusted certificates, proxies).
    ///
    /// The RFC 8414 document comes first: for `https://host/path` it is
    /// `https://host/.well-known/oauth-authorization-server/path`. When the server has none (a
    /// `4xx`), the OpenID Connect one: `https://host/path/.well-known/openid-configuration`. The
    /// document's `issuer` must be the one asked for (RFC 8414 §3.3, OpenID Connect Discovery
    /// §4.3; a trailing `/` aside), and every endpoint must be `https`, or plain `http` on
    /// loopback when the issuer is.
    ///
    /// # Errors
    ///
    /// A [`LoginError`] of kind [`Discovery`](LoginErrorKind::Discovery) when the issuer URL is
    /// unusable, neither document exists, or the one found is not usable (not a JSON object, no
    /// `token_endpoint`, another `issuer`, an insecure endpoint); [`Transport`](LoginErrorKind::Transport),
    /// [`Tls`](LoginErrorKind::Tls) or [`Proxy`](LoginErrorKind::Proxy) when the server could not
    /// be reached (a `5xx` answer is a transient `Discovery` error).
    pub fn discover(issuer: &str, network: &Network) -> Result<Metadata, LoginError> {
        let urls = well_known_urls(issuer)?;
        let mut last_status = 0;
        for url in &urls {
            let (status, body) = get_json(network, url, MAX_METADATA)?;
            if (200..300).contains(&status) {
                return Metadata::parse(issuer, &body, network.clone());
            }
            if status >= 500 || matches!(status, 408 | 429) {
                return Err(LoginError::new(
                    LoginErrorKind::Discovery,
                    "the authorization server could not answer for its metadata",
                )
                .with_class(crate::error::Class::Transient)
                .with_status(status));
            }
            last_status = status;
        }
        Err(LoginError::new(
            LoginErrorKind::Discovery,
            format!("the issuer publishes no metadata at {}", urls.join(" or ")),
        )
        .with_status(last_status))
    }

    /// Parses a metadata document for `issuer` and checks it (see [`discover`](Metadata::discover)).
    pub(crate) fn parse(
        issuer: &str,
        body: &[u8],
        network: Network,
    ) -> Result<Metadata, LoginError> {
        let invalid = |what: String| LoginError::new(LoginErrorKind::Discovery, what);
        let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(body) else {
            return Err(invalid("the metadata is not a JSON object".into()));
        };
        let text = |name: &str| -> Result<Option<String>, LoginError> {
            match doc.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                Some(_) => Err(invalid(format!("the metadata's {name} is not a string"))),
            }
        };
        let stated = text("issuer")?.ok_or_else(|| invalid("the metadata has no issuer".into()))?;
        if stated.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(invalid(format!(
                "the metadata is for issuer {stated:?}, not {issuer:?}"
            )));
        }
        let (_, origin) = Origin::parse(&stated, "issuer").map_err(invalid)?;
        let loopback_http = !origin.is_https() && origin.is_loopback();
        let endpoint = |name: &str| -> Result<Option<String>, LoginError> {
            let Some(url) = text(name)? else {
                return Ok(None);
            };
            let (_, o) = Origin::parse(&url, name)
                .map_err(|_| invalid(format!("the metadata's {name} is not an absolute URL")))?;
            let allowed = o.is_https() || (loopback_http && o.is_loopback());
            if !allowed {
                return Err(invalid(format!(
                    "the metadata's {name} is plain http and not on loopback"
                )));
            }
            Ok(Some(url))
        };
        let token_endpoint = endpoint("token_endpoint")?
            .ok_or_else(|| invalid("the metadata has no token_endpoint".into()))?;
        Ok(Metadata {
            token_endpoint,
            authorization_endpoint: endpoint("authorization_endpoint")?,
            device_authorization_endpoint: endpoint("device_authorization_endpoint")?,
            revocation_endpoint: endpoint("revocation_endpoint")?,
            iss_parameter_supported: doc
                .get("authorization_response_iss_parameter_supported")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            code_challenge_methods: strings(&doc, "code_challenge_methods_supported"),
            issuer: stated,
            network,
        })
    }

    /// The issuer, as the metadata states it (RFC 8414 §2 `issuer`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The token endpoint (RFC 8414 §2 `token_endpoint`).
    pub fn token_endpoint(&self) -> &str {
        &self.token_endpoint
    }

    /// The authorization endpoint of a browser login (RFC 8414 §2 `authorization_endpoint`), if
    /// the server has one.
    pub fn authorization_endpoint(&self) -> Option<&str> {
        self.authorization_endpoint.as_deref()
    }

    /// The device authorization endpoint (RFC 8628 §4 `device_authorization_endpoint`), if the
    /// server supports the device flow.
    pub fn device_authorization_endpoint(&self) -> Option<&str> {
        self.device_authorization_endpoint.as_deref()
    }

    /// The revocation endpoint (RFC 8414 §2 `revocation_endpoint`, RFC 7009), if the server has
    /// one.
    pub fn revocation_endpoint(&self) -> Option<&str> {
        self.revocation_endpoint.as_deref()
    }

    /// Whether the server sends `iss` in its authorization responses (RFC 9207 §3), so a browser
    /// login must check it. `false` when the metadata does not say.
    pub fn authorization_response_iss_parameter_supported(&self) -> bool {
        self.iss_parameter_supported
    }

    /// The PKCE methods the server advertises (RFC 8414 §2 `code_challenge_methods_supported`),
    /// `None` when it does not say.
    pub fn code_challenge_methods_supported(&self) -> Option<&[String]> {
        self.code_challenge_methods.as_deref()
    }

    /// The network settings the metadata was read with; the logins made
    /// [`from_metadata`](crate::login::DeviceLogin::from_metadata) use them too.
    pub fn network(&self) -> &Network {
        &self.network
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metadata")
            .field("issuer", &self.issuer)
            .field("token_endpoint", &self.token_endpoint)
            .field("authorization_endpoint", &self.authorization_endpoint)
            .field(
                "device_authorization_endpoint",
                &self.device_authorization_endpoint,
            )
            .field("revocation_endpoint", &self.revocation_endpoint)
            .field(
                "authorization_response_iss_parameter_supported",
                &self.iss_parameter_supported,
            )
            .finish_non_exhaustive()
    }
}

/// A string array of the document, `None` when it is absent or not one.
fn strings(doc: &Map<String, Value>, name: &str) -> Option<Vec<String>> {
    doc.get(name)?
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// The metadata URLs of `issuer`, in the order they are tried: RFC 8414 §3.1 (the well-known
/// segment between the host and the issuer's path), then OpenID Connect Discovery §4 (appended to
/// the issuer's path).
fn well_known_urls(issuer: &str) -> Result<[String; 2], LoginError> {
    let invalid = |what: &str| LoginError::new(LoginErrorKind::Discovery, what);
    let (uri, origin) = Origin::parse(issuer, "issuer URL").map_err(|e| invalid(&e))?;
    if !origin.is_https() && !origin.is_loopback() {
        return Err(invalid(
            "the issuer URL is plain http and not on loopback; use https",
        ));
    }
    // RFC 8414 §2: no query, no fragment.
    if uri.query().is_some() || issuer.contains('#') {
        return Err(invalid("an issuer URL has no query or fragment"));
    }
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    let scheme = uri.scheme_str().unwrap_or("https");
    let path = uri.path().trim_end_matches('/');
    Ok([
        format!("{scheme}://{authority}/.well-known/oauth-authorization-server{path}"),
        format!("{scheme}://{authority}{path}/.well-known/openid-configuration"),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_urls_follow_rfc8414_then_openid_connect() {
        assert_eq!(
            well_known_urls("https://auth.example.com").unwrap(),
            [
                "https://auth.example.com/.well-known/oauth-authorization-server",
                "https://auth.example.com/.well-known/openid-configuration",
            ]
        );
        // An issuer with a path: RFC 8414 inserts, OpenID Connect appends.
        assert_eq!(
            well_known_urls("https://example.com:8443/tenants/t1/").unwrap(),
            [
                "https://example.com:8443/.well-known/oauth-authorization-server/tenants/t1",
                "https://example.com:8443/tenants/t1/.well-known/openid-configuration",
            ]
        );
        assert!(well_known_urls("http://127.0.0.1:8080").is_ok());
        for bad in [
            "http://auth.example.com",
            "https://auth.example.com/?tenant=1",
            "https://auth.example.com/#x",
            "auth.example.com",
            "",
        ] {
            let e = well_known_urls(bad).unwrap_err();
            assert_eq!(e.kind(), LoginErrorKind::Discovery, "{bad}");
            assert!(e.is_configuration(), "{bad}");
        }
    }

    fn parse(issuer: &str, doc: Value) -> Result<Metadata, LoginError> {
        Metadata::parse(issuer, doc.to_string().as_bytes(), Network::new())
    }

    #[test]
    fn a_document_is_checked_before_it_is_used() {
        let m = parse(
            "https://auth.example.com",
            serde_json::json!({
                "issuer": "https://auth.example.com/",
                "token_endpoint": "https://auth.example.com/token",
                "authorization_endpoint": "https://auth.example.com/authorize",
                "device_authorization_endpoint": "https://auth.example.com/device",
                "revocation_endpoint": "https://auth.example.com/revoke",
                "authorization_response_iss_parameter_supported": true,
                "code_challenge_methods_supported": ["S256", "plain"],
                "scopes_supported": ["openid"],
            }),
        )
        .unwrap();
        assert_eq!(m.issuer(), "https://auth.example.com/");
        assert_eq!(m.token_endpoint(), "https://auth.example.com/token");
        assert_eq!(
            m.authorization_endpoint(),
            Some("https://auth.example.com/authorize")
        );
        assert_eq!(
            m.device_authorization_endpoint(),
            Some("https://auth.example.com/device")
        );
        assert_eq!(
            m.revocation_endpoint(),
            Some("https://auth.example.com/revoke")
        );
        assert!(m.authorization_response_iss_parameter_supported());
        assert_eq!(
            m.code_challenge_methods_supported().unwrap(),
            ["S256", "plain"]
        );

        let minimal = parse(
            "https://a.example",
            serde_json::json!({"issuer": "https://a.example", "token_endpoint": "https://a.example/t"}),
        )
        .unwrap();
        assert_eq!(minimal.device_authorization_endpoint(), None);
        assert!(!minimal.authorization_response_iss_parameter_supported());

        for (doc, why) in [
            (serde_json::json!([]), "not a JSON object"),
            (
                serde_json::json!({"token_endpoint": "https://a.example/t"}),
                "no issuer",
            ),
            (
                serde_json::json!({"issuer": "https://evil.example", "token_endpoint": "https://a.example/t"}),
                "is for issuer",
            ),
            (
                serde_json::json!({"issuer": "https://a.example"}),
                "no token_endpoint",
            ),
            (
                serde_json::json!({"issuer": "https://a.example", "token_endpoint": "http://a.example/t"}),
                "plain http",
            ),
            (
                serde_json::json!({"issuer": "https://a.example", "token_endpoint": "/t"}),
                "not an absolute URL",
            ),
            (
                serde_json::json!({"issuer": "https://a.example", "token_endpoint": 5}),
                "not a string",
            ),
        ] {
            let e = parse("https://a.example", doc).unwrap_err();
            assert_eq!(e.kind(), LoginErrorKind::Discovery);
            assert!(e.to_string().contains(why), "{e} lacks {why:?}");
        }
        // A loopback issuer may use plain http for loopback endpoints only.
        let local = serde_json::json!({
            "issuer": "http://127.0.0.1:9", "token_endpoint": "http://127.0.0.1:9/t",
            "revocation_endpoint": "http://example.com/r",
        });
        assert!(parse("http://127.0.0.1:9", local).is_err());
    }
}
