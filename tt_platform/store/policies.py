"""Trained policies in ``tt_policy``: what was trained, on which data, with which code.

Validate, then commit: ``register_policy`` checks the record (``tt_platform.core.records``) and,
for an id already stored, that its lineage (algo, feature set, data snapshot, config, seed) is
the same, inside the transaction of the write and before it; a refused record raises
``PolicyRecordError`` and leaves the stored policy as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tt_platform.core.records import (
    LINEAGE_FIELDS,
    RecordError,
    check_policy_record,
    check_same_lineage,
    raised_as,
)
from tt_platform.store.query import read_frame
from tt_platform.store.schema import policy
from tt_platform.store.transaction import transaction
from tt_platform.store.upsert import UpsertError, upsert_frame

POLICY_COLUMNS = [c.name for c in policy.columns]


class PolicyRecordError(RecordError, UpsertError):
    """A policy registration refused before it was written: the stored policy is unchanged.

    Also an ``UpsertError``, the store's error for a batch it cannot write."""


def register_policy(conn_or_engine: Connection | Engine, record: Mapping[str, Any]) -> int:
    """Insert or update one policy by ``policy_id``; returns 1 when written, 0 when unchanged.

    Re-registering an id with the same lineage updates the rest (MLflow run, model URI, code
    version, config); with another lineage it raises ``PolicyRecordError``."""
    with transaction(conn_or_engine) as conn:
        with raised_as(PolicyRecordError):
            row = check_policy_record(record, columns=POLICY_COLUMNS)
            stored = _stored_lineage(conn, row["policy_id"])
            if stored is not None:
                check_same_lineage(row["policy_id"], stored, row)
        return upsert_frame(conn, policy, pd.DataFrame([row]), ["policy_id"])


def _stored_lineage(conn: Connection, policy_id: str) -> dict[str, Any] | None:
    # locked until the write commits, so a concurrent re-registration cannot slip in between
    statement = (
        sa.select(*[policy.c[name] for name in LINEAGE_FIELDS]).where(policy.c.policy_id == policy_id).with_for_update()
    )
    row = conn.execute(statement).mappings().first()
    return None if row is None else dict(row)


def get_policy(conn_or_engine: Connection | Engine, policy_id: str) -> dict[str, Any] | None:
    """The policy row as a dict, None when unknown."""
    with transaction(conn_or_engine) as conn:
        row = conn.execute(sa.select(policy).where(policy.c.policy_id == policy_id)).mappings().first()
    return None if row is None else dict(row)


def get_policy_by_mlflow_run(conn_or_engine: Connection | Engine, mlflow_run_id: str) -> dict[str, Any] | None:
    """The policy trained by MLflow run ``mlflow_run_id`` as a dict, None when none was."""
    with transaction(conn_or_engine) as conn:
        row = conn.execute(
            sa.select(policy).where(policy.c.mlflow_run_id == mlflow_run_id).order_by(policy.c.created_at.desc())
        ).mappings().first()
    return None if row is None else dict(row)


def list_policies(conn_or_engine: Connection | Engine, feature_set_hash: str | None = None) -> pd.DataFrame:
    """Policies, newest first, optionally only those trained on one feature set."""
    statement = sa.select(*policy.columns).order_by(policy.c.created_at.desc(), policy.c.policy_id)
    if feature_set_hash is not None:
        statement = statement.where(policy.c.feature_set_hash == feature_set_hash)
    return read_frame(conn_or_engine, statement)
