-- Runs once, when the postgres service initialises an empty volume, as POSTGRES_USER (who then
-- owns these databases). POSTGRES_DB (tt) holds the platform's tt_ tables; MLflow and Dagster
-- each keep their own Alembic history, and separate databases keep them apart.
CREATE DATABASE dagster;
CREATE DATABASE mlflow;
