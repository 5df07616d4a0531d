"""Node configuration: the frozen startup Config, and the Settings CONFIG GET/SET may change."""
from __future__ import annotations

from dataclasses import dataclass, field

from .store import EVICTION_POLICIES

# mesh/curve.py's MIN_SECRET_BYTES (not imported: parsing flags loads no zmq)
MIN_CLUSTER_SECRET_BYTES = 16
# mesh/messages.py's MAX_MEMBERS - 1: the peers of a full map (not imported, as above)
MAX_MESH_PEERS = 1023


@dataclass(frozen=True, slots=True)
class Config:
    port: int = 8080
    http_port: int = 9080
    host: str = "127.0.0.1"              # bind address
    mesh_port: int = 0                   # 0: port + 10000
    announce_host: str = ""              # what clients are told in MOVED; default: host, or 127.0.0.1 for 0.0.0.0
    join: tuple[str, ...] = ()           # "host:meshport" of any member
    replication_factor: int = 2
    replication_mode: str = "sync"       # sync: acknowledged once on every live replica; async: at once
    node_timeout_ms: int = 3000
    leave_timeout_ms: int = 10000        # on SIGTERM: how long to wait for the map without this node
    requirepass: str = ""
    aclfile: str = ""                    # ACL users read at start (ACL LOAD/SAVE use it too)
    maxmemory: int = 0
    maxmemory_policy: str = "noeviction"
    data_dir: str = ""
    maxclients: int = 10000
    max_mesh_peers: int = MAX_MESH_PEERS    # lowered at start when the open-file limit is short (open_files.py)
    timeout_s: int = 0                   # idle client timeout, 0 = never
    protected_mode: bool = True          # without a password, serve loopback clients only
    enable_debug_command: str = "no"     # "no", "yes", or "local" (from 127.0.0.1/::1 only), as Redis 7
    log_level: str = "INFO"
    mesh_secret_key_file: str = ""       # CURVE key pair (NAME.key_secret); with the dir below, closes the mesh
    mesh_public_keys_dir: str = ""       # allow-list: the public keys (*.key) of every member
    # One secret shared by the members closes the mesh and the data channel (mesh/curve.py from_secret);
    # repr=False keeps it out of any log line that prints the config.
    cluster_secret: bytes = field(default=b"", repr=False)
    mesh_insecure: bool = False          # let the mesh listen beyond loopback without a secret or keys

    @property
    def resolved_mesh_port(self) -> int:
        return self.mesh_port or self.port + 10000

    @property
    def resolved_announce_host(self) -> str:
        if self.announce_host:
            return self.announce_host
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host


def read_cluster_secret(path: str, from_environment: str) -> bytes:
    """The cluster secret from a file (--cluster-secret-file) or the environment (HYPERCACHE_CLUSTER_SECRET).

    b"" if neither is given; ValueError with a reason if both are, if the file cannot be read or is
    empty, or if the secret is too short. A file's trailing newline (an editor's, `echo`'s) is not part
    of the secret.
    """
    if path and from_environment:
        raise ValueError("--cluster-secret-file and HYPERCACHE_CLUSTER_SECRET exclude each other")
    if path:
        try:
            with open(path, "rb") as f:
                secret = f.read().rstrip(b"\r\n")
        except OSError as error:
            raise ValueError(f"cannot read {path}: {error.strerror}") from None
        if not secret:
            raise ValueError(f"{path} is empty")
    else:
        secret = from_environment.encode()
    if secret and len(secret) < MIN_CLUSTER_SECRET_BYTES:
        raise ValueError(f"the cluster secret must be at least {MIN_CLUSTER_SECRET_BYTES} bytes "
                         f"(e.g. `openssl rand -hex 32`)")
    return secret


@dataclass(slots=True)
class Settings:
    """Runtime settings visible through CONFIG GET and changeable with CONFIG SET."""
    maxmemory: int = 0
    maxmemory_policy: str = "noeviction"
    requirepass: str = ""
    timeout: int = 0
    maxclients: int = 10000
    proto_max_bulk_len: int = 512 * 1024 * 1024
    client_query_buffer_limit: int = 1024 * 1024 * 1024
    # hard limit of bytes queued to a client that does not read (Redis's
    # client-output-buffer-limit normal class is unlimited; we cap it)
    client_output_buffer_limit: int = 256 * 1024 * 1024
    protected_mode: bool = True
    maxmemory_samples: int = 5
    cluster_allow_reads_when_down: bool = False
    # Redis's min-replicas-to-write / min-replicas-max-lag: refuse a write unless this
    # many replicas of its slot are in sync and acknowledged within the lag (seconds)
    min_replicas_to_write: int = 0
    min_replicas_max_lag: int = 10
    # Redis's busy-reply-threshold (alias lua-time-limit): ms a script runs before others get -BUSY
    busy_reply_threshold: int = 5000
    extra: dict[str, bytes] = field(default_factory=dict)    # CONFIG SET of the tuning parameters: as given

    @classmethod
    def from_config(cls, config: Config) -> "Settings":
        return cls(maxmemory=config.maxmemory, maxmemory_policy=config.maxmemory_policy,
                   requirepass=config.requirepass, timeout=config.timeout_s,
                   maxclients=config.maxclients, protected_mode=config.protected_mode)


POLICIES = EVICTION_POLICIES
