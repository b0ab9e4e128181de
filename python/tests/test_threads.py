"""Many Python threads on one client over several expiries of rotating refresh tokens, and the GIL:
threads waiting on the network or on another thread's refresh let the others run."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter

import pytest

from support import refresh_with_urllib, run_threads

#: Token lifetime in the expiry runs (the server's ``--token-lifetime``).
LIFETIME = 1.0
#: How long the expiry runs last: about three and a half token lifetimes.
RUN_FOR = 3.5
#: Threads in the GIL tests, and the token endpoint's latency there.
GIL_THREADS = 8
GIL_LATENCY = 0.8


@pytest.mark.parametrize("threads", [8, 32])
@pytest.mark.server("--token-lifetime", "1s")
def test_threads_over_expiries_refresh_once_per_expiry_with_rotating_tokens(server, threads):
    client = server.client()
    started = time.monotonic()

    def work(i):
        statuses = Counter()
        while time.monotonic() - started < RUN_FOR:
            statuses[client.get(f"/item/{i}").status_code] += 1
        return statuses

    statuses = sum(run_threads(threads, work), Counter())
    elapsed = time.monotonic() - started
    c = server.counters()
    stats = client.stats()

    requests = sum(statuses.values())
    assert set(statuses) == {200}, f"every request succeeded: {statuses}"
    assert c["invalid_grant"] == 0, c
    assert c["reuse_detected"] == 0, c
    assert c["max_concurrent_refreshes"] == 1, c
    assert stats.refresh_failures == 0, stats
    assert stats.refreshes == c["refreshes"], (stats, c)
    # A 1 s token is refreshed in the background once its advisory window (the last fifth of its
    # lifetime) opens: one refresh per 0.8 s, plus one for boundary timing. A request that reaches
    # the server just after a token's server-side expiry is rejected, replayed (every status above
    # is 200) and may add one reactive refresh.
    expiries = math.ceil(elapsed / (LIFETIME * 0.8))
    assert 3 <= c["refreshes"] <= expiries + 1 + c["api_rejected"], (c, elapsed)
    assert c["api_calls"] == requests + stats.replays, (c, stats)
    assert requests >= 20 * c["refreshes"], f"not once per request: {requests} requests, {c}"


@pytest.mark.server("--token-latency", f"{int(GIL_LATENCY * 1000)}ms")
def test_threads_waiting_on_the_network_run_in_parallel_not_in_turn(server):
    # Each client must refresh before its first request: that request waits GIL_LATENCY on the
    # token endpoint. Holding the GIL through that wait would serialise the threads.
    def clients():
        return [server.client(token=server.login(expired=True)) for _ in range(GIL_THREADS)]

    def one(client):
        t0 = time.monotonic()
        assert client.get("/x").status_code == 200
        return time.monotonic() - t0

    serial_clients = clients()
    t0 = time.monotonic()
    serial_each = [one(c) for c in serial_clients]
    serial = time.monotonic() - t0
    server.command("reset-counters")

    parallel_clients = clients()
    t0 = time.monotonic()
    parallel_each = run_threads(GIL_THREADS, lambda i: one(parallel_clients[i]))
    parallel = time.monotonic() - t0

    c = server.counters()
    assert c["refreshes"] == GIL_THREADS, c
    assert c["max_concurrent_refreshes"] == GIL_THREADS, f"all refreshes were in flight at once: {c}"
    slowest = max(parallel_each)
    # Ideally parallel == slowest == serial / 8; the factors leave room for a loaded machine.
    assert parallel < serial / 3, (parallel, serial, serial_each)
    assert parallel < 2 * slowest + sum(serial_each) / GIL_THREADS, (parallel, parallel_each)


def test_threads_waiting_for_a_python_refresher_release_the_gil(server):
    # One shared client, an expired token and a Python refresher that takes a while: one thread
    # runs the refresher, the other seven wait on the gate. The refresher needs the GIL to
    # finish, so a waiting thread that kept it would stall the refresh until refresh_timeout.
    calls = []

    def refresher(current):
        calls.append(threading.get_ident())
        time.sleep(0.3)
        return refresh_with_urllib(server, current)

    client = server.client(
        token=server.login(expired=True), refresher=refresher, refresh_timeout=10
    )
    statuses = run_threads(GIL_THREADS, lambda i: client.get(f"/item/{i}").status_code)
    assert statuses == [200] * GIL_THREADS
    assert len(calls) == 1, "one refresh for every thread"
    stats = client.stats()
    assert stats.refreshes == 1 and stats.waits >= 1, stats
    assert server.counters()["refreshes"] == 1
