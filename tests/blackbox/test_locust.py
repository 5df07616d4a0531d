"""loadtest/locustfile.py run headless by the real `locust` against a real node: load with zero failures."""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.nodes import REPO

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
    for command in ("GET", "SET", "INCR", "MGET", "MSET"):
        assert int(rows[command]["Request Count"]) > 0, report
    assert not any("(check)" in name for name in rows), report
    assert done.returncode == 0, report
    with node.client() as r:
        assert r.dbsize() > 0
