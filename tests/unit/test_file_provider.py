"""The file provider against files shaped as vendors and data sites ship them."""
from __future__ import annotations

import datetime as dt
import gzip
import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from data.providers.base import (
    ADJ_COMPUTED,
    ADJ_UNADJUSTED,
    ADJ_VENDOR,
    FetchRequest,
    MalformedDataError,
    NoDataError,
    SchemaError,
    normalise_bars,
)
from data.providers.file import (
    DataDirectoryNotFound,
    FileDataProvider,
    compute_adjustment_factors,
    require_data_directory,
    write_yahoo_csv,
)

YAHOO = """Date,Open,High,Low,Close,Adj Close,Volume
2024-01-02,10.0,11.0,9.5,10.5,10.25,1000
2024-01-03,10.5,11.5,10.0,11.0,10.75,2000
2024-01-04,11.0,12.0,10.5,11.5,11.25,3000
"""


def request(symbol: str, start=dt.date(2000, 1, 1), end=dt.date(2030, 12, 31)) -> FetchRequest:
    return FetchRequest(symbol=symbol, asset_class="stocks", start=start, end=end)


def fetch_one(directory, symbol: str, **kw):
    return FileDataProvider(directory=directory).fetch_one(request(symbol, **kw))


def outcome(directory, symbol: str):
    """Through the batch path (``fetch``), as the ingestion calls it."""
    (result,) = list(FileDataProvider(directory=directory).fetch([request(symbol)]))
    return result


def assert_contract(frame: pd.DataFrame) -> None:
    """The frame is exactly what the shared normaliser would produce."""
    pd.testing.assert_frame_equal(frame, normalise_bars(frame, provider="file", symbol="X"))
    assert str(frame["date"].dtype) == "datetime64[ns]"
    assert str(frame["volume"].dtype) == "Int64"
    for col in ("open", "high", "low", "close", "adj_close"):
        assert frame[col].dtype == np.float64


def dates(frame: pd.DataFrame) -> list[str]:
    return [d.strftime("%Y-%m-%d") for d in frame["date"]]


# ---------------------------------------------------------------- formats
def test_yahoo_headers_vendor_adjusted(tmp_path):
    (tmp_path / "AAPL.csv").write_text(YAHOO)
    result = fetch_one(tmp_path, "AAPL")
    assert result.adjustment == ADJ_VENDOR
    assert list(result.frame.columns) == ["date", "open", "high", "low", "close", "adj_close", "volume"]
    assert dates(result.frame) == ["2024-01-02", "2024-01-03", "2024-01-04"]
    assert result.frame["adj_close"].tolist() == [10.25, 10.75, 11.25]
    assert result.frame["volume"].tolist() == [1000, 2000, 3000]
    assert_contract(result.frame)
    assert result.raw_payload == YAHOO.encode() and result.raw_suffix == "csv"
    assert result.provider == "file" and result.symbol == "AAPL"


def test_snake_case_headers_with_dividend_and_split(tmp_path):
    (tmp_path / "MSFT.csv").write_text(
        "date,open,high,low,close,adj_close,volume,dividend,split_ratio\n"
        "2024-01-02,1,2,0.5,1.5,1.4,10,0.0,1.0\n"
        "2024-01-03,1,2,0.5,1.6,1.6,11,0.1,1.0\n")
    result = fetch_one(tmp_path, "MSFT")
    assert result.adjustment == ADJ_VENDOR
    assert result.frame["adj_close"].tolist() == [1.4, 1.6]
    assert result.frame["dividend"].tolist() == [0.0, 0.1]
    assert result.frame["split_ratio"].tolist() == [1.0, 1.0]
    assert_contract(result.frame)


def test_stooq_style_is_unadjusted(tmp_path):
    (tmp_path / "spy.csv").write_text("Date,Open,High,Low,Close,Volume\n"
                                      "2024-01-02,470.1,472.0,469.0,471.5,100\n"
                                      "2024-01-03,471.0,473.0,468.0,469.5,200\n")
    result = fetch_one(tmp_path, "SPY")
    assert result.adjustment == ADJ_UNADJUSTED
    assert result.frame["adj_close"].tolist() == result.frame["close"].tolist() == [471.5, 469.5]
    assert "dividend" not in result.frame.columns
    assert_contract(result.frame)


