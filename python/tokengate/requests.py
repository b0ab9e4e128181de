"""A ``requests`` authentication backed by a tokengate ``Gate``.

    import requests, tokengate
    from tokengate.requests import TokenAuth

    gate = tokengate.Gate(token=..., refresher=tokengate.OAuth2.refresh_token(...))
    session = requests.Session()
    session.auth = TokenAuth(gate, "https://api.example.com")
    session.get("https://api.example.com/users/me")   # from any number of threads

Each request to the API origin gets the gate's token (refreshed ahead of expiry, one refresh at a
time across threads, and across processes with a ``FileStore``). A response that rejects the
token (a 401 asking for a new one, or your ``reject_when``) is reported to the gate, which
refreshes unless another thread already did, and the request is replayed once with the new token.
Requests to other origins get no token, and ``requests`` itself drops the header on a redirect
to another host.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

import requests
from requests.auth import AuthBase
from requests.cookies import extract_cookies_to_jar
from requests.utils import rewind_body

from ._adapter import AdapterBase
from ._tokengate import Client, Gate

__all__ = ["TokenAuth"]

_LEASE = "_tokengate_lease"
_REPLAYS = "_tokengate_replays"


class TokenAuth(AuthBase, AdapterBase):
    """``requests`` auth that sends a tokengate gate's token and replays once on a rejection.

    Args:
        gate: the ``Gate`` (or a ``Client``, whose gate and base URL are used).
        api_url: the API's URL; only requests to its origin (scheme, host, port) get the token.
            Defaults to the client's base URL when a ``Client`` is given.
        reject_when: ``reject_when(response) -> bool`` for APIs that signal an expired token in
            the body (e.g. ``200 {"ret": 401}``); it gets the ``requests.Response``. Defaults to
            none: a 401 whose ``WWW-Authenticate`` challenge (if any) asks for a new token.
        max_replays: replays per request after rejections. Defaults to 1.

    Raises (from the request call): ``LoginRequired``, ``RefreshFailed``, ``RefreshTimeout`` when
    no token can be had. A request whose body is a stream that cannot be rewound is not replayed:
    its rejection is returned.
    """

    def __init__(
        self,
        gate: Union[Gate, Client],
        api_url: Optional[str] = None,
        *,
        reject_when: Optional[Callable[[requests.Response], bool]] = None,
        max_replays: int = 1,
    ) -> None:
        AdapterBase.__init__(self, gate, api_url, reject_when, max_replays)

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if not self._applies(r.url):
            return r
        self._attach(r, self.gate.lease(), 0)
        return r

    def _attach(self, r: requests.PreparedRequest, lease: Any, replays: int) -> None:
        r.headers["Authorization"] = lease.authorization
        setattr(r, _LEASE, lease)
        setattr(r, _REPLAYS, replays)
        if self._on_response not in r.hooks["response"]:
            r.register_hook("response", self._on_response)

    def _on_response(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        request = response.request
        lease = getattr(request, _LEASE, None)
        if lease is None:
            # Not a request this auth prepared (e.g. a redirect hop built by requests).
            return response
        challenges = [response.headers.get("WWW-Authenticate", "")]
        if not self._rejected(response.status_code, challenges, response):
            self.gate.confirm(lease)
            return response
        replays = getattr(request, _REPLAYS, 0)
        if replays >= self.max_replays or self.gate.reject(lease) == "final":
            return response
        replay = request.copy()
        if not _rewind(request, replay):
            return response
        # Read and release the rejected response so its connection can be reused.
        response.content
        response.close()
        extract_cookies_to_jar(replay._cookies, request, response.raw)
        replay.prepare_cookies(replay._cookies)
        self._attach(replay, self.gate.lease(), replays + 1)
        self._count_replay()
        answer = response.connection.send(replay, **kwargs)
        answer.history.append(response)
        answer.request = replay
        # The adapter's send runs no hooks: judge the replay's answer here.
        return self._on_response(answer, **kwargs)


def _rewind(original: requests.PreparedRequest, replay: requests.PreparedRequest) -> bool:
    """Whether ``replay`` can send the same body again (rewinding a seekable file body)."""
    body = original.body
    if body is None or isinstance(body, (bytes, str)):
        return True
    if getattr(original, "_body_position", None) is not None and hasattr(body, "seek"):
        replay._body_position = original._body_position
        try:
            rewind_body(replay)
        except Exception:  # an unrewindable stream: return the rejection instead
            return False
        return True
    return False
