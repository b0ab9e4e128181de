"""The client's request API, responses, ``reject_when`` in Python, events, stats, ``set_token`` and
the ``token()`` snapshot."""

from __future__ import annotations

import http.server
import subprocess
import sys
import textwrap
import threading

import pytest

import tokengate
from support import refresh_with_urllib


def test_requests_with_params_headers_json_data_and_responses(server):
    client = server.client()
    r = client.get("/items", params={"q": "a b", "tag": ["x", "y"], "skip": None})
    assert r.status_code == 200 and r.ok and r.reason == "OK"
    assert r.json() == {"ok": True, "method": "GET", "path": "/api/items?q=a+b&tag=x&tag=y", "body_len": 0}
    assert r.url == f"{server.api_url}/items?q=a+b&tag=x&tag=y"
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers.get_list("content-type") == ["application/json"]
    assert "content-type" in r.headers and "x-missing" not in r.headers
    assert r.headers.get("x-missing", "-") == "-"
    assert dict(r.headers)["content-type"] == "application/json"
    assert ("content-type", "application/json") in r.headers.multi_items()
    assert r.text == r.content.decode()

    assert client.post("/p", json={"k": [1, 2]}).json()["body_len"] == len('{"k": [1, 2]}')
    assert client.put("/p", data=b"\x00\x01\x02").json()["body_len"] == 3
    assert client.patch("/p", data={"a": "1", "b": "&"}).json()["body_len"] == len("a=1&b=%26")
    assert client.delete("/p").json()["method"] == "DELETE"
    assert client.head("/p").content == b""
    assert client.request("options", "/p").json()["method"] == "OPTIONS"
    assert client.get("/p", params=[("a", 1), ("a", 2)]).json()["path"] == "/api/p?a=1&a=2"
    c = server.counters()
    assert c["api_calls"] == c["api_ok"] == 8
    assert c["api_without_auth"] == 0


def test_the_token_goes_to_the_api_origin_only(server, server_factory):
    other = server_factory()
    client = server.client()
    assert client.get(f"{other.api_url}/echo-auth").json() == {"authorization": ""}
    assert client.get("/echo-auth").json()["authorization"].startswith("Bearer ")
    # A redirect from the API to another origin is followed without the token.
    r = client.get(f"{server.url}/redirect", params={"to": f"{other.api_url}/echo-auth"})
    assert r.json() == {"authorization": ""}
    assert r.url == f"{other.api_url}/echo-auth"


def test_a_401_is_refreshed_and_replayed_once(server):
    client = server.client()
    assert client.get("/warm-up").status_code == 200
    server.command("revoke-all")
    assert client.get("/x").status_code == 200
    c = server.counters()
    assert (c["refreshes"], c["api_rejected"]) == (1, 1)
    assert client.stats().replays == 1
    server.command("reject-all on")
    assert client.get("/y").status_code == 401, "a rejection of a fresh token is returned, not looped"


@pytest.mark.server("--body-mode")
def test_reject_when_in_python_sees_the_response(server):
    seen = []

    def expired(response):
        seen.append((response.status_code, response.headers["content-type"], response.url))
        return response.json().get("ret") == 401

    client = server.client(reject_when=expired)
    assert client.get("/a").json()["ok"] is True
    server.command("revoke-all")
    r = client.get("/b")
    assert r.status_code == 200 and r.json()["ok"] is True, "refreshed and replayed"
    c = server.counters()
    assert (c["refreshes"], c["api_rejected"]) == (1, 1)
    assert client.stats().replays == 1
    assert seen[1] == (200, "application/json", f"{server.api_url}/b")
    assert len(seen) == 3


@pytest.mark.server("--body-mode")
def test_without_reject_when_a_body_rejection_is_just_a_response(server):
    client = server.client()
    server.command("revoke-all")
    assert client.get("/b").json()["ret"] == 401
    assert server.counters()["refreshes"] == 0


@pytest.mark.server("--body-mode")
def test_a_raising_reject_when_raises_from_the_request_and_logs_nobody_out(server):
    def broken(response):
        raise LookupError("predicate bug")

    client = server.client(reject_when=broken)
    with pytest.raises(LookupError, match="predicate bug"):
        client.get("/a")
    assert not client.gate.login_required
    assert server.counters()["refresh_attempts"] == 0
    # The error does not leak into the next request on this thread (another client, same thread).
    assert server.client().get("/b").status_code == 200


