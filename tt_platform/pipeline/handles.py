"""What flows along the lineage edges: small handles whose truth lives in the store.

An asset materialization records its handle; the downstream asset reads that handle back from
the upstream materialization (never "the latest row in a table"), so it works on exactly what its
upstream produced even when newer rows exist.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class WatchlistSnapshot:
    snapshot_hash: str
    symbols: tuple[str, ...]
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"snapshot_hash": self.snapshot_hash, "symbols": list(self.symbols), "source": self.source}

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> "WatchlistSnapshot":
        return cls(str(payload["snapshot_hash"]), tuple(payload["symbols"]), str(payload.get("source", "")))


@dataclass(frozen=True)
class PolicyHandle:
    policy_id: str
    config_hash: str = ""
    feature_set_hash: str = ""
    data_snapshot_hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> "PolicyHandle":
        return cls(**{k: str(payload.get(k, "")) for k in ("policy_id", "config_hash", "feature_set_hash", "data_snapshot_hash")})


HANDLE_TYPES = {cls.__name__: cls for cls in (WatchlistSnapshot, PolicyHandle)}
