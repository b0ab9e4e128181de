"""The exceptions tokengate raises. No message or attribute ever holds a token or a secret."""

from __future__ import annotations

from typing import Optional

__all__ = [
    "TokengateError",
    "LoginRequired",
    "RefreshFailed",
    "RefreshTimeout",
    "RevocationFailed",
    "LoginFailed",
    "InvalidToken",
    "StoreError",
    "TransportError",
    "TlsError",
    "ProxyError",
    "Timeout",
    "ConfigError",
]


class TokengateError(Exception):
    """Base class of every tokengate error.

    ``transient`` says whether trying again later may succeed (a transient refresh failure, a
    refresh wait that timed out, a network failure of the request).
    """

    transient: bool

    def __init__(self, message: str = "", *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class LoginRequired(TokengateError):
    """No usable token without a new login: the authorization server refused the refresh for good
    (``invalid_grant``: the refresh token is revoked, expired or already used), or there is no
    token and nothing to refresh it with.

    The client then fails fast with this error, without network, until ``set_token()`` installs a
    new token. A refresher of your own raises it (or ``RefreshFailed(..., transient=False)``) to say
    that only a new login helps.

    Attributes:
        oauth_error: the OAuth2 error code (RFC 6749 §5.2), e.g. ``"invalid_grant"``, if any.
        error_description: the server's ``error_description``, if any.
        status: the token endpoint's HTTP status, if it answered.
        kind: what failed, as for ``RefreshFailed``; ``None`` when there was no refresh.
    """

    def __init__(
        self,
        message: str = "login required",
        *,
        transient: bool = False,
        oauth_error: Optional[str] = None,
        error_description: Optional[str] = None,
        status: Optional[int] = None,
        kind: Optional[str] = None,
    ) -> None:
        super().__init__(message, transient=transient)
        self.oauth_error = oauth_error
        self.error_description = error_description
        self.status = status
        self.kind = kind


class RefreshFailed(TokengateError):
    """A refresh failed and the old token is no longer valid.

    Most failures are transient (network, 5xx, 429, a refresher that raised): the gate backs off
    and tries again, requests wait for that attempt when it comes within ``refresh_timeout``, and
    this is raised only when it would come later (``retry_in`` says when). A ``configuration``
    failure means the token endpoint refused the client itself (``invalid_client``, a wrong
    endpoint, an untrusted certificate: ``kind == "tls"``): an operator must fix it, logging in
    again would not help, and the session is kept.

    A refresher of your own may raise it: ``transient=False`` makes the failure permanent (the
    client enters the login-required state), ``configuration=True`` marks the client's setup as at
    fault, ``retry_in`` asks the gate to wait at least that long. Any other exception from a
    refresher counts as transient, with its traceback in the message.

    Attributes:
        transient: whether a later attempt may succeed by itself.
        configuration: whether the client's configuration was refused.
        retry_in: seconds until the gate tries again, if it will (never more than
            ``refresh_timeout``).
        retry_after: seconds the token endpoint asked to wait (``Retry-After``), if it said.
        status: the token endpoint's HTTP status, if it answered.
        oauth_error: the OAuth2 error code, if the server sent one.
        error_description: the server's ``error_description``, if any.
        kind: what failed: ``"oauth"`` (an RFC 6749 §5.2 error answer), ``"status"``,
            ``"transport"``, ``"tls"`` (the token endpoint's certificate is not trusted, or it
            refused the client certificate), ``"proxy"``, ``"invalid_response"``,
            ``"no_refresh_token"``, ``"custom"`` (a refresher of your own), ``"rejected"`` (the API
            refused a token just issued) or ``"other"``; ``None`` when raised by your own code.
    """

    def __init__(
        self,
        message: str = "token refresh failed",
        *,
        transient: bool = True,
        configuration: bool = False,
        retry_in: Optional[float] = None,
        retry_after: Optional[float] = None,
        status: Optional[int] = None,
        oauth_error: Optional[str] = None,
        error_description: Optional[str] = None,
        kind: Optional[str] = None,
    ) -> None:
        super().__init__(message, transient=transient and not configuration)
        self.configuration = configuration
        self.retry_in = retry_in
        self.retry_after = retry_after
        self.status = status
        self.oauth_error = oauth_error
        self.error_description = error_description
        self.kind = kind


class RefreshTimeout(TokengateError):
    """This thread waited longer than ``refresh_timeout`` for another thread's (or another
    process's) refresh.

    Attributes:
        timeout: the ``refresh_timeout`` that ran out, in seconds.
    """

    def __init__(
        self, message: str = "refresh timed out", *, transient: bool = True, timeout: float = 0.0
    ) -> None:
        super().__init__(message, transient=transient)
        self.timeout = timeout


class RevocationFailed(TokengateError):
    """``logout()`` ended the session here (and in the store), but the authorization server did
    not confirm the revocation of the refresh token (RFC 7009): it may still honour it until it
    expires. ``transient`` says whether trying again could have helped (the server was down or
    busy).

    Attributes:
        status: the revocation endpoint's HTTP status, if it answered.
        oauth_error: the OAuth2 error code, if the server sent one.
        error_description: the server's ``error_description``, if any.
        kind: what failed, as for ``RefreshFailed``.
    """

    def __init__(
        self,
        message: str = "token revocation failed",
        *,
        transient: bool = False,
        status: Optional[int] = None,
        oauth_error: Optional[str] = None,
        error_description: Optional[str] = None,
        kind: Optional[str] = None,
    ) -> None:
        super().__init__(message, transient=transient)
        self.status = status
        self.oauth_error = oauth_error
        self.error_description = error_description
        self.kind = kind


class LoginFailed(TokengateError):
    """A login (``DeviceLogin.run()``, ``Metadata.discover()``) failed. Nothing was installed, and a
    session already stored is unchanged.

    Attributes:
        kind: ``"access_denied"`` (the user refused), ``"expired_token"`` (the device code
            expired before the user approved), ``"cancelled"`` (a ``Cancel`` was set),
            ``"timed_out"``, ``"discovery"`` (no usable metadata), ``"server"`` (the server
            refused, e.g. ``invalid_client``), ``"transport"``, ``"tls"``, ``"proxy"``,
            ``"invalid_response"``, ``"configuration"`` (e.g. an insecure URL), or ``"other"``.
        transient: whether trying again later may succeed.
        configuration: whether the client's setup is at fault (an operator must fix it).
        status: the server's HTTP status, if it answered.
        oauth_error: the OAuth2 error code, if the server sent one.
        error_description: the server's ``error_description``, if any.
    """

    def __init__(
        self,
        message: str = "login failed",
        *,
        transient: bool = False,
        kind: str = "other",
        configuration: bool = False,
        status: Optional[int] = None,
        oauth_error: Optional[str] = None,
        error_description: Optional[str] = None,
    ) -> None:
        super().__init__(message, transient=transient)
        self.kind = kind
        self.configuration = configuration
        self.status = status
        self.oauth_error = oauth_error
        self.error_description = error_description


class InvalidToken(TokengateError, ValueError):
    """The access token holds characters that cannot be sent in an HTTP header."""


class StoreError(TokengateError):
    """The token store could not be read or written.

    Attributes:
        kind: ``"empty"``, ``"malformed"``, ``"unsupported_version"`` (the file is not a token
            file this version can read; the next save keeps it aside), ``"io"`` (reading or
            writing failed; transient), ``"lock_timeout"`` (another process held the lock), or,
            for an operator to fix (trying again does not help): ``"not_regular_file"`` (a FIFO,
            directory, socket or device at the token or lock path; never opened), ``"read_only"``
            (the directory cannot be written: tokens load but are neither saved nor shared),
            ``"permissions"`` (the token file is readable by other users and cannot be made
            private, or this user may not read it, or may not open the lock file for writing).
            The kinds of
            the Rust crate's other stores keep their names too: ``"unavailable"``, ``"denied"``,
            ``"lease_lost"``, ``"tls"``, ``"custom"``; ``"other"`` is a kind newer than this
            package.
        path: the token file, if the store is a file.
        configuration: whether the store cannot be used as it is set up (``not_regular_file``,
            ``read_only``, ``permissions``, ``tls``, or a store that cannot do what was asked): an
            operator must fix it, and the client does not retry it in a tight loop.
    """

    def __init__(
        self,
        message: str = "token store error",
        *,
        transient: bool = False,
        kind: str = "custom",
        path: Optional[str] = None,
        configuration: bool = False,
    ) -> None:
        super().__init__(message, transient=transient)
        self.kind = kind
        self.path = path
        self.configuration = configuration


class TransportError(TokengateError):
    """The API request itself failed: connection refused or reset, timeout, protocol error, or a
    body larger than ``max_response_body``."""


class TlsError(TransportError):
    """TLS with the API failed: its certificate is not trusted (add its CA with ``ca_certs=``), not
    valid for the host name, or expired; the server refused (or wanted) a client certificate; or
    the handshake failed. Not transient: trying again does not change a certificate."""


class ProxyError(TransportError):
    """The request could not get through its proxy: the proxy could not be reached, refused the
    tunnel or the credentials, or could not reach the server.

    Attributes:
        proxy: the proxy as ``scheme://host:port`` (never its credentials), if known.
        auth_refused: whether the proxy refused the credentials (or wanted some); only that case
            is not transient.
    """

    def __init__(
        self,
        message: str = "proxy error",
        *,
        transient: bool = True,
        proxy: Optional[str] = None,
        auth_refused: bool = False,
    ) -> None:
        super().__init__(message, transient=transient)
        self.proxy = proxy
        self.auth_refused = auth_refused


class Timeout(TransportError, TimeoutError):
    """The request's own ``timeout=`` passed: while it waited for a token, or before its response
    arrived. Transient.

    Attributes:
        timeout: the ``timeout`` that was set, in seconds.
    """

    def __init__(
        self, message: str = "deadline passed", *, transient: bool = True, timeout: float = 0.0
    ) -> None:
        super().__init__(message, transient=transient)
        self.timeout = timeout


class ConfigError(TokengateError, ValueError):
    """An argument tokengate cannot work with: a bad URL, method or header, both a gate and token
    settings, an unusable refresher configuration."""


# Shown (and pickled) as `tokengate.X`, where users import them from.
for _cls in (
    TokengateError,
    LoginRequired,
    RefreshFailed,
    RefreshTimeout,
    RevocationFailed,
    LoginFailed,
    InvalidToken,
    StoreError,
    TransportError,
    TlsError,
    ProxyError,
    Timeout,
    ConfigError,
):
    _cls.__module__ = "tokengate"
del _cls
