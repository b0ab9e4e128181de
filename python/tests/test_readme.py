"""The README's threaded example, run as it is written there."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_threaded_example_runs(testserver_program):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = blocks[0]
    assert "threading.Thread" in example, "the first Python block is the threaded example"
    done = subprocess.run(
        [sys.executable, "-c", example],
        env={**os.environ, "TOKENGATE_TESTSERVER": testserver_program},
        cwd=README.parents[1],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    summary = re.search(
        r"(\d+) requests, (\d+) refreshes, 0 invalid_grant, 0 failures", done.stdout
    )
    assert summary, done.stdout
    requests, refreshes = map(int, summary.groups())
    assert 3 <= refreshes <= 6 and requests > 100 * refreshes, done.stdout
