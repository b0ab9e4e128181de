"""Type stubs of the extension module ``tokengate._tokengate`` (Rust, PyO3).

Everything here is re-exported from ``tokengate``; the docstrings live on the runtime objects
(``help(tokengate.Client)``).
"""

import datetime
import os
import pathlib
from typing import (
    Any,
    Callable,
    Iterable,
    Iterator,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from ._errors import LoginRequired, TokengateError

__version__: str

#: Seconds (int or float) or a ``datetime.timedelta``.
Seconds = Union[int, float, datetime.timedelta]
#: A mapping or ``(name, value)`` pairs.
Pairs = Union[Mapping[str, Any], Iterable[Tuple[str, Any]]]
#: What a Python refresher returns: a ``Token``, or an RFC 6749 §5.1 token response as a dict.
RefreshResult = Union["Token", Mapping[str, Any]]
Refresher = Union["OAuth2", Callable[[Optional["Token"]], RefreshResult]]
StorePath = Union["FileStore", str, "os.PathLike[str]"]
PathLike = Union[str, "os.PathLike[str]"]
#: ``ca_certs=``: a PEM file path, PEM bytes, or a list of them.
CaCerts = Union[PathLike, bytes, bytearray, Sequence[Union[PathLike, bytes, bytearray]]]
#: ``client_cert=``: one PEM file with certificate and key, or ``(certificate, key)`` files.
ClientCert = Union[PathLike, Tuple[PathLike, PathLike]]
Roots = Literal["platform", "webpki", "added_only"]

class Token:
    def __init__(
        self,
        access_token: str,
        *,
        expires_in: Optional[Seconds] = None,
        expires_at: Optional[float] = None,
        refresh_token: Optional[str] = None,
        token_type: Optional[str] = None,
        scope: Optional[str] = None,
    ) -> None: ...
    @property
    def access_token(self) -> str: ...
    @property
    def refresh_token(self) -> Optional[str]: ...
    @property
    def token_type(self) -> str: ...
    @property
    def scope(self) -> Optional[str]: ...
    @property
    def expires_in(self) -> Optional[float]: ...
    @property
    def expires_at(self) -> Optional[float]: ...
    @property
    def lifetime(self) -> Optional[float]: ...
    @property
    def is_expired(self) -> bool: ...

class Lease:
    @property
    def authorization(self) -> str: ...
    @property
    def generation(self) -> int: ...
    @property
    def token(self) -> Token: ...

class OAuth2:
    @staticmethod
    def refresh_token(
        token_url: str,
        *,
        client_id: Optional[str] = None,
        client_secret: Optional[str] = None,
        client_auth: Optional[str] = None,
        scope: Optional[str] = None,
        revocation_url: Optional[str] = None,
        extra_params: Optional[Pairs] = None,
        timeout: Optional[Seconds] = None,
        connect_timeout: Optional[Seconds] = None,
        allow_insecure_http: bool = False,
        ca_certs: Optional[CaCerts] = None,
        roots: Optional[Roots] = None,
        client_cert: Optional[ClientCert] = None,
        proxy: Optional[str] = None,
        no_proxy: Optional[str] = None,
        proxy_from_env: bool = True,
    ) -> OAuth2: ...
    @staticmethod
    def client_credentials(
        token_url: str,
        *,
        client_id: Optional[str] = None,
        client_secret: Optional[str] = None,
        client_auth: Optional[str] = None,
        scope: Optional[str] = None,
        revocation_url: Optional[str] = None,
        extra_params: Optional[Pairs] = None,
        timeout: Optional[Seconds] = None,
        connect_timeout: Optional[Seconds] = None,
        allow_insecure_http: bool = False,
        ca_certs: Optional[CaCerts] = None,
        roots: Optional[Roots] = None,
        client_cert: Optional[ClientCert] = None,
        proxy: Optional[str] = None,
        no_proxy: Optional[str] = None,
        proxy_from_env: bool = True,
    ) -> OAuth2: ...

class FileStore:
    def __init__(self, path: Union[str, "os.PathLike[str]"]) -> None: ...
    @property
    def path(self) -> pathlib.Path: ...
    @property
    def lock_path(self) -> pathlib.Path: ...
    def load(self) -> Optional[Token]: ...
    def save(self, token: Token) -> None: ...

class Stats:
    @property
    def refreshes(self) -> int: ...
    @property
    def refresh_failures(self) -> int: ...
    @property
    def waits(self) -> int: ...
    @property
    def replays(self) -> int: ...
    @property
    def events_dropped(self) -> int: ...
    @property
    def adopted(self) -> int: ...
    @property
    def store_errors(self) -> int: ...
    def as_dict(self) -> dict[str, int]: ...

class Event:
    @property
    def kind(self) -> str: ...
    @property
    def generation(self) -> Optional[int]: ...
    @property
    def expires_in(self) -> Optional[float]: ...
    @property
    def reactive(self) -> Optional[bool]: ...
    @property
    def took(self) -> Optional[float]: ...
    @property
    def retry_in(self) -> Optional[float]: ...
    @property
    def error(self) -> Optional[TokengateError]: ...

class Events:
    def __iter__(self) -> Iterator[Event]: ...
    def __next__(self) -> Event: ...
    def get(self, timeout: Optional[Seconds] = None) -> Optional[Event]: ...
    def __len__(self) -> int: ...

class Gate:
    def __init__(
        self,
        *,
        token: Optional[Token] = None,
        refresher: Optional[Refresher] = None,
        store: Optional[StorePath] = None,
        refresh_before_expiry: Optional[Seconds] = None,
        refresh_ahead: Optional[Seconds] = None,
        refresh_timeout: Optional[Seconds] = None,
        assumed_lifetime: Optional[Seconds] = None,
        refresh_backoff: Optional[Tuple[Seconds, Seconds]] = None,
        on_refresh: Optional[Callable[[Token], Any]] = None,
        on_login_required: Optional[Callable[[LoginRequired], Any]] = None,
    ) -> None: ...
    def lease(self) -> Lease: ...
    def reject(self, lease: Lease) -> str: ...
    def confirm(self, lease: Lease) -> None: ...
    def set_token(self, token: Token) -> None: ...
    def login(self, token: Token) -> None: ...
    def logout(self) -> None: ...
    def token(self) -> Optional[Token]: ...
    def stats(self) -> Stats: ...
    def events(self) -> Events: ...
    @property
    def login_required(self) -> bool: ...

class Headers(Mapping[str, str]):
    def __getitem__(self, name: str) -> str: ...
    def __contains__(self, name: object) -> bool: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[str]: ...
    def get(self, name: str, default: Any = None) -> Any: ...
    def get_list(self, name: str) -> List[str]: ...
    def multi_items(self) -> List[Tuple[str, str]]: ...
    def keys(self) -> List[str]: ...  # type: ignore[override]
    def values(self) -> List[str]: ...  # type: ignore[override]
    def items(self) -> List[Tuple[str, str]]: ...  # type: ignore[override]

class Response:
    @property
    def status_code(self) -> int: ...
    @property
    def ok(self) -> bool: ...
    @property
    def reason(self) -> str: ...
    @property
    def headers(self) -> Headers: ...
    @property
    def content(self) -> bytes: ...
    @property
    def text(self) -> str: ...
    @property
    def url(self) -> str: ...
    def json(self) -> Any: ...

Body = Union[bytes, bytearray, str, Pairs]

class Client:
    def __init__(
        self,
        base_url: str,
        *,
        gate: Optional[Gate] = None,
        token: Optional[Token] = None,
        refresher: Optional[Refresher] = None,
        store: Optional[StorePath] = None,
        refresh_before_expiry: Optional[Seconds] = None,
        refresh_ahead: Optional[Seconds] = None,
        refresh_timeout: Optional[Seconds] = None,
        assumed_lifetime: Optional[Seconds] = None,
        refresh_backoff: Optional[Tuple[Seconds, Seconds]] = None,
        on_refresh: Optional[Callable[[Token], Any]] = None,
        on_login_required: Optional[Callable[[LoginRequired], Any]] = None,
        background_refresh: bool = False,
        reject_when: Optional[Callable[[Response], Any]] = None,
        max_replays: Optional[int] = None,
        max_buffered_body: Optional[int] = None,
        max_redirects: Optional[int] = None,
        timeout: Optional[Seconds] = None,
        connect_timeout: Optional[Seconds] = None,
        response_timeout: Optional[Seconds] = None,
        user_agent: Optional[str] = None,
        max_idle_connections_per_host: Optional[int] = None,
        max_response_body: Optional[int] = None,
        ca_certs: Optional[CaCerts] = None,
        roots: Optional[Roots] = None,
        client_cert: Optional[ClientCert] = None,
        proxy: Optional[str] = None,
        no_proxy: Optional[str] = None,
        proxy_from_env: bool = True,
    ) -> None: ...
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Optional[Pairs] = None,
        headers: Optional[Pairs] = None,
        json: Any = None,
        data: Optional[Body] = None,
        timeout: Optional[Seconds] = None,
    ) -> Response: ...
    def get(
        self,
        path: str,
        *,
        params: Optional[Pairs] = None,
        headers: Optional[Pairs] = None,
        timeout: Optional[Seconds] = None,
    ) -> Response: ...
    def head(
        self,
        path: str,
        *,
        params: Optional[Pairs] = None,
        headers: Optional[Pairs] = None,
        timeout: Optional[Seconds] = None,
    ) -> Response: ...
    def delete(
        self,
        path: str,
        *,
        params: Optional[Pairs] = None,
        headers: Optional[Pairs] = None,
        json: Any = None,
        data: Optional[Body] = None,
        timeout: Optional[Seconds] = None,
    ) -> Response: ...
    def post(
        self,
        path: str,
        *,
        params: Optional[Pairs] = None,
        headers: Optional[Pairs] = None,
        json: Any = None,
        data: Optional[Body] = None,
        timeout: Optional[Seconds] = None,
    ) -> Response: ...
    def put(
        self,
        path: str,
        *,
        params: Optional[Pairs] = None,
        headers: Optional[Pairs] = None,
        json: Any = None,
        data: Optional[Body] = None,
        timeout: Optional[Seconds] = None,
    ) -> Response: ...
    def patch(
        self,
        path: str,
        *,
        params: Optional[Pairs] = None,
        headers: Optional[Pairs] = None,
        json: Any = None,
        data: Optional[Body] = None,
        timeout: Optional[Seconds] = None,
    ) -> Response: ...
    def set_token(self, token: Token) -> None: ...
    def login(self, token: Token) -> None: ...
    def logout(self) -> None: ...
    def token(self) -> Optional[Token]: ...
    def stats(self) -> Stats: ...
    def events(self) -> Events: ...
    @property
    def gate(self) -> Gate: ...
    @property
    def base_url(self) -> str: ...

