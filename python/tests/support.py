"""Helpers shared by the tests: the test server program's driver and a thread runner."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, List, Optional

import tokengate

#: How long any answer from the server program may take.
ANSWER_TIMEOUT = 15.0
#: How long the threads of one ``run_threads`` call may take in all before the test fails.
THREAD_TIMEOUT = 60.0


class TestServer:
    """One running ``tokengate-testserver``: its URLs, the first token, and its stdin commands."""

    __test__ = False  # not a test class

    def __init__(self, program: str, flags: List[str]) -> None:
        self._proc = subprocess.Popen(
            [program, *flags],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        hello = self._line()
        self.url: str = hello["url"]
        self.api_url: str = hello["api_url"]
        self.token_url: str = hello["token_url"]
        self.revocation_url: str = hello["revocation_url"]
        self.device_authorization_url: str = hello["device_authorization_url"]
        self.issuer: str = hello["issuer"]
        self.authorization_url: str = hello["authorization_url"]
        self.public_client_id: str = hello["public_client_id"]
        self.custom_refresh_url: str = hello["custom_refresh_url"]
        self.client_id: str = hello["client_id"]
        self.client_secret: str = hello["client_secret"]
        # Present with --tls/--mtls (PEM files) and --proxy.
        self.ca_file: Optional[str] = hello.get("ca_file")
        self.client_cert_file: Optional[str] = hello.get("client_cert_file")
        self.client_key_file: Optional[str] = hello.get("client_key_file")
        self.proxy_url: Optional[str] = hello.get("proxy_url")
        self.first: Dict[str, Any] = {
            k: hello[k] for k in ("access_token", "refresh_token", "expires_in")
        }

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _line(self) -> Dict[str, Any]:
        try:
            line = self._lines.get(timeout=ANSWER_TIMEOUT)
        except queue.Empty:
            raise AssertionError("the test server did not answer in time") from None
        if line is None:
            err = self._proc.stderr.read() if self._proc.stderr else ""
            raise AssertionError(f"the test server exited: {err}")
        return json.loads(line)

    def command(self, line: str) -> Dict[str, Any]:
        """Sends one stdin command and returns its answer; fails on an error answer."""
        with self._lock:
            assert self._proc.stdin is not None
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()
            answer = self._line()
        assert answer.get("ok"), f"{line!r}: {answer}"
        return answer

    def counters(self) -> Dict[str, int]:
        return self.command("counters")["counters"]

    def issue(self) -> Dict[str, Any]:
        """A fresh login: a new token family."""
        return self.command("issue")["token"]

    def login(self, expired: bool = False) -> tokengate.Token:
        """A freshly issued token (with ``expired``, one that must be refreshed before use)."""
        t = self.issue()
        return tokengate.Token(
            t["access_token"],
            expires_in=0 if expired else t["expires_in"],
            refresh_token=t["refresh_token"],
        )

    def oauth2(self, **kwargs: Any) -> tokengate.OAuth2:
        """The refresh_token grant against this server, as the demo client."""
        return tokengate.OAuth2.refresh_token(
            self.token_url, client_id=self.client_id, client_secret=self.client_secret, **kwargs
        )

    def client(self, token: Optional[tokengate.Token] = None, **kwargs: Any) -> tokengate.Client:
        """A client of the API with a fresh login and the OAuth2 refresher, unless overridden."""
        if "gate" not in kwargs and "store" not in kwargs:
            kwargs.setdefault("token", token or self.login())
        if "gate" not in kwargs:
            kwargs.setdefault("refresher", self.oauth2())
        return tokengate.Client(self.api_url, **kwargs)

    def stop(self) -> None:
        if self._proc.poll() is None:
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait(timeout=10)
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()


def eventually(what: str, condition: Callable[[], bool], timeout: float = ANSWER_TIMEOUT) -> None:
    """Waits until ``condition()`` holds (for what another thread does), failing after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.01)


def run_threads(count: int, target: Callable[[int], Any]) -> List[Any]:
    """Runs ``target(i)`` on ``count`` threads released together; returns the results in order.

    An exception in a thread is re-raised here; a thread still running after ``THREAD_TIMEOUT``
    fails the test.
    """
    barrier = threading.Barrier(count)
    results: List[Any] = [None] * count
    errors: "queue.Queue[BaseException]" = queue.Queue()

    def body(i: int) -> None:
        try:
            barrier.wait(timeout=THREAD_TIMEOUT)
            results[i] = target(i)
        except BaseException as e:  # re-raised on the test's thread
            errors.put(e)

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + THREAD_TIMEOUT
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            raise AssertionError(f"a thread is still running after {THREAD_TIMEOUT}s")
    if not errors.empty():
        raise errors.get()
    return results


def refresh_with_urllib(server: TestServer, current: tokengate.Token) -> Dict[str, Any]:
    """A refresher written in Python: the RFC 6749 refresh_token grant with urllib, returning the
    token response as a dict (client credentials in the body)."""
    form = urllib.parse.urlencode(
        {
            "grant_type": "refresh_token",
            "refresh_token": current.refresh_token,
            "client_id": server.client_id,
            "client_secret": server.client_secret,
        }
    ).encode()
    with urllib.request.urlopen(server.token_url, data=form, timeout=10) as answer:
        return json.load(answer)
