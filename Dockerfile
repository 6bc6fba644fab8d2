# The relay worker from its wheel (not the source tree): templates, samples and agents are
# package data inside it. Build from the repository root: docker build -t policy-relay .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY relay ./relay
COPY agents ./agents
COPY templates ./templates
COPY config ./config
COPY examples ./examples
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
COPY constraints.txt /tmp/constraints.txt
COPY --from=build /wheels /wheels
# With the rocksdb extra: the workers keep their tables in RocksDB on a volume.
RUN pip install --no-cache-dir -c /tmp/constraints.txt "$(echo /wheels/*.whl)[rocksdb]" \
    && rm -rf /wheels /tmp/constraints.txt \
    && useradd --system --create-home relay \
    && mkdir -p /var/lib/relay && chown relay /var/lib/relay
USER relay
WORKDIR /home/relay
ENV RELAY_DATA_DIR=/var/lib/relay RELAY_TABLE_STORE=rocksdb://
VOLUME /var/lib/relay
EXPOSE 6066
HEALTHCHECK --interval=10s --timeout=5s --retries=6 --start-period=90s \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:6066/healthz').status == 200 else 1)"]
CMD ["relay", "worker"]
