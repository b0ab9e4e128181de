"""The loopback test server (the ``tokengate-testserver`` program) as a pytest fixture.

The program is found through ``$TOKENGATE_TESTSERVER``; without it, it is built with cargo from this
repository (``cargo build -p tokengate-testserver``) once per session. Each test gets a server of
its own on 127.0.0.1, started with the flags the test asks for (``@pytest.mark.server(...)`` or
``server_factory(...)``), and stopped when the test ends. Every read from the program has a
deadline, so a stuck server fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Callable, Iterator, List

import pytest

from support import TestServer

REPO = Path(__file__).resolve().parents[2]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "server(*flags): command-line flags for the test server")


@pytest.fixture(scope="session")
def testserver_program() -> str:
    program = os.environ.get("TOKENGATE_TESTSERVER")
    if program:
        if not Path(program).is_file():
            pytest.fail(f"TOKENGATE_TESTSERVER={program} does not exist")
        return program
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "tokengate-testserver", "--bin", "tokengate-testserver"],
        cwd=REPO,
        check=True,
        timeout=600,
    )
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return str(Path(json.loads(meta.stdout)["target_directory"]) / "debug" / "tokengate-testserver")


@pytest.fixture
def server_factory(testserver_program: str) -> Iterator[Callable[..., TestServer]]:
    started: List[TestServer] = []

    def start(*flags: str) -> TestServer:
        s = TestServer(testserver_program, list(flags))
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def server(request: pytest.FixtureRequest, server_factory: Callable[..., TestServer]) -> TestServer:
    marker = request.node.get_closest_marker("server")
    return server_factory(*(marker.args if marker else ()))
