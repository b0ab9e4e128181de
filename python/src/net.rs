//! The network keyword arguments that `Client(...)` and the `OAuth2` constructors share: extra CA
//! certificates, the built-in trust anchors, a client certificate for mutual TLS, and the proxy.
//! They become one [`Network`]; files are read and certificates checked when the client is built.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyList, PyString, PyTuple};
use tokengate::{Network, Roots};

use crate::errors;

/// The network keyword arguments, as given.
pub(crate) struct NetArgs<'a, 'py> {
    pub(crate) ca_certs: Option<&'a Bound<'py, PyAny>>,
    pub(crate) roots: Option<&'a str>,
    pub(crate) client_cert: Option<&'a Bound<'py, PyAny>>,
    pub(crate) proxy: Option<&'a str>,
    pub(crate) no_proxy: Option<&'a str>,
    pub(crate) proxy_from_env: bool,
}

impl NetArgs<'_, '_> {
    /// The [`Network`] these arguments describe; `None` when none was given (the defaults, or for
    /// an `OAuth2` refresher, the client's settings).
    ///
    /// Raises `ConfigError` for a value of the wrong type or an unknown `roots`.
    pub(crate) fn network(&self, py: Python<'_>) -> PyResult<Option<Network>> {
        let given = self.ca_certs.is_some()
            || self.roots.is_some()
            || self.client_cert.is_some()
            || self.proxy.is_some()
            || self.no_proxy.is_some()
            || !self.proxy_from_env;
        if !given {
            return Ok(None);
        }
        let mut net = Network::new();
        if let Some(certs) = self.ca_certs {
            for pem in ca_certs(py, certs)? {
                net = match pem {
                    Pem::File(path) => net.add_root_certificates_pem_file(path),
                    Pem::Bytes(bytes) => net.add_root_certificates_pem(bytes),
                };
            }
        }
        if let Some(roots) = self.roots {
            net = net.roots(match roots {
                "platform" => Roots::Platform,
                "webpki" => Roots::WebPki,
                "added_only" => Roots::AddedOnly,
                other => {
                    return Err(errors::config_error(
                        py,
                        format!(
                            "roots is \"platform\", \"webpki\" or \"added_only\", not {other:?}"
                        ),
                    ));
                }
            });
        }
        if let Some(cert) = self.client_cert {
            let (chain, key) = client_cert(py, cert)?;
            net = net.client_certificate_pem_files(chain, key);
        }
        match (self.proxy, self.proxy_from_env) {
            (Some(url), _) => net = net.proxy(url),
            (None, false) => net = net.no_proxies(),
            (None, true) => {}
        }
        if let Some(list) = self.no_proxy {
            net = net.no_proxy(list);
        }
        Ok(Some(net))
    }
}

enum Pem {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// `ca_certs=`: a path (`str` or `os.PathLike`), PEM `bytes`, or a list or tuple of them.
fn ca_certs(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Vec<Pem>> {
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for item in value.try_iter()? {
            out.push(one_ca(py, &item?)?);
        }
        return Ok(out);
    }
    Ok(vec![one_ca(py, value)?])
}

fn one_ca(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Pem> {
    if let Ok(bytes) = value.cast::<PyBytes>() {
        return Ok(Pem::Bytes(bytes.as_bytes().to_vec()));
    }
    if let Ok(bytes) = value.cast::<PyByteArray>() {
        return Ok(Pem::Bytes(bytes.to_vec()));
    }
    path(value).map(Pem::File).ok_or_else(|| {
        errors::config_error(
            py,
            "ca_certs wants a PEM file path, PEM bytes, or a list of them",
        )
    })
}

/// `client_cert=`: one path (a PEM file holding the certificate chain and its key) or a
/// `(certificate, key)` pair of paths.
fn client_cert(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<(PathBuf, PathBuf)> {
    if let Some(p) = path(value) {
        return Ok((p.clone(), p));
    }
    if let Ok((chain, key)) = value.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()
        && let (Some(chain), Some(key)) = (path(&chain), path(&key))
    {
        return Ok((chain, key));
    }
    Err(errors::config_error(
        py,
        "client_cert wants a PEM file path (certificate and key in one file) or a \
         (certificate file, key file) pair",
    ))
}

/// A `str` or an `os.PathLike` as a path; `None` for anything else (bytes included).
fn path(value: &Bound<'_, PyAny>) -> Option<PathBuf> {
    if value.is_instance_of::<PyString>() || value.hasattr("__fspath__").unwrap_or(false) {
        value.extract::<PathBuf>().ok()
    } else {
        None
    }
}