def test_stooq_angle_bracket_headers_and_compact_dates(tmp_path):
    (tmp_path / "IBM.csv").write_text("<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>\n"
                                      "IBM.US,D,20240102,000000,1,2,0.5,1.5,100,0\n"
                                      "IBM.US,D,20240103,000000,1,2,0.5,1.7,200,0\n")
    result = fetch_one(tmp_path, "IBM")
    assert dates(result.frame) == ["2024-01-02", "2024-01-03"]
    assert result.frame["close"].tolist() == [1.5, 1.7]


def test_yahoo_actions_columns_normalised(tmp_path):
    (tmp_path / "KO.csv").write_text("Date,Open,High,Low,Close,Adj Close,Volume,Dividends,Stock Splits\n"
                                     "2024-01-02,1,1,1,60,59,10,0,0\n"
                                     "2024-01-03,1,1,1,61,60,10,0.46,0\n"
                                     "2024-01-04,1,1,1,30,30,10,0,2\n")
    result = fetch_one(tmp_path, "KO")
    assert result.adjustment == ADJ_VENDOR  # the vendor's column wins over computing
    assert result.frame["split_ratio"].tolist() == [1.0, 1.0, 2.0]  # Yahoo's 0 means no split
    assert result.frame["dividend"].tolist() == [0.0, 0.46, 0.0]
    assert result.frame["adj_close"].tolist() == [59.0, 60.0, 30.0]


def test_yfinance_download_three_row_header(tmp_path):
    (tmp_path / "AAPL.csv").write_text("Price,Adj Close,Close,High,Low,Open,Volume\n"
                                       "Ticker,AAPL,AAPL,AAPL,AAPL,AAPL,AAPL\n"
                                       "Date,,,,,,\n"
                                       "2024-01-02,184.9,185.6,188.4,183.9,187.2,82488700\n"
                                       "2024-01-03,183.5,184.2,185.9,183.4,184.2,58414500\n")
    result = fetch_one(tmp_path, "AAPL")
    assert dates(result.frame) == ["2024-01-02", "2024-01-03"]
    assert result.frame["adj_close"].tolist() == [184.9, 183.5]
    assert result.frame["open"].tolist() == [187.2, 184.2]
    (tmp_path / "AAPL.csv").write_text("Price,Adj Close,Close,High,Low,Open,Volume\n"
                                       "Ticker,AAPL,AAPL,AAPL,AAPL,AAPL,AAPL\n"
                                       "Date,,,,,,\n"
                                       "2024-01-02,184.9,185.6,188.4,183.9,187.2,82488700\n"
                                       "2024-01-03,183.5,184.2,185.9,183.4,184.2,5841x4500\n")
    with pytest.raises(MalformedDataError, match=r"AAPL\.csv, line 5: .*'5841x4500'"):
        fetch_one(tmp_path, "AAPL")


def test_blank_line_after_header_is_fine(tmp_path):
    (tmp_path / "X.csv").write_text("Date,Open,High,Low,Close,Volume\n\n2024-01-02,1,2,0.5,1.5,10\n")
    assert dates(outcome(tmp_path, "X").result.frame) == ["2024-01-02"]


def test_column_names_match_ignoring_case_space_underscore(tmp_path):
    (tmp_path / "X.csv").write_text(" DATE ,OPEN,High,low,CLOSE,Adj_Close,VOLUME\n2024-01-02,1,2,0.5,1.5,1.4,7\n")
    result = fetch_one(tmp_path, "X")
    assert result.adjustment == ADJ_VENDOR
    assert result.frame["adj_close"].tolist() == [1.4]


def test_bom_and_crlf(tmp_path):
    (tmp_path / "AAPL.csv").write_bytes(b"\xef\xbb\xbf" + YAHOO.replace("\n", "\r\n").encode())
    frame = fetch_one(tmp_path, "AAPL").frame
    assert dates(frame) == ["2024-01-02", "2024-01-03", "2024-01-04"]
    assert frame["volume"].tolist() == [1000, 2000, 3000]
    assert_contract(frame)


def test_descending_order_is_sorted_ascending(tmp_path):
    lines = YAHOO.strip().split("\n")
    (tmp_path / "AAPL.csv").write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    frame = fetch_one(tmp_path, "AAPL").frame
    assert dates(frame) == ["2024-01-02", "2024-01-03", "2024-01-04"]
    assert frame["close"].tolist() == [10.5, 11.0, 11.5]


