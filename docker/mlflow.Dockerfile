# the official MLflow image has no psycopg2, which a PostgreSQL backend store needs
FROM python:3.11-slim
RUN pip install --no-cache-dir "mlflow>=3,<4" psycopg2-binary
