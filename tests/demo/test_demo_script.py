"""`make demo` (scripts/demo.sh) as a new user runs it: SQLite and a real Celery worker on the
broker made of files (no Redis), so a filter job started through the API runs on the worker and
shows its progress while it runs; Ctrl-C stops the web server and the worker, leaving nothing."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "demo-pass-123"  # annotation/management/commands/demo.py


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes_of(var_dir: Path) -> list[int]:
    """Processes started for this demo: they carry its VAR_DIR in their environment."""
    marker = f"VAR_DIR={var_dir}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environ:
            found.append(int(proc.name))
    return found


def wait_until_served(url: str, script: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert script.poll() is None, f"the demo ended early:\n{log.read_text()[-3000:]}"
        try:
            requests.get(url, timeout=5)
            return
        except requests.ConnectionError:
            time.sleep(0.5)
    pytest.fail(f"the demo did not serve {url} in {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def demo(tmp_path):
    """The demo script started as `make demo` starts it, on a free port and its own var/."""
    var_dir, log = tmp_path / "var", tmp_path / "demo.log"
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "LANG": "C.UTF-8",
        "PY": sys.executable,
        "VAR_DIR": str(var_dir),
        "PORT": str(port),
    }
    with log.open("wb") as out:
        script = subprocess.Popen(["bash", "scripts/demo.sh"], cwd=ROOT, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_served(f"{base}/accounts/login/", script, log, timeout=300)
        yield {"script": script, "base": base, "var_dir": var_dir, "log": log}
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
        for pid in processes_of(var_dir):  # only what this test started
            os.kill(pid, signal.SIGKILL)


def test_make_demo_runs_the_script():
    # As a user types it: not as a sub-make of `make test` (whose make[1] lines would mix in).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    plan = subprocess.run(["make", "--no-print-directory", "-n", "demo"], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True).stdout
    # The script (tested below) is what `make demo` runs, after installing the package.
    assert plan.splitlines()[-1].endswith("bash scripts/demo.sh"), plan


@pytest.mark.slow
def test_demo_runs_jobs_on_a_worker_and_stops_cleanly(demo):
    base, var_dir, log = demo["base"], demo["var_dir"], demo["log"]
    login = requests.get(f"{base}/accounts/login/", timeout=10)
    assert login.status_code == 200 and 'name="password"' in login.text
    started = re.search(r"demo: worker pid (\d+), web server pid (\d+)", log.read_text())
    assert started, log.read_text()[-3000:]
    worker_pid, web_pid = int(started[1]), int(started[2])

    api = requests.Session()
    token = api.post(f"{base}/api/auth/token/",
                     json={"username": "cora", "password": PASSWORD}, timeout=30)
    assert token.status_code == 200, token.text
    api.headers["Authorization"] = f"Token {token.json()['token']}"

    # The sample the demo ships, imported on the worker (an import never runs in a request).
    manifest = var_dir / "imports" / "sample-portraits" / "labels.csv"
    imported = api.post(f"{base}/api/sources/", json={
        "kind": "manifest", "path": str(manifest), "name": "sample", "scale": [1, 10]},
        timeout=60)
    assert imported.status_code == 201, imported.text
    assert imported.json()["status"] == "done" and imported.json()["created"] > 1

    # One image a chunk: one task message each through the broker's folder.
    created = api.post(f"{base}/api/jobs/", json={
        "source": imported.json()["source"]["id"],
        "config": {"chunk_size": 1, "clip": {"enabled": False}}}, timeout=30)
    assert created.status_code == 201, created.text
    seen = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job = api.get(f"{base}/api/jobs/{created.json()['id']}/", timeout=30).json()
        seen.append((job["status"], job["decided"], job["total"]))
        if job["status"] in {"done", "failed", "cancelled"}:
            break
        time.sleep(0.2)
    assert seen[-1][0] == "done", (seen[-1], log.read_text()[-3000:])
    assert seen[-1][1] == seen[-1][2] > 1
    assert any(s == "running" and 0 < d < t for s, d, t in seen), seen

    # Ctrl-C reaches the script (the servers run in their own sessions): it stops both.
    os.kill(demo["script"].pid, signal.SIGINT)
    assert demo["script"].wait(timeout=90) != 0
    assert "demo stopped" in log.read_text()
    for pid in (worker_pid, web_pid):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert processes_of(var_dir) == []
