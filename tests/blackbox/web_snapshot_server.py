"""Serves the status UI over a snapshot re-read from a JSON file on every request, so a test can change the cluster under a live page.

Usage: python web_snapshot_server.py SNAPSHOT.json READY_FILE
Writes the chosen HTTP port to READY_FILE (atomically) once serving.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from web import serve
from web.snapshot import Snapshot


def main(argv: list[str]) -> None:
    snapshot_path, ready_path = Path(argv[1]), Path(argv[2])

    def snapshot() -> Snapshot:
        # Re-read every time: the test rewrites the file (atomically) to flip states.
        return json.loads(snapshot_path.read_text())

    server = serve(snapshot, "127.0.0.1", 0)
    partial = ready_path.with_suffix(".partial")
    partial.write_text(str(server.server_port))
    os.replace(partial, ready_path)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv)
