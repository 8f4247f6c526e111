import numpy as np
import pytest

from tt_platform.core import CostModel


def test_fill_prices_move_against_the_order_side():
    model = CostModel(commission_bps=0, slippage_bps=10)
    fills = model.fill_prices(np.array([5.0, -5.0, 0.0]), np.array([100.0, 100.0, 100.0]))
    np.testing.assert_allclose(fills, [100.1, 99.9, 100.0])


def test_commission_in_bps_of_fill_notional_with_minimum_only_on_orders():
    model = CostModel(commission_bps=10, slippage_bps=0, min_commission=1.0)
    fees = model.commissions(np.array([100.0, 1.0, 0.0]), np.array([50.0, 50.0, 50.0]))
    # 100 x 50 x 0.001 = 5.0; 1 x 50 x 0.001 = 0.05 -> minimum 1.0; no order -> 0
    np.testing.assert_allclose(fees, [5.0, 1.0, 0.0])


@pytest.mark.parametrize("field", ["commission_bps", "slippage_bps", "min_commission"])
def test_negative_or_nan_costs_are_rejected_by_name(field):
    with pytest.raises(ValueError, match=field):
        CostModel(**{field: -1.0})
    with pytest.raises(ValueError, match=field):
        CostModel(**{field: float("nan")})
