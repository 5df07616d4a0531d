"""Command line: flags (or HYPERCACHE_* environment variables) -> Config -> Node.run()."""
from __future__ import annotations

from gevent import events, monkey

# Before anything imports socket/threading: the node is all gevent. At each of its ~25 steps
# patch_all looks for gevent plugins in the entry points of every installed package: 0.13 s of
# CPU of a node start's 0.37 s (measured with the test tools' 59 packages installed). The node
# uses no gevent plugin, so only the in-process subscribers (zope.event) are told, as gevent does.
_find_plugins = events.notify_and_call_entry_points
events.notify_and_call_entry_points = events.notify
try:
    monkey.patch_all()
finally:
    events.notify_and_call_entry_points = _find_plugins

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from mesh import exposure  # noqa: E402
from . import open_files, ports  # noqa: E402
from .config import Config, read_cluster_secret  # noqa: E402
from .store import EVICTION_POLICIES  # noqa: E402


EXAMPLE = """\
examples:
  hypercache --port 8080 --http-port 9080 --data-dir .hypercache/node0
  hypercache --port 8081 --http-port 9081 --data-dir .hypercache/node1 --join 127.0.0.1:18080
      a second node joins the first through its mesh port (RESP port + 10000)
  HYPERCACHE_PORT=8082 HYPERCACHE_JOIN=127.0.0.1:18080 hypercache
      every flag can be set as HYPERCACHE_<FLAG> instead (a flag given on the line wins)
  hypercache keygen DIR NAME
      writes a CURVE key pair for --mesh-secret-key-file / --mesh-public-keys-dir
"""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# the data port is the mesh port + this (mesh/datalink.py's DATA_PORT_OFFSET; not imported,
# so that parsing flags loads no zmq)
DATA_PORT_OFFSET = 10000


