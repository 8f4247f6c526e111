-- MLflow and Dagster each keep their own Alembic history: separate databases keep them apart.
CREATE DATABASE dagster;
CREATE DATABASE mlflow;
