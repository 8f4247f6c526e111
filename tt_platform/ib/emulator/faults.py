"""Fault injection for the gateway emulator: the failures a real IB Gateway produces."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from tt_platform.ib.limits import MAX_OPEN_HISTORICAL_REQUESTS
from tt_platform.ib.pacing import PacingRules


@dataclass(frozen=True)
class FaultPlan:
    """What goes wrong, and when. Times are seconds of the emulator's (scalable) clock.

    * ``enforce_pacing`` / ``pacing_rules``: answer error 162 to historical requests for bars of
      30 s or less that break IB's small-bar rules (60 per 10 min, identical within 15 s, 6 per
      contract within 2 s; ``pacing_rules.small_bar_seconds`` moves that bound).
    * ``max_open_historical``: answer error 322 to a historical request that arrives while this
      many are open (IB: 50, any bar size; keepUpToDate requests stay open until cancelled);
      None lifts the cap.
    * ``unknown_symbols``: answer error 200 (no security definition) even if data exists.
    * ``drop_after_messages``: cut a client's socket after it was sent this many messages
      (counted per connection, after the handshake); fires at most ``max_drops`` times in all.
    * ``drop_mid_historical``: ordinals (1-based, over all clients) of historical requests whose
      answer is cut in the middle of the frame, then the socket closes.
    * ``restart_after_historical``: after answering this many historical requests, restart the
      gateway: every client is dropped and the port stays closed for ``restart_down_seconds``.
    * ``connectivity_blips``: (at, duration) pairs: send 1100 at ``at`` seconds after start,
      hold requests and streams, send 1102 ``duration`` seconds later.
    * ``historical_delay_seconds`` / ``contract_details_delay_seconds``: slow answers;
      ``historical_delay_by_symbol`` overrides the historical delay per symbol.
    """

    enforce_pacing: bool = True
    pacing_rules: PacingRules = field(default_factory=PacingRules)
    max_open_historical: int | None = MAX_OPEN_HISTORICAL_REQUESTS
    unknown_symbols: frozenset[str] = frozenset()
    drop_after_messages: int | None = None
    max_drops: int = 1
    drop_mid_historical: frozenset[int] = frozenset()
    restart_after_historical: int | None = None
    restart_down_seconds: float = 30.0
    connectivity_blips: tuple[tuple[float, float], ...] = ()
    historical_delay_seconds: float = 0.0
    contract_details_delay_seconds: float = 0.0
    historical_delay_by_symbol: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "unknown_symbols", frozenset(s.upper() for s in self.unknown_symbols))
        object.__setattr__(self, "drop_mid_historical", frozenset(int(n) for n in self.drop_mid_historical))
        object.__setattr__(self, "connectivity_blips", tuple((float(a), float(d)) for a, d in self.connectivity_blips))
        delays = {str(s).upper(): float(d) for s, d in dict(self.historical_delay_by_symbol).items()}
        if any(d < 0 for d in delays.values()):
            raise ValueError("FaultPlan.historical_delay_by_symbol delays must be >= 0")
        object.__setattr__(self, "historical_delay_by_symbol", delays)
        if self.max_open_historical is not None and self.max_open_historical < 1:
            raise ValueError(f"FaultPlan.max_open_historical must be >= 1 or None, got {self.max_open_historical!r}")
        for name in ("drop_after_messages", "restart_after_historical"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"FaultPlan.{name} must be >= 1 or None, got {value!r}")
        for name in ("restart_down_seconds", "historical_delay_seconds", "contract_details_delay_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"FaultPlan.{name} must be >= 0, got {getattr(self, name)!r}")
        if any(n < 1 for n in self.drop_mid_historical):
            raise ValueError("FaultPlan.drop_mid_historical ordinals are 1-based")

    def historical_delay(self, symbol: str) -> float:
        return self.historical_delay_by_symbol.get(symbol.upper(), self.historical_delay_seconds)

    @classmethod
    def from_mapping(cls, data: Mapping, origin: str = "fault plan") -> FaultPlan:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{origin}: unknown keys {unknown}; known: {sorted(known)}")
        values = dict(data)
        if "pacing_rules" in values:
            rules = values["pacing_rules"]
            if not isinstance(rules, Mapping):
                raise ValueError(f"{origin}: pacing_rules must be a mapping, got {type(rules).__name__}")
            try:
                values["pacing_rules"] = PacingRules(**rules)
            except TypeError as exc:
                raise ValueError(f"{origin}: pacing_rules: {exc}") from None
        for key in ("unknown_symbols", "drop_mid_historical"):
            if key in values:
                values[key] = frozenset(values[key])
        if "connectivity_blips" in values:
            values["connectivity_blips"] = tuple(tuple(pair) for pair in values["connectivity_blips"])
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{origin}: {exc}") from None

    @classmethod
    def from_json_file(cls, path: str | Path) -> FaultPlan:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: cannot read fault plan: {exc}") from exc
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: a fault plan must be a JSON object")
        return cls.from_mapping(data, origin=str(path))
