"""What can be checked of the Docker files without a Docker engine: the compose entrypoints as sh runs
them (a container with two addresses), the image's health check against a real node, a non-root
user, and dependencies pinned for every runtime requirement."""
from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.nodes import REPO

COMPOSE = REPO / "docker-compose.scalable.yml"
DOCKERFILE = REPO / "Dockerfile"


def _entrypoints() -> list[str]:
    """The `sh -c` command of every service, after compose's own $$ -> $ interpolation."""
    commands = re.findall(r'entrypoint: \["sh", "-c", "((?:[^"\\]|\\.)*)"\]', COMPOSE.read_text())
    return [json.loads(f'"{command}"').replace("$$", "$") for command in commands]


def test_compose_announces_one_address_when_a_container_has_two(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "hostname").write_text("#!/bin/sh\necho '172.18.0.5 fd00:dead::5'\n")
    (bin_dir / "hypercache").write_text(
        f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -c 'import json, sys; print(json.dumps(sys.argv[1:]))' \"$@\"\n")
    for script in bin_dir.iterdir():
        script.chmod(0o755)
    commands = _entrypoints()
    assert len(commands) == 2, commands        # the seed's and the workers'
    for command in commands:
        done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=10,
                              env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == ["--announce-host", "172.18.0.5"], done.stdout


def _healthcheck() -> list[str]:
    line = next(line for line in DOCKERFILE.read_text().splitlines() if line.startswith("HEALTHCHECK"))
    return json.loads(line[line.index("CMD") + 3:].strip())


def test_the_image_health_check_passes_on_a_serving_node_and_fails_without_one(node_factory) -> None:
    command = _healthcheck()
    assert command[0] == "python"
    node = node_factory.start(http=True)
    env = {**os.environ, "HYPERCACHE_HTTP_PORT": str(node.http_port)}
    assert subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=30).returncode == 0
    node.stop()
    assert subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=30).returncode != 0


def test_the_image_runs_as_a_user_with_pinned_dependencies() -> None:
    text = DOCKERFILE.read_text()
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert "-c requirements.lock" in text
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    required = [re.match(r"[A-Za-z0-9_.\-]+", line).group(0)
                for line in setup["options"]["install_requires"].split() if re.match(r"[A-Za-z]", line)]
    pinned = {line.split("==")[0].lower().replace("_", "-") for line in (REPO / "requirements.lock").read_text().splitlines()
              if "==" in line and not line.startswith("#")}
    missing = [name for name in required if name.lower().replace("_", "-") not in pinned]
    assert not missing, f"install_requires not pinned in requirements.lock: {missing}"
