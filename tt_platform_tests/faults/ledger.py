"""What the fault-injection suite did: per fault kind, how many faults were injected and which
invariants were checked afterwards. `make faults` prints it as a table and writes it to
faults-results.json, the source of the numbers in the README's reliability section."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FaultKind:
    injected: int = 0
    invariants: dict[str, int] = field(default_factory=dict)  # invariant -> times it was checked
    measures: dict[str, float] = field(default_factory=dict)  # e.g. soak bars, RSS slope


class FaultLedger:
    def __init__(self) -> None:
        self.kinds: dict[str, FaultKind] = defaultdict(FaultKind)

    def injected(self, kind: str, count: int = 1) -> None:
        """Count faults as they are injected, not as planned: a fault that never fired is not one."""
        self.kinds[kind].injected += count

    def checked(self, kind: str, *invariants: str) -> None:
        """Record invariants after their assertions passed."""
        for invariant in invariants:
            checks = self.kinds[kind].invariants
            checks[invariant] = checks.get(invariant, 0) + 1

    def measured(self, kind: str, name: str, value: float) -> None:
        self.kinds[kind].measures[name] = float(value)

    def rows(self) -> list[dict]:
        return [{"fault": kind, "injected": record.injected, "invariants": dict(record.invariants),
                 "measures": dict(record.measures)} for kind, record in sorted(self.kinds.items())]

    def table(self) -> str:
        rows = self.rows()
        if not rows:
            return "no faults injected"
        width = max(len(r["fault"]) for r in rows)
        lines = [f"{'fault':<{width}}  injected  invariants checked", f"{'-' * width}  --------  {'-' * 40}"]
        for row in rows:
            checks = ", ".join(f"{name} ×{n}" if n > 1 else name for name, n in row["invariants"].items()) or "-"
            lines.append(f"{row['fault']:<{width}}  {row['injected']:>8}  {checks}")
            for name, value in row["measures"].items():
                lines.append(f"{'':<{width}}  {'':>8}  {name}: {value:g}")
        totals = sum(r["injected"] for r in rows), sum(sum(r["invariants"].values()) for r in rows)
        lines.append(f"{'total':<{width}}  {totals[0]:>8}  {totals[1]} invariant checks")
        return "\n".join(lines)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps({"faults": self.rows()}, indent=2) + "\n")
