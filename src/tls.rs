//! TLS settings: the certificates a server's certificate must chain to, the client certificate for
//! mutual TLS, and the TLS implementation. They become one ureq `TlsConfig` when a client or a
//! refresher is built, so files are read and keys checked once, and every problem is reported then.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig, TlsProvider};

use crate::error::Error;

/// Where the certificates come from that a server's certificate must chain to (the *trust
/// anchors*). CA certificates added with
/// [`Network::add_root_certificates_pem`](crate::Network::add_root_certificates_pem) are trusted
/// *in addition* to these.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Roots {
    /// The operating system's trust store, through the OS verifier (rustls-platform-verifier):
    /// Keychain on macOS, the Windows certificate store, and on Linux the distribution's bundle
    /// (honouring `SSL_CERT_FILE` and `SSL_CERT_DIR`). Needs the `platform-verifier` feature (on by
    /// default), and is then the default: the programs tokengate is made for run on desktops and
    /// servers whose administrators put their private CAs into that store, and a user expects the
    /// same trust as their browser and `curl`.
    #[cfg_attr(feature = "platform-verifier", default)]
    Platform,
    /// The Mozilla root program's certificates compiled into the program (webpki-roots): the same
    /// everywhere, blind to certificates the administrator installed. The default without the
    /// `platform-verifier` feature.
    #[cfg_attr(not(feature = "platform-verifier"), default)]
    WebPki,
    /// No built-in roots at all: only the added CA certificates are trusted (what `curl --cacert`
    /// does). Useful to pin an internal API to its private CA.
    AddedOnly,
}

/// Which TLS implementation makes the connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsBackend {
    /// rustls, built in. The default.
    #[default]
    Rustls,
    /// The operating system's TLS stack (OpenSSL on Linux, Schannel, Secure Transport), through
    /// the `native-tls` crate. Needs the `native-tls` feature. The client key must then be PKCS#8.
    NativeTls,
}

/// PEM from memory or from a file read when the client is built.
#[derive(Clone, Debug)]
pub(crate) enum Pem {
    Bytes(Arc<[u8]>),
    File(PathBuf),
}

impl Pem {
    fn read(&self, what: &str) -> Result<Arc<[u8]>, Error> {
        match self {
            Pem::Bytes(b) => Ok(Arc::clone(b)),
            Pem::File(path) => std::fs::read(path).map(Arc::from).map_err(|e| {
                Error::config(format!("cannot read the {what} {}: {e}", path.display()))
            }),
        }
    }

    fn describe(&self, what: &str) -> String {
        match self {
            Pem::Bytes(_) => format!("the {what} PEM"),
            Pem::File(path) => format!("the {what} {}", path.display()),
        }
    }
}

/// The TLS part of [`Network`](crate::Network).
#[derive(Clone, Debug, Default)]
pub(crate) struct TlsSettings {
    pub(crate) roots: Roots,
    pub(crate) added: Vec<Pem>,
    /// Certificate chain and private key (possibly the same PEM).
    pub(crate) identity: Option<(Pem, Pem)>,
    pub(crate) backend: TlsBackend,
}

impl TlsSettings {
    /// Reads and checks everything and builds ureq's TLS configuration.
    pub(crate) fn resolve(&self) -> Result<TlsConfig, Error> {
        let provider = match self.backend {
            TlsBackend::Rustls => TlsProvider::Rustls,
            TlsBackend::NativeTls if cfg!(feature = "native-tls") => TlsProvider::NativeTls,
            TlsBackend::NativeTls => {
                return Err(Error::config(
                    "TlsBackend::NativeTls needs tokengate's `native-tls` feature",
                ));
            }
        };
        let added = self.added_certificates()?;
        let roots = match (self.roots, added.is_empty()) {
            (Roots::Platform, true) => platform_roots()?,
            (Roots::Platform, false) => {
                let mut all = platform_certificates()?;
                all.extend(added);
                RootCerts::from(all)
            }
            (Roots::WebPki, true) => RootCerts::WebPki,
            (Roots::WebPki, false) => {
                let mut all = webpki_certificates();
                all.extend(added);
                RootCerts::from(all)
            }
            (Roots::AddedOnly, false) => RootCerts::from(added),
            (Roots::AddedOnly, true) => return Err(nothing_added()),
        };
        let client_cert = match &self.identity {
            None => None,
            Some((chain, key)) => Some(identity(chain, key)?),
        };
        Ok(TlsConfig::builder()
            .provider(provider)
            .root_certs(roots)
            .client_cert(client_cert)
            .build())
    }

