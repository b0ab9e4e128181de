"""The ``requests`` and ``httpx`` adapters: threads over expiries with rotating refresh tokens, one
replay after a rejection, origin scoping, and errors from the gate."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter

import httpx
import pytest
import requests

import tokengate
import tokengate.httpx
import tokengate.requests
from support import run_threads

LIFETIME = 1.0
RUN_FOR = 3.0
THREADS = 8


def gate_for(server, **kwargs):
    kwargs.setdefault("token", server.login())
    return tokengate.Gate(refresher=server.oauth2(), **kwargs)


def check_expiry_run(server, statuses, elapsed, gate, replays):
    c = server.counters()
    assert set(statuses) == {200}, statuses
    assert c["invalid_grant"] == 0 and c["reuse_detected"] == 0, c
    assert c["max_concurrent_refreshes"] == 1, c
    assert gate.stats().refreshes == c["refreshes"], (gate.stats(), c)
    expiries = math.ceil(elapsed / (LIFETIME * 0.8))
    assert 3 <= c["refreshes"] <= expiries + 1 + c["api_rejected"], (c, elapsed)
    assert replays == c["api_rejected"], (replays, c)
    assert c["api_calls"] == sum(statuses.values()) + replays, (statuses, c)


@pytest.mark.server("--token-lifetime", "1s")
def test_requests_session_shared_by_threads_over_expiries(server):
    gate = gate_for(server)
    auth = tokengate.requests.TokenAuth(gate, server.api_url)
    session = requests.Session()
    session.auth = auth
    started = time.monotonic()

    def work(i):
        statuses = Counter()
        while time.monotonic() - started < RUN_FOR:
            statuses[session.get(f"{server.api_url}/item/{i}", timeout=30).status_code] += 1
        return statuses

    statuses = sum(run_threads(THREADS, work), Counter())
    check_expiry_run(server, statuses, time.monotonic() - started, gate, auth.replays)


def test_requests_rejection_is_refreshed_once_and_replayed_with_its_body(server):
    auth = tokengate.requests.TokenAuth(gate_for(server), server.api_url)
    session = requests.Session()
    session.auth = auth
    assert session.get(f"{server.api_url}/warm-up").status_code == 200
    server.command("revoke-all")
    statuses = run_threads(
        THREADS,
        lambda i: session.post(f"{server.api_url}/item/{i}", data=b"x" * i, timeout=30).json(),
    )
    assert [s["body_len"] for s in statuses] == list(range(THREADS)), "replays sent the body again"
    c = server.counters()
    assert c["refreshes"] == 1, "one refresh for every rejection"
    assert c["api_ok"] == THREADS + 1
    assert auth.replays == c["api_rejected"] >= 1

    server.command("reject-all on")
    r = session.get(f"{server.api_url}/again", timeout=30)
    assert r.status_code == 401, "a fresh token's rejection is returned, not looped"
    assert len(r.history) <= 1


def test_requests_token_goes_to_the_api_origin_only(server, server_factory):
    other = server_factory()
    session = requests.Session()
    session.auth = tokengate.requests.TokenAuth(server.client())  # a Client: its gate and base URL
    assert session.get(f"{other.api_url}/echo-auth", timeout=30).json() == {"authorization": ""}
    assert session.get(f"{server.api_url}/echo-auth", timeout=30).json()["authorization"]
    r = session.get(f"{server.url}/redirect", params={"to": f"{other.api_url}/echo-auth"}, timeout=30)
    assert r.json() == {"authorization": ""}, "requests drops the header on a cross-host redirect"
    assert other.counters()["api_without_auth"] == 2


@pytest.mark.server("--body-mode")
def test_requests_reject_when_for_body_rejections(server):
    auth = tokengate.requests.TokenAuth(
        gate_for(server), server.api_url, reject_when=lambda r: r.json().get("ret") == 401
    )
    session = requests.Session()
    session.auth = auth
    server.command("revoke-all")
    assert session.get(f"{server.api_url}/x", timeout=30).json()["ok"] is True
    assert (server.counters()["refreshes"], auth.replays) == (1, 1)


def test_requests_login_required_is_raised(server):
    gate = gate_for(server, token=server.login(expired=True))
    session = requests.Session()
    session.auth = tokengate.requests.TokenAuth(gate, server.api_url)
    server.command("revoke-refresh-tokens")
    with pytest.raises(tokengate.LoginRequired):
        session.get(f"{server.api_url}/x", timeout=30)
    assert server.counters()["api_calls"] == 0


@pytest.mark.server("--token-lifetime", "1s")
def test_httpx_client_shared_by_threads_over_expiries(server):
    gate = gate_for(server)
    auth = tokengate.httpx.TokenAuth(gate, server.api_url)
    started = time.monotonic()
    with httpx.Client(auth=auth, timeout=30) as http:

        def work(i):
            statuses = Counter()
            while time.monotonic() - started < RUN_FOR:
                statuses[http.get(f"{server.api_url}/item/{i}").status_code] += 1
            return statuses

        statuses = sum(run_threads(THREADS, work), Counter())
    check_expiry_run(server, statuses, time.monotonic() - started, gate, auth.replays)


def test_httpx_rejection_replay_origin_scoping_and_async(server, server_factory):
    other = server_factory()
    gate = gate_for(server)
    auth = tokengate.httpx.TokenAuth(gate, server.api_url)
    with httpx.Client(auth=auth, timeout=30) as http:
        assert http.get(f"{other.api_url}/echo-auth").json() == {"authorization": ""}
        server.command("revoke-all")
        r = http.post(f"{server.api_url}/x", content=b"abc")
        assert r.status_code == 200 and r.json()["body_len"] == 3
        assert len(r.history) == 1 and r.history[0].status_code == 401
    assert (server.counters()["refreshes"], auth.replays) == (1, 1)

    async def in_a_loop():
        async with httpx.AsyncClient(auth=auth, timeout=30) as http:
            server.command("revoke-all")
            answers = await asyncio.gather(*(http.get(f"{server.api_url}/a/{i}") for i in range(4)))
            return [a.status_code for a in answers]

    assert asyncio.run(in_a_loop()) == [200] * 4
    assert server.counters()["refreshes"] == 2, "one more refresh for the async rejections"
