import pandas as pd
import pytest

from tt_platform.data.corporate_actions import (
    ACTION_COLUMNS,
    CorporateActionError,
    actions_from_quandl_wiki,
    actions_from_zipline_csvdir,
    normalize_actions,
    read_actions_csv,
)
from tt_platform.data.importers import read_quandl_wiki_table, read_zipline_csvdir_table


def utc(value):
    return pd.Timestamp(value, tz="UTC")


def test_normalize_actions_coerces_and_sorts():
    frame = pd.DataFrame(
        {"symbol": ["msft", "aapl"], "ex_date": ["2014-02-18", "2014-06-09"], "action_type": ["Cash_Dividend", "split"], "value": ["0.28", 7]}
    )
    out = normalize_actions(frame)
    assert list(out.columns) == ACTION_COLUMNS
    assert out["symbol"].tolist() == ["AAPL", "MSFT"]
    assert out["ex_date"].tolist() == [utc("2014-06-09"), utc("2014-02-18")]
    assert out["action_type"].tolist() == ["split", "cash_dividend"]
    assert str(out["ex_date"].dtype) == "datetime64[ns, UTC]"


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [("action_type", "spinoff", "unknown action_type 'spinoff'"), ("value", 0, "positive number"), ("value", "x", "positive number")],
)
def test_normalize_actions_rejects_bad_rows(column, value, message):
    frame = pd.DataFrame({"symbol": ["AAPL"], "ex_date": ["2014-06-09"], "action_type": ["split"], "value": [7.0]})
    frame[column] = [value]
    with pytest.raises(CorporateActionError, match=message) as info:
        normalize_actions(frame, "my table")
    assert "my table" in str(info.value) and "AAPL 2014-06-09" in str(info.value)


def test_missing_columns():
    with pytest.raises(CorporateActionError, match="missing columns"):
        normalize_actions(pd.DataFrame({"symbol": ["A"]}))


def test_zipline_dividends_are_restated_in_raw_terms():
    table = pd.DataFrame(
        {
            "symbol": "AAPL",
            "ts": pd.to_datetime(["2014-05-08", "2014-06-09", "2014-08-07"], utc=True),
            "dividend": [0.47, 0.0, 0.47],
            "split": [1.0, 7.0, 1.0],
        }
    )
    actions = actions_from_zipline_csvdir(table)
    assert actions["value"].tolist() == pytest.approx([3.29, 7.0, 0.47])
    assert actions["action_type"].tolist() == ["cash_dividend", "split", "cash_dividend"]


def test_real_quandl_events(shared_data):
    table = read_quandl_wiki_table(shared_data / "corporate_actions/zipline_quandl_wiki/QUANDL_SAMPLE_TABLE.csv")
    actions = actions_from_quandl_wiki(table)
    aapl = actions[actions["symbol"] == "AAPL"]
    assert aapl["value"].tolist() == [3.05, 3.29, 7.0, 0.47, 0.47]  # MANIFEST §2.3 cross-check
    assert actions.groupby("symbol").size().to_dict() == {"AAPL": 5, "MSFT": 4}
    aig = actions_from_quandl_wiki(read_quandl_wiki_table(shared_data / "corporate_actions/pyalgotrade_quandl_wiki/WIKI-AIG-2009-quandl.csv"))
    assert aig[["ex_date", "action_type", "value"]].values.tolist() == [[utc("2009-07-01"), "split", 0.05]]


def test_real_zipline_events_match_lean(shared_data):
    zipline = pd.concat(
        [actions_from_zipline_csvdir(read_zipline_csvdir_table(shared_data / f"corporate_actions/zipline_csvdir/{s}.csv.gz")) for s in ("AAPL", "IBM")]
    )
    lean = read_actions_csv(shared_data / "corporate_actions/derived_lean_corporate_actions.csv")
    lean = lean[lean["symbol"].isin(["AAPL", "IBM"]) & (lean["ex_date"] >= utc("2012-01-03")) & (lean["ex_date"] <= utc("2014-12-31"))]
    merged = zipline.merge(lean, on=["symbol", "ex_date", "action_type"], how="outer", indicator=True)
    assert (merged["_merge"] == "both").all() and len(merged) == 23  # AAPL 10 dividends + 1 split, IBM 12 dividends
    assert (merged["value_x"] - merged["value_y"]).abs().max() < 1e-3  # csvdir rounds 2.65 / 7 to 5 digits
    ko = actions_from_zipline_csvdir(read_zipline_csvdir_table(shared_data / "corporate_actions/zipline_csvdir/KO.csv.gz"))
    assert ko[ko["action_type"] == "split"][["ex_date", "value"]].values.tolist() == [[utc("2012-08-13"), 2.0]]


def test_consolidate_same_day_events():
    from tt_platform.data.corporate_actions import consolidate_actions

    frame = pd.DataFrame(
        {
            "symbol": ["BAC", "BAC", "BAC", "XYZ", "XYZ"],
            "ex_date": ["1998-10-01"] * 3 + ["2020-01-02"] * 2,
            "action_type": ["cash_dividend"] * 3 + ["split"] * 2,
            "value": [0.38, 0.38, 0.38, 2.0, 3.0],
        }
    )
    out = consolidate_actions(frame)
    assert out[["symbol", "action_type"]].values.tolist() == [["BAC", "cash_dividend"], ["XYZ", "split"]]
    assert out["value"].tolist() == pytest.approx([1.14, 6.0])