def test_events_token_snapshot_stats_and_set_token(server):
    client = server.client(token=server.login(expired=True))
    events = client.events()
    assert len(events) == 0 and events.get(timeout=0) is None
    assert client.get("/x").status_code == 200
    refreshed = events.get(timeout=5)
    assert refreshed.kind == "refreshed"
    assert refreshed.generation == 2 and refreshed.reactive is False
    assert refreshed.took >= 0 and refreshed.expires_in > 0

    snapshot = client.token()
    assert server.command(f"valid {snapshot.access_token}")["valid"]
    assert snapshot.refresh_token and snapshot.token_type == "Bearer"
    assert snapshot.access_token not in repr(snapshot)
    assert snapshot.refresh_token not in repr(snapshot)
    assert 0 < snapshot.expires_in <= 3600 and not snapshot.is_expired

    stats = client.stats()
    assert stats.refreshes == 1 and stats.as_dict()["refreshes"] == 1

    login = server.login()
    client.set_token(login)
    assert client.token().access_token == login.access_token
    token_set = events.get(timeout=5)
    assert token_set.kind == "token_set" and token_set.generation == 3
    assert client.get("/y").status_code == 200
    assert server.counters()["refreshes"] == 1


def test_events_iterate_until_the_gate_is_gone(server):
    client = server.client(token=server.login(expired=True))
    events = client.events()
    client.get("/x")
    client.set_token(server.login())
    del client
    assert [e.kind for e in events] == ["refreshed", "token_set"]


def test_a_gate_shared_by_two_clients_refreshes_once(server, server_factory):
    gate = tokengate.Gate(token=server.login(expired=True), refresher=server.oauth2())
    a = tokengate.Client(server.api_url, gate=gate)
    b = tokengate.Client(f"{server.url}/api/v2", gate=gate)
    assert a.get("/x").status_code == 200
    assert b.get("/y").status_code == 200
    assert server.counters()["refreshes"] == 1
    assert a.stats().refreshes == b.stats().refreshes == 1


def test_a_client_credentials_client_starts_from_nothing(server):
    oauth = tokengate.OAuth2.client_credentials(
        server.token_url, client_id=server.client_id, client_secret=server.client_secret
    )
    client = tokengate.Client(server.api_url, refresher=oauth)
    assert client.token() is None
    assert client.get("/x").status_code == 200
    assert server.counters()["client_credentials"] == 1


def test_a_refresher_may_return_a_token(server):
    def refresher(current):
        answer = refresh_with_urllib(server, current)
        return tokengate.Token(
            answer["access_token"], expires_in=60, refresh_token=answer["refresh_token"]
        )

    client = server.client(token=server.login(expired=True), refresher=refresher)
    assert client.get("/x").status_code == 200
    assert 55 < client.token().expires_in <= 60


def test_dropping_a_client_whose_background_refresher_runs_python_does_not_deadlock(server):
    # In a child process with a deadline: a deadlock here would hold the GIL and could not be
    # turned into a failure from inside the same interpreter.
    script = textwrap.dedent(
        f"""
        import gc, json, threading, urllib.parse, urllib.request
        import tokengate

        entered, release = threading.Event(), threading.Event()

        def refresher(current):
            entered.set()
            release.wait(timeout=30)  # waits with the GIL released
            form = urllib.parse.urlencode({{"grant_type": "refresh_token",
                "refresh_token": current.refresh_token, "client_id": "{server.client_id}",
                "client_secret": "{server.client_secret}"}}).encode()
            with urllib.request.urlopen("{server.token_url}", data=form, timeout=10) as r:
                return json.load(r)

        login = {server.issue()!r}
        client = tokengate.Client("{server.api_url}", refresher=refresher, background_refresh=True,
            token=tokengate.Token(login["access_token"], expires_in=0,
                                  refresh_token=login["refresh_token"]))
        assert entered.wait(timeout=30), "the background refresher started"
        threading.Timer(0.3, release.set).start()
        del client  # joins the background thread, which needs the GIL to finish the refresher
        gc.collect()
        print("dropped")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "dropped"
    assert server.counters()["refreshes"] == 1


class _RepeatedHeaders(http.server.BaseHTTPRequestHandler):
    """Answers every GET with two Set-Cookie headers, a Latin-1 header value and a Latin-1 body."""

    def do_GET(self):
        body = "café".encode("latin-1")
        self.send_response(200)
        self.send_header("Set-Cookie", "a=1")
        self.send_header("Set-Cookie", "b=2")
        self.send_header("X-Seen-Auth", self.headers.get("Authorization", ""))
        self.send_header("Content-Type", "text/plain; charset=latin-1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_every_header_value_and_the_charset_of_the_body():
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RepeatedHeaders) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            client = tokengate.Client(
                f"http://127.0.0.1:{httpd.server_address[1]}", token=tokengate.Token("tok")
            )
            r = client.get("/")
        finally:
            httpd.shutdown()
    assert r.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert r.headers["Set-Cookie"] == "a=1, b=2"
    assert [v for k, v in r.headers.multi_items() if k == "set-cookie"] == ["a=1", "b=2"]
    assert list(r.headers).count("set-cookie") == 1
    assert r.headers["x-seen-auth"] == "Bearer tok"
    assert r.content == "café".encode("latin-1")
    assert r.text == "café"


def test_max_response_body_bounds_what_is_read(server):
    client = server.client(max_response_body=1000)
    assert len(client.get("/big", params={"bytes": 1000}).content) == 1000
    with pytest.raises(tokengate.TransportError):
        client.get("/big", params={"bytes": 1001})
