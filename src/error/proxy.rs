//! [`ProxyError`]: a request that could not get through its proxy.

use std::fmt;
use std::sync::Arc;

/// A request that could not get through its proxy: the proxy could not be reached, refused the
/// tunnel or the credentials (HTTP `407`, a SOCKS authentication failure), or could not reach the
/// server. Names the proxy (never its credentials), which tells a proxy that came from the
/// environment apart from a server that is down.
#[derive(Clone)]
pub struct ProxyError {
    inner: Arc<ProxyInner>,
}

struct ProxyInner {
    proxy: Option<String>,
    error: ureq::Error,
}

impl ProxyError {
    pub(crate) fn new(proxy: Option<String>, error: ureq::Error) -> Self {
        ProxyError {
            inner: Arc::new(ProxyInner { proxy, error }),
        }
    }

    /// The proxy as `scheme://host:port`, when known.
    pub fn proxy(&self) -> Option<&str> {
        self.inner.proxy.as_deref()
    }

    /// ureq's error.
    pub fn transport_error(&self) -> &ureq::Error {
        &self.inner.error
    }

    /// Whether the proxy refused the credentials (or asked for some that were not given).
    pub fn is_auth_refused(&self) -> bool {
        match &self.inner.error {
            ureq::Error::ConnectProxyFailed(reason) => reason.contains("407"),
            ureq::Error::Io(e) => {
                e.kind() == std::io::ErrorKind::PermissionDenied
                    || e.to_string().contains("no acceptable auth methods")
            }
            _ => false,
        }
    }

    /// Whether trying again may succeed: every proxy failure except refused credentials.
    pub fn is_transient(&self) -> bool {
        !self.is_auth_refused()
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.proxy {
            Some(p) => write!(f, "through proxy {p}: {}", self.inner.error),
            None => write!(f, "proxy: {}", self.inner.error),
        }
    }
}

impl fmt::Debug for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyError")
            .field("proxy", &self.inner.proxy)
            .field("error", &self.inner.error)
            .finish()
    }
}

impl std::error::Error for ProxyError {}
