"""The options every command shares (cli/options.py) and the help of every
root command."""
from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import json
import string
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from cli.command import OperatorCommand
from cli.options import as_of_option, parse_date, parse_symbols, tickers_option
from core.calendar import supported_dates
from core.symbols import InvalidSymbolError

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ["ingest_history.py", "verify_backfill.py", "verify_db_status.py", "repair_db.py", "main.py",
            "trading_daemon.py", "feature_refresher.py", "scripts/train_ml_alpha.py"]


def _command(script: str) -> click.Command:
    spec = importlib.util.spec_from_file_location(f"_cmd_{Path(script).stem}", REPO / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.mark.parametrize("script", COMMANDS)
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_every_command_answers_help_with_exit_0_and_explains_its_exit_codes(script, flag):
    result = CliRunner().invoke(_command(script), [flag])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage:")
    assert "-h, --help" in result.output
    assert "Exit codes" in result.output
    for shared in ("--db", "--json", "--universe"):
        assert shared in result.output, (script, shared)


@click.command(cls=OperatorCommand)
@tickers_option()
@as_of_option()
def probe(tickers, as_of):
    """Echo what the shared parsers made of the operator's text."""
    click.echo(json.dumps({"tickers": list(tickers), "as_of": as_of.isoformat() if as_of else None}))


def _outcome(*args: str):
    result = CliRunner().invoke(probe, list(args))
    # Never a traceback: either parsed (exit 0), or one line of usage error (exit 64).
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if result.exit_code == 0:
        return json.loads(result.stdout)
    assert result.exit_code == 64, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert result.stdout == ""
    return None


def _assert_refused(flag, text, parser, error):
    """A refused value names its flag on stderr, and the shared parser
    refuses it with its own typed error (the CLI adds nothing of its own)."""
    assert flag in CliRunner().invoke(probe, [f"{flag}={text}"]).stderr
    with pytest.raises(error):
        parser(text)


TICKER_TEXT = st.one_of(st.text(max_size=40),
                        st.text(alphabet=string.ascii_letters + string.digits + ",.-=^/ ", max_size=40))


@settings(max_examples=300, deadline=None)
@given(TICKER_TEXT)
def test_any_tickers_text_parses_or_is_a_one_line_usage_error(text):
    parsed = _outcome(f"--tickers={text}")
    if parsed is None:
        if not text.replace(",", "").strip():
            # Explicitly empty (issue 10, failure 15): never "every symbol".
            assert parse_symbols(text) == () and "--tickers" in CliRunner().invoke(probe, [f"--tickers={text}"]).stderr
            return
        _assert_refused("--tickers", text, parse_symbols, InvalidSymbolError)
        return
    symbols = parsed["tickers"]
    assert symbols == list(parse_symbols(text))
    assert len(symbols) == len(set(symbols))
    for symbol in symbols:
        assert symbol == symbol.strip().upper() and "," not in symbol and symbol


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=20), st.dates().map(dt.date.isoformat),
                 st.from_regex(r"\d{4}-\d{2}-\d{2}", fullmatch=True)))
def test_any_as_of_text_parses_or_is_a_one_line_usage_error(text):
    parsed = _outcome(f"--as-of={text}")
    if parsed is None:
        first, last = supported_dates()
        with contextlib.suppress(ValueError):
            if not first <= parse_date(text) <= last:    # outside the calendars (issue 10, failure 10)
                assert "--as-of" in CliRunner().invoke(probe, [f"--as-of={text}"]).stderr
                return
        _assert_refused("--as-of", text, parse_date, ValueError)
        return
    assert parsed["as_of"] == text == parse_date(text).isoformat()


def test_the_parsers_on_the_operators_usual_inputs():
    assert parse_symbols("aapl, msft,,AAPL ") == ("AAPL", "MSFT")
    assert parse_symbols("") == parse_symbols(None) == ()
    assert parse_date("2024-06-28") == dt.date(2024, 6, 28)
    for bad in ("2024-6-28", "20240628", "2024-02-30", "yesterday", " 2024-06-28"):
        with pytest.raises(ValueError, match="is not a date"):
            parse_date(bad)
    assert _outcome() == {"tickers": [], "as_of": None}


@pytest.mark.parametrize("script, args", [
    ("ingest_history.py", []),
    ("repair_db.py", ["--symbol", "AAPL", "--from", "2024-01-02", "--to", "2024-01-05"]),
])
def test_the_fetching_commands_refuse_a_bad_source_in_the_same_words(runtime, tmp_path, script, args):
    """--data-dir and --provider are checked by one function
    (cli.options.check_source_options) for ingest_history.py and repair_db.py."""
    universe = tmp_path / "universe.json"
    universe.write_text(json.dumps({"symbols": [{"symbol": "AAPL"}]}))
    missing = tmp_path / "no-such-dir"
    command = _command(script)
    base = ["--universe", str(universe), *args]
    result = CliRunner().invoke(command, [*base, "--data-dir", str(missing), "--provider", "nope"])
    assert result.exit_code == 66, result.output
    assert result.stderr.strip().splitlines() == [f"error: --data-dir {missing}: directory not found"]
    result = CliRunner().invoke(command, [*base, "--provider", "nope"])
    assert result.exit_code == 64, result.output
    assert result.stderr.strip().splitlines() == [
        "error: --provider 'nope': unknown; known: alpaca, file, polygon, synthetic, yahoo"]
    assert not runtime.db.exists()