def test_us_dates(tmp_path):
    (tmp_path / "X.csv").write_text("Date,Open,High,Low,Close,Volume\n"
                                    "1/2/2024,1,2,0.5,1.5,10\n12/31/2024,1,2,0.5,1.6,11\n")
    assert dates(fetch_one(tmp_path, "X").frame) == ["2024-01-02", "2024-12-31"]


def test_iso_datetimes_keep_their_calendar_date(tmp_path):
    (tmp_path / "X.csv").write_text("Date,Open,High,Low,Close,Volume\n"
                                    "2024-01-02 00:00:00-05:00,1,2,0.5,1.5,10\n"
                                    "2024-01-03 00:00:00+09:00,1,2,0.5,1.6,11\n"
                                    "2024-01-04T16:00:00Z,1,2,0.5,1.7,12\n")
    assert dates(fetch_one(tmp_path, "X").frame) == ["2024-01-02", "2024-01-03", "2024-01-04"]


def test_dot_and_empty_are_missing_values(tmp_path):
    (tmp_path / "X.csv").write_text("Date,Open,High,Low,Close,Volume\n"
                                    "2024-01-02,.,2,0.5,1.5,\n"
                                    "2024-01-03,1,,0.5,1.6,.\n"
                                    "2024-01-04,1,2,0.5,1.7,5\n")
    frame = fetch_one(tmp_path, "X").frame
    assert np.isnan(frame["open"].iloc[0]) and np.isnan(frame["high"].iloc[1])
    assert frame["volume"].isna().tolist() == [True, True, False]
    assert frame["volume"].iloc[2] == 5
    assert_contract(frame)


def test_duplicate_dates_are_kept(tmp_path):
    (tmp_path / "X.csv").write_text("Date,Open,High,Low,Close,Volume\n"
                                    "2024-01-03,1,2,0.5,1.6,11\n2024-01-02,1,2,0.5,1.5,10\n"
                                    "2024-01-03,1,2,0.5,1.6,11\n")
    frame = fetch_one(tmp_path, "X").frame
    assert dates(frame) == ["2024-01-02", "2024-01-03", "2024-01-03"]


def test_gzipped_csv(tmp_path):
    (tmp_path / "AAPL.csv.gz").write_bytes(gzip.compress(YAHOO.encode()))
    result = fetch_one(tmp_path, "AAPL")
    assert result.frame["close"].tolist() == [10.5, 11.0, 11.5]
    assert result.raw_payload == YAHOO.encode()  # the archive compresses it again


def test_parquet_per_symbol(tmp_path):
    table = pa.table({"Date": pa.array([dt.date(2024, 1, 3), dt.date(2024, 1, 2)], pa.date32()),
                      "Open": [1.0, 2.0], "High": [2.0, 3.0], "Low": [0.5, 1.0], "Close": [1.5, 2.5],
                      "Volume": pa.array([10, None], pa.int64())})
    pq.write_table(table, tmp_path / "BTC-USD.parquet")
    result = fetch_one(tmp_path, "BTC-USD")
    assert result.raw_suffix == "parquet"
    assert result.raw_payload == (tmp_path / "BTC-USD.parquet").read_bytes()
    assert result.adjustment == ADJ_UNADJUSTED
    assert dates(result.frame) == ["2024-01-02", "2024-01-03"]
    assert result.frame["close"].tolist() == [2.5, 1.5]
    assert result.frame["volume"].isna().tolist() == [True, False]
    assert_contract(result.frame)


def test_parquet_garbage(tmp_path):
    pq.write_table(pa.table({"Date": ["2024-01-02", "2024-01-03"], "Open": ["1.0", "abc"], "High": [2.0, 3.0],
                             "Low": [0.5, 1.0], "Close": [1.5, 2.5], "Volume": [10, 20]}), tmp_path / "X.parquet")
    with pytest.raises(MalformedDataError, match=r"X\.parquet, row 2: column 'Open': .*'abc'"):
        fetch_one(tmp_path, "X")
    (tmp_path / "Y.parquet").write_bytes(b"PAR1 this is not parquet")
    assert isinstance(outcome(tmp_path, "Y").error, MalformedDataError)


