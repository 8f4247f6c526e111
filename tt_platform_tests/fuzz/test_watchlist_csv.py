"""Fuzzing the watchlist CSV: headers, symbols, extra columns, quoting, comments, encodings.

Property: a watchlist is either read into distinct valid symbols (pattern, 3-letter currency, at
most ``max_symbols``) or refused with a ``WatchlistError`` that starts with the file and names a
line that exists.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tt_platform.data.watchlist import SYMBOL_PATTERN, WatchlistError, load_watchlist, parse_watchlist
from tt_platform_tests.fuzz.properties import FUZZ, assert_names_problem

VALID_SYMBOLS = st.from_regex(r"[A-Za-z][A-Za-z0-9.\-]{0,5}", fullmatch=True)
SYMBOLS = st.one_of(
    VALID_SYMBOLS, VALID_SYMBOLS, VALID_SYMBOLS, VALID_SYMBOLS, VALID_SYMBOLS, VALID_SYMBOLS,
    st.sampled_from([" brk.b ", "TOOLONGSYMBOL1234", "1ABC", "S P Y", "", "é", '"SPY"']),
    st.text(alphabet="ABCXYZ.-0189 ", min_size=1, max_size=6),
)
HEADERS = st.sampled_from([
    None, None, "symbol", "symbol", "Symbol", "ticker", "tickers", "symbols", "symbol,exchange,currency,primary_exchange",
    "name,weight", "exchange,symbol", "symbol,currency", "", "#comment", "symbol,symbol",
])
EXTRA = st.sampled_from(["", "SMART", "usd", "NYSE", "", "SMART", "EUR", "DOLLARS", '"a,b"'])
LINE_ENDS = st.sampled_from(["\n", "\r\n", "\r", "\u2028", "\x0c"])


@st.composite
def watchlist_texts(draw) -> str:
    header = draw(HEADERS)
    rows = []
    for _ in range(draw(st.integers(0, 8))):
        cells = [draw(SYMBOLS)] + draw(st.lists(EXTRA, max_size=4))
        rows.append(draw(st.sampled_from([",", ",", ",", ";", ", "])).join(cells))
        if draw(st.integers(0, 12)) == 0:
            rows.append(draw(st.sampled_from(["", "   ", "# a comment", ",,,", '"unterminated', "A" * 140_000])))
    lines = ([header] if header is not None else []) + rows
    return draw(LINE_ENDS).join(lines)


def _line_count(text: str) -> int:
    return max(1, len(text.splitlines()))


def _assert_clear(error: WatchlistError, source: str, text: str) -> None:
    assert_names_problem(str(error), source)
    line = re.match(rf"{re.escape(source)}: line (\d+):", str(error))
    if line:
        assert 1 <= int(line.group(1)) <= _line_count(text), f"no such line in the file: {error}"


@FUZZ
@given(st.one_of(watchlist_texts(), st.text(max_size=200)), st.integers(1, 6))
def test_a_watchlist_text_is_read_into_valid_symbols_or_refused_naming_the_line(text, max_symbols):
    try:
        watchlist = parse_watchlist(text, source="universe.csv", max_symbols=max_symbols)
    except WatchlistError as error:
        event("refused")
        _assert_clear(error, "universe.csv", text)
    else:
        event("read")
        symbols = watchlist.symbols
        assert 1 <= len(symbols) <= max_symbols
        assert len(set(symbols)) == len(symbols)
        assert all(SYMBOL_PATTERN.match(symbol) for symbol in symbols)
        assert all(len(entry.currency) == 3 for entry in watchlist.entries)


@FUZZ
@given(st.one_of(
    watchlist_texts().map(lambda text: text.encode("utf-8")),
    watchlist_texts().map(lambda text: text.encode("utf-16")),
    watchlist_texts().map(lambda text: b"\xef\xbb\xbf" + text.encode("utf-8")),
    st.tuples(watchlist_texts(), st.binary(min_size=1, max_size=8)).map(lambda p: p[0].encode("utf-8") + p[1]),
    st.binary(max_size=200),
))
def test_a_watchlist_file_of_any_bytes_is_read_or_refused_naming_the_file(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("watchlist") / "universe.csv"
    path.write_bytes(raw)
    try:
        watchlist = load_watchlist(path, max_symbols=50)
    except WatchlistError as error:
        event("refused")
        assert_names_problem(str(error), str(path))
        assert "\n" not in str(error), "one line"
    else:
        event("read")
        assert watchlist.source == str(path) and watchlist.symbols


def test_a_field_beyond_the_csv_limit_is_named_by_its_line():
    with pytest.raises(WatchlistError) as error:
        parse_watchlist("symbol\nSPY\n" + "A" * 140_000 + "\n", source="universe.csv")
    assert str(error.value) == "universe.csv: line 3: not a CSV row (field larger than field limit (131072))"


def test_rows_after_a_quoted_cell_spanning_lines_keep_their_own_line_numbers():
    with pytest.raises(WatchlistError) as error:
        parse_watchlist('symbol,exchange\nSPY,"NY\nSE"\nQQQ,ARCA\nB B,ARCA\n', source="universe.csv")
    assert str(error.value).startswith("universe.csv: line 5: invalid symbol 'B B'")