class _Parser(argparse.ArgumentParser):
    """argparse with Redis-like one-line errors: no usage block, exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _env_name(dest: str) -> str:
    return "HYPERCACHE_" + dest.upper()


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


def _log_level(text: str) -> str:
    level = str(text).upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(LOG_LEVELS)}, got {text!r}")
    return level


def _count(low: int):
    """An integer type that refuses values below `low`, with the limit in the message."""
    def parse(text: str) -> int:
        try:
            value = int(str(text).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {low} or more, got {value}")
        return value
    parse.__name__ = "integer"
    return parse


def _port(low: int):
    def parse(text: str) -> int:
        value = _count(low)(text)
        if value > 65535:
            raise argparse.ArgumentTypeError(f"expected a port up to 65535, got {value}")
        return value
    parse.__name__ = "port"
    return parse


def _join_address(text: str) -> str:
    """HOST:MESHPORT (IPv6 in brackets); refused at once rather than failing deep inside the mesh."""
    host, sep, port = str(text).strip().rpartition(":")
    if not sep or not host.strip("[]") or not port.isdigit() or not 0 < int(port) <= 65535 \
            or (":" in host and not host.startswith("[")):
        raise argparse.ArgumentTypeError(
            f"expected HOST:MESHPORT (a member's mesh port, its RESP port + 10000, e.g. 127.0.0.1:18080), "
            f"got {text!r}")
    return f"{host}:{int(port)}"


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


def build_parser() -> argparse.ArgumentParser:
    from . import __version__, compiled
    p = _Parser(prog="hypercache", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLE,
                description=(
                    "A Redis-compatible cache node; nodes joined with --join form a cluster that\n"
                    "redis-cli -c, redis-py RedisCluster and redis-benchmark --cluster use directly.\n"
                    "Every flag can also be set as HYPERCACHE_<FLAG> (e.g. HYPERCACHE_HTTP_PORT=9080)."))
    p.add_argument("--version", action="version", version=f"hypercache {__version__}, {compiled.FORM}")
    p.add_argument("--port", type=_port(1), default=8080, help="RESP port clients connect to (default: %(default)s)")
    p.add_argument("--http-port", type=_port(0), default=9080,
                   help="status page, JSON API, /health and /metrics (default: %(default)s; 0 disables it)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address the RESP, mesh and HTTP ports listen on (default: %(default)s; 0.0.0.0: all)")
    p.add_argument("--mesh-port", type=_port(0), default=0,
                   help="cluster bus port; the data port is this + 10000 (default: RESP port + 10000)")
    p.add_argument("--announce-host", default="",
                   help="address clients are sent to in MOVED and CLUSTER NODES, like Redis's "
                        "cluster-announce-ip (default: --host, or 127.0.0.1 when --host is 0.0.0.0)")
    p.add_argument("--join", nargs="*", type=_join_address, default=[], metavar="HOST:MESHPORT",
                   help="any member(s) of the cluster to join, at their mesh port (default: none, "
                        "start a new cluster; the variable takes a comma- or space-separated list)")
    p.add_argument("--replication-factor", type=_count(1), default=2,
                   help="copies of each slot, the primary's included (default: %(default)s)")
    p.add_argument("--replication-mode", choices=("sync", "async"), default="sync",
                   help="sync: a write is acknowledged once every live replica of its slot applied it; "
                        "async: at once, replicated right after (can lose a dying primary's last writes) "
                        "(default: %(default)s)")
    p.add_argument("--node-timeout-ms", type=_count(1), default=3000,
                   help="a member unheard this long is suspect, then dead; a node that cannot hear a "
                        "majority this long refuses writes (default: %(default)s)")
    p.add_argument("--leave-timeout-ms", type=_count(0), default=10000,
                   help="on SIGTERM, how long to keep serving and voting until the cluster's map "
                        "without this node commits (its slots pass to their replicas) (default: %(default)s)")
    p.add_argument("--requirepass", default="", metavar="PASSWORD",
                   help="clients must AUTH with it (default: none; see --protected-mode)")
    p.add_argument("--requirepass-file", default="", metavar="FILE",
                   help="read the password from FILE, so that it is not shown by ps (default: none)")
    p.add_argument("--aclfile", default="", metavar="FILE",
                   help="ACL users, one `user NAME RULES...` line each, as Redis's aclfile; give every "
                        "node the same file (default: only the `default` user)")
    p.add_argument("--maxmemory", type=_count(0), default=0, metavar="BYTES",
                   help="keyspace memory limit in bytes (default: %(default)s, no limit)")
    p.add_argument("--maxmemory-policy", default="noeviction", choices=EVICTION_POLICIES,
                   help="what to do at maxmemory, as Redis (default: %(default)s: refuse writes)")
    p.add_argument("--maxclients", type=_count(1), default=10000,
                   help="client connections accepted at once (default: %(default)s)")
    p.add_argument("--timeout", type=_count(0), default=0, metavar="SECONDS",
                   help="close clients idle this many seconds (default: %(default)s, never)")
    p.add_argument("--protected-mode", type=_bool, default=True, metavar="{yes,no}",
                   help="without a password, accept loopback clients only (default: yes)")
    p.add_argument("--enable-debug-command", type=_debug_mode, default="no", metavar="{no,yes,local}",
                   help="allow DEBUG (it can stop the node); local: from 127.0.0.1 or ::1 only "
                        "(default: %(default)s)")
    p.add_argument("--data-dir", default="", metavar="DIR",
                   help="keeps the node id, its vote key and its election vote across restarts "
                        "(default: none, a new id and key each start; the data itself is kept in "
                        "memory only)")
    p.add_argument("--log-level", type=_log_level, default="INFO", metavar="{" + ",".join(LOG_LEVELS) + "}",
                   help="log lines at this level and above, to stderr (default: %(default)s)")
    p.add_argument("--mesh-secret-key-file", default="", metavar="FILE",
                   help="CURVE key pair (NAME.key_secret from `hypercache keygen`); closes the mesh "
                        "to keys outside --mesh-public-keys-dir; the node id becomes the key's (default: none)")
    p.add_argument("--mesh-public-keys-dir", default="", metavar="DIR",
                   help="allow-list: a directory with the public key (NAME.key) of every member (default: none)")
    p.add_argument("--cluster-secret-file", default="", metavar="FILE",
                   help="a secret (16+ bytes) shared by every member: closes the mesh and the data channel "
                        "to anyone without it (CURVE); or set HYPERCACHE_CLUSTER_SECRET (default: none)")
    p.add_argument("--mesh-insecure", type=_bool, nargs="?", const=True, default=False, metavar="{yes,no}",
                   help="let the mesh listen beyond loopback with no secret or keys: anyone reaching it "
                        "can take the cluster (default: no, such a node refuses to start)")
    return p


def _apply_environment(p: argparse.ArgumentParser, environ: dict[str, str]) -> None:
    """HYPERCACHE_<FLAG> variables become the defaults, checked as the flag would be."""
    defaults = {}
    for action in p._actions:
        if not action.option_strings or action.dest in ("help", "version"):
            continue
        name = _env_name(action.dest)
        raw = environ.get(name)
        if raw is None:
            continue
        texts = raw.replace(",", " ").split() if action.nargs == "*" else [raw]
        try:
            values = [action.type(text) if action.type else text for text in texts]
        except argparse.ArgumentTypeError as error:
            p.error(f"{name}={raw!r}: {error}")
        if action.choices is not None and any(v not in action.choices for v in values):
            p.error(f"{name}={raw!r}: expected one of {', '.join(map(str, action.choices))}")
        defaults[action.dest] = values if action.nargs == "*" else values[0]
    p.set_defaults(**defaults)


def parse_args(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> Config:
    p = build_parser()
    environ = dict(os.environ) if environ is None else environ
    _apply_environment(p, environ)
    a = p.parse_args(argv)
    if bool(a.mesh_secret_key_file) != bool(a.mesh_public_keys_dir):
        p.error("--mesh-secret-key-file and --mesh-public-keys-dir go together")
    mesh_port = a.mesh_port or a.port + 10000
    if mesh_port + DATA_PORT_OFFSET > 65535:
        p.error(f"the mesh port {mesh_port} leaves no room for its data port (mesh port + "
                f"{DATA_PORT_OFFSET}): choose --port/--mesh-port so that it stays at most 65535")
    try:
        cluster_secret = read_cluster_secret(a.cluster_secret_file, environ.get("HYPERCACHE_CLUSTER_SECRET", ""))
    except ValueError as error:
        p.error(f"cluster secret: {error}")
    if cluster_secret and a.mesh_secret_key_file:
        p.error("a cluster secret and --mesh-secret-key-file exclude each other: choose one")
    refusal = exposure.refusal(a.host, bool(cluster_secret or a.mesh_secret_key_file), a.mesh_insecure)
    if refusal is not None:
        p.error(refusal)
    requirepass = a.requirepass
    if a.requirepass_file:
        if requirepass:
            p.error("--requirepass and --requirepass-file exclude each other")
        try:
            requirepass = _password_file(a.requirepass_file)
        except ValueError as error:     # also a file that is not UTF-8
            p.error(f"--requirepass-file: {error}")
    if requirepass and a.aclfile:
        p.error("--requirepass and --aclfile exclude each other: give the default user's password in "
                "the ACL file (user default on >PASSWORD ~* &* +@all)")
    return Config(port=a.port, http_port=a.http_port, host=a.host, mesh_port=a.mesh_port,
                  announce_host=a.announce_host, join=tuple(a.join),
                  replication_factor=a.replication_factor, replication_mode=a.replication_mode,
                  node_timeout_ms=a.node_timeout_ms, leave_timeout_ms=a.leave_timeout_ms,
                  requirepass=requirepass, aclfile=a.aclfile, maxmemory=a.maxmemory,
                  maxmemory_policy=a.maxmemory_policy, data_dir=a.data_dir,
                  maxclients=a.maxclients, timeout_s=a.timeout, protected_mode=a.protected_mode,
                  enable_debug_command=a.enable_debug_command,
                  log_level=a.log_level, mesh_secret_key_file=a.mesh_secret_key_file,
                  mesh_public_keys_dir=a.mesh_public_keys_dir, cluster_secret=cluster_secret,
                  mesh_insecure=a.mesh_insecure)


def keygen(argv: list[str]) -> int:
    """`hypercache keygen DIR NAME`: write a CURVE key pair for one node's mesh."""
    p = _Parser(prog="hypercache keygen", description=(
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


def _fit_open_files(config: Config) -> Config:
    """Raise the open-file limit for the clients and a full map's mesh peers, or lower both to fit, as Redis does.

    maxclients 0 in the Config returned: the limit leaves no client a file (said on stderr).
    """
    files, refused = open_files.settle(config.maxclients, config.max_mesh_peers)
    log = logging.getLogger("hypercache")
    if refused is not None:
        log.warning("%s", refused)
    if files.maxclients < 1:
        print(f"hypercache: error: cannot start: the open-file limit of {files.limit} leaves no room for "
              f"clients; increase 'ulimit -n' to at least {files.wanted}", file=sys.stderr)
    elif files.short:
        lowered = []
        if files.maxclients < config.maxclients:
            lowered.append(f"maxclients has been reduced to {files.maxclients}")
        if files.mesh_peers < config.max_mesh_peers:
            lowered.append(f"the mesh to {files.mesh_peers} peers" if lowered
                           else f"the mesh has been reduced to {files.mesh_peers} peers")
        log.warning("You requested maxclients of %d and room for a mesh of %d peers, requiring at least %d max "
                    "file descriptors. Current maximum open files is %d: %s to compensate for low ulimit. If you "
                    "need more, increase 'ulimit -n'.", config.maxclients, config.max_mesh_peers, files.wanted,
                    files.limit, " and ".join(lowered))
    return dataclasses.replace(config, maxclients=files.maxclients, max_mesh_peers=files.mesh_peers)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["keygen"]:
        return keygen(argv[1:])
    config = parse_args(argv)
    logging.basicConfig(level=config.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from . import compiled
    compiled.warn_if_stale(logging.getLogger("hypercache").warning)
    mesh_port = config.resolved_mesh_port
    unusable = ports.first_unusable(config.host, ports.node_ports(
        config.port, mesh_port, mesh_port + DATA_PORT_OFFSET, config.http_port))
    if unusable is not None:
        print(f"hypercache: error: {unusable}", file=sys.stderr)
        return 2
    config = _fit_open_files(config)
    if config.maxclients < 1:
        return 2
    from .node import Node
    try:
        node = Node(config)
    except (OSError, ValueError) as error:
        # what the node reads at start: its --data-dir, its mesh keys (a path, a bad key file)
        print(f"hypercache: error: cannot start: {error}", file=sys.stderr)
        return 2
    logging.getLogger("hypercache").info("open files: room for %d clients and %d mesh peers", config.maxclients,
                                         config.max_mesh_peers)
    try:
        node.run()
    except Exception as error:
        # the port was taken between the check and the bind: still one line (zmq's errors carry errno too)
        if getattr(error, "errno", None) not in ports.BIND_ERRNOS:
            raise
        print(f"hypercache: error: cannot listen: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
