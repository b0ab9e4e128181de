"""A FileStore shared by this process and a second Python process, and a restarted process that
uses the saved token."""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import tokengate

WORKER = Path(__file__).with_name("store_worker.py")
#: Token lifetime (the server's ``--token-lifetime``) and how long both processes run.
LIFETIME = 1.0
RUN_FOR = 3.5
THREADS = 8


@pytest.mark.server("--token-lifetime", "1s")
def test_two_processes_share_one_token_file_with_one_refresh_per_expiry(server, tmp_path):
    path = tmp_path / "token.json"
    tokengate.FileStore(path).save(server.login())
    started = time.monotonic()
    until = time.time() + RUN_FOR
    child = subprocess.Popen(
        [
            sys.executable,
            str(WORKER),
            server.api_url,
            server.token_url,
            server.client_id,
            server.client_secret,
            str(path),
            str(THREADS),
            str(until),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        here = run_here(server, path, until)
        out, err = child.communicate(timeout=RUN_FOR + 60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    there = json.loads(out)
    elapsed = time.monotonic() - started
    c = server.counters()

    for side in (here, there):
        assert side["failed"] == 0 and side["ok"] > 0, (here, there)
        assert side["store_errors"] == 0, (here, there)
    assert c["invalid_grant"] == 0, c
    assert c["reuse_detected"] == 0, c
    assert c["max_concurrent_refreshes"] == 1, c
    assert here["refreshes"] + there["refreshes"] == c["refreshes"], (
        "every server refresh was done by exactly one process",
        here,
        there,
        c,
    )
    # One refresh per expiry between both processes (a 1 s token is renewed 0.8 s into its
    # lifetime), plus one for boundary timing; two processes refreshing on their own would do
    # about twice that.
    expiries = math.ceil(elapsed / (LIFETIME * 0.8))
    assert 3 <= c["refreshes"] <= expiries + 1, (c, elapsed)
    assert here["adopted"] + there["adopted"] >= 1, ("the processes took each other's tokens", here, there)


def run_here(server, path, until):
    client = tokengate.Client(
        server.api_url, store=tokengate.FileStore(path), refresher=server.oauth2()
    )
    counts = {"ok": 0, "failed": 0}
    lock = threading.Lock()

    def work():
        while time.time() < until:
            try:
                good = client.get("/item").status_code == 200
            except tokengate.TokengateError:
                good = False
            with lock:
                counts["ok" if good else "failed"] += 1

    threads = [threading.Thread(target=work, daemon=True) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=RUN_FOR + 60)
        assert not t.is_alive(), "a thread hung"
    stats = client.stats()
    counts.update(refreshes=stats.refreshes, adopted=stats.adopted, store_errors=stats.store_errors)
    return counts


def test_a_restarted_process_uses_the_saved_token(server, tmp_path):
    path = tmp_path / "token.json"
    first = tokengate.Client(server.api_url, store=path, refresher=server.oauth2())
    assert first.token() is None, "nothing saved yet"
    with pytest.raises(tokengate.LoginRequired):
        first.get("/x")
    first.set_token(server.login(expired=True))  # a login: saved
    assert first.get("/x").status_code == 200  # refreshed: saved again
    assert server.counters()["refreshes"] == 1
    del first

    saved = tokengate.FileStore(path).load()
    assert server.command(f"valid {saved.access_token}")["valid"]
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    second = tokengate.Client(server.api_url, store=tokengate.FileStore(path), refresher=server.oauth2())
    assert second.token().access_token == saved.access_token
    assert second.get("/x").status_code == 200
    assert server.counters()["refreshes"] == 1, "the next run used the saved token"
