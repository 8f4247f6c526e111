"""Validate, then commit, for corporate actions.

Every check of ``validate_actions`` refuses a whole batch: the error is one sentence naming the
bad row (position, symbol, ex_date, action_type, value) and the problem, and the store keeps
exactly the rows it had, although the refused batch also carried good rows (an update of a
stored event and a new one) that would otherwise have been written.
"""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

from tt_platform.data.corporate_actions import CorporateActionError
from tt_platform.data.corporate_actions.validation import (
    MAX_DAYS_AHEAD,
    MAX_SPLIT_RATIO,
    MIN_SPLIT_RATIO,
    InvalidActionsError,
    validate_actions,
)
from tt_platform.pipeline.corporate_actions import import_actions
from tt_platform.store.corporate_actions import (
    read_corporate_actions,
    write_corporate_actions,
)

TODAY = dt.date(2026, 1, 15)


def event(symbol="KO", ex_date="2014-03-12", action_type="cash_dividend", value=0.305, source="test") -> dict:
    return {"symbol": symbol, "ex_date": ex_date, "action_type": action_type, "value": value, "source": source}


SEED = [
    event("AAPL", "2014-06-09", "split", 7.0),
    event("MSFT", "2014-02-18", "cash_dividend", 0.28),
    event("AIG", "2009-07-01", "split", 0.05),  # 1:20 reverse split
]
# good rows sent along with each bad one: they would change the store if the batch got through
GOOD_CHANGES = [
    event("MSFT", "2014-02-18", "cash_dividend", 0.29),
    event("IBM", "2014-05-07", "cash_dividend", 0.95),
]


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["symbol", "ex_date", "action_type", "value", "source"])


def seeded(engine) -> pd.DataFrame:
    write_corporate_actions(engine, frame(SEED), today=TODAY)
    stored = read_corporate_actions(engine)
    assert len(stored) == len(SEED)
    return stored


def refused(engine, bad_row: dict, *fragments: str) -> str:
    """Seed the store, send GOOD_CHANGES with ``bad_row`` between them, and check that the batch is
    refused with a message naming ``fragments`` and that the store is exactly as seeded."""
    before = seeded(engine)
    batch = frame([GOOD_CHANGES[0], bad_row, GOOD_CHANGES[1]])
    with pytest.raises(InvalidActionsError) as info:
        write_corporate_actions(engine, batch, today=TODAY)
    message = str(info.value)
    assert "row 2 of 3 in the batch" in message and "1 of the 3 rows fails a check" in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message and message.endswith("so nothing of the batch is stored"), message
    pd.testing.assert_frame_equal(read_corporate_actions(engine), before)
    return message


# ---- one test per check, against the store ---------------------------------------------------------


def test_the_good_rows_sent_with_each_bad_one_are_written_when_alone(store_engine):
    seeded(store_engine)
    assert write_corporate_actions(store_engine, frame(GOOD_CHANGES), today=TODAY) == 2
    stored = read_corporate_actions(store_engine).set_index(["symbol", "action_type"])["value"]
    assert stored[("MSFT", "cash_dividend")] == 0.29 and stored[("IBM", "cash_dividend")] == 0.95


@pytest.mark.parametrize("symbol", [None, "", "   "], ids=["none", "empty", "spaces"])
def test_a_missing_or_blank_symbol_is_refused_and_the_store_keeps_its_rows(store_engine, symbol):
    refused(store_engine, event(symbol=symbol), "has no symbol", "ex_date 2014-03-12", "value 0.305")


@pytest.mark.parametrize("ex_date", [None, "", pd.NaT], ids=["none", "empty", "nat"])
def test_a_missing_ex_date_is_refused_and_the_store_keeps_its_rows(store_engine, ex_date):
    refused(store_engine, event(ex_date=ex_date), "symbol KO", "has no ex_date")


@pytest.mark.parametrize("ex_date", ["2014-13-45", "next week", 20140312], ids=["month-13", "text", "number"])
def test_an_ex_date_that_is_not_a_date_is_refused_and_the_store_keeps_its_rows(store_engine, ex_date):
    refused(store_engine, event(ex_date=ex_date), "symbol KO", f"ex_date {ex_date!r}", "is not a readable date")


