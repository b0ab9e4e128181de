"""Every exception, raised by a real failure against the loopback server (or a real socket), with
its attributes; refreshers and hooks written in Python that raise; no secret in any message."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading

import pytest

import tokengate
from support import eventually, refresh_with_urllib

def test_the_hierarchy():
    for cls in (
        tokengate.LoginRequired,
        tokengate.RefreshFailed,
        tokengate.RefreshTimeout,
        tokengate.RevocationFailed,
        tokengate.InvalidToken,
        tokengate.StoreError,
        tokengate.TransportError,
        tokengate.TlsError,
        tokengate.ProxyError,
        tokengate.Timeout,
        tokengate.ConfigError,
    ):
        assert issubclass(cls, tokengate.TokengateError)
    for cls in (tokengate.TlsError, tokengate.ProxyError, tokengate.Timeout):
        assert issubclass(cls, tokengate.TransportError)
    assert issubclass(tokengate.Timeout, TimeoutError)
    assert issubclass(tokengate.ConfigError, ValueError)
    assert issubclass(tokengate.InvalidToken, ValueError)


def test_login_required_after_invalid_grant_fails_fast_until_set_token(server):
    hook_calls = []
    client = server.client(
        token=server.login(expired=True), on_login_required=hook_calls.append
    )
    events = client.events()
    server.command("revoke-refresh-tokens")

    with pytest.raises(tokengate.LoginRequired) as caught:
        client.get("/x")
    e = caught.value
    assert e.oauth_error == "invalid_grant"
    assert e.status == 400
    assert e.transient is False
    assert client.gate.login_required

    before = server.counters()["token_requests"]
    with pytest.raises(tokengate.LoginRequired):
        client.get("/x")
    assert server.counters()["token_requests"] == before, "failed fast, without network"
    # The hook runs on the refresher thread, after the waiting callers were woken.
    eventually("the login-required hook", lambda: len(hook_calls) == 1)
    assert isinstance(hook_calls[0], tokengate.LoginRequired)
    event = events.get(timeout=5)
    assert event.kind == "login_required"
    assert isinstance(event.error, tokengate.LoginRequired)

    client.set_token(server.login())
    assert not client.gate.login_required
    assert client.get("/x").status_code == 200
    assert events.get(timeout=5).kind == "token_set"


def test_login_required_without_a_token_or_refresher(server):
    client = tokengate.Client(server.api_url)
    with pytest.raises(tokengate.LoginRequired):
        client.get("/x")
    assert server.counters()["api_calls"] == 0


@pytest.mark.server("--failure", "unavailable:7")
def test_transient_refresh_failure_says_when_the_gate_tries_again(server):
    # The server asks for 7 s (Retry-After); the gate never backs off longer than a request's budget
    # for waiting (refresh_timeout, 1 s here), so the next attempt is due within a second.
    client = server.client(
        token=server.login(expired=True), refresh_timeout=1, refresh_backoff=(0.25, 10)
    )
    events = client.events()
    with pytest.raises(tokengate.RefreshFailed) as caught:
        client.get("/x")
    e = caught.value
    assert e.transient is True and e.configuration is False
    assert e.retry_after == 7.0
    assert 0 < e.retry_in <= 1.0
    assert e.status == 503
    assert "next attempt in" in str(e)
    assert not client.gate.login_required
    event = events.get(timeout=5)
    assert event.kind == "refresh_failed"
    assert 0 < event.retry_in <= 1.0
    assert isinstance(event.error, tokengate.RefreshFailed)
    assert server.counters()["failure_answers"] >= 1


@pytest.mark.server("--failure", "unavailable:3")
def test_requests_wait_through_a_short_backoff_for_the_next_attempt(server):
    # The next attempt comes when the server's Retry-After says (3 s): the healer has that long.
    client = server.client(token=server.login(expired=True), refresh_timeout=10)
    events = client.events()
    first = events.get(timeout=0)
    assert first is None

    def heal():
        # Once the first attempt has failed, the token endpoint recovers.
        assert events.get(timeout=10).kind == "refresh_failed"
        server.command("failure none")

    healer = threading.Thread(target=heal)
    healer.start()
    try:
        assert client.get("/x").status_code == 200
    finally:
        healer.join(timeout=15)
    c = server.counters()
    assert c["token_requests"] == 2 and c["refreshes"] == 1, c


@pytest.mark.server("--failure", "invalid-client")
def test_a_refused_client_is_a_configuration_failure_not_a_logout(server):
    client = server.client(token=server.login(expired=True))
    with pytest.raises(tokengate.RefreshFailed) as caught:
        client.get("/x")
    assert caught.value.configuration is True
    assert caught.value.transient is False
    assert caught.value.oauth_error == "invalid_client"
    assert not client.gate.login_required, "the session is kept for the operator to fix"


def test_refresh_timeout_when_another_thread_refreshes_too_long(server):
    entered, release = threading.Event(), threading.Event()

    def slow_refresher(current):
        entered.set()
        release.wait(timeout=30)
        return refresh_with_urllib(server, current)

    client = server.client(
        token=server.login(expired=True), refresher=slow_refresher, refresh_timeout=0.3
    )
    outcome = {}

    def first_call():
        try:
            outcome["status"] = client.get("/a").status_code
        except tokengate.RefreshTimeout:
            outcome["status"] = "timeout"

    first = threading.Thread(target=first_call)
    first.start()
    try:
        assert entered.wait(timeout=10), "the refresher started"
        with pytest.raises(tokengate.RefreshTimeout) as caught:
            client.get("/b")
        assert caught.value.timeout == pytest.approx(0.3)
        assert caught.value.transient is True
    finally:
        release.set()
        first.join(timeout=30)
    # The call that started the refresh is not held by it either: the refresh runs on a thread
    # of its own, and the caller gives up at its budget like every other.
    assert outcome == {"status": "timeout"}
    # The slow refresh lands and serves the next call.
    def served():
        try:
            assert client.get("/c").status_code == 200
            return True
        except tokengate.RefreshTimeout:
            return False

    eventually("the slow refresh lands", served, timeout=10)


def test_invalid_token():
    with pytest.raises(tokengate.InvalidToken):
        tokengate.Client("http://127.0.0.1:9", token=tokengate.Token("bad\nvalue"))
    client = tokengate.Client("http://127.0.0.1:9")
    with pytest.raises(tokengate.InvalidToken):
        client.set_token(tokengate.Token("bad\rvalue"))


@pytest.mark.parametrize(
    ("content", "kind"), [(b"", "empty"), (b"{not json", "malformed"), (b'{"version": 99}', "unsupported_version")]
)
def test_store_error_for_a_bad_token_file(tmp_path, content, kind):
    path = tmp_path / "token.json"
    path.write_bytes(content)
    with pytest.raises(tokengate.StoreError) as caught:
        tokengate.Client("http://127.0.0.1:9", store=tokengate.FileStore(path))
    assert caught.value.kind == kind
    assert caught.value.path == str(path)
    assert not caught.value.configuration, "a corrupt file is kept aside by the next save"
    with pytest.raises(tokengate.StoreError):
        tokengate.FileStore(path).load()
    assert path.read_bytes() == content, "the file was left as it was"


def test_store_error_kind_for_a_directory_or_fifo_at_the_token_path(tmp_path):
    for what in ("directory", "fifo"):
        path = tmp_path / f"{what}.json"
        if what == "directory":
            path.mkdir()
        else:
            os.mkfifo(path)
        caught = []

        def load():
            try:
                tokengate.FileStore(path).load()
            except tokengate.StoreError as e:
                caught.append(e)

        # A FIFO that were opened would block the load: a thread with a deadline turns that into a
        # failure.
        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        loader.join(timeout=10)
        if loader.is_alive():
            os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # releases the reader
            pytest.fail(f"blocked on the {what}")
        assert len(caught) == 1, what
        e = caught[0]
        assert (e.kind, e.path, e.transient) == ("not_regular_file", str(path), False), (what, e)
        with pytest.raises(tokengate.StoreError) as built:
            tokengate.Client("http://127.0.0.1:9", store=tokengate.FileStore(path))
        assert built.value.kind == "not_regular_file"


#: Runs a program without the capabilities that let root ignore file permissions (CI runs as root).
UNPRIVILEGED = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]


def run_as_plain_user(script: str, *args: str) -> dict:
    """Runs ``script`` in a new Python process without root's file privileges and returns the JSON
    it prints."""
    command = [sys.executable, "-c", script, *args]
    if os.geteuid() == 0:
        command = UNPRIVILEGED + command
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


READ_ONLY_CHILD = """
import json, os, sys, tokengate
path = sys.argv[1]
store = tokengate.FileStore(path)
out = {"loaded": store.load() is not None}
try:
    with open(os.path.join(os.path.dirname(path), ".probe"), "w"):
        out["probe"] = "written"