    /// The CA certificates added to the roots, read and checked.
    fn added_certificates(&self) -> Result<Vec<Certificate<'static>>, Error> {
        let mut added = Vec::new();
        for pem in &self.added {
            let bytes = pem.read("CA certificate file")?;
            let certs = certificates(&bytes, &pem.describe("CA certificate file"))?;
            check_anchors(&certs, &pem.describe("CA certificate file"))?;
            added.extend(certs);
        }
        Ok(added)
    }

    /// The same settings as PEM, for a TLS client that takes its trust anchors and its client
    /// certificate as PEM documents (the redis crate): every trusted certificate as one list,
    /// since such a client has no verifier of the operating system. `who` names that client in
    /// the errors.
    ///
    /// [`Roots::Platform`] becomes the operating system's store read as a certificate list (what
    /// the platform verifier itself reads on Linux and the BSDs), [`Roots::WebPki`] the bundled
    /// Mozilla roots. Everything is read and checked as by [`resolve`](TlsSettings::resolve); in
    /// addition, a trust list that ends up empty (an operating system store without
    /// certificates) is an [`Error::Config`], since no server could then be trusted.
    #[cfg(feature = "redis")]
    pub(crate) fn resolve_pem(&self, who: &str) -> Result<PemTls, Error> {
        if self.backend != TlsBackend::Rustls {
            return Err(Error::config(format!(
                "{who} connects with rustls: TlsBackend::NativeTls cannot be used for it"
            )));
        }
        let added = self.added_certificates()?;
        let mut roots = match self.roots {
            Roots::Platform => platform_certificates()?,
            Roots::WebPki => webpki_certificates(),
            Roots::AddedOnly if added.is_empty() => return Err(nothing_added()),
            Roots::AddedOnly => Vec::new(),
        };
        roots.extend(added);
        if roots.is_empty() {
            return Err(Error::config(format!(
                "{who} has no certificate authority to trust: the operating system's trust store \
                 holds no certificates; add the server's CA with \
                 Network::add_root_certificates_pem"
            )));
        }
        let identity = match &self.identity {
            None => None,
            Some((chain, key)) => {
                let checked = checked_identity(chain, key)?;
                Some((pem_certificates(&checked.chain), checked.key_pem.to_vec()))
            }
        };
        Ok(PemTls {
            roots: pem_certificates(&roots),
            identity,
        })
    }
}

/// [`TlsSettings`] as PEM documents: see [`TlsSettings::resolve_pem`].
#[cfg(feature = "redis")]
pub(crate) struct PemTls {
    /// Every certificate to trust.
    pub(crate) roots: Vec<u8>,
    /// The client certificate chain (certificates only) and its private key.
    pub(crate) identity: Option<(Vec<u8>, Vec<u8>)>,
}

