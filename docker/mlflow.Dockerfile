# The official MLflow image has no psycopg2, which a PostgreSQL backend store needs.
# Built from the repository root (for docker/with_database_urls.py).
FROM python:3.11-slim
# 3.17 or later: `mlflow server` reads MLFLOW_BACKEND_STORE_URI and knows --allowed-hosts
RUN pip install --no-cache-dir "mlflow>=3.17,<4" psycopg2-binary
COPY docker/with_database_urls.py /usr/local/bin/with-database-urls
RUN chmod 0755 /usr/local/bin/with-database-urls \
    && useradd --create-home --uid 1000 mlflow \
    && mkdir -p /var/lib/mlflow/artifacts \
    && chown -R mlflow:mlflow /var/lib/mlflow
USER mlflow
WORKDIR /var/lib/mlflow
ENTRYPOINT ["with-database-urls"]
CMD ["mlflow", "server", "--help"]
