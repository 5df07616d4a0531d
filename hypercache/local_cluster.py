"""`make run`: a cluster of nodes on loopback, one process each, where a node that exits stays down and the rest run on.

honcho (and foreman) stop every process when one exits, which hid the very failure the
status page is there to show. This supervisor only starts, prefixes output and stops:

    python -m hypercache.local_cluster [--nodes 3] [--port 8080] [--http-port 9080] [-- FLAGS]
        run node 0 .. nodes-1 (RESP port+i, HTTP http-port+i, mesh port+i+10000); Ctrl-C stops all
    python -m hypercache.local_cluster --node N [same options]
        run node N in the foreground: bring back a stopped node, or add node 3, 4, ...
    python -m hypercache.local_cluster --stop N | --kill N [same options]
        SIGTERM (a graceful leave) or SIGKILL (a crash) to node N, found by its pid file

Node N keeps its id in DIR/<its RESP port>/ (--dir, default .hypercache), so a node started
again comes back as the same member; every node but a first-time node 0 joins all the others.
"""
from __future__ import annotations

# (a plain process that supervises nodes, with no gevent hub of its own: its time.sleep
# blocks nothing but its own polling loop)
import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import compiled

MESH_OFFSET = 10000
STOP_GRACE_S = 30.0     # a node's graceful leave waits up to --leave-timeout-ms (10 s) for the new map


def node_argv(index: int, nodes: int, port: int, http_port: int, data_root: Path,
              others_running: bool, extra: list[str]) -> list[str]:
    """The hypercache flags of node `index` in a cluster of node 0 .. max(nodes, index+1)-1.

    Node 0 founds the cluster when no other node runs (`make run`, or the first `make node`);
    any other start joins every other node's mesh port, so it finds the cluster whichever
    of them is up. (Node 0 joining on every restart made a whole-cluster restart wait for
    ever: each node waited to join the others.)
    """
    argv = ["--port", str(port + index), "--http-port", str(http_port + index),
            "--data-dir", str(data_dir(data_root, port, index))]
    if index or others_running:
        others = [i for i in range(max(nodes, index + 1)) if i != index]
        argv += ["--join", *(f"127.0.0.1:{port + i + MESH_OFFSET}" for i in others)]
    return argv + extra


def others_running(index: int, nodes: int, port: int) -> bool:
    """Does another node of this local cluster listen on its mesh port now?"""
    for other in range(max(nodes, index + 1)):
        if other == index:
            continue
        try:
            with socket.create_connection(("127.0.0.1", port + other + MESH_OFFSET), timeout=0.5):
                return True
        except OSError:
            continue
    return False


def data_dir(data_root: Path, port: int, index: int) -> Path:
    return data_root / str(port + index)


def pid_file(data_root: Path, port: int, index: int) -> Path:
    return data_dir(data_root, port, index) / "pid"


def _is_hypercache(pid: int) -> bool:
    """The pid still runs a hypercache node (not a process that got the number later)."""
    try:
        return b"hypercache" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def signal_node(data_root: Path, port: int, index: int, signum: int) -> str | None:
    """Send signum to node `index`; None on success, else why not."""
    path = pid_file(data_root, port, index)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return f"node {index} is not running (no {path})"
    if not _is_hypercache(pid):
        return f"node {index} is not running (pid {pid} in {path} has exited)"
    os.kill(pid, signum)
    return None


