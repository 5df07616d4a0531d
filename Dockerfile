# A hypercache node image: the same program `make run` starts, configured by HYPERCACHE_* variables.
FROM python:3.11-slim
WORKDIR /app
COPY setup.cfg pyproject.toml README.md ./
COPY hypercache ./hypercache
COPY mesh ./mesh
COPY web ./web
RUN pip install --no-cache-dir .
# RESP, mesh (RESP + 10000) and the status UI
EXPOSE 6379 16379 26379 9080
ENTRYPOINT ["hypercache"]
