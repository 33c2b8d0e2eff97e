"""The options every command shares, defined once: ``--db``, ``--json``,
``--universe``, ``--tickers``, ``--as-of`` (and the date and symbol-list
parsers behind them), and the check of the source options the fetching
commands share (``--provider``, ``--data-dir``).

A value that does not parse is a click usage error: one line on stderr
naming the flag and the value, exit 64 (``cli.command.OperatorCommand``):
a date outside the calendars' range (``core.calendar.supported_dates``), an
explicitly empty symbol list (``--tickers=``: an unset shell variable must
never widen a run to the whole universe), symbol text that cannot be a
ticker (``core.symbols``).
"""
from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path
from typing import Any, Callable

import click

from core.calendar import CalendarError, check_supported_date
from core.errors import MissingInputError, UsageError
from core.settings import Settings
from core.symbols import InvalidSymbolError, normalise_symbol

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_date(text: str) -> dt.date:
    """``YYYY-MM-DD`` as a date; ValueError for anything else."""
    if not _ISO_DATE.fullmatch(text):
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def parse_symbols(text: str | None) -> tuple[str, ...]:
    """Comma-separated symbols, each normalised (``core.symbols``), blanks
    skipped, duplicates kept once; InvalidSymbolError for text that cannot
    be a ticker."""
    symbols = (normalise_symbol(part) for part in (text or "").split(",") if part.strip())
    return tuple(dict.fromkeys(symbols))


class IsoDate(click.ParamType):
    """A calendar date written ``YYYY-MM-DD``, within the calendars' range
    (``core.calendar.supported_dates``: no calendar places a session
    outside it, so ``--as-of 1800-01-01`` or ``--start 0001-01-01`` is a
    usage slip, never a window no provider can serve)."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            date = parse_date(str(value))
            check_supported_date("", date)
        except CalendarError as exc:
            self.fail(str(exc).strip(), param, ctx)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return date


class SymbolList(click.ParamType):
    """Comma-separated symbols (``AAPL,MSFT``), normalised.  Given, the list
    must name at least one symbol: ``--tickers=`` (or ``--tickers=,``) is a
    usage error, never "every symbol" (the flag left out means that)."""

    name = "SYMBOL[,SYMBOL...]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        try:
            symbols = parse_symbols(str(value))
        except InvalidSymbolError as exc:
            self.fail(str(exc), param, ctx)
        if not symbols:
            self.fail(f"{value!r} names no symbol; name at least one, or leave the flag out for every "
                      f"enabled symbol", param, ctx)
        return symbols


class FiniteNumber(click.ParamType):
    """A finite number within ``[low, high]`` (NaN, infinities and values
    outside the range are usage errors naming the flag: a timing flag of
    ``nan`` would busy-loop a core, ``inf`` would stop a thread for good)."""

    name = "NUMBER"

    def __init__(self, low: float, high: float, unit: str):
        self.low, self.high, self.unit = float(low), float(high), unit

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number) or not self.low <= number <= self.high:
            self.fail(f"{value!r} is not a finite number of {self.unit} from {self.low:g} to {self.high:g}",
                      param, ctx)
        return number


ISO_DATE = IsoDate()
SYMBOLS = SymbolList()

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def db_option(fn):
    return click.option("--db", "db_path", type=click.Path(dir_okay=False), default=None,
                        help="SQLite database (default: $RUNTIME_DIR/institutional_trading.db).")(fn)


def json_option(fn):
    return click.option("--json", "as_json", is_flag=True,
                        help="Machine-readable JSON on stdout; human output suppressed.")(fn)


def universe_option(fn):
    return click.option("--universe", "universe_path", type=click.Path(dir_okay=False), default=None,
                        help="Universe file, the only source of symbols "
                             "(default: $UNIVERSE_FILE, else configs/universe.json).")(fn)


def tickers_option(help: str = "Comma-separated symbols, a subset of the universe (default: every enabled "
                               "symbol).") -> Decorator:
    return click.option("--tickers", type=SYMBOLS, default=(), show_default=False, help=help)


def as_of_option(help: str = "Judge the store as of this date (default: today).") -> Decorator:
    return click.option("--as-of", "as_of", type=ISO_DATE, default=None, help=help)


def check_source_options(provider: str | None, data_dir: str | None, settings: Settings) -> None:
    """Refuse a ``--data-dir`` that is not a directory (MissingInputError,
    exit 66) and a ``--provider`` the capability matrix does not know
    (UsageError, exit 64), in that order."""
    if data_dir and not Path(data_dir).is_dir():
        raise MissingInputError(f"--data-dir {data_dir}: directory not found")
    if provider and provider not in settings.providers.capabilities:
        raise UsageError(f"--provider {provider!r}: unknown; known: {', '.join(sorted(settings.providers.capabilities))}")
