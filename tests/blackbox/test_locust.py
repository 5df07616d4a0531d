"""loadtest/locustfile.py run headless by the real `locust` against a real node: load with zero failures."""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.nodes import REPO, wait_until

# The venv's own locust first: `make test` runs the venv's python without the venv on PATH.
_BESIDE_PYTHON = Path(sys.executable).parent / "locust"
LOCUST = str(_BESIDE_PYTHON) if _BESIDE_PYTHON.exists() else shutil.which("locust")


def test_locust_headless_run_has_no_failures(node, tmp_path: Path):
    if LOCUST is None:
        if os.environ.get("CI"):
            pytest.fail("locust is required in CI")
        pytest.skip("locust is not installed")
    prefix = tmp_path / "run"
    done = subprocess.run(
        [LOCUST, "-f", str(REPO / "loadtest" / "locustfile.py"), "--headless", "-u", "5", "-r", "5",
         "-t", "5s", "--host", f"redis://127.0.0.1:{node.port}", "--csv", str(prefix), "--only-summary",
         "--stop-timeout", "5", "--loglevel", "WARNING"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")))
    report = f"exit {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    with open(f"{prefix}_stats.csv", newline="") as stats_file:
        rows = {row["Name"]: row for row in csv.DictReader(stats_file)}
    total = rows["Aggregated"]
    assert int(total["Request Count"]) > 100, report
    assert int(total["Failure Count"]) == 0, report + Path(f"{prefix}_failures.csv").read_text()
    for command in ("GET", "SET", "INCR", "MGET", "MSET", "HGETALL", "HSET", "ZINCRBY", "ZREVRANGE",
                    "GET verify", "SET verify", "INCR verify"):
        assert int(rows[command]["Request Count"]) > 0, report
    assert not any("(check)" in name for name in rows), report
    assert done.returncode == 0, report
    with node.client() as r:
        assert r.dbsize() > 0


def test_the_verifying_user_sees_lost_data(node, tmp_path: Path):
    """FLUSHALL under the verifier's feet: its reads must report the acknowledged values as lost."""
    if LOCUST is None:
        if os.environ.get("CI"):
            pytest.fail("locust is required in CI")
        pytest.skip("locust is not installed")
    prefix = tmp_path / "run"
    locust = subprocess.Popen(
        [LOCUST, "-f", str(REPO / "loadtest" / "locustfile.py"), "--headless", "-u", "2", "-r", "2",
         "-t", "6s", "--host", f"redis://127.0.0.1:{node.port}", "--csv", str(prefix), "--only-summary",
         "--stop-timeout", "5", "--loglevel", "WARNING", "VerifyingUser"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")))
    try:
        with node.client() as r:
            # once the verifier has written, take its data away (a node that lost it)
            wait_until(lambda: r.dbsize() > 20, timeout=30, message="the verifier writing")
            r.flushall()
        stdout, stderr = locust.communicate(timeout=120)
    finally:
        if locust.poll() is None:
            locust.kill()
    with open(f"{prefix}_stats.csv", newline="") as stats_file:
        rows = {row["Name"]: row for row in csv.DictReader(stats_file)}
    failures = Path(f"{prefix}_failures.csv").read_text()
    assert int(rows["GET verify (check)"]["Failure Count"]) > 0, failures + stdout[-2000:] + stderr[-2000:]
    assert "(lost)" in failures
    assert int(rows["INCR verify (check)"]["Failure Count"]) > 0, failures
