"""The lint (ruff) and type (mypy) checks the repo's config asks for, as part of the suite (CI runs `make test`).

mypy checks what pyproject.toml's [tool.mypy] lists: the modules compiled with mypyc
must type-check, since mypyc compiles from their types.
"""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    done = run("ruff", "check", "--output-format", "concise", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_finds_nothing():
    done = run("mypy")
    assert done.returncode == 0, done.stdout + done.stderr
