import json

import pytest

from core.calendar import known_calendar_names
from core.symbols import InvalidSymbolError, classify_symbol, filename_for, normalise_symbol
from core.universe import NotInUniverseError, UniverseError, load_universe


@pytest.mark.parametrize("symbol,expected", [
    ("AAPL", "stocks"), ("BRK-B", "stocks"), ("EURUSD=X", "fx"), ("GC=F", "commodities"),
    ("BTC-USD", "crypto"), ("ETH-USDT", "crypto"), ("SPY", "stocks"),
])
def test_classify_symbol_follows_the_runbook(symbol, expected):
    assert classify_symbol(symbol) == expected


@pytest.mark.parametrize("text", ["", "  ", "AAPL MSFT", "A;DROP", "-ABC", "ABC=", "X" * 25, "é"])
def test_implausible_ticker_text_is_rejected(text):
    with pytest.raises(InvalidSymbolError):
        normalise_symbol(text)


def test_normalise_and_filename():
    assert normalise_symbol(" brk.b ") == "BRK.B"
    assert normalise_symbol("^gspc") == "^GSPC"
    assert filename_for("EURUSD=X") == "EURUSD_X"
    assert filename_for("../etc/passwd") == ".._etc_passwd"


def test_default_universe_loads_and_spans_every_class():
    universe = load_universe("configs/universe.json", known_calendar_names())
    classes = {e.asset_class for e in universe.enabled}
    assert classes == {"stocks", "fx", "crypto", "commodities"}
    assert 20 <= len(universe.symbols) <= 30


def _write(tmp_path, payload):
    path = tmp_path / "universe.json"
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return path


@pytest.mark.parametrize("payload,fragment", [
    ('{"symbols": [{"symbol": "AAPL"},', "invalid JSON"),
    ({"symbols": [{"symbol": "AAPL"}, {"symbol": "AAPL"}]}, "entry 2 ('AAPL'): duplicate symbol AAPL (first at entry 1)"),
    ({"symbols": [{"symbol": "AAPL", "sector": "tech"}]}, "entry 1 ('AAPL'): unknown field(s) sector"),
    ({"symbols": [{"symbol": "NOT A TICKER"}]}, "entry 1 ('NOT A TICKER'): 'NOT A TICKER' is not a plausible ticker"),
    ({"symbols": [{"symbol": "AAPL", "asset_class": "bonds"}]}, "asset_class 'bonds'"),
    ({"symbols": [{"symbol": "AAPL", "calendar": "MOON"}]}, "unknown calendar 'MOON'"),
    ({"symbols": [{"symbol": "AAPL", "enabled": "yes"}]}, "\"enabled\" must be true or false"),
    ({"symbols": [{"name": "Apple"}]}, "entry 1: missing \"symbol\""),
    ({"symbols": []}, "non-empty list"),
    ({"tickers": ["AAPL"]}, "expected an object with a \"symbols\" list"),
])
def test_malformed_universe_gives_one_line_naming_file_and_entry(tmp_path, payload, fragment):
    path = _write(tmp_path, payload)
    with pytest.raises(UniverseError) as info:
        load_universe(path, known_calendar_names())
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert fragment in message


def test_selection_never_invents_symbols(tmp_path):
    path = _write(tmp_path, {"symbols": ["AAPL", {"symbol": "MSFT", "enabled": False}]})
    universe = load_universe(path)
    assert [e.symbol for e in universe.select(None)] == ["AAPL"]
    with pytest.raises(NotInUniverseError, match="not in the universe: TSLA"):
        universe.select(["TSLA"])
    with pytest.raises(NotInUniverseError, match="disabled in the universe: MSFT"):
        universe.select(["MSFT"])
