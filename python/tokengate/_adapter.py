"""What the ``requests`` and ``httpx`` adapters share: which requests get the token, what counts as a
rejection, and the replay counter."""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional, Tuple, Union
from urllib.parse import urlsplit

from ._tokengate import Client, Gate, rejects_token

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> Optional[Tuple[str, str, int]]:
    """``(scheme, host, port)`` of an http(s) URL, lower-cased, with the default port filled in."""
    try:
        parts = urlsplit(str(url))
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            return None
        return scheme, parts.hostname.lower(), parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        return None


class AdapterBase:
    """The gate, the API origin, the rejection rule and a replay counter."""

    def __init__(
        self,
        gate: Union[Gate, Client],
        api_url: Optional[str],
        reject_when: Optional[Callable[[Any], bool]],
        max_replays: int,
    ) -> None:
        if isinstance(gate, Client):
            api_url = api_url or gate.base_url
            gate = gate.gate
        if not isinstance(gate, Gate):
            raise TypeError("TokenAuth wants a tokengate.Gate or tokengate.Client")
        if api_url is None:
            raise TypeError("TokenAuth(gate, api_url): say which origin gets the token")
        self._origin = origin(api_url)
        if self._origin is None:
            raise ValueError(f"api_url is not an http(s) URL: {api_url!r}")
        if max_replays < 0:
            raise ValueError("max_replays must be 0 or more")
        self.gate = gate
        self.reject_when = reject_when
        self.max_replays = max_replays
        self._replays = 0
        self._lock = threading.Lock()

    @property
    def replays(self) -> int:
        """Requests this adapter replayed with a new token after a rejection."""
        with self._lock:
            return self._replays

    def _count_replay(self) -> None:
        with self._lock:
            self._replays += 1

    def _applies(self, url: Any) -> bool:
        return origin(str(url)) == self._origin

    def _rejected(self, status: int, challenges: list, response: Any) -> bool:
        if rejects_token(status, challenges):
            return True
        return bool(self.reject_when is not None and self.reject_when(response))