@pytest.mark.parametrize(
    ("ex_date", "shown"),
    [
        ("2014-03-12 13:30", "2014-03-12T13:30:00+00:00"),
        (pd.Timestamp("2014-03-12", tz="America/New_York"), "2014-03-12T04:00:00+00:00"),  # not UTC midnight
    ],
    ids=["afternoon", "new-york-midnight"],
)
def test_an_ex_date_with_a_time_of_day_is_refused_and_the_store_keeps_its_rows(store_engine, ex_date, shown):
    refused(store_engine, event(ex_date=ex_date), f"ex_date {shown}", "has an ex_date with a time of day", "00:00 UTC")


def test_an_ex_date_decades_ahead_is_refused_and_the_store_keeps_its_rows(store_engine):
    refused(
        store_engine, event(ex_date="2099-03-12"),
        "symbol KO, ex_date 2099-03-12", f"more than {MAX_DAYS_AHEAD} days after today (2026-01-15)",
    )


@pytest.mark.parametrize(("action_type", "shown"), [("spinoff", "spinoff"), (None, "nan")], ids=["spinoff", "none"])
def test_an_unknown_action_type_is_refused_and_the_store_keeps_its_rows(store_engine, action_type, shown):
    refused(store_engine, event(action_type=action_type), f"action_type {shown}", "not one of split, cash_dividend")


