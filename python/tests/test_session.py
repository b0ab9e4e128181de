"""Logging in and out: ``login()`` installs and saves a token, ``logout()`` revokes the refresh
token (RFC 7009) at the real test server, clears the store for every process, and leaves the
client in the login-required state; a revocation the server does not confirm still logs out."""

import pytest

import tokengate


def session(server, tmp_path):
    """A client on a token file, with the revocation endpoint, logged in with a fresh token."""
    store = tokengate.FileStore(tmp_path / "token.json")
    client = tokengate.Client(
        server.api_url,
        store=store,
        refresher=server.oauth2(revocation_url=server.revocation_url),
    )
    events = client.events()
    client.login(server.login())
    return client, store, events


def kinds(events, n):
    got = []
    for _ in range(n):
        event = events.get(timeout=10)
        assert event is not None, got
        got.append((event.kind, event.generation))
    return got


def test_logout_revokes_clears_the_store_and_login_brings_the_session_back(server, tmp_path):
    client, store, events = session(server, tmp_path)
    assert client.get("/x").status_code == 200
    refresh = store.load().refresh_token
    assert server.command(f"refresh-valid {refresh}")["valid"]

    client.logout()
    assert not server.command(f"refresh-valid {refresh}")["valid"], "revoked at the server"
    assert server.counters()["revocations"] == 1
    assert store.load() is None, "cleared for every process"
    calls = server.counters()["api_calls"]
    with pytest.raises(tokengate.LoginRequired):
        client.get("/x")
    assert server.counters()["api_calls"] == calls

    again = server.login()
    client.login(again)
    assert client.get("/x").status_code == 200
    assert store.load().access_token == again.access_token
    assert kinds(events, 3) == [("logged_in", 1), ("logged_out", 2), ("logged_in", 3)]


def test_a_revocation_the_server_does_not_confirm_still_logs_out(server, tmp_path):
    client, store, _ = session(server, tmp_path)
    server.command("revocation-unavailable on")
    with pytest.raises(tokengate.RevocationFailed) as caught:
        client.logout()
    assert caught.value.transient and caught.value.status == 503, caught.value
    assert client.token() is None
    counters = server.counters()
    assert (counters["revocation_requests"], counters["revocations"]) == (1, 0)
    assert store.load() is None
    assert client.gate.login_required
