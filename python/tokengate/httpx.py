"""An ``httpx`` authentication backed by a tokengate ``Gate``.

    import httpx, tokengate
    from tokengate.httpx import TokenAuth

    gate = tokengate.Gate(token=..., refresher=tokengate.OAuth2.refresh_token(...))
    with httpx.Client(auth=TokenAuth(gate, "https://api.example.com")) as http:
        http.get("https://api.example.com/users/me")   # from any number of threads

Same behaviour as ``tokengate.requests.TokenAuth``: the token goes to the API origin only, one
refresh at a time across threads (and processes, with a ``FileStore``), and a rejected request is
replayed once with the new token. With ``httpx.AsyncClient`` the gate is asked from a worker
thread (``anyio.to_thread``), so an event loop never blocks on a refresh.
"""

from __future__ import annotations

from typing import Any, AsyncGenerator, Callable, Generator, Optional, Union

import anyio.to_thread
import httpx

from ._adapter import AdapterBase
from ._tokengate import Client, Gate

__all__ = ["TokenAuth"]


class TokenAuth(httpx.Auth, AdapterBase):
    """``httpx`` auth that sends a tokengate gate's token and replays once on a rejection.

    Args:
        gate: the ``Gate`` (or a ``Client``, whose gate and base URL are used).
        api_url: the API's URL; only requests to its origin get the token. Defaults to the
            client's base URL when a ``Client`` is given.
        reject_when: ``reject_when(response) -> bool`` for APIs that signal an expired token in
            the body; it gets the ``httpx.Response``, already read. Defaults to none: a 401 whose
            ``WWW-Authenticate`` challenge (if any) asks for a new token.
        max_replays: replays per request after rejections. Defaults to 1.
    """

    # The body is read before the first send, so a replay can send it again.
    requires_request_body = True

    def __init__(
        self,
        gate: Union[Gate, Client],
        api_url: Optional[str] = None,
        *,
        reject_when: Optional[Callable[[httpx.Response], bool]] = None,
        max_replays: int = 1,
    ) -> None:
        AdapterBase.__init__(self, gate, api_url, reject_when, max_replays)
        self.requires_response_body = reject_when is not None

    def _verdict(self, lease: Any, response: httpx.Response, replays: int) -> bool:
        """Whether to replay: reports the answer to the gate."""
        challenges = response.headers.get_list("www-authenticate")
        if not self._rejected(response.status_code, challenges, response):
            self.gate.confirm(lease)
            return False
        if replays >= self.max_replays or self.gate.reject(lease) == "final":
            return False
        self._count_replay()
        return True

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not self._applies(request.url):
            yield request
            return
        request.read()
        replays = 0
        while True:
            lease = self.gate.lease()
            request.headers["Authorization"] = lease.authorization
            response = yield request
            if self.requires_response_body:
                response.read()
            if not self._verdict(lease, response, replays):
                return
            replays += 1

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not self._applies(request.url):
            yield request
            return
        await request.aread()
        replays = 0
        while True:
            lease = await anyio.to_thread.run_sync(self.gate.lease)
            request.headers["Authorization"] = lease.authorization
            response = yield request
            if self.requires_response_body:
                await response.aread()
            if not self._verdict(lease, response, replays):
                return
            replays += 1
