"""Trained policies in ``tt_policy``: what was trained, on which data, with which code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tt_platform.store.query import read_frame
from tt_platform.store.schema import policy
from tt_platform.store.transaction import transaction
from tt_platform.store.upsert import upsert_frame

POLICY_COLUMNS = [c.name for c in policy.columns]


def register_policy(conn_or_engine: Connection | Engine, record: Mapping[str, Any]) -> int:
    """Insert or update one policy by ``policy_id``; returns 1 when written, 0 when unchanged."""
    unknown = sorted(set(record) - set(POLICY_COLUMNS))
    if unknown:
        raise ValueError(f"register_policy: unknown fields {unknown}; known: {POLICY_COLUMNS}")
    if not record.get("policy_id"):
        raise ValueError("register_policy: policy_id is required")
    frame = pd.DataFrame([dict(record)])
    return upsert_frame(conn_or_engine, policy, frame, ["policy_id"])


def get_policy(conn_or_engine: Connection | Engine, policy_id: str) -> dict[str, Any] | None:
    """The policy row as a dict, None when unknown."""
    with transaction(conn_or_engine) as conn:
        row = conn.execute(sa.select(policy).where(policy.c.policy_id == policy_id)).mappings().first()
    return None if row is None else dict(row)


def list_policies(conn_or_engine: Connection | Engine, feature_set_hash: str | None = None) -> pd.DataFrame:
    """Policies, newest first, optionally only those trained on one feature set."""
    statement = sa.select(*policy.columns).order_by(policy.c.created_at.desc(), policy.c.policy_id)
    if feature_set_hash is not None:
        statement = statement.where(policy.c.feature_set_hash == feature_set_hash)
    return read_frame(conn_or_engine, statement)
