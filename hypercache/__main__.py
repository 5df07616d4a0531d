"""Command line: flags (or HYPERCACHE_* environment variables) -> Config -> Node.run()."""
from __future__ import annotations

from gevent import monkey

monkey.patch_all()   # before anything imports socket/threading: the node is all gevent

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from .config import Config  # noqa: E402
from .store import EVICTION_POLICIES  # noqa: E402


def _env(name: str, default):
    return os.environ.get("HYPERCACHE_" + name.upper().replace("-", "_"), default)


def _bool(text: str) -> bool:
    if str(text).lower() in ("yes", "true", "1", "on"):
        return True
    if str(text).lower() in ("no", "false", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected yes or no, got {text!r}")


def _debug_mode(text: str) -> str:
    """Redis 7's enable-debug-command values; "local": clients on 127.0.0.1 or ::1 only."""
    mode = str(text).lower()
    if mode not in ("no", "yes", "local"):
        raise argparse.ArgumentTypeError(f"expected no, yes or local, got {text!r}")
    return mode


def _password_file(path: str) -> str:
    """The password a file holds, without the trailing newline an editor or `echo` adds."""
    try:
        with open(path, encoding="utf-8") as f:
            password = f.read().rstrip("\r\n")
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror}") from None
    if not password:
        # an empty file would silently leave the node without a password
        raise ValueError(f"{path} is empty")
    return password


def parse_args(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(prog="hypercache", description=(
        "A Redis-compatible cache node; nodes joined with --join form a cluster that "
        "redis-cli -c, redis-py RedisCluster and redis-benchmark --cluster use directly. "
        "Every flag can also be set as HYPERCACHE_<FLAG> (e.g. HYPERCACHE_PORT=8080)."))
    p.add_argument("--port", type=int, default=int(_env("port", 8080)), help="RESP port")
    p.add_argument("--http-port", type=int, default=int(_env("http_port", 9080)),
                   help="status UI / JSON / metrics port (0 disables it)")
    p.add_argument("--host", default=_env("host", "127.0.0.1"), help="bind address")
    p.add_argument("--mesh-port", type=int, default=int(_env("mesh_port", 0)),
                   help="mesh port (default: port + 10000)")
    p.add_argument("--announce-host", default=_env("announce_host", ""),
                   help="address clients are sent to in MOVED (default: --host, or 127.0.0.1)")
    p.add_argument("--join", nargs="*", default=[j for j in _env("join", "").replace(",", " ").split() if j],
                   metavar="HOST:MESHPORT", help="any member(s) of the cluster to join")
    p.add_argument("--replication-factor", type=int, default=int(_env("replication_factor", 2)))
    p.add_argument("--replication-mode", choices=("sync", "async"), default=_env("replication_mode", "sync"),
                   help="sync: a write is acknowledged once every live replica of its slot applied it; "
                        "async: at once, replicated right after (can lose a dying primary's last writes)")
    p.add_argument("--node-timeout-ms", type=int, default=int(_env("node_timeout_ms", 3000)))
    p.add_argument("--leave-timeout-ms", type=int, default=int(_env("leave_timeout_ms", 10000)),
                   help="on SIGTERM, how long to keep serving and voting until the cluster's map "
                        "without this node commits (its slots pass to their replicas)")
    p.add_argument("--requirepass", default=_env("requirepass", ""))
    p.add_argument("--requirepass-file", default=_env("requirepass_file", ""), metavar="FILE",
                   help="read the password from FILE, so that it is not shown by ps")
    p.add_argument("--maxmemory", type=int, default=int(_env("maxmemory", 0)), help="bytes, 0 = no limit")
    p.add_argument("--maxmemory-policy", default=_env("maxmemory_policy", "noeviction"),
                   choices=EVICTION_POLICIES)
    p.add_argument("--maxclients", type=int, default=int(_env("maxclients", 10000)))
    p.add_argument("--timeout", type=int, default=int(_env("timeout", 0)),
                   help="close clients idle this many seconds (0 = never)")
    p.add_argument("--protected-mode", type=_bool, default=_bool(_env("protected_mode", "yes")),
                   help="without a password, accept loopback clients only (default yes)")
    p.add_argument("--enable-debug-command", type=_debug_mode,
                   default=_env("enable_debug_command", "no"), metavar="no|yes|local",
                   help="allow DEBUG (it can stop the node); local: from 127.0.0.1 or ::1 only (default no)")
    p.add_argument("--data-dir", default=_env("data_dir", ""), help="keeps the node id across restarts")
    p.add_argument("--log-level", default=_env("log_level", "INFO"))
    p.add_argument("--mesh-secret-key-file", default=_env("mesh_secret_key_file", ""),
                   help="CURVE key pair (NAME.key_secret from `hypercache keygen`); closes the mesh "
                        "to keys outside --mesh-public-keys-dir; the node id becomes the key's")
    p.add_argument("--mesh-public-keys-dir", default=_env("mesh_public_keys_dir", ""),
                   help="allow-list: a directory with the public key (NAME.key) of every member")
    a = p.parse_args(argv)
    if a.replication_factor < 1:
        p.error("--replication-factor must be at least 1")
    if bool(a.mesh_secret_key_file) != bool(a.mesh_public_keys_dir):
        p.error("--mesh-secret-key-file and --mesh-public-keys-dir go together")
    requirepass = a.requirepass
    if a.requirepass_file:
        if requirepass:
            p.error("--requirepass and --requirepass-file exclude each other")
        try:
            requirepass = _password_file(a.requirepass_file)
        except ValueError as error:     # also a file that is not UTF-8
            p.error(f"--requirepass-file: {error}")
    return Config(port=a.port, http_port=a.http_port, host=a.host, mesh_port=a.mesh_port,
                  announce_host=a.announce_host, join=tuple(a.join),
                  replication_factor=a.replication_factor, replication_mode=a.replication_mode,
                  node_timeout_ms=a.node_timeout_ms, leave_timeout_ms=a.leave_timeout_ms,
                  requirepass=requirepass, maxmemory=a.maxmemory,
                  maxmemory_policy=a.maxmemory_policy, data_dir=a.data_dir,
                  maxclients=a.maxclients, timeout_s=a.timeout, protected_mode=a.protected_mode,
                  enable_debug_command=a.enable_debug_command,
                  log_level=a.log_level, mesh_secret_key_file=a.mesh_secret_key_file,
                  mesh_public_keys_dir=a.mesh_public_keys_dir)


def keygen(argv: list[str]) -> int:
    """`hypercache keygen DIR NAME`: write a CURVE key pair for one node's mesh."""
    p = argparse.ArgumentParser(prog="hypercache keygen", description=(
        "Write DIR/NAME.key (public: copy it into every member's --mesh-public-keys-dir) and "
        "DIR/NAME.key_secret (this node's --mesh-secret-key-file; keep it private)."))
    p.add_argument("dir")
    p.add_argument("name")
    a = p.parse_args(argv)
    from mesh import curve
    public, secret = curve.keygen(a.dir, a.name)
    keys = curve.load(secret, public.parent)
    print(f"{public}\n{secret}\nnode id: {keys.node_id}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["keygen"]:
        return keygen(argv[1:])
    config = parse_args(argv)
    logging.basicConfig(level=config.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from .node import Node
    Node(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