def _stop_with_parent() -> None:
    """In the child, before exec: SIGTERM it if the supervisor dies (even by SIGKILL), on Linux.

    Each node runs in a session of its own (Ctrl-C reaches the supervisor only, which stops
    the nodes one by one), so without this a killed supervisor would leave them running."""
    if sys.platform.startswith("linux"):
        import ctypes
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    """Runs the nodes, prefixes their output with their names, and never restarts one on its own."""

    def __init__(self, commands: dict[str, list[str]], pid_files: dict[str, Path]) -> None:
        self.commands = commands
        self.pid_files = pid_files
        self.procs: dict[str, subprocess.Popen] = {}
        self._print_lock = threading.Lock()
        self._stopping = False
        self._width = max(len(name) for name in commands)

    def say(self, name: str, line: str) -> None:
        with self._print_lock:
            sys.stdout.write(f"{name:<{self._width}} | {line}\n")
            sys.stdout.flush()

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGTERM, self._stop)
        for name, argv in self.commands.items():
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    preexec_fn=_stop_with_parent)
            self.procs[name] = proc
            self.pid_files[name].parent.mkdir(parents=True, exist_ok=True)
            self.pid_files[name].write_text(f"{proc.pid}\n")
            threading.Thread(target=self._relay, args=(name, proc), daemon=True).start()
        while self.procs:
            for name, proc in list(self.procs.items()):
                code = proc.poll()
                if code is None:
                    continue
                del self.procs[name]
                self.pid_files[name].unlink(missing_ok=True)
                how = f"signal {signal.Signals(-code).name}" if code < 0 else f"code {code}"
                if self._stopping:
                    self.say(name, f"exited ({how})")
                else:
                    index = name.removeprefix("node")
                    self.say(name, f"exited ({how}); the other nodes keep running. "
                                   f"Start it again with `make node N={index}`; Ctrl-C stops them all")
            time.sleep(0.2)
        return 0

    def _relay(self, name: str, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            self.say(name, raw.decode(errors="replace").rstrip("\n"))

    def _stop(self, signum: int, frame: object) -> None:
        """Ctrl-C or SIGTERM: each node leaves gracefully (SIGTERM); SIGKILL after STOP_GRACE_S."""
        if self._stopping:
            return
        self._stopping = True
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        threading.Thread(target=self._kill_late, daemon=True).start()

    def _kill_late(self) -> None:
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline and any(p.poll() is None for p in list(self.procs.values())):
            time.sleep(0.2)
        for name, proc in list(self.procs.items()):
            if proc.poll() is None:
                self.say(name, f"still running after {STOP_GRACE_S:.0f} s: SIGKILL")
                proc.kill()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1:]
    p = argparse.ArgumentParser(prog="python -m hypercache.local_cluster", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=3, help="nodes in the cluster (default: %(default)s)")
    p.add_argument("--port", type=int, default=8080, help="RESP port of node 0 (default: %(default)s)")
    p.add_argument("--http-port", type=int, default=9080, help="HTTP port of node 0 (default: %(default)s)")
    p.add_argument("--dir", type=Path, default=Path(".hypercache"),
                   help="node ids and pid files, one directory per RESP port (default: %(default)s)")
    one = p.add_mutually_exclusive_group()
    one.add_argument("--node", type=int, metavar="N", help="run node N in the foreground")
    one.add_argument("--stop", type=int, metavar="N", help="SIGTERM node N: it leaves the cluster gracefully")
    one.add_argument("--kill", type=int, metavar="N", help="SIGKILL node N: a crash")
    a = p.parse_args(argv)
    if a.nodes < 1 or a.port < 1 or a.port + a.nodes + 2 * MESH_OFFSET > 65535:
        p.error("--nodes must be 1 or more and --port low enough for the mesh and data ports (+10000, +20000)")
    python = [sys.executable, "-m", "hypercache"]

    if a.stop is not None or a.kill is not None:
        index, signum = (a.stop, signal.SIGTERM) if a.stop is not None else (a.kill, signal.SIGKILL)
        problem = signal_node(a.dir, a.port, index, signum)
        if problem is not None:
            print(problem, file=sys.stderr)
            return 1
        print(f"node {index}: sent {signal.Signals(signum).name}")
        return 0

    if a.node is not None:
        running = others_running(a.node, a.nodes, a.port)
        flags = node_argv(a.node, a.nodes, a.port, a.http_port, a.dir, running, extra)
        path = pid_file(a.dir, a.port, a.node)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{os.getpid()}\n")      # exec keeps the pid: --stop/--kill find the node
        os.execv(sys.executable, [*python, *flags])

    commands, pid_files = {}, {}
    running = others_running(0, a.nodes, a.port)       # node 0 founds the cluster unless one runs already
    for index in range(a.nodes):
        commands[f"node{index}"] = [*python, *node_argv(index, a.nodes, a.port, a.http_port, a.dir, running, extra)]
        pid_files[f"node{index}"] = pid_file(a.dir, a.port, index)
    print(f"{a.nodes} nodes: RESP {a.port}-{a.port + a.nodes - 1}, status pages "
          f"http://127.0.0.1:{a.http_port}/ ... :{a.http_port + a.nodes - 1}/. "
          f"Try `redis-cli -c -p {a.port}`; `make kill N=1` crashes node 1, Ctrl-C stops all.", flush=True)
    print(f"the nodes run {compiled.FORM}", flush=True)
    return Supervisor(commands, pid_files).run()


if __name__ == "__main__":
    sys.exit(main())
