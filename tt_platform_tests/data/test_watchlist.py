import pytest

from tt_platform.data.watchlist import WatchlistError, load_watchlist, parse_watchlist, watchlist_from_symbols


def test_dedupe_uppercase_and_extra_columns(tmp_path):
    path = tmp_path / "wl.csv"
    path.write_text("symbol,exchange,currency\nspy,smart,usd\nQQQ,,\n spy ,SMART,USD\n\n# comment\nbrk.b,NYSE,USD\n")
    watchlist = load_watchlist(path)
    assert watchlist.symbols == ["SPY", "QQQ", "BRK.B"]
    assert watchlist.duplicates_dropped == ("SPY",)
    assert watchlist.entries[2].exchange == "NYSE"
    assert watchlist.entries[1].currency == "USD"


def test_headerless_one_symbol_per_line():
    assert parse_watchlist("aapl\nmsft\n").symbols == ["AAPL", "MSFT"]


def test_snapshot_hash_is_order_independent_and_content_sensitive():
    a = watchlist_from_symbols(["SPY", "QQQ"])
    b = watchlist_from_symbols(["QQQ", "SPY"])
    c = watchlist_from_symbols(["SPY", "IWM"])
    assert a.snapshot_hash == b.snapshot_hash
    assert a.snapshot_hash != c.snapshot_hash
    assert len(a.snapshot_hash) == 16


@pytest.mark.parametrize(
    "text, expected",
    [
        ("symbol\nSPY\nBAD SYMBOL\n", "line 3: invalid symbol 'BAD SYMBOL'"),
        ("symbol\n", "watchlist has no symbols"),
        ("", "watchlist is empty"),
        ("name,weight\nSPY,1\n", "line 1: no 'symbol' column"),
        ("symbol,currency\nSPY,DOLLARS\n", "line 2: currency 'DOLLARS'"),
    ],
)
def test_errors_name_source_line_and_problem(text, expected):
    with pytest.raises(WatchlistError) as error:
        parse_watchlist(text, source="my.csv")
    assert "my.csv" in str(error.value)
    assert expected in str(error.value)


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(WatchlistError, match="not found"):
        load_watchlist(tmp_path / "absent.csv")
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(WatchlistError, match="not UTF-8"):
        load_watchlist(binary)


def test_comments_before_the_header_keep_its_columns_and_line_numbers():
    watchlist = parse_watchlist("# my universe\n\nsymbol,exchange\nSPY,ARCA\nqqq,\n")
    assert watchlist.symbols == ["SPY", "QQQ"]
    assert watchlist.entries[0].exchange == "ARCA"
    with pytest.raises(WatchlistError, match="line 4: invalid symbol"):
        parse_watchlist("# my universe\n\nsymbol\nS P Y\n", source="x")
    assert parse_watchlist("tickers\nAAPL\n").symbols == ["AAPL"]


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b"symbol\nSPY\nQQQ\n\xe9TF\n", "line 4: not UTF-8 text (byte 0xe9 at offset 15)"),
        (b"\xff\xfe\x00\x81", "line 1: not UTF-8 text (byte 0xff at offset 0; it looks like UTF-16 text)"),
        (b"symbol\nSPY\x00\n", "line 2: not a text file (NUL byte at offset 10; binary data or UTF-16/32 text)"),
    ],
)
def test_a_watchlist_that_is_not_utf8_text_names_file_line_and_offset(tmp_path, raw, expected):
    path = tmp_path / "wl.csv"
    path.write_bytes(raw)
    with pytest.raises(WatchlistError) as error:
        load_watchlist(path)
    assert str(error.value) == f"{path}: {expected}"


def test_a_directory_given_as_watchlist_is_named_as_such(tmp_path):
    with pytest.raises(WatchlistError) as error:
        load_watchlist(tmp_path)
    assert str(error.value) == f"{tmp_path}: is a directory, not a file"


def test_a_utf8_bom_before_the_header_is_allowed(tmp_path):
    path = tmp_path / "wl.csv"
    path.write_bytes("\ufeffsymbol\nspy\n".encode())
    assert load_watchlist(path).symbols == ["SPY"]


def test_watchlist_over_the_universe_limit_names_the_count_and_setting():
    text = "symbol\n" + "\n".join(f"S{i}" for i in range(5)) + "\nS0\n"
    with pytest.raises(WatchlistError) as error:
        parse_watchlist(text, source="big.csv", max_symbols=4)
    assert str(error.value) == "big.csv: 5 symbols exceed the universe limit of 4 (set TT_MAX_UNIVERSE to change it)"
    assert len(parse_watchlist(text, source="big.csv", max_symbols=5).symbols) == 5