def test_parquet_with_tz_aware_timestamps(tmp_path):
    stamps = pd.to_datetime(["2024-01-02 00:00", "2024-01-03 00:00"]).tz_localize("Asia/Tokyo")
    frame = pd.DataFrame({"date": stamps, "open": [1.0, 2.0], "high": [2.0, 3.0], "low": [0.5, 1.0],
                          "close": [1.5, 2.5], "adj_close": [1.4, 2.4], "volume": [10, 20]})
    frame.to_parquet(tmp_path / "7203.T.parquet")
    result = fetch_one(tmp_path, "7203.T")
    assert dates(result.frame) == ["2024-01-02", "2024-01-03"]  # the local session date, not UTC's
    assert result.adjustment == ADJ_VENDOR


def test_write_yahoo_csv_round_trips(tmp_path):
    frame = pd.DataFrame({"date": pd.to_datetime(["2024-01-02", "2024-01-03"]).astype("datetime64[ns]"),
                          "open": [1.25, 2.0],
                          "high": [2.0, 3.0], "low": [0.5, 1.0], "close": [1.5, 0.1 + 0.2],
                          "adj_close": [1.4, 2.4], "volume": pd.array([10, None], dtype="Int64")})
    write_yahoo_csv(tmp_path / "X.csv", frame)
    text = (tmp_path / "X.csv").read_text()
    assert text.splitlines()[0] == "Date,Open,High,Low,Close,Adj Close,Volume"
    assert text.splitlines()[1].startswith("2024-01-02,1.25,")
    pd.testing.assert_frame_equal(fetch_one(tmp_path, "X").frame, frame)


# ---------------------------------------------------------------- long files
LONG = """date,ticker,open,high,low,close,volume
2024-01-02,AAA,1,2,0.5,1.5,10
2024-01-02,BBB,5,6,4.5,5.5,50
2024-01-03,AAA,1,2,0.5,1.6,11
2024-01-03,BBB,5,6,4.5,5.6,51
"""


def test_long_format_file_serves_each_symbol(tmp_path):
    (tmp_path / "prices.csv").write_text(LONG)
    provider = FileDataProvider(directory=tmp_path)
    aaa = provider.fetch_one(request("AAA"))
    bbb = provider.fetch_one(request("bbb"))
    assert aaa.frame["close"].tolist() == [1.5, 1.6]
    assert bbb.frame["close"].tolist() == [5.5, 5.6]
    assert dates(bbb.frame) == ["2024-01-02", "2024-01-03"]
    assert_contract(aaa.frame)
    raw = pa_csv.read_csv(io.BytesIO(aaa.raw_payload))
    assert aaa.raw_suffix == "csv" and set(raw.column("ticker").to_pylist()) == {"AAA"}
    assert raw.num_rows == 2
    assert "2 symbol(s)" in provider.test() and "1 long-format file(s)" in provider.test()


def test_long_format_parquet_and_symbol_split_across_files(tmp_path):
    (tmp_path / "2024a.csv").write_text(LONG)
    pq.write_table(pa.table({"Symbol": ["AAA", "CCC"], "Date": ["2024-01-04", "2024-01-04"], "Open": [1.0, 9.0],
                             "High": [2.0, 9.0], "Low": [0.5, 9.0], "Close": [1.7, 9.0], "Volume": [12, 90]}),
                   tmp_path / "2024b.parquet")
    provider = FileDataProvider(directory=tmp_path)
    assert provider.fetch_one(request("AAA")).frame["close"].tolist() == [1.5, 1.6, 1.7]
    assert provider.fetch_one(request("CCC")).frame["close"].tolist() == [9.0]


def test_long_format_keeps_ticker_na_and_reports_bad_line(tmp_path):
    (tmp_path / "all.csv").write_text(LONG.replace("BBB", "NA"))
    assert fetch_one(tmp_path, "NA").frame["close"].tolist() == [5.5, 5.6]  # "NA" is a ticker, not a null
    (tmp_path / "all.csv").write_text(LONG.replace("5.6,51", "5.6,5x1"))
    with pytest.raises(MalformedDataError, match=r"all\.csv, line 5: .*'5x1'"):
        fetch_one(tmp_path, "AAA")


