"""Transaction costs: commission schedules and slippage models.

``CostModel`` (commission and slippage in bps of notional) is what the training env's fast path
uses. The order-level path (``ExecutionCore.execute``) takes any commission schedule and
slippage model below; ``CostModel.commission_schedule()`` and ``.slippage_model()`` give the
ones that reproduce ``CostModel`` exactly.

Commission schedules (per order, on the filled shares at the fill price):
  * ``BpsCommission``: bps of notional with a minimum per order.
  * ``PerShareCommission``: per share, with a minimum and a maximum (fraction of trade value)
    per order; ``IB_FIXED_US`` is Interactive Brokers' fixed US schedule.
  * ``TieredPerShareCommission``: per-share rate by the month's share volume so far;
    ``IB_TIERED_US`` is IB's tiered US schedule.

Slippage models (adverse move per share from the reference price):
  * ``BpsSlippage``: bps of the price.
  * ``HalfSpreadSlippage``: half the bar's spread (ask - bid), or a proxy when the bar has no
    quotes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

BPS = 1e-4


def _check_non_negative(owner: str, **values: float | None) -> None:
    for name, value in values.items():
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{owner}.{name} must be a finite number >= 0, got {value!r}")


# ---------------------------------------------------------------------------- bps (env fast path)
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

    def commission_schedule(self) -> BpsCommission:
        """The order-level schedule charging exactly what ``commissions`` charges."""
        return BpsCommission(self.commission_bps, self.min_commission)

    def slippage_model(self) -> BpsSlippage:
        """The order-level slippage moving prices exactly as ``fill_prices`` does."""
        return BpsSlippage(self.slippage_bps)


# ---------------------------------------------------------------------------- commissions
class CommissionSchedule(Protocol):
    def order_commission(self, shares: float, price: float,
                         month_to_date_shares: float = 0.0) -> float:
        """Commission for one order filling ``shares`` (>= 0) at ``price``;
        ``month_to_date_shares`` is the share volume already traded this month (volume tiers)."""
        ...


@dataclass(frozen=True)
class BpsCommission:
    """``bps`` of the fill notional, at least ``minimum`` per order that fills."""

    bps: float = 0.0
    minimum: float = 0.0

    def __post_init__(self) -> None:
        _check_non_negative("BpsCommission", bps=self.bps, minimum=self.minimum)

    def order_commission(self, shares: float, price: float,
                         month_to_date_shares: float = 0.0) -> float:
        if shares == 0.0:
            return 0.0
        return max(abs(shares * price) * (self.bps * BPS), self.minimum)


def _per_share_fee(shares: float, price: float, rate: float, minimum: float,
                   max_fraction_of_value: float | None, fees_per_share: float) -> float:
    if shares == 0.0:
        return 0.0
    fee = max(shares * rate, minimum)
    if max_fraction_of_value is not None:
        # IB: "if the calculated maximum per order is less than the minimum per order, the
        # maximum will be charged" -- the cap wins over the minimum.
        fee = min(fee, max_fraction_of_value * shares * price)
    return fee + fees_per_share * shares


@dataclass(frozen=True)
class PerShareCommission:
    """``per_share`` x shares, at least ``minimum`` and at most ``max_fraction_of_value`` x
    trade value per order (the cap wins when it is below the minimum), plus
    ``fees_per_share`` of third-party fees outside the min/max."""

    per_share: float
    minimum: float = 0.0
    max_fraction_of_value: float | None = None
    fees_per_share: float = 0.0

    def __post_init__(self) -> None:
        _check_non_negative("PerShareCommission", per_share=self.per_share,
                            minimum=self.minimum, max_fraction_of_value=self.max_fraction_of_value,
                            fees_per_share=self.fees_per_share)

    def order_commission(self, shares: float, price: float,
                         month_to_date_shares: float = 0.0) -> float:
        return _per_share_fee(abs(shares), price, self.per_share, self.minimum,
                              self.max_fraction_of_value, self.fees_per_share)


@dataclass(frozen=True)
class TieredPerShareCommission:
    """A per-share rate that falls with the month's share volume.

    ``tiers``: (shares up to and including, rate per share), ascending; the last bound is
    ``inf``. An order is charged wholly at the tier of the first share it adds to the month
    (``month_to_date_shares + 1``); orders are not split across tiers. The caller tracks the
    month and resets the count (the core knows no calendar). Minimum, maximum and fees as in
    ``PerShareCommission``.
    """

    tiers: tuple[tuple[float, float], ...]
    minimum: float = 0.0
    max_fraction_of_value: float | None = None
    fees_per_share: float = 0.0

    def __post_init__(self) -> None:
        _check_non_negative("TieredPerShareCommission", minimum=self.minimum,
                            max_fraction_of_value=self.max_fraction_of_value,
                            fees_per_share=self.fees_per_share)
        bounds = [bound for bound, _ in self.tiers]
        if not bounds or bounds != sorted(bounds) or bounds[-1] != math.inf:
            raise ValueError("TieredPerShareCommission.tiers must be ascending and end at inf, "
                             f"got {self.tiers!r}")
        for _, rate in self.tiers:
            _check_non_negative("TieredPerShareCommission", tiers=rate)

    def rate(self, month_to_date_shares: float) -> float:
        first_share = month_to_date_shares + 1.0
        for bound, rate in self.tiers:
            if first_share <= bound:
                return rate
        return self.tiers[-1][1]

    def order_commission(self, shares: float, price: float,
                         month_to_date_shares: float = 0.0) -> float:
        return _per_share_fee(abs(shares), price, self.rate(month_to_date_shares), self.minimum,
                              self.max_fraction_of_value, self.fees_per_share)


# Interactive Brokers, IBKR Pro, US stocks and ETFs, as published on
# https://www.interactivebrokers.com/en/pricing/commissions-stocks.php (rates as listed there
# when this was written; check the page before relying on them).
# Modelled: the per-share rate, the minimum and the maximum per order (1 % of trade value).
# Not modelled: the USD 0.01 minimum for fractional-share orders; for the tiered schedule the
# third-party fees it passes through (exchange fees and rebates vary by venue and by adding or
# removing liquidity; regulatory fees on sales; clearing). The fixed schedule bundles exchange
# and most regulatory fees already. To charge clearing on the tiered schedule:
# dataclasses.replace(IB_TIERED_US, fees_per_share=IB_CLEARING_FEE_PER_SHARE).
IB_FIXED_US = PerShareCommission(per_share=0.005, minimum=1.00, max_fraction_of_value=0.01)
IB_TIERED_US = TieredPerShareCommission(
    tiers=((300_000, 0.0035), (3_000_000, 0.0020), (20_000_000, 0.0015),
           (100_000_000, 0.0010), (math.inf, 0.0005)),
    minimum=0.35, max_fraction_of_value=0.01)
IB_CLEARING_FEE_PER_SHARE = 0.00020  # NSCC, DTC, per IB's page above


# ---------------------------------------------------------------------------- slippage
class SlippageModel(Protocol):
    def per_share(self, reference_price: float, *, high: float = math.nan,
                  low: float = math.nan, bid: float = math.nan, ask: float = math.nan) -> float:
        """Adverse price move per share (>= 0) from ``reference_price``; buys pay it, sells
        give it up. NaN marks a field the bar does not have."""
        ...


@dataclass(frozen=True)
class BpsSlippage:
    """``bps`` of the reference price."""

    bps: float = 0.0

    def __post_init__(self) -> None:
        _check_non_negative("BpsSlippage", bps=self.bps)

    def per_share(self, reference_price: float, **_: float) -> float:
        return reference_price * (self.bps * BPS)


@dataclass(frozen=True)
class HalfSpreadSlippage:
    """Half the bar's spread: crossing it from the mid costs (ask - bid) / 2 per share.

    A bar with a bid and an ask uses them. Otherwise the spread is estimated, in this order:
    ``range_fraction`` x (high - low) when given and the bar has a range, else
    ``spread_bps`` of the price. The range proxy is crude (a bar's range is mostly
    volatility, not spread), so calibrate the fraction against quotes when you have them;
    ``spread_bps`` is the honest fallback for bars without a range.
    """

    range_fraction: float | None = None
    spread_bps: float | None = None

    def __post_init__(self) -> None:
        _check_non_negative("HalfSpreadSlippage", range_fraction=self.range_fraction,
                            spread_bps=self.spread_bps)
        if self.range_fraction is None and self.spread_bps is None:
            raise ValueError("HalfSpreadSlippage needs range_fraction or spread_bps for bars "
                             "without a bid and an ask")

    def spread(self, reference_price: float, *, high: float = math.nan, low: float = math.nan,
               bid: float = math.nan, ask: float = math.nan) -> float:
        if ask >= bid > 0.0:  # False for NaN quotes
            return ask - bid
        if self.range_fraction is not None and high >= low:
            return self.range_fraction * (high - low)
        if self.spread_bps is not None:
            return reference_price * (self.spread_bps * BPS)
        raise ValueError("HalfSpreadSlippage: the bar has neither quotes nor a high/low range "
                         "and no spread_bps is configured")

    def per_share(self, reference_price: float, **bar: float) -> float:
        return 0.5 * self.spread(reference_price, **bar)
