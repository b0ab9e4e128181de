"""tokengate: a thread-safe HTTP client that keeps its OAuth2 bearer token fresh.

When the token expires, exactly one thread refreshes it; every other thread waits for that refresh
(with the GIL released) and carries on with the new token: no duplicate refresh, no reuse of a
rotated refresh token, no hang. Processes sharing a ``FileStore`` refresh once between them.

    import tokengate

    client = tokengate.Client(
        "https://api.example.com",
        token=tokengate.Token("ACCESS", expires_in=3600, refresh_token="REFRESH"),
        refresher=tokengate.OAuth2.refresh_token(
            "https://auth.example.com/oauth/token", client_id="my-app"
        ),
    )
    me = client.get("/users/me").json()   # from any number of threads

The core is the Rust crate ``tokengate`` (built into this package with PyO3). Code that keeps
``requests`` or ``httpx`` uses ``tokengate.requests.TokenAuth`` or ``tokengate.httpx.TokenAuth``.
"""

from collections.abc import Mapping as _Mapping

from ._errors import (
    ConfigError,
    InvalidToken,
    LoginFailed,
    LoginRequired,
    ProxyError,
    RefreshFailed,
    RefreshTimeout,
    RevocationFailed,
    StoreError,
    Timeout,
    TlsError,
    TokengateError,
    TransportError,
)
from ._tokengate import (
    BrowserLogin,
    Cancel,
    Client,
    DeviceLogin,
    DevicePrompt,
    Event,
    Events,
    FileStore,
    Gate,
    Headers,
    Lease,
    Metadata,
    OAuth2,
    Response,
    Stats,
    Token,
    __version__,
)

_Mapping.register(Headers)

__all__ = [
    "BrowserLogin",
    "Cancel",
    "Client",
    "ConfigError",
    "DeviceLogin",
    "DevicePrompt",
    "Event",
    "Events",
    "FileStore",
    "Gate",
    "Headers",
    "InvalidToken",
    "Lease",
    "LoginFailed",
    "LoginRequired",
    "Metadata",
    "OAuth2",
    "ProxyError",
    "RefreshFailed",
    "RefreshTimeout",
    "Response",
    "RevocationFailed",
    "Stats",
    "StoreError",
    "Timeout",
    "TlsError",
    "Token",
    "TokengateError",
    "TransportError",
    "__version__",
]