def test_file_named_after_symbol_wins_over_long_file(tmp_path):
    (tmp_path / "prices.csv").write_text(LONG)
    (tmp_path / "AAA.csv").write_text(YAHOO)
    assert fetch_one(tmp_path, "AAA").frame["close"].tolist() == [10.5, 11.0, 11.5]


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("body, line, value", [
    ("2024-01-02,1,2,0.5,1.5,10\n2024-01-03,1,abc,0.5,1.6,11\n", 3, "abc"),
    ("2024-01-02,1,2,0.5,1.5,10\n2024-01-03,1,2,0.5,1.6,11\n2024-13-04,1,2,0.5,1.6,11\n", 4, "2024-13-04"),
    ("2024-01-02,1,2,0.5,1.5,10\n2024-01-03,1,2,0.5,1.6\n", 3, "2024-01-03,1,2,0.5,1.6"),
    ("2024-01-02,1,2,0.5,1.5,10\n\n2024-01-04,1,2,0.5,x1.6,11\n", 4, "x1.6"),   # a blank line still counts
    ("nonsense,1,2,0.5,1.5,10\n", 2, "nonsense"),
    ("2024-01-02,1,2,0.5,1.5,10\n1/3/2024,1,2,0.5,1.6,11\n", 3, "1/3/2024"),    # formats mixed
    ("2024-01-02 09:30:00,1,2,0.5,1.5,10\n2024-01-03 9h30,1,2,0.5,1.6,11\n", 3, "2024-01-03 9h30"),
    ("2024-01-02,1,2,0.5,1.5,10\n,1,2,0.5,1.6,11\n", 3, "missing date"),
])
def test_garbage_row_names_file_line_and_value(tmp_path, body, line, value):
    path = tmp_path / "BAD.csv"
    path.write_text("Date,Open,High,Low,Close,Volume\n" + body)
    with pytest.raises(MalformedDataError) as info:
        fetch_one(tmp_path, "BAD")
    message = str(info.value)
    assert str(path) in message and f"line {line}:" in message and value in message


