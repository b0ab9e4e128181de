//! `tokengate.FileStore`: the token in a JSON file shared by every process that uses the path.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use tokengate::TokenStore;

use crate::errors;
use crate::token::{PyToken, quoted};

/// The token in a JSON file, shared safely by several threads and processes.
///
/// A client or gate given a ``FileStore`` (and no ``token``) starts from the saved token, saves
/// every refreshed token, and refreshes under an exclusive lock on ``<path>.lock``: a process adopts
/// the token another one just refreshed instead of spending the rotated refresh token again. Writes
/// are atomic and the file is created with mode ``0600``.
///
/// Args:
///     path: the token file (``str`` or ``os.PathLike``). Nothing is touched until the first load,
///         save or refresh.
#[pyclass(frozen, module = "tokengate", name = "FileStore")]
pub(crate) struct PyFileStore {
    pub(crate) inner: Arc<tokengate::FileStore>,
}

#[pymethods]
impl PyFileStore {
    #[new]
    fn new(path: PathBuf) -> Self {
        PyFileStore {
            inner: Arc::new(tokengate::FileStore::new(path)),
        }
    }

    /// The token file.
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path().to_owned()
    }

    /// The file locked around refreshes (``<path>.lock``).
    #[getter]
    fn lock_path(&self) -> PathBuf {
        self.inner.lock_path().to_owned()
    }

    /// Reads the saved token; ``None`` when nothing is saved yet.
    ///
    /// Raises:
    ///     StoreError: the file cannot be read or is not a token file (``kind`` says which).
    fn load(&self, py: Python<'_>) -> PyResult<Option<PyToken>> {
        let store = &*self.inner;
        let loaded = py.detach(|| store.load());
        match loaded {
            Ok(token) => Ok(token.map(PyToken::from)),
            Err(e) => Err(errors::to_py(py, &tokengate::Error::Store(e))),
        }
    }

    /// Saves ``token`` (atomically), e.g. after a login.
    ///
    /// Raises:
    ///     StoreError: the file cannot be written; what was saved before is unchanged.
    fn save(&self, py: Python<'_>, token: &Bound<'_, PyToken>) -> PyResult<()> {
        let store = &*self.inner;
        let token = Arc::clone(&token.get().inner);
        py.detach(|| store.save(&token))
            .map_err(|e| errors::to_py(py, &tokengate::Error::Store(e)))
    }

    fn __repr__(&self) -> String {
        format!(
            "FileStore({})",
            quoted(&self.inner.path().to_string_lossy())
        )
    }
}

/// A `store=` argument: a `FileStore` or a path.
pub(crate) fn store(value: &Bound<'_, PyAny>) -> PyResult<Arc<tokengate::FileStore>> {
    if let Ok(store) = value.cast::<PyFileStore>() {
        return Ok(Arc::clone(&store.get().inner));
    }
    let path: PathBuf = value
        .extract()
        .map_err(|_| PyTypeError::new_err("store wants a tokengate.FileStore or a path"))?;
    Ok(Arc::new(tokengate::FileStore::new(path)))
}