def rejects_token(status: int, www_authenticate: Sequence[str]) -> bool: ...

class Cancel:
    def __init__(self) -> None: ...
    def cancel(self) -> None: ...
    @property
    def cancelled(self) -> bool: ...

class DevicePrompt:
    @property
    def user_code(self) -> str: ...
    @property
    def verification_uri(self) -> str: ...
    @property
    def verification_uri_complete(self) -> Optional[str]: ...
    @property
    def expires_in(self) -> float: ...
    @property
    def interval(self) -> float: ...

class Metadata:
    @staticmethod
    def discover(
        issuer: str,
        *,
        ca_certs: Optional[CaCerts] = None,
        roots: Optional[Roots] = None,
        client_cert: Optional[ClientCert] = None,
        proxy: Optional[str] = None,
        no_proxy: Optional[str] = None,
        proxy_from_env: bool = True,
    ) -> Metadata: ...
    @property
    def issuer(self) -> str: ...
    @property
    def token_endpoint(self) -> str: ...
    @property
    def device_authorization_endpoint(self) -> Optional[str]: ...
    @property
    def authorization_endpoint(self) -> Optional[str]: ...
    @property
    def revocation_endpoint(self) -> Optional[str]: ...

class DeviceLogin:
    def __init__(
        self,
        device_authorization_url: str,
        token_url: str,
        *,
        client_id: str,
        client_secret: Optional[str] = None,
        scope: Optional[str] = None,
        allow_insecure_http: bool = False,
        ca_certs: Optional[CaCerts] = None,
        roots: Optional[Roots] = None,
        client_cert: Optional[ClientCert] = None,
        proxy: Optional[str] = None,
        no_proxy: Optional[str] = None,
        proxy_from_env: bool = True,
    ) -> None: ...
    @staticmethod
    def from_metadata(
        metadata: Metadata,
        *,
        client_id: str,
        client_secret: Optional[str] = None,
        scope: Optional[str] = None,
        allow_insecure_http: bool = False,
    ) -> DeviceLogin: ...
    def run(self, prompt: Callable[[DevicePrompt], Any], *, cancel: Optional[Cancel] = None) -> Token: ...

class BrowserLogin:
    def __init__(
        self,
        authorization_url: str,
        token_url: str,
        *,
        client_id: str,
        client_secret: Optional[str] = None,
        scope: Optional[str] = None,
        authorization_params: Optional[Pairs] = None,
        timeout: Optional[Seconds] = None,
        expect_issuer: Optional[str] = None,
        allow_insecure_http: bool = False,
        ca_certs: Optional[CaCerts] = None,
        roots: Optional[Roots] = None,
        client_cert: Optional[ClientCert] = None,
        proxy: Optional[str] = None,
        no_proxy: Optional[str] = None,
        proxy_from_env: bool = True,
    ) -> None: ...
    @staticmethod
    def from_metadata(
        metadata: Metadata,
        *,
        client_id: str,
        client_secret: Optional[str] = None,
        scope: Optional[str] = None,
        authorization_params: Optional[Pairs] = None,
        timeout: Optional[Seconds] = None,
        allow_insecure_http: bool = False,
    ) -> BrowserLogin: ...
    def run(
        self, open: Optional[Callable[[str], Any]] = None, *, cancel: Optional[Cancel] = None
    ) -> Token: ...