@pytest.mark.parametrize(
    ("value", "shown"),
    [(math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf"), ("abc", "'abc'"), (None, "nan")],
    ids=["nan", "inf", "minus-inf", "text", "none"],
)
def test_a_value_that_is_not_a_finite_number_is_refused_and_the_store_keeps_its_rows(store_engine, value, shown):
    refused(store_engine, event(value=value), f"value {shown}", "has a value that is not a finite number")


@pytest.mark.parametrize("ratio", [0.0, -2.0], ids=["zero", "negative"])
def test_a_split_ratio_of_zero_or_less_is_refused_and_the_store_keeps_its_rows(store_engine, ratio):
    refused(
        store_engine, event("AAPL", "2014-06-09", "split", ratio),
        f"symbol AAPL, ex_date 2014-06-09, action_type split, value {ratio!r}", "split ratio", "outside [0.001, 1000]",
    )


@pytest.mark.parametrize("ratio", [5000.0, 0.0001], ids=["5000-for-1", "1-for-10000"])
def test_an_absurd_split_ratio_is_refused_and_the_store_keeps_its_rows(store_engine, ratio):
    refused(store_engine, event("AAPL", "2014-06-09", "split", ratio), f"value {ratio!r}", "outside [0.001, 1000]")


def test_a_negative_dividend_is_refused_and_the_store_keeps_its_rows(store_engine):
    refused(store_engine, event(value=-0.305), "symbol KO", "value -0.305", "has a negative dividend")


@pytest.mark.parametrize("source", [None, " "], ids=["none", "blank"])
def test_a_missing_source_is_refused_and_the_store_keeps_its_rows(store_engine, source):
    refused(store_engine, event(source=source), "symbol KO", "has no source")


def test_one_key_with_two_values_in_a_batch_is_refused_and_the_store_keeps_its_rows(store_engine):
    before = seeded(store_engine)
    same_key = [event("aapl", "2014-06-09", "split", 7.0), event("AAPL ", "2014-06-09", "Split", 2.0)]
    batch = frame([GOOD_CHANGES[1], *same_key])
    with pytest.raises(InvalidActionsError) as info:
        write_corporate_actions(store_engine, batch, today=TODAY)
    message = str(info.value)
    assert "row 2 of 3 in the batch (symbol AAPL, ex_date 2014-06-09, action_type split, value 7.0)" in message
    assert "2 rows of the batch share with different values 7.0 and 2.0" in message, message
    pd.testing.assert_frame_equal(read_corporate_actions(store_engine), before)


def test_a_key_listed_twice_with_one_value_is_refused_and_the_store_keeps_its_rows(store_engine):
    # two same-day dividend rows may be two payments (special + regular): summing or dropping
    # one is the caller's decision, not the store's
    before = seeded(store_engine)
    batch = frame([GOOD_CHANGES[1], event(value=0.5), event(value=0.5)])
    shared = r"row 2 of 3 .*value 0.5\) has a key .* that 2 rows of the batch share: "
    with pytest.raises(InvalidActionsError, match=shared):
        write_corporate_actions(store_engine, batch, today=TODAY)
    pd.testing.assert_frame_equal(read_corporate_actions(store_engine), before)


def test_a_batch_without_a_source_column_is_refused_and_the_store_keeps_its_rows(store_engine):
    before = seeded(store_engine)
    with pytest.raises(InvalidActionsError, match=r"lacks the columns \['source'\]"):
        write_corporate_actions(store_engine, frame(GOOD_CHANGES).drop(columns="source"), today=TODAY)
    pd.testing.assert_frame_equal(read_corporate_actions(store_engine), before)


def test_an_empty_batch_writes_nothing_and_changes_nothing(store_engine):
    before = seeded(store_engine)
    assert write_corporate_actions(store_engine, frame([]), today=TODAY) == 0
    pd.testing.assert_frame_equal(read_corporate_actions(store_engine), before)


def test_a_refused_batch_inside_a_callers_transaction_leaves_that_transaction_usable(store_engine):
    with store_engine.connect() as conn:
        write_corporate_actions(conn, frame(SEED), today=TODAY)
        with pytest.raises(InvalidActionsError, match="has a negative dividend"):
            write_corporate_actions(conn, frame([*GOOD_CHANGES, event("KO", value=-1.0)]), today=TODAY)
        conn.commit()  # the caller's own writes still commit; the refused batch left nothing
    stored = read_corporate_actions(store_engine)
    assert sorted(stored["symbol"]) == ["AAPL", "AIG", "MSFT"]
    assert stored.set_index("symbol").loc["MSFT", "value"] == 0.28


# ---- the pipeline names the file ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "problems"),
    [
        ("IBM,2099-05-07,cash_dividend,0.95", ["row ", "ex_date 2099-05-07", "days after today"]),
        ("AAPL,2014-06-09,split,5000", ["row ", "action_type split, value 5000.0", "outside [0.001, 1000]"]),
        # consolidation groups by symbol and ex_date: these rows would otherwise vanish silently
        (",2014-05-07,cash_dividend,0.95", ["1 event has no symbol or no ex_date", "cash_dividend of 0.95"]),
        ("IBM,,cash_dividend,0.95", ["1 event has no symbol or no ex_date", "cash_dividend of 0.95"]),
    ],
    ids=["far-future", "absurd-split", "blank-symbol", "blank-ex-date"],
)
def test_a_refused_file_is_named_first_in_the_error_and_nothing_of_it_is_stored(store_engine, tmp_path, line, problems):
    before = seeded(store_engine)
    path = tmp_path / "actions.csv"
    path.write_text(f"symbol,ex_date,action_type,value\nMSFT,2014-02-18,cash_dividend,0.29\n{line}\nKO,2014-03-12,cash_dividend,0.305\n")
    with pytest.raises(ValueError) as info:
        import_actions(store_engine, path, "csv")
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    for problem in problems:
        assert problem in message, message
    pd.testing.assert_frame_equal(read_corporate_actions(store_engine), before)


# ---- the validator alone (no database) ------------------------------------------------------------


def test_refusals_are_value_errors_of_the_corporate_actions_family():
    assert issubclass(InvalidActionsError, CorporateActionError) and issubclass(InvalidActionsError, ValueError)


def test_a_good_batch_comes_back_in_canonical_form():
    batch = frame(
        [
            event(" aapl ", dt.date(2014, 6, 9), "Split", 7),
            event("msft", pd.Timestamp("2014-02-18"), "cash_dividend", "0.28"),
        ]
    )
    out = validate_actions(batch, today=TODAY)
    assert out["symbol"].tolist() == ["AAPL", "MSFT"]
    assert out["ex_date"].tolist() == [pd.Timestamp("2014-06-09", tz="UTC"), pd.Timestamp("2014-02-18", tz="UTC")]
    assert str(out["ex_date"].dtype) == "datetime64[ns, UTC]"
    assert out["action_type"].tolist() == ["split", "cash_dividend"]
    assert out["value"].tolist() == [7.0, 0.28]


def test_a_datetime_column_outside_the_storable_range_is_refused_not_overflowed():
    batch = frame([event()]).assign(ex_date=pd.Series([pd.Timestamp("1500-01-01")], dtype="datetime64[s]"))
    with pytest.raises(InvalidActionsError, match="is not a readable date between 1677 and 2262"):
        validate_actions(batch, today=TODAY)


def test_naive_timestamps_are_taken_as_utc_midnight():
    batch = frame([event(ex_date=None)]).assign(ex_date=pd.to_datetime(["2014-05-07"]))
    assert validate_actions(batch, today=TODAY)["ex_date"].tolist() == [pd.Timestamp("2014-05-07", tz="UTC")]


def test_an_empty_batch_is_valid():
    assert validate_actions(frame([]), today=TODAY).empty


@pytest.mark.parametrize("ratio", [MIN_SPLIT_RATIO, 0.05, 1.0, 7.0, MAX_SPLIT_RATIO])
def test_split_ratios_within_the_bounds_are_accepted(ratio):
    assert validate_actions(frame([event(action_type="split", value=ratio)]), today=TODAY)["value"].tolist() == [ratio]


@pytest.mark.parametrize("ratio", [MIN_SPLIT_RATIO * 0.999, MAX_SPLIT_RATIO * 1.001])
def test_split_ratios_just_outside_the_bounds_are_refused(ratio):
    with pytest.raises(InvalidActionsError, match=r"split ratio \(new shares per old share\) outside \[0.001, 1000\]"):
        validate_actions(frame([event(action_type="split", value=ratio)]), today=TODAY)


def test_announced_ex_dates_up_to_a_year_ahead_are_accepted_and_later_ones_refused():
    latest = TODAY + dt.timedelta(days=MAX_DAYS_AHEAD)
    assert len(validate_actions(frame([event(ex_date=latest.isoformat())]), today=TODAY)) == 1
    too_late = (latest + dt.timedelta(days=1)).isoformat()
    with pytest.raises(InvalidActionsError, match=f"ex_date {too_late}.*the latest accepted is {latest.isoformat()}"):
        validate_actions(frame([event(ex_date=too_late)]), today=TODAY)


def test_today_defaults_to_the_current_utc_date():
    soon = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)).isoformat()
    assert len(validate_actions(frame([event(ex_date=soon)]))) == 1
    with pytest.raises(InvalidActionsError, match="days after today"):
        validate_actions(frame([event(ex_date="2099-05-07")]))


def test_the_message_names_the_first_bad_row_and_counts_every_bad_row():
    batch = frame([event("KO"), event("PEP", value=-1.0), event("AAPL", action_type="split", value=0.0), event("IBM")])
    with pytest.raises(InvalidActionsError) as info:
        validate_actions(batch, today=TODAY, origin="vendor.csv")
    assert str(info.value) == (
        "vendor.csv: row 2 of 4 in the batch (symbol PEP, ex_date 2014-03-12, action_type cash_dividend, "
        "value -1.0) has a negative dividend; 2 of the 4 rows fail a check, so nothing of the batch is stored"
    )


def test_a_row_failing_several_checks_is_reported_for_the_first_of_them():
    with pytest.raises(InvalidActionsError, match="has no symbol; 1 of the 1 rows fails a check"):
        validate_actions(frame([event(symbol=None, ex_date="2099-01-01", value=-1.0)]), today=TODAY)


def test_a_key_shared_by_many_rows_lists_a_few_of_their_values():
    batch = frame([event(value=v) for v in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)])
    with pytest.raises(InvalidActionsError, match=r"different values 0.1, 0.2, 0.3, 0.4 and 2 more:"):
        validate_actions(batch, today=TODAY)
