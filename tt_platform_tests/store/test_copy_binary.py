import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tt_platform.store import copy_binary
from tt_platform.store.copy_binary import (
    PG_EPOCH_US,
    ChunkReader,
    WireColumn,
    encode_rows,
    text_column,
)
from tt_platform_tests.store.binary_copy_decoder import decode_rows


def _fixed(name, kind, values, null=None):
    values = np.asarray(values)
    return WireColumn(name, kind, values, np.zeros(len(values), bool) if null is None else np.asarray(null, bool))


def _expected_row(columns, i):
    out = []
    for c in columns:
        if c.null[i]:
            out.append(None)
        elif c.kind == "text":
            out.append(c.uniques[c.values[i]].encode())
        elif c.kind == "float8":
            out.append(struct.pack(">d", c.values[i]))
        elif c.kind in ("int8", "timestamptz"):
            out.append(struct.pack(">q", c.values[i]))
        else:
            out.append(struct.pack(">B", int(c.values[i])))
    return tuple(out)


def test_rows_encode_to_the_postgres_wire_format():
    columns = [
        text_column("sym", ["AAPL", "MSFT", None]),
        _fixed("px", "float8", [1.5, np.nan, -2.25], null=[False, True, False]),
        _fixed("n", "int8", [1, 2, -3]),
        _fixed("ok", "bool", [True, False, True]),
        _fixed("ts", "timestamptz", [0, PG_EPOCH_US, -1]),
    ]
    rows = decode_rows(b"".join(encode_rows(columns)))
    assert sorted(rows, key=repr) == sorted((_expected_row(columns, i) for i in range(3)), key=repr)
    assert (b"AAPL", struct.pack(">d", 1.5), struct.pack(">q", 1), b"\x01", struct.pack(">q", 0)) in rows


def test_grouped_and_rowwise_encodings_hold_the_same_rows():
    rng = np.random.default_rng(1)
    n = 5_000
    columns = [
        text_column("sym", rng.choice(["A", "BB", "CCC", "ÄÖ"], n).tolist()),
        _fixed("px", "float8", rng.normal(size=n), null=rng.random(n) < 0.1),
        _fixed("flag", "bool", rng.random(n) < 0.5, null=rng.random(n) < 0.05),
        _fixed("ts", "timestamptz", rng.integers(-(10**15), 10**15, n)),
    ]
    encoded_uniques = [copy_binary._encode_uniques(c, "utf-8") for c in columns]
    grouped = copy_binary._encode_chunk(columns, encoded_uniques, 0, n)
    rowwise = copy_binary._encode_chunk_rowwise(columns, encoded_uniques, 0, n)
    wrap = lambda body: copy_binary.HEADER + body + copy_binary.TRAILER  # noqa: E731
    assert grouped != rowwise  # grouped reorders rows: a real second code path is exercised
    assert sorted(decode_rows(wrap(grouped)), key=repr) == sorted(decode_rows(wrap(rowwise)), key=repr)
    assert len(decode_rows(wrap(grouped))) == n


def test_many_distinct_texts_fall_back_to_rowwise_and_stay_in_order():
    ids = [f"order-{i}" for i in range(1_000)]
    columns = [text_column("id", ids), _fixed("q", "float8", np.arange(1_000.0))]
    rows = decode_rows(b"".join(encode_rows(columns, chunk_rows=300)))
    assert [r[0].decode() for r in rows] == ids


def test_columns_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="has 2 rows, expected 3"):
        list(encode_rows([_fixed("a", "int8", [1, 2, 3]), _fixed("b", "int8", [1, 2])]))


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown wire kind"):
        WireColumn("x", "numeric", np.zeros(1), np.zeros(1, bool))


def test_chunk_reader_serves_arbitrary_read_sizes():
    reader = ChunkReader([b"abc", b"", b"defgh", b"i"])
    assert reader.read(2) == b"ab"
    assert reader.read(4) == b"c"
    assert reader.read(100) == b"defgh"
    assert reader.read() == b"i"
    assert reader.read(10) == b""


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.text(max_size=6)),
            st.one_of(st.none(), st.floats(allow_nan=False)),
            st.integers(min_value=-(2**63), max_value=2**63 - 1),
        ),
        min_size=1,
        max_size=80,
    ),
    st.integers(min_value=1, max_value=50),
)
def test_any_rows_round_trip_through_the_decoder(rows, chunk_rows):
    texts, floats, ints = zip(*rows)
    columns = [
        text_column("t", list(texts)),
        _fixed("f", "float8", [0.0 if f is None else f for f in floats], null=[f is None for f in floats]),
        _fixed("i", "int8", np.array(ints, dtype=np.int64)),
    ]
    decoded = decode_rows(b"".join(encode_rows(columns, chunk_rows=chunk_rows)))
    expected = [_expected_row(columns, i) for i in range(len(rows))]
    assert sorted(decoded, key=repr) == sorted(expected, key=repr)
