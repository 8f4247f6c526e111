import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from tt_platform.store.copy_binary import PG_EPOCH_US
from tt_platform.store.wire import WireError, json_safe, to_wire, wire_kind

_meta = sa.MetaData()
T = sa.Table(
    "t",
    _meta,
    sa.Column("f", sa.Double),
    sa.Column("i", sa.BigInteger),
    sa.Column("b", sa.Boolean),
    sa.Column("ts", sa.DateTime(timezone=True)),
    sa.Column("naive", sa.DateTime()),
    sa.Column("s", sa.Text),
    sa.Column("j", JSONB),
    sa.Column("d", sa.Date),
)


def test_wire_kinds_follow_the_column_types():
    assert [wire_kind(T.c[n]) for n in ("f", "i", "b", "ts", "s", "j")] == [
        "float8", "int8", "bool", "timestamptz", "text", "json",
    ]
    with pytest.raises(WireError, match=r"t\.naive: only timestamptz"):
        wire_kind(T.c.naive)
    with pytest.raises(WireError, match=r"t\.d: column type"):
        wire_kind(T.c.d)


def test_nan_none_and_nat_become_null():
    floats = to_wire(T.c.f, pd.Series([1.0, np.nan, None]))
    assert floats.null.tolist() == [False, True, True]
    stamps = to_wire(T.c.ts, pd.Series([pd.Timestamp("2020-01-01", tz="UTC"), pd.NaT]))
    assert stamps.null.tolist() == [False, True]
    texts = to_wire(T.c.s, pd.Series(["a", None, float("nan")], dtype=object))
    assert texts.null.tolist() == [False, True, True]


def test_timestamps_become_utc_microseconds_since_2000():
    series = pd.Series(pd.to_datetime(["2000-01-01 01:00:00.000001+01:00", "1999-12-31 23:59:59+00:00"], utc=True, format="ISO8601"))
    wire = to_wire(T.c.ts, series.dt.tz_convert("America/New_York"))
    assert wire.values.tolist() == [1, -1_000_000]
    strings = to_wire(T.c.ts, pd.Series(["2000-01-01T00:00:00Z", "2000-01-01T02:00:00+02:00"]))
    assert strings.values.tolist() == [0, 0]
    assert PG_EPOCH_US == pd.Timestamp("2000-01-01", tz="UTC").value // 1000


def test_naive_timestamps_are_refused():
    with pytest.raises(WireError, match="tz-naive"):
        to_wire(T.c.ts, pd.Series(pd.to_datetime(["2020-01-01"])))
    with pytest.raises(WireError, match="without a UTC offset"):
        to_wire(T.c.ts, pd.Series(["2020-01-01 10:00"]))


def test_bad_numbers_name_column_and_row():
    with pytest.raises(WireError, match=r"t\.f: expected a number, got 'abc' at row 'r2'"):
        to_wire(T.c.f, pd.Series([1, "abc"], index=["r1", "r2"], dtype=object))
    with pytest.raises(WireError, match=r"t\.i: expected an integer, got 1.5 at row 1"):
        to_wire(T.c.i, pd.Series([1.0, 1.5]))
    with pytest.raises(WireError, match=r"t\.b: expected a boolean, got 'yes' at row 0"):
        to_wire(T.c.b, pd.Series(["yes", True], dtype=object))
    with pytest.raises(WireError, match=r"t\.s: expected text, got 3 at row 1"):
        to_wire(T.c.s, pd.Series(["a", 3], dtype=object))


def test_integers_keep_full_int64_precision():
    big = 2**62 + 1
    wire = to_wire(T.c.i, pd.Series([big, None], dtype="Int64"))
    assert wire.values[0] == big and wire.null.tolist() == [False, True]


def test_json_values_are_serialised_with_numpy_and_nan_handled():
    wire = to_wire(T.c.j, pd.Series([{"a": np.float64(1.5), "b": np.nan, "c": np.arange(2)}, None], dtype=object))
    assert wire.uniques[wire.values[0]] == '{"a": 1.5, "b": null, "c": [0, 1]}'
    assert wire.null.tolist() == [False, True]
    assert json_safe({"t": pd.Timestamp("2020-01-01", tz="UTC")}) == {"t": "2020-01-01T00:00:00+00:00"}
    with pytest.raises(WireError, match=r"t\.j: value at row 0 is not JSON-serialisable"):
        to_wire(T.c.j, pd.Series([{"x": object()}], dtype=object))
