"""``make lab``: JupyterLab serves the jupytext notebooks as notebooks."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_make_lab_opens_percent_notebooks_as_notebooks(tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "lab.log"
    env = {**os.environ, "PORT": str(port), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    with open(log, "w") as out:
        proc = subprocess.Popen(["make", "-s", "lab"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        token = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and token is None:
            time.sleep(1)
            found = re.search(rf"127\.0\.0\.1:{port}/lab\?token=([0-9a-f]+)", log.read_text())
            token = found.group(1) if found else None
            assert proc.poll() is None, log.read_text()[-2000:]
        assert token, log.read_text()[-2000:]
        url = f"http://127.0.0.1:{port}/api/contents/notebooks/00_simulate.py?token={token}"
        model = json.load(urllib.request.urlopen(url, timeout=30))
        assert model["type"] == "notebook"
        sources = ["".join(c["source"]) for c in model["content"]["cells"]]
        assert any("simulate_fleet(" in src for src in sources)
        assert any(c["metadata"].get("tags") == ["parameters"] for c in model["content"]["cells"])
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
