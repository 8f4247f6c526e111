"""Transaction costs: commission and slippage in basis points of traded notional."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BPS = 1e-4


@dataclass(frozen=True)
class CostModel:
    """Linear costs per order.

    ``slippage_bps`` moves the fill price against the order (buys pay more, sells get less);
    ``commission_bps`` is charged on the notional at the fill price, at least ``min_commission``
    per order that trades.
    """

    commission_bps: float = 0.0
    slippage_bps: float = 0.0
    min_commission: float = 0.0

    def __post_init__(self) -> None:
        for name in ("commission_bps", "slippage_bps", "min_commission"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"CostModel.{name} must be a finite number >= 0, got {value!r}")

    @property
    def commission_rate(self) -> float:
        return self.commission_bps * BPS

    @property
    def slippage_rate(self) -> float:
        return self.slippage_bps * BPS

    def fill_prices(self, share_deltas: np.ndarray, prices: np.ndarray) -> np.ndarray:
        """Price each order fills at: ``price * (1 ± slippage)`` by order side."""
        return prices * (1.0 + np.sign(share_deltas) * self.slippage_rate)

    def commissions(self, share_deltas: np.ndarray, fill_prices: np.ndarray) -> np.ndarray:
        """Commission per order; zero where nothing trades."""
        fees = np.abs(share_deltas * fill_prices) * self.commission_rate
        if self.min_commission > 0.0:
            fees = np.where(share_deltas != 0.0, np.maximum(fees, self.min_commission), 0.0)
        return fees