def test_garbage_row_with_bom_crlf_and_us_dates(tmp_path):
    text = "Date,Open,High,Low,Close,Volume\r\n1/2/2024,1,2,0.5,1.5,10\r\n2/30/2024,1,2,0.5,1.6,11\r\n"
    (tmp_path / "BAD.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    with pytest.raises(MalformedDataError, match=r"BAD\.csv, line 3: .*'2/30/2024'"):
        fetch_one(tmp_path, "BAD")


def test_batch_isolates_the_bad_file(tmp_path):
    for name in ("A", "B", "C"):
        (tmp_path / f"{name}.csv").write_text(YAHOO)
    (tmp_path / "B.csv").write_text(YAHOO.replace("11.5,10.0,11.0", "11.5,10.0,1x1.0"))
    provider = FileDataProvider(directory=tmp_path)
    outcomes = {o.request.symbol: o for o in provider.fetch([request("A"), request("B"), request("C")])}
    assert outcomes["A"].result is not None and outcomes["C"].result is not None
    error = outcomes["B"].error
    assert isinstance(error, MalformedDataError) and error.symbol == "B" and error.provider == "file"
    assert "B.csv, line 3:" in str(error) and "'1x1.0'" in str(error)


def test_batch_and_single_fetch_agree(tmp_path):
    rng = np.random.default_rng(7)
    symbols = [f"S{i}" for i in range(6)]
    for i, symbol in enumerate(symbols):
        n = 5 + i
        frame = pd.DataFrame({"date": pd.bdate_range("2024-01-01", periods=n, unit="ns"), "open": rng.random(n),
                              "high": rng.random(n), "low": rng.random(n), "close": rng.random(n),
                              "adj_close": rng.random(n), "volume": pd.array(rng.integers(0, 100, n), dtype="Int64")})
        write_yahoo_csv(tmp_path / f"{symbol}.csv", frame.iloc[::-1] if i % 2 else frame)
    # Variants that share the header but cannot be split by counting newlines
    # (or can, with care): each must come back exactly as parsed alone.
    def rewrite(symbol, change):
        path = tmp_path / f"{symbol}.csv"
        path.write_bytes(change(path.read_bytes()))
    rewrite("S1", lambda b: b.rstrip(b"\n"))                                   # no final newline
    rewrite("S2", lambda b: b"\xef\xbb\xbf" + b.replace(b"\n", b"\r\n"))       # BOM + CRLF
    rewrite("S3", lambda b: b.replace(b"\n", b"\n\n", 2))                       # blank lines
    rewrite("S4", lambda b: b.replace(b"\n2024-01-03,", b'\n"2024-01-03",'))   # a quoted field
    rewrite("S5", lambda b: b.replace(b"\n", b"\r\n").replace(b"\r\n", b"\r\n\r\n", 3))  # blank CRLF lines
    provider = FileDataProvider(directory=tmp_path)
    batch = {o.request.symbol: o.result for o in provider.fetch([request(s) for s in symbols])}
    for symbol in symbols:
        single = provider.fetch_one(request(symbol))
        pd.testing.assert_frame_equal(batch[symbol].frame, single.frame)
        assert batch[symbol].raw_payload == single.raw_payload
        assert len(single.frame) == 5 + int(symbol[1:])


def test_joint_parse_splits_rows_back_per_file(tmp_path):
    from data.providers.file.csv_format import batchable_rows, csv_layout, parse_csv, parse_csv_group

    bodies = {"A": YAHOO, "B": YAHOO.replace("\n", "\r\n"), "C": YAHOO.strip() + "\n2024-01-05,1,2,0.5,1.5,1.4,9"}
    items = []
    for name, text in bodies.items():
        data = text.encode()
        items.append((data, tmp_path / f"{name}.csv", batchable_rows(data)))
    assert [rows for _, _, rows in items] == [3, 3, 4]
    parsed = parse_csv_group(items, csv_layout(items[0][0], items[0][1]))
    assert parsed is not None
    for (data, path, _), joint in zip(items, parsed):
        alone = parse_csv(data, path)
        np.testing.assert_array_equal(joint.dates, alone.dates)
        for column, values in alone.values.items():
            np.testing.assert_array_equal(joint.values[column], values)
    assert batchable_rows(b'Date,Close\n"2024-01-02",1\n') == 0
    assert batchable_rows(b"Date,Close\n2024-01-02,1\n\n2024-01-03,1\n") == 0
    assert batchable_rows(b"Date,Close\r\n2024-01-02,1\r2024-01-03,1\r\n") == 0


def test_missing_column_is_schema_error(tmp_path):
    (tmp_path / "X.csv").write_text("Date,Open,Close\n2024-01-02,1,2\n")
    with pytest.raises(SchemaError) as info:
        fetch_one(tmp_path, "X")
    assert info.value.missing == ("high", "low", "volume")
    assert "X.csv" in str(info.value) and "high, low, volume" in str(info.value)


def test_ambiguous_columns_are_schema_error(tmp_path):
    (tmp_path / "X.csv").write_text("Date,Open,High,Low,Close,close,Volume\n2024-01-02,1,2,0.5,1.5,1.5,10\n")
    with pytest.raises(SchemaError, match="'Close' and 'close'"):
        fetch_one(tmp_path, "X")


def test_empty_file_is_no_data(tmp_path):
    (tmp_path / "X.csv").write_text("")
    (tmp_path / "Y.csv").write_text("Date,Open,High,Low,Close,Volume")  # header, no newline, no rows
    provider = FileDataProvider(directory=tmp_path)
    outcomes = {o.request.symbol: o for o in provider.fetch([request("X"), request("Y")])}
    assert isinstance(outcomes["X"].error, NoDataError) and "X.csv" in str(outcomes["X"].error)
    assert isinstance(outcomes["Y"].error, NoDataError)


def test_missing_file_is_no_data(tmp_path):
    (tmp_path / "AAPL.csv").write_text(YAHOO)
    outcome_ = outcome(tmp_path, "MSFT")
    assert isinstance(outcome_.error, NoDataError)
    assert str(tmp_path) in str(outcome_.error) and "MSFT" in str(outcome_.error)


def test_missing_directory(tmp_path):
    missing = tmp_path / "nowhere"
    provider = FileDataProvider(directory=missing)  # constructing reads nothing
    with pytest.raises(DataDirectoryNotFound, match="nowhere"):
        list(provider.fetch([request("AAPL")]))
    with pytest.raises(DataDirectoryNotFound, match="nowhere"):
        provider.test()
    with pytest.raises(DataDirectoryNotFound):
        require_data_directory(missing)
    (tmp_path / "file.csv").write_text(YAHOO)
    with pytest.raises(DataDirectoryNotFound, match="not a directory"):
        require_data_directory(tmp_path / "file.csv")


def test_header_only_file_is_no_data(tmp_path):
    (tmp_path / "X.csv").write_text("Date,Open,High,Low,Close,Volume\n")
    assert isinstance(outcome(tmp_path, "X").error, NoDataError)


# ---------------------------------------------------------------- adjustment
def test_adjustment_computed_from_splits_and_dividends(tmp_path):
    # close 100, 102, 50 (2:1 split on 01-04), 52 (dividend 1.00 on 01-05).
    # dividend factor 1 - 1/50 = 0.98 applies before 01-05; the split's 1/2 before 01-04:
    # adj = 100*0.49, 102*0.49, 50*0.98, 52 = 49.0, 49.98, 49.0, 52.0
    (tmp_path / "X.csv").write_text("Date,Open,High,Low,Close,Volume,Dividends,Stock Splits\n"
                                    "2024-01-02,1,1,1,100,10,0,0\n2024-01-03,1,1,1,102,10,0,0\n"
                                    "2024-01-04,1,1,1,50,10,0,2\n2024-01-05,1,1,1,52,10,1.0,0\n")
    result = fetch_one(tmp_path, "X")
    assert result.adjustment == ADJ_COMPUTED
    np.testing.assert_allclose(result.frame["adj_close"], [49.0, 49.98, 49.0, 52.0])
    assert result.frame["split_ratio"].tolist() == [1.0, 1.0, 2.0, 1.0]
    assert_contract(result.frame)


def test_adjustment_factors_count_a_duplicated_event_once():
    day = 86_400_000_000_000
    dates_ns = np.array([0, day, 2 * day, 2 * day], dtype=np.int64)
    factors, notes = compute_adjustment_factors(dates_ns, np.array([10.0, 20.0, 19.0, 19.0]),
                                                np.array([0.0, 0.0, 2.0, 2.0]), None)
    np.testing.assert_allclose(factors, [0.9, 0.9, 1.0, 1.0])  # 1 - 2/20, applied once
    assert notes == []


def test_adjustment_uses_snake_case_events_when_no_adjusted_column(tmp_path):
    (tmp_path / "X.csv").write_text("date,open,high,low,close,volume,dividend,split_ratio\n"
                                    "2024-01-02,1,1,1,40,10,0,1\n2024-01-03,1,1,1,20,10,0,2\n")
    result = fetch_one(tmp_path, "X")
    assert result.adjustment == ADJ_COMPUTED
    assert result.frame["adj_close"].tolist() == [20.0, 20.0]


# ---------------------------------------------------------------- window, names
def test_window_trims_rows(tmp_path):
    (tmp_path / "AAPL.csv").write_text(YAHOO)
    frame = fetch_one(tmp_path, "AAPL", start=dt.date(2024, 1, 3), end=dt.date(2024, 1, 3)).frame
    assert dates(frame) == ["2024-01-03"]
    assert frame.index.tolist() == [0]
    with pytest.raises(NoDataError, match="2025-01-01"):
        fetch_one(tmp_path, "AAPL", start=dt.date(2025, 1, 1), end=dt.date(2025, 2, 1))


def test_computed_adjustment_uses_events_after_the_window(tmp_path):
    (tmp_path / "X.csv").write_text("Date,Open,High,Low,Close,Volume,Stock Splits\n"
                                    "2024-01-02,1,1,1,100,10,0\n2024-01-03,1,1,1,50,10,2\n")
    frame = fetch_one(tmp_path, "X", end=dt.date(2024, 1, 2)).frame
    assert frame["adj_close"].tolist() == [50.0]


@pytest.mark.parametrize("symbol, file_name", [
    ("EURUSD=X", "EURUSD=X.csv"),
    ("EURUSD=X", "EURUSD_X.csv"),
    ("BTC-USD", "btc-usd.csv"),
    ("^GSPC", "^GSPC.csv"),
    ("^GSPC", "_GSPC.csv"),
    ("BRK.B", "BRK.B.csv"),
    ("BRK-B", "BRK-B.csv"),
    ("AAPL", "aapl.csv"),
])
def test_symbols_with_special_characters(tmp_path, symbol, file_name):
    (tmp_path / file_name).write_text(YAHOO)
    (tmp_path / "OTHER.csv").write_text(YAHOO)
    result = outcome(tmp_path, symbol).result
    assert result is not None and result.symbol == symbol
    assert result.frame["close"].tolist() == [10.5, 11.0, 11.5]


def test_test_line_counts_files_and_symbols(tmp_path):
    (tmp_path / "AAPL.csv").write_text(YAHOO)
    (tmp_path / "prices.csv").write_text(LONG)
    (tmp_path / "README.txt").write_text("not data")
    line = FileDataProvider(directory=tmp_path).test()
    assert str(tmp_path) in line and "2 data file(s)" in line and "3 symbol(s)" in line
    assert "\n" not in line