except OSError:
    out["probe"] = "refused"
try:
    store.save(tokengate.Token("new-access"))
except tokengate.StoreError as e:
    out.update(kind=e.kind, path=e.path, transient=e.transient, configuration=e.configuration, message=str(e))
print(json.dumps(out))
"""


def test_store_error_kind_for_a_directory_that_cannot_be_written(tmp_path):
    directory = tmp_path / "tokens"
    directory.mkdir()
    path = directory / "token.json"
    tokengate.FileStore(path).save(tokengate.Token("saved-access"))
    directory.chmod(0o500)
    try:
        out = run_as_plain_user(READ_ONLY_CHILD, str(path))
    finally:
        directory.chmod(0o700)
    assert out["probe"] == "refused", "the child could still write there"
    assert out["loaded"], "the saved token still loads"
    assert (out["kind"], out["path"], out["transient"], out["configuration"]) == (
        "read_only",
        str(directory),
        False,
        True,
    ), out
    assert "saved-access" not in out["message"] and "new-access" not in out["message"]
    assert tokengate.FileStore(path).load().access_token == "saved-access"


LOCK_FILE_CHILD = """
import json, sys, tokengate
api_url, token_url, client_id, client_secret, path = sys.argv[1:]
client = tokengate.Client(
    api_url,
    store=tokengate.FileStore(path),
    refresher=tokengate.OAuth2.refresh_token(
        token_url, client_id=client_id, client_secret=client_secret
    ),
)
out = {}
try:
    client.get("/x")