/// Certificates as one PEM document.
#[cfg(feature = "redis")]
fn pem_certificates(certs: &[Certificate<'static>]) -> Vec<u8> {
    let mut out = String::new();
    for cert in certs {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        let encoded = crate::form::base64(cert.der());
        for line in encoded.as_bytes().chunks(64) {
            // base64 is ASCII: every chunk is valid UTF-8.
            out.push_str(std::str::from_utf8(line).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out.into_bytes()
}

fn nothing_added() -> Error {
    Error::config("Roots::AddedOnly trusts only added CA certificates, and none were added")
}

/// The bundled Mozilla roots (webpki-root-certs) as certificates.
fn webpki_certificates() -> Vec<Certificate<'static>> {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect()
}

#[cfg(feature = "platform-verifier")]
fn platform_roots() -> Result<RootCerts, Error> {
    Ok(RootCerts::PlatformVerifier)
}

#[cfg(not(feature = "platform-verifier"))]
fn platform_roots() -> Result<RootCerts, Error> {
    Err(no_platform())
}

#[cfg(not(feature = "platform-verifier"))]
fn no_platform() -> Error {
    Error::config("Roots::Platform needs tokengate's `platform-verifier` feature")
}

/// The operating system's trust store as a list of certificates, to be combined with added ones.
/// Certificates that cannot be read are skipped, as the platform verifier skips them.
#[cfg(feature = "platform-verifier")]
fn platform_certificates() -> Result<Vec<Certificate<'static>>, Error> {
    let found = rustls_native_certs::load_native_certs();
    Ok(found
        .certs
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect())
}

#[cfg(not(feature = "platform-verifier"))]
fn platform_certificates() -> Result<Vec<Certificate<'static>>, Error> {
    Err(no_platform())
}

/// Every certificate in a PEM document; an error when there is none or the PEM is broken.
fn certificates(pem: &[u8], what: &str) -> Result<Vec<Certificate<'static>>, Error> {
    let mut out = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(PemItem::Certificate(c)) => out.push(c),
            Ok(_) => {}
            Err(e) => return Err(Error::config(format!("{what} is not valid PEM: {e}"))),
        }
    }
    if out.is_empty() {
        return Err(Error::config(format!("{what} holds no certificate")));
    }
    Ok(out)
}

/// Checks that each certificate can serve as a trust anchor (rustls would skip it silently).
fn check_anchors(certs: &[Certificate<'static>], what: &str) -> Result<(), Error> {
    let mut store = rustls::RootCertStore::empty();
    for (i, c) in certs.iter().enumerate() {
        store
            .add(rustls::pki_types::CertificateDer::from(c.der()))
            .map_err(|e| {
                Error::config(format!(
                    "certificate {} of {what} cannot be a CA: {e}",
                    i + 1
                ))
            })?;
    }
    Ok(())
}

/// A client certificate chain and the PEM of its key, read and checked against each other.
struct CheckedIdentity {
    chain: Vec<Certificate<'static>>,
    key_pem: Arc<[u8]>,
}

/// The client certificate chain and its key, checked against each other with rustls (ureq would
/// otherwise find a mismatch only at the first handshake, and panic there).
fn identity(chain: &Pem, key: &Pem) -> Result<ClientCert, Error> {
    let checked = checked_identity(chain, key)?;
    let key = PrivateKey::from_pem(&checked.key_pem).map_err(|e| {
        Error::config(format!(
            "{} holds no usable private key: {e}",
            key.describe("client key")
        ))
    })?;
    Ok(ClientCert::new_with_certs(&checked.chain, key))
}

/// Reads the client certificate chain and its key and checks that they fit.
fn checked_identity(chain: &Pem, key: &Pem) -> Result<CheckedIdentity, Error> {
    let what = chain.describe("client certificate");
    let certs = certificates(&chain.read("client certificate")?, &what)?;
    let key_what = key.describe("client key");
    let key_pem = key.read("client key")?;
    let key_der = rustls::pki_types::PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| Error::config(format!("{key_what} holds no usable private key: {e}")))?;
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let der_chain = certs
        .iter()
        .map(|c| rustls::pki_types::CertificateDer::from(c.der()).into_owned())
        .collect();
    rustls::sign::CertifiedKey::from_der(der_chain, key_der, &provider)
        .map_err(|e| Error::config(format!("{key_what} does not fit {what}: {e}")))?;
    Ok(CheckedIdentity {
        chain: certs,
        key_pem,
    })
}
