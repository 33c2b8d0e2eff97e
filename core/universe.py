"""The universe file: the only source of symbols.

Schema (``configs/universe.json``)::

    {"version": 1,
     "symbols": [
        {"symbol": "AAPL"},
        {"symbol": "SPY", "name": "SPDR S&P 500 ETF"},
        {"symbol": "GC=F", "calendar": "CMES"},
        {"symbol": "XYZ", "asset_class": "stocks", "enabled": false}
     ]}

Fields per entry: ``symbol`` (required), ``asset_class`` (override of the
runbook's classification), ``calendar`` (exchange_calendars name), ``enabled``
(default true), ``name`` (free text).  ``version`` is a positive integer.
Anything else is an error: the loader never guesses, invents or drops a
symbol.  Bounds: at most ``MAX_UNIVERSE_BYTES`` of text and
``MAX_SYMBOLS`` entries; ``NaN``/``Infinity`` (which Python's json module
would accept) and nesting too deep to parse are malformed, not tracebacks.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from core.errors import MalformedInputError, UsageError
from core.symbols import ASSET_CLASSES, InvalidSymbolError, classify_symbol, normalise_symbol

ALLOWED_FIELDS = {"symbol", "asset_class", "calendar", "enabled", "name"}
TOP_LEVEL_FIELDS = {"version", "symbols", "description"}
MAX_UNIVERSE_BYTES = 16 * 1024 * 1024   # ~300 bytes an entry: far above any desk's universe
MAX_SYMBOLS = 50_000


class UniverseError(MalformedInputError):
    """The universe file is malformed (or missing, when loaded directly):
    fix the file.  The message is one line naming the file, the entry and
    the problem."""


class NotInUniverseError(UsageError):
    """Symbols named on the command line are not enabled symbols of the
    universe (symbols are never invented): fix the flag, or the universe."""


@dataclass(frozen=True)
class UniverseEntry:
    symbol: str
    asset_class: str
    calendar: str | None = None
    enabled: bool = True
    name: str | None = None


@dataclass(frozen=True)
class Universe:
    path: str
    entries: tuple[UniverseEntry, ...]

    @property
    def enabled(self) -> list[UniverseEntry]:
        return [e for e in self.entries if e.enabled]

    @property
    def symbols(self) -> list[str]:
        return [e.symbol for e in self.enabled]

    def get(self, symbol: str) -> UniverseEntry | None:
        for entry in self.entries:
            if entry.symbol == symbol:
                return entry
        return None

    def select(self, tickers: list[str] | None) -> list[UniverseEntry]:
        """Enabled entries, or the named ones; a name not in the universe (or
        disabled there) is a NotInUniverseError (symbols are never invented)."""
        if not tickers:
            return self.enabled
        by_symbol = {e.symbol: e for e in self.entries}
        missing = [t for t in tickers if t not in by_symbol]
        if missing:
            raise NotInUniverseError(f"{self.path}: not in the universe: {', '.join(missing)}")
        disabled = [t for t in tickers if not by_symbol[t].enabled]
        if disabled:
            raise NotInUniverseError(f"{self.path}: disabled in the universe: {', '.join(disabled)}")
        return [by_symbol[t] for t in dict.fromkeys(tickers)]


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _read_json(path: Path) -> object:
    """The file's JSON, or a one-line UniverseError: missing, not a regular
    file, unreadable, too large, not UTF-8, invalid JSON (NaN and Infinity
    included), nested too deep to parse."""
    if not path.exists():
        raise UniverseError(f"{path}: universe file not found")
    if not path.is_file():
        raise UniverseError(f"{path}: not a regular file (a directory?); point at the universe JSON file")
    try:
        size = path.stat().st_size
        if size > MAX_UNIVERSE_BYTES:
            raise UniverseError(f"{path}: {size} bytes; a universe file is at most {MAX_UNIVERSE_BYTES} bytes")
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UniverseError(f"{path}: not UTF-8 text: {exc.reason}") from exc
    except OSError as exc:
        raise UniverseError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        raw = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise UniverseError(f"{path}: line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}") from exc
    except ValueError as exc:   # NaN, Infinity, -Infinity
        raise UniverseError(f"{path}: invalid JSON: {exc}") from exc
    except RecursionError as exc:
        raise UniverseError(f"{path}: invalid JSON: nested too deep") from exc
    if isinstance(raw, float) and not math.isfinite(raw):
        raise UniverseError(f"{path}: invalid JSON number")
    return raw


def _entry_label(index: int, raw: object) -> str:
    sym = raw.get("symbol") if isinstance(raw, dict) else None
    return f"entry {index}" + (f" ({sym!r})" if isinstance(sym, str) else "")


def load_universe(path: str | Path, known_calendars: set[str] | None = None) -> Universe:
    """Read and validate the universe file; raise UniverseError on any problem."""
    path = Path(path)
    raw = _read_json(path)
    if isinstance(raw, list):  # bare list of entries is accepted
        raw = {"symbols": raw}
    if not isinstance(raw, dict) or "symbols" not in raw:
        raise UniverseError(f"{path}: expected an object with a \"symbols\" list")
    extra = set(raw) - TOP_LEVEL_FIELDS
    if extra:
        raise UniverseError(f"{path}: unknown top-level field(s) {', '.join(sorted(extra))}")
    version = raw.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UniverseError(f"{path}: \"version\" must be a positive integer, got {version!r}")
    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        raise UniverseError(f"{path}: \"description\" must be text")
    items = raw["symbols"]
    if not isinstance(items, list) or not items:
        raise UniverseError(f"{path}: \"symbols\" must be a non-empty list")
    if len(items) > MAX_SYMBOLS:
        raise UniverseError(f"{path}: {len(items)} entries; at most {MAX_SYMBOLS} are accepted")

    entries: list[UniverseEntry] = []
    first_seen: dict[str, int] = {}
    for index, item in enumerate(items, start=1):
        label = _entry_label(index, item)
        if isinstance(item, str):
            item = {"symbol": item}
        if not isinstance(item, dict):
            raise UniverseError(f"{path}: {label}: expected an object or a symbol string")
        unknown = set(item) - ALLOWED_FIELDS
        if unknown:
            raise UniverseError(f"{path}: {label}: unknown field(s) {', '.join(sorted(unknown))}")
        if "symbol" not in item:
            raise UniverseError(f"{path}: {label}: missing \"symbol\"")
        try:
            symbol = normalise_symbol(item["symbol"])
        except InvalidSymbolError as exc:
            raise UniverseError(f"{path}: {label}: {exc}") from exc
        if symbol in first_seen:
            raise UniverseError(f"{path}: {label}: duplicate symbol {symbol} (first at entry {first_seen[symbol]})")
        first_seen[symbol] = index
        asset_class = item.get("asset_class", classify_symbol(symbol))
        if asset_class not in ASSET_CLASSES:
            raise UniverseError(f"{path}: {label}: asset_class {asset_class!r} is not one of {', '.join(ASSET_CLASSES)}")
        calendar = item.get("calendar")
        if calendar is not None and (not isinstance(calendar, str)
                                     or (known_calendars is not None and calendar not in known_calendars)):
            raise UniverseError(f"{path}: {label}: unknown calendar {calendar!r}")
        enabled = item.get("enabled", True)
        if not isinstance(enabled, bool):
            raise UniverseError(f"{path}: {label}: \"enabled\" must be true or false")
        name = item.get("name")
        if name is not None and not isinstance(name, str):
            raise UniverseError(f"{path}: {label}: \"name\" must be text")
        entries.append(UniverseEntry(symbol, asset_class, calendar, enabled, name))
    return Universe(path=str(path), entries=tuple(entries))
