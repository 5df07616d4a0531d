# A hypercache node image: the same program `make run` starts, configured by HYPERCACHE_* variables.
#
#   docker build -t hypercache .
#   docker run --rm -p 6379:6379 -p 9080:9080 -e HYPERCACHE_CLUSTER_SECRET=$(openssl rand -hex 32) hypercache
#   redis-cli -p 6379 ping; curl -s 127.0.0.1:9080/health
#
# It listens on every interface of the container and announces 127.0.0.1 (right for one
# node reached through -p; a cluster sets --announce-host, see docker-compose.scalable.yml).
# Protected mode is off, as in the official Redis image: clients come from the bridge, not
# loopback; set HYPERCACHE_REQUIREPASS beyond a private network. The mesh listens beyond
# loopback only when closed (HYPERCACHE_CLUSTER_SECRET) or told HYPERCACHE_MESH_INSECURE=yes.
FROM python:3.11-slim-bookworm
WORKDIR /app
COPY setup.cfg pyproject.toml README.md requirements.lock ./
COPY hypercache ./hypercache
COPY mesh ./mesh
COPY web ./web
# the runtime dependencies at the versions the tests passed with (requirements.lock)
RUN pip install --no-cache-dir -c requirements.lock . \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin hypercache \
    && mkdir -p /data && chown hypercache /data
USER hypercache
ENV HYPERCACHE_HOST=0.0.0.0 \
    HYPERCACHE_PORT=6379 \
    HYPERCACHE_HTTP_PORT=9080 \
    HYPERCACHE_PROTECTED_MODE=no \
    HYPERCACHE_DATA_DIR=/data
# RESP, mesh (RESP + 10000), data (mesh + 10000), the replica endpoint (RESP + 5000,
# hypercache/roles.py) and the status UI
EXPOSE 6379 16379 26379 11379 9080
# healthy while the node takes writes (/health answers 503 when it refuses them)
HEALTHCHECK --interval=5s --timeout=3s --start-period=15s --retries=5 CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('HYPERCACHE_HTTP_PORT', '9080'), timeout=2)"]
ENTRYPOINT ["hypercache"]