except tokengate.StoreError as e:
    out.update(kind=e.kind, path=e.path, transient=e.transient, message=str(e))
print(json.dumps(out))
"""


def test_store_error_kind_for_a_lock_file_this_user_may_not_write(server, tmp_path):
    path = tmp_path / "token.json"
    tokengate.FileStore(path).save(server.login(expired=True))
    lock = tmp_path / "token.json.lock"
    lock.write_bytes(b"")
    lock.chmod(0o400)
    out = run_as_plain_user(
        LOCK_FILE_CHILD, server.api_url, server.token_url, server.client_id, server.client_secret, str(path)
    )
    assert (out.get("kind"), out.get("path"), out.get("transient")) == ("permissions", str(lock), False), out
    assert "owner or mode" in out["message"], out
    assert server.counters()["token_requests"] == 0, "nothing was refreshed"

    lock.chmod(0o600)
    client = tokengate.Client(server.api_url, store=tokengate.FileStore(path), refresher=server.oauth2())
    assert client.get("/x").status_code == 200
    assert server.counters()["refreshes"] == 1


def test_transport_error_for_a_closed_port_and_a_reset():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = tokengate.Client(f"http://127.0.0.1:{port}", token=tokengate.Token("t"))
    with pytest.raises(tokengate.TransportError) as caught:
        client.get("/x")
    assert caught.value.transient is True


def test_transport_error_when_the_api_resets_the_connection(server):
    client = server.client()
    server.command("api-reset on")
    with pytest.raises(tokengate.TransportError):
        client.get("/x")
    assert server.counters()["connections_reset"] >= 1


def test_per_request_timeout_on_a_server_that_never_answers():
    # A listener that accepts and never answers: only the timeout ends the request.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = tokengate.Client(f"http://127.0.0.1:{port}", token=tokengate.Token("t"))
        with pytest.raises(tokengate.TransportError) as caught:
            client.get("/x", timeout=0.3)
        assert caught.value.transient is True
        with pytest.raises(tokengate.TransportError):
            client.get("/x", timeout=0.3)


def test_config_errors(server):
    with pytest.raises(tokengate.ConfigError):
        tokengate.Client("not a url")
    with pytest.raises(tokengate.ConfigError):
        tokengate.Client(server.api_url, gate=tokengate.Gate(), token=server.login())
    with pytest.raises(tokengate.ConfigError):
        tokengate.OAuth2.refresh_token(server.token_url, client_auth="carrier-pigeon")
    with pytest.raises(tokengate.ConfigError):
        tokengate.Client(
            server.api_url, refresher=tokengate.OAuth2.refresh_token("http://example.com/t")
        )
    client = server.client()
    with pytest.raises(tokengate.ConfigError):
        client.request("NOT A METHOD", "/x")
    with pytest.raises(tokengate.ConfigError):
        client.get("/x", headers={"bad header": "v"})
    with pytest.raises(ValueError):
        client.post("/x", json={}, data=b"")
    assert server.counters()["api_calls"] == 0


def test_a_raising_refresher_is_a_transient_failure_with_its_traceback(server):
    def broken(current):
        raise KeyError("boom-4711")

    # The refresher fails on every attempt: the request gives up when its 0.5 s budget is spent.
    client = server.client(
        token=server.login(expired=True),
        refresher=broken,
        refresh_backoff=(5, 5),
        refresh_timeout=0.5,
    )
    with pytest.raises(tokengate.RefreshFailed) as caught:
        client.get("/x")
    text = str(caught.value)
    assert caught.value.transient is True
    assert "Traceback" in text and "KeyError" in text and "boom-4711" in text
    assert "in broken" in text, "the traceback names the refresher's frame"
    assert 0 < caught.value.retry_in <= 0.5, "no backoff is longer than the budget"
    assert not client.gate.login_required, "never a logout"
    assert client.stats().refresh_failures >= 1


def test_a_refresher_that_raised_once_is_tried_again_while_the_request_waits(server):
    calls = []

    def flaky(current):
        calls.append(current)
        if len(calls) == 1:
            raise ConnectionError("token service hiccup")
        return refresh_with_urllib(server, current)

    client = server.client(
        token=server.login(expired=True), refresher=flaky, refresh_backoff=(0.05, 0.05)
    )
    assert client.get("/x").status_code == 200, "the request waited for the second attempt"
    assert len(calls) == 2 and isinstance(calls[0], tokengate.Token)
    stats = client.stats()
    assert (stats.refresh_failures, stats.refreshes) == (1, 1)
    assert server.counters()["refreshes"] == 1
    assert not client.gate.login_required


def test_a_refresher_says_login_required_configuration_or_asks_to_wait(server):
    def revoked(current):
        raise tokengate.RefreshFailed("the refresh token was revoked", transient=False)

    client = server.client(refresher=revoked, token=server.login(expired=True))
    with pytest.raises(tokengate.LoginRequired) as caught:
        client.get("/x")
    assert "revoked" in str(caught.value)

    def gone(current):
        raise tokengate.LoginRequired("log in again")

    client = server.client(refresher=gone, token=server.login(expired=True))
    with pytest.raises(tokengate.LoginRequired):
        client.get("/x")

    def misconfigured(current):
        raise tokengate.RefreshFailed("client certificate rejected", configuration=True)

    client = server.client(refresher=misconfigured, token=server.login(expired=True))
    with pytest.raises(tokengate.RefreshFailed) as caught:
        client.get("/x")
    assert caught.value.configuration and not client.gate.login_required

    def busy(current):
        raise tokengate.RefreshFailed("busy", retry_in=30)

    # 30 s asked for, 60 s of maximum backoff, 3 s of budget: the gate waits the budget, far more
    # than the 0.25 s its own backoff would start with.
    client = server.client(
        refresher=busy,
        token=server.login(expired=True),
        refresh_timeout=3,
        refresh_backoff=(0.25, 60),
    )
    events = client.events()
    with pytest.raises(tokengate.RefreshFailed) as caught:
        client.get("/x")
    assert 2.0 < caught.value.retry_in <= 3.0
    assert 2.0 < events.get(timeout=5).retry_in <= 3.0


def test_a_refresher_returning_something_else_is_a_transient_failure(server):
    client = server.client(
        refresher=lambda current: 42, token=server.login(expired=True), refresh_timeout=0.5
    )
    with pytest.raises(tokengate.RefreshFailed, match="returned a int") as caught:
        client.get("/x")
    assert caught.value.transient
    assert not client.gate.login_required


def test_a_raising_on_refresh_hook_keeps_the_new_token(server, monkeypatch):
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)

    def hook(token):
        raise RuntimeError("cannot persist")

    client = server.client(token=server.login(expired=True), on_refresh=hook)
    assert client.get("/x").status_code == 200
    assert client.get("/y").status_code == 200
    assert server.counters()["refreshes"] == 1, "the refreshed token was kept and used"
    assert not client.gate.login_required
    assert len(reported) == 1
    assert isinstance(reported[0].exc_value, RuntimeError)


def test_no_secret_in_any_message_or_repr(server):
    secret_client = "client-secret-xyz"
    login = server.issue()
    token = tokengate.Token(
        login["access_token"], expires_in=0, refresh_token=login["refresh_token"]
    )
    oauth = tokengate.OAuth2.refresh_token(
        server.token_url, client_id=server.client_id, client_secret=secret_client
    )
    client = tokengate.Client(server.api_url, token=token, refresher=oauth)
    with pytest.raises(tokengate.RefreshFailed) as caught:  # invalid_client: the secret is wrong
        client.get("/x")
    assert caught.value.configuration
    secrets = [login["access_token"], login["refresh_token"], secret_client]
    texts = [
        str(caught.value),
        repr(caught.value),
        repr(token),
        repr(oauth),
        repr(client),
        repr(client.token()),
        repr(client.gate),
        repr(client.stats()),
    ]
    for text in texts:
        for secret in secrets:
            assert secret not in text, text


UNREADABLE_CHILD = """
import json, sys, tokengate
path = sys.argv[1]
out = {"readable": True}
try:
    open(path, "rb").close()
except OSError:
    out["readable"] = False
try:
    tokengate.FileStore(path).load()
except tokengate.StoreError as e:
    out.update(kind=e.kind, path=e.path, transient=e.transient, configuration=e.configuration)
print(json.dumps(out))
"""


def test_store_error_kind_for_a_token_file_this_user_may_not_read(tmp_path):
    path = tmp_path / "token.json"
    tokengate.FileStore(path).save(tokengate.Token("saved-access"))
    path.chmod(0o000)
    try:
        out = run_as_plain_user(UNREADABLE_CHILD, str(path))
    finally:
        path.chmod(0o600)
    assert not out["readable"], "the child could still read the file"
    assert (out.get("kind"), out.get("path"), out.get("transient"), out.get("configuration")) == (
        "permissions",
        str(path),
        False,
        True,
    ), out
    assert tokengate.FileStore(path).load().access_token == "saved-access"
