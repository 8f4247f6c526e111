import numpy as np
import pandas as pd
import pytest

from tt_platform.env.market import MarketData
from tt_platform.pipeline.evaluation import first_test_index
from tt_platform.pipeline.training import PolicyRecord


def policy(train_end: str) -> PolicyRecord:
    return PolicyRecord("p", "model.zip", None, None, "f", "d", "c", 1, train_end, {})


def market(n: int) -> MarketData:
    ts = pd.date_range("2021-01-04", periods=n, freq="B", tz="UTC")
    return MarketData.from_close(ts, ["AAA"], np.linspace(10, 20, n).reshape(n, 1))


def test_evaluation_starts_after_the_last_training_bar_whatever_was_ingested_since():
    data = market(20)
    trained_until = str(data.timestamps[9])
    assert first_test_index(data, policy(trained_until)) == 10
    longer = market(40)  # more history stored since: the cut stays after the training data
    assert first_test_index(longer, policy(trained_until)) == 10


def test_too_little_data_after_training_is_an_error():
    data = market(20)
    with pytest.raises(ValueError, match="too few to evaluate"):
        first_test_index(data, policy(str(data.timestamps[18])))
    with pytest.raises(ValueError, match="does not record"):
        first_test_index(data, policy(""))
