FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY relay ./relay
COPY agents ./agents
COPY templates ./templates
COPY config ./config
COPY examples ./examples
RUN pip install --no-cache-dir -e . && useradd --system relay && mkdir -p /var/lib/relay \
    && chown relay /var/lib/relay
USER relay
EXPOSE 6066
CMD ["relay", "worker"]
