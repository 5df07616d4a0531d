#!/usr/bin/env python3
"""How a big value replicates: 3 nodes at rf 2 (sync), one SET of a big string, bystanders PINGing.

The value travels to its replica in PART frames of 1 MB (hypercache/replication.py);
this prints how long the SET took, each node's worst PING wait meanwhile (a PING
every 5 ms from a client of its own), and whether the replica's copy is the value.

    python3 loadtest/big_value.py [--mb 400]
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from loadtest.bench_cluster import hypercache_setup  # noqa: E402
from mesh.keyslot import keyslot  # noqa: E402

import redis  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mb", type=int, default=400, help="the value's size in MiB")
    a = p.parse_args()
    value = (b"0123456789abcdef" * 65536) * a.mb        # a.mb MiB
    key = b"big:{value}"
    with tempfile.TemporaryDirectory() as tmp:
        servers = hypercache_setup("rf2 sync", ["--replication-factor", "2"], 2).start(Path(tmp))
        try:
            ports = {s.port for s in servers}
            slots = redis.Redis(port=servers[0].port).execute_command("CLUSTER", "SLOTS")
            slot = keyslot(key)
            owners = next([m[1] for m in members] for first, last, *members in slots if first <= slot <= last)
            # (CLUSTER SLOTS names a replica by its replica endpoint, RESP port + 5000:
            # hypercache/roles.py; the bystander PINGs the process on its RESP port)
            primary, replica_endpoint = owners[0], owners[1]
            replica = replica_endpoint if replica_endpoint in ports else replica_endpoint - 5000
            assert {primary, replica} <= ports
            done = threading.Event()
            worst: dict[int, float] = {}

            def ping(port: int) -> None:
                client = redis.Redis(port=port)
                worst[port] = 0.0
                while not done.is_set():
                    started = time.monotonic()
                    client.ping()
                    worst[port] = max(worst[port], time.monotonic() - started)
                    done.wait(0.005)

            bystanders = [threading.Thread(target=ping, args=(port,), daemon=True) for port in sorted(ports)]
            for t in bystanders:
                t.start()
            time.sleep(0.5)
            started = time.monotonic()
            redis.Redis(port=primary, socket_timeout=600).set(key, value)
            took = time.monotonic() - started
            done.set()
            for t in bystanders:
                t.join()
            print(f"SET of {a.mb} MiB at rf 2 sync: acknowledged after {took:.2f} s (at {time.strftime('%X')})")
            for port in sorted(ports):
                role = "primary" if port == primary else "replica" if port == replica else "bystander"
                print(f"  node {port} ({role}): worst PING wait {1000 * worst[port]:.0f} ms")
            # read back in ranges: a whole 400 MB reply is over the client output buffer limit
            reader = redis.Redis(port=replica, socket_timeout=600)
            reader.execute_command("READONLY")
            try:
                digest, step = hashlib.sha256(), 32 << 20
                for start in range(0, len(value), step):
                    digest.update(reader.getrange(key, start, start + step - 1))
                same = digest.digest() == hashlib.sha256(value).digest()
            except redis.RedisError as error:
                print(f"the replica's copy could not be read: {error}")
                for s in servers:
                    print(f"--- {s.name} port {s.port}\n{s.log.read_text(errors='replace')[-3000:]}")
                return 1
            print(f"  the replica's copy is {'identical' if same else 'DIFFERENT'}")
            return 0 if same else 1
        finally:
            for s in servers:
                s.stop()


if __name__ == "__main__":
    sys.exit(main())
