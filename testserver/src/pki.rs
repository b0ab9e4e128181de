//! A private certificate authority made at test time (rcgen): its root, a server certificate for
//! `127.0.0.1` and `localhost`, and client certificates for mutual TLS.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// A PEM certificate (chain) and its private key.
#[derive(Clone)]
pub struct Identity {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PKCS#8 PEM.
    pub key_pem: String,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity").finish_non_exhaustive()
    }
}

/// A test CA with the certificates it issued.
pub struct TestPki {
    ca: CertifiedIssuer<'static, KeyPair>,
    server: Identity,
}

impl fmt::Debug for TestPki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestPki").finish_non_exhaustive()
    }
}

fn fail(e: rcgen::Error) -> ! {
    panic!("tokengate-testserver: cannot make a test certificate: {e}")
}

impl TestPki {
    /// A new CA named `name` (its common name) with a server certificate for `127.0.0.1`,
    /// `::1` and `localhost`.
    ///
    /// # Panics
    ///
    /// If rcgen cannot make a key or certificate (it does not, with its defaults).
    pub fn new(name: &str) -> TestPki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| fail(e));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap_or_else(|e| fail(e));
        let ca = CertifiedIssuer::self_signed(params, key).unwrap_or_else(|e| fail(e));
        let mut pki = TestPki {
            ca,
            server: Identity {
                cert_pem: String::new(),
                key_pem: String::new(),
            },
        };
        pki.server = pki.issue("tokengate test server", true);
        pki
    }

    /// The CA's root certificate, PEM: what a client adds to trust the server.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// The server's certificate and key.
    pub fn server(&self) -> &Identity {
        &self.server
    }

    /// A new client certificate (for mutual TLS) with common name `name`.
    pub fn client(&self, name: &str) -> Identity {
        self.issue(name, false)
    }

    fn issue(&self, name: &str, server: bool) -> Identity {
        let names = if server {
            vec!["localhost".to_owned()]
        } else {
            Vec::new()
        };
        let mut params = CertificateParams::new(names).unwrap_or_else(|e| fail(e));
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if server {
            params
                .subject_alt_names
                .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
            params.subject_alt_names.push(SanType::IpAddress(
                "::1".parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ));
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        } else {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        let key = KeyPair::generate().unwrap_or_else(|e| fail(e));
        let cert = params.signed_by(&key, &self.ca).unwrap_or_else(|e| fail(e));
        Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}
